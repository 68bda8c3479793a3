"""multiprocessing.Pool's calls, run by a program pool of mprocd (DESIGN.md
section 13).

    import mprocd

    # A pool "calc" whose program is: python3 -m mprocd.worker mymodule
    with mprocd.Pool("calc") as pool:
        pool.apply("double", (21,))                      # -> 42
        pool.apply_async("double", (21,)).get(timeout=5) # -> 42
        pool.map("double", [5, 10, 20])                  # -> [10, 20, 40]
        pool.imap("double", items)                       # in order, as ready
        pool.imap_unordered("double", items)             # as they finish
        pool.starmap("add", [(1, 2), (3, 4)])            # -> [3, 7]

Each call is one job of the pool: Submit with argv [NAME] and input
{"args": [...], "kwargs": {...}}; the worker calls the function NAME with
them, and its return value comes back as the job's result. Arguments and
results travel as JSON, so tuples come back as lists. A function is given
by name, or as a function object whose __name__ is used: it is the
program's copy that runs, never the caller's.

A call that fails (the function raised, the job timed out, was cancelled
or lost) raises mprocd.JobError with the job, its stderr (the traceback) and
its result ({"error": TYPE, "message": TEXT} for an exception); an error of
mprocd's raises mprocd.Error.

map, starmap, imap and imap_unordered pipeline their calls on connections
of their own, jobs submitted a few hundred ahead of the results being read,
so that the pool's workers never wait for the client and memory stays
bounded however long the input: map waits for a batch of jobs at a time
while the next batch is queued (the fewest calls), imap reads each result
as soon as its job and those before it have ended, imap_unordered as soon
as any job has ended.
"""

import collections
import itertools
import json
import multiprocessing
import numbers
import os
import select
import socket as _socket
import sys
import threading
import time
import traceback
import weakref

from mprocd import varlink
from mprocd.client import (READ_SIZE, Client, CompletedJob, Error,
                           default_socket)

# How many calls imap has submitted ahead of the result it is reading:
# enough to keep a pool's workers busy between two reads, few enough to
# bound memory (and mprocd's queue) for a long input.
WINDOW = 256
# map waits for its calls a batch of this many at a time, with the next
# batch queued behind.
MAP_BATCH = 256
MAP_AHEAD = 2
# How long a pipelined run that stopped early goes on reading the replies
# to its Submits, to learn the ids of the jobs they queued.
SETTLE = 2.0
# imap_unordered submits batches of this many calls and waits for each
# batch on a connection of its own, at most UNORDERED_BATCHES at a time.
UNORDERED_BATCH = 128
UNORDERED_BATCHES = 3
# Connections on which the callbacks of apply_async wait, at most.
FOLLOW_WAITS = 4
# Jobs named in one Wait or one pipelined run of Cancel calls.
CHUNK = 500

FINISHED = frozenset(("succeeded", "failed", "timeout", "cancelled", "lost"))

_RUN, _CLOSE, _TERMINATE = "running", "closed", "terminated"


class TimeoutError(Error, multiprocessing.TimeoutError):
    """AsyncResult.get(timeout) returned before the call ended. Also a
    multiprocessing.TimeoutError, for code written against
    multiprocessing."""


def _function_name(func):
    """The name a program serves func under: func itself if a string,
    else its __name__."""
    if isinstance(func, str):
        name = func
    else:
        name = getattr(func, "__name__", None)
        if not isinstance(name, str):
            raise TypeError("func: a function's name or a function, not %s"
                            % type(func).__name__)
        if name == "<lambda>":
            raise ValueError("a lambda has no name a program can serve: "
                             "define the function in the pool's module "
                             "and give its name")
    if not name:
        raise ValueError("func: the name of a function, not empty")
    return name


def _chunksize(chunksize):
    if chunksize is not None:
        if not isinstance(chunksize, numbers.Integral) or \
                isinstance(chunksize, bool):
            raise TypeError("chunksize: an integer, not %s"
                            % type(chunksize).__name__)
        if chunksize < 1:
            raise ValueError("chunksize must be 1 or more")


class Pool:
    """Calls into the program pool of mprocd named pool (default: mprocd's
    pool "default"), as multiprocessing.Pool makes them; a program pool
    whose program is "python3 -m mprocd.worker MODULE" serves MODULE's
    functions.

    socket: mprocd's socket, default as Client's ($MPROCD_SOCKET, else
    mprocctl's default). timeout: seconds after which mprocd kills a call's
    job (it then raises JobError, state "timeout"); default the pool's
    job_timeout. retries: how many times a call whose worker died is run
    again; default the pool's retries.

    The workers are mprocd's, shared with every other client of the pool:
    a Pool holds only connections and the ids of the jobs it submitted.
    Connects at once, so that a wrong socket or a stopped mprocd shows
    here. A Pool may be used from several threads (each has its own
    connection); it may not cross a fork. Use it as a context manager, or
    close() and join(), or terminate()."""

    def __init__(self, pool=None, socket=None, timeout=None, retries=None):
        if pool is not None and not isinstance(pool, str):
            raise TypeError("pool: the name of one of mprocd's pools, not "
                            "%s (mprocd's pools are sized in "
                            "mprocd.conf)" % type(pool).__name__)
        self.pool = pool
        self.socket = os.fspath(socket) if socket is not None \
            else default_socket()
        self._extra = {}
        if timeout is not None:
            if not isinstance(timeout, numbers.Real) or \
                    isinstance(timeout, bool):
                raise TypeError("timeout: seconds, not %s"
                                % type(timeout).__name__)
            self._extra["timeout_sec"] = float(timeout)
        if retries is not None:
            if not isinstance(retries, numbers.Integral) or \
                    isinstance(retries, bool):
                raise TypeError("retries: an integer, not %s"
                                % type(retries).__name__)
            self._extra["retries"] = int(retries)
        self._state = _RUN
        self._lock = threading.Lock()
        self._local = threading.local()
        # Client -> the thread it belongs to, for close() and terminate();
        # weak, so that a thread's Client goes (and closes) with the thread.
        self._clients = weakref.WeakKeyDictionary()
        # Jobs submitted whose result nobody has read yet.
        self._outstanding = set()
        # Threads of map_async and of callbacks, for join().
        self._threads = []
        self._follower = None
        self._client()

    def __repr__(self):
        return "<mprocd.Pool pool=%r socket=%r state=%s>" % (
            self.pool, self.socket, self._state)

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, exc_type, exc, tb):
        """Leaving the block normally close()s the Pool: its jobs go on,
        and results not yet read can still be read (AsyncResult.get()).
        Leaving it by an exception terminate()s it: its unfinished jobs are
        cancelled."""
        if exc_type is None:
            self.close()
            self._release(everyone=False)
        else:
            self.terminate()

    # Connections.

    def _client(self):
        """This thread's Client, connected on first use."""
        c = getattr(self._local, "client", None)
        if c is None or c._closed:
            c = Client(self.socket)
            self._local.client = c
            with self._lock:
                self._clients[c] = threading.get_ident()
        return c

    def _release(self, everyone=True):
        """Closes the Pool's connections: this thread's at once; with
        everyone, other threads' too, shut down so that a call one of them
        is in fails rather than hangs, and closed by that thread."""
        me = threading.get_ident()
        with self._lock:
            mine = getattr(self._local, "client", None)
            clients = [(c, o) for c, o in list(self._clients.items())
                       if everyone or c is mine]
            for c, _ in clients:
                del self._clients[c]
        for c, owner in clients:
            if owner == me:
                c.close()
                continue
            c._closed = True
            sock = c._sock
            if sock is not None:
                try:
                    sock.shutdown(_socket.SHUT_RDWR)
                except OSError:
                    pass
        if everyone:
            self._local = threading.local()
        else:
            self._local.client = None

    class _Temporary:
        """A Client for one call once the Pool is no longer running."""

        def __init__(self, pool):
            self.pool = pool
            self.client = None

        def __enter__(self):
            if self.pool._state == _RUN:
                return self.pool._client()
            self.client = Client(self.pool.socket)
            return self.client

        def __exit__(self, *exc):
            if self.client is not None:
                self.client.close()

    # Bookkeeping.

    def _check_running(self):
        if self._state != _RUN:
            raise ValueError("Pool not running (it is %s)" % self._state)

    def _track(self, ids):
        """Notes jobs submitted; False if the Pool was terminated meanwhile
        (the caller then cancels them)."""
        with self._lock:
            if self._state == _TERMINATE:
                return False
            self._outstanding.update(ids)
            return True

    def _untrack(self, job_id):
        with self._lock:
            self._outstanding.discard(job_id)

    def _params(self, name, args, kwds):
        """Submit's parameters for name(*args, **kwds)."""
        if isinstance(args, (str, bytes)) or not hasattr(args, "__iter__"):
            raise TypeError("args: a sequence of arguments, not %s"
                            % type(args).__name__)
        if kwds is None:
            kwds = {}
        if not hasattr(kwds, "keys"):
            raise TypeError("kwds: a mapping of keyword arguments, not %s"
                            % type(kwds).__name__)
        kwargs = dict(kwds)
        for k in kwargs:
            if not isinstance(k, str):
                raise TypeError("kwds: keyword names are strings, not %r"
                                % (k,))
        params = {"argv": [name],
                  "input": {"args": list(args), "kwargs": kwargs},
                  "cwd": os.getcwd()}
        if self.pool is not None:
            params["pool"] = self.pool
        params.update(self._extra)
        return params

    def _submit_encoder(self, name):
        """A function of args that encodes the Submit of name(*args): the
        parts of the call that do not change are encoded once."""
        params = self._params(name, (), {})
        del params["input"]
        head = varlink.encode(varlink.call("io.mprocd.Submit", params))
        prefix = head[:-3] + b',"input":{"args":'
        suffix = b',"kwargs":{}}}}\0'

        def encode(args):
            if isinstance(args, (str, bytes)) or \
                    not hasattr(args, "__iter__"):
                raise TypeError("starmap: each item is a sequence of "
                                "arguments, not %s" % type(args).__name__)
            args = list(args)
            try:
                text = json.dumps(args, separators=(",", ":"),
                                  ensure_ascii=False, allow_nan=False)
            except RecursionError:
                raise ValueError("nested too deeply") from None
            varlink.check(args)
            return prefix + text.encode("utf-8") + suffix

        return encode

    def _cancel(self, ids):
        """Cancels jobs, pipelined; jobs already gone are skipped."""
        ids = list(ids)
        if not ids:
            return
        with Client(self.socket) as c:
            for i in range(0, len(ids), CHUNK):
                c._calls([("io.mprocd.Cancel", {"id": j})
                          for j in ids[i:i + CHUNK]])

    @staticmethod
    def _answer(reply):
        """A reply's parameters; Error for an error reply."""
        if reply.error is not None:
            raise _error(reply)
        return reply.parameters

    # One call.

    def apply(self, func, args=(), kwds={}):
        """func(*args, **kwds) run by one of the pool's workers: its
        return value, once it has ended (one io.mprocd.Run call). Raises
        JobError if the call failed."""
        self._check_running()
        params = self._params(_function_name(func), args, kwds)
        reply = self._client()._calls([("io.mprocd.Run", params)])[0]
        cj = CompletedJob(self._answer(reply), "io.mprocd.Run")
        cj.check_returncode()
        return cj.result

    def apply_async(self, func, args=(), kwds={}, callback=None,
                    error_callback=None):
        """Submits func(*args, **kwds) and returns at once, with an
        AsyncResult for its result. callback(result) is called when it
        succeeds, error_callback(exception) when it fails, from a thread
        of the Pool's."""
        self._check_running()
        params = self._params(_function_name(func), args, kwds)
        reply = self._client()._calls([("io.mprocd.Submit", params)])[0]
        job_id = self._answer(reply).get("id")
        if not isinstance(job_id, int):
            raise Error("mprocd's reply to io.mprocd.Submit has no id")
        if not self._track([job_id]):
            self._cancel([job_id])
            raise ValueError("Pool not running (it was terminated)")
        result = AsyncResult(self, job_id)
        if callback is not None or error_callback is not None:
            with self._lock:
                if self._follower is None:
                    self._follower = _Follower(self)
            self._follower.follow(result, callback, error_callback)
        return result

    # Many calls.

    def map(self, func, iterable, chunksize=None):
        """[func(x) for x in iterable], each call a job run by the pool's
        workers, the results in the order of iterable. Raises JobError for
        the first call (in that order) that failed; the calls after it are
        not submitted. chunksize: accepted for multiprocessing's sake;
        every item is one job."""
        _chunksize(chunksize)
        self._check_running()
        name = _function_name(func)
        return list(self._batched(name, ((x,) for x in iterable)))

    def starmap(self, func, iterable, chunksize=None):
        """[func(*args) for args in iterable], as map()."""
        _chunksize(chunksize)
        self._check_running()
        name = _function_name(func)
        return list(self._batched(name, iterable))

    def imap(self, func, iterable, chunksize=1):
        """An iterator over func(x) for x in iterable, in the order of
        iterable, each yielded as soon as its job and those before it
        have ended. Jobs are submitted as the iterator is read, at most
        WINDOW ahead of it. Raises JobError, when its turn comes, for a
        call that failed, and the iterator ends."""
        _chunksize(chunksize)
        self._check_running()
        return self._ordered(_function_name(func), ((x,) for x in iterable))

    def imap_unordered(self, func, iterable, chunksize=1):
        """As imap(), but each result is yielded as soon as its own job has
        ended, in whatever order they end."""
        _chunksize(chunksize)
        self._check_running()
        return self._unordered(_function_name(func),
                               ((x,) for x in iterable))

    def map_async(self, func, iterable, chunksize=None, callback=None,
                  error_callback=None):
        """map() in a thread of the Pool's: returns at once, with an
        AsyncResult whose get() is map's list. callback(list) or
        error_callback(exception) is called when it ends."""
        _chunksize(chunksize)
        self._check_running()
        name = _function_name(func)
        items = list(iterable)
        return self._in_thread(lambda: list(self._batched(
            name, ((x,) for x in items))), callback, error_callback)

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        """starmap() in a thread of the Pool's, as map_async()."""
        _chunksize(chunksize)
        self._check_running()
        name = _function_name(func)
        items = list(iterable)
        return self._in_thread(lambda: list(self._batched(name, items)),
                               callback, error_callback)

    def _in_thread(self, work, callback, error_callback):
        result = _ThreadResult()

        def run():
            try:
                value = work()
            except BaseException as e:  # noqa: B902 -- handed to get()
                result._set(False, e)
                if error_callback is not None:
                    error_callback(e)
            else:
                result._set(True, value)
                if callback is not None:
                    callback(value)
            finally:
                result._event.set()

        self._start_thread(run, "mprocd.Pool map_async")
        return result

    def _start_thread(self, target, name):
        t = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _send_submits(self, stream, it, count, encode):
        """Sends the Submits of up to count more items of it on stream
        (unless the pool is being terminated); returns how many."""
        n = 0
        for args in itertools.islice(it, count):
            if self._state == _TERMINATE:
                raise _terminated()
            stream.send_raw(encode(args), "io.mprocd.Submit", "submit")
            n += 1
        return n

    def _submitted(self, reply):
        """The id of the job a Submit's reply gives, noted as the Pool's;
        if the Pool was terminated meanwhile, the job is cancelled and
        Error raised."""
        job_id = _job_id(reply)
        if not self._track([job_id]):
            self._cancel([job_id])
            raise _terminated()
        return job_id

    def _settle(self, mux, stream):
        """After a pipelined run stopped early (an error, an iterator left
        unfinished, terminate()): reads the replies to the Submits still
        unanswered on stream, for at most SETTLE seconds, so that their
        jobs are the Pool's (join() waits for them, terminate() cancels
        them), or cancelled if the Pool was terminated."""
        left = sum(1 for _, tag, _ in stream.pending if tag == "submit") + \
            sum(1 for st, tag, _ in mux.ready
                if st is stream and tag == "submit")
        ids = []
        deadline = time.monotonic() + SETTLE
        try:
            while left:
                got = mux.next(deadline)
                if got is None:
                    break
                st, tag, reply = got
                if st is stream and tag == "submit":
                    left -= 1
                    job_id = reply.parameters.get("id")
                    if reply.error is None and isinstance(job_id, int):
                        ids.append(job_id)
        except Error:
            pass
        if ids and not self._track(ids):
            try:
                self._cancel(ids)
            except Error:
                pass

    def _ordered(self, name, arglists):
        """A generator of the results of name(*args) for args in arglists,
        in order, each as soon as its job and those before it have ended
        (for imap). Two connections: one for Submits, never held back;
        on the other, for each job once its id is known, Wait([id]) and
        Get(id), which mprocd answers in order once the job has ended.
        The Submit of the job WINDOW later goes when a result is read,
        so that WINDOW jobs are always queued or running."""
        encode = self._submit_encoder(name)
        it = iter(arglists)
        mux = _Mux()
        try:
            sub = mux.add(Client(self.socket))
            get = mux.add(Client(self.socket))
        except BaseException:
            mux.close()
            raise
        ids = collections.deque()       # of the jobs submitted, in order

        def submit():
            self._send_submits(sub, it, 1, encode)

        try:
            for _ in range(WINDOW):
                submit()
            while sub.pending or get.pending or mux.ready:
                _, tag, reply = mux.next()
                if self._state == _TERMINATE:
                    raise _terminated()
                if tag == "submit":
                    job_id = self._submitted(reply)
                    ids.append(job_id)
                    get.send_raw(_WAIT_ONE % (job_id, job_id),
                                 "io.mprocd.Wait", "wait")
                    get.pending.append(("io.mprocd.Get", "get", False))
                elif tag == "wait":
                    self._answer(reply)
                else:
                    job_id = ids.popleft()
                    cj = CompletedJob(self._answer(reply))
                    self._untrack(job_id)
                    submit()
                    cj.check_returncode()
                    yield cj.result
        finally:
            self._settle(mux, sub)
            mux.close()

    def _batched(self, name, arglists):
        """A generator of the results of name(*args) for args in arglists,
        in order, a batch at a time: fewer calls than _ordered(), for map.
        Two connections: one for the Submits of a batch of MAP_BATCH jobs;
        on the other, once they are answered, Wait(the batch) and its
        Gets, answered once the batch has ended. The next batch is
        submitted at once, and the one after it once a batch has been
        read, so that a batch is always queued behind the one running."""
        encode = self._submit_encoder(name)
        it = iter(arglists)
        mux = _Mux()
        try:
            sub = mux.add(Client(self.socket))
            get = mux.add(Client(self.socket))
        except BaseException:
            mux.close()
            raise
        batch = []                      # ids of the batch being submitted
        expected = 0                    # Submits of that batch unanswered
        waited = collections.deque()    # ids whose Gets are sent, in order
        sizes = collections.deque()     # how many of each batch are unread
        out = 0                         # batches submitted and not read

        def submit_batch():
            nonlocal expected, out
            n = self._send_submits(sub, it, MAP_BATCH, encode)
            if n:
                expected = n
                out += 1

        try:
            submit_batch()
            while sub.pending or get.pending or mux.ready:
                _, tag, reply = mux.next()
                if self._state == _TERMINATE:
                    raise _terminated()
                if tag == "submit":
                    batch.append(self._submitted(reply))
                    expected -= 1
                    if expected == 0:
                        get.send_raw(_WAIT % b",".join(b"%d" % i
                                                       for i in batch),
                                     "io.mprocd.Wait", "wait")
                        for job_id in batch:
                            get.send_raw(_GET % job_id, "io.mprocd.Get",
                                         "get")
                        waited.extend(batch)
                        sizes.append(len(batch))
                        batch = []
                        if out < MAP_AHEAD:
                            submit_batch()
                elif tag == "wait":
                    self._answer(reply)
                else:
                    job_id = waited.popleft()
                    cj = CompletedJob(self._answer(reply))
                    self._untrack(job_id)
                    sizes[0] -= 1
                    if sizes[0] == 0:
                        sizes.popleft()
                        out -= 1
                        if expected == 0:
                            submit_batch()
                    cj.check_returncode()
                    yield cj.result
        finally:
            self._settle(mux, sub)
            mux.close()

    def _unordered(self, name, arglists):
        """A generator of the results of name(*args) for args in arglists,
        as their jobs end (for imap_unordered). Submits and Gets go on one
        connection, which is never held back; each batch of UNORDERED_BATCH
        jobs is waited for with Wait(ids, more) on a connection of its own,
        which answers as each job ends; at most UNORDERED_BATCHES batches
        at a time."""
        encode = self._submit_encoder(name)
        it = iter(arglists)
        mux = _Mux()
        try:
            main = mux.add(Client(self.socket))
        except BaseException:
            mux.close()
            raise
        idle = []                      # wait streams not waiting
        batch = []                     # ids of the batch being submitted
        expected = 0                   # Submit replies the batch lacks
        batches = 0                    # batches submitted or waited for

        def submit_batch():
            nonlocal expected, batches
            n = self._send_submits(main, it, UNORDERED_BATCH, encode)
            if n:
                expected = n
                batches += 1

        def wait_stream():
            if idle:
                return idle.pop()
            return mux.add(Client(self.socket))

        try:
            submit_batch()
            while main.pending or batches or mux.ready:
                stream, tag, reply = mux.next()
                if self._state == _TERMINATE:
                    raise _terminated()
                if tag == "submit":
                    batch.append(self._submitted(reply))
                    expected -= 1
                    if expected == 0:
                        w = wait_stream()
                        w.send("io.mprocd.Wait", {"ids": batch}, "wait",
                               more=True)
                        batch = []
                        if batches < UNORDERED_BATCHES:
                            submit_batch()
                elif tag == "wait":
                    for job in self._answer(reply).get("jobs", []):
                        main.send_raw(_GET % job["id"], "io.mprocd.Get",
                                      "get")
                    if not reply.continues:
                        idle.append(stream)
                        batches -= 1
                        if expected == 0:
                            submit_batch()
                else:
                    cj = CompletedJob(self._answer(reply))
                    self._untrack(cj.id)
                    cj.check_returncode()
                    yield cj.result
        finally:
            self._settle(mux, main)
            mux.close()

    # The end.

    def close(self):
        """No more calls may be made; the jobs already submitted go on
        (join() waits for them)."""
        with self._lock:
            if self._state == _RUN:
                self._state = _CLOSE

    def terminate(self):
        """No more calls may be made, and the Pool's jobs that have not
        ended are cancelled (removed from the queue, or killed): reading
        their results raises JobError, state "cancelled". Results already
        read are kept."""
        with self._lock:
            self._state = _TERMINATE
            ids = sorted(self._outstanding)
            self._outstanding.clear()
        try:
            self._cancel(ids)
        finally:
            self._release()

    def join(self):
        """After close() or terminate(): waits until every job the Pool
        submitted has ended, and closes its connections."""
        if self._state == _RUN:
            raise ValueError("Pool is still running: close() or "
                             "terminate() it first")
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            if t is not threading.current_thread():
                t.join()
        with self._lock:
            ids = sorted(self._outstanding)
        with Client(self.socket) as c:
            while ids:
                chunk, ids = ids[:CHUNK], ids[CHUNK:]
                try:
                    c.wait(chunk)
                except Error as e:
                    gone = e.parameters.get("id")
                    if e.name != "io.mprocd.NoSuchJob" or gone not in chunk:
                        raise
                    chunk.remove(gone)
                    ids = chunk + ids
        self._release()
        follower, self._follower = self._follower, None
        if follower is not None and not follower.running:
            os.close(follower.wake_r)
            os.close(follower.wake_w)


class AsyncResult:
    """The result of apply_async(), as multiprocessing's AsyncResult.
    id: the job's id in mprocd."""

    def __init__(self, pool, job_id):
        self._pool = pool
        self.id = job_id
        self._completed = None
        # With callbacks: set by the Pool's follower once they are called;
        # _failure is what stopped it from reading the job, if anything.
        self._event = None
        self._failure = None

    def __repr__(self):
        state = self._completed.state if self._completed else "not ready"
        return "<mprocd.AsyncResult job %d %s>" % (self.id, state)

    def _finish(self, cj):
        if self._completed is None:
            self._completed = cj
            self._pool._untrack(self.id)

    def _fetch(self, timeout):
        """Reads the job once it has ended, waiting up to timeout
        seconds (None: for ever): a Wait and a Get, pipelined."""
        if self._completed is not None:
            return
        wait = {"ids": [self.id]}
        if timeout is not None:
            wait["timeout_sec"] = max(0.0, float(timeout))
        with Pool._Temporary(self._pool) as c:
            w, g = c._calls([("io.mprocd.Wait", wait),
                             ("io.mprocd.Get", {"id": self.id})])
        if w.error is not None and w.error != "io.mprocd.TimedOut":
            raise _error(w)
        cj = CompletedJob(Pool._answer(g))
        if cj.state in FINISHED:
            self._finish(cj)

    def _value(self):
        if self._failure is not None:
            raise self._failure
        self._completed.check_returncode()
        return self._completed.result

    def ready(self):
        """Whether the call has ended (asks mprocd, without waiting)."""
        if self._event is not None:
            return self._event.is_set()
        if self._completed is None:
            with Pool._Temporary(self._pool) as c:
                cj = c.get(self.id)
            if cj.state in FINISHED:
                self._finish(cj)
        return self._completed is not None

    def successful(self):
        """Whether the call succeeded; ValueError if it has not ended."""
        if not self.ready():
            raise ValueError("%r not ready" % self)
        return self._completed is not None and \
            self._completed.state == "succeeded"

    def wait(self, timeout=None):
        """Waits until the call has ended, or for timeout seconds."""
        if self._event is not None:
            self._event.wait(timeout)
        else:
            self._fetch(timeout)

    def get(self, timeout=None):
        """The call's return value, once it has ended. Raises TimeoutError
        if it has not ended within timeout seconds, JobError if it
        failed."""
        self.wait(timeout)
        if not (self._event.is_set() if self._event is not None
                else self._completed is not None):
            raise TimeoutError("job %d has not ended after %gs"
                               % (self.id, timeout or 0),
                               "io.mprocd.TimedOut", {"ids": [self.id]})
        return self._value()

    @property
    def completed(self):
        """The job as a CompletedJob once it has ended (its stdout, stderr,
        state...), else None."""
        return self._completed


class _Follower:
    """Reads the jobs of the AsyncResults that have callbacks as they end,
    in one thread of the Pool's, and calls their callbacks. A Wait(ids,
    more) on a connection answers as each job named ends; results added
    later are waited for on another connection (at most FOLLOW_WAITS),
    and Gets go on one more."""

    def __init__(self, pool):
        self.pool = pool
        self.new = []             # (AsyncResult, callback, error_callback)
        self.running = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)

    def follow(self, result, callback, error_callback):
        result._event = threading.Event()
        with self.pool._lock:
            self.new.append((result, callback, error_callback))
            start = not self.running
            self.running = True
        if start:
            self.pool._start_thread(self.run, "mprocd.Pool callbacks")
        else:
            try:
                os.write(self.wake_w, b"x")
            except BlockingIOError:
                pass

    def run(self):
        followed = {}               # id -> (result, callback, err_callback)
        backlog = []
        mux = _Mux(self.wake_r)
        idle = []
        try:
            getter = mux.add(Client(self.pool.socket))
            waits = 0
            while True:
                with self.pool._lock:
                    fresh, self.new = self.new, []
                    if not fresh and not followed and not mux.ready:
                        self.running = False
                        return
                for entry in fresh:
                    followed[entry[0].id] = entry
                    backlog.append(entry[0].id)
                if backlog and (idle or waits < FOLLOW_WAITS):
                    if idle:
                        w = idle.pop()
                    else:
                        w = mux.add(Client(self.pool.socket))
                        waits += 1
                    w.send("io.mprocd.Wait", {"ids": backlog}, "wait",
                           more=True)
                    backlog = []
                stream, tag, reply = mux.next()
                if tag == "wait":
                    for job in Pool._answer(reply).get("jobs", []):
                        getter.send("io.mprocd.Get", {"id": job["id"]},
                                    "get")
                    if not reply.continues:
                        idle.append(stream)
                elif tag == "get":
                    cj = CompletedJob(Pool._answer(reply))
                    result, callback, error_callback = followed.pop(cj.id)
                    result._finish(cj)
                    self.call_back(result, callback, error_callback)
        except BaseException as e:  # noqa: B902 -- each result gets it
            with self.pool._lock:
                fresh, self.new = self.new, []
                self.running = False
            for entry in fresh:
                followed[entry[0].id] = entry
            for result, callback, error_callback in followed.values():
                result._failure = e
                self.call_back(result, callback, error_callback)
            if not isinstance(e, Exception):
                raise
        finally:
            mux.close()

    @staticmethod
    def call_back(result, callback, error_callback):
        """Calls callback or error_callback; one that raises has its
        traceback printed, as an exception in a thread would."""
        try:
            try:
                value = result._value()
            except Exception as e:
                if error_callback is not None:
                    error_callback(e)
            else:
                if callback is not None:
                    callback(value)
        except Exception:
            print("Exception in a callback of mprocd.Pool job %d:"
                  % result.id, file=sys.stderr)
            traceback.print_exc()
        finally:
            result._event.set()


class _ThreadResult:
    """The result of map_async() and starmap_async(): as AsyncResult."""

    def __init__(self):
        self._event = threading.Event()
        self._success = None
        self._value = None

    def __repr__(self):
        return "<mprocd.Pool map result %s>" % (
            "not ready" if not self._event.is_set() else
            "succeeded" if self._success else "failed")

    def _set(self, success, value):
        self._success, self._value = success, value

    def ready(self):
        """Whether every call has ended (or one failed)."""
        return self._event.is_set()

    def successful(self):
        """Whether every call succeeded; ValueError if not ready."""
        if not self.ready():
            raise ValueError("%r not ready" % self)
        return self._success

    def wait(self, timeout=None):
        """Waits until ready, or for timeout seconds."""
        self._event.wait(timeout)

    def get(self, timeout=None):
        """The list of results; TimeoutError if not ready within timeout
        seconds; the first failure's exception (JobError...) if any."""
        if not self._event.wait(timeout):
            raise TimeoutError("map has not ended after %gs" % timeout,
                               "io.mprocd.TimedOut", {})
        if not self._success:
            raise self._value
        return self._value


def _error(reply):
    """The Error for an error reply; a hint where mprocd refuses input."""
    e = Error.from_reply(reply.error, reply.parameters)
    if reply.error == varlink.INVALID_PARAMETER and \
            reply.parameters.get("parameter") == "input":
        e = Error("%s: is the pool a program pool (program = ... in "
                  "mprocd.conf)?" % e, e.name, e.parameters)
    return e


# The calls map and imap make for each job, encoded ahead.
_WAIT_ONE = (b'{"method":"io.mprocd.Wait","parameters":{"ids":[%d]}}\0'
             b'{"method":"io.mprocd.Get","parameters":{"id":%d}}\0')
_GET = b'{"method":"io.mprocd.Get","parameters":{"id":%d}}\0'
_WAIT = b'{"method":"io.mprocd.Wait","parameters":{"ids":[%s]}}\0'


def _decode(frame):
    """A reply as a dict (json.loads, without the duplicate key check of
    varlink.decode, for speed); ProtocolError if it is not one."""
    try:
        msg = json.loads(frame)
    except ValueError as e:
        raise varlink.ProtocolError("message is not valid JSON (%s)"
                                    % e) from None
    if not isinstance(msg, dict):
        raise varlink.ProtocolError("message is not a JSON object")
    return msg


def _decode_all(frames):
    """The replies in frames as dicts: decoded together, as one JSON array
    (one call into the JSON decoder rather than one a reply), or one by one
    to find the one that is not JSON."""
    if len(frames) > 1:
        try:
            msgs = json.loads(b"[" + b",".join(frames) + b"]")
        except ValueError:
            pass
        else:
            if len(msgs) == len(frames) and \
                    all(isinstance(m, dict) for m in msgs):
                return msgs
    return [_decode(frame) for frame in frames]


def _terminated():
    return Error("the Pool was terminated")


def _job_id(reply):
    if reply.error is not None:
        raise _error(reply)
    job_id = reply.parameters.get("id")
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        raise Error("mprocd's reply to io.mprocd.Submit has no id")
    return job_id


class _Stream:
    """Calls pipelined on one Client's connection: send() queues a call,
    _Mux.next() writes what is queued and reads the replies. tag: the
    caller's note, handed back with the reply."""

    def __init__(self, mux, client):
        self.mux = mux
        self.client = client
        self.sock = client._ready_socket()
        self.buf = bytearray()
        self.out = bytearray()
        self.pending = collections.deque()    # (method, tag, more)

    def send(self, method, parameters, tag, more=False):
        self.send_raw(varlink.encode(varlink.call(method, parameters, more)),
                      method, tag, more)

    def send_raw(self, data, method, tag, more=False):
        """Queues a call already encoded."""
        self.out += data
        self.pending.append((method, tag, more))

    def write(self):
        try:
            n = self.sock.send(self.out, _socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        del self.out[:n]

    def read(self):
        try:
            data = self.sock.recv(READ_SIZE, _socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            raise Error("mprocd closed the connection to %s during %s (did "
                        "it stop or restart?)" % (self.client.socket,
                                                  self.method()))
        self.buf += data
        if b"\0" not in data:
            return
        frames = self.buf.split(b"\0")
        self.buf = frames.pop()
        for msg in _decode_all(frames):
            reply = varlink.parse_reply(msg)
            if not self.pending:
                raise varlink.ProtocolError("a reply to no call")
            method, tag, more = self.pending[0]
            if reply.continues and not more:
                raise varlink.ProtocolError('a reply with "continues" to a '
                                            'call without "more"')
            if not reply.continues:
                self.pending.popleft()
            self.mux.ready.append((self, tag, reply))

    def method(self):
        return self.pending[0][0] if self.pending else "a call"

    def clean(self):
        """Whether the connection can carry another call."""
        return not self.pending and not self.out and not self.buf


class _Mux:
    """Pipelined calls on several connections at once, their replies in
    the order they come."""

    def __init__(self, wake=None):
        self.streams = []
        self.ready = collections.deque()    # (stream, tag, reply)
        # A pipe whose reading end, once readable, makes next() return
        # (None, "wake", None).
        self.wake = wake

    def add(self, client):
        s = _Stream(self, client)
        self.streams.append(s)
        return s

    def next(self, deadline=None):
        """The next reply: (stream, tag, varlink.Reply); None if there is
        none by deadline (a time.monotonic() time). Raises Error if a
        connection is lost or a reply makes no sense."""
        while not self.ready:
            timeout = None
            if deadline is not None:
                timeout = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                if not self._io(timeout) and deadline is not None and \
                        time.monotonic() >= deadline:
                    return None
            except OSError as e:
                raise Error("lost the connection to mprocd: %s"
                            % (e.strerror or e)) from e
            except varlink.ProtocolError as e:
                raise Error("mprocd's reply makes no sense: %s" % e) \
                    from None
        return self.ready.popleft()

    def _io(self, timeout=None):
        """Writes what it can, waits (for timeout ms; None: for ever), and
        reads what came; False if nothing came."""
        poll = select.poll()
        streams = {}
        for s in self.streams:
            if s.out:
                s.write()
            events = (select.POLLIN if s.pending else 0) | \
                (select.POLLOUT if s.out else 0)
            if events:
                fd = s.sock.fileno()
                if fd < 0:
                    raise Error("the connection to mprocd was closed "
                                "(the Pool was terminated?)")
                poll.register(fd, events)
                streams[fd] = s
        if self.wake is not None:
            poll.register(self.wake, select.POLLIN)
        elif not streams:
            raise Error("nothing to wait for (a bug in mprocd.Pool)")
        happened = poll.poll(timeout)
        for fd, events in happened:
            if fd == self.wake:
                os.read(self.wake, 4096)
                self.ready.append((None, "wake", None))
                continue
            s = streams[fd]
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                s.read()
            if events & select.POLLOUT and s.out:
                s.write()
        return bool(happened)

    def close(self):
        """Closes the connections, first dropping any whose replies were
        not all read."""
        for s in self.streams:
            if not s.clean():
                s.client._drop()
            s.client.close()
        self.streams = []
