"""The BatchPrediction job: score every record of the datasource and write
Amazon ML's output layout (docs/behaviour.md, "Batch prediction output"): one gzip CSV per input file
under <OutputUri>batch-prediction/result/, then the manifest. Each file is
published whole (temp file, then upload or rename), the manifest last,
after every one of them is claimed for this batch prediction."""
from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..data import locations
from ..data.rearrangement import parse_rearrangement
from ..data.records import RecordChunk, RejectionLog, TooManyRejections
from ..data.schema import parse_schema
from ..learning.model import DEFAULT_THRESHOLD
from .context import JobContext, JobFailed
from .datasource import read_datasource
from .outputs import claim_outputs
from .parts import (
    Part, PartRead, PartTask, log_parts, merge_reads, part_tasks, plan_parts, read_part, run_parts, stop_if_deleted)

# Amazon ML's files quote nothing that needs no quoting; Arrow writes those
# fast. A chunk with a tag or label that needs quotes goes through `csv`.
_WRITE = pa_csv.WriteOptions(include_header=False, quoting_style="none")


class _RejectedLines(RejectionLog):
    """Keeps the line numbers of rejected records per file: each becomes a
    blank line in the output, so output lines match input records."""

    def __init__(self, limit: int):
        super().__init__(limit=limit)
        self.lines: dict[str, list[int]] = {}

    def add(self, file, lines, reasons) -> None:
        lines = [int(x) for x in lines]
        self.lines.setdefault(file, []).extend(lines)
        super().add(file, lines, reasons)


class _ResultFile:
    def __init__(self, directory: str, name: str, header: list[str]):
        self.path = os.path.join(directory, name)
        self.handle = gzip.open(self.path, "wb", compresslevel=5)
        self.handle.write((",".join(_quote(h) for h in header) + "\n").encode())

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def close(self) -> None:
        self.handle.close()


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text


class _Columns:
    """The output columns of one chunk, as Arrow strings."""

    def __init__(self, model, schema, threshold: float):
        self.model = model
        self.pipeline = model.fitted_pipeline
        self.schema = schema
        self.threshold = threshold
        self.tag = schema.row_id
        self.true_label = schema.target
        self.header = model.output_header(bool(self.tag), bool(self.true_label))

    def table(self, chunk: RecordChunk) -> pa.Table:
        columns = []
        if self.tag:
            columns.append(chunk.column(self.tag))
        if self.true_label:
            columns.append(self.model.type.true_labels(chunk, self.true_label, self.schema.type_of(self.true_label)))
        answers, scores = self.model.predict_batch(self.pipeline.transform(chunk.table), self.threshold)
        columns += self.model.type.output_columns(answers, scores)
        return pa.table(columns, names=[f"c{i}" for i in range(len(columns))])


def _csv_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    try:
        pa_csv.write_csv(table, buffer, _WRITE)
        return buffer.getvalue()
    except pa.ArrowInvalid:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(zip(*(c.to_pylist() for c in table.columns)))
        return text.getvalue().encode()


def _lines_with_blanks(body: bytes, line_numbers: np.ndarray, blanks: list[int]) -> bytes:
    """Insert one empty line per rejected record, in input-line order."""
    rows = body.split(b"\n")[:-1]
    merged = sorted([(int(n), row) for n, row in zip(line_numbers, rows)] + [(n, b"") for n in blanks])
    return b"".join(row + b"\n" for _, row in merged)


def _chunk_lines(columns: _Columns, chunk: RecordChunk, rejected: _RejectedLines) -> bytes:
    """A chunk's output lines, with a blank line for each rejected record before its last."""
    body = _csv_bytes(columns.table(chunk))
    last = int(chunk.line_numbers[-1])
    pending = rejected.lines.get(chunk.file_name, [])
    blanks = [n for n in pending if n < last]
    if blanks:
        rejected.lines[chunk.file_name] = [n for n in pending if n >= last]
        body = _lines_with_blanks(body, chunk.line_numbers, blanks)
    return body


def output_base(output_uri: str) -> str:
    return locations.join(output_uri, "batch-prediction/")


def manifest_location(output_uri: str, prediction_id: str) -> str:
    return locations.join(output_base(output_uri), f"{prediction_id}.manifest")


def result_prefix(output_uri: str, prediction_id: str) -> str:
    """What every result file's location starts with; the input file's name
    and ".gz" follow."""
    return locations.join(output_base(output_uri), f"result/{prediction_id}-")


def run(ctx: JobContext) -> dict:
    doc = ctx.document
    model_entity = ctx.input("MLModel", doc["MLModelId"])
    datasource = ctx.input("DataSource", doc["BatchPredictionDataSourceId"])
    model = ctx.model(model_entity)
    schema = parse_schema(datasource.document["_schema"])
    train_schema = parse_schema(model_entity.document["_schema_used"])
    if schema.target is not None and schema.target != train_schema.target:
        schema = dataclasses.replace(schema, target=None)
    threshold = float(model_entity.document.get("ScoreThreshold", DEFAULT_THRESHOLD))
    columns = _Columns(model, schema, threshold)
    allowed = ctx.settings.confinement
    files = locations.list_data_files(datasource.document["DataLocationS3"], allowed)
    parts = plan_parts(files, ctx.settings.part_bytes) if ctx.parts is not None else []
    if len(parts) > 1:
        return _run_in_parts(ctx, parts, datasource, model_entity, schema, columns, threshold)
    manifest: dict[str, str] = {}
    rejected = _RejectedLines(limit=10000)
    _, records = read_datasource(ctx, datasource, require_target=False)
    records.rejections = rejected
    uris = {f.name: f.uri for f in files}
    # One result per file the reader reads.
    prefix = result_prefix(doc["OutputUri"], doc["BatchPredictionId"])
    targets = {source.name: f"{prefix}{source.name}.gz" for source in records.sources}
    manifest_uri = manifest_location(doc["OutputUri"], doc["BatchPredictionId"])
    claim_outputs(ctx, [*targets.values(), manifest_uri], "OutputUri")
    with ctx.scratch("batch-") as scratch:
        current: tuple[str, _ResultFile] | None = None
        finished: set[str] = set()

        def finish(name: str, result: _ResultFile) -> None:
            leftover = sorted(rejected.lines.pop(name, []))
            result.write(b"\n" * len(leftover))
            result.close()
            locations.write_file(result.path, targets[name], allowed)
            manifest[uris.get(name, name)] = targets[name]
            finished.add(name)

        try:
            for chunk in records:
                if current is None or current[0] != chunk.file_name:
                    if current is not None:
                        finish(*current)
                    current = (chunk.file_name, _ResultFile(scratch, f"{chunk.file_name}.gz", columns.header))
                current[1].write(_chunk_lines(columns, chunk, rejected))
            if current is not None:
                finish(*current)
            # Files with no accepted record still get a result (all blank lines).
            for name in targets:
                if name not in finished:
                    finish(name, _ResultFile(scratch, f"{name}.empty.gz", columns.header))
        except TooManyRejections as error:
            raise JobFailed(error.message)
        locations.write_bytes(json.dumps(manifest).encode(), manifest_uri, allowed)
    ctx.log(f"scored {records.accepted} records, {rejected.count} invalid; manifest {manifest_uri}")
    return {"TotalRecordCount": records.selected, "InvalidRecordCount": rejected.count}


# -- on a cluster: scored in parts (docs/behaviour.md, "Cluster mode") -----------------------

_MODELS: dict[tuple, object] = {}


def part_model(settings, entity):
    """The trained model a part scores with, loaded once per worker process
    (a model's artifact never changes once trained)."""
    key = (entity.account, entity.entity_id, entity.document.get("_model"), entity.document.get("_model_sha256"))
    if key not in _MODELS:
        from ..store.models import load_model
        from .worker import stores_for

        while len(_MODELS) >= 2:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = load_model(stores_for(settings)[1], entity)
    return _MODELS[key]


def score_part(settings, task: PartTask) -> PartRead:
    """One part's output lines, gzipped: a gzip member of its own, which the
    job appends to its file's result after the earlier parts' members."""
    model = part_model(settings, task.extra["model"])
    columns = _Columns(model, task.schema, task.extra["threshold"])
    rejected = _RejectedLines(limit=10000)
    buffer = io.BytesIO()
    out = gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=5, mtime=0)
    read = read_part(settings, task, lambda chunk: out.write(_chunk_lines(columns, chunk, rejected)), rejected)
    out.write(b"\n" * len(rejected.lines.pop(task.part.file.name, [])))
    out.close()
    read.payload = buffer.getvalue()
    return read


def _run_in_parts(ctx: JobContext, parts: list[Part], datasource, model_entity, schema, columns: _Columns,
                  threshold: float) -> dict:
    doc = ctx.document
    allowed = ctx.settings.confinement
    split = parse_rearrangement(datasource.document.get("DataRearrangement"))
    prefix = result_prefix(doc["OutputUri"], doc["BatchPredictionId"])
    files = list({p.file_index: p.file for p in parts}.values())
    targets = {f.name: f"{prefix}{f.name}.gz" for f in files}
    manifest_uri = manifest_location(doc["OutputUri"], doc["BatchPredictionId"])
    claim_outputs(ctx, [*targets.values(), manifest_uri], "OutputUri")
    tasks = part_tasks(ctx, parts, schema, split, model=model_entity, threshold=threshold)
    ctx.log(f"scoring in {len(parts)} parts on the Dask cluster")
    manifest: dict[str, str] = {}
    reads = []
    with ctx.scratch("batch-") as scratch:
        result = None
        for part, read in zip(parts, run_parts(ctx, parts, score_part, tasks)):
            if part.header:
                # The header as a gzip member, then each part's member in order:
                # one gzip file whose lines are the one-process output's.
                result = open(os.path.join(scratch, f"{part.file.name}.gz"), "wb")
                result.write(gzip.compress((",".join(_quote(h) for h in columns.header) + "\n").encode(), 5, mtime=0))
            stop_if_deleted(ctx)
            result.write(read.payload)
            read.payload = None
            reads.append(read)
            if part.index + 1 == len(parts) or parts[part.index + 1].header:
                result.close()
                locations.write_file(result.name, targets[part.file.name], allowed)
                manifest[part.file.uri] = targets[part.file.name]
        log_parts(ctx, parts, reads)
        try:
            merged = merge_reads(parts, reads, limit=10000)
        except TooManyRejections as error:
            raise JobFailed(error.message)
        stop_if_deleted(ctx)
        locations.write_bytes(json.dumps(manifest).encode(), manifest_uri, allowed)
    ctx.log(f"scored {merged.accepted} records, {merged.rejected} invalid; manifest {manifest_uri}")
    return {"TotalRecordCount": merged.selected, "InvalidRecordCount": merged.rejected}
