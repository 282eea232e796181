"""Creating a datasource: the wizard at /console/new/datasource.

One form, filled in steps: where the data is (an s3:// or file://
location, a CSV file uploaded from the browser, or a query on a database
the operator registered), then, once it has been read, its first rows,
the inferred schema to edit, the split, the name and ID. Every submission
reads the data again, so what is checked is what the job will read.
Creating calls CreateDataSourceFromS3, FromRDS or FromRedshift as the API
would, and bad input is shown next to the field that caused it.
"""
from __future__ import annotations

import json
import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..api.location_checks import check_location
from ..config import UPLOAD_PATH
from ..data.rearrangement import RearrangementError, parse_rearrangement
from ..data.schema import MAX_ATTRIBUTES, TYPES, DataSchema, SchemaError, parse_schema
from ..protocol import errors
from ..store.databases import DatabaseRegistry
from . import choices, sampling, uploads
from .app import Console, FormError, form_of
from .kinds import KINDS
from .sessions import Session

OPERATIONS = {"rds": "CreateDataSourceFromRDS", "redshift": "CreateDataSourceFromRedshift"}
# Treadle runs the query itself, so the roles and network settings Amazon
# ML's Data Pipeline needed are unused; the API still requires them.
PIPELINE = {"ResourceRole": "DataPipelineDefaultResourceRole", "ServiceRole": "DataPipelineDefaultRole",
            "SubnetId": "subnet-unused", "SecurityGroupIds": ["sg-unused"]}
# API members, as named in InvalidInputException messages, and the fields
# that set them.
FIELDS = {"DataSourceId": "datasource_id", "DataSourceName": "name", "DataLocationS3": "location",
          "DataRearrangement": "split", "DataSchema": "attributes", "S3StagingLocation": "staging",
          "DatabaseName": "db_name", "InstanceIdentifier": "db_identifier", "ClusterIdentifier": "db_identifier",
          "Username": "db_user", "Password": "db_password", "SelectSqlQuery": "db_query"}
DEFAULTS = {"source": "location", "split": "none", "percent_begin": "0", "percent_end": "70",
            "strategy": "sequential", "statistics": "on"}


def routes(signed_in, object_action) -> list[Route]:
    """As models.routes: the wizard and the upload it streams to."""
    return [
        Route("/new/datasource", signed_in(start), methods=["GET"]),
        Route("/new/datasource", signed_in(submit), methods=["POST"]),
        Route(UPLOAD_PATH.removeprefix("/console"), signed_in(uploads.receive, json_api=True),
              methods=["POST"]),
    ]


async def start(console: Console, request: Request, session: Session) -> Response:
    form = {**DEFAULTS, "datasource_id": choices.suggest_id("ds")}
    return await _render(console, request, session, form, {}, None)


async def submit(console: Console, request: Request, session: Session) -> Response:
    form = {**form_of(request)}
    if form.get("stage") != "schema":
        # Before the data is read the later steps are not on the page.
        form = {**DEFAULTS, **form}
    action = form.get("action", "read")
    problems: dict[str, str] = {}
    sample = None
    try:
        sample = await run_in_threadpool(_read, console, session, form, action)
    except FormError as error:
        problems[error.field] = error.message
    if sample is not None and action in ("read", "header"):
        _take_schema(form, sample.schema, fresh=action == "read" or form.get("stage") != "schema")
    elif sample is not None and action == "create":
        created = await _create(console, session, form, sample, problems)
        if created:
            return RedirectResponse(KINDS["DataSource"].url(form["datasource_id"]), status_code=303)
    return await _render(console, request, session, form, problems, sample, status=400 if problems else 200)


# -- reading ---------------------------------------------------------------------

def _source(form: dict) -> str:
    source = form.get("source", "location")
    return source if source in ("location", "upload", "database") else "location"


def _read(console: Console, session: Session, form: dict, action: str) -> sampling.Sample:
    settings = console.settings
    source = _source(form)
    header = None if action == "read" else form.get("header") == "yes"
    if source == "location":
        location = form.get("location", "").strip()
        if not location:
            raise FormError("location", "Enter the location of the data: s3://bucket/key or file:///path")
        return sampling.read_location(location, settings.confinement, "location", session.account, header)
    if source == "upload":
        uri = form.get("upload_uri", "")
        if not uploads.owns(settings, session.account, uri):
            raise FormError("upload", "Choose a CSV file and upload it first")
        return sampling.read_location(uri, settings.confinement, "upload", session.account, header)
    return _read_database(console, session, form)


def _read_database(console: Console, session: Session, form: dict) -> sampling.Sample:
    for field, label in (("db_identifier", "a database"), ("db_name", "the database name"),
                         ("db_user", "the user name"), ("db_query", "the SQL query"),
                         ("staging", "the staging location")):
        if not form.get(field, "").strip():
            raise FormError(field, f"Enter {label}")
    password = _password(console, session, form)
    if not password:
        raise FormError("db_password", "Enter the password")
    try:
        check_location("The staging location", form["staging"].strip(), console.settings.confinement, output=True,
                       account=session.account)
    except errors.InvalidInputException as error:
        raise FormError("staging", error.message)
    kind = _database_kind(console, form["db_identifier"])
    return sampling.read_query(console.services, kind or "", form["db_identifier"], form["db_name"].strip(),
                               form["db_user"].strip(), password, form["db_query"])


def _database_kind(console: Console, identifier: str) -> str | None:
    registered = DatabaseRegistry(console.services.engine, console.services.master_key).list()
    return dict(registered).get(identifier)


def _password(console: Console, session: Session, form: dict) -> str:
    """The typed password, else the one kept sealed in the page by an
    earlier step (so it is never written back into the page in clear)."""
    if form.get("db_password"):
        return form["db_password"]
    try:
        kept = json.loads(console.services.master_key.unseal(form.get("db_password_sealed", "")))
    except Exception:
        return ""
    return kept["password"] if kept.get("account") == session.account else ""


def _take_schema(form: dict, schema: DataSchema, fresh: bool) -> None:
    """Fill the schema fields from the inferred schema."""
    for key in [key for key in form if re.fullmatch(r"(name|type|exclude)_\d+", key)]:
        del form[key]
    form.update({"stage": "schema", "attr_count": str(len(schema.attributes)), "target": "", "rowid": "",
                 "header": "yes" if schema.contains_header else "no"})
    for index, (name, kind) in enumerate(schema.attributes):
        form[f"name_{index}"], form[f"type_{index}"] = name, kind
    if fresh and not form.get("name"):
        form["name"] = _suggested_name(form)


def _suggested_name(form: dict) -> str:
    source = _source(form)
    if source == "upload":
        return form.get("upload_name", "")[:1024]
    if source == "database":
        return f"{form.get('db_identifier', '')}: query"[:1024]
    return form.get("location", "").rstrip("/").rsplit("/", 1)[-1][:1024]


# -- checking and creating ----------------------------------------------------

def _index(value: str | None, count: int) -> int | None:
    return int(value) if value and value.isdigit() and int(value) < count else None


def _schema(form: dict, problems: dict, database: bool) -> DataSchema | None:
    count = _index(form.get("attr_count"), MAX_ATTRIBUTES + 1) or 0
    names, kinds = [], []
    for i in range(count):
        name, kind = form.get(f"name_{i}", "").strip(), form.get(f"type_{i}", "")
        if not name:
            problems[f"name_{i}"] = "Give the attribute a name"
        elif name in names:
            problems[f"name_{i}"] = "Another attribute has this name"
        if kind not in TYPES:
            problems[f"type_{i}"] = f"Choose one of {', '.join(TYPES)}"
        names.append(name)
        kinds.append(kind)
    target, row_id = _index(form.get("target"), count), _index(form.get("rowid"), count)
    excluded = [i for i in range(count) if form.get(f"exclude_{i}")]
    if target is not None:
        if kinds[target] == "TEXT":
            problems["target"] = "A target must be BINARY, CATEGORICAL or NUMERIC: a model predicts one of those"
        elif target in excluded:
            problems["target"] = "The target cannot be excluded"
        elif target == row_id:
            problems["rowid"] = "The row ID cannot also be the target"
    if not count or any(key.startswith(("name_", "type_")) for key in problems):
        return None
    schema = DataSchema(attributes=tuple(zip(names, kinds)),
                        target=names[target] if target is not None else None,
                        row_id=names[row_id] if row_id is not None else None,
                        excluded=tuple(names[i] for i in excluded),
                        contains_header=database or form.get("header") == "yes")
    if "target" in problems or "rowid" in problems:
        return schema  # still good for checking the types against the data
    try:
        return parse_schema(schema.to_json())
    except SchemaError as error:
        problems["attributes"] = error.message
        return None


def _percent(form: dict, field: str, problems: dict) -> int | float | None:
    text = form.get(field, "").strip()
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 100:
        problems[field] = "Enter a percentage from 0 to 100"
        return None
    return int(value) if value.is_integer() else value


def _rearrangement(form: dict, problems: dict) -> str | None:
    """The DataRearrangement the split fields describe (docs/behaviour.md,
    "Data rearrangement"), or None for all the data."""
    if form.get("split") != "split":
        return None
    begin, end = _percent(form, "percent_begin", problems), _percent(form, "percent_end", problems)
    if begin is not None and end is not None and begin >= end:
        problems["percent_end"] = "The end must be greater than the beginning"
    strategy = form.get("strategy", "sequential")
    if strategy not in ("sequential", "random"):
        problems["strategy"] = "Choose sequential or random"
    if any(field in problems for field in ("percent_begin", "percent_end", "strategy")):
        return None
    splitting = {"percentBegin": begin, "percentEnd": end, "strategy": strategy}
    if form.get("complement"):
        splitting["complement"] = True
    if strategy == "random":
        splitting["strategyParams"] = {"randomSeed": form.get("seed", "")}
    text = json.dumps({"splitting": splitting})
    try:
        parse_rearrangement(text)
    except RearrangementError as error:
        problems["split"] = error.message
        return None
    return text


def _request(console: Console, session: Session, form: dict, spec: dict) -> tuple[str, dict]:
    """The Create operation and its parameters."""
    params = {"DataSourceId": form["datasource_id"], "ComputeStatistics": bool(form.get("statistics"))}
    if form.get("name", "").strip():
        params["DataSourceName"] = form["name"].strip()
    source = _source(form)
    if source in ("location", "upload"):
        spec["DataLocationS3"] = form["location"].strip() if source == "location" else form["upload_uri"]
        return "CreateDataSourceFromS3", {**params, "DataSpec": spec}
    kind = _database_kind(console, form["db_identifier"])
    database = {"DatabaseName": form["db_name"].strip()}
    spec.update({"SelectSqlQuery": form["db_query"], "S3StagingLocation": form["staging"].strip(),
                 "DatabaseCredentials": {"Username": form["db_user"].strip(),
                                         "Password": _password(console, session, form)}})
    params["RoleARN"] = f"arn:aws:iam::{session.account}:role/treadle-console"
    if kind == "rds":
        database["InstanceIdentifier"] = form["db_identifier"]
        return OPERATIONS[kind], {**params, "RDSData": {**spec, "DatabaseInformation": database, **PIPELINE}}
    database["ClusterIdentifier"] = form["db_identifier"]
    return OPERATIONS["redshift"], {**params, "DataSpec": {**spec, "DatabaseInformation": database}}


async def _create(console: Console, session: Session, form: dict, sample: sampling.Sample,
                  problems: dict) -> bool:
    schema = _schema(form, problems, database=_source(form) == "database")
    if schema is not None:
        problems.update(sampling.misfits(schema, sample))
    rearrangement = _rearrangement(form, problems)
    try:
        await choices.check_new_id(console, session, "DataSource", form.get("datasource_id", ""), "datasource_id")
    except FormError as error:
        problems[error.field] = error.message
    if problems or schema is None:
        return False
    spec = {"DataSchema": schema.to_json()}
    if rearrangement:
        spec["DataRearrangement"] = rearrangement
    operation, params = await run_in_threadpool(_request, console, session, form, spec)
    try:
        await console.call(session, operation, params)
    except errors.IdempotentParameterMismatchException:
        problems["datasource_id"] = "A datasource with this ID exists already; choose another ID"
    except errors.ServiceError as error:
        problems[_field_of(error.message)] = error.message
    return not problems


def _field_of(message: str) -> str:
    found = re.search(r"Value at '([^']*)'", message)
    path = found.group(1) if found else message
    for member, field in FIELDS.items():
        if member in path:
            return field
    return "create"


# -- the page --------------------------------------------------------------------

def _attributes(form: dict, sample: sampling.Sample | None) -> list[dict]:
    """The schema fields, with the first distinct values of each attribute."""
    if form.get("stage") != "schema":
        return []
    count = _index(form.get("attr_count"), MAX_ATTRIBUTES + 1) or 0
    records = [] if sample is None else sample.records
    out = []
    for i in range(count):
        seen = []
        for row in records:
            value = row[i].strip() if i < len(row) else ""
            if value and value not in seen:
                seen.append(value)
            if len(seen) == 3:
                break
        out.append({"index": i, "name": form.get(f"name_{i}", ""), "type": form.get(f"type_{i}", ""),
                    "excluded": bool(form.get(f"exclude_{i}")), "examples": seen})
    return out


def _preview(form: dict, sample: sampling.Sample | None, attributes: list[dict]) -> dict | None:
    if sample is None or not attributes:
        return None
    records = sample.records
    return {"names": [a["name"] for a in attributes], "rows": records[:sampling.PREVIEW_ROWS]}


async def _render(console: Console, request: Request, session: Session, form: dict, problems: dict,
                  sample: sampling.Sample | None, status: int = 200) -> Response:
    if _source(form) == "database" and form.get("db_password"):
        password = _password(console, session, form)
        form["db_password_sealed"] = console.services.master_key.seal(
            json.dumps({"account": session.account, "password": password}))
    form.pop("db_password", None)
    registry = DatabaseRegistry(console.services.engine, console.services.master_key)
    databases = await run_in_threadpool(registry.list)
    attributes = _attributes(form, sample)
    settings = console.settings
    return console.render(
        request, session, "datasource_new.html", status=status, title="Create a datasource", form=form,
        errors=problems, databases=databases, attributes=attributes, preview=_preview(form, sample, attributes),
        types=TYPES, uploads_on=uploads.folder_of(settings, session.account) is not None,
        upload_limit=settings.max_upload_bytes, source=_source(form))
