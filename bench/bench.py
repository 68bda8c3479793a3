#!/usr/bin/env python3
"""mprocd beside the physical limit and its peers, in one run.

bench/run builds everything and calls this; see bench/README.md. Every
figure is measured REPS times, interleaved with its references so that the
machine's noise falls on all of them alike, and printed as the median with
min-max. On a busy 2-core machine only the ratios mean much.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

MIB = 1024 * 1024


# --- Settings ------------------------------------------------------------------

class Plan:
    """How much of everything: the full run, or --quick for CI."""

    def __init__(self, quick, reps):
        self.quick = quick
        self.jobs = 300 if quick else 10000          # throughput
        self.reps = reps or (2 if quick else 5)
        self.slow_reps = reps or (2 if quick else 3)  # parallel, tsp
        self.latency = 200 if quick else 3000         # open connection
        self.process = 20 if quick else 200           # whole processes
        self.restarts = 20 if quick else 200
        self.sv_restarts = 10 if quick else 50
        self.log_records = 2000 if quick else 50000   # per process
        self.log_procs = 8
        self.queued = 2000 if quick else 100000
        self.queued_reps = 1 if quick else 3
        self.status_calls = 5 if quick else 20
        self.list_calls = 2 if quick else 3


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
        self.rows = []
        self.chart = []

    # Daemons are started per section, with the shipped defaults except
    # what the section is about.
    def start_mprocd(self, name, main="", **pool):
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "sock")
        conf = os.path.join(d, "mprocd.conf")
        with open(conf, "w") as f:
            f.write("[mprocd]\nsocket = %s\nlog_target = file:%s\n%s\n"
                    "[pool default]\n" % (sock, os.path.join(d, "log"), main))
            for k, v in pool.items():
                f.write("%s = %s\n" % (k, v))
        p = subprocess.Popen([self.mprocd, "-c", conf],
                             stdin=subprocess.DEVNULL)
        wait_for("mprocd to listen on " + sock, lambda: os.path.exists(sock)
                 and self._ready(sock, int(pool.get("workers", 4))))
        return p, sock

    @staticmethod
    def _ready(sock, n):
        try:
            c = Varlink(sock)
        except OSError:
            return False
        try:
            ws = c.call("io.mprocd.Status")["pools"][0]["workers"]
            return sum(w["state"] == "idle" for w in ws) == n
        finally:
            c.close()

    @staticmethod
    def stop(p):
        p.send_signal(signal.SIGTERM)
        p.wait(60)

    def row(self, section, metric, ours, ref_name, ref, target, ok,
            ratio=None):
        if ratio is None and ref is not None and ref.median:
            ratio = ours.median / ref.median
        self.rows.append({
            "section": section, "metric": metric,
            "mprocd": ours.fmt(), "reference": ref_name,
            "ref": ref.fmt() if ref is not None else "",
            "ratio": "%.2f×" % ratio if ratio is not None else "",
            "target": target, "met": ok,
            "values": ours.values,
            "ref_values": ref.values if ref is not None else None})
        log("  %s: %s | %s %s | %s" % (metric, ours.fmt(), ref_name,
                                       ref.fmt() if ref else "",
                                       self.rows[-1]["ratio"]))

    # --- 1. Throughput ---------------------------------------------------------

    def throughput(self):
        n, plan = self.plan.jobs, self.plan
        # Every contender runs "/bin/true I", as map, xargs and parallel
        # must: with one argument GNU true calls setlocale(), 30% dearer.
        log("throughput: %d × /bin/true I, 2 at a time" % n)
        lines = os.path.join(self.work, "lines")
        with open(lines, "w") as f:
            f.write("".join("%d\n" % i for i in range(n)))
        p, sock = self.start_mprocd("throughput", "keep_finished = %d" % (
            n + 100), workers=2)
        tsdir = os.path.join(self.work, "tsp")
        os.makedirs(tsdir, exist_ok=True)
        loop = ('i=0; while [ $i -lt %d ]; do tsp /bin/true $i >/dev/null; '
                'i=$((i+1)); done; tsp -w' % n)

        def tsp():
            env = dict(os.environ, TS_SOCKET=os.path.join(tsdir, "sock"),
                       TMPDIR=tsdir, TS_MAXFINISHED=str(n + 100))
            run(["tsp", "-S", "2"], env=env, stdout=subprocess.DEVNULL)
            try:
                return timed(["sh", "-c", loop], env=env,
                             stdout=subprocess.DEVNULL)
            finally:
                run(["tsp", "-K"], env=env)
                for f in os.listdir(tsdir):
                    os.unlink(os.path.join(tsdir, f))

        def stdin_lines(argv):
            with open(lines) as f:
                return timed(argv, stdin=f, stdout=subprocess.DEVNULL)

        contenders = [
            ("limit", "fork/exec limit (C, 2 at a time)", plan.reps,
             lambda: float(output([self.fork, "limit", str(n), "2"]))),
            ("pipelined", "mprocd, pipelined client", plan.reps,
             lambda: float(output([self.client, sock, "pipeline", str(n)]))),
            ("map", "mprocd, mprocctl map", plan.reps,
             lambda: stdin_lines([self.mprocctl, "-s", sock, "map",
                                  "/bin/true"])),
            ("xargs", "xargs -P2", plan.reps,
             lambda: stdin_lines(["xargs", "-P2", "-n1", "/bin/true"])),
            ("parallel", "GNU parallel -j2", plan.slow_reps,
             lambda: stdin_lines(["parallel", "--will-cite", "-j2",
                                  "/bin/true"])),
            ("tsp", "task-spooler, 2 slots", plan.slow_reps, tsp),
        ]
        secs = {k: [] for k, _, _, _ in contenders}
        for rep in range(max(c[2] for c in contenders)):
            for key, _, reps, fn in contenders:
                if rep < reps:
                    secs[key].append(fn())
        self.stop(p)
        rate = {k: Stat([n / s for s in v], "jobs/s", True)
                for k, v in secs.items()}
        for key, name, _, _ in contenders:
            self.chart.append((name, rate[key]))
        lim = rate["limit"]
        sec = "Throughput (jobs/s, %s × `/bin/true I`, 2 at a time)" % \
            "{:,}".format(n)
        for key, name in (("pipelined", "mprocd, pipelined client"),
                          ("map", "mprocd, `mprocctl map`")):
            r = rate[key].median / lim.median
            self.row(sec, name, rate[key], "fork/exec limit", lim,
                     "≥ 0.90× limit", r >= 0.9)
        for key, name, want in (("xargs", "`xargs -P2`", 1.0),
                                ("parallel", "GNU `parallel -j2`", 1.0),
                                ("tsp", "task-spooler, 2 slots", 4.0)):
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
        ours, raw = [], []
        chunk = max(1, plan.latency // plan.reps)
        for _ in range(plan.reps):
            ours += numbers(output([self.client, sock, "latency",
                                    str(chunk)]))
            raw += numbers(output([self.fork, "wait", str(chunk)]))
        sec = "Latency (one /bin/true, submitted → finished → output)"
        o50, r50 = pct(ours, 50), pct(raw, 50)
        self.row(sec, "open connection, p50", Stat([o50], "µs", False),
                 "fork+exec+wait (C)", Stat([r50], "µs", False),
                 "≤ +150 µs", o50 - r50 <= 150)
        o99, r99 = pct(ours, 99), pct(raw, 99)
        self.row(sec, "open connection, p99", Stat([o99], "µs", False),
                 "fork+exec+wait (C)", Stat([r99], "µs", False), "", None)
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
        # The last batch runs to the end.
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
    def cancel_queued(c):
        """Cancels every queued job, pipelined a thousand at a time (all at
        once, unread replies would stop mprocd reading us: a deadlock)."""
        ids = [j["id"] for j in c.call("io.mprocd.List", state="queued")[
            "jobs"]]
        for k in range(0, len(ids), 1000):
            c.pipeline("io.mprocd.Cancel", [{"id": i} for i in ids[k:k + 1000]])


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


def chart(entries, png, work):
    data = os.path.join(work, "throughput.dat")
    with open(data, "w") as f:
        for i, (name, st) in enumerate(entries):
            f.write('%d "%s" %.1f %.1f %.1f\n' % (
                i, name.replace("mprocd, ", "mprocd\\n").replace(
                    " (C, 2 at a time)", "\\n(C)"), st.median,
                min(st.values), max(st.values)))
    script = """
set terminal pngcairo size 900,480 font "sans,10"
set output "%s"
set title "10,000 × /bin/true I, 2 at a time (median, min–max)"
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
""" % (png, data)
    run(["gnuplot"], input=script, text=True)


def write_doc(path, rows, info, png_name, plan, elapsed):
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
        "min–max, or a percentile over all samples." % (
            plan.reps, plan.slow_reps),
        "",
        table(rows),
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--only", default="throughput,latency,restart,logger,"
                    "footprint")
    ap.add_argument("--doc", help="update this Markdown file's table")
    ap.add_argument("--out", help="keep results.json and the chart here")
    args = ap.parse_args()
    plan = Plan(args.quick, args.reps)
    for tool in ("tsp", "parallel", "supervisord", "gnuplot", "xargs"):
        if shutil.which(tool) is None:
            sys.exit("bench.py: %s is missing (bench/run installs it)" % tool)
    info = machine()
    log("machine: %(cpu)s, %(cpus)d CPUs, load %(load)s" % info)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mprocd-bench.") as work:
        b = Bench(os.path.abspath(args.build), plan, work)
        info["steal"] = {}
        for section in args.only.split(","):
            total, stolen = cpu_ticks()
            getattr(b, section)()
            t, st = cpu_ticks()
            info["steal"][section] = 100.0 * (st - stolen) / max(t - total, 1)
            log("  %s: %.1f%% of CPU time stolen by the host" % (
                section, info["steal"][section]))
        elapsed = time.monotonic() - t0
        out = args.out or work
        os.makedirs(out, exist_ok=True)
        png = os.path.join(out, "throughput.png")
        if b.chart:
            chart(b.chart, png, work)
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump({"machine": info, "quick": plan.quick, "rows": b.rows},
                      f, indent=1, ensure_ascii=False)
        print(table(b.rows))
        if args.doc and b.chart:
            shutil.copy(png, os.path.join(os.path.dirname(args.doc),
                                          "throughput.png"))
        if args.doc:
            write_doc(args.doc, b.rows, info, "throughput.png", plan,
                      elapsed)
    missed = [r["metric"] for r in b.rows if r["met"] is False]
    print("%d rows, %d targets met, %d missed%s" % (
        len(b.rows), sum(r["met"] is True for r in b.rows), len(missed),
        ": " + "; ".join(missed) if missed else ""))


if __name__ == "__main__":
    main()
