"""mprocctl's job commands against a real mprocd: submit, map, wait, get,
list, cancel, reload; output byte for byte, exit statuses, --json, and one
clear line on stderr with status 125 when mprocctl itself fails."""

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

from mprocd_test import (MPROCCTL, TIMEOUT, DaemonTestCase, conf, main,
                         wait_for)

CONFIG = conf(default="workers = 2; max_output = 4M",
              small="workers = 1; queue_limit = 2")

PY = sys.executable


class CtlTestCase(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(CONFIG)

    def ctl(self, *args, input=b"", cwd=None, env=None):
        """mprocctl on this test's daemon; bytes in and out."""
        return subprocess.run([MPROCCTL, "-s", self.d.sock] + list(args),
                              input=input, capture_output=True, cwd=cwd,
                              env=env, timeout=TIMEOUT * 3)

    def ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def submit(self, *argv, opts=()):
        r = self.ok("submit", *opts, "--", *argv)
        return int(r.stdout)

    def job(self, job_id):
        return self.d.call("io.mprocd.Get", {"id": job_id})["job"]

    def wait_running(self, job_id):
        wait_for(lambda: self.job(job_id)["state"] == "running",
                 "job %d running" % job_id)

    def assertFails(self, r, *fragments):
        """Status 125, nothing on stdout, one line on stderr saying so."""
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertEqual(r.stdout, b"")
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("mprocctl"), lines[0])
        for f in fragments:
            self.assertIn(f, lines[0])


class TestSubmit(CtlTestCase):

    def test_prints_id_and_runs_in_cwd(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = self.ok("submit", "--", "pwd", cwd=tmp)
            self.assertRegex(r.stdout, rb"^[1-9][0-9]*\n$")
            job_id = int(r.stdout)
            jobs = self.d.call("io.mprocd.Wait", {"ids": [job_id]})["jobs"]
            out = self.ok("get", str(job_id)).stdout
        self.assertEqual(out.decode(), os.path.realpath(tmp) + "\n")
        self.assertEqual(jobs[0]["argv"], ["pwd"])
        self.assertEqual(jobs[0]["cwd"], os.path.realpath(tmp))
        self.assertEqual(jobs[0]["state"], "succeeded")

    def test_json(self):
        r = self.ok("--json", "submit", "-n", "nightly", "--", "true")
        job_id = json.loads(r.stdout)["id"]
        self.assertEqual(self.job(job_id)["name"], "nightly")

    def test_options_reach_the_job(self):
        job_id = self.submit("true", opts=("-p", "small", "-t", "1.5s",
                                           "-r", "3"))
        self.assertEqual(self.job(job_id)["pool"], "small")

    def test_wait_writes_output_byte_exact(self):
        prog = ("import sys; sys.stdout.buffer.write(bytes(range(256)) * 3);"
                "sys.stderr.buffer.write(b'\\0err\\r\\n\\xff')")
        r = self.ctl("submit", "-w", "--", PY, "-c", prog)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, bytes(range(256)) * 3)
        self.assertEqual(r.stderr, b"\0err\r\n\xff")

    def test_wait_more_than_a_mebibyte(self):
        prog = ("import sys; sys.stdout.buffer.write(bytes(range(256)) * "
                "10000); sys.stderr.buffer.write(b'e' * 1500000)")
        r = self.ctl("submit", "-w", "--", PY, "-c", prog)
        self.assertEqual(r.returncode, 0, r.stderr[:200])
        self.assertEqual(len(r.stdout), 2560000)
        self.assertEqual(r.stdout, bytes(range(256)) * 10000)
        self.assertEqual(r.stderr, b"e" * 1500000)

    def test_exit_status_passes_through(self):
        for status in (0, 1, 3, 42, 255):
            r = self.ctl("submit", "-w", "--", "sh", "-c",
                         "echo out; exit %d" % status)
            self.assertEqual(r.returncode, status, r.stderr)
            self.assertEqual(r.stdout, b"out\n")

    def test_signal_is_128_plus_n(self):
        r = self.ctl("submit", "-w", "--", "sh", "-c",
                     "echo before; kill -SEGV $$")
        self.assertEqual(r.returncode, 128 + signal.SIGSEGV, r.stderr)
        self.assertEqual(r.stdout, b"before\n")
        r = self.ctl("submit", "-w", "--", "sh", "-c", "kill -KILL $$")
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)

    def test_timeout_is_124(self):
        r = self.ctl("submit", "-w", "-t", "0.2", "--", "sleep", "60")
        self.assertEqual(r.returncode, 124, r.stderr)

    def test_cannot_run_is_127(self):
        r = self.ctl("submit", "-w", "--", "/nonexistent/program")
        self.assertEqual(r.returncode, 127)
        self.assertIn(b"cannot run '/nonexistent/program'", r.stderr)

    def test_stdin(self):
        data = b"line 1\n\0binary\xff\n" + bytes(range(256)) * 4000
        r = self.ctl("submit", "-i", "-w", "--", "cat", input=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, data)
        # Without -i the job's stdin is empty, whatever mprocctl's is.
        r = self.ctl("submit", "-w", "--", "cat", input=b"not sent")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_env(self):
        r = self.ctl("submit", "-w", "-e", "FOO=bar", "-e", "X=a=b", "-e",
                     "EMPTY=", "--", "sh", "-c",
                     'echo "$FOO|$X|${EMPTY-unset}|$MPROCD_JOB_ID"')
        self.assertEqual(r.returncode, 0, r.stderr)
        foo, x, empty, job_id = r.stdout.decode().rstrip("\n").split("|")
        self.assertEqual((foo, x, empty), ("bar", "a=b", ""))
        self.assertRegex(job_id, r"^[1-9][0-9]*$")

    def test_wait_outlives_keep_finished(self):
        """With keep_finished = 0 a job is forgotten when the next one
        finishes; submit -w still gets its own while other clients' jobs
        finish all the time. (Submit, then Follow, lost one in 10 to 25
        here: the job could finish and be forgotten in between.)"""
        self.d.stop()
        self.d = self.daemon(conf("keep_finished = 0", default=2))
        stop = threading.Event()
        churned = []

        def churn():
            while not stop.is_set():
                churned.append(self.ctl("submit", "--", "true").returncode)
        t = threading.Thread(target=churn, daemon=True)
        t.start()
        try:
            for i in range(100):
                r = self.ctl("submit", "-w", "--", "true")
                self.assertEqual((r.returncode, r.stdout, r.stderr),
                                 (0, b"", b""), "submit -w number %d" % i)
        finally:
            stop.set()
            t.join(TIMEOUT)
        self.assertFalse(t.is_alive())
        self.assertGreater(len(churned), 20, "the other jobs did not run")
        self.assertEqual(set(churned), {0})

    def test_wait_json_is_the_get_reply(self):
        r = self.ctl("--json", "submit", "-w", "--", "sh", "-c",
                     "printf out; printf err >&2; exit 4")
        self.assertEqual(r.returncode, 4, r.stderr)
        reply = json.loads(r.stdout)
        self.assertEqual(base64.b64decode(reply["stdout"]), b"out")
        self.assertEqual(base64.b64decode(reply["stderr"]), b"err")
        self.assertEqual(reply["job"]["exit_status"], 4)
        self.assertIs(reply["truncated"], False)

    def test_interrupt_cancels_the_job(self):
        p = subprocess.Popen([MPROCCTL, "-s", self.d.sock, "submit", "-w",
                              "--", "sleep", "60"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            wait_for(lambda: self.d.call("io.mprocd.List",
                                         {"state": "running"})["jobs"],
                     "the job running")
            job_id = self.d.call("io.mprocd.List")["jobs"][-1]["id"]
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 128 + signal.SIGINT, err)
        self.assertIn(b"cancelled job %d" % job_id, err)
        self.assertEqual(self.job(job_id)["state"], "cancelled")

    def test_usage_errors(self):
        self.assertFails(self.ctl("submit"), "usage: mprocctl submit")
        self.assertFails(self.ctl("submit", "-t", "x", "--", "true"),
                         "bad -t 'x'")
        self.assertFails(self.ctl("submit", "-t", "-1", "--", "true"),
                         "bad -t '-1'")
        self.assertFails(self.ctl("submit", "-r", "-1", "--", "true"),
                         "bad -r '-1'")
        self.assertFails(self.ctl("submit", "-r", "two", "--", "true"),
                         "bad -r 'two'")
        self.assertFails(self.ctl("submit", "-e", "FOO", "--", "true"),
                         "bad -e 'FOO'", "NAME=VALUE")
        self.assertFails(self.ctl("submit", "-e", "=x", "--", "true"),
                         "bad -e '=x'")
        self.assertFails(self.ctl("submit", "-x", "--", "true"),
                         "unknown option -x")
        self.assertFails(self.ctl("submit", "--wait", "--", "true"),
                         "unknown option --wait")
        self.assertFails(self.ctl("submit", "-p"), "-p needs a value")
        self.assertFails(self.ctl("submit", "--", b"\xff"),
                         "not valid UTF-8")
        self.assertEqual(self.d.call("io.mprocd.List")["jobs"], [])

    def test_error_replies(self):
        self.assertFails(self.ctl("submit", "-p", "nope", "--", "true"),
                         "no pool 'nope'")
        self.assertFails(self.ctl("submit", "-r", "1000000", "--", "true"),
                         "'retries'")


class TestMap(CtlTestCase):

    def test_output_in_input_order(self):
        # Later lines finish first: the output must still be in input order.
        lines = ["6", "1", "4", "0", "5", "2", "3"]
        r = self.ctl("map", "sh", "-c",
                     "sleep 0.{}; echo out{}; echo err{} >&2",
                     input="".join(l + "\n" for l in lines).encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(),
                         "".join("out%s\n" % l for l in lines))
        self.assertEqual(r.stderr.decode(),
                         "".join("err%s\n" % l for l in lines))

    def test_line_is_appended_without_braces(self):
        r = self.ctl("map", "printf", "[%s]\\n", input=b"a b\n\nc")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"[a b]\n[]\n[c]\n")

    def test_every_brace_pair_is_replaced(self):
        r = self.ctl("map", "echo", "x{}y{}", "{}", input=b"1\n2\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"x1y1 1\nx2y2 2\n")

    def test_exit_status(self):
        r = self.ctl("map", "sh", "-c", "exit {}", input=b"0\n3\n0\n7\n")
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("2 of 4 jobs", lines[0])
        self.assertIn("line 2", lines[0])
        r = self.ctl("map", "sh", "-c", "exit {}", input=b"0\n0\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_no_input(self):
        r = self.ctl("map", "echo")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""))

    def test_full_queue_is_retried(self):
        # One worker and room for two queued jobs: most Submits meet
        # QueueFull, and every line must still run once, in order.
        n = 15
        r = self.ctl("map", "-p", "small", "sh", "-c", "sleep 0.02; echo {}",
                     input="".join("%d\n" % i for i in range(n)).encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(),
                         "".join("%d\n" % i for i in range(n)))
        self.assertEqual(len(self.d.call("io.mprocd.List",
                                         {"pool": "small"})["jobs"]), n)

    def test_many_lines(self):
        n = 2500
        r = self.ctl("map", "echo", "-n",
                     input="".join("%d\n" % i for i in range(n)).encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(),
                         "".join("%d" % i for i in range(n)))

    def test_json_lines(self):
        r = self.ctl("--json", "map", "sh", "-c", "echo {}; exit {}",
                     input=b"1\n0\n")
        self.assertEqual(r.returncode, 1)
        replies = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([base64.b64decode(x["stdout"]) for x in replies],
                         [b"1\n", b"0\n"])
        self.assertEqual([x["job"]["state"] for x in replies],
                         ["failed", "succeeded"])

    def test_timeout_option(self):
        # 2 s, not less: the job's clock starts when it is handed to its
        # worker, and a busy host has stalled a worker 300 ms before exec.
        r = self.ctl("map", "-t", "2", "sleep", input=b"0\n60\n")
        self.assertEqual(r.returncode, 1)
        states = [j["state"] for j in self.d.call("io.mprocd.List")["jobs"]]
        self.assertEqual(states, ["succeeded", "timeout"])

    def test_errors(self):
        self.assertFails(self.ctl("map"), "usage: mprocctl map")
        self.assertFails(self.ctl("map", "-t", "soon", "echo"), "bad -t")
        self.assertFails(self.ctl("map", "-p", "nope", "echo", input=b"x\n"),
                         "no pool 'nope'")
        self.assertFails(self.ctl("map", "echo", input=b"ok\nbad\xff\n"),
                         "line 2", "UTF-8")


class TestJobCommands(CtlTestCase):

    def test_wait(self):
        good = self.submit("true")
        bad = self.submit("sh", "-c", "exit 2")
        r = self.ctl("wait", str(bad))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"job %d failed with exit status 2" % bad, r.stdout)
        self.assertEqual(self.ctl("wait", str(good)).returncode, 0)
        r = self.ctl("wait", str(good), str(bad))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 2)
        r = self.ctl("wait", str(good), str(good))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_wait_json_keeps_the_order_asked(self):
        a = self.submit("sleep", "0.3")
        b = self.submit("true")
        r = self.ok("--json", "wait", str(a), str(b))
        jobs = json.loads(r.stdout)["jobs"]
        self.assertEqual([j["id"] for j in jobs], [a, b])
        self.assertEqual({j["state"] for j in jobs}, {"succeeded"})

    def test_wait_timeout(self):
        slow = self.submit("sleep", "60")
        done = self.submit("true")
        r = self.ctl("wait", "-t", "0.3", str(slow), str(done))
        self.assertEqual(r.returncode, 124)
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("timed out", lines[0])
        self.assertIn(str(slow), lines[0])
        r = self.ctl("--json", "wait", "-t", "0", str(slow))
        self.assertEqual(r.returncode, 124)
        reply = json.loads(r.stdout)
        self.assertEqual(reply["error"], "io.mprocd.TimedOut")
        self.assertEqual(reply["parameters"]["ids"], [slow])

    def test_get(self):
        job_id = self.submit(PY, "-c", "import sys; sys.stdout.buffer.write("
                             "b'\\x00\\xfe'); sys.stderr.write('e'); "
                             "sys.exit(9)")
        self.d.call("io.mprocd.Wait", {"ids": [job_id]})
        r = self.ctl("get", str(job_id))
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (9, b"\x00\xfe", b"e"))
        r = self.ctl("--json", "get", str(job_id))
        self.assertEqual(r.returncode, 9)
        reply = json.loads(r.stdout)
        self.assertEqual(base64.b64decode(reply["stdout"]), b"\x00\xfe")
        self.assertEqual(reply["job"]["id"], job_id)

    def test_get_unfinished(self):
        job_id = self.submit("sh", "-c", "echo so far; exec sleep 60")
        wait_for(lambda: self.d.call("io.mprocd.Get", {"id": job_id})
                 ["stdout"], "output so far")
        r = self.ctl("get", str(job_id))
        self.assertEqual(r.returncode, 125)
        self.assertEqual(r.stdout, b"so far\n")
        self.assertIn(b"is still running", r.stderr)

    def test_list(self):
        a = self.submit("sh", "-c", "exit 3")
        b = self.submit("echo", "hello world", opts=("-n", "greeting"))
        c = self.submit("sleep", "60", opts=("-p", "small"))
        self.wait_running(c)
        self.d.call("io.mprocd.Wait", {"ids": [a, b]})
        out = self.ok("list").stdout.decode().splitlines()
        self.assertRegex(out[0], r"^ *ID +STATE +POOL +WORKER +ATTEMPTS +"
                         r"EXIT +DURATION +NAME/COMMAND$")
        self.assertEqual(len(out), 4)
        self.assertRegex(out[1], r"^ *%d +failed +default +default/\d +1 +3 "
                         r".* sh -c 'exit 3'$" % a)
        self.assertRegex(out[2], r"^ *%d +succeeded .* greeting$" % b)
        self.assertRegex(out[3], r"^ *%d +running +small +small/0 .* "
                         r"sleep 60$" % c)
        out = self.ok("list", "-S", "running").stdout.decode().splitlines()
        self.assertEqual(len(out), 2)
        out = self.ok("list", "-p", "small").stdout.decode().splitlines()
        self.assertEqual(len(out), 2)
        jobs = json.loads(self.ok("--json", "list").stdout)["jobs"]
        self.assertEqual([j["id"] for j in jobs], [a, b, c])
        self.assertFails(self.ctl("list", "-S", "bogus"),
                         "unknown state 'bogus'")
        self.assertFails(self.ctl("list", "-p", "nope"), "no pool 'nope'")
        self.assertFails(self.ctl("list", "extra"), "too many arguments")

    def test_cancel(self):
        running = self.submit("sleep", "60", opts=("-p", "small"))
        self.wait_running(running)
        queued = self.submit("sleep", "60", opts=("-p", "small"))
        r = self.ok("cancel", str(running), str(queued))
        self.assertEqual((r.stdout, r.stderr), (b"", b""))
        self.assertEqual(self.job(running)["state"], "cancelled")
        self.assertEqual(self.job(queued)["state"], "cancelled")
        # Killed by mprocd's SIGTERM: get and wait say so.
        self.assertEqual(self.ctl("get", str(running)).returncode,
                         128 + signal.SIGTERM)
        self.assertEqual(self.ctl("wait", str(queued)).returncode, 1)

    def test_cancel_finished_and_json(self):
        done = self.submit("true")
        self.d.call("io.mprocd.Wait", {"ids": [done]})
        r = self.ctl("cancel", str(done))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"job %d already finished (succeeded)" % done,
                      r.stderr)
        self.assertEqual(self.job(done)["state"], "succeeded")
        queued = self.submit("sleep", "60", opts=("-p", "small"))
        r = self.ctl("--json", "cancel", str(queued), str(done))
        self.assertEqual(r.returncode, 1)
        jobs = json.loads(r.stdout)["jobs"]
        self.assertEqual([(j["id"], j["state"]) for j in jobs],
                         [(queued, "cancelled"), (done, "succeeded")])

    def test_reload(self):
        r = self.ctl("reload")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""))
        r = self.ctl("--json", "reload")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, {}))
        with open(self.d.conf, "a") as f:
            f.write("bogus_key = 1\n")
        line = open(self.d.conf).read().count("\n")
        r = self.ctl("reload")
        self.assertFails(r, "reload failed", "%s:%d:" % (self.d.conf, line),
                         "bogus_key")

    def test_no_such_job(self):
        for cmd in ("get", "wait", "cancel"):
            self.assertFails(self.ctl(cmd, "9999"), "no job 9999")
        for cmd in ("get", "wait", "cancel"):
            self.assertFails(self.ctl(cmd, "abc"), "bad job id 'abc'")
            self.assertFails(self.ctl(cmd, "0"), "bad job id '0'")
        self.assertFails(self.ctl("get"), "usage: mprocctl get")
        self.assertFails(self.ctl("get", "1", "2"), "usage: mprocctl get")
        self.assertFails(self.ctl("wait", "-t", "x", "1"), "bad -t 'x'")


class TestWithoutDaemon(unittest.TestCase):

    def run_ctl(self, *args):
        return subprocess.run([MPROCCTL] + list(args), capture_output=True,
                              timeout=TIMEOUT)

    def test_one_line_and_125(self):
        for args in (("-s", "/nonexistent/mprocd.sock", "submit", "--",
                      "true"),
                     ("-s", "/nonexistent/mprocd.sock", "list"),
                     ("frobnicate",),
                     ("--bogus", "status"),
                     ()):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 125, args)
            self.assertEqual(r.stdout, b"", args)
            self.assertEqual(len(r.stderr.splitlines()), 1, (args, r.stderr))

    def test_every_command_has_help(self):
        r = self.run_ctl("--help")
        for cmd in ("submit", "map", "wait", "get", "list", "status",
                    "cancel", "reload"):
            self.assertIn(b"\n  " + cmd.encode(), r.stdout)
            h = self.run_ctl(cmd, "--help")
            self.assertEqual(h.returncode, 0, cmd)
            self.assertTrue(h.stdout.startswith(b"usage: mprocctl " +
                                                cmd.encode()), h.stdout)
        self.assertIn(b"124", r.stdout)
        self.assertIn(b"125", r.stdout)


class TestFanoutExample(DaemonTestCase):

    def test_results_in_submission_order(self):
        d = self.daemon(CONFIG)
        script = os.path.join(os.environ.get("MPROCD_SRCDIR", "."),
                              "examples", "fanout.py")
        r = subprocess.run([sys.executable, script, "-s", d.sock],
                           capture_output=True, text=True,
                           timeout=TIMEOUT * 3)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([l.rpartition(": ")[2]
                          for l in r.stdout.splitlines()],
                         ["result %d" % n for n in range(6)])


if __name__ == "__main__":
    main()
