"""make install puts python/mprocd into the site directory configure chose
(pythondir), byte-compiled, and it imports from there, away from the
source tree: the client, the Pool and the program side."""

import os
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("MPROCD_BUILDDIR")


class TestInstall(unittest.TestCase):

    def test_make_install_of_the_package(self):
        if not BUILD:
            self.skipTest("SKIPPED: MPROCD_BUILDDIR is not set (make check "
                          "sets it)")
        with tempfile.TemporaryDirectory(prefix="mprocd-install-") as dest:
            r = subprocess.run(
                ["make", "-s", "-C", BUILD, "install-pkgpythonPYTHON",
                 "DESTDIR=" + dest], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            found = [root for root, dirs, files in os.walk(dest)
                     if os.path.basename(root) == "mprocd" and
                     "__init__.py" in files]
            self.assertEqual(len(found), 1, found)
            pkg = found[0]
            self.assertEqual(
                sorted(f for f in os.listdir(pkg) if f.endswith(".py")),
                ["__init__.py", "client.py", "pool.py", "varlink.py",
                 "worker.py"])
            site = os.path.dirname(pkg)
            self.assertRegex(site, r"/(site|dist)-packages$")
            self.assertTrue(os.path.isdir(os.path.join(pkg, "__pycache__")))
            env = dict(os.environ, PYTHONPATH=site)
            r = subprocess.run(
                [sys.executable, "-c",
                 "import mprocd, mprocd.worker; "
                 "print(mprocd.__file__); "
                 "print(mprocd.Client, mprocd.Pool, mprocd.JobError)"],
                capture_output=True, text=True, env=env, cwd=dest)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith(pkg + "/__init__.py"),
                            r.stdout)
            # The program side runs from there too.
            r = subprocess.run([sys.executable, "-m", "mprocd.worker",
                                "--help"], capture_output=True, text=True,
                               env=env, cwd=dest)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("python3 -m mprocd.worker MODULE", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
