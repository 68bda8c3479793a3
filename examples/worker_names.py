#!/usr/bin/env python3
"""Workers that report their names, as multiprocessing's

    def report(x):
        print(current_process().name, "got", x)

    with Pool(3) as pool:
        pool.map(report, range(6))

prints ForkPoolWorker-1 and so on. mprocd's workers are named POOL/N:
mprocd.worker.current_worker() in the function, or $MPROCD_WORKER.

    python3 examples/worker_names.py [-p POOL]
"""

import argparse

import mprocd
from names import report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--pool", default="names",
                    help="the program pool (default: %(default)s)")
    args = ap.parse_args()
    with mprocd.Pool(args.pool) as pool:
        # Results come back in order, each as soon as it is ready.
        for r in pool.imap(report, range(6)):
            print("%s got %d (pid %d)" % (r["worker"], r["item"], r["pid"]))
        workers = sorted({r["worker"] for r in pool.map(report, range(6))})
        print("workers:", " ".join(workers))
        # What the function printed is its job's stdout.
        r = pool.apply_async(report, ("hello",))
        r.get(timeout=30)
        print("job %d printed: %s" % (r.id, r.completed.stdout.decode()
                                      .strip()))


if __name__ == "__main__":
    main()
