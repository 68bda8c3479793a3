"""Supervision: named workers per pool, restarts with backoff, degraded
pools, shutdown that leaves nothing behind."""

import os
import re
import signal
import socket
import struct
import time

from mprocd_test import (DaemonTestCase, Frozen, alive, cmdline, conf,
                         cpu_ticks, main, ppid, wait_for)

class Notify:
    """A NOTIFY_SOCKET for mprocd: what it tells systemd, each message with
    the kernel's receive time, so a slow test does not bunch them up."""

    def __init__(self, test, d):
        self.path = os.path.join(d.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        test.addCleanup(self.sock.close)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET,
                             getattr(socket, "SO_TIMESTAMPNS", 35), 1)
        self.msgs = []      # (time, text), every one received

    def recv(self, timeout=20):
        """The next message as (time, text), or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, 1024)
        except TimeoutError:
            return None
        sec, nsec = struct.unpack("qq", anc[0][2][:16])
        self.msgs.append((sec + nsec / 1e9, data.decode()))
        return self.msgs[-1]

    def text(self, timeout=20):
        """The next message's text; fails after timeout."""
        m = self.recv(timeout)
        if m is None:
            raise AssertionError("no message from mprocd in %ss" % timeout)
        return m[1]


TWO_POOLS = conf(alpha=3, beta=2)


class TestWorkers(DaemonTestCase):

    def test_named_workers_per_pool(self):
        d = self.daemon(TWO_POOLS)
        st = d.status()
        self.assertEqual([p["name"] for p in st["pools"]], ["alpha", "beta"])
        self.assertEqual(st["pid"], d.pid)
        alpha, beta = st["pools"]
        self.assertEqual(alpha["size"], 3)
        self.assertEqual(beta["size"], 2)
        self.assertEqual([w["name"] for w in alpha["workers"]],
                         ["alpha/0", "alpha/1", "alpha/2"])
        self.assertEqual([w["name"] for w in beta["workers"]],
                         ["beta/0", "beta/1"])
        self.assertEqual(cmdline(d.pid), "mprocd: supervisor")
        for p in st["pools"]:
            self.assertFalse(p["degraded"])
            self.assertEqual(p["restarts"], 0)
            for w in p["workers"]:
                self.assertEqual(w["state"], "idle")
                self.assertEqual(w["restarts"], 0)
                self.assertEqual(cmdline(w["pid"]),
                                 "mprocd: worker " + w["name"])
                self.assertEqual(ppid(w["pid"]), d.pid)

    def test_worker_has_no_stray_descriptors(self):
        d = self.daemon()
        for pid in d.worker_pids():
            fds = {int(fd): os.readlink("/proc/%d/fd/%s" % (pid, fd))
                   for fd in os.listdir("/proc/%d/fd" % pid)}
            # Its own signalfd (for SIGCHLD and SIGTERM) is the only
            # descriptor it opened itself.
            own = [fd for fd, target in fds.items()
                   if target == "anon_inode:[signalfd]"]
            self.assertEqual(len(own), 1, fds)
            # stdin (/dev/null), stdout, stderr, and its socket to mprocd.
            self.assertEqual(sorted(set(fds) - set(own)), [0, 1, 2, 3])
            self.assertTrue(fds[3].startswith("socket:"), fds)

    def test_killed_worker_is_replaced_and_counted(self):
        d = self.daemon(TWO_POOLS)
        old = d.worker("alpha/1")["pid"]
        os.kill(old, signal.SIGKILL)
        w = wait_for(lambda: (lambda w: w["state"] == "idle" and
                              w.get("pid") != old and w)(
                                  d.worker("alpha/1")),
                     "alpha/1 to be replaced")
        self.assertEqual(w["restarts"], 1)
        self.assertEqual(cmdline(w["pid"]), "mprocd: worker alpha/1")
        self.assertFalse(alive(old), "the dead worker was not reaped")
        alpha = d.pool("alpha")
        self.assertEqual(alpha["restarts"], 1)
        self.assertFalse(alpha["degraded"])
        # Nobody else was touched.
        self.assertEqual(d.pool("beta")["restarts"], 0)
        self.assertEqual(d.worker("alpha/0")["restarts"], 0)
        self.assertRegex(d.log(), r'warning worker=alpha/1 msg="worker '
                         r'exited" why=crash signal=9 worker_pid=%d '
                         r'restart_delay=100ms\n' % old)

    def test_crash_loop_backs_off_and_degrades(self):
        d = self.daemon(conf(level="info", loop=(
            "workers = 1; restart_delay = 100ms; restart_delay_max = 800ms; "
            "crash_limit = 4; crash_interval = 60s")))
        expected = [0.1, 0.2, 0.4, 0.8, 0.8]
        gaps = []
        for i, delay in enumerate(expected):
            pid = d.worker("loop/0")["pid"]
            os.kill(pid, signal.SIGKILL)
            t0 = time.monotonic()
            wait_for(lambda: d.worker("loop/0").get("pid") not in
                     (None, pid), "loop/0 restart %d" % (i + 1),
                     interval=0.005)
            gaps.append(time.monotonic() - t0)
            if i == 3:
                self.assertFalse(d.pool("loop")["degraded"],
                                 "degraded after only crash_limit deaths")
        # Restarts are spaced by at least the growing delay.
        for gap, delay in zip(gaps, expected):
            self.assertGreaterEqual(gap, delay * 0.95,
                                    "restart came too soon: gaps %s" % gaps)
        waits = re.findall(r'why=crash .*restart_delay=(\d+ms)', d.log())
        self.assertEqual(waits, ["100ms", "200ms", "400ms", "800ms",
                                 "800ms"])
        pool = d.pool("loop")
        self.assertTrue(pool["degraded"])
        self.assertEqual(pool["restarts"], 5)
        self.assertRegex(d.log(), r'warning pool=loop msg="pool degraded: '
                         r'[^"]*" deaths=5 crash_limit=4 crash_interval=1min '
                         r'restart_delay_max=800ms\n')

    def test_no_busy_loop_while_backing_off(self):
        d = self.daemon(conf(level="info",
                             loop="workers = 1; restart_delay = 3s"))
        pid = d.worker("loop/0")["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: d.worker("loop/0")["state"] == "backoff",
                 "the worker to be in backoff")
        before = cpu_ticks(d.pid)
        time.sleep(1.5)
        used = cpu_ticks(d.pid) - before
        # A busy loop burns ~150 ticks here; an idle loop burns none.
        self.assertLessEqual(used, 10, "supervisor spun while waiting")
        self.assertEqual(d.worker("loop/0")["state"], "backoff")

    def test_degraded_pool_recovers(self):
        d = self.daemon(conf(level="info", loop=(
            "workers = 1; restart_delay = 10ms; restart_delay_max = 50ms; "
            "crash_limit = 1; crash_interval = 1s")))
        for i in range(2):
            pid = d.worker("loop/0")["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: d.worker("loop/0").get("pid") not in
                     (None, pid) and d.worker("loop/0")["state"] == "idle",
                     "restart %d" % (i + 1))
        self.assertTrue(d.pool("loop")["degraded"])
        wait_for(lambda: not d.pool("loop")["degraded"],
                 "the pool to recover after crash_interval")
        self.assertIn('msg="pool recovered', d.log())


class TestSignalsAndSystemd(DaemonTestCase):

    def test_sigusr1_reopens_log_and_spares_workers(self):
        d = self.daemon(start=False)
        logfile = os.path.join(d.dir, "file.log")
        with open(d.conf, "w") as f:
            f.write(conf("log_target = file:" + logfile, level="info", a=8))
        # Signal as soon as the socket exists: workers may still start.
        d.start(wait=False)
        wait_for(lambda: os.path.exists(d.sock), "the socket")
        d.signal(signal.SIGUSR1)
        d.wait_ready()
        os.rename(logfile, logfile + ".1")
        d.signal(signal.SIGUSR1)
        victim = d.worker("a/3")["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: os.path.exists(logfile) and
                 "worker_pid=%d " % victim in open(logfile).read(),
                 "the record to go to the new file")
        with open(logfile + ".1") as f:
            old = f.read()
        self.assertNotIn("worker_pid=%d " % victim, old)
        self.assertNotIn("SIGUSR1", old)
        self.assertEqual(d.pool("a")["restarts"], 1)

    def test_closed_stdio(self):
        d = self.daemon(start=False)
        d.start(stdio=False, preexec_fn=lambda: [os.close(fd)
                                                 for fd in (0, 1, 2)])
        for pid in d.worker_pids() + [d.pid]:
            for fd in (0, 1, 2):
                self.assertEqual(os.readlink("/proc/%d/fd/%d" % (pid, fd)),
                                 "/dev/null")
        self.assertEqual(d.stop(), 0)

    def test_sd_notify(self):
        d = self.daemon(conf(level="info", loop=(
            "workers = 2; restart_delay = 10ms; restart_delay_max = 10ms; "
            "crash_limit = 0")), start=False)
        n = Notify(self, d)
        d.start(env={"NOTIFY_SOCKET": n.path})
        msgs = [n.text()]
        while "READY=1" not in msgs[-1]:
            msgs.append(n.text())
        self.assertIn("STATUS=1 pools, 2 workers, 0 busy, 0 queued", msgs)
        # systemctl reload: RELOADING=1 with the monotonic time, then ready.
        t0 = time.monotonic()
        d.signal(signal.SIGHUP)
        msg = n.text()
        m = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", msg)
        self.assertTrue(m, msg)
        self.assertLess(abs(int(m.group(1)) / 1e6 - t0), 5)
        self.assertEqual(n.text(), "READY=1")
        self.assertTrue(alive(d.pid))
        os.kill(d.worker("loop/0")["pid"], signal.SIGKILL)
        while "degraded" not in msgs[-1]:
            msgs.append(n.text())
        self.assertRegex(msgs[-1], r"^STATUS=1 pools, \d workers, 0 busy, "
                         r"0 queued; pool loop degraded$")
        d.stop()
        while "STOPPING=1" not in msgs[-1]:
            msgs.append(n.text())

    def test_watchdog_pinged_from_the_loop(self):
        d = self.daemon(start=False)
        n = Notify(self, d)

        def pings(count):
            got = []
            while len(got) < count:
                t, m = n.recv(5)
                if m == "WATCHDOG=1":
                    got.append(t)
            return got

        d.start(env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"})
        # Every half interval (200ms), always within the interval.
        got = pings(8)
        gaps = [b - a for a, b in zip(got, got[1:])]
        self.assertTrue(all(0.15 < g < 0.4 for g in gaps), gaps)
        # A frozen loop stops pinging (so systemd would kill it); thawed,
        # it pings again.
        os.kill(d.pid, signal.SIGSTOP)
        while n.recv(0.5) is not None:  # what was sent before the stop
            pass
        self.assertIsNone(n.recv(1.0))
        os.kill(d.pid, signal.SIGCONT)
        pings(2)
        # Workers and jobs do not ping: only the supervisor has the socket.
        for pid in d.worker_pids():
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            self.assertFalse([e for e in env if e.startswith(
                (b"NOTIFY_SOCKET=", b"WATCHDOG_USEC="))], env)
        self.assertEqual(d.stop(), 0)

    def test_status_follows_jobs_at_most_once_a_second(self):
        d = self.daemon(conf(level="info", p=2), start=False)
        n = Notify(self, d)
        d.start(env={"NOTIFY_SOCKET": n.path})
        while "READY=1" not in n.text():
            pass
        ready = len(n.msgs)
        c = d.connect()
        for i in range(40):
            c.send("io.mprocd.Submit", {"argv": ["sleep", "0.1"]})
        ids = [c.recv()["parameters"]["id"] for i in range(40)]
        c.call("io.mprocd.Wait", {"ids": ids, "timeout_sec": 60})
        # The last change is sent too, once its second has passed.
        while n.text() != "STATUS=1 pools, 2 workers, 0 busy, 0 queued":
            pass
        status = [(t, m) for t, m in n.msgs[ready:]
                  if m.startswith("STATUS=")]
        self.assertTrue([m for t, m in status
                         if re.search(r" 2 busy, [1-9]\d* queued$", m)],
                        "no STATUS= showed the jobs: %s" % status)
        times = [t for t, m in status]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertTrue(all(g >= 0.95 for g in gaps),
                        "STATUS= more often than once a second: %s" % status)
        self.assertEqual(d.stop(), 0)


class TestShutdown(DaemonTestCase):

    def check_clean_exit(self, sig):
        d = self.daemon(TWO_POOLS)
        pids = d.worker_pids()
        self.assertEqual(len(pids), 5)
        d.signal(sig)
        self.assertEqual(d.wait_exit(), 0)
        for pid in pids:
            self.assertFalse(alive(pid), "worker %d left behind" % pid)
        self.assertFalse(os.path.exists(d.sock), "socket left behind")
        self.assertIn("all workers stopped, exiting", d.log())

    def test_sigterm(self):
        self.check_clean_exit(signal.SIGTERM)

    def test_sigint(self):
        self.check_clean_exit(signal.SIGINT)

    def test_ctrl_c_to_process_group(self):
        """Ctrl-C signals every process of the group at once: workers leave
        it to the supervisor, so none of them is taken for a crash."""
        d = self.daemon(TWO_POOLS, start=False)
        d.start(wait=False, new_group=True)
        d.wait_ready()
        pids = d.worker_pids()
        os.killpg(d.pid, signal.SIGINT)
        self.assertEqual(d.wait_exit(), 0)
        for pid in pids:
            self.assertFalse(alive(pid), "worker %d left behind" % pid)
        self.assertNotIn("why=crash", d.log())
        # SIGTERM from the supervisor ends an idle worker cleanly.
        self.assertEqual(d.log().count('msg="worker exited" why=shutdown '
                                       'status=0 '), 5)

    def test_stuck_worker_is_killed_after_grace(self):
        d = self.daemon(conf(level="info",
                             default="workers = 2; kill_grace = 300ms"))
        stuck = d.worker("default/0")["pid"]
        other = d.worker("default/1")["pid"]
        Frozen(stuck)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)
        self.assertFalse(alive(stuck))
        self.assertFalse(alive(other))
        self.assertIn('still running after SIGTERM, sending SIGKILL" '
                      'worker_pid=%d kill_grace=300ms\n' % stuck, d.log())

    def test_kill9_of_supervisor_takes_workers_with_it(self):
        d = self.daemon(TWO_POOLS)
        pids = d.worker_pids()
        d.signal(signal.SIGKILL)
        d.proc.wait()
        for pid in pids:
            wait_for(lambda: not alive(pid),
                     "worker %d to die with the supervisor" % pid)

    def test_second_sigterm_does_not_abort_shutdown(self):
        d = self.daemon(conf(level="info",
                             default="workers = 1; kill_grace = 500ms"))
        stuck = d.worker("default/0")["pid"]
        Frozen(stuck)
        d.signal(signal.SIGTERM)
        wait_for(lambda: "shutting down" in d.log(), "shutdown to begin")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)
        self.assertFalse(alive(stuck))
        self.assertIn('again: killing running jobs now" workers=1 ', d.log())


if __name__ == "__main__":
    main()
