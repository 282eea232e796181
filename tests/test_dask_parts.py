"""A job's work split across a real Dask cluster's workers (treadle/jobs/parts.py):
a multi-file datasource on S3 read in byte-range parts on two workers gives
the statistics one read gives; a batch prediction's result objects and an
evaluation's metrics equal those the same job makes in one process; a
deleted object's parts are cancelled."""
from __future__ import annotations

import gzip
import json
import re
import urllib.request

import pytest

from learning_data import schema, write_dataset
from support import Server, settle, unique, wait_for
from test_dask import cluster_services
from test_parts import _compare

BUCKET = "treadle-parts"
PART_BYTES = 150_000


@pytest.fixture(scope="module")
def parts_setup(tmp_path_factory, s3):
    with cluster_services(tmp_path_factory, s3, BUCKET, "dask-parts") as (cluster, env, database_url):
        server = Server("", tmp_path_factory.mktemp("api-parts"), database_url, env=env)
        try:
            server.default_keys = server.create_keys("alice", "111111111111")
            server.start("--dask-scheduler", cluster.address, "--artifacts-url", f"s3://{BUCKET}/artifacts",
                         "--part-bytes", str(PART_BYTES))
            yield cluster, server, s3, database_url, env["TREADLE_MASTER_KEY"]
        finally:
            server.stop()


def _files(s3, folder, prefix: str, count: int, rows: int, kind: str = "BINARY") -> list:
    paths = []
    for k in range(count):
        path = folder / f"{prefix}-{k}.csv"
        write_dataset(path, rows, kind, seed=40 + k, bad_lines=tuple(range(53, rows, 211)))
        s3.client().upload_file(str(path), BUCKET, f"{prefix}/{path.name}")
        paths.append(path)
    return paths


def _running_tasks(client, object_id: str) -> list:
    """The cluster's tasks of an object that are running or waiting to."""
    return [key for keys in client.processing().values() for key in keys if object_id in str(key)]


def _log(ml, getter, **key) -> str:
    return urllib.request.urlopen(getattr(ml, getter)(**key)["LogUri"], timeout=30).read().decode()


def _local_context(tmp_path, monkeypatch, s3, database_url, master_key, entity):
    """A job context as the local runner gives one: the same stores, no parts."""
    from treadle.config import Settings
    from treadle.data import locations
    from treadle.jobs.context import JobContext
    from treadle.jobs.worker import stores_for

    for name, value in {**s3.env, "TREADLE_MASTER_KEY": master_key}.items():
        monkeypatch.setenv(name, value)
    locations.s3_client.cache_clear()
    settings = Settings(data_dir=tmp_path / "local", database_url=database_url,
                        artifacts_url=f"s3://{BUCKET}/artifacts")
    entities, artifacts, key = stores_for(settings)
    return JobContext(settings, entities, artifacts, key, entity)


def test_datasource_statistics_from_parts_equal_one_read(parts_setup, tmp_path):
    from treadle.data import locations
    from treadle.data.ingest import ingest
    from treadle.data.schema import parse_schema

    cluster, server, s3, _, _ = parts_setup
    paths = _files(s3, tmp_path, "multi", 3, 6000)
    ml = server.client()
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": f"s3://{BUCKET}/multi/", "DataSchema": schema("BINARY")})
    done = settle(ml.get_data_source, DataSourceId=ds_id, timeout=300)
    assert done["Status"] == "COMPLETED", done
    stored = json.loads(s3.client().get_object(
        Bucket=BUCKET, Key=f"artifacts/statistics/111111111111/{ds_id}.json")["Body"].read())

    files = [locations.DataFile(p.as_uri(), p.stat().st_size) for p in paths]
    whole = ingest([locations.byte_source(f, [tmp_path]) for f in files], parse_schema(schema("BINARY")),
                   total_size=sum(f.size for f in files))
    from treadle.jobs.context import json_bytes

    _compare(stored, json.loads(json_bytes(whole.statistics)))
    log = _log(ml, "get_data_source", DataSourceId=ds_id)
    count = int(re.search(r"reading in (\d+) parts", log).group(1))
    assert count >= 6
    ran_on = set(re.findall(rf"part \d+ of {count} \(multi-\d\.csv bytes \d+-\d+\) ran on Dask worker (w[12]) "
                            r"\(tcp://[\d.:]+\) in [\d.]+ s", log))
    assert ran_on == {"w1", "w2"}, log
    assert f"records read {whole.records_read}, selected {whole.selected}, accepted {whole.records}, " \
           f"rejected {whole.rejected}" in log
    for rejection in whole.rejections:
        assert f"rejected: {rejection['file']} line {rejection['line']}: {rejection['reason']}" in log


def test_batch_prediction_and_evaluation_from_parts_equal_one_process(parts_setup, tmp_path, monkeypatch):
    from treadle.jobs import batch_prediction, evaluation
    from treadle.store.entities import Entity

    cluster, server, s3, database_url, master_key = parts_setup
    _files(s3, tmp_path, "score", 2, 7000)
    ml = server.client()
    ds_id, model_id, bp_id, ev_id = unique("ds"), unique("ml"), unique("bp"), unique("ev")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": f"s3://{BUCKET}/score/", "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    ml.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id, BatchPredictionDataSourceId=ds_id,
                               OutputUri=f"s3://{BUCKET}/cluster-out/")
    ml.create_evaluation(EvaluationId=ev_id, MLModelId=model_id, EvaluationDataSourceId=ds_id)
    batch = settle(ml.get_batch_prediction, BatchPredictionId=bp_id, timeout=600)
    assert batch["Status"] == "COMPLETED", batch
    evaluated = settle(ml.get_evaluation, EvaluationId=ev_id, timeout=600)
    assert evaluated["Status"] == "COMPLETED", evaluated
    for getter, key in (("get_batch_prediction", {"BatchPredictionId": bp_id}),
                        ("get_evaluation", {"EvaluationId": ev_id})):
        log = _log(ml, getter, **key)
        assert re.search(r"scoring in \d+ parts on the Dask cluster", log), log
        assert re.search(r"part 1 of \d+ \(score-0\.csv bytes 0-\d+\) ran on Dask worker w[12]", log), log

    # The same jobs in one process, on the same model and data.
    def entity(kind, entity_id, **changes):
        found = _local_context(tmp_path, monkeypatch, s3, database_url, master_key, None).entities.get(
            "111111111111", kind, entity_id)
        return Entity(found.account, kind, entity_id + "-local", {**found.document, **changes})

    local_bp = entity("BatchPrediction", bp_id, BatchPredictionId=bp_id + "-local",
                      OutputUri=f"s3://{BUCKET}/local-out/")
    fields = batch_prediction.run(_local_context(tmp_path, monkeypatch, s3, database_url, master_key, local_bp))
    assert fields == {"TotalRecordCount": batch["TotalRecordCount"], "InvalidRecordCount": batch["InvalidRecordCount"]}
    client = s3.client()

    def read(key: str) -> bytes:
        return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    cluster_manifest = json.loads(read(f"cluster-out/batch-prediction/{bp_id}.manifest"))
    local_manifest = json.loads(read(f"local-out/batch-prediction/{bp_id}-local.manifest"))
    assert list(cluster_manifest) == list(local_manifest) == [
        f"s3://{BUCKET}/score/score-0.csv", f"s3://{BUCKET}/score/score-1.csv"]
    for source in cluster_manifest:
        ours = gzip.decompress(read(cluster_manifest[source].removeprefix(f"s3://{BUCKET}/")))
        theirs = gzip.decompress(read(local_manifest[source].removeprefix(f"s3://{BUCKET}/")))
        assert ours == theirs
        assert ours.count(b"\n") == 7001  # the header, then a line per record, blank where rejected

    local_ev = entity("Evaluation", ev_id, EvaluationId=ev_id + "-local")
    fields = evaluation.run(_local_context(tmp_path, monkeypatch, s3, database_url, master_key, local_ev))
    assert fields["PerformanceMetrics"] == evaluated["PerformanceMetrics"]
    ours = json.loads(read(f"artifacts/insights/111111111111/{ev_id}.json"))
    theirs = json.loads(read(f"artifacts/insights/111111111111/{ev_id}-local.json"))
    assert ours == theirs


def test_deleting_a_datasource_cancels_its_parts(parts_setup, tmp_path):
    cluster, server, s3, _, _ = parts_setup
    path = tmp_path / "big.csv"
    write_dataset(path, 80000, "BINARY", seed=23, noise_words=3000)
    s3.client().upload_file(str(path), BUCKET, "big/big.csv")
    ml = server.client()
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": f"s3://{BUCKET}/big/big.csv", "DataSchema": schema("BINARY")})
    with cluster.client() as client:
        def tasks():
            return _running_tasks(client, ds_id)

        wait_for(lambda: any("-part-" in str(key) for key in tasks()), timeout=120, message="parts running")
        ml.delete_data_source(DataSourceId=ds_id)
        # The job stops within a chunk or two of each part and waits for nothing more; its
        # server lets go of the job's own result once it has read it.
        wait_for(lambda: not tasks() and not [key for key in client.who_has() if ds_id in str(key)], timeout=30,
                 message="no task or result of the deleted datasource left")
    objects = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=f"artifacts/statistics/111111111111/{ds_id}")
    assert objects.get("KeyCount", 0) == 0


def _held_out_quality(model, path, kind: str) -> float:
    """AUC (BINARY), macro F1 (MULTICLASS) or RMSE (REGRESSION) of `model` on a CSV of held-out records."""
    import numpy as np
    from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

    from treadle.data.records import RecordReader, file_source
    from treadle.data.schema import parse_schema

    data_schema = parse_schema(schema(kind))
    scores, truth = [], []
    for chunk in RecordReader([file_source(str(path))], data_schema, require_target=True):
        scores.append(model.score_batch(model.fitted_pipeline.transform(chunk.table)))
        truth += [value.strip() for value in chunk.column("y").to_pylist()]
    scores = np.concatenate(scores)
    if kind == "BINARY":
        return roc_auc_score([int(t) for t in truth], scores)
    if kind == "MULTICLASS":
        return f1_score(truth, [model.labels[i] for i in np.argmax(scores, axis=1)], average="macro")
    return mean_squared_error([float(t) for t in truth], scores.reshape(len(truth), -1)[:, 0]) ** 0.5


@pytest.mark.parametrize("kind", ["BINARY", "MULTICLASS", "REGRESSION"])
def test_training_on_shards_matches_one_process(parts_setup, tmp_path, monkeypatch, kind):
    """Two workers train a shard each, combined every pass (docs/behaviour.md,
    "Cluster mode"); the model is as good on held-out records as the one the
    same job trains in one process: within 0.005 AUC, 0.01 macro F1, 2% RMSE."""
    from treadle.jobs import training
    from treadle.store.entities import Entity
    from treadle.store.models import load_model

    cluster, server, s3, database_url, master_key = parts_setup
    prefix = f"train-{kind.lower()}"
    for k in range(2):
        path = tmp_path / f"{prefix}-{k}.csv"
        write_dataset(path, 8000, kind, seed=60 + k, noise_words=200)
        s3.client().upload_file(str(path), BUCKET, f"{prefix}/{path.name}")
    held_out = tmp_path / "held-out.csv"
    write_dataset(held_out, 6000, kind, seed=69, noise_words=200)
    ml = server.client()
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": f"s3://{BUCKET}/{prefix}/", "DataSchema": schema(kind)})
    parameters = {"sgd.maxPasses": "20", "sgd.l2RegularizationAmount": "1e-5", "sgd.shuffleType": "auto"}
    ml.create_ml_model(MLModelId=model_id, MLModelType=kind, TrainingDataSourceId=ds_id, Parameters=parameters)
    trained = settle(ml.get_ml_model, MLModelId=model_id, timeout=600)
    assert trained["Status"] == "COMPLETED", trained
    log = _log(ml, "get_ml_model", MLModelId=model_id)
    featurized = re.findall(r"training shard (\d) of 2: (\d+) records featurized on Dask worker (w[12])", log)
    assert {worker for _, _, worker in featurized} == {"w1", "w2"}, log
    assert sum(int(records) for _, records, _ in featurized) == 16000
    assert re.search(r"pass 1: shard 1 on Dask worker w[12] \([^)]*\) in [\d.]+ s, shard 2 on Dask worker", log), log

    context = _local_context(tmp_path, monkeypatch, s3, database_url, master_key, None)
    found = context.entities.get("111111111111", "MLModel", model_id)
    local = Entity(found.account, "MLModel", model_id + "-local", {**found.document, "MLModelId": model_id + "-local"})
    local_context = _local_context(tmp_path, monkeypatch, s3, database_url, master_key, local)
    local_context.cancelled = lambda now=False: False  # the copy is no stored object, so not a deleted one either
    fields = training.run(local_context)
    sharded = _held_out_quality(load_model(context.artifacts, found), held_out, kind)
    single = _held_out_quality(load_model(context.artifacts, Entity(local.account, "MLModel", local.entity_id,
                                                                    {**local.document, **fields})), held_out, kind)
    if kind == "BINARY":
        assert sharded >= single - 0.005, (sharded, single)
    elif kind == "MULTICLASS":
        assert sharded >= single - 0.01, (sharded, single)
    else:
        assert sharded <= single * 1.02, (sharded, single)


def test_deleting_a_model_cancels_its_training_shards(parts_setup, tmp_path):
    cluster, server, s3, _, _ = parts_setup
    path = tmp_path / "long.csv"
    write_dataset(path, 40000, "BINARY", seed=24, noise_words=3000)
    s3.client().upload_file(str(path), BUCKET, "long/long.csv")
    ml = server.client()
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": f"s3://{BUCKET}/long/long.csv", "DataSchema": schema("BINARY")})
    assert settle(ml.get_data_source, DataSourceId=ds_id, timeout=300)["Status"] == "COMPLETED"
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id,
                       Parameters={"sgd.maxPasses": "10000", "sgd.l2RegularizationAmount": "1e-9"})
    with cluster.client() as client:
        def tasks():
            return _running_tasks(client, model_id)

        wait_for(lambda: any("-pass-" in str(key) for key in tasks()), timeout=300, message="training passes")
        ml.delete_ml_model(MLModelId=model_id)
        wait_for(lambda: not tasks(), timeout=60, message="no task of the deleted model left")
    objects = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=f"artifacts/models/111111111111/{model_id}")
    assert objects.get("KeyCount", 0) == 0
