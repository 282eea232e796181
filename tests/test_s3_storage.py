"""Artifacts in S3 (--artifacts-url) and batch predictions written to S3,
through moto's S3 server."""
import gzip
import json

from learning_data import schema, write_dataset
from support import settle, signed_get, unique


def test_artifacts_and_batch_output_in_s3(fresh_server, s3, tmp_path_factory):
    bucket = unique("artifacts").lower()
    s3.client().create_bucket(Bucket=bucket)
    folder = tmp_path_factory.getbasetemp()
    server = fresh_server("--artifacts-url", f"s3://{bucket}/treadle", "--allow-local-path", str(folder))
    ml = server.client()
    data = folder / unique("s3art")
    write_dataset(data, 1500, "BINARY", seed=8)
    ds_id, model_id, bp_id = unique("ds"), unique("ml"), unique("bp")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": data.as_uri(), "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    ml.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id, BatchPredictionDataSourceId=ds_id,
                               OutputUri=f"s3://{bucket}/out/")
    bp = settle(ml.get_batch_prediction, BatchPredictionId=bp_id, timeout=300)
    assert bp["Status"] == "COMPLETED", bp.get("Message")
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert any(k.startswith("treadle/models/") for k in keys)
    assert any(k.startswith("treadle/statistics/") for k in keys)
    assert not any(p.name == "artifacts" for p in server.data_dir.iterdir())
    manifest = json.loads(s3.client().get_object(Bucket=bucket, Key=f"out/batch-prediction/{bp_id}.manifest")["Body"].read())
    result = manifest[data.as_uri()]
    assert result == f"s3://{bucket}/out/batch-prediction/result/{bp_id}-{data.name}.gz"
    body = gzip.decompress(s3.client().get_object(Bucket=bucket, Key=result.split("/", 3)[3])["Body"].read())
    assert body.decode().split("\n")[0] == "tag,trueLabel,bestAnswer,score"
    assert len(body.decode().split("\n")) == 1500 + 2
    status, stats = signed_get(f"{server.url}/datasources/{ds_id}/statistics", server.default_keys)
    assert status == 200 and stats["Statistics"]["records_processed"] == 1500
    import urllib.request
    log = urllib.request.urlopen(ml.get_ml_model(MLModelId=model_id)["LogUri"], timeout=10).read().decode()
    assert "finished-training" in log
    # Every account's objects live in the artifact store: no request may name it.
    from botocore.exceptions import ClientError
    import pytest
    for location in (f"s3://{bucket}/treadle/logs/", f"s3://{bucket}/treadle"):
        with pytest.raises(ClientError) as excinfo:
            ml.create_data_source_from_s3(DataSourceId=unique("ds"), DataSpec={"DataLocationS3": location})
        assert "own storage" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        ml.create_batch_prediction(BatchPredictionId=unique("bp"), MLModelId=model_id,
                                   BatchPredictionDataSourceId=ds_id, OutputUri=f"s3://{bucket}/treadle/x/")
    assert "own storage" in excinfo.value.response["Error"]["Message"]
