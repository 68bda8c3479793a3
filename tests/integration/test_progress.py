#!/usr/bin/env python3
"""The progress line of mprocctl map and wait, against a real mprocd: drawn
on stderr through a real pty (a terminal), redrawn a few times a second at
most, erased before output that would land on it and at the end, so that
the terminal shows exactly what it would without it; never through a pipe
(unless --progress) nor with --json; --no-progress turns it off; standard
output is the same byte for byte either way."""

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time

from mprocd_test import MPROCCTL, TIMEOUT, DaemonTestCase, conf, main, wait_for

# One draw: over the old line from its start, the rest of it cleared.
DRAW = re.compile(
    rb"\r(\d+)/(\d+)(\+?) done, (\d+) failed(?:, (\d+) running)?, "
    rb"([0-9.]+) jobs/s, (\d+:\d\d) elapsed(?:, (\d+(?::\d\d)+) left)?"
    rb"\033\[K")
ERASE = b"\r\033[K"

# 20 jobs of 0.2s on 2 workers: two seconds, long enough to be drawn.
LINES = b"".join(b"%d\n" % i for i in range(1, 21))
SLOW = ["sh", "-c", "sleep 0.2; echo out $0"]
SLOW_OUT = b"".join(b"out %d\n" % i for i in range(1, 21))


def draws(data):
    """The draws in what reached the terminal, each as its match."""
    return list(DRAW.finditer(data))


def screen(data):
    """What a terminal shows after data: the lines scrolled by or ended
    with a newline, and the line the cursor is on. It knows only what the
    line may send (CR, LF, and erase to the end of the line)."""
    lines, cur, col, i = [], bytearray(), 0, 0
    while i < len(data):
        if data.startswith(b"\033[K", i):
            del cur[col:]
            i += 3
            continue
        c = data[i]
        assert c != 0x1b, "an escape other than ESC [ K: %r" % data[i:i + 8]
        if c == 0x0d:
            col = 0
        elif c == 0x0a:
            lines.append(cur.decode())
            cur, col = bytearray(), 0
        else:
            if col < len(cur):
                cur[col] = c
            else:
                cur.append(c)
            col += 1
        i += 1
    return lines, cur.decode()


class Terminal:
    """A pty as a terminal of cols columns: the slave for mprocctl, the
    master read in a thread until mprocctl and its slave are gone."""

    def __init__(self, cols=100):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", 24, cols, 0, 0))
        self.chunks = []
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self):
        while True:
            try:
                b = os.read(self.master, 65536)
            except OSError:  # EIO: every slave is closed
                break
            if not b:
                break
            self.chunks.append(b)

    def started(self):
        """mprocctl holds the slave now: ours can go."""
        os.close(self.slave)
        self.thread.start()

    def data(self):
        return b"".join(self.chunks)

    def finish(self):
        self.thread.join(TIMEOUT)
        os.close(self.master)
        return self.data()


class Run:
    """What a run of mprocctl gave: status, stdout, and what its stderr
    got (a pty's, or a pipe's)."""

    def __init__(self, returncode, stdout, stderr, seconds):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds


class ProgressTestCase(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(conf(default="workers = 2"))

    def run_ctl(self, *args, input=b"", tty=True, stdout_tty=False,
                term="xterm", cols=100, interrupt_after=None):
        """mprocctl with stderr a pty (tty) or a pipe; with stdout_tty, the
        same pty is stdout too (then Run.stdout is None). interrupt_after:
        a SIGINT once the pty shows that many draws."""
        env = dict(os.environ, TERM=term)
        t = Terminal(cols) if tty or stdout_tty else None
        start = time.monotonic()
        p = subprocess.Popen(
            [MPROCCTL, "-s", self.d.sock] + list(args),
            stdin=subprocess.PIPE,
            stdout=t.slave if stdout_tty else subprocess.PIPE,
            stderr=t.slave if tty else subprocess.PIPE, env=env)
        if t is not None:
            t.started()
        if interrupt_after is not None:
            p.stdin.write(input)
            p.stdin.flush()
            wait_for(lambda: len(draws(t.data())) >= interrupt_after,
                     "%d draws" % interrupt_after)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=TIMEOUT * 3)
        else:
            out, err = p.communicate(input, timeout=TIMEOUT * 3)
        seconds = time.monotonic() - start
        if tty:
            err = t.finish()
        elif t is not None:
            t.finish()
        return Run(p.returncode, out, err, seconds)

    def submit(self, argv):
        return self.d.call("io.mprocd.Submit", {"argv": argv})["id"]

    def assertDrawnAndErased(self, r, total, at_most_per_second=5):
        """Drawn more than once, never faster than at_most_per_second,
        counts that make sense, and erased at the very end."""
        seen = draws(r.stderr)
        self.assertGreaterEqual(len(seen), 2, r.stderr)
        self.assertLessEqual(len(seen), r.seconds * at_most_per_second + 1,
                             "%d draws in %.1fs" % (len(seen), r.seconds))
        done = [int(m.group(1)) for m in seen]
        self.assertEqual(done, sorted(done), r.stderr)
        for m in seen:
            self.assertEqual(int(m.group(2)), total, m.group(0))
            self.assertLessEqual(int(m.group(1)), total, m.group(0))
            if m.group(5) is not None:
                self.assertLessEqual(int(m.group(5)), 2, m.group(0))
        self.assertTrue(r.stderr.endswith(ERASE), r.stderr[-80:])
        self.assertEqual(screen(r.stderr), ([], ""))


class TestMap(ProgressTestCase):

    def test_drawn_on_a_terminal_and_erased(self):
        r = self.run_ctl("map", *SLOW, input=LINES)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, SLOW_OUT)
        self.assertDrawnAndErased(r, 20)
        seen = draws(r.stderr)
        # Both workers on our jobs, once mprocd has been asked.
        self.assertIn(b"2", [m.group(5) for m in seen], r.stderr)
        self.assertTrue(any(m.group(8) for m in seen), r.stderr)
        self.assertTrue(all(m.group(3) == b"" for m in seen), r.stderr)

    def test_never_on_a_pipe(self):
        r = self.run_ctl("map", *SLOW, input=LINES, tty=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        self.assertEqual(r.stdout, SLOW_OUT)

    def test_stdout_the_same_byte_for_byte(self):
        prog = ["sh", "-c", "sleep 0.1; printf '%s\\r\\0\\377\\n' \"$0\""]
        on = self.run_ctl("map", *prog, input=LINES)
        off = self.run_ctl("map", *prog, input=LINES, tty=False)
        self.assertGreaterEqual(len(draws(on.stderr)), 1, on.stderr)
        self.assertEqual(on.stdout, off.stdout)
        self.assertEqual(on.stdout, b"".join(
            b"%d\r\0\377\n" % i for i in range(1, 21)))

    def test_no_progress_on_a_terminal(self):
        r = self.run_ctl("map", "--no-progress", *SLOW, input=LINES)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        self.assertEqual(r.stdout, SLOW_OUT)

    def test_progress_on_a_pipe(self):
        r = self.run_ctl("map", "--progress", *SLOW, input=LINES, tty=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, SLOW_OUT)
        self.assertDrawnAndErased(r, 20)

    def test_not_on_a_dumb_terminal(self):
        r = self.run_ctl("map", *SLOW, input=LINES, term="dumb")
        self.assertEqual(r.stderr, b"")
        self.assertEqual(r.stdout, SLOW_OUT)

    def test_json_never(self):
        for opts in ((), ("--progress",)):
            r = self.run_ctl("--json", "map", *opts, *SLOW, input=LINES)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, b"", opts)
            outs = [json.loads(line)["stdout"]
                    for line in r.stdout.decode().splitlines()]
            self.assertEqual(len(outs), 20)

    def test_json_the_same_byte_for_byte(self):
        # Wait's reply for jobs finished is the same each time it is asked.
        ids = [self.submit(["sh", "-c", "echo %d" % i]) for i in range(8)]
        self.d.call("io.mprocd.Wait", {"ids": ids})
        args = ["--json", "wait"] + [str(i) for i in ids]
        tty = self.run_ctl(*args)
        forced = self.run_ctl(*args[:2], "--progress", *args[2:])
        pipe = self.run_ctl(*args, tty=False)
        self.assertEqual(tty.stderr, b"")
        self.assertEqual(forced.stderr, b"")
        self.assertEqual(tty.stdout, pipe.stdout)
        self.assertEqual(forced.stdout, pipe.stdout)
        self.assertEqual(len(json.loads(pipe.stdout)["jobs"]), 8)

    def test_total_unknown_while_reading(self):
        # Lines that come slowly: the total is at least what has come.
        t = Terminal()
        p = subprocess.Popen([MPROCCTL, "-s", self.d.sock, "map", "echo"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=t.slave, env=dict(os.environ,
                                                      TERM="xterm"))
        t.started()
        p.stdin.write(b"a\nb\n")
        p.stdin.flush()
        wait_for(lambda: any(m.group(3) == b"+" for m in draws(t.data())),
                 "a draw with the total not known yet")
        out, _ = p.communicate(b"c\n", timeout=TIMEOUT)
        self.assertEqual(out, b"a\nb\nc\n")
        self.assertEqual(p.returncode, 0)
        data = t.finish()
        last = draws(data)[-1]
        self.assertEqual(last.group(1, 2, 3), (b"2", b"2", b"+"))
        self.assertEqual(screen(data), ([], ""))

    def test_output_on_the_same_terminal(self):
        # Jobs' stdout and stderr on the terminal the line is drawn on:
        # each line whole, from its start, the progress line gone.
        prog = ["sh", "-c", "sleep 0.1; echo out $0; echo err $0 >&2"]
        r = self.run_ctl("map", *prog, input=LINES, stdout_tty=True)
        self.assertEqual(r.returncode, 0)
        self.assertGreaterEqual(len(draws(r.stderr)), 2, r.stderr)
        lines, last = screen(r.stderr)
        want = []
        for i in range(1, 21):
            want += ["out %d" % i, "err %d" % i]
        self.assertEqual(lines, want)
        self.assertEqual(last, "")

    def test_failures_counted_and_told_on_a_clean_line(self):
        prog = ["sh", "-c", "sleep 0.2; [ $(($0 % 4)) -ne 0 ]"]
        r = self.run_ctl("map", *prog, input=LINES)
        self.assertEqual(r.returncode, 1)
        failed = [int(m.group(4)) for m in draws(r.stderr)]
        self.assertEqual(failed, sorted(failed))
        self.assertLessEqual(failed[-1], 5)
        lines, last = screen(r.stderr)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(
            "mprocctl: 5 of 20 jobs did not succeed; the first, line 4"),
            lines)
        self.assertEqual(last, "")

    def test_cut_to_a_narrow_terminal(self):
        r = self.run_ctl("map", *SLOW, input=LINES, cols=24)
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = [s for s in r.stderr.split(b"\r") if s.endswith(b"\033[K")]
        self.assertGreaterEqual(len(shown), 2, r.stderr)
        for s in shown:
            self.assertLessEqual(len(s) - 3, 23, s)
        self.assertEqual(screen(r.stderr), ([], ""))

    def test_interrupted(self):
        r = self.run_ctl("map", "sleep", input=b"30\n" * 6,
                         interrupt_after=2)
        self.assertEqual(r.returncode, 128 + signal.SIGINT)
        lines, last = screen(r.stderr)
        # The line erased before mprocctl says what it did.
        self.assertEqual([l for l in lines if l.startswith("mprocctl")],
                         ["mprocctl: interrupted: cancelled 6 jobs"], lines)
        self.assertEqual(last, "")


class TestWait(ProgressTestCase):

    def test_drawn_and_erased(self):
        ids = [self.submit(["sleep", "0.3"]) for _ in range(8)]
        r = self.run_ctl("wait", *[str(i) for i in ids])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(
            sorted(l.split(b" ")[:3] for l in r.stdout.splitlines()),
            sorted([b"job", b"%d" % i, b"succeeded"] for i in ids))
        self.assertDrawnAndErased(r, 8)

    def test_stdout_the_same_as_without(self):
        ids = [self.submit(["sleep", "0.2"]) for _ in range(6)]
        on = self.run_ctl("wait", *[str(i) for i in ids])
        self.assertGreaterEqual(len(draws(on.stderr)), 1, on.stderr)
        # Once all have finished, the same lines, in the order of the ids
        # rather than as they finished.
        off = self.run_ctl("wait", *[str(i) for i in ids], tty=False)
        self.assertEqual(off.stderr, b"")
        self.assertEqual(sorted(on.stdout.splitlines(True)),
                         sorted(off.stdout.splitlines(True)))
        self.assertEqual(len(off.stdout.splitlines()), 6)

    def test_no_progress_and_progress(self):
        ids = [str(self.submit(["sleep", "0.6"])) for _ in range(2)]
        r = self.run_ctl("wait", "--no-progress", *ids)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, b"")
        # Past a second, for the time elapsed to change.
        ids = [str(self.submit(["sleep", "1.5"])) for _ in range(2)]
        r = self.run_ctl("wait", "--progress", *ids, tty=False)
        self.assertEqual(r.returncode, 0)
        self.assertDrawnAndErased(r, 2)

    def test_lines_on_the_same_terminal(self):
        ids = [self.submit(["sleep", "0.%d" % (i + 2)]) for i in range(6)]
        r = self.run_ctl("wait", *[str(i) for i in ids], stdout_tty=True)
        self.assertEqual(r.returncode, 0)
        lines, last = screen(r.stderr)
        self.assertEqual(sorted(l.split(" ")[:3] for l in lines),
                         sorted(["job", str(i), "succeeded"] for i in ids))
        self.assertEqual(last, "")

    def test_timed_out_on_a_clean_line(self):
        job = self.submit(["sleep", "30"])
        r = self.run_ctl("wait", "-t", "1", str(job))
        self.assertEqual(r.returncode, 124)
        self.assertGreaterEqual(len(draws(r.stderr)), 1, r.stderr)
        lines, last = screen(r.stderr)
        self.assertEqual(lines, ["mprocctl: timed out; still unfinished: %d"
                                 % job])
        self.assertEqual(last, "")
        self.d.call("io.mprocd.Cancel", {"id": job})


class TestOptions(ProgressTestCase):

    def test_usage(self):
        for args, msg in (
                (["map", "--progress=yes", "echo"],
                 b"mprocctl map: option --progress=yes takes no value"),
                (["wait", "--bogus", "1"],
                 b"mprocctl wait: unknown option --bogus"),
                (["map", "--progress", "--bogus", "echo"],
                 b"mprocctl map: unknown option --bogus")):
            r = self.run_ctl(*args, tty=False)
            self.assertEqual(r.returncode, 125, args)
            self.assertTrue(r.stderr.startswith(msg), r.stderr)

    def test_help(self):
        for cmd in ("map", "wait"):
            r = self.run_ctl(cmd, "--help", tty=False)
            self.assertEqual(r.returncode, 0)
            self.assertIn(b"[--[no-]progress]", r.stdout)
            self.assertIn(b"--progress, --no-progress", r.stdout)

    def test_the_jobs_options_are_theirs(self):
        # After CMD, --progress is the job's.
        r = self.run_ctl("map", "echo", "--progress", input=b"x\n",
                         tty=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"--progress x\n")


if __name__ == "__main__":
    main()
