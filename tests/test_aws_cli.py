"""The AWS CLI v1 (`aws machinelearning ...`) against a live server.

CLI v1 exits with 255 when the service returns an error (v2 uses 254).

The CLI runs as `python -m awscli` from the test environment (the `test`
extra installs awscli), with credentials only from the environment and empty
config files, so nothing on the machine leaks in.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from support import unique

SCHEMA = {
    "version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": True,
    "attributes": [{"attributeName": "x", "attributeType": "NUMERIC"},
                   {"attributeName": "y", "attributeType": "BINARY"}],
}


@pytest.fixture
def aws(server, tmp_path):
    config = tmp_path / "config"
    credentials = tmp_path / "credentials"
    config.write_text("")
    credentials.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": server.default_keys.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.default_keys.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_MAX_ATTEMPTS": "1",
    })

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "machinelearning", *args,
             "--endpoint-url", server.url, "--output", "json"],
            capture_output=True, text=True, env=env, timeout=120)
        if check:
            assert done.returncode == 0, (args, done.returncode, done.stderr)
        return done

    def call(*args: str):
        done = run(*args)
        return json.loads(done.stdout) if done.stdout.strip() else None

    run.json = call
    return run


def _recent(value) -> None:
    # The CLI prints the wire value: epoch seconds with a millisecond fraction.
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    assert abs(value - time.time()) < 600, value


def test_datasource_and_model_lifecycle(aws):
    ds_id, ml_id = unique("cli-ds"), unique("cli-ml")
    name = unique("cli-name")
    location = "s3://treadle-cli-test/banking.csv"

    created = aws.json("create-data-source-from-s3", "--data-source-id", ds_id, "--data-source-name", name,
                       "--data-spec", json.dumps({"DataLocationS3": location, "DataSchema": json.dumps(SCHEMA)}),
                       "--compute-statistics")
    assert created == {"DataSourceId": ds_id}

    got = aws.json("get-data-source", "--data-source-id", ds_id, "--verbose")
    assert got["DataSourceId"] == ds_id
    assert got["Name"] == name
    assert got["DataLocationS3"] == location
    assert got["ComputeStatistics"] is True
    assert got["Status"] in ("PENDING", "INPROGRESS", "FAILED", "COMPLETED")
    assert got["CreatedByIamUser"].endswith(":user/alice")
    assert json.loads(got["DataSourceSchema"]) == SCHEMA
    _recent(got["CreatedAt"])
    _recent(got["LastUpdatedAt"])

    # Describe with filters: exact name, name prefix, data location.
    listed = aws.json("describe-data-sources", "--filter-variable", "Name", "--eq", name)
    assert [r["DataSourceId"] for r in listed["Results"]] == [ds_id]
    assert listed["Results"][0]["DataLocationS3"] == location
    listed = aws.json("describe-data-sources", "--filter-variable", "Name", "--prefix", name[:-3],
                      "--sort-order", "dsc")
    assert ds_id in [r["DataSourceId"] for r in listed["Results"]]
    listed = aws.json("describe-data-sources", "--filter-variable", "Name", "--eq", name + "-other")
    assert listed["Results"] == []

    new_name = name + "-renamed"
    assert aws.json("update-data-source", "--data-source-id", ds_id, "--data-source-name", new_name) == {
        "DataSourceId": ds_id}
    assert aws.json("get-data-source", "--data-source-id", ds_id)["Name"] == new_name
    assert aws.json("describe-data-sources", "--filter-variable", "Name", "--eq", name)["Results"] == []

    # Tags: add, overwrite, describe, delete.
    tagged = aws.json("add-tags", "--resource-id", ds_id, "--resource-type", "DataSource",
                      "--tags", "Key=team,Value=risk", "Key=stage,Value=dev", "Key=empty")
    assert tagged == {"ResourceId": ds_id, "ResourceType": "DataSource"}
    aws.json("add-tags", "--resource-id", ds_id, "--resource-type", "DataSource", "--tags", "Key=stage,Value=prod")
    tags = aws.json("describe-tags", "--resource-id", ds_id, "--resource-type", "DataSource")
    assert tags["ResourceId"] == ds_id and tags["ResourceType"] == "DataSource"
    assert {t["Key"]: t.get("Value") for t in tags["Tags"]} == {"team": "risk", "stage": "prod", "empty": None}
    aws.json("delete-tags", "--resource-id", ds_id, "--resource-type", "DataSource", "--tag-keys", "team", "absent")
    tags = aws.json("describe-tags", "--resource-id", ds_id, "--resource-type", "DataSource")
    assert sorted(t["Key"] for t in tags["Tags"]) == ["empty", "stage"]

    # A model trained on it.
    model_name = unique("cli-model")
    assert aws.json("create-ml-model", "--ml-model-id", ml_id, "--ml-model-name", model_name,
                    "--ml-model-type", "BINARY", "--training-data-source-id", ds_id,
                    "--parameters", "sgd.maxPasses=5,sgd.shuffleType=auto") == {"MLModelId": ml_id}
    model = aws.json("get-ml-model", "--ml-model-id", ml_id)
    assert model["MLModelId"] == ml_id and model["Name"] == model_name
    assert model["TrainingDataSourceId"] == ds_id
    assert model["MLModelType"] == "BINARY"
    assert model["InputDataLocationS3"] == location
    assert model["EndpointInfo"]["EndpointStatus"] == "NONE"
    assert model["TrainingParameters"]["sgd.maxPasses"] == "5"
    assert model["TrainingParameters"]["sgd.shuffleType"] == "auto"
    _recent(model["CreatedAt"])
    # Tags propagate from the datasource to the model.
    model_tags = aws.json("describe-tags", "--resource-id", ml_id, "--resource-type", "MLModel")
    assert {t["Key"]: t.get("Value") for t in model_tags["Tags"]} == {"stage": "prod", "empty": None}
    models = aws.json("describe-ml-models", "--filter-variable", "TrainingDataSourceId", "--eq", ds_id)
    assert [m["MLModelId"] for m in models["Results"]] == [ml_id]

    # Delete both; Get still answers, with status DELETED.
    assert aws.json("delete-ml-model", "--ml-model-id", ml_id) == {"MLModelId": ml_id}
    assert aws.json("delete-data-source", "--data-source-id", ds_id) == {"DataSourceId": ds_id}
    assert aws.json("get-ml-model", "--ml-model-id", ml_id)["Status"] == "DELETED"
    assert aws.json("get-data-source", "--data-source-id", ds_id)["Status"] == "DELETED"
    # Deleted objects are listed only when filtering on Status.
    assert aws.json("describe-data-sources", "--filter-variable", "Name", "--eq", new_name)["Results"] == []
    deleted = aws.json("describe-data-sources", "--filter-variable", "Status", "--eq", "DELETED")
    assert ds_id in [r["DataSourceId"] for r in deleted["Results"]]


def test_errors_exit_nonzero_with_the_error_code(aws):
    missing = unique("cli-missing")
    done = aws("get-data-source", "--data-source-id", missing, check=False)
    assert done.returncode == 255, (done.returncode, done.stderr)
    assert "(ResourceNotFoundException)" in done.stderr
    assert "GetDataSource" in done.stderr
    assert done.stdout == ""

    # Not validated by the CLI, so the server must reject it.
    done = aws("describe-data-sources", "--filter-variable", "Colour", "--eq", "x", check=False)
    assert done.returncode == 255, (done.returncode, done.stderr)
    assert "(InvalidInputException)" in done.stderr and "FilterVariable" in done.stderr

    # A model on a datasource that does not exist is bad input.
    done = aws("create-ml-model", "--ml-model-id", unique("cli-ml"), "--ml-model-type", "REGRESSION",
               "--training-data-source-id", missing, check=False)
    assert done.returncode == 255 and "(InvalidInputException)" in done.stderr, done.stderr

    # Idempotency: the same ID with other parameters.
    ds_id = unique("cli-ds")
    spec = json.dumps({"DataLocationS3": "s3://treadle-cli-test/a.csv"})
    aws("create-data-source-from-s3", "--data-source-id", ds_id, "--data-spec", spec)
    assert aws.json("create-data-source-from-s3", "--data-source-id", ds_id, "--data-spec", spec) == {
        "DataSourceId": ds_id}
    done = aws("create-data-source-from-s3", "--data-source-id", ds_id, "--data-spec", spec,
               "--data-source-name", "different", check=False)
    assert done.returncode == 255 and "(IdempotentParameterMismatchException)" in done.stderr, done.stderr


def test_bad_credentials_are_rejected(aws, server, tmp_path):
    env_args = ["get-data-source", "--data-source-id", "x"]
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "machinelearning", *env_args, "--endpoint-url", server.url],
        capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
             "AWS_ACCESS_KEY_ID": server.default_keys.access_key_id, "AWS_SECRET_ACCESS_KEY": "not-the-secret",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
             "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_MAX_ATTEMPTS": "1"})
    assert done.returncode == 255, done.stderr
    assert "(InvalidSignatureException)" in done.stderr
