"""Recognising a full disk, whichever layer reports it: a file write's
OSError (ENOSPC, or EDQUOT for a quota), SQLite's SQLITE_FULL, PostgreSQL's
disk_full. The error may be wrapped (SQLAlchemy wraps the driver's) or be
the cause of the one raised."""
from __future__ import annotations

import errno
import os

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_SQLITE_FULL = 13
_POSTGRES_DISK_FULL = "53100"


def _chain(error: BaseException):
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _full_errno(error: BaseException) -> int | None:
    if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
        return error.errno
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == _SQLITE_FULL:
        return errno.ENOSPC
    if getattr(error, "sqlstate", None) == _POSTGRES_DISK_FULL:
        return errno.ENOSPC
    return None


def full_disk(error: BaseException) -> str | None:
    """What the system said ("No space left on device", "Disk quota
    exceeded") when `error` comes from a full disk, else None."""
    for current in _chain(error):
        number = _full_errno(current)
        if number is not None:
            return os.strerror(number)
    return None
