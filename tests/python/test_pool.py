"""mprocd.Pool (python/mprocd/pool.py) against a real mprocd whose program
pools run python3 -m mprocd.worker calc_functions (tests/python/
calc_functions.py): every method, results in order, failures as JobError,
close, terminate and join, and 10,000 calls through map while workers are
killed under it."""

import collections
import contextlib
import io
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("MPROCD_SRCDIR", os.path.join(HERE, "..", ".."))
PYDIR = os.path.abspath(os.path.join(SRCDIR, "python"))
sys.path.insert(0, PYDIR)
sys.path.insert(0, os.path.abspath(os.path.join(SRCDIR, "tests",
                                                "integration")))
sys.path.insert(0, HERE)

import mprocd  # noqa: E402
import mprocd_test as mt  # noqa: E402

PROGRAM = "program = %s -m mprocd.worker calc_functions" % sys.executable
# The programs find mprocd and calc_functions through mprocd's environment.
ENV = {"PYTHONPATH": os.pathsep.join([PYDIR, HERE])}
CONFIG = mt.conf(
    calc="workers = 2; kill_grace = 0.5s; " + PROGRAM,
    default="workers = 1; " + PROGRAM,
    cmd="workers = 1")


def double(x):
    """Not what runs: the program's double, found by this one's name."""
    raise AssertionError("the caller's function ran")


class SharedDaemon(unittest.TestCase):
    """One mprocd for the class, and a Pool "calc" for each test."""

    @classmethod
    def setUpClass(cls):
        cls.d = mt.Daemon(CONFIG)
        cls.addClassCleanup(cls.d.cleanup)
        cls.d.start(env=ENV)

    def setUp(self):
        self.p = self.pool()

    def pool(self, name="calc", **kw):
        p = mprocd.Pool(name, socket=self.d.sock, **kw)
        self.addCleanup(p.terminate)
        return p

    def client(self):
        c = mprocd.Client(self.d.sock)
        self.addCleanup(c.close)
        return c


class TestCalls(SharedDaemon):

    def test_apply(self):
        self.assertEqual(self.p.apply("double", (21,)), 42)
        self.assertEqual(self.p.apply(double, (21,)), 42)
        self.assertEqual(self.p.apply("add", [1, 2]), 3)
        self.assertEqual(self.p.apply("add", (), {"a": "x", "b": "y"}),
                         "xy")
        # JSON both ways: tuples come back as lists.
        self.assertEqual(self.p.apply("echo", (1, (2, 3), None),
                                      {"k": {"n": 1.5}}),
                         {"args": [1, [2, 3], None],
                          "kwargs": {"k": {"n": 1.5}}})
        self.assertIsNone(self.p.apply("nap", (0,)))
        who = self.p.apply("whoami")
        self.assertRegex(who["worker"], r"^calc/\d+$")
        self.assertEqual(who["env"], who["worker"])

    def test_apply_async(self):
        r = self.p.apply_async("nap", (1.0, "late"))
        self.assertIsInstance(r.id, int)
        self.assertFalse(r.ready())
        with self.assertRaises(ValueError):
            r.successful()
        t0 = time.monotonic()
        with self.assertRaises(mprocd.TimeoutError) as cm:
            r.get(timeout=0.2)
        self.assertLess(time.monotonic() - t0, 0.9)
        self.assertIsInstance(cm.exception, multiprocessing.TimeoutError)
        self.assertIsInstance(cm.exception, mprocd.Error)
        self.assertIn("job %d" % r.id, str(cm.exception))
        self.assertIsNone(r.completed)
        self.assertEqual(r.get(timeout=mt.WAIT), "late")
        self.assertTrue(r.ready())
        self.assertTrue(r.successful())
        self.assertEqual(r.get(), "late")
        self.assertEqual(r.completed.state, "succeeded")
        r.wait()
        r2 = self.p.apply_async(double, (4,))
        r2.wait(mt.WAIT)
        self.assertTrue(r2.ready())
        self.assertEqual(r2.get(0), 8)

    def test_output_of_a_call(self):
        r = self.p.apply_async("shout", ("hi",))
        self.assertEqual(r.get(timeout=mt.WAIT), "HI")
        self.assertEqual(r.completed.stdout, b"out: hi\n")
        self.assertEqual(r.completed.stderr, b"err: hi\n")

    def test_callbacks(self):
        got, errors = [], []
        done = threading.Event()

        def callback(value):
            got.append((value, threading.current_thread().name))
            if len(got) + len(errors) == 4:
                done.set()

        def error_callback(e):
            errors.append(e)
            if len(got) + len(errors) == 4:
                done.set()
        rs = [self.p.apply_async("sleep_then", ([d, d],), callback=callback,
                                 error_callback=error_callback)
              for d in (0.6, 0.3, 0.0)]
        rs.append(self.p.apply_async("fail", ("bad",), callback=callback,
                                     error_callback=error_callback))
        self.assertTrue(done.wait(mt.WAIT), (got, errors))
        self.assertEqual(sorted(v for v, _ in got), [0.0, 0.3, 0.6])
        # As they end, not as they were submitted.
        self.assertNotEqual([v for v, _ in got], [0.6, 0.3, 0.0])
        self.assertNotEqual(got[0][1], threading.current_thread().name)
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], mprocd.JobError)
        self.assertEqual(errors[0].result["error"], "ValueError")
        # Ready, once its callback has been called.
        self.assertEqual([r.get(0) for r in rs[:3]], [0.6, 0.3, 0.0])
        self.assertFalse(rs[3].successful())
        with self.assertRaises(mprocd.JobError):
            rs[3].get(0)

    def test_callback_that_raises(self):
        """A callback that raises has its traceback printed; the callbacks
        of other calls still come."""
        err = io.StringIO()
        got = []

        def bad(value):
            raise RuntimeError("callback broke on %r" % value)
        with contextlib.redirect_stderr(err):
            r1 = self.p.apply_async("double", (1,), callback=bad)
            r1.wait(mt.WAIT)
            r2 = self.p.apply_async("double", (2,), callback=got.append)
            r2.wait(mt.WAIT)
        self.assertEqual(got, [4])
        self.assertEqual(r1.get(0), 2)
        self.assertIn("RuntimeError: callback broke on 2", err.getvalue())
        self.assertIn("job %d" % r1.id, err.getvalue())

    def test_map(self):
        self.assertEqual(self.p.map("double", [5, 10, 20]), [10, 20, 40])
        self.assertEqual(self.p.map(double, range(1000)),
                         [2 * x for x in range(1000)])
        self.assertEqual(self.p.map("double", []), [])
        self.assertEqual(self.p.map("double", iter([1, 2]), chunksize=5),
                         [2, 4])
        # The later items end first; the results keep the input's order.
        items = [[0.1 * (4 - i), i] for i in range(5)]
        self.assertEqual(self.p.map("sleep_then", items), list(range(5)))

    def test_map_in_parallel_and_pipelined(self):
        # Two workers: eight calls of 0.4s take 1.6s, not 3.2s.
        t0 = time.monotonic()
        self.p.map("nap", [0.4] * 8)
        self.assertLess(time.monotonic() - t0, 3.0)
        # Many small calls: faster than as many apply() round trips.
        n = 400
        t0 = time.monotonic()
        for i in range(n):
            self.p.apply("double", (i,))
        one_by_one = time.monotonic() - t0
        t0 = time.monotonic()
        self.assertEqual(self.p.map("double", range(n)),
                         [2 * i for i in range(n)])
        mapped = time.monotonic() - t0
        self.assertLess(mapped, one_by_one)

    def test_map_async_and_starmap_async(self):
        r = self.p.map_async("double", range(10))
        self.assertEqual(r.get(timeout=mt.WAIT), [2 * i for i in range(10)])
        self.assertTrue(r.ready())
        self.assertTrue(r.successful())
        got = []
        r = self.p.starmap_async("add", [(1, 2), (3, 4)], callback=got.append)
        self.assertEqual(r.get(timeout=mt.WAIT), [3, 7])
        mt.wait_for(lambda: got, "the callback")
        self.assertEqual(got, [[3, 7]])
        r = self.p.map_async("nap", [1.0])
        with self.assertRaises(mprocd.TimeoutError):
            r.get(timeout=0.1)
        with self.assertRaises(ValueError):
            r.successful()
        errors = []
        r = self.p.map_async("small", range(5), error_callback=errors.append)
        with self.assertRaises(mprocd.JobError):
            r.get(timeout=mt.WAIT)
        self.assertFalse(r.successful())
        mt.wait_for(lambda: errors, "the error callback")
        self.assertIsInstance(errors[0], mprocd.JobError)

    def test_imap_in_order_as_they_end(self):
        items = [[0.1 * (4 - i), i] for i in range(5)]
        self.assertEqual(list(self.p.imap("sleep_then", items)),
                         list(range(5)))
        self.assertEqual(list(self.p.imap(double, range(1000))),
                         [2 * x for x in range(1000)])
        self.assertEqual(list(self.p.imap("double", [])), [])
        # The first result comes as soon as its job ends.
        it = self.p.imap("sleep_then", [[0, "a"], [2.0, "b"]])
        t0 = time.monotonic()
        self.assertEqual(next(it), "a")
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertEqual(next(it), "b")
        with self.assertRaises(StopIteration):
            next(it)

    def test_imap_left_unfinished(self):
        it = self.p.imap("double", range(100000))
        self.assertEqual([next(it) for _ in range(3)], [0, 2, 4])
        it.close()
        # The Pool goes on; the jobs left behind are terminate()'s.
        self.assertEqual(self.p.map("double", [1, 2, 3]), [2, 4, 6])
        self.assertEqual(self.p.apply("double", (7,)), 14)

    def test_imap_unordered(self):
        got = list(self.p.imap_unordered("double", range(1000)))
        self.assertEqual(sorted(got), [2 * x for x in range(1000)])
        self.assertEqual(list(self.p.imap_unordered("double", [])), [])
        # The slow first call does not hold back those behind it.
        items = [[1.5, "slow"]] + [[0, i] for i in range(20)]
        got = list(self.p.imap_unordered("sleep_then", items))
        self.assertEqual(got[-1], "slow")
        self.assertEqual(sorted(got[:-1]), list(range(20)))

    def test_starmap(self):
        self.assertEqual(self.p.starmap("add", [(1, 2), (3, 4)]), [3, 7])
        self.assertEqual(self.p.starmap("add", iter([["a", "b"]])), ["ab"])
        self.assertEqual(self.p.starmap("echo", [(), (1,), (1, 2)]),
                         [{"args": [], "kwargs": {}},
                          {"args": [1], "kwargs": {}},
                          {"args": [1, 2], "kwargs": {}}])
        with self.assertRaises(TypeError):
            self.p.starmap("add", [5])

    def test_from_threads(self):
        results = {}

        def work(k):
            results[k] = self.p.starmap("add",
                                        [(k, i) for i in range(200)])
            results[k, "apply"] = self.p.apply("double", (k,))
        threads = [threading.Thread(target=work, args=(k,))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(mt.TIMEOUT)
        for k in range(4):
            self.assertEqual(results[k], [k + i for i in range(200)])
            self.assertEqual(results[k, "apply"], 2 * k)

    def test_default_pool_and_socket(self):
        with mock.patch.dict(os.environ, {"MPROCD_SOCKET": self.d.sock}):
            with mprocd.Pool() as p:
                self.assertEqual(p.socket, self.d.sock)
                self.assertIsNone(p.pool)
                self.assertRegex(p.apply("whoami")["worker"],
                                 r"^default/\d+$")

    def test_timeout_option(self):
        p = self.pool(timeout=0.3)
        t0 = time.monotonic()
        with self.assertRaises(mprocd.JobError) as cm:
            p.apply("nap", (30,))
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(cm.exception.job["state"], "timeout")


class TestFailures(SharedDaemon):

    def check_error(self, e, kind="ValueError", message="boom"):
        self.assertIsInstance(e, mprocd.JobError)
        self.assertIsInstance(e, mprocd.Error)
        self.assertEqual(e.result, {"error": kind, "message": message})
        self.assertEqual(e.job["state"], "failed")
        self.assertEqual(e.returncode, 1)
        self.assertIn(b"Traceback (most recent call last)", e.stderr)
        self.assertIn(("%s: %s" % (kind, message)).encode(), e.stderr)
        self.assertIn("job %d" % e.id, str(e))
        self.assertIn("failed", str(e))
        self.assertIn(kind, str(e))

    def test_apply(self):
        with self.assertRaises(mprocd.JobError) as cm:
            self.p.apply("fail", ("boom",))
        self.check_error(cm.exception)

    def test_apply_async(self):
        r = self.p.apply_async("fail", ("boom",))
        with self.assertRaises(mprocd.JobError) as cm:
            r.get(timeout=mt.WAIT)
        self.check_error(cm.exception)
        self.assertEqual(cm.exception.id, r.id)
        self.assertTrue(r.ready())
        self.assertFalse(r.successful())

    def test_map_and_starmap(self):
        with self.assertRaises(mprocd.JobError) as cm:
            self.p.map("fail", ["boom"])
        self.check_error(cm.exception)
        with self.assertRaises(mprocd.JobError) as cm:
            self.p.map("small", range(10))
        self.check_error(cm.exception, "OverflowError", "3 is too big")
        with self.assertRaises(mprocd.JobError) as cm:
            self.p.starmap("fail_if", [(i, 5) for i in range(8)])
        self.check_error(cm.exception, "KeyError", "'item 5'")

    def test_imap(self):
        got = []
        with self.assertRaises(mprocd.JobError) as cm:
            for x in self.p.imap("small", range(10)):
                got.append(x)
        self.assertEqual(got, [0, 1, 2])
        self.check_error(cm.exception, "OverflowError", "3 is too big")
        got = []
        with self.assertRaises(mprocd.JobError) as cm:
            for x in self.p.imap_unordered("small", range(10)):
                got.append(x)
        self.check_error(cm.exception, "OverflowError",
                         cm.exception.result["message"])
        self.assertTrue(set(got) <= {0, 1, 2})

    def test_unknown_function(self):
        with self.assertRaises(mprocd.JobError) as cm:
            self.p.apply("no_such_function", (1,))
        e = cm.exception
        self.assertEqual(e.returncode, 127)
        self.assertEqual(e.result["error"], "NameError")
        self.assertIn("no_such_function", e.result["message"])

    def test_no_such_pool(self):
        p = self.pool("nowhere")
        for call in (lambda: p.apply("double", (1,)),
                     lambda: p.apply_async("double", (1,)),
                     lambda: p.map("double", [1, 2]),
                     lambda: list(p.imap("double", [1])),
                     lambda: list(p.imap_unordered("double", [1]))):
            with self.assertRaises(mprocd.Error) as cm:
                call()
            self.assertNotIsInstance(cm.exception, mprocd.JobError)
            self.assertEqual(cm.exception.name, "io.mprocd.NoSuchPool")
            self.assertIn("nowhere", str(cm.exception))
        # Still usable for a pool that exists... but it is bound to its own.
        self.assertEqual(self.p.apply("double", (1,)), 2)

    def test_command_pool(self):
        """A command pool refuses input: the Error says what is wrong."""
        p = self.pool("cmd")
        for call in (lambda: p.apply("double", (1,)),
                     lambda: p.map("double", [1])):
            with self.assertRaises(mprocd.Error) as cm:
                call()
            e = cm.exception
            self.assertNotIsInstance(e, mprocd.JobError)
            self.assertEqual(e.name, "org.varlink.service.InvalidParameter")
            self.assertEqual(e.parameters, {"parameter": "input"})
            self.assertIn("program pool", str(e))

    def test_wrong_arguments_send_nothing(self):
        with self.assertRaises(TypeError):
            mprocd.Pool(2, socket=self.d.sock)
        with self.assertRaises(TypeError):
            self.p.apply(5)
        with self.assertRaises(ValueError):
            self.p.apply(lambda x: x, (1,))
        with self.assertRaises(TypeError):
            self.p.apply("double", 5)
        with self.assertRaises(TypeError):
            self.p.apply("double", (1,), {1: 2})
        with self.assertRaises(TypeError):
            self.p.apply("echo", ({1, 2},))
        with self.assertRaises(ValueError):
            self.p.apply("echo", (float("nan"),))
        with self.assertRaises(ValueError):
            self.p.map("double", [1], chunksize=0)
        with self.assertRaises(TypeError):
            self.p.map("echo", [object()])
        with self.assertRaises(ValueError):
            self.p.map("echo", [2 ** 70])
        # Nothing half-sent: the Pool goes on.
        self.assertEqual(self.p.map("double", [1, 2]), [2, 4])
        self.assertEqual(self.p.apply("double", (3,)), 6)


class TestEnd(SharedDaemon):

    def test_close_join(self):
        r = self.p.apply_async("nap", (0.5, "x"))
        it = self.p.imap("double", range(3))
        self.p.close()
        for call in (lambda: self.p.apply("double", (1,)),
                     lambda: self.p.apply_async("double", (1,)),
                     lambda: self.p.map("double", [1]),
                     lambda: self.p.imap("double", [1]),
                     lambda: self.p.starmap("add", [(1, 2)])):
            with self.assertRaises(ValueError):
                call()
        # An imap made before close() goes on.
        self.assertEqual(list(it), [0, 2, 4])
        self.p.join()
        self.assertTrue(r.ready())
        self.assertEqual(r.get(0), "x")

    def test_join_waits(self):
        rs = [self.p.apply_async("nap", (0.4, i)) for i in range(4)]
        with self.assertRaises(ValueError):
            self.p.join()
        self.p.close()
        t0 = time.monotonic()
        self.p.join()
        self.assertGreater(time.monotonic() - t0, 0.5)
        c = self.client()
        for r in rs:
            self.assertEqual(c.get(r.id).state, "succeeded")
        self.assertEqual([r.get(0) for r in rs], [0, 1, 2, 3])

    def test_terminate_cancels(self):
        c = self.client()
        done = self.p.apply_async("double", (5,))
        self.assertEqual(done.get(timeout=mt.WAIT), 10)
        rs = [self.p.apply_async("nap", (30, i)) for i in range(4)]
        mt.wait_for(lambda: sum(c.get(r.id).state == "running"
                                for r in rs) == 2, "two calls running")
        t0 = time.monotonic()
        self.p.terminate()
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(sorted(c.get(r.id).state for r in rs),
                         ["cancelled"] * 4)
        for r in rs:
            with self.assertRaises(mprocd.JobError) as cm:
                r.get(timeout=mt.WAIT)
            self.assertEqual(cm.exception.job["state"], "cancelled")
        # What had ended is kept.
        self.assertEqual(done.get(), 10)
        with self.assertRaises(ValueError):
            self.p.apply("double", (1,))
        self.p.join()
        # The pool's workers are mprocd's: they go on for others.
        self.assertEqual(self.pool().apply("double", (2,)), 4)

    def test_terminate_stops_map_async(self):
        r = self.p.map_async("nap", [0.2] * 1000)
        time.sleep(0.5)
        self.p.terminate()
        with self.assertRaises(mprocd.Error):
            r.get(timeout=mt.WAIT)
        self.p.join()
        c = self.client()
        mt.wait_for(lambda: not [j for j in c.list(pool="calc")
                                 if j["state"] in ("queued", "running")],
                    "no calls of the map left")

    def test_context_manager(self):
        with self.pool() as p:
            r = p.apply_async("nap", (0.5, "kept"))
            mapped = p.map("double", [1, 2])
        self.assertEqual(mapped, [2, 4])
        # Left normally: closed, and the call goes on.
        self.assertEqual(r.get(timeout=mt.WAIT), "kept")
        with self.assertRaises(ValueError):
            p.apply("double", (1,))
        # Left by an exception: terminated, the call cancelled.
        with self.assertRaises(KeyError):
            with self.pool() as p:
                r = p.apply_async("nap", (30,))
                raise KeyError("out")
        with self.assertRaises(mprocd.JobError) as cm:
            r.get(timeout=mt.WAIT)
        self.assertEqual(cm.exception.job["state"], "cancelled")


KILL_CONFIG = mt.conf(
    main="keep_finished = 30000",
    level="info",
    crashy="workers = 2; retries = 3; restart_delay = 10ms; "
    "restart_delay_max = 50ms; crash_limit = 100000; " + PROGRAM)


class TestWorkersKilled(mt.DaemonTestCase):

    def test_map_while_workers_are_killed(self):
        """10,000 calls through map while a thread SIGKILLs a busy worker
        every 50ms: every call is answered exactly once, in order, each by
        a job of its own, and some were run again."""
        d = self.daemon(KILL_CONFIG, env=ENV)
        n = 10000
        stop = threading.Event()
        killed = []

        def killer():
            c = mprocd.Client(d.sock)
            rnd = random.Random(7)
            try:
                while not stop.wait(0.05):
                    pool = [p for p in c.status()["pools"]
                            if p["name"] == "crashy"][0]
                    busy = [w["pid"] for w in pool["workers"]
                            if w["state"] == "busy" and w.get("pid")]
                    if busy:
                        pid = rnd.choice(busy)
                        try:
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)
                        except ProcessLookupError:
                            pass
            finally:
                c.close()
        t = threading.Thread(target=killer, daemon=True)
        with mprocd.Pool("crashy", socket=d.sock) as p:
            t.start()
            try:
                results = p.starmap("tag", [(i, 0.001) for i in range(n)])
            finally:
                stop.set()
                t.join(mt.TIMEOUT)
        self.assertGreaterEqual(len(killed), 10)
        self.assertEqual(len(results), n)
        self.assertEqual([r[0] for r in results], list(range(n)))
        ids = [r[1] for r in results]
        self.assertEqual(len(set(ids)), n)
        c = mprocd.Client(d.sock)
        self.addCleanup(c.close)
        jobs = {j["id"]: j for j in c.list(pool="crashy")}
        self.assertEqual(len(jobs), n)
        self.assertEqual(set(jobs), set(ids))
        states = collections.Counter(j["state"] for j in jobs.values())
        self.assertEqual(states, {"succeeded": n})
        again = [j for j in jobs.values() if j["attempts"] > 1]
        self.assertTrue(again, "no call was run again: did the kills miss?")
        # The programs that answered were replaced as they were killed
        # (Status shows the pid of each worker; its program is a child).
        self.assertGreater(len({r[2] for r in results}), 2)


if __name__ == "__main__":
    mt.main()
