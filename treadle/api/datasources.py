"""DataSource operations."""
from __future__ import annotations

import json

from ..data.rearrangement import RearrangementError, parse_rearrangement
from ..data.schema import SchemaError, parse_schema
from ..protocol import errors
from .common import base_document, create_entity, delete_entity, rename, render, require, with_log
from .location_checks import check_location
from .services import Call

KIND = "DataSource"


def _check_spec(call: Call, spec: dict, schema_member: str) -> None:
    """Inline schemas and rearrangements are checked at create time; a
    schema read from a location is checked by the job."""
    try:
        parse_rearrangement(spec.get("DataRearrangement"))
    except RearrangementError as error:
        raise errors.InvalidInputException(f"DataRearrangement: {error}")
    if spec.get("DataSchema"):
        try:
            parse_schema(spec["DataSchema"])
        except SchemaError as error:
            raise errors.InvalidInputException(f"DataSchema: {error}")
    schema_uri = spec.get(schema_member)
    if schema_uri:
        check_location(schema_member, schema_uri, call.services.settings.confinement, account=call.account)


def _document(call: Call, params: dict, location: str | None, spec: dict) -> dict:
    doc = base_document(call, KIND, params["DataSourceId"], params.get("DataSourceName"))
    if location is not None:
        doc["DataLocationS3"] = location
    if spec.get("DataRearrangement"):
        doc["DataRearrangement"] = spec["DataRearrangement"]
    doc["ComputeStatistics"] = bool(params.get("ComputeStatistics", False))
    if spec.get("DataSchema"):
        doc["_schema"] = spec["DataSchema"]
    return doc


def create_from_s3(call: Call, params: dict) -> dict:
    spec = params["DataSpec"]
    check_location("DataSpec.DataLocationS3", spec["DataLocationS3"], call.services.settings.confinement,
                   account=call.account)
    _check_spec(call, spec, "DataSchemaLocationS3")
    doc = _document(call, params, spec["DataLocationS3"], spec)
    doc["_source"] = {"type": "s3", "DataSchemaLocationS3": spec.get("DataSchemaLocationS3")}
    return create_entity(call, KIND, params["DataSourceId"], params, doc)


def _seal_credentials(call: Call, credentials: dict) -> str:
    return call.services.master_key.seal(json.dumps(credentials))


def _create_from_sql(call: Call, params: dict, spec_member: str, source_type: str, metadata: tuple[str, dict]) -> dict:
    """RDS and Redshift datasources: the query is run and staged by the job."""
    spec = params[spec_member]
    check_location(f"{spec_member}.S3StagingLocation", spec["S3StagingLocation"],
                   call.services.settings.confinement, output=True, account=call.account)
    _check_spec(call, spec, "DataSchemaUri")
    doc = _document(call, params, None, spec)
    doc["RoleARN"] = params["RoleARN"]
    member, fields = metadata
    doc[member] = {**fields, "DatabaseUserName": spec["DatabaseCredentials"]["Username"],
                   "SelectSqlQuery": spec["SelectSqlQuery"]}
    doc["_source"] = {"type": source_type, "S3StagingLocation": spec["S3StagingLocation"],
                      "DataSchemaUri": spec.get("DataSchemaUri"),
                      "credentials": _seal_credentials(call, spec["DatabaseCredentials"])}
    return create_entity(call, KIND, params["DataSourceId"], _without_password(call, params, spec_member), doc)


def create_from_rds(call: Call, params: dict) -> dict:
    spec = params["RDSData"]
    return _create_from_sql(call, params, "RDSData", "rds", ("RDSMetadata", {
        "Database": spec["DatabaseInformation"], "ResourceRole": spec["ResourceRole"],
        "ServiceRole": spec["ServiceRole"]}))


def create_from_redshift(call: Call, params: dict) -> dict:
    return _create_from_sql(call, params, "DataSpec", "redshift", ("RedshiftMetadata", {
        "RedshiftDatabase": params["DataSpec"]["DatabaseInformation"]}))


def _without_password(call: Call, params: dict, spec_member: str) -> dict:
    # The idempotency fingerprint is stored, so the password enters it only
    # through a digest keyed by the master key: retries with another
    # password are still told apart, and the stored value reveals nothing.
    clean = json.loads(json.dumps(params))
    creds = clean[spec_member]["DatabaseCredentials"]
    creds["Password"] = call.services.master_key.sign("db-password\n" + creds["Password"])
    return clean


def _wire(call: Call, entity, verbose: bool) -> dict:
    doc = dict(entity.document)
    for member in ("RDSMetadata", "RedshiftMetadata"):
        if member in doc and not verbose:
            doc[member] = {k: v for k, v in doc[member].items() if k != "SelectSqlQuery"}
    if verbose and doc.get("_schema"):
        doc["DataSourceSchema"] = doc["_schema"]
    return doc


def get(call: Call, params: dict) -> dict:
    entity = require(call, KIND, params["DataSourceId"])
    entity.document = _wire(call, entity, params.get("Verbose", False))
    return with_log(call, KIND, entity, "GetDataSourceOutput")


def describe_entry(call: Call, entity) -> dict:
    return render("DataSource", _wire(call, entity, False))


def update(call: Call, params: dict) -> dict:
    return rename(call, KIND, params["DataSourceId"], params["DataSourceName"])


def delete(call: Call, params: dict) -> dict:
    return delete_entity(call, KIND, params["DataSourceId"])
