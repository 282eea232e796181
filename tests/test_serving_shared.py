"""The state real-time serving shares between HTTP worker processes."""
import multiprocessing
import time

from treadle.serving import shared as shared_module
from treadle.serving.shared import SharedState, endpoint_key


def _count_allowed(state, key, limit, start, calls, results):
    start.wait()
    results.put(sum(state.allow(key, limit) for _ in range(calls)))


def _at_start_of_a_second():
    while time.monotonic() % 1.0 > 0.2:
        time.sleep(0.01)


def test_counts_are_shared_by_spawned_processes():
    context = multiprocessing.get_context("spawn")
    state = SharedState(context)
    key = endpoint_key("111111111111", "ml-a")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_count_allowed, args=(state, key, 50, start, 100, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # the workers are up, waiting
    _at_start_of_a_second()
    began = time.monotonic()
    start.set()
    allowed = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    if int(time.monotonic()) == int(began):
        assert sum(allowed) == 50  # 300 tries in one second, limit 50, over 3 processes
    else:
        assert 50 <= sum(allowed) <= 100  # the burst crossed into the next second


def test_generation_moves_for_every_process():
    context = multiprocessing.get_context("spawn")
    state = SharedState(context)
    before = state.generation()
    process = context.Process(target=state.changed)
    process.start()
    process.join(timeout=30)
    assert state.generation() == before + 1


def test_limit_per_endpoint_and_per_second():
    state = SharedState()
    a, b = endpoint_key("111111111111", "ml-a"), endpoint_key("111111111111", "ml-b")
    _at_start_of_a_second()
    assert [state.allow(a, 3) for _ in range(5)] == [True, True, True, False, False]
    assert [state.allow(b, 2) for _ in range(3)] == [True, True, False]  # its own count
    time.sleep(1.05 - time.monotonic() % 1.0)
    assert state.allow(a, 3)  # a new second


def test_colliding_keys_keep_separate_counts(monkeypatch):
    monkeypatch.setattr(shared_module, "SLOTS", 8)
    monkeypatch.setattr(shared_module, "PROBES", 4)
    state = SharedState()
    keys = [8 * i + 3 for i in range(1, 5)]  # all start probing at slot 3
    _at_start_of_a_second()
    for key in keys:
        assert [state.allow(key, 2) for _ in range(3)] == [True, True, False]
    # A fifth key finds every probed slot counting this second: it is served
    # (not refused) rather than merged into another endpoint's count.
    assert all(state.allow(8 * 9 + 3, 1) for _ in range(3))
    assert not state.allow(keys[0], 2)


def test_endpoint_keys_are_stable_and_distinct():
    assert endpoint_key("1", "a") == endpoint_key("1", "a") > 0
    assert len({endpoint_key("111111111111", f"ml-{i}") for i in range(10000)}) == 10000
