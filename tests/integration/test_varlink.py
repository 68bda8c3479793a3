"""The control socket: Varlink framing, the service interface, errors, bad
clients, and how the socket file is created. Hostile clients and the limits
they meet (max_message, max_clients and its reserve, message_timeout, a
half-closed client) are in test_hostile.py."""

import json
import os
import re
import shutil
import signal
import socket
import stat
import time

from mprocd_test import (OTHER_UID, DaemonTestCase, VarlinkError, alive,
                         conf, fd_count, main, proc_status, wait_for)


class TestProtocol(DaemonTestCase):

    def test_getinfo(self):
        d = self.daemon()
        info = d.call("org.varlink.service.GetInfo")
        self.assertEqual(info["product"], "mprocd")
        self.assertEqual(info["interfaces"], ["io.mprocd",
                                              "org.varlink.service"])
        for key in ("vendor", "version", "url"):
            self.assertIsInstance(info[key], str)

    def test_interface_description(self):
        d = self.daemon()
        desc = d.call("org.varlink.service.GetInterfaceDescription",
                      {"interface": "io.mprocd"})["description"]
        self.assertTrue(desc.startswith("# Supervised worker pools that "
                                        "run jobs.\ninterface io.mprocd\n"))
        for text in ("method Submit(", "method Run(",
                     "method Status() -> (version: string",
                     "error ReloadFailed (reason: string)",
                     "# Submitter's uid, from the socket's peer credentials."):
            self.assertIn(text, desc)
        desc = d.call("org.varlink.service.GetInterfaceDescription",
                      {"interface": "org.varlink.service"})["description"]
        self.assertIn("interface org.varlink.service", desc)

    def test_status_shape(self):
        d = self.daemon()
        st = d.status()
        self.assertEqual(set(st) - {"state", "state_size"},
                         {"version", "pid", "started_usec", "pools"})
        now = time.time() * 1e6
        self.assertLess(abs(st["started_usec"] - now), 60e6)
        pool = st["pools"][0]
        self.assertEqual(set(pool), {"name", "size", "degraded", "queued",
                                     "waiting_after", "waiting_lock",
                                     "running", "succeeded", "failed",
                                     "cancelled", "restarts", "program",
                                     "workers"})
        self.assertIsNone(pool["program"])
        w = pool["workers"][0]
        self.assertEqual(set(w), {"name", "pid", "state", "jobs_done",
                                  "restarts", "started_usec"})

    def test_standard_errors(self):
        d = self.daemon()
        c = d.connect()
        with self.assertRaises(VarlinkError) as e:
            c.call("io.mprocd.NoSuchMethod")
        self.assertEqual(e.exception.error,
                         "org.varlink.service.MethodNotFound")
        self.assertEqual(e.exception.parameters,
                         {"method": "io.mprocd.NoSuchMethod"})
        with self.assertRaises(VarlinkError) as e:
            c.call(".Thing")
        self.assertEqual(e.exception.error,
                         "org.varlink.service.InterfaceNotFound")
        self.assertEqual(e.exception.parameters, {"interface": ""})
        with self.assertRaises(VarlinkError) as e:
            c.call("com.example.Thing")
        self.assertEqual(e.exception.error,
                         "org.varlink.service.InterfaceNotFound")
        self.assertEqual(e.exception.parameters,
                         {"interface": "com.example"})
        for params in ({}, {"interface": 7}, {"interface": None}):
            with self.assertRaises(VarlinkError) as e:
                c.call("org.varlink.service.GetInterfaceDescription", params)
            self.assertEqual(e.exception.error,
                             "org.varlink.service.InvalidParameter")
            self.assertEqual(e.exception.parameters,
                             {"parameter": "interface"})
        with self.assertRaises(VarlinkError) as e:
            c.call("org.varlink.service.GetInterfaceDescription",
                   {"interface": "com.example"})
        self.assertEqual(e.exception.error,
                         "org.varlink.service.InterfaceNotFound")
        # The connection is still good after errors.
        self.assertIn("pools", c.call("io.mprocd.Status"))

    def test_pipelined_calls_answered_in_order(self):
        d = self.daemon()
        c = d.connect()
        calls = [("io.mprocd.Status", None),
                 ("org.varlink.service.GetInfo", None),
                 ("io.mprocd.Bogus", None),
                 ("org.varlink.service.GetInterfaceDescription",
                  {"interface": "io.mprocd"})] * 50
        blob = b"".join(json.dumps({"method": m, "parameters": p or {}})
                        .encode() + b"\0" for m, p in calls)
        c.send_raw(blob)
        for method, _ in calls:
            r = c.recv()
            if method == "io.mprocd.Status":
                self.assertIn("pools", r["parameters"])
            elif method.endswith("GetInfo"):
                self.assertIn("interfaces", r["parameters"])
            elif method.endswith("Bogus"):
                self.assertEqual(r["error"],
                                 "org.varlink.service.MethodNotFound")
            else:
                self.assertIn("description", r["parameters"])

    def test_oneway_gets_no_reply(self):
        d = self.daemon()
        c = d.connect()
        c.send("io.mprocd.Status", oneway=True)
        c.send("org.varlink.service.GetInfo")
        self.assertIn("interfaces", c.recv()["parameters"])


class TestBadClients(DaemonTestCase):

    def test_garbage_closes_only_that_connection(self):
        d = self.daemon()
        good = d.connect()
        for junk in (b"not json\0", b"[1,2,3]\0", b'{"method": 5}\0',
                     b'{"method": "io.mprocd.Status", "parameters": []}\0',
                     b'{"method": "io.mprocd.Status", "more": "yes"}\0',
                     b'\xff\xfe\0', b"\0", b'{"method": "nodot"}\0',
                     b'{"a":' * 100000 + b'\0'):
            bad = d.connect()
            bad.send_raw(junk)
            self.assertTrue(bad.closed_by_peer())
            self.assertIn("pools", good.call("io.mprocd.Status"))
        self.assertIn("closing the connection", d.log())

    def test_client_that_never_reads(self):
        d = self.daemon(conf("max_message = 64K", level="info", default=4))
        hog = d.connect()
        hog.sock.setblocking(False)
        call = b'{"method": "org.varlink.service.GetInterfaceDescription", ' \
               b'"parameters": {"interface": "io.mprocd"}}\0'
        sent = 0
        try:
            for _ in range(20000):
                hog.sock.send(call)
                sent += 1
        except BlockingIOError:
            pass
        # The daemon stopped reading it instead of buffering every reply.
        self.assertLess(sent, 20000)
        self.assertIn("pools", d.call("io.mprocd.Status"))
        rss = proc_status(d.pid, "VmRSS")
        self.assertLess(rss, 64 * 1024, "supervisor RSS %d KiB" % rss)

    def test_vanishing_clients(self):
        d = self.daemon()
        for _ in range(200):
            c = d.connect()
            c.send("io.mprocd.Status")
            c.close()
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX)
            s.connect(d.sock)
            s.close()
        self.assertIn("pools", d.call("io.mprocd.Status"))
        # Every one of them was let go.
        wait_for(lambda: fd_count(d.pid) < 20,
                 "client descriptors to be closed")

    def test_out_of_descriptors_does_not_spin(self):
        import resource

        def low_nofile():
            resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))
        d = self.daemon(start=False)
        d.start(preexec_fn=low_nofile)
        held = []
        for _ in range(30):
            try:
                held.append(socket.socket(socket.AF_UNIX))
                held[-1].connect(d.sock)
            except OSError:
                break
        time.sleep(2)
        pauses = d.log().count("pausing new connections for 1s")
        self.assertGreaterEqual(pauses, 1)
        # About one a second, not one per loop iteration.
        self.assertLessEqual(pauses, 6)
        for s in held:
            s.close()
        wait_for(lambda: self._can_call(d), "the daemon to accept again")

    @staticmethod
    def _can_call(d):
        try:
            return "pools" in d.call("io.mprocd.Status")
        except (ConnectionError, OSError):
            return False


class TestSocketFile(DaemonTestCase):

    def test_default_mode(self):
        d = self.daemon()
        self.assertEqual(stat.S_IMODE(os.stat(d.sock).st_mode), 0o660)

    def test_configured_mode(self):
        d = self.daemon(conf("socket_mode = 0600", level="info", default=4))
        self.assertEqual(stat.S_IMODE(os.stat(d.sock).st_mode), 0o600)

    def start_fails(self, d, want):
        d.start(wait=False)
        self.assertEqual(d.proc.wait(20), 1)
        self.assertIn(want, d.log())

    def test_refuses_symlink(self):
        d = self.daemon(start=False)
        target = os.path.join(d.dir, "elsewhere")
        os.symlink(target, d.sock)
        self.start_fails(d, "it is a symbolic link")
        self.assertFalse(os.path.exists(target))

    def test_refuses_non_socket(self):
        d = self.daemon(start=False)
        with open(d.sock, "w") as f:
            f.write("precious")
        self.start_fails(d, "it exists and is not a socket")
        with open(d.sock) as f:
            self.assertEqual(f.read(), "precious")

    def test_refuses_live_socket(self):
        first = self.daemon()
        second = self.daemon(start=False)
        second.sock = first.sock
        self.start_fails(second, "another mprocd is listening on it")
        self.assertIn("pools", first.call("io.mprocd.Status"))

    def test_mode_has_no_wider_window(self):
        """The mode is set by the umask around bind(): the socket never
        exists with a wider mode, and no chmod follows."""
        strace = shutil.which("strace")
        if strace is None:
            self.skipTest("SKIPPED: strace is not installed "
                          "(apt-get install strace)")
        d = self.daemon(conf("socket_mode = 0640", level="info", default=4),
                        start=False)
        trace = os.path.join(d.dir, "trace")
        # LeakSanitizer cannot run under ptrace: it would fail the exit.
        d.start(wrapper=[strace, "-qq", "-o", trace, "-e",
                         "trace=umask,bind,chmod,fchmod,fchmodat"],
                env={"ASAN_OPTIONS": "detect_leaks=0"})
        # mprocd is strace's child, which the cleanup's kill of strace
        # would leave running: stop it, and strace goes with it.
        pid = int(re.search(r"supervisor_pid=(\d+)", d.log()).group(1))
        self.addCleanup(lambda: alive(pid) and os.kill(pid, signal.SIGKILL))
        self.assertEqual(stat.S_IMODE(os.stat(d.sock).st_mode), 0o640)
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)
        with open(trace) as f:
            calls = [l for l in f.read().splitlines()
                     if d.sock in l or l.startswith("umask(")]
        bind = next(i for i, l in enumerate(calls)
                    if l.startswith("bind(") and d.sock in l)
        self.assertRegex(calls[bind - 1], r"^umask\(0137\)",
                         "bind() without the umask for 0640: %s" % calls)
        self.assertRegex(calls[bind + 1], r"^umask\(",
                         "umask not restored after bind(): %s" % calls)
        self.assertFalse([l for l in calls if "chmod" in l],
                         "the socket's mode was changed after bind()")

    def test_refuses_socket_of_another_user(self):
        if os.geteuid() != 0:
            self.skipTest("SKIPPED: needs root to give a socket to uid "
                          "%d" % OTHER_UID)
        d = self.daemon(start=False)
        s = socket.socket(socket.AF_UNIX)
        s.bind(d.sock)
        s.close()
        os.chown(d.sock, OTHER_UID, OTHER_UID)
        self.start_fails(d, "it belongs to another user")
        self.assertEqual(os.lstat(d.sock).st_uid, OTHER_UID)

    def test_replaces_stale_socket(self):
        d = self.daemon(start=False)
        s = socket.socket(socket.AF_UNIX)
        s.bind(d.sock)
        s.close()
        d.start()
        self.assertIn("pools", d.call("io.mprocd.Status"))


if __name__ == "__main__":
    main()
