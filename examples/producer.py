#!/usr/bin/env python3
"""The producer of a producer/consumer pair whose queue is mprocd's: it
submits one job per item and prints each job's id and its item, one job
a line, then exits; the jobs go on without it. consumer.py reads the ids
and collects the results, now or later, from another process.

    python3 examples/producer.py [-p POOL] 5 | python3 examples/consumer.py
"""

import argparse

import mprocd
from calculations import slow_square


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--pool", default="calc",
                    help="the program pool (default: %(default)s)")
    ap.add_argument("count", type=int, help="how many items to produce")
    args = ap.parse_args()
    with mprocd.Pool(args.pool) as pool:
        for item in range(args.count):
            r = pool.apply_async(slow_square, (item,))
            print(r.id, item, flush=True)
    # Leaving the block closes the Pool: its jobs stay queued in mprocd.


if __name__ == "__main__":
    main()
