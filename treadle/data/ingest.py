"""One call that reads a datasource's files and summarises them.

The server's datasource job calls `ingest`; training and batch prediction can
pass `on_chunk` to consume the same selected, typed record chunks.
"""
from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from treadle.data.rearrangement import Split
from treadle.data.records import (DEFAULT_CHUNK_BYTES, MAX_REJECTIONS, ByteSource, RecordChunk, RecordReader,
                                  TooManyRejections)
from treadle.data.schema import DataSchema
from treadle.data.statistics import StatisticsBuilder

__all__ = ["IngestResult", "ingest", "TooManyRejections"]


@dataclass
class IngestResult:
    records: int  # accepted records (selected by the split, not rejected)
    records_read: int  # non-empty, non-header lines in the files
    selected: int  # records the split selected, before rejections
    rejected: int
    data_size_in_bytes: int
    number_of_files: int
    statistics: dict | None
    warnings: list[str] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)  # first 10: file, line, reason


class _ParallelStatistics:
    """Statistics updated by worker threads, one builder per worker, merged at the end.

    Arrow and numpy release the GIL for most of an update, so two or more
    threads overlap with each other and with the reader. At most `2 * workers`
    chunks wait at any time, which keeps memory bounded.
    """

    def __init__(self, schema: DataSchema, workers: int):
        self.first = StatisticsBuilder(schema)
        self.workers = workers
        self.builders: list[StatisticsBuilder] = []
        self.locks: list[threading.Lock] = []
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque[Future] = deque()
        self.count = 0

    def update(self, chunk: RecordChunk) -> None:
        if self.count == 0 or self.workers <= 1:
            # The first chunk fixes the numeric bin layout every fork shares.
            self.first.update(chunk)
            self.count += 1
            return
        if self.pool is None:
            self.builders = [self.first.fork() for _ in range(self.workers)]
            self.locks = [threading.Lock() for _ in range(self.workers)]
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="treadle-stats")
        slot = self.count % self.workers
        self.count += 1
        self.pending.append(self.pool.submit(self._run, slot, chunk))
        while len(self.pending) > 2 * self.workers:
            self.pending.popleft().result()

    def _run(self, slot: int, chunk: RecordChunk) -> None:
        with self.locks[slot]:
            self.builders[slot].update(chunk)

    def finish(self) -> StatisticsBuilder:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.close()
        for builder in self.builders:
            self.first.merge(builder)
        return self.first

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def ingest(
    sources: Iterable[ByteSource],
    schema: DataSchema,
    split: Split | None = None,
    compute_statistics: bool = True,
    *,
    on_chunk: Callable[[RecordChunk], None] | None = None,
    require_target: bool = False,
    total_size: int | None = None,
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_rejections: int = MAX_REJECTIONS,
) -> IngestResult:
    """Read every source once, in order; raises `TooManyRejections` past the limit.

    `on_chunk` receives each chunk of accepted records, in file order, on the
    calling thread. `require_target` rejects records whose target is missing
    or invalid (Decision 6: for training and evaluation datasources).
    """
    reader = RecordReader(sources, schema, split, total_size=total_size, require_target=require_target,
                          chunk_bytes=chunk_bytes, max_rejections=max_rejections)
    stats = None
    if compute_statistics:
        stats = _ParallelStatistics(schema, workers if workers is not None else min(4, os.cpu_count() or 1))
    try:
        for chunk in reader:
            if stats is not None:
                stats.update(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
        statistics = None
        if stats is not None:
            statistics = stats.finish().result()
            statistics["records_processed"] = reader.selected
            statistics["records_rejected"] = reader.rejections.count
    finally:
        if stats is not None:
            stats.close()
    return IngestResult(
        records=reader.accepted,
        records_read=reader.records_read,
        selected=reader.selected,
        rejected=reader.rejections.count,
        data_size_in_bytes=reader.bytes_read,
        number_of_files=reader.files,
        statistics=statistics,
        warnings=list(reader.warnings),
        rejections=[{"file": r.file, "line": r.line, "reason": r.reason} for r in reader.rejections.samples],
    )
