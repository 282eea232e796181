"""Failures a user can cause, or that happen to stored data, surface as a
clear client error or a FAILED status with a plain Message: never a 500,
never an internal exception's text, never a path of the server's own."""
from __future__ import annotations

import json
import os

import pytest
from botocore.exceptions import ClientError

from learning_data import schema, write_dataset
from support import settle, signed_post, unique


def _no_internals(text: str, server) -> None:
    assert "Internal error" not in text and "Traceback" not in text and "Errno" not in text, text
    assert str(server.data_dir) not in text, text


def test_a_huge_integer_is_a_client_error(server):
    status, body = signed_post(server.url + "/", server.default_keys, "DescribeDataSources",
                               b'{"Limit": ' + b"7" * 5000 + b"}")
    assert status == 400, body
    assert body["__type"] == "SerializationException"
    assert "too many digits" in body["message"] and "set_int_max_str_digits" not in body["message"]


def test_a_nul_in_a_file_uri_is_refused(server, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp().as_uri()
    with pytest.raises(ClientError) as excinfo:
        server.client().create_data_source_from_s3(
            DataSourceId=unique("ds"), DataSpec={"DataLocationS3": f"{folder}/a%00b.csv"})
    error = excinfo.value.response["Error"]
    assert error["Code"] == "InvalidInputException" and "NUL" in error["Message"]


@pytest.mark.parametrize("content", [
    os.urandom(64 * 1024),
    b"\x00" * 20000,
    b"\xff\xfe" + "a,b\n1,2\n".encode("utf-16-le"),
], ids=["random-bytes", "nul-filled", "utf-16"])
def test_schema_inference_on_data_that_is_not_csv_text_fails_plainly(server, tmp_path, content):
    path = tmp_path / "garbage.csv"
    path.write_bytes(content)
    ml = server.client()
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": path.as_uri()},
                                  ComputeStatistics=True)
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "FAILED"
    assert "Cannot infer a schema" in got["Message"] and "is this a CSV file?" in got["Message"], got["Message"]
    _no_internals(got["Message"], server)


def test_mixed_line_endings_are_read_and_a_stray_carriage_return_rejects_one_record(server, tmp_path):
    lines = [b"x,y\n"] + [f"{i},{i % 2}".encode() + (b"\r\n" if i % 3 else b"\n") for i in range(200)]
    lines[50] = b"7,\r1\n"  # a carriage return inside a record
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"".join(lines))
    ml = server.client()
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": path.as_uri()},
                                  ComputeStatistics=True)
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "COMPLETED", got.get("Message")
    used = json.loads(ml.get_data_source(DataSourceId=ds_id, Verbose=True)["DataSourceSchema"])
    assert [a["attributeName"] for a in used["attributes"]] == ["x", "y"]
    assert used["dataFileContainsHeader"] is True


@pytest.fixture(scope="module")
def two_models(server, tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / f"plain-failures-{server.backend}.csv"
    write_dataset(path, 600, "BINARY", seed=3)
    ml = server.client()
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": path.as_uri(), "DataSchema": schema("BINARY")})
    models = [unique("ml"), unique("ml")]
    for model_id in models:
        ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    for model_id in models:
        assert settle(ml.get_ml_model, MLModelId=model_id, timeout=300)["Status"] == "COMPLETED"
    return ds_id, models


def _artifact_path(server, model_id):
    return next(server.data_dir.glob(f"artifacts/models/*/{model_id}.model"))


def test_a_corrupt_model_fails_its_endpoint_and_says_why(server, two_models):
    _, (corrupt, _) = two_models
    path = _artifact_path(server, corrupt)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: still a readable archive, perhaps
    path.write_bytes(bytes(data))
    ml = server.client()
    info = ml.create_realtime_endpoint(MLModelId=corrupt)["RealtimeEndpointInfo"]
    assert info["EndpointStatus"] == "FAILED"
    model = ml.get_ml_model(MLModelId=corrupt)
    assert model["Status"] == "FAILED" and model["EndpointInfo"]["EndpointStatus"] == "FAILED"
    assert "corrupt" in model["Message"] and "checksum" in model["Message"], model["Message"]
    _no_internals(model["Message"], server)


def test_a_missing_model_fails_the_evaluation_that_needs_it(server, two_models):
    ds_id, (_, missing) = two_models
    _artifact_path(server, missing).unlink()
    ml = server.client()
    ev_id = unique("ev")
    ml.create_evaluation(EvaluationId=ev_id, MLModelId=missing, EvaluationDataSourceId=ds_id)
    evaluation = settle(ml.get_evaluation, EvaluationId=ev_id)
    assert evaluation["Status"] == "FAILED"
    assert f"MLModel {missing} cannot be used" in evaluation["Message"] and "missing" in evaluation["Message"]
    _no_internals(evaluation["Message"], server)
    model = ml.get_ml_model(MLModelId=missing)
    assert model["Status"] == "FAILED" and "missing" in model["Message"]


def test_an_output_uri_naming_a_file_is_refused(server, tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("mine")
    for uri in (existing.as_uri(), existing.as_uri() + "/below/"):
        with pytest.raises(ClientError) as excinfo:
            server.client().create_batch_prediction(
                BatchPredictionId=unique("bp"), MLModelId="m", BatchPredictionDataSourceId="d", OutputUri=uri)
        error = excinfo.value.response["Error"]
        assert error["Code"] == "InvalidInputException" and "must name a folder" in error["Message"]
    assert existing.read_text() == "mine"


def test_a_model_lost_while_its_endpoint_is_ready_answers_predict_plainly(fresh_server, tmp_path):
    """After a restart a READY endpoint loads its model at the first Predict;
    a model gone from the artifact store then fails with the reason, and
    Predict says so instead of answering an internal error."""
    server = fresh_server("--allow-local-path", str(tmp_path))
    path = tmp_path / "lost.csv"
    write_dataset(path, 600, "BINARY", seed=4)
    ml = server.client()
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": path.as_uri(), "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    assert settle(ml.get_ml_model, MLModelId=model_id, timeout=300)["Status"] == "COMPLETED"
    assert ml.create_realtime_endpoint(MLModelId=model_id)["RealtimeEndpointInfo"]["EndpointStatus"] == "READY"
    server.restart()
    _artifact_path(server, model_id).unlink()
    ml = server.client()
    url = ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["EndpointUrl"]
    with pytest.raises(ClientError) as excinfo:
        ml.predict(MLModelId=model_id, Record={"x1": "1"}, PredictEndpoint=url)
    error = excinfo.value.response["Error"]
    assert error["Code"] == "PredictorNotMountedException" and "missing" in error["Message"]
    _no_internals(error["Message"], server)
    model = ml.get_ml_model(MLModelId=model_id)
    assert model["Status"] == "FAILED" and model["EndpointInfo"]["EndpointStatus"] == "FAILED"


def test_training_on_more_than_ten_thousand_records_without_a_target_fails_with_the_counts(server, tmp_path):
    """The datasource keeps records whose target is missing (only training
    and evaluation need it); training then rejects them, and past 10,000 the
    model fails saying so, not with an internal error."""
    path = tmp_path / "no-targets.csv"
    path.write_text("x,y\n" + "".join(f"{i},\n" for i in range(10050)) + "".join(f"{i},{i % 2}\n" for i in range(50)))
    ml = server.client()
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": path.as_uri(), "DataSchema": json.dumps({
            "version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": True,
            "attributes": [{"attributeName": "x", "attributeType": "NUMERIC"},
                           {"attributeName": "y", "attributeType": "BINARY"}]})})
    assert settle(ml.get_data_source, DataSourceId=ds_id)["Status"] == "COMPLETED"
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    model = settle(ml.get_ml_model, MLModelId=model_id, timeout=300)
    assert model["Status"] == "FAILED" and "More than 10,000 records were rejected" in model["Message"], model
    _no_internals(model["Message"], server)
