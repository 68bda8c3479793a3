#!/usr/bin/env python3
"""A web request handler that fans six slow functions out to mprocd and
answers with every result, in order.

The handler (a plain http.server one) starts all six calls at once with
Pool.apply_async, then collects them in the order it asked: the request
takes as long as the slowest call, not as long as all of them together.
The Pool is made once, at start; each handler thread gets its own
connection from it.

    python3 examples/web_fanout.py [-p POOL]     # one request, printed
    python3 examples/web_fanout.py --serve 8000  # until Ctrl-C; then
    curl 'http://127.0.0.1:8000/?user=ann'
"""

import argparse
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mprocd
from slow_functions import (check_fraud, fetch_orders, fetch_profile,
                            fetch_recommendations, fetch_weather, render_chart)

POOL = None


def handle(user):
    """What a request for user answers: each call's name and result, in
    the order they were asked, and how long they took."""
    t0 = time.monotonic()
    calls = [(fetch_profile, (user,), {}),
             (fetch_orders, (user,), {}),
             (fetch_recommendations, (user,), {}),
             (fetch_weather, ("Lisbon",), {}),
             (render_chart, (user,), {"width": 20}),
             (check_fraud, (user,), {})]
    pending = [(f.__name__, POOL.apply_async(f, args, kwds))
               for f, args, kwds in calls]
    results = [[name, r.get(timeout=30)] for name, r in pending]
    return {"user": user, "results": results,
            "seconds": round(time.monotonic() - t0, 2)}


class Handler(BaseHTTPRequestHandler):

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        user = query.get("user", ["ann"])[0]
        try:
            body, status = handle(user), 200
        except mprocd.Error as e:
            body, status = {"error": str(e)}, 502
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("web_fanout: " + fmt % args + "\n")


def main():
    global POOL
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--pool", default="web",
                    help="the program pool (default: %(default)s)")
    ap.add_argument("--serve", type=int, metavar="PORT",
                    help="serve on PORT until interrupted")
    args = ap.parse_args()
    POOL = mprocd.Pool(args.pool)
    server = ThreadingHTTPServer(("127.0.0.1", args.serve or 0), Handler)
    if args.serve:
        print("serving on http://127.0.0.1:%d/?user=ann" % args.serve)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/?user=ann" % server.server_address[1]
    with urllib.request.urlopen(url) as response:
        answer = json.load(response)
    server.shutdown()
    for name, result in answer["results"]:
        print("%-22s %s" % (name, json.dumps(result)))
    print("%d calls in %.2fs" % (len(answer["results"]), answer["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
