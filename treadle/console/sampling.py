"""What the datasource wizard reads before anything is created: the first
lines of a location or the first rows of a query, the schema inferred from
them as the datasource job would infer it, and how well an edited schema
fits them."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ..api.location_checks import check_location
from ..data import locations
from ..data.cells import binary_value, is_number
from ..data.schema import DataSchema, SchemaError, infer_schema
from ..data.sql import QueryError, connection_url, run_query
from ..jobs.datasource import sample_lines
from ..protocol import errors
from ..store.databases import DatabaseRegistry
from .app import FormError

PREVIEW_ROWS = 10
# The wizard waits for its sample in a request: a query that takes longer is
# refused rather than holding a thread of the server.
QUERY_SAMPLE_SECONDS = 20
QUERY_SAMPLE_ROWS = 1000


@dataclass
class Sample:
    rows: list[list[str]]  # every sampled record, the header line included
    schema: DataSchema  # inferred, or derived from a query's column types

    @property
    def records(self) -> list[list[str]]:
        return self.rows[1:] if self.schema.contains_header else self.rows


def _cells(lines: list[bytes]) -> list[list[str]]:
    rows = []
    for line in lines:
        text = line.decode("utf-8", "replace").removesuffix("\r")
        try:
            rows.extend(csv.reader([text], strict=True))
        except csv.Error:
            continue  # a record the reader would reject: no preview of it
    return rows


def read_location(uri: str, confinement, field: str, account: str, header: bool | None = None) -> Sample:
    """The first lines of the data at an s3:// or file:// location `account` may name."""
    try:
        check_location("The location", uri, confinement, account=account)
        files = locations.list_data_files(uri, confinement)
        lines = sample_lines(files[0], confinement)
    except errors.InvalidInputException as error:
        raise FormError(field, error.message)
    except locations.LocationError as error:
        raise FormError(field, str(error))
    if not lines:
        raise FormError(field, f"{files[0].uri} holds no records")
    try:
        schema = infer_schema(lines, header=header)
    except SchemaError as error:
        raise FormError(field, f"Cannot read {files[0].uri} as CSV: {error.message}")
    return Sample(_cells(lines), schema)


def read_query(services, kind: str, identifier: str, database: str, user: str, password: str,
               query: str) -> Sample:
    """The first rows of a query on a registered database, with the schema
    the job derives from the result's column types (docs/behaviour.md,
    "RDS and Redshift")."""
    registered = DatabaseRegistry(services.engine, services.master_key).get(identifier)
    if registered is None or registered[0] != kind:
        raise FormError("db_identifier", "Choose one of the databases registered with this server")
    # A derived table with a limit reads only the first rows: a server-side
    # cursor closed early would still fetch the whole result.
    bounded = f"SELECT * FROM ({query.strip().rstrip(';')}) AS treadle_sample LIMIT {QUERY_SAMPLE_ROWS}"
    out = io.StringIO()
    try:
        result = run_query(connection_url(registered[1], database, user, password), bounded, out,
                           timeout=QUERY_SAMPLE_SECONDS)
    except QueryError as error:
        raise FormError("db_query", f"The query failed: {error}")
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    return Sample(rows, DataSchema(attributes=tuple(zip(result.columns, result.types)), contains_header=True))


def misfits(schema: DataSchema, sample: Sample) -> dict[str, str]:
    """Where the schema does not match the sampled records: a field count
    that differs, or a NUMERIC or BINARY attribute whose values are mostly
    not of that type (a few bad values are only missing values, as the
    job treats them; mostly bad ones mean the type is wrong)."""
    records = sample.records
    width = len(schema.attributes)
    problems = {}
    wrong = [row for row in records if len(row) != width]
    if wrong:
        problems["attributes"] = (f"{len(wrong)} of the {len(records)} sampled records have {len(wrong[0])} "
                                  f"fields, but the schema has {width} attributes")
    for index, (name, kind) in enumerate(schema.attributes):
        if kind not in ("NUMERIC", "BINARY"):
            continue
        values = [row[index].strip() for row in records if len(row) == width and row[index].strip()]
        valid = is_number if kind == "NUMERIC" else (lambda value: binary_value(value) >= 0)
        bad = [value for value in values if not valid(value)]
        if values and len(bad) * 2 > len(values):
            what = "numbers" if kind == "NUMERIC" else "binary values (0/1, yes/no, true/false, y/n, t/f)"
            problems[f"type_{index}"] = (f"{len(bad)} of the {len(values)} sampled values are not {what}, "
                                         f"for example {bad[0][:40]!r}")
    return problems
