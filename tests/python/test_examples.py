"""The programs in examples/, each run as a subprocess against a real mprocd
started with the pools of examples/mprocd.conf (the shipped file, with
python3 in its programs replaced by the Python running the tests), as
examples/README.md says to run them; their output is checked."""

import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("MPROCD_SRCDIR",
                                        os.path.join(HERE, "..", "..")))
PYDIR = os.path.join(SRCDIR, "python")
EXAMPLES = os.path.join(SRCDIR, "examples")
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

import mprocd_test as mt  # noqa: E402


def config():
    """examples/mprocd.conf, logging to stderr, its programs run by this
    Python."""
    with open(os.path.join(EXAMPLES, "mprocd.conf")) as f:
        text = f.read()
    text = re.sub(r"^program = python3 ", "program = %s " % sys.executable,
                  text, flags=re.M)
    return text.replace("[mprocd]\n", "[mprocd]\nlog_target = stderr\n", 1)


class TestExamples(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.d = mt.Daemon(config())
        cls.addClassCleanup(cls.d.cleanup)
        cls.d.start(env={"PYTHONPATH": os.pathsep.join([PYDIR, EXAMPLES])})

    def run_example(self, *argv, stdin=None, pipe_from=None):
        """An example's stdout; fails unless it exits 0."""
        env = dict(os.environ, MPROCD_SOCKET=self.d.sock, PYTHONPATH=PYDIR)
        p = subprocess.run([sys.executable, os.path.join(EXAMPLES, argv[0])]
                           + list(argv[1:]), input=stdin,
                           capture_output=True, text=True, env=env,
                           cwd=SRCDIR, timeout=mt.TIMEOUT * 3)
        self.assertEqual(p.returncode, 0, "%s failed:\n%s%s\nlog:\n%s" % (
            argv[0], p.stdout, p.stderr, self.d.log()[-3000:]))
        return p.stdout

    def test_pool_map(self):
        self.assertEqual(self.run_example("pool_map.py"), "[34, 51, 78]\n")
        self.assertEqual(self.run_example("pool_map.py", "-p", "calc"),
                         "[34, 51, 78]\n")

    def test_web_fanout(self):
        out = self.run_example("web_fanout.py").splitlines()
        names = ["fetch_profile", "fetch_orders", "fetch_recommendations",
                 "fetch_weather", "render_chart", "check_fraud"]
        self.assertEqual([line.split()[0] for line in out[:6]], names)
        results = [json.loads(line.split(None, 1)[1]) for line in out[:6]]
        self.assertEqual(results[0], {"user": "ann", "name": "Ann"})
        self.assertEqual(results[1], ["order-ann-1", "order-ann-2"])
        self.assertEqual(results[3], {"city": "Lisbon", "sky": "clear"})
        self.assertRegex(results[5]["checked_by"], r"^web/\d$")
        m = re.fullmatch(r"6 calls in ([\d.]+)s", out[6])
        self.assertTrue(m, out)
        # Six calls of 0.5s each, side by side: well under their 3s sum.
        self.assertLess(float(m.group(1)), 2.5)

    def test_worker_names(self):
        out = self.run_example("worker_names.py").splitlines()
        self.assertEqual(len(out), 8, out)
        for i, line in enumerate(out[:6]):
            self.assertRegex(line, r"^names/[0-2] got %d \(pid \d+\)$" % i)
        self.assertRegex(out[6], r"^workers:( names/[0-2])+$")
        # Three workers, six calls of 0.2s at once: more than one worker.
        self.assertGreater(len(out[6].split()), 2)
        self.assertRegex(out[7], r"^job \d+ printed: names/[0-2] got "
                         r"'hello'$")

    def test_producer_consumer(self):
        produced = self.run_example("producer.py", "5")
        lines = produced.split("\n")[:-1]
        self.assertEqual([line.split()[1] for line in lines],
                         ["0", "1", "2", "3", "4"])
        ids = [int(line.split()[0]) for line in lines]
        # The producer has gone; its jobs are mprocd's.
        out = self.run_example("consumer.py", stdin=produced)
        self.assertEqual(out.splitlines(), [
            "job %d: slow_square(%d) = %d" % (i, n, n * n)
            for n, i in enumerate(ids)])
        # Ids given as arguments, jobs long finished.
        out = self.run_example("consumer.py", *map(str, ids[:2]))
        self.assertEqual(out.splitlines(), [
            "job %d: slow_square() = %d" % (i, n * n)
            for n, i in enumerate(ids[:2])])

    def test_producer_consumer_piped(self):
        """As README.md has it: producer.py 5 | consumer.py, the consumer
        reading each id as the producer prints it."""
        env = dict(os.environ, MPROCD_SOCKET=self.d.sock, PYTHONPATH=PYDIR)
        t0 = time.monotonic()
        p = subprocess.run(
            "%s examples/producer.py 5 | %s examples/consumer.py"
            % (sys.executable, sys.executable), shell=True, env=env,
            cwd=SRCDIR, capture_output=True, text=True,
            timeout=mt.TIMEOUT * 3)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([re.sub(r"^job \d+: ", "", line)
                          for line in p.stdout.splitlines()],
                         ["slow_square(%d) = %d" % (n, n * n)
                          for n in range(5)])
        self.assertLess(time.monotonic() - t0, mt.TIMEOUT)

    def test_fanout(self):
        out = self.run_example("fanout.py").splitlines()
        self.assertEqual(len(out), 6, out)
        for n, line in enumerate(out):
            self.assertRegex(line, r"^job \d+ \(succeeded, exit 0\): "
                             r"result %d$" % n)


if __name__ == "__main__":
    mt.main()
