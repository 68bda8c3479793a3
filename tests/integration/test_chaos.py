"""Chaos: thousands of jobs while a killer thread SIGKILLs a random worker
every few tens of milliseconds, with retries (every job must succeed) and
without (every job succeeds or is lost, none vanishes, no client hangs);
the supervisor itself SIGKILLed with jobs running; and a worker killed at
the worst moment, between forking a job and reporting its pid. What must
hold: each job ends once in a state a client can read, the counters add up,
and no process or descriptor is left behind.

Every job these tests run, and whatever it starts, carries
MPROCD_CHAOS=<marker> in its environment (the daemon is given it and jobs
inherit it; the supervisor's and workers' own copies are overwritten by
their process titles, so those are known by pid): the leak scans only ever
look at, and the clean-up only ever kills, our own processes.

Environment: CHAOS_SEED (the random seed; printed by each test, so a failure
can be rerun; the schedule still depends on timing), CHAOS_JOBS (jobs of the
retry test, default 3000; 1500 under AddressSanitizer), CHAOS_LOST_JOBS
(jobs of the test without retries, default 400; 300 under ASan),
CHAOS_PROGRAM_JOBS (calls of the program pool test, default 1000; 500),
CHAOS_KILL_MS (the killer's pause, "LO-HI" milliseconds, default 10-50),
CHAOS_WORKERS (4), CHAOS_CONNS (4), CHAOS_WAIT (seconds every Wait is
bounded by, default 60; 150 under ASan)."""

import base64
import ctypes
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

from mprocd_test import (MPROCCTL, TIMEOUT, Conn, DaemonTestCase,
                         VarlinkError, alive, asan_build, children, conf,
                         fd_list, main, proc_status, wait_for)


ASAN = asan_build()


def _env_int(name, plain, asan):
    v = os.environ.get(name)
    return int(v) if v else (asan if ASAN else plain)


SEED = int(os.environ.get("CHAOS_SEED") or
           random.SystemRandom().randrange(1 << 31))
JOBS = _env_int("CHAOS_JOBS", 3000, 1500)
LOST_JOBS = _env_int("CHAOS_LOST_JOBS", 400, 300)
PROGRAM_JOBS = _env_int("CHAOS_PROGRAM_JOBS", 1000, 500)
WORKERS = _env_int("CHAOS_WORKERS", 4, 4)
CONNS = _env_int("CHAOS_CONNS", 4, 4)
WAIT_SEC = _env_int("CHAOS_WAIT", 60, 150)
KILL_MS = tuple(float(x) for x in os.environ.get(
    "CHAOS_KILL_MS", "10-50").split("-"))
# Submits sent before their replies are read, per connection.
BATCH = 250

# A marker no other test shares: in the environment of every process ours.
MARK = "chaos-%d-%08x" % (os.getpid(), random.SystemRandom().getrandbits(32))
MARK_ENV = b"MPROCD_CHAOS=" + MARK.encode()


def config(workers, retries, jobs, level="info"):
    # Restarts fast and often: the pool goes degraded (more than
    # crash_limit deaths), which only caps the backoff at 20ms.
    return conf("keep_finished = %d" % max(10000, jobs), level=level,
                default="workers = %d; retries = %d; queue_limit = %d; "
                "restart_delay = 2ms; restart_delay_max = 20ms; "
                "kill_grace = 1s" % (workers, retries, max(100000, jobs)))


def program_config(workers, retries, jobs):
    """The pool "default" as a program pool of tests/integration/
    progfuncs.py, with config()'s settings."""
    return config(workers, retries, jobs).replace(
        "[pool default]\n", "[pool default]\nprogram = %s -m mprocd.worker "
        "progfuncs\nspare_workers = 0\n" % sys.executable)


PROGRAM_ENV = {"MPROCD_CHAOS": MARK, "PYTHONPATH": os.pathsep.join(
    [os.path.join(os.environ.get("MPROCD_SRCDIR", "."), "python"),
     os.path.dirname(os.path.abspath(__file__))])}


# --- Processes, from /proc ---------------------------------------------------

def proc_stat(pid):
    """(state, ppid, pgrp, sid), or None if pid is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return st[0], int(st[1]), int(st[2]), int(st[3])


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").strip().decode(
                errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return "?"


def describe(pid):
    st = proc_stat(pid)
    return "pid %d ppid %s state %s: %s" % (
        pid, st[1] if st else "?", st[0] if st else "gone",
        proc_cmdline(pid))


def is_worker(pid, parent):
    """A live worker of parent (before or after it set its title)."""
    st = proc_stat(pid)
    if st is None or st[0] == "Z" or st[1] != parent:
        return False
    cmd = proc_cmdline(pid)
    return cmd.startswith("mprocd: worker ") or \
        cmd.startswith("mprocd --worker ")


def is_spare(pid):
    """A hot spare (spare_workers): a worker that has no slot yet, titled
    "mprocd: worker POOL/spare" (before its title: "mprocd --worker
    POOL/spare ...")."""
    words = proc_cmdline(pid).split(" ")
    return len(words) > 2 and words[0].startswith("mprocd") and \
        words[2].endswith("/spare")


def ours():
    """Pids of live processes carrying our marker: jobs and whatever they
    started (zombies have no environment: they are gone for this purpose).
    The supervisor and its workers have it too, but their titles are
    written over it."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if b"\0" + MARK_ENV + b"\0" in b"\0" + env + b"\0":
            found.append(int(name))
    return sorted(found)


def kill_ours():
    """Clean-up: SIGKILL whatever of ours is left (never anything else)."""
    for _ in range(50):
        left = ours()
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def fd_kinds(fds, numbers=True):
    """What the descriptors are, without inode numbers ("socket:",
    "anon_inode:[eventpoll]"): comparable between two processes."""
    return sorted((fd if numbers else 0, re.sub(r"\[\d+\]$", "", target))
                  for fd, target in fds.items())


# --- A worker held at its fork ----------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                         ctypes.c_void_p]
_PTRACE_CONT = 7
_PTRACE_DETACH = 17
_PTRACE_GETEVENTMSG = 0x4201
_PTRACE_SEIZE = 0x4206
_PTRACE_O_TRACEFORK = 0x2
_PTRACE_O_TRACEVFORK = 0x4
_PTRACE_EVENT_FORK = 1
_PTRACE_EVENT_VFORK = 2
_WALL = 0x40000000


class ForkTrap:
    """Holds a process, by ptrace, in the fork() or vfork() that starts
    its next child: the child is let go, the parent stays stopped before
    returning, so it has told nobody the child's pid."""

    def __init__(self, pid):
        self.pid = pid
        if _libc.ptrace(_PTRACE_SEIZE, pid, None,
                        _PTRACE_O_TRACEFORK | _PTRACE_O_TRACEVFORK) != 0:
            raise unittest.SkipTest(
                "SKIPPED: cannot ptrace pid %d (%s); this test needs root "
                "or kernel.yama.ptrace_scope=0"
                % (pid, os.strerror(ctypes.get_errno())))

    def _stop(self, pid, what):
        deadline = time.monotonic() + TIMEOUT
        while True:
            got, status = os.waitpid(pid, _WALL | os.WNOHANG)
            if got == pid:
                if not os.WIFSTOPPED(status):
                    raise AssertionError("%s ended: status 0x%x"
                                         % (what, status))
                return status
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s" % what)
            time.sleep(0.002)

    def wait_fork(self):
        """Until the process forks; lets the child go and returns its pid."""
        while True:
            status = self._stop(self.pid, "the worker to fork")
            if status >> 16 in (_PTRACE_EVENT_FORK, _PTRACE_EVENT_VFORK):
                break
            # Another stop: resume, with its signal if it was one.
            sig = os.WSTOPSIG(status) if status >> 16 == 0 else 0
            _libc.ptrace(_PTRACE_CONT, self.pid, None, sig)
        msg = ctypes.c_ulong()
        _libc.ptrace(_PTRACE_GETEVENTMSG, self.pid, None, ctypes.byref(msg))
        child = msg.value
        self._stop(child, "the new child's first stop")
        _libc.ptrace(_PTRACE_DETACH, child, None, None)
        return child

    def kill(self):
        """SIGKILLs the held process and takes the tracer's report of its
        death, so that its parent gets its own."""
        os.kill(self.pid, signal.SIGKILL)
        while True:
            got, status = os.waitpid(self.pid, _WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                return


# --- The killer --------------------------------------------------------------

class Killer(threading.Thread):
    """SIGKILLs a random live worker of the supervisor every LO-HI ms; each
    worker at most once. killed: the pids it was delivered to.

    A worker is a pid that Status names and that is, right before the kill,
    a live child of the supervisor with a worker's title: a job's process
    forked by a worker that has just died (reparented to the supervisor
    before it had time to exec) shows the same title."""

    def __init__(self, daemon, rng, kill_ms):
        super().__init__(daemon=True)
        self.daemon_ = daemon
        self.rng = rng
        self.lo, self.hi = kill_ms
        self.stop_event = threading.Event()
        self.killed = []
        self.none_to_kill = 0
        self.error = None

    def run(self):
        done = set()
        sup = self.daemon_.pid
        try:
            c = Conn(self.daemon_.sock)
        except BaseException as e:      # reported by stop()
            self.error = e
            return
        try:
            while not self.stop_event.wait(
                    self.rng.uniform(self.lo, self.hi) / 1000):
                named = {w["pid"] for p in c.call("io.mprocd.Status")["pools"]
                         for w in p["workers"] if "pid" in w}
                pids = [p for p in named - done if is_worker(p, sup)]
                if not pids:
                    self.none_to_kill += 1
                    continue
                pid = self.rng.choice(sorted(pids))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                done.add(pid)
                self.killed.append(pid)
        except BaseException as e:
            self.error = e
        finally:
            c.close()

    def stop(self):
        self.stop_event.set()
        self.join(10)
        if self.error is not None:
            raise self.error
        return len(self.killed)


# --- Jobs --------------------------------------------------------------------

def retry_job(rng, k):
    """(argv, stdout, stderr) of the k-th job of the retry test: a mix of
    quick ones, short sleepers, descriptor listers, jobs that leave a
    grandchild in their group, and jobs with more output than a pipe holds.
    None fails by itself."""
    tag = "%s-%d" % (MARK, k)
    line = (tag + "\n").encode()
    kind = rng.randrange(10)
    if kind < 3:
        return ["true", tag], b"", b""
    if kind < 6:
        return (["sh", "-c", 'sleep 0.00$2; echo "$1"', "sh", tag,
                 str(rng.randint(1, 5))], line, b"")
    if kind < 8:
        # The shell's own descriptors, listed by ls from outside it.
        return (["sh", "-c", 'ls /proc/$$/fd; echo "$1" >&2', "sh", tag],
                b"0\n1\n2\n", line)
    if kind < 9:
        # The sleep stays in the job's process group: killed when the job
        # ends, or when its worker is killed; else the leak scan sees it.
        return (["sh", "-c", 'sleep 30 & echo "$1"', "sh", tag], line, b"")
    return (["sh", "-c", 'head -c 70000 /dev/zero; echo "$1"', "sh", tag],
            b"\0" * 70000 + line, b"")


def lost_job(rng, k):
    """The test without retries: long enough that kills land on them."""
    tag = "%s-%d" % (MARK, k)
    if rng.randrange(5) == 0:
        return ["true", tag], b"", b""
    return (["sh", "-c", 'sleep 0.0$2; echo "$1"', "sh", tag,
             str(rng.randint(1, 4))], (tag + "\n").encode(), b"")


def program_job(rng, k):
    """A call of the program pool test: argv gives the function and its
    arguments (strings); what it prints on stdout or stderr, and returns,
    is the tag."""
    tag = "%s-%d" % (MARK, k)
    line = (tag + "\n").encode()
    kind = rng.randrange(4)
    if kind == 0:
        return ["talk", tag + "\n", ""], line, b""
    if kind == 1:
        return ["talk", "", tag + "\n"], b"", line
    return ["nap", str(rng.randint(1, 5)), tag], line, b""


def recv_reply(c):
    r = c.recv()
    if r is None:
        raise ConnectionError("mprocd closed the connection")
    if "error" in r:
        raise VarlinkError(r["error"], r.get("parameters", {}))
    return r


class Client(threading.Thread):
    """One connection: pipelined Submits of its share of the jobs, then
    one Wait with "more" for all of them, bounded by WAIT_SEC."""

    def __init__(self, path, specs):
        super().__init__(daemon=True)
        self.path = path
        self.specs = specs
        self.ids = []
        self.finished = []      # the Wait's jobs, in the order they came
        self.error = None

    def run(self):
        try:
            c = Conn(self.path, timeout=WAIT_SEC + 30)
            try:
                self.converse(c)
            finally:
                c.close()
        except BaseException as e:
            self.error = e

    def converse(self, c):
        for i in range(0, len(self.specs), BATCH):
            batch = self.specs[i:i + BATCH]
            for argv, _, _ in batch:
                c.send("io.mprocd.Submit", {"argv": argv})
            for _ in batch:
                self.ids.append(recv_reply(c)["parameters"]["id"])
        c.send("io.mprocd.Wait", {"ids": self.ids, "timeout_sec": WAIT_SEC},
               more=True)
        while True:
            r = recv_reply(c)
            self.finished.extend(r["parameters"]["jobs"])
            if not r.get("continues"):
                break


# --- Tests -------------------------------------------------------------------

class ChaosTestCase(DaemonTestCase):

    def setUp(self):
        if os.environ.get("MPROCD_VALGRIND"):
            raise unittest.SkipTest(
                "SKIPPED: the chaos tests do not run under valgrind (too "
                "slow, and a SIGKILLed worker leaves no report); the plain "
                "and ASan builds run them")
        self.t0 = time.monotonic()
        self.addCleanup(kill_ours)
        print("\n%s: CHAOS_SEED=%d marker %s%s" % (
            self.id().rpartition(".")[2], SEED, MARK,
            " (AddressSanitizer build: counts scaled down)" if ASAN else ""),
            file=sys.stderr, flush=True)

    def start(self, config_text):
        return self.daemon(config_text, env={"MPROCD_CHAOS": MARK})

    def workers_idle(self, d):
        pool = d.pool()
        return all(w["state"] == "idle" for w in pool["workers"]) and \
            pool["queued"] == 0 and pool["running"] == 0 and pool

    def settled_fds(self, pid):
        """The supervisor's descriptors once no client is connected: the
        same for 200ms running."""
        state = {"last": None, "since": 0.0}

        def stable():
            now = fd_list(pid)
            if now != state["last"]:
                state["last"], state["since"] = now, time.monotonic()
                return False
            return time.monotonic() - state["since"] >= 0.2 and now
        return wait_for(stable, "the supervisor's descriptors to settle")

    def snapshot(self, d):
        """Before the chaos: the supervisor's descriptors and memory, the
        descriptors of a fresh worker."""
        workers = [w["pid"] for w in d.pool()["workers"]]
        return {"fds": self.settled_fds(d.pid),
                "worker_fds": fd_kinds(fd_list(workers[0])),
                "rss": proc_status(d.pid, "VmRSS")}

    def run_chaos(self, d, specs, rng):
        """Submits specs over CONNS connections while the killer runs;
        returns (ids in spec order, finished jobs by id, kills, seconds)."""
        clients = [Client(d.sock, specs[i::CONNS]) for i in range(CONNS)]
        killer = Killer(d, rng, KILL_MS)
        t0 = time.monotonic()
        killer.start()
        try:
            for c in clients:
                c.start()
            for c in clients:
                c.join(WAIT_SEC + 60)
                self.assertFalse(c.is_alive(), "a client is hung")
        finally:
            kills = killer.stop()
        secs = time.monotonic() - t0
        for c in clients:
            if c.error is not None:
                raise AssertionError("a client failed: %r" % c.error)
        # Every submitted id, and each once in its Wait's replies.
        ids = [None] * len(specs)
        finished = {}
        for i, c in enumerate(clients):
            self.assertEqual(len(c.ids), len(c.specs))
            ids[i::CONNS] = c.ids
            got = [j["id"] for j in c.finished]
            self.assertEqual(len(got), len(set(got)),
                             "a job was reported finished twice")
            self.assertEqual(sorted(got), sorted(c.ids),
                             "Wait did not report every job once")
            finished.update((j["id"], j) for j in c.finished)
        self.assertEqual(len(set(ids)), len(specs), "an id given twice")
        self.killed = killer.killed
        self.none_to_kill = killer.none_to_kill
        return ids, finished, kills, secs

    def outputs(self, d, ids):
        """Get of every id, pipelined: id -> reply (output decoded)."""
        c = Conn(d.sock, timeout=TIMEOUT * 3)
        out = {}
        try:
            for i in range(0, len(ids), BATCH):
                batch = ids[i:i + BATCH]
                for jid in batch:
                    c.send("io.mprocd.Get", {"id": jid})
                for jid in batch:
                    r = recv_reply(c)["parameters"]
                    self.assertEqual(r["job"]["id"], jid)
                    r["stdout"] = base64.b64decode(r["stdout"])
                    r["stderr"] = base64.b64decode(r["stderr"])
                    out[jid] = r
        finally:
            c.close()
        return out

    def check_list(self, d, ids, finished):
        jobs = d.call("io.mprocd.List")["jobs"]
        listed = [j["id"] for j in jobs]
        self.assertEqual(len(listed), len(set(listed)),
                         "List shows a job twice")
        self.assertEqual(sorted(listed), sorted(ids))
        for j in jobs:
            self.assertEqual(j["state"], finished[j["id"]]["state"])
            self.assertEqual(j["attempts"], finished[j["id"]]["attempts"])

    def check_crashes(self, d, pool, kills, secs):
        """Each kill is one worker death and one restart, and nothing else
        killed a worker."""
        crashes = [l for l in d.log().splitlines()
                   if 'msg="worker exited" why=crash' in l]
        logged = [int(l.partition(" worker_pid=")[2].split()[0])
                  for l in crashes]
        unlogged = sorted(set(self.killed) - set(logged))
        self.assertEqual(pool["restarts"], kills,
                         "restarts %d != kills delivered %d; killed but not "
                         "logged dead: %s; logged dead, not killed: %s"
                         % (pool["restarts"], kills, unlogged,
                            sorted(set(logged) - set(self.killed))))
        self.assertEqual(sum(w["restarts"] for w in pool["workers"]), kills)
        self.assertEqual(sorted(logged), sorted(self.killed),
                         "the workers logged dead are not those killed")
        for l in crashes:
            self.assertIn(" signal=9 ", l)
        if kills > 10 and secs < 60:
            self.assertTrue(pool["degraded"], "more than crash_limit (10) "
                            "deaths within crash_interval (60s) and the pool "
                            "is not degraded")

    def check_no_leaks(self, d, before):
        """After the chaos, once every worker is idle: exactly the
        supervisor and its workers (and spares) are ours, the workers have
        no children,
        the supervisor's descriptors are what they were."""
        pool = wait_for(lambda: self.workers_idle(d), "every worker idle")
        workers = sorted(w["pid"] for w in pool["workers"])
        self.assertEqual(len(workers), WORKERS)

        def slot_children():
            return sorted(p for p in children(d.pid) if not is_spare(p))

        def only_workers():
            return ours() == [] and slot_children() == workers
        try:
            wait_for(only_workers, "nothing but the supervisor and its "
                     "workers", timeout=10)
        except AssertionError:
            left = set(ours()) | set(slot_children())
            raise AssertionError(
                "processes left after the chaos:\n  " + "\n  ".join(
                    describe(p) for p in sorted(left - set(workers))) +
                "\nsupervisor %d, workers %s" % (d.pid, workers))
        for w in workers:
            self.assertEqual(children(w), [], "worker %d has children" % w)
            self.assertEqual(fd_kinds(fd_list(w)), before["worker_fds"],
                             "worker %d's descriptors differ from a fresh "
                             "worker's" % w)
        for c in d.conns:
            c.close()
        d.conns = []
        # Its descriptors are renewed (each new worker has a new socket)
        # but as many, of the same kinds.
        want = fd_kinds(before["fds"], numbers=False)
        try:
            wait_for(lambda: fd_kinds(fd_list(d.pid), numbers=False) == want,
                     "the supervisor's descriptors to be back to before",
                     timeout=10)
        except AssertionError:
            now = fd_list(d.pid)
            raise AssertionError("supervisor descriptors: %d before, %d "
                                 "after:\nbefore %s\nafter %s"
                                 % (len(before["fds"]), len(now),
                                    sorted(before["fds"].items()),
                                    sorted(now.items())))

    def assert_all_end(self, tree, what, names=None):
        """Within a bound, no process of ours is left: none with the marker,
        none of tree (the supervisor's and workers' pids)."""
        def left():
            return sorted(set(ours()) | {p for p in tree if alive(p)})
        try:
            wait_for(lambda: not left(), "every process of ours to end",
                     timeout=10)
        except AssertionError:
            names = names or {}
            raise AssertionError("left after %s:\n  " % what + "\n  ".join(
                describe(p) + (" (%s)" % names[p] if p in names else "")
                for p in left()))

    def stop_and_check(self, d):
        tree = [d.pid] + children(d.pid)
        self.assertEqual(d.stop(), 0)
        self.assert_all_end(tree, "shutdown")

    def report(self, what, **figures):
        figures["test_secs"] = "%.1f" % (time.monotonic() - self.t0)
        print("%s: %s" % (what, " ".join("%s=%s" % kv for kv in
                                          figures.items())),
              file=sys.stderr, flush=True)

    def test_chaos_with_retries(self):
        """Every job succeeds, exactly once, with the right output."""
        rng = random.Random(SEED)
        d = self.start(config(WORKERS, 50, JOBS))
        before = self.snapshot(d)
        specs = [retry_job(rng, k) for k in range(JOBS)]
        ids, finished, kills, secs = self.run_chaos(d, specs, rng)

        states = {}
        for j in finished.values():
            states[j["state"]] = states.get(j["state"], 0) + 1
        self.assertEqual(states, {"succeeded": JOBS})
        retries = sum(j["attempts"] - 1 for j in finished.values())
        max_attempts = max(j["attempts"] for j in finished.values())
        self.assertGreater(kills, 0, "the killer never killed")
        self.assertGreater(retries, 0, "no kill hit a running job: the "
                           "test proved nothing about retries")
        self.assertLessEqual(retries, kills,
                             "more retries than workers killed")

        outs = self.outputs(d, ids)
        for jid, (argv, out, err) in zip(ids, specs):
            r = outs[jid]
            self.assertEqual((r["job"]["state"], r["job"].get("exit_status"),
                              r["truncated"]), ("succeeded", 0, False),
                             "job %d %s" % (jid, argv))
            self.assertEqual(r["job"], finished[jid])
            if r["stdout"] != out or r["stderr"] != err:
                self.fail("job %d %s (attempts %d): stdout %r stderr %r, "
                          "expected %r %r"
                          % (jid, argv, r["job"]["attempts"],
                             r["stdout"][-200:], r["stderr"][-200:],
                             out[-200:], err[-200:]))
        self.check_list(d, ids, finished)

        pool = d.pool()
        for key, want in (("succeeded", JOBS), ("failed", 0),
                          ("cancelled", 0), ("queued", 0), ("running", 0)):
            self.assertEqual(pool[key], want, key)
        self.check_crashes(d, pool, kills, secs)
        log = d.log()
        self.assertEqual(log.count("running the job again"), retries)
        self.assertNotIn("job lost", log)

        rss_peak = proc_status(d.pid, "VmHWM")
        self.check_no_leaks(d, before)
        self.stop_and_check(d)
        self.report("chaos with retries", seed=SEED, jobs=JOBS,
                    conns=CONNS, workers=WORKERS,
                    kill_ms="%g-%g" % KILL_MS, kills=kills,
                    killer_found_none=self.none_to_kill, retries=retries,
                    max_attempts=max_attempts, lost=0,
                    restarts=pool["restarts"], secs="%.1f" % secs,
                    jobs_per_sec="%.0f" % (JOBS / secs),
                    supervisor_rss_kib="%d->%d(peak)" % (before["rss"],
                                                         rss_peak))

    def test_chaos_without_retries(self):
        """Every job succeeds or is lost; none vanishes, no Wait hangs."""
        rng = random.Random(SEED + 1)
        n = LOST_JOBS
        d = self.start(config(WORKERS, 0, n))
        before = self.snapshot(d)
        specs = [lost_job(rng, k) for k in range(n)]
        ids, finished, kills, secs = self.run_chaos(d, specs, rng)

        lost = [jid for jid, j in finished.items() if j["state"] == "lost"]
        ok = [jid for jid, j in finished.items() if j["state"] == "succeeded"]
        self.assertEqual(len(lost) + len(ok), n, "a job ended neither "
                         "succeeded nor lost: %s" % sorted(
                             {j["state"] for j in finished.values()}))
        self.assertGreater(len(lost), 0, "no job was lost: the test proved "
                           "nothing (kills %d)" % kills)
        self.assertLessEqual(len(lost), kills, "more jobs lost than workers "
                             "killed")
        for j in finished.values():
            self.assertEqual(j["attempts"], 1, "job %d ran twice" % j["id"])
            if j["state"] == "lost":
                self.assertNotIn("exit_status", j)
                self.assertIn("worker", j)

        outs = self.outputs(d, ids)
        for jid, (argv, out, err) in zip(ids, specs):
            r = outs[jid]
            self.assertEqual(r["job"], finished[jid])
            if r["job"]["state"] == "succeeded":
                self.assertEqual((r["job"]["exit_status"], r["stdout"],
                                  r["stderr"]), (0, out, err),
                                 "job %d %s" % (jid, argv))
        self.check_list(d, ids, finished)

        pool = d.pool()
        for key, want in (("succeeded", len(ok)), ("failed", len(lost)),
                          ("cancelled", 0), ("queued", 0), ("running", 0)):
            self.assertEqual(pool[key], want, key)
        self.check_crashes(d, pool, kills, secs)
        log = d.log()
        self.assertEqual(log.count('msg="the job\'s worker died; job lost"'),
                         len(lost))
        self.assertNotIn("running the job again", log)

        rss_peak = proc_status(d.pid, "VmHWM")
        self.check_no_leaks(d, before)
        self.stop_and_check(d)
        self.report("chaos without retries", seed=SEED + 1, jobs=n,
                    conns=CONNS, workers=WORKERS,
                    kill_ms="%g-%g" % KILL_MS, kills=kills,
                    killer_found_none=self.none_to_kill, retries=0,
                    lost=len(lost), succeeded=len(ok),
                    restarts=pool["restarts"], secs="%.1f" % secs,
                    supervisor_rss_kib="%d->%d(peak)" % (before["rss"],
                                                         rss_peak))

    def test_chaos_program_pool(self):
        """A program pool (the worker process keeps a Python program and
        the supervisor calls it directly) under the same killer: every
        call succeeds exactly once with its own output and result, each
        kill is one death and one restart, and what is left is the
        supervisor, its workers and one program each."""
        rng = random.Random(SEED + 2)
        n = PROGRAM_JOBS
        d = self.daemon(program_config(WORKERS, 50, n), env=PROGRAM_ENV)
        specs = [program_job(rng, k) for k in range(n)]
        ids, finished, kills, secs = self.run_chaos(d, specs, rng)

        states = {}
        for j in finished.values():
            states[j["state"]] = states.get(j["state"], 0) + 1
        self.assertEqual(states, {"succeeded": n})
        self.assertGreater(kills, 0, "the killer never killed")
        outs = self.outputs(d, ids)
        for jid, (argv, out, err) in zip(ids, specs):
            r = outs[jid]
            self.assertEqual((r["stdout"], r["stderr"]), (out, err),
                             "job %d %s (attempts %d)"
                             % (jid, argv, r["job"]["attempts"]))
            self.assertEqual(r["result"],
                             "said" if argv[0] == "talk" else argv[2])
        self.check_list(d, ids, finished)
        pool = d.pool()
        self.assertEqual((pool["succeeded"], pool["failed"],
                          pool["queued"], pool["running"]), (n, 0, 0, 0))
        self.check_crashes(d, pool, kills, secs)
        retries = sum(j["attempts"] - 1 for j in finished.values())
        self.assertEqual(d.log().count("running the job again"), retries)

        # Each worker has one child, its program, which has none: the only
        # processes of ours with the marker (the others' titles hide it).
        pool = wait_for(lambda: self.workers_idle(d), "every worker idle")
        programs = []
        for w in pool["workers"]:
            kids = wait_for(lambda: children(w["pid"]), "a program")
            self.assertEqual(len(kids), 1, describe(w["pid"]))
            self.assertEqual(children(kids[0]), [])
            programs.append(kids[0])
        wait_for(lambda: ours() == sorted(programs),
                 "nothing of ours but the programs", timeout=10)
        self.stop_and_check(d)
        self.report("chaos in a program pool", seed=SEED, jobs=n,
                    kills=kills, retries=retries, secs="%.1f" % secs,
                    calls_per_sec="%.0f" % (n / secs))

    def test_worker_killed_before_it_reports_the_job(self):
        """The worst moment for a worker to die: it has forked the job's
        process and does not know its pid yet. Held there (by ptrace), it
        is killed: nothing of the job may stay behind, not even what the job
        started in its process group if it got that far (the job's process
        tells the supervisor its pid itself, before it execs)."""
        d = self.start(config(1, 0, 100))
        c = d.connect()
        worker = d.worker("default/0")["pid"]
        trap = ForkTrap(worker)
        self.addCleanup(lambda: alive(worker) and trap.kill())
        gc = os.path.join(d.dir, "gc")
        jid = c.call("io.mprocd.Submit", {"argv": [
            "sh", "-c", 'sleep 300 & echo $! > "$1"; exec sleep 300', "sh",
            gc]})["id"]
        child = trap.wait_fork()
        # The job's process either runs (and starts its grandchild) or
        # waits, not yet exec'd, until it has reported itself.
        state = {"title": None, "since": 0.0}

        def ran_or_waits():
            if os.path.exists(gc):
                return True
            title = (proc_cmdline(child), (proc_stat(child) or "?")[0])
            if title != state["title"]:
                state["title"], state["since"] = title, time.monotonic()
            return title[0].startswith("mprocd") and title[1] == "S" and \
                time.monotonic() - state["since"] > 0.5
        wait_for(ran_or_waits, "the job to run, or to wait for its worker")
        time.sleep(0.1)
        grandchild = None
        if os.path.exists(gc):
            with open(gc) as f:
                grandchild = int(f.read())
            self.assertEqual(os.getpgid(grandchild), child)
        self.assertEqual(d.pool()["running"], 1)
        trap.kill()
        job = c.call("io.mprocd.Wait", {"ids": [jid], "timeout_sec": TIMEOUT})[
            "jobs"][0]
        self.assertEqual((job["state"], job["attempts"]), ("lost", 1))
        self.assert_all_end([worker, child] + ([grandchild] if grandchild
                                               else []),
                            "a worker killed in its fork",
                            {worker: "worker", child: "job",
                             grandchild: "the job's grandchild"})
        self.report("worker killed in its fork", job_ran=grandchild is not None)

    def ctl(self, d, *args, **kw):
        return subprocess.Popen([MPROCCTL, "-s", d.sock] + list(args),
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **kw)

    def assert_ctl_fails(self, p, what):
        """mprocctl ended within a bound with 125 and one line on stderr."""
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("%s hung after mprocd died" % what)
        lines = err.decode(errors="replace").splitlines()
        self.assertEqual(p.returncode, 125, "%s: %r" % (what, err))
        self.assertEqual(len(lines), 1, "%s: %r" % (what, err))
        self.assertTrue(lines[0].startswith("mprocctl: ") and
                        len(lines[0]) > len("mprocctl: "), lines[0])
        return lines[0]

    def test_kill9_of_supervisor_with_jobs_running(self):
        d = self.start(config(3, 0, 100, level="debug"))
        c = d.connect()
        f = lambda name: os.path.join(d.dir, name)

        def submit(argv):
            return c.call("io.mprocd.Submit", {"argv": argv})["id"]

        def pid_in(name):
            try:
                with open(f(name)) as fh:
                    s = fh.read()
            except FileNotFoundError:
                return None
            return int(s) if s.endswith("\n") else None

        # A job that has ended, leaving a process that escaped its group.
        ended = submit(["sh", "-c", 'setsid sh -c \'echo $$ > "$1"; '
                        'exec sleep 300\' sh "$1" & '
                        'while [ ! -s "$1" ]; do sleep 0.01; done',
                        "sh", f("d.setsid")])
        self.assertEqual(c.call("io.mprocd.Wait", {
            "ids": [ended], "timeout_sec": TIMEOUT})["jobs"][0]["state"],
            "succeeded")
        # A job with a grandchild in its process group.
        grouped = submit(["sh", "-c", 'sleep 300 & echo $! > "$2"; '
                          'echo $$ > "$1"; exec sleep 300',
                          "sh", f("g.pid"), f("g.gc")])
        # A job that escapes twice: a setsid child of its own, and a setsid
        # grandchild whose parent exited at once (a double fork).
        escaper = submit(["sh", "-c",
                          'setsid sh -c \'echo $$ > "$1"; exec sleep 300\' '
                          'sh "$2" & '
                          '(setsid sh -c \'echo $$ > "$1"; exec sleep 300\' '
                          'sh "$3" &) ; '
                          'while [ ! -s "$2" ] || [ ! -s "$3" ]; do '
                          'sleep 0.01; done; echo $$ > "$1"; exec sleep 300',
                          "sh", f("e.pid"), f("e.setsid"), f("e.double")])
        plain = submit(["sleep", "300"])
        queued = submit(["true"])
        pids = {k: wait_for(lambda k=k: pid_in(k), "pid file %s" % k)
                for k in ("d.setsid", "g.pid", "g.gc", "e.pid", "e.setsid",
                          "e.double")}
        self.assertEqual(os.getpgid(pids["g.gc"]), pids["g.pid"])
        for k in ("d.setsid", "e.setsid", "e.double"):
            self.assertEqual(proc_stat(pids[k])[3], pids[k],
                             "%s did not leave the job's session" % k)
        self.assertEqual(d.pool()["running"], 3)
        self.assertEqual(d.pool()["queued"], 1)
        before = ours()
        for k, pid in pids.items():
            self.assertIn(pid, before, k)

        # Clients blocked in Wait: raw Varlink, and mprocctl.
        waiter = Conn(d.sock, timeout=10)
        self.addCleanup(waiter.close)
        waiter.send("io.mprocd.Wait", {"ids": [grouped, escaper]})
        ctl_wait = self.ctl(d, "wait", str(plain))
        self.addCleanup(lambda: ctl_wait.poll() is None and ctl_wait.kill())
        wait_for(lambda: "client_pid=%d " % ctl_wait.pid in d.log(),
                 "mprocctl wait to connect")
        wait_for(lambda: ctl_wait.poll() is not None or
                 proc_stat(ctl_wait.pid)[0] == "S", "mprocctl wait to block")
        if ctl_wait.poll() is not None:
            self.fail("mprocctl wait exited %d: %r"
                      % (ctl_wait.returncode, ctl_wait.stderr.read()))
        time.sleep(0.1)
        self.assertEqual(d.call("io.mprocd.Get", {"id": plain})["job"]
                         ["state"], "running")

        workers = [p for p in children(d.pid) if is_worker(p, d.pid)
                   and not is_spare(p)]
        self.assertEqual(len(workers), 3)
        # Those whose parent has gone were handed to a subreaper of ours.
        for k in ("d.setsid", "e.double"):
            self.assertIn(proc_stat(pids[k])[1], [d.pid] + workers, k)
        d.signal(signal.SIGKILL)
        d.proc.wait(10)
        t0 = time.monotonic()
        try:
            r = waiter.recv()
        except ConnectionResetError:
            r = None
        self.assertIsNone(r, "a reply from a dead mprocd: %r" % r)
        self.assertLess(time.monotonic() - t0, 5)
        line = self.assert_ctl_fails(ctl_wait, "a blocked mprocctl wait")
        self.assertIn("closed the connection", line)
        line = self.assert_ctl_fails(self.ctl(d, "status"), "mprocctl status")
        self.assertIn("cannot connect to %s" % d.sock, line)
        self.assert_ctl_fails(self.ctl(d, "wait", str(queued)),
                              "mprocctl wait")

        # Nothing of ours outlives the supervisor: workers, jobs, the
        # grandchild, and the escaped ones.
        names = {pid: k for k, pid in pids.items()}
        names.update((pid, "worker") for pid in workers)
        self.assert_all_end(workers, "kill -9 of the supervisor", names)

        # A new mprocd on the same path replaces the stale socket.
        self.assertTrue(os.path.exists(d.sock))
        d.logfile.close()
        d.start()
        c = d.connect()
        self.assertEqual(c.call("io.mprocd.Wait", {
            "ids": [submit(["true"])], "timeout_sec": TIMEOUT})["jobs"][0]
            ["state"], "succeeded")
        self.stop_and_check(d)
        self.report("supervisor killed with jobs running", processes=len(
            set(before) | set(workers)), escaped=3)


if __name__ == "__main__":
    main()
