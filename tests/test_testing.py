"""treadle.testing: the in-process mock as a decorator (on functions and
classes), a context manager and the treadle_mock fixture; moto's S3 in
either order; eager and background jobs; isolation; misuse errors; and the
threaded server driven by the AWS CLI and the JavaScript SDK.

Models are checked against their artifacts scored here: a Predict, an
evaluation's AUC and a batch prediction's scores must be what the trained
model gives.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError
from moto import mock_aws
from sklearn.metrics import roc_auc_score

from learning_data import schema, write_dataset
from support import wait_for
from test_console_models import exact_scores
from test_js_sdk import JS_DIR, node  # noqa: F401 (a fixture)
from test_learning import artifact
from treadle.jobs import kinds
from treadle.testing import MockMisuseError, mock_machinelearning, server

ROOT = Path(__file__).resolve().parent.parent
RECORD = {"x1": "1.2", "x2": "-0.3", "colour": "red", "text": "good great ok fine"}
REALTIME_URL = "https://realtime.machinelearning.us-east-1.amazonaws.com"
TEMP = tempfile.gettempdir()
FAST = {"Delay": 0.05, "MaxAttempts": 400}


def client(key: str = "111111111111", region: str = "us-east-1", **kwargs):
    return boto3.client("machinelearning", region_name=region, aws_access_key_id=key,
                        aws_secret_access_key="any secret", **kwargs)


# Made when the module is imported, before any mock starts: answered all the same.
EARLY = client(region="ap-southeast-2")


def dataset(folder: Path, rows: int, seed: int) -> Path:
    path = folder / f"binary-{rows}-{seed}.csv"
    write_dataset(path, rows, "BINARY", seed=seed)
    return path


def create_datasource(ml, ds_id: str, location: str) -> None:
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": location, "DataSchema": schema("BINARY")})


def check_scores(rows: list[str], expected) -> None:
    """Batch prediction rows (tag,trueLabel,bestAnswer,score) against the
    artifact's own scores of the same records."""
    assert len(rows) == len(expected)
    for row, score in zip(rows, expected):
        tag, _, best, written = row.split(",")
        assert float(written) == pytest.approx(float(score), rel=1e-5, abs=1e-7), tag
        assert best == ("1" if float(written) >= 0.5 else "0")


def check_prediction(ml, mock, model_id: str, endpoint_url: str) -> None:
    answer = ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=endpoint_url)["Prediction"]
    expected = artifact(mock, model_id).predict_record(RECORD, 0.5)
    assert answer["details"] == {"PredictiveModelType": "BINARY", "Algorithm": "SGD"}
    assert answer["predictedLabel"] == expected.label
    assert answer["predictedScores"] == {expected.label: pytest.approx(expected.score, rel=1e-6)}


# -- the decorator on a function: the whole service, eagerly -----------------------------------
EAGER = mock_machinelearning(jobs="eager", allow_local_path=TEMP)


@EAGER
def test_decorated_function_trains_evaluates_scores_and_predicts():
    folder = Path(tempfile.mkdtemp())
    try:
        train, test = dataset(folder, 1000, seed=5), dataset(folder, 400, seed=6)
        ml = client()
        create_datasource(ml, "train", train.as_uri())
        create_datasource(ml, "test", test.as_uri())
        ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="train")
        ml.create_evaluation(EvaluationId="evaluation", MLModelId="model", EvaluationDataSourceId="test")
        output = (folder / "out").as_uri() + "/"
        ml.create_batch_prediction(BatchPredictionId="batch", MLModelId="model", BatchPredictionDataSourceId="test",
                                   OutputUri=output)
        # Each job ran to its end within its Create* call.
        for get, key in ((ml.get_data_source, {"DataSourceId": "train"}), (ml.get_ml_model, {"MLModelId": "model"}),
                         (ml.get_evaluation, {"EvaluationId": "evaluation"}),
                         (ml.get_batch_prediction, {"BatchPredictionId": "batch"})):
            got = get(**key)
            assert got["Status"] == "COMPLETED", got.get("Message")
        assert ml.get_data_source(DataSourceId="train")["NumberOfFiles"] == 1

        model = artifact(EAGER, "model")
        scores, labels = exact_scores(model, test)
        auc = ml.get_evaluation(EvaluationId="evaluation")["PerformanceMetrics"]["Properties"]["BinaryAUC"]
        assert float(auc) == pytest.approx(roc_auc_score([int(y) for y in labels], scores), abs=1e-12)
        assert float(auc) > 0.75  # the data carries a signal the model must have learnt

        result = folder / "out" / "batch-prediction" / "result" / f"batch-{test.name}.gz"
        lines = gzip.decompress(result.read_bytes()).decode().split("\n")
        assert lines[0] == "tag,trueLabel,bestAnswer,score" and lines[-1] == ""
        check_scores(lines[1:-1], scores)

        info = ml.create_realtime_endpoint(MLModelId="model")["RealtimeEndpointInfo"]
        assert info["EndpointStatus"] == "READY" and info["EndpointUrl"] == REALTIME_URL
        check_prediction(ml, EAGER, "model", info["EndpointUrl"])
    finally:
        shutil.rmtree(folder)


# -- the decorator on classes: one activation spans set-up, test and tear-down -----------------
def _setup_datasource(test) -> None:
    test.folder = Path(tempfile.mkdtemp())
    test.ml = client()
    create_datasource(test.ml, "from-setup", dataset(test.folder, 100, seed=1).as_uri())


def _own_datasources(ml) -> list[str]:
    return sorted(entry["DataSourceId"] for entry in ml.describe_data_sources()["Results"])


@mock_machinelearning(jobs="eager", allow_local_path=TEMP)
class TestDecoratedTestCase(unittest.TestCase):
    def setUp(self):
        _setup_datasource(self)

    def tearDown(self):
        # Still inside the activation: the objects are there.
        assert "from-setup" in _own_datasources(self.ml)
        shutil.rmtree(self.folder)

    def test_sees_what_setup_made(self):
        self.assertEqual(self.ml.get_data_source(DataSourceId="from-setup")["Status"], "COMPLETED")
        create_datasource(self.ml, "only-here", (self.folder / "binary-100-1.csv").as_uri())
        self.assertEqual(_own_datasources(self.ml), ["from-setup", "only-here"])

    def test_starts_empty_but_for_setup(self):
        self.assertEqual(_own_datasources(self.ml), ["from-setup"])


@mock_machinelearning(jobs="eager", allow_local_path=TEMP)
class TestDecoratedPytestClass:
    def setup_method(self):
        _setup_datasource(self)

    def teardown_method(self, method):
        assert "from-setup" in _own_datasources(self.ml), method.__name__
        shutil.rmtree(self.folder)

    def test_sees_what_setup_made(self):
        create_datasource(self.ml, "only-here", (self.folder / "binary-100-1.csv").as_uri())
        assert _own_datasources(self.ml) == ["from-setup", "only-here"]

    def test_starts_empty_but_for_setup(self):
        assert _own_datasources(self.ml) == ["from-setup"]


@mock_machinelearning
class TestBareDecoratorOnAClass:
    def test_each_test_is_inside_an_empty_activation(self):
        from treadle.testing.mock import active

        assert active() is not None and active().jobs == "background"
        assert client().describe_data_sources()["Results"] == []


def test_decorated_coroutine_function_runs_inside_the_mock():
    import asyncio

    @mock_machinelearning
    async def describe():
        return client().describe_ml_models()["Results"]

    assert asyncio.run(describe()) == []


def test_no_mock_is_left_active_after_decorated_tests():
    from treadle.testing.mock import active

    assert active() is None and EAGER.data_dir is None


# -- the context manager, background jobs ------------------------------------------------------
@pytest.fixture
def gated_datasources(monkeypatch):
    """Datasource jobs wait, once started, until the test opens the gate."""
    started, gate = threading.Event(), threading.Event()
    run = kinds.JOB_FUNCTIONS["DataSource"]

    def gated(ctx):
        started.set()
        assert gate.wait(60), "the test never opened the gate"
        return run(ctx)

    monkeypatch.setitem(kinds.JOB_FUNCTIONS, "DataSource", gated)
    yield started, gate
    gate.set()


def test_background_jobs_run_after_create_returns(tmp_path, gated_datasources):
    started, gate = gated_datasources
    path = dataset(tmp_path, 600, seed=3)
    with mock_machinelearning(allow_local_path=tmp_path) as mock:
        assert mock.jobs == "background"
        ml = client()
        create_datasource(ml, "ds", path.as_uri())
        ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
        assert started.wait(30)
        # Create* returned while the datasource's job runs in the background.
        assert ml.get_data_source(DataSourceId="ds")["Status"] == "INPROGRESS"
        assert ml.get_ml_model(MLModelId="model")["Status"] == "PENDING"
        waiter = ml.get_waiter("ml_model_available")
        with pytest.raises(WaiterError, match="Max attempts exceeded"):
            waiter.wait(FilterVariable="TrainingDataSourceId", EQ="ds", WaiterConfig={"Delay": 0.05, "MaxAttempts": 3})
        gate.set()
        waiter.wait(FilterVariable="TrainingDataSourceId", EQ="ds", WaiterConfig=FAST)
        model = ml.get_ml_model(MLModelId="model")
        assert model["Status"] == "COMPLETED" and model["FinishedAt"] >= model["StartedAt"]

        # An endpoint made while a model trains is mounted when it completes.
        ml.create_ml_model(MLModelId="second", MLModelType="BINARY", TrainingDataSourceId="ds")
        info = ml.create_realtime_endpoint(MLModelId="second")["RealtimeEndpointInfo"]
        assert info["EndpointStatus"] in ("UPDATING", "READY")
        wait_for(lambda: ml.get_ml_model(MLModelId="second")["EndpointInfo"]["EndpointStatus"] == "READY",
                 timeout=60, message="the endpoint to be READY")
        check_prediction(ml, mock, "second", "https://anywhere.example/predict")


def test_a_failed_input_fails_its_dependents_with_the_reason(tmp_path):
    with mock_machinelearning(allow_local_path=tmp_path):
        ml = client()
        create_datasource(ml, "ds", (tmp_path / "missing.csv").as_uri())
        ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
        with pytest.raises(WaiterError, match="failure state"):
            ml.get_waiter("ml_model_available").wait(FilterVariable="TrainingDataSourceId", EQ="ds", WaiterConfig=FAST)
        assert "no such file" in ml.get_data_source(DataSourceId="ds")["Message"]
        model = ml.get_ml_model(MLModelId="model")
        assert model["Status"] == "FAILED" and "training datasource ds FAILED" in model["Message"]


# -- the fixture ------------------------------------------------------------------------------
@pytest.fixture
def s3_bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ml-data")
        yield s3


def test_fixture_background_jobs_inside_moto(s3_bucket, treadle_mock, tmp_path):
    # s3_bucket comes first: Treadle's mock runs inside moto's.
    s3_bucket.put_object(Bucket="ml-data", Key="train.csv", Body=dataset(tmp_path, 500, seed=4).read_bytes())
    ml = client()
    create_datasource(ml, "ds", "s3://ml-data/train.csv")
    ml.get_waiter("data_source_available").wait(FilterVariable="DataLocationS3", EQ="s3://ml-data/train.csv",
                                                WaiterConfig=FAST)
    got = ml.get_data_source(DataSourceId="ds", Verbose=True)
    assert got["DataSizeInBytes"] == (tmp_path / "binary-500-4.csv").stat().st_size
    assert treadle_mock.jobs == "background" and treadle_mock.data_dir.is_dir()


@pytest.mark.treadle_mock(jobs="eager", allow_local_path=TEMP)
def test_fixture_takes_its_options_from_the_marker(treadle_mock):
    assert treadle_mock.jobs == "eager"
    with tempfile.TemporaryDirectory() as folder:
        create_datasource(client(), "ds", dataset(Path(folder), 100, seed=2).as_uri())
        assert client().get_data_source(DataSourceId="ds")["Status"] == "COMPLETED"


# -- moto: S3 data in, batch results out, whichever mock starts first ---------------------------
@pytest.mark.parametrize("moto_first", [True, False], ids=["treadle-inside-moto", "moto-inside-treadle"])
def test_s3_locations_are_moto_s3_in_either_order(moto_first, tmp_path):
    path = dataset(tmp_path, 600, seed=7)
    mock = mock_machinelearning(jobs="eager")
    outer, inner = (mock_aws(), mock) if moto_first else (mock, mock_aws())
    with outer, inner:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ml-data")
        s3.put_object(Bucket="ml-data", Key="in/train.csv", Body=path.read_bytes())
        ml = client()
        create_datasource(ml, "ds", "s3://ml-data/in/train.csv")
        ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
        ml.create_batch_prediction(BatchPredictionId="batch", MLModelId="model", BatchPredictionDataSourceId="ds",
                                   OutputUri="s3://ml-data/out/")
        got = ml.get_batch_prediction(BatchPredictionId="batch")
        assert got["Status"] == "COMPLETED", got.get("Message")

        manifest = s3.get_object(Bucket="ml-data", Key="out/batch-prediction/batch.manifest")["Body"].read()
        result = "s3://ml-data/out/batch-prediction/result/batch-train.csv.gz"
        assert json.loads(manifest) == {"s3://ml-data/in/train.csv": result}
        body = s3.get_object(Bucket="ml-data", Key=result.removeprefix("s3://ml-data/"))["Body"].read()
        lines = gzip.decompress(body).decode().split("\n")
        check_scores(lines[1:-1], exact_scores(artifact(mock, "model"), path)[0])
    assert mock.data_dir is None


def test_s3_outside_moto_follows_the_standard_aws_configuration(s3, monkeypatch, tmp_path):
    """The `s3` fixture is moto's S3 server in its own process, reached as
    any S3-compatible store: through AWS_ENDPOINT_URL_S3."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    bucket = f"mock-{os.getpid()}"
    store = s3.client()
    store.create_bucket(Bucket=bucket)
    store.put_object(Bucket=bucket, Key="train.csv", Body=dataset(tmp_path, 300, seed=8).read_bytes())
    with mock_machinelearning(jobs="eager"):
        ml = client()
        create_datasource(ml, "ds", f"s3://{bucket}/train.csv")
        got = ml.get_data_source(DataSourceId="ds")
        assert got["Status"] == "COMPLETED", got.get("Message")


# -- clients, accounts and activations ----------------------------------------------------------
def test_every_client_is_answered_whatever_its_region_endpoint_or_making(tmp_path):
    with mock_machinelearning(jobs="eager", allow_local_path=tmp_path) as mock:
        inside = client(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
        create_datasource(inside, "ds", dataset(tmp_path, 300, seed=9).as_uri())
        elsewhere = client(region="sa-east-1", endpoint_url="https://machinelearning.example.invalid")
        for ml in (EARLY, elsewhere):
            assert ml.get_data_source(DataSourceId="ds")["Status"] == "COMPLETED"
        EARLY.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
        elsewhere.create_realtime_endpoint(MLModelId="model")
        # Predict goes to PredictEndpoint, whatever it is.
        for url in (REALTIME_URL, "http://127.0.0.1:9/", "https://predict.example.invalid/any/path"):
            check_prediction(inside, mock, "model", url)


def test_a_client_of_a_session_older_than_the_import_is_answered():
    code = """
import boto3
old = boto3.client("machinelearning", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
from treadle.testing import mock_machinelearning
new = boto3.client("machinelearning", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
with mock_machinelearning():
    print(new.describe_ml_models()["Results"])
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_accounts_come_from_the_access_key(tmp_path):
    with mock_machinelearning(jobs="eager", allow_local_path=tmp_path):
        path = dataset(tmp_path, 100, seed=1).as_uri()
        alice, bob, anyone = client("111111111111"), client("222222222222"), client("AKIAIOSFODNN7EXAMPLE")
        create_datasource(alice, "ds", path)
        assert alice.get_data_source(DataSourceId="ds")["CreatedByIamUser"].startswith("arn:aws:iam::111111111111:")
        with pytest.raises(ClientError) as missing:
            bob.get_data_source(DataSourceId="ds")
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
        # The same ID in another account is another object.
        bob.create_data_source_from_s3(DataSourceId="ds", DataSpec={"DataLocationS3": path}, ComputeStatistics=False)
        assert bob.get_data_source(DataSourceId="ds")["ComputeStatistics"] is False
        assert alice.get_data_source(DataSourceId="ds")["ComputeStatistics"] is True
        # A key that is not 12 digits is account 000000000000, as with --auth none.
        assert anyone.describe_data_sources()["Results"] == []
        create_datasource(anyone, "ds", path)
        assert ":000000000000:" in anyone.get_data_source(DataSourceId="ds")["CreatedByIamUser"]


def test_each_activation_starts_empty_and_reset_empties_it(tmp_path):
    path = dataset(tmp_path, 100, seed=1).as_uri()
    mock = mock_machinelearning(jobs="eager", allow_local_path=tmp_path)
    with mock:
        ml = client()
        create_datasource(ml, "ds", path)
        first = mock.data_dir
        mock.reset()
        assert not first.exists() and mock.data_dir.is_dir()
        assert ml.describe_data_sources()["Results"] == []
        # Nothing remembers the old object: the same ID with other parameters is new.
        ml.create_data_source_from_s3(DataSourceId="ds", DataSpec={"DataLocationS3": path}, ComputeStatistics=False)
        second = mock.data_dir
    assert mock.data_dir is None and not second.exists()
    with mock:
        assert client().describe_data_sources()["Results"] == []


def test_nothing_touches_the_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the mock opened a connection or a port")

    path = dataset(tmp_path, 300, seed=2).as_uri()
    for name in ("connect", "connect_ex", "bind", "listen"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for jobs in ("eager", "background"):
        with mock_machinelearning(jobs=jobs, allow_local_path=tmp_path):
            ml = client(endpoint_url="https://machinelearning.example.invalid")
            create_datasource(ml, "ds", path)
            ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
            ml.get_waiter("ml_model_available").wait(FilterVariable="TrainingDataSourceId", EQ="ds", WaiterConfig=FAST)
            url = ml.create_realtime_endpoint(MLModelId="model")["RealtimeEndpointInfo"]["EndpointUrl"]
            assert ml.predict(MLModelId="model", Record=RECORD, PredictEndpoint=url)["Prediction"]["predictedLabel"]


def test_errors_are_the_services_own(treadle_mock):
    ml = client()
    with pytest.raises(ClientError) as invalid:
        ml.describe_data_sources(FilterVariable="Colour", EQ="x")
    error = invalid.value.response
    assert error["Error"]["Code"] == "InvalidInputException" and "FilterVariable" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400 and error["ResponseMetadata"]["RequestId"]
    with pytest.raises(ml.exceptions.ResourceNotFoundException):
        ml.get_ml_model(MLModelId="absent")


# -- misuse --------------------------------------------------------------------------------------
def test_nesting_says_to_use_the_active_mock(treadle_mock):
    with pytest.raises(MockMisuseError, match=r"cannot be nested.*reset\(\)"):
        with mock_machinelearning():
            pass
    with pytest.raises(MockMisuseError, match="cannot be nested"):
        EAGER(lambda: None)()
    # The active mock is untouched.
    assert client().describe_ml_models()["Results"] == [] and treadle_mock.data_dir.is_dir()


def test_eager_model_on_a_datasource_still_running(tmp_path, gated_datasources):
    started, gate = gated_datasources
    path = dataset(tmp_path, 300, seed=3).as_uri()
    with mock_machinelearning(jobs="eager", allow_local_path=tmp_path):
        ml = client()
        creating = threading.Thread(target=create_datasource, args=(ml, "ds", path))
        creating.start()
        assert started.wait(30)
        with pytest.raises(MockMisuseError, match=r'training datasource ds is still INPROGRESS.*jobs="background"'):
            ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
        assert ml.get_ml_model(MLModelId="model")["Status"] == "PENDING"
        gate.set()
        creating.join(60)
        # The datasource's eager run went on to the model waiting for it.
        assert ml.get_data_source(DataSourceId="ds")["Status"] == "COMPLETED"
        assert ml.get_ml_model(MLModelId="model")["Status"] == "COMPLETED"


def test_a_location_not_allowed_says_how_to_allow_it(tmp_path):
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    allowed.mkdir()
    with mock_machinelearning(jobs="eager", allow_local_path=allowed):
        ml = client()
        with pytest.raises(MockMisuseError) as raised:
            create_datasource(ml, "ds", (other / "data.csv").as_uri())
        message = str(raised.value)
        assert (other / "data.csv").as_uri() in message and str(allowed) in message
        assert "allow_local_path" in message
        create_datasource(ml, "ds", dataset(allowed, 100, seed=1).as_uri())
        ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
        with pytest.raises(MockMisuseError, match="allow_local_path"):
            ml.create_batch_prediction(BatchPredictionId="batch", MLModelId="model", BatchPredictionDataSourceId="ds",
                                       OutputUri=other.as_uri() + "/")
    with mock_machinelearning():
        with pytest.raises(MockMisuseError, match=r"\(none\)"):
            create_datasource(client(), "ds", (allowed / "binary-100-1.csv").as_uri())


def test_unknown_job_mode_is_refused():
    with pytest.raises(ValueError, match='"background" or "eager"'):
        mock_machinelearning(jobs="sync")


def test_the_pytest_plugin_imports_nothing_heavy():
    code = ("import sys, treadle.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('treadle', 'botocore', 'boto3', 'numpy')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['treadle', 'treadle.pytest_plugin']"


# -- the threaded server -----------------------------------------------------------------------
def test_threaded_server_for_the_aws_cli_and_the_javascript_sdk(node, tmp_path):  # noqa: F811
    path = dataset(tmp_path, 600, seed=11)
    with server(allow_local_path=tmp_path, account="333333333333") as treadle:
        assert treadle.url.startswith("http://127.0.0.1:") and treadle.account == "333333333333"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(treadle.env, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                   AWS_MAX_ATTEMPTS="1")

        def aws(*args: str) -> dict:
            # No --endpoint-url: the environment names the server.
            done = subprocess.run([sys.executable, "-m", "awscli", "machinelearning", *args, "--output", "json"],
                                  capture_output=True, text=True, env=env, timeout=120)
            assert done.returncode == 0, (args, done.stderr)
            return json.loads(done.stdout) if done.stdout.strip() else {}

        aws("create-data-source-from-s3", "--data-source-id", "ds", "--compute-statistics", "--data-spec",
            json.dumps({"DataLocationS3": path.as_uri(), "DataSchema": schema("BINARY")}))
        aws("create-ml-model", "--ml-model-id", "model", "--ml-model-type", "BINARY",
            "--training-data-source-id", "ds")
        ml = treadle.client()
        ml.get_waiter("ml_model_available").wait(FilterVariable="TrainingDataSourceId", EQ="ds", WaiterConfig=FAST)
        described = aws("describe-ml-models")["Results"]
        assert [(m["MLModelId"], m["Status"]) for m in described] == [("model", "COMPLETED")]
        assert described[0]["CreatedByIamUser"] == "arn:aws:iam::333333333333:user/test"
        aws("create-realtime-endpoint", "--ml-model-id", "model")
        endpoint = aws("get-ml-model", "--ml-model-id", "model")["EndpointInfo"]
        assert endpoint["EndpointStatus"] == "READY" and endpoint["EndpointUrl"] == treadle.url

        js_env = {**env, "TREADLE_MODELS": json.dumps([{"modelId": "model", "endpointUrl": endpoint["EndpointUrl"]}]),
                  "TREADLE_RECORD": json.dumps(RECORD)}
        done = subprocess.run([node, str(JS_DIR / "predict.mjs")], cwd=JS_DIR, env=js_env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        from_js = json.loads(done.stdout.strip().splitlines()[-1])[0]
        from_boto = ml.predict(MLModelId="model", Record=RECORD, PredictEndpoint=endpoint["EndpointUrl"])["Prediction"]
        assert from_js["predictedLabel"] == from_boto["predictedLabel"]
        assert from_js["predictedScores"] == pytest.approx(from_boto["predictedScores"])
        port = int(treadle.url.rsplit(":", 1)[1])
    # Stopped: the port is closed and no thread of the server is left.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert not [t for t in threading.enumerate() if t.name in ("treadle-server", "treadle-jobs")]


def test_threaded_server_checks_signatures():
    with server() as treadle:
        stranger = boto3.client("machinelearning", endpoint_url=treadle.url, region_name=treadle.region,
                                aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key="wrong")
        with pytest.raises(ClientError) as refused:
            stranger.describe_ml_models()
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        assert treadle.client().describe_ml_models()["Results"] == []
