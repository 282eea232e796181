"""Overlapping the stages of a job's streaming loop on threads.

A job reads chunks, transforms them and writes them, one chunk at a time.
Most of each stage runs in Arrow, numpy or numba code that releases the
GIL, so two threads keep both cores busy where the loop alone used one.
Both helpers hold a fixed number of chunks in flight, so memory stays
bounded whatever the data's size, and both keep the input order.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2, ahead: int = 3) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, at most ``ahead`` items
    being worked on or waiting to be taken; results in input order.
    (``Executor.map`` submits every item at once, so memory would grow with
    the input.)"""
    if workers <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="treadle-map")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` on a background thread, at most ``depth`` ahead of
    the consumer. An exception in the producer is raised in the consumer."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((_DONE, None))
        except BaseException as error:  # handed to the consumer, raised there
            slots.put((_DONE, error))

    thread = threading.Thread(target=produce, name="treadle-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get(timeout=0.1)  # unblock a producer waiting on a full queue
            except queue.Empty:
                pass
        thread.join()
