"""The AWS SDK for JavaScript v3 (@aws-sdk/client-machine-learning) on
Node.js against a live server: tests/js/smoke.mjs does the calls and prints a
JSON summary that is checked here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from support import service_missing, unique

JS_DIR = Path(__file__).parent / "js"
SDK = JS_DIR / "node_modules" / "@aws-sdk" / "client-machine-learning"

pytestmark = pytest.mark.node


@pytest.fixture(scope="session")
def node():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        service_missing("Node.js", "node and npm must be on PATH")
    if not SDK.exists():
        command = [npm, "ci" if (JS_DIR / "package-lock.json").exists() else "install",
                   "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=JS_DIR, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    assert SDK.exists()
    return node


@pytest.fixture(scope="module")
def run(node, server):
    """Run smoke.mjs once per server; return (prefix, start time, summary)."""
    prefix = unique("js")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "TREADLE_ENDPOINT": server.url,
        "TREADLE_PREFIX": prefix,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": server.default_keys.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.default_keys.secret_access_key,
        # Keep any config on the machine out of the SDK's way.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    started = time.time()
    done = subprocess.run([node, str(JS_DIR / "smoke.mjs")], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return prefix, started, json.loads(done.stdout.strip().splitlines()[-1])


def test_js_sdk_smoke(run):
    prefix, started, summary = run
    ds_id, ml_id = f"{prefix}-ds", f"{prefix}-ml"
    ds_name, ml_name = f"{prefix} datasource", f"{prefix} model"

    def recent(stamp):
        # The SDK parsed the epoch-seconds wire value into a Date.
        assert stamp["isDate"] is True, stamp
        assert started - 60 <= stamp["epochMs"] / 1000 <= time.time() + 60, stamp

    assert summary["createDataSource"] == {"DataSourceId": ds_id}
    assert summary["createModel"] == {"MLModelId": ml_id}

    assert [entry["DataSourceId"] for entry in summary["describe"]] == [ds_id]
    entry = summary["describe"][0]
    assert entry["Name"] == ds_name
    assert entry["DataLocationS3"] == "s3://treadle-js-test/data.csv"
    assert entry["Status"] in ("PENDING", "INPROGRESS", "FAILED", "COMPLETED")
    recent(entry["CreatedAt"])
    assert summary["describeNextToken"] is None

    ds = summary["dataSource"]
    assert ds["DataSourceId"] == ds_id and ds["Name"] == ds_name
    assert ds["ComputeStatistics"] is True
    assert ds["httpStatusCode"] == 200
    assert ds["CreatedByIamUser"].endswith(":user/alice")
    assert json.loads(ds["DataSourceSchema"])["targetAttributeName"] == "y"
    recent(ds["CreatedAt"])
    recent(ds["LastUpdatedAt"])
    assert ds["LastUpdatedAt"]["epochMs"] >= ds["CreatedAt"]["epochMs"]

    model = summary["model"]
    assert model["MLModelId"] == ml_id and model["Name"] == ml_name
    assert model["MLModelType"] == "BINARY"
    assert model["TrainingDataSourceId"] == ds_id
    assert model["Status"] in ("PENDING", "INPROGRESS", "FAILED")
    assert model["TrainingParameters"]["sgd.maxPasses"] == "3"
    assert model["EndpointStatus"] == "NONE" and model["PeakRequestsPerSecond"] == 0
    recent(model["CreatedAt"])

    assert summary["addTags"] == {"ResourceId": ml_id, "ResourceType": "MLModel"}
    assert summary["tags"] == {"owner": "js-sdk", "purpose": "smoke test"}

    predict = summary["predict"]
    assert predict["succeeded"] is False, predict
    assert predict["name"] == "PredictorNotMountedException", predict
    assert predict["httpStatusCode"] == 400 and predict["fault"] == "client"
    assert ml_id in predict["message"]


def test_js_sdk_error_names(run):
    prefix, started, summary = run
    missing = summary["unknownModel"]
    assert missing["succeeded"] is False, missing
    assert missing["name"] == "ResourceNotFoundException", missing
    assert missing["httpStatusCode"] == 400 and missing["message"]


def test_js_sdk_predicts_all_model_types(node, server, tmp_path_factory):
    """The SDK's Predict goes to PredictEndpoint and parses each response
    shape the same way boto3 does."""
    from test_realtime import RECORD, ready, train

    ml = server.client()
    models = [train(ml, server, tmp_path_factory, kind) for kind in ("BINARY", "MULTICLASS", "REGRESSION")]
    for model_id in models:
        ml.create_realtime_endpoint(MLModelId=model_id)
    targets = [{"modelId": m, "endpointUrl": ready(ml, m)["EndpointUrl"]} for m in models]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": server.default_keys.access_key_id,
                "AWS_SECRET_ACCESS_KEY": server.default_keys.secret_access_key,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "TREADLE_MODELS": json.dumps(targets), "TREADLE_RECORD": json.dumps(RECORD)})
    done = subprocess.run([node, str(JS_DIR / "predict.mjs")], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from_js = json.loads(done.stdout.strip().splitlines()[-1])
    from_boto = [ml.predict(MLModelId=t["modelId"], Record=RECORD, PredictEndpoint=t["endpointUrl"])["Prediction"]
                 for t in targets]
    for js, boto in zip(from_js, from_boto):
        assert js["details"] == boto["details"]
        if "predictedValue" in boto:
            assert js["predictedValue"] == pytest.approx(boto["predictedValue"])
        else:
            assert js["predictedLabel"] == boto["predictedLabel"]
            assert js["predictedScores"] == pytest.approx(boto["predictedScores"])
    assert [p["details"]["PredictiveModelType"] for p in from_js] == ["BINARY", "MULTICLASS", "REGRESSION"]
