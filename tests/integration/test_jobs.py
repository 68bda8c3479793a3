"""Jobs end to end over raw Varlink: Submit, Wait, Get, List, Cancel; what a
job's process gets (environment, session, descriptors, signals, stdin) and
what comes back (status, output byte for byte, truncation); timeouts,
cancellation and dead workers that leave no process behind; retries, FIFO
queues, recycled workers, forgotten jobs, shutdown, limits, bad parameters
and other users."""

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import unittest

from mprocd_test import (GATE, OTHER_UID, TIMEOUT, WAIT, JobsTestCase,
                         VarlinkError, alive, as_other_user, cmdline, conf,
                         fd_count, main, other_user_python, wait_for)

INVALID = "org.varlink.service.InvalidParameter"

# Scripts for sh -c; $1, $2... are files in the daemon's temporary directory.
# A job that leaves a grandchild in its process group: writes the
# grandchild's pid to $2, its own to $1.
GRANDCHILD = 'sleep 300 & echo $! > "$2"; echo $$ > "$1"; exec sleep 300'
# The same, but the whole group ignores SIGTERM: only SIGKILL ends it.
STUBBORN = ('trap "" TERM; sleep 300 & echo $! > "$2"; echo $$ > "$1"; '
            'exec sleep 300')

# Everything a job can tell about the process it runs in.
PROBE = r'''
import json, os, sys
fds = []
for f in os.listdir("/proc/self/fd"):
    try:
        os.fstat(int(f))
        fds.append(int(f))
    except OSError:
        pass            # the descriptor listdir used, closed by now
with open("/proc/self/stat") as f:
    st = f.read().rpartition(")")[2].split()
with open("/proc/self/environ", "rb") as f:
    environ = [e.decode() for e in f.read().split(b"\0") if e]
print(json.dumps({
    "fds": sorted(fds), "pid": os.getpid(), "ppid": int(st[1]),
    "pgrp": int(st[2]), "sid": int(st[3]), "cwd": os.getcwd(),
    "environ": environ, "stdin": os.readlink("/proc/self/fd/0"),
    "stdin_data": sys.stdin.buffer.read().hex()}))
'''


def b64(data):
    return base64.b64encode(data).decode()


def read_pid(path):
    """The pid a job wrote to path, once written whole; else None."""
    try:
        with open(path) as f:
            s = f.read()
    except FileNotFoundError:
        return None
    return int(s) if s.endswith("\n") else None


def gone(pid):
    """True once pid has exited (a zombie counts as gone)."""
    try:
        return not alive(pid)
    except ProcessLookupError:      # /proc/PID vanished as we read it
        return True


def touch(path):
    open(path, "w").close()


def lines(n, fmt=b"%07d\n"):
    return b"".join(fmt % i for i in range(n))


class JobTestCase(JobsTestCase):
    """Helpers to drive jobs over one connection."""

    def start(self, config=None, **kw):
        return super().start(config or conf(), **kw)

    def submit(self, argv, c=None, **params):
        r = self.submit_reply(argv, c, **params)
        self.assertEqual(set(r), {"id"})
        self.assertIsInstance(r["id"], int)
        return r["id"]

    def wait1(self, jid, c=None):
        return self.wait([jid], c)[0]

    def get(self, jid, c=None):
        r = (c or self.c).call("io.mprocd.Get", {"id": jid})
        self.assertEqual(set(r), {"job", "stdout", "stderr", "truncated"})
        r["stdout"] = base64.b64decode(r["stdout"], validate=True)
        r["stderr"] = base64.b64decode(r["stderr"], validate=True)
        return r

    def run_job(self, argv, **params):
        """Submits, waits, and returns Get's reply (output decoded)."""
        jid = self.submit(argv, **params)
        self.wait1(jid)
        return self.get(jid)

    def assert_error(self, method, params, error, eparams, c=None):
        with self.assertRaises(VarlinkError) as e:
            (c or self.c).call(method, params)
        self.assertEqual((e.exception.error, e.exception.parameters),
                         (error, eparams),
                         "%s %s" % (method, json.dumps(params)))

    def spawn_tree(self, script, tag, **params):
        """Submits sh -c script with pid files; returns (id, job's pid,
        grandchild's pid) once both run, the grandchild in the job's
        process group."""
        f, g = self.path(tag + ".pid"), self.path(tag + ".gc")
        jid = self.submit(["sh", "-c", script, "sh", f, g], **params)
        pid = wait_for(lambda: read_pid(f), "job %d to write its pid" % jid)
        gc = read_pid(g)
        self.assertIsNotNone(gc)
        self.assertEqual(os.getpgid(gc), pid,
                         "the grandchild is not in the job's process group")
        return jid, pid, gc

    def assert_gone(self, *pids):
        for pid in pids:
            wait_for(lambda: gone(pid), "process %d to be killed" % pid)

    def worker_of(self, jid, pool="default"):
        """The Status entry of the worker running job jid."""
        return wait_for(lambda: next((w for w in self.d.pool(pool)["workers"]
                                      if w.get("job") == jid), None),
                        "a worker of %s running job %d" % (pool, jid))

    def wait_state(self, jid, state):
        return wait_for(lambda: (lambda j: j["state"] == state and j)(
            self.get(jid)["job"]), "job %d to be %s" % (jid, state))


class TestRun(JobTestCase):
    """What a job's process gets, and what comes back from it."""

    def test_status_and_binary_output(self):
        self.start()
        script = ("import sys; sys.stdout.buffer.write(bytes(range(256)) * 4)"
                  "; sys.stderr.buffer.write(b'\\0err\\xff\\n'); sys.exit(5)")
        jid = self.submit(["python3", "-c", script], name="binary \u00e9")
        job = self.wait1(jid)
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["exit_status"], 5)
        self.assertNotIn("signal", job)
        r = self.get(jid)
        self.assertEqual(r["job"], job)
        self.assertEqual(r["stdout"], bytes(range(256)) * 4)
        self.assertEqual(r["stderr"], b"\0err\xff\n")
        self.assertFalse(r["truncated"])
        # The job's record.
        self.assertEqual(job["name"], "binary \u00e9")
        self.assertEqual(job["pool"], "default")
        self.assertEqual(job["argv"], ["python3", "-c", script])
        self.assertEqual(job["cwd"], "/")
        self.assertEqual(job["uid"], os.getuid())
        self.assertEqual(job["attempts"], 1)
        self.assertRegex(job["worker"], r"^default/[01]$")
        self.assertIsInstance(job["pid"], int)
        self.assertLessEqual(job["submitted_usec"], job["started_usec"])
        self.assertLessEqual(job["started_usec"], job["finished_usec"])

        ok = self.run_job(["true"])
        self.assertEqual(ok["job"]["state"], "succeeded")
        self.assertEqual(ok["job"]["exit_status"], 0)
        self.assertNotIn("name", ok["job"])
        self.assertEqual((ok["stdout"], ok["stderr"], ok["truncated"]),
                         (b"", b"", False))
        self.assertGreater(ok["job"]["id"], jid)

    def test_process_environment(self):
        d = self.daemon(conf(), start=False)
        self.d = d
        bindir = self.path("bin")
        os.mkdir(bindir)
        with open(os.path.join(bindir, "mprocd-test-hello"), "w") as f:
            f.write('#!/bin/sh\necho "hello $*"\n')
        os.chmod(os.path.join(bindir, "mprocd-test-hello"), 0o755)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(self.path("notify"))
        d.start(env={"NOTIFY_SOCKET": self.path("notify"),
                     "WATCHDOG_USEC": "600000000",
                     "JOURNAL_STREAM": "8:12345",
                     "MPROCD_TEST_INHERITED": "from the daemon",
                     "MPROCD_TEST_OVERRIDE": "from the daemon",
                     "PATH": bindir + ":" + os.environ["PATH"]})
        self.c = d.connect()
        workdir = self.path("work dir")
        os.mkdir(workdir)

        jid = self.submit(["python3", "-c", PROBE], cwd=workdir,
                          env=["MPROCD_TEST_JOB=a=b c",
                               "MPROCD_TEST_OVERRIDE=from the job",
                               "MPROCD_TEST_EMPTY=",
                               "MPROCD_JOB_ID=999999"])
        job = self.wait1(jid)
        r = self.get(jid)
        self.assertEqual(job["state"], "succeeded", r["stderr"])
        p = json.loads(r["stdout"])
        env = dict(e.split("=", 1) for e in p["environ"])
        # mprocd's own variables, the daemon's, the job's.
        self.assertEqual(env["MPROCD_JOB_ID"], str(jid))
        self.assertEqual(env["MPROCD_POOL"], "default")
        self.assertEqual(env["MPROCD_WORKER"], job["worker"])
        self.assertEqual(env["MPROCD_TEST_JOB"], "a=b c")
        self.assertEqual(env["MPROCD_TEST_EMPTY"], "")
        self.assertEqual(env["MPROCD_TEST_INHERITED"], "from the daemon")
        self.assertEqual(env["MPROCD_TEST_OVERRIDE"], "from the job")
        for key in ("MPROCD_TEST_OVERRIDE", "MPROCD_JOB_ID", "PATH"):
            self.assertEqual(len([e for e in p["environ"]
                                  if e.startswith(key + "=")]), 1,
                             "%s set more than once" % key)
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"):
            self.assertNotIn(key, env, "the job inherited the daemon's %s"
                             % key)
        # Where it runs, as what.
        self.assertEqual(p["cwd"], workdir)
        self.assertEqual(p["pid"], job["pid"])
        self.assertEqual(p["sid"], p["pid"], "not a session leader")
        self.assertEqual(p["pgrp"], p["pid"], "not a process group leader")
        self.assertEqual(p["ppid"], d.worker(job["worker"])["pid"])
        self.assertEqual(p["fds"], [0, 1, 2], "stray descriptors in the job")
        self.assertEqual(p["stdin"], "/dev/null")
        self.assertEqual(p["stdin_data"], "")

        # Without cwd: "/".
        p = json.loads(self.run_job(["python3", "-c", PROBE])["stdout"])
        self.assertEqual(p["cwd"], "/")
        self.assertEqual(p["fds"], [0, 1, 2])

        # stdin, more than a pipe holds, comes through whole (while the
        # job's output is read: cat echoes it back).
        data = os.urandom(300000)
        r = self.run_job(["cat"], stdin=b64(data))
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertEqual(r["stdout"], data)
        r = self.run_job(["python3", "-c", PROBE], stdin=b64(b"\0in\xff"))
        p = json.loads(r["stdout"])
        self.assertEqual(p["stdin_data"], b"\0in\xff".hex())
        self.assertTrue(p["stdin"].startswith("pipe:"), p["stdin"])
        self.assertEqual(p["fds"], [0, 1, 2])

        # argv[0] is looked up in PATH.
        r = self.run_job(["mprocd-test-hello", "a b", "c"])
        self.assertEqual(r["job"]["state"], "succeeded", r["stderr"])
        self.assertEqual(r["stdout"], b"hello a b c\n")

    def test_signals_reset(self):
        """Workers ignore INT, HUP, PIPE and block CHLD, TERM; a job has
        every signal at its default and none blocked."""
        self.start()
        r = self.run_job(["grep", "-E", "^Sig(Ign|Blk):",
                          "/proc/self/status"])
        self.assertEqual(r["job"]["state"], "succeeded", r["stderr"])
        self.assertEqual(r["stdout"], b"SigBlk:\t0000000000000000\n"
                         b"SigIgn:\t0000000000000000\n")

    def test_output_bigger_than_a_pipe(self):
        self.start(conf(default="workers = 1; max_output = 8M"))
        out, err = lines(655360), lines(131072, b"E%06d\n")
        self.assertEqual((len(out), len(err)), (5 << 20, 1 << 20))
        script = r'''
import sys
out = b"".join(b"%07d\n" % i for i in range(655360))
err = b"".join(b"E%06d\n" % i for i in range(131072))
for k in range(0, len(out), 65536):
    sys.stdout.buffer.write(out[k:k + 65536]); sys.stdout.flush()
    if k < len(err):
        sys.stderr.buffer.write(err[k:k + 65536]); sys.stderr.flush()
'''
        r = self.run_job(["python3", "-c", script])
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertFalse(r["truncated"])
        self.assertEqual(len(r["stdout"]), len(out))
        self.assertTrue(r["stdout"] == out, "stdout differs")
        self.assertTrue(r["stderr"] == err, "stderr differs")

    def test_truncation_at_max_output(self):
        self.start(conf(default="workers = 1; max_output = 64K"))
        out = lines(131072)
        # 1 MiB of stdout, then 100 KB of stderr, then a line on stdout:
        # a job stalled at the limit would never finish.
        script = r'''
import sys
sys.stdout.buffer.write(b"".join(b"%07d\n" % i for i in range(131072)))
sys.stdout.flush()
sys.stderr.buffer.write(b"e" * 100000)
sys.stderr.flush()
print("done")
'''
        r = self.run_job(["python3", "-c", script])
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertEqual(r["job"]["exit_status"], 0)
        self.assertTrue(r["truncated"])
        self.assertEqual(len(r["stdout"]), 65536)
        self.assertTrue(r["stdout"] == out[:65536], "stdout is not its start")
        self.assertEqual(r["stderr"], b"e" * 65536)

        # Exactly max_output is not truncated.
        r = self.run_job(["python3", "-c", "import sys; "
                          "sys.stdout.write('o' * 65536); "
                          "sys.stderr.write('e' * 65536)"])
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertFalse(r["truncated"])
        self.assertEqual((r["stdout"], r["stderr"]),
                         (b"o" * 65536, b"e" * 65536))

        # Only stderr over the limit.
        r = self.run_job(["sh", "-c", "echo hi; head -c 70000 /dev/zero >&2"])
        self.assertTrue(r["truncated"])
        self.assertEqual((r["stdout"], r["stderr"]), (b"hi\n", b"\0" * 65536))

    def test_leftovers_killed_when_main_exits(self):
        self.start()
        f, g = self.path("gc"), self.path("escaped")
        # Left in the group: killed; the job ends when its main process
        # does, with everything it wrote.
        r = self.run_job(["sh", "-c", 'sleep 300 & echo $! > "$1"; echo hi',
                          "sh", f])
        self.assertEqual((r["job"]["state"], r["stdout"]),
                         ("succeeded", b"hi\n"))
        self.assert_gone(read_pid(f))
        # One that left the group still holds the job's pipes: the job ends
        # all the same.
        r = self.run_job(["sh", "-c", 'setsid sleep 300 & echo $! > "$1"; '
                          'echo bye; exit 4', "sh", g])
        escaped = read_pid(g)
        self.addCleanup(lambda: gone(escaped) or
                        os.kill(escaped, signal.SIGKILL))
        self.assertEqual((r["job"]["state"], r["job"]["exit_status"],
                          r["stdout"]), ("failed", 4, b"bye\n"))
        # stdin the job does not read.
        r = self.run_job(["true"], stdin=b64(b"x" * 1000000))
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertEqual(self.wait1(self.submit(["true"]))["state"],
                         "succeeded")

    def test_failures(self):
        self.start()
        for cmd in ("mprocd-no-such-command", "/nonexistent/mprocd-cmd"):
            r = self.run_job([cmd, "arg"])
            self.assertEqual(r["job"]["state"], "failed")
            self.assertEqual(r["job"]["exit_status"], 127)
            self.assertNotIn("signal", r["job"])
            self.assertEqual(r["stderr"].decode(), "mprocd: cannot run '%s': "
                             "No such file or directory\n" % cmd)
            self.assertEqual(r["stdout"], b"")

        # A name too long to run: its message is cut, never overruns.
        cmd = "y" * 9000
        r = self.run_job([cmd])
        self.assertEqual((r["job"]["state"], r["job"]["exit_status"]),
                         ("failed", 127))
        self.assertEqual(r["stderr"].decode(), "mprocd: cannot run '%s...': "
                         "File name too long\n" % cmd[:300])

        r = self.run_job(["pwd"], cwd="/nonexistent/dir")
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["exit_status"], 127)
        self.assertIn(b"cannot change directory to '/nonexistent/dir'",
                      r["stderr"])
        self.assertEqual(r["stdout"], b"")

        r = self.run_job(["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["exit_status"], 3)
        self.assertEqual((r["stdout"], r["stderr"]), (b"out\n", b"err\n"))

        r = self.run_job(["sh", "-c", "echo before; kill -9 $$"])
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["signal"], 9)
        self.assertEqual(r["stdout"], b"before\n")

        # A signal mprocd did not send: failed, not timeout or cancelled.
        jid = self.submit(["sleep", "300"], timeout_sec=600)
        pid = wait_for(lambda: self.get(jid)["job"].get("pid"), "its pid")
        wait_for(lambda: cmdline(pid).startswith("sleep\0"),
                 "the job to exec sleep")
        os.kill(pid, signal.SIGTERM)
        job = self.wait1(jid)
        self.assertEqual((job["state"], job["signal"]),
                         ("failed", signal.SIGTERM))

        r = self.run_job(["sh", "-c", "kill -USR1 $$"])
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["signal"], signal.SIGUSR1)


class TestRunMethod(JobTestCase):
    """io.mprocd.Run: Submit, answered once the job has finished."""

    def run_call(self, argv, c=None, **params):
        r = (c or self.c).call("io.mprocd.Run", dict(params, argv=argv))
        self.assertEqual(set(r), {"job", "stdout", "stderr", "truncated"})
        r["stdout"] = base64.b64decode(r["stdout"], validate=True)
        r["stderr"] = base64.b64decode(r["stderr"], validate=True)
        return r

    def test_answer_is_what_get_says(self):
        self.start()
        r = self.run_call(["sh", "-c", "echo out; echo err >&2; exit 3"],
                          name="three")
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["exit_status"], 3)
        self.assertEqual(r["job"]["name"], "three")
        self.assertEqual((r["stdout"], r["stderr"], r["truncated"]),
                         (b"out\n", b"err\n", False))
        self.assertEqual(self.get(r["job"]["id"]), r)
        # Every Submit parameter is taken: stdin, env, cwd, timeout.
        r = self.run_call(["sh", "-c", "cat; echo $FOO; pwd"],
                          stdin=b64(b"in\n"), env=["FOO=bar"], cwd="/tmp")
        self.assertEqual(r["stdout"], b"in\nbar\n/tmp\n")
        self.assertEqual(r["job"]["state"], "succeeded")
        r = self.run_call(["sleep", "30"], timeout_sec=0.2)
        self.assertEqual(r["job"]["state"], "timeout")

    def test_later_calls_wait_their_turn(self):
        self.start()
        self.c.send("io.mprocd.Run",
                    {"argv": ["sh", "-c", "sleep 0.3; touch \"$0\"",
                              self.path("ran")]})
        self.c.send("io.mprocd.Status")
        r = self.c.recv()
        self.assertEqual(r["parameters"]["job"]["state"], "succeeded")
        self.assertTrue(os.path.exists(self.path("ran")))
        self.assertIn("pools", self.c.recv()["parameters"])

    def test_cancelled_by_another_client(self):
        self.start()
        self.c.send("io.mprocd.Run", {"argv": ["sleep", "300"]})
        other = self.d.connect()
        jobs = wait_for(lambda: other.call("io.mprocd.List",
                                           {"state": "running"})["jobs"],
                        "the job running")
        other.call("io.mprocd.Cancel", {"id": jobs[0]["id"]})
        r = self.c.recv()
        self.assertEqual(r["parameters"]["job"]["state"], "cancelled")
        self.assertEqual(r["parameters"]["job"]["id"], jobs[0]["id"])

    def test_client_gone_job_goes_on(self):
        self.start()
        c = self.d.connect()
        c.send("io.mprocd.Run",
               {"argv": ["sh", "-c", "sleep 0.3; touch \"$0\"",
                         self.path("ran")]})
        jid = wait_for(lambda: self.c.call("io.mprocd.List")["jobs"],
                       "the job")[0]["id"]
        c.close()
        self.assertEqual(self.wait1(jid)["state"], "succeeded")
        self.assertTrue(os.path.exists(self.path("ran")))

    def test_oneway_holds_nothing_back(self):
        self.start()
        self.c.send("io.mprocd.Run",
                    {"argv": ["sh", "-c", "sleep 0.5; touch \"$0\"",
                              self.path("ran")]}, oneway=True)
        self.assertIn("pools", self.c.call("io.mprocd.Status"))
        self.assertFalse(os.path.exists(self.path("ran")))
        jid = self.c.call("io.mprocd.List")["jobs"][0]["id"]
        self.assertEqual(self.wait1(jid)["state"], "succeeded")
        self.assertTrue(os.path.exists(self.path("ran")))

    def test_refused_calls_queue_nothing(self):
        self.start()
        # input is a program's call: every pool here runs commands.
        for method in ("io.mprocd.Run", "io.mprocd.Submit"):
            self.assert_error(method, {"argv": ["true"],
                                       "input": {"args": [1]}},
                              INVALID, {"parameter": "input"})
        self.assert_error("io.mprocd.Run", {"argv": ["true"], "pool": "x"},
                          "io.mprocd.NoSuchPool", {"pool": "x"})
        self.assert_error("io.mprocd.Run", {"argv": []}, INVALID,
                          {"parameter": "argv"})
        self.assertEqual(self.c.call("io.mprocd.List")["jobs"], [])
        # A null input is no input.
        r = self.run_call(["true"], input=None)
        self.assertEqual(r["job"]["state"], "succeeded")


class TestTimeout(JobTestCase):

    def test_timeout_kills_the_process_group(self):
        self.start(conf(default="workers = 2; kill_grace = 200ms"))
        jid, pid, gc = self.spawn_tree(GRANDCHILD, "t", timeout_sec=1.0)
        job = self.wait1(jid)
        self.assertEqual(job["state"], "timeout")
        self.assertEqual(job["signal"], signal.SIGTERM)
        self.assert_gone(pid, gc)
        self.assertEqual(self.get(jid)["job"]["state"], "timeout")
        self.assertEqual(self.d.pool()["failed"], 1)

    def test_timeout_of_a_job_ignoring_sigterm(self):
        self.start(conf(default="workers = 2; kill_grace = 200ms"))
        jid, pid, gc = self.spawn_tree(STUBBORN, "t", timeout_sec=1.0)
        job = self.wait1(jid)
        self.assertEqual(job["state"], "timeout")
        self.assertEqual(job["signal"], signal.SIGKILL)
        self.assert_gone(pid, gc)
        self.assertIn("sending SIGKILL", self.d.log())

    def test_pool_job_timeout(self):
        self.start(conf(default="workers = 1",
                        slow="workers = 2; job_timeout = 300ms; "
                        "kill_grace = 200ms"))
        jid = self.submit(["sleep", "300"], pool="slow")
        job = self.wait1(jid)
        self.assertEqual((job["pool"], job["state"], job["signal"]),
                         ("slow", "timeout", signal.SIGTERM))
        # timeout_sec overrides it, 0 meaning none.
        ids = [self.submit(["sleep", "0.8"], pool="slow", timeout_sec=0),
               self.submit(["sleep", "0.8"], pool="slow", timeout_sec=5)]
        self.assertEqual([j["state"] for j in self.wait(ids)],
                         ["succeeded", "succeeded"])
        # A job that ends in time is not touched.
        jid = self.submit(["true"], pool="slow")
        self.assertEqual(self.wait1(jid)["state"], "succeeded")
        # Other pools have no timeout.
        jid = self.submit(["sleep", "0.5"])
        self.assertEqual(self.wait1(jid)["state"], "succeeded")


class TestCancel(JobTestCase):

    def test_cancel(self):
        self.start(conf(default="workers = 1; kill_grace = 200ms"))
        running, pid, gc = self.spawn_tree(GRANDCHILD, "a")
        queued = self.submit(["touch", self.path("b-ran")])
        # Queued: cancelled at once, never run.
        job = self.c.call("io.mprocd.Cancel", {"id": queued})["job"]
        self.assertEqual((job["id"], job["state"], job["attempts"]),
                         (queued, "cancelled", 0))
        for key in ("started_usec", "pid", "exit_status"):
            self.assertNotIn(key, job)
        self.assertIn("finished_usec", job)
        self.assertEqual(self.get(queued)["job"]["state"], "cancelled")
        self.assertEqual(self.d.pool()["queued"], 0)

        # Running: another client waiting on it is told too.
        waiter = self.d.connect()
        waiter.send("io.mprocd.Wait", {"ids": [running]})
        self.d.status()
        job = self.c.call("io.mprocd.Cancel", {"id": running})["job"]
        self.assertEqual(job["state"], "cancelled")
        self.assertIn("finished_usec", job)
        self.assert_gone(pid, gc)
        r = waiter.recv()
        self.assertEqual(r["parameters"]["jobs"][0]["state"], "cancelled")

        # The worker goes on; the cancelled job never ran (FIFO: it would
        # have before this one).
        after = self.submit(["true"])
        job = self.wait1(after)
        self.assertEqual(job["state"], "succeeded")
        self.assertFalse(os.path.exists(self.path("b-ran")))

        # Finished: returned unchanged.
        self.assertEqual(self.c.call("io.mprocd.Cancel", {"id": after}),
                         {"job": job})
        self.assertEqual(self.get(after)["job"], job)
        again = self.c.call("io.mprocd.Cancel", {"id": queued})["job"]
        self.assertEqual(again["state"], "cancelled")

        # A job that ignores SIGTERM is killed after kill_grace; two
        # clients cancelling it are both answered.
        stubborn, pid, gc = self.spawn_tree(STUBBORN, "s")
        self.c.send("io.mprocd.Cancel", {"id": stubborn})
        waiter.send("io.mprocd.Cancel", {"id": stubborn})
        for c in (self.c, waiter):
            job = c.recv()["parameters"]["job"]
            self.assertEqual((job["state"], job["signal"]),
                             ("cancelled", signal.SIGKILL))
        self.assert_gone(pid, gc)
        pool = self.d.pool()
        self.assertEqual((pool["cancelled"], pool["succeeded"],
                          pool["failed"]), (3, 1, 0))

    def test_sigterm_goes_to_the_whole_group(self):
        """The job's main process ignores SIGTERM; a child of it that
        catches SIGTERM must get it too, before the SIGKILL."""
        self.start(conf(default="workers = 1; kill_grace = 1s"))
        inner = ('trap \'echo term > "$1"; exit 0\' TERM; '
                 'echo $$ > "$1.ready"; sleep 300 & wait')
        outer = ('sh -c "$3" sh "$1" & trap "" TERM; echo $$ > "$2"; '
                 'exec sleep 300')
        for how in ("cancel", "timeout"):
            mark, f = self.path(how), self.path(how + ".pid")
            jid = self.submit(["sh", "-c", outer, "sh", mark, f, inner],
                              timeout_sec=1 if how == "timeout" else 0)
            pid = wait_for(lambda: read_pid(f), "the job to start")
            child = wait_for(lambda: read_pid(mark + ".ready"),
                             "its child to set its trap")
            if how == "cancel":
                job = self.c.call("io.mprocd.Cancel", {"id": jid})["job"]
            else:
                job = self.wait1(jid)
            self.assertEqual((job["state"], job["signal"]),
                             ("cancelled" if how == "cancel" else "timeout",
                              signal.SIGKILL))
            self.assertTrue(os.path.exists(mark), "%s: SIGTERM did not "
                            "reach the job's process group" % how)
            self.assert_gone(pid, child)

    def test_cancel_right_after_submit(self):
        self.start(conf(default="workers = 2; kill_grace = 200ms"))
        for i in range(5):
            f, g = self.path("%d.pid" % i), self.path("%d.gc" % i)
            self.c.send("io.mprocd.Submit",
                        {"argv": ["sh", "-c", STUBBORN, "sh", f, g]})
            self.c.send("io.mprocd.Cancel", {"id": i + 1})
            self.assertEqual(self.c.recv()["parameters"], {"id": i + 1})
            job = self.c.recv()["parameters"]["job"]
            self.assertEqual((job["id"], job["state"]), (i + 1, "cancelled"))
            # Whatever it started is gone.
            self.assert_gone(*[p for p in (read_pid(f), read_pid(g)) if p])
        pool = self.d.pool()
        self.assertEqual((pool["cancelled"], pool["running"]), (5, 0))
        self.assertEqual(self.wait1(self.submit(["true"]))["state"],
                         "succeeded")


class TestWorkerDeath(JobTestCase):

    def test_lost_job(self):
        self.start(conf(default="workers = 1; restart_delay = 10ms"))
        jid, pid, gc = self.spawn_tree(GRANDCHILD, "a")
        wait_for(lambda: self.get(jid)["job"].get("pid") == pid,
                 "the job's pid in its record")
        worker = self.worker_of(jid)
        self.assertEqual(worker["state"], "busy")
        waiter = self.d.connect()
        waiter.send("io.mprocd.Wait", {"ids": [jid]}, more=True)
        self.d.status()
        os.kill(worker["pid"], signal.SIGKILL)
        r = waiter.recv()
        self.assertNotIn("error", r)
        self.assertNotIn("continues", r)
        job = r["parameters"]["jobs"][0]
        self.assertEqual((job["id"], job["state"], job["attempts"]),
                         (jid, "lost", 1))
        self.assert_gone(pid, gc)
        self.assertEqual(self.get(jid)["job"], job)
        pool = self.d.pool()
        self.assertEqual(pool["failed"], 1)
        self.assertEqual(pool["running"], 0)
        # Its replacement runs jobs.
        self.assertEqual(self.wait1(self.submit(["true"]))["state"],
                         "succeeded")
        self.assertNotEqual(self.d.worker("default/0")["pid"], worker["pid"])

    def check_retry(self, pool, **params):
        marker = self.path(pool + ".marker")
        order = self.path(pool + ".order")
        script = ('if [ -e "$1" ]; then echo X >> "$3"; exit 0; fi; '
                  'touch "$1"; echo $$ > "$2"; exec sleep 300')
        first = self.path(pool + ".pid")
        x = self.submit(["sh", "-c", script, "sh", marker, first, order],
                        pool=pool, **params)
        y = self.submit(["sh", "-c", 'echo Y >> "$1"', "sh", order],
                        pool=pool)
        pid = wait_for(lambda: read_pid(first), "the first attempt")
        worker = self.worker_of(x, pool)
        waiter = self.d.connect()
        waiter.send("io.mprocd.Wait", {"ids": [x, y]})
        os.kill(worker["pid"], signal.SIGKILL)
        r = waiter.recv()
        self.assertNotIn("error", r)
        jx, jy = r["parameters"]["jobs"]
        self.assertEqual((jx["state"], jx["attempts"], jx["exit_status"]),
                         ("succeeded", 2, 0))
        self.assertEqual((jy["state"], jy["attempts"]), ("succeeded", 1))
        self.assert_gone(pid)
        p = self.d.pool(pool)
        self.assertEqual((p["succeeded"], p["failed"], p["queued"]), (2, 0, 0))
        # The retried job went back to the front of the queue.
        with open(order) as f:
            self.assertEqual(f.read(), "X\nY\n")

    def test_retry_from_submit(self):
        self.start(conf(default="workers = 1; restart_delay = 10ms"))
        self.check_retry("default", retries=1)

    def test_retry_from_pool(self):
        self.start(conf(r="workers = 1; restart_delay = 10ms; retries = 1"))
        self.check_retry("r")

    def test_cancel_while_requeued(self):
        self.start(conf(default="workers = 1; restart_delay = 1s"))
        jid, pid, gc = self.spawn_tree(GRANDCHILD, "a", retries=3)
        os.kill(self.worker_of(jid)["pid"], signal.SIGKILL)
        job = self.wait_state(jid, "queued")
        self.assertEqual(job["attempts"], 1)
        self.assert_gone(pid, gc)
        self.assertEqual(self.d.pool()["queued"], 1)
        job = self.c.call("io.mprocd.Cancel", {"id": jid})["job"]
        self.assertEqual((job["state"], job["attempts"]), ("cancelled", 1))
        self.assertEqual(self.d.pool()["queued"], 0)
        # The new worker runs the next job, not the cancelled one.
        os.unlink(self.path("a.pid"))
        nxt = self.submit(["true"])
        self.assertEqual(self.wait1(nxt)["state"], "succeeded")
        self.assertFalse(os.path.exists(self.path("a.pid")))
        self.assertEqual(self.get(jid)["job"]["state"], "cancelled")

    def test_retries_exhausted(self):
        self.start(conf(default="workers = 1; restart_delay = 10ms; "
                        "retries = 5"))
        jid, pid, gc = self.spawn_tree(GRANDCHILD, "a", retries=1)
        os.kill(self.worker_of(jid)["pid"], signal.SIGKILL)
        self.assert_gone(pid, gc)
        # Second attempt (same script: it writes the pid files again).
        first = pid
        pid = wait_for(lambda: read_pid(self.path("a.pid")) not in
                       (None, first) and read_pid(self.path("a.pid")),
                       "the second attempt")
        gc = read_pid(self.path("a.gc"))
        os.kill(self.worker_of(jid)["pid"], signal.SIGKILL)
        job = self.wait1(jid)
        self.assertEqual((job["state"], job["attempts"]), ("lost", 2))
        self.assert_gone(pid, gc)


class TestManyJobs(JobTestCase):

    def test_500_pipelined_submits(self):
        self.start()
        n = 500
        self.c.send_raw(b"".join(json.dumps(
            {"method": "io.mprocd.Submit",
             "parameters": {"argv": ["sh", "-c", "echo %d" % i]}})
            .encode() + b"\0" for i in range(n)))
        ids = []
        for _ in range(n):
            r = self.c.recv()
            self.assertNotIn("error", r)
            ids.append(r["parameters"]["id"])
        self.assertEqual(ids, sorted(set(ids)), "ids not strictly increasing")

        jobs = self.wait(ids)
        self.assertEqual([j["state"] for j in jobs], ["succeeded"] * n)
        self.assertEqual(self.get(ids[123])["stdout"], b"123\n")

        self.c.send("io.mprocd.Wait", {"ids": ids}, more=True)
        for i, jid in enumerate(ids):
            r = self.c.recv()
            self.assertEqual([j["id"] for j in r["parameters"]["jobs"]],
                             [jid])
            self.assertEqual(r.get("continues", False), i < n - 1)
        # Then the next call's reply.
        self.assertIn("pools", self.c.call("io.mprocd.Status"))
        pool = self.d.pool()
        self.assertEqual((pool["succeeded"], pool["queued"]), (n, 0))

    def test_wait_more_order_and_timeout(self):
        self.start()
        blocked = self.gate("g")
        done = self.submit(["true"])
        self.wait1(done)
        # Already finished ones first, then as they finish.
        self.c.send("io.mprocd.Wait", {"ids": [blocked, done]}, more=True)
        r = self.c.recv()
        self.assertEqual([j["id"] for j in r["parameters"]["jobs"]], [done])
        self.assertIs(r.get("continues"), True)
        # timeout_sec: TimedOut names the unfinished jobs.
        other = self.d.connect()
        self.assert_error("io.mprocd.Wait",
                          {"ids": [done, blocked], "timeout_sec": 0.2},
                          "io.mprocd.TimedOut", {"ids": [blocked]}, c=other)
        # Each job once: a repeated id is refused, not multiplied.
        self.assert_error("io.mprocd.Wait",
                          {"ids": [done, blocked, done], "timeout_sec": 0.2},
                          "org.varlink.service.InvalidParameter",
                          {"parameter": "ids"}, c=other)
        other.send("io.mprocd.Wait", {"ids": [done, blocked],
                                      "timeout_sec": 0.2}, more=True)
        r = other.recv()
        self.assertEqual(r["parameters"]["jobs"][0]["id"], done)
        self.assertIs(r.get("continues"), True)
        r = other.recv()
        self.assertEqual((r["error"], r["parameters"]),
                         ("io.mprocd.TimedOut", {"ids": [blocked]}))
        # Many clients may wait for one job.
        waiters = [self.d.connect() for _ in range(20)]
        for w in waiters:
            w.send("io.mprocd.Wait", {"ids": [blocked]})
        # A later call on a connection with a Wait pending is answered
        # after it.
        self.c.send("io.mprocd.Status")
        self.assertIn("pools", other.call("io.mprocd.Status"))
        self.release("g")
        r = self.c.recv()
        self.assertEqual([j["id"] for j in r["parameters"]["jobs"]],
                         [blocked])
        self.assertEqual(r["parameters"]["jobs"][0]["state"], "succeeded")
        self.assertNotIn("continues", r)
        self.assertIn("pools", self.c.recv()["parameters"])
        for w in waiters:
            r = w.recv()
            self.assertEqual([(j["id"], j["state"]) for j in
                              r["parameters"]["jobs"]],
                             [(blocked, "succeeded")])
        # Without "more": one reply in the order asked.
        jobs = self.wait([blocked, done])
        self.assertEqual([j["id"] for j in jobs], [blocked, done])
        self.assertEqual([j["state"] for j in jobs], ["succeeded"] * 2)
        self.assertEqual(self.c.call("io.mprocd.Wait", {"ids": []}),
                         {"jobs": []})

    def test_fifo(self):
        self.start(conf(default="workers = 1"))
        order = self.path("order")
        self.gate("g")
        ids = [self.submit(["sh", "-c", 'echo $MPROCD_JOB_ID >> "$1"', "sh",
                            order]) for _ in range(20)]
        self.assertEqual(self.d.pool()["queued"], 20)
        self.release("g")
        self.wait(ids)
        with open(order) as f:
            self.assertEqual(f.read().split(), [str(i) for i in ids])
        # An idle worker takes a new job.
        wait_for(lambda: self.d.worker("default/0")["state"] == "idle",
                 "the worker to be idle")
        self.assertEqual(self.wait1(self.submit(["true"]))["state"],
                         "succeeded")

    def test_max_jobs_per_worker(self):
        self.start(conf(default="workers = 1; max_jobs_per_worker = 2"))
        first = self.d.worker("default/0")["pid"]
        parents = []
        for _ in range(5):
            r = self.run_job(["sh", "-c", "echo $PPID"])
            self.assertEqual(r["job"]["state"], "succeeded")
            self.assertEqual(r["job"]["worker"], "default/0")
            parents.append(int(r["stdout"]))
        self.assertEqual(parents[0], first)
        self.assertEqual(parents[0], parents[1])
        self.assertEqual(parents[2], parents[3])
        self.assertEqual(len({parents[0], parents[2], parents[4]}), 3,
                         "the worker was not replaced: %s" % parents)
        self.assert_gone(parents[0], parents[2])
        w = self.d.worker("default/0")
        self.assertEqual((w["pid"], w["jobs_done"]), (parents[4], 1))
        # Jobs queued while the worker is replaced wait for its successor.
        ids = [self.submit(["sh", "-c", "echo $PPID"]) for _ in range(5)]
        self.assertEqual([j["state"] for j in self.wait(ids)],
                         ["succeeded"] * 5)
        batch = [int(self.get(jid)["stdout"]) for jid in ids]
        self.assertEqual(batch[0], parents[4])
        self.assertEqual((batch[1], batch[3]), (batch[2], batch[4]))
        self.assertEqual(len({parents[4], batch[1], batch[3]}), 3,
                         "the worker was not replaced: %s" % batch)
        self.assertFalse(self.d.pool()["degraded"])

    def test_keep_finished(self):
        self.start(conf("keep_finished = 3", default="workers = 1"))
        ids = [self.gate("g")] + [self.submit(["true"]) for _ in range(4)]
        self.c.send("io.mprocd.Wait", {"ids": ids, "timeout_sec": WAIT})
        self.d.status()
        self.release("g")
        r = self.c.recv()
        self.assertEqual([j["state"] for j in r["parameters"]["jobs"]],
                         ["succeeded"] * 5)
        for jid in ids[:2]:
            self.assert_error("io.mprocd.Get", {"id": jid},
                              "io.mprocd.NoSuchJob", {"id": jid})
        for jid in ids[2:]:
            self.assertEqual(self.get(jid)["job"]["state"], "succeeded")
        self.assertEqual([j["id"] for j in
                          self.c.call("io.mprocd.List")["jobs"]], ids[2:])
        # Ids keep growing.
        self.assertGreater(self.submit(["true"]), ids[-1])


class TestList(JobTestCase):

    def test_list(self):
        self.start(conf(a="workers = 1", b="workers = 1"))
        a1 = self.submit(["true"], pool="a")
        b1 = self.submit(["false"], pool="b")
        self.wait([a1, b1])
        a2 = self.submit(["sh", "-c", 'echo so far; echo err >&2; ' + GATE,
                          "sh", self.path("g")], pool="a")
        a3 = self.submit(["true"], pool="a")
        self.wait_state(a2, "running")
        # Output comes in while the job runs.
        wait_for(lambda: (lambda r: r["stdout"] == b"so far\n" and
                          r["stderr"] == b"err\n")(self.get(a2)),
                 "the running job's output so far")
        ls = lambda **p: [j["id"] for j in
                          self.c.call("io.mprocd.List", p)["jobs"]]
        self.assertEqual(ls(), [a1, b1, a2, a3])
        self.assertEqual(ls(pool="a"), [a1, a2, a3])
        self.assertEqual(ls(pool="b"), [b1])
        self.assertEqual(ls(state="succeeded"), [a1])
        self.assertEqual(ls(state="failed"), [b1])
        self.assertEqual(ls(state="running"), [a2])
        self.assertEqual(ls(pool="a", state="queued"), [a3])
        self.assertEqual(ls(pool="b", state="queued"), [])
        self.assertEqual(ls(state="lost"), [])
        jobs = self.c.call("io.mprocd.List", {"pool": "a"})["jobs"]
        self.assertEqual(jobs[0], self.get(a1)["job"])
        self.release("g")
        self.wait([a2, a3])
        self.assertEqual(ls(state="succeeded"), [a1, a2, a3])
        self.assert_error("io.mprocd.List", {"pool": "nope"},
                          "io.mprocd.NoSuchPool", {"pool": "nope"})


class TestBadParameters(JobTestCase):

    SUBMIT = [
        ({}, "argv"),
        ({"argv": None}, "argv"),
        ({"argv": "true"}, "argv"),
        ({"argv": {"0": "true"}}, "argv"),
        ({"argv": []}, "argv"),
        ({"argv": [5]}, "argv"),
        ({"argv": ["true", 5]}, "argv"),
        ({"argv": ["true", None]}, "argv"),
        ({"argv": [""]}, "argv"),
        ({"argv": ["true"], "pool": 5}, "pool"),
        ({"argv": ["true"], "pool": ["default"]}, "pool"),
        ({"argv": ["true"], "name": 5}, "name"),
        ({"argv": ["true"], "name": True}, "name"),
        ({"argv": ["true"], "cwd": "tmp"}, "cwd"),
        ({"argv": ["true"], "cwd": ""}, "cwd"),
        ({"argv": ["true"], "cwd": 5}, "cwd"),
        ({"argv": ["true"], "env": "A=B"}, "env"),
        ({"argv": ["true"], "env": [5]}, "env"),
        ({"argv": ["true"], "env": ["NOEQUALS"]}, "env"),
        ({"argv": ["true"], "env": ["=value"]}, "env"),
        ({"argv": ["true"], "env": ["A=B", ""]}, "env"),
        ({"argv": ["true"], "stdin": "!!!!"}, "stdin"),
        ({"argv": ["true"], "stdin": "YQ="}, "stdin"),
        ({"argv": ["true"], "stdin": "a"}, "stdin"),
        ({"argv": ["true"], "stdin": 5}, "stdin"),
        ({"argv": ["true"], "stdin": ["YQ=="]}, "stdin"),
        ({"argv": ["true"], "timeout_sec": -1}, "timeout_sec"),
        ({"argv": ["true"], "timeout_sec": -0.5}, "timeout_sec"),
        ({"argv": ["true"], "timeout_sec": "5"}, "timeout_sec"),
        ({"argv": ["true"], "timeout_sec": True}, "timeout_sec"),
        ({"argv": ["true"], "timeout_sec": 1e300}, "timeout_sec"),
        ({"argv": ["true"], "retries": -1}, "retries"),
        ({"argv": ["true"], "retries": 101}, "retries"),
        ({"argv": ["true"], "retries": 1000}, "retries"),
        ({"argv": ["true"], "retries": "x"}, "retries"),
        ({"argv": ["true"], "retries": 1.5}, "retries"),
        ({"argv": ["true"], "retries": True}, "retries"),
        ({"argv": ["true"], "timeout": 5}, "timeout"),
        ({"argv": ["true"], "pool": "default", "Pool": "x"}, "Pool"),
    ]
    WAIT = [
        ({}, "ids"),
        ({"ids": None}, "ids"),
        ({"ids": 1}, "ids"),
        ({"ids": "1"}, "ids"),
        ({"ids": [1, "2"]}, "ids"),
        ({"ids": [1, None]}, "ids"),
        ({"ids": [0]}, "ids"),
        ({"ids": [-1]}, "ids"),
        ({"ids": [1.5]}, "ids"),
        ({"ids": [1], "timeout_sec": -1}, "timeout_sec"),
        ({"ids": [1], "timeout_sec": "1"}, "timeout_sec"),
        ({"ids": [1], "timeout_sec": 1e300}, "timeout_sec"),
        ({"ids": [1], "id": 1}, "id"),
    ]
    ID = [
        ({}, "id"),
        ({"id": None}, "id"),
        ({"id": "1"}, "id"),
        ({"id": 0}, "id"),
        ({"id": -5}, "id"),
        ({"id": 1.5}, "id"),
        ({"id": [1]}, "id"),
        ({"id": 1, "ids": [1]}, "ids"),
    ]
    LIST = [
        ({"state": "bogus"}, "state"),
        ({"state": "Succeeded"}, "state"),
        ({"state": 5}, "state"),
        ({"pool": 5}, "pool"),
        ({"pool": ["default"]}, "pool"),
        ({"pool": "default", "x": 1}, "x"),
    ]

    def test_invalid_parameters(self):
        self.start()
        jid = self.submit(["true"])
        self.assertEqual(jid, 1)
        self.wait1(jid)
        cases = [("Submit", p, n) for p, n in self.SUBMIT] + \
            [("Wait", p, n) for p, n in self.WAIT] + \
            [("Get", p, n) for p, n in self.ID] + \
            [("Cancel", p, n) for p, n in self.ID] + \
            [("List", p, n) for p, n in self.LIST]
        failures = []
        for method, params, name in cases:
            try:
                r = self.c.call("io.mprocd." + method, params)
                failures.append("%s %s: no error but %s"
                                % (method, json.dumps(params), r))
            except VarlinkError as e:
                if (e.error, e.parameters) != (INVALID, {"parameter": name}):
                    failures.append("%s %s: %s %s" % (
                        method, json.dumps(params), e.error,
                        json.dumps(e.parameters)))
        self.assertEqual(failures, [], "\n" + "\n".join(failures))
        # No job was created, nothing was cancelled, the connection is good.
        jobs = self.c.call("io.mprocd.List")["jobs"]
        self.assertEqual([(j["id"], j["state"]) for j in jobs],
                         [(1, "succeeded")])
        self.assertEqual(self.d.pool()["queued"], 0)

    def test_nulls_for_optional_parameters(self):
        self.start()
        jid = self.submit(["true"], pool=None, name=None, cwd=None, env=None,
                          stdin=None, timeout_sec=None, retries=None)
        job = self.c.call("io.mprocd.Wait", {"ids": [jid],
                                             "timeout_sec": None})["jobs"][0]
        self.assertEqual((job["state"], job["pool"], job["cwd"]),
                         ("succeeded", "default", "/"))
        self.assertEqual(len(self.c.call("io.mprocd.List",
                                         {"pool": None, "state": None})
                             ["jobs"]), 1)

    def test_no_such_job_or_pool(self):
        self.start()
        jid = self.submit(["true"])
        self.wait1(jid)
        for method in ("Get", "Cancel"):
            self.assert_error("io.mprocd." + method, {"id": 999999},
                              "io.mprocd.NoSuchJob", {"id": 999999})
        # Checked up front: no partial reply for the jobs that exist.
        for more in (False, True):
            self.c.send("io.mprocd.Wait", {"ids": [jid, 999999, 999998]},
                        more=more)
            r = self.c.recv()
            self.assertEqual((r["error"], r["parameters"]),
                             ("io.mprocd.NoSuchJob", {"id": 999999}))
            self.assertIn("pools", self.c.call("io.mprocd.Status"))
        self.assert_error("io.mprocd.Submit", {"argv": ["true"],
                                               "pool": "nope"},
                          "io.mprocd.NoSuchPool", {"pool": "nope"})
        self.assert_error("io.mprocd.List", {"pool": "nope"},
                          "io.mprocd.NoSuchPool", {"pool": "nope"})
        self.assertEqual(len(self.c.call("io.mprocd.List")["jobs"]), 1)


class TestClients(JobTestCase):

    def test_client_vanishing_mid_wait(self):
        self.start(conf(default="workers = 2; kill_grace = 200ms"))
        jid = self.gate("g")
        for more in (False, True):
            vanished = self.d.connect()
            vanished.send("io.mprocd.Wait", {"ids": [jid]}, more=more)
            vanished.send("io.mprocd.Status")
            self.d.status()
            vanished.close()
        # And one that goes away while its Cancel of a stubborn job is
        # pending.
        stubborn, pid, gc = self.spawn_tree(STUBBORN, "s")
        vanished = self.d.connect()
        vanished.send("io.mprocd.Cancel", {"id": stubborn})
        self.d.status()
        vanished.close()

        self.assertIn("pools", self.d.status())
        self.release("g")
        self.assertEqual(self.wait1(jid)["state"], "succeeded")
        self.assertEqual(self.get(jid, c=self.d.connect())["job"]["state"],
                         "succeeded")
        self.assertEqual(self.wait1(stubborn)["state"], "cancelled")
        self.assert_gone(pid, gc)
        self.assertIsNone(self.d.proc.poll(), "mprocd died")
        self.assertEqual(self.wait1(self.submit(["true"]))["state"],
                         "succeeded")
        wait_for(lambda: fd_count(self.d.pid) < 20,
                 "client descriptors to be closed")

    def test_queue_limit(self):
        self.start(conf(default="workers = 1; queue_limit = 2"))
        running = self.gate("g")
        self.wait_state(running, "running")
        q = [self.submit(["true"]), self.submit(["true"])]
        self.assert_error("io.mprocd.Submit", {"argv": ["true"]},
                          "io.mprocd.QueueFull",
                          {"pool": "default", "limit": 2})
        self.assertEqual(self.d.pool()["queued"], 2)
        self.c.call("io.mprocd.Cancel", {"id": q[0]})
        q.append(self.submit(["true"]))
        self.release("g")
        jobs = self.wait([running] + q)
        self.assertEqual([j["state"] for j in jobs],
                         ["succeeded", "cancelled", "succeeded",
                          "succeeded"])


CLIENT = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
buf, out = b"", []
for method, params in json.loads(sys.argv[2]):
    s.sendall(json.dumps({"method": method, "parameters": params}).encode()
              + b"\0")
    while b"\0" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
    msg, _, buf = buf.partition(b"\0")
    out.append(json.loads(msg))
print(json.dumps(out))
'''


class TestUsers(JobTestCase):

    OTHER = OTHER_UID

    def as_other(self, *calls):
        """Runs calls on one connection as uid 65534; their replies."""
        r = subprocess.run(
            as_other_user(self.python, "-c", CLIENT, self.d.sock,
                          json.dumps(calls)),
            capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_other_user(self):
        self.python = other_user_python()
        self.start(conf("socket_mode = 0666"))
        os.chmod(self.d.dir, 0o755)
        self.assertEqual(stat.S_IMODE(os.stat(self.d.sock).st_mode), 0o666)
        mine = self.submit(["true"])
        blocked = self.gate("g")
        self.wait1(mine)

        r = self.as_other(
            ["io.mprocd.Submit", {"argv": ["echo", "theirs"]}],
            ["io.mprocd.List", {}],
            ["io.mprocd.Status", {}],
            ["io.mprocd.Get", {"id": mine}],
            ["io.mprocd.Wait", {"ids": [mine]}],
            ["io.mprocd.Cancel", {"id": blocked}],
            ["io.mprocd.Reload", {}])
        theirs = r[0]["parameters"]["id"]
        self.assertIn(mine, [j["id"] for j in r[1]["parameters"]["jobs"]])
        self.assertIn("pools", r[2]["parameters"])
        for reply, jid in zip(r[3:6], (mine, mine, blocked)):
            self.assertEqual((reply.get("error"), reply.get("parameters")),
                             ("io.mprocd.PermissionDenied", {"id": jid}))
        self.assertEqual(r[6]["error"], "org.varlink.service.PermissionDenied")
        self.assertEqual(self.get(blocked)["job"]["state"], "running")

        # Their own job is theirs to see; one of ours in a Wait is not.
        r = self.as_other(
            ["io.mprocd.Wait", {"ids": [theirs], "timeout_sec": WAIT}],
            ["io.mprocd.Get", {"id": theirs}],
            ["io.mprocd.Wait", {"ids": [theirs, mine]}],
            ["io.mprocd.Cancel", {"id": theirs}])
        self.assertEqual(r[0]["parameters"]["jobs"][0]["state"], "succeeded")
        self.assertEqual(base64.b64decode(r[1]["parameters"]["stdout"]),
                         b"theirs\n")
        self.assertEqual((r[2].get("error"), r[2].get("parameters")),
                         ("io.mprocd.PermissionDenied", {"id": mine}))
        self.assertEqual(r[3]["parameters"]["job"]["state"], "succeeded")

        # Root sees everyone's.
        job = self.get(theirs)["job"]
        self.assertEqual((job["uid"], job["state"]), (self.OTHER,
                                                      "succeeded"))
        self.assertEqual(self.get(mine)["job"]["uid"], 0)
        # Root may reload (not supported yet: ReloadFailed, with a reason).
        try:
            self.assertEqual(self.c.call("io.mprocd.Reload"), {})
        except VarlinkError as e:
            self.assertEqual(e.error, "io.mprocd.ReloadFailed")
            self.assertIsInstance(e.parameters["reason"], str)
        self.release("g")
        self.assertEqual(self.wait1(blocked)["state"], "succeeded")


class TestShutdown(JobTestCase):
    """Shutdown of an mprocd that keeps its jobs in memory only: queued jobs
    end cancelled. (With a state database they stay for the next start:
    test_store.py.)"""

    def start(self, config, **kw):
        return super().start(config.replace(
            "[mprocd]\n", "[mprocd]\nstate = none\n", 1), **kw)

    def test_running_job_finishes(self):
        self.start(conf("shutdown_timeout = 10s", default="workers = 1"))
        running = self.gate("g")
        self.wait_state(running, "running")
        queued = self.submit(["touch", self.path("queued-ran")])
        waiter = self.d.connect()
        waiter.send("io.mprocd.Wait", {"ids": [running, queued]}, more=True)
        self.d.status()
        workers = self.d.worker_pids()
        self.d.signal(signal.SIGTERM)
        r = waiter.recv()
        self.assertEqual(r["parameters"]["jobs"][0]["id"], queued)
        self.assertEqual(r["parameters"]["jobs"][0]["state"], "cancelled")
        self.assertIs(r.get("continues"), True)
        wait_for(lambda: "shutting down" in self.d.log(), "shutdown")
        self.assert_error("io.mprocd.Submit", {"argv": ["true"]},
                          "io.mprocd.ShuttingDown", {})
        self.assertIsNone(self.d.proc.poll(),
                          "mprocd did not wait for the running job")
        self.release("g")
        r = waiter.recv()
        job = r["parameters"]["jobs"][0]
        self.assertEqual((job["id"], job["state"]), (running, "succeeded"))
        self.assertNotIn("continues", r)
        self.assertEqual(self.d.wait_exit(), 0)
        self.assertFalse(os.path.exists(self.path("queued-ran")))
        self.assert_gone(*workers)

    def test_job_outliving_shutdown_timeout(self):
        self.start(conf("shutdown_timeout = 200ms",
                        default="workers = 2; kill_grace = 200ms"))
        a, apid, agc = self.spawn_tree(GRANDCHILD, "a")
        b, bpid, bgc = self.spawn_tree(STUBBORN, "b")
        waiter = self.d.connect()
        waiter.send("io.mprocd.Wait", {"ids": [a, b]})
        self.d.status()
        workers = self.d.worker_pids()
        self.d.signal(signal.SIGTERM)
        r = waiter.recv()
        self.assertNotIn("error", r)
        self.assertEqual([(j["id"], j["state"])
                          for j in r["parameters"]["jobs"]],
                         [(a, "cancelled"), (b, "cancelled")])
        self.assertEqual(self.d.wait_exit(), 0)
        self.assert_gone(apid, agc, bpid, bgc, *workers)

    def test_reply_queued_as_mprocd_exits_is_sent(self):
        """With no worker alive (the only one waits 30 s to restart),
        SIGTERM cancels the queued job and exits in one go: the Wait's
        reply, queued a moment before the exit, still reaches the client."""
        self.start(conf(default="workers = 1; restart_delay = 30s"))
        pid = self.d.worker("default/0")["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: "pid" not in self.d.worker("default/0"),
                 "default/0 to wait for its restart")
        queued = self.submit(["true"])
        waiter = self.d.connect()
        waiter.send("io.mprocd.Wait", {"ids": [queued]})
        self.assertEqual(self.get(queued)["job"]["state"], "queued")
        self.d.signal(signal.SIGTERM)
        r = waiter.recv()
        self.assertIsNotNone(r, "mprocd exited without sending the reply")
        self.assertEqual([(j["id"], j["state"])
                          for j in r["parameters"]["jobs"]],
                         [(queued, "cancelled")])
        self.assertEqual(self.d.wait_exit(), 0)



class TestCounters(JobTestCase):

    def test_pool_counters(self):
        self.start(conf(default="workers = 1; kill_grace = 200ms"))
        pool = self.d.pool()
        for key in ("queued", "running", "succeeded", "failed", "cancelled"):
            self.assertEqual(pool[key], 0, key)
        self.wait([self.submit(["true"]), self.submit(["true"]),
                   self.submit(["false"]),
                   self.submit(["sleep", "300"], timeout_sec=0.1),
                   self.submit(["mprocd-no-such-command"])])
        pool = self.d.pool()
        self.assertEqual([pool[k] for k in ("queued", "running", "succeeded",
                                            "failed", "cancelled")],
                         [0, 0, 2, 3, 0])
        w = pool["workers"][0]
        self.assertEqual((w["state"], w["jobs_done"]), ("idle", 5))
        self.assertNotIn("job", w)

        busy = self.gate("g")
        self.wait_state(busy, "running")
        q1, q2 = self.submit(["true"]), self.submit(["true"])
        pool = self.d.pool()
        self.assertEqual([pool[k] for k in ("queued", "running", "succeeded",
                                            "failed", "cancelled")],
                         [2, 1, 2, 3, 0])
        w = pool["workers"][0]
        self.assertEqual((w["state"], w["job"]), ("busy", busy))
        job = self.get(busy)["job"]
        self.assertEqual((job["worker"], job["state"]), (w["name"],
                                                         "running"))
        self.assertIn("started_usec", job)
        self.assertNotIn("finished_usec", job)
        self.assertNotIn("exit_status", job)

        self.c.call("io.mprocd.Cancel", {"id": q1})
        pool = self.d.pool()
        self.assertEqual((pool["queued"], pool["cancelled"]), (1, 1))
        self.release("g")
        self.wait([busy, q2])
        pool = self.d.pool()
        self.assertEqual([pool[k] for k in ("queued", "running", "succeeded",
                                            "failed", "cancelled")],
                         [0, 0, 4, 3, 1])
        self.assertEqual(pool["workers"][0]["jobs_done"], 7)


class TestEdges(JobTestCase):
    """Corners a review found: each of these once lost a job, crashed or
    stalled the daemon, or left a process behind."""

    def test_cancel_queued_with_keep_finished_0(self):
        self.start(conf("keep_finished = 0", default="workers = 1"))
        gate = self.path("g")
        first = self.submit(["sh", "-c", GATE, "sh", gate])
        queued = self.submit(["true"])
        r = self.c.call("io.mprocd.Cancel", {"id": queued})
        self.assertEqual((r["job"]["id"], r["job"]["state"]),
                         (queued, "cancelled"))
        touch(gate)
        self.assertEqual(self.wait1(first)["state"], "succeeded")
        self.assertIn("pools", self.c.call("io.mprocd.Status"))

    def test_oneway_wait_holds_nothing_back(self):
        self.start()
        gate = self.path("g")
        jid = self.submit(["sh", "-c", GATE, "sh", gate])
        self.c.send("io.mprocd.Wait", {"ids": [jid]}, oneway=True)
        self.c.send("io.mprocd.Cancel", {"id": jid}, oneway=True)
        # Answered although the job has not ended: nothing was pending.
        self.c.send("io.mprocd.Get", {"id": jid})
        self.assertEqual(self.c.recv()["parameters"]["job"]["id"], jid)
        self.assertEqual(self.wait1(jid)["state"], "cancelled")

    def test_job_not_given_to_a_worker_that_died(self):
        self.start(conf(default="workers = 1; retries = 0; "
                        "restart_delay = 10ms"))
        worker = self.d.worker("default/0")["pid"]
        # The supervisor cannot see the death before the Submit arrives.
        os.kill(self.d.pid, signal.SIGSTOP)
        try:
            os.kill(worker, signal.SIGKILL)
            wait_for(lambda: gone(worker), "the worker to die")
            self.c.send("io.mprocd.Submit", {"argv": ["true"]})
        finally:
            os.kill(self.d.pid, signal.SIGCONT)
        jid = self.c.recv()["parameters"]["id"]
        job = self.wait1(jid)
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 1))

    def test_escaped_processes_do_not_outlive_mprocd(self):
        self.start()
        pidfile = self.path("escaped")
        jid = self.submit(["sh", "-c", "setsid sh -c 'echo $$ > \"$1\"; "
                           "exec sleep 300' sh \"$1\" & "
                           "while [ ! -s \"$1\" ]; do sleep 0.02; done",
                           "sh", pidfile])
        self.assertEqual(self.wait1(jid)["state"], "succeeded")
        escaped = wait_for(lambda: read_pid(pidfile), "the escaped pid")
        self.assertFalse(gone(escaped))
        self.d.signal(signal.SIGTERM)
        self.assertEqual(self.d.wait_exit(), 0)
        self.assertTrue(gone(escaped), "pid %d outlived mprocd" % escaped)
        self.assertIn("left behind by a job\" orphan_pid=", self.d.log())


if __name__ == "__main__":
    main()
