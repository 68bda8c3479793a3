"""The state database (DESIGN §12): a real mprocd keeping its jobs in a real
SQLite file, stopped, killed with SIGKILL at random moments under load, and
started again on the same file; files damaged, from the future, or not
databases at all; a disk that fills up."""

import base64
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from mprocd_test import (MPROCD, OTHER_UID, Conn, JobsTestCase,
                         VarlinkError, as_other_user, conf, main, wait_for)

DB = "mprocd.db"


def db_query(path, sql):
    c = sqlite3.connect(path)
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


# The schema of the first release (user_version 1), to test its migration.
# What schema 2 added to 1.
V1_TO_V2 = """
ALTER TABLE jobs ADD COLUMN after_ids TEXT;
ALTER TABLE jobs ADD COLUMN lock TEXT;
ALTER TABLE jobs ADD COLUMN reason TEXT;
PRAGMA user_version = 2;
"""

V1_SCHEMA = """
PRAGMA user_version = 1;
CREATE TABLE jobs (id INTEGER PRIMARY KEY, pool TEXT NOT NULL, name TEXT,
 argv BLOB NOT NULL, cwd TEXT NOT NULL, env BLOB, stdin BLOB, input TEXT,
 uid INTEGER NOT NULL, timeout INTEGER, retries INTEGER,
 state INTEGER NOT NULL, exit_status INTEGER, signal INTEGER, worker TEXT,
 pid INTEGER, attempts INTEGER NOT NULL, submitted_usec INTEGER NOT NULL,
 started_usec INTEGER, finished_usec INTEGER, stdout BLOB, stderr BLOB,
 truncated INTEGER NOT NULL DEFAULT 0, result TEXT, seq INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_finished ON jobs (finished_usec) WHERE state >= 2;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
INSERT INTO meta VALUES ('next_id', 1);
"""


class StoreTestCase(JobsTestCase):

    def db(self):
        return os.path.join(self.d.dir, DB)

    def restart(self, how=signal.SIGTERM):
        """Stops mprocd (SIGTERM: a clean shutdown; SIGKILL) and starts it
        again on the same directory, socket and database."""
        self.d.signal(how)
        self.d.wait_exit()
        for c in self.d.conns:
            c.close()
        self.d.conns = []
        # Not waiting for idle workers: the jobs back may keep them busy.
        self.d.start(wait=False)
        self.wait_answering()

    def wait_answering(self):
        """Until the (re)started mprocd answers; self.c connects to it."""
        def answering():
            if self.d.proc.poll() is not None:
                raise AssertionError("mprocd exited:\n" + self.d.log())
            try:
                return self.d.call("io.mprocd.Status")
            except OSError:
                return None
        wait_for(answering, "mprocd answering")
        self.c = self.d.connect()

    def job(self, jid):
        return self.c.call("io.mprocd.Get", {"id": jid})["job"]


class TestRestart(StoreTestCase):

    def test_jobs_survive_a_restart(self):
        self.start(conf(main="shutdown_timeout = 200ms",
                        default="workers = 1; kill_grace = 200ms"))
        done = self.submit(["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.wait([done])
        running = self.gate("never")
        again = self.gate("never2", retries=1)
        queued = [self.submit(["echo", "q%d" % i]) for i in range(3)]
        wait_for(lambda: self.job(running)["state"] == "running",
                 "the gate running")
        self.assertEqual(self.job(again)["state"], "queued")
        self.restart()
        # Finished: as it was, output included.
        r = self.c.call("io.mprocd.Get", {"id": done})
        self.assertEqual(r["job"]["state"], "failed")
        self.assertEqual(r["job"]["exit_status"], 3)
        self.assertEqual(base64.b64decode(r["stdout"]), b"out\n")
        self.assertEqual(base64.b64decode(r["stderr"]), b"err\n")
        # Running at shutdown, no retries: lost; with one, it runs again
        # (after the others queued: they were ahead of it). The queued ones
        # run, in order.
        self.assertEqual(self.job(running)["state"], "lost")
        self.release("never2")
        jobs = self.wait(queued)
        self.assertEqual([j["state"] for j in jobs], ["succeeded"] * 3)
        self.assertLess(jobs[0]["started_usec"], jobs[1]["started_usec"])
        # Ids go on after the largest ever given.
        self.assertGreater(self.submit(["true"]), max(queued))
        self.assertIn("state", self.d.status())
        self.assertEqual(self.d.status()["state"], self.db())

    def test_after_lock_and_reason_survive_a_restart(self):
        """Jobs waiting for others and for a lock wait again after a
        restart, in order; a finished job's reason stays."""
        self.start(conf(main="shutdown_timeout = 200ms",
                        default="workers = 2; kill_grace = 200ms"))
        failed = self.submit(["sh", "-c", "exit 2"])
        doomed = self.submit(["true"], after=[failed])
        self.wait([failed, doomed])
        gate = self.gate("g")
        chain = [self.submit(["true"], after=[gate])]
        for _ in range(3):
            chain.append(self.submit(["true"], after=[chain[-1]]))
        holder = self.gate("h", lock="db")
        locked = [self.submit(["true"], lock="db") for _ in range(3)]
        wait_for(lambda: self.job(holder)["state"] == "running", "holder")
        self.assertEqual(self.job(locked[0])["reason"], "waiting for lock db")
        self.restart()
        # The gate and the holder were running: lost (no retries); what
        # waited on the gate is cancelled, the lock goes on to the next.
        self.assertEqual(self.job(doomed)["reason"], "job %d failed" % failed)
        jobs = self.wait(chain + locked)
        self.assertEqual([j["state"] for j in jobs[:4]], ["cancelled"] * 4)
        self.assertEqual(jobs[0]["reason"], "job %d was lost" % gate)
        self.assertEqual(jobs[1]["reason"], "job %d was cancelled"
                         % chain[0])
        self.assertEqual(jobs[0]["after"], [gate])
        self.assertEqual([j["state"] for j in jobs[4:]], ["succeeded"] * 3)
        self.assertEqual([j["lock"] for j in jobs[4:]], ["db"] * 3)
        for a, b in zip(jobs[4:], jobs[5:]):
            self.assertLessEqual(a["finished_usec"], b["started_usec"])

    def test_earlier_schemas_are_migrated(self):
        """A file of an earlier schema (1, 2) is brought to 3, its queued
        job kept."""
        for version in (1, 2):
            with self.subTest(schema=version):
                self.migrate(version)

    def migrate(self, version):
        path = os.path.join(tempfile.mkdtemp(prefix="mprocd-v%d-" % version),
                            "old.db")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        db = sqlite3.connect(path)
        db.executescript(V1_SCHEMA)
        if version == 2:
            db.executescript(V1_TO_V2)
        db.execute("INSERT INTO jobs (id, pool, argv, cwd, uid, state, "
                   "attempts, submitted_usec, seq) VALUES (7, 'default', "
                   "?, '/', 0, 0, 0, 1, 7)", (b"echo\0v1\0",))
        db.execute("UPDATE meta SET value = 8")
        db.commit()
        db.close()
        self.start(conf(main="state = %s" % path))
        j = self.wait([7])[0]
        self.assertEqual(j["state"], "succeeded")
        r = self.c.call("io.mprocd.Get", {"id": 7})
        self.assertEqual(base64.b64decode(r["stdout"]), b"v1\n")
        self.assertEqual(self.submit(["sh", "-c", "echo e >&2; sleep 0.05; "
                                      "echo o"], lock="x"), 8)
        self.wait([8])
        # Exclusive while mprocd runs: read after it stops.
        self.d.stop()
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 3)
        self.assertEqual(db.execute("SELECT lock, length(runs) FROM jobs "
                                    "WHERE id = 8").fetchone(), ("x", 8))
        db.close()

    def test_output_order_damaged(self):
        """A record of a job's output order that does not add up to its
        output is not used: stdout, then stderr, and a warning."""
        self.start(conf())
        jid = self.submit(["sh", "-c", "echo e >&2; sleep 0.05; echo o"])
        self.wait([jid])
        self.d.stop()
        db = sqlite3.connect(self.db())
        db.execute("UPDATE jobs SET runs = ? WHERE id = ?",
                   (b"\x05\x00\x00\x80\x02\x00\x00\x00", jid))
        db.commit()
        db.close()
        self.d.start()
        self.c = self.d.connect()
        r = self.c.call("io.mprocd.Follow", {"id": jid})
        self.assertEqual((base64.b64decode(r["stdout"]),
                          base64.b64decode(r["stderr"])), (b"o\n", b"e\n"))
        self.c.send("io.mprocd.Follow", {"id": jid}, more=True)
        pieces = []
        while True:
            m = self.c.recv()
            p = m["parameters"]
            pieces += [(s, base64.b64decode(p[s])) for s in
                       ("stdout", "stderr") if s in p]
            if not m.get("continues"):
                break
        self.assertEqual(pieces, [("stdout", b"o\n"), ("stderr", b"e\n")])
        self.assertIn("its output's order in the state database does not "
                      "add up", self.d.log())

    def test_running_job_with_retries_runs_again(self):
        self.start(conf(default="workers = 1"))
        marker = self.path("ran")
        jid = self.submit(["sh", "-c", 'if [ -e "$1" ]; then echo again; '
                           'else touch "$1"; sleep 100; fi', "sh", marker],
                          retries=1)
        wait_for(lambda: os.path.exists(marker), "the first attempt")
        self.restart(signal.SIGKILL)
        j = self.wait([jid])[0]
        self.assertEqual((j["state"], j["attempts"]), ("succeeded", 2))
        self.assertIn("mprocd stopped while it ran; running the job "
                      "again", self.d.log())

    def test_keep_finished_prunes_the_file(self):
        self.start(conf(main="keep_finished = 5", default="workers = 2"))
        ids = [self.submit(["true"]) for _ in range(30)]
        # (The first may be pruned before a Wait would see them.)
        wait_for(lambda: self.job(ids[-1])["state"] == "succeeded",
                 "the last job done")
        wait_for(lambda: len(self.c.call("io.mprocd.List")["jobs"]) <= 5,
                 "the oldest pruned")
        # In the file too (mprocd holds it exclusively while it runs).
        self.d.stop()
        self.assertLessEqual(db_query(self.db(), "SELECT count(*) FROM jobs "
                                      "WHERE state >= 2")[0][0], 5)
        self.d.start()
        self.c = self.d.connect()
        with self.assertRaises(VarlinkError):
            self.c.call("io.mprocd.Get", {"id": ids[0]})
        self.assertEqual(self.job(ids[-1])["state"], "succeeded")

    def test_finished_jobs_read_back_from_the_file(self):
        """More finished jobs than memory keeps (a thousand): the older
        ones come from the file, in List too."""
        self.start(conf(main="keep_finished = 100000",
                        default="workers = 2"))
        ids = []
        for i in range(0, 1300, 100):
            for k in range(100):
                self.c.send("io.mprocd.Submit",
                            {"argv": ["echo", str(i + k)]})
            ids += [self.c.recv()["parameters"]["id"] for _ in range(100)]
        self.wait(ids)
        r = self.c.call("io.mprocd.Get", {"id": ids[0]})
        self.assertEqual(r["job"]["state"], "succeeded")
        self.assertEqual(base64.b64decode(r["stdout"]), b"0\n")
        listed = [j["id"] for j in self.c.call("io.mprocd.List")["jobs"]]
        self.assertEqual(listed, ids)

    def test_a_second_mprocd_on_the_file_is_refused(self):
        self.start(conf())
        other = self.daemon(conf(), start=False)
        with open(other.conf, "w") as f:
            f.write(conf(main="state = %s" % self.db()))
        other.start(wait=False)
        self.assertEqual(other.wait_exit(), 1)
        self.assertIn("cannot use the state database, not starting: %s: "
                      "database is locked" % self.db(), other.log())
        self.wait([self.submit(["true"])])

    def test_list_behind_held_replies_keeps_call_order(self):
        """A List pipelined behind a Submit: the Submit's reply is held
        until its commit; the List's reply, written in slices, comes after
        it all the same."""
        self.start(conf(default="workers = 1"))
        for rnd in range(20):
            self.c.send("io.mprocd.Submit", {"argv": ["true"]})
            self.c.send("io.mprocd.List")
            first, second = self.c.recv(), self.c.recv()
            self.assertIn("id", first["parameters"], (rnd, first))
            self.assertIn("jobs", second["parameters"], (rnd, second))
            self.assertIn(first["parameters"]["id"],
                          [j["id"] for j in second["parameters"]["jobs"]])

    def test_state_none_writes_nothing(self):
        self.start(conf(main="state = none"))
        self.wait([self.submit(["true"])])
        self.assertFalse(os.path.exists(self.db()))
        self.assertNotIn("state", self.d.status())


class TestKill9(StoreTestCase):
    """Rounds of pipelined Submits, jobs finishing and cancelled, while
    mprocd is SIGKILLed at a random moment and started again."""

    ROUNDS = int(os.environ.get("STORE_KILL_ROUNDS", "8"))

    def test_kill9_under_load(self):
        rng = random.Random(int(os.environ.get("STORE_SEED", "0")) or
                            random.SystemRandom().randrange(1 << 30))
        self.start(conf(main="keep_finished = 1000000",
                        default="workers = 2; retries = 1"))
        answered = {}           # id -> argv, every Submit answered
        finished = {}           # id -> state reported finished by Wait
        for rnd in range(self.ROUNDS):
            stop = threading.Event()
            errors = []

            def client():
                try:
                    c = Conn(self.d.sock)
                    n = 0
                    while not stop.is_set():
                        batch = [["echo", "r%d-%d" % (rnd, n + k)]
                                 for k in range(50)]
                        n += 50
                        for argv in batch:
                            c.send("io.mprocd.Submit", {"argv": argv})
                        for argv in batch:
                            r = c.recv()
                            if r is None:
                                return
                            if "error" in r:
                                errors.append(r)
                                continue
                            answered[r["parameters"]["id"]] = argv
                        ids = sorted(answered)[-20:]
                        c.send("io.mprocd.Wait", {"ids": ids,
                                                  "timeout_sec": 5})
                        r = c.recv()
                        if r is None:
                            return
                        for j in r.get("parameters", {}).get("jobs", []):
                            finished[j["id"]] = j["state"]
                except (ConnectionError, OSError):
                    pass

            t = threading.Thread(target=client, daemon=True)
            t.start()
            time.sleep(rng.uniform(0.05, 0.4))
            self.d.signal(signal.SIGKILL)
            self.d.wait_exit()
            stop.set()
            t.join(10)
            self.assertFalse(t.is_alive(), "the client hung")
            self.assertEqual(errors, [])
            for c in self.d.conns:
                c.close()
            self.d.conns = []
            self.d.start()
            self.c = self.d.connect()
            # Every id answered is there, with its argv; no finish taken
            # back.
            listed = {j["id"]: j for j in self.c.call("io.mprocd.List")
                      ["jobs"]}
            missing = sorted(set(answered) - set(listed))
            self.assertEqual(missing, [], "round %d: answered ids gone"
                             % rnd)
            for jid, argv in answered.items():
                self.assertEqual(listed[jid]["argv"], argv)
            for jid, state in finished.items():
                self.assertEqual(listed[jid]["state"], state,
                                 "job %d finished, then not" % jid)
            # No id given twice: a new one is beyond all.
            new = self.submit(["true"])
            self.assertGreater(new, max(listed))
            answered[new] = ["true"]
        # Everything runs out; the file is sound.
        self.wait(sorted(answered))
        self.assertEqual(self.d.stop(), 0)
        self.assertEqual(db_query(self.db(), "PRAGMA integrity_check"),
                         [("ok",)])
        print("FIGURE kill -9 under load: %d rounds, %d Submits answered "
              "and found again, %d finishes reported and kept"
              % (self.ROUNDS, len(answered), len(finished)),
              file=sys.stderr, flush=True)


class TestCrashPoints(StoreTestCase):
    """mprocd aborted at fixed moments (MPROCD_TEST_CRASH=POINT:N, a
    test-only hook): before a commit, after one but before its replies go,
    with a job's end written but not committed, at a WAL checkpoint. After
    each, started again on the same file: nothing answered is missing or
    changed, no id repeats, the file is sound."""

    def crash_at(self, point, n, stdin_kib=0):
        self.start(conf(main="keep_finished = 1000000",
                        default="workers = 2; retries = 1"),
                   env={"MPROCD_TEST_CRASH": "%s:%d" % (point, n)})
        answered, finished = {}, {}
        stdin = base64.b64encode(b"x" * (stdin_kib << 10)).decode()
        c = Conn(self.d.sock)
        try:
            for k in range(100000):
                if self.d.proc.poll() is not None:
                    break
                argv = ["echo", "%s-%d" % (point, k)]
                p = {"argv": argv}
                if stdin_kib:
                    p["stdin"] = stdin
                for _ in range(20):
                    c.send("io.mprocd.Submit", p)
                for _ in range(20):
                    r = c.recv()
                    if r is None:
                        raise ConnectionError
                    answered[r["parameters"]["id"]] = argv
                c.send("io.mprocd.Wait", {"ids": sorted(answered)[-5:],
                                          "timeout_sec": 2})
                r = c.recv()
                if r is None:
                    raise ConnectionError
                for j in r.get("parameters", {}).get("jobs", []):
                    finished[j["id"]] = j["state"]
        except (ConnectionError, OSError):
            pass
        finally:
            c.close()
        self.assertGreater(len(answered), 0, "nothing was answered")
        self.assertEqual(self.d.wait_exit(), -signal.SIGABRT,
                         "mprocd did not abort at %s" % point)
        self.assertIn("crash point %s reached" % point, self.d.log())
        for conn in self.d.conns:
            conn.close()
        self.d.conns = []
        self.d.start(wait=False, env={"MPROCD_TEST_CRASH": ""})
        self.wait_answering()
        listed = {j["id"]: j for j in self.c.call("io.mprocd.List")["jobs"]}
        self.assertEqual(sorted(set(answered) - set(listed)), [])
        for jid, argv in answered.items():
            self.assertEqual(listed[jid]["argv"], argv)
        for jid, state in finished.items():
            self.assertEqual(listed[jid]["state"], state)
        self.assertGreater(self.submit(["true"]), max(listed))
        self.wait(sorted(listed))
        self.assertEqual(self.d.stop(), 0)
        self.assertEqual(db_query(self.db(), "PRAGMA integrity_check"),
                         [("ok",)])

    def test_before_commit(self):
        self.crash_at("before-commit", 30)

    def test_after_commit(self):
        self.crash_at("after-commit", 30)

    def test_inside_a_finish(self):
        self.crash_at("finish", 40)

    def test_at_a_checkpoint(self):
        # 4 KiB pages: a WAL of 1,000 pages comes with some 4 MiB.
        self.crash_at("checkpoint", 1, stdin_kib=16)


class TestBadFiles(StoreTestCase):

    def start_on(self, make):
        """Starts mprocd on a state database make(path) prepared; returns
        its exit status and log (it is expected to refuse)."""
        d = self.daemon(conf(), start=False)
        path = os.path.join(d.dir, DB)
        make(path)
        before = open(path, "rb").read() if os.path.isfile(path) else None
        d.start(wait=False)
        status = d.wait_exit()
        if before is not None:
            self.assertEqual(open(path, "rb").read(), before,
                             "mprocd changed a file it refused")
        return status, d.log(), path

    def good_db(self, path):
        d = self.daemon(conf(), start=False)
        d.dir, d.sock = os.path.dirname(path), os.path.join(
            os.path.dirname(path), "x.sock")
        d.start()
        c = d.connect()
        for i in range(50):
            c.call("io.mprocd.Submit", {"argv": ["echo", "x" * 500, str(i)]})
        d.stop()

    def test_garbage_is_not_a_database(self):
        def make(path):
            with open(path, "wb") as f:
                f.write(os.urandom(8192))
        status, log, path = self.start_on(make)
        self.assertEqual(status, 1)
        self.assertIn("cannot use the state database, not starting: %s: "
                      % path, log)
        self.assertIn("not a database", log)

    def test_flipped_bytes_are_refused(self):
        def make(path):
            self.good_db(path)
            # Pages 2 and 3 (the jobs, their index): headers and cells.
            with open(path, "r+b") as f:
                f.seek(4096)
                f.write(b"\xa5" * 8192)
        status, log, path = self.start_on(make)
        self.assertEqual(status, 1)
        self.assertIn(path, log)
        self.assertRegex(log, r"quick_check|malformed|corrupt")

    def test_newer_schema_is_refused(self):
        def make(path):
            self.good_db(path)
            c = sqlite3.connect(path)
            c.execute("PRAGMA user_version = 99")
            c.commit()
            c.close()
        status, log, path = self.start_on(make)
        self.assertEqual(status, 1)
        self.assertIn("schema version 99 is newer", log)

    def test_someone_elses_database_is_refused(self):
        def make(path):
            c = sqlite3.connect(path)
            c.execute("CREATE TABLE t (x)")
            c.commit()
            c.close()
        status, log, path = self.start_on(make)
        self.assertEqual(status, 1)
        self.assertIn("not mprocd's state database", log)

    def test_a_directory_in_its_place(self):
        status, log, path = self.start_on(os.mkdir)
        self.assertEqual(status, 1)
        self.assertIn(path, log)

    def test_another_users_database(self):
        """mprocd run as another user on root's database (0600): it stops
        with the path and why, and the file is untouched."""
        if os.geteuid() != 0:
            self.skipTest("SKIPPED: needs root (runs mprocd as uid %d)"
                          % OTHER_UID)
        d = self.daemon(conf(), start=False)
        os.chmod(d.dir, 0o755)
        path = os.path.join(d.dir, DB)
        self.good_db(path)
        os.chmod(path, 0o600)
        before = open(path, "rb").read()
        r = subprocess.run(as_other_user(MPROCD, "-c", d.conf, "-s",
                                         os.path.join(d.dir, "o.sock")),
                           capture_output=True, text=True, timeout=20,
                           env=dict(os.environ, STATE_DIRECTORY=d.dir,
                                    XDG_RUNTIME_DIR=d.dir))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot use the state database, not starting: %s: "
                      % path, r.stderr)
        self.assertRegex(r.stderr, r"unable to open|readonly|permission")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_check_config_names_the_path(self):
        d = self.daemon(conf(), start=False)
        r = subprocess.run([MPROCD, "-c", d.conf, "--check-config"],
                           capture_output=True, text=True,
                           env=dict(os.environ, STATE_DIRECTORY=d.dir))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("state database %s/mprocd.db, durability crash"
                      % d.dir, r.stdout)
        with open(d.conf, "a") as f:
            f.write("[mprocd]\n")
        with open(d.conf, "w") as f:
            f.write(conf(main="state = none"))
        r = subprocess.run([MPROCD, "-c", d.conf, "--check-config"],
                           capture_output=True, text=True)
        self.assertIn("state = none: jobs in memory only", r.stdout)


class TestDiskFull(StoreTestCase):
    """The database on a 2 MiB tmpfs: filled up, Submits are answered
    StorageFailed and nothing acknowledged is lost; space freed, they work
    again."""

    def test_disk_full(self):
        if os.geteuid() != 0:
            self.skipTest("SKIPPED: mounting a small tmpfs needs root")
        mnt = tempfile.mkdtemp(prefix="mprocd-full-")
        self.addCleanup(shutil.rmtree, mnt, True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m",
                            "tmpfs", mnt], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("SKIPPED: cannot mount a tmpfs here: %s"
                          % r.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        self.start(conf(main="state = %s/mprocd.db" % mnt,
                        default="workers = 1", gated="workers = 1"))
        ok = [self.submit(["true"], stdin="") for _ in range(5)]
        self.wait(ok)
        # One queued behind a gate, to be cancelled while the disk is full.
        self.gate("g", pool="gated")
        gated = self.submit(["echo", "gated"], pool="gated")
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        big = base64.b64encode(os.urandom(300 << 10)).decode()
        failed = 0
        for _ in range(10):
            try:
                ok.append(self.submit(["true"], stdin=big))
            except VarlinkError as e:
                self.assertEqual(e.error, "io.mprocd.StorageFailed")
                self.assertIn("mprocd.db", e.parameters["reason"])
                failed += 1
        self.assertGreater(failed, 0, "the disk never filled")
        # A Cancel that cannot be stored did nothing: the job stays queued.
        for _ in range(10):
            try:
                self.c.call("io.mprocd.Cancel", {"id": gated})
            except VarlinkError as e:
                self.assertEqual(e.error, "io.mprocd.StorageFailed")
                break
        else:
            self.fail("no Cancel was refused while the disk was full")
        self.assertEqual(self.job(gated)["state"], "queued")
        print("FIGURE disk full: %d Submits refused StorageFailed, %d "
              "acknowledged kept" % (failed, len(ok)), file=sys.stderr,
              flush=True)
        self.assertIsNone(self.d.proc.poll(), "mprocd died")
        os.unlink(filler)
        again = self.submit(["echo", "again"])
        ok.append(again)
        self.release("g")
        ok.append(gated)
        jobs = self.wait(ok)
        self.assertEqual({j["state"] for j in jobs}, {"succeeded"})
        self.restart()
        for jid in ok:
            self.assertEqual(self.job(jid)["state"], "succeeded")


if __name__ == "__main__":
    main()
