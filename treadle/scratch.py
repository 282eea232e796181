"""The scratch space: the folder in the data dir (Settings.scratch_dir) where
jobs keep their temporary files. A job removes its own when it ends; what a
killed job left is removed when the server next starts, before any job runs.

The server holds a lock on the data dir while it runs, so a second server
started on the same data dir by mistake cannot sweep away the files of the
first one's running jobs. (Servers sharing one PostgreSQL database each have
their own data dir, and all the HTTP workers of one server share its.)
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil

from .config import Settings

log = logging.getLogger("treadle.scratch")


@contextlib.contextmanager
def owned(settings: Settings):
    """Held for as long as the server runs: sweeps the scratch space first
    unless another server holds the data dir's lock."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "scratch.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another server is using the data dir %s: its scratch space is left as it is",
                        settings.data_dir)
        else:
            sweep(settings)
        # The lock goes with the file's closing, or with the process.
        yield


def sweep(settings: Settings) -> None:
    root = settings.scratch_dir
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        # The folder itself stays: it may be a mount point.
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
