#!/usr/bin/env python3
"""Fan six slow jobs out to mprocd and gather every result in order.

The web-request case: a handler needs six slow things done (scrapers, API
calls, renders). It submits them all at once, waits while mprocd's workers
run them in parallel, and gets back each one's exit status, stdout and stderr
in the order it asked, with nothing shared between it and the workers.

This speaks mprocd's Varlink interface (io.mprocd) directly, with the
Python standard library only: every message is a JSON object ended by a NUL
byte, and calls on one connection are answered in order, so several may be
sent before reading the replies. Any language can do the same.

    python3 examples/fanout.py [-s SOCKET] [-p POOL]

The same with Python functions in a program pool, through mprocd.Pool:
web_fanout.py.
"""

import argparse
import base64
import json
import os
import socket
import sys
import time


def default_socket():
    """As mprocctl: $MPROCD_SOCKET, else the system or the user's socket."""
    if os.environ.get("MPROCD_SOCKET"):
        return os.environ["MPROCD_SOCKET"]
    if os.geteuid() == 0:
        return "/run/mprocd/mprocd.sock"
    return os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/run/user/%d"
                                       % os.getuid()), "mprocd.sock")


class VarlinkError(Exception):
    pass


class Connection:
    """One connection to mprocd: send calls, then read their replies."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def send(self, method, parameters, more=False):
        msg = {"method": "io.mprocd." + method, "parameters": parameters}
        if more:
            msg["more"] = True
        self.sock.sendall(json.dumps(msg).encode() + b"\0")

    def recv(self):
        """The next reply: (parameters, continues); raises on an error."""
        while b"\0" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("mprocd closed the connection")
            self.buf += data
        msg, _, self.buf = self.buf.partition(b"\0")
        reply = json.loads(msg)
        if "error" in reply:
            raise VarlinkError("%s %s" % (reply["error"],
                                          reply.get("parameters", {})))
        return reply.get("parameters", {}), reply.get("continues", False)

    def call(self, method, parameters):
        self.send(method, parameters)
        return self.recv()[0]


def fan_out(path, commands, pool="default"):
    """Runs each argv in commands; returns [(job, stdout, stderr)] in order."""
    conn = Connection(path)

    # Pipelined: every Submit goes out before the first reply is read.
    for argv in commands:
        conn.send("Submit", {"argv": argv, "cwd": os.getcwd(), "pool": pool})
    ids = [conn.recv()[0]["id"] for _ in commands]

    # With "more", one reply per job as it finishes, in the order they end.
    conn.send("Wait", {"ids": ids}, more=True)
    continues = True
    while continues:
        params, continues = conn.recv()
        for job in params["jobs"]:
            print("  job %d %s after %.1fs" % (
                job["id"], job["state"],
                (job["finished_usec"] - job["started_usec"]) / 1e6),
                file=sys.stderr)

    # Every job is done: collect the results in the order they were asked.
    results = []
    for job_id in ids:
        r = conn.call("Get", {"id": job_id})
        results.append((r["job"], base64.b64decode(r["stdout"]),
                        base64.b64decode(r["stderr"])))
    conn.sock.close()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-s", "--socket", default=default_socket(),
                    help="mprocd's socket (default: %(default)s)")
    ap.add_argument("-p", "--pool", default="default",
                    help="a command pool (default: %(default)s)")
    args = ap.parse_args()

    # Six "slow functions": the later ones finish first.
    delays = [1.2 - n * 0.2 for n in range(6)]
    commands = [["sh", "-c", "sleep %.1f; echo result $0" % d, str(n)]
                for n, d in enumerate(delays)]
    start = time.monotonic()
    try:
        results = fan_out(args.socket, commands, args.pool)
    except (OSError, VarlinkError) as e:
        sys.exit("fanout: %s: %s" % (args.socket, e))
    print("all %d done in %.1fs (one after another: %.1fs)" % (
        len(results), time.monotonic() - start, sum(delays)),
        file=sys.stderr)
    for job, out, err in results:
        print("job %d (%s, exit %s): %s" % (
            job["id"], job["state"], job.get("exit_status", "-"),
            out.decode(errors="replace").strip()))
        sys.stderr.write(err.decode(errors="replace"))
    return 0 if all(job["state"] == "succeeded"
                    for job, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
