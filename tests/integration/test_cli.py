"""mprocctl as a user meets it."""

import json
import os
import re
import subprocess
import unittest

from mprocd_test import MPROCCTL, DaemonTestCase, conf, main


def ctl(*args, env=None):
    return subprocess.run([MPROCCTL] + list(args), capture_output=True,
                          text=True, timeout=30, env=env)


def table_pid(out):
    """The pid in the first line of status's table ("mprocd V, pid N, ..."),
    or None: which mprocd answered."""
    m = re.match(r"mprocd \S+, pid (\d+),", out)
    return m and int(m.group(1))


class TestMprocctl(DaemonTestCase):

    def test_status_table(self):
        d = self.daemon(conf(level="info", web=2))
        r = ctl("-s", d.sock, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(table_pid(r.stdout), d.pid, r.stdout)
        self.assertIn("pool web: 2 workers, 0 queued", r.stdout)
        for w in d.status()["pools"][0]["workers"]:
            self.assertRegex(r.stdout, r"\n  %s +%d idle " % (w["name"],
                                                              w["pid"]))

    def test_status_json(self):
        d = self.daemon()
        r = ctl("--json", "-s", d.sock, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(st["pid"], d.pid)
        self.assertEqual(st["pools"][0]["name"], "default")

    def test_socket_from_environment(self):
        d = self.daemon()
        r = ctl("status", env=dict(os.environ, MPROCD_SOCKET=d.sock))
        self.assertEqual(r.returncode, 0, r.stderr)
        # Not another mprocd, on the default socket.
        self.assertEqual(table_pid(r.stdout), d.pid, r.stdout)

    def test_cannot_connect(self):
        r = ctl("-s", "/nonexistent/mprocd.sock", "status")
        self.assertEqual(r.returncode, 125)
        self.assertEqual(len(r.stderr.splitlines()), 1)
        self.assertIn("cannot connect to /nonexistent/mprocd.sock", r.stderr)
        self.assertIn("is mprocd running?", r.stderr)

    def test_usage_errors(self):
        r = ctl("frobnicate")
        self.assertEqual(r.returncode, 125)
        self.assertIn("unknown command 'frobnicate'", r.stderr)
        r = ctl("status", "extra")
        self.assertEqual(r.returncode, 125)
        self.assertIn("usage: mprocctl status", r.stderr)
        r = ctl()
        self.assertEqual(r.returncode, 125)

    def test_help(self):
        r = ctl("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("status", r.stdout)
        r = ctl("status", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: mprocctl status", r.stdout)


if __name__ == "__main__":
    main()
