"""Helpers for integration tests: start a real mprocd on a private socket in
a temporary directory, speak raw Varlink to it, and watch its processes."""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

MPROCD = os.environ.get("MPROCD", "daemon/mprocd")
MPROCCTL = os.environ.get("MPROCCTL", "ctl/mprocctl")
# Generous: these bound waits for things that must happen, never speed.
TIMEOUT = float(os.environ.get("MPROCD_TEST_TIMEOUT", "20"))


def wait_for(pred, what, timeout=TIMEOUT, interval=0.01):
    """Polls pred() until it returns something true; fails naming what."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


OTHER_UID = 65534

# MPROCD_VALGRIND=DIR runs every mprocd the tests start under valgrind's
# memcheck (scripts/valgrind-tests): a test then fails on any error or
# definite leak in the supervisor or a worker, whose report is kept in DIR.
VALGRIND_DIR = os.environ.get("MPROCD_VALGRIND")


def valgrind_wrapper(logdir):
    """valgrind's command line, reports in logdir/vg.PID.log. Workers are
    mprocd re-executed, so they are traced too; jobs' programs are not."""
    return ["valgrind", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--trace-children=yes",
            "--child-silent-after-fork=yes",
            "--trace-children-skip=/usr/*,/bin/*,/sbin/*,*/python*,*/sh,"
            "*/sleep,*/head,*/cat,*/true,*/false,*/nonexistent",
            "--log-file=" + os.path.join(logdir, "vg.%p.log")]


def valgrind_reports(logdir):
    """{path: text} of the finished reports on mprocd processes in logdir."""
    reports = {}
    for name in sorted(os.listdir(logdir)):
        if not (name.startswith("vg.") and name.endswith(".log")):
            continue
        path = os.path.join(logdir, name)
        with open(path, errors="replace") as f:
            text = f.read()
        if "Command: " in text and "mprocd" in text.partition(
                "Command: ")[2].partition("\n")[0]:
            reports[path] = text
    return reports


def valgrind_problems(reports):
    """The reports that show an error or a definite leak."""
    return {path: text for path, text in reports.items()
            if re.search(r"ERROR SUMMARY: [1-9]", text) or
            re.search(r"definitely lost: [1-9]", text)}


def other_user_python():
    """A python3 that uid OTHER_UID can run under setpriv, or SkipTest."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("SKIPPED: this test needs root (it runs a "
                                "client as uid %d)" % OTHER_UID)
    for py in (sys.executable, "/usr/bin/python3"):
        if subprocess.run(as_other_user(py, "-c", "pass"),
                          capture_output=True).returncode == 0:
            return py
    raise unittest.SkipTest("SKIPPED: no python3 that uid %d can run"
                            % OTHER_UID)


def as_other_user(*argv):
    """argv run as uid and gid OTHER_UID, with no other groups."""
    return ["setpriv", "--reuid=%d" % OTHER_UID, "--regid=%d" % OTHER_UID,
            "--clear-groups"] + list(argv)


def conf(main="", level="debug", **pools):
    """A configuration logging to stderr at level; ';' separates lines of a
    section, and a key in main replaces the default one. A pool is its
    lines (written as given, bad ones too) or its number of workers.
    Without pools, one pool "default" of 2 workers."""
    keys = {"log_target": "stderr", "log_level": level}
    for line in filter(None, (l.strip() for l in main.split(";"))):
        k, eq, v = line.partition("=")
        assert eq, "not KEY = VALUE in main: %r" % line
        keys[k.strip()] = v.strip()
    text = "[mprocd]\n" + "".join("%s = %s\n" % kv for kv in keys.items())
    for name, body in (pools or {"default": 2}).items():
        if isinstance(body, int):
            body = "workers = %d" % body
        text += "[pool %s]\n" % name
        text += "".join(l.strip() + "\n" for l in body.split(";")
                        if l.strip())
    return text


def asan_build():
    """Whether MPROCD is built with AddressSanitizer."""
    with open(MPROCD, "rb") as f:
        return b"__asan_init" in f.read()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_status(pid, key):
    """A kB figure of /proc/PID/status (VmRSS, VmHWM), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # The second when it is reaped while we read.
        return False


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().rstrip(b"\0").decode()


def children(pid):
    """The children of a single-threaded process, zombies included."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def fd_list(pid):
    """fd -> what it points to; {} once the process is gone."""
    fds = {}
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                fds[int(name)] = os.readlink("/proc/%d/fd/%s" % (pid, name))
            except OSError:
                pass
    except FileNotFoundError:
        pass
    return fds


def ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rpartition(")")[2].split()[1])


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


_libc = ctypes.CDLL(None, use_errno=True)
_PTRACE_SEIZE = 0x4206
_PTRACE_INTERRUPT = 0x4207
_WALL = 0x40000000


class Frozen:
    """A process held in a ptrace stop: unlike SIGSTOP (after which a fatal
    SIGTERM still kills it) it ignores every signal but SIGKILL, like a
    worker stuck for good. Its trace reports are consumed in a thread so
    that its real parent still sees it die."""

    def __init__(self, pid):
        self.pid = pid
        for req in (_PTRACE_SEIZE, _PTRACE_INTERRUPT):
            if _libc.ptrace(req, pid, None, None) != 0:
                raise unittest.SkipTest(
                    "SKIPPED: cannot ptrace pid %d (%s); this test needs "
                    "root or kernel.yama.ptrace_scope=0"
                    % (pid, os.strerror(ctypes.get_errno())))
        self.thread = threading.Thread(target=self._reap, daemon=True)
        self.thread.start()

    def _reap(self):
        while True:
            try:
                _, status = os.waitpid(self.pid, _WALL)
            except ChildProcessError:
                return
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                return


class VarlinkError(Exception):
    def __init__(self, error, parameters):
        super().__init__("%s %s" % (error, json.dumps(parameters)))
        self.error = error
        self.parameters = parameters


class Conn:
    """One Varlink connection."""

    def __init__(self, path, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""

    def close(self):
        self.sock.close()

    def closed_by_peer(self, timeout=10):
        """True once the daemon closed this connection: EOF, or a reset when
        it dropped input it had not read."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(100) == b""
        except ConnectionResetError:
            return True

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, method, parameters=None, **flags):
        msg = {"method": method}
        if parameters is not None:
            msg["parameters"] = parameters
        msg.update(flags)
        self.send_raw(json.dumps(msg).encode() + b"\0")

    def recv(self):
        """The next message as a dict; None at end of stream."""
        while b"\0" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method, parameters=None):
        self.send(method, parameters)
        reply = self.recv()
        if reply is None:
            raise ConnectionError("mprocd closed the connection")
        if "error" in reply:
            raise VarlinkError(reply["error"], reply.get("parameters", {}))
        return reply.get("parameters", {})


DEFAULT_CONFIG = conf()


class Daemon:
    """A real mprocd in a temporary directory."""

    def __init__(self, config=DEFAULT_CONFIG):
        self.dir = tempfile.mkdtemp(prefix="mprocd-test-")
        self.sock = os.path.join(self.dir, "mprocd.sock")
        self.conf = os.path.join(self.dir, "mprocd.conf")
        self.logpath = os.path.join(self.dir, "mprocd.log")
        with open(self.conf, "w") as f:
            f.write(config)
        self.proc = None
        self.known_pids = set()
        self.conns = []
        self.valgrind = False
        self.id = os.path.basename(self.dir)

    def start(self, wait=True, args=(), new_group=False, env=None,
              preexec_fn=None, stdio=True, wrapper=()):
        # state = auto puts the state database here too (as systemd's
        # StateDirectory= would): every test runs with one of its own.
        e = dict(os.environ, XDG_RUNTIME_DIR=self.dir,
                 STATE_DIRECTORY=self.dir)
        e.pop("NOTIFY_SOCKET", None)
        e.pop("LISTEN_FDS", None)
        e.update(env or {})
        self.logfile = open(self.logpath, "ab")
        out = self.logfile if stdio else None
        if VALGRIND_DIR and not wrapper:
            wrapper = valgrind_wrapper(self.dir)
            self.valgrind = True
        self.proc = subprocess.Popen(
            list(wrapper) + [MPROCD, "-c", self.conf, "-s", self.sock]
            + list(args),
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=e,
            process_group=0 if new_group else None, preexec_fn=preexec_fn)
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self):
        """Until every worker of every pool is idle."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("mprocd exited with %s:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                st = self.status()
            except (OSError, ConnectionError):
                return False
            return all(w["state"] == "idle" for p in st["pools"]
                       for w in p["workers"]) and st
        return wait_for(ready, "every worker idle")

    def connect(self):
        c = Conn(self.sock)
        self.conns.append(c)
        return c

    def call(self, method, parameters=None):
        c = self.connect()
        try:
            return c.call(method, parameters)
        finally:
            c.close()

    def status(self):
        st = self.call("io.mprocd.Status")
        for p in st["pools"]:
            for w in p["workers"]:
                if "pid" in w:
                    self.known_pids.add(w["pid"])
        return st

    def pool(self, name="default"):
        for p in self.status()["pools"]:
            if p["name"] == name:
                return p
        raise AssertionError("no pool %s in Status" % name)

    def worker(self, name):
        pool = name.rpartition("/")[0]
        for w in self.pool(pool)["workers"]:
            if w["name"] == name:
                return w
        raise AssertionError("no worker %s in Status" % name)

    def worker_pids(self):
        return [w["pid"] for p in self.status()["pools"]
                for w in p["workers"] if "pid" in w]

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("mprocd did not exit within %.0fs:\n%s"
                                 % (timeout, self.log()))

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait_exit()

    def cleanup(self):
        for c in self.conns:
            c.close()
        if self.proc is not None and self.proc.poll() is None:
            if self.valgrind:
                # Let valgrind finish its reports before the kill.
                self.proc.terminate()
                try:
                    self.proc.wait(TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for pid in self.known_pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc is not None:
            self.logfile.close()
        problems = {}
        if self.valgrind:
            # Workers finish their reports after the supervisor is gone.
            time.sleep(1)
            reports = valgrind_reports(self.dir)
            problems = valgrind_problems(reports)
            for path in problems:
                shutil.copy(path, VALGRIND_DIR)
            # One line per process checked, for scripts/valgrind-tests.
            with open(os.path.join(VALGRIND_DIR, "checked"), "a") as f:
                for path in reports:
                    f.write("%s %s\n" % ("problem" if path in problems
                                          else "clean", self.id))
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise AssertionError("valgrind found errors; reports in %s:\n%s"
                                 % (VALGRIND_DIR, "\n".join(
                                     problems.values())))


class DaemonTestCase(unittest.TestCase):
    """A test case with self.daemon(config) that cleans up after itself."""

    def daemon(self, config=DEFAULT_CONFIG, start=True, **kw):
        d = Daemon(config)
        self.addCleanup(d.cleanup)
        self.addCleanup(self._dump_log_on_failure, d)
        if start:
            d.start(**kw)
        return d

    def _dump_log_on_failure(self, d):
        outcome = getattr(self, "_outcome", None)
        errors = getattr(getattr(outcome, "result", None), "errors", [])
        failures = getattr(getattr(outcome, "result", None), "failures", [])
        if any(t is self for t, _ in errors + failures) and \
                os.path.exists(d.logpath):
            print("---- mprocd log (%s) ----\n%s" % (self.id(), d.log()))


# A Wait is bounded below the socket's timeout, so a hang shows as TimedOut.
WAIT = TIMEOUT * 0.75

# For sh -c: runs until the file $1 exists.
GATE = 'while [ ! -e "$1" ]; do sleep 0.02; done'


class JobsTestCase(DaemonTestCase):
    """A daemon and one connection to drive its jobs."""

    def start(self, config, **kw):
        self.d = self.daemon(config, **kw)
        self.c = self.d.connect()
        return self.d

    def path(self, name):
        """A file in the daemon's temporary directory."""
        return os.path.join(self.d.dir, name)

    def submit_reply(self, argv, c=None, **params):
        params["argv"] = argv
        return (c or self.c).call("io.mprocd.Submit", params)

    def submit(self, argv, c=None, **params):
        return self.submit_reply(argv, c, **params)["id"]

    def wait(self, ids, c=None):
        jobs = (c or self.c).call("io.mprocd.Wait",
                                  {"ids": ids, "timeout_sec": WAIT})["jobs"]
        self.assertEqual([j["id"] for j in jobs], ids)
        return jobs

    def gate(self, name, **params):
        """A job that runs until release(name)."""
        return self.submit(["sh", "-c", GATE, "sh", self.path(name)],
                           **params)

    def release(self, name):
        open(self.path(name), "w").close()

    def reload(self, text):
        """Writes text as the daemon's configuration and reloads it."""
        tmp = self.d.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.d.conf)
        self.assertEqual(self.c.call("io.mprocd.Reload"), {})


def main():
    unittest.main(verbosity=2)
