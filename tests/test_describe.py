"""Describe*: filters, comparators, sort order, pagination, paginators."""
import time

import pytest
from botocore.exceptions import ClientError

from support import unique


@pytest.fixture
def batch(ml):
    """Five datasources with a shared, unique name prefix."""
    prefix = unique("batch")
    ids = []
    for index in range(5):
        ds_id = f"{prefix}-{index}"
        ml.create_data_source_from_s3(DataSourceId=ds_id, DataSourceName=f"{prefix} {index}",
                                      DataSpec={"DataLocationS3": f"s3://bucket/{prefix}/{index}.csv"})
        ids.append(ds_id)
        time.sleep(0.005)  # distinct CreatedAt values
    return prefix, ids


def names(results):
    return [r["Name"] for r in results]


def test_prefix_and_sort_orders(ml, batch):
    prefix, ids = batch
    asc = ml.describe_data_sources(FilterVariable="Name", Prefix=prefix)["Results"]
    assert [r["DataSourceId"] for r in asc] == ids
    dsc = ml.describe_data_sources(FilterVariable="Name", Prefix=prefix, SortOrder="dsc")["Results"]
    assert [r["DataSourceId"] for r in dsc] == ids[::-1]
    # Describe entries carry no LogUri or schema (those are Get-only).
    assert "LogUri" not in asc[0] and "DataSourceSchema" not in asc[0]


def test_comparators_combine_with_and(ml, batch):
    prefix, ids = batch
    got = ml.describe_data_sources(FilterVariable="Name", GE=f"{prefix} 1", LT=f"{prefix} 4")["Results"]
    assert names(got) == [f"{prefix} {i}" for i in (1, 2, 3)]
    got = ml.describe_data_sources(FilterVariable="Name", Prefix=prefix, NE=f"{prefix} 2")["Results"]
    assert names(got) == [f"{prefix} {i}" for i in (0, 1, 3, 4)]
    got = ml.describe_data_sources(FilterVariable="DataLocationS3", EQ=f"s3://bucket/{prefix}/3.csv")["Results"]
    assert [r["DataSourceId"] for r in got] == [ids[3]]


def test_time_filters_accept_epoch_and_iso(ml, batch):
    prefix, ids = batch
    created = [ml.get_data_source(DataSourceId=i)["CreatedAt"] for i in ids]
    pivot = created[2]
    epoch = ml.describe_data_sources(FilterVariable="CreatedAt", GE=str(pivot.timestamp()))["Results"]
    assert [r["DataSourceId"] for r in epoch if r["DataSourceId"].startswith(prefix)] == ids[2:]
    iso = ml.describe_data_sources(FilterVariable="CreatedAt", LT=pivot.isoformat())["Results"]
    assert [r["DataSourceId"] for r in iso if r["DataSourceId"].startswith(prefix)] == ids[:2]
    with pytest.raises(ClientError) as excinfo:
        ml.describe_data_sources(FilterVariable="CreatedAt", GT="yesterday")
    assert "yesterday" in excinfo.value.response["Error"]["Message"]


def test_pagination_with_limit_and_tokens(ml, batch):
    prefix, ids = batch
    seen, token = [], None
    pages = 0
    while True:
        kwargs = {"FilterVariable": "Name", "Prefix": prefix, "Limit": 2}
        if token:
            kwargs["NextToken"] = token
        page = ml.describe_data_sources(**kwargs)
        pages += 1
        seen += [r["DataSourceId"] for r in page["Results"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ids and pages == 3


def test_paginator(ml, batch):
    prefix, ids = batch
    paginator = ml.get_paginator("describe_data_sources")
    pages = list(paginator.paginate(FilterVariable="Name", Prefix=prefix, SortOrder="dsc",
                                    PaginationConfig={"PageSize": 2}))
    assert [len(p["Results"]) for p in pages] == [2, 2, 1]
    assert [r["DataSourceId"] for p in pages for r in p["Results"]] == ids[::-1]


def test_token_is_bound_to_query_and_account(ml, server, batch):
    prefix, _ = batch
    token = ml.describe_data_sources(FilterVariable="Name", Prefix=prefix, Limit=1)["NextToken"]
    with pytest.raises(ClientError) as excinfo:
        ml.describe_data_sources(FilterVariable="Name", Prefix="other", Limit=1, NextToken=token)
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"
    bob = server.client(server.other_keys)
    with pytest.raises(ClientError):
        bob.describe_data_sources(FilterVariable="Name", Prefix=prefix, Limit=1, NextToken=token)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(ClientError) as excinfo:
        ml.describe_data_sources(FilterVariable="Name", Prefix=prefix, Limit=1, NextToken=forged)
    assert "NextToken" in excinfo.value.response["Error"]["Message"]


def test_deleted_objects_only_with_status_filter(ml, batch):
    prefix, ids = batch
    ml.delete_data_source(DataSourceId=ids[0])
    listed = ml.describe_data_sources(FilterVariable="Name", Prefix=prefix)["Results"]
    assert ids[0] not in [r["DataSourceId"] for r in listed]
    deleted = ml.describe_data_sources(FilterVariable="Status", EQ="DELETED")["Results"]
    assert ids[0] in [r["DataSourceId"] for r in deleted]


def test_model_filters(ml):
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": f"s3://b/{ds_id}.csv"},
                                  ComputeStatistics=True)
    reg, binary = unique("ml"), unique("ml")
    ml.create_ml_model(MLModelId=reg, MLModelType="REGRESSION", TrainingDataSourceId=ds_id)
    ml.create_ml_model(MLModelId=binary, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    found = ml.describe_ml_models(FilterVariable="TrainingDataURI", EQ=f"s3://b/{ds_id}.csv")["Results"]
    assert {m["MLModelId"] for m in found} == {reg, binary}
    found = ml.describe_ml_models(FilterVariable="MLModelType", EQ="REGRESSION")["Results"]
    assert reg in {m["MLModelId"] for m in found} and binary not in {m["MLModelId"] for m in found}
    found = ml.describe_ml_models(FilterVariable="RealtimeEndpointStatus", EQ="NONE")["Results"]
    assert {reg, binary} <= {m["MLModelId"] for m in found}
    ev = unique("ev")
    ml.create_evaluation(EvaluationId=ev, MLModelId=reg, EvaluationDataSourceId=ds_id)
    assert [e["EvaluationId"] for e in ml.describe_evaluations(FilterVariable="MLModelId", EQ=reg)["Results"]] == [ev]
    assert [e["EvaluationId"] for e in ml.describe_evaluations(FilterVariable="DataSourceId", EQ=ds_id)["Results"]] == [ev]


def test_comparator_without_filter_variable(ml):
    with pytest.raises(ClientError) as excinfo:
        ml.describe_batch_predictions(EQ="x")
    assert "FilterVariable" in excinfo.value.response["Error"]["Message"]


def test_waiter_reports_failure(ml):
    """The DataSourceAvailable waiter stops as soon as a datasource FAILED."""
    from botocore.exceptions import WaiterError

    ds_id = unique("ds")
    location = f"s3://no-such-bucket/{ds_id}.csv"
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": location})
    waiter = ml.get_waiter("data_source_available")
    with pytest.raises(WaiterError) as excinfo:
        waiter.wait(FilterVariable="DataLocationS3", EQ=location, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert "failure state" in str(excinfo.value)
    assert ml.get_data_source(DataSourceId=ds_id)["Status"] == "FAILED"
