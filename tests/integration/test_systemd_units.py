"""The shipped systemd units, checked offline with systemd-analyze (the
tests under a real systemd come with the systemd work)."""

import os
import shutil
import subprocess
import tempfile
import unittest

import signal

from mprocd_test import MPROCD, Conn, alive, conf, main, wait_for

BUILDDIR = os.environ.get("MPROCD_BUILDDIR", ".")
SRCDIR = os.environ.get("MPROCD_SRCDIR", ".")


class TestUnits(unittest.TestCase):

    def setUp(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("SKIPPED: systemd-analyze is not installed")
        self.dir = tempfile.mkdtemp(prefix="mprocd-units-")
        self.addCleanup(shutil.rmtree, self.dir)

    def unit(self, built, src, user=False):
        """A unit of this build, its ExecStart pointed at our mprocd."""
        path = os.path.join(BUILDDIR if built else SRCDIR, "systemd",
                            "user" if user else "", src)
        with open(path) as f:
            text = f.read()
        sbin = [l for l in text.splitlines() if l.startswith("ExecStart=")]
        if sbin:
            exe = sbin[0].split("=", 1)[1].split()[0]
            text = text.replace(exe, os.path.abspath(MPROCD))
            self.assertNotIn("@", sbin[0], "unsubstituted path in unit")
        out = os.path.join(self.dir, src)
        with open(out, "w") as f:
            f.write(text)
        return out

    def verify(self, *units, user=False):
        # The man pages are not installed where verify looks for them.
        args = ["systemd-analyze", "verify", "--man=no"]
        if user:
            args.append("--user")
        r = subprocess.run(args + list(units), capture_output=True,
                           text=True, timeout=60,
                           env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice",
                                    XDG_RUNTIME_DIR=self.dir))
        # verify exits 0 on warnings: any output at all is a failure.
        self.assertEqual(r.stdout + r.stderr, "")
        self.assertEqual(r.returncode, 0)

    def test_system_units_verify_silently(self):
        self.verify(self.unit(True, "mprocd.service"),
                    self.unit(False, "mprocd.socket"))

    def test_user_units_verify_silently(self):
        self.verify(self.unit(True, "mprocd.service", user=True),
                    self.unit(False, "mprocd.socket", user=True), user=True)

    def test_service_is_notify_and_not_root(self):
        with open(self.unit(True, "mprocd.service")) as f:
            text = f.read()
        for line in ("Type=notify", "User=mprocd", "RuntimeDirectory=mprocd",
                     "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn("\n" + line + "\n", text)



class TestSocketActivation(unittest.TestCase):

    def test_passed_socket_is_used(self):
        if shutil.which("systemd-socket-activate") is None:
            self.skipTest("SKIPPED: systemd-socket-activate is not installed")
        d = tempfile.mkdtemp(prefix="mprocd-sa-")
        self.addCleanup(shutil.rmtree, d)
        sock = os.path.join(d, "activated.sock")
        path = os.path.join(d, "mprocd.conf")
        with open(path, "w") as f:
            f.write(conf(level="info", a=1))
        log = open(os.path.join(d, "log"), "w+")
        self.addCleanup(log.close)
        # No socket= and no -s: only systemd's socket can be used, even
        # for a user without XDG_RUNTIME_DIR.
        env = dict(os.environ)
        env.pop("XDG_RUNTIME_DIR", None)
        p = subprocess.Popen(["systemd-socket-activate", "-l", sock,
                              os.path.abspath(MPROCD), "-c", path],
                             stdout=log, stderr=log, env=env)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        # The path exists between bind() and listen(): wait for a connect.
        def connect():
            try:
                return Conn(sock)
            except (FileNotFoundError, ConnectionRefusedError):
                return None
        c = wait_for(connect, "the activation socket")
        self.addCleanup(c.close)
        st = c.call("io.mprocd.Status")
        self.assertEqual(st["pid"], p.pid)    # execed in place
        self.assertEqual(st["pools"][0]["name"], "a")
        workers = [w["pid"] for w in st["pools"][0]["workers"]
                   if "pid" in w]
        for pid in workers:
            with open("/proc/%d/environ" % pid, "rb") as f:
                self.assertNotIn(b"LISTEN_FDS=", f.read())
        p.send_signal(signal.SIGTERM)
        rc = p.wait(20)
        log.seek(0)
        self.assertEqual(rc, 0, log.read())
        for pid in workers:
            self.assertFalse(alive(pid))
        log.seek(0)
        self.assertIn("listening on the socket systemd passed", log.read())
        # systemd's socket is systemd's: left in place for the next start.
        self.assertTrue(os.path.exists(sock), "mprocd removed the socket")


if __name__ == "__main__":
    main()
