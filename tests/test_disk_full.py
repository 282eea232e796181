"""A full disk, made real with a small tmpfs: the API says the disk is full,
the job scheduler waits with back-off instead of spinning, and jobs that
hit it fail with a Message that says so and leave nothing behind."""
import errno
import json
import os
import time

import numpy as np
import pytest
from botocore.exceptions import ClientError

from learning_data import schema, write_dataset
from support import Server, fill, settle, small_disk, unique
from treadle.jobs.feature_cache import FeatureCache, Rows
from treadle.learning.features import CsrBatch
from treadle.store import db
from treadle.store.entities import EntityStore, now


@pytest.fixture
def full_database(tmp_path, s3):
    """A running server whose SQLite database is on a disk that filled up
    after a datasource was queued (its data is on another disk)."""
    disk = tmp_path / "disk"
    with small_disk(disk, "4m"):
        data = tmp_path / "data.csv"
        data.write_text("a,b\n1,2\n3,4\n")
        server = Server("", tmp_path / "treadle", f"sqlite:///{disk}/treadle.db", env=s3.env)
        server.data_dir.mkdir()
        server.default_keys = server.create_keys("alice", "111111111111")
        engine = db.create_engine(server.database_url)
        store = EntityStore(engine)
        ds_id = unique("ds")
        stamp = now()
        with engine.begin() as conn:
            store.insert(conn, "111111111111", "DataSource", ds_id, {
                "DataSourceId": ds_id, "Status": "PENDING", "CreatedAt": stamp, "LastUpdatedAt": stamp,
                "CreatedByIamUser": "arn:aws:iam::111111111111:user/alice", "DataLocationS3": data.as_uri()})
            store.enqueue(conn, "111111111111", "DataSource", ds_id)
        # The engine stays open until the server is up, so the database's
        # WAL index is not removed and made again on the full disk.
        filler = fill(disk)
        try:
            server.start("--jobs", "1", "--allow-local-path", str(tmp_path))
            engine.dispose()
            yield server, filler, ds_id
        finally:
            server.stop()
            engine.dispose()


def log_entries(server) -> list[dict]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def test_the_api_says_the_disk_is_full(full_database):
    server, _, _ = full_database
    with pytest.raises(ClientError) as raised:
        server.client().create_data_source_from_s3(DataSourceId=unique("ds"),
                                                   DataSpec={"DataLocationS3": "s3://b/k.csv"})
    error = raised.value.response["Error"]
    assert error["Code"] == "InternalServerException"
    assert "disk is full" in error["Message"]
    assert "/" not in error["Message"]


def test_jobs_wait_with_back_off_while_the_disk_is_full(full_database):
    server, filler, ds_id = full_database
    time.sleep(8)
    errors = [e for e in log_entries(server) if e["logger"] == "treadle.jobs" and e["level"] == "error"]
    assert 1 <= len(errors) <= 5, [e["message"] for e in errors]
    assert all("disk is full" in e["message"] for e in errors)
    filler.unlink()
    got = settle(server.client().get_data_source, DataSourceId=ds_id, timeout=30)
    assert got["Status"] == "COMPLETED", got.get("Message")


def test_jobs_that_find_a_disk_full_fail_saying_so(tmp_path, s3):
    data_dir, out = tmp_path / "treadle", tmp_path / "out"
    with small_disk(data_dir / "scratch", "16m") as scratch, small_disk(out, "1m"):
        server = Server("", data_dir, None, env=s3.env)
        server.default_keys = server.create_keys("alice", "111111111111")
        server.start("--jobs", "1", "--allow-local-path", str(tmp_path))
        try:
            ml = server.client()
            data = tmp_path / "input" / "scored.csv"
            data.parent.mkdir()
            write_dataset(data, 300, "BINARY", seed=3)
            ds_id = unique("ds")
            ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
                "DataLocationS3": data.as_uri(), "DataSchema": schema("BINARY")})
            model_id = unique("ml")
            ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id,
                               Parameters={"sgd.maxPasses": "1"})
            assert settle(ml.get_ml_model, MLModelId=model_id)["Status"] == "COMPLETED"

            # The user's output location is on a full disk.
            (out / "batch-prediction" / "result").mkdir(parents=True)
            fill(out)
            bp_id = unique("bp")
            ml.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id,
                                       BatchPredictionDataSourceId=ds_id, OutputUri=out.as_uri() + "/")
            got = settle(ml.get_batch_prediction, BatchPredictionId=bp_id)
            assert got["Status"] == "FAILED"
            result = f"{out.as_uri()}/batch-prediction/result/{bp_id}-scored.csv.gz"
            assert got["Message"].startswith(f"The disk holding {result} is full"), got["Message"]
            assert not list(out.rglob(".tmp-*"))

            # The server's scratch space is full: training cannot keep its records.
            fill(scratch)
            model_id = unique("ml")
            ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id,
                               Parameters={"sgd.maxPasses": "1"})
            got = settle(ml.get_ml_model, MLModelId=model_id)
            assert got["Status"] == "FAILED"
            assert got["Message"].startswith("The disk holding"), got["Message"]
            assert "is full" in got["Message"] and str(tmp_path) not in got["Message"]
            assert "job scheduler error" not in server.log_text()
        finally:
            server.stop()


def test_the_feature_cache_reports_a_full_disk_as_such(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        cache = FeatureCache(10000, shuffle=False, directory=str(disk))
        filler = fill(disk)
        os.truncate(filler, filler.stat().st_size - (16 << 10))  # room for the first few writes only
        n = 10000
        rows = Rows(CsrBatch(np.arange(n + 1, dtype=np.int64), np.zeros(n, dtype=np.int32), np.ones(n), 4),
                    np.zeros(n), np.ones(n))
        try:
            with pytest.raises(OSError) as raised:
                cache.add(rows)
                cache.seal()
            assert raised.value.errno == errno.ENOSPC  # which a job turns into its Message
        finally:
            cache.close()
