"""The datasource job: stage SQL results if needed, resolve the schema, read
every record once with the split applied, and keep the statistics."""
from __future__ import annotations

import json
import os

from ..data import locations
from ..data.ingest import IngestResult, ParallelStatistics, default_workers, ingest
from ..data.locations import LocationError
from ..data.rearrangement import RearrangementError, parse_rearrangement
from ..data.records import RecordReader, TooManyRejections
from ..data.schema import DataSchema, SchemaError, infer_schema, parse_schema
from ..data.statistics import StatisticsBuilder
from ..data.sql import QueryError, connection_url, run_query
from ..store.databases import DatabaseRegistry
from .context import JobContext, JobFailed, json_bytes
from .outputs import claim_outputs
from .parts import (
    Part, PartRead, PartTask, log_parts, merge_reads, part_source, part_tasks, plan_parts, read_part, run_parts,
    stop_if_deleted)

SAMPLE_LINES = 1000
SAMPLE_BYTES = 1 << 20


def statistics_key(account: str, datasource_id: str) -> str:
    return f"statistics/{account}/{datasource_id}.json"


def sample_lines(file: locations.DataFile, allowed: locations.Confinement) -> list[bytes]:
    data = b""
    for piece in locations.byte_source(file, allowed).chunks:
        data += piece
        if data.count(b"\n") > SAMPLE_LINES or len(data) > SAMPLE_BYTES:
            break
    lines = data.split(b"\n")
    if len(lines) > 1 and not data.endswith(b"\n"):
        lines = lines[:-1]  # the last line may be cut short
    return [line for line in lines[:SAMPLE_LINES] if line.strip()]


def _stage_query(ctx: JobContext, source: dict) -> tuple[str, DataSchema | None]:
    """Run the RDS/Redshift query and publish its CSV at the staging location."""
    doc = ctx.document
    kind = source["type"]
    if kind == "rds":
        info = doc["RDSMetadata"]["Database"]
        identifier, database = info["InstanceIdentifier"], info["DatabaseName"]
        query = doc["RDSMetadata"]["SelectSqlQuery"]
    else:
        info = doc["RedshiftMetadata"]["RedshiftDatabase"]
        identifier, database = info["ClusterIdentifier"], info["DatabaseName"]
        query = doc["RedshiftMetadata"]["SelectSqlQuery"]
    registered = DatabaseRegistry(ctx.entities.engine, ctx.master_key).get(identifier)
    label = "InstanceIdentifier" if kind == "rds" else "ClusterIdentifier"
    if registered is None:
        raise JobFailed(f"{label} {identifier} is not a database registered with this server "
                        f"(the operator adds it with `treadle databases add {identifier} URL`)")
    engine, url = registered
    if engine != kind:
        raise JobFailed(f"{label} {identifier} is registered as a {engine} database, not {kind}")
    credentials = json.loads(ctx.master_key.unseal(source["credentials"]))
    target = locations.join(source["S3StagingLocation"], f"{doc['DataSourceId']}.csv")
    claim_outputs(ctx, [target], "S3StagingLocation")
    ctx.log(f"running the SelectSqlQuery on {identifier}/{database}, staging at {target}")
    with ctx.scratch("staging-") as scratch:
        staged = os.path.join(scratch, "query.csv")
        try:
            with open(staged, "w", encoding="utf-8", newline="") as handle:
                result = run_query(connection_url(url, database, credentials["Username"], credentials["Password"]),
                                   query, handle)
            ctx.log(f"query returned {result.rows} rows, columns {result.columns}")
            locations.write_file(staged, target, ctx.settings.confinement)
        except QueryError as error:
            raise JobFailed(f"The query on {identifier} failed: {error}")
        except LocationError as error:
            raise JobFailed(f"Cannot stage the query's result: {error}")
    derived = DataSchema(attributes=tuple(zip(result.columns, result.types)), contains_header=True)
    return target, derived


def _schema(ctx: JobContext, location: str, files, derived: DataSchema | None) -> DataSchema:
    doc, source = ctx.document, ctx.document.get("_source", {})
    allowed = ctx.settings.confinement
    if doc.get("_schema"):
        return parse_schema(doc["_schema"])  # checked at create time
    schema_uri = source.get("DataSchemaLocationS3") or source.get("DataSchemaUri")
    if schema_uri:
        try:
            text = locations.read_text(schema_uri, allowed)
        except LocationError as error:
            raise JobFailed(f"Cannot read the schema: {error}")
        try:
            return parse_schema(text)
        except SchemaError as error:
            raise JobFailed(f"The schema at {schema_uri} is invalid: {error}")
    if derived is not None:
        ctx.log("schema derived from the query result's column types")
        return derived
    try:
        schema = infer_schema(sample_lines(files[0], allowed))
    except SchemaError as error:
        raise JobFailed(f"Cannot infer a schema from {files[0].uri}: {error}")
    ctx.log(f"no schema given: inferred one from the first {SAMPLE_LINES} lines of {files[0].uri}")
    return schema


def read_datasource(ctx: JobContext, entity, require_target: bool, **options) -> tuple[DataSchema, RecordReader]:
    """A fresh reader over the records a COMPLETED datasource selected: its
    files, its schema and its split. Training reads it more than once."""
    doc = entity.document
    allowed = ctx.settings.confinement
    schema = parse_schema(doc["_schema"])
    try:
        files = locations.list_data_files(doc["DataLocationS3"], allowed)
    except LocationError as error:
        raise JobFailed(f"Cannot read the data of DataSource {entity.entity_id}: {error}")
    split = parse_rearrangement(doc.get("DataRearrangement"))
    reader = RecordReader([locations.byte_source(f, allowed) for f in files], schema, split,
                          total_size=sum(f.size for f in files), require_target=require_target, **options)
    return schema, reader


def run(ctx: JobContext) -> dict:
    doc = ctx.document
    source = doc.get("_source", {"type": "s3"})
    allowed = ctx.settings.confinement
    fields: dict = {}
    derived = None
    if source["type"] in ("rds", "redshift"):
        location, derived = _stage_query(ctx, source)
        fields["DataLocationS3"] = location
    else:
        location = doc["DataLocationS3"]
    try:
        files = locations.list_data_files(location, allowed)
    except LocationError as error:
        raise JobFailed(f"Cannot read the data: {error}")
    schema = _schema(ctx, location, files, derived)
    try:
        split = parse_rearrangement(doc.get("DataRearrangement"))
    except RearrangementError as error:  # checked at create time; kept for old rows
        raise JobFailed(f"DataRearrangement: {error}")
    total = sum(f.size for f in files)
    ctx.log(f"reading {len(files)} file(s), {total} bytes, from {location}")
    parts = plan_parts(files, ctx.settings.part_bytes) if ctx.parts is not None else []
    try:
        if len(parts) > 1:
            result = _ingest_in_parts(ctx, parts, schema, split, bool(doc.get("ComputeStatistics")), total)
        else:
            result = ingest([locations.byte_source(f, allowed) for f in files], schema, split,
                            compute_statistics=bool(doc.get("ComputeStatistics")), total_size=total)
    except TooManyRejections as error:
        raise JobFailed(error.message if hasattr(error, "message") else str(error))
    except LocationError as error:
        raise JobFailed(f"Cannot read the data: {error}")
    for warning in result.warnings:
        ctx.log(f"warning: {warning}")
    for rejection in result.rejections:
        ctx.log(f"rejected: {rejection['file']} line {rejection['line']}: {rejection['reason']}")
    ctx.log(f"records read {result.records_read}, selected {result.selected}, "
            f"accepted {result.records}, rejected {result.rejected}")
    if result.records == 0:
        raise JobFailed(f"No valid records were found at {location}"
                        + (f"; first rejections: {result.rejections[:3]}" if result.rejections else ""))
    if result.statistics is not None:
        ctx.artifacts.put(statistics_key(ctx.account, doc["DataSourceId"]), json_bytes(result.statistics))
        fields["_statistics"] = statistics_key(ctx.account, doc["DataSourceId"])
    fields.update({
        "DataSizeInBytes": total,
        "NumberOfFiles": len(files),
        "_schema": schema.to_json(),
        "_records": result.records,
        "_rejected": result.rejected,
    })
    return fields


# -- on a cluster: the same read, in parts (docs/behaviour.md, "Cluster mode") ----------------

def ingest_part(settings, task: PartTask) -> PartRead:
    """One part of a datasource's read: its counts and its partial statistics,
    built on the bin layout the whole read's first chunk fixed."""
    stats = None
    if task.extra["statistics"]:
        stats = ParallelStatistics(task.schema, default_workers(), task.extra["layout"])
    try:
        read = read_part(settings, task, stats.update if stats is not None else (lambda chunk: None))
        read.payload = stats.finish() if stats is not None else None
    finally:
        if stats is not None:
            stats.close()
    return read


def _may_select(split, part: Part, total: int) -> bool:
    """Whether the split can select a record of `part` (records begin in its byte range)."""
    if split.selects_everything or split.strategy != "sequential":
        return True
    low, high = split.begin * total / 100 - 1, split.end * total / 100 + 1
    first, last = part.base + part.start, part.base + part.end
    if split.complement:
        return first < low + 2 or last > high - 2
    return first < high and last > low


def first_layout(ctx: JobContext, parts: list[Part], schema: DataSchema, split, total: int) -> dict | None:
    """The numeric bin layout of the read's first chunk of selected records,
    which every part's statistics share so that they merge. The chunk is
    read as one process would read it: from the first range the split can
    select from, on through the datasource's end, stopping at that chunk."""
    allowed = ctx.settings.confinement
    start = next((part for part in parts if _may_select(split, part, total)), None)
    if start is None:
        return None
    later = sorted({part.file_index: part.file for part in parts if part.file_index > start.file_index}.items())
    sources = [part_source(start, allowed, to_end=True)] + [locations.byte_source(f, allowed) for _, f in later]
    reader = RecordReader(sources, schema, split, total_size=total)
    try:
        for chunk in reader:
            builder = StatisticsBuilder(schema)
            builder.update(chunk)
            return builder.layout
    except TooManyRejections:
        return None  # the parts find the rejections themselves
    return None


def _ingest_in_parts(ctx: JobContext, parts: list[Part], schema: DataSchema, split, statistics: bool,
                     total: int) -> IngestResult:
    layout = first_layout(ctx, parts, schema, split, total) if statistics else None
    tasks = part_tasks(ctx, parts, schema, split, statistics=statistics, layout=layout)
    ctx.log(f"reading in {len(parts)} parts on the Dask cluster")
    reads = list(run_parts(ctx, parts, ingest_part, tasks))
    log_parts(ctx, parts, reads)
    merged = merge_reads(parts, reads)
    stop_if_deleted(ctx)
    result = None
    if statistics:
        builder = StatisticsBuilder(schema, layout)
        for read in reads:
            builder.merge(read.payload)
        result = builder.result()
        result["records_processed"] = merged.selected
        result["records_rejected"] = merged.rejected
    return IngestResult(
        records=merged.accepted, records_read=merged.records_read, selected=merged.selected,
        rejected=merged.rejected, data_size_in_bytes=total, number_of_files=len({p.file_index for p in parts}),
        statistics=result, warnings=merged.warnings,
        rejections=[{"file": r.file, "line": r.line, "reason": r.reason} for r in merged.samples])
