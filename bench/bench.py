#!/usr/bin/env python3
"""mprocd beside the physical limit and its peers, in one run.

bench/run builds everything and calls this; see bench/README.md. Every
figure is measured REPS times, interleaved with its references so that the
machine's noise falls on all of them alike, and printed as the median with
min-max. On a busy 2-core machine only the ratios mean much.
"""

import argparse
import datetime
import errno
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

MIB = 1024 * 1024


# --- Settings ------------------------------------------------------------------

class Plan:
    """How much of everything: the full run, or --quick for CI.

    A full run must finish within 15 minutes even on a host where starting
    a process is slow (fork() there can be six times dearer than here), so
    the throughput sections size their job counts from a short pilot of
    the fork/exec limit: each round of a fast contender takes about
    fast_secs, each of a slow peer about slow_secs, and figures are per
    second, so rounds of different sizes compare."""

    def __init__(self, quick, reps):
        self.quick = quick
        self.jobs = 300 if quick else 10000          # throughput, at most
        self.min_jobs = 300 if quick else 2000        # ... at least
        self.fast_secs = 6                            # a fast round's time
        self.slow_jobs = 150 if quick else 10000      # parallel, tsp
        self.min_slow_jobs = 150 if quick else 500
        self.slow_secs = 12
        self.pilot = 300                              # jobs, to size rounds
        # Seconds after which a section starts no more rounds (after 2).
        self.budget = {"throughput": 300, "latency": 120, "calls": 150,
                       "store": 90, "store latency": 60, "follow": 90,
                       "deps": 120, "deps lock": 60}
        self.reps = reps or (2 if quick else 5)
        self.slow_reps = reps or (2 if quick else 3)  # parallel, tsp, celery
        self.latency = 200 if quick else 3000         # open connection
        self.process = 20 if quick else 200           # whole processes
        self.restarts = 20 if quick else 200
        self.sv_restarts = 10 if quick else 50
        self.log_records = 2000 if quick else 50000   # per process
        self.log_procs = 8
        self.queued = 2000 if quick else 100000
        self.queued_reps = 1 if quick else 3
        self.drain_secs = 60      # for the 100,000 queued jobs to run
        self.status_calls = 5 if quick else 20
        self.list_calls = 2 if quick else 3
        self.calls = 300 if quick else 10000          # Pool.map, echo
        self.celery_calls = 100 if quick else 2000
        self.pyc_calls = 20 if quick else 200         # python3 -c a call
        self.apply_calls = 100 if quick else 1000     # a round, each side
        self.limit_secs = 2       # a round of the limit, in "calls"
        self.store_jobs = 2000 if quick else 100000   # a round's Submits
        self.store_gets = 200 if quick else 2000      # a round, each kind
        self.follow_lines = 500 if quick else 5000    # over all rounds
        self.follow_bytes = (20 if quick else 200) * MIB  # the flood job's
        self.followers = 10
        # The flood job runs a tenth of a second: a round is cheap and one
        # slow one moves a median of three, so both sides get more.
        self.flood_reps = self.reps if quick else 3 * self.reps
        self.follow_secs = 120    # a bench-follow run at most
        self.deps_chain = 1000 if quick else 10000    # jobs a round
        self.deps_queued = 10000 if quick else 100000  # half with the lock
        self.deps_releases = 5    # freed workers timed a round
        self.deps_reps = reps or (2 if quick else 3)


# --- Small tools ---------------------------------------------------------------

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def output(argv, **kw):
    return run(argv, stdout=subprocess.PIPE, text=True, **kw).stdout


def numbers(text):
    return [float(x) for x in text.split()]


def timed(argv, **kw):
    t0 = time.perf_counter()
    run(argv, **kw)
    return time.perf_counter() - t0


def rss(pid):
    """VmRSS in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def wait_for(what, cond, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        r = cond()
        if r:
            return r
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.01)


def rounds(contenders, budget=None, what=None, notes=None):
    """Runs each contender once a round, round after round, each while it
    has rounds left, starting each round one further along the list so
    that no contender always follows the same one: the machine's noise
    falls on all alike. contenders: (key, reps, fn); fn() returns a figure
    or a list of them. Once budget seconds have gone, no round starts
    after the second (a note says so). Returns {key: [figures]}."""
    out = {key: [] for key, _, _ in contenders}
    t0 = time.monotonic()
    most = max(reps for _, reps, _ in contenders)
    for rep in range(most):
        if budget is not None and rep >= 2 and \
                time.monotonic() - t0 > budget:
            log("  %s: %.0f s gone, more than its %d s: no round %d of %d"
                % (what, time.monotonic() - t0, budget, rep + 1, most))
            if notes is not None:
                notes.append("%s: %d rounds of %d: its time (%d s) was up."
                             % (what, rep, most, budget))
            break
        for k in range(len(contenders)):
            key, reps, fn = contenders[(rep + k) % len(contenders)]
            if rep < reps:
                r = fn()
                out[key] += r if isinstance(r, list) else [r]
    return out


def sized(rate, secs, least, most):
    """Jobs for a round of about secs at rate per second, in hundreds,
    between least and most."""
    return int(max(least, min(most, round(rate * secs, -2))))


class Stat:
    """A figure over several runs: median, min, max."""

    def __init__(self, values, unit, higher_is_better):
        self.values = list(values)
        self.unit = unit
        self.higher = higher_is_better

    @property
    def median(self):
        return statistics.median(self.values)

    def fmt(self):
        med = fmt_num(self.median, self.unit)
        if len(self.values) < 2:
            return med
        return "%s (%s–%s)" % (med, fmt_num(min(self.values), self.unit, 0),
                               fmt_num(max(self.values), self.unit, 0))


def fmt_num(v, unit, with_unit=1):
    if unit == "MiB":
        s = "%.1f" % (v / MIB)
    elif unit in ("µs", "ms"):
        s = "%.0f" % v if v >= 100 else "%.2g" % v if v < 10 else "%.1f" % v
    elif v >= 100:
        s = "{:,.0f}".format(v)
    else:
        s = "%.3g" % v
    return s + (" " + unit if with_unit and unit else "")


# --- A Varlink client, enough for the bench's own bookkeeping ------------------

class Varlink:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.buf = b""

    def call(self, method, **params):
        return self.pipeline(method, [params])[0]

    def pipeline(self, method, calls):
        """Sends the calls at once and returns their replies' parameters."""
        self.s.sendall(b"".join(json.dumps({
            "method": method, "parameters": params}).encode() + b"\0"
            for params in calls))
        replies = []
        for _ in calls:
            while b"\0" not in self.buf:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("mprocd closed the connection")
                self.buf += chunk
            msg, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(msg)
            if "error" in reply:
                raise RuntimeError("%s: %s %s" % (
                    method, reply["error"], reply.get("parameters")))
            replies.append(reply.get("parameters", {}))
        return replies

    def close(self):
        self.s.close()


# --- The programs ------------------------------------------------------------

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# How bench-fork can start a process: -m's word, and its name in the table.
START_METHODS = (("fork", "fork"), ("vfork", "vfork"),
                 ("spawn", "posix_spawn"))


def python3():
    """The interpreter of the "calls" section's Python contenders, all of
    them: Debian's, which has Debian's Celery, and starts without a
    version manager's shim in front of it (python3 -c a call would time
    the shim)."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) \
        else sys.executable


def celery_missing(py):
    """Why Celery cannot be measured here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    r = subprocess.run([py, "-c", "import celery, redis"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        return "%s has no celery or redis module (python3-celery, " \
            "python3-redis)" % py
    return None


class Bench:
    def __init__(self, build, plan, work):
        self.build = build
        self.plan = plan
        self.work = work
        self.mprocd = os.path.join(build, "daemon", "mprocd")
        self.mprocctl = os.path.join(build, "ctl", "mprocctl")
        self.client = os.path.join(build, "bench", "bench-client")
        self.fork = os.path.join(build, "bench", "bench-fork")
        self.logb = os.path.join(build, "bench", "bench-log")
        self.echo = os.path.join(build, "bench", "bench-echo")
        self.followb = os.path.join(build, "bench", "bench-follow")
        self.depsb = os.path.join(build, "bench", "bench-deps")
        self.rows = []
        self.chart = []
        self.chart_title = ""
        self.notes = []
        self.limits = {}      # section: {start method: jobs/s values}
        self.limit_rate = None

    # Daemons are started per section, with the shipped defaults except
    # what the section is about. pools: {name: {key: value}}, else one
    # pool "default" with the keywords.
    def start_mprocd(self, name, main="", pools=None, env=None, **pool):
        conf, sock = self.write_conf(name, main, pools, **pool)
        d = os.path.dirname(conf)
        p = subprocess.Popen([self.mprocd, "-c", conf],
                             stdin=subprocess.DEVNULL, env=env)
        want = {pname: int(keys.get("workers", 4)) for pname, keys in
                (pools or {"default": pool}).items()}

        def ready():
            if p.poll() is not None:
                raise RuntimeError("mprocd exited with status %d; see %s"
                                   % (p.returncode, os.path.join(d, "log")))
            return os.path.exists(sock) and self._ready(sock, want)
        try:
            wait_for("mprocd's workers to be ready (%s)" % sock, ready)
        except BaseException:
            if p.poll() is None:    # not left behind
                p.kill()
                p.wait()
            raise
        return p, sock

    def write_conf(self, name, main="", pools=None, **pool):
        """The configuration of a daemon of start_mprocd(), in its own
        directory under the run's: (its path, the socket's path)."""
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "sock")
        conf = os.path.join(d, "mprocd.conf")
        with open(conf, "w") as f:
            # Memory only unless a section asks for the state database.
            if "state =" not in main:
                main = "state = none\n" + main
            f.write("[mprocd]\nsocket = %s\nlog_target = file:%s\n%s\n" % (
                sock, os.path.join(d, "log"), main))
            for pname, keys in (pools or {"default": pool}).items():
                f.write("[pool %s]\n" % pname)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))
        return conf, sock

    @staticmethod
    def _ready(sock, want):
        try:
            c = Varlink(sock)
        except OSError:
            return False
        try:
            pools = c.call("io.mprocd.Status")["pools"]
            return {q["name"]: sum(w["state"] == "idle" for w in q["workers"])
                    for q in pools} == want
        finally:
            c.close()

    def accepts_program(self):
        """Whether this mprocd has program pools (a "program" pool key)."""
        conf = os.path.join(self.work, "probe.conf")
        with open(conf, "w") as f:
            f.write("[mprocd]\nsocket = %s\n[pool probe]\nprogram = "
                    "/bin/true\n" % os.path.join(self.work, "probe.sock"))
        return subprocess.run([self.mprocd, "--check-config", "-c", conf],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    # --- The fork/exec limit ---------------------------------------------------

    def limit_contenders(self, n, reps):
        """bench-fork limit N 2, once for each way of starting a process:
        (key, reps, fn) for rounds(), fn giving jobs/s."""
        return [("limit-" + how, reps, lambda how=how: n / float(output(
            [self.fork, "-m", how, "limit", str(n), "2"])))
            for how, _ in START_METHODS]

    def best_limit(self, section, rate, n):
        """The fastest way to start processes in this section's rounds:
        (its name, its Stat); every way's figures go in a note."""
        self.limits[section] = {how: rate["limit-" + how].values
                                for how, _ in START_METHODS}
        how, name = max(START_METHODS,
                        key=lambda m: rate["limit-" + m[0]].median)
        self.notes.append(
            "%s: fork/exec limit (%s × `/bin/true I`, 2 at a time) by way "
            "of starting a process: %s; the best, %s, is the limit." % (
                section.split(" (")[0], "{:,}".format(n), "; ".join(
                    "%s %s" % (nm, rate["limit-" + h].fmt())
                    for h, nm in START_METHODS), name))
        return name, rate["limit-" + how]

    def estimate_limit(self):
        """A first figure of the limit, jobs/s: the best of one short run
        of each way; kept for the sections after."""
        if self.limit_rate is None:
            n = self.plan.pilot
            self.limit_rate = max(r[0] for r in rounds(
                self.limit_contenders(n, 1)).values())
            log("  pilot: the fork/exec limit is about %.0f jobs/s"
                % self.limit_rate)
        return self.limit_rate

    @staticmethod
    def stop(p):
        p.send_signal(signal.SIGTERM)
        p.wait(60)

    def row(self, section, metric, ours, ref_name, ref, target, ok,
            ratio=None):
        """A row of the table. ours or ref may be a string instead of a
        Stat: why that contender was not measured; the row then has no
        ratio and its target counts neither as met nor missed."""
        if isinstance(ours, str) or isinstance(ref, str):
            ratio, ok = None, None
        elif ratio is None and ref is not None and ref.median:
            ratio = ours.median / ref.median
        ref_text = ref if isinstance(ref, str) else \
            ref.fmt() if ref is not None else ""
        self.rows.append({
            "section": section, "metric": metric,
            "mprocd": ours if isinstance(ours, str) else ours.fmt(),
            "reference": ref_name, "ref": ref_text,
            "ratio": "%.2f×" % ratio if ratio is not None else "",
            "target": target, "met": ok,
            "values": None if isinstance(ours, str) else ours.values,
            "ref_values": ref.values if isinstance(ref, Stat) else None})
        log("  %s: %s | %s %s | %s" % (metric, self.rows[-1]["mprocd"],
                                       ref_name, ref_text,
                                       self.rows[-1]["ratio"]))

    # --- 1. Throughput ---------------------------------------------------------

    def lines(self, n):
        """A file of the lines 0..n-1, as map, xargs and parallel read."""
        path = os.path.join(self.work, "lines-%d" % n)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("".join("%d\n" % i for i in range(n)))
        return path

    def tsp(self, n):
        """Seconds for n × `tsp /bin/true I`, then `tsp -w`, 2 slots."""
        tsdir = os.path.join(self.work, "tsp")
        os.makedirs(tsdir, exist_ok=True)
        env = dict(os.environ, TS_SOCKET=os.path.join(tsdir, "sock"),
                   TMPDIR=tsdir, TS_MAXFINISHED=str(n + 100))
        loop = ('i=0; while [ $i -lt %d ]; do tsp /bin/true $i >/dev/null; '
                'i=$((i+1)); done; tsp -w' % n)
        run(["tsp", "-S", "2"], env=env, stdout=subprocess.DEVNULL)
        try:
            return timed(["sh", "-c", loop], env=env,
                         stdout=subprocess.DEVNULL)
        finally:
            run(["tsp", "-K"], env=env)
            for f in os.listdir(tsdir):
                os.unlink(os.path.join(tsdir, f))

    def stdin_lines(self, argv, n):
        with open(self.lines(n)) as f:
            return timed(argv, stdin=f, stdout=subprocess.DEVNULL)

    def throughput(self):
        plan = self.plan
        parallel = ["parallel", "--will-cite", "-j2", "/bin/true"]
        # Every contender runs "/bin/true I", as map, xargs and parallel
        # must: with one argument GNU true calls setlocale(), 30% dearer.
        # Round sizes: fixed for --quick; else from a pilot of each, so
        # that a host where fork() is slow still finishes in time.
        if plan.quick:
            n, slow = plan.jobs, {"parallel": plan.slow_jobs,
                                  "tsp": plan.slow_jobs}
        else:
            n = sized(self.estimate_limit(), plan.fast_secs, plan.min_jobs,
                      plan.jobs)
            m = plan.pilot
            slow = {"parallel": m / self.stdin_lines(parallel, m),
                    "tsp": m / self.tsp(m)}
            slow = {k: sized(r, plan.slow_secs, plan.min_slow_jobs,
                             min(n, plan.slow_jobs)) for k, r in slow.items()}
        log("throughput: %d × /bin/true I, 2 at a time (parallel %d, "
            "tsp %d)" % (n, slow["parallel"], slow["tsp"]))
        p, sock = self.start_mprocd("throughput", "keep_finished = %d" % (
            n + 100), workers=2)
        contenders = self.limit_contenders(n, plan.reps) + [
            ("pipelined", plan.reps, lambda: n / float(output(
                [self.client, sock, "pipeline", str(n)]))),
            ("map", plan.reps, lambda: n / self.stdin_lines(
                [self.mprocctl, "-s", sock, "map", "/bin/true"], n)),
            ("xargs", plan.reps, lambda: n / self.stdin_lines(
                ["xargs", "-P2", "-n1", "/bin/true"], n)),
            ("parallel", plan.slow_reps, lambda: slow["parallel"] /
             self.stdin_lines(parallel, slow["parallel"])),
            ("tsp", plan.slow_reps, lambda: slow["tsp"] /
             self.tsp(slow["tsp"])),
        ]
        res = rounds(contenders, plan.budget["throughput"], "Throughput",
                     self.notes)
        self.stop(p)
        rate = {k: Stat(v, "jobs/s", True) for k, v in res.items()}
        sec = "Throughput (jobs/s, %s × `/bin/true I`, 2 at a time)" % \
            "{:,}".format(n)
        how, lim = self.best_limit(sec, rate, n)
        for h, name in START_METHODS:
            self.chart.append(("limit\\n(%s)" % name, rate["limit-" + h]))
        for key, label in (("pipelined", "mprocd\\npipelined client"),
                           ("map", "mprocd\\nmprocctl map"),
                           ("xargs", "xargs -P2"),
                           ("parallel", "GNU parallel -j2"),
                           ("tsp", "task-spooler,\\n2 slots")):
            if slow.get(key, n) != n:
                label += "\\n(%s jobs)" % "{:,}".format(slow[key])
            self.chart.append((label, rate[key]))
        self.chart_title = "%s × /bin/true I, 2 at a time (median, " \
            "min–max)" % "{:,}".format(n)
        ref = "fork/exec limit (%s)" % how
        for key, name in (("pipelined", "mprocd, pipelined client"),
                          ("map", "mprocd, `mprocctl map`")):
            r = rate[key].median / lim.median
            self.row(sec, name, rate[key], ref, lim,
                     "≥ 0.90× limit", r >= 0.9)
        for key, name, want in (("xargs", "`xargs -P2`", 1.0),
                                ("parallel", "GNU `parallel -j2`", 1.0),
                                ("tsp", "task-spooler, 2 slots", 4.0)):
            if key in slow and slow[key] != n:
                name += " (%s jobs)" % "{:,}".format(slow[key])
            r = rate["map"].median / rate[key].median
            self.row(sec, "`mprocctl map` vs " + name,
                     rate["map"], name, rate[key],
                     "≥ %.0f×" % want if want > 1 else "> 1×", r > want
                     if want == 1.0 else r >= want)

    # --- 2. Latency ------------------------------------------------------------

    def latency(self):
        plan = self.plan
        log("latency: one /bin/true at a time")
        p, sock = self.start_mprocd("latency", workers=2)
        chunk = max(1, plan.latency // plan.reps)
        # The reference is the fastest way to start a process here, as
        # for the limit: each way is measured, the best p50 is taken.
        res = rounds([("ours", plan.reps, lambda: numbers(output(
            [self.client, sock, "latency", str(chunk)])))] + [
            (how, plan.reps, lambda how=how: numbers(output(
                [self.fork, "-m", how, "wait", str(chunk)])))
            for how, _ in START_METHODS], plan.budget["latency"], "Latency",
            self.notes)
        ours = res["ours"]
        sec = "Latency (one /bin/true, submitted → finished → output)"
        how, name = min(START_METHODS, key=lambda m: pct(res[m[0]], 50))
        raw = res[how]
        self.notes.append(
            "Latency: start+exec+wait of `/bin/true` (C) by way of "
            "starting a process, p50/p99: %s; the best p50, %s, is the "
            "reference." % ("; ".join("%s %.0f/%.0f µs" % (
                nm, pct(res[h], 50), pct(res[h], 99))
                for h, nm in START_METHODS), name))
        ref = "%s+exec+wait (C)" % name
        o50, r50 = pct(ours, 50), pct(raw, 50)
        self.row(sec, "open connection, p50", Stat([o50], "µs", False),
                 ref, Stat([r50], "µs", False),
                 "≤ +150 µs", o50 - r50 <= 150)
        o99, r99 = pct(ours, 99), pct(raw, 99)
        self.row(sec, "open connection, p99", Stat([o99], "µs", False),
                 ref, Stat([r99], "µs", False), "", None)
        self.rows[-2]["note"] = "+%.0f µs" % (o50 - r50)
        self.rows[-1]["note"] = "+%.0f µs" % (o99 - r99)

        # Whole processes, started the same way, one after the other.
        tsdir = os.path.join(self.work, "tsp-latency")
        os.makedirs(tsdir, exist_ok=True)
        env = dict(os.environ, TS_SOCKET=os.path.join(tsdir, "sock"),
                   TMPDIR=tsdir)
        run(["tsp", "-S", "2"], env=env, stdout=subprocess.DEVNULL)
        submit = [self.mprocctl, "-s", sock, "submit", "-w", "true"]
        times = {"mprocctl": [], "tsp": [], "true": []}
        try:
            for _ in range(plan.process):
                times["mprocctl"].append(timed(submit) * 1e3)
                t0 = time.perf_counter()
                jid = output(["tsp", "true"], env=env).strip()
                run(["tsp", "-w", jid], env=env, stdout=subprocess.DEVNULL)
                times["tsp"].append((time.perf_counter() - t0) * 1e3)
                times["true"].append(timed(["/bin/true"]) * 1e3)
        finally:
            run(["tsp", "-K"], env=env)
        self.stop(p)
        m = Stat([pct(times["mprocctl"], 50)], "ms", False)
        t = Stat([pct(times["tsp"], 50)], "ms", False)
        self.row(sec, "`mprocctl submit -w true`, p50", m,
                 "`tsp -w $(tsp true)`", t, "≤ 0.60×",
                 m.median / t.median <= 0.6)
        self.row(sec, "`mprocctl submit -w true`, p50", m,
                 "`/bin/true` run directly",
                 Stat([pct(times["true"], 50)], "ms", False), "", None)

    # --- 3. Restart ------------------------------------------------------------

    def restart(self):
        plan = self.plan
        log("restart: SIGKILL a worker, until its replacement is idle")
        p, sock = self.start_mprocd("restart", workers=2, restart_delay=0,
                                    crash_limit=100000)
        ours = numbers(output([self.client, sock, "restart",
                               str(plan.restarts)]))
        self.stop(p)
        theirs = self.supervisord_restarts(plan.sv_restarts)
        sec = "Restart (worker SIGKILLed → replacement ready)"
        for q in (50, 99):
            o, t = pct(ours, q), pct(theirs, q)
            self.row(sec, "p%d, restart_delay 0" % q, Stat([o / 1e3], "ms",
                     False), "supervisord, autorestart", Stat([t / 1e3],
                     "ms", False), "≤ 2 ms" if q == 50 else "",
                     o <= 2000 if q == 50 else None)

    def supervisord(self, name, programs):
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        conf = os.path.join(d, "supervisord.conf")
        with open(conf, "w") as f:
            f.write("[supervisord]\nnodaemon=true\nlogfile=%s/log\n"
                    "pidfile=%s/pid\nchildlogdir=%s\n"
                    "[inet_http_server]\nport=127.0.0.1:%d\n"
                    "[rpcinterface:supervisor]\nsupervisor.rpcinterface_"
                    "factory = supervisor.rpcinterface:make_main_rpc"
                    "interface\n" % (d, d, d, port))
            for i in range(programs):
                f.write("[program:p%d]\ncommand=/bin/sleep 1000000\n"
                        "autorestart=true\nstartsecs=0\nstartretries=100000\n"
                        "stdout_logfile=NONE\nstderr_logfile=NONE\n" % i)
        p = subprocess.Popen(["supervisord", "-c", conf],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        rpc = xmlrpc.client.ServerProxy("http://127.0.0.1:%d/RPC2" % port)

        def up():
            try:
                return all(x["statename"] == "RUNNING"
                           for x in rpc.supervisor.getAllProcessInfo()) and \
                    len(rpc.supervisor.getAllProcessInfo()) == programs
            except (OSError, xmlrpc.client.Error):
                return False
        wait_for("supervisord to start its programs", up)
        return p, rpc

    def supervisord_restarts(self, n):
        p, rpc = self.supervisord("supervisord-restart", 1)
        out = []
        try:
            for _ in range(n):
                old = rpc.supervisor.getProcessInfo("p0")["pid"]
                t0 = time.perf_counter()
                os.kill(old, signal.SIGKILL)
                while True:
                    time.sleep(0.0001)
                    info = rpc.supervisor.getProcessInfo("p0")
                    if info["statename"] == "RUNNING" and info["pid"] != old:
                        break
                out.append((time.perf_counter() - t0) * 1e6)
                time.sleep(0.02)
        finally:
            self.stop(p)
        return out

    # --- 4. Logger -------------------------------------------------------------

    def logger(self):
        plan = self.plan
        procs, n = plan.log_procs, plan.log_records
        log("logger: %d processes × %d records to one file" % (procs, n))
        path = os.path.join(self.work, "logger.log")
        rate = {"api": [], "raw": []}
        for _ in range(plan.reps):
            for how in ("api", "raw"):
                if os.path.exists(path):
                    os.unlink(path)
                secs = float(output([self.logb, how, path, str(procs),
                                     str(n)]))
                check_records(path, how, procs, n)
                rate[how].append(procs * n / secs)
        sec = "Logger (%d processes, one file)" % procs
        a = Stat(rate["api"], "records/s", True)
        r = Stat(rate["raw"], "records/s", True)
        self.row(sec, "log API, every record checked whole", a,
                 "single write()s, O_APPEND", r, "≥ 0.70×",
                 a.median / r.median >= 0.7)

    # --- 5. Footprint and scale ------------------------------------------------

    def footprint(self):
        plan = self.plan
        log("footprint: idle, then %d queued" % plan.queued)
        sec = "Footprint and scale"
        p, sock = self.start_mprocd("idle", workers=4)
        time.sleep(0.5)
        c = Varlink(sock)
        workers = [w["pid"] for w in
                   c.call("io.mprocd.Status")["pools"][0]["workers"]]
        c.close()
        sup = Stat([rss(p.pid)], "MiB", False)
        wrk = Stat([rss(w) for w in workers], "MiB", False)
        self.stop(p)
        sv, rpc = self.supervisord("supervisord-idle", 4)
        time.sleep(0.5)
        svr = Stat([rss(sv.pid)], "MiB", False)
        self.stop(sv)
        self.row(sec, "supervisor RSS, idle, 4 workers", sup,
                 "supervisord, 4 programs", svr, "≤ 4 MiB",
                 sup.median <= 4 * MIB)
        self.row(sec, "a worker's RSS", wrk, "", None, "", None)

        # Two workers held by jobs that wait, so the rest stays queued.
        n = plan.queued
        p, sock = self.start_mprocd("queued", workers=2,
                                    queue_limit=n + 100)
        c = Varlink(sock)
        fifo = os.path.join(self.work, "hold")
        os.mkfifo(fifo)
        holders = [c.call("io.mprocd.Submit", argv=["sh", "-c",
                                                    'read x < "$0"', fifo])["id"]
                   for _ in range(2)]
        wait_for("the holders to run", lambda: c.call(
            "io.mprocd.Status")["pools"][0]["running"] == 2)
        base = rss(p.pid)
        intake, status, listing, peak = [], [], [], []
        for rep in range(plan.queued_reps):
            intake.append(n / float(output([self.client, sock, "intake",
                                            str(n)])))
            peak.append(rss(p.pid))
            status += numbers(output([self.client, sock, "call",
                                      str(plan.status_calls),
                                      "io.mprocd.Status"]))
            listing += numbers(output([self.client, sock, "call",
                                       str(plan.list_calls),
                                       "io.mprocd.List"]))
            if rep < plan.queued_reps - 1:
                self.cancel_queued(c)
        # The last batch runs to the end. Where starting a process is
        # slow, 100,000 jobs would take many minutes: then only as many as
        # run in about drain_secs are left queued, the newest cancelled
        # first, as between the rounds.
        keep = n if plan.quick else int(
            0.8 * self.estimate_limit() * plan.drain_secs)
        cancelled = 0
        if keep < n:
            cancelled = self.cancel_queued(c, keep)
        with open(fifo, "w") as f:
            f.write("go\ngo\n")
        wait_for("the queue to drain", lambda: all(
            c.call("io.mprocd.Status")["pools"][0][k] == 0
            for k in ("queued", "running")), timeout=600)
        after = rss(p.pid)
        c.close()
        self.stop(p)
        q = "{:,}".format(n)
        self.row(sec, "supervisor RSS, %s queued" % q,
                 Stat(peak, "MiB", False), "idle, 2 workers",
                 Stat([base], "MiB", False), "≤ 64 MiB",
                 statistics.median(peak) <= 64 * MIB)
        # keep_finished (10,000) of them stay, with their output.
        self.row(sec, "supervisor RSS, after they ran", Stat([after], "MiB",
                 False), "with them queued", Stat(peak, "MiB", False),
                 "back down: ≤ 0.25×" if n >= 40000 else "",
                 after <= 0.25 * statistics.median(peak) if n >= 40000
                 else None)
        if cancelled:
            self.rows[-1]["note"] = "%s ran, the newest %s were " \
                "cancelled first" % ("{:,}".format(n - cancelled),
                                     "{:,}".format(cancelled))
        self.row(sec, "Status with %s jobs" % q,
                 Stat([x / 1e3 for x in status], "ms", False), "", None,
                 "≤ 20 ms", statistics.median(status) <= 20000)
        self.row(sec, "List of %s jobs" % q,
                 Stat([x / 1e3 for x in listing], "ms", False), "", None,
                 "", None)
        self.row(sec, "Submit intake, one pipelined connection",
                 Stat(intake, "jobs/s", True), "", None, "≥ 50,000/s",
                 statistics.median(intake) >= 50000)

    @staticmethod
    def cancel_queued(c, keep=0):
        """Cancels every queued job but the keep oldest, pipelined a
        thousand at a time (all at once, unread replies would stop mprocd
        reading us: a deadlock). Returns how many it cancelled."""
        ids = sorted(j["id"] for j in c.call("io.mprocd.List",
                                             state="queued")["jobs"])[keep:]
        for k in range(0, len(ids), 1000):
            c.pipeline("io.mprocd.Cancel", [{"id": i} for i in ids[k:k + 1000]])
        return len(ids)


    # --- 6. Calls: program pools beside multiprocessing and Celery -------------

    def calls(self):
        plan, py, n = self.plan, python3(), self.plan.calls
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [os.path.join(SRC, "python"), os.path.join(SRC, "bench")] +
            [x for x in [os.environ.get("PYTHONPATH")] if x]))
        driver = [py, os.path.join(SRC, "bench", "bench-calls.py")]
        # mprocd's side comes in two parts: program pools in the daemon,
        # mprocd.Pool in python/. Whatever is not there yet is a row that
        # says so, and its peers are measured all the same.
        no_echo = no_pool = None
        if not self.accepts_program():
            no_echo = no_pool = "this mprocd has no program pools (it " \
                "refuses a `program =` key)"
        elif not os.path.exists(os.path.join(SRC, "python", "mprocd",
                                             "pool.py")):
            no_pool = "python/mprocd/pool.py is not there"
        else:
            r = subprocess.run(driver[:1] + ["-c", "import mprocd; "
                               "mprocd.Pool"], env=env, text=True,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            if r.returncode != 0:
                no_pool = "`import mprocd; mprocd.Pool` fails: %s" % (
                    r.stderr.strip().splitlines() or ["?"])[-1]
        no_celery = celery_missing(py)
        if no_celery is not None:
            no_celery = "%s (bench/run installs it, but not for --quick)" \
                % no_celery
        log("calls: double(n) on 2 workers, %d calls (Celery %d, python3 -c "
            "%d)%s%s%s" % (n, plan.celery_calls, plan.pyc_calls,
                           "; echo program: " + no_echo if no_echo else "",
                           "; Pool: " + no_pool if no_pool else "",
                           "; Celery: " + no_celery if no_celery else ""))

        pools = {"cmd": {"workers": 2}}
        if no_echo is None:
            pools["echo"] = {"workers": 2, "program": self.echo}
        if no_pool is None:
            pools["calc"] = {"workers": 2, "program": "%s -m mprocd.worker "
                             "benchcalls" % py}
        p, sock = self.start_mprocd("calls", "keep_finished = %d" % (
            max(n, plan.pyc_calls) + 1000), pools=pools, env=env)
        env["MPROCD_SOCKET"] = sock
        celery = None
        if no_celery is None:
            celery = self.start_celery(py, env)
        try:
            res, n_lim = self.calls_rounds(plan, n, driver, env, sock,
                                           celery, no_echo, no_pool)
        finally:
            if celery is not None:
                self.stop_celery(*celery)
            self.stop(p)

        sec = "Calls (double(n) on 2 workers, results checked)"
        rate = {k: Stat(v, "jobs/s" if k.startswith("limit-") else "calls/s",
                        True) for k, v in res.items()
                if not k.startswith("apply-")}
        if no_echo is not None:
            self.notes.append("Calls: mprocd's rows are not available: %s."
                              % no_echo)
        elif no_pool is not None:
            self.notes.append("Calls: the `mprocd.Pool` rows are not "
                              "available: %s." % no_pool)
        if no_celery is not None:
            self.notes.append("Calls: Celery is not measured: %s." %
                              no_celery)
        na = "not available"
        no_echo, no_pool = no_echo and na, no_pool and na
        no_celery = no_celery and "not measured"
        ours = rate.get("mprocd-map", no_pool)
        metric = "`mprocd.Pool.map`, %s calls" % "{:,}".format(n)
        self.row(sec, metric, ours, "`multiprocessing.Pool(2).map`, "
                 "chunksize=1", rate["mp-map"], "≥ 1.00×",
                 not isinstance(ours, str) and
                 ours.median >= rate["mp-map"].median)
        for key, name, want in (
                ("celery-map", "Celery 5 prefork `-c 2`, Redis broker and "
                 "backend (%s calls)" % "{:,}".format(plan.celery_calls), 20),
                ("pyc", "command pool, `python3 -c` a call (%s calls)" %
                 "{:,}".format(plan.pyc_calls), 50)):
            ref = rate.get(key, no_celery)
            self.row(sec, "`Pool.map` vs " + name.split(" (")[0], ours, name,
                     ref, "≥ %d×" % want, not isinstance(ours, str) and
                     not isinstance(ref, str) and
                     ours.median >= want * ref.median)
        mp = res["apply-mp"]
        for q in (50, 99):
            o = Stat([pct(res["apply-mprocd"], q)], "µs", False) \
                if no_pool is None else no_pool
            t = Stat([pct(mp, q)], "µs", False)
            self.row(sec, "`Pool.apply` round trip, p%d" % q, o,
                     "`multiprocessing` `Pool.apply`, p%d" % q, t, "≤ 1.00×",
                     no_pool is None and o.median <= t.median)
        how, lim = self.best_limit(sec, rate, n_lim)
        echo = rate.get("echo", no_echo)
        self.row(sec, "pipelined Submits into a C echo program", echo,
                 "fork/exec limit (%s)" % how, lim, "≥ 10× limit",
                 not isinstance(echo, str) and
                 echo.median >= 10 * lim.median)

    def calls_rounds(self, plan, n, driver, env, sock, celery, no_echo,
                     no_pool):
        """The calls section's rounds: {contender: [figures]} (calls/s, or
        µs a call for apply-*), and the limit's jobs a round."""
        nc, npc, na = plan.celery_calls, plan.pyc_calls, plan.apply_calls
        # The limit's rounds are short: it is here only as the yardstick
        # of the echo program, which must beat it ten times over.
        n_lim = plan.min_jobs if plan.quick else sized(
            self.estimate_limit(), plan.limit_secs, plan.pilot, 4000)

        def drive(what, who, k):
            return output(driver + [what, who, str(k)], env=env)

        def pyc():
            with open(self.lines(npc)) as f:
                t0 = time.perf_counter()
                out = output([self.mprocctl, "-s", sock, "map", "-p", "cmd",
                              driver[0], "-c", "print(2 * {})"], stdin=f)
                secs = time.perf_counter() - t0
            if out.split() != [str(2 * i) for i in range(npc)]:
                raise RuntimeError("python3 -c through mprocctl map: wrong "
                                   "results: %r" % out[:200])
            return npc / secs

        contenders = self.limit_contenders(n_lim, plan.reps) + [
            ("mp-map", plan.reps, lambda: n / float(drive(
                "map", "multiprocessing", n))),
            ("pyc", plan.reps, pyc),
            ("apply-mp", plan.reps, lambda: numbers(drive(
                "apply", "multiprocessing", na))),
        ]
        def celery_map():
            try:
                return nc / float(output(driver + ["map", "celery", str(nc)],
                                         env=celery[2]))
            except subprocess.CalledProcessError:
                with open(os.path.join(self.work, "celery",
                                       "worker.log")) as f:
                    log("the Celery worker's log ends:\n" + f.read()[-3000:])
                raise

        if celery is not None:
            contenders.append(("celery-map", plan.slow_reps, celery_map))
        if no_pool is None:
            contenders += [
                ("mprocd-map", plan.reps, lambda: n / float(drive(
                    "map", "mprocd", n))),
                ("apply-mprocd", plan.reps, lambda: numbers(drive(
                    "apply", "mprocd", na))),
            ]
        if no_echo is None:
            contenders.append(("echo", plan.reps, lambda: n / float(output(
                [self.client, sock, "pipeline", str(n), "echo"]))))
        return rounds(contenders, plan.budget["calls"], "Calls",
                      self.notes), n_lim

    def start_celery(self, py, env):
        """A Redis on a UNIX socket in a private directory, and a Celery
        prefork worker of 2 processes on it: (redis, worker, env)."""
        d = os.path.join(self.work, "celery")
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "redis.sock")
        redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", sock,
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", d, "--logfile", os.path.join(d, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True)
        wait_for("redis-server on " + sock, lambda: redis_ping(sock))
        env = dict(env, BENCH_REDIS="redis+socket://" + sock)
        with open(os.path.join(d, "worker.log"), "w") as f:
            worker = subprocess.Popen(
                [py, "-m", "celery", "-A", "benchcelery", "worker", "-c", "2",
                 "-P", "prefork", "--loglevel=WARNING", "--without-gossip",
                 "--without-mingle", "--without-heartbeat", "-n", "bench@%h"],
                cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=f,
                stderr=subprocess.STDOUT, start_new_session=True)
        return redis, worker, env

    @staticmethod
    def stop_celery(redis, worker, _env):
        for p in (worker, redis):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            try:
                os.killpg(p.pid, signal.SIGKILL)   # its leftovers
            except ProcessLookupError:
                pass

    # --- 7. The state database -------------------------------------------------

    def store(self):
        plan, n = self.plan, self.plan.store_jobs
        q = "{:,}".format(n)
        log("store: %s Submits a round with the state database and without;"
            " restart, memory and Get with %s jobs" % (q, q))
        self.store_live = []     # what launch() started, to kill on error
        self.store_round = 0     # daemons filled, for their directories
        self.store_crashes = 0   # rounds of "crash", for the Gets' order
        try:
            res = rounds([
                ("none", plan.reps, lambda: self.store_none(n)),
                ("crash", plan.reps, lambda: self.store_crash(n)),
                ("power", plan.reps,
                 lambda: self.store_fill("power", n)[-1]),
            ], plan.budget["store"], "State database", self.notes)
        except BaseException:
            for p in self.store_live:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            raise
        lat = self.store_latency()

        sec = "State database (`state = PATH`, `durability = crash`, " \
            "beside `state = none`)"
        none = "`state = none`"

        def stat(key, what, unit, higher, scale=1.0):
            return Stat([r[what] * scale for r in res[key]], unit, higher)
        ours, ref = stat("crash", "intake", "jobs/s", True), \
            stat("none", "intake", "jobs/s", True)
        self.row(sec, "Submit intake, one pipelined connection (%s jobs)"
                 % q, ours, none, ref, "≥ 0.60×, ≥ 60,000/s",
                 ours.median >= 0.6 * ref.median and
                 (ref.median < 100000 or ours.median >= 60000))
        self.row(sec, "Submit intake, `durability = power`",
                 stat("power", "intake", "jobs/s", True), none, ref, "", None)
        for metric, key, unit, target in (
                ("open connection, p50", "open", "µs", 300),
                ("open connection, p99", "open", "µs", None),
                ("`mprocctl submit -w true`, p50", "ctl", "ms", 300)):
            p = 99 if "p99" in metric else 50
            o, r = pct(lat[key + "-crash"], p), pct(lat[key + "-none"], p)
            scale = 1e3 if unit == "ms" else 1.0
            self.row(sec, metric, Stat([o / scale], unit, False), none,
                     Stat([r / scale], unit, False),
                     "≤ +%d µs" % target if target else "",
                     o - r <= target if target else None)
            self.rows[-1]["note"] = "%+.0f µs" % (o - r)
        for metric, what, target in (
                ("restart with %s queued: exec → Status, all queued" % q,
                 "status", "≤ 1 s"),
                ("restart with %s queued: exec → READY=1" % q, "ready", "")):
            ours = stat("crash", "restart-" + what, "ms", False, 1e3)
            self.row(sec, metric, ours, "start on an empty database",
                     stat("crash", "empty-" + what, "ms", False, 1e3),
                     target, ours.median <= 1000 if target else None)
        self.row(sec, "supervisor RSS, %s finished jobs kept" % q,
                 stat("crash", "rss", "MiB", False), none,
                 stat("none", "rss", "MiB", False), "≤ 32 MiB",
                 statistics.median(r["rss"] for r in res["crash"]) <=
                 32 * MIB)
        old = [x for r in res["crash"] for x in r["get-old"]]
        new = [x for r in res["crash"] for x in r["get-new"]]
        for p in (50, 99):
            self.row(sec, "Get of a finished job no longer in memory, p%d"
                     % p, Stat([pct(old, p) / 1e3], "ms", False),
                     "one still in memory", Stat([pct(new, p) / 1e3], "ms",
                                                 False),
                     "≤ 1 ms" if p == 50 else "",
                     pct(old, p) <= 1000 if p == 50 else None)
        marks = {k: statistics.median(r["marks"][k] for r in res["crash"])
                 for k in self.STORE_MARKS
                 if all(k in r["marks"] for r in res["crash"])}
        self.notes.append(
            "State database: on %s (the run's temporary directory); after "
            "%s Submits the file was %.1f MiB and its WAL %.1f MiB (median). "
            "Restart, from exec, by mprocd's log (median): %s." % (
                self.store_fs, q,
                statistics.median(r["db"] for r in res["crash"]) / MIB,
                statistics.median(r["wal"] for r in res["crash"]) / MIB,
                ", ".join("%s %.0f ms" % (k, v * 1e3)
                          for k, v in marks.items())))

    STORE_MAIN = "keep_finished = 1000000\nshutdown_timeout = 0\n"
    STORE_MARKS = ("state database opened", "jobs back from the state "
                   "database", "ready")

    def store_fill(self, mode, n):
        """A fresh mprocd (and a fresh database file) of one worker, which
        a `sleep` holds (with retries, so that it runs again first after a
        restart), and n Submits on one pipelined connection: (the process,
        its configuration, its socket, the holder's id, the database's
        path, {"intake": jobs/s, "empty-status", "empty-ready": seconds
        from exec}). mode: none, crash or power."""
        self.store_round += 1
        name = "store-%s-%d" % (mode, self.store_round)
        db = os.path.join(self.work, name, "state.db")
        main = "state = none\n" if mode == "none" else \
            "state = %s\ndurability = %s\n" % (db, mode)
        conf, sock = self.write_conf(name, main + self.STORE_MAIN,
                                     workers=1, queue_limit=n + 100)
        p, _, t_status, t_ready = self.launch(conf, sock)
        c = Varlink(sock)
        holder = c.call("io.mprocd.Submit", argv=["sleep", "1000"],
                        retries=10)["id"]
        wait_for("the holder to run", lambda: c.call(
            "io.mprocd.Status")["pools"][0]["running"] == 1)
        c.close()
        rate = n / float(output([self.client, sock, "intake", str(n)]))
        fig = {"intake": rate, "empty-status": t_status,
               "empty-ready": t_ready}
        if mode == "power":
            self.stop(p)
            shutil.rmtree(os.path.dirname(conf))
        return p, conf, sock, holder, db, fig

    @staticmethod
    def check_intake(c, first, n):
        """Jobs first..first+n-1 are bench-client intake's, in order."""
        for i in (0, n - 1):
            argv = c.call("io.mprocd.Get", id=first + i)["job"]["argv"]
            if argv != ["/bin/true", str(i)]:
                raise RuntimeError("job %d is %r, not intake's job %d"
                                   % (first + i, argv, i))

    def store_none(self, n):
        """Memory only: intake, then RSS with the n jobs cancelled (and
        kept: they are finished jobs)."""
        p, conf, sock, _, _, fig = self.store_fill("none", n)
        c = Varlink(sock)
        self.cancel_queued(c)
        c.close()
        time.sleep(0.2)
        fig["rss"] = rss(p.pid)
        self.stop(p)
        shutil.rmtree(os.path.dirname(conf))
        return fig

    def store_crash(self, n):
        """durability = crash: intake; SIGKILL; a new mprocd on the file,
        timed until it answers Status with the n jobs queued, and until
        READY=1; its RSS once the n jobs are cancelled (and kept in the
        database); Gets of some of them, old (read from the file) and
        recent (still in memory), in turn."""
        p, conf, sock, holder, db, fig = self.store_fill("crash", n)
        p.kill()
        p.wait()
        fig["db"] = os.path.getsize(db)
        fig["wal"] = os.path.getsize(db + "-wal") \
            if os.path.exists(db + "-wal") else 0
        p, t0, fig["restart-status"], fig["restart-ready"] = self.launch(
            conf, sock, n)
        fig["marks"] = log_marks(os.path.join(os.path.dirname(conf), "log"),
                                 t0, self.STORE_MARKS)
        c = Varlink(sock)
        wait_for("the holder to run again", lambda: c.call(
            "io.mprocd.Status")["pools"][0]["running"] == 1)
        self.cancel_queued(c)
        c.close()
        time.sleep(0.2)
        fig["rss"] = rss(p.pid)
        # Cancelled oldest first: the last ids are the most recent
        # finished jobs, those memory keeps (1,000); the rest are read
        # from the file.
        first, last = holder + 1, holder + n
        gets = {"get-old": (first, last - 1500), "get-new": (last - 499,
                                                             last)}
        self.store_crashes += 1
        order = sorted(gets, reverse=self.store_crashes % 2 == 0)
        for key in order:
            fig[key] = numbers(output(
                [self.client, sock, "get", str(self.plan.store_gets)] +
                [str(x) for x in gets[key]]))
        c = Varlink(sock)
        self.check_intake(c, holder + 1, n)
        c.close()
        self.stop(p)
        shutil.rmtree(os.path.dirname(conf))
        return fig

    def launch(self, conf, sock, queued=0):
        """Starts mprocd on conf, NOTIFY_SOCKET set to a socket of ours:
        (the process, time.time() at its exec, seconds from then until it
        answered Status with at least queued jobs queued, and until it
        sent READY=1)."""
        path = os.path.join(os.path.dirname(conf), "notify")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            ns.bind(path)
            ns.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
            env = dict(os.environ, NOTIFY_SOCKET=path)
            t0 = time.time()
            p = subprocess.Popen([self.mprocd, "-c", conf],
                                 stdin=subprocess.DEVNULL, env=env)
            self.store_live.append(p)

            # Polled every 0.5 ms (wait_for's 10 ms would be most of it).
            while True:
                if p.poll() is not None:
                    raise RuntimeError("mprocd exited with status %d; see "
                                       "%s" % (p.returncode, os.path.join(
                                           os.path.dirname(conf), "log")))
                if time.time() - t0 > 60:
                    raise RuntimeError("timed out waiting for mprocd to "
                                       "answer Status with %d queued"
                                       % queued)
                try:
                    c = Varlink(sock)
                except OSError:     # not there yet, or its predecessor's
                    time.sleep(0.0005)
                    continue
                try:
                    pools = c.call("io.mprocd.Status")["pools"]
                finally:
                    c.close()
                t_status = time.time() - t0
                if sum(x["queued"] for x in pools) >= queued:
                    break
                time.sleep(0.0005)
            # The kernel's time of arrival: READY=1 may have come while
            # we waited for Status.
            ns.settimeout(60)
            while True:
                msg, anc, _, _ = ns.recvmsg(4096, 256)
                if b"READY=1" in msg.split(b"\n"):
                    break
            sec, usec = struct.unpack("qq", [d for lvl, t, d in anc
                                             if t == SO_TIMESTAMP][0][:16])
            return p, t0, t_status, sec + usec / 1e6 - t0
        finally:
            ns.close()
            os.unlink(path)

    def store_latency(self):
        """One job at a time, open connection and `mprocctl submit -w`, on
        two daemons side by side: memory only, and durability = crash.
        {"open-none"|"open-crash"|"ctl-none"|"ctl-crash": [µs]}."""
        plan = self.plan
        d = {}
        for mode in ("none", "crash"):
            main = "state = none" if mode == "none" else \
                "state = %s\ndurability = crash" % os.path.join(
                    self.work, "store-latency-crash", "state.db")
            d[mode] = self.start_mprocd("store-latency-" + mode, main,
                                        workers=2)
        chunk = max(1, plan.latency // plan.reps)
        pchunk = max(1, plan.process // plan.reps)

        def ctl(sock):
            return [timed([self.mprocctl, "-s", sock, "submit", "-w", "true"],
                          stdout=subprocess.DEVNULL) * 1e6
                    for _ in range(pchunk)]
        try:
            return rounds([("open-" + m, plan.reps, lambda s=d[m][1]: numbers(
                output([self.client, s, "latency", str(chunk)])))
                for m in d] + [("ctl-" + m, plan.reps,
                                lambda s=d[m][1]: ctl(s)) for m in d],
                plan.budget["store latency"], "State database, latency",
                self.notes)
        finally:
            for p, _ in d.values():
                self.stop(p)

    @property
    def store_fs(self):
        """The file system of the run's directory, as /proc/mounts says."""
        best, fs = "", "?"
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, typ = line.split()[:3]
                mnt = mnt.replace("\\040", " ")
                if (self.work + "/").startswith(mnt.rstrip("/") + "/") and \
                        len(mnt) >= len(best):
                    best, fs = mnt, "%s (%s)" % (typ, dev)
        return fs

    # --- 8. Follow: a job's output as it is produced ---------------------------

    def follow(self):
        plan = self.plan
        size, k = plan.follow_bytes, plan.followers
        mib = size // MIB
        # The lines are shared out among the rounds, as in "latency".
        n = max(1, plan.follow_lines // plan.reps)
        if not os.access(self.followb, os.X_OK):
            raise RuntimeError("%s is missing (make bench-programs builds "
                               "it)" % self.followb)
        log("follow: %d lines a round, each write() → read; a job writing "
            "%d MiB with %d followers and without" % (n, mib, k))
        env = dict(os.environ, BENCH_FOLLOW_TIMEOUT=str(plan.follow_secs))

        def bench_follow(*args):
            return numbers(output([self.followb] + [str(a) for a in args],
                                  env=env, timeout=plan.follow_secs + 30))

        # "flood": one worker, which bench-follow holds with a sleep until
        # the followers are there; a job longer than a few minutes is
        # stuck, and ends. max_output is the default (1M): what is past it
        # only followers that keep up get.
        p, sock = self.start_mprocd(
            "follow", "shutdown_timeout = 0", pools={
                "default": {"workers": 2},
                "flood": {"workers": 1, "job_timeout": plan.follow_secs}})
        got = []    # (bytes, pieces marked truncated) of each follower

        def flood(followers):
            r = bench_follow("flood", sock, "flood", followers, size)
            if len(r) != 1 + 2 * followers:
                raise RuntimeError("bench-follow flood: %d figures, not %d"
                                   % (len(r), 1 + 2 * followers))
            got.extend(zip(r[1::2], r[2::2]))
            return r[0] * 1e3
        try:
            res = rounds([
                ("lat-pipe", plan.reps, lambda: bench_follow("pipe", n)),
                ("lat-mprocd", plan.reps, lambda: bench_follow(
                    "run", sock, "default", n)),
                ("flood-0", plan.flood_reps, lambda: flood(0)),
                ("flood-k", plan.flood_reps, lambda: flood(k)),
                ("sink", plan.reps, lambda: bench_follow("sink", size)[0] *
                 1e3),
                ("fanout", plan.reps, lambda: bench_follow(
                    "fanout", size, k)[0] * 1e3),
            ], plan.budget["follow"], "Follow", self.notes)
        finally:
            try:
                self.stop(p)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

        sec = "Follow (a job's output as it is produced)"
        ref = "a plain pipe, the same reader (C)"
        for q in (50, 99):
            o, r = pct(res["lat-mprocd"], q), pct(res["lat-pipe"], q)
            self.row(sec, "`write()` → follower's read, p%d (Run with "
                     "\"more\", %s lines)" % (q, "{:,}".format(
                         len(res["lat-mprocd"]))),
                     Stat([o], "µs", False), ref, Stat([r], "µs", False),
                     "≤ +0.5 ms" if q == 50 else "",
                     o - r <= 500 if q == 50 else None)
            self.rows[-1]["note"] = "%+.0f µs" % (o - r)
        ours = Stat(res["flood-k"], "ms", False)
        alone = Stat(res["flood-0"], "ms", False)
        self.row(sec, "a job writing %d MiB, %d followers: its run time" % (
            mib, k), ours, "no follower", alone, "≤ 1.10×",
            ours.median <= 1.1 * alone.median)
        pipe = Stat(res["sink"], "ms", False)
        self.row(sec, "the same job, no follower", alone, "into a plain "
                 "pipe, one reader (C)", pipe, "", None)
        # What the host allows: no mprocd, no base64, every byte to each.
        self.row(sec, "the same job, %d readers of a plain fan-out (C)" % k,
                 Stat(res["fanout"], "ms", False), "into a plain pipe, one "
                 "reader (C)", pipe, "", None)
        short = [(b, t) for b, t in got if b != size]
        self.notes.append(
            "Follow: `bench-follow`'s job writes a line every 0.2–1 ms with "
            "its CLOCK_MONOTONIC time taken just before write(); the reader "
            "timestamps the read() (pipe) or recv() (mprocd) that brings "
            "it. The %d MiB job writes 64 KiB at a time; its run time is "
            "finished_usec − started_usec, the pool's one worker held "
            "until its followers (each a process and a connection, "
            "counting every piece's bytes) had sent Follow; the plain "
            "fan-out writes each read() of the job's pipe to %d sockets, "
            "each read by a process, all of it. Of the %d "
            "followers of all rounds, %d got all %d MiB%s." % (
                mib, k, len(got), len(got) - len(short), mib,
                "; the others %.1f–%.1f MiB, with %d pieces marked "
                "truncated (output past max_output = 1M is lost to a "
                "follower that is behind when it comes)" % (
                    min(b for b, _ in short) / MIB,
                    max(b for b, _ in short) / MIB,
                    sum(t for _, t in short)) if short else ""))

    # --- 9. Dependencies and locks ---------------------------------------------

    HOLD = 'read x < "$0"'      # a job held until release() writes a line

    def deps(self):
        plan = self.plan
        n, q = plan.deps_chain, plan.deps_queued
        if not os.access(self.depsb, os.X_OK):
            raise RuntimeError("%s is missing (make bench-programs builds "
                               "it)" % self.depsb)
        log("deps: %d × /bin/true in one after chain beside %d independent, "
            "1 worker; %d queued, the first %d waiting on a lock, 2 workers "
            "busy, one freed" % (n, n, q, q // 2))
        load0 = os.getloadavg()
        res = self.deps_chains(n)
        lock = self.deps_locks(q)
        load1 = os.getloadavg()

        sec = "Dependencies and locks (`after`, `lock`)"
        nn = "{:,}".format(n)
        chain = Stat([r["rate"] for r in res["chain"]], "jobs/s", True)
        plain = Stat([r["rate"] for r in res["plain"]], "jobs/s", True)
        self.row(sec, "%s `/bin/true` in one `after` chain, 1 worker" % nn,
                 chain, "%s independent, the same pool" % nn, plain,
                 "≥ 0.80×", chain.median >= 0.8 * plain.median)
        self.row(sec, "their %s Submits, pipelined (each `after` the one "
                 "before)" % nn, Stat([r["submit"] * 1e3 for r in
                                       res["chain"]], "ms", False),
                 "independent", Stat([r["submit"] * 1e3 for r in
                                      res["plain"]], "ms", False), "", None)
        ours = [g for r in lock["lock"] for g in r["gaps"]]
        ref = [g for r in lock["nolock"] for g in r["gaps"]]
        late = [x for k in lock for r in lock[k] for x in r["late"]]
        half = "{:,}".format(q // 2)
        for p, name in ((50, "p50"), (100, "max")):
            o, t = pct(ours, p), pct(ref, p)
            self.row(sec, "a worker freed, %s queued, the first %s waiting "
                     "on a lock: its job released → the next job started, "
                     "%s" % ("{:,}".format(q), half, name),
                     Stat([o], "µs", False), "%s queued, none waiting" % half,
                     Stat([t], "µs", False), "≤ 1 ms" if p == 50 else "",
                     o <= 1000 if p == 50 else None)
            self.rows[-1]["note"] = "%+.0f µs" % (o - t)
        self.row(sec, "the %s Submits (%s with `lock`, then %s without), "
                 "pipelined" % ("{:,}".format(q), half, half),
                 Stat([r["submit"] * 1e3 for r in lock["lock"]], "ms", False),
                 "", None, "", None)
        other = sum(r["other"] for k in lock for r in lock[k])
        self.notes.append(
            "Dependencies and locks: a chain's rate is its %s jobs over the "
            "time from the first job's started_usec to the last one's "
            "finished_usec, all of them submitted first while a job held "
            "the pool's one worker (so Submits are not timed in it). The "
            "lock rounds: a fresh daemon of 2 workers, one running a job "
            "that holds the lock until a file exists, the other a job that "
            "reads a FIFO; then %s Submits with the same lock and %s "
            "without (that FIFO job; `bench-deps`, one pipelined connection "
            "each), or only the %s without; then the held job and %d after "
            "it released one at a time by a line into the FIFO: each figure "
            "is from the wall-clock time just before that write() to the "
            "next job's started_usec (the same clock), so it holds the "
            "released job's read, exit and reaping and the worker's report "
            "as well as mprocd's dispatch; %d figures over %d rounds with "
            "the lock, %d without%s. mprocd sends a worker its next job "
            "before it ends the last one, so the finished job's "
            "finished_usec comes after the next one's started_usec "
            "(median %+.0f µs, max %+.0f µs): finished → started cannot be "
            "timed from the jobs' own times. Load average (1 min) %.2f at "
            "the start, %.2f at the end." % (
                nn, half, half, half, plan.deps_releases - 1, len(ours),
                len(lock["lock"]), len(ref),
                "; %d of the next jobs started on another worker" % other
                if other else "", statistics.median(late), max(late),
                load0[0], load1[0]))

    def deps_chains(self, n):
        """Rounds of n × /bin/true on a 1-worker pool, in one after chain
        and independent, each queued whole behind a held job first:
        {"chain"|"plain": [{"rate": jobs/s, "submit": seconds}]}."""
        plan = self.plan
        p, sock = self.start_mprocd(
            "deps-chain", "shutdown_timeout = 0\nkeep_finished = %d" % (
                2 * n + 1000), workers=1, queue_limit=n + 100)
        fifo = os.path.join(self.work, "deps-chain", "hold")
        c = None
        try:
            os.mkfifo(fifo)
            c = self.deps_connect(sock)
            return rounds([
                ("chain", plan.deps_reps, lambda: self.deps_chain(
                    c, sock, fifo, n, True)),
                ("plain", plan.deps_reps, lambda: self.deps_chain(
                    c, sock, fifo, n, False)),
            ], plan.budget["deps"], "Dependencies", self.notes)
        finally:
            if c is not None:
                c.close()
            self.deps_stop(p, fifo)

    def deps_chain(self, c, sock, fifo, n, chain):
        held = c.call("io.mprocd.Submit", argv=["sh", "-c", self.HOLD,
                                                fifo])["id"]
        self.deps_until(c, held, "running")
        done = c.call("io.mprocd.Status")["pools"][0]["succeeded"]
        secs, first, last = self.deps_submit(
            sock, n, ["-a"] if chain else [], ["/bin/true"])
        if last != first + n - 1:
            raise RuntimeError("bench-deps: ids %d to %d for %d jobs"
                               % (first, last, n))
        self.release(fifo)
        c.call("io.mprocd.Wait", ids=[held, last], timeout_sec=300)
        st = c.call("io.mprocd.Status")["pools"][0]
        if st["succeeded"] - done != n + 1:
            raise RuntimeError("%d of %d jobs succeeded (%s)" % (
                st["succeeded"] - done - 1, n, st))
        a = c.call("io.mprocd.Get", id=first)["job"]
        z = c.call("io.mprocd.Get", id=last)["job"]
        if chain and z.get("after") != [last - 1]:
            raise RuntimeError("job %d: after %r, not [%d]"
                               % (last, z.get("after"), last - 1))
        return {"rate": n / ((z["finished_usec"] - a["started_usec"]) / 1e6),
                "submit": secs}

    def deps_locks(self, q):
        """Rounds of the lock test, each on a fresh daemon: q queued, the
        first half waiting on a lock ("lock"), or only the second half
        ("nolock"): {key: [{"gaps": [µs], "submit": seconds, "other":
        next jobs started on another worker}]}."""
        plan = self.plan
        self.deps_round = 0
        return rounds([
            ("lock", plan.deps_reps, lambda: self.deps_lock(q, True)),
            ("nolock", plan.deps_reps, lambda: self.deps_lock(q, False)),
        ], plan.budget["deps lock"], "Dependencies, locks", self.notes)

    def deps_lock(self, q, locked):
        self.deps_round += 1
        name = "deps-lock-%d" % self.deps_round
        d = os.path.join(self.work, name)
        gate, fifo = os.path.join(d, "gate"), os.path.join(d, "hold")
        p, sock = self.start_mprocd(name, "shutdown_timeout = 0",
                                    workers=2, queue_limit=q + 100)
        hold = ["sh", "-c", self.HOLD, fifo]
        c = None
        try:
            os.mkfifo(fifo)
            c = self.deps_connect(sock)
            g = c.call("io.mprocd.Submit", lock="bench", argv=[
                "sh", "-c", 'until [ -e "$0" ]; do sleep 0.1; done',
                gate])["id"]
            cur = c.call("io.mprocd.Submit", argv=hold)["id"]
            self.deps_until(c, g, "running")
            self.deps_until(c, cur, "running")
            secs = 0.0
            if locked:
                s, first, _ = self.deps_submit(sock, q // 2,
                                               ["-l", "bench"], ["/bin/true"])
                secs += s
            s, nxt, _ = self.deps_submit(sock, q // 2, [], hold)
            secs += s
            st = c.call("io.mprocd.Status")["pools"][0]
            want = (q if locked else q // 2, q // 2 if locked else 0)
            if (st["queued"], st["waiting_lock"]) != want:
                raise RuntimeError("%d queued, %d waiting on the lock: not "
                                   "%d, %d" % ((st["queued"],
                                                st["waiting_lock"]) + want))
            gaps, late, other = [], [], 0
            for _ in range(self.plan.deps_releases):
                t = self.release(fifo)
                # Wait, not Get: nothing of ours polls meanwhile.
                done = c.call("io.mprocd.Wait", ids=[cur],
                              timeout_sec=60)["jobs"][0]
                job = self.deps_until(c, nxt, "running")
                gaps.append(job["started_usec"] - t * 1e6)
                late.append(done["finished_usec"] - job["started_usec"])
                other += job["worker"] != done["worker"]
                cur, nxt = nxt, nxt + 1
            # The lock's jobs were passed, not run.
            ends = [c.call("io.mprocd.Get", id=i)["job"]["state"] for i in
                    ([g, first] if locked else [g])]
            if ends != ["running", "queued"][:len(ends)]:
                raise RuntimeError("the gate job is %s, the first of the "
                                   "lock's line %s" % tuple(ends + ["-"])[:2])
            return {"gaps": gaps, "late": late, "submit": secs,
                    "other": other}
        finally:
            if c is not None:
                c.close()
            try:
                self.deps_stop(p, fifo)
            finally:
                with open(gate, "w"):    # should the gate have outlived it
                    pass

    @staticmethod
    def deps_connect(sock):
        c = Varlink(sock)
        c.s.settimeout(330)
        return c

    def deps_submit(self, sock, n, opts, argv):
        """bench-deps: (seconds, first id, last id)."""
        secs, first, last = numbers(output(
            [self.depsb, sock, str(n)] + opts + argv, timeout=300))
        return secs, int(first), int(last)

    @staticmethod
    def deps_until(c, jid, state, timeout=60):
        """Job jid once it is running, polled every 0.5 ms."""
        deadline = time.monotonic() + timeout
        while True:
            job = c.call("io.mprocd.Get", id=jid)["job"]
            if job["state"] == state:
                return job
            if job["state"] != "queued":
                raise RuntimeError("job %d is %s (%s), not %s" % (
                    jid, job["state"], job.get("reason"), state))
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for job %d to be %s "
                                   "(it is %s: %s)" % (jid, state,
                                                       job["state"],
                                                       job.get("reason")))
            time.sleep(0.0005)

    @staticmethod
    def release(fifo, timeout=60):
        """Lets the job that reads fifo go: a line, once it has opened it.
        Returns time.time() just before the write()."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
            if time.monotonic() > deadline:
                raise RuntimeError("no job opened %s" % fifo)
            time.sleep(0.0005)
        try:
            t = time.time()
            os.write(fd, b"go\n")
        finally:
            os.close(fd)
        return t

    def deps_stop(self, p, fifo):
        """Stops mprocd (its running jobs are killed: shutdown_timeout is
        0); if it will not go, kills it and lets go whatever still reads
        fifo, so that nothing is left behind."""
        try:
            self.stop(p)
            return
        except subprocess.TimeoutExpired:
            log("  mprocd (pid %d) did not stop within 60 s: killed" % p.pid)
            p.kill()
            p.wait()
        for _ in range(100):
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                break
            os.write(fd, b"go\n")
            os.close(fd)
            time.sleep(0.01)


def redis_ping(path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


RECORD = re.compile(rb"^\S+ info worker=bench/(\d+) msg=record proc=(\d+) "
                    rb"seq=(\d+) pad=abcdefghijklmnopqrstuvwxyz0123456789$")


def check_records(path, how, procs, n):
    """Every record there, whole, exactly once, in each writer's order."""
    nxt = [0] * procs
    with open(path, "rb") as f:
        for line in f:
            m = RECORD.match(line.rstrip(b"\n"))
            if not line.endswith(b"\n") or m is None or m[1] != m[2]:
                raise RuntimeError("%s: torn or mixed record: %r"
                                   % (how, line[:200]))
            proc, seq = int(m[2]), int(m[3])
            if seq != nxt[proc]:
                raise RuntimeError("%s: proc %d: record %d where %d was due"
                                   % (how, proc, seq, nxt[proc]))
            nxt[proc] += 1
    if nxt != [n] * procs:
        raise RuntimeError("%s: records per process %s, not %d"
                           % (how, nxt, n))


# SO_TIMESTAMP (Linux's value; Python's socket module lacks the name).
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)


def log_marks(path, t0, msgs):
    """Seconds from t0 (time.time()) to the first line of mprocd's log at
    or after t0 with each of msgs as its msg=."""
    out = {}
    with open(path) as f:
        for line in f:
            stamp, _, rest = line.partition(" ")
            m = re.search(r'msg=(?:"([^"]*)"|(\S+))', rest)
            if m is None:
                continue
            msg = m[1] or m[2]
            if msg not in msgs or msg in out:
                continue
            t = datetime.datetime.strptime(
                stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            if t >= t0:
                out[msg] = t - t0
    return {m: out[m] for m in msgs if m in out}

# --- Output --------------------------------------------------------------------

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    try:
        with open("/etc/debian_version") as f:
            debian = "Debian " + f.read().strip()
    except OSError:
        debian = platform.platform()
    return {"cpu": cpu, "cpus": os.cpu_count(), "mem_mib": mem,
            "kernel": platform.release(), "os": debian,
            "load": "%.2f %.2f %.2f" % os.getloadavg()}


def cpu_ticks():
    """All CPU time so far, and the part the hypervisor gave to others."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[7]     # user nice system idle iowait irq softirq steal


def steal_text(steal):
    return ", ".join("%s %.0f%%" % (k, v) for k, v in steal.items())


def table(rows):
    out = ["| metric | mprocd | reference | ratio | target | |",
           "| --- | ---: | --- | ---: | --- | --- |"]
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            out.append("| **%s** | | | | | |" % section)
        ref = "%s: %s" % (r["reference"], r["ref"]) if r["ref"] else \
            r["reference"]
        met = "" if r["met"] is None else "met" if r["met"] else "**missed**"
        ratio = r["ratio"] + (" (%s)" % r["note"] if r.get("note") else "")
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            r["metric"], r["mprocd"], ref, ratio, r["target"], met))
    return "\n".join(out)


def chart(entries, title, png, work):
    """A bar chart of entries: (label, Stat); a label's "\\n" breaks it."""
    data = os.path.join(work, "throughput.dat")
    with open(data, "w") as f:
        for i, (label, st) in enumerate(entries):
            f.write('%d "%s" %.1f %.1f %.1f\n' % (
                i, label, st.median, min(st.values), max(st.values)))
    script = """
set terminal pngcairo noenhanced size 1000,480 font "sans,10"
set output "%s"
set title "%s"
set ylabel "jobs/s"
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [0:*]
set grid ytics
set xtics nomirror
set bmargin 4
unset key
plot "%s" using 1:3:xtic(2) with boxes lc rgb "#4a7ebb", \\
     "" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0
""" % (png, title, data)
    run(["gnuplot"], input=script, text=True)


def notes_text(notes, info):
    """The lines under the table: which way of starting a process won,
    and how long each section took."""
    return "\n".join(["* " + n for n in notes] + [
        "* Time per section: %s." % ", ".join(
            "%s %.0f s" % kv for kv in info["elapsed"].items())])


def write_doc(path, rows, notes, info, png_name, plan, elapsed):
    begin, end = "<!-- bench/run: begin -->", "<!-- bench/run: end -->"
    gen = "\n".join([
        begin,
        "Last full run: %s, `bench/run` in %.0f s." % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), elapsed),
        "Machine: %s, %d CPUs, %s MiB, %s, kernel %s; load average at "
        "start %s." % (info["cpu"], info["cpus"], "{:,}".format(
            info["mem_mib"]), info["os"], info["kernel"], info["load"]),
        "CPU time the host gave to others meanwhile (steal, /proc/stat): "
        "%s; beyond a few per cent, ratios move too." % steal_text(
            info["steal"]),
        "Each figure is the median of %d runs (slow peers: %d) with "
        "min–max, or a percentile over all samples; rates are per second, "
        "so rounds of a slow peer may be shorter." % (
            plan.reps, plan.slow_reps),
        "",
        table(rows),
        "",
        notes_text(notes, info),
        "",
        "![Throughput beside the peers](%s)" % png_name,
        end])
    try:
        with open(path) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Performance\n\n%s\n%s\n" % (begin, end)
    if begin not in doc or end not in doc:
        raise RuntimeError("%s has no %s ... %s markers" % (path, begin, end))
    head, rest = doc.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + gen + tail)


SECTIONS = "throughput,latency,restart,logger,footprint,calls,store,follow," \
    "deps"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--only", default=SECTIONS,
                    help="some of " + SECTIONS + " (default: all)")
    ap.add_argument("--doc", help="update this Markdown file's table "
                    "(a run of every section only)")
    ap.add_argument("--out", help="keep results.json and the chart here")
    args = ap.parse_args()
    plan = Plan(args.quick, args.reps)
    sections = args.only.split(",")
    for section in sections:
        if section not in SECTIONS.split(","):
            sys.exit("bench.py: no section %r (%s)" % (section, SECTIONS))
    for tool in ("tsp", "parallel", "supervisord", "gnuplot", "xargs"):
        if shutil.which(tool) is None:
            sys.exit("bench.py: %s is missing (bench/run installs it)" % tool)
    # --quick skips Celery where it is not installed (CI need not install
    # it); a measuring run must have it, as it has the other peers.
    if "calls" in sections and not plan.quick and \
            celery_missing(python3()) is not None:
        sys.exit("bench.py: %s (bench/run installs it)" %
                 celery_missing(python3()))
    if args.doc and sorted(sections) != sorted(SECTIONS.split(",")):
        log("bench.py: not every section runs: %s is left as it is"
            % args.doc)
        args.doc = None
    info = machine()
    log("machine: %(cpu)s, %(cpus)d CPUs, load %(load)s" % info)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mprocd-bench.") as work:
        b = Bench(os.path.abspath(args.build), plan, work)
        info["steal"] = {}
        info["elapsed"] = {}
        for section in sections:
            total, stolen = cpu_ticks()
            ts = time.monotonic()
            getattr(b, section)()
            info["elapsed"][section] = time.monotonic() - ts
            t, st = cpu_ticks()
            info["steal"][section] = 100.0 * (st - stolen) / max(t - total, 1)
            log("  %s: %.0f s, %.1f%% of CPU time stolen by the host" % (
                section, info["elapsed"][section], info["steal"][section]))
        elapsed = time.monotonic() - t0
        out = args.out or work
        os.makedirs(out, exist_ok=True)
        png = os.path.join(out, "throughput.png")
        if b.chart:
            chart(b.chart, b.chart_title, png, work)
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump({"machine": info, "quick": plan.quick, "rows": b.rows,
                       "notes": b.notes, "limits": b.limits,
                       "elapsed": elapsed}, f, indent=1, ensure_ascii=False)
        print(table(b.rows))
        print()
        print(notes_text(b.notes, info))
        if args.doc and b.chart:
            shutil.copy(png, os.path.join(os.path.dirname(args.doc),
                                          "throughput.png"))
        if args.doc:
            write_doc(args.doc, b.rows, b.notes, info, "throughput.png", plan,
                      elapsed)
    missed = [r["metric"] for r in b.rows if r["met"] is False]
    print("%d rows, %d targets met, %d missed%s; %.0f s" % (
        len(b.rows), sum(r["met"] is True for r in b.rows), len(missed),
        ": " + "; ".join(missed) if missed else "", elapsed))


if __name__ == "__main__":
    main()
