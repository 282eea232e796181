"""Datasource jobs end to end: S3 through moto, allowed local folders,
schemas, splits, statistics, failures with useful messages."""
import csv
import io
import json

import numpy as np
import pytest

from support import settle, signed_get, unique

SCHEMA = {
    "version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": True,
    "attributes": [
        {"attributeName": "age", "attributeType": "NUMERIC"},
        {"attributeName": "colour", "attributeType": "CATEGORICAL"},
        {"attributeName": "note", "attributeType": "TEXT"},
        {"attributeName": "y", "attributeType": "BINARY"},
    ],
}


def make_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    colours = ["red", "green", "blue"]
    rows = []
    for i in range(n):
        age = "" if i % 17 == 0 else f"{rng.normal(40, 10):.2f}"
        rows.append([age, colours[i % 3], f"word{i % 5} other text", "yes" if rng.random() < 0.3 else "no"])
    return rows


def to_csv(rows, header=True):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(["age", "colour", "note", "y"])
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def bucket(s3):
    name = unique("bucket").lower()
    s3.client().create_bucket(Bucket=name)
    return name


def put(s3, bucket, key, body):
    s3.client().put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def statistics(server, ds_id):
    status, body = signed_get(f"{server.url}/datasources/{ds_id}/statistics", server.default_keys)
    assert status == 200, body
    return body["Statistics"]


def test_s3_object_with_inline_schema(ml, server, s3, bucket):
    rows = make_rows(500)
    data = to_csv(rows)
    location = put(s3, bucket, "data/train.csv", data)
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": location,
                                  "DataSchema": json.dumps(SCHEMA)}, ComputeStatistics=True)
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "COMPLETED", got.get("Message")
    assert got["DataSizeInBytes"] == len(data) and got["NumberOfFiles"] == 1
    assert got["ComputeTime"] >= 0
    verbose = ml.get_data_source(DataSourceId=ds_id, Verbose=True)
    assert json.loads(verbose["DataSourceSchema"])["targetAttributeName"] == "y"
    stats = statistics(server, ds_id)
    assert stats["records_processed"] == 500
    assert json.dumps(stats)  # plain JSON


def test_s3_prefix_reads_every_object_in_key_order(ml, s3, bucket):
    parts = [make_rows(100, seed=i) for i in range(3)]
    sizes = 0
    for index, rows in enumerate(parts):
        sizes += len(to_csv(rows))
        put(s3, bucket, f"many/part-{index}.csv", to_csv(rows))
    put(s3, bucket, "many/.schema", json.dumps(SCHEMA).encode())
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={
        "DataLocationS3": f"s3://{bucket}/many/", "DataSchemaLocationS3": f"s3://{bucket}/many/.schema"})
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "COMPLETED", got.get("Message")
    assert (got["NumberOfFiles"], got["DataSizeInBytes"]) == (3, sizes)


@pytest.mark.parametrize("location, fragment", [
    ("s3://treadle-no-such-bucket/x.csv", "treadle-no-such-bucket"),
    (None, "no data files"),
])
def test_missing_data_fails_naming_the_location(ml, s3, bucket, location, fragment):
    location = location or f"s3://{bucket}/absent/"
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": location,
                                                                 "DataSchema": json.dumps(SCHEMA)})
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "FAILED"
    assert fragment in got["Message"]


def test_bad_schema_from_s3_fails_with_reason(ml, s3, bucket):
    location = put(s3, bucket, "d.csv", to_csv(make_rows(10)))
    bad = dict(SCHEMA, targetAttributeName="nope")
    schema_uri = put(s3, bucket, "d.csv.schema", json.dumps(bad).encode())
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": location,
                                                                 "DataSchemaLocationS3": schema_uri})
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "FAILED"
    assert schema_uri in got["Message"] and "nope" in got["Message"]


def test_inline_schema_errors_are_rejected_at_create(ml):
    from botocore.exceptions import ClientError

    bad = dict(SCHEMA, attributes=SCHEMA["attributes"] + [{"attributeName": "age", "attributeType": "NUMERIC"}])
    with pytest.raises(ClientError) as excinfo:
        ml.create_data_source_from_s3(DataSourceId=unique("ds"), DataSpec={
            "DataLocationS3": "s3://b/k.csv", "DataSchema": json.dumps(bad)})
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"
    assert "age" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        ml.create_data_source_from_s3(DataSourceId=unique("ds"), DataSpec={
            "DataLocationS3": "s3://b/k.csv", "DataRearrangement": '{"splitting":{"percentBegin":70,"percentEnd":20}}'})
    assert "DataRearrangement" in excinfo.value.response["Error"]["Message"]


def test_local_folder_and_inferred_schema(ml, server, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / unique("local")
    folder.mkdir()
    (folder / "a.csv").write_bytes(to_csv(make_rows(50)))
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": folder.as_uri() + "/"})
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "COMPLETED", got.get("Message")
    schema = json.loads(ml.get_data_source(DataSourceId=ds_id, Verbose=True)["DataSourceSchema"])
    assert schema["dataFileContainsHeader"] is True
    assert {a["attributeName"]: a["attributeType"] for a in schema["attributes"]} == {
        "age": "NUMERIC", "colour": "CATEGORICAL", "note": "CATEGORICAL", "y": "BINARY"}


def test_split_and_complement_partition_the_data(ml, server, s3, bucket):
    location = put(s3, bucket, "split.csv", to_csv(make_rows(1000)))
    counts = {}
    for strategy in ("sequential", "random"):
        for complement in (False, True):
            ds_id = unique("ds")
            rearrangement = {"splitting": {"percentBegin": 10, "percentEnd": 40, "complement": complement,
                                           "strategy": strategy, "strategyParams": {"randomSeed": "s"}}}
            ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
                "DataLocationS3": location, "DataSchema": json.dumps(SCHEMA),
                "DataRearrangement": json.dumps(rearrangement)})
            assert settle(ml.get_data_source, DataSourceId=ds_id)["Status"] == "COMPLETED"
            counts[strategy, complement] = statistics(server, ds_id)["records_processed"]
    for strategy in ("sequential", "random"):
        assert counts[strategy, False] + counts[strategy, True] == 1000
        assert 200 < counts[strategy, False] < 400


def test_too_many_rejections_fail_the_datasource(ml, s3, bucket):
    good = to_csv(make_rows(5))
    bad = b"".join(b"1,2\n" for _ in range(10001))
    location = put(s3, bucket, "bad.csv", good + bad)
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": location,
                                                                 "DataSchema": json.dumps(SCHEMA)})
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "FAILED"
    assert "10001" in got["Message"] or "10,001" in got["Message"]
    assert "7" in got["Message"]  # the first offending line number


def test_statistics_route_is_authenticated_and_per_account(ml, server, s3, bucket):
    location = put(s3, bucket, "stats.csv", to_csv(make_rows(30)))
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": location, "DataSchema": json.dumps(SCHEMA)})
    settle(ml.get_data_source, DataSourceId=ds_id)
    status, _ = signed_get(f"{server.url}/datasources/{ds_id}/statistics", server.other_keys)
    assert status == 404
    import requests
    assert requests.get(f"{server.url}/datasources/{ds_id}/statistics", timeout=10).status_code == 403
