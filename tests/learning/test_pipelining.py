"""The job loop's thread helpers: order kept, bounded look-ahead, errors
surface in the consumer, early exit stops the producer."""
import threading
import time

import pytest

from treadle.jobs.pipelining import ordered_map, prefetch


def test_ordered_map_keeps_order_and_bounds_the_work_in_flight():
    started, lock = [], threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        time.sleep(0.001 * (i % 3))  # finish out of order
        return i * i

    consumed = 0
    for i, value in enumerate(ordered_map(work, range(50), workers=2, ahead=3)):
        assert value == i * i
        consumed += 1
        with lock:
            assert len(started) <= consumed + 3  # never more than `ahead` beyond what was taken
    assert consumed == 50


def test_ordered_map_raises_the_workers_error():
    def work(i):
        if i == 5:
            raise ValueError("chunk 5 is bad")
        return i

    with pytest.raises(ValueError, match="chunk 5"):
        list(ordered_map(work, range(20), workers=2))


def test_prefetch_yields_everything_and_reraises():
    assert list(prefetch(iter(range(1000)), depth=2)) == list(range(1000))

    def broken():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1]


def test_prefetch_stops_its_producer_when_the_consumer_leaves():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for item in prefetch(endless(), depth=2):
        if item == 10:
            break
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 10 + 4  # stopped, and never far ahead
    assert not any(t.name == "treadle-prefetch" for t in threading.enumerate())
