#!/usr/bin/env python3
"""Pool.map, the first multiprocessing program, run by mprocd.

With multiprocessing:

    from multiprocessing import Pool
    from calculations import doComplexCalculation

    with Pool(2) as pool:
        print(pool.map(doComplexCalculation, [25, 42, 69]))

With mprocd the pool is a program pool that mprocd keeps running (see
README.md); the workers import calculations themselves, and
doComplexCalculation is sent by name.

    python3 examples/pool_map.py [-p POOL]      # prints [34, 51, 78]
"""

import argparse

import mprocd
from calculations import doComplexCalculation


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--pool", default="calc",
                    help="the program pool (default: %(default)s)")
    args = ap.parse_args()
    # The socket: $MPROCD_SOCKET, else mprocctl's default.
    with mprocd.Pool(args.pool) as pool:
        print(pool.map(doComplexCalculation, [25, 42, 69]))


if __name__ == "__main__":
    main()
