"""Functions the program-pool tests call, served by
``python3 -m mprocd.worker progfuncs`` (tests/integration/test_program.py)."""

import os
import subprocess
import sys
import threading
import time

_hoard = []


def double(n):
    return 2 * n


def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


def talk(out, err):
    print(out, end="")
    print(err, end="", file=sys.stderr)
    return "said"


def whoami():
    return {"pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
            "worker": os.environ.get("MPROCD_WORKER"),
            "pool": os.environ.get("MPROCD_POOL"),
            "job": os.environ.get("MPROCD_JOB_ID"),
            "listen_pid": os.environ.get("LISTEN_PID")}


def boom(message):
    raise ValueError(message)


def die(code):
    os._exit(code)


def die_once(marker, code):
    """Exits mid-call the first time (marker is created), answers after."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(code)
    return "second time"


def hang_with_child(pidfile):
    """Forks a grandchild that holds stdout, writes both pids, hangs."""
    child = subprocess.Popen(["sleep", "1000"], stdout=sys.stdout.fileno())
    with open(pidfile, "w") as f:
        f.write("%d %d\n" % (os.getpid(), child.pid))
    while True:
        time.sleep(1)


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def hoard(megabytes):
    """Keeps megabytes of memory, touched, until the program ends."""
    _hoard.append(bytearray(b"x" * (megabytes << 20)))
    return sum(len(b) for b in _hoard) >> 20


def shout(megabytes):
    chunk = "y" * 65535 + "\n"
    for _ in range(megabytes * 16):
        sys.stdout.write(chunk)
    return megabytes


def big_result(kilobytes):
    return "z" * (kilobytes << 10)


def exit_soon(seconds):
    """Answers, then the program exits (between calls)."""
    threading.Timer(seconds, os._exit, (7,)).start()
    return "bye"


def nap(ms, tag):
    """Sleeps ms milliseconds (a string, as argv gives it), prints tag."""
    time.sleep(int(ms) / 1000)
    print(tag)
    return tag


def nothing(*args):
    """Returns None: a call with no result."""


def nap_say(seconds, text):
    """Sleeps, then says text on stdout and on stderr; answers both."""
    time.sleep(seconds)
    print(text)
    print("e" + text, file=sys.stderr)
    return [seconds, text]


def chatter(lines, ms):
    """Prints lines lines, one every ms milliseconds, on stdout and stderr
    in turn, each with the time it was written; answers how many."""
    for i in range(lines):
        stream = sys.stdout if i % 2 == 0 else sys.stderr
        print("%d %.6f" % (i, time.time()), file=stream, flush=True)
        time.sleep(ms / 1000)
    return lines
