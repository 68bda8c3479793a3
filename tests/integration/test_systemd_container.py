"""mprocd as a real system service: a throw-away systemd booted in an nspawn
container over a copy-on-write overlay of this machine's root (see
shared/SYSTEMD-TESTING.md), this build installed into it with make install,
then socket activation, Type=notify, jobs through the socket, reload, the
journal, the watchdog and a clean stop, checked through systemctl.

Nothing on the host is written: the container's / is an overlay of a bind
mount of / with a tmpfs on top, the build and source trees are mounted
read-only while make install runs, and nspawn runs in private cgroups that
are removed afterwards. Where the container cannot run (not root, no
systemd-nspawn, no mount or cgroup rights, no boot) every test skips and
says SKIPPED on stderr. The checks that need no manager are in
test_systemd_units.py and test_supervise.py."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from mprocd_test import TIMEOUT, main, wait_for

BUILDDIR = os.path.abspath(os.environ.get("MPROCD_BUILDDIR", "."))
SRCDIR = os.path.abspath(os.environ.get("MPROCD_SRCDIR", "."))

SOCK = "/run/mprocd/mprocd.sock"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATUS_RE = r"^\d+ pools, \d+ workers, \d+ busy, \d+ queued"

# The container boots this instead of multi-user.target, so that none of
# the host image's own services start; mprocd.socket is started by a test.
TARGET = """[Unit]
Description=mprocd container test
Requires=basic.target
After=basic.target
Wants=systemd-journald.service
AllowIsolate=yes
"""

# Short, so that a stop with a running job takes seconds, not 35.
CONFIG = """; written by test_systemd_container.py
[mprocd]
shutdown_timeout = 1s

[pool default]
workers = 2
kill_grace = 1s
"""

WATCHDOG_DROPIN = "/etc/systemd/system/mprocd.service.d/wd.conf"
# systemd follows the watchdog's SIGABRT with a SIGCONT, so a stopped
# mprocd dies at once; TimeoutAbortSec bounds the wait if it did not.
# LimitCORE=0: no core dump of it, not even to a host's core handler.
WATCHDOG_CONF = ("[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n"
                 "LimitCORE=0\n")
# What systemd logs when it has to kill processes of a unit that did not
# end by themselves, or when the unit fails.
SYSTEMD_KILLS = r"Killing process|remains running|[Ff]ailed|timed out"


def makefile_vars(builddir):
    """The variables of the build's Makefile, expanded."""
    raw = {}
    with open(os.path.join(builddir, "Makefile")) as f:
        for line in f:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*) = ?(.*)$", line.rstrip("\n"))
            if m and m.group(1) not in raw:
                raw[m.group(1)] = m.group(2)

    def expand(v, depth=0):
        if depth > 20:
            return v
        return re.sub(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]",
                      lambda m: expand(raw.get(m.group(1), ""), depth + 1), v)
    return {k: expand(v) for k, v in raw.items()}


def text(v):
    """A journal field's value as a string (journalctl gives binary ones as
    a list of byte values, repeated fields as a list of those)."""
    if isinstance(v, list):
        if v and all(isinstance(b, int) for b in v):
            return bytes(v).decode("utf-8", "replace")
        return text(v[-1]) if v else ""
    return "" if v is None else str(v)


class Unavailable(Exception):
    pass


class Container:
    """A systemd booted with systemd-nspawn over an overlay of /."""

    def __init__(self):
        self.dir = None
        self.root = None
        self.mounted = False
        self.cgroups = []
        self.nspawn = None
        self.leader = None
        self.console = None
        self.nspawn_run_dir_existed = os.path.isdir("/run/systemd/nspawn")
        self.name = "mprocd-test%d" % os.getpid()
        self.env = {"PATH": PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "",
                    "SYSTEMD_COLORS": "0", "TERM": "dumb"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                self.env[k] = os.environ[k]

    # -- setting up --------------------------------------------------------

    def boot(self):
        if os.geteuid() != 0:
            raise Unavailable("not root")
        for tool, pkg in (("systemd-nspawn", "systemd-container"),
                          ("nsenter", "util-linux"), ("mount", "mount")):
            if shutil.which(tool) is None:
                raise Unavailable("%s is not installed (Debian package %s)"
                                  % (tool, pkg))
        if not any(os.access(p, os.X_OK) for p in
                   ("/lib/systemd/systemd", "/usr/lib/systemd/systemd")):
            raise Unavailable("systemd is not installed")
        self.dir = tempfile.mkdtemp(prefix="mprocd-ctr-")
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root)
        r = subprocess.run(["mount", "--bind", "/", self.root],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Unavailable("cannot bind-mount / (%s)"
                              % (r.stderr.strip().split("\n")[0]
                                 or r.returncode))
        self.mounted = True
        self.make_cgroups()
        target = os.path.join(self.dir, "mprocd-test.target")
        with open(target, "w") as f:
            f.write(TARGET)
        self.console = os.path.join(self.dir, "console.log")
        # The trees are bound in read-only at their own paths: the overlay
        # of / would not show them under /tmp (nspawn mounts a fresh tmpfs
        # there) or on another file system.
        trees = ["--bind-ro=%s:%s" % (d, d) for d in sorted({SRCDIR, BUILDDIR})]
        args = ["systemd-nspawn", "-q", "-D", self.root, "-M", self.name,
                "--volatile=overlay", "--register=no", "--keep-unit",
                "--link-journal=no", "--private-network",
                "--console=read-only",
                "--bind-ro=%s:/etc/systemd/system/mprocd-test.target"
                % target] + trees + [
                "-b", "--", "--unit=mprocd-test.target",
                "systemd.firstboot=off"]
        procs = [os.path.join(c, "cgroup.procs") for c in self.cgroups]

        def enter_cgroups():
            for p in procs:
                with open(p, "w") as f:
                    f.write(str(os.getpid()))
        with open(self.console, "wb") as out:
            self.nspawn = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=enter_cgroups)
        deadline = time.monotonic() + 60
        while self.leader is None:
            if self.nspawn.poll() is not None:
                raise Unavailable("systemd-nspawn exited with status %d: %s"
                                  % (self.nspawn.returncode,
                                     self.console_tail()))
            if time.monotonic() > deadline:
                raise Unavailable("no systemd in the container after 60s: "
                                  + self.console_tail())
            self.leader = self.find_leader()
            if self.leader is None:
                time.sleep(0.05)
        private = "/proc/%d/root/run/systemd/private" % self.leader
        while not os.path.exists(private):
            if self.nspawn.poll() is not None or time.monotonic() > deadline:
                raise Unavailable("the container's systemd did not start: "
                                  + self.console_tail())
            time.sleep(0.05)
        r = self.run(["systemctl", "is-system-running", "--wait"],
                     check=False, timeout=60)
        state = r.stdout.strip()
        if state not in ("running", "degraded"):
            raise Unavailable("the container did not boot (%s): %s"
                              % (state or r.stderr.strip(),
                                 self.console_tail()))

    def make_cgroups(self):
        """nspawn started from a private sub-cgroup leaves nothing behind
        once that is removed."""
        base = "/sys/fs/cgroup"
        if os.path.exists(os.path.join(base, "cgroup.controllers")):
            hierarchies = [base]                    # unified only
        else:
            hierarchies = [os.path.join(base, h) for h in ("unified", "systemd")
                           if os.path.exists(os.path.join(base, h,
                                                          "cgroup.procs"))]
        if not hierarchies:
            raise Unavailable("no cgroup hierarchy at %s" % base)
        for h in hierarchies:
            d = os.path.join(h, self.name)
            try:
                os.mkdir(d)
            except OSError as e:
                raise Unavailable("cannot create a cgroup in %s (%s)"
                                  % (h, e.strerror))
            self.cgroups.append(d)

    def find_leader(self):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == self.nspawn.pid and comm == "systemd":
                return int(pid)
        return None

    def console_tail(self, n=15):
        try:
            with open(self.console, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except (OSError, TypeError):
            return "(no console output)"
        return " | ".join(l.strip() for l in lines[-n:]) or "(no output)"

    # -- running things inside ---------------------------------------------

    def run(self, args, check=True, timeout=TIMEOUT * 3, input=None):
        """Runs args inside the container as root, in /."""
        r = subprocess.run(["nsenter", "-t", str(self.leader), "-a",
                            "-r", "-w"] + list(args),
                           input=input, capture_output=True, text=True,
                           timeout=timeout, env=self.env)
        if check and r.returncode != 0:
            raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(args), r.returncode, r.stdout,
                                    r.stderr))
        return r

    def write(self, path, content):
        self.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"',
                  "sh", path], input=content)

    # -- taking it down ----------------------------------------------------

    def close(self):
        """Everything undone, as far as it can be, even after a failure;
        problems are reported on stderr, never raised."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            if self.leader is not None:
                try:
                    self.run(["systemctl", "poweroff", "--no-block"],
                             check=False, timeout=20)
                except (subprocess.SubprocessError, OSError):
                    pass
            try:
                self.nspawn.wait(30)
            except subprocess.TimeoutExpired:
                warn("the container did not power off; terminating nspawn")
                self.nspawn.terminate()
                try:
                    self.nspawn.wait(15)
                except subprocess.TimeoutExpired:
                    self.nspawn.kill()
                    self.nspawn.wait()
        # Whatever is left in our own cgroups was started by the container.
        for c in self.cgroups:
            for d, _, _ in os.walk(c, topdown=False):
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        pids = [int(p) for p in f.read().split()]
                except OSError:
                    continue
                for pid in pids:
                    warn("killing container process %d left behind" % pid)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if self.mounted:
            for args in (["umount", self.root], ["umount", "-l", self.root]):
                r = subprocess.run(args, capture_output=True, text=True)
                if r.returncode == 0:
                    self.mounted = False
                    break
                warn("%s: %s" % (" ".join(args), r.stderr.strip()))
        deadline = time.monotonic() + 10
        for c in self.cgroups:
            for d, _, _ in os.walk(c, topdown=False):
                while True:
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError as e:
                        if time.monotonic() > deadline:
                            warn("cannot remove cgroup %s: %s"
                                 % (d, e.strerror))
                            break
                        time.sleep(0.1)
        if not self.nspawn_run_dir_existed:
            # nspawn's own directories, if nobody else uses them now.
            for d in ("locks", "propagate", ""):
                try:
                    os.rmdir(os.path.join("/run/systemd/nspawn", d))
                except OSError:
                    pass
        if self.dir is not None:
            # Never rm -r while / is still mounted under it.
            if self.mounted or os.path.ismount(self.root):
                warn("%s is still mounted: leaving %s" % (self.root,
                                                           self.dir))
            else:
                try:
                    if os.path.isdir(self.root):
                        os.rmdir(self.root)
                    shutil.rmtree(self.dir)
                except OSError as e:
                    warn("cannot remove %s: %s" % (self.dir, e))


def warn(msg):
    print("test_systemd_container: %s" % msg, file=sys.stderr, flush=True)


class TestSystemService(unittest.TestCase):
    """In test-name order: each step leaves the service as the next one
    expects."""

    ctr = None
    failed = False

    @classmethod
    def setUpClass(cls):
        cls.vars = makefile_vars(BUILDDIR)
        cls.ctr = Container()
        try:
            cls.ctr.boot()
            cls.install()
        except Unavailable as e:
            cls.ctr.close()
            reason = "SKIPPED: systemd container tests: %s" % e
            print(reason, file=sys.stderr, flush=True)
            raise unittest.SkipTest(reason)
        except BaseException:
            cls.ctr.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.failed:
            try:
                r = cls.ctr.run(["journalctl", "--no-pager", "-o",
                                 "short-precise", "-n", "80", "-u",
                                 "mprocd.service", "-u", "mprocd.socket"],
                                check=False)
                warn("a test failed; the journal of mprocd:\n" + r.stdout)
            except (subprocess.SubprocessError, OSError) as e:
                warn("no journal: %s" % e)
        cls.ctr.close()

    def tearDown(self):
        result = self._outcome.result
        for test, _ in (getattr(result, "errors", []) +
                        getattr(result, "failures", [])):
            if test is self:
                type(self).failed = True

    @classmethod
    def install(cls):
        """make install of the build into the container's overlay, with the
        build and source trees read-only; users and units loaded."""
        c = cls.ctr
        # The trees are read-only here: a build out of date with its
        # sources (edited since make check built it) cannot be installed.
        r = c.run(["make", "-s", "-C", BUILDDIR, "all"], timeout=600,
                  check=False)
        if r.returncode != 0:
            raise AssertionError("make all in the container failed (is the "
                                 "build out of date? run make):\n"
                                 + r.stdout + r.stderr)
        r = c.run(["make", "-s", "-C", BUILDDIR, "install"], check=False,
                  timeout=300)
        cls.install_output = r.stdout + r.stderr
        if r.returncode != 0:
            raise AssertionError("make install from a read-only build "
                                 "tree failed:\n" + cls.install_output)
        c.run(["systemd-sysusers"])
        c.run(["systemctl", "daemon-reload"])
        cls.unitdir = cls.vars["systemdsystemunitdir"]
        cls.mprocctl = os.path.join(cls.vars["bindir"], "mprocctl")
        cls.conf = os.path.join(cls.vars["sysconfdir"], "mprocd.conf")
        cls.conf_installed = c.run(["test", "-f", cls.conf],
                                   check=False).returncode == 0
        c.write(cls.conf, CONFIG)
        if cls.vars.get("SAN_CFLAGS", "").strip():
            env = " ".join('"%s=%s"' % (k, os.environ[k]) for k in
                           ("ASAN_OPTIONS", "UBSAN_OPTIONS")
                           if k in os.environ)
            if env:
                c.write("/etc/systemd/system/mprocd.service.d/san.conf",
                        "[Service]\nEnvironment=%s\n" % env)
                c.run(["systemctl", "daemon-reload"])

    # -- helpers -----------------------------------------------------------

    def sh(self, *args, **kw):
        return self.ctr.run(list(args), **kw)

    def show(self, *props, unit="mprocd.service"):
        r = self.sh("systemctl", "show", "-p", ",".join(props), unit)
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        for p in props:
            out.setdefault(p, "")
        return out

    def prop(self, prop, unit="mprocd.service"):
        return self.show(prop, unit=unit)[prop]

    def ctl(self, *args, check=False, **kw):
        return self.sh(self.mprocctl, "-s", SOCK, *args, check=check, **kw)

    def journal(self, *matches, unit=False):
        """Records of mprocd.service: those it logged, or with unit, also
        those systemd logged about it."""
        args = ["journalctl", "--no-pager", "-o", "json"]
        args += ["-u", "mprocd.service"] if unit else \
            ["_SYSTEMD_UNIT=mprocd.service"]
        r = self.sh(*(args + list(matches)))
        recs = []
        for line in r.stdout.splitlines():
            try:
                recs.append({k: text(v) for k, v in json.loads(line).items()})
            except ValueError:
                pass
        return recs

    def wait_journal(self, pred, what, *matches, unit=False):
        def find():
            recs = [r for r in self.journal(*matches, unit=unit) if pred(r)]
            return recs or None
        return wait_for(find, what, interval=0.2)

    def cursor(self):
        """Where the journal ends now."""
        r = self.sh("journalctl", "--no-pager", "-o", "json", "-n", "1")
        return json.loads(r.stdout.splitlines()[-1])["__CURSOR"]

    def systemd_kills(self, cursor):
        """What systemd said of killing mprocd's processes since cursor."""
        return [r["MESSAGE"] for r in
                self.journal("--after-cursor=" + cursor, unit=True)
                if r.get("_PID") == "1" and
                re.search(SYSTEMD_KILLS, r.get("MESSAGE", ""))]

    def wait_active(self):
        def active():
            s = self.show("ActiveState", "SubState", "MainPID")
            if s["ActiveState"] == "active" and s["MainPID"] not in ("", "0"):
                return s
            return None
        return wait_for(active, "mprocd.service to be active",
                        interval=0.05)

    def ensure_running(self):
        self.sh("systemctl", "start", "mprocd.socket", "mprocd.service")
        return self.wait_active()

    def submit(self, *cmd):
        r = self.ctl("submit", "--", *cmd, check=True)
        return int(r.stdout.strip())

    def cgroup_procs(self, cgroup):
        """The pids in the unit's cgroup (and below it) in every hierarchy
        the container has, as the container sees them; None if the cgroup
        is gone everywhere."""
        script = r'''
found=
for h in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
    d=$h$1
    [ -d "$d" ] && [ -f "$d/cgroup.procs" ] || continue
    found=1
    find "$d" -name cgroup.procs -exec cat {} +
done
[ -n "$found" ] || echo gone
'''
        out = self.sh("sh", "-c", script, "sh", cgroup).stdout.split()
        if out == ["gone"]:
            return None
        return sorted(set(int(p) for p in out))

    # -- the tests ---------------------------------------------------------

    def test_01_installed(self):
        unit = os.path.join(self.unitdir, "mprocd.service")
        self.assertEqual(self.prop("FragmentPath"), unit)
        self.assertEqual(self.prop("FragmentPath", unit="mprocd.socket"),
                         os.path.join(self.unitdir, "mprocd.socket"))
        exe = os.path.join(self.vars["sbindir"], "mprocd")
        self.assertIn("path=%s ;" % exe, self.prop("ExecStart"))
        self.assertIn("-c %s" % self.conf, self.prop("ExecStart"))
        self.assertTrue(self.conf_installed,
                        "make install did not install %s" % self.conf)
        self.assertEqual(self.sh("test", "-x", self.mprocctl,
                                 check=False).returncode, 0)
        # systemd-sysusers found the installed file on its own.
        pw = self.sh("getent", "passwd", "mprocd").stdout.split(":")
        gr = self.sh("getent", "group", "mprocd").stdout.split(":")
        self.assertEqual(pw[3], gr[2], "mprocd's primary group")
        self.assertNotEqual(pw[2], "0")

    def test_02_verify_prints_nothing(self):
        args = ["systemd-analyze", "verify"]
        if self.sh("sh", "-c", "command -v man", check=False).returncode:
            args.append("--man=no")
        r = self.sh(*(args + [os.path.join(self.unitdir, u) for u in
                              ("mprocd.service", "mprocd.socket")]),
                    check=False)
        self.assertEqual(r.stdout + r.stderr, "")
        self.assertEqual(r.returncode, 0)

    def test_03_socket_activation(self):
        self.sh("systemctl", "enable", "--now", "mprocd.socket")
        self.assertEqual(self.prop("ActiveState", unit="mprocd.socket"),
                         "active")
        self.assertEqual(self.sh("systemctl", "is-enabled", "mprocd.socket")
                         .stdout.strip(), "enabled")
        # Listening, and nothing started yet.
        self.assertEqual(self.prop("ActiveState"), "inactive")
        self.assertEqual(self.sh("stat", "-c", "%F %a %U %G", SOCK)
                         .stdout.strip(), "socket 660 root mprocd")
        r = self.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.wait_active()
        self.assertEqual(s["SubState"], "running")
        s = self.show("Type", "StatusText", "MainPID")
        self.assertEqual(s["Type"], "notify")
        self.assertRegex(s["StatusText"], STATUS_RE)
        # The daemon is the one systemd started, as the user mprocd.
        pid = s["MainPID"]
        st = self.ctl("--json", "status", check=True)
        self.assertEqual(json.loads(st.stdout)["pid"], int(pid))
        self.assertEqual(self.sh("stat", "-c", "%U", "/proc/" + pid)
                         .stdout.strip(), "mprocd")

    def test_04_jobs(self):
        self.ensure_running()
        r = self.ctl("submit", "-w", "--", "echo", "hello")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "hello\n", ""))
        r = self.ctl("submit", "-w", "--", "sh", "-c", "exit 3")
        self.assertEqual(r.returncode, 3, r.stderr)
        r = self.ctl("submit", "-w", "--", "id", "-un")
        self.assertEqual((r.returncode, r.stdout), (0, "mprocd\n"))

    def test_05_reload_keeps_running(self):
        before = self.ensure_running()["MainPID"]
        # The configuration is not reloaded yet (mprocd says so), but the
        # reload completes: RELOADING=1, then READY=1.
        r = self.sh("systemctl", "reload", "mprocd.service", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_journal(lambda r: "SIGHUP" in r.get("MESSAGE", ""),
                          "mprocd's record of the SIGHUP",
                          "_PID=" + before)
        s = self.show("ActiveState", "MainPID")
        self.assertEqual((s["ActiveState"], s["MainPID"]), ("active", before))
        self.assertEqual(self.ctl("status").returncode, 0)

    def test_05a_restart_serves_waiting_clients(self):
        before = self.ensure_running()["MainPID"]
        # Connections made while the service restarts wait in the socket
        # systemd holds, and the new mprocd answers them.
        self.sh("systemctl", "restart", "--no-block", "mprocd.service")
        r = self.ctl("submit", "-w", "--", "echo", "after restart")
        self.assertEqual((r.returncode, r.stdout), (0, "after restart\n"),
                         r.stderr)
        after = self.wait_active()["MainPID"]
        self.assertNotEqual(after, before)
        st = json.loads(self.ctl("--json", "status", check=True).stdout)
        self.assertEqual(st["pid"], int(after))
        # The state database is in the unit's StateDirectory=, and the
        # jobs of the mprocd before the restart are still known: the new
        # one ran this one, the last.
        self.assertEqual(st["state"], "/var/lib/mprocd/mprocd.db")
        jobs = json.loads(self.ctl("--json", "list", check=True).stdout)
        self.assertEqual(jobs["jobs"][-1]["argv"], ["echo", "after restart"])
        self.assertGreater(len(jobs["jobs"]), 1)

    def test_05b_restart_keeps_its_jobs(self):
        """systemctl restart with 1,000 jobs queued and two running: the
        state database (StateDirectory=) carries them over. The queued run
        after the restart, a finished one stays readable, and the two that
        were running follow DESIGN §3's rule: the one with a retry runs
        again, the one without is lost."""
        self.ensure_running()
        done = self.submit("echo", "before")
        self.assertEqual(self.ctl("wait", str(done)).returncode, 0)
        # Its first attempt leaves a mark where the next one (after the
        # restart: a new PrivateTmp=) still sees it.
        again = int(self.ctl("submit", "-r", "1", "--", "sh", "-c",
                             'm="$STATE_DIRECTORY/again-$MPROCD_JOB_ID"; '
                             '[ -e "$m" ] && exit 0; touch "$m"; sleep 100',
                             check=True).stdout)
        lost = self.submit("sleep", "100")

        def both_running():
            r = self.ctl("--json", "list", "-S", "running", check=True)
            ids = {j["id"] for j in json.loads(r.stdout)["jobs"]}
            return {again, lost} <= ids
        wait_for(both_running, "both jobs running")
        r = self.sh("sh", "-c", "for i in $(seq 1000); do %s -s %s submit "
                    "-- true || exit 1; done" % (self.mprocctl, SOCK),
                    check=True, timeout=300)
        queued = [int(x) for x in r.stdout.split()]
        self.assertEqual(len(queued), 1000)
        self.sh("systemctl", "restart", "mprocd.service", timeout=120)
        self.wait_active()
        r = self.ctl("wait", *map(str, queued), timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("get", str(done))
        self.assertEqual((r.returncode, r.stdout), (0, "before\n"))
        r = self.ctl("wait", str(again), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        jobs = json.loads(self.ctl("--json", "list", check=True).stdout)
        by_id = {j["id"]: j for j in jobs["jobs"]}
        self.assertEqual((by_id[again]["state"], by_id[again]["attempts"]),
                         ("succeeded", 2))
        self.assertEqual(by_id[lost]["state"], "lost")

    def test_06_journal_fields(self):
        self.ensure_running()
        job = self.submit("echo", "journal")
        self.assertEqual(self.ctl("wait", str(job)).returncode, 0)
        recs = self.wait_journal(
            lambda r: r.get("MPROCD_STATE") == "succeeded",
            "the journal record of job %d finishing" % job,
            "MPROCD_JOB=%d" % job)
        rec = recs[0]
        self.assertIn("job finished", rec["MESSAGE"])
        self.assertEqual(rec["MPROCD_POOL"], "default")
        self.assertRegex(rec["MPROCD_WORKER"], r"^default/\d+$")
        self.assertEqual(rec["SYSLOG_IDENTIFIER"], "mprocd")
        self.assertEqual(rec["_SYSTEMD_UNIT"], "mprocd.service")
        # Records without a job carry the pool and the worker too.
        self.wait_journal(lambda r: "MPROCD_JOB" not in r and
                          r.get("MPROCD_WORKER", "").startswith("default/"),
                          "a worker's record", "MPROCD_POOL=default")

    def test_07_watchdog(self):
        self.ctr.write(WATCHDOG_DROPIN, WATCHDOG_CONF)
        self.addCleanup(self.sh, "systemctl", "daemon-reload")
        self.addCleanup(self.sh, "rm", "-f", WATCHDOG_DROPIN)
        self.sh("systemctl", "daemon-reload")
        self.sh("systemctl", "restart", "mprocd.service")
        s = self.wait_active()
        self.assertEqual(self.prop("WatchdogUSec"), "2s")
        pid, restarts = s["MainPID"], int(self.prop("NRestarts"))
        cursor = self.cursor()
        # Pings at half of WatchdogSec keep it alive meanwhile.
        time.sleep(3)
        self.assertEqual(self.show("MainPID")["MainPID"], pid)
        self.sh("kill", "-STOP", pid)
        t0 = time.monotonic()

        def restarted():
            s = self.show("ActiveState", "MainPID", "NRestarts")
            return (s if s["ActiveState"] == "active" and
                    s["MainPID"] not in ("0", "", pid) and
                    int(s["NRestarts"]) > restarts else None)
        s = wait_for(restarted, "a restart by the watchdog", interval=0.1)
        took = time.monotonic() - t0
        self.assertEqual(int(s["NRestarts"]), restarts + 1)
        self.assertLess(took, 15)
        self.wait_journal(lambda r: "Watchdog timeout" in r.get("MESSAGE", ""),
                          "systemd's 'Watchdog timeout'",
                          "--after-cursor=" + cursor, unit=True)
        # What test_09 must not see, seen here.
        self.assertTrue(any("Killing process %s " % pid in m
                            for m in self.systemd_kills(cursor)))
        self.sh("test", "!", "-e", "/proc/" + pid)
        r = self.ctl("submit", "-w", "--", "echo", "again")
        self.assertEqual((r.returncode, r.stdout), (0, "again\n"))

    def stop(self):
        t0 = time.monotonic()
        self.sh("systemctl", "stop", "mprocd.service", "mprocd.socket",
                timeout=120)
        took = time.monotonic() - t0
        s = self.show("Result", "ActiveState")
        self.assertEqual(s["ActiveState"], "inactive")
        self.assertEqual(s["Result"], "success")
        return took

    def test_08_stop(self):
        self.ensure_running()
        cgroup = self.prop("ControlGroup")
        self.assertTrue(cgroup.endswith("/mprocd.service"), cgroup)
        self.assertTrue(self.cgroup_procs(cgroup))
        self.stop()
        self.assertIn(self.cgroup_procs(cgroup), (None, []))

    def test_09_stop_with_running_job(self):
        self.ensure_running()
        cgroup = self.prop("ControlGroup")
        job = self.submit("sh", "-c", "sleep 300 & sleep 300")

        def running():
            r = self.ctl("--json", "list", "-S", "running", check=True)
            ids = [j.get("id") for j in json.loads(r.stdout).get("jobs", [])]
            return job in ids
        wait_for(running, "job %d to run" % job)
        # Both sleeps are up: the job's own and the one it left in the
        # background, which mprocd never waits for.
        def sleeps():
            pids = [str(p) for p in self.cgroup_procs(cgroup) or []]
            mine = self.sh("sh", "-c", 'for p; do [ "$(cat /proc/$p/comm '
                           '2>/dev/null)" = sleep ] && echo $p; done; true',
                           "sh", *pids).stdout.split()
            return mine if len(mine) >= 2 else None
        sleeping = wait_for(sleeps, "the job's two sleeps")
        cursor = self.cursor()
        took = self.stop()
        # shutdown_timeout, then kill_grace at most, far from TimeoutStopSec.
        self.assertLess(took, 15)
        self.assertIn(self.cgroup_procs(cgroup), (None, []))
        for p in sleeping:
            self.sh("test", "!", "-e", "/proc/" + p)
        # With the state database (StateDirectory=), a job that outlived
        # shutdown_timeout follows the rule of one running when mprocd
        # stopped: without retries, lost.
        self.wait_journal(lambda r: r.get("MPROCD_STATE") == "lost",
                          "job %d ending lost" % job,
                          "MPROCD_JOB=%d" % job)
        # mprocd ended its processes itself: systemd had nothing to kill.
        self.assertEqual(self.systemd_kills(cursor), [])


if __name__ == "__main__":
    main()
