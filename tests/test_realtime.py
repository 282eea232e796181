"""Real-time endpoints and Predict through botocore's PredictEndpoint path."""
import json
import time

import pytest
from botocore.exceptions import ClientError

from learning_data import schema, write_dataset
from support import settle, unique, wait_for
from test_learning import artifact

RECIPE = json.dumps({"outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC", "lowercase(ALL_TEXT)"]})


def train(ml, server, tmp_path_factory, kind, n=2000):
    path = tmp_path_factory.getbasetemp() / f"rt-{kind}-{n}.csv"
    if not path.exists():
        write_dataset(path, n, kind, seed=5)
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": path.as_uri(), "DataSchema": schema(kind)})
    ml.create_ml_model(MLModelId=model_id, MLModelType=kind, TrainingDataSourceId=ds_id, Recipe=RECIPE)
    return model_id


def ready(ml, model_id):
    def check():
        info = ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]
        assert info["EndpointStatus"] != "FAILED", ml.get_ml_model(MLModelId=model_id).get("Message")
        return info if info["EndpointStatus"] == "READY" else None
    return wait_for(check, timeout=300, interval=0.2, message=f"{model_id} endpoint READY")


RECORD = {"x1": "1.2", "x2": "-0.3", "colour": "red", "text": "good great ok fine"}


def test_binary_endpoint_created_while_training(ml, server, tmp_path_factory):
    model_id = train(ml, server, tmp_path_factory, "BINARY")
    created = ml.create_realtime_endpoint(MLModelId=model_id)["RealtimeEndpointInfo"]
    assert created["EndpointStatus"] in ("UPDATING", "READY")
    info = ready(ml, model_id)
    assert info["EndpointUrl"] == server.url and info["PeakRequestsPerSecond"] == 200 and "CreatedAt" in info
    answer = ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=info["EndpointUrl"])["Prediction"]
    expected = artifact(server, model_id).predict_record(RECORD, 0.5)
    assert answer["details"] == {"PredictiveModelType": "BINARY", "Algorithm": "SGD"}
    assert answer["predictedLabel"] == expected.label
    assert answer["predictedScores"] == {expected.label: pytest.approx(expected.score, rel=1e-6)}
    # A new threshold applies to the very next request.
    score = expected.score
    ml.update_ml_model(MLModelId=model_id, ScoreThreshold=min(score + 0.01, 1.0))
    again = ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=info["EndpointUrl"])["Prediction"]
    assert again["predictedLabel"] == "0"
    ml.update_ml_model(MLModelId=model_id, ScoreThreshold=max(score - 0.01, 0.0))
    again = ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=info["EndpointUrl"])["Prediction"]
    assert again["predictedLabel"] == "1" and again["predictedScores"]["1"] == pytest.approx(score, rel=1e-6)
    # Missing variables are missing values; unknown ones are ignored.
    ml.predict(MLModelId=model_id, Record={"x1": "3", "nonsense": "x"}, PredictEndpoint=info["EndpointUrl"])


def test_predict_endpoint_overrides_client_endpoint(server, tmp_path_factory):
    ml = server.client()
    model_id = train(ml, server, tmp_path_factory, "BINARY")
    ml.create_realtime_endpoint(MLModelId=model_id)
    url = ready(ml, model_id)["EndpointUrl"]
    import boto3
    keys = server.default_keys
    stray = boto3.client("machinelearning", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                         aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key)
    assert stray.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=url)["Prediction"]["predictedLabel"]


def test_multiclass_and_regression_shapes(ml, server, tmp_path_factory):
    multi, reg = train(ml, server, tmp_path_factory, "MULTICLASS"), train(ml, server, tmp_path_factory, "REGRESSION")
    for model_id in (multi, reg):
        ml.create_realtime_endpoint(MLModelId=model_id)
    url = ready(ml, multi)["EndpointUrl"]
    ready(ml, reg)
    answer = ml.predict(MLModelId=multi, Record=RECORD, PredictEndpoint=url)["Prediction"]
    assert set(answer["predictedScores"]) == {"alpha", "beta", "gamma"}
    assert sum(answer["predictedScores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert answer["predictedLabel"] == max(answer["predictedScores"], key=answer["predictedScores"].get)
    assert answer["details"]["PredictiveModelType"] == "MULTICLASS"
    value = ml.predict(MLModelId=reg, Record=RECORD, PredictEndpoint=url)["Prediction"]
    assert set(value) == {"predictedValue", "details"}
    assert value["predictedValue"] == pytest.approx(artifact(server, reg).predict_record(RECORD).score, rel=1e-5)


def test_predict_errors(ml, server, tmp_path_factory):
    model_id = train(ml, server, tmp_path_factory, "BINARY")
    settle(ml.get_ml_model, MLModelId=model_id, timeout=300)
    with pytest.raises(ClientError) as excinfo:
        ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=server.url)
    assert excinfo.value.response["Error"]["Code"] == "PredictorNotMountedException"
    with pytest.raises(ClientError) as excinfo:
        ml.predict(MLModelId="ml-nobody", Record=RECORD, PredictEndpoint=server.url)
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    ml.create_realtime_endpoint(MLModelId=model_id)
    ready(ml, model_id)
    with pytest.raises(ClientError) as excinfo:
        ml.predict(MLModelId=model_id, Record={"text": "x" * 102400}, PredictEndpoint=server.url)
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"
    assert "100 KB" in excinfo.value.response["Error"]["Message"]
    deleted = ml.delete_realtime_endpoint(MLModelId=model_id)["RealtimeEndpointInfo"]
    assert deleted["EndpointStatus"] == "NONE"
    with pytest.raises(ClientError) as excinfo:
        ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=server.url)
    assert excinfo.value.response["Error"]["Code"] == "PredictorNotMountedException"


def test_endpoint_on_a_model_that_fails_fails_with_its_message(ml):
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://no-such-bucket/k.csv"},
                                  ComputeStatistics=True)
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    assert ml.create_realtime_endpoint(MLModelId=model_id)["RealtimeEndpointInfo"]["EndpointStatus"] == "UPDATING"

    def settled():
        model = ml.get_ml_model(MLModelId=model_id)
        return model if model["EndpointInfo"]["EndpointStatus"] != "UPDATING" else None
    model = wait_for(settled, timeout=120, message=f"{model_id}'s endpoint to settle")
    assert model["Status"] == "FAILED" and model["EndpointInfo"]["EndpointStatus"] == "FAILED"
    assert ds_id in model["Message"]
    with pytest.raises(ClientError) as excinfo:
        ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=model["EndpointInfo"]["EndpointUrl"])
    assert excinfo.value.response["Error"]["Code"] == "PredictorNotMountedException"


def test_rate_limit_and_restart(fresh_server, tmp_path_factory):
    server = fresh_server("--peak-requests-per-second", "5", "--allow-local-path", str(tmp_path_factory.getbasetemp()),
                          "--public-url", "https://ml.example.test:8443")
    ml = server.client()
    model_id = train(ml, server, tmp_path_factory, "BINARY")
    ml.create_realtime_endpoint(MLModelId=model_id)
    assert ready(ml, model_id)["EndpointUrl"] == "https://ml.example.test:8443"  # what the operator published
    url = server.url
    assert ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["PeakRequestsPerSecond"] == 5
    codes = []
    for _ in range(12):
        try:
            ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=url)
            codes.append("ok")
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])
    assert "LimitExceededException" in codes and codes.count("ok") >= 5
    server.restart()
    ml = server.client()
    assert ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["EndpointStatus"] == "READY"
    time.sleep(1.1)
    assert ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=server.url)["Prediction"]["predictedLabel"]
