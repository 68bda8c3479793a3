"""A file log rotated by the real logrotate(8) while jobs run: with the
stanza mprocd.8 documents (rename, compress with delaycompress, SIGUSR1 in
postrotate), no record is lost, torn or duplicated."""

import glob
import gzip
import os
import re
import shutil
import subprocess
import threading

from mprocd_test import DaemonTestCase, conf, main, wait_for

JOBS = 1200
ROTATIONS = 5

# TIMESTAMP LEVEL then logfmt pairs; values bare or quoted with escapes.
RECORD = re.compile(
    r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z '
    r'(debug|info|notice|warning|error|crit)'
    r'( [a-z][a-z0-9_]*=([^ "=\\\x00-\x20\x7f]+|"([^"\\]|\\.)*"))+\n')
FIELD = re.compile(r' ([a-z][a-z0-9_]*)=([^ "]+|"(?:[^"\\]|\\.)*")')


def fields(line):
    return {k: v.strip('"') for k, v in FIELD.findall(line)}


class TestLogrotate(DaemonTestCase):

    def setUp(self):
        if shutil.which("logrotate") is None:
            self.skipTest("SKIPPED: logrotate is not installed "
                          "(apt-get install logrotate)")

    def rotate(self, rules, state):
        r = subprocess.run(["logrotate", "-f", "-s", state, rules],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_rotation_under_load_loses_nothing(self):
        d = self.daemon(start=False)
        logfile = os.path.join(d.dir, "file.log")
        with open(d.conf, "w") as f:
            f.write(conf("log_target = file:" + logfile, default=3))
        d.start()
        rules = os.path.join(d.dir, "logrotate.conf")
        state = os.path.join(d.dir, "logrotate.state")
        with open(rules, "w") as f:
            f.write("%s {\n    rotate 100\n    compress\n    delaycompress\n"
                    "    missingok\n    postrotate\n"
                    "        kill -USR1 %d\n    endscript\n}\n"
                    % (logfile, d.pid))

        ids = []
        failure = []

        def submit():
            try:
                c = d.connect()
                for i in range(JOBS):
                    c.send("io.mprocd.Submit", {"argv": ["true"]})
                for i in range(JOBS):
                    ids.append(c.recv()["parameters"]["id"])
                jobs = c.call("io.mprocd.Wait", {"ids": ids,
                                                 "timeout_sec": 120})["jobs"]
                if any(j["state"] != "succeeded" for j in jobs):
                    failure.append("a job did not succeed: %s" % jobs)
            except Exception as e:          # reported by the main thread
                failure.append(repr(e))

        t = threading.Thread(target=submit)
        t.start()
        rotations = 0
        while t.is_alive() or rotations < ROTATIONS:
            wait_for(lambda: os.path.exists(logfile), "the log file")
            self.rotate(rules, state)
            rotations += 1
            t.join(0.05)
        self.assertEqual(failure, [])
        self.assertEqual(len(ids), JOBS)
        self.assertEqual(d.stop(), 0)

        # Oldest first: file.log.N.gz ... file.log.2.gz, file.log.1, file.log.
        gz = sorted(glob.glob(logfile + ".*.gz"),
                    key=lambda p: -int(p.split(".")[-2]))
        self.assertGreaterEqual(len(gz), ROTATIONS - 2)
        texts = []
        for p in gz:
            with gzip.open(p, "rt", errors="strict") as f:
                texts.append(f.read())
        for p in (logfile + ".1", logfile):
            with open(p, errors="strict") as f:
                texts.append(f.read())

        finished, done = {}, {}
        for n, text in enumerate(texts):
            self.assertTrue(text == "" or text.endswith("\n"),
                            "file %d ends in a torn record" % n)
            for line in text.splitlines(keepends=True):
                self.assertRegex(line, RECORD)
                fl = fields(line)
                if fl.get("msg") == "job finished":
                    self.assertEqual(fl["state"], "succeeded", line)
                    finished[int(fl["job"])] = \
                        finished.get(int(fl["job"]), 0) + 1
                elif fl.get("msg") == "job done":
                    done[int(fl["job"])] = done.get(int(fl["job"]), 0) + 1
        # Every job's supervisor record and its worker's, exactly once.
        self.assertEqual(finished, {i: 1 for i in ids})
        self.assertEqual(done, {i: 1 for i in ids})
        # Records of the busy time went to several generations of the file.
        self.assertGreater(sum(1 for t in texts if "job done" in t), 2)


if __name__ == "__main__":
    main()
