"""mprocd's journal logging against a real systemd-journald, started by hand
for each test in a private mount namespace (tmpfs on /run, and on
/var/log/journal if the machine has one, so nothing of the host's is read
or written). mprocd and journalctl join that namespace with nsenter.

Checked: with log_target = journal every record is one native entry with
MESSAGE (text and logfmt fields), PRIORITY, SYSLOG_IDENTIFIER, CODE_* and
MPROCD_* fields, sent by the process it is about (supervisor or worker);
a job's own output never reaches the journal; a worker killed with SIGKILL
is a crash record at warning and its replacement is logged; log_target =
auto picks the native API when stderr is the stream JOURNAL_STREAM names
(and only then); log_target = stderr on the stream gives each line the
priority of its "<N>" prefix.

Needs root (CAP_SYS_ADMIN for unshare --mount), unshare, nsenter, journalctl
and systemd-journald; without them every test is skipped, loudly."""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import uuid

from mprocd_test import TIMEOUT, DaemonTestCase, conf, main, wait_for

JOURNALD_PATHS = ("/lib/systemd/systemd-journald",
                  "/usr/lib/systemd/systemd-journald")

# Run by unshare in the new mount namespace, then becomes journald ($1).
NAMESPACE_SCRIPT = """set -e
mount -t tmpfs -o mode=0755 mprocd-test /run
mkdir -p /run/systemd /run/log
if [ -d /var/log/journal ]; then
    mount -t tmpfs -o mode=2755 mprocd-test /var/log/journal
fi
exec "$1"
"""

# Puts the JOURNAL_STREAM systemd would set for the stream on fd 2 (as
# systemd-cat does not), then runs the command.
SET_JOURNAL_STREAM = ('JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) '
                      '|| exit 125; export JOURNAL_STREAM; exec "$@"')

# Why journald cannot be had here, once found out; then every test skips.
_unavailable = None
_announced = False


def skip_all(reason):
    """Skips this test and says so on stderr (once), for the log grep."""
    global _unavailable, _announced
    _unavailable = reason
    if not _announced:
        _announced = True
        print("SKIPPED: journal tests: %s" % reason, file=sys.stderr,
              flush=True)
    raise unittest.SkipTest("SKIPPED: journal tests: %s" % reason)


def text(v):
    """A field's value as a string (journalctl gives binary ones as a list
    of byte values, repeated fields as a list of those)."""
    if isinstance(v, list):
        if all(isinstance(x, int) for x in v):
            return bytes(v).decode("utf-8", "replace")
        return "\n".join(text(x) for x in v)
    return "" if v is None else str(v)


class Journald:
    """A systemd-journald of our own in a new mount namespace."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mprocd-journald-")
        self.outpath = os.path.join(self.dir, "journald.out")
        self.proc = None

    def output(self):
        try:
            with open(self.outpath, errors="replace") as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def start(self):
        """Starts it; returns None, or why it could not be started."""
        if os.geteuid() != 0:
            return "not root (unshare --mount needs CAP_SYS_ADMIN)"
        for tool in ("unshare", "nsenter", "journalctl"):
            if shutil.which(tool) is None:
                return "%s is not installed" % tool
        exe = next((p for p in JOURNALD_PATHS if os.access(p, os.X_OK)),
                   None)
        if exe is None:
            return "systemd-journald is not installed (looked for %s)" \
                % ", ".join(JOURNALD_PATHS)
        with open(self.outpath, "wb") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private",
                 "sh", "-c", NAMESPACE_SCRIPT, "sh", exe],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                env=dict(os.environ, SYSTEMD_LOG_TARGET="console",
                         SYSTEMD_LOG_LEVEL="info"))
        ours = os.readlink("/proc/self/ns/mnt")

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            try:
                return (os.readlink("/proc/%d/exe" % self.pid)
                        .endswith("/systemd-journald") and
                        os.readlink("/proc/%d/ns/mnt" % self.pid) != ours and
                        os.path.exists(self.path("/run/systemd/journal/"
                                                 "socket")) and
                        os.path.exists(self.path("/run/systemd/journal/"
                                                 "stdout")))
            except OSError:
                return False
        try:
            wait_for(ready, "systemd-journald to start", timeout=10)
        except AssertionError as e:
            return "%s: %s" % (e, self.output() or "no output")
        if self.proc.poll() is not None:
            return "unshare/systemd-journald exited with %s: %s" \
                % (self.proc.returncode, self.output() or "no output")
        # Up when a record sent to it can be read back.
        try:
            self.barrier(timeout=10)
        except (AssertionError, OSError) as e:
            return "systemd-journald started but %s: %s" \
                % (e, self.output() or "no output")
        return None

    @property
    def pid(self):
        return self.proc.pid

    def path(self, p):
        """p as seen in journald's mount namespace."""
        return "/proc/%d/root%s" % (self.pid, p)

    def nsenter(self):
        """A command prefix that runs in journald's mount namespace, in the
        current directory."""
        return ["nsenter", "--mount=/proc/%d/ns/mnt" % self.pid,
                "--wd=" + os.getcwd(), "--"]

    def entries(self, *matches):
        """Every entry (matching FIELD=value matches), oldest first."""
        if self.proc.poll() is not None:
            raise AssertionError("systemd-journald exited with %s: %s"
                                 % (self.proc.returncode, self.output()))
        r = subprocess.run(self.nsenter() + ["journalctl", "--no-pager",
                                             "--all", "-o", "json"]
                           + list(matches),
                           capture_output=True, timeout=TIMEOUT)
        if r.returncode != 0:
            raise AssertionError("journalctl %s failed (%d): %s"
                                 % (" ".join(matches), r.returncode,
                                    r.stderr.decode(errors="replace")))
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def barrier(self, timeout=TIMEOUT):
        """Sends a native record and waits until it can be read: every
        record sent to the native socket before it is stored by then."""
        tag = "mprocd-test-barrier-%s" % uuid.uuid4().hex
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(("MESSAGE=%s\nSYSLOG_IDENTIFIER=mprocd-test\n" % tag)
                     .encode(), self.path("/run/systemd/journal/socket"))
        finally:
            s.close()
        wait_for(lambda: self.entries("MESSAGE=" + tag),
                 "a test record to be readable from the journal",
                 timeout=timeout, interval=0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class JournalTestCase(DaemonTestCase):

    def setUp(self):
        if _unavailable is not None:
            skip_all(_unavailable)
        self.jd = Journald()
        self.addCleanup(self.jd.stop)
        reason = self.jd.start()
        if reason is not None:
            skip_all(reason)

    def start(self, target, wrapper=(), workers=2, **kw):
        self.d = self.daemon(conf("log_target = " + target, p=workers),
                             wrapper=self.jd.nsenter() + list(wrapper), **kw)
        self.c = self.d.connect()
        st = self.d.status()
        self.sup = st["pid"]
        self.assertEqual(self.sup, self.d.pid,
                         "the wrappers did not exec mprocd in place")
        return st

    def workers(self):
        """{"p/0": pid, ...}"""
        return {w["name"]: w["pid"] for w in self.d.pool("p")["workers"]
                if "pid" in w}

    def run_job(self, argv):
        """Submits to pool p, waits; returns Get's job, stdout, stderr."""
        jid = self.c.call("io.mprocd.Submit", {"argv": argv,
                                               "pool": "p"})["id"]
        jobs = self.c.call("io.mprocd.Wait", {"ids": [jid],
                                              "timeout_sec": TIMEOUT * 0.75})
        self.assertEqual([j["id"] for j in jobs["jobs"]], [jid])
        r = self.c.call("io.mprocd.Get", {"id": jid})
        return (r["job"], base64.b64decode(r["stdout"]),
                base64.b64decode(r["stderr"]))

    def records(self):
        return self.jd.entries("SYSLOG_IDENTIFIER=mprocd")

    def find(self, recs, message, **fields):
        """The records whose MESSAGE starts with message and that have
        every field given."""
        return [r for r in recs if text(r.get("MESSAGE")).startswith(message)
                and all(text(r.get(k)) == str(v) for k, v in fields.items())]

    def wait_record(self, message, **fields):
        """Waits for a record matching (see find) and returns it, with all
        the records it was found among; fails if more than one matches."""
        def found():
            recs = self.records()
            hit = self.find(recs, message, **fields)
            return hit and (hit, recs)
        hit, recs = wait_for(found, "a journal record %r %s" % (message,
                                                                 fields))
        self.assertEqual(len(hit), 1, "more than one record: %s" % hit)
        return hit[0], recs

    def assert_native(self, rec, priority, pid):
        """What every record of log_target = journal carries."""
        self.assertEqual(text(rec.get("_TRANSPORT")), "journal", rec)
        self.assertEqual(text(rec.get("PRIORITY")), str(priority), rec)
        self.assertEqual(text(rec.get("SYSLOG_IDENTIFIER")), "mprocd", rec)
        self.assertRegex(text(rec.get("CODE_FILE")), r"\S\.c$", rec)
        self.assertRegex(text(rec.get("CODE_LINE")), r"^[1-9][0-9]*$", rec)
        self.assertRegex(text(rec.get("CODE_FUNC")), r"^[A-Za-z_]\w*$", rec)
        self.assertEqual(text(rec.get("_PID")), str(pid), rec)


class TestNative(JournalTestCase):
    """log_target = journal."""

    def test_job_records_carry_their_fields(self):
        st = self.start("journal")
        self.assertEqual([p["name"] for p in st["pools"]], ["p"])
        workers = self.workers()
        self.assertEqual(sorted(workers), ["p/0", "p/1"])
        # Printed whole by the job, never whole on its command line.
        tag = uuid.uuid4().hex
        out_mark = "mprocd-leak-out-" + tag
        err_mark = "mprocd-leak-err-" + tag
        script = ('printf "%s-out-%s\\n" mprocd-leak "$1"; '
                  'printf "%s-err-%s\\n" mprocd-leak "$1" >&2; exit 3')

        ok, out, err = self.run_job(["true"])
        self.assertEqual((ok["state"], ok.get("exit_status")),
                         ("succeeded", 0))
        bad, out, err = self.run_job(["sh", "-c", script, "sh", tag])
        self.assertEqual((bad["state"], bad.get("exit_status")),
                         ("failed", 3))
        self.assertEqual((out, err), (out_mark.encode() + b"\n",
                                      err_mark.encode() + b"\n"))
        # No worker was replaced meanwhile, so these are the senders.
        self.assertEqual(self.workers(), workers)

        for job, state, status, cmd in ((ok, "succeeded", 0, "true"),
                                         (bad, "failed", 3, "sh")):
            jid = job["id"]
            fin, recs = self.wait_record("job finished",
                                         MPROCD_JOB=jid)
            self.assert_native(fin, 6, self.sup)
            self.assertIn(fin.get("MPROCD_WORKER"), workers)
            if "worker" in job:
                self.assertEqual(fin["MPROCD_WORKER"], job["worker"])
            worker = fin["MPROCD_WORKER"]
            self.assertEqual(fin.get("MPROCD_POOL"), "p")
            self.assertEqual(fin.get("MPROCD_STATE"), state)
            self.assertEqual(fin.get("MPROCD_STATUS"), str(status))
            self.assertEqual(fin.get("MPROCD_ATTEMPTS"), "1")
            self.assertRegex(text(fin.get("MPROCD_MS")), r"^[0-9]+$")
            self.assertRegex(text(fin.get("MPROCD_PID")), r"^[1-9][0-9]*$")
            pid = int(fin["MPROCD_PID"])
            if "pid" in job:
                self.assertEqual(pid, job["pid"])
            self.assertEqual(
                fin["MESSAGE"],
                "job finished state=%s status=%d pid=%d ms=%s attempts=1"
                % (state, status, pid, fin["MPROCD_MS"]))
            self.assertNotIn("MPROCD_SIGNAL", fin)

            # The worker's own records about the job, sent by the worker.
            run, recs = self.wait_record("job running", MPROCD_JOB=jid)
            self.assert_native(run, 7, workers[worker])
            self.assertEqual((run.get("MPROCD_WORKER"), run.get("MPROCD_POOL"),
                              run.get("MPROCD_PID"), run.get("MPROCD_CMD")),
                             (worker, "p", str(pid), cmd))
            self.assertEqual(run["MESSAGE"],
                             "job running pid=%d cmd=%s" % (pid, cmd))
            done, recs = self.wait_record("job done", MPROCD_JOB=jid)
            self.assert_native(done, 7, workers[worker])
            self.assertEqual((done.get("MPROCD_WORKER"),
                              done.get("MPROCD_POOL"),
                              done.get("MPROCD_STATUS")),
                             (worker, "p", str(status)))
            self.assertEqual(done["MESSAGE"], "job done status=%d" % status)

        # Each worker's start, logged by the supervisor.
        for name, wpid in workers.items():
            rec, recs = self.wait_record("worker started",
                                         MPROCD_WORKER=name)
            self.assert_native(rec, 6, self.sup)
            self.assertEqual((rec.get("MPROCD_POOL"),
                              rec.get("MPROCD_WORKER_PID"), rec["MESSAGE"]),
                             ("p", str(wpid),
                              "worker started worker_pid=%d" % wpid))
            self.assertNotIn("MPROCD_JOB", rec)

        # Everything is stored by now; none of it is the job's output, and
        # every record is a native one from the supervisor or a worker.
        self.jd.barrier()
        everything = self.jd.entries()
        for rec in everything:
            for k, v in rec.items():
                for mark in (out_mark, err_mark):
                    self.assertNotIn(mark, text(v),
                                     "the job's output is in the journal: "
                                     "%s=%s" % (k, text(v)))
        senders = {str(self.sup)} | {str(p) for p in workers.values()}
        recs = self.records()
        self.assertTrue(recs)
        for rec in recs:
            self.assertIn(text(rec.get("_PID")), senders, rec)
            self.assertEqual(text(rec.get("_TRANSPORT")), "journal", rec)
            self.assertRegex(text(rec.get("PRIORITY")), r"^[0-7]$", rec)
            for k in ("CODE_FILE", "CODE_LINE", "CODE_FUNC", "MESSAGE"):
                self.assertTrue(text(rec.get(k)), "%s missing: %s" % (k, rec))

    def test_killed_worker_is_a_crash_then_a_restart(self):
        self.start("journal")
        victim = self.workers()["p/0"]
        other = self.workers()["p/1"]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            w = self.d.worker("p/0")
            return (w.get("pid") not in (None, victim) and
                    w["state"] == "idle" and w["pid"])
        new = wait_for(replaced, "p/0 to be restarted")

        crash, _ = self.wait_record("worker exited",
                                    MPROCD_WORKER_PID=victim)
        self.assert_native(crash, 4, self.sup)
        self.assertEqual(
            (crash.get("MPROCD_WHY"), crash.get("MPROCD_SIGNAL"),
             crash.get("MPROCD_WORKER"), crash.get("MPROCD_POOL")),
            ("crash", "9", "p/0", "p"))
        self.assertTrue(crash.get("MPROCD_RESTART_DELAY"), crash)
        self.assertEqual(crash["MESSAGE"],
                         "worker exited why=crash signal=9 worker_pid=%d "
                         "restart_delay=%s"
                         % (victim, crash["MPROCD_RESTART_DELAY"]))
        self.assertNotIn("MPROCD_STATUS", crash)
        self.assertNotIn("MPROCD_JOB", crash)

        started, recs = self.wait_record("worker started",
                                         MPROCD_WORKER_PID=new)
        self.assert_native(started, 6, self.sup)
        self.assertEqual(started.get("MPROCD_WORKER"), "p/0")
        # The replacement's start comes after the crash; nothing else died.
        self.assertGreater(recs.index(started), recs.index(crash))
        self.assertEqual(self.find(recs, "worker exited"), [crash])
        self.assertEqual(self.workers()["p/1"], other)

        # The replacement logs natively too.
        job, _, _ = self.run_job(["true"])
        self.assertEqual(job["state"], "succeeded")
        rec, _ = self.wait_record("job running", MPROCD_JOB=job["id"])
        w = rec.get("MPROCD_WORKER")
        self.assert_native(rec, 7, {"p/0": new, "p/1": other}.get(w))


    def test_long_and_hostile_command(self):
        """A command of 10 KB holding the field separator: its record keeps
        every field, the command is cut with a mark, and the separator
        adds no field."""
        self.start("journal")
        cmd = "x" * 10000 + "\x1fstate=succeeded\x1fstatus=0"
        job, _, _ = self.run_job([cmd])
        self.assertEqual((job["state"], job.get("exit_status")),
                         ("failed", 127))
        jid = job["id"]
        for message in ("job submitted", "job running"):
            rec, _ = self.wait_record(message, MPROCD_JOB=jid)
            self.assertNotIn("MPROCD_STATE", rec)
            self.assertNotIn("MPROCD_STATUS", rec)
            logged = text(rec.get("MPROCD_CMD"))
            self.assertTrue(logged.startswith("x" * 1000), logged[:80])
            self.assertNotIn("\x1f", logged)
            self.assertTrue(logged.endswith("x [cut]"), logged[-80:])
            self.assertEqual(rec.get("MPROCD_POOL"), "p")
            self.assertIn("cmd=", text(rec["MESSAGE"]))
        fin, _ = self.wait_record("job finished", MPROCD_JOB=jid)
        self.assertEqual((fin.get("MPROCD_STATE"), fin.get("MPROCD_STATUS")),
                         ("failed", "127"))


class TestStream(JournalTestCase):
    """mprocd with stderr on journald's stdout stream, as under systemd."""

    def setUp(self):
        super().setUp()
        if shutil.which("systemd-cat") is None:
            self.skipTest("SKIPPED: systemd-cat is not installed")
        self.ident = "mprocd-stream-%s" % uuid.uuid4().hex[:12]

    def start_on_stream(self, target, workers=1):
        wrapper = ["systemd-cat", "-t", self.ident, "sh", "-c",
                   SET_JOURNAL_STREAM, "sh"]
        # The setup is what systemd would give: JOURNAL_STREAM names fd 2,
        # a socket (mprocd's own environment is not readable once it has
        # set its process title over it).
        r = subprocess.run(
            self.jd.nsenter() + wrapper +
            ["sh", "-c", 'test "$JOURNAL_STREAM" = '
             '"$(stat -L -c %d:%i /proc/self/fd/2)" && '
             'test -S /proc/self/fd/2'], timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, "JOURNAL_STREAM is not fd 2")
        st = self.start(target, workers=workers, wrapper=wrapper)
        self.assertTrue(os.readlink("/proc/%d/fd/2" % self.sup)
                        .startswith("socket:"))
        return st

    def stream_records(self):
        return self.jd.entries("SYSLOG_IDENTIFIER=" + self.ident)

    def test_auto_on_journal_stream_logs_natively(self):
        self.start_on_stream("auto")
        workers = self.workers()
        job, out, err = self.run_job(
            ["sh", "-c", 'echo "${JOURNAL_STREAM-unset}"'])
        self.assertEqual((job["state"], out, err), ("succeeded", b"unset\n",
                                                     b""))
        jid = job["id"]

        fin, _ = self.wait_record("job finished", MPROCD_JOB=jid)
        self.assert_native(fin, 6, self.sup)
        self.assertEqual((fin.get("MPROCD_POOL"), fin.get("MPROCD_WORKER"),
                          fin.get("MPROCD_STATE"), fin.get("MPROCD_STATUS")),
                         ("p", "p/0", "succeeded", "0"))
        if "pid" in job:
            self.assertEqual(fin.get("MPROCD_PID"), str(job["pid"]))
        # Workers, whose stderr is the same stream, choose the journal too.
        run, _ = self.wait_record("job running", MPROCD_JOB=jid)
        self.assert_native(run, 7, workers["p/0"])
        self.assertEqual(run.get("MPROCD_CMD"), "sh")
        started, _ = self.wait_record("worker started", MPROCD_WORKER="p/0")
        self.assert_native(started, 6, self.sup)
        self.assertEqual(started.get("MPROCD_WORKER_PID"),
                         str(workers["p/0"]))

        self.assertEqual(self.d.stop(), 0)
        rec, _ = self.wait_record("worker exited", MPROCD_WHY="shutdown")
        self.assert_native(rec, 6, self.sup)
        self.assertEqual(rec.get("MPROCD_WORKER"), "p/0")

        # Nothing was written as text to the stream as well.
        self.jd.barrier()
        self.assertEqual([r.get("MESSAGE") for r in self.stream_records()],
                         [])

    def test_stderr_on_journal_stream_has_priority_prefix(self):
        self.start_on_stream("stderr")
        job, _, _ = self.run_job(["sh", "-c", "exit 3"])
        self.assertEqual((job["state"], job.get("exit_status")),
                         ("failed", 3))
        jid = job["id"]
        victim = self.workers()["p/0"]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: self.d.worker("p/0").get("pid") not in
                 (None, victim), "p/0 to be restarted")

        def line(pattern):
            def found():
                return [r for r in self.stream_records()
                        if re.search(pattern, text(r.get("MESSAGE")))]
            hit = wait_for(found, "a line matching %r on the stream"
                           % pattern)
            self.assertEqual(len(hit), 1, hit)
            rec = hit[0]
            self.assertEqual(text(rec.get("_TRANSPORT")), "stdout", rec)
            self.assertFalse(text(rec["MESSAGE"]).startswith("<"), rec)
            self.assertFalse([k for k in rec if k.startswith("MPROCD_")],
                             rec)
            return rec

        ts = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z "
        fin = line(ts + r'info worker=p/0 job=%d msg="job finished" '
                   r"state=failed status=3 " % jid)
        self.assertEqual(fin.get("PRIORITY"), "6")
        run = line(ts + r'debug worker=p/0 job=%d msg="job running" ' % jid)
        self.assertEqual(run.get("PRIORITY"), "7")
        crash = line(ts + r'warning worker=p/0 msg="worker exited" '
                     r"why=crash signal=9 worker_pid=%d " % victim)
        self.assertEqual(crash.get("PRIORITY"), "4")

        # And nothing natively.
        self.jd.barrier()
        self.assertEqual(self.records(), [])

    def test_auto_with_stale_journal_stream_uses_stderr(self):
        """JOURNAL_STREAM inherited from a service but stderr redirected
        elsewhere: not the journal, and no "<N>" prefixes."""
        d = self.daemon(conf("log_target = auto", p=1), start=False)
        open(d.logpath, "ab").close()
        log, cf = os.stat(d.logpath), os.stat(d.conf)
        # The device stderr is on, another inode.
        stale = "%d:%d" % (log.st_dev, cf.st_ino)
        d.start(wrapper=self.jd.nsenter(), env={"JOURNAL_STREAM": stale})
        self.d, self.c = d, d.connect()
        job, _, _ = self.run_job(["true"])
        self.assertEqual(job["state"], "succeeded")
        wait_for(lambda: 'msg="job finished"' in d.log(),
                 "job finished in mprocd's stderr")
        wait_for(lambda: 'msg="job running"' in d.log(),
                 "the worker's job running in mprocd's stderr")
        self.assertFalse([l for l in d.log().splitlines()
                          if l.startswith("<")], d.log())
        self.jd.barrier()
        self.assertEqual(self.records(), [])


if __name__ == "__main__":
    main()
