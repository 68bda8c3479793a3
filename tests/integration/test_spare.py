"""Hot spares (spare_workers): workers started ahead, in no slot, so that a
slot whose worker died or was retired gets one at once instead of waiting
for an exec. A spare is not in Status; it is a child of the supervisor
titled "mprocd: worker POOL/spare", and the debug log says when it is
ready ("spare ready") and when a slot takes it ("worker taken from the
spares")."""

import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest.mock

import mprocd_test
from mprocd_test import (MPROCD, JobsTestCase, alive, children, cmdline,
                         conf, cpu_ticks, fd_count, fd_list, main, ppid,
                         wait_for)


def title(pid):
    """pid's title, or None once it is gone."""
    try:
        return cmdline(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None


class SpareTestCase(JobsTestCase):

    def spares(self, pool="default"):
        """Live children of the supervisor that are spares of pool."""
        return sorted(p for p in children(self.d.pid) if alive(p) and
                      title(p) == "mprocd: worker %s/spare" % pool)

    def ready_spares(self, pool="default"):
        """Spares of pool that said they are ready and still are spares."""
        said = re.findall(r'worker=%s/spare msg="spare ready" '
                          r'worker_pid=(\d+)' % re.escape(pool), self.d.log())
        live = self.spares(pool)
        return sorted(p for p in map(int, said) if p in live)

    def wait_spares(self, n, pool="default", exclude=()):
        """Waits until pool has exactly n spares, each ready and none of
        exclude; returns their pids."""
        def check():
            ready = self.ready_spares(pool)
            return (len(ready) == n and self.spares(pool) == ready and
                    not set(ready) & set(exclude) and ready)
        if n == 0:
            wait_for(lambda: self.spares(pool) == [], "%s to have no spare"
                     % pool)
            return []
        return wait_for(check, "%d spare(s) of %s ready" % (n, pool))

    def wait_idle(self, name, not_pid):
        """The Status entry of worker name once idle with a pid other than
        not_pid."""
        return wait_for(lambda: (lambda w: w["state"] == "idle" and
                                 w.get("pid") not in (None, not_pid) and w)(
                                     self.d.worker(name)),
                        "%s to be replaced" % name, interval=0.005)

    def slot_pids(self, pool="default"):
        return sorted(w["pid"] for w in self.d.pool(pool)["workers"]
                      if "pid" in w)

    def wait1(self, jid):
        return self.wait([jid])[0]

    def run_job(self, argv, **params):
        """Submits, waits, and returns Get's reply, stdout decoded."""
        jid = self.submit(argv, **params)
        self.wait1(jid)
        r = self.c.call("io.mprocd.Get", {"id": jid})
        r["stdout"] = base64.b64decode(r["stdout"])
        return r

    def assert_reaped(self, pids):
        """Each of pids has ended and is no child of the supervisor, not
        even a zombie."""
        for pid in pids:
            wait_for(lambda: not alive(pid) and
                     pid not in children(self.d.pid),
                     "process %d to end and be reaped" % pid)


class TestTakeover(SpareTestCase):

    def test_replacement_is_the_spare_and_a_new_spare_follows(self):
        d = self.start(conf(default="workers = 1; restart_delay = 0"))
        (spare,) = self.wait_spares(1)
        self.assertEqual(ppid(spare), d.pid)
        # Not a slot: Status lists the slots only.
        pool = d.pool()
        self.assertEqual([w["name"] for w in pool["workers"]], ["default/0"])
        self.assertNotIn(spare, self.slot_pids())
        old = d.worker("default/0")["pid"]

        os.kill(old, signal.SIGKILL)
        w = self.wait_idle("default/0", old)
        # The new worker was already running before the kill.
        self.assertEqual(w["pid"], spare)
        self.assertEqual(w["restarts"], 1)
        self.assertEqual(d.pool()["restarts"], 1)
        self.assertEqual(cmdline(spare), "mprocd: worker default/0")
        self.assertIn('worker=default/0 msg="worker taken from the spares" '
                      'worker_pid=%d ' % spare, d.log())
        self.assertIn('worker=default/0 msg="worker exited" why=crash '
                      'signal=9 worker_pid=%d restart_delay=0\n' % old,
                      d.log())
        self.assert_reaped([old])

        # It runs jobs under its slot's name, and logs as that worker.
        r = self.run_job(["sh", "-c", 'echo "$MPROCD_WORKER $MPROCD_POOL '
                          '$PPID"'])
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertEqual(r["job"]["worker"], "default/0")
        self.assertEqual(r["stdout"].decode(),
                         "default/0 default %d\n" % spare)
        self.assertRegex(d.log(), r'debug worker=default/0 job=%d '
                         r'msg="job running"' % r["job"]["id"])
        # And a new spare takes the old one's place.
        (new,) = self.wait_spares(1, exclude=[spare, old])
        self.assertEqual(self.slot_pids(), [spare])
        self.assertEqual(sorted(children(d.pid)), sorted([spare, new]))

    def test_several_deaths_use_several_spares(self):
        d = self.start(conf(default="workers = 3; spare_workers = 2; "
                            "restart_delay = 0"))
        spares = self.wait_spares(2)
        victims = {n: d.worker(n)["pid"] for n in ("default/0", "default/2")}
        for pid in victims.values():
            os.kill(pid, signal.SIGKILL)
        got = {n: self.wait_idle(n, victims[n])["pid"] for n in victims}
        # Each took a ready spare: one of those there before, or (if the
        # kills were far enough apart) the one started after the first.
        self.assertTrue(set(got.values()) & set(spares), (got, spares))
        log = d.log()
        for n, pid in got.items():
            self.assertIn('worker=%s msg="worker taken from the spares" '
                          'worker_pid=%d ' % (n, pid), log)
            self.assertIn('msg="spare ready" worker_pid=%d ' % pid, log)
        self.assertEqual({n: cmdline(p) for n, p in got.items()},
                         {n: "mprocd: worker " + n for n in got})
        self.wait_spares(2, exclude=got.values())
        self.assertEqual(d.pool()["restarts"], 2)

    def test_no_spare_keeps_the_old_behaviour(self):
        d = self.start(conf(default="workers = 2; spare_workers = 0; "
                            "restart_delay = 0"))
        time.sleep(0.3)
        self.assertEqual(self.spares(), [])
        before = sorted(children(d.pid))
        self.assertEqual(before, self.slot_pids())
        old = d.worker("default/0")["pid"]
        os.kill(old, signal.SIGKILL)
        w = self.wait_idle("default/0", old)
        self.assertNotIn(w["pid"], before)
        self.assertIn('worker=default/0 msg="worker starting" worker_pid=%d\n'
                      % w["pid"], d.log())
        self.assertNotIn("default/spare", d.log())
        self.assertNotIn("taken from the spares", d.log())
        self.assertEqual(sorted(children(d.pid)), self.slot_pids())
        self.assertEqual(d.pool()["restarts"], 1)

    def test_restart_delay_is_kept(self):
        """A spare ready does not make a slot restart before its delay."""
        d = self.start(conf(default="workers = 1; restart_delay = 600ms"))
        (spare,) = self.wait_spares(1)
        old = d.worker("default/0")["pid"]
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        w = self.wait_idle("default/0", old)
        self.assertGreaterEqual(time.monotonic() - t0, 0.55)
        self.assertEqual(w["pid"], spare)

    def test_killed_spare_is_replaced(self):
        d = self.start(conf(default="workers = 2"))
        (spare,) = self.wait_spares(1)
        slots = self.slot_pids()
        os.kill(spare, signal.SIGKILL)
        wait_for(lambda: 'worker=default/spare msg="spare exited" why=crash '
                 'signal=9 worker_pid=%d restart_delay=100ms\n' % spare
                 in d.log(), "the spare's death to be logged")
        self.assert_reaped([spare])
        self.wait_spares(1, exclude=[spare])
        # The slots were not touched; a spare's death is no slot's restart.
        pool = d.pool()
        self.assertEqual(self.slot_pids(), slots)
        self.assertEqual(pool["restarts"], 0)
        self.assertEqual([w["restarts"] for w in pool["workers"]], [0, 0])
        self.assertFalse(pool["degraded"])

    def test_retired_worker_is_replaced_by_the_spare(self):
        d = self.start(conf(default="workers = 1; max_jobs_per_worker = 1"))
        (spare,) = self.wait_spares(1)
        first = d.worker("default/0")["pid"]
        r = self.run_job(["sh", "-c", "echo $PPID"])
        self.assertEqual(int(r["stdout"]), first)
        w = self.wait_idle("default/0", first)
        self.assertEqual((w["pid"], w["jobs_done"], w["restarts"]),
                         (spare, 0, 0))
        self.assertRegex(d.log(), r'worker=default/0 msg="worker exited" '
                         r'why=recycled status=0 worker_pid=%d ' % first)
        # Retired in turn, it is followed by the spare started after it.
        (new,) = self.wait_spares(1, exclude=[spare])
        r = self.run_job(["sh", "-c", "echo $PPID"])
        self.assertEqual(int(r["stdout"]), spare)
        w = self.wait_idle("default/0", spare)
        self.assertEqual(w["pid"], new)
        self.assertEqual(d.pool()["restarts"], 0)
        self.assert_reaped([first, spare])

    def test_status_and_ready_count_slots(self):
        d = self.start(conf(default="workers = 2; spare_workers = 3"))
        self.wait_spares(3)
        st = d.status()
        (pool,) = st["pools"]
        self.assertEqual(pool["size"], 2)
        self.assertEqual([w["name"] for w in pool["workers"]],
                         ["default/0", "default/1"])
        self.assertRegex(d.log(), r'info msg=ready workers=2\n')


class TestCrashLoop(SpareTestCase):

    def test_workers_crashing_at_start_do_not_spin(self):
        """Workers that cannot start (their executable now exits at once)
        are restarted with backoff through the spare's position too; the
        supervisor stays idle in between."""
        d = self.daemon(conf(default="workers = 1; restart_delay = 100ms; "
                             "restart_delay_max = 800ms; crash_limit = 1000"),
                        start=False)
        self.d = d
        exe = os.path.join(d.dir, "mprocd")
        shutil.copy2(MPROCD, exe)
        with unittest.mock.patch.object(mprocd_test, "MPROCD", exe):
            d.start()
        self.c = d.connect()
        (spare,) = self.wait_spares(1)
        slot = d.worker("default/0")["pid"]

        broken = exe + ".broken"
        with open(broken, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(broken, 0o755)
        os.rename(exe, exe + ".good")
        os.rename(broken, exe)
        os.kill(slot, signal.SIGKILL)
        os.kill(spare, signal.SIGKILL)
        # The slot takes no spare (none is ready): both positions fail.
        wait_for(lambda: d.log().count('msg="spare exited" why=crash '
                                       'status=1 ') >= 2,
                 "the spare's position to fail twice")
        before = cpu_ticks(d.pid)
        t0 = time.monotonic()
        time.sleep(2.5)
        used = cpu_ticks(d.pid) - before
        secs = time.monotonic() - t0
        self.assertLessEqual(used, 25, "supervisor spun in a crash loop")
        log = d.log()
        spawned = log.count('msg="worker starting"') + \
            log.count('msg="spare starting"')
        # Two positions backing off 100, 200, 400, 800, 800... ms.
        self.assertLess(spawned, 30, "%d spawns in %.1fs" % (spawned, secs))
        # Each doubles its wait from restart_delay (the first death was
        # our SIGKILL, after which it waited 100ms).
        waits = re.findall(r'worker=default/spare msg="spare exited" '
                           r'why=crash status=1 worker_pid=\d+ '
                           r'restart_delay=(\w+)', log)
        self.assertEqual(waits[:3], ["200ms", "400ms", "800ms"])
        waits = re.findall(r'worker=default/0 msg="worker exited" '
                           r'why=crash status=1 worker_pid=\d+ '
                           r'restart_delay=(\w+)', log)
        self.assertEqual(waits[:3], ["200ms", "400ms", "800ms"])
        # A spare's deaths are not the slot's restarts.
        self.assertEqual(d.pool()["restarts"],
                         log.count('worker=default/0 msg="worker exited" '
                                   'why=crash'))

        # Mended, both come back.
        os.rename(exe + ".good", exe)
        w = wait_for(lambda: (lambda w: w["state"] == "idle" and w)(
            d.worker("default/0")), "default/0 to start again")
        self.assertEqual(cmdline(w["pid"]), "mprocd: worker default/0")
        self.wait_spares(1)
        self.assertEqual(d.stop(), 0)


class TestReload(SpareTestCase):

    def test_spare_workers_changed_by_reload(self):
        d = self.start(conf(default="workers = 1; spare_workers = 1"))
        first = self.wait_spares(1)
        slots = self.slot_pids()
        self.reload(conf(default="workers = 1; spare_workers = 3"))
        # A reload sees the change (config_diff).
        self.assertIn('pool=default msg="pool settings changed', d.log())
        more = self.wait_spares(3)
        self.assertTrue(set(first) <= set(more), (first, more))
        self.reload(conf(default="workers = 1; spare_workers = 0"))
        self.wait_spares(0)
        self.assert_reaped(more)
        for pid in more:
            self.assertIn('worker=default/spare msg="spare exited" '
                          'why=retired status=0 worker_pid=%d\n' % pid,
                          d.log())
        self.assertEqual(sorted(children(d.pid)), slots)
        self.assertEqual(self.slot_pids(), slots)
        self.assertNotIn("why=crash", d.log())
        # Back to one.
        self.reload(conf(default="workers = 1; spare_workers = 1"))
        self.wait_spares(1)

    def test_pool_growing_takes_the_spare(self):
        d = self.start(conf(default="workers = 1"))
        (spare,) = self.wait_spares(1)
        self.reload(conf(default="workers = 2"))
        w = wait_for(lambda: (lambda w: w["state"] == "idle" and w)(
            d.worker("default/1")), "default/1 to start")
        self.assertEqual(w["pid"], spare)
        self.assertEqual(cmdline(spare), "mprocd: worker default/1")
        self.wait_spares(1, exclude=[spare])

    def test_shrink_and_removal_leave_nothing(self):
        d = self.start(conf(a="workers = 3; spare_workers = 2",
                            b="workers = 1"))
        self.wait_spares(2, pool="a")
        self.wait_spares(1, pool="b")
        self.reload(conf(a="workers = 1; spare_workers = 2",
                         b="workers = 1"))
        wait_for(lambda: len(self.slot_pids("a")) == 1,
                 "a to shrink to one worker")
        a_spares = self.wait_spares(2, pool="a")
        b_spares = self.spares("b")
        wait_for(lambda: sorted(children(d.pid)) == sorted(
            self.slot_pids("a") + self.slot_pids("b") + a_spares +
            b_spares), "only a's and b's workers and spares")

        a_all = self.slot_pids("a") + a_spares
        self.reload(conf(b="workers = 1"))
        wait_for(lambda: "a" not in [p["name"] for p in d.status()["pools"]],
                 "pool a to go")
        self.assert_reaped(a_all)
        wait_for(lambda: sorted(children(d.pid)) == sorted(
            self.slot_pids("b") + b_spares), "only b's workers and spares")
        self.assertFalse([p for p in children(d.pid)
                          if (title(p) or "").startswith("mprocd: worker a/")])
        self.assertNotIn("why=crash", d.log())

    def test_log_level_reaches_spares(self):
        d = self.start(conf(default="workers = 1; restart_delay = 0"))
        (spare,) = self.wait_spares(1)
        self.reload(conf(level="info", default="workers = 1; "
                         "restart_delay = 0"))
        old = d.worker("default/0")["pid"]
        os.kill(old, signal.SIGKILL)
        self.assertEqual(self.wait_idle("default/0", old)["pid"], spare)
        jid = self.submit(["true"])
        self.assertEqual(self.wait1(jid)["state"], "succeeded")
        # At info the worker does not log its job's start (debug).
        self.assertNotRegex(d.log(), r"job=%d msg=\"job running\"" % jid)


class TestLifetime(SpareTestCase):

    def test_shutdown_reaps_spares(self):
        d = self.start(conf(a="workers = 2; spare_workers = 2",
                            b="workers = 1"))
        spares = self.wait_spares(2, pool="a") + self.wait_spares(1, pool="b")
        slots = d.worker_pids()
        self.assertEqual(d.stop(), 0)
        for pid in spares + slots:
            self.assertFalse(alive(pid), "process %d left behind" % pid)
        log = d.log()
        for pid in spares:
            self.assertRegex(log, r'msg="spare exited" why=shutdown '
                             r'status=0 worker_pid=%d\n' % pid)
        self.assertEqual(log.count('msg="worker exited" why=shutdown '), 3)
        self.assertNotIn("why=crash", log)
        self.assertNotIn("left behind by a job", log)

    def test_shutdown_while_a_spare_starts(self):
        """A spare still starting at shutdown is stopped and reaped too."""
        d = self.start(conf(default="workers = 1; spare_workers = 4; "
                            "restart_delay = 0"))
        old = d.worker("default/0")["pid"]
        os.kill(old, signal.SIGKILL)
        # The spare that took over is replaced by one that starts now.
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)
        for pid in map(int, re.findall(r"worker_pid=(\d+)", d.log())):
            self.assertFalse(alive(pid), "process %d left behind" % pid)
        self.assertNotIn("left behind by a job", d.log())

    def test_kill9_of_supervisor_takes_spares_with_it(self):
        d = self.start(conf(default="workers = 1; spare_workers = 2"))
        spares = self.wait_spares(2)
        slots = d.worker_pids()
        d.signal(signal.SIGKILL)
        d.proc.wait()
        for pid in spares + slots:
            wait_for(lambda: not alive(pid),
                     "process %d to die with the supervisor" % pid)

    def test_sigusr1_reaches_spares(self):
        d = self.daemon(start=False)
        self.d = d
        logfile = os.path.join(d.dir, "file.log")
        with open(d.conf, "w") as f:
            f.write(conf(main="log_target = file:%s" % logfile,
                         default="workers = 1; restart_delay = 0"))
        d.start()
        self.c = d.connect()

        def log():
            if not os.path.exists(logfile):
                return ""
            with open(logfile) as f:
                return f.read()
        d.log = log
        (spare,) = self.wait_spares(1)
        os.rename(logfile, logfile + ".1")
        d.signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(logfile), "the log to be reopened")
        old = d.worker("default/0")["pid"]
        os.kill(old, signal.SIGKILL)
        self.assertEqual(self.wait_idle("default/0", old)["pid"], spare)
        jid = self.submit(["true"])
        self.wait([jid])
        # The spare, now default/0, writes to the new file.
        wait_for(lambda: 'job=%d msg="job running"' % jid in d.log(),
                 "the worker's record in the new file")
        with open(logfile + ".1") as f:
            self.assertNotIn('job=%d msg="job running"' % jid, f.read())

    def test_no_descriptor_leaks(self):
        d = self.start(conf(default="workers = 1; restart_delay = 0"))
        (spare,) = self.wait_spares(1)
        # A spare has what a worker has: stdio, its socket, its signalfd.
        got = fd_list(spare)
        own = [fd for fd, t in got.items() if t == "anon_inode:[signalfd]"]
        self.assertEqual(len(own), 1, got)
        self.assertEqual(sorted(set(got) - set(own)), [0, 1, 2, 3])
        self.assertTrue(got[3].startswith("socket:"), got)
        # A job inherits no socket: not its worker's, not a spare's.
        r = self.run_job(["sh", "-c", "ls -l /proc/$$/fd"])
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertNotIn("socket:", r["stdout"].decode())
        # Takeovers and new spares leave the supervisor with as many
        # descriptors as before.
        for c in d.conns:
            c.close()
        d.conns = []
        self.c = None
        time.sleep(0.2)     # for the supervisor to close its ends
        before = fd_count(d.pid)
        for _ in range(5):
            old = d.worker("default/0")["pid"]
            os.kill(old, signal.SIGKILL)
            self.wait_idle("default/0", old)
            self.wait_spares(1, exclude=[old])
        wait_for(lambda: fd_count(d.pid) <= before,
                 "the supervisor's descriptors to be back to %d (%d)"
                 % (before, fd_count(d.pid)))


class TestConfig(unittest.TestCase):

    def run_mprocd(self, *args, text=""):
        path = os.path.join(self.dir, "c.conf")
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([MPROCD, "-c", path] + list(args),
                              capture_output=True, text=True,
                              env=dict(os.environ,
                                       XDG_RUNTIME_DIR="/run/user/test"))

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mprocd-spare-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_default_and_range(self):
        r = self.run_mprocd("--print-config")
        self.assertIn("\nworkers = 4\nspare_workers = 1\n", r.stdout)
        r = self.run_mprocd("--print-config",
                            text="[pool p]\nspare_workers = 0\n")
        self.assertIn("[pool p]\nworkers = 4\nspare_workers = 0\n", r.stdout)
        r = self.run_mprocd("--check-config",
                            text="[pool p]\nspare_workers = 65\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("c.conf:2: spare_workers = 65: too large (expected a "
                      "whole number from 0 to 64)", r.stderr)
        r = self.run_mprocd("--check-config",
                            text="[mprocd]\nspare_workers = 1\n")
        self.assertIn("spare_workers belongs in a [pool NAME] section",
                      r.stderr)


if __name__ == "__main__":
    main()
