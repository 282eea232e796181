"""Jobs on a real Dask cluster: `dask scheduler` and two `dask worker`
processes on loopback, PostgreSQL metadata and moto's S3 for data and
artifacts, every job kind through boto3 against two API servers."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import urllib.request

import pytest
from cryptography.fernet import Fernet

from learning_data import schema, write_dataset
from support import (Server, drop_postgres_database, free_port, postgres_database, service_missing, settle,
                     unique, wait_for)

BUCKET = "treadle-cluster"


class Cluster:
    """A scheduler and named workers, each its own process."""

    def __init__(self, folder, env: dict):
        if shutil.which("dask") is None:
            service_missing("Dask", "the dask command is not installed (pip install 'treadle[dask]')")
        self.folder, self.env = folder, env
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self._start("scheduler", ["dask", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--dashboard-address", f"127.0.0.1:{free_port()}"])
        for name in ("w1", "w2"):
            self.start_worker(name)
        self.wait_for_workers(2)

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def start_worker(self, name: str) -> None:
        self._start(name, ["dask", "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
                           "--local-directory", str(self.folder / name)])

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False)

    def wait_for_workers(self, count: int) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=120)

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def cluster_services(tmp_path_factory, s3, bucket: str, name: str):
    """A running cluster, the environment its servers and workers share
    (moto's S3, one master key) with `bucket` created, and a PostgreSQL
    database for the metadata; all of it removed afterwards."""
    pytest.importorskip("distributed", reason="pip install 'treadle[dask]'")
    folder = tmp_path_factory.mktemp(name)
    env = {**os.environ, **s3.env, "TREADLE_MASTER_KEY": Fernet.generate_key().decode()}
    s3.client().create_bucket(Bucket=bucket)
    cluster = Cluster(folder, env)
    database_url = postgres_database()
    try:
        yield cluster, env, database_url
    finally:
        cluster.stop()
        drop_postgres_database(database_url)


@pytest.fixture(scope="module")
def cluster_setup(tmp_path_factory, s3):
    with cluster_services(tmp_path_factory, s3, BUCKET, "dask") as (cluster, env, database_url):
        servers = []
        try:
            first = Server("", tmp_path_factory.mktemp("api-1"), database_url, env=env)
            first.default_keys = first.create_keys("alice", "111111111111")
            second = Server("", tmp_path_factory.mktemp("api-2"), database_url, env=env)
            second.default_keys = first.default_keys
            for server in (first, second):
                server.start("--dask-scheduler", cluster.address, "--artifacts-url", f"s3://{BUCKET}/artifacts")
                servers.append(server)
            yield cluster, first, second, s3
        finally:
            for server in servers:
                server.stop()


def _upload(s3, key: str, path) -> str:
    s3.client().upload_file(str(path), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def test_cluster_mode_refuses_storage_workers_cannot_reach(tmp_path):
    from support import treadle

    done = treadle("serve", "--data-dir", str(tmp_path), "--dask-scheduler", "tcp://127.0.0.1:1",
                   env={k: v for k, v in os.environ.items() if k != "TREADLE_MASTER_KEY"})
    assert done.returncode == 2
    assert "--database-url postgresql://" in done.stderr and "--artifacts-url s3://" in done.stderr
    assert "TREADLE_MASTER_KEY" in done.stderr


def test_every_job_kind_runs_on_the_cluster_and_both_servers_answer(cluster_setup, tmp_path):
    cluster, first, second, s3 = cluster_setup
    path = tmp_path / "cluster.csv"
    write_dataset(path, 3000, "BINARY", seed=21)
    data = _upload(s3, "data/cluster.csv", path)
    ml, other = first.client(), second.client()
    ds_id, model_id, ev_id, bp_id = unique("ds"), unique("ml"), unique("ev"), unique("bp")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": data, "DataSchema": schema("BINARY")})
    other.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    ml.create_evaluation(EvaluationId=ev_id, MLModelId=model_id, EvaluationDataSourceId=ds_id)
    other.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id, BatchPredictionDataSourceId=ds_id,
                                  OutputUri=f"s3://{BUCKET}/out/")
    for client in (ml, other):
        assert settle(client.get_batch_prediction, BatchPredictionId=bp_id, timeout=300)["Status"] == "COMPLETED"
        assert settle(client.get_evaluation, EvaluationId=ev_id, timeout=300)["Status"] == "COMPLETED"
        assert [d["DataSourceId"] for d in client.describe_data_sources(
            FilterVariable="DataLocationS3", EQ=data)["Results"]] == [ds_id]
    auc = float(ml.get_evaluation(EvaluationId=ev_id)["PerformanceMetrics"]["Properties"]["BinaryAUC"])
    assert 0.7 < auc <= 1
    manifest = s3.client().get_object(Bucket=BUCKET, Key=f"out/batch-prediction/{bp_id}.manifest")["Body"].read()
    assert data.encode() in manifest
    # The jobs ran on the cluster's workers, not in the servers: their logs say which.
    for log_uri in (ml.get_data_source(DataSourceId=ds_id)["LogUri"], ml.get_ml_model(MLModelId=model_id)["LogUri"],
                    ml.get_evaluation(EvaluationId=ev_id)["LogUri"],
                    ml.get_batch_prediction(BatchPredictionId=bp_id)["LogUri"]):
        log = urllib.request.urlopen(log_uri, timeout=30).read().decode()
        assert re.search(r"job started \(attempt 1\) on Dask worker w[12] \(tcp://127\.0\.0\.1:\d+\)", log), log
    metrics = urllib.request.urlopen(first.url + "/metrics", timeout=30).read().decode()
    assert re.search(r'treadle_jobs_finished_total\{[^}]*runner="dask"[^}]*status="COMPLETED"[^}]*\} [1-9]', metrics) \
        or re.search(r'treadle_jobs_finished_total\{[^}]*status="COMPLETED"[^}]*runner="dask"[^}]*\} [1-9]', metrics)
    # Either server mounts the endpoint and answers Predict.
    ml.create_realtime_endpoint(MLModelId=model_id)
    url = wait_for(lambda: (lambda info: info["EndpointUrl"] if info["EndpointStatus"] == "READY" else None)(
        ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]), timeout=60, message="endpoint READY")
    record = {"x1": "1.2", "x2": "-0.3", "colour": "red", "text": "good great"}
    answers = [client.predict(MLModelId=model_id, Record=record, PredictEndpoint=server.url)["Prediction"]
               for client, server in ((ml, first), (other, second))]
    assert answers[0] == answers[1] and answers[0]["predictedLabel"] in ("0", "1")
    assert url


def test_a_worker_killed_during_training_leaves_the_job_finished(cluster_setup, tmp_path):
    cluster, first, _, s3 = cluster_setup
    path = tmp_path / "slow.csv"
    write_dataset(path, 60000, "BINARY", seed=22, noise_words=3000)
    data = _upload(s3, "data/slow.csv", path)
    ml = first.client()
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": data, "DataSchema": schema("BINARY")})
    assert settle(ml.get_data_source, DataSourceId=ds_id, timeout=300)["Status"] == "COMPLETED"
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id,
                       Parameters={"sgd.maxPasses": "100"})
    with cluster.client() as client:
        def running_on():
            for address, keys in client.processing().items():
                if any(model_id in key for key in keys):
                    return client.scheduler_info()["workers"][address]["name"]
            return None
        name = wait_for(running_on, timeout=120, message="the training task on a worker")
    cluster.kill(name)
    try:
        finished = settle(ml.get_ml_model, MLModelId=model_id, timeout=400)
        # Completed on the other worker, or failed with a reason; never INPROGRESS for ever.
        assert finished["Status"] == "COMPLETED" or finished.get("Message"), finished
    finally:
        cluster.start_worker(name)
        cluster.wait_for_workers(2)


def test_a_shard_result_lost_with_its_worker_ends_the_wait(cluster_setup):
    """A shard's task runs only on its worker, so a finished result that is
    lost with the worker is never computed again: the job must see the loss
    instead of fetching for ever."""
    from treadle.jobs.context import WorkLost
    from treadle.jobs.training_shards import gather_shards

    class StillThere:
        def cancelled(self, now=False):
            return False

    cluster = cluster_setup[0]
    try:
        with cluster.client() as client:
            address = {info["name"]: address for address, info in client.scheduler_info()["workers"].items()}["w2"]
            future = client.submit(bytes, 1000, workers=[address], allow_other_workers=False, pure=False)
            assert future.result(timeout=60) == bytes(1000)  # finished, and still held by w2
            cluster.kill("w2")
            with pytest.raises(WorkLost, match="left the cluster"):
                gather_shards(StillThere(), client, [future], [address])
            assert future.cancelled()
    finally:
        cluster.start_worker("w2")
        cluster.wait_for_workers(2)
