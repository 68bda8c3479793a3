"""mprocd's command line and its configuration file, as a user meets them."""

import os
import re
import subprocess
import tempfile
import unittest

from mprocd_test import MPROCD, DaemonTestCase, conf, main

SRCDIR = os.environ.get("MPROCD_SRCDIR", ".")


def run(*args, env=None):
    return subprocess.run([MPROCD] + list(args), capture_output=True,
                          text=True, timeout=30, env=env)


def write(text):
    fd, path = tempfile.mkstemp(suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class TestCommandLine(unittest.TestCase):

    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: mprocd [-c FILE]", r.stdout)
        self.assertIn("--check-config", r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^mprocd \d+\.\d+\.\d+\n$")

    def test_bad_usage(self):
        r = run("--bogus")
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage:", r.stderr)
        r = run("extra")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unexpected argument 'extra'", r.stderr)

    def test_shipped_config_is_valid(self):
        path = os.path.join(SRCDIR, "conf", "mprocd.conf")
        r = run("--check-config", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Where it would keep its jobs: state = auto.
        self.assertRegex(r.stdout, r"^%s: OK \(state database /\S+/mprocd\.db, "
                         r"durability crash\)\n$" % re.escape(path))

    def test_shipped_config_states_every_default(self):
        """conf/mprocd.conf shows each key with its real default."""
        path = os.path.join(SRCDIR, "conf", "mprocd.conf")
        empty = write("")
        self.addCleanup(os.unlink, empty)
        env = dict(os.environ, XDG_RUNTIME_DIR="/run/user/test")
        defaults = run("--print-config", "-c", empty, env=env).stdout
        shipped = run("--print-config", "-c", path, env=env).stdout
        self.assertEqual(shipped, defaults)
        with open(path) as f:
            text = f.read()
        for line in defaults.splitlines():
            if " = " in line and not line.startswith("socket ="):
                key = line.split(" = ")[0]
                self.assertIn("\n" + key + " = ", text,
                              "%s is missing from conf/mprocd.conf" % key)

    def test_check_config_reports_every_error(self):
        path = write("[mprocd]\nlog_level = loud\n[pool a]\nwokers = 2\n"
                     "restart_delay = soon\n[pool a]\n")
        self.addCleanup(os.unlink, path)
        r = run("--check-config", "-c", path)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 4, r.stderr)
        self.assertTrue(lines[0].startswith("mprocd: %s:2: log_level = "
                                            "loud: unknown log level" % path))
        self.assertIn("%s:4: unknown key 'wokers' in [pool a]; did you mean "
                      "'workers'?" % path, lines[1])
        self.assertIn("%s:5: restart_delay = soon: not a number" % path,
                      lines[2])
        self.assertIn("%s:6: pool 'a' defined twice (first at line 3)"
                      % path, lines[3])

    def test_missing_config(self):
        r = run("--check-config", "-c", "/nonexistent.conf")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.conf: No such file or directory",
                      r.stderr)

    def test_print_config_is_a_valid_config(self):
        path = write("[pool a]\nworkers = 3\nrestart_delay = 1.5s\n"
                     "[pool b]\nworkers = auto\n")
        self.addCleanup(os.unlink, path)
        r = run("--print-config", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[pool a]\nworkers = 3\n", r.stdout)
        self.assertIn("restart_delay = 1500ms\n", r.stdout)
        self.assertIn("[pool b]\nworkers = auto\n", r.stdout)
        self.assertIn("kill_grace = 5s\n", r.stdout)
        printed = write(r.stdout)
        self.addCleanup(os.unlink, printed)
        again = run("--print-config", "-c", printed)
        self.assertEqual(again.stdout, r.stdout)

    def test_no_socket_without_runtime_dir(self):
        path = write("")
        os.chmod(path, 0o644)
        self.addCleanup(os.unlink, path)
        env = dict(os.environ)
        env.pop("XDG_RUNTIME_DIR", None)
        prefix = []
        if os.geteuid() == 0:
            # Root's default is the system socket: try it as nobody.
            prefix = ["setpriv", "--reuid=65534", "--regid=65534",
                      "--clear-groups", "--"]
        r = subprocess.run(prefix + [os.path.abspath(MPROCD), "-c", path],
                           capture_output=True, text=True, timeout=30,
                           env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("XDG_RUNTIME_DIR is not set", r.stderr)


class TestStartup(DaemonTestCase):

    def test_bad_config_does_not_start(self):
        d = self.daemon("[pool a]\nworkers = 0\n", start=False)
        d.start(wait=False)
        self.assertEqual(d.proc.wait(20), 1)
        log = d.log()
        self.assertIn("%s:2: workers = 0: too small" % d.conf, log)
        self.assertIn("not starting: fix %s" % d.conf, log)
        self.assertFalse(os.path.exists(d.sock))

    def test_config_without_pools_gets_default(self):
        d = self.daemon("[mprocd]\nlog_target = stderr\n")
        pools = d.status()["pools"]
        self.assertEqual([p["name"] for p in pools], ["default"])
        self.assertEqual(pools[0]["size"], 4)

    def test_workers_auto(self):
        d = self.daemon(conf(level="info", cpu="workers = auto"))
        self.assertEqual(d.pool("cpu")["size"], os.cpu_count())

    def test_log_level_filters(self):
        d = self.daemon(conf(level="warning", a=1))
        d.stop()
        self.assertNotIn(" info ", d.log())

    def test_log_file_target(self):
        d = self.daemon(start=False)
        logfile = os.path.join(d.dir, "file.log")
        with open(d.conf, "w") as f:
            f.write(conf("log_target = file:" + logfile, level="info", a=2))
        d.start()
        self.assertEqual(d.stop(), 0)
        with open(logfile) as f:
            text = f.read()
        self.assertIn('info worker=a/0 msg="worker started', text)
        self.assertIn('info worker=a/1 msg="worker started', text)
        self.assertIn('msg="all workers stopped, exiting"', text)


if __name__ == "__main__":
    main()
