"""mprocd's Python side: supervised worker pools that run jobs.

The client: ``mprocd.Client()`` talks to mprocd's control socket as
mprocctl does (``run``, ``start``, ``submit``, ``wait``, ``get``,
``follow``, ``cancel``, ``list``, ``status``, ``reload``; see
mprocd.client). ``mprocd.Pool("calc")`` makes
multiprocessing.Pool's calls (``apply``, ``apply_async``, ``map``, ``imap``,
``imap_unordered``, ``starmap``...) into a program pool (see mprocd.pool).
The program side of a program pool: run ``python3 -m mprocd.worker
MODULE...`` as a pool's program, or call ``mprocd.worker.serve({"name":
func})`` from a script, and mprocd hands the program one call after
another (DESIGN.md sections 11 and 13).
"""

__version__ = "0.1.0"

from mprocd.client import (Client, CompletedJob, Error,  # noqa: E402
                           Following, JobError)
from mprocd.pool import AsyncResult, Pool, TimeoutError  # noqa: E402

__all__ = ["AsyncResult", "Client", "CompletedJob", "Error", "Following",
           "JobError", "Pool", "TimeoutError"]
