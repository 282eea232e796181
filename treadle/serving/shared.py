"""What the processes of one `treadle serve` share about real-time
endpoints: a change counter and each endpoint's request count in the
current second.

Several HTTP worker processes answer Predict from their own memory. A
change made through one of them (a new ScoreThreshold, a deleted endpoint)
bumps the counter, and every process re-reads a model's entity before its
next answer once the counter moved. PeakRequestsPerSecond is a limit per
endpoint, not per process, so the counts live here too.

Both sit in one small block of shared memory guarded by one process-shared
lock (multiprocessing's RawArray and Lock, inherited by the spawned
workers). Nothing in the standard library or our dependencies keeps a
keyed counter in shared memory, hence the small open-addressing table.
"""
from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import time

SLOTS = 4096  # endpoints that can be counted within the same second
PROBES = 16
_FIELDS = 3  # key, second, count


def endpoint_key(account: str, model_id: str) -> int:
    """A stable, non-zero 63-bit key (Python's hash() differs between
    processes)."""
    digest = hashlib.blake2b(f"{account}/{model_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 1) or 1


class SharedState:
    def __init__(self, context=None):
        context = context or multiprocessing.get_context("spawn")
        self._lock = context.Lock()
        # cell 0: the change counter; then SLOTS x (key, second, count).
        self._cells = context.RawArray(ctypes.c_int64, 1 + _FIELDS * SLOTS)

    # -- changes ---------------------------------------------------------------
    def generation(self) -> int:
        return self._cells[0]

    def changed(self) -> None:
        with self._lock:
            self._cells[0] += 1

    # -- per-endpoint rate ----------------------------------------------------
    def allow(self, key: int, limit: int) -> bool:
        """Count one request for the endpoint; False once `limit` were
        counted in this second, by any process."""
        # +1: a zeroed slot (second 0) never looks current.
        second = int(time.monotonic()) + 1
        cells = self._cells
        with self._lock:
            slot = self._slot(key, second)
            if slot < 0:
                # More endpoints busy this second than the table holds near
                # this key: serve rather than refuse a request we cannot count.
                return True
            if cells[slot + 2] >= limit:
                return False
            cells[slot + 2] += 1
            return True

    def _slot(self, key: int, second: int) -> int:
        """The key's slot for this second (claimed, with a zero count, if it
        had none); -1 when every probed slot is in use this second."""
        cells = self._cells
        start = key % SLOTS
        reusable = -1
        for probe in range(PROBES):
            slot = 1 + _FIELDS * ((start + probe) % SLOTS)
            if cells[slot] == key:
                if cells[slot + 1] != second:
                    cells[slot + 1], cells[slot + 2] = second, 0
                return slot
            if reusable < 0 and cells[slot + 1] != second:
                reusable = slot  # never used, or last used in an earlier second
        if reusable >= 0:
            cells[reusable], cells[reusable + 1], cells[reusable + 2] = key, second, 0
        return reusable
