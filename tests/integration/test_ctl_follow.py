#!/usr/bin/env python3
"""mprocctl submit -w and mprocctl follow in a real terminal (a pty, with
mprocctl as its session's foreground process): the job's output appears
while the job runs, exit statuses pass through, Ctrl-C on submit -w
cancels the job and on follow only stops following."""

import os
import pty
import select
import signal
import time

from mprocd_test import (MPROCCTL, TIMEOUT, DaemonTestCase, conf, main,
                         wait_for)

# Says "first", waits for a file, says "second" on stderr and exits 3.
GATED = ('echo first; while [ ! -e "$0" ]; do sleep 0.02; done; '
         'echo second >&2; exit 3')


class Terminal:
    """mprocctl ARGS on a pty of its own, as if typed at a shell."""

    def __init__(self, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execv(MPROCCTL, [MPROCCTL] + list(args))
            finally:
                os._exit(127)
        self.out = b""
        self.status = None

    def read_until(self, text, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while text not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal: %r"
                                     % (text, self.out))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # EIO: the other side is closed
                    data = b""
                if not data:
                    raise AssertionError("terminal closed before %r: %r"
                                         % (text, self.out))
                self.out += data
        return self.out

    def interrupt(self):
        """Ctrl-C, typed."""
        os.write(self.fd, b"\x03")

    def wait(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                r, _, _ = select.select([self.fd], [], [], 0.05)
                if r:
                    self.out += os.read(self.fd, 4096)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                os.close(self.fd)
                return self.status
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError("mprocctl did not exit: %r" % self.out)


class TestTerminal(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(conf())
        self.gate = os.path.join(self.d.dir, "gate")

    def job(self, jid):
        return self.d.call("io.mprocd.Get", {"id": jid})["job"]

    def only_job(self):
        jobs = self.d.call("io.mprocd.List")["jobs"]
        self.assertEqual(len(jobs), 1)
        return jobs[0]["id"]

    def test_submit_w_streams(self):
        t = Terminal("-s", self.d.sock, "submit", "-w", "--", "sh", "-c",
                     GATED, self.gate)
        t.read_until(b"first\r\n")
        # Shown while the job still runs (it waits for the gate).
        self.assertEqual(self.job(self.only_job())["state"], "running")
        open(self.gate, "w").close()
        self.assertEqual(t.wait(), 3)
        self.assertEqual(t.out, b"first\r\nsecond\r\n")

    def test_follow_streams_from_the_start(self):
        jid = self.d.call("io.mprocd.Submit", {
            "argv": ["sh", "-c", GATED, self.gate]})["id"]
        wait_for(lambda: self.d.call("io.mprocd.Get", {"id": jid})["stdout"],
                 "the first line")
        t = Terminal("-s", self.d.sock, "follow", str(jid))
        t.read_until(b"first\r\n")
        self.assertEqual(self.job(jid)["state"], "running")
        open(self.gate, "w").close()
        self.assertEqual(t.wait(), 3)
        self.assertEqual(t.out, b"first\r\nsecond\r\n")
        # A finished job: its output, its status, at once.
        t = Terminal("-s", self.d.sock, "follow", str(jid))
        self.assertEqual(t.wait(), 3)
        self.assertEqual(t.out, b"first\r\nsecond\r\n")

    def test_ctrl_c_on_submit_w_cancels(self):
        t = Terminal("-s", self.d.sock, "submit", "-w", "--", "sh", "-c",
                     GATED, self.gate)
        t.read_until(b"first\r\n")
        jid = self.only_job()
        t.interrupt()
        self.assertEqual(t.wait(), 128 + signal.SIGINT)
        self.assertIn(b"cancelled job %d" % jid, t.out)
        self.assertEqual(self.job(jid)["state"], "cancelled")

    def test_ctrl_c_on_follow_leaves_the_job(self):
        jid = self.d.call("io.mprocd.Submit", {
            "argv": ["sh", "-c", GATED, self.gate]})["id"]
        t = Terminal("-s", self.d.sock, "follow", str(jid))
        t.read_until(b"first\r\n")
        t.interrupt()
        self.assertEqual(t.wait(), -signal.SIGINT)
        self.assertEqual(self.job(jid)["state"], "running")
        open(self.gate, "w").close()
        jobs = self.d.call("io.mprocd.Wait", {"ids": [jid]})["jobs"]
        self.assertEqual(jobs[0]["exit_status"], 3)

    def test_follow_errors(self):
        t = Terminal("-s", self.d.sock, "follow", "999")
        self.assertEqual(t.wait(), 125)
        self.assertIn(b"999", t.out)
        t = Terminal("-s", self.d.sock, "follow")
        self.assertEqual(t.wait(), 125)
        self.assertIn(b"usage: mprocctl follow ID", t.out)


if __name__ == "__main__":
    main()
