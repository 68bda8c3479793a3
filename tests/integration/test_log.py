"""The multiprocess-safe logger hammered: many processes write one file while
it is renamed away and reopened again and again, as logrotate does. Every
record must come out whole and parse as strict logfmt, none lost, none
twice, and none written to a rotated file after its process reopened. First
log-hammer's processes use lib/log.c directly, then the daemon's supervisor
and workers log thousands of jobs under SIGUSR1; last, idle workers let go
of the rotated file."""

import json
import os
import re
import signal
import subprocess
import threading
from datetime import datetime

from mprocd_test import TIMEOUT, DaemonTestCase, conf, main, wait_for

LOG_HAMMER = os.environ.get("LOG_HAMMER", "tests/helpers/log-hammer")
RECORD_MAX = 4096       # LOG_RECORD_MAX, the newline included
WAIT = TIMEOUT * 0.75   # a Wait is bounded below the socket's timeout

# --- A strict parser of the file target's records --------------------------

LEVELS = ("debug", "info", "notice", "warning", "error", "crit")
HEAD = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})Z (%s)"
                  % b"|".join(l.encode() for l in LEVELS))
# " key=value": bare (nothing that would need quotes) or quoted, where only
# \" \\ \n \t \r and \xNN escapes appear and nothing needing one is raw.
PAIR = re.compile(rb' ([a-z][a-z0-9_]*)=(?:"((?:[^"\\\x00-\x1f\x7f]+'
                  rb'|\\["\\ntr]|\\x[0-9a-f]{2})*)"|([^\x00-\x20"=\\\x7f]+))')
ESCAPE = re.compile(rb'\\(["\\ntr]|x[0-9a-f]{2})')
SIMPLE = {b'"': b'"', b"\\": b"\\", b"n": b"\n", b"t": b"\t", b"r": b"\r"}
CUT = " [cut]"
CONTEXT = ("pool", "worker", "job")


def unescape(m):
    e = m.group(1)
    if e in SIMPLE:
        return SIMPLE[e]
    c = int(e[1:], 16)
    # \xNN only for what has no shorter escape and cannot be written raw.
    if not (c < 0x20 or c == 0x7f) or c in (0x09, 0x0a, 0x0d):
        raise ValueError("needless escape \\%s" % e.decode())
    return bytes([c])


class Record:
    """One parsed line: ts, level, fields (key -> value, str), cut (the keys
    whose value was cut, " [cut]" taken off), keys in order, and line."""

    def __init__(self, line):
        self.line = line
        if len(line) > RECORD_MAX:
            raise ValueError("%d bytes, more than %d" % (len(line),
                                                         RECORD_MAX))
        if not line.endswith(b"\n") or b"\n" in line[:-1]:
            raise ValueError("not one line ending in a newline")
        m = HEAD.match(line)
        if m is None:
            raise ValueError("no timestamp and level")
        self.ts = datetime(*map(int, m.groups()[:7]))  # checks the ranges
        self.level = m.group(8).decode()
        self.keys, self.fields, self.cut = [], {}, set()
        pos = m.end()
        while pos < len(line) - 1:
            m = PAIR.match(line, pos)
            if m is None:
                raise ValueError("bad logfmt at byte %d: %r"
                                 % (pos, line[pos:pos + 40]))
            key = m.group(1).decode()
            if key in self.fields:
                raise ValueError("%s= twice" % key)
            if m.group(3) is not None:
                val = m.group(3)
            else:
                val = ESCAPE.sub(unescape, m.group(2))
            val = val.decode(errors="surrogateescape")
            if m.group(2) is not None and m.group(2).endswith(b" [cut]"):
                self.cut.add(key)
                val = val[:-len(CUT)]
            self.keys.append(key)
            self.fields[key] = val
            pos = m.end()
        if "msg" not in self.fields:
            raise ValueError("no msg=")
        ctx = self.keys[:self.keys.index("msg")]
        if ctx != [k for k in CONTEXT if k in ctx]:
            raise ValueError("context fields %s before msg=" % ctx)
        if "pool" in ctx and "worker" in ctx:
            raise ValueError("both pool= and worker=")
        if "job" in ctx and not re.fullmatch(r"[1-9][0-9]*", self["job"]):
            raise ValueError("job=%s" % self["job"])

    def __getitem__(self, key):
        return self.fields[key]

    def get(self, key, default=None):
        return self.fields.get(key, default)

    @property
    def msg(self):
        return self.fields["msg"]


def read_records(test, path):
    """Every record of a log file, each checked by Record; none torn."""
    with open(path, "rb") as f:
        data = f.read()
    if data:
        test.assertTrue(data.endswith(b"\n"),
                        "%s ends in a partial line: %r" % (path, data[-80:]))
    # Split at newlines only: a raw \r or other control is a bad record.
    lines = [l + b"\n" for l in data[:-1].split(b"\n")] if data else []
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(Record(line))
        except ValueError as e:
            test.fail("%s line %d: %s:\n%r" % (path, i + 1, e, line[:300]))
    test.assertEqual(len(records), data.count(b"\n"))
    return records


def rotated(path, renames):
    """The files in rotation order: path.1 ... path.N, then path itself
    (which the last rename may have left absent)."""
    names = ["%s.%d" % (path, i) for i in range(1, renames + 1)]
    return names + ([path] if os.path.exists(path) else [])


# --- log-hammer -----------------------------------------------------------

PADS = "".join(" " if k % 61 == 60 else '"' if k % 97 == 96 else
               chr(ord("a") + k % 26) for k in range(5000))


def hammer_pad(proc, seq):
    """The pad= log-hammer writes in record seq of child proc."""
    n = (seq * 7919 + proc * 104729) % len(PADS)
    if seq % 3 != 0:
        n %= 300
    return PADS[:n]


def quoted_len(value):
    """Bytes value takes as a logfmt value (it has no control characters)."""
    if value and not re.search(r'[\s"=\\]', value):
        return len(value)
    return 2 + len(value) + value.count('"') + value.count("\\")


class TestHammer(DaemonTestCase):
    """lib/log.c itself, from log-hammer's processes."""

    PROCS = 8
    RECORDS = 5000

    def test_rotation_under_load(self):
        d = self.daemon(start=False)    # for its directory and cleanup
        path = os.path.join(d.dir, "hammer.log")
        p = subprocess.run([LOG_HAMMER, path, str(self.PROCS),
                            str(self.RECORDS)], capture_output=True,
                           text=True, timeout=TIMEOUT * 3)
        self.assertEqual(p.stderr, "", "log-hammer wrote to stderr")
        self.assertEqual(p.returncode, 0)
        renames = int(p.stdout)
        self.assertGreater(renames, 5, "too few renames to test anything")

        files = rotated(path, renames)
        self.assertEqual(sorted(os.listdir(d.dir)),
                         sorted([os.path.basename(f) for f in files]
                                + ["mprocd.conf"]))
        seqs = {n: [] for n in range(self.PROCS)}   # (file, seq) read order
        cut = 0
        for fi, f in enumerate(files):
            for r in read_records(self, f):
                self.assertEqual((r.level, r.keys, r.msg),
                                 ("info", ["worker", "msg", "proc", "seq",
                                           "pad"], "record"), r.line)
                proc, seq = int(r["proc"]), int(r["seq"])
                self.assertEqual(r["worker"], "hammer/%d" % proc, r.line)
                self.assertIn(proc, seqs, r.line)
                seqs[proc].append((fi, seq))
                self.check_pad(r, proc, seq)
                cut += "pad" in r.cut
        self.assertGreater(cut, 0, "no record was long enough to be cut")

        for proc, fs in seqs.items():
            got = [s for _, s in fs]
            missing = sorted(set(range(self.RECORDS)) - set(got))
            self.assertEqual(missing, [], "proc %d: records lost" % proc)
            self.assertEqual(len(got), self.RECORDS,
                             "proc %d: records written twice" % proc)
            by_file = {}
            for fi, s in fs:
                by_file.setdefault(fi, []).append(s)
            for fi, here in by_file.items():
                self.assertEqual(here, sorted(here), "proc %d: out of order "
                                 "in %s" % (proc, files[fi]))
            # Read oldest file first, a process's records are in order: it
            # never wrote to a file it had already left.
            self.assertEqual(got, list(range(self.RECORDS)),
                             "proc %d: a record in a rotated file after one "
                             "in a newer file" % proc)
            self.assertGreater(len(by_file), 1,
                               "proc %d: all its records in one file" % proc)
        print("log-hammer: %d renames, %d files, %d records, %d cut"
              % (renames, len(files), self.PROCS * self.RECORDS, cut))

    def check_pad(self, r, proc, seq):
        """pad= is what was written, whole, or cut only if it had to be."""
        pad, want = r["pad"], hammer_pad(proc, seq)
        whole = (len(r.line) - len(r.line.rpartition(b" pad=")[2])
                 + quoted_len(want) + 1)
        if not r.cut:
            self.assertEqual(pad, want, r.line)
            self.assertLessEqual(whole, RECORD_MAX)
            return
        self.assertGreater(whole, RECORD_MAX, "cut though it fits: %r"
                           % r.line)
        self.assertTrue(want.startswith(pad), "cut pad is not a prefix of "
                        "the real one: %r" % r.line)
        self.assertTrue(r.line.endswith(b' [cut]"\n'), r.line)
        # Nothing else was cut, and the cut kept what fits (an escape
        # that would not fit whole is the only waste).
        self.assertEqual(r.cut, {"pad"}, r.line)
        self.assertGreaterEqual(len(r.line), RECORD_MAX - 1, r.line)


# --- The daemon -----------------------------------------------------------

class Rotator:
    """Renames path to path.1, path.2, ... and sends the daemon SIGUSR1
    after each rename, like logrotate."""

    def __init__(self, d, path):
        self.d, self.path = d, path
        self.renames = 0
        self.stopping = threading.Event()
        self.thread = None

    def rotate(self):
        moved = "%s.%d" % (self.path, self.renames + 1)
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:       # not reopened since the last one
            return None
        self.renames += 1
        self.d.signal(signal.SIGUSR1)
        return moved

    def _run(self, interval):
        while not self.stopping.wait(interval):
            self.rotate()

    def start(self, interval=0.02):
        self.thread = threading.Thread(target=self._run, args=(interval,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread is not None:
            self.stopping.set()
            self.thread.join()
            self.thread = None


class DaemonLogTestCase(DaemonTestCase):

    def start_daemon(self, workers=4):
        self.d = self.daemon(start=False)
        self.path = os.path.join(self.d.dir, "file.log")
        with open(self.d.conf, "w") as f:
            f.write(conf("log_target = file:" + self.path, default=workers))
        self.d.start()
        return self.d

    def reopened(self, path):
        """Whether the supervisor's SIGUSR1 record is in path."""
        try:
            with open(path, "rb") as f:
                return b'msg="received SIGUSR1: log reopened"' in f.read()
        except FileNotFoundError:
            return False


class TestDaemonRotation(DaemonLogTestCase):
    """The supervisor and its workers log thousands of jobs while the file
    is rotated every 20 ms."""

    JOBS = 3000
    CONNS = 2
    CHUNK = 100     # Submits sent before their replies are read

    def submitter(self, argvs, ids, errors):
        try:
            c = self.d.connect()
            for at in range(0, len(argvs), self.CHUNK):
                chunk = argvs[at:at + self.CHUNK]
                c.send_raw(b"".join(json.dumps(
                    {"method": "io.mprocd.Submit",
                     "parameters": {"argv": argv}}).encode() + b"\0"
                    for argv in chunk))
                for argv in chunk:
                    r = c.recv()
                    if r is None or "error" in r:
                        raise AssertionError("Submit: %r" % (r,))
                    ids.append((r["parameters"]["id"], argv[0]))
            for at in range(0, len(ids), self.CHUNK):
                want = [i for i, _ in ids[at:at + self.CHUNK]]
                jobs = c.call("io.mprocd.Wait", {"ids": want,
                                                 "timeout_sec": WAIT})["jobs"]
                if [(j["id"], j["state"]) for j in jobs] != \
                        [(i, "succeeded") for i in want]:
                    raise AssertionError("Wait: %r" % jobs)
        except BaseException as e:
            errors.append(e)

    def test_jobs_during_rotation(self):
        d = self.start_daemon(workers=4)
        # A command name that must be quoted and escaped in cmd=.
        odd = os.path.join(d.dir, 'tr ue"\\')
        os.symlink("/bin/true", odd)
        per = self.JOBS // self.CONNS
        argvs = [[odd] if i % 2 else ["/bin/true"] for i in range(per)]
        results = [[] for _ in range(self.CONNS)]
        errors = []
        rot = Rotator(d, self.path)
        self.addCleanup(rot.stop)
        rot.start()
        threads = [threading.Thread(target=self.submitter,
                                    args=(argvs, results[k], errors))
                   for k in range(self.CONNS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rot.stop()
        if errors:
            raise errors[0]
        cmd = dict(i for r in results for i in r)
        self.assertEqual(len(cmd), self.JOBS)

        # A last rotation, once the supervisor reopened after the one before.
        wait_for(lambda: os.path.exists(self.path), "the file to be reopened")
        self.assertIsNotNone(rot.rotate())
        wait_for(lambda: self.reopened(self.path),
                 "the supervisor to reopen after the last rotation")
        self.assertEqual(d.stop(), 0)

        files = rotated(self.path, rot.renames)
        self.assertGreater(rot.renames, 5, "too few rotations")
        records = []                    # (file index, record), read order
        for fi, f in enumerate(files):
            records += [(fi, r) for r in read_records(self, f)]
        bad = [r.line for _, r in records if r.level in
               ("warning", "error", "crit")]
        self.assertEqual(bad, [])
        reopens = sum(r.msg == "received SIGUSR1: log reopened"
                      for _, r in records)
        self.assertGreaterEqual(reopens, 1)
        self.assertLessEqual(reopens, rot.renames)

        kinds = ("job submitted", "job started", "job finished",
                 "job running", "job done")
        seen = {k: {} for k in kinds}   # msg -> job -> [(position, record)]
        files_of = {}                   # "supervisor" or worker -> files
        for pos, (fi, r) in enumerate(records):
            if r.msg not in seen:
                continue
            jid = int(r["job"])
            self.assertIn(jid, cmd, r.line)
            seen[r.msg].setdefault(jid, []).append((pos, r))
            who = (r["worker"] if r.msg in ("job running", "job done")
                   else "supervisor")
            files_of.setdefault(who, set()).add(fi)
        for k in kinds:
            self.assertEqual(sorted(seen[k]), sorted(cmd),
                             "jobs without a %r record" % k)
            twice = [j for j, rs in seen[k].items() if len(rs) != 1]
            self.assertEqual(twice, [], "jobs with %r more than once" % k)

        uid, me = str(os.getuid()), str(os.getpid())
        workers = {}                    # worker -> [(position, msg, job)]
        for jid, c in cmd.items():
            (ps, sub), (pst, st), (pf, fin), (pr, run), (pd, done) = (
                seen[k][jid][0] for k in kinds)
            self.assertEqual(
                (sub.keys, sub["pool"], sub["uid"], sub["client_pid"],
                 sub["cmd"]),
                (["pool", "job", "msg", "uid", "client_pid", "cmd"],
                 "default", uid, me, c), sub.line)
            w = st["worker"]
            self.assertRegex(w, r"^default/[0-3]$")
            self.assertEqual((st.keys, st["attempt"]),
                             (["worker", "job", "msg", "attempt"], "1"),
                             st.line)
            self.assertEqual(
                (fin.keys, fin["worker"], fin["state"], fin["status"],
                 fin["attempts"]),
                (["worker", "job", "msg", "state", "status", "pid", "ms",
                  "attempts"], w, "succeeded", "0", "1"), fin.line)
            self.assertEqual((run.keys, run["worker"], run["cmd"]),
                             (["worker", "job", "msg", "pid", "cmd"], w, c),
                             run.line)
            self.assertEqual(fin["pid"], run["pid"])
            self.assertEqual((done.keys, done["worker"], done["status"]),
                             (["worker", "job", "msg", "status"], w, "0"),
                             done.line)
            self.assertTrue(ps < pst < pf, "job %d: the supervisor's "
                            "records out of order:\n%s%s%s"
                            % (jid, sub.line, st.line, fin.line))
            self.assertLess(pr, pd, "job %d: done before running" % jid)
            workers.setdefault(w, []).extend([(pr, "job running", jid),
                                              (pd, "job done", jid)])

        # Each process's records in the order it wrote them: the
        # supervisor's job ids as it gave them, each worker's one job after
        # the other (FIFO: ids growing).
        subs = [int(r["job"]) for _, r in records
                if r.msg == "job submitted"]
        self.assertEqual(subs, sorted(subs),
                         "the supervisor's records out of order")
        self.assertEqual(sorted(workers), ["default/%d" % i
                                           for i in range(4)])
        for w, evs in workers.items():
            evs.sort()
            jids = [j for _, _, j in evs[::2]]
            self.assertEqual([(m, j) for _, m, j in evs],
                             [(m, j) for j in jids
                              for m in ("job running", "job done")],
                             "%s: its records out of order" % w)
            self.assertEqual(jids, sorted(jids), "%s: its records out of "
                             "order" % w)
        # The rotations happened under everyone's feet.
        for who, fs in sorted(files_of.items()):
            self.assertGreater(len(fs), 1, "%s's records all in one file"
                               % who)
        print("daemon: %d jobs, %d rotations, %d records, %d reopens"
              % (len(cmd), rot.renames, len(records), reopens))


class TestHostileCommand(DaemonLogTestCase):
    """A job's command is data: the field separator in it adds no field,
    and a long one is cut with a mark while the record keeps its fields."""

    def test_separator_and_length(self):
        d = self.start_daemon(workers=1)
        c = d.connect()
        cmds = ["nonexist\x1fpool=admin\x1fstate=succeeded",
                "y" * 9000 + "\x1fstatus=0"]
        ids = [c.call("io.mprocd.Submit", {"argv": [cmd]})["id"]
               for cmd in cmds]
        jobs = c.call("io.mprocd.Wait", {"ids": ids,
                                         "timeout_sec": TIMEOUT})["jobs"]
        self.assertEqual([j["state"] for j in jobs], ["failed", "failed"])
        self.assertEqual(d.stop(), 0)
        recs = read_records(self, self.path)
        for jid, cmd in zip(ids, cmds):
            for msg in ("job submitted", "job running"):
                got = [r for r in recs if r.get("job") == str(jid)
                       and r.msg == msg]
                self.assertEqual(len(got), 1, msg)
                r = got[0]
                self.assertNotIn("state", r.fields)
                self.assertNotIn("status", r.fields)
                # Only the supervisor's record names the pool itself.
                self.assertEqual(r.get("pool"), "default"
                                 if msg == "job submitted" else None)
                want = cmd.replace("\x1f", "?")
                if len(want) < 1024:
                    self.assertEqual(r["cmd"], want)
                else:
                    self.assertIn("cmd", r.cut)
                    self.assertTrue(want.startswith(r["cmd"]))
                    self.assertGreater(len(r["cmd"]), 900)
            fin = [r for r in recs if r.get("job") == str(jid)
                   and r.msg == "job finished"]
            self.assertEqual([(r["state"], r["status"]) for r in fin],
                             [("failed", "127")])


class TestIdleRotation(DaemonLogTestCase):
    """A rotation while every worker is idle: each lets go of the rotated
    file at once, and their next records go to the new one."""

    def log_fds(self, pid):
        """The targets of pid's descriptors that are our log files."""
        out = []
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except FileNotFoundError:
                continue
            if t.startswith(self.path):
                out.append(t)
        return sorted(out)

    def test_idle_workers_reopen(self):
        d = self.start_daemon(workers=4)
        pids = d.worker_pids()
        self.assertEqual(len(pids), 4)
        for pid in pids + [d.pid]:
            self.assertEqual(self.log_fds(pid), [self.path])
        moved = self.path + ".1"
        os.rename(self.path, moved)
        d.signal(signal.SIGUSR1)
        wait_for(lambda: self.reopened(self.path),
                 "the supervisor's record in the new file")
        self.assertFalse(self.reopened(moved))
        # Idle, they reopen at once: nothing holds the old file.
        for pid in pids + [d.pid]:
            wait_for(lambda: self.log_fds(pid) == [self.path],
                     "pid %d to hold only the new file" % pid)
        self.assertEqual(d.worker_pids(), pids)

        # One job on each worker: all their records in the new file.
        gate = os.path.join(d.dir, "gate")
        c = d.connect()
        ids = [c.call("io.mprocd.Submit", {"argv": [
            "sh", "-c", 'while [ ! -e "$1" ]; do sleep 0.02; done', "sh",
            gate]})["id"] for _ in range(4)]
        wait_for(lambda: sorted(w.get("job", 0) for w in
                                d.pool()["workers"]) == ids,
                 "every worker to run one of the jobs")
        open(gate, "w").close()
        jobs = c.call("io.mprocd.Wait", {"ids": ids,
                                         "timeout_sec": WAIT})["jobs"]
        self.assertEqual([j["state"] for j in jobs], ["succeeded"] * 4)
        self.assertEqual(sorted(j["worker"] for j in jobs),
                         ["default/%d" % i for i in range(4)])
        self.assertEqual(d.stop(), 0)
        old, new = read_records(self, moved), read_records(self, self.path)
        for jid in ids:
            self.assertEqual([r.line for r in old if r.get("job") == str(jid)],
                             [], "job %d: records in the rotated file" % jid)
            self.assertEqual(
                [r.msg for r in new if r.get("job") == str(jid) and
                 r.msg in ("job running", "job done")],
                ["job running", "job done"], "job %d" % jid)


if __name__ == "__main__":
    main()
