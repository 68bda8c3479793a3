"""Hostile clients, one kind per test, each while a well-behaved bystander
keeps working on another connection: half messages that stall, oversize
messages, garbage, deep JSON, every wrong type in every parameter of every
method (generated from the interface text), huge argv/env/stdin, invalid
UTF-8, a flood of connections past max_clients (and another user's flood,
which must leave root its reserve), clients that vanish (FIN and reset),
clients that half-close (SHUT_WR) and still get every reply, a client that
never reads its replies; and hygiene: no
descriptor leaked into jobs or left open in the supervisor, no zombie, the
supervisor's memory bounded with 100,000 queued jobs.

What every test checks, through Hostile.bystander():
* a bystander thread on its own connection makes Status round trips the
  whole time and submits a probe job every BYSTANDER_JOB_SEC; each call must
  come back within LATENCY seconds (a bound for a hang, not for speed);
* a job submitted before, the bystander's jobs submitted during, and one
  submitted after all succeed with the right output, and each job saw only
  descriptors 0, 1 and 2;
and then, through Hostile.finish(): the supervisor is alive, its descriptor
count is back to what it was before the test, no child of the supervisor or
of a worker is a zombie, SIGTERM stops it with status 0 (under ASan, with no
leak reported) and its log has no sanitizer report.

Three bugs this suite found are fixed, and their tests say what they were
(TestBigReplies, test_vanish_mid_wait_behind_unread_calls,
test_service_methods_refuse_unknown_parameters).

Figures (latencies, RSS, descriptor counts) are printed at the end as lines
starting "FIGURE". Environment: HOSTILE_LATENCY (seconds, default 2),
HOSTILE_QUEUED (jobs queued by the memory test, default 100000).
"""

import base64
import contextlib
import hashlib
import json
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time

from mprocd_test import (OTHER_UID, TIMEOUT, WAIT, JobsTestCase,
                         VarlinkError, as_other_user, asan_build, conf,
                         fd_count, main, other_user_python, proc_status,
                         wait_for)

INVALID = "org.varlink.service.InvalidParameter"


ASAN = asan_build()
LATENCY = float(os.environ.get("HOSTILE_LATENCY", "2"))
QUEUED = int(os.environ.get("HOSTILE_QUEUED", "100000"))
BYSTANDER_JOB_SEC = 0.25
BYSTANDER_MIN_SEC = 0.6
INT64_MAX = 2 ** 63 - 1
INT64_MIN = -2 ** 63
MiB = 1 << 20
# Connections beyond max_clients kept for root and the daemon's own user
# (CLIENT_RESERVE in control.c; mprocd.conf(5) max_clients): the tests'
# clients are always one or the other, as they start the daemon.
RESERVE = 4

FIGURES = []


def figure(test, text):
    FIGURES.append("FIGURE %s: %s" % (test, text))


def tearDownModule():
    if FIGURES:
        print("\n" + "\n".join(FIGURES) + "\n%s build" %
              ("ASan" if ASAN else "plain"), file=sys.stderr)


# A job that says which descriptors it has (only those that fstat: the one
# listdir used is closed by then) after sleeping $2 seconds: "TAG [0, 1, 2]".
PROBE = r'''
import os, sys, time
time.sleep(float(sys.argv[2]))
fds = []
for f in os.listdir("/proc/self/fd"):
    try:
        os.fstat(int(f))
        fds.append(int(f))
    except OSError:
        pass
print(sys.argv[1], sorted(fds))
'''


# Opens argv[2] connections to the socket argv[1], prints how many
# answered a Status, and holds them all until its stdin closes.
FLOOD = r'''
import socket, sys
conns, answered = [], 0
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sys.argv[1])
    conns.append(s)
for s in conns:
    try:
        s.sendall(b'{"method": "io.mprocd.Status"}\0')
        answered += s.recv(65536) != b""
    except OSError:
        pass
print(answered, flush=True)
sys.stdin.read()
'''


def msg(method, parameters=None, **flags):
    m = {"method": method}
    if parameters is not None:
        m["parameters"] = parameters
    m.update(flags)
    return json.dumps(m).encode() + b"\0"


def rss(pid):
    return proc_status(pid, "VmRSS")


def reset_peak(pid):
    """Resets VmHWM to the current RSS (clear_refs 5); False if we may not."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def zombies(parents):
    """Zombie processes whose parent is one of parents."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if st[0] == "Z" and int(st[1]) in parents:
            found.append(int(p))
    return found


def closed(sock, timeout=10):
    """True once the daemon closed sock (EOF or reset); replies that came
    before are skipped. False if it is still open after timeout."""
    old = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        sock.settimeout(old)


def rst_close(sock):
    """Closes with SO_LINGER 0. On a UNIX socket there is no RST segment:
    the peer sees ECONNRESET if we close with its data unread, which the
    callers arrange by leaving replies unread."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


class Reader:
    """Reads NUL-ended messages fast (replies of megabytes each)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def next(self):
        """The next message's bytes, or None at end of stream."""
        while True:
            i = self.buf.find(b"\0", self.pos)
            if i >= 0:
                m = bytes(self.buf[self.pos:i])
                self.pos = i + 1
                if self.pos > 8 * MiB:
                    del self.buf[:self.pos]
                    self.pos = 0
                return m
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buf += chunk


class Bystander(threading.Thread):
    """A well-behaved client: Status round trips, and a probe job every
    BYSTANDER_JOB_SEC, on its own connection, each call timed."""

    def __init__(self, d, python, pool=None):
        super().__init__(daemon=True)
        self.c = d.connect()
        self.python = python
        self.pool = pool
        self.latencies = []
        self.errors = []
        self.jobs = []          # (id, tag)
        self.halt = threading.Event()

    def timed(self, method, params=None):
        t0 = time.monotonic()
        r = self.c.call(method, params)
        self.latencies.append(time.monotonic() - t0)
        return r

    def run(self):
        next_job = 0
        try:
            while not self.halt.is_set():
                self.timed("io.mprocd.Status")
                if time.monotonic() >= next_job:
                    tag = "during-%d" % len(self.jobs)
                    p = {"argv": [self.python, "-c", PROBE, tag, "0"]}
                    if self.pool:
                        p["pool"] = self.pool
                    self.jobs.append((self.timed("io.mprocd.Submit", p)
                                      ["id"], tag))
                    next_job = time.monotonic() + BYSTANDER_JOB_SEC
                self.halt.wait(0.02)
        except Exception as e:        # reported by the test
            self.errors.append(repr(e))

    def stop(self):
        self.halt.set()
        self.join(TIMEOUT)
        self.c.close()


class Hostile(JobsTestCase):
    """A daemon, a bystander, and the checks every hostile test ends with."""

    python = sys.executable

    def start(self, config, **kw):
        super().start(config, **kw)
        self.pid = self.d.pid
        self.baseline_fds = self.settled_fds()
        return self.d

    def settled_fds(self):
        """The supervisor's descriptor count once two looks 0.2s apart
        agree (connections the start-up checks made are closed by then)."""
        last = [None]

        def settled():
            n = fd_count(self.pid)
            same, last[0] = n == last[0], n
            return same and n
        return wait_for(settled, "the descriptor count to settle",
                        interval=0.2)

    def probe(self, tag, delay=0, pool=None, c=None):
        p = {"argv": [self.python, "-c", PROBE, tag, str(delay)]}
        if pool:
            p["pool"] = pool
        return (c or self.c).call("io.mprocd.Submit", p)["id"]

    def check_probes(self, jobs):
        """Every (id, tag) succeeded, printed its tag and saw fds 0-2."""
        ids = [jid for jid, _ in jobs]
        done = self.c.call("io.mprocd.Wait", {"ids": ids,
                                              "timeout_sec": WAIT})["jobs"]
        bad = [(j["id"], j["state"]) for j in done
               if j["state"] != "succeeded"]
        self.assertEqual(bad, [], "jobs did not succeed")
        for jid, tag in jobs:
            r = self.c.call("io.mprocd.Get", {"id": jid})
            self.assertEqual(base64.b64decode(r["stdout"]).decode(),
                             "%s [0, 1, 2]\n" % tag,
                             "job %d (%s): stderr %r" % (
                                 jid, tag, base64.b64decode(r["stderr"])))

    @contextlib.contextmanager
    def bystander(self, pool=None):
        """Runs the body with a bystander; then checks it was answered
        promptly all along and that no job was lost."""
        before = self.probe("before", delay=0.2, pool=pool)
        b = Bystander(self.d, self.python, pool)
        b.start()
        t0 = time.monotonic()
        try:
            yield b
            # Still answered after the hostile part, and for long enough
            # to have submitted a few jobs.
            calls = len(b.latencies)
            wait_for(lambda: b.errors or (
                len(b.latencies) >= calls + 2 and
                time.monotonic() - t0 >= BYSTANDER_MIN_SEC),
                "the bystander to make progress")
        finally:
            b.stop()
        took = time.monotonic() - t0
        self.assertEqual(b.errors, [], "the bystander failed")
        self.assertGreaterEqual(len(b.latencies), 2,
                                "the bystander made no progress")
        worst = max(b.latencies)
        lat = sorted(b.latencies)
        figure(self.id().rpartition(".")[2],
               "bystander %d calls in %.1fs, median %.1fms, max %.1fms, "
               "%d jobs during" % (len(lat), took,
                                   lat[len(lat) // 2] * 1e3, worst * 1e3,
                                   len(b.jobs)))
        self.assertLess(worst, LATENCY, "a bystander call took %.2fs"
                        % worst)
        after = self.probe("after", pool=pool)
        self.check_probes([(before, "before")] + b.jobs + [(after, "after")])

    def finish(self):
        """Alive, descriptors back to the baseline, no zombie, a clean
        exit with nothing from the sanitizers."""
        self.assertIsNone(self.d.proc.poll(), "mprocd died")
        for c in self.d.conns:
            if c is not self.c:
                c.close()
        try:
            wait_for(lambda: fd_count(self.pid) == self.baseline_fds,
                     "the supervisor's descriptors back to %d"
                     % self.baseline_fds, timeout=10)
        except AssertionError:
            raise AssertionError(
                "supervisor has %d descriptors, %d before the test: %s"
                % (fd_count(self.pid), self.baseline_fds,
                   sorted(os.readlink("/proc/%d/fd/%s" % (self.pid, f))
                          for f in os.listdir("/proc/%d/fd" % self.pid))))
        parents = {self.pid} | set(self.d.worker_pids())
        wait_for(lambda: not zombies(parents),
                 "no zombie among the children of mprocd and its workers",
                 timeout=5)
        figure(self.id().rpartition(".")[2], "fds %d before and after, "
               "RSS %d KiB at the end" % (self.baseline_fds, rss(self.pid)))
        self.c.close()
        self.assertEqual(self.d.stop(), 0, "mprocd did not exit 0")
        log = self.d.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            self.assertNotIn(bad, log)

    def fresh(self):
        return self.d.connect()

    def outcome(self, data, timeout=10):
        """Sends data on a new connection: ("reply", message) for the first
        reply, or ("closed", None) if the daemon closed it."""
        c = self.fresh()
        try:
            try:
                c.send_raw(data)
            except (BrokenPipeError, ConnectionResetError):
                return ("closed", None)
            c.sock.settimeout(timeout)
            try:
                r = c.recv()
            except ConnectionResetError:
                return ("closed", None)
            except socket.timeout:
                return ("hung", None)
            return ("closed", None) if r is None else ("reply", r)
        finally:
            c.close()

    def others(self):
        """Jobs other than the bystander's probes."""
        return [j for j in self.c.call("io.mprocd.List")["jobs"]
                if j["argv"][0] != self.python]


class TestStall(Hostile):

    def test_half_messages_stall(self):
        """Half messages hold slots until message_timeout closes them;
        others are served, and the slots come back. A message completed in
        time is served; one dripped a byte at a time is timed from its
        first byte; an idle connection is not a stalled message."""
        self.start(conf("max_clients = 8; message_timeout = 1s",
                        level="info", default="workers = 3"))
        gate = self.gate("g")
        with self.bystander():
            # Every slot taken: self.c and the bystander, the finisher,
            # the pending and the idle one below, and stalled clients.
            slots = 8 + RESERVE
            halves = [b'{"method": "io.mprocd.Sta', b"{", b" ",
                      b'{"method": "io.mprocd.Submit", "parameters": '
                      b'{"argv": ["echo", "', b'{"a": "' + b"x" * 30000,
                      b"\xff\xfe", b'"unterminated'] * 2
            halves = halves[:slots - 5]
            t0 = time.monotonic()
            stalled = []
            for h in halves:
                c = self.fresh()
                c.send_raw(h)
                stalled.append(c)
            # One completes a Submit in time (and then starts another
            # message), one waits on a pending Wait with half a message
            # behind it.
            finisher = self.fresh()
            finisher.send_raw(b'{"method": "io.mprocd.Submit", '
                              b'"parameters": {"argv": ["echo", ')
            pending = self.fresh()
            pending.send_raw(msg("io.mprocd.Wait", {"ids": [gate]})
                             + b'{"method": "io.m')
            idle = self.fresh()
            self.assertTrue(self.fresh().closed_by_peer(),
                            "a connection past max_clients was kept")
            self.assertLess(time.monotonic() - t0, 0.9,
                            "too slow to test the slots before the timeout")
            time.sleep(0.5)
            finisher.send_raw(b'"late"]}}\0')
            late = finisher.recv()["parameters"]["id"]
            t1 = time.monotonic()
            finisher.send_raw(b'{"method": "io.mprocd.Sta')
            for c in stalled:
                self.assertTrue(closed(c.sock), "a stalled client was "
                                "not closed")
            took = time.monotonic() - t0
            self.assertGreaterEqual(took, 0.9)
            self.assertTrue(closed(finisher.sock))
            # Timed from the first byte of its second message.
            self.assertGreaterEqual(time.monotonic() - t1, 0.9)
            # The late Submit ran.
            self.assertEqual(self.wait([late])[0]["state"], "succeeded")
            r = self.c.call("io.mprocd.Get", {"id": late})
            self.assertEqual(base64.b64decode(r["stdout"]), b"late\n")
            # The slots are free again; the idle one, older than the
            # timeout, stays.
            self.assertIn("pools", self.fresh().call("io.mprocd.Status"))
            self.assertIn("pools", idle.call("io.mprocd.Status"))
            # Half a message behind a pending Wait: closed at some point
            # (today the timer runs only once the Wait is answered: input
            # behind a pending call is not looked at), never before the
            # Wait's answer if it is still open.
            early = closed(pending.sock, timeout=0.3)
            self.release("g")
            if not early:
                r = pending.recv()
                self.assertEqual(r["parameters"]["jobs"][0]["state"],
                                 "succeeded")
                self.assertTrue(closed(pending.sock))
            # A message dripped a byte at a time, each well within the
            # timeout: closed, timed from its first byte.
            drip = self.fresh()
            status = msg("io.mprocd.Status")
            t2 = time.monotonic()
            with self.assertRaises(OSError):
                for b in status:
                    drip.send_raw(bytes([b]))
                    time.sleep(0.05)
            self.assertTrue(drip.closed_by_peer())
            dripped = time.monotonic() - t2
            self.assertLess(dripped, len(status) * 0.05)
            self.assertIn("pools", idle.call("io.mprocd.Status"))
            figure("test_half_messages_stall",
                   "%d stalled clients closed %.2fs after their first "
                   "byte (message_timeout 1s); half a message behind a "
                   "pending Wait: %s" % (
                       len(stalled), took,
                       "closed while pending" if early else
                       "kept until the Wait was answered, then closed"))
            figure("test_half_messages_stall", "a message dripped a byte "
                   "every 50ms closed after %.2fs" % dripped)
            for c in stalled + [finisher, pending, idle, drip]:
                c.close()
        self.assertIn("client error: message not completed within "
                      "message_timeout (1s), closing the connection",
                      self.d.log())
        self.finish()


class TestOversize(Hostile):

    def test_oversize_messages(self):
        self.start(conf("max_message = 64K", level="info",
                        default="workers = 3"))
        limit = 64 * 1024
        gate = self.gate("g")
        with self.bystander():
            # Exactly max_message bytes with its NUL: served; one more byte
            # closes the connection.
            base = msg("io.mprocd.Status", {}, x="")[:-3]
            for size, served in ((limit, True), (limit + 1, False)):
                data = base + b"a" * (size - len(base) - 3) + b'"}\0'
                self.assertEqual(len(data), size)
                kind, r = self.outcome(data)
                self.assertEqual(kind, "reply" if served else "closed",
                                 "message of %d bytes" % size)
            # The same with a Submit: it runs whole, or makes no job.
            before = {j["id"] for j in self.others()}
            made = set()
            empty = msg("io.mprocd.Submit", {"argv": ["echo", ""]})
            for size, served in ((limit, True), (limit + 1, False)):
                arg = "s" * (size - len(empty))
                data = msg("io.mprocd.Submit", {"argv": ["echo", arg]})
                self.assertEqual(len(data), size)
                kind, r = self.outcome(data)
                self.assertEqual(kind, "reply" if served else "closed",
                                 "Submit of %d bytes" % size)
                if served:
                    jid = r["parameters"]["id"]
                    made.add(jid)
                    self.assertEqual(self.wait([jid])[0]["state"],
                                     "succeeded")
                    r = self.c.call("io.mprocd.Get", {"id": jid})
                    self.assertEqual(base64.b64decode(r["stdout"]),
                                     arg.encode() + b"\n")
            self.assertEqual({j["id"] for j in self.others()},
                             before | made, "a job was made from an "
                             "oversize Submit")
            # A valid call, then an oversize one in the same write: the
            # first is answered, then the connection closed.
            c = self.fresh()
            try:
                c.send_raw(msg("io.mprocd.Status") + b"b" * (2 * limit))
            except OSError:
                pass
            self.assertIn("pools", c.recv()["parameters"])
            self.assertTrue(closed(c.sock))
            # Huge streams with no NUL, several at once.
            streams = [self.fresh() for _ in range(8)]
            sent = [0] * len(streams)

            def pour(i):
                chunk = b"z" * 65536
                try:
                    for _ in range(8 * 16):          # 8 MiB
                        streams[i].sock.sendall(chunk)
                        sent[i] += len(chunk)
                except OSError:
                    pass
            threads = [threading.Thread(target=pour, args=(i,))
                       for i in range(len(streams))]
            for t in threads:
                t.start()
            for s in streams:
                self.assertTrue(closed(s.sock))
            for t in threads:
                t.join(TIMEOUT)
            # Behind a pending Wait the daemon stops reading at
            # max_message: not closed until the Wait is answered.
            p = self.fresh()
            p.send_raw(msg("io.mprocd.Wait", {"ids": [gate]}))
            p.sock.setblocking(False)
            behind = 0
            try:
                while behind < 4 * MiB:
                    behind += p.sock.send(b"q" * 65536)
            except BlockingIOError:
                pass
            p.sock.settimeout(TIMEOUT)
            self.assertFalse(closed(p.sock, timeout=0.3))
            self.release("g")
            r = Reader(p.sock).next()
            self.assertEqual(json.loads(r)["parameters"]["jobs"][0]["state"],
                             "succeeded")
            self.assertTrue(closed(p.sock))
            figure("test_oversize_messages",
                   "8 streams closed after %d-%d KiB each; %d KiB queued "
                   "behind a pending Wait" % (min(sent) // 1024,
                                              max(sent) // 1024,
                                              behind // 1024))
        self.assertIn("message larger than max_message (65536 bytes), "
                      "closing the connection", self.d.log())
        self.finish()


class TestGarbage(Hostile):

    def test_garbage(self):
        self.start(conf(level="info"))
        rnd = random.Random(1234)
        junk = []
        # Random binary, ended by a NUL (anything before it is the message).
        for _ in range(60):
            blob = bytes(rnd.randrange(256) for _ in
                         range(rnd.choice((1, 7, 100, 4000))))
            junk.append(blob + b"\0")
        junk += [b"\0", b"\0" * 1000, b" \0", b"\n\0", b"\xef\xbb\xbf{}\0"]
        # JSON that is not an object, or not one object.
        for v in ("[]", "[1,2]", '["io.mprocd.Status"]', "0", "-1", "1e5",
                  '""', '"io.mprocd.Status"', "null", "true", "false",
                  '[{"method": "io.mprocd.Status"}]',
                  '{"method": "io.mprocd.Status"} x',
                  '{"method": "io.mprocd.Status"}{}',
                  '{"method": "io.mprocd.Status",}',
                  "{'method': 'io.mprocd.Status'}",
                  '{"method": "io.mprocd.Status" /* c */}',
                  '{"method": "io.mprocd.Status", "method": "x.Y"}',
                  "{}", '{"parameters": {}}', "NaN",
                  '{"method": "io.mprocd.Status", "parameters": NaN}'):
            junk.append(v.encode() + b"\0")
        with self.bystander():
            for j in junk:
                kind, r = self.outcome(j)
                self.assertEqual(kind, "closed", "%r: %s" % (j[:80], r))
            # A valid call followed by garbage: answered, then closed.
            for tail in (b"garbage\0", b"\xff\0", b"[]\0", b"\0",
                         b"\x00\x01\x02\x03" * 100):
                c = self.fresh()
                c.send_raw(msg("io.mprocd.Status") + tail)
                self.assertIn("pools", c.recv()["parameters"])
                self.assertTrue(closed(c.sock))
            figure("test_garbage", "%d garbage messages, each closed its "
                   "connection; 5 valid calls followed by garbage"
                   % len(junk))
        self.assertIn("closing the connection", self.d.log())
        self.assertEqual(self.others(), [])
        self.finish()


class TestDeepJson(Hostile):

    def test_deep_nesting(self):
        """jansson stops at 2048 levels: deeper is not valid JSON to it
        (the connection is closed), shallower is parsed and refused as an
        invalid parameter. Either way: no crash, no stack overflow."""
        self.start(conf(level="info"))
        cases = [
            (b"[" * 100000 + b"\0", None),
            (b"[" * 100000 + b"]" * 100000 + b"\0", None),
            (b'{"a":' * 100000 + b"1" + b"}" * 100000 + b"\0", None),
            (b'{"method": "io.mprocd.Submit", "parameters": {"argv": '
             + b"[" * 100000 + b"]" * 100000 + b"}}\0", "argv"),
            (b'{"method": "io.mprocd.Status", "parameters": {"x": '
             + b'{"a":' * 100000 + b"1" + b"}" * 100000 + b"}}\0", "x"),
            (b'{"method": "io.mprocd.Submit", "parameters": {"argv": '
             b'["true"], "name": ' + b"[" * 1000000 + b"]" * 1000000
             + b"}}\0", "name"),
            (b'{"method": "io.mprocd.Status", "more": '
             + b"[" * 100000 + b"]" * 100000 + b"}\0", None),
        ]
        # Within jansson's depth: parsed, then refused.
        for depth in (10, 1000, 2040):
            cases.append((b'{"method": "io.mprocd.Submit", "parameters": '
                          b'{"argv": ["true"], "name": ' + b"[" * depth
                          + b"]" * depth + b"}}\0", "name"))
            cases.append((b'{"method": "io.mprocd.Wait", "parameters": '
                          b'{"ids": [1], "x": ' + b'{"a":' * depth + b"0"
                          + b"}" * depth + b"}}\0", "x"))
        with self.bystander():
            seen = []
            for data, param in cases:
                kind, r = self.outcome(data)
                seen.append(kind)
                if kind == "reply":
                    self.assertIsNotNone(param, data[:60])
                    self.assertEqual((r.get("error"), r.get("parameters")),
                                     (INVALID, {"parameter": param}),
                                     data[:60])
                else:
                    self.assertEqual(kind, "closed", data[:60])
            # Shallow ones leave the connection usable.
            for depth in (10, 1000):
                self.c.send_raw(b'{"method": "io.mprocd.List", "parameters"'
                                b': {"pool": ' + b"[" * depth + b"]" * depth
                                + b"}}\0")
                r = self.c.recv()
                self.assertEqual(r["parameters"], {"parameter": "pool"})
            figure("test_deep_nesting", "%d deep messages (up to 1,000,000 "
                   "levels): %d refused as InvalidParameter, %d closed"
                   % (len(cases), seen.count("reply"), seen.count("closed")))
        self.finish()


class Type:
    """A Varlink type of a method's input: ?, [] and a base."""

    def __init__(self, text):
        self.text = text
        self.nullable = text.startswith("?")
        text = text.lstrip("?")
        self.array = text.startswith("[]")
        self.base = text[2:] if self.array else text
        if self.base not in ("string", "int", "float", "bool", "object"):
            raise AssertionError("test_hostile does not know the type %r: "
                                 "teach Type about it" % self.text)

    def base_accepts(self, v):
        if self.base == "object":
            return True     # any JSON value
        if self.base == "string":
            return isinstance(v, str)
        if self.base == "bool":
            return isinstance(v, bool)
        if isinstance(v, bool):
            return False
        if self.base == "int":
            return isinstance(v, int)
        return isinstance(v, (int, float))

    def accepts(self, v):
        if v is None:
            return self.nullable
        if self.array:
            return isinstance(v, list) and all(self.base_accepts(e)
                                               for e in v)
        return self.base_accepts(v)


def interface_methods(text):
    """{method: {param: Type}} from an interface description."""
    text = "\n".join(l for l in text.splitlines()
                     if not l.strip().startswith("#"))
    methods = {}
    for name, params in re.findall(r"method\s+(\w+)\s*\((.*?)\)\s*->",
                                   text, re.S):
        methods[name] = {}
        for p in filter(None, (p.strip() for p in params.split(","))):
            pname, _, ptype = p.partition(":")
            methods[name][pname.strip()] = Type(ptype.strip())
    return methods


# Values of every JSON kind; those a parameter's type does not accept are
# wrong types for it.
KINDS = [None, True, False, 0, 1, -1, 1.5, -0.5, 1e300, INT64_MAX,
         INT64_MIN, 2 ** 53 + 1, "", "x", "1", "true", [], [1], ["x"],
         [None], [[]], [{}], {}, {"a": 1}, {"x": "y"}]

# Values of the right type that the method must still refuse: (method,
# parameter) -> [(value, (error, parameters) or None for InvalidParameter
# naming the parameter)].
DOMAIN = {
    ("Submit", "argv"): [([], None), ([""], None),
                         (["true"] * 65537, None)],
    ("Submit", "pool"): [("nope", ("io.mprocd.NoSuchPool",
                                   {"pool": "nope"})),
                         ("", ("io.mprocd.NoSuchPool", {"pool": ""}))],
    ("Submit", "name"): [("n" * 257, None)],
    ("Submit", "cwd"): [("", None), ("tmp", None), ("./", None),
                        ("/" + "d" * 4096, None)],
    ("Submit", "env"): [(["NOEQUALS"], None), (["=v"], None), ([""], None),
                        (["A=1", "B"], None), (["E=x"] * 65537, None)],
    ("Submit", "stdin"): [("!!!!", None), ("a", None), ("YQ=", None),
                          ("YQ==YQ==", None)],
    ("Submit", "timeout_sec"): [(-1, None), (-0.001, None), (-1e-300, None),
                                (1e300, None), (366 * 86400 + 1, None),
                                (INT64_MAX, None), (INT64_MIN, None),
                                (2 ** 53 + 1, None)],
    ("Submit", "retries"): [(-1, None), (101, None), (INT64_MAX, None),
                            (INT64_MIN, None)],
    ("Wait", "ids"): [([0], None), ([-1], None), ([INT64_MIN], None),
                      ("DUP", None),
                      ([INT64_MAX], ("io.mprocd.NoSuchJob",
                                     {"id": INT64_MAX}))],
    ("Wait", "timeout_sec"): [(-1, None), (1e300, None),
                              (INT64_MAX, None)],
    ("Get", "id"): [(0, None), (-1, None), (INT64_MIN, None),
                    (INT64_MAX, ("io.mprocd.NoSuchJob", {"id": INT64_MAX}))],
    ("Cancel", "id"): [(0, None), (-1, None), (INT64_MIN, None),
                       (INT64_MAX, ("io.mprocd.NoSuchJob",
                                    {"id": INT64_MAX}))],
    # A command pool takes no input: every value of it is refused.
    ("Submit", "input"): [(v, None) for v in KINDS if v is not None],
    ("List", "state"): [("bogus", None), ("", None), ("SUCCEEDED", None),
                        ("queued ", None)],
    ("List", "pool"): [("nope", ("io.mprocd.NoSuchPool", {"pool": "nope"}))],
    ("GetInterfaceDescription", "interface"): [
        ("com.example", ("org.varlink.service.InterfaceNotFound",
                         {"interface": "com.example"})),
        ("", ("org.varlink.service.InterfaceNotFound", {"interface": ""}))],
}

# Run takes Submit's parameters, and refuses the same values.
DOMAIN.update({("Run", p): v for (m, p), v in list(DOMAIN.items())
               if m == "Submit"})

# Numbers JSON allows but jansson cannot hold (beyond int64, beyond a
# double): the message is "not valid JSON" to the daemon.
HUGE_NUMBERS = ["9223372036854775808", "-9223372036854775809",
                "123456789012345678901234567890", "1e400", "-1e400"]


class TestWrongTypes(Hostile):

    def setUp(self):
        self.start(conf(level="info", default="workers = 2"))
        self.done = self.c.call("io.mprocd.Submit",
                                {"argv": ["true"]})["id"]
        self.c.call("io.mprocd.Wait", {"ids": [self.done]})
        self.methods = {}
        for iface in ("io.mprocd", "org.varlink.service"):
            desc = self.c.call("org.varlink.service.GetInterfaceDescription",
                               {"interface": iface})["description"]
            for m, params in interface_methods(desc).items():
                self.methods[iface + "." + m] = params

    def valid(self, method):
        """Parameters that make a valid call (none of them changes state:
        the job named is finished; Reload is never called valid)."""
        return {
            "io.mprocd.Submit": {"argv": ["true"]},
            "io.mprocd.Run": {"argv": ["true"]},
            "io.mprocd.Wait": {"ids": [self.done]},
            "io.mprocd.Get": {"id": self.done},
            "io.mprocd.Cancel": {"id": self.done},
            "org.varlink.service.GetInterfaceDescription":
                {"interface": "io.mprocd"},
        }.get(method, {})

    def cases(self):
        """(method, parameters, expected (error, parameters))."""
        out = []
        for method, params in sorted(self.methods.items()):
            short = method.rpartition(".")[2]
            base = self.valid(method)
            for pname, t in params.items():
                invalid = (INVALID, {"parameter": pname})
                bad = [(v, invalid) for v in KINDS if not t.accepts(v)]
                if t.array:
                    # Elements of a wrong type, alone or after a good one.
                    good = "x" if t.base == "string" else self.done
                    bad += [(e, invalid) for v in KINDS
                            if not t.base_accepts(v)
                            for e in ([v], [good, v])]
                for v, want in DOMAIN.get((short, pname), []):
                    if v == "DUP":
                        v = [self.done, self.done]
                    bad.append((v, want or invalid))
                for v, want in bad:
                    out.append((method, dict(base, **{pname: v}), want))
                if not t.nullable:
                    # Missing, when required.
                    p = dict(base)
                    p.pop(pname, None)
                    out.append((method, p, (INVALID, {"parameter": pname})))
            # A parameter the method does not have (Reload included: it is
            # refused before anything is reloaded). org.varlink.service's
            # two are in test_service_methods_refuse_unknown_parameters.
            if not method.startswith("org.varlink.service."):
                for extra in ("bogus", "Argv", ""):
                    out.append((method, dict(base, **{extra: 1}),
                                (INVALID, {"parameter": extra})))
        return out

    def test_every_wrong_type_of_every_parameter(self):
        """InvalidParameter naming the parameter (or the documented error),
        on one connection that stays usable; no job made, none cancelled."""
        cases = self.cases()
        methods = {m for m, _, _ in cases}
        self.assertIn("io.mprocd.Submit", methods)
        self.assertIn("io.mprocd.Wait", methods)
        before = self.others()
        failures = []
        with self.bystander():
            # Pipelined in batches, answers read in order.
            for i in range(0, len(cases), 100):
                batch = cases[i:i + 100]
                self.c.send_raw(b"".join(msg(m, p) for m, p, _ in batch))
                for m, p, want in batch:
                    r = self.c.recv()
                    self.assertIsNotNone(r, "closed after %s" % m)
                    got = (r.get("error"), r.get("parameters"))
                    if got != want:
                        failures.append("%s %s: %s, want %s" % (
                            m, json.dumps(p)[:200], got, want))
            self.assertIn("pools", self.c.call("io.mprocd.Status"))
        self.assertEqual(failures, [], "\n" + "\n".join(failures))
        # No job made but the bystander's.
        self.assertEqual(self.others(), before)
        self.assertEqual(self.c.call("io.mprocd.Get", {"id": self.done})
                         ["job"]["state"], "succeeded")
        figure("test_every_wrong_type_of_every_parameter",
               "%d calls over %d methods, each refused as documented"
               % (len(cases), len(methods)))
        self.finish()

    def test_numbers_beyond_int64_and_double(self):
        """Valid JSON numbers that jansson refuses to parse: the daemon
        closes the connection ("not valid JSON") instead of answering
        InvalidParameter. Accepted as the documented fate of a message that
        is not a valid call; either outcome passes, which one is reported.
        No job is ever made from one."""
        before = self.others()
        seen = {"closed": 0, "invalid": 0}
        with self.bystander():
            for method, params in sorted(self.methods.items()):
                base = self.valid(method)
                for pname, t in params.items():
                    if t.base not in ("int", "float"):
                        continue
                    for num in HUGE_NUMBERS:
                        p = dict(base)
                        p[pname] = "@@" if not t.array else ["@@"]
                        data = msg(method, p).replace(b'"@@"', num.encode())
                        kind, r = self.outcome(data)
                        if kind == "reply":
                            self.assertEqual(
                                (r.get("error"), r.get("parameters")),
                                (INVALID, {"parameter": pname}), data)
                            seen["invalid"] += 1
                        else:
                            self.assertEqual(kind, "closed", data)
                            seen["closed"] += 1
        self.assertEqual(self.others(), before)
        figure("test_numbers_beyond_int64_and_double",
               "%d calls: %d closed (jansson: not valid JSON), %d "
               "InvalidParameter" % (sum(seen.values()), seen["closed"],
                                     seen["invalid"]))
        self.finish()

    def test_envelope(self):
        """Wrong types of method, parameters, more and oneway: not a valid
        call, so the connection is closed (as documented in mprocd(8));
        method strings that are not ours get the standard errors."""
        closes = []
        for v in (None, 5, 1.5, True, [], ["io.mprocd.Status"], {},
                  {"a": "io.mprocd.Status"}, "", "nodot", "io"):
            closes.append(msg("io.mprocd.Status")[:-1].replace(
                b'"io.mprocd.Status"', json.dumps(v).encode()) + b"\0")
        for field in ("parameters", "more", "oneway"):
            for v in (5, 1.5, "x", "true", [], [{}], {"a": 1}, -1):
                if field == "parameters" and v == {"a": 1}:
                    continue        # an object: unknown parameter, below
                closes.append(msg("io.mprocd.Status", **{field: v}))
            if field == "parameters":
                for v in (True, False):
                    closes.append(msg("io.mprocd.Status", **{field: v}))
        replies = [
            (msg("io.mprocd.Status", {"a": 1}), (INVALID,
                                                 {"parameter": "a"})),
            (msg("."), ("org.varlink.service.InterfaceNotFound",
                        {"interface": ""})),
            (msg("a."), ("org.varlink.service.InterfaceNotFound",
                         {"interface": "a"})),
            (msg(".a"), ("org.varlink.service.InterfaceNotFound",
                         {"interface": ""})),
            (msg("io.mprocd."), ("org.varlink.service.MethodNotFound",
                                 {"method": "io.mprocd."})),
            (msg("io.mprocd.status"), ("org.varlink.service.MethodNotFound",
                                       {"method": "io.mprocd.status"})),
            (msg("io.mprocd.Status.Status"),
             ("org.varlink.service.InterfaceNotFound",
              {"interface": "io.mprocd.Status"})),
            (msg("org.varlink.service.Bogus"),
             ("org.varlink.service.MethodNotFound",
              {"method": "org.varlink.service.Bogus"})),
        ]
        with self.bystander():
            for data in closes:
                kind, r = self.outcome(data)
                self.assertEqual(kind, "closed", "%s: %s" % (data, r))
            for data, want in replies:
                self.c.send_raw(data)
                r = self.c.recv()
                self.assertEqual((r.get("error"), r.get("parameters")), want,
                                 data)
            # A method name too long for an interface buffer: still the
            # standard error, not a crash.
            name = "x" * 100000 + ".M"
            self.c.send_raw(msg(name))
            self.assertEqual(self.c.recv()["error"],
                             "org.varlink.service.InterfaceNotFound")
            # null parameters is no parameters; more and oneway false are
            # absent; more on a method with one reply is one reply; oneway
            # gets none, and the connection goes on.
            self.c.send_raw(msg("io.mprocd.Status", None)
                            .replace(b'"}', b'", "parameters": null}')
                            + msg("io.mprocd.Status", more=False,
                                  oneway=False)
                            + msg("io.mprocd.Status", more=True)
                            + msg("io.mprocd.Status", oneway=True)
                            + msg("io.mprocd.Status", oneway=True, more=True)
                            + msg("org.varlink.service.GetInfo"))
            for _ in range(3):
                r = self.c.recv()
                self.assertIn("pools", r["parameters"])
                self.assertNotIn("continues", r)
            self.assertIn("interfaces", self.c.recv()["parameters"])
            # "more": null and "oneway": null: either as absent or closed.
            nulls = {}
            for field in ("more", "oneway"):
                kind, r = self.outcome(msg("io.mprocd.Status",
                                           **{field: None}))
                nulls[field] = kind
                if kind == "reply":
                    self.assertIn("pools", r["parameters"])
                else:
                    self.assertEqual(kind, "closed")
        figure("test_envelope", "%d bad envelopes closed, %d answered with "
               "standard errors; null more/oneway: %s"
               % (len(closes), len(replies) + 1, nulls))
        self.finish()

    def test_service_methods_refuse_unknown_parameters(self):
        """io.mprocd methods refuse a parameter they do not have, and so do
        org.varlink.service.GetInfo and GetInterfaceDescription (they used
        to ignore them). Reproducer of the old bug: {"method": "org.varlink.service.GetInfo",
        "parameters": {"x": 1}} is answered with the info instead of
        InvalidParameter {"parameter": "x"}."""
        for method in ("org.varlink.service.GetInfo",
                       "org.varlink.service.GetInterfaceDescription"):
            p = dict(self.valid(method), x=1)
            with self.assertRaises(VarlinkError, msg=method) as e:
                self.c.call(method, p)
            self.assertEqual((e.exception.error, e.exception.parameters),
                             (INVALID, {"parameter": "x"}))
        self.finish()


class TestHugeCalls(Hostile):

    def test_huge_argv_env_stdin(self):
        """Up to just below max_message: run correctly, or refused cleanly
        (InvalidParameter; or, past what execve takes, failed with status
        127 and a message)."""
        mm = 1 * MiB
        self.start(conf("max_message = 1M", level="info",
                        default="workers = 2"))
        sh = ["sh", "-c"]
        results = []
        with self.bystander():
            def run(argv, **p):
                p["argv"] = argv
                jid = self.c.call("io.mprocd.Submit", p)["id"]
                self.c.call("io.mprocd.Wait", {"ids": [jid],
                                               "timeout_sec": WAIT})
                r = self.c.call("io.mprocd.Get", {"id": jid})
                return (r["job"], base64.b64decode(r["stdout"]),
                        base64.b64decode(r["stderr"]))

            def runs_or_e2big(what, want, argv, **p):
                size = len(msg("io.mprocd.Submit", dict(p, argv=argv)))
                self.assertLessEqual(size, mm, what)
                job, out, err = run(argv, **p)
                if job["state"] == "succeeded":
                    self.assertEqual(out, want, what)
                else:
                    self.assertEqual((job["state"], job.get("exit_status")),
                                     ("failed", 127), what)
                    self.assertNotEqual(err, b"", what)
                results.append("%s (%d bytes): %s" % (what, size,
                                                      job["state"]))

            # 65536 arguments, the most a Submit takes.
            argv = sh + ['echo $#', "sh"] + ["a"] * (65536 - 4)
            runs_or_e2big("65536 args", b"65532\n", argv)
            self.assertEqual(results[-1].rpartition(": ")[2], "succeeded")
            with self.assertRaises(VarlinkError) as e:
                self.c.call("io.mprocd.Submit",
                            {"argv": argv + ["a"]})
            self.assertEqual(e.exception.parameters, {"parameter": "argv"})
            # One argument of 100000 bytes (under the kernel's 128 KiB for
            # one), then one that fills the message.
            count = 'printf %s "$1" | wc -c'
            runs_or_e2big("one 100000-byte arg", b"100000\n",
                          sh + [count, "sh", "b" * 100000])
            self.assertEqual(results[-1].rpartition(": ")[2], "succeeded")
            head = len(msg("io.mprocd.Submit",
                           {"argv": sh + [count, "sh", ""]}))
            n = mm - head
            runs_or_e2big("one arg filling max_message",
                          b"%d\n" % n, sh + [count, "sh", "c" * n])
            self.assertEqual(results[-1].rpartition(": ")[2], "failed",
                             "an argument of %d bytes ran" % n)
            # Many arguments filling the message.
            args = sh + ['echo $#', "sh"]
            head = len(msg("io.mprocd.Submit", {"argv": args}))
            k = (mm - head - 1) // 103
            fill = ["d" * 99] * k
            last = mm - 1 - head - k * 103 - 4
            argv = args + fill + ["e" * max(last, 0)]
            runs_or_e2big("%d args filling max_message" % (k + 1),
                          b"%d\n" % (k + 1), argv)
            # 65536 environment entries, and one more.
            env = ["E%05d=x" % i for i in range(65536)]
            runs_or_e2big("65536 env entries", b"65536\n",
                          sh + ["env | grep -c '^E[0-9]*=x$'"], env=env)
            with self.assertRaises(VarlinkError) as e:
                self.c.call("io.mprocd.Submit", {"argv": ["true"],
                                                 "env": env + ["F=1"]})
            self.assertEqual(e.exception.parameters, {"parameter": "env"})
            # stdin just below max_message, byte for byte.
            head = len(msg("io.mprocd.Submit", {"argv": ["sha256sum"],
                                                "stdin": ""}))
            data = random.Random(7).randbytes((mm - head - 1) // 4 * 3)
            stdin = base64.b64encode(data).decode()
            runs_or_e2big("stdin of %d bytes" % len(data),
                          hashlib.sha256(data).hexdigest().encode()
                          + b"  -\n", ["sha256sum"], stdin=stdin)
            # A million one-byte strings: refused (65536 at most); what
            # parsing it costs.
            reset = reset_peak(self.pid)
            r0 = rss(self.pid)
            big = ["f"] * ((mm - 200) // 5)
            with self.assertRaises(VarlinkError) as e:
                self.c.call("io.mprocd.Submit", {"argv": big})
            self.assertEqual(e.exception.parameters, {"parameter": "argv"})
            peak = proc_status(self.pid, "VmHWM")
            results.append("argv of %d one-byte strings (%d bytes): "
                           "InvalidParameter; RSS %d KiB before, peak %s"
                           % (len(big), len(msg("io.mprocd.Submit",
                                                {"argv": big})), r0,
                              "%d KiB" % peak if reset else "unknown"))
        for r in results:
            figure("test_huge_argv_env_stdin", r)
        self.finish()


class TestUnicode(Hostile):

    FIELDS = ["argv", "env", "name", "cwd", "pool"]

    def call_with(self, field, raw):
        """A Submit with raw bytes inside the string of field."""
        p = {"argv": ["echo", "@@"]}
        if field == "env":
            p["env"] = ["K=@@"]
        elif field == "name":
            p["name"] = "@@"
        elif field == "cwd":
            p["cwd"] = "/tmp/@@"
        elif field == "pool":
            p["pool"] = "@@"
        if field != "argv":
            p["argv"] = ["echo", "ok"]
        return msg("io.mprocd.Submit", p).replace(b"@@", raw)

    def test_invalid_utf8_and_escapes(self):
        """Invalid UTF-8, overlong forms, surrogates and NUL: a clear
        error (InvalidParameter naming the field, or the connection closed
        with "not valid JSON" logged) and never a job, so never an argv
        cut at a NUL."""
        self.start(conf(level="info"))
        bad = [b"\xff", b"\xfe\xff", b"\x80", b"a\xc3", b"\xc3(",
               b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
               b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
               b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98",
               rb"\ud800", rb"\udc00", rb"\ud800\u0041", rb"\udbff",
               rb"\ud800\ud800", rb"\u0000", rb"a\u0000b", rb"rm\u0000 -rf",
               rb"\u0000", rb"\uZZZZ", rb"\x41", b"\\", rb"\u12"]
        # Escaped control characters are valid; raw ones are not JSON.
        bad += [b"\x01", b"\x1f", b"\n", b"\t"]
        # (text inside the JSON string, what the job prints)
        good = [("\u00e9t\u00e9".encode(), "\u00e9t\u00e9".encode()),
                (rb"\ud83d\ude00", "\U0001F600".encode()),
                ("\U0001F600".encode(), "\U0001F600".encode()),
                (rb"\u00e9", "\u00e9".encode()),
                (rb"tab\there", b"tab\there")]
        outcomes = {"closed": 0, "invalid": 0}
        with self.bystander():
            before = self.others()
            for field in self.FIELDS:
                for raw in bad:
                    data = self.call_with(field, raw)
                    kind, r = self.outcome(data)
                    if kind == "reply":
                        self.assertEqual(
                            (r.get("error"), r.get("parameters")),
                            (INVALID, {"parameter": field}), data)
                        outcomes["invalid"] += 1
                    else:
                        self.assertEqual(kind, "closed", data)
                        outcomes["closed"] += 1
            # In the method name and in an unknown parameter's name too.
            for raw in (b"\xff", rb"\ud800", rb"\u0000"):
                for data in (b'{"method": "io.mprocd.Sta' + raw + b'tus"}\0',
                             b'{"method": "io.mprocd.Status", "parameters":'
                             b' {"x' + raw + b'": 1}}\0'):
                    kind, r = self.outcome(data)
                    self.assertIn(kind, ("closed", "reply"), data)
                    if kind == "reply":
                        self.assertIn("error", r)
            self.assertEqual(self.others(), before,
                             "a job was made from invalid text")
            # Valid non-ASCII text goes through unchanged.
            for raw, out in good:
                self.c.send_raw(msg("io.mprocd.Submit",
                                    {"argv": ["printf", "%s", "@@"]})
                                .replace(b"@@", raw))
                jid = self.c.recv()["parameters"]["id"]
                self.c.call("io.mprocd.Wait", {"ids": [jid]})
                r = self.c.call("io.mprocd.Get", {"id": jid})
                self.assertEqual(base64.b64decode(r["stdout"]), out, raw)
        figure("test_invalid_utf8_and_escapes",
               "%d bad strings x %d fields: %d closed (not valid JSON), %d "
               "InvalidParameter; %d valid non-ASCII strings round-trip"
               % (len(bad), len(self.FIELDS), outcomes["closed"],
                  outcomes["invalid"], len(good)))
        self.finish()


class TestFlood(Hostile):

    def test_flood_past_max_clients(self):
        """Connections one at a time: exactly max_clients and the reserve
        get in and run jobs, the next is closed, and a slot let go is taken
        again. Then 200 connections from 20 threads: those past the limit
        are closed at once, those in are answered, the bystander is
        answered, and once the flood goes new clients get in."""
        self.start(conf("max_clients = 16", level="info"))
        n, nthreads = 200, 20
        with self.bystander():
            # self.c and the bystander hold two slots.
            held = [self.fresh() for _ in range(16 + RESERVE - 2)]
            ids = [self.submit(["true"], c=c) for c in held]
            self.assertTrue(self.fresh().closed_by_peer(),
                            "a connection past max_clients was kept")
            for c, jid in zip(held, ids):
                self.assertEqual(self.wait([jid], c)[0]["state"],
                                 "succeeded")
            held.pop().close()

            def can_submit():
                c = self.fresh()
                try:
                    return self.submit(["true"], c=c)
                except (OSError, ConnectionError):
                    return False
                finally:
                    c.close()
            wait_for(can_submit, "a slot to free up")
            for c in held:
                c.close()
            wait_for(lambda: fd_count(self.pid) == self.baseline_fds + 1,
                     "the held connections to be let go", timeout=10)

            conns = [None] * n
            fate = [None] * n
            go = threading.Barrier(nthreads)

            def flood(k):
                go.wait()
                for i in range(k, n, nthreads):
                    s = socket.socket(socket.AF_UNIX)
                    s.settimeout(10)
                    try:
                        s.connect(self.d.sock)
                        s.sendall(msg("io.mprocd.Status"))
                        r = s.recv(65536)
                        fate[i] = "answered" if r else "closed"
                    except (ConnectionResetError, BrokenPipeError):
                        fate[i] = "closed"
                    except OSError as e:
                        fate[i] = "error %s" % e
                    conns[i] = s
            t0 = time.monotonic()
            threads = [threading.Thread(target=flood, args=(k,))
                       for k in range(nthreads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT)
            took = time.monotonic() - t0
            answered = fate.count("answered")
            refused = fate.count("closed")
            self.assertEqual(answered + refused, n, set(fate))
            self.assertLessEqual(answered, 16 + RESERVE - 2)
            self.assertGreaterEqual(answered, 16 - 2)
            # Those in are still served; a newcomer is not let in.
            for s, f in zip(conns, fate):
                if f == "answered":
                    s.sendall(msg("io.mprocd.Status"))
                    self.assertTrue(s.recv(65536))
            self.assertTrue(self.fresh().closed_by_peer())
            for s in conns:
                s.close()

            def can_call():
                try:
                    return "pools" in self.fresh().call("io.mprocd.Status")
                except (OSError, ConnectionError):
                    return False
            wait_for(can_call, "new clients to be accepted again")
            figure("test_flood_past_max_clients",
                   "%d connections in %.2fs: %d answered, %d refused"
                   % (n, took, answered, refused))
        self.assertRegex(self.d.log(), r'refused a client: max_clients '
                         r'reached" max_clients=16 uid=%d client_pid=%d'
                         % (os.geteuid(), os.getpid()))
        self.finish()

    def test_flood_does_not_lock_out_root(self):
        """Another user's flood gets max_clients, no more; root still gets
        in, on the connections kept for it beyond max_clients."""
        python = other_user_python()
        self.start(conf("socket_mode = 0666; max_clients = 5",
                        level="info"))
        os.chmod(self.d.dir, 0o755)
        with self.bystander():
            # self.c and the bystander hold two slots: three are left for
            # uid 65534, which opens 20 connections and holds them until
            # told to go.
            flood = subprocess.Popen(as_other_user(
                python, "-c", FLOOD, self.d.sock, "20"),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                answered = int(flood.stdout.readline())
                self.assertEqual(answered, 3, "max_clients not applied to "
                                 "uid %d" % OTHER_UID)
                held = [self.fresh() for _ in range(RESERVE)]
                for c in held:
                    self.assertIn("pools", c.call("io.mprocd.Status"))
                self.assertTrue(self.fresh().closed_by_peer(),
                                "a connection past the reserve was kept")
            finally:
                flood.stdin.close()
                flood.wait()
                flood.stdout.close()
            for c in held:
                c.close()

            def can_call():
                c = self.fresh()
                try:
                    return "pools" in c.call("io.mprocd.Status")
                except (OSError, ConnectionError):
                    return False
                finally:
                    c.close()
            wait_for(can_call, "the flood's slots to free up")
        self.assertRegex(self.d.log(), r'refused a client: max_clients '
                         r'reached" max_clients=5 uid=%d client_pid=%d'
                         % (OTHER_UID, flood.pid))
        self.finish()


class TestVanishing(Hostile):

    def vanish(self, kind, i, gate):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.d.sock)
        if kind == "fin":
            s.close()
        elif kind == "rst":
            rst_close(s)
        elif kind == "half-message":
            s.sendall(b'{"method": "io.mprocd.Submit", "parameters": {"ar')
            (s.close if i % 2 else lambda: rst_close(s))()
        elif kind == "wait-more-fin":
            s.sendall(msg("io.mprocd.Wait", {"ids": [gate]}, more=True))
            s.close()
        elif kind == "wait-more-rst":
            # A reply left unread, then the Wait: a reset for the daemon.
            s.sendall(msg("io.mprocd.Status")
                      + msg("io.mprocd.Wait", {"ids": [gate]}, more=True))
            time.sleep(0.01)
            rst_close(s)
        elif kind == "pipelined":
            s.sendall(msg("io.mprocd.Status") * 50)
            (s.close if i % 2 else lambda: rst_close(s))()
        elif kind == "submit":
            s.sendall(msg("io.mprocd.Submit",
                          {"argv": ["echo", "vanished-%d" % i],
                           "name": "vanished-%d" % i}))
            (s.close if i % 2 else lambda: rst_close(s))()

    def test_clients_that_vanish(self):
        """300 clients that connect and vanish, with FIN or reset, some
        mid-message, some mid-Wait with more, some after a Submit whose
        reply they never read: every descriptor is let go while the Wait's
        job still runs, and every vanished client's job still runs."""
        self.start(conf(level="info", default="workers = 3"))
        gate = self.gate("g")
        kinds = (["fin"] * 60 + ["rst"] * 60 + ["half-message"] * 40
                 + ["wait-more-fin"] * 40 + ["wait-more-rst"] * 40
                 + ["pipelined"] * 40 + ["submit"] * 20)
        random.Random(99).shuffle(kinds)
        with self.bystander():
            errors, refused = [], []

            def worker(k):
                for i in range(k, len(kinds), 10):
                    try:
                        self.vanish(kinds[i], i, gate)
                    except (BrokenPipeError, ConnectionResetError):
                        # Accepted all at once before their hang-ups are
                        # seen, the vanished still count: a burst can go
                        # past max_clients (see the log check below).
                        refused.append(kinds[i])
                    except OSError as e:
                        errors.append("%s: %r" % (kinds[i], e))
            threads = [threading.Thread(target=worker, args=(k,))
                       for k in range(10)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT)
            self.assertEqual(errors, [])
            if refused:
                self.assertIn("refused a client: max_clients reached",
                              self.d.log())
            # Let go while the gate job still runs: the pending Waits of
            # vanished clients hold nothing (the bystander's is the +1).
            wait_for(lambda: fd_count(self.pid) == self.baseline_fds + 1,
                     "the vanished clients' descriptors to be closed",
                     timeout=10)
            took = time.monotonic() - t0
            self.assertEqual(self.c.call("io.mprocd.Get", {"id": gate})
                             ["job"]["state"], "running")
            self.release("g")
            self.assertEqual(self.wait([gate])[0]["state"], "succeeded")
            figure("test_clients_that_vanish",
                   "%d clients vanished (%s), %d refused at max_clients; "
                   "descriptors back to baseline %.2fs after the first" % (
                       len(kinds), ", ".join("%d %s" % (kinds.count(k), k)
                                             for k in sorted(set(kinds))),
                       len(refused), took))
        # Every Submit the daemon read became a job that ran to the end.
        mine = [j for j in self.c.call("io.mprocd.List")["jobs"]
                if (j.get("name") or "").startswith("vanished-")]
        self.assertLessEqual(len(mine), kinds.count("submit"))
        ids = [j["id"] for j in mine]
        for j in self.c.call("io.mprocd.Wait", {"ids": ids,
                                                "timeout_sec": WAIT})["jobs"]:
            r = self.c.call("io.mprocd.Get", {"id": j["id"]})
            self.assertEqual((j["state"], base64.b64decode(r["stdout"])),
                             ("succeeded", j["name"].encode() + b"\n"))
        figure("test_clients_that_vanish", "%d of %d vanished Submits were "
               "read, every one ran" % (len(mine), kinds.count("submit")))
        self.finish()

    def test_vanish_mid_wait_behind_unread_calls(self):
        """A client that vanishes while a Wait is pending, with more than
        max_message bytes of calls behind it, is let go at once. It used to
        keep its descriptor and max_clients slot until the job ended:
        reading was off (the held input passed max_message), so the EOF
        went unseen; an EV_CLOSED event now watches such a client.
        Reproducer of the old bug: max_message = 64K; Wait on a running job, then 200 KiB
        of Status calls, then close(): /proc/PID/fd keeps the socket until
        the job finishes."""
        self.start(conf("max_message = 64K", level="info",
                        default="workers = 2"))
        gate = self.gate("g")
        v = self.fresh()
        v.send_raw(msg("io.mprocd.Wait", {"ids": [gate]}))
        v.sock.setblocking(False)
        sent = 0
        try:
            while sent < 4 * MiB:
                sent += v.sock.send(msg("io.mprocd.Status") * 100)
        except BlockingIOError:
            pass
        self.assertGreater(sent, 64 * 1024)
        time.sleep(0.2)
        v.close()
        try:
            wait_for(lambda: fd_count(self.pid) == self.baseline_fds,
                     "the vanished client's descriptor to be closed",
                     timeout=3)
        finally:
            self.release("g")
        self.finish()


class TestHalfClosed(Hostile):

    def test_half_closed_client_gets_every_reply(self):
        """Clients that pipeline calls and then shut down their sending
        side get every reply, in order, then the end of the stream: one
        whose calls are answered at once, and one whose first call is a
        Wait on a running job (its end of input is not a vanished client:
        it is kept until the Wait is answered)."""
        self.start(conf(level="info"))
        gate = self.gate("g")
        n = 2000
        with self.bystander():
            c = self.fresh()
            c.send_raw(msg("io.mprocd.Status") * n)
            c.sock.shutdown(socket.SHUT_WR)
            got = 0
            while True:
                r = c.recv()
                if r is None:
                    break
                self.assertEqual(r["parameters"]["pid"], self.pid)
                got += 1
            self.assertEqual(got, n)

            w = self.fresh()
            w.send_raw(msg("io.mprocd.Wait", {"ids": [gate]})
                       + msg("io.mprocd.Status")
                       + msg("io.mprocd.Get", {"id": gate}))
            w.sock.shutdown(socket.SHUT_WR)
            # Nothing yet, not even the end of the stream.
            w.sock.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                w.sock.recv(1)
            w.sock.settimeout(TIMEOUT)
            self.release("g")
            self.assertEqual(w.recv()["parameters"]["jobs"][0]["state"],
                             "succeeded")
            self.assertEqual(w.recv()["parameters"]["pid"], self.pid)
            job = w.recv()["parameters"]["job"]
            self.assertEqual((job["id"], job["state"]), (gate, "succeeded"))
            self.assertIsNone(w.recv())
        self.finish()


class TestNeverReads(Hostile):

    def test_client_that_never_reads(self):
        """Thousands of pipelined Gets of a job with 1 MiB of output from a
        client that does not read: the supervisor's RSS stays bounded by
        max_message (it stops reading that client), others are answered;
        when the client reads, its replies are whole and in order; when it
        then resets the connection with thousands unanswered, all is let
        go."""
        mm = 2 * MiB
        self.start(conf("max_message = 2M", level="info",
                        default="workers = 2; max_output = 1M"))
        big_data = random.Random(5).randbytes(MiB)
        path = self.path("big")
        with open(path, "wb") as f:
            f.write(big_data)
        big = self.submit(["cat", path])
        smalls = [self.submit(["echo", "small-%d" % i]) for i in range(5)]
        self.wait([big] + smalls)

        # The exact bytes of each reply, from a well-behaved client.
        def raw_reply(jid):
            self.c.send_raw(msg("io.mprocd.Get", {"id": jid}))
            return Reader(self.c.sock).next()
        want = {jid: raw_reply(jid) for jid in [big] + smalls}
        r = json.loads(want[big])["parameters"]
        self.assertEqual((base64.b64decode(r["stdout"]), r["truncated"]),
                         (big_data, False))
        n = 3000
        calls = [big if i % 2 == 0 else smalls[(i // 2) % len(smalls)]
                 for i in range(n)]
        idle = rss(self.pid)
        reset = reset_peak(self.pid)
        hog = self.fresh()
        hog.sock.settimeout(TIMEOUT)
        for opt in (32, socket.SO_SNDBUF):      # SO_SNDBUFFORCE needs root
            try:
                hog.sock.setsockopt(socket.SOL_SOCKET, opt, 8 * MiB)
                break
            except OSError:
                pass
        sent = threading.Event()

        def send_all():
            try:
                hog.sock.sendall(b"".join(msg("io.mprocd.Get", {"id": j})
                                          for j in calls))
                sent.set()
            except OSError:
                pass
        with self.bystander():
            sender = threading.Thread(target=send_all, daemon=True)
            sender.start()
            samples = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.5:
                samples.append(rss(self.pid))
                time.sleep(0.05)
            peak = proc_status(self.pid, "VmHWM") if reset else max(samples)
            all_queued = sent.is_set()
            # Now it reads some: whole, in order, byte for byte.
            reader = Reader(hog.sock)
            k = 60
            for i in range(k):
                m = reader.next()
                self.assertIsNotNone(m, "hog closed after %d replies" % i)
                self.assertTrue(m == want[calls[i]], "reply %d is not the "
                                "Get of job %d" % (i, calls[i]))
            # And vanishes with thousands unanswered and replies unread
            # (a sender still blocked in sendall would keep the socket
            # open: wake it first).
            if not sent.is_set():
                hog.sock.shutdown(socket.SHUT_WR)
            sender.join(TIMEOUT)
            rst_close(hog.sock)
            # Let go (the bystander's connection is the +1).
            wait_for(lambda: fd_count(self.pid) == self.baseline_fds + 1,
                     "the reset connection to be closed", timeout=10)
            # (VmHWM lags RSS by a few counter batches: never below peak.)
            overall = max(peak, proc_status(self.pid, "VmHWM")
                          if reset else peak)
            after = rss(self.pid)
        figure("test_client_that_never_reads",
               "%d Gets pipelined (%s), reply %d KiB, %d replies read; "
               "supervisor RSS idle %d KiB, peak %d KiB (+%d KiB) while not "
               "read, peak %d KiB (+%d KiB) overall, %d KiB after the "
               "reset; max_message %d KiB" % (
                   n, "all in the socket" if all_queued else
                   "sender blocked", len(want[big]) // 1024, k, idle, peak,
                   peak - idle, overall, overall - idle, after, mm // 1024))
        if ASAN:
            figure("test_client_that_never_reads", "RSS bound not checked "
                   "under ASan (shadow memory and quarantine)")
        else:
            for p in (peak, overall):
                self.assertLess((p - idle) * 1024, 4 * mm + 16 * MiB,
                                "RSS grew by %d KiB" % (p - idle))
        self.finish()


class TestHygiene(Hostile):

    def test_memory_with_100k_queued(self):
        """One worker held by a gate job, QUEUED Submits of true pipelined
        on one connection (replies read as they come): RSS idle, with all
        queued, and after they drain. Running 100,000 jobs through fork and
        exec takes about a minute on 2 cores, so all but the last 1,000 are
        cancelled (pipelined Cancels) before the gate opens; those 1,000
        run."""
        n = QUEUED
        # keep_finished: the bystander's jobs must outlive the cancelled.
        self.start(conf("keep_finished = %d" % (2 * n), level="notice",
                        gated="workers = 1; queue_limit = %d" % n,
                        default="workers = 1"))
        self.gate("g", pool="gated")
        idle = rss(self.pid)
        reset = reset_peak(self.pid)
        c = self.fresh()

        def pipeline(calls):
            """Sends calls from a thread; every reply's bytes, read here
            (without a JSON parse each: 100,000 of them)."""
            t = threading.Thread(target=c.send_raw, args=(b"".join(calls),),
                                 daemon=True)
            t.start()
            reader = Reader(c.sock)
            out = [reader.next() for _ in calls]
            t.join(TIMEOUT)
            self.assertNotIn(None, out)
            return out

        with self.bystander():
            t0 = time.monotonic()
            sub = msg("io.mprocd.Submit", {"argv": ["true"], "pool": "gated"})
            replies = pipeline([sub] * n)
            ids = [int(m) for m in re.findall(
                rb'^{"parameters":{"id":(\d+)}}$', b"\n".join(replies), re.M)]
            self.assertEqual(len(ids), n, replies[:3])
            t_submit = time.monotonic() - t0
            queued_rss = rss(self.pid)
            pool = self.d.pool("gated")
            self.assertEqual((pool["queued"], pool["running"]), (n, 1))
            with self.assertRaises(VarlinkError) as e:
                self.c.call("io.mprocd.Submit", {"argv": ["true"],
                                                  "pool": "gated"})
            self.assertEqual(e.exception.error, "io.mprocd.QueueFull")
            t0 = time.monotonic()
            keep = 1000
            replies = pipeline([msg("io.mprocd.Cancel", {"id": i})
                                for i in ids[:-keep]])
            self.assertEqual(sum(b'"state":"cancelled"' in r
                                 for r in replies), n - keep, replies[:3])
            t_cancel = time.monotonic() - t0
            peak = proc_status(self.pid, "VmHWM") if reset else queued_rss
            self.release("g")
            t0 = time.monotonic()
            wait_for(lambda: (lambda p: (p["queued"], p["running"]) ==
                              (0, 0))(self.d.pool("gated")),
                     "the queue to drain", timeout=120, interval=0.2)
            t_drain = time.monotonic() - t0
            drained = rss(self.pid)
            pool = self.d.pool("gated")
            self.assertEqual((pool["succeeded"], pool["cancelled"]),
                             (keep + 1, n - keep))
            c.close()
        per_job = (queued_rss - idle) * 1024 / n
        figure("test_memory_with_100k_queued",
               "%d Submits in %.1fs; RSS idle %d KiB, %d queued %d KiB "
               "(%.0f bytes a job), peak %d KiB, after draining %d KiB; "
               "%d cancelled in %.1fs, %d ran in %.1fs" % (
                   n, t_submit, idle, n, queued_rss, per_job, peak, drained,
                   n - keep, t_cancel, keep, t_drain))
        if ASAN:
            figure("test_memory_with_100k_queued", "RSS bounds not checked "
                   "under ASan (shadow memory and quarantine)")
        else:
            # About 680 bytes a job today (struct job 368 bytes, its timer
            # event, argv, pool and cwd strings, the id table).
            self.assertLess(per_job, 1024, "%.0f bytes a queued job"
                            % per_job)
            self.assertLessEqual(drained, max(peak, queued_rss) + 1024)
        self.finish()



class TestBigReplies(Hostile):
    """List with tens of thousands of jobs (queue_limit is 100,000 a pool by
    default). It used to build its whole reply in one go in the event loop:
    one List of 100,000 jobs took 0.9 s of the loop and 12.8 MB, a client
    that never read held the whole reply, and a Status behind 8 Lists
    waited 2.9-8.8 s. The reply is now written a slice at a time (64 KiB)
    as the client reads it: the bystander stays prompt and an unread List
    holds about a slice. Wait with "more" over many ids, unread, still
    queues one reply per job (bounded by the ids a max_message call can
    name)."""

    def queue(self, n):
        self.gate("g", pool="gated")
        c = self.fresh()
        sub = msg("io.mprocd.Submit", {"argv": ["true"], "pool": "gated"})
        t = threading.Thread(target=c.send_raw, args=(sub * n,),
                             daemon=True)
        t.start()
        reader = Reader(c.sock)
        for _ in range(n):
            self.assertIsNotNone(reader.next())
        t.join(TIMEOUT)
        c.close()
        self.assertEqual(self.d.pool("gated")["queued"], n)

    def config(self, n):
        return conf("max_message = 64K", level="notice",
                    gated="workers = 1; queue_limit = %d" % n,
                    default="workers = 1")

    def test_unread_list_replies_bounded_by_max_message(self):
        n, nhogs = 20000, 8
        self.start(self.config(n))
        self.queue(n)
        # One List on a good connection first: its transient heap is in
        # the baseline, what is left is what the unread replies hold.
        self.c.send_raw(msg("io.mprocd.List"))
        size = len(Reader(self.c.sock).next())
        base = rss(self.pid)
        hogs = []
        for _ in range(nhogs):
            h = self.fresh()
            h.send_raw(msg("io.mprocd.List") * 10)
            hogs.append(h)
        # Until each has its reply coming (readable: not read).
        for h in hogs:
            self.assertTrue(select.select([h.sock], [], [], TIMEOUT)[0],
                            "no List reply")
        self.assertIn("pools", self.c.call("io.mprocd.Status"))
        held = rss(self.pid) - base
        figure("test_unread_list_replies_bounded_by_max_message",
               "%d jobs: List reply %d KiB; %d clients that do not read "
               "hold %d KiB more RSS (max_message 64 KiB)"
               % (n, size // 1024, nhogs, held))
        if not ASAN:
            self.assertLess(held * 1024, nhogs * 4 * 65536 + 8 * MiB,
                            "%d unread List replies hold %d KiB"
                            % (nhogs, held))
        for h in hogs:
            h.close()
        self.release("g")
        self.finish()

    def test_list_callers_do_not_stall_others(self):
        """8 clients (4 under ASan) send one List each (not reading: one
        each is all the daemon takes from them), then a Status on another
        connection."""
        # One List of 50,000 jobs is about 0.4s of the loop, 1-1.5s under
        # ASan: either way the Status waits well past LATENCY.
        n, k = 50000, 4 if ASAN else 8
        self.start(self.config(n))
        self.queue(n)
        t0 = time.monotonic()
        self.c.send_raw(msg("io.mprocd.List"))
        size = len(Reader(self.c.sock).next())
        one = time.monotonic() - t0
        hogs = [self.fresh() for _ in range(k)]
        try:
            with self.bystander(pool="default"):
                for h in hogs:
                    h.send_raw(msg("io.mprocd.List"))
                t0 = time.monotonic()
                self.c.call("io.mprocd.Status")
                took = time.monotonic() - t0
                figure("test_list_callers_do_not_stall_others",
                       "%d jobs: one List %.2fs (%d KiB); Status behind %d "
                       "Lists %.2fs" % (n, one, size // 1024, k, took))
                self.assertLess(took, LATENCY, "Status took %.2fs behind "
                                "%d Lists" % (took, k))
        finally:
            self.release("g")
        self.finish()

class TestProgramPool(Hostile):
    """Hostile calls to a program pool (a Python program kept warm in each
    worker, called over io.mprocd.Worker): inputs of every kind, huge and
    deep ones, answered with a clear failure or a result, never a crash;
    clients that vanish while their Run is in flight. A command pool's
    bystander is answered promptly meanwhile."""

    def start_calc(self):
        here = os.path.dirname(os.path.abspath(__file__))
        env = {"PYTHONPATH": os.pathsep.join(
            [os.path.join(os.environ.get("MPROCD_SRCDIR", "."), "python"),
             here])}
        self.start(conf(level="info", default="workers = 2",
                        calc="workers = 2; spare_workers = 0; program = %s "
                        "-m mprocd.worker progfuncs" % sys.executable),
                   env=env)

    def run_calc(self, argv, c=None, **params):
        params.update(argv=argv, pool="calc")
        return (c or self.c).call("io.mprocd.Run", params)

    def test_hostile_inputs(self):
        self.start_calc()
        deep = []
        for _ in range(200):
            deep = [deep]
        with self.bystander():
            # Not {"args": [...], "kwargs": {...}}: the program refuses
            # the call, the job fails with why as its result.
            for bad in (7, "text", [1, 2], {"args": 5}, {"kwargs": []},
                        {"args": [], "kwargs": {"n": 1}, "x": 1}, True):
                r = self.run_calc(["double"], input=bad)
                self.assertEqual(r["job"]["state"], "failed", bad)
                self.assertIsNotNone(r["result"], bad)
            # Strange but valid: answered with the value back.
            for args in ([deep], ["\u00e9\t\"x\U0001f600"], [None, 1.5e308],
                         ["a" * (512 << 10)], [{"k": list(range(10000))}]):
                r = self.run_calc(["echo"], input={"args": args,
                                                   "kwargs": {}})
                self.assertEqual(r["job"]["state"], "succeeded")
                self.assertEqual(r["result"]["args"], args)
            # A function that is not there, and no function at all.
            r = self.run_calc(["no_such_function"])
            self.assertEqual(r["job"]["state"], "failed")
            with self.assertRaises(VarlinkError) as e:
                self.run_calc([""])
            self.assertEqual(e.exception.parameters, {"parameter": "argv"})
        self.assertEqual(self.d.pool("calc")["restarts"], 0)
        self.finish()

    def test_clients_that_vanish_mid_run(self):
        self.start_calc()
        with self.bystander():
            for i in range(40):
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.d.sock)
                s.sendall(msg("io.mprocd.Run", {
                    "argv": ["nap", "50", "vanished-%d" % i], "pool": "calc",
                    "name": "vanished-%d" % i}))
                time.sleep(0.005)
                (s.close if i % 2 else lambda: rst_close(s))()

            def all_done():
                done = [j for j in self.others()
                        if j["state"] == "succeeded"]
                return done if len(done) == 40 else None
            jobs = wait_for(all_done, "every vanished client's call done",
                            timeout=WAIT)
        self.assertEqual(sorted(j["name"] for j in jobs),
                         sorted("vanished-%d" % i for i in range(40)))
        self.assertEqual(self.run_calc(["double"], input={
            "args": [4], "kwargs": {}})["result"], 8)
        self.finish()


if __name__ == "__main__":
    main()
