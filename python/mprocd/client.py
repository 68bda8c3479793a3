"""The client side (DESIGN.md sections 5 and 13): mprocd's control socket
from Python, as mprocctl uses it.

    import mprocd

    with mprocd.Client() as c:
        r = c.run(["uname", "-a"])          # one io.mprocd.Run call
        r.returncode, r.stdout, r.stderr    # like subprocess.run
        i = c.submit(["sleep", "5"])        # -> job id
        c.wait([i]); c.get(i); c.cancel(i); c.list(); c.status()
        for stream, data, truncated in c.follow(i):   # as it comes
            ...

One Client is one connection, made when the Client is made (a wrong socket
or a stopped mprocd shows there). Calls are blocking and answered in order.
A Client is not thread-safe: use one per thread. If the connection is lost
(mprocd stopped or restarted, or a call was interrupted, as by Ctrl-C) the
call raises Error and the next call connects again; a call is never sent
twice. After a fork, the child's first call connects anew.

Errors: a Varlink error reply raises Error with its name and parameters; a
connection that cannot be made or is lost raises Error with name None.
CompletedJob.check_returncode() raises JobError for a job that did not
succeed. Wrong argument types raise TypeError, and what JSON or mprocd
cannot carry (a NUL in a string) ValueError, before anything is sent.
"""

import base64
import binascii
import errno
import json
import numbers
import operator
import os
import shlex
import signal
import socket as _socket

from mprocd import varlink

READ_SIZE = 256 * 1024


def default_socket():
    """mprocctl's default socket: $MPROCD_SOCKET, else
    /run/mprocd/mprocd.sock for root and $XDG_RUNTIME_DIR/mprocd.sock for
    others. Raises Error when that needs XDG_RUNTIME_DIR and it is unset."""
    path = os.environ.get("MPROCD_SOCKET")
    if path:
        return path
    if os.geteuid() == 0:
        return "/run/mprocd/mprocd.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not runtime.startswith("/"):
        raise Error("XDG_RUNTIME_DIR is not set: say which socket with "
                    "Client(socket=PATH) or $MPROCD_SOCKET")
    return os.path.join(runtime, "mprocd.sock")


# Readable words for the errors mprocd answers; {key} from the parameters.
_PHRASES = {
    "io.mprocd.NoSuchJob": "no job {id}",
    "io.mprocd.NoSuchPool": "no pool {pool!r}",
    "io.mprocd.QueueFull": "pool {pool!r} is full ({limit} jobs queued)",
    "io.mprocd.PermissionDenied": "job {id} is not yours",
    "io.mprocd.TimedOut": "timed out waiting for jobs {ids}",
    "io.mprocd.ShuttingDown": "mprocd is shutting down",
    "io.mprocd.ReloadFailed": "reload failed: {reason}",
    "io.mprocd.StorageFailed": "the state database refused a write: "
                               "{reason}",
    varlink.INVALID_PARAMETER: "invalid parameter {parameter!r}",
    varlink.METHOD_NOT_FOUND: "mprocd has no method {method} "
                              "(is it older than this client?)",
    varlink.INTERFACE_NOT_FOUND: "mprocd has no interface {interface}",
    "org.varlink.service.PermissionDenied": "permission denied",
}


class Error(Exception):
    """A call that failed. name: the Varlink error name of mprocd's answer
    ("io.mprocd.NoSuchJob"...), or None when the client itself failed
    (cannot connect, connection lost, a reply that makes no sense).
    parameters: the error's parameters, a dict ({"id": 7})."""

    def __init__(self, message, name=None, parameters=None):
        super().__init__(message)
        self.name = name
        self.parameters = dict(parameters or {})

    @classmethod
    def from_reply(cls, name, parameters):
        """The Error for an error reply: its phrase, then its name."""
        phrase = _PHRASES.get(name)
        try:
            text = phrase.format(**parameters) if phrase else None
        except (KeyError, IndexError, ValueError, AttributeError):
            text = None
        if text is None:
            text = json.dumps(parameters, sort_keys=True) \
                if parameters else "error"
        return cls("%s (%s)" % (text, name), name, parameters)

    def __reduce__(self):
        return (type(self), (str(self), self.name, self.parameters))


class CompletedJob:
    """A job and its output, as Run and Get answer: like
    subprocess.CompletedProcess.

    returncode: the job's exit status; -N if a signal N ended it (a job
    ended by its timeout or by Cancel was killed by SIGTERM, -15, or by
    SIGKILL, -9, if it outlived kill_grace); None if it has no status (not
    finished yet, cancelled while queued, lost). state tells these apart
    ("succeeded", "failed", "timeout", "cancelled", "lost", or "queued" and
    "running" from a Get of an unfinished job). stdout, stderr: bytes, at
    most the pool's max_output each; truncated: either went past it.
    result: a program pool's answer (None for a command pool). job: the
    whole Job dict; id, args (its argv): from it."""

    def __init__(self, parameters, method="io.mprocd.Get"):
        job = parameters.get("job")
        if not isinstance(job, dict) or not isinstance(job.get("id"), int):
            raise Error("mprocd's reply to %s has no job" % method)
        self.job = job
        self.id = job["id"]
        self.args = job.get("argv")
        self.state = job.get("state")
        self.returncode = _returncode(job)
        self.stdout = _b64decode(parameters.get("stdout"), "stdout", method)
        self.stderr = _b64decode(parameters.get("stderr"), "stderr", method)
        self.truncated = parameters.get("truncated") is True
        self.result = parameters.get("result")

    def check_returncode(self):
        """Raises JobError unless the job succeeded (a job that ended by
        its timeout fails even if it exited 0)."""
        if self.state != "succeeded":
            raise JobError(self)

    def __repr__(self):
        return ("CompletedJob(id=%r, state=%r, returncode=%r, stdout=%r, "
                "stderr=%r)" % (self.id, self.state, self.returncode,
                                _short(self.stdout), _short(self.stderr)))


class JobError(Error):
    """A job that did not succeed (CompletedJob.check_returncode()). Carries
    the CompletedJob as completed, and its job, id, returncode, stdout,
    stderr and result. name is None, parameters {"id": ID, "state": S}."""

    def __init__(self, completed):
        super().__init__(_describe(completed), None,
                         {"id": completed.id, "state": completed.state})
        self.completed = completed
        self.job = completed.job
        self.id = completed.id
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.result = completed.result

    def __reduce__(self):
        return (type(self), (self.completed,))


class Following:
    """A job's output as it comes (Client.follow, Client.start): iterate
    to get each piece as (stream, data, truncated), stream "stdout" or
    "stderr", data bytes, truncated True where output was lost before this
    piece (past max_output, to a reader that fell behind); the iteration
    ends when the job has. Then completed is a CompletedJob (returncode,
    state, result, truncated; its stdout and stderr are empty: the output
    came through the iteration, and get() has what mprocd kept). id is the
    job's. A Following has a connection of its own, closed at the end, by
    close() or by a with block; closing it early stops following and leaves
    the job running."""

    def __init__(self, socket_path, method, params):
        self.socket = socket_path
        self.id = params.get("id")
        self.completed = None
        self._method = method
        self._reader = varlink.Reader()
        self._sock = s = _unix_connect(socket_path)
        try:
            try:
                s.sendall(varlink.encode(varlink.call(method, params,
                                                      more=True)))
            except OSError as e:
                raise _lost(socket_path, method, e) from e
            if method == "io.mprocd.Run":
                # The queued job first: its id, or why it was refused.
                first = self._reply()
                self.id = _field(first.parameters.get("job") or {}, "id",
                                 int, method)
                if not first.continues:
                    raise Error("mprocd's reply to %s ended with the "
                                "queued job" % method)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        return self

    def __repr__(self):
        return "<mprocd.Following id=%r%s>" % (
            self.id, " done" if self.completed is not None else "")

    def close(self):
        """Stops following (the job runs on)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _reply(self):
        """The next reply; Error for an error reply or a lost connection."""
        method = self._method
        try:
            reply = _read_reply(self._sock, self._reader, self.socket, method)
        except OSError as e:
            raise _lost(self.socket, method, e) from e
        except varlink.ProtocolError as e:
            raise Error("mprocd's reply to %s makes no sense: %s"
                        % (method, e)) from None
        if reply.error is not None:
            raise Error.from_reply(reply.error, reply.parameters)
        return reply

    def __next__(self):
        while self.completed is None:
            if self._sock is None:
                raise Error("this mprocd.Following is closed")
            try:
                reply = self._reply()
            except BaseException:
                self.close()
                raise
            p = reply.parameters
            if not reply.continues:
                self.close()
                self.completed = CompletedJob(p, self._method)
                break
            streams = [s for s in ("stdout", "stderr") if s in p]
            if len(streams) > 1:
                self.close()
                raise Error("mprocd's reply to %s has a piece of both "
                            "stdout and stderr" % self._method)
            if streams:
                try:
                    data = _b64decode(p[streams[0]], streams[0],
                                      self._method)
                except Error:
                    self.close()
                    raise
                return (streams[0], data, p.get("truncated") is True)
        raise StopIteration


class Client:
    """A connection to mprocd's control socket: socket, else
    default_socket(). Connects at once; raises Error if it cannot, saying
    why ("is mprocd running?"). Use as a context manager, or close()."""

    def __init__(self, socket=None):
        self.socket = os.fspath(socket) if socket is not None \
            else default_socket()
        self._sock = None
        self._reader = None
        self._pid = None
        self._closed = False
        self._connect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<mprocd.Client socket=%r%s>" % (
            self.socket, " closed" if self._closed else "")

    def close(self):
        """Closes the connection; calls after this raise Error."""
        self._closed = True
        self._drop()

    # The connection.

    def _connect(self):
        self._sock = _unix_connect(self.socket)
        self._reader = varlink.Reader()
        self._pid = os.getpid()

    def _drop(self):
        """Forgets the connection (closing this process's descriptor)."""
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None

    def _stale(self):
        """True if the idle connection cannot carry a call: mprocd closed
        it (it restarted), or sent what no call asked for."""
        if self._reader.buffered():
            return True
        try:
            self._sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True

    def _ready_socket(self):
        if self._closed:
            raise Error("this mprocd.Client is closed")
        if self._sock is not None and (self._pid != os.getpid() or
                                       self._stale()):
            self._drop()
        if self._sock is None:
            self._connect()
        return self._sock

    def _next_reply(self, method):
        reply = _read_reply(self._sock, self._reader, self.socket, method)
        if reply.continues:
            raise varlink.ProtocolError("a reply with \"continues\" to a "
                                        "call without \"more\"")
        return reply

    def _calls(self, calls):
        """Sends the (method, parameters) calls at once and reads their
        replies, in order: a list of varlink.Reply. Anything going wrong on
        the way (including KeyboardInterrupt) loses the connection, as its
        replies could no longer be told apart; the next call reconnects."""
        data = b"".join(varlink.encode(varlink.call(m, p)) for m, p in calls)
        sock = self._ready_socket()
        method = calls[0][0]
        try:
            sock.sendall(data)
            replies = []
            for method, _ in calls:
                replies.append(self._next_reply(method))
            return replies
        except OSError as e:
            self._drop()
            raise _lost(self.socket, method, e) from e
        except varlink.ProtocolError as e:
            self._drop()
            raise Error("mprocd's reply to %s makes no sense: %s"
                        % (method, e)) from None
        except BaseException:
            self._drop()
            raise

    def call(self, method, parameters=None):
        """One Varlink call ("io.mprocd.Status", {...}); its reply's
        parameters, or Error for an error reply."""
        reply = self._calls([(method, parameters or {})])[0]
        if reply.error is not None:
            raise Error.from_reply(reply.error, reply.parameters)
        return reply.parameters

    # io.mprocd.

    def run(self, argv, pool=None, name=None, cwd=None, env=None,
            stdin=None, timeout=None, retries=None, after=None, lock=None):
        """Runs argv as a job and returns once it has finished, as a
        CompletedJob (one io.mprocd.Run call). pool: default "default".
        name: the job's name. cwd: default the caller's working directory
        (a relative one is taken from it). env: a dict or a list of
        "KEY=VALUE", added to the pool's environment. stdin: bytes, or str
        sent as UTF-8. timeout: seconds, after which mprocd kills the job
        (state "timeout", returncode -15 or -9); not a limit on this call.
        retries: how many times a job whose worker died is run again.
        after: job ids; the job waits until they have finished, and runs
        only if all succeeded (else it ends "cancelled"). lock: a name; no
        two jobs holding the same lock run at once, in any pool.
        Interrupting run() does not cancel the job."""
        params = _job_params(argv, pool, name, cwd, env, stdin, timeout,
                             retries, after, lock)
        return CompletedJob(self.call("io.mprocd.Run", params),
                            "io.mprocd.Run")

    def start(self, argv, pool=None, name=None, cwd=None, env=None,
              stdin=None, timeout=None, retries=None, after=None, lock=None):
        """Runs argv as a job, as run() does, and returns once it is queued
        with a Following of its output as it comes (io.mprocd.Run with
        "more", on a connection of its own); its id is the job's."""
        params = _job_params(argv, pool, name, cwd, env, stdin, timeout,
                             retries, after, lock)
        self._ready_socket()    # a closed Client starts nothing
        return Following(self.socket, "io.mprocd.Run", params)

    def follow(self, id):
        """A job's output from its start and then as it comes, until it
        ends, as a Following (io.mprocd.Follow with "more", on a
        connection of its own): like mprocctl follow."""
        id = operator.index(id)
        self._ready_socket()
        return Following(self.socket, "io.mprocd.Follow", {"id": id})

    def submit(self, argv, pool=None, name=None, cwd=None, env=None,
               stdin=None, timeout=None, retries=None, after=None,
               lock=None):
        """Queues argv as a job, as run() would run it; returns its id."""
        params = _job_params(argv, pool, name, cwd, env, stdin, timeout,
                             retries, after, lock)
        return _field(self.call("io.mprocd.Submit", params), "id", int,
                      "io.mprocd.Submit")

    def wait(self, ids, timeout=None):
        """Waits until every job in ids has finished; their Job dicts, in
        the order of ids. timeout: seconds, then Error io.mprocd.TimedOut
        whose parameters["ids"] are the jobs not finished."""
        params = {"ids": _ids(ids)}
        if timeout is not None:
            params["timeout_sec"] = _seconds(timeout)
        return _field(self.call("io.mprocd.Wait", params), "jobs", list,
                      "io.mprocd.Wait")

    def get(self, id):
        """A job and its output so far, as a CompletedJob."""
        return CompletedJob(self.call("io.mprocd.Get",
                                      {"id": operator.index(id)}))

    def cancel(self, id):
        """Cancels a job: dequeued, or its process group killed (answered
        once it is gone). Its Job dict; a finished job is left as it is."""
        return _field(self.call("io.mprocd.Cancel",
                                {"id": operator.index(id)}),
                      "job", dict, "io.mprocd.Cancel")

    def list(self, pool=None, state=None):
        """Job dicts, of one pool and in one state if given."""
        params = {}
        if pool is not None:
            params["pool"] = pool
        if state is not None:
            params["state"] = state
        return _field(self.call("io.mprocd.List", params), "jobs", list,
                      "io.mprocd.List")

    def status(self):
        """The daemon (version, pid, started_usec) and its pools, a dict."""
        return self.call("io.mprocd.Status")

    def reload(self):
        """Has mprocd re-read its configuration (root or mprocd's own user);
        Error io.mprocd.ReloadFailed with parameters["reason"]."""
        self.call("io.mprocd.Reload")


def _unix_connect(path):
    """A socket connected to mprocd at path; Error saying why not."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise Error(_connect_failure(path, e)) from e
    except BaseException:
        s.close()
        raise
    return s


def _read_reply(sock, reader, path, method):
    """The next reply on sock (a varlink.Reply), read through reader;
    Error if mprocd closed the connection. OSError and ProtocolError pass
    on to the caller."""
    while True:
        msg = reader.next_message()
        if msg is not None:
            return varlink.parse_reply(msg)
        chunk = sock.recv(READ_SIZE)
        if not chunk:
            raise Error("mprocd closed the connection to %s during %s "
                        "(did it stop or restart?)" % (path, method))
        reader.feed(chunk)


def _lost(path, method, e):
    """The Error for an OSError e on the connection to path during method."""
    return Error("lost the connection to %s during %s: %s"
                 % (path, method, e.strerror or e))


def _connect_failure(path, e):
    text = "cannot connect to %s: %s" % (path, e.strerror or e)
    if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
        return text + " (is mprocd running? start it, or name its socket " \
            "with Client(socket=PATH) or $MPROCD_SOCKET)"
    if e.errno == errno.EACCES:
        return text + " (ask an admin to add you to the socket's group)"
    return text


def _field(parameters, key, kind, method):
    v = parameters.get(key)
    if not isinstance(v, kind) or isinstance(v, bool):
        raise Error("mprocd's reply to %s has no %s" % (method, key))
    return v


def _returncode(job):
    sig = job.get("signal")
    if isinstance(sig, int) and sig > 0:
        return -sig
    status = job.get("exit_status")
    return status if isinstance(status, int) else None


def _b64decode(text, what, method):
    if text is None:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Error("mprocd's reply to %s has a %s that is not base64"
                    % (method, what)) from None


def _short(data, limit=60):
    return data if len(data) <= limit else data[:limit] + b"..."


def _signame(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return "signal %d" % n


def _describe(cj):
    """One line on how the job ended, for JobError."""
    argv = shlex.join(cj.args) if isinstance(cj.args, list) else "?"
    if len(argv) > 60:
        argv = argv[:57] + "..."
    rc = cj.returncode
    how = ("exit status %d" % rc if rc is not None and rc >= 0 else
           "killed by %s" % _signame(-rc) if rc is not None else None)
    if cj.state == "failed":
        text = "failed: " + (how or "no exit status")
    elif cj.state == "timeout":
        text = "timed out" + (" (%s)" % how if how else "")
    elif cj.state == "succeeded":
        text = "succeeded"
    else:
        text = "ended %s" % cj.state if cj.state in ("cancelled", "lost") \
            else "has not finished (%s)" % cj.state
        if how:
            text += " (%s)" % how
    reason = cj.job.get("reason")
    if isinstance(reason, str) and reason:
        text += ": " + reason
    line = cj.stderr.decode("utf-8", "replace").strip().rpartition("\n")[2]
    if cj.state == "failed" and line:
        text += "; stderr: " + (line if len(line) <= 200
                                else line[:197] + "...")
    return "job %d (%s) %s" % (cj.id, argv, text)


def _text(v, what):
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if isinstance(v, bytes):
        v = os.fsdecode(v)
    if not isinstance(v, str):
        raise TypeError("%s: a string, not %s" % (what, type(v).__name__))
    return v


def _seconds(v):
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError("timeout: seconds, a number, not %s"
                        % type(v).__name__)
    return float(v)


def _ids(ids):
    if isinstance(ids, numbers.Integral):
        ids = [ids]
    return [operator.index(i) for i in ids]


def _job_params(argv, pool, name, cwd, env, stdin, timeout, retries,
                after=None, lock=None):
    """Submit's and Run's parameters; TypeError for what cannot be one."""
    if isinstance(argv, (str, bytes, os.PathLike)):
        raise TypeError("argv is a list of strings, not one string: for a "
                        "shell command line use ['sh', '-c', LINE]")
    params = {"argv": [_text(a, "argv") for a in argv]}
    if pool is not None:
        params["pool"] = _text(pool, "pool")
    if name is not None:
        params["name"] = _text(name, "name")
    params["cwd"] = os.path.abspath(_text(cwd, "cwd")) if cwd is not None \
        else os.getcwd()
    if env is not None:
        if hasattr(env, "items"):
            env = ["%s=%s" % (_text(k, "env"), _text(v, "env"))
                   for k, v in env.items()]
        elif isinstance(env, (str, bytes)):
            raise TypeError("env: a dict or a list of \"KEY=VALUE\"")
        params["env"] = [_text(e, "env") for e in env]
    if stdin is not None:
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        if not isinstance(stdin, (bytes, bytearray, memoryview)):
            raise TypeError("stdin: bytes or str, not %s"
                            % type(stdin).__name__)
        params["stdin"] = base64.b64encode(stdin).decode("ascii")
    if timeout is not None:
        params["timeout_sec"] = _seconds(timeout)
    if retries is not None:
        params["retries"] = operator.index(retries)
    if after is not None:
        params["after"] = _ids(after)
    if lock is not None:
        params["lock"] = _text(lock, "lock")
    return params
