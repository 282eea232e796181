"""A job's reading split into parts that run on a Dask cluster's workers
(docs/behaviour.md, "Cluster mode").

A datasource's files are cut into parts of about `Settings.part_bytes`: a
file per part, large files by byte range. A range owns the lines whose
first byte lies in it, so every line is read by exactly one part: a part
begins after the first line feed at or after the byte before its start
(offset 0 begins at once) and reads through the line holding its last
byte. Lines end at a line feed and values never hold one, quoted or not
(docs/behaviour.md, "CSV records"), so the cut points are found without
parsing. Each part knows where its bytes lie among the datasource's, which
is what the split selects records by, so every part selects exactly the
records the whole read would.

Each part returns its counts, its first rejections numbered from its own
first line, and what the job makes of its records (partial statistics,
scored output, metric inputs); `merge_reads` adds them up in part order, so
the counts, the first rejected lines and the 10,000-rejection limit come
out as one read of the whole datasource gives them.

The job learns it runs on a cluster from `JobContext.parts`, a `DaskParts`
that `dask_runner.run_on_worker` gives it; the local runner gives none, and
its jobs read in one piece as before.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..data import locations
from ..data.records import (DEFAULT_CHUNK_BYTES, MAX_REJECTIONS, SAMPLE_REJECTIONS, ByteSource, RecordChunk,
                            RecordReader, Rejection, RejectionLog, TooManyRejections)
from .context import JobFailed

DEFAULT_PART_BYTES = 64 << 20
CANCEL_CHECK_SECONDS = 1.0


class JobCancelled(JobFailed):
    """The job's object was deleted while its parts ran: the job stops and writes nothing more."""


class PartCancelled(Exception):
    """Raised in a part whose job's object was deleted."""


@dataclass(frozen=True)
class Part:
    index: int  # 0-based among the job's parts
    count: int
    file: locations.DataFile
    file_index: int
    base: int  # where the file's first byte lies among the datasource's bytes
    start: int
    end: int
    header: bool  # the file's first range: its first non-empty line may be the header

    @property
    def label(self) -> str:
        return f"part {self.index + 1} of {self.count}"

    def describe(self) -> str:
        return f"{self.file.name} bytes {self.start}-{self.end}"


def plan_parts(files: list[locations.DataFile], part_bytes: int = DEFAULT_PART_BYTES) -> list[Part]:
    """Every file in ranges of at most `part_bytes` (at least one per file, even empty)."""
    part_bytes = max(1, int(part_bytes))
    ranges = []
    base = 0
    for index, file in enumerate(files):
        pieces = max(1, -(-file.size // part_bytes))
        step = -(-file.size // pieces) if file.size else 0
        for k in range(pieces):
            ranges.append((file, index, base, min(k * step, file.size), min((k + 1) * step, file.size), k == 0))
        base += file.size
    return [Part(i, len(ranges), *r) for i, r in enumerate(ranges)]


def align(pieces: Iterable[bytes], start: int, end: int | None) -> tuple[int, Iterator[bytes]]:
    """The lines of a byte range: `pieces` are the file's bytes from
    max(start - 1, 0) on. Returns the offset of the range's first line and
    its bytes, from that line through the line holding byte `end - 1` (to
    the file's end when `end` is None)."""
    it = iter(pieces)
    position = max(start - 1, 0)  # offset of the next byte `it` gives
    head = b""
    if start > 0:
        for piece in it:
            cut = piece.find(b"\n")
            if cut >= 0:
                head = piece[cut + 1:]
                position += cut + 1
                break
            position += len(piece)
        else:
            return position, iter(())
    first = position
    if end is not None and first >= end:
        return first, iter(())  # no line begins in the range

    def lines() -> Iterator[bytes]:
        offset = first
        for piece in itertools.chain([head] if head else [], it):
            if end is None or offset + len(piece) < end:
                yield piece
                offset += len(piece)
                continue
            cut = piece.find(b"\n", max(end - 1 - offset, 0))
            if cut >= 0:
                yield piece[:cut + 1]
                return
            yield piece
            offset += len(piece)

    return first, lines()


def part_source(part: Part, allowed, header: bool | None = None, to_end: bool = False) -> ByteSource:
    """The records of `part` as a source the reader takes; `to_end`: through the file's end."""
    first, chunks = align(locations.read_from(part.file, allowed, max(part.start - 1, 0)), part.start,
                          None if to_end else part.end)
    return ByteSource(part.file.name, chunks, None, offset=part.base + first,
                      header=part.header if header is None else header)


# -- running in a part ----------------------------------------------------------------------

@dataclass
class PartTask:
    """What a part's task is given: the part and how to read it."""
    part: Part
    account: str
    kind: str | None  # the job's object, checked for deletion between chunks (None: not checked)
    entity_id: str
    schema: object  # DataSchema
    split: object  # Split
    total_size: int
    require_target: bool = False
    header: bool | None = None  # overrides part.header (a file whose first range held no header)
    extra: dict = field(default_factory=dict)  # what the job's own part function needs


def part_tasks(ctx, parts: list[Part], schema, split, require_target: bool = False, **extra) -> list[PartTask]:
    """A task per part of the datasource `parts` cover, for `ctx`'s job,
    whose object each part checks for deletion."""
    total = sum({p.file_index: p.file.size for p in parts}.values())
    return [PartTask(part, ctx.account, ctx.entity.kind, ctx.entity.entity_id, schema, split, total,
                     require_target=require_target, extra=extra) for part in parts]


@dataclass
class PartRead:
    """A part's counts and what the job made of its records (`payload`)."""
    index: int
    where: str
    seconds: float
    records_read: int
    selected: int
    accepted: int
    rejected: int
    samples: list[Rejection]  # lines numbered from the part's first line
    lines: int
    header_left: bool
    warnings: list[str]
    over_limit: bool
    payload: object = None


def where_am_i() -> str:
    try:
        from distributed import get_worker

        worker = get_worker()
        return f"Dask worker {worker.name} ({worker.address})"
    except (ImportError, ValueError):
        return "this process"


class _Cancellation:
    """Whether the job's object was deleted, asked at most once a second."""

    def __init__(self, settings, task: PartTask):
        self.settings = settings
        self.task = task
        self.checked = time.monotonic()

    def __call__(self) -> None:
        if self.task.kind is None or time.monotonic() - self.checked < CANCEL_CHECK_SECONDS:
            return
        from .worker import stores_for

        self.entities = stores_for(self.settings)[0]
        self.checked = time.monotonic()
        entity = self.entities.get(self.task.account, self.task.kind, self.task.entity_id)
        if entity is None or entity.status == "DELETED":
            raise PartCancelled(f"{self.task.kind} {self.task.entity_id} was deleted")


def read_part(settings, task: PartTask, on_chunk: Callable[[RecordChunk], None],
              rejections: RejectionLog | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> PartRead:
    """Read `task.part`, handing each chunk of accepted records to `on_chunk`.
    A part past the rejection limit stops and says so; the job fails when
    the merged count is past it (`merge_reads`)."""
    started = time.monotonic()
    check = _Cancellation(settings, task)
    source = part_source(task.part, settings.confinement, task.header)
    reader = RecordReader([source], task.schema, task.split, total_size=task.total_size,
                          require_target=task.require_target, chunk_bytes=chunk_bytes)
    if rejections is not None:
        reader.rejections = rejections
    over = False
    try:
        for chunk in reader:
            on_chunk(chunk)
            check()
    except TooManyRejections:
        over = True
    return PartRead(task.part.index, where_am_i(), time.monotonic() - started, reader.records_read,
                    reader.selected, reader.accepted, reader.rejections.count, list(reader.rejections.samples),
                    reader.lines[0] if reader.lines else 0,
                    reader.header_left[0] if reader.header_left else False, list(reader.warnings), over)


# -- the job's side --------------------------------------------------------------------------

@dataclass
class Merged:
    records_read: int = 0
    selected: int = 0
    accepted: int = 0
    rejected: int = 0
    samples: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def merge_reads(parts: list[Part], reads: list[PartRead], limit: int = MAX_REJECTIONS) -> Merged:
    """The parts' counts added up in part order, their first rejections
    renumbered by the lines of the file's earlier parts. Raises
    `TooManyRejections` when more than `limit` records were rejected in
    all, with the first rejected lines of the whole read."""
    merged = Merged()
    lines_before: dict[int, int] = {}
    over_at = None
    for part, read in zip(parts, reads):
        before = lines_before.get(part.file_index, 0)
        lines_before[part.file_index] = before + read.lines
        for sample in read.samples:
            if len(merged.samples) < SAMPLE_REJECTIONS:
                merged.samples.append(dataclasses.replace(sample, line=sample.line + before))
        merged.records_read += read.records_read
        merged.selected += read.selected
        merged.accepted += read.accepted
        merged.rejected += read.rejected
        merged.warnings += read.warnings
        if over_at is None and (read.over_limit or merged.rejected > limit):
            over_at = (merged.rejected, merged.records_read)
    if over_at is not None:
        # The counts "so far" are those of the parts up to the one that
        # crossed the limit: each part reads on its own.
        log = RejectionLog(limit=limit, count=over_at[0], samples=merged.samples, records_seen=over_at[1])
        raise TooManyRejections(log.message(), over_at[0], merged.samples)
    return merged


def log_parts(ctx, parts: list[Part], reads: list[PartRead]) -> None:
    for part, read in zip(parts, reads):
        ctx.log(f"{part.label} ({part.describe()}) ran on {read.where} in {read.seconds:.2f} s: "
                f"{read.records_read} records read, {read.accepted} accepted, {read.rejected} rejected")


def stop_if_deleted(ctx) -> None:
    """Before a job writes what its parts made: nothing is written for a deleted object."""
    if ctx.cancelled(now=True):
        raise JobCancelled(f"{ctx.entity.kind} {ctx.entity.entity_id} was deleted while its job ran: "
                           "the job stopped" + (" and its cluster work was cancelled" if ctx.parts else ""))


def run_parts(ctx, parts: list[Part], function, tasks: list[PartTask]) -> Iterator[PartRead]:
    """Each part's `function(settings, task)` on the cluster, results in part
    order as they come. A first range that held only blank lines leaves the
    header to the next range of its file, which is read again expecting it."""
    previous: PartRead | None = None
    for part, read in zip(parts, ctx.parts.map(ctx, function, tasks)):
        if previous is not None and previous.header_left and not part.header and \
                parts[previous.index].file_index == part.file_index:
            retry = dataclasses.replace(tasks[part.index], header=True)
            read = function(ctx.settings, retry)
        previous = read
        yield read


class DaskParts:
    """Runs a job's parts as tasks of the Dask cluster the job itself runs on.

    The job's own task secedes from its worker's thread pool while it waits
    (`worker_client`), so a one-thread worker runs parts too. Task keys name
    the job and the part (`treadle-DataSource-ds-1-part-3-of-8-attempt1`),
    which is what the Dask dashboard shows.
    """

    def __init__(self, kind: str, entity_id: str, attempt: int):
        self.prefix = f"treadle-{kind}-{entity_id}"
        self.attempt = attempt

    def slots(self) -> list[str]:
        """The cluster's worker threads, one entry each (its worker's
        address), the workers in turn."""
        from distributed import get_client

        threads = get_client().nthreads()
        return [address for round_ in range(max(threads.values(), default=0))
                for address, n in sorted(threads.items()) if n > round_]

    def client(self):
        """A client for the job's task that gives up its worker thread while it waits."""
        from distributed import worker_client

        return worker_client()

    def map(self, ctx, function, tasks: list[PartTask]) -> Iterator:
        from distributed import worker_client

        with worker_client() as client:
            futures = [client.submit(function, ctx.settings, task, pure=False,
                                     key=f"{self.prefix}-part-{task.part.index + 1}-of-{task.part.count}"
                                         f"-attempt{self.attempt}")
                       for task in tasks]
            try:
                for future in futures:
                    while not future.done():
                        failed = next((f for f in futures if f.status == "error"), None)
                        if failed is not None:
                            future = failed
                            break
                        if ctx.cancelled():
                            stop_if_deleted(ctx)
                        time.sleep(0.05)
                    try:
                        result = future.result()
                    except PartCancelled as error:
                        raise JobCancelled(f"{error} while its job ran: its cluster work was cancelled")
                    future.release()
                    yield result
            finally:
                client.cancel([f for f in futures if not f.done()])
