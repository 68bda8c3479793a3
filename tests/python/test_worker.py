"""The program side of a program pool (python/mprocd/worker.py), driven as
mprocd will drive it: the real program started with a connected socket on
fd 3 passed the systemd way, stdout and stderr pipes, stdin /dev/null, in a
session of its own; the test speaks Varlink on the socket as mprocd, reads
the pipes as it goes, and checks each reply and the output that came with
it. Also the Varlink helpers (python/mprocd/varlink.py) on their own."""

import base64
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

SRCDIR = os.environ.get("MPROCD_SRCDIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
PYDIR = os.path.abspath(os.path.join(SRCDIR, "python"))
sys.path.insert(0, PYDIR)

import mprocd  # noqa: E402
import mprocd.worker  # noqa: E402
from mprocd import varlink  # noqa: E402

# Generous: bounds waits for things that must happen, never speed.
TIMEOUT = float(os.environ.get("MPROCD_TEST_TIMEOUT", "20"))
W = "io.mprocd.Worker."
S = "org.varlink.service."

# Puts the socket on fd 3 and LISTEN_PID to its own pid, then execs the
# program: exec keeps the pid, so the program finds LISTEN_PID its own.
TRAMPOLINE = r"""
import os, signal, sys
fd, fd3 = int(sys.argv[1]), sys.argv[2]
if fd3 != "socket":
    os.close(fd)
    fd = os.open(os.devnull, os.O_RDONLY) if fd3 == "devnull" else 3
if fd3 != "none" and fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
if os.environ.get("LISTEN_PID") == "self":
    os.environ["LISTEN_PID"] = str(os.getpid())
if os.environ.pop("TEST_IGNORE_TERM", None):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.execv(sys.argv[3], sys.argv[3:])
"""

JOBS = '''
"""Functions the tests serve."""
import base64
import io
import os
import subprocess
import sys
import time
from os.path import join  # imported: not served

import mprocd.worker

CONSTANT = 5
CYCLE = []
CYCLE.append(CYCLE)


class Thing:
    pass


def _private():
    return "private"


def add(a, b):
    return a + b


def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


def identity(value):
    return value


def pair():
    return (1, "two")


def length(text):
    return len(text)


def not_json(kind):
    return {"set": lambda: {1, 2}, "nan": lambda: float("nan"),
            "big": lambda: 2 ** 64, "object": object,
            "surrogate": lambda: "\\udcff", "nul": lambda: "a\\0b",
            "cycle": lambda: CYCLE}[kind]()


def helper(d):
    return d["missing"]


def fail(message):
    raise ValueError(message)


def nested_fail():
    return helper({})


def leave(*code):
    sys.exit(*code)


def write_all(tag):
    print(tag + "-print-1")
    sys.stdout.flush()
    os.write(1, (tag + "-fd1\\n").encode())
    print(tag + "-print-2")
    sys.stderr.write(tag + "-stderr\\n")
    os.write(2, (tag + "-fd2\\n").encode())
    print(tag + "-print-3", file=sys.stderr)
    # Held by stderr's line buffering until someone flushes.
    sys.stderr.write(tag + "-unended")
    return tag


def big(out_bytes, err_bytes):
    sys.stdout.write("o" * out_bytes)
    sys.stderr.write("e" * err_bytes)
    return out_bytes + err_bytes


def hijack():
    sys.stdout = io.StringIO()
    sys.stderr = io.StringIO()
    print("swallowed")


KEPT = []


def own_stdout():
    # A stdout of its own on fd 1, kept alive: only a flush empties it.
    KEPT.append(open(1, "w", closefd=False))
    sys.stdout = KEPT[-1]
    print("own-stdout")


def where():
    return os.getcwd()


def wander(path):
    os.chdir(path)
    return os.getcwd()


def getenv(*names):
    return {n: os.environ.get(n) for n in names}


def setenv(key, value):
    os.environ[key] = value


def environ():
    return dict(os.environ)


def read_text():
    return sys.stdin.read()


def read_bytes():
    return base64.b64encode(sys.stdin.buffer.read()).decode()


def worker():
    return mprocd.worker.current_worker()


def fd3():
    child = subprocess.run(
        ["sh", "-c", "[ -e /proc/self/fd/3 ] && echo open || echo closed"],
        close_fds=False, capture_output=True, text=True)
    return {"inheritable": os.get_inheritable(3),
            "child": child.stdout.strip()}


def nap(seconds):
    print("napping", flush=True)
    time.sleep(seconds)
'''

MODULES = {
    "jobs": JOBS,
    "more": "def multiply(a, b):\n    return a * b\n",
    "clash": "def add(a, b):\n    return a - b\n",
    "reexport": "from jobs import add, _private\n"
                "__all__ = ['add', 'CONST']\nCONST = 1\n",
    "empty": "def _hidden():\n    pass\nVALUE = 1\n",
    "broken": "import os\nraise RuntimeError('broken at import')\n",
    "needsdep": "import no_such_dependency_xyz\n",
    "script": textwrap.dedent('''
        import mprocd.worker


        def triple(x):
            return 3 * x


        if __name__ == "__main__":
            mprocd.worker.serve({"triple": triple, "length": len})
        '''),
}


def setUpModule():
    global TMP
    TMP = os.path.realpath(tempfile.mkdtemp(prefix="mprocd-test-worker."))
    for name, text in MODULES.items():
        with open(os.path.join(TMP, name + ".py"), "w") as f:
            f.write(text)
    os.mkdir(os.path.join(TMP, "home"))
    os.mkdir(os.path.join(TMP, "a"))
    os.mkdir(os.path.join(TMP, "b"))


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def base_env():
    """The program's environment as mprocd would give it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "MPROCD_", "PYTHON"))}
    env.update(PYTHONPATH=PYDIR + ":" + TMP, PYTHONDONTWRITEBYTECODE="1",
               MPROCD_POOL="calc", MPROCD_WORKER="calc/1",
               LISTEN_PID="self", LISTEN_FDS="1", LISTEN_FDNAMES="mprocd")
    return env


class Worker:
    """A worker program and mprocd's end of its socket and pipes."""

    def __init__(self, program=("-m", "mprocd.worker", "jobs"), env=None,
                 fd3="socket"):
        self.home = os.path.join(TMP, "home")
        full = base_env()
        for k, v in (env or {}).items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        self.sock, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", TRAMPOLINE, str(child.fileno()),
             fd3, sys.executable] + list(program),
            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full,
            cwd=self.home, start_new_session=True)
        child.close()
        self.sock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.streams = {}
        for name, f in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            os.set_blocking(f.fileno(), False)
            self.sel.register(f, selectors.EVENT_READ, name)
            self.streams[name] = bytearray()
        self.sel.register(self.sock, selectors.EVENT_READ, "sock")
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.replies = []
        self.marks = {"out": 0, "err": 0}
        self.open = {"out", "err", "sock"}
        self.next_id = 1

    # Talking.

    def send(self, *messages):
        """Queues messages (dicts, or raw bytes) to the worker."""
        for m in messages:
            self.outbuf += m if isinstance(m, bytes) else \
                json.dumps(m).encode() + b"\0"
        self.pump(lambda: True)

    def reply(self):
        """The next reply, once the output before it has been read."""
        self.pump(lambda: self.replies, "a reply")
        self.drain()
        return self.replies.pop(0)

    def call(self, method, parameters=None, **flags):
        msg = {"method": method, "parameters": parameters or {}}
        msg.update(flags)
        self.send(msg)
        return self.reply()

    def run_call(self, name, *argv, input=None, env=(), cwd=None,
                 stdin=None, job_id=None, **flags):
        """A Run call's message."""
        if job_id is None:
            job_id, self.next_id = self.next_id, self.next_id + 1
        params = {"id": job_id, "argv": [name] + list(argv),
                  "env": list(env), "cwd": cwd or self.home}
        if input is not None:
            params["input"] = input
        if stdin is not None:
            params["stdin"] = base64.b64encode(stdin).decode()
        msg = {"method": W + "Run", "parameters": params}
        msg.update(flags)
        return msg

    def run(self, name, *argv, **kw):
        """(exit_status, result, stdout, stderr) of one job."""
        self.send(self.run_call(name, *argv, **kw))
        r = self.reply()
        assert "error" not in r, r
        assert set(r["parameters"]) == {"exit_status", "result"}, r
        out, err = self.output()
        return (r["parameters"]["exit_status"], r["parameters"]["result"],
                out.decode(), err.decode())

    def apply(self, name, *args, **kwargs):
        """(exit_status, result) of name(*args, **kwargs)."""
        status, result, _, _ = self.run(
            name, input={"args": list(args), "kwargs": kwargs})
        return status, result

    def hello(self, pool="calc", worker="calc/1"):
        r = self.call(W + "Hello", {"pool": pool, "worker": worker})
        assert r == {"parameters": {}}, r
        return r

    def output(self):
        """(stdout, stderr) read since the last time this was asked."""
        got = []
        for name in ("out", "err"):
            got.append(bytes(self.streams[name][self.marks[name]:]))
            self.marks[name] = len(self.streams[name])
        return tuple(got)

    # The loop: mprocd's, reading the pipes while it waits.

    def pump(self, until, what="the worker", timeout=TIMEOUT):
        """Sends what is queued and reads everything until until()."""
        deadline = time.monotonic() + timeout
        while self.outbuf or not until():
            if not self.open:
                raise AssertionError("the worker closed everything before "
                                     "%s; stderr: %r" % (what, self.stderr))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s; stderr: %r"
                                     % (what, self.stderr))
            if "sock" in self.open:
                self.sel.modify(self.sock, selectors.EVENT_READ |
                                (selectors.EVENT_WRITE if self.outbuf else 0),
                                "sock")
            for key, events in self.sel.select(left):
                if events & selectors.EVENT_WRITE:
                    self.write_some()
                if events & selectors.EVENT_READ:
                    self.read_some(key.data)

    def write_some(self):
        try:
            del self.outbuf[:self.sock.send(self.outbuf)]
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.outbuf.clear()

    def source(self, name):
        return {"sock": self.sock, "out": self.proc.stdout,
                "err": self.proc.stderr}[name]

    def read_some(self, name):
        """Reads once from name; whether anything came."""
        try:
            if name == "sock":
                data = self.sock.recv(65536)
            else:
                data = os.read(self.source(name).fileno(), 65536)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.sel.unregister(self.source(name))
            self.open.discard(name)
            if name == "sock":
                self.outbuf.clear()
            return False
        if name != "sock":
            self.streams[name] += data
            return True
        self.inbuf += data
        while b"\0" in self.inbuf:
            frame, _, rest = bytes(self.inbuf).partition(b"\0")
            self.inbuf[:] = rest
            self.replies.append(json.loads(frame))
        return True

    def drain(self):
        """Reads what is in the pipes now, as mprocd does on a reply."""
        for name in ("out", "err"):
            while name in self.open and self.read_some(name):
                pass

    @property
    def stderr(self):
        return bytes(self.streams["err"]).decode(errors="replace")

    @property
    def stdout(self):
        return bytes(self.streams["out"]).decode(errors="replace")

    def finish(self, close=True, timeout=TIMEOUT):
        """Closes mprocd's end (if close), reads to the end of the pipes and
        returns the exit status."""
        if close and "sock" in self.open:
            self.sel.unregister(self.sock)
            self.open.discard("sock")
            self.sock.close()
        self.pump(lambda: not self.open - {"sock"}, "the pipes' end",
                  timeout)
        return self.proc.wait(timeout)

    def shut_write(self):
        """Ends what mprocd sends, keeping its end open for reading."""
        self.pump(lambda: True)
        self.sock.shutdown(socket.SHUT_WR)

    def cleanup(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.sel.close()
        self.sock.close()
        self.proc.stdout.close()
        self.proc.stderr.close()


# Reverse-domain: letters, digits, hyphens; "io.systemd.Resolve" is one.
INTERFACE = (r"[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?"
             r"(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)+")
MEMBER = r"[A-Z][A-Za-z0-9]*"
FIELD = r"[A-Za-z](_?[A-Za-z0-9])*"


def parse_interface(text):
    """A Varlink interface description's name and members
    ({"method": [...], "type": [...], "error": [...]}), checked against
    the grammar of varlink.org; raises ValueError where it does not fit."""
    tokens = []
    for line in text.split("\n"):
        line = line.split("#", 1)[0]
        for p in "(),:?":
            line = line.replace(p, " %s " % p)
        tokens += line.replace("->", " -> ").replace("[]", " [] ") \
            .replace("[string]", " [string] ").split()
    pos = [0]

    def take():
        if pos[0] >= len(tokens):
            raise ValueError("unexpected end")
        pos[0] += 1
        return tokens[pos[0] - 1]

    def expect(token):
        t = take()
        if t != token:
            raise ValueError("expected %r, got %r" % (token, t))

    def peek(ahead=0):
        i = pos[0] + ahead
        return tokens[i] if i < len(tokens) else None

    def name(pattern, kind):
        t = take()
        if not re.fullmatch(pattern, t):
            raise ValueError("bad %s name %r" % (kind, t))
        return t

    def vtype():
        if peek() == "?":
            take()
        while peek() in ("[]", "[string]"):
            take()
        if peek() == "(":
            struct_or_enum()
        elif take() not in ("bool", "int", "float", "string", "object"):
            pos[0] -= 1
            name(MEMBER, "type")

    def struct_or_enum():
        expect("(")
        is_struct = peek(1) == ":"
        while peek() != ")":
            name(FIELD, "field")
            if is_struct:
                expect(":")
                vtype()
            if peek() != ")":
                expect(",")
        expect(")")

    expect("interface")
    iface = name(INTERFACE, "interface")
    members = {"method": [], "type": [], "error": []}
    while pos[0] < len(tokens):
        kind = take()
        if kind not in members:
            raise ValueError("bad member %r" % kind)
        members[kind].append(name(MEMBER, kind))
        if kind == "type":
            vtype()
        else:
            struct_or_enum()
        if kind == "method":
            expect("->")
            struct_or_enum()
    return iface, members


class WorkerTest(unittest.TestCase):
    """A test with a fresh worker, started by self.start()."""

    def start(self, *args, **kwargs):
        w = Worker(*args, **kwargs)
        self.addCleanup(w.cleanup)
        return w

    def started(self, *args, **kwargs):
        """A worker that has answered Hello."""
        w = self.start(*args, **kwargs)
        w.hello()
        self.assertEqual(w.output(), (b"", b""))
        return w

    def assertRefused(self, w, status, message):
        """The program ended with status and message on its stderr."""
        self.assertEqual(w.finish(close=False), status, w.stderr)
        self.assertIn(message, w.stderr)


class TestVarlink(unittest.TestCase):
    """python/mprocd/varlink.py on its own."""

    def test_encode_is_compact_utf8_json_and_a_nul(self):
        self.assertEqual(varlink.encode({"a": [1, None, True]}),
                         b'{"a":[1,null,true]}\0')
        self.assertEqual(varlink.encode({"s": "h\u00e9\n"}),
                         '{"s":"h\u00e9\\n"}'.encode() + b"\0")
        self.assertEqual(varlink.encode({"n": -(1 << 63)}),
                         b'{"n":-9223372036854775808}\0')

    def test_encode_refuses_what_mprocd_cannot_read(self):
        cycle = []
        cycle.append(cycle)
        deep = []
        for _ in range(5000):
            deep = [deep]
        for value in ({1}, float("nan"), float("inf"), 1 << 63, -(1 << 63) - 1,
                      "\udcff", "a\0b", {"k\0": 1}, object(), cycle, deep,
                      {(1, 2): 3}):
            with self.subTest(value=type(value).__name__):
                with self.assertRaises((TypeError, ValueError)):
                    varlink.encode({"v": value})

    def test_reader_splits_on_nul_across_chunks(self):
        r = varlink.Reader()
        self.assertIsNone(r.next_message())
        stream = b'{"a":1}\0{"b":"x\\u00e9"}\0{"c":'
        for i in range(len(stream)):
            r.feed(stream[i:i + 1])
        self.assertEqual(r.next_message(), {"a": 1})
        self.assertEqual(r.next_message(), {"b": "x\u00e9"})
        self.assertIsNone(r.next_message())
        self.assertEqual(r.buffered(), 5)
        r.feed(b'[2]}\0')
        self.assertEqual(r.next_message(), {"c": [2]})
        self.assertEqual(r.buffered(), 0)

    def test_reader_refuses_what_is_not_a_message(self):
        for frame in (b"not json", b"[1]", b'"s"', b"", b'{"a":1,"a":2}',
                      b'{"a":"\xff"}', b'{"a":1} x'):
            with self.subTest(frame=frame):
                r = varlink.Reader()
                r.feed(frame + b"\0" + b'{"next":1}\0')
                with self.assertRaises(varlink.ProtocolError):
                    r.next_message()
                # The stream goes on after it, should one want it.
                self.assertEqual(r.next_message(), {"next": 1})

    def test_parse_call(self):
        c = varlink.parse_call({"method": "a.b.C", "parameters": {"x": 1},
                                "more": True})
        self.assertEqual(c, ("a.b.C", {"x": 1}, True, False))
        c = varlink.parse_call({"method": "a.B", "parameters": None,
                                "oneway": True})
        self.assertEqual(c, ("a.B", {}, False, True))
        self.assertEqual(varlink.parse_call({"method": "a.B"}).parameters, {})
        for bad in ({}, {"method": 5}, {"method": "NoDot"},
                    {"method": "a.B", "parameters": []},
                    {"method": "a.B", "more": "yes"},
                    {"method": "a.B", "oneway": 1}):
            with self.subTest(bad=bad):
                with self.assertRaises(varlink.ProtocolError):
                    varlink.parse_call(bad)

    def test_messages_built(self):
        self.assertEqual(varlink.call("a.B"), {"method": "a.B",
                                               "parameters": {}})
        self.assertEqual(varlink.call("a.B", {"x": 1}, more=True,
                                      oneway=True),
                         {"method": "a.B", "parameters": {"x": 1},
                          "more": True, "oneway": True})
        self.assertEqual(varlink.reply(), {"parameters": {}})
        self.assertEqual(varlink.reply({"x": 1}, continues=True),
                         {"parameters": {"x": 1}, "continues": True})
        self.assertEqual(varlink.error(varlink.METHOD_NOT_FOUND,
                                       {"method": "a.B"}),
                         {"error": "org.varlink.service.MethodNotFound",
                          "parameters": {"method": "a.B"}})

    def test_parse_reply(self):
        self.assertEqual(varlink.parse_reply({"parameters": {"x": 1},
                                              "continues": True}),
                         (None, {"x": 1}, True))
        self.assertEqual(varlink.parse_reply({"error": "a.E"}),
                         ("a.E", {}, False))
        for bad in ({"error": 1}, {"parameters": [1]}):
            with self.assertRaises(varlink.ProtocolError):
                varlink.parse_reply(bad)


class TestInProcess(unittest.TestCase):
    """What needs no socket: module scanning, serve()'s arguments."""

    def test_public_functions(self):
        sys.path.insert(0, TMP)
        self.addCleanup(sys.path.remove, TMP)
        import jobs
        import reexport
        found = mprocd.worker.public_functions(jobs)
        self.assertIn("add", found)
        self.assertIs(found["add"], jobs.add)
        for absent in ("_private", "join", "Thing", "CONSTANT", "CYCLE",
                       "base64", "mprocd"):
            self.assertNotIn(absent, found)
        # __all__ says what is public, imported or not.
        self.assertEqual(mprocd.worker.public_functions(reexport),
                         {"add": jobs.add})

    def test_serve_refuses_a_bad_table_before_anything(self):
        for bad, exc in (({}, ValueError), ([], TypeError),
                         ({"f": 1}, TypeError), ({"": len}, TypeError),
                         ({1: len}, TypeError)):
            with self.subTest(bad=bad):
                with self.assertRaises(exc):
                    mprocd.worker.serve(bad)

    def test_current_worker_outside_mprocd(self):
        saved = os.environ.pop("MPROCD_WORKER", None)
        try:
            self.assertIsNone(mprocd.worker.current_worker())
            os.environ["MPROCD_WORKER"] = "p/3"
            self.assertEqual(mprocd.worker.current_worker(), "p/3")
        finally:
            os.environ.pop("MPROCD_WORKER", None)
            if saved is not None:
                os.environ["MPROCD_WORKER"] = saved

    def test_package(self):
        self.assertEqual(mprocd.__version__, "0.1.0")


class TestCalls(WorkerTest):
    """Run: arguments, results, errors."""

    def test_hello(self):
        w = self.start()
        r = w.call(W + "Hello", {"pool": "calc", "worker": "calc/1"})
        self.assertEqual(r, {"parameters": {}})

    def test_args_and_kwargs(self):
        w = self.started()
        self.assertEqual(w.apply("add", 2, 40), (0, 42))
        self.assertEqual(w.apply("add", "a", b="b"), (0, "ab"))
        self.assertEqual(w.apply("echo", 1, [2], x={"y": None}),
                         (0, {"args": [1, [2]], "kwargs": {"x": {"y": None}}}))
        # Either part may be left out.
        self.assertEqual(w.run("echo", input={"kwargs": {"k": 1}})[:2],
                         (0, {"args": [], "kwargs": {"k": 1}}))
        self.assertEqual(w.run("echo", input={"args": [1]})[:2],
                         (0, {"args": [1], "kwargs": {}}))
        self.assertEqual(w.run("echo", input={})[:2],
                         (0, {"args": [], "kwargs": {}}))

    def test_argv_only(self):
        w = self.started()
        self.assertEqual(w.run("add", "4", "2")[:2], (0, "42"))
        self.assertEqual(w.run("echo", "a b", "", "-x")[:2],
                         (0, {"args": ["a b", "", "-x"], "kwargs": {}}))
        self.assertEqual(w.run("echo")[:2], (0, {"args": [], "kwargs": {}}))

    def test_input_of_another_shape_fails_the_job(self):
        w = self.started()
        for bad in ([1, 2], "x", 5, True, {"args": 1}, {"kwargs": [1]},
                    {"args": [], "other": 1}):
            with self.subTest(input=bad):
                status, result, out, err = w.run("echo", input=bad)
                self.assertEqual(status, 1)
                self.assertEqual(result["error"], "ValueError")
                self.assertIn("input", result["message"])
                self.assertIn(result["message"], err)
        status, result, _, _ = w.run("echo", "argv", input={"args": [1]})
        self.assertEqual(status, 1)
        self.assertIn("both argv and input", result["message"])
        self.assertEqual(w.apply("add", 1, 1), (0, 2))

    def test_results_of_every_json_type(self):
        w = self.started()
        values = [None, True, False, 0, -7, (1 << 63) - 1, -(1 << 63), 1.5,
                  -0.25, 1e300, "", "h\u00e9llo \u2713 \U0001f600",
                  "quote\" back\\ nl\n", [], {}, [1, "a", None, [2, [3, []]]],
                  {"a": {"b": [None, True, {"c": 1.5}]}, "": 0}]
        for v in values:
            with self.subTest(value=v):
                self.assertEqual(w.apply("identity", v), (0, v))
        status, result = w.apply("pair")
        self.assertEqual((status, result), (0, [1, "two"]))
        # No return value: a null result.
        self.assertEqual(w.apply("setenv", "K", "V"), (0, None))

    def test_result_that_is_not_json(self):
        w = self.started()
        for kind in ("set", "nan", "big", "object", "surrogate", "nul",
                     "cycle"):
            with self.subTest(kind=kind):
                status, result, out, err = w.run("not_json", kind)
                self.assertEqual(status, 1)
                self.assertEqual(result["error"], "TypeError")
                self.assertTrue(result["message"].startswith(
                    "result of not_json is not JSON: "), result)
                self.assertIn(result["message"], err)
        # The worker serves on.
        self.assertEqual(w.apply("add", 1, 2), (0, 3))

    def test_exception(self):
        w = self.started()
        status, result, out, err = w.run("fail", input={"args": ["no way"]})
        self.assertEqual(status, 1)
        self.assertEqual(result, {"error": "ValueError", "message": "no way"})
        self.assertIn("Traceback (most recent call last):", err)
        self.assertIn('raise ValueError(message)', err)
        self.assertTrue(err.rstrip("\n").endswith("ValueError: no way"), err)
        # From the function down: none of the worker's own frames.
        self.assertNotIn("worker.py", err)
        status, result, out, err = w.run("nested_fail")
        self.assertEqual((status, result),
                         (1, {"error": "KeyError", "message": "'missing'"}))
        self.assertIn("in nested_fail", err)
        self.assertIn("in helper", err)
        # A wrong call is the function's error too.
        status, result, out, err = w.run("add", "1")
        self.assertEqual(status, 1)
        self.assertEqual(result["error"], "TypeError")
        self.assertIn("missing 1 required positional argument", err)
        self.assertEqual(w.apply("add", 1, 2), (0, 3))

    def test_system_exit(self):
        w = self.started()
        pid = w.proc.pid
        for code, status in (((), 0), ((0,), 0), ((3,), 3), ((None,), 0),
                             ((255,), 255), ((True,), 1)):
            with self.subTest(code=code):
                self.assertEqual(w.run("leave", input={"args": list(code)})
                                 [:2], (status, None))
        status, result, out, err = w.run("leave", "going away")
        self.assertEqual((status, result), (1, None))
        self.assertEqual(err, "going away\n")
        # The worker did not exit.
        self.assertIsNone(w.proc.poll())
        self.assertEqual(w.apply("add", 1, 2), (0, 3))
        self.assertEqual(w.proc.pid, pid)

    def test_unknown_function(self):
        w = self.started()
        names = ("add, big, echo, environ, fail, fd3, getenv, helper, "
                 "hijack, identity, leave, length, nap, nested_fail, "
                 "not_json, own_stdout, pair, read_bytes, read_text, "
                 "setenv, wander, where, worker, write_all")
        message = "no function nope; this program serves: " + names
        status, result, out, err = w.run("nope", "x")
        self.assertEqual(status, 127)
        self.assertEqual(result, {"error": "NameError", "message": message})
        self.assertEqual(out, "")
        self.assertIn(message, err)
        # Neither private, imported, classes nor other values are served.
        for name in ("_private", "join", "Thing", "CONSTANT", "time", ""):
            with self.subTest(name=name):
                self.assertEqual(w.run(name)[0], 127)


class TestOutput(WorkerTest):
    """A call's output is in the pipes before its reply."""

    def test_output_belongs_to_its_call(self):
        w = self.started()
        for tag in ("first", "second", "third"):
            status, result, out, err = w.run("write_all", tag)
            self.assertEqual((status, result), (0, tag))
            self.assertEqual(out, "%s-print-1\n%s-fd1\n%s-print-2\n"
                             % (tag, tag, tag))
            self.assertEqual(sorted(err.splitlines()),
                             sorted("%s-%s" % (tag, s) for s in
                                    ("stderr", "fd2", "print-3", "unended")))
            self.assertTrue(err.endswith(tag + "-unended"), err)
        self.assertEqual(w.output(), (b"", b""))

    def test_output_of_a_failing_call(self):
        # One call at a time, as mprocd sends them: what is in the pipes at
        # a reply is that call's, whole.
        w = self.started()
        status, result, out, err = w.run("write_all", "x")
        self.assertEqual(out, "x-print-1\nx-fd1\nx-print-2\n")
        status, result, out, err = w.run("fail", "boom")
        self.assertEqual((status, out), (1, ""))
        self.assertTrue(err.startswith("Traceback (most recent call last):"),
                        err)
        self.assertTrue(err.endswith("ValueError: boom\n"), err)
        status, result, out, err = w.run("write_all", "y")
        self.assertEqual(out, "y-print-1\ny-fd1\ny-print-2\n")
        self.assertNotIn("boom", err)

    def test_large_output_does_not_deadlock(self):
        w = self.started()
        n_out, n_err = 4 << 20, 1 << 20
        status, result, out, err = w.run("big", input={
            "args": [n_out, n_err]})
        self.assertEqual((status, result), (0, n_out + n_err))
        self.assertEqual(len(out), n_out)
        self.assertEqual(out, "o" * n_out)
        self.assertEqual(err, "e" * n_err)
        status, result, out, err = w.run("write_all", "after")
        self.assertEqual(out, "after-print-1\nafter-fd1\nafter-print-2\n")

    def test_large_input_and_result(self):
        w = self.started()
        text = "\u00e9" * (3 << 20)
        self.assertEqual(w.apply("length", text), (0, 3 << 20))
        self.assertEqual(w.apply("identity", text), (0, text))

    def test_streams_the_function_replaced_are_put_back(self):
        w = self.started()
        status, result, out, err = w.run("hijack")
        self.assertEqual((status, out, err), (0, "", ""))
        status, result, out, err = w.run("write_all", "back")
        self.assertIn("back-print-2", out)
        self.assertIn("back-print-3", err)
        status, result, out, err = w.run("own_stdout")
        self.assertEqual((status, out), (0, "own-stdout\n"))
        status, result, out, err = w.run("write_all", "again")
        self.assertEqual(out, "again-print-1\nagain-fd1\nagain-print-2\n")


class TestJobContext(WorkerTest):
    """cwd, env and stdin apply to one call and are put back after it."""

    def cwd_of(self, w):
        return os.readlink("/proc/%d/cwd" % w.proc.pid)

    def test_cwd(self):
        w = self.started()
        a, b = os.path.join(TMP, "a"), os.path.join(TMP, "b")
        self.assertEqual(w.run("where", cwd=a)[:2], (0, a))
        self.assertEqual(self.cwd_of(w), w.home)
        self.assertEqual(w.run("where", cwd=b)[:2], (0, b))
        # A function that moves does not move the next call.
        self.assertEqual(w.run("wander", "/", cwd=a)[:2], (0, "/"))
        self.assertEqual(self.cwd_of(w), w.home)
        self.assertEqual(w.run("where", cwd=b)[:2], (0, b))
        # Relative: to where the program started.
        self.assertEqual(w.run("where", cwd="../a")[:2], (0, a))

    def test_missing_cwd(self):
        w = self.started()
        missing = os.path.join(TMP, "nonexistent")
        status, result, out, err = w.run("where", cwd=missing)
        self.assertEqual(status, 1)
        self.assertEqual(result["error"], "FileNotFoundError")
        self.assertIn(missing, result["message"])
        self.assertIn("No such file or directory", result["message"])
        self.assertIn(result["message"], err)
        self.assertEqual(self.cwd_of(w), w.home)
        self.assertEqual(w.run("where")[:2], (0, w.home))

    def test_env(self):
        w = self.started()
        names = ("A", "B", "HOME", "MPROCD_JOB_ID", "LEAK", "MPROCD_POOL")
        home = os.environ.get("HOME")
        status, result, _, _ = w.run(
            "getenv", *names, env=["A=1", "B=x=y", "HOME=/elsewhere"],
            job_id=41)
        self.assertEqual(result, {"A": "1", "B": "x=y", "HOME": "/elsewhere",
                                  "MPROCD_JOB_ID": "41", "LEAK": None,
                                  "MPROCD_POOL": "calc"})
        w.run("setenv", "LEAK", "yes", job_id=42)
        status, result, _, _ = w.run("getenv", *names, job_id=43)
        self.assertEqual(result, {"A": None, "B": None, "HOME": home,
                                  "MPROCD_JOB_ID": "43", "LEAK": None,
                                  "MPROCD_POOL": "calc"})
        # An empty value is a value.
        self.assertEqual(w.run("getenv", "A", env=["A="])[1], {"A": ""})

    def test_env_between_calls_and_after_failures(self):
        w = self.started()
        w.run("fail", "x", env=["A=1"])
        w.run("nope", env=["A=1"])
        w.run("leave", "3", env=["A=1"])
        status, result, _, _ = w.run("environ")
        self.assertNotIn("A", result)

    def test_stdin(self):
        w = self.started()
        self.assertEqual(w.run("read_text", stdin="l\u00e9 1\nl2\n".encode())
                         [:2], (0, "l\u00e9 1\nl2\n"))
        data = bytes(range(256)) * 4
        status, result, _, _ = w.run("read_bytes", stdin=data)
        self.assertEqual(base64.b64decode(result), data)
        # Without stdin: end of file, also after a call that had one.
        self.assertEqual(w.run("read_text")[:2], (0, ""))
        self.assertEqual(w.run("read_bytes")[:2], (0, ""))
        self.assertEqual(w.run("read_text", stdin=b"")[:2], (0, ""))

    def test_worker_environment(self):
        w = self.started()
        status, result, _, _ = w.run("environ")
        self.assertEqual(result["MPROCD_POOL"], "calc")
        self.assertEqual(result["MPROCD_WORKER"], "calc/1")
        for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            self.assertNotIn(var, result)
        self.assertEqual(w.run("worker")[:2], (0, "calc/1"))
        # The job's environment does not rename the worker.
        self.assertEqual(w.run("worker", env=["MPROCD_WORKER=x/9"])[:2],
                         (0, "calc/1"))

    def test_current_worker_from_hello(self):
        w = self.start(env={"MPROCD_WORKER": None, "MPROCD_POOL": None})
        self.assertEqual(w.run("worker")[:2], (0, None))
        w.hello("calc", "calc/7")
        self.assertEqual(w.run("worker")[:2], (0, "calc/7"))

    def test_fd3_is_not_inherited(self):
        w = self.started()
        self.assertEqual(w.run("fd3")[:2],
                         (0, {"inheritable": False, "child": "closed"}))


class TestProtocol(WorkerTest):
    """The Varlink service around Run."""

    def test_get_info(self):
        w = self.start()
        r = w.call(S + "GetInfo")
        p = r["parameters"]
        self.assertEqual(p["interfaces"], ["io.mprocd.Worker",
                                           "org.varlink.service"])
        self.assertEqual(p["version"], mprocd.__version__)
        for key in ("vendor", "product", "url"):
            self.assertIsInstance(p[key], str)
            self.assertTrue(p[key])

    def test_get_interface_description(self):
        w = self.start()
        r = w.call(S + "GetInterfaceDescription",
                   {"interface": "io.mprocd.Worker"})
        iface, members = parse_interface(r["parameters"]["description"])
        self.assertEqual(iface, "io.mprocd.Worker")
        self.assertEqual(members["method"], ["Hello", "Run"])
        text = r["parameters"]["description"]
        for field in ("id: int", "argv: []string", "input: ?object",
                      "env: []string", "cwd: string", "stdin: ?string",
                      "exit_status: int", "result: ?object"):
            self.assertIn(field, text)
        r = w.call(S + "GetInterfaceDescription",
                   {"interface": "org.varlink.service"})
        iface, members = parse_interface(r["parameters"]["description"])
        self.assertEqual(iface, "org.varlink.service")
        self.assertEqual(members["method"], ["GetInfo",
                                             "GetInterfaceDescription"])
        self.assertIn("InvalidParameter", members["error"])
        self.assertEqual(w.call(S + "GetInterfaceDescription",
                                {"interface": "io.other"}),
                         {"error": S + "InterfaceNotFound",
                          "parameters": {"interface": "io.other"}})
        self.assertEqual(w.call(S + "GetInterfaceDescription"),
                         {"error": S + "InvalidParameter",
                          "parameters": {"parameter": "interface"}})

    def test_the_interface_checker_checks(self):
        # A checker that accepts anything proves nothing.
        for bad in ("interface a.b\nmethod x() -> ()",
                    "interface a.b\nmethod X(a int) -> ()",
                    "interface a.b\nmethod X() ()",
                    "interface a.b\nfunction X() -> ()",
                    "interface a.b\nmethod X(a: int b: int) -> ()",
                    "interface a.b\ntype T (a: inte)",
                    "interface a.b\nmethod X((a, b) -> ()",
                    "interface a..b\nmethod X() -> ()",
                    "interface ab\nmethod X() -> ()",
                    "method X() -> ()"):
            with self.subTest(bad=bad):
                with self.assertRaises(ValueError):
                    parse_interface(bad)

    def test_unknown_method_and_interface(self):
        w = self.start()
        self.assertEqual(w.call(W + "Nope"),
                         {"error": S + "MethodNotFound",
                          "parameters": {"method": W + "Nope"}})
        self.assertEqual(w.call(S + "Nope"),
                         {"error": S + "MethodNotFound",
                          "parameters": {"method": S + "Nope"}})
        self.assertEqual(w.call("io.mprocd.Submit"),
                         {"error": S + "InterfaceNotFound",
                          "parameters": {"interface": "io.mprocd"}})
        w.hello()

    def test_invalid_parameters(self):
        w = self.started()
        good = w.run_call("add", "1", "2")["parameters"]
        cases = [("id", None), ("id", "1"), ("id", True), ("id", 1.5),
                 ("id", 1 << 63), ("argv", None), ("argv", []),
                 ("argv", "add"), ("argv", ["add", 1]), ("env", None),
                 ("env", "A=1"), ("env", ["A"]), ("env", ["=1"]),
                 ("env", ["A=\0"]), ("env", [1]), ("cwd", None), ("cwd", ""),
                 ("cwd", 5), ("stdin", 5), ("stdin", "not base64!"),
                 ("stdin", "abc")]
        for name, value in cases:
            with self.subTest(parameter=name, value=value):
                params = dict(good)
                if value is None:
                    del params[name]
                else:
                    params[name] = value
                self.assertEqual(w.call(W + "Run", params),
                                 {"error": S + "InvalidParameter",
                                  "parameters": {"parameter": name}})
                self.assertEqual(w.output(), (b"", b""))
        for params, name in (({"pool": "p"}, "worker"),
                             ({"worker": "p/1"}, "pool"),
                             ({"pool": 1, "worker": "p/1"}, "pool")):
            self.assertEqual(w.call(W + "Hello", params),
                             {"error": S + "InvalidParameter",
                              "parameters": {"parameter": name}})
        # Parameters it does not know are ignored: a newer mprocd may send
        # more.
        self.assertEqual(w.call(W + "Run", dict(good, later=1)),
                         {"parameters": {"exit_status": 0, "result": "12"}})

    def test_oneway_gets_no_reply(self):
        w = self.started()
        w.send(dict(w.run_call("write_all", "quiet"), oneway=True),
               {"method": W + "Nope", "oneway": True},
               {"method": S + "GetInfo", "oneway": True},
               w.run_call("add", "a", "b"))
        r = w.reply()
        self.assertEqual(r, {"parameters": {"exit_status": 0,
                                            "result": "ab"}})
        out, err = w.output()
        self.assertIn(b"quiet-print-2", out)
        r = w.call(S + "GetInterfaceDescription", {"interface": "nope"})
        self.assertEqual(r["error"], S + "InterfaceNotFound")
        self.assertEqual(w.replies, [])

    def test_more_gets_one_reply(self):
        w = self.started()
        w.send(w.run_call("add", "1", "2", more=True),
               {"method": W + "Hello", "more": True,
                "parameters": {"pool": "p", "worker": "p/1"}},
               {"method": S + "GetInfo"})
        self.assertEqual(w.reply(), {"parameters": {"exit_status": 0,
                                                    "result": "12"}})
        self.assertEqual(w.reply(), {"parameters": {}})
        self.assertIn("interfaces", w.reply()["parameters"])
        self.assertEqual(w.replies, [])

    def test_pipelined_calls_answered_in_order(self):
        w = self.start()
        w.send({"method": W + "Hello",
                "parameters": {"pool": "calc", "worker": "calc/1"}},
               *[w.run_call("add", str(i), "!") for i in range(5)],
               {"method": S + "GetInfo"}, {"method": W + "Nope"},
               w.run_call("write_all", "last"))
        self.assertEqual(w.reply(), {"parameters": {}})
        for i in range(5):
            self.assertEqual(w.reply()["parameters"]["result"], "%d!" % i)
        self.assertIn("interfaces", w.reply()["parameters"])
        self.assertEqual(w.reply()["error"], S + "MethodNotFound")
        self.assertEqual(w.reply()["parameters"]["result"], "last")
        self.assertIn(b"last-print-2", w.output()[0])

    def test_one_call_at_a_time(self):
        w = self.started()
        w.send(w.run_call("nap", input={"args": [0.3]}),
               w.run_call("identity", "second"))
        start = time.monotonic()
        first = w.reply()
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        self.assertEqual(first["parameters"], {"exit_status": 0,
                                               "result": None})
        self.assertEqual(w.reply()["parameters"]["result"], "second")


class TestLifetime(WorkerTest):
    """Start, end, and what makes the program give up."""

    def test_end_of_file_exits_0(self):
        w = self.started()
        w.run("add", "1", "2")
        self.assertEqual(w.finish(), 0)
        self.assertEqual(w.stderr, "")

    def test_end_of_file_before_hello_exits_0(self):
        w = self.start()
        self.assertEqual(w.finish(), 0)
        self.assertEqual(w.stderr, "")

    def test_broken_messages_exit_1(self):
        for raw in (b"not json\0", b"[1]\0", b'{"parameters":{}}\0',
                    b'{"method":"io.mprocd.Worker.Hello","more":"yes"}\0',
                    b'{"method":"io.mprocd.Worker.Hello","parameters":[]}\0',
                    b'{"method":"a.B","method":"a.C"}\0', b"\xff\xfe\0",
                    b'{"method":"io.mprocd.Worker.Hello"'):
            with self.subTest(raw=raw):
                w = self.start()
                # Calls before it are answered first.
                w.send({"method": S + "GetInfo"}, raw)
                self.assertIn("interfaces", w.reply()["parameters"])
                w.shut_write()
                self.assertEqual(w.finish(close=False), 1, w.stderr)
                lines = w.stderr.splitlines()
                self.assertEqual(len(lines), 1, w.stderr)
                self.assertTrue(lines[0].startswith(
                    "mprocd.worker: bad message from mprocd: "), lines)
                self.assertEqual(w.replies, [])

    def test_sigterm_kills(self):
        w = self.started()
        w.send(w.run_call("nap", input={"args": [30]}))
        w.pump(lambda: "napping" in w.stdout, "the nap")
        os.kill(w.proc.pid, signal.SIGTERM)
        self.assertEqual(w.finish(close=False, timeout=5), -signal.SIGTERM)
        self.assertEqual(w.replies, [])

    def test_sigterm_kills_even_if_it_was_ignored(self):
        w = self.started(env={"TEST_IGNORE_TERM": "1"})
        os.kill(w.proc.pid, signal.SIGTERM)
        self.assertEqual(w.finish(close=False, timeout=5), -signal.SIGTERM)

    def test_not_started_by_mprocd(self):
        cases = [({"LISTEN_FDS": None}, "socket",
                  "mprocd.worker: not started by mprocd: no socket on fd 3 "
                  "(LISTEN_FDS)"),
                 ({"LISTEN_FDS": None, "LISTEN_PID": None}, "none",
                  "no socket on fd 3 (LISTEN_FDS)"),
                 ({"LISTEN_PID": "1"}, "socket",
                  "not started by mprocd: LISTEN_PID is 1, not this process"),
                 ({"LISTEN_PID": None}, "socket",
                  "not started by mprocd: LISTEN_PID is unset"),
                 ({"LISTEN_FDS": "2"}, "socket", "LISTEN_FDS=2"),
                 ({"LISTEN_FDNAMES": "other"}, "socket", "LISTEN_FDNAMES"),
                 ({}, "devnull", "no socket on fd 3: "),
                 ({}, "none", "no socket on fd 3: Bad file descriptor")]
        for program in (("-m", "mprocd.worker", "jobs"),
                        (os.path.join(TMP, "script.py"),)):
            for env, fd3, message in cases:
                with self.subTest(program=program[-1], env=env, fd3=fd3):
                    w = self.start(program, env=env, fd3=fd3)
                    self.assertRefused(w, 2, message)
                    self.assertEqual(len(w.stderr.splitlines()), 1, w.stderr)

    def test_usage(self):
        for args, status in (((), 2), (("-x", "jobs"), 2), (("--help",), 0)):
            with self.subTest(args=args):
                w = self.start(("-m", "mprocd.worker") + args)
                self.assertEqual(w.finish(close=False), status)
                text = w.stdout + w.stderr
                self.assertIn("usage: python3 -m mprocd.worker MODULE...",
                              text)


class TestModules(WorkerTest):
    """python3 -m mprocd.worker MODULE... and serve() from a script."""

    def test_two_modules(self):
        w = self.started(("-m", "mprocd.worker", "jobs", "more"))
        self.assertEqual(w.apply("add", 2, 3), (0, 5))
        self.assertEqual(w.apply("multiply", 2, 3), (0, 6))
        self.assertIn("add, big, ", w.run("nope")[1]["message"])
        self.assertIn("multiply", w.run("nope")[1]["message"])

    def test_the_same_function_twice_is_no_clash(self):
        w = self.started(("-m", "mprocd.worker", "jobs", "reexport", "jobs"))
        self.assertEqual(w.apply("add", 2, 3), (0, 5))

    def test_all_says_what_is_public(self):
        w = self.started(("-m", "mprocd.worker", "reexport"))
        self.assertEqual(w.apply("add", 2, 3), (0, 5))
        self.assertEqual(w.run("nope")[1]["message"],
                         "no function nope; this program serves: add")

    def test_duplicate_names_refused(self):
        w = self.start(("-m", "mprocd.worker", "jobs", "clash"))
        self.assertRefused(w, 2, "mprocd.worker: function add is in both "
                           "jobs and clash")
        self.assertEqual(len(w.stderr.splitlines()), 1, w.stderr)
        self.assertEqual(w.replies, [])

    def test_modules_that_cannot_be_served(self):
        for module, message, traceback in (
                ("no_such_module", "cannot import no_such_module: No module "
                 "named 'no_such_module'", False),
                ("jobs.sub", "cannot import jobs.sub", False),
                ("needsdep", "cannot import needsdep: No module named "
                 "'no_such_dependency_xyz'", True),
                ("broken", "cannot import broken: RuntimeError: broken at "
                 "import", True),
                ("empty", "module empty has no public functions", False)):
            with self.subTest(module=module):
                w = self.start(("-m", "mprocd.worker", "jobs", module))
                self.assertRefused(w, 2, "mprocd.worker: " + message)
                self.assertEqual("Traceback" in w.stderr, traceback,
                                 w.stderr)

    def test_serve_from_a_script(self):
        w = self.started((os.path.join(TMP, "script.py"),))
        self.assertEqual(w.apply("triple", 14), (0, 42))
        self.assertEqual(w.run("triple", "ab")[:2], (0, "ababab"))
        self.assertEqual(w.apply("length", [1, 2, 3]), (0, 3))
        status, result, out, err = w.run("add")
        self.assertEqual((status, result["message"]),
                         (127, "no function add; this program serves: "
                          "length, triple"))
        status, result, out, err = w.run("length", input={"args": [1, 2]})
        self.assertEqual((status, result["error"]), (1, "TypeError"))
        self.assertIn("len() takes exactly one argument", err)
        self.assertEqual(w.finish(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=sys.argv[:1])
