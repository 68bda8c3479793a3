"""The program side of a program pool (DESIGN.md sections 11 and 13).

    python3 -m mprocd.worker MODULE...

serves every public function of the modules (a name not starting with "_",
a function defined in that module, not one it imported; a module with
__all__ serves the functions listed there); from a script,

    mprocd.worker.serve({"name": func, ...})

serves those. mprocd starts the program in each worker of the pool with a
connected UNIX socket on fd 3, passed the systemd way, and speaks Varlink on
it as the client: Hello once, then one Run after another. A Run calls the
function argv[0] names, with input's args and kwargs, or with argv[1:]; the
return value is the job's result, what the function prints its output.
The program exits 0 when mprocd closes the socket.
"""

import base64
import contextlib
import importlib
import inspect
import io
import json
import os
import signal
import socket
import sys
import traceback

import mprocd
from mprocd import varlink

WORKER_INTERFACE = "io.mprocd.Worker"
SERVICE_INTERFACE = "org.varlink.service"

WORKER_DESCRIPTION = """\
# A program that runs mprocd's jobs, one at a time.
interface io.mprocd.Worker

# Called once, before any Run; the reply says the program is ready.
method Hello(pool: string, worker: string) -> ()

# Run one job. argv[0] names what to run (a function), the rest are its
# arguments; input is the Submit's, any JSON value. exit_status 0: the job
# succeeded; any other: it failed. result: any JSON value, kept with the job.
method Run(
  id: int,
  argv: []string,
  input: ?object,
  env: []string,
  cwd: string,
  stdin: ?string
) -> (exit_status: int, result: ?object)
"""

# As daemon/org.varlink.service.varlink.
SERVICE_DESCRIPTION = """\
# The Varlink Service Interface is provided by every varlink service. It
# describes the service and the interfaces it implements.
interface org.varlink.service

# Get a list of all the interfaces a service provides and information
# about the implementation.
method GetInfo() -> (
  vendor: string,
  product: string,
  version: string,
  url: string,
  interfaces: []string
)

# Get the description of an interface that is implemented by this service.
method GetInterfaceDescription(interface: string) -> (description: string)

# The requested interface was not found.
error InterfaceNotFound (interface: string)

# The requested method was not found
error MethodNotFound (method: string)

# The interface defines the requested method, but the service does not
# implement it.
error MethodNotImplemented (method: string)

# One of the passed parameters is invalid.
error InvalidParameter (parameter: string)

# The caller may not call this method.
error PermissionDenied ()
"""

DESCRIPTIONS = {WORKER_INTERFACE: WORKER_DESCRIPTION,
                SERVICE_INTERFACE: SERVICE_DESCRIPTION}

LISTEN_FD = 3
LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
USAGE = "usage: python3 -m mprocd.worker MODULE..."
READ_SIZE = 65536

# This worker's name, "POOL/N": from the environment when serving began,
# then from Hello.
_worker_name = None


class StartError(Exception):
    """Why the program cannot serve: it exits 2 with this on stderr."""


class _CallError(Exception):
    """A Varlink error answer to the call being handled."""

    def __init__(self, name, parameters):
        super().__init__(name)
        self.name = name
        self.parameters = parameters


def _invalid(parameter):
    return _CallError(varlink.INVALID_PARAMETER, {"parameter": parameter})


def current_worker():
    """This worker's name as mprocd gave it ("POOL/N"), or None when the
    program was not started by mprocd."""
    if _worker_name is not None:
        return _worker_name
    return os.environ.get("MPROCD_WORKER")


def _say(message):
    """One line on stderr, in mprocd's log or the job's stderr."""
    print("mprocd.worker: " + message, file=sys.stderr, flush=True)


def listen_socket():
    """The socket mprocd passed on fd 3, the systemd way. Unsets the
    LISTEN_* variables and makes fd 3 close-on-exec, so that children
    inherit neither. Raises StartError."""
    pid, fds, names = (os.environ.pop(v, None) for v in LISTEN_VARS)
    if fds is None:
        raise StartError("not started by mprocd: no socket on fd 3 "
                         "(LISTEN_FDS)")
    if pid != str(os.getpid()):
        raise StartError("not started by mprocd: LISTEN_PID is %s, not this "
                         "process (%d)" % (pid or "unset", os.getpid()))
    if fds != "1":
        raise StartError("mprocd passes one socket (LISTEN_FDS=1), not "
                         "LISTEN_FDS=%s" % fds)
    if names not in (None, "mprocd"):
        raise StartError("fd 3 is %r, not mprocd's socket "
                         "(LISTEN_FDNAMES)" % names)
    try:
        os.set_inheritable(LISTEN_FD, False)
        return socket.socket(fileno=LISTEN_FD)
    except OSError as e:
        raise StartError("no socket on fd 3: %s" % e.strerror) from None


def public_functions(module):
    """{name: function} of what module serves: __all__'s functions if it
    has __all__, else the functions it defines whose names do not start
    with "_"."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return {n: getattr(module, n) for n in names
                if inspect.isroutine(getattr(module, n, None))}
    return {n: f for n, f in vars(module).items()
            if not n.startswith("_") and inspect.isfunction(f)
            and f.__module__ == module.__name__}


def _import(name):
    """The module called name; StartError if it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        # A module it imports is missing, not the one named: show where.
        if e.name is None or not (name == e.name or
                                  name.startswith(e.name + ".")):
            traceback.print_exc()
        raise StartError("cannot import %s: %s" % (name, e)) from None
    except Exception as e:
        traceback.print_exc()
        raise StartError("cannot import %s: %s: %s" %
                         (name, type(e).__name__, e)) from None


def load_modules(names):
    """{name: function} of every public function of the modules; a name in
    two of them, or a module with none, is a StartError."""
    functions, home = {}, {}
    for name in names:
        module = _import(name)
        found = public_functions(module)
        if not found:
            raise StartError("module %s has no public functions to serve"
                             % name)
        for fname, func in found.items():
            if fname in functions and functions[fname] is not func:
                raise StartError(
                    "function %s is in both %s and %s: a program serves one "
                    "function by each name" % (fname, home[fname], name))
            functions[fname] = func
            home.setdefault(fname, name)
    return functions


def _check_table(functions):
    """Raises TypeError or ValueError if functions is not {name: callable}."""
    if not isinstance(functions, dict):
        raise TypeError("serve() takes a dict {name: function}, not %s"
                        % type(functions).__name__)
    if not functions:
        raise ValueError("serve() needs at least one function")
    for name, func in functions.items():
        if not isinstance(name, str) or not name:
            raise TypeError("serve(): function names are non-empty "
                            "strings, not %r" % (name,))
        if not callable(func):
            raise TypeError("serve(): %s is not callable" % name)


def serve(functions):
    """Serves functions ({name: function}) to mprocd on fd 3; never returns:
    exits 0 when mprocd closes the socket, 1 if it sends something that is
    not Varlink, 2 if the program was not started by mprocd."""
    _check_table(functions)
    try:
        sock = listen_socket()
    except StartError as e:
        _say(str(e))
        sys.exit(2)
    _serve(sock, dict(functions))


def _default_sigterm():
    """SIGTERM kills, even if whoever started us ignored it; a handler the
    program installed stays."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve(sock, functions):
    """Answers calls on sock until it ends; exits."""
    global _worker_name
    _default_sigterm()
    _worker_name = os.environ.get("MPROCD_WORKER")
    status = _Server(sock, functions).serve()
    sys.exit(status)


def _flush_output():
    """Puts what is buffered for stdout and stderr into the pipes: the
    output of a call must be there before its reply."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


_EMPTY_STDIN = None


def _stdin(data):
    """A sys.stdin that reads data (bytes), then end of file. Without data
    one is kept from call to call while it is open (there is nothing in it
    to read twice)."""
    global _EMPTY_STDIN
    if not data and _EMPTY_STDIN is not None and not _EMPTY_STDIN.closed:
        return _EMPTY_STDIN
    orig = sys.__stdin__
    encoding = getattr(orig, "encoding", None) or "utf-8"
    errors = getattr(orig, "errors", None) or "strict"
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding,
                              errors=errors, newline="\n")
    if not data:
        _EMPTY_STDIN = stream
    return stream


def _restore_environ(saved):
    """Makes os.environ what it was (saved: a dict copy of it)."""
    for key in list(os.environ):
        if key not in saved:
            del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _exit_status(code):
    """A job's exit status for SystemExit(code), as a process would exit."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _error_result(exc):
    try:
        message = str(exc)
    except Exception:
        message = repr(exc)
    return {"error": type(exc).__name__, "message": message}


def _call_args(argv, data):
    """(args, kwargs) of a Run from its argv and input; ValueError if the
    input is not {"args": [...], "kwargs": {...}}."""
    if data is None:
        return argv[1:], {}
    if not isinstance(data, dict) or not set(data) <= {"args", "kwargs"}:
        raise ValueError('input must be {"args": [...], "kwargs": {...}} '
                         'or null, not %s' % _brief(data))
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    if not isinstance(args, list):
        raise ValueError('input "args" must be a list, not %s' % _brief(args))
    if not isinstance(kwargs, dict):
        raise ValueError('input "kwargs" must be an object, not %s'
                         % _brief(kwargs))
    if len(argv) > 1:
        raise ValueError("arguments in both argv and input: give them in "
                         "one or the other")
    return args, kwargs


def _brief(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _call(func, args, kwargs):
    """(exit_status, result) of func(*args, **kwargs)."""
    try:
        return 0, func(*args, **kwargs)
    except SystemExit as e:
        return _exit_status(e.code), None
    except Exception as e:
        # The traceback from the function down, without our frame.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        return 1, _error_result(e)


def _failed(error, message):
    """A job that failed before or after its function ran."""
    _say(message)
    return 1, {"error": error, "message": message}


class _Server:
    """One connection to mprocd: calls are read, answered one at a time,
    in order."""

    def __init__(self, sock, functions):
        self.sock = sock
        self.functions = functions
        self.reader = varlink.Reader()
        self.home = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) |
                            os.O_DIRECTORY)
        self.methods = {
            WORKER_INTERFACE + ".Hello": self.hello,
            WORKER_INTERFACE + ".Run": self.run,
            SERVICE_INTERFACE + ".GetInfo": self.get_info,
            SERVICE_INTERFACE + ".GetInterfaceDescription":
                self.get_interface_description,
        }

    def serve(self):
        """Answers calls until end of file (0) or a broken message (1)."""
        try:
            while True:
                msg = self.next_message()
                if msg is None:
                    return 0
                call = varlink.parse_call(msg)
                answer = self.dispatch(call)
                _flush_output()
                if not call.oneway:
                    self.sock.sendall(answer)
        except varlink.ProtocolError as e:
            _say("bad message from mprocd: %s" % e)
            return 1
        except (BrokenPipeError, ConnectionResetError):
            return 0

    def next_message(self):
        """The next call, or None at end of file."""
        while True:
            msg = self.reader.next_message()
            if msg is not None:
                return msg
            data = self.sock.recv(READ_SIZE)
            if not data:
                if self.reader.buffered():
                    raise varlink.ProtocolError(
                        "end of file inside a message")
                return None
            self.reader.feed(data)

    def dispatch(self, call):
        """The encoded answer to call."""
        method = self.methods.get(call.method)
        try:
            if method is None:
                raise self.not_found(call.method)
            return method(call.parameters)
        except _CallError as e:
            return varlink.encode(varlink.error(e.name, e.parameters))

    def not_found(self, name):
        interface = name.rpartition(".")[0]
        if interface in DESCRIPTIONS:
            return _CallError(varlink.METHOD_NOT_FOUND, {"method": name})
        return _CallError(varlink.INTERFACE_NOT_FOUND,
                          {"interface": interface})

    def hello(self, params):
        global _worker_name
        pool, worker = params.get("pool"), params.get("worker")
        if not isinstance(pool, str):
            raise _invalid("pool")
        if not isinstance(worker, str):
            raise _invalid("worker")
        _worker_name = worker
        return varlink.encode(varlink.reply())

    def get_info(self, params):
        return varlink.encode(varlink.reply({
            "vendor": "mprocd",
            "product": "mprocd.worker",
            "version": mprocd.__version__,
            "url": "https://github.com/mprocd/mprocd",
            "interfaces": [WORKER_INTERFACE, SERVICE_INTERFACE],
        }))

    def get_interface_description(self, params):
        name = params.get("interface")
        if not isinstance(name, str):
            raise _invalid("interface")
        if name not in DESCRIPTIONS:
            raise _CallError(varlink.INTERFACE_NOT_FOUND, {"interface": name})
        return varlink.encode(varlink.reply({"description":
                                             DESCRIPTIONS[name]}))

    def run(self, params):
        job = _run_params(params)
        status, result = self.run_job(*job)
        try:
            # The reply around the result, as varlink.encode() would write
            # it: checking and encoding only the result is half the cost.
            text = json.dumps(result, separators=(",", ":"),
                              ensure_ascii=False, allow_nan=False)
            # After dumps, which refuses circular references check() would
            # chase.
            varlink.check(result)
            return ('{"parameters":{"exit_status":%d,"result":%s}}'
                    % (status, text)).encode("utf-8") + b"\0"
        except RecursionError:
            status, result = _failed("TypeError", "result of %s is nested "
                                     "too deeply" % job[1][0])
            return varlink.encode(varlink.reply(
                {"exit_status": status, "result": result}))
        except (TypeError, ValueError) as e:
            status, result = _failed("TypeError", "result of %s is not JSON: "
                                     "%s" % (job[1][0], e))
            return varlink.encode(varlink.reply(
                {"exit_status": status, "result": result}))

    def run_job(self, job_id, argv, data, env, cwd, stdin):
        """(exit_status, result) of one job."""
        name = argv[0]
        func = self.functions.get(name)
        if func is None:
            message = "no function %s; this program serves: %s" % (
                name, ", ".join(sorted(self.functions)))
            _say(message)
            return 127, {"error": "NameError", "message": message}
        try:
            args, kwargs = _call_args(argv, data)
        except ValueError as e:
            return _failed("ValueError", str(e))
        try:
            os.chdir(cwd)
        except OSError as e:
            return _failed(type(e).__name__, "cannot change directory to "
                           "%s: %s" % (cwd, e.strerror))
        try:
            with _job_context(job_id, env, stdin):
                return _call(func, args, kwargs)
        finally:
            os.fchdir(self.home)


def _environ_snapshot():
    """What os.environ holds, cheaply: CPython keeps it encoded in a dict,
    which copies and compares in C (a dict(os.environ) decodes every
    variable, 20 us a call here, more than the rest of a call together)."""
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):
        return data.copy()
    return dict(os.environ)


def _environ_restore(snapshot):
    """Makes os.environ what it was at snapshot, if it is not."""
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):
        if data == snapshot:
            return
        snapshot = {os.fsdecode(k): os.fsdecode(v)
                    for k, v in snapshot.items()}
    _restore_environ(snapshot)


@contextlib.contextmanager
def _job_context(job_id, env, stdin):
    """A call's environment and stdin, put back as they were after it,
    along with sys.stdout and sys.stderr should the function replace them.
    The call's variables are set and put back one by one; whatever else
    the function changed in os.environ is found by comparing the whole."""
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    snapshot = _environ_snapshot()
    changed = []
    try:
        for entry in env + ["MPROCD_JOB_ID=%d" % job_id]:
            key, _, value = entry.partition("=")
            old = os.environ.get(key)
            if old != value:
                changed.append((key, old))
                os.environ[key] = value
        sys.stdin = _stdin(stdin)
        yield
    finally:
        _flush_output()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for key, old in reversed(changed):
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        _environ_restore(snapshot)


def _run_params(params):
    """(id, argv, input, env, cwd, stdin bytes) of a Run; raises
    InvalidParameter naming the first that is wrong."""
    job_id = params.get("id")
    if type(job_id) is not int or not varlink.INT_MIN <= job_id <= \
            varlink.INT_MAX:
        raise _invalid("id")
    argv = params.get("argv")
    if not isinstance(argv, list) or not argv or \
            not all(isinstance(a, str) for a in argv):
        raise _invalid("argv")
    env = params.get("env")
    if not isinstance(env, list) or not all(
            isinstance(e, str) and e.find("=") > 0 and "\0" not in e
            for e in env):
        raise _invalid("env")
    cwd = params.get("cwd")
    if not isinstance(cwd, str) or not cwd or "\0" in cwd:
        raise _invalid("cwd")
    stdin = params.get("stdin")
    if stdin is None:
        data = b""
    else:
        try:
            data = base64.b64decode(stdin, validate=True)
        except (TypeError, ValueError):
            raise _invalid("stdin") from None
    return job_id, argv, params.get("input"), env, cwd, data


def main(argv=None):
    """python3 -m mprocd.worker MODULE..."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(USAGE + "\nServes every public function of the modules to "
              "mprocd, as a program pool's program.")
        return 0
    if not args or any(a.startswith("-") for a in args):
        print(USAGE, file=sys.stderr)
        return 2
    _default_sigterm()
    try:
        sock = listen_socket()
        functions = load_modules(args)
    except StartError as e:
        _say(str(e))
        return 2
    _serve(sock, functions)


if __name__ == "__main__":
    # Run as mprocd.worker, not __main__, so that the served modules'
    # "import mprocd.worker" sees this worker's state (current_worker()).
    import mprocd.worker
    sys.exit(mprocd.worker.main())
