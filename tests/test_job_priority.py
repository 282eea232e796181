"""Job workers run below the HTTP workers: SCHED_IDLE on Linux, from the
moment they are spawned, in every thread they start."""
import os
import sys
import threading

import pytest

from treadle.jobs.runner import job_executor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")


def policies() -> tuple[int, int]:
    """The calling thread's policy and a new thread's (Linux keeps one per thread)."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
    thread.start()
    thread.join()
    return os.sched_getscheduler(0), seen[0]


def test_job_workers_and_their_threads_run_under_sched_idle():
    with job_executor(2) as executor:
        results = [executor.submit(policies) for _ in range(4)]
        assert {f.result(timeout=60) for f in results} == {(os.SCHED_IDLE, os.SCHED_IDLE)}
        for process in executor._processes.values():
            for tid in os.listdir(f"/proc/{process.pid}/task"):
                assert os.sched_getscheduler(int(tid)) == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the server itself is left alone
