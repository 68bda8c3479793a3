"""A function that says which worker ran it, served by the pool "names"
(examples/mprocd.conf):

    [pool names]
    workers = 3
    program = python3 -m mprocd.worker names
"""

import os
import time

from mprocd.worker import current_worker


def report(x):
    """As multiprocessing's current_process().name: the worker's name,
    "POOL/N", also in $MPROCD_WORKER."""
    time.sleep(0.2)
    # What the function prints is the job's output.
    print("%s got %r" % (current_worker(), x))
    return {"item": x, "worker": current_worker(),
            "env": os.environ["MPROCD_WORKER"], "pid": os.getpid()}
