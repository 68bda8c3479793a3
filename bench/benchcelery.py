"""The Celery app of bench.py's "calls" section: double(n) as a task.

Broker and result backend are the Redis that bench.py starts on a private
UNIX socket, named by $BENCH_REDIS (redis+socket:///PATH). The worker:
python3 -m celery -A benchcelery worker -c 2 -P prefork ...
"""

import os

from celery import Celery

import benchcalls

app = Celery("benchcelery", broker=os.environ["BENCH_REDIS"],
             backend=os.environ["BENCH_REDIS"])
app.conf.update(result_expires=3600)
double = app.task(name="double")(benchcalls.double)
