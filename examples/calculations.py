"""Functions the pool "calc" serves (examples/mprocd.conf):

    [pool calc]
    program = python3 -m mprocd.worker calculations
"""

import time


def doComplexCalculation(x):
    return x + 9


def slow_square(x):
    """x * x, after a pause, for producer.py and consumer.py."""
    time.sleep(0.2)
    return x * x
