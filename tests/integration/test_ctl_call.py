"""mprocctl call, and map against a program pool (DESIGN §6, §11), on a real
mprocd whose pool "calc" runs `python3 -m mprocd.worker progfuncs`
(tests/integration/progfuncs.py): arguments read as JSON or taken as
strings, the result printed after the output, exit statuses, --json, the
clear line for a command pool or no pool, and map's results in input
order."""

import base64
import json
import os
import signal
import subprocess
import sys

from mprocd_test import MPROCCTL, TIMEOUT, DaemonTestCase, conf, main, wait_for

SRCDIR = os.environ.get("MPROCD_SRCDIR", ".")
HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {"PYTHONPATH": os.pathsep.join(
    [os.path.join(SRCDIR, "python"), HERE])}
PROGRAM = "program = %s -m mprocd.worker progfuncs" % sys.executable
CALC = "workers = 2; spare_workers = 0; " + PROGRAM
COMMAND_POOL_LINE = ("is a command pool; call needs a program pool "
                     "(a pool with program = ...)")


class CallTestCase(DaemonTestCase):
    # A program pool "calc" and a command pool "default", mprocd's default.
    CONFIG = conf(calc=CALC, default=1)

    def setUp(self):
        self.d = self.daemon(self.CONFIG, env=ENV)

    def ctl(self, *args, input=b""):
        return subprocess.run([MPROCCTL, "-s", self.d.sock] + list(args),
                              input=input, capture_output=True,
                              timeout=TIMEOUT * 3)

    def call(self, *args, status=0):
        r = self.ctl("call", "-p", "calc", *args)
        self.assertEqual(r.returncode, status, r.stderr)
        return r

    def result(self, *args):
        """The one line call prints, parsed."""
        r = self.call(*args)
        self.assertEqual(r.stderr, b"")
        self.assertTrue(r.stdout.endswith(b"\n"), r.stdout)
        self.assertEqual(r.stdout.count(b"\n"), 1, r.stdout)
        return json.loads(r.stdout)

    def assertFails(self, r, *fragments):
        """Status 125, nothing on stdout, one line on stderr saying so."""
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertEqual(r.stdout, b"")
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("mprocctl"), lines[0])
        for f in fragments:
            self.assertIn(f, lines[0])

    def jobs(self, pool="calc"):
        return self.d.call("io.mprocd.List", {"pool": pool})["jobs"]


class TestCall(CallTestCase):

    def test_arguments_json_or_strings(self):
        self.assertEqual(self.call("double", "21").stdout, b"42\n")
        self.assertEqual(self.result("double", "abc"), "abcabc")
        self.assertEqual(self.result("double", "[1, 2]"), [1, 2, 1, 2])
        args = ["1", "two", '"3"', '{"k": [1, null], "s": "x y"}', "true",
                "null", "1.5", "-7", "", "not json{", "[1,"]
        self.assertEqual(
            self.result("echo", *args),
            {"args": [1, "two", "3", {"k": [1, None], "s": "x y"}, True,
                      None, 1.5, -7, "", "not json{", "[1,"],
             "kwargs": {}})
        # Sent as argv [FUNCTION] and input {"args", "kwargs"}.
        job = self.jobs()[-1]
        self.assertEqual(job["argv"], ["echo"])
        self.assertEqual(job["cwd"], os.path.realpath(os.getcwd()))

    def test_result_is_one_line_of_json(self):
        r = self.call("echo", '{"a": {"b": [1, 2]}}', "x")
        self.assertEqual(r.stdout,
                         b'{"args": [{"a": {"b": [1, 2]}}, "x"], '
                         b'"kwargs": {}}\n')
        # Reals as short as read back the same.
        self.assertEqual(self.call("double", "0.1").stdout, b"0.2\n")
        self.assertEqual(self.call("double", "1e300").stdout, b"2e300\n")
        # Text as UTF-8, not escaped.
        self.assertEqual(self.call("double", "é").stdout,
                         '"éé"\n'.encode())

    def test_output_then_result(self):
        r = self.call("talk", "out line\n", "err line\n")
        self.assertEqual(r.stdout, b'out line\n"said"\n')
        self.assertEqual(r.stderr, b"err line\n")
        # The result on a line of its own, after output without a newline.
        r = self.call("talk", "no newline", "")
        self.assertEqual(r.stdout, b'no newline\n"said"\n')

    def test_null_result_prints_nothing(self):
        r = self.call("nothing", "1")
        self.assertEqual((r.stdout, r.stderr), (b"", b""))

    def test_exception_is_1_with_traceback(self):
        r = self.call("boom", "bad news", status=1)
        self.assertIn(b"Traceback (most recent call last)", r.stderr)
        self.assertIn(b"ValueError: bad news", r.stderr)
        self.assertEqual(json.loads(r.stdout),
                         {"error": "ValueError", "message": "bad news"})
        # A function the program does not serve.
        r = self.ctl("call", "-p", "calc", "no_such_function")
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn(r.returncode, (124, 125))
        self.assertIn(b"no_such_function", r.stderr)

    def test_timeout_is_124(self):
        r = self.call("-t", "0.3", "sleep", "60", status=124)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(self.jobs()[-1]["state"], "timeout")
        # The pool's program is started again, and answers.
        self.assertEqual(self.result("double", "2"), 4)

    def test_command_pool_is_125(self):
        self.assertFails(self.ctl("call", "-p", "default", "double", "1"),
                         "pool 'default' " + COMMAND_POOL_LINE)
        # mprocd's default pool, named though call was not told it.
        self.assertFails(self.ctl("call", "double", "1"),
                         "pool 'default' " + COMMAND_POOL_LINE)
        self.assertEqual(self.jobs("default"), [])

    def test_no_such_pool_is_125(self):
        self.assertFails(self.ctl("call", "-p", "nope", "double", "1"),
                         "no pool 'nope'")

    def test_json_prints_the_run_reply(self):
        r = self.ctl("--json", "call", "-p", "calc", "talk", "o", "e")
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = json.loads(r.stdout)
        self.assertEqual(reply["result"], "said")
        self.assertEqual(base64.b64decode(reply["stdout"]), b"o")
        self.assertEqual(base64.b64decode(reply["stderr"]), b"e")
        self.assertEqual(reply["job"]["state"], "succeeded")
        self.assertEqual(reply["job"]["argv"], ["talk"])
        self.assertEqual(r.stderr, b"")
        r = self.ctl("--json", "call", "-p", "calc", "boom", "x")
        self.assertEqual(r.returncode, 1)
        reply = json.loads(r.stdout)
        self.assertEqual(reply["result"]["error"], "ValueError")
        self.assertEqual(reply["job"]["state"], "failed")

    def test_usage_errors(self):
        self.assertFails(self.ctl("call"), "usage: mprocctl call")
        self.assertFails(self.ctl("call", "-p"), "-p needs a value")
        self.assertFails(self.ctl("call", "-t", "soon", "double", "1"),
                         "bad -t 'soon'")
        self.assertFails(self.ctl("call", "-p", "calc", "double", b"\xff"),
                         "argument 1 is not valid UTF-8")
        self.assertFails(self.ctl("call", "-p", "calc", b"\xff"),
                         "FUNCTION is not valid UTF-8")
        self.assertEqual(self.jobs(), [])

    def test_after_and_lock(self):
        """-a: the call waits for a job and is made only if it succeeded;
        -l: it holds the lock, as a job of submit -l would."""
        ok = self.d.call("io.mprocd.Submit", {"argv": ["true"]})["id"]
        self.assertEqual(self.result("-a", str(ok), "-l", "L", "double",
                                     "21"), 42)
        job = self.jobs()[-1]
        self.assertEqual((job["after"], job["lock"]), ([ok], "L"))
        bad = self.d.call("io.mprocd.Submit",
                          {"argv": ["sh", "-c", "exit 3"]})["id"]
        r = self.call("-a", str(bad), "double", "1", status=1)
        self.assertEqual(r.stdout, b"")
        job = self.jobs()[-1]
        self.assertEqual((job["state"], job["reason"]),
                         ("cancelled", "job %d failed" % bad))
        self.assertFails(self.ctl("call", "-p", "calc", "-a", "x",
                                  "double", "1"), "-a")
        self.assertFails(self.ctl("call", "-p", "calc", "-a", "999999",
                                  "double", "1"), "after")

    def test_help(self):
        r = subprocess.run([MPROCCTL, "--help"], capture_output=True)
        self.assertIn(b"\n  call ", r.stdout)
        r = subprocess.run([MPROCCTL, "call", "--help"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith(b"usage: mprocctl call [-p POOL]"
                                            b" [-t SEC] [-a ID]... [-l LOCK]"
                                            b" FUNCTION [ARG]..."))
        self.assertIn(b"program = ...", r.stdout)

    def test_signal_leaves_the_call_running(self):
        """Run names its job only once it has finished: a signal ends the
        wait, and says where the call is."""
        p = subprocess.Popen([MPROCCTL, "-s", self.d.sock, "call", "-p",
                              "calc", "nap_say", "1", "late"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: self.d.call("io.mprocd.List", {
                "state": "running"})["jobs"], "the call running")
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn(b"the call goes on in mprocd ('mprocctl list -p calc' "
                      b"shows it, queued or running)", err)
        job = self.jobs()[-1]
        jobs = self.d.call("io.mprocd.Wait", {"ids": [job["id"]]})["jobs"]
        self.assertEqual(jobs[0]["state"], "succeeded")


class TestMapProgramPool(CallTestCase):

    def map(self, *args, input, status=0):
        r = self.ctl("map", "-p", "calc", *args, input=input)
        self.assertEqual(r.returncode, status, r.stderr)
        return r

    def test_results_in_input_order(self):
        # Later lines finish first: output and results still in input order.
        lines = ["3", "0", "2", "1"]
        r = self.map("nap_say", "0.{}", "w{}",
                     input="".join(l + "\n" for l in lines).encode())
        out = r.stdout.decode().splitlines()
        self.assertEqual(out[0::2], ["w" + l for l in lines])
        self.assertEqual([json.loads(x) for x in out[1::2]],
                         [[float("0." + l), "w" + l] for l in lines])
        self.assertEqual(r.stderr.decode(),
                         "".join("ew%s\n" % l for l in lines))
        self.assertEqual([j["argv"] for j in self.jobs()],
                         [["nap_say"]] * len(lines))

    def test_arguments_as_call_reads_them(self):
        r = self.map("echo", "{}", '{"k": "{}"}', "[{}]",
                     input=b'5\nabc\n"q"\n')
        self.assertEqual(
            [json.loads(l) for l in r.stdout.splitlines()],
            [{"args": [5, {"k": "5"}, [5]], "kwargs": {}},
             {"args": ["abc", {"k": "abc"}, "[abc]"], "kwargs": {}},
             # '{"k": ""q""}' is not JSON: a string.
             {"args": ["q", '{"k": ""q""}', ["q"]], "kwargs": {}}])

    def test_line_appended_without_braces(self):
        r = self.map("double", input=b"5\n1.5\nab\n\n[1]\n")
        self.assertEqual(r.stdout, b'10\n3.0\n"abab"\n""\n[1, 1]\n')
        # {} in FUNCTION too, as in CMD.
        r = self.map("{}", "7", input=b"double\necho\n")
        self.assertEqual(r.stdout, b'14\n{"args": [7], "kwargs": {}}\n')

    def test_null_results_keep_a_line_each(self):
        r = self.map("nothing", input=b"a\nb\n")
        self.assertEqual(r.stdout, b"null\nnull\n")

    def test_exit_status(self):
        r = self.map("boom", input=b"x\ny\n", status=1)
        self.assertEqual([json.loads(l) for l in r.stdout.splitlines()],
                         [{"error": "ValueError", "message": m}
                          for m in ("x", "y")])
        self.assertEqual(r.stderr.count(b"Traceback"), 2)
        self.assertIn(b"2 of 2 jobs did not succeed; the first, line 1",
                      r.stderr)
        r = self.map("-t", "0.3", "sleep", input=b"0\n60\n", status=1)
        self.assertEqual(r.stdout, b"0\nnull\n")
        self.assertEqual([j["state"] for j in self.jobs()][-2:],
                         ["succeeded", "timeout"])

    def test_json_lines(self):
        r = self.ctl("--json", "map", "-p", "calc", "double", input=b"1\n2\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        replies = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([x["result"] for x in replies], [2, 4])
        self.assertEqual([x["job"]["state"] for x in replies],
                         ["succeeded"] * 2)

    def test_many_lines(self):
        n = 1500
        r = self.map("double", input="".join(
            "%d\n" % i for i in range(n)).encode())
        self.assertEqual(r.stdout.decode(),
                         "".join("%d\n" % (2 * i) for i in range(n)))

    def test_command_pool_unchanged(self):
        r = self.ctl("map", "echo", "x{}", input=b"1\n2\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"x1\nx2\n"))
        self.assertEqual([j["argv"] for j in self.jobs("default")],
                         [["echo", "x1"], ["echo", "x2"]])


class TestDefaultProgramPool(CallTestCase):
    # No pool named "default": the first, "calc", is mprocd's default.
    CONFIG = conf(calc=CALC, cmds=1)

    def test_call_and_map_without_pool(self):
        r = self.ctl("call", "double", "4")
        self.assertEqual((r.returncode, r.stdout), (0, b"8\n"), r.stderr)
        r = self.ctl("map", "double", input=b"1\n2\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"2\n4\n"), r.stderr)
        self.assertFails(self.ctl("call", "-p", "cmds", "double", "1"),
                         "pool 'cmds' " + COMMAND_POOL_LINE)
        r = self.ctl("map", "-p", "cmds", "echo", input=b"a\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"a\n"), r.stderr)


if __name__ == "__main__":
    main()
