#!/usr/bin/env python3
"""The consumer of producer.py's jobs: reads job ids (from its arguments,
else from stdin as they come, one a line, "ID [ITEM]"), waits for each job
and prints its result.

    python3 examples/producer.py 5 | python3 examples/consumer.py
    python3 examples/consumer.py 12 13 14
"""

import argparse
import sys

import mprocd


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="*", type=int,
                    help="job ids (default: read from stdin)")
    args = ap.parse_args()
    if args.ids:
        jobs = ((i, None) for i in args.ids)
    else:
        jobs = ((int(line.split()[0]), " ".join(line.split()[1:]) or None)
                for line in sys.stdin if line.strip())
    failed = 0
    with mprocd.Client() as c:
        for job_id, item in jobs:
            c.wait([job_id])
            r = c.get(job_id)
            what = "%s(%s)" % (r.args[0], item if item is not None else "")
            if r.state == "succeeded":
                print("job %d: %s = %s" % (job_id, what, r.result))
            else:
                failed += 1
                print("job %d: %s" % (job_id, mprocd.JobError(r)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
