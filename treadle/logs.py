"""Structured logging: one JSON object per line on stderr."""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time


_installed: logging.StreamHandler | None = None  # the handler configure() installed


class JsonFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def __init__(self):
        super().__init__()
        # Which HTTP worker (or job runner) wrote the line, when several
        # processes share the stream; made once, with the handler.
        self._pid = os.getpid()

    def timestamp(self, created: float, msecs: float) -> str:
        # One line per API request: the date part is formatted once a second.
        second = int(created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": self._pid,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    global _installed
    handler = _installed = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate our per-request line, and
    # Alembic's start-up lines (its dialect, "non-transactional DDL") say
    # nothing an operator can act on.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # The lines carry none of the caller's file and line, thread, process
    # or multiprocessing names; not collecting them (logging's documented
    # switches) spares a stack walk and three look-ups per request line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def event(logger: logging.Logger, message: str, **fields) -> None:
    logger.info(message, extra={"fields": fields})


def _json(value) -> str:
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)  # what json.dumps writes for them
    if kind is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
    return json.dumps(value, default=str)


class RequestLog:
    """The one line each API request writes, as `event` would write it.

    At thousands of Predicts a second, logging's per-record work (a
    LogRecord, the formatter's dict and json.dumps, the handler chain) cost
    a tenth of a request. Where configure()'s handler is the only one, the
    line is built from its fields directly and written to that handler's
    stream; anywhere else (tests capturing logs, an embedding application's
    own handlers) it goes through logging as usual.
    """

    def __init__(self, logger: logging.Logger, message: str, fields: tuple[str, ...]):
        self.logger = logger
        self.message = message
        self.fields = fields
        self._prefix = f'", "level": "info", "logger": {_json(logger.name)}, "pid": {os.getpid()}, ' \
                       f'"message": {_json(message)}'
        self._keys = [f", {_json(name)}: " for name in fields]

    def __call__(self, *values) -> None:
        handler = _installed
        logger = self.logger
        if (handler is None or logger.handlers or logger.filters or logging.root.handlers != [handler]
                or not logger.isEnabledFor(logging.INFO)):
            event(logger, self.message, **dict(zip(self.fields, values)))
            return
        created = time.time()
        parts = ['{"time": "', handler.formatter.timestamp(created, (created - int(created)) * 1000), self._prefix]
        for key, value in zip(self._keys, values):
            parts.append(key)
            parts.append(_json(value))
        parts.append("}\n")
        line = "".join(parts)
        with handler.lock:
            try:
                handler.stream.write(line)
                handler.stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: the request still succeeds
                pass
