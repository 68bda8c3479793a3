"""Six slow functions a web request needs, served by the pool "web"
(examples/mprocd.conf):

    [pool web]
    workers = 6
    program = python3 -m mprocd.worker slow_functions

Each stands for a slow call to somewhere else: it sleeps for SLOW seconds.
"""

import time

from mprocd.worker import current_worker


SLOW = 0.5


def _slow():
    time.sleep(SLOW)


def fetch_profile(user):
    _slow()
    return {"user": user, "name": user.title()}


def fetch_orders(user):
    _slow()
    return ["order-%s-%d" % (user, n) for n in range(1, 3)]


def fetch_recommendations(user):
    _slow()
    return ["book", "lamp"]


def fetch_weather(city):
    _slow()
    return {"city": city, "sky": "clear"}


def render_chart(user, width=40):
    _slow()
    return "#" * (len(user) * 4 % width + 1)


def check_fraud(user):
    _slow()
    return {"user": user, "ok": True, "checked_by": current_worker()}
