#!/usr/bin/env python3
"""Follow, and Run with "more": a job's output as it is produced, against a
real mprocd. Jobs write lines with their own timestamps, so that a follower
can tell how early it saw them; every byte must arrive exactly once and in
order, stdout and stderr apart, for followers that start late, read
slowly, never read, or vanish, in command and program pools, and for
finished jobs read back from the state database."""

import base64
import os
import signal
import socket
import sys
import time

from mprocd_test import (JobsTestCase, VarlinkError, asan_build, conf,
                         main, proc_status, wait_for)

INVALID = "org.varlink.service.InvalidParameter"

# Writes n lines, one every ms milliseconds, to stdout and stderr in turn,
# each "I TIME" with the time it was written.
CHATTY = r'''
import sys, time
n, ms = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    s = sys.stdout if i % 2 == 0 else sys.stderr
    s.write("%d %.6f\n" % (i, time.time()))
    s.flush()
    time.sleep(ms / 1000)
'''


def chatty(n, ms):
    return [sys.executable, "-c", CHATTY, str(n), str(ms)]


def expected_lines(out, err):
    """The line numbers seen on each stream, checked to alternate."""
    outs = [int(l.split()[0]) for l in out.decode().splitlines()]
    errs = [int(l.split()[0]) for l in err.decode().splitlines()]
    return outs, errs


class Stream:
    """The replies of one call with "more", as they came."""

    def __init__(self, c, method, params):
        self.c = c
        c.send(method, params, more=True)
        self.pieces = []  # (stream, bytes, truncated, time received)
        self.first = None
        self.last = None

    def read(self, stop=None):
        """Reads replies until the last, or until stop(piece) is true."""
        while True:
            m = self.c.recv()
            if m is None:
                raise ConnectionError("mprocd closed the connection")
            if "error" in m:
                raise VarlinkError(m["error"], m.get("parameters", {}))
            p = m["parameters"]
            now = time.time()
            if not m.get("continues"):
                self.last = p
                return p
            if "job" in p and self.first is None and not self.pieces:
                self.first = p
                continue
            keys = [k for k in ("stdout", "stderr") if k in p]
            assert len(keys) == 1, p
            piece = (keys[0], base64.b64decode(p[keys[0]]),
                     bool(p.get("truncated")), now)
            self.pieces.append(piece)
            if stop is not None and stop(piece):
                return None

    def output(self, stream):
        return b"".join(d for s, d, _, _ in self.pieces if s == stream)


class TestFollow(JobsTestCase):

    def get_output(self, jid):
        g = self.c.call("io.mprocd.Get", {"id": jid})
        return (base64.b64decode(g["stdout"]), base64.b64decode(g["stderr"]),
                g)

    def test_run_more_streams_live(self):
        """A job printing a line every 50 ms: the first line arrives long
        before the job ends, every byte once, in order, streams apart."""
        self.start(conf())
        st = Stream(self.c, "io.mprocd.Run", {"argv": chatty(40, 50)})
        end = st.read()
        self.assertEqual(st.first["job"]["state"], "queued")
        self.assertEqual(end["job"]["state"], "succeeded")
        self.assertIs(end["truncated"], False)
        self.assertNotIn("stdout", end)
        jid = end["job"]["id"]
        self.assertEqual(st.first["job"]["id"], jid)
        out, err, _ = self.get_output(jid)
        self.assertEqual(st.output("stdout"), out)
        self.assertEqual(st.output("stderr"), err)
        outs, errs = expected_lines(out, err)
        self.assertEqual(outs, list(range(0, 40, 2)))
        self.assertEqual(errs, list(range(1, 40, 2)))
        # Pieces in the order written: line numbers ascend across streams.
        seen = []
        for _, data, _, _ in st.pieces:
            seen += [int(l.split()[0]) for l in data.decode().splitlines()]
        self.assertEqual(seen, list(range(40)))
        # The first line, by the job's own clock, reached us long before
        # the job wrote its last.
        first_got = st.pieces[0][3]
        last_written = max(float(l.split()[1]) for l in
                           (out + err).decode().splitlines())
        self.assertLess(first_got, last_written - 1.0)
        # Each line came before the next was written (live, not batched).
        lags = []
        for _, data, _, got in st.pieces:
            for l in data.decode().splitlines():
                lags.append(got - float(l.split()[1]))
        lags.sort()
        print("FIGURE follow lag p50 %.2f ms, max %.2f ms over %d lines"
              % (lags[len(lags) // 2] * 1e3, lags[-1] * 1e3, len(lags)))
        self.assertLess(lags[len(lags) // 2], 0.05)

    def test_follow_mid_job_seam(self):
        """Follow started mid-job: the earlier output first, then live,
        nothing lost or repeated at the seam."""
        self.start(conf())
        jid = self.submit(chatty(30, 30))
        wait_for(lambda: len(self.get_output(jid)[0].splitlines()) >= 5,
                 "five lines")
        c2 = self.d.connect()
        st = Stream(c2, "io.mprocd.Follow", {"id": jid})
        end = st.read()
        self.assertIsNone(st.first)
        self.assertEqual(end["job"]["id"], jid)
        self.assertEqual(end["job"]["state"], "succeeded")
        out, err, _ = self.get_output(jid)
        self.assertEqual(st.output("stdout"), out)
        self.assertEqual(st.output("stderr"), err)
        seen = []
        for _, data, _, _ in st.pieces:
            seen += [int(l.split()[0]) for l in data.decode().splitlines()]
        self.assertEqual(seen, list(range(30)))

    def test_follow_without_more_and_bad_calls(self):
        self.start(conf())
        jid = self.submit(["sh", "-c", "echo out; echo err >&2"])
        self.wait([jid])
        r = self.c.call("io.mprocd.Follow", {"id": jid})
        self.assertEqual(base64.b64decode(r["stdout"]), b"out\n")
        self.assertEqual(base64.b64decode(r["stderr"]), b"err\n")
        self.assertEqual(r["job"]["state"], "succeeded")
        # A finished job with "more": its output, then the job.
        st = Stream(self.c, "io.mprocd.Follow", {"id": jid})
        st.read()
        self.assertEqual([(s, d) for s, d, _, _ in st.pieces],
                         [("stdout", b"out\n"), ("stderr", b"err\n")])
        running = self.gate("g")
        with self.assertRaises(VarlinkError) as e:
            self.c.call("io.mprocd.Follow", {"id": running})
        self.assertEqual((e.exception.error, e.exception.parameters),
                         (INVALID, {"parameter": "more"}))
        with self.assertRaises(VarlinkError) as e:
            self.c.call("io.mprocd.Follow", {"id": 999})
        self.assertEqual(e.exception.error, "io.mprocd.NoSuchJob")
        for bad in ({}, {"id": "1"}, {"id": 0}, {"id": jid, "x": 1}):
            with self.assertRaises(VarlinkError) as e:
                self.c.call("io.mprocd.Follow", bad)
            self.assertEqual(e.exception.error, INVALID)
        # Calls behind a Follow wait their turn, and are answered in order.
        st = Stream(self.c, "io.mprocd.Follow", {"id": running})
        self.c.send("io.mprocd.Status")
        self.release("g")
        self.assertEqual(st.read()["job"]["id"], running)
        self.assertIn("pools", self.c.recv()["parameters"])

    def test_finished_jobs_in_their_order(self):
        """A finished job in memory is followed in the order its output
        came, whichever streams it wrote (stdout then stderr needs no
        record of its order, the others keep one)."""
        self.start(conf())
        cases = [
            ("", []),
            ("echo o", [("stdout", b"o\n")]),
            ("echo e >&2", [("stderr", b"e\n")]),
            ("echo o; echo e >&2", [("stdout", b"o\n"), ("stderr", b"e\n")]),
            ("echo e >&2; sleep 0.05; echo o",
             [("stderr", b"e\n"), ("stdout", b"o\n")]),
            ("echo a; sleep 0.05; echo e >&2; sleep 0.05; echo b",
             [("stdout", b"a\n"), ("stderr", b"e\n"), ("stdout", b"b\n")]),
        ]
        ids = [self.submit(["sh", "-c", script]) for script, _ in cases]
        self.wait(ids)
        for jid, (script, want) in zip(ids, cases):
            st = Stream(self.c, "io.mprocd.Follow", {"id": jid})
            self.assertEqual(st.read()["job"]["state"], "succeeded", script)
            got = []
            for s, d, _, _ in st.pieces:
                if got and got[-1][0] == s:
                    got[-1] = (s, got[-1][1] + d)
                else:
                    got.append((s, d))
            self.assertEqual(got, want, script)

    def test_a_hundred_followers(self):
        """100 followers of one chatty job each get all of it, in order."""
        self.start(conf())
        jid = self.submit(chatty(60, 20))
        streams = []
        for _ in range(100):
            c = self.d.connect()
            streams.append(Stream(c, "io.mprocd.Follow", {"id": jid}))
        for st in streams:
            self.assertEqual(st.read()["job"]["state"], "succeeded")
        out, err, _ = self.get_output(jid)
        for st in streams:
            self.assertEqual(st.output("stdout"), out)
            self.assertEqual(st.output("stderr"), err)

    def stalled(self, jid):
        """A follower of jid that does not read (yet)."""
        c = self.d.connect()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send("io.mprocd.Follow", {"id": jid}, more=True)
        st = Stream.__new__(Stream)
        st.c, st.pieces, st.first, st.last = c, [], None, None
        return st

    def test_followers_that_never_read(self):
        """Ten followers that never read hold mprocd's memory to the job's
        one kept copy and a bound each; another follower gets every byte;
        when they read at last, they get all of it from the kept copy."""
        mb = 32
        self.start(conf(default="workers = 2; max_output = 64M"))
        pid = self.d.proc.pid
        rss0 = proc_status(pid, "VmRSS")
        jid = self.submit(["sh", "-c", "head -c %d /dev/zero | tr '\\0' x; "
                           "echo tail >&2" % (mb << 20)])
        stalled = [self.stalled(jid) for _ in range(10)]
        reader = Stream(self.d.connect(), "io.mprocd.Follow", {"id": jid})
        end = reader.read()
        self.assertEqual(end["job"]["state"], "succeeded")
        self.assertIs(end["truncated"], False)
        self.assertEqual(reader.output("stdout"), b"x" * (mb << 20))
        self.assertEqual(reader.output("stderr"), b"tail\n")
        self.assertFalse(any(t for _, _, t, _ in reader.pieces))
        # One copy of the output, and at most a MiB a follower; a copy
        # each would be ten times the output.
        grew = proc_status(pid, "VmRSS") - rss0
        print("FIGURE 10 never-reading followers of %d MiB of output: "
              "mprocd's RSS grew %d KiB" % (mb, grew))
        # ASan's shadow memory and quarantine make RSS say little.
        if not asan_build():
            self.assertLess(grew, (mb * 3 // 2 + 10) * 1024)
        # Other clients are answered while it stalls.
        self.assertIn("pools", self.c.call("io.mprocd.Status"))
        for st in stalled:
            st.c.sock.settimeout(30)
            end = st.read()
            self.assertIs(end["truncated"], False)
            self.assertEqual(st.output("stdout"), b"x" * (mb << 20))
            self.assertEqual(st.output("stderr"), b"tail\n")

    def test_gap_past_max_output_is_marked(self):
        """Output past max_output is not kept: a follower behind when it
        came gets the kept part, then a piece marked truncated."""
        self.start(conf(default="workers = 2; max_output = 1M"))
        jid = self.submit(["sh", "-c", "head -c %d /dev/zero | tr '\\0' x; "
                           "sleep 0.2; echo tail >&2" % (8 << 20)])
        stalled = self.stalled(jid)
        self.assertEqual(self.wait([jid])[0]["state"], "succeeded")
        end = stalled.read()
        self.assertIs(end["truncated"], True)
        out = stalled.output("stdout")
        self.assertEqual(out[:1 << 20], b"x" * (1 << 20))
        self.assertLess(len(out), 8 << 20)
        self.assertTrue(all(c == ord("x") for c in out))
        self.assertEqual(stalled.output("stderr"), b"tail\n")
        marked = [s for s, _, t, _ in stalled.pieces if t]
        self.assertEqual(marked, ["stderr"])

    def test_live_output_past_max_output(self):
        """A follower that keeps up gets output past max_output too, which
        Get does not have."""
        self.start(conf(default="workers = 2; max_output = 64K"))
        script = ("i=0; while [ $i -lt 40 ]; do head -c 16384 /dev/zero | "
                  "tr '\\0' x; sleep 0.01; i=$((i+1)); done")
        st = Stream(self.c, "io.mprocd.Run", {"argv": ["sh", "-c", script]})
        end = st.read()
        self.assertIs(end["truncated"], True)
        self.assertEqual(st.output("stdout"), b"x" * (40 * 16384))
        self.assertFalse(any(t for _, _, t, _ in st.pieces))
        out, _, _ = self.get_output(end["job"]["id"])
        self.assertEqual(out, b"x" * 65536)

    def test_late_follower_is_told_of_lost_output(self):
        """A Follow begun after output went past max_output: the first
        piece after the kept output says truncated (a review's finding)."""
        self.start(conf(default="workers = 2; max_output = 1000"))
        jid = self.submit(["sh", "-c", "head -c 3000 /dev/zero | tr '\\0' a;"
                           "sleep 0.5; printf bbbbbbbbbb"])
        wait_for(lambda: self.c.call("io.mprocd.Get", {"id": jid})["truncated"],
                 "output past max_output")
        st = Stream(self.d.connect(), "io.mprocd.Follow", {"id": jid})
        end = st.read()
        self.assertIs(end["truncated"], True)
        self.assertEqual([(s, len(d), t) for s, d, t, _ in st.pieces],
                         [("stdout", 1000, False), ("stdout", 10, True)])

    def test_followers_that_vanish(self):
        self.start(conf())
        jid = self.submit(chatty(40, 20))
        for i in range(50):
            c = self.d.connect()
            c.send("io.mprocd.Follow", {"id": jid}, more=True)
            if i % 2:
                c.recv()
            c.close()
        c2 = self.d.connect()
        st = Stream(c2, "io.mprocd.Follow", {"id": jid})
        self.assertEqual(st.read()["job"]["state"], "succeeded")
        out, err, _ = self.get_output(jid)
        self.assertEqual(st.output("stdout"), out)
        self.assertIn("pools", self.c.call("io.mprocd.Status"))
        self.assertNotIn("a bug", self.d.log())

    def test_retry_starts_the_output_again(self):
        """A job retried after its worker dies: the follower gets the first
        attempt's output, then the second's from its start."""
        self.start(conf(default="workers = 1; spare_workers = 0"))
        marker = self.path("once")
        script = ('echo attempt; if [ ! -e "$0" ]; then touch "$0"; '
                  'kill -9 $PPID; sleep 5; fi; echo done')
        st = Stream(self.c, "io.mprocd.Run",
                    {"argv": ["sh", "-c", script, marker], "retries": 1})
        end = st.read()
        self.assertEqual(end["job"]["state"], "succeeded")
        self.assertEqual(end["job"]["attempts"], 2)
        self.assertEqual(st.output("stdout"), b"attempt\nattempt\ndone\n")

    def test_cancel_ends_the_stream(self):
        self.start(conf())
        st = Stream(self.c, "io.mprocd.Run",
                    {"argv": ["sh", "-c", "echo up; exec sleep 30"]})
        st.read(stop=lambda p: p[1] == b"up\n")
        jid = st.first["job"]["id"]
        c2 = self.d.connect()
        c2.call("io.mprocd.Cancel", {"id": jid})
        end = st.read()
        self.assertEqual(end["job"]["state"], "cancelled")
        self.assertEqual(st.output("stdout"), b"up\n")


class TestFollowProgram(JobsTestCase):

    def test_program_call_streams(self):
        from test_program import ENV, calc
        self.start(calc(), env=ENV)
        st = Stream(self.c, "io.mprocd.Run",
                    {"argv": ["chatter"], "pool": "calc",
                     "input": {"args": [20, 50], "kwargs": {}}})
        end = st.read()
        self.assertEqual(end["job"]["state"], "succeeded")
        self.assertEqual(end["result"], 20)
        outs, errs = expected_lines(st.output("stdout"), st.output("stderr"))
        self.assertEqual(outs, list(range(0, 20, 2)))
        self.assertEqual(errs, list(range(1, 20, 2)))
        first = st.pieces[0][3]
        last = max(float(l.split()[1]) for l in
                   (st.output("stdout") + st.output("stderr")).decode()
                   .splitlines())
        self.assertLess(first, last - 0.5)


class TestFollowStored(JobsTestCase):

    def test_finished_job_read_back(self):
        """A finished job no longer in memory is followed from the file."""
        self.start(conf(main="keep_finished = 100000"))
        self.assertTrue(self.c.call("io.mprocd.Status").get("state"))
        first = self.submit(["sh", "-c", "echo one; echo two >&2"])
        # Orders only the file's record of them keeps.
        mixed = self.submit(["sh", "-c", "echo a; sleep 0.05; echo e >&2; "
                             "sleep 0.05; echo b"])
        errfirst = self.submit(["sh", "-c", "echo e >&2; sleep 0.05; "
                                "echo o"])
        self.wait([first, mixed, errfirst])
        # Past the in-memory cache of finished jobs (a thousand).
        ids = []
        for _ in range(11):
            for _ in range(100):
                self.c.send("io.mprocd.Submit", {"argv": ["true"]})
            ids += [self.c.recv()["parameters"]["id"] for _ in range(100)]
        self.wait(ids)
        st = Stream(self.c, "io.mprocd.Follow", {"id": first})
        end = st.read()
        self.assertEqual(end["job"]["state"], "succeeded")
        self.assertEqual([(s, d) for s, d, _, _ in st.pieces],
                         [("stdout", b"one\n"), ("stderr", b"two\n")])
        for jid, want in ((mixed, [("stdout", b"a\n"), ("stderr", b"e\n"),
                                   ("stdout", b"b\n")]),
                          (errfirst, [("stderr", b"e\n"),
                                      ("stdout", b"o\n")])):
            st = Stream(self.c, "io.mprocd.Follow", {"id": jid})
            self.assertEqual(st.read()["job"]["state"], "succeeded")
            self.assertEqual([(s, d) for s, d, _, _ in st.pieces], want)


if __name__ == "__main__":
    main()
