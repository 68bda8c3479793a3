"""Functions that tests/python/test_pool.py has a program pool serve
(python3 -m mprocd.worker calc_functions)."""

import os
import sys
import time

import mprocd.worker


def double(x):
    return 2 * x


def add(a, b):
    return a + b


def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


def sleep_then(pair):
    """Sleeps pair[0] seconds, then returns pair[1]."""
    seconds, value = pair
    time.sleep(seconds)
    return value


def nap(seconds, value=None):
    time.sleep(seconds)
    return value


def fail(message):
    raise ValueError(message)


def fail_if(x, bad):
    if x == bad:
        raise KeyError("item %r" % (x,))
    return x


def shout(text):
    print("out: " + text)
    print("err: " + text, file=sys.stderr)
    return text.upper()


def tag(x, seconds=0):
    """x, and where it ran: the job and the process."""
    if seconds:
        time.sleep(seconds)
    return [x, int(os.environ["MPROCD_JOB_ID"]), os.getpid()]


def whoami():
    return {"worker": mprocd.worker.current_worker(), "pid": os.getpid(),
            "env": os.environ.get("MPROCD_WORKER")}


def small(x):
    """x, if it is less than 3."""
    if x >= 3:
        raise OverflowError("%d is too big" % x)
    return x
