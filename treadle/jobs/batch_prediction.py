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
from ..data.records import RecordChunk, RejectionLog, TooManyRejections
from ..data.schema import parse_schema
from ..learning.model import DEFAULT_THRESHOLD
from .context import JobContext, JobFailed
from .datasource import read_datasource
from .outputs import claim_outputs

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
    manifest: dict[str, str] = {}
    rejected = _RejectedLines(limit=10000)
    _, records = read_datasource(ctx, datasource, require_target=False)
    records.rejections = rejected
    uris = {f.name: f.uri for f in locations.list_data_files(datasource.document["DataLocationS3"], allowed)}
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
                body = _csv_bytes(columns.table(chunk))
                last = int(chunk.line_numbers[-1])
                pending = rejected.lines.get(chunk.file_name, [])
                blanks = [n for n in pending if n < last]
                if blanks:
                    rejected.lines[chunk.file_name] = [n for n in pending if n >= last]
                    body = _lines_with_blanks(body, chunk.line_numbers, blanks)
                current[1].write(body)
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
