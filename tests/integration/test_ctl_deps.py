"""mprocctl and job dependencies and locks (issue 20, DESIGN §3, §6) on a
real mprocd: submit -a and -l, map -a and -l, the reasons that list, get,
wait and submit -w show, status's counts of waiting jobs, and usage errors
with status 125 and one line naming the option."""

import json
import os
import subprocess

from mprocd_test import (MPROCCTL, TIMEOUT, WAIT, as_other_user, conf,
                         main, other_user_python, wait_for)
from test_ctl import CtlTestCase

# Four workers in one pool and two in another: room for jobs to overlap.
# Any user may connect: one test has another user's mprocctl refused.
CONFIG = conf("socket_mode = 0666", default="workers = 4",
              other="workers = 2")

# For sh -c: appends "start $1 NS" to the file $2, sleeps $3, appends
# "end $1 NS", NS being nanoseconds since the epoch.
STAMPED = ('echo "start $1 $(date +%s%N)" >> "$2"; sleep "$3"; '
           'echo "end $1 $(date +%s%N)" >> "$2"')


class DepsTestCase(CtlTestCase):

    def setUp(self):
        self.d = self.daemon(CONFIG)

    def path(self, name):
        return os.path.join(self.d.dir, name)

    def gate(self, name, opts=()):
        """A job that runs until release(name)."""
        return self.submit("sh", "-c", 'while [ ! -e "$1" ]; do sleep 0.02; '
                           'done', "sh", self.path(name), opts=opts)

    def release(self, name):
        open(self.path(name), "w").close()

    def wait_state(self, job_id, state):
        wait_for(lambda: self.job(job_id)["state"] == state,
                 "job %d %s" % (job_id, state))

    def wait_all(self, *ids):
        return self.d.call("io.mprocd.Wait", {"ids": list(ids),
                                              "timeout_sec": WAIT})

    def stamps(self, name):
        """The file's (what, label, ns) lines, as STAMPED writes them."""
        with open(self.path(name)) as f:
            return [(w, l, int(ns)) for w, l, ns in
                    (line.split() for line in f)]

    def assertApart(self, stamps):
        """Every job started after the one before it ended: no overlap."""
        self.assertEqual([w for w, _, _ in stamps],
                         ["start", "end"] * (len(stamps) // 2), stamps)
        for i in range(0, len(stamps), 2):
            self.assertEqual(stamps[i][1], stamps[i + 1][1], stamps)
            self.assertLessEqual(stamps[i][2], stamps[i + 1][2])
            if i > 0:
                self.assertLessEqual(stamps[i - 1][2], stamps[i][2],
                                     "job %s started before %s ended" %
                                     (stamps[i][1], stamps[i - 1][1]))


class TestSubmitAfter(DepsTestCase):

    def test_chain_runs_in_order(self):
        log = self.path("log")
        a = self.submit("sh", "-c", 'sleep 0.2; echo a >> "$0"', log)
        b = self.submit("sh", "-c", 'echo b >> "$0"', log, opts=("-a", str(a)))
        c = self.submit("sh", "-c", 'echo c >> "$0"', log, opts=("-a", str(b)))
        r = self.ctl("submit", "-w", "-a", str(c), "--", "cat", log)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"a\nb\nc\n")
        self.assertEqual(r.stderr, b"")
        self.assertEqual(self.job(b)["after"], [a])

    def test_comma_list_and_repeats(self):
        ids = [self.submit("true") for _ in range(3)]
        job = self.submit("true", opts=("-a", "%d,%d" % (ids[0], ids[1]),
                                        "-a", str(ids[2]), "-a", str(ids[0])))
        # In the order given, each once: mprocd refuses repeats.
        self.assertEqual(self.job(job)["after"], ids)
        self.wait_all(job)
        self.assertEqual(self.job(job)["state"], "succeeded")

    def test_wait_passes_the_jobs_own_status(self):
        a = self.submit("true")
        r = self.ctl("submit", "-w", "-a", str(a), "--", "sh", "-c",
                     "echo out; exit 7")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertEqual(r.stdout, b"out\n")
        self.assertEqual(r.stderr, b"")

    def test_failed_dependency_cancels_and_exits_1(self):
        bad = self.submit("sh", "-c", "sleep 0.1; exit 3")
        r = self.ctl("submit", "-w", "-a", str(bad), "--", "echo", "never")
        # Cancelled without a signal: 1, and a line saying why.
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, b"")
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], r"^mprocctl: job \d+ cancelled: job %d "
                         r"failed$" % bad)
        job = self.job(int(lines[0].split()[2]))
        self.assertEqual((job["state"], job["reason"]),
                         ("cancelled", "job %d failed" % bad))

    def test_dependency_that_timed_out_or_was_cancelled(self):
        slow = self.submit("sleep", "60", opts=("-t", "0.2"))
        r = self.ctl("submit", "-w", "-a", str(slow), "--", "true")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"cancelled: job %d timed out\n" % slow, r.stderr)
        gate = self.gate("never")
        dep = self.submit("true", opts=("-a", str(gate)))
        self.ok("cancel", str(gate))
        r = self.ctl("wait", str(dep))
        self.assertEqual(r.returncode, 1, r.stderr)
        # A job that never ran has no duration to show.
        self.assertEqual(r.stdout.decode(), "job %d cancelled: job %d was "
                         "cancelled\n" % (dep, gate))

    def test_finished_dependency(self):
        good = self.submit("true")
        bad = self.submit("false")
        self.wait_all(good, bad)
        r = self.ctl("submit", "-w", "-a", str(good), "--", "echo", "ran")
        self.assertEqual((r.returncode, r.stdout), (0, b"ran\n"), r.stderr)
        r = self.ctl("submit", "-w", "-a", "%d,%d" % (good, bad), "--",
                     "echo", "ran")
        self.assertEqual((r.returncode, r.stdout), (1, b""), r.stderr)
        self.assertIn(b"cancelled: job %d failed" % bad, r.stderr)

    def test_json_wait(self):
        bad = self.submit("false")
        r = self.ctl("--json", "submit", "-w", "-a", str(bad), "--", "true")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, b"")
        job = json.loads(r.stdout)["job"]
        self.assertEqual((job["state"], job["reason"], job["after"]),
                         ("cancelled", "job %d failed" % bad, [bad]))

    def test_unknown_job(self):
        r = self.ctl("submit", "-a", "999999", "--", "true")
        self.assertFails(r, "-a names a job that mprocd does not know")
        self.assertEqual(self.d.call("io.mprocd.List")["jobs"], [])

    def test_bad_values(self):
        for value in ("0", "-1", "x", "", "3,", ",3", "1.5", "3,,4"):
            for cmd in (("submit", "-a", value, "--", "true"),
                        ("map", "-a", value, "echo")):
                r = self.ctl(*cmd)
                self.assertFails(r, "mprocctl %s: bad -a '%s'"
                                 % (cmd[0], value), "usage: mprocctl")
        r = self.ctl("submit", "-a", ",".join(map(str, range(1, 1002))),
                     "--", "true")
        self.assertFails(r, "-a names 1001 jobs", "1000 at most")
        for value in ("", "x" * 257):
            r = self.ctl("submit", "-l", value, "--", "true")
            self.assertFails(r, "bad -l '", "1 to 256 bytes")
        self.assertFails(self.ctl("submit", "-a"), "option -a needs a value")
        self.assertEqual(self.d.call("io.mprocd.List")["jobs"], [])

    def test_another_users_job(self):
        other_user_python()
        os.chmod(self.d.dir, 0o755)
        mine = self.gate("g")
        r = subprocess.run(as_other_user(MPROCCTL, "-s", self.d.sock,
                                         "submit", "-a", str(mine), "--",
                                         "true"),
                           capture_output=True, cwd="/", timeout=TIMEOUT)
        self.assertFails(r, "job %d is another user's" % mine)
        self.release("g")

    def test_get_says_why_it_waits(self):
        gate = self.gate("g")
        job = self.submit("true", opts=("-a", str(gate)))
        r = self.ctl("get", str(job))
        self.assertEqual(r.returncode, 125)
        self.assertEqual(r.stderr.decode(), "mprocctl: job %d is still queued:"
                         " waiting for job %d; 'mprocctl wait %d' waits for "
                         "it\n" % (job, gate, job))
        self.release("g")
        self.wait_all(job)


class TestLock(DepsTestCase):

    def test_jobs_holding_a_lock_never_overlap(self):
        # Across two pools, six workers: without the lock they would run
        # at once.
        ids = [self.submit("sh", "-c", STAMPED, "sh", str(i),
                           self.path("stamps"), "0.05",
                           opts=("-l", "db", "-p",
                                 ("default", "other")[i % 2]))
               for i in range(10)]
        free = self.submit("sh", "-c", STAMPED, "sh", "free",
                           self.path("free"), "0")
        self.wait_all(*ids + [free])
        stamps = self.stamps("stamps")
        self.assertApart(stamps)
        # Taken in the order submitted.
        self.assertEqual([l for w, l, _ in stamps if w == "start"],
                         [str(i) for i in range(10)])
        for i in ids:
            self.assertEqual(self.job(i)["lock"], "db")
        # A job without the lock did not wait for it.
        self.assertLess(self.stamps("free")[0][2], stamps[-1][2])

    def test_other_locks_run_at_once(self):
        a = self.gate("a", opts=("-l", "one"))
        b = self.gate("b", opts=("-l", "two"))
        self.wait_state(a, "running")
        self.wait_state(b, "running")
        self.release("a")
        self.release("b")
        self.wait_all(a, b)

    def test_wait_with_lock(self):
        holder = self.gate("g", opts=("-l", "db"))
        self.wait_state(holder, "running")
        p = subprocess.Popen([MPROCCTL, "-s", self.d.sock, "submit", "-w",
                              "-l", "db", "--", "echo", "got it"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: any(j.get("reason") == "waiting for lock db"
                             for j in self.d.call("io.mprocd.List")["jobs"]),
                 "a job waiting for lock db")
        self.release("g")
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual((p.returncode, out, err), (0, b"got it\n", b""))


class TestMap(DepsTestCase):

    def test_map_with_lock_is_sequential_in_order(self):
        lines = "".join("%d\n" % i for i in range(8)).encode()
        r = self.ctl("map", "-l", "seq", "sh", "-c",
                     STAMPED + '; echo "$1"', "sh", "{}",
                     self.path("stamps"), "0.03", input=lines)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, lines)
        stamps = self.stamps("stamps")
        self.assertApart(stamps)
        self.assertEqual([l for w, l, _ in stamps if w == "start"],
                         [str(i) for i in range(8)])

    def test_map_after(self):
        log = self.path("log")
        first = self.submit("sh", "-c", 'sleep 0.2; echo first >> "$0"', log)
        r = self.ctl("map", "-a", str(first), "sh", "-c",
                     'cat "$0"; echo {}', log, input=b"x\ny\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"first\nx\nfirst\ny\n")
        bad = self.submit("false")
        r = self.ctl("map", "-a", str(bad), "echo", input=b"x\ny\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, b"")
        self.assertRegex(r.stderr.decode(), r"^mprocctl: 2 of 2 jobs did not "
                         r"succeed; the first, line 1 \(job \d+\), cancelled:"
                         r" job %d failed\n$" % bad)


class TestShow(DepsTestCase):

    def test_list_and_status_show_why_jobs_wait(self):
        holder = self.gate("g", opts=("-l", "db"))
        self.wait_state(holder, "running")
        after = self.submit("true", opts=("-a", str(holder)))
        locked = self.submit("true", opts=("-l", "db", "-n", "migrate"))
        plain = self.submit("true")
        self.wait_state(plain, "succeeded")

        out = self.ok("list").stdout.decode().splitlines()
        self.assertRegex(out[0], r"^ *ID +STATE +POOL +WORKER +ATTEMPTS +"
                         r"EXIT +DURATION +REASON +NAME/COMMAND$")
        self.assertRegex(out[1], r"^ *%d +running .* - +sh -c " % holder)
        self.assertRegex(out[2], r"^ *%d +queued .* waiting for job %d +true$"
                         % (after, holder))
        self.assertRegex(out[3], r"^ *%d +queued .* waiting for lock db +"
                         r"migrate$" % locked)
        self.assertRegex(out[4], r"^ *%d +succeeded .* - +true$" % plain)
        self.assertColumns(out, {2: "waiting for job %d" % holder,
                                 3: "waiting for lock db", 4: "-"},
                           {2: "true", 3: "migrate", 4: "true"})

        out = self.ok("status").stdout.decode()
        self.assertIn("pool default: 4 workers, 2 queued (1 waiting for other "
                      "jobs, 1 for a lock), 1 running, 1 succeeded,", out)
        self.assertIn("pool other: 2 workers, 0 queued, 0 running,", out)

        self.ok("cancel", str(holder))
        self.wait_all(after, locked)
        out = self.ok("list").stdout.decode().splitlines()
        self.assertRegex(out[2], r"^ *%d +cancelled .* job %d was cancelled "
                         r"+true$" % (after, holder))
        # Ran once the lock was free: nothing more to say.
        self.assertRegex(out[3], r"^ *%d +succeeded .* - +migrate$" % locked)
        out = self.ok("status").stdout.decode()
        self.assertIn("pool default: 4 workers, 0 queued, 0 running,", out)

    def assertColumns(self, out, reasons, labels):
        """REASON and NAME/COMMAND are columns: each row's starts where the
        header's does."""
        reason, label = out[0].index("REASON"), out[0].index("NAME/COMMAND")
        for row, text in reasons.items():
            self.assertEqual(out[row][reason:label].rstrip(), text, out)
        for row, text in labels.items():
            self.assertEqual(out[row][label:], text, out)

    def test_longest_reason_sets_the_width(self):
        lock = "a-rather-long-lock-name"
        holder = self.gate("g", opts=("-l", lock))
        self.wait_state(holder, "running")
        locked = self.submit("true", opts=("-l", lock))
        after = self.submit("true", opts=("-a", str(holder)))
        out = self.ok("list").stdout.decode().splitlines()
        self.assertColumns(out, {1: "-", 2: "waiting for lock " + lock,
                                 3: "waiting for job %d" % holder},
                           {2: "true", 3: "true"})
        self.release("g")
        self.wait_all(locked, after)

    def test_status_counts_each_kind_alone(self):
        holder = self.gate("g", opts=("-l", "db"))
        self.wait_state(holder, "running")
        self.submit("true", opts=("-l", "db"))
        out = self.ok("status").stdout.decode()
        self.assertIn(" 1 queued (1 waiting for a lock), 1 running,", out)
        self.submit("true", opts=("-a", str(holder)))
        self.submit("true", opts=("-a", str(holder)))
        self.submit("true", opts=("-a", str(holder), "-l", "db"))
        out = self.ok("status").stdout.decode()
        self.assertIn(" 4 queued (3 waiting for other jobs, 1 for a lock),",
                      out)
        self.release("g")

    def test_long_reason_is_cut(self):
        lock = "k" * 200
        holder = self.gate("g", opts=("-l", lock))
        self.wait_state(holder, "running")
        job = self.submit("true", opts=("-l", lock))
        out = self.ok("list").stdout.decode().splitlines()
        self.assertRegex(out[2], r"^ *%d +queued .* waiting for lock k+\.\.\. "
                         r"+true$" % job)
        self.assertLess(len(out[2]), 120, out[2])
        # In full for scripts.
        jobs = json.loads(self.ok("--json", "list").stdout)["jobs"]
        self.assertEqual(jobs[1]["reason"], "waiting for lock " + lock)
        self.release("g")

    def test_control_characters_in_a_lock_are_refused(self):
        """A reason is one line: a lock's name holds no control
        character (mprocd refuses it)."""
        for name in ("a\x1b[2Jb", "a\nb", "a\tb"):
            r = self.ctl("submit", "-l", name, "--", "true")
            self.assertEqual(r.returncode, 125, r.stderr)
            self.assertIn(b"'lock'", r.stderr)
        self.assertEqual(self.d.call("io.mprocd.List")["jobs"], [])

    def test_help(self):
        out = self.ok("submit", "--help").stdout.decode()
        self.assertIn("[-a ID]... [-l LOCK] -- CMD", out)
        self.assertIn("  -a ID ", out)
        self.assertIn("  -l LOCK ", out)
        out = self.ok("map", "--help").stdout.decode()
        self.assertIn("  -l LOCK ", out)
        self.assertIn("in input order", out)
        self.assertIn("REASON", self.ok("list", "--help").stdout.decode())
        self.assertIn("wait for", self.ok("status", "--help").stdout.decode())


if __name__ == "__main__":
    main()
