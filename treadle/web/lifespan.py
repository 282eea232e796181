"""What a server process does as it starts and stops: the primary process
mounts the endpoints left waiting and runs the jobs."""
from __future__ import annotations

import contextlib
import gc
import threading

from starlette.concurrency import run_in_threadpool


def _forward_wakes(jobs_wanted, runner) -> None:
    """Jobs queued through the other HTTP workers start as promptly as
    jobs queued here."""
    def forward():
        while True:
            jobs_wanted.wait()
            jobs_wanted.clear()
            runner.wake()
    threading.Thread(target=forward, name="treadle-job-wakes", daemon=True).start()


@contextlib.asynccontextmanager
async def lifespan(app):
    state = app.state
    if state.runner is not None:
        await run_in_threadpool(state.services.serving.mount_waiting)
        state.runner.start()
        if state.group is not None:
            _forward_wakes(state.group.jobs_wanted, state.runner)
    # Everything loaded so far (botocore's service model, SQLAlchemy,
    # numpy, mounted models) lives as long as the server; left in the
    # collector's oldest generation it made each full collection a
    # pause of about 100 ms, the worst Predict latencies under load.
    gc.freeze()
    try:
        yield
    finally:
        if state.runner is not None:
            state.runner.stop()
