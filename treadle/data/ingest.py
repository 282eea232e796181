"""One call that reads a datasource's files and summarises them.

The server's datasource job calls `ingest`; training and batch prediction can
pass `on_chunk` to consume the same selected, typed record chunks.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from treadle.data.rearrangement import Split
from treadle.data.records import (DEFAULT_CHUNK_BYTES, MAX_REJECTIONS, ByteSource, RecordChunk, RecordReader,
                                  TooManyRejections)
from treadle.data.schema import DataSchema
from treadle.data.statistics import StatisticsBuilder

__all__ = ["IngestResult", "ParallelStatistics", "ingest", "TooManyRejections", "default_workers"]


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


# Rough cost of one attribute's statistics in nanoseconds per record and per
# byte of its values, from profiles of bench/ingest.py's data; only their
# ratios matter.
_COST_PER_RECORD = {"TEXT": 40, "CATEGORICAL": 110, "NUMERIC": 170, "BINARY": 40}
_COST_PER_BYTE = {"TEXT": 5, "CATEGORICAL": 1, "NUMERIC": 0, "BINARY": 0}
# Workers split the attributes only when none gets more than this many times
# an equal share of the cost; otherwise they split the chunks.
_BALANCE = 1.25


def _attribute_groups(chunk: RecordChunk, schema: DataSchema, workers: int) -> list[frozenset[str]] | None:
    """Attributes in `workers` groups of about equal cost, or None when that cannot be even."""
    costs = {}
    for name, kind in schema.attributes:
        starts, ends, _, _ = chunk.spans(name)
        costs[name] = _COST_PER_RECORD[kind] * len(starts) + _COST_PER_BYTE[kind] * int((ends - starts).sum())
    loads = [0] * workers
    groups: list[set[str]] = [set() for _ in range(workers)]
    for name in sorted(costs, key=costs.get, reverse=True):  # largest first, each to the lightest group
        k = loads.index(min(loads))
        groups[k].add(name)
        loads[k] += costs[name]
    if max(loads) > _BALANCE * sum(loads) / workers:
        return None
    return [frozenset(g) for g in groups if g]


class ParallelStatistics:
    """Statistics updated by worker threads, merged at the end.

    Numba kernels, Arrow and numpy release the GIL for most of an update, so
    workers overlap with each other and with the reader. When the attributes
    split evenly (`_attribute_groups`), each worker keeps the statistics of
    its attributes over every chunk: no table exists twice, which spares the
    CPU caches and the merge. Otherwise each worker takes every
    `workers`-th chunk for all attributes. At most `2 * workers` chunks wait
    at any time, which keeps memory bounded.
    """

    def __init__(self, schema: DataSchema, workers: int, layout: dict | None = None):
        """`layout`: the numeric bin layout to share, when another read's
        first chunk fixed it (a part of a job on a cluster)."""
        self.schema = schema
        self.first = StatisticsBuilder(schema, layout)
        self.workers = workers
        self.builders: list[StatisticsBuilder] = []
        self.by_attribute = False
        self.pools: list[ThreadPoolExecutor] = []
        self.pending: deque[list[Future]] = deque()
        self.count = 0

    def update(self, chunk: RecordChunk) -> None:
        if self.count == 0 or self.workers <= 1:
            # The first chunk fixes the numeric bin layout every fork shares.
            self.first.update(chunk)
            self.count += 1
            return
        if not self.pools:
            self._start(chunk)
        slot = self.count % len(self.builders)
        self.count += 1
        if self.by_attribute:
            # A pool of one thread per builder keeps each builder's chunks in order.
            futures = [pool.submit(builder.update, chunk) for pool, builder in zip(self.pools, self.builders)]
        else:
            futures = [self.pools[slot].submit(self.builders[slot].update, chunk)]
        self.pending.append(futures)
        while len(self.pending) > 2 * self.workers:
            for future in self.pending.popleft():
                future.result()

    def _start(self, chunk: RecordChunk) -> None:
        groups = _attribute_groups(chunk, self.schema, self.workers)
        self.by_attribute = groups is not None
        self.builders = ([self.first.fork(group) for group in groups] if groups is not None
                         else [self.first.fork() for _ in range(self.workers)])
        self.pools = [ThreadPoolExecutor(1, thread_name_prefix="treadle-stats") for _ in self.builders]

    def finish(self) -> StatisticsBuilder:
        try:
            while self.pending:
                for future in self.pending.popleft():
                    future.result()
        finally:
            self.close()
        if self.by_attribute:
            joined = self.builders[0]
            for builder in self.builders[1:]:
                joined.join(builder)
            self.first.merge(joined)
        else:
            for builder in self.builders:
                self.first.merge(builder)
        return self.first

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self.pools = []


def default_workers() -> int:
    """Statistics threads: the cores this process may run on (a container's
    or a pinned process's share, not the machine's), at most four."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # platforms without CPU affinity
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


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
    or invalid (docs/behaviour.md, "CSV records": for training and evaluation).
    """
    reader = RecordReader(sources, schema, split, total_size=total_size, require_target=require_target,
                          chunk_bytes=chunk_bytes, max_rejections=max_rejections)
    stats = None
    if compute_statistics:
        stats = ParallelStatistics(schema, workers if workers is not None else default_workers())
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
