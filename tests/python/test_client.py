"""The client library (python/mprocd/client.py, mprocd.Client) against a real
mprocd: every method, the result of a job however it ended, the errors
mprocd answers and those of the connection itself. Features of a job
(stdin, env, cwd, timeout...) are checked both through run() (one
io.mprocd.Run call) and through submit() + wait() + get(); the run() half
is skipped, saying so, only while mprocd answers MethodNotFound for Run.
A few tests use a fake mprocd (a thread on a socket) to send replies in
pieces, together, or broken."""

import errno
import os
import pickle
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

SRCDIR = os.environ.get("MPROCD_SRCDIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.abspath(os.path.join(SRCDIR, "python")))
sys.path.insert(0, os.path.abspath(os.path.join(SRCDIR, "tests",
                                                "integration")))

import mprocd  # noqa: E402
from mprocd import varlink  # noqa: E402
import mprocd_test as mt  # noqa: E402

MAX_OUTPUT = 4096
CONFIG = mt.conf(
    default="workers = 2; max_output = %d; kill_grace = 0.5s" % MAX_OUTPUT,
    side="workers = 1")
NO_RUN = "SKIPPED: mprocd has no Run method yet"
# How a job is run: one Run call, or Submit, Wait and Get.
VIA = ("run", "submit")


def run_or_skip(test, c, argv, **kw):
    """c.run(); skips the test (or subtest) only if mprocd has no Run."""
    try:
        return c.run(argv, **kw)
    except mprocd.Error as e:
        if e.name == varlink.METHOD_NOT_FOUND and \
                e.parameters.get("method") == "io.mprocd.Run":
            test.skipTest(NO_RUN)
        raise


class SharedDaemon(unittest.TestCase):
    """One mprocd for the class (pools default: 2 workers, side: 1), and a
    fresh Client for each test."""

    @classmethod
    def setUpClass(cls):
        cls.d = mt.Daemon(CONFIG)
        cls.addClassCleanup(cls.d.cleanup)
        cls.d.start()

    def setUp(self):
        self.c = mprocd.Client(self.d.sock)
        self.addCleanup(self.c.close)

    def job(self, via, argv, **kw):
        """A finished job as a CompletedJob, run as via says."""
        if via == "run":
            return run_or_skip(self, self.c, argv, **kw)
        i = self.c.submit(argv, **kw)
        self.assertIsInstance(i, int)
        self.c.wait([i], timeout=mt.WAIT)
        return self.c.get(i)

    def gate(self, name, **kw):
        """The id of a job that runs until the file name exists."""
        path = os.path.join(self.d.dir, name)
        self.addCleanup(lambda: open(path, "w").close())
        return self.c.submit(["sh", "-c", mt.GATE, "sh", path], **kw)

    def release(self, name):
        open(os.path.join(self.d.dir, name), "w").close()


class TestJobs(SharedDaemon):
    """A job's result, however it ended, through run() and submit()."""

    def test_echo(self):
        for via in VIA:
            with self.subTest(via=via):
                r = self.job(via, ["echo", "hello", "world"])
                self.assertIsInstance(r, mprocd.CompletedJob)
                self.assertEqual(r.returncode, 0)
                self.assertEqual(r.stdout, b"hello world\n")
                self.assertEqual(r.stderr, b"")
                self.assertEqual(r.state, "succeeded")
                self.assertEqual(r.job["state"], "succeeded")
                self.assertEqual(r.job["argv"], ["echo", "hello", "world"])
                self.assertEqual(r.args, ["echo", "hello", "world"])
                self.assertEqual(r.id, r.job["id"])
                self.assertIsNone(r.result)
                self.assertIs(r.truncated, False)
                self.assertIsNone(r.check_returncode())
                self.assertIn("returncode=0", repr(r))

    def test_exit_status(self):
        for via in VIA:
            with self.subTest(via=via):
                r = self.job(via, ["sh", "-c", "echo out; echo err >&2; "
                                   "exit 3"])
                self.assertEqual(r.returncode, 3)
                self.assertEqual(r.state, "failed")
                with self.assertRaises(mprocd.JobError) as cm:
                    r.check_returncode()
                e = cm.exception
                self.assertIsInstance(e, mprocd.Error)
                self.assertEqual(e.returncode, 3)
                self.assertEqual(e.job["id"], r.id)
                self.assertEqual(e.id, r.id)
                self.assertEqual(e.stdout, b"out\n")
                self.assertEqual(e.stderr, b"err\n")
                self.assertIsNone(e.result)
                self.assertIs(e.completed, r)
                self.assertIsNone(e.name)
                self.assertEqual(e.parameters, {"id": r.id,
                                                "state": "failed"})
                self.assertIn("job %d" % r.id, str(e))
                self.assertIn("exit status 3", str(e))
                self.assertIn("stderr: err", str(e))
                # Carried whole to another process.
                e2 = pickle.loads(pickle.dumps(e))
                self.assertEqual((e2.returncode, e2.stderr, str(e2)),
                                 (3, b"err\n", str(e)))

    def test_killed_by_signal(self):
        for via in VIA:
            with self.subTest(via=via):
                r = self.job(via, ["sh", "-c", "echo before; kill -9 $$"])
                self.assertEqual(r.returncode, -9)
                self.assertEqual(r.job.get("signal"), 9)
                self.assertEqual(r.state, "failed")
                self.assertEqual(r.stdout, b"before\n")
                with self.assertRaises(mprocd.JobError) as cm:
                    r.check_returncode()
                self.assertEqual(cm.exception.returncode, -9)
                self.assertIn("SIGKILL", str(cm.exception))

    def test_stdin_round_trip(self):
        data = bytes(range(256)) * 3 + b"\0\0\xff\xfe\x80 end"
        for via in VIA:
            with self.subTest(via=via, stdin="bytes"):
                r = self.job(via, ["cat"], stdin=data)
                self.assertEqual(r.stdout, data)
            with self.subTest(via=via, stdin="bytearray"):
                r = self.job(via, ["cat"], stdin=bytearray(data))
                self.assertEqual(r.stdout, data)
            with self.subTest(via=via, stdin="str"):
                r = self.job(via, ["cat"], stdin="h\u00e9llo \u20ac\n")
                self.assertEqual(r.stdout, "h\u00e9llo \u20ac\n".encode())
            with self.subTest(via=via, stdin="none"):
                # No stdin: the job reads end of file at once.
                r = self.job(via, ["cat"])
                self.assertEqual((r.returncode, r.stdout), (0, b""))

    def test_env_dict_and_list(self):
        script = 'printf "%s|%s|%s" "$A" "$B" "$MPROCD_POOL"'
        for via in VIA:
            with self.subTest(via=via, env="dict"):
                r = self.job(via, ["sh", "-c", script],
                             env={"A": "one", "B": "two=2 \u00e9"})
                self.assertEqual(r.stdout.decode(),
                                 "one|two=2 \u00e9|default")
            with self.subTest(via=via, env="list"):
                r = self.job(via, ["sh", "-c", script],
                             env=["A=x", "B="])
                self.assertEqual(r.stdout, b"x||default")

    def test_cwd(self):
        tmp = tempfile.mkdtemp(prefix="mprocd-client-cwd-")
        self.addCleanup(os.rmdir, tmp)
        here = os.getcwd()
        for via in VIA:
            with self.subTest(via=via, cwd="default"):
                r = self.job(via, ["pwd", "-P"])
                self.assertEqual(r.job["cwd"], here)
                self.assertEqual(r.stdout.decode().strip(),
                                 os.path.realpath(here))
            with self.subTest(via=via, cwd="given"):
                r = self.job(via, ["pwd", "-P"], cwd=tmp)
                self.assertEqual(r.job["cwd"], tmp)
                self.assertEqual(r.stdout.decode().strip(),
                                 os.path.realpath(tmp))
            with self.subTest(via=via, cwd="relative"):
                r = self.job(via, ["pwd", "-P"], cwd=os.path.relpath(tmp))
                self.assertEqual(r.job["cwd"], os.path.abspath(tmp))

    def test_timeout(self):
        """A job past its timeout ends "timeout", killed by SIGTERM (-15),
        or by SIGKILL (-9) when it ignores SIGTERM past kill_grace."""
        for via in VIA:
            with self.subTest(via=via, signal="TERM"):
                t0 = time.monotonic()
                r = self.job(via, ["sleep", "30"], timeout=0.3)
                self.assertLess(time.monotonic() - t0, 10)
                self.assertEqual(r.state, "timeout")
                self.assertEqual(r.returncode, -15)
                with self.assertRaises(mprocd.JobError) as cm:
                    r.check_returncode()
                self.assertIn("timed out", str(cm.exception))
                self.assertIn("SIGTERM", str(cm.exception))
            with self.subTest(via=via, signal="KILL"):
                r = self.job(via, ["sh", "-c", 'trap "" TERM; sleep 30'],
                             timeout=0.2)
                self.assertEqual(r.state, "timeout")
                self.assertEqual(r.returncode, -9)

    def test_missing_program(self):
        for via in VIA:
            with self.subTest(via=via):
                r = self.job(via, ["/nonexistent/mprocd-test-prog", "x"])
                self.assertEqual(r.returncode, 127)
                self.assertEqual(r.state, "failed")
                self.assertIn(b"cannot run", r.stderr)
                self.assertIn(b"/nonexistent/mprocd-test-prog", r.stderr)
                self.assertIn(b"No such file", r.stderr)
                with self.assertRaises(mprocd.JobError) as cm:
                    r.check_returncode()
                self.assertIn("exit status 127", str(cm.exception))
                self.assertIn("cannot run", str(cm.exception))

    def test_output_truncated(self):
        for via in VIA:
            with self.subTest(via=via):
                r = self.job(via, ["sh", "-c", "head -c 100000 /dev/zero; "
                                   "echo err >&2"])
                self.assertIs(r.truncated, True)
                self.assertEqual(r.stdout, b"\0" * MAX_OUTPUT)
                self.assertEqual(r.stderr, b"err\n")
                self.assertEqual(r.returncode, 0)
                r = self.job(via, ["head", "-c", str(MAX_OUTPUT),
                                   "/dev/zero"])
                self.assertIs(r.truncated, False)
                self.assertEqual(len(r.stdout), MAX_OUTPUT)

    def test_name_pool_retries(self):
        for via in VIA:
            with self.subTest(via=via):
                r = self.job(via, ["sh", "-c", 'echo "$MPROCD_POOL"'],
                             pool="side", name="my job", retries=2)
                self.assertEqual(r.job["pool"], "side")
                self.assertEqual(r.job["name"], "my job")
                self.assertEqual(r.stdout, b"side\n")
                self.assertTrue(r.job["worker"].startswith("side/"))

    def test_type_errors_send_nothing(self):
        before = len(self.c.list())
        sock = self.c._sock
        bad = [(("echo hi",), {}),
               ((["echo", 1],), {}),
               ((["cat"],), {"stdin": 5}),
               ((["env"],), {"env": "A=1"}),
               ((["env"],), {"env": {"A": 1}}),
               ((["true"],), {"timeout": "3"}),
               ((["true"],), {"retries": 1.5})]
        for args, kw in bad:
            with self.subTest(args=args, kw=kw):
                with self.assertRaises(TypeError):
                    self.c.submit(*args, **kw)
                with self.assertRaises(TypeError):
                    self.c.run(*args, **kw)
        with self.assertRaises(TypeError):
            self.c.get("1")
        # What mprocd's JSON cannot carry.
        with self.assertRaises(ValueError):
            self.c.submit(["echo", "a\0b"])
        with self.assertRaises(ValueError):
            self.c.run(["true"], timeout=float("nan"))
        # Nothing went out, and the connection is as it was.
        self.assertEqual(len(self.c.list()), before)
        self.assertIs(self.c._sock, sock)


class TestMethods(SharedDaemon):

    def test_submit_wait_get(self):
        a = self.c.submit(["sh", "-c", "sleep 0.2; echo a"])
        b = self.c.submit(["echo", "b"], name="bee")
        self.assertIsInstance(a, int)
        self.assertEqual(b, a + 1)
        jobs = self.c.wait([b, a], timeout=mt.WAIT)
        self.assertEqual([j["id"] for j in jobs], [b, a])
        self.assertEqual([j["state"] for j in jobs], ["succeeded"] * 2)
        self.assertEqual(jobs[0]["name"], "bee")
        # One id alone is a list of one.
        self.assertEqual([j["id"] for j in self.c.wait(a)], [a])
        r = self.c.get(a)
        self.assertEqual((r.id, r.returncode, r.stdout), (a, 0, b"a\n"))
        self.assertEqual(self.c.get(b).stdout, b"b\n")
        self.assertEqual(self.c.wait([]), [])

    def test_after_and_lock(self):
        a = self.c.submit(["sh", "-c", "sleep 0.2; exit 1"])
        b = self.c.submit(["true"], after=[a], lock="t")
        ok = self.c.submit(["true"])
        r = self.c.run(["echo", "c"], after=ok, lock="t")
        self.assertEqual(r.state, "succeeded")
        self.assertEqual(r.job["after"], [ok])
        self.assertEqual(r.job["lock"], "t")
        job = self.c.wait([b], timeout=mt.WAIT)[0]
        self.assertEqual((job["state"], job["reason"]),
                         ("cancelled", "job %d failed" % a))
        with self.assertRaises(TypeError):
            self.c.submit(["true"], after=["x"])

    def test_follow_live(self):
        """follow() gets a running job's earlier output, then each piece
        as it comes (the job waits for the next line until the reader has
        the last), streams apart; then the finished job."""
        step = os.path.join(self.d.dir, "follow-step")
        script = ('echo one; echo err >&2; '
                  'while [ ! -e "$1" ]; do sleep 0.02; done; echo two; '
                  'exit 3')
        i = self.c.submit(["sh", "-c", script, "sh", step])
        self.addCleanup(lambda: open(step, "w").close())
        got = []
        with self.c.follow(i) as f:
            self.assertIsInstance(f, mprocd.Following)
            self.assertEqual(f.id, i)
            for stream, data, truncated in f:
                self.assertFalse(truncated)
                got.append((stream, data))
                if data == b"err\n":
                    # Only now may the job go on: the pieces came live.
                    self.assertEqual(self.c.get(i).state, "running")
                    open(step, "w").close()
            self.assertEqual(got, [("stdout", b"one\n"),
                                   ("stderr", b"err\n"),
                                   ("stdout", b"two\n")])
            cj = f.completed
        self.assertIsInstance(cj, mprocd.CompletedJob)
        self.assertEqual((cj.id, cj.state, cj.returncode, cj.stdout),
                         (i, "failed", 3, b""))
        self.assertRaises(mprocd.JobError, cj.check_returncode)
        # Iterating again: nothing more.
        self.assertEqual(list(f), [])
        # A finished job: its output, then the job.
        f = self.c.follow(i)
        self.assertEqual([d for _, d, _ in f], [b"one\n", b"err\n",
                                                b"two\n"])
        self.assertEqual(f.completed.returncode, 3)

    def test_start(self):
        """start() answers once the job is queued (its id known), then its
        output comes as it is produced; a refused job raises at once."""
        step = os.path.join(self.d.dir, "start-step")
        self.addCleanup(lambda: open(step, "w").close())
        f = self.c.start(["sh", "-c", 'echo a; while [ ! -e "$1" ]; do '
                          'sleep 0.02; done; echo b', "sh", step],
                         pool="side", name="st")
        self.addCleanup(f.close)
        self.assertIsInstance(f.id, int)
        self.assertEqual(self.c.get(f.id).job["name"], "st")
        self.assertEqual(next(f), ("stdout", b"a\n", False))
        open(step, "w").close()
        self.assertEqual(list(f), [("stdout", b"b\n", False)])
        self.assertEqual((f.completed.state, f.completed.id),
                         ("succeeded", f.id))
        with self.assertRaises(mprocd.Error) as e:
            self.c.start(["true"], pool="no-such-pool")
        self.assertEqual(e.exception.name, "io.mprocd.NoSuchPool")
        with self.assertRaises(TypeError):
            self.c.start("true")

    def test_follow_errors_and_close(self):
        with self.assertRaises(mprocd.Error) as e:
            list(self.c.follow(10 ** 9))
        self.assertEqual(e.exception.name, "io.mprocd.NoSuchJob")
        with self.assertRaises(TypeError):
            self.c.follow("1")
        # Closing a Following early leaves the job running.
        g = self.gate("follow-close")
        f = self.c.follow(g)
        f.close()
        with self.assertRaises(mprocd.Error):
            next(f)
        self.assertEqual(self.c.get(g).state in ("queued", "running"), True)
        self.release("follow-close")
        self.assertEqual(self.c.wait([g], timeout=mt.WAIT)[0]["state"],
                         "succeeded")
        # A closed Client follows nothing.
        c = mprocd.Client(self.d.sock)
        c.close()
        with self.assertRaises(mprocd.Error):
            c.follow(g)

    def test_get_unfinished(self):
        g = self.gate("get-unfinished")
        mt.wait_for(lambda: self.c.get(g).state == "running", "running")
        r = self.c.get(g)
        self.assertIsNone(r.returncode)
        self.assertRaises(mprocd.JobError, r.check_returncode)
        self.release("get-unfinished")
        self.c.wait([g], timeout=mt.WAIT)
        self.assertEqual(self.c.get(g).returncode, 0)

    def test_wait_timed_out(self):
        g = self.gate("wait-timed-out")
        t0 = time.monotonic()
        with self.assertRaises(mprocd.Error) as cm:
            self.c.wait([g], timeout=0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        e = cm.exception
        self.assertNotIsInstance(e, mprocd.JobError)
        self.assertEqual(e.name, "io.mprocd.TimedOut")
        self.assertEqual(e.parameters, {"ids": [g]})
        self.assertIn(str(g), str(e))
        self.assertIn("io.mprocd.TimedOut", str(e))
        # The connection goes on.
        sock = self.c._sock
        self.release("wait-timed-out")
        self.assertEqual(self.c.wait([g], timeout=mt.WAIT)[0]["state"],
                         "succeeded")
        self.assertIs(self.c._sock, sock)

    def test_cancel(self):
        # side has one worker: the gate runs, the second job waits.
        g = self.gate("cancel", pool="side")
        q = self.c.submit(["echo", "never"], pool="side")
        self.assertEqual(self.c.get(q).state, "queued")
        job = self.c.cancel(q)
        self.assertEqual((job["id"], job["state"]), (q, "cancelled"))
        r = self.c.get(q)
        self.assertIsNone(r.returncode)
        self.assertEqual(r.stdout, b"")
        with self.assertRaises(mprocd.JobError) as cm:
            r.check_returncode()
        self.assertIn("cancelled", str(cm.exception))
        self.assertIsNone(cm.exception.returncode)
        mt.wait_for(lambda: self.c.get(g).state == "running", "running")
        job = self.c.cancel(g)
        self.assertEqual(job["state"], "cancelled")
        self.assertEqual(self.c.get(g).returncode, -15)
        # A finished job is left as it was.
        self.assertEqual(self.c.cancel(g)["state"], "cancelled")

    def test_list(self):
        a = self.c.submit(["true"], pool="side")
        b = self.c.submit(["false"])
        self.c.wait([a, b], timeout=mt.WAIT)
        ids = [j["id"] for j in self.c.list()]
        self.assertIn(a, ids)
        self.assertIn(b, ids)
        side = self.c.list(pool="side")
        self.assertIn(a, [j["id"] for j in side])
        self.assertEqual({j["pool"] for j in side}, {"side"})
        failed = self.c.list(state="failed")
        self.assertIn(b, [j["id"] for j in failed])
        self.assertNotIn(a, [j["id"] for j in failed])
        self.assertEqual({j["state"] for j in failed}, {"failed"})
        self.assertEqual(self.c.list(pool="side", state="failed"), [])

    def test_status(self):
        st = self.c.status()
        self.assertEqual(st["pid"], self.d.pid)
        self.assertIsInstance(st["version"], str)
        self.assertEqual([p["name"] for p in st["pools"]],
                         ["default", "side"])
        self.assertEqual(len(st["pools"][0]["workers"]), 2)

    def test_call(self):
        info = self.c.call("org.varlink.service.GetInfo")
        self.assertIn("io.mprocd", info["interfaces"])
        with self.assertRaises(mprocd.Error) as cm:
            self.c.call("io.mprocd.NoSuchMethod")
        self.assertEqual(cm.exception.name, varlink.METHOD_NOT_FOUND)
        self.assertEqual(cm.exception.parameters,
                         {"method": "io.mprocd.NoSuchMethod"})

    def test_errors(self):
        sock = self.c._sock
        cases = [
            (lambda: self.c.get(999999), "io.mprocd.NoSuchJob",
             {"id": 999999}, "no job 999999"),
            (lambda: self.c.cancel(999999), "io.mprocd.NoSuchJob",
             {"id": 999999}, "no job 999999"),
            (lambda: self.c.wait([999999]), "io.mprocd.NoSuchJob",
             {"id": 999999}, "no job 999999"),
            (lambda: self.c.submit(["true"], pool="nope"),
             "io.mprocd.NoSuchPool", {"pool": "nope"}, "no pool 'nope'"),
            (lambda: self.c.submit([]), varlink.INVALID_PARAMETER,
             {"parameter": "argv"}, "invalid parameter 'argv'"),
            (lambda: self.c.submit(["true"], timeout=-1),
             varlink.INVALID_PARAMETER, {"parameter": "timeout_sec"},
             "invalid parameter 'timeout_sec'"),
            (lambda: self.c.submit(["true"], env=["NOEQUALS"]),
             varlink.INVALID_PARAMETER, {"parameter": "env"},
             "invalid parameter 'env'"),
            (lambda: self.c.wait([1, 1]), varlink.INVALID_PARAMETER,
             {"parameter": "ids"}, "invalid parameter 'ids'"),
        ]
        for fn, name, params, text in cases:
            with self.subTest(name=name, params=params):
                with self.assertRaises(mprocd.Error) as cm:
                    fn()
                e = cm.exception
                self.assertEqual(e.name, name)
                self.assertEqual(e.parameters, params)
                self.assertEqual(str(e), "%s (%s)" % (text, name))
                e2 = pickle.loads(pickle.dumps(e))
                self.assertEqual((type(e2), e2.name, e2.parameters, str(e2)),
                                 (mprocd.Error, name, params, str(e)))
        # Error replies leave the connection as it was.
        self.assertIs(self.c._sock, sock)
        # Run answers the same errors, once it exists.
        with self.subTest(via="run"):
            with self.assertRaises(mprocd.Error) as cm:
                run_or_skip(self, self.c, ["true"], pool="nope")
            self.assertEqual(cm.exception.name, "io.mprocd.NoSuchPool")
            self.assertEqual(cm.exception.parameters, {"pool": "nope"})


class TestConnection(unittest.TestCase):

    def test_default_socket(self):
        default = mprocd.client.default_socket
        with mock.patch.dict(os.environ, {"MPROCD_SOCKET": "/x/y.sock",
                                          "XDG_RUNTIME_DIR": "/run/u"}):
            self.assertEqual(default(), "/x/y.sock")
        with mock.patch.dict(os.environ, {"MPROCD_SOCKET": "",
                                          "XDG_RUNTIME_DIR": "/run/u"}), \
                mock.patch("os.geteuid", return_value=1000):
            self.assertEqual(default(), "/run/u/mprocd.sock")
        with mock.patch.dict(os.environ, {"XDG_RUNTIME_DIR": "/run/u"}), \
                mock.patch("os.geteuid", return_value=0):
            os.environ.pop("MPROCD_SOCKET", None)
            self.assertEqual(default(), "/run/mprocd/mprocd.sock")
        for xdg in (None, "", "relative"):
            env = {"XDG_RUNTIME_DIR": xdg} if xdg is not None else {}
            with mock.patch.dict(os.environ, env), \
                    mock.patch("os.geteuid", return_value=1000):
                os.environ.pop("MPROCD_SOCKET", None)
                if xdg is None:
                    os.environ.pop("XDG_RUNTIME_DIR", None)
                with self.assertRaises(mprocd.Error) as cm:
                    mprocd.Client()
                self.assertIn("XDG_RUNTIME_DIR", str(cm.exception))
                self.assertIsNone(cm.exception.name)

    def test_connect_refused(self):
        tmp = tempfile.mkdtemp(prefix="mprocd-client-")
        self.addCleanup(os.rmdir, tmp)
        missing = os.path.join(tmp, "missing.sock")
        with self.assertRaises(mprocd.Error) as cm:
            mprocd.Client(missing)
        e = cm.exception
        self.assertIsNone(e.name)
        self.assertIn(missing, str(e))
        self.assertIn("is mprocd running?", str(e))
        self.assertEqual(e.__cause__.errno, errno.ENOENT)
        # A socket file nobody listens on: ECONNREFUSED.
        dead = os.path.join(tmp, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(dead)
        s.close()
        self.addCleanup(os.unlink, dead)
        with mock.patch.dict(os.environ, {"MPROCD_SOCKET": dead}):
            with self.assertRaises(mprocd.Error) as cm:
                mprocd.Client()
        self.assertIn(dead, str(cm.exception))
        self.assertIn("is mprocd running?", str(cm.exception))
        self.assertEqual(cm.exception.__cause__.errno, errno.ECONNREFUSED)


class TestDaemonGoes(mt.DaemonTestCase):
    """mprocd stopping, dying and restarting under a Client."""

    def restart(self, d):
        d.logfile.close()
        d.start()

    def test_socket_from_environment_and_context_manager(self):
        d = self.daemon(CONFIG)
        with mock.patch.dict(os.environ, {"MPROCD_SOCKET": d.sock}):
            with mprocd.Client() as c:
                self.assertEqual(c.socket, d.sock)
                self.assertEqual(c.status()["pid"], d.pid)
                sock = c._sock
        self.assertEqual(sock.fileno(), -1)
        with self.assertRaises(mprocd.Error) as cm:
            c.status()
        self.assertIn("closed", str(cm.exception))
        c.close()

    def test_killed_mid_call(self):
        d = self.daemon(CONFIG)
        c = mprocd.Client(d.sock)
        self.addCleanup(c.close)
        gate = os.path.join(d.dir, "never")
        g = c.submit(["sh", "-c", mt.GATE, "sh", gate])
        caught = []

        def wait():
            try:
                c.wait([g])
            except Exception as e:
                caught.append(e)
        t = threading.Thread(target=wait, daemon=True)
        t.start()
        # The Wait is in mprocd's hands, then mprocd dies.
        time.sleep(0.3)
        d.proc.kill()
        d.proc.wait()
        t.join(mt.TIMEOUT)
        self.assertFalse(t.is_alive(), "wait() hangs after mprocd died")
        self.assertEqual(len(caught), 1, caught)
        e = caught[0]
        self.assertIsInstance(e, mprocd.Error)
        self.assertIsNone(e.name)
        self.assertRegex(str(e), "(closed|lost) the connection")
        self.assertIn("io.mprocd.Wait", str(e))
        # Nobody on the socket now.
        with self.assertRaises(mprocd.Error) as cm:
            c.status()
        self.assertIn("is mprocd running?", str(cm.exception))
        # Back: the same Client connects again.
        self.restart(d)
        self.assertEqual(c.status()["pid"], d.pid)

    def test_restart_between_calls(self):
        d = self.daemon(CONFIG)
        c = mprocd.Client(d.sock)
        self.addCleanup(c.close)
        old = c.status()["pid"]
        self.assertEqual(d.stop(), 0)
        self.restart(d)
        # The idle connection mprocd closed is seen, and replaced.
        st = c.status()
        self.assertNotEqual(st["pid"], old)
        self.assertEqual(st["pid"], d.pid)

    def test_reload(self):
        d = self.daemon(CONFIG)
        c = mprocd.Client(d.sock)
        self.addCleanup(c.close)
        with open(d.conf, "w") as f:
            f.write(mt.conf(default=2, side=1, extra=1))
        self.assertIsNone(c.reload())
        self.assertIn("extra", [p["name"] for p in c.status()["pools"]])
        with open(d.conf, "w") as f:
            f.write(mt.conf(default="workers = many"))
        with self.assertRaises(mprocd.Error) as cm:
            c.reload()
        e = cm.exception
        self.assertEqual(e.name, "io.mprocd.ReloadFailed")
        self.assertIn("workers", e.parameters["reason"])
        self.assertIn("reload failed: ", str(e))
        self.assertIn("extra", [p["name"] for p in c.status()["pools"]])


class Interrupt(Exception):
    pass


class TestInterrupted(SharedDaemon):

    def test_interrupted_call_reconnects(self):
        """A call cut short (as by Ctrl-C) loses its connection: the next
        call must not read the old call's reply, nor wait behind it."""
        g = self.gate("interrupted")
        mt.wait_for(lambda: self.c.get(g).state == "running", "running")

        def alarm(signum, frame):
            raise Interrupt()
        old = signal.signal(signal.SIGALRM, alarm)
        self.addCleanup(signal.signal, signal.SIGALRM, old)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with self.assertRaises(Interrupt):
            self.c.wait([g])
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.assertIsNone(self.c._sock)
        answer = []
        t = threading.Thread(target=lambda: answer.append(self.c.get(g)),
                             daemon=True)
        t.start()
        t.join(mt.TIMEOUT)
        self.assertFalse(t.is_alive(), "the call after an interrupted "
                         "one hangs")
        self.assertEqual(answer[0].id, g)
        self.assertEqual(answer[0].state, "running")

    def test_fork(self):
        self.c.status()
        inherited = self.c._sock
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                ok = self.c.status()["pid"] == self.d.pid and \
                    self.c._sock is not inherited
                os.write(w, b"ok" if ok else b"shared")
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            said = f.read()
        os.waitpid(pid, 0)
        self.assertEqual(said, b"ok")
        self.assertIs(self.c._sock, inherited)
        self.assertEqual(self.c.status()["pid"], self.d.pid)


class FakeDaemon:
    """A thread on a UNIX socket that answers each connection as script
    says: script(conn, reader) runs once per connection accepted."""

    def __init__(self, test, script, connections=1):
        tmp = tempfile.mkdtemp(prefix="mprocd-fake-")
        test.addCleanup(os.rmdir, tmp)
        self.path = os.path.join(tmp, "fake.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        test.addCleanup(os.unlink, self.path)
        self.listener.listen(4)
        test.addCleanup(self.listener.close)
        self.errors = []
        self.thread = threading.Thread(target=self._serve,
                                       args=(script, connections),
                                       daemon=True)
        self.thread.start()

    def _serve(self, script, connections):
        try:
            for _ in range(connections):
                conn, _ = self.listener.accept()
                with conn:
                    conn.settimeout(mt.TIMEOUT)
                    script(conn, varlink.Reader())
        except Exception as e:
            self.errors.append(e)

    def join(self):
        self.thread.join(mt.TIMEOUT)
        return not self.thread.is_alive() and not self.errors


def read_call(conn, reader):
    """The next call the client sent, as a varlink.Call."""
    while True:
        msg = reader.next_message()
        if msg is not None:
            return varlink.parse_call(msg)
        chunk = conn.recv(4096)
        if not chunk:
            raise EOFError("the client closed the connection")
        reader.feed(chunk)


class TestFakeDaemon(unittest.TestCase):

    def test_reply_in_pieces(self):
        def script(conn, reader):
            call = read_call(conn, reader)
            assert call.method == "io.mprocd.Status", call
            data = varlink.encode(varlink.reply({"pid": 42, "x": "\u00e9"
                                                 * 10}))
            for i in range(len(data)):
                conn.sendall(data[i:i + 1])
                time.sleep(0.001)
            read_call(conn, reader)
            conn.sendall(varlink.encode(varlink.reply({"pid": 43})))
        fake = FakeDaemon(self, script)
        with mprocd.Client(fake.path) as c:
            self.assertEqual(c.status(), {"pid": 42, "x": "\u00e9" * 10})
            self.assertEqual(c.status(), {"pid": 43})
        self.assertTrue(fake.join(), fake.errors)

    def test_replies_together(self):
        def script(conn, reader):
            calls = [read_call(conn, reader) for _ in range(3)]
            assert [c.method for c in calls] == [
                "io.mprocd.Get", "io.mprocd.Get", "io.mprocd.Status"], calls
            conn.sendall(
                varlink.encode(varlink.reply({"job": {
                    "id": 1, "argv": ["true"], "state": "succeeded",
                    "exit_status": 0}, "stdout": "aGk=", "stderr": "",
                    "truncated": False})) +
                varlink.encode(varlink.error("io.mprocd.NoSuchJob",
                                             {"id": 2})) +
                varlink.encode(varlink.reply({"pid": 7})))
            read_call(conn, reader)
            conn.sendall(varlink.encode(varlink.reply({"pid": 8})))
        fake = FakeDaemon(self, script)
        with mprocd.Client(fake.path) as c:
            replies = c._calls([("io.mprocd.Get", {"id": 1}),
                                ("io.mprocd.Get", {"id": 2}),
                                ("io.mprocd.Status", {})])
            self.assertEqual([r.error for r in replies],
                             [None, "io.mprocd.NoSuchJob", None])
            self.assertEqual(mprocd.CompletedJob(replies[0].parameters)
                             .stdout, b"hi")
            self.assertEqual(replies[2].parameters, {"pid": 7})
            self.assertEqual(c.status(), {"pid": 8})
        self.assertTrue(fake.join(), fake.errors)

    def test_following_broken_replies(self):
        """A Following that gets a reply it cannot take raises Error and
        closes its connection, never drops bytes, never waits on."""
        bad = [  # each after a good piece
            varlink.reply({"stdout": "Tw==", "stderr": "RQ=="},
                          continues=True),
            varlink.reply({"truncated": False}),    # the last, no job
            varlink.reply({"stderr": "@@"}, continues=True),
        ]
        sent = iter(bad)

        def script(conn, reader):
            call = read_call(conn, reader)
            assert call.method == "io.mprocd.Follow" and call.more, call
            conn.sendall(varlink.encode(varlink.reply({"stdout": "aGk="},
                                                      continues=True)) +
                         varlink.encode(next(sent)))
            # Stays open: a client that read on would wait here.
            conn.settimeout(mt.TIMEOUT)
            try:
                conn.recv(1)
            except OSError:
                pass
        fake = FakeDaemon(self, script, connections=len(bad))
        for reply in bad:
            with self.subTest(reply=reply):
                f = mprocd.client.Following(fake.path, "io.mprocd.Follow",
                                            {"id": 1})
                self.assertEqual(next(f), ("stdout", b"hi", False))
                with self.assertRaises(mprocd.Error):
                    next(f)
                self.assertIsNone(f._sock)
                self.assertIsNone(f.completed)
                with self.assertRaises(mprocd.Error) as cm:
                    next(f)
                self.assertIn("closed", str(cm.exception))
        self.assertTrue(fake.join(), fake.errors)

    def test_start_that_cannot_be_sent(self):
        """A Run too large for the socket's other end raises Error, as
        run() does, not an OSError."""
        def script(conn, reader):
            pass    # closes at once, reading nothing
        fake = FakeDaemon(self, script, connections=1)
        with self.assertRaises(mprocd.Error) as cm:
            mprocd.client.Following(fake.path, "io.mprocd.Run",
                                    {"argv": ["cat"],
                                     "stdin": "A" * (16 << 20)})
        self.assertIn("io.mprocd.Run", str(cm.exception))

    def test_broken_replies(self):
        """Each connection answers its call wrongly; the Client raises Error
        and connects again for the next call."""
        bad = [b"not json\0",
               b'{"parameters": {}, "continues": true}\0',
               b'{"parameters": {"id": 1}',    # then closes
               b'[1, 2]\0',
               b'{"parameters": {"job": {"id": 1}, "stdout": "@@"}}\0']
        sent = iter(bad)

        def script(conn, reader):
            read_call(conn, reader)
            conn.sendall(next(sent))
        fake = FakeDaemon(self, script, connections=len(bad))
        c = mprocd.Client(fake.path)
        self.addCleanup(c.close)
        messages = []
        for data in bad:
            with self.subTest(reply=data):
                with self.assertRaises(mprocd.Error) as cm:
                    c.get(1)
                self.assertIsNone(cm.exception.name)
                self.assertIn("io.mprocd.Get", str(cm.exception))
                messages.append(str(cm.exception))
                if data != bad[-1]:
                    self.assertIsNone(c._sock)
        self.assertIn("closed the connection", messages[2])
        self.assertIn("not base64", messages[4])
        self.assertTrue(fake.join(), fake.errors)


if __name__ == "__main__":
    mt.main()
