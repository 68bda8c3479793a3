#!/usr/bin/env python3
"""bench-calls: one contender of bench.py's "calls" section, one round.

    bench-calls.py map mprocd|multiprocessing|celery N
        N calls of double(i), i in 0..N-1, through that pool's map on 2
        workers; checks every result; prints the seconds the map took
    bench-calls.py apply mprocd|multiprocessing N
        N calls of double(i), each one Pool.apply round trip; checks each;
        prints each call's µs, one a line

Only the calls are timed: the pool is made, and warmed with a few calls,
before. mprocd: mprocd.Pool("calc") on $MPROCD_SOCKET, a program pool of
2 workers running `python3 -m mprocd.worker benchcalls`. multiprocessing:
Pool(2), map with chunksize=1 (one call a message, as mprocd sends them).
celery: benchcelery's app (Redis at $BENCH_REDIS, a prefork worker -c 2
started by bench.py), a group of N double.s(i), its results in order.
"""

import sys
import time

from benchcalls import double

WARM = 10


def check(got, items):
    got, want = list(got), [double(i) for i in items]
    if got != want:
        bad = next(k for k, (g, w) in enumerate(zip(got, want)) if g != w) \
            if len(got) == len(want) else None
        sys.exit("bench-calls: wrong results: %s" % (
            "%d results for %d calls" % (len(got), len(want)) if bad is None
            else "call %d gave %r, not %r" % (bad, got[bad], want[bad])))


def map_mprocd(items):
    import mprocd
    with mprocd.Pool("calc") as pool:
        check(pool.map("double", range(WARM)), range(WARM))
        t0 = time.perf_counter()
        got = pool.map("double", items)
        secs = time.perf_counter() - t0
    check(got, items)
    return secs


def map_multiprocessing(items):
    import multiprocessing
    with multiprocessing.Pool(2) as pool:
        check(pool.map(double, range(WARM), chunksize=1), range(WARM))
        t0 = time.perf_counter()
        got = pool.map(double, items, chunksize=1)
        secs = time.perf_counter() - t0
    check(got, items)
    return secs


def map_celery(items):
    from celery import group
    from benchcelery import double as task
    # The first call waits for the worker, however long it takes to start.
    check([task.delay(i).get(timeout=60) for i in range(WARM)],
          range(WARM))
    t0 = time.perf_counter()
    got = group(task.s(i) for i in items).apply_async().get(timeout=3600)
    secs = time.perf_counter() - t0
    check(got, items)
    return secs


def apply_mprocd(items):
    import mprocd
    out = []
    with mprocd.Pool("calc") as pool:
        check([pool.apply("double", (i,)) for i in range(WARM)], range(WARM))
        for i in items:
            t0 = time.perf_counter()
            r = pool.apply("double", (i,))
            out.append((time.perf_counter() - t0) * 1e6)
            check([r], [i])
    return out


def apply_multiprocessing(items):
    import multiprocessing
    out = []
    with multiprocessing.Pool(2) as pool:
        check([pool.apply(double, (i,)) for i in range(WARM)], range(WARM))
        for i in items:
            t0 = time.perf_counter()
            r = pool.apply(double, (i,))
            out.append((time.perf_counter() - t0) * 1e6)
            check([r], [i])
    return out


def main():
    what = " ".join(sys.argv[1:3])
    fn = {"map mprocd": map_mprocd, "map multiprocessing": map_multiprocessing,
          "map celery": map_celery, "apply mprocd": apply_mprocd,
          "apply multiprocessing": apply_multiprocessing}.get(what)
    if fn is None or len(sys.argv) != 4 or not sys.argv[3].isdigit():
        sys.exit(__doc__.split("\n\n")[1])
    items = list(range(int(sys.argv[3])))
    r = fn(items)
    if isinstance(r, list):
        print("\n".join("%.1f" % x for x in r))
    else:
        print("%.6f" % r)


if __name__ == "__main__":
    main()
