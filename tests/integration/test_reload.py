"""Live reload of the configuration file (SIGHUP and io.mprocd.Reload): an
invalid file, or one that changes what only a restart can change, is refused
and changes nothing; a valid one applies at once without dropping, retrying
or restarting any job: pools grow, shrink (idle workers retired first, busy
ones after their job), appear, and drain away when removed; limits and the
log level apply; and the whole runs under load while the file is reloaded
again and again."""

import json
import os
import re
import signal
import threading

from mprocd_test import (TIMEOUT, WAIT, JobsTestCase, VarlinkError, alive,
                         conf, main, wait_for)

FAILED = "io.mprocd.ReloadFailed"
NO_POOL = "io.mprocd.NoSuchPool"
LIVE = ("starting", "idle", "busy")


def line_of(text, start):
    """The 1-based number of the only line of text that starts with start."""
    found = [i + 1 for i, l in enumerate(text.splitlines())
             if l.startswith(start)]
    assert len(found) == 1, (start, text)
    return found[0]


# --- The daemon's log: logfmt records --------------------------------------

RECORD = re.compile(r"^\S+ (debug|info|notice|warning|error|crit) (.*)$")
FIELD = re.compile(r'([a-z][a-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^ ]*)')
ESCAPE = re.compile(r'\\(["\\ntr]|x[0-9a-f]{2})')
SIMPLE = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def parse(line):
    """(level, fields) of one log line; None if it is not a record."""
    m = RECORD.match(line)
    if m is None:
        return None
    fields = {}
    for k, v in FIELD.findall(m.group(2)):
        if v.startswith('"'):
            v = ESCAPE.sub(lambda e: SIMPLE.get(e.group(1)) or
                           chr(int(e.group(1)[1:], 16)), v[1:-1])
        fields[k] = v
    return m.group(1), fields


def is_failure(rec):
    """The warning of a reload refused (msg="reload failed...")."""
    return "reload failed" in rec[1].get("msg", "")


def is_success(rec):
    """The notice of a reload done (msg="configuration reloaded"), not one
    of a reload requested."""
    return rec[0] == "notice" and re.search(
        r"reloaded|reload (succeeded|complete|done)", rec[1].get("msg", ""))


class ReloadTestCase(JobsTestCase):

    # --- jobs ---

    def get(self, jid):
        return self.c.call("io.mprocd.Get", {"id": jid})["job"]

    def wait_running(self, jid):
        """The job once it runs, its process known."""
        return wait_for(lambda: (lambda j: j["state"] == "running" and
                                 "pid" in j and j)(self.get(jid)),
                        "job %d to run" % jid)

    def assert_succeeded(self, ids):
        """Every job of ids ends succeeded at its first attempt."""
        for j in self.wait(ids):
            self.assertEqual((j["id"], j["state"], j["attempts"]),
                             (j["id"], "succeeded", 1), j)

    def assert_no_such_pool(self, name):
        with self.assertRaises(VarlinkError) as e:
            self.submit(["true"], pool=name)
        self.assertEqual((e.exception.error, e.exception.parameters),
                         (NO_POOL, {"pool": name}))

    # --- the log ---

    def records(self):
        return [r for r in map(parse, self.d.log().splitlines()) if r]

    def count(self, pred):
        return sum(1 for r in self.records() if pred(r))

    def assert_no_crash(self):
        log = self.d.log()
        self.assertNotIn("why=crash", log)
        self.assertNotIn("Sanitizer", log)

    # --- reloading ---

    def rewrite(self, text):
        """Replaces the file given with -c, whole, in one rename."""
        tmp = self.d.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.d.conf)

    def reload(self, text, via="varlink"):
        """Rewrites the file and reloads it, expecting success. Over Varlink
        the new configuration is in force on return; after a SIGHUP the
        caller waits for what it expects to see."""
        self.rewrite(text)
        if via == "varlink":
            self.assertEqual(self.c.call("io.mprocd.Reload"), {})
        else:
            self.d.signal(signal.SIGHUP)

    def reload_fails(self, text, via, *needles):
        """Rewrites the file and reloads it, expecting failure; returns the
        reason, which has each of needles. After a SIGHUP, the reason is
        that of the "reload failed" record it leads to."""
        self.rewrite(text)
        if via == "varlink":
            with self.assertRaises(VarlinkError) as e:
                self.c.call("io.mprocd.Reload")
            self.assertEqual(e.exception.error, FAILED)
            self.assertEqual(set(e.exception.parameters), {"reason"})
            reason = e.exception.parameters["reason"]
        else:
            before = self.count(is_failure)
            self.d.signal(signal.SIGHUP)
            wait_for(lambda: self.count(is_failure) > before,
                     'a "reload failed" record after SIGHUP')
            rec = [r for r in self.records() if is_failure(r)][-1]
            self.assertEqual(rec[0], "warning", rec)
            self.assertIn("reason", rec[1], rec)
            reason = rec[1]["reason"]
        self.assertIsInstance(reason, str)
        for n in needles:
            self.assertIn(n, reason)
        self.assertTrue(alive(self.d.pid))
        return reason

    def snapshot(self):
        """What a refused reload must leave as it was: each pool's size and
        its workers' names and pids."""
        return {p["name"]: (p["size"], sorted((w["name"], w.get("pid"))
                                              for w in p["workers"]))
                for p in self.d.status()["pools"]}

    def converged(self, pools, gone=()):
        """Status once it matches pools (name -> workers): those pools, each
        of that size with that many live workers and none stopping; besides
        them only removed pools still draining (size 0), none of gone."""
        def check():
            st = self.d.status()
            byname = {p["name"]: p for p in st["pools"]}
            self.assertEqual(len(byname), len(st["pools"]), st)
            for name, p in byname.items():
                names = [w["name"] for w in p["workers"]]
                self.assertEqual(len(set(names)), len(names),
                                 "worker names repeat in %s" % name)
                self.assertTrue(all(n.startswith(name + "/") for n in names),
                                names)
                self.assertFalse(any(w["state"] == "backoff"
                                     for w in p["workers"]), p)
            for name, n in pools.items():
                p = byname.get(name)
                if p is None or p["size"] != n:
                    return False
                live = [w for w in p["workers"] if w["state"] in LIVE]
                if len(live) != n or len(p["workers"]) != n or \
                        not all("pid" in w for w in live):
                    return False
            for name, p in byname.items():
                if name not in pools and (p["size"] != 0 or name in gone):
                    return False
            return st
        return wait_for(check, "Status to match pools %s%s" % (
            json.dumps(pools), " without %s" % list(gone) if gone else ""))

    def live_pids(self, pool):
        return {w["name"]: w["pid"] for w in self.d.pool(pool)["workers"]}


class TestRefused(ReloadTestCase):
    """What a reload must refuse, changing nothing."""

    def test_invalid_file(self):
        good = conf(p=2, other=1)
        d = self.start(good)
        running = self.gate("g", pool="p")
        self.wait_running(running)
        before = self.snapshot()
        succ = self.count(is_success)

        # An unknown key, in a file that would also resize p and add a pool.
        bad = conf(p="workers = 4; wokers = 3", other=1, new=2)
        line = line_of(bad, "wokers")
        self.reload_fails(bad, "varlink", "%s:%d:" % (d.conf, line),
                          "wokers")
        self.assertEqual(self.snapshot(), before)
        self.assert_no_such_pool("new")

        # A bad duration.
        bad = conf(p="workers = 3; job_timeout = soon", other=1)
        line = line_of(bad, "job_timeout")
        self.reload_fails(bad, "varlink", "%s:%d:" % (d.conf, line),
                          "job_timeout")
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.count(is_success), succ)

        # Jobs still run: the one running before, and new ones.
        self.assertEqual(self.get(running)["state"], "running")
        more = [self.submit(["true"], pool=p) for p in ("p", "other", "p")]
        self.release("g")
        self.assert_succeeded([running] + more)
        self.assertEqual(self.snapshot(), before)
        self.assert_no_crash()

    def test_invalid_file_on_sighup_is_logged(self):
        d = self.start(conf(p=2))
        running = self.gate("g", pool="p")
        self.wait_running(running)
        before = self.snapshot()

        bad = conf(p="workers = 5; restart_delay = later")
        line = line_of(bad, "restart_delay")
        self.reload_fails(bad, "sighup", "%s:%d:" % (d.conf, line),
                          "restart_delay")
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.get(running)["state"], "running")

        # The daemon still takes SIGHUP: now the file is valid.
        succ = self.count(is_success)
        self.reload(conf(p=3), "sighup")
        self.converged({"p": 3})
        wait_for(lambda: self.count(is_success) > succ,
                 "a notice that the configuration was reloaded")
        self.release("g")
        self.assert_succeeded([running])
        self.assert_no_crash()

    def restart_only(self, key, old, new, **start):
        """Changing key from old to new in the file is refused with a
        reason naming the key and a restart; other changes with it do not
        apply either."""
        d = self.daemon(start=False)
        self.d = d
        with open(d.conf, "w") as f:
            f.write(conf("%s = %s" % (key, old(d)), p=2))
        d.start(**start)
        self.c = d.connect()
        running = self.gate("g", pool="p")
        self.wait_running(running)
        before = self.snapshot()
        for via in ("varlink", "sighup"):
            reason = self.reload_fails(
                conf("%s = %s" % (key, new(d)), p=4, new=1),
                via, key)
            self.assertRegex(reason, r"(?i)restart")
            self.assertEqual(self.snapshot(), before)
            self.assert_no_such_pool("new")
        # Still served on the old socket, logging where it did.
        self.assertEqual(self.get(running)["state"], "running")
        self.release("g")
        self.assert_succeeded([running])
        self.assertIn('msg="job finished"', d.log())

    def test_socket_change_needs_restart(self):
        # The socket is the file's: mprocd runs without -s (the wrapper
        # drops the "-s SOCKET" that Daemon.start passes). With -s, the
        # file's socket is not used at all.
        self.restart_only("socket", lambda d: d.sock,
                          lambda d: os.path.join(d.dir, "other.sock"),
                          wrapper=("sh", "-c", 'exec "$0" "$1" "$2"'))
        self.assertFalse(os.path.exists(self.path("other.sock")))

    def test_log_target_change_needs_restart(self):
        self.restart_only("log_target", lambda d: "stderr",
                          lambda d: "file:" + os.path.join(d.dir, "x.log"))
        self.assertFalse(os.path.exists(self.path("x.log")))


class TestApplied(ReloadTestCase):
    """A valid file, applied at once."""

    def test_pool_grows(self):
        d = self.start(conf(p=2, other=1))
        running = self.gate("g", pool="p")
        job = self.wait_running(running)
        old = self.live_pids("p")
        succ = self.count(is_success)

        self.reload(conf(p=4, other=1))
        self.assertEqual(d.pool("p")["size"], 4)
        st = self.converged({"p": 4, "other": 1})
        self.assertGreater(self.count(is_success), succ)
        p = next(p for p in st["pools"] if p["name"] == "p")
        # The two old workers are untouched, the busy one still busy.
        pids = {w["name"]: w["pid"] for w in p["workers"]}
        for name, pid in old.items():
            self.assertEqual(pids.get(name), pid, p)
        busy = [w for w in p["workers"] if w["state"] == "busy"]
        self.assertEqual([(w["name"], w.get("job")) for w in busy],
                         [(job["worker"], running)])
        self.assertEqual(self.get(running)["pid"], job["pid"])
        # Four jobs at once: the new workers take jobs too.
        gates = [self.gate("h", pool="p") for _ in range(3)]
        for jid in gates:
            self.wait_running(jid)
        self.assertEqual(sorted(w["state"] for w in d.pool("p")["workers"]),
                         ["busy"] * 4)
        self.release("g")
        self.release("h")
        self.assert_succeeded([running] + gates)
        self.assert_no_crash()

    def test_pool_shrinks_idle_first(self):
        d = self.start(conf(p=4))
        gates = [self.gate("g%d" % i, pool="p") for i in range(2)]
        jobs = [self.wait_running(jid) for jid in gates]
        busy = {j["worker"]: j["pid"] for j in jobs}
        workers = self.live_pids("p")
        idle = set(workers) - set(busy)
        self.assertEqual(len(idle), 2)

        self.reload(conf(p=1), "sighup")
        wait_for(lambda: d.pool("p")["size"] == 1, "p to have size 1")
        # The idle workers go; the busy ones stay while their jobs run.
        wait_for(lambda: set(self.live_pids("p")) == set(busy),
                 "only p's busy workers left (%s)" % sorted(busy))
        for w in d.pool("p")["workers"]:
            self.assertEqual(w["pid"], workers[w["name"]])
        for j in jobs:
            now = self.get(j["id"])
            self.assertEqual((now["state"], now["pid"], now["worker"]),
                             ("running", j["pid"], j["worker"]))
        log = d.log()
        for name in idle:
            self.assertRegex(log, r"worker=%s msg=\"worker exited\" "
                             r"why=retired .*worker_pid=%d\b"
                             % (re.escape(name), workers[name]))

        # Their jobs end normally, then the pool is one worker.
        self.release("g0")
        self.assert_succeeded([gates[0]])
        self.release("g1")
        self.assert_succeeded([gates[1]])
        st = self.converged({"p": 1})
        (last,) = st["pools"][0]["workers"]
        self.assertIn(last["name"], busy)
        self.assertEqual(last["pid"], workers[last["name"]])
        self.assertEqual(self.count(
            lambda r: r[1].get("msg") == "worker exited" and
            r[1].get("why") == "retired"), 3)
        # It takes jobs.
        self.assert_succeeded([self.submit(["true"], pool="p")])
        self.assertEqual(st["pools"][0]["restarts"], 0)
        self.assert_no_crash()

    def test_shrink_then_grow_keeps_busy_workers(self):
        """A busy worker due to retire is kept when the pool grows back:
        the pool never runs more jobs at once than it has workers."""
        d = self.start(conf(p=2))
        gates = [self.gate("g%d" % i, pool="p") for i in range(2)]
        for jid in gates:
            self.wait_running(jid)
        before = self.live_pids("p")
        self.reload(conf(p=1))
        self.reload(conf(p=2))
        self.assertEqual(self.live_pids("p"), before)
        self.assertEqual(d.pool("p")["size"], 2)
        # No third worker, so a third job waits.
        third = self.submit(["true"], pool="p")
        self.assertEqual(self.get(third)["state"], "queued")
        for name in ("g0", "g1"):
            self.release(name)
        self.assert_succeeded(gates + [third])
        self.assertEqual(self.live_pids("p"), before)
        self.assertEqual(self.count(
            lambda r: r[1].get("msg") == "worker exited"), 0)
        self.assert_no_crash()

    def test_new_pool_takes_jobs(self):
        d = self.start(conf(p=1))
        self.assert_no_such_pool("q")
        self.reload(conf(p=1, q=2))
        self.assertEqual(d.pool("q")["size"], 2)
        st = self.converged({"p": 1, "q": 2})
        self.assertEqual([p["name"] for p in st["pools"]], ["p", "q"])
        ids = [self.submit(["echo", str(i)], pool="q") for i in range(4)]
        jobs = self.wait(ids)
        for j in jobs:
            self.assertEqual((j["state"], j["attempts"], j["pool"]),
                             ("succeeded", 1, "q"))
            self.assertRegex(j["worker"], r"^q/\d+$")
        self.assertEqual(d.pool("q")["succeeded"], 4)
        self.assert_no_crash()

    def test_removed_pool_drains(self):
        d = self.start(conf(p=1, q=1))
        running = self.gate("g", pool="q")
        job = self.wait_running(running)
        (pid,) = self.live_pids("q").values()
        queued = [self.submit(["true"], pool="q"),
                  self.gate("h", pool="q")]
        other = self.gate("g", pool="p")
        self.wait_running(other)

        self.reload(conf(p=1))
        self.assert_no_such_pool("q")
        q = d.pool("q")
        self.assertEqual((q["size"], q["queued"], q["running"]), (0, 2, 1))
        self.assertEqual([(w["name"], w.get("pid"), w.get("job"))
                          for w in q["workers"]],
                         [(job["worker"], pid, running)])
        self.assertEqual(self.get(running)["state"], "running")

        # It drains: the running job ends, then the queued ones run.
        self.release("g")
        self.assert_succeeded([running, other])
        self.wait_running(queued[1])
        q = d.pool("q")
        self.assertEqual((q["size"], q["queued"], q["running"]), (0, 0, 1))
        self.assert_no_such_pool("q")
        self.release("h")
        self.assert_succeeded(queued)
        for jid in [running] + queued:
            self.assertEqual(self.get(jid)["worker"], job["worker"])

        # Empty, it goes.
        self.converged({"p": 1}, gone={"q"})
        self.assert_no_such_pool("q")
        self.assertRegex(d.log(), r"worker=%s msg=\"worker exited\" "
                         r"why=retired" % re.escape(job["worker"]))
        self.assert_no_crash()

    def test_removed_pool_taken_back(self):
        """A pool put back in the file while it drains is a pool again
        (mprocd.8, RELOAD): it takes jobs, and the job it was draining
        runs on. Whether the worker running that job is kept or retired
        after it is not said: only the size is checked, in the end."""
        d = self.start(conf(p=1, q=1))
        running = self.gate("g", pool="q")
        job = self.wait_running(running)

        self.reload(conf(p=1))
        self.assertEqual(d.pool("q")["size"], 0)
        self.assert_no_such_pool("q")
        self.reload(conf(p=1, q=2))
        self.assertEqual(d.pool("q")["size"], 2)
        more = [self.submit(["true"], pool="q") for _ in range(3)]
        self.assert_succeeded(more)
        now = self.get(running)
        self.assertEqual((now["state"], now["pid"]), ("running", job["pid"]))
        self.release("g")
        self.assert_succeeded([running])
        self.converged({"p": 1, "q": 2})
        self.assert_no_crash()

    def test_job_timeout_applies_to_jobs_started_after(self):
        self.start(conf(p="workers = 2; kill_grace = 200ms"))
        before = self.gate("g", pool="p")
        self.wait_running(before)

        self.reload(conf(p="workers = 2; kill_grace = 200ms; "
                         "job_timeout = 1s"))
        after = self.submit(["sleep", "3"], pool="p")
        (j,) = self.wait([after])
        self.assertEqual((j["state"], j["attempts"]), ("timeout", 1), j)
        # The job that started under job_timeout = 0 is not limited by the
        # new timeout: it has now run well over 1s since the reload.
        self.assertEqual(self.get(before)["state"], "running")
        self.release("g")
        self.assert_succeeded([before])
        self.assert_no_crash()

    def test_log_level(self):
        """log_level applies to the supervisor (msg="job submitted") and to
        the workers (msg="job running"), for what happens after the
        reload."""
        self.start(conf(p=1, level="info"))

        def records(msg, jid):
            return self.count(lambda r: r[1].get("msg") == msg and
                              r[1].get("job") == str(jid))

        def run(level):
            """A job run after a reload to level; the log has all of its
            records once the job has finished."""
            succ = self.count(is_success)
            self.reload(conf(p=1, level=level), "sighup")
            wait_for(lambda: self.count(is_success) > succ,
                     "a notice that the configuration was reloaded")
            jid = self.submit(["true"], pool="p")
            self.assert_succeeded([jid])
            wait_for(lambda: records("job finished", jid),
                     "job %d's finished record" % jid)
            return jid

        first = self.submit(["true"], pool="p")
        self.assert_succeeded([first])
        wait_for(lambda: records("job finished", first),
                 "job %d's finished record" % first)
        self.assertEqual(self.count(lambda r: r[0] == "debug"), 0)

        second = run("debug")
        for msg in ("job submitted", "job running"):
            self.assertEqual(records(msg, second), 1, msg)
            self.assertEqual(records(msg, first), 0, msg)

        third = run("info")
        for msg in ("job submitted", "job running"):
            self.assertEqual(records(msg, third), 0, msg)
        self.assert_no_crash()

    def test_global_keys(self):
        d = self.start(conf(p=1))
        ids = [self.submit(["true"], pool="p") for _ in range(3)]
        self.assert_succeeded(ids)

        self.reload(conf("keep_finished = 1; max_clients = 2", p=1))
        # keep_finished: once another job has finished, only it is kept.
        last = self.submit(["true"], pool="p")
        self.assert_succeeded([last])
        for jid in ids:
            with self.assertRaises(VarlinkError) as e:
                self.get(jid)
            self.assertEqual((e.exception.error, e.exception.parameters),
                             ("io.mprocd.NoSuchJob", {"id": jid}))
        self.assertEqual(self.get(last)["state"], "succeeded")
        # max_clients: self.c and one more, then the 4 kept for root.
        more = [d.connect() for _ in range(1 + 4)]
        for c in more:
            self.assertIn("pools", c.call("io.mprocd.Status"))
        self.assertTrue(d.connect().closed_by_peer())
        self.assertIn("pools", more[0].call("io.mprocd.Status"))
        self.assert_no_crash()


class TestUnderLoad(ReloadTestCase):
    """Hundreds of short jobs in three pools while the file is reloaded
    again and again, alternately by SIGHUP and Reload: every job succeeds at
    its first attempt, none is lost, no worker crashes."""

    LEAST = 240         # jobs each connection submits at least
    MOST = 2400         # and at most, however slow the reloads
    Q_JOBS = 30         # to pool q, each time it exists
    CHUNK = 20          # Submits sent before their replies are read
    ROUNDS = 3          # each step by SIGHUP and by Reload

    def submitter(self, job, out, errors):
        """Submits job(0), job(1)... ((pool, argv)) in pipelined chunks,
        each waited for before the next, until self.stop once LEAST are
        in: jobs are queued and running all through the reloads."""
        try:
            c = self.d.connect()
            n = 0
            while n < self.LEAST or (not self.stop.is_set() and
                                     n < self.MOST):
                chunk = [job(n + i) for i in range(self.CHUNK)]
                n += self.CHUNK
                c.send_raw(b"".join(json.dumps(
                    {"method": "io.mprocd.Submit",
                     "parameters": {"pool": pool, "argv": argv}}).encode()
                    + b"\0" for pool, argv in chunk))
                ids = []
                for pool, _ in chunk:
                    r = c.recv()
                    if r is None or "error" in r:
                        raise AssertionError("Submit to %s: %r" % (pool, r))
                    ids.append(r["parameters"]["id"])
                    out.append((ids[-1], pool))
                c.call("io.mprocd.Wait", {"ids": ids, "timeout_sec": WAIT})
        except BaseException as e:
            errors.append(e)

    def test_reload_under_load(self):
        def pools(p, q=None):
            d = {"p": p, "a": "workers = 2; job_timeout = %s"
                 % ("60s" if p == 6 else "0"), "b": 1}
            if q:
                d["q"] = q
            return d

        def mine(i):
            return "p", ["sleep", "0.0%d" % (i % 5)]

        def theirs(i):
            """Pool p, with pools a and b mixed in."""
            if i % 10 in (3, 7):
                return "a", ["sleep", "0.02"]
            if i % 10 == 9:
                return "b", ["sleep", "0.01"]
            return mine(i)

        d = self.start(conf(**pools(4)))
        self.stop = threading.Event()
        self.addCleanup(self.stop.set)
        out, errors = [], []
        threads = [threading.Thread(target=self.submitter,
                                    args=(job, out, errors), daemon=True)
                   for job in (mine, theirs)]
        for t in threads:
            t.start()

        q_ids = []
        retired = 0
        step = 0

        def via():
            return "sighup" if step % 2 else "varlink"

        def ok(text, want, gone=()):
            succ = self.count(is_success)
            self.reload(text, via())
            st = self.converged(want, gone)
            wait_for(lambda: self.count(is_success) > succ,
                     "a notice that the configuration was reloaded")
            return st

        for rounds in range(self.ROUNDS):
            self.assertEqual(errors, [])
            self.assertTrue(all(t.is_alive() for t in threads),
                            "the load ended before the reloads")
            step = rounds        # the trigger alternates step to step
            ok(conf(**pools(2)), {"p": 2, "a": 2, "b": 1})
            retired += 2
            step += 1
            ok(conf(**pools(6)), {"p": 6, "a": 2, "b": 1})
            step += 1
            ok(conf(**pools(6, q=2)), {"p": 6, "a": 2, "b": 1, "q": 2})
            c = d.connect()
            c.send_raw(b"".join(json.dumps(
                {"method": "io.mprocd.Submit", "parameters": {
                    "pool": "q", "argv": ["sleep", "0.05"]}}).encode() + b"\0"
                for _ in range(self.Q_JOBS)))
            for _ in range(self.Q_JOBS):
                r = c.recv()
                self.assertNotIn("error", r)
                q_ids.append((r["parameters"]["id"], "q"))
            c.close()
            step += 1
            succ = self.count(is_success)
            self.reload(conf(**pools(6)), via())
            wait_for(lambda: next((p["size"] for p in d.status()["pools"]
                                   if p["name"] == "q"), 0) == 0,
                     "q to be removed")
            self.assert_no_such_pool("q")
            self.converged({"p": 6, "a": 2, "b": 1}, gone={"q"})
            wait_for(lambda: self.count(is_success) > succ,
                     "a notice that the configuration was reloaded")
            retired += 2
            step += 1
            before = self.snapshot()
            if rounds % 2:
                bad = conf(p="workers = 3; job_timeout = soon", a=2, b=1,
                           r=1)
                key = "job_timeout"
            else:
                bad = conf(p="workers = 3", a="workers = 2; bogus = 1",
                           b=1, r=1)
                key = "bogus"
            self.reload_fails(bad, via(), key,
                              "%s:%d:" % (d.conf, line_of(bad, key)))
            self.assertEqual(self.snapshot(), before)
            self.assert_no_such_pool("r")
            step += 1
            ok(conf(**pools(4)), {"p": 4, "a": 2, "b": 1})
            retired += 2

        self.stop.set()
        for t in threads:
            t.join(TIMEOUT)
            self.assertFalse(t.is_alive(), "a submitter is stuck")
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(out), 2 * self.LEAST)
        self.assertEqual(len(q_ids), self.ROUNDS * self.Q_JOBS)

        # Every job succeeded at its first attempt; none is missing.
        submitted = dict(out + q_ids)
        self.assertEqual(len(submitted), len(out) + len(q_ids))
        ids = sorted(submitted)
        for j in self.wait(ids):
            self.assertEqual((j["state"], j["attempts"], j["pool"]),
                             ("succeeded", 1, submitted[j["id"]]), j)
        listed = {j["id"]: j for j in
                  self.c.call("io.mprocd.List", {})["jobs"]}
        for jid in ids:
            self.assertIn(jid, listed)
            self.assertEqual((listed[jid]["state"], listed[jid]["attempts"]),
                             ("succeeded", 1))
        self.assertEqual(len(listed), len(ids))

        st = self.converged({"p": 4, "a": 2, "b": 1}, gone={"q"})
        for p in st["pools"]:
            self.assertEqual((p["name"], p["restarts"], p["degraded"],
                              p["queued"], p["running"], p["failed"]),
                             (p["name"], 0, False, 0, 0, 0))
            for w in p["workers"]:
                self.assertEqual(w["restarts"], 0, w)
        self.assert_no_crash()
        self.assertEqual(self.count(
            lambda r: r[1].get("msg") == "worker exited" and
            r[1].get("why") == "retired"), retired)
        self.assertEqual(self.count(lambda r: r[0] in ("error", "crit")), 0)


if __name__ == "__main__":
    main()
