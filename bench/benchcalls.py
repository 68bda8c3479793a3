"""The function bench.py's "calls" section calls: double(n) = 2 * n.

Served to mprocd by `python3 -m mprocd.worker benchcalls` (a program pool),
to multiprocessing by bench-calls.py, and to Celery by benchcelery.py: the
same function for every contender.
"""

__all__ = ["double"]


def double(n):
    return 2 * n
