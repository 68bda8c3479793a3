"""Program pools (DESIGN §11): a real mprocd whose pools run real Python
programs, `python3 -m mprocd.worker progfuncs` (tests/integration/
progfuncs.py) or small Varlink services written here, called with Run and
Submit. Every guarantee of command pools is checked for them: output,
errors, timeouts and Cancel that kill the program's group and restart it,
deaths mid-call and between calls, retries, max_jobs_per_worker and
max_memory, reload, shutdown and kill -9 of mprocd."""

import base64
import os
import signal
import subprocess
import sys
import time

from mprocd_test import (MPROCD, JobsTestCase, VarlinkError, alive,
                         children, conf, main, wait_for)

SRCDIR = os.environ.get("MPROCD_SRCDIR", ".")
HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {"PYTHONPATH": os.pathsep.join(
    [os.path.join(SRCDIR, "python"), HERE])}
PROGRAM = "program = %s -m mprocd.worker progfuncs" % sys.executable


def calc(workers=2, extra=""):
    """A program pool "calc" of progfuncs, and a command pool "default"."""
    return conf(calc="workers = %d; spare_workers = 0; %s; %s"
                % (workers, PROGRAM, extra), default=1)


# What the two programs below start with: calls() yields each call on fd 3.
SERVE = r'''
import json, os, socket
s = socket.socket(fileno=3)
buf = b""
def calls():
    global buf
    while True:
        data = s.recv(65536)
        if not data:
            return
        buf += data
        while b"\0" in buf:
            msg, _, buf = buf.partition(b"\0")
            yield json.loads(msg)
'''

# A Varlink service on fd 3 with no io.mprocd.Worker.Hello: Run answers
# with its argv, and "fail" answers a Varlink error.
PLAIN_SERVICE = SERVE + r'''
for call in calls():
        p = call.get("parameters", {})
        if call["method"] != "io.mprocd.Worker.Run":
            reply = {"error": "org.varlink.service.MethodNotFound",
                     "parameters": {"method": call["method"]}}
        elif p["argv"][0] == "fail":
            reply = {"error": "com.example.Broken",
                     "parameters": {"why": "asked to"}}
        else:
            reply = {"parameters": {"exit_status": len(p["argv"]) - 1,
                                    "result": {"argv": p["argv"],
                                               "pid": os.getpid()}}}
        s.sendall(json.dumps(reply).encode() + b"\0")
'''

# Answers Hello, then answers every Run with what its first argument names.
LIAR = SERVE + r'''
for call in calls():
        if call["method"].endswith("Hello"):
            s.sendall(b'{"parameters": {}}\0')
            continue
        kind = call["parameters"]["argv"][0]
        if kind == "garbage":
            s.sendall(b"this is not json\0")
        elif kind == "status":
            s.sendall(b'{"parameters": {"exit_status": 1000}}\0')
        elif kind == "twice":
            s.sendall(b'{"parameters": {"exit_status": 0}}\0' * 2)
        elif kind == "continues":
            s.sendall(b'{"parameters": {"exit_status": 0}, '
                      b'"continues": true}\0')
        else:
            s.sendall(b'{"parameters": {"exit_status": 0, "result": 1}}\0')
'''

# Never answers Hello.
MUTE = "import time\nwhile True: time.sleep(1)\n"


def fd_links(pid):
    return {int(f): os.readlink("/proc/%d/fd/%s" % (pid, f))
            for f in os.listdir("/proc/%d/fd" % pid)}


def read_pids(path):
    with open(path) as f:
        return [int(p) for p in f.read().split()]


def has_pids(path, n):
    return os.path.exists(path) and len(read_pids(path)) == n


class ProgramTestCase(JobsTestCase):

    def start(self, config, connect=True, **kw):
        kw.setdefault("env", ENV)
        if connect:
            return super().start(config, **kw)
        self.d = self.daemon(config, **kw)
        wait_for(lambda: os.path.exists(self.d.sock), "the socket")
        self.c = self.d.connect()
        return self.d

    def script(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def setUp(self):
        self.tmp = self.enterContext(
            __import__("tempfile").TemporaryDirectory(prefix="prog-"))

    def run_call(self, func, *args, c=None, pool="calc", **params):
        params.setdefault("input", {"args": list(args), "kwargs": {}})
        params.update(argv=[func] if isinstance(func, str) else func,
                      pool=pool)
        return (c or self.c).call("io.mprocd.Run", params)

    def call(self, func, *args, **params):
        r = self.run_call(func, *args, **params)
        self.assertEqual(r["job"]["state"], "succeeded", r)
        return r["result"]

    def program_pids(self, pool="calc"):
        """The program of each worker: the child of its worker process."""
        pids = {}
        for w in self.d.pool(pool)["workers"]:
            if "pid" in w:
                kids = children(w["pid"])
                if kids:
                    pids[w["name"]] = kids[0]
        return pids

    def job_reason_log(self, text):
        wait_for(lambda: text in self.d.log(), "%r in the log" % text)


class TestCalls(ProgramTestCase):

    def test_result_input_and_status(self):
        self.start(calc())
        self.assertEqual(self.call("double", 21), 42)
        self.assertEqual(
            self.call("echo", input={"args": [1, "two", None],
                                     "kwargs": {"k": [3]}}),
            {"args": [1, "two", None], "kwargs": {"k": [3]}})
        pool = self.d.pool("calc")
        self.assertEqual(pool["program"],
                         "%s -m mprocd.worker progfuncs" % sys.executable)
        self.assertIsNone(self.d.pool("default")["program"])
        # Submit, then Get: the same result.
        i = self.submit(["double"], pool="calc",
                        input={"args": [5], "kwargs": {}})
        self.wait([i])
        self.assertEqual(self.c.call("io.mprocd.Get", {"id": i})["result"],
                         10)
        # A command pool refuses input.
        with self.assertRaises(VarlinkError) as e:
            self.c.call("io.mprocd.Submit", {"argv": ["true"],
                                             "input": {"args": []}})
        self.assertEqual(e.exception.parameters, {"parameter": "input"})

    def test_output_belongs_to_the_call(self):
        self.start(calc(workers=1))
        r = self.run_call("talk", "out line\n", "err line\n")
        self.assertEqual(base64.b64decode(r["stdout"]), b"out line\n")
        self.assertEqual(base64.b64decode(r["stderr"]), b"err line\n")
        self.assertEqual(r["result"], "said")
        r = self.run_call("double", 1)
        self.assertEqual(base64.b64decode(r["stdout"]), b"")

    def test_the_program_as_designed(self):
        """Own session, fd 3 the systemd way, nothing else inherited, the
        pool's names in its environment, the job's id in the call's."""
        self.start(calc(workers=1))
        r = self.call("whoami")
        self.assertEqual(r["sid"], r["pid"])
        self.assertEqual(r["pgid"], r["pid"])
        # What it was given (mprocd.worker keeps its home directory open
        # too; test_plain_varlink_service checks that nothing else came).
        fds = fd_links(r["pid"])
        self.assertEqual(fds[0], "/dev/null")
        self.assertTrue(fds[1].startswith("pipe:"), fds)
        self.assertTrue(fds[3].startswith("socket:"), fds)
        self.assertEqual(r["listen_pid"], None)  # read and removed
        self.assertEqual(r["worker"], "calc/0")
        self.assertEqual(r["pool"], "calc")
        job = self.run_call("whoami")
        self.assertEqual(job["result"]["job"], str(job["job"]["id"]))
        self.assertEqual(job["job"]["pid"], job["result"]["pid"])
        with open("/proc/%d/environ" % r["pid"], "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if v)
        self.assertEqual(env[b"LISTEN_FDS"], b"1")
        self.assertEqual(env[b"LISTEN_PID"], str(r["pid"]).encode())
        self.assertEqual(env[b"LISTEN_FDNAMES"], b"mprocd")

    def test_an_exception_fails_the_job(self):
        self.start(calc(workers=1))
        r = self.run_call("boom", "no good")
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["exit_status"], 1)
        self.assertEqual(r["result"], {"error": "ValueError",
                                       "message": "no good"})
        self.assertIn(b"Traceback", base64.b64decode(r["stderr"]))
        # The program lives on.
        self.assertEqual(self.call("double", 2), 4)
        self.assertEqual(self.d.worker("calc/0")["restarts"], 0)

    def test_output_capped_and_result_capped(self):
        self.start(calc(workers=1, extra="max_output = 1M"))
        r = self.run_call("shout", 3)
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertTrue(r["truncated"])
        self.assertEqual(len(base64.b64decode(r["stdout"])), 1 << 20)
        self.assertEqual(r["result"], 3)
        r = self.run_call("big_result", 2048)
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["result"]["error"], "ResultTooLarge")
        self.assertIn("max_output", r["result"]["message"])
        self.assertEqual(self.call("double", 4), 8)


class TestDeaths(ProgramTestCase):

    def test_death_mid_call_without_retries_is_lost(self):
        self.start(calc(workers=1))
        r = self.run_call("die", 3)
        self.assertEqual(r["job"]["state"], "lost")
        self.assertEqual(r["job"]["attempts"], 1)
        self.assertIn("why=crash status=3", self.d.log())
        self.assertEqual(self.call("double", 5), 10)
        self.assertEqual(self.d.worker("calc/0")["restarts"], 1)

    def test_death_mid_call_retried(self):
        self.start(calc(workers=1, extra="retries = 1"))
        marker = os.path.join(self.tmp, "died")
        r = self.run_call("die_once", marker, 3)
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertEqual(r["job"]["attempts"], 2)
        self.assertEqual(r["result"], "second time")

    def test_timeout_kills_the_group_and_restarts(self):
        self.start(calc(workers=1, extra="kill_grace = 1s"))
        pidfile = os.path.join(self.tmp, "pids")
        old = self.program_pids()["calc/0"]
        r = self.run_call("hang_with_child", pidfile, timeout_sec=0.5)
        self.assertEqual(r["job"]["state"], "timeout")
        self.assertEqual(r["job"]["signal"], signal.SIGTERM)
        prog, grandchild = read_pids(pidfile)
        self.assertEqual(prog, old)
        wait_for(lambda: not alive(grandchild), "the grandchild killed")
        wait_for(lambda: self.program_pids().get("calc/0") not in
                 (None, old), "a new program")
        self.assertEqual(self.call("double", 3), 6)
        # Not a crash.
        self.assertEqual(self.d.worker("calc/0")["restarts"], 0)
        self.assertFalse(self.d.pool("calc")["degraded"])

    def test_cancel_kills_and_restarts(self):
        self.start(calc(workers=1))
        old = self.program_pids()["calc/0"]
        i = self.submit(["sleep"], pool="calc",
                        input={"args": [100], "kwargs": {}})
        wait_for(lambda: self.c.call("io.mprocd.Get", {"id": i})["job"]
                 ["state"] == "running", "the call running")
        self.assertEqual(self.c.call("io.mprocd.Cancel", {"id": i})["job"]
                         ["state"], "cancelled")
        wait_for(lambda: not alive(old), "the old program gone")
        self.assertEqual(self.call("double", 3), 6)
        self.assertEqual(self.d.worker("calc/0")["restarts"], 0)

    def test_exit_between_calls_is_a_crash(self):
        self.start(calc(workers=1))
        self.assertEqual(self.call("exit_soon", 0.1), "bye")
        wait_for(lambda: self.d.worker("calc/0")["restarts"] == 1,
                 "the crash counted")
        self.assertIn("why=crash status=7", self.d.log())
        self.assertEqual(self.call("double", 3), 6)

    def test_max_jobs_per_worker_replaces_the_program(self):
        self.start(calc(workers=1, extra="max_jobs_per_worker = 2"))
        first = {self.call("whoami")["pid"] for _ in range(2)}
        second = {self.call("whoami")["pid"] for _ in range(2)}
        self.assertEqual(len(first), 1)
        self.assertEqual(len(second), 1)
        self.assertNotEqual(first, second)
        self.assertEqual(self.d.worker("calc/0")["restarts"], 0)

    def test_max_memory_replaces_the_program(self):
        self.start(calc(workers=1, extra="max_memory = 80M"))
        pid = self.call("whoami")["pid"]
        self.assertEqual(self.call("hoard", 20), 20)
        self.assertEqual(self.call("whoami")["pid"], pid)
        self.assertEqual(self.call("hoard", 100), 120)
        self.job_reason_log("more memory than max_memory")
        wait_for(lambda: not alive(pid), "the big program gone")
        self.assertNotEqual(self.call("whoami")["pid"], pid)
        self.assertEqual(self.d.worker("calc/0")["restarts"], 0)


class TestPrograms(ProgramTestCase):

    def test_plain_varlink_service(self):
        path = self.script("plain.py", PLAIN_SERVICE)
        self.start(conf(plain="workers = 1; program = %s %s"
                        % (sys.executable, path)))
        r = self.run_call(["x", "a", "b"], pool="plain", input=None)
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["exit_status"], 2)
        self.assertEqual(r["result"]["argv"], ["x", "a", "b"])
        r = self.run_call(["x"], pool="plain", input=None)
        self.assertEqual(r["job"]["state"], "succeeded")
        # Nothing inherited but 0-3.
        fds = fd_links(r["result"]["pid"])
        self.assertEqual(sorted(fds), [0, 1, 2, 3], fds)
        r = self.run_call(["fail"], pool="plain", input=None)
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["exit_status"], 1)
        self.assertEqual(r["result"], {"error": "com.example.Broken",
                                       "parameters": {"why": "asked to"}})

    def test_no_answer_to_hello(self):
        path = self.script("mute.py", MUTE)
        self.start(conf(mute="workers = 1; spare_workers = 0; "
                        "start_timeout = 300ms; restart_delay = 50ms; "
                        "program = %s %s" % (sys.executable, path),
                        default=1), wait=False, connect=False)
        wait_for(lambda: "program did not start in time" in self.d.log(),
                 "the start timeout")
        wait_for(lambda: self.d.worker("mute/0")["restarts"] >= 2,
                 "restarts with backoff")
        self.assertNotEqual(self.d.worker("mute/0")["state"], "idle")
        # Its jobs wait; the daemon answers.
        i = self.submit(["x"], pool="mute")
        self.assertEqual(self.c.call("io.mprocd.Get", {"id": i})["job"]
                         ["state"], "queued")

    def test_lying_program(self):
        path = self.script("liar.py", LIAR)
        self.start(conf(liar="workers = 1; spare_workers = 0; "
                        "restart_delay = 10ms; retries = 0; "
                        "program = %s %s" % (sys.executable, path)))
        for kind, why in [("garbage", "bad message from the program"),
                          ("status", "bad reply to Run"),
                          ("continues", "bad reply from the program"),
                          ("twice", "answered no call")]:
            r = self.run_call([kind], pool="liar", input=None)
            if kind == "twice":
                self.assertEqual(r["job"]["state"], "succeeded")
            else:
                self.assertEqual(r["job"]["state"], "lost", kind)
            self.job_reason_log(why)
            wait_for(lambda: self.d.worker("liar/0")["state"] == "idle",
                     "the liar restarted")
        r = self.run_call(["fine"], pool="liar", input=None)
        self.assertEqual(r["result"], 1)
        self.assertIsNone(self.d.proc.poll())

    def test_missing_program_refused_by_check_config(self):
        path = os.path.join(self.tmp, "c.conf")
        with open(path, "w") as f:
            f.write("[pool p]\nworkers = 1\nprogram = no-such-program-x y\n")
        r = subprocess.run([MPROCD, "-c", path, "--check-config"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:3: program = no-such-program-x y: not found in "
                      "PATH" % path, r.stderr)
        with open(path, "w") as f:
            f.write("[pool p]\nprogram = 'unclosed\n")
        r = subprocess.run([MPROCD, "-c", path, "--check-config"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(":2: program = 'unclosed: a quote is not closed",
                      r.stderr)

    def test_print_config_shows_program(self):
        path = os.path.join(self.tmp, "c.conf")
        with open(path, "w") as f:
            f.write("[pool p]\nprogram = sh -c 'exec cat'\n"
                    "start_timeout = 2s\nmax_memory = 10M\n")
        r = subprocess.run([MPROCD, "-c", path, "--print-config"],
                           capture_output=True, text=True, check=True)
        self.assertIn("program = sh -c 'exec cat'\n", r.stdout)
        self.assertIn("start_timeout = 2s\n", r.stdout)
        self.assertIn("max_memory = 10M\n", r.stdout)
        self.assertIn("[pool default]", subprocess.run(
            [MPROCD, "-c", "/dev/null", "--print-config"],
            capture_output=True, text=True).stdout)


class TestLifecycle(ProgramTestCase):

    def test_reload_replaces_programs_dropping_nothing(self):
        d = self.start(calc(workers=2))
        old = set(self.program_pids().values())
        i = self.submit(["sleep"], pool="calc",
                        input={"args": [1], "kwargs": {}})
        wait_for(lambda: self.c.call("io.mprocd.Get", {"id": i})["job"]
                 ["state"] == "running", "the call running")
        busy = self.c.call("io.mprocd.Get", {"id": i})["job"]["pid"]
        with open(d.conf, "w") as f:
            f.write(calc(workers=2, extra="max_output = 2M").replace(
                "progfuncs", "progfuncs json"))
        self.c.call("io.mprocd.Reload")
        self.assertEqual(self.wait([i])[0]["state"], "succeeded")
        wait_for(lambda: not (set(self.program_pids().values()) & old)
                 and len(self.program_pids()) == 2, "new programs")
        self.assertFalse(alive(busy))
        self.assertEqual(self.d.pool("calc")["program"],
                         "%s -m mprocd.worker progfuncs json"
                         % sys.executable)
        self.assertEqual(self.call("double", 8), 16)
        self.assertEqual(self.c.call("io.mprocd.Get", {"id": i})["result"],
                         1)

    def test_shutdown_leaves_nothing(self):
        self.start(calc(workers=2, extra="kill_grace = 1s").replace(
            "[mprocd]\n", "[mprocd]\nshutdown_timeout = 500ms\n"))
        pidfile = os.path.join(self.tmp, "pids")
        i = self.submit(["hang_with_child"], pool="calc",
                        input={"args": [pidfile], "kwargs": {}})
        wait_for(lambda: has_pids(pidfile, 2), "the call running")
        pids = read_pids(pidfile)
        pids += list(self.program_pids().values())
        self.assertEqual(self.d.stop(), 0)
        for p in pids:
            self.assertFalse(alive(p), p)

    def test_kill_9_leaves_nothing(self):
        self.start(calc(workers=2), new_group=True)
        pidfile = os.path.join(self.tmp, "pids")
        self.submit(["hang_with_child"], pool="calc",
                    input={"args": [pidfile], "kwargs": {}})
        wait_for(lambda: has_pids(pidfile, 2), "the call running")
        pids = read_pids(pidfile)
        pids += list(self.program_pids().values())
        pids += self.d.worker_pids()
        self.d.signal(signal.SIGKILL)
        self.d.wait_exit()
        for p in pids:
            wait_for(lambda: not alive(p), "pid %d gone" % p)

    def test_spare_takes_the_slot(self):
        self.start(conf(calc="workers = 1; spare_workers = 1; " + PROGRAM))
        wait_for(lambda: "spare ready" in self.d.log(), "the spare ready")
        prog = self.program_pids()["calc/0"]
        os.kill(prog, signal.SIGKILL)
        wait_for(lambda: self.d.worker("calc/0")["state"] == "idle" and
                 self.program_pids().get("calc/0") not in (None, prog),
                 "the slot's new program")
        r = self.call("whoami")
        self.assertEqual(r["worker"], "calc/0")


if __name__ == "__main__":
    main()
