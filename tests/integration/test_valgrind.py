"""The supervisor and its workers under valgrind's memcheck, through a job
workload that touches every method and the shutdown path: no invalid
access, no use of uninitialised memory, no definite leak in any process."""

import base64
import os
import re
import shutil
import signal
import unittest

from mprocd_test import (DaemonTestCase, asan_build, conf, main,
                         valgrind_problems, valgrind_reports,
                         valgrind_wrapper, wait_for)

# kill_grace: a worker under valgrind takes a while to exit (the leak
# check): do not SIGKILL it, which would leave its report unfinished.
CONFIG = conf("keep_finished = 5", default="workers = 2; kill_grace = 20s; "
              "max_output = 64K; max_jobs_per_worker = 4")


class TestValgrind(DaemonTestCase):

    def setUp(self):
        self.valgrind = shutil.which("valgrind")
        if self.valgrind is None:
            raise unittest.SkipTest("SKIPPED: valgrind is not installed "
                                    "(apt-get install valgrind)")
        if asan_build():
            raise unittest.SkipTest(
                "SKIPPED: this mprocd is built with AddressSanitizer, "
                "which valgrind cannot run; the plain build runs it")

    def test_clean_under_memcheck(self):
        d = self.daemon(CONFIG, start=False)
        d.start(wrapper=valgrind_wrapper(d.dir))
        c = d.connect()
        ids = []
        for i in range(12):
            ids.append(c.call("io.mprocd.Submit", {
                "argv": ["sh", "-c", "head -c 100000 /dev/zero; cat; "
                         "echo err >&2; exit %d" % (i % 2)],
                "stdin": base64.b64encode(b"in\n").decode(),
                "env": ["A=%d" % i], "name": "n%d" % i})["id"])
        ids.append(c.call("io.mprocd.Submit",
                          {"argv": ["nonexistent"]})["id"])
        jobs = c.call("io.mprocd.Wait", {"ids": ids})["jobs"]
        self.assertEqual([j["state"] for j in jobs],
                         ["succeeded", "failed"] * 6 + ["failed"])
        got = c.call("io.mprocd.Get", {"id": ids[-2]})
        self.assertTrue(got["truncated"])
        slow = c.call("io.mprocd.Submit",
                      {"argv": ["sleep", "30"], "timeout_sec": 0.2})["id"]
        c.call("io.mprocd.Wait", {"ids": [slow]})
        # Signals are sent once the jobs run: a signal that reaches a child
        # still between fork and exec under valgrind may be lost.
        started = os.path.join(d.dir, "started")
        running = ["sh", "-c", 'touch "$1"; exec sleep 30', "sh", started]
        victim = c.call("io.mprocd.Submit", {"argv": running})["id"]
        wait_for(lambda: os.path.exists(started), "the job to start")
        os.unlink(started)
        self.assertEqual(c.call("io.mprocd.Cancel", {"id": victim})["job"]
                         ["state"], "cancelled")
        # Following: a Run with "more", a Follow of a finished job, and a
        # follower that goes away mid-job.
        c.send("io.mprocd.Run", {"argv": ["sh", "-c", "echo a; echo b >&2"]},
               more=True)
        while c.recv().get("continues"):
            pass
        c.send("io.mprocd.Follow", {"id": ids[0]}, more=True)
        while c.recv().get("continues"):
            pass
        gone = d.connect()
        gone.send("io.mprocd.Run", {"argv": ["sh", "-c", "echo x; sleep 1"]},
                  more=True)
        gone.recv()
        gone.close()
        c.call("io.mprocd.List", {"state": "failed"})
        c.call("io.mprocd.Status")
        c.send("io.mprocd.Wait", {"ids": []})
        c.send("io.mprocd.Bogus", {})
        self.assertEqual(c.recv()["parameters"], {"jobs": []})
        self.assertEqual(c.recv()["error"],
                         "org.varlink.service.MethodNotFound")
        # A job still running at shutdown, and a client waiting for it.
        last = c.call("io.mprocd.Submit", {"argv": running})["id"]
        wait_for(lambda: os.path.exists(started), "the job to start")
        w = d.connect()
        w.send("io.mprocd.Wait", {"ids": [last]})
        # A worker recycled just now may still be starting: valgrind killed
        # by SIGTERM before its own start-up is done writes no report.
        wait_for(lambda: all(wk["state"] in ("idle", "busy")
                             for wk in d.pool()["workers"]),
                 "every worker started")
        # So may the spare that replaced it (Status does not show spares).
        def spares_ready():
            log = d.log()
            return (set(re.findall(r'"spare starting" worker_pid=(\d+)', log))
                    <= set(re.findall(r'"spare ready" worker_pid=(\d+)',
                                      log)))
        wait_for(spares_ready, "every spare started")
        d.signal(signal.SIGTERM)
        wait_for(lambda: "waiting up to shutdown_timeout" in d.log(), "shutdown to begin")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)

        reports = valgrind_reports(d.dir)
        # The supervisor, two workers and the ones recycled after 4 jobs.
        self.assertGreaterEqual(len(reports), 3, list(reports))
        for text in reports.values():
            self.assertIn("ERROR SUMMARY: 0 errors", text, text)
        self.assertEqual(valgrind_problems(reports), {})

if __name__ == "__main__":
    main()
