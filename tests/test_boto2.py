"""boto 2.49, the client of AWS's own Amazon ML samples (ml-tools-python,
k-fold cross-validation), against a live server.

boto 2 differs from botocore in three ways that matter here: it signs only
`host` and the `x-amz-*` headers, its `predict` sends `PredictEndpoint` as a
bare host name (`urlsplit(url).hostname`, so without scheme or port), and
it picks its exception class by the error body's bare `__type`.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from learning_data import schema, write_dataset
from support import unique

boto = pytest.importorskip("boto", reason="boto 2 is installed by the test extra")


@pytest.fixture
def connection(server):
    from boto.machinelearning.layer1 import MachineLearningConnection
    from boto.regioninfo import RegionInfo

    address = urlsplit(server.url)
    return MachineLearningConnection(
        region=RegionInfo(name="us-east-1", endpoint=address.hostname),
        host=address.hostname, port=address.port, is_secure=False,
        aws_access_key_id=server.default_keys.access_key_id,
        aws_secret_access_key=server.default_keys.secret_access_key)


def _wait(get, key: str, status_key: str = "Status", want: str = "COMPLETED", timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        answer = get(key)
        value = answer[status_key] if status_key == "Status" else answer["EndpointInfo"]["EndpointStatus"]
        assert value != "FAILED", answer
        if value == want:
            return answer
        time.sleep(0.3)
    raise AssertionError(f"{key} did not reach {want}")


def test_boto2_trains_mounts_and_predicts(connection, tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "boto2-binary.csv"
    if not path.exists():
        write_dataset(path, 1000, "BINARY", seed=11)
    ds_id, model_id = unique("ds"), unique("ml")
    connection.create_data_source_from_s3(
        ds_id, {"DataLocationS3": path.as_uri(), "DataSchema": schema("BINARY")}, compute_statistics=True)
    connection.create_ml_model(model_id, "BINARY", ds_id)
    _wait(connection.get_data_source, ds_id)
    _wait(connection.get_ml_model, model_id)
    connection.create_realtime_endpoint(model_id)
    info = _wait(connection.get_ml_model, model_id, "EndpointInfo", "READY")["EndpointInfo"]
    answer = connection.predict(model_id, {"x1": "1.2", "x2": "-0.3", "colour": "red", "text": "good"},
                                info["EndpointUrl"])
    prediction = answer["Prediction"]
    assert prediction["predictedLabel"] in ("0", "1")
    assert set(prediction["predictedScores"]) == {prediction["predictedLabel"]}
    assert prediction["details"] == {"PredictiveModelType": "BINARY", "Algorithm": "SGD"}


def test_boto2_raises_the_typed_error(connection):
    from boto.machinelearning.exceptions import InvalidInputException, ResourceNotFoundException

    with pytest.raises(ResourceNotFoundException) as excinfo:
        connection.get_ml_model(unique("missing"))
    assert excinfo.value.status == 400
    with pytest.raises(InvalidInputException):
        connection.describe_ml_models(filter_variable="NoSuchVariable")
