"""The job lifecycle: PENDING -> INPROGRESS -> COMPLETED/FAILED, dependency
waiting, crash recovery, logs behind LogUri."""
import signal
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from support import Server, unique, wait_for
from treadle.store import db
from treadle.store.entities import EntityStore
from treadle.store.tables import jobs


def settled(ml, getter, key, entity_id):
    def check():
        got = getter(**{key: entity_id})
        return got if got["Status"] in ("COMPLETED", "FAILED") else None
    return wait_for(check, timeout=60, message=f"{entity_id} to finish")


def test_a_datasource_in_a_missing_bucket_fails_with_a_message(ml):
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"},
                                  ComputeStatistics=True)
    got = settled(ml, ml.get_data_source, "DataSourceId", ds_id)
    assert got["Status"] == "FAILED"
    assert got["Message"]
    assert got["StartedAt"] <= got["FinishedAt"]
    assert "ComputeTime" not in got  # only reported for COMPLETED objects


def test_dependent_job_fails_with_its_input(ml):
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"},
                                  ComputeStatistics=True)
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    ev_id = unique("ev")
    ml.create_evaluation(EvaluationId=ev_id, MLModelId=model_id, EvaluationDataSourceId=ds_id)
    model = settled(ml, ml.get_ml_model, "MLModelId", model_id)
    assert model["Status"] == "FAILED"
    assert ds_id in model["Message"] and "FAILED" in model["Message"]
    evaluation = settled(ml, ml.get_evaluation, "EvaluationId", ev_id)
    assert evaluation["Status"] == "FAILED"
    assert model_id in evaluation["Message"] or ds_id in evaluation["Message"]


def test_log_uri_is_signed_and_expires(ml, server):
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
    got = settled(ml, ml.get_data_source, "DataSourceId", ds_id)
    text = urllib.request.urlopen(got["LogUri"], timeout=10).read().decode()
    assert ds_id in text and "FAILED" in text
    assert "Describe" not in str(ml.describe_data_sources(FilterVariable="Name", EQ="x"))
    tampered = got["LogUri"].replace(ds_id, ds_id + "x")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(tampered, timeout=10)
    assert excinfo.value.code == 403
    expired = got["LogUri"].split("?")[0] + "?Expires=1&Signature=" + got["LogUri"].rsplit("Signature=", 1)[1]
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(expired, timeout=10)
    assert excinfo.value.code == 403


def _simulate_crash(server, account: str, kind: str, entity_id: str, attempts: int):
    """Leave the job as a server that died mid-run would: running, its
    lease expired, the entity INPROGRESS."""
    engine = db.create_engine(server.database_url or db.sqlite_url(server.data_dir))
    store = EntityStore(engine)
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.entity_id == entity_id, jobs.c.account == account).values(
            state="running", owner="crashed-server", attempts=attempts, lease_expires=time.time() - 1))
        store.update(account, kind, entity_id, {"Status": "INPROGRESS", "StartedAt": time.time()}, conn)
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_jobs_left_running_by_a_crash_are_rerun_or_failed(fresh_server, backend):
    server = fresh_server("--jobs", "1", backend=backend)
    ml = server.client()
    ds_retry, ds_spent = unique("ds"), unique("ds")
    for ds_id in (ds_retry, ds_spent):
        ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
        settled(ml, ml.get_data_source, "DataSourceId", ds_id)
    server.stop(kill=True)
    _simulate_crash(server, "111111111111", "DataSource", ds_retry, attempts=1)
    _simulate_crash(server, "111111111111", "DataSource", ds_spent, attempts=3)
    server.start()
    ml = server.client()
    retried = settled(ml, ml.get_data_source, "DataSourceId", ds_retry)
    # Run again: its log shows a second attempt, and it ends like a fresh run.
    log = urllib.request.urlopen(retried["LogUri"], timeout=10).read().decode()
    assert "attempt 2" in log
    assert retried["Status"] == "FAILED" and "tried" not in retried["Message"]
    spent = settled(ml, ml.get_data_source, "DataSourceId", ds_spent)
    assert spent["Status"] == "FAILED"
    assert "tried 3 times" in spent["Message"] and "stopped" in spent["Message"]


def test_a_retry_appends_to_the_log_under_an_attempt_heading(fresh_server):
    server = fresh_server("--jobs", "1")
    ml = server.client()
    logged, unlogged = unique("ds"), unique("ds")
    for ds_id in (logged, unlogged):
        ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
    first = urllib.request.urlopen(settled(ml, ml.get_data_source, "DataSourceId", logged)["LogUri"],
                                   timeout=10).read().decode()
    settled(ml, ml.get_data_source, "DataSourceId", unlogged)
    server.stop(kill=True)
    # An attempt killed before its end writes no log.
    (server.data_dir / "artifacts" / "logs" / "111111111111" / "DataSource" / f"{unlogged}.log").unlink()
    for ds_id in (logged, unlogged):
        _simulate_crash(server, "111111111111", "DataSource", ds_id, attempts=1)
    server.restart()
    ml = server.client()
    log = urllib.request.urlopen(settled(ml, ml.get_data_source, "DataSourceId", logged)["LogUri"],
                                 timeout=10).read().decode()
    assert log.startswith(first)
    assert log[len(first):].startswith("--- attempt 2 ---\n")
    assert "job started (attempt 2)" in log[len(first):]
    log = urllib.request.urlopen(settled(ml, ml.get_data_source, "DataSourceId", unlogged)["LogUri"],
                                 timeout=10).read().decode()
    assert log.startswith("--- attempt 2 ---\n") and log.count("job started") == 1


def test_scratch_is_swept_at_start_up_but_never_under_a_running_server(fresh_server):
    server = fresh_server()
    server.stop()
    scratch = server.data_dir / "scratch"
    (scratch / "training-left").mkdir(parents=True, exist_ok=True)
    (scratch / "training-left" / "bucket-0.npy").write_bytes(b"x" * 1000)
    (scratch / "spill.csv").write_text("a,b\n")
    server.start()
    assert scratch.is_dir() and not list(scratch.iterdir())
    # A second server started on the same data dir leaves the first's files alone.
    (scratch / "batch-in-use").mkdir()
    second = Server("", server.data_dir, None, env=server.env)
    try:
        second.start()
        assert (scratch / "batch-in-use").is_dir()
    finally:
        second.stop()


def test_sigterm_stops_cleanly(fresh_server):
    server = fresh_server()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert "Traceback" not in server.log_text()


def test_training_killed_with_its_server_is_run_again(fresh_server, tmp_path_factory):
    """SIGKILL the server mid-training: the worker dies with it, and the
    restarted server trains the model again to completion."""
    import psutil

    from learning_data import schema, write_dataset

    folder = tmp_path_factory.getbasetemp()
    server_lease = 5
    server = fresh_server("--jobs", "1", "--job-lease-seconds", str(server_lease), "--allow-local-path", str(folder))
    ml = server.client()
    data = folder / unique("big")
    write_dataset(data, 60000, "BINARY", seed=7)
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": data.as_uri(), "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id,
                       Parameters={"sgd.maxPasses": "50"})
    # Training keeps its files in the server's scratch space.
    scratch = server.data_dir / "scratch"
    wait_for(lambda: list(scratch.glob("training-*/*")), timeout=120, message="training to start")
    workers = psutil.Process(server.process.pid).children(recursive=True)
    server.stop(kill=True)
    psutil.wait_procs(workers, timeout=20)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    left = list(scratch.iterdir())
    assert left
    time.sleep(server_lease)
    server.restart()
    assert not any(path.exists() for path in left)  # swept before the job ran again
    ml = server.client()
    done = settled(ml, ml.get_ml_model, "MLModelId", model_id)
    assert done["Status"] == "COMPLETED", done.get("Message")
    log = urllib.request.urlopen(done["LogUri"], timeout=10).read().decode()
    assert "attempt 2" in log


def test_a_delete_racing_a_claim_is_not_overwritten():
    """A DeleteDataSource whose transaction commits while the queue is
    claiming the job: the claim must see DELETED, not write INPROGRESS over
    it. The delete holds its row lock until the claim has read the row."""
    import threading

    from support import drop_postgres_database, postgres_database
    from treadle.jobs.queue import JobQueue

    url = postgres_database()
    engine = db.create_engine(url)
    try:
        db.migrate(engine)
        store = EntityStore(engine)
        with engine.begin() as conn:
            store.insert(conn, "111122223333", "DataSource", "ds-race", {
                "DataSourceId": "ds-race", "Status": "PENDING", "CreatedByIamUser": "u",
                "CreatedAt": time.time(), "LastUpdatedAt": time.time()})
            store.enqueue(conn, "111122223333", "DataSource", "ds-race")
        deleting = engine.connect()
        transaction = deleting.begin()
        store.update("111122223333", "DataSource", "ds-race", {"Status": "DELETED"}, deleting)
        claimed = []
        claim = threading.Thread(target=lambda: claimed.extend(JobQueue(store).claim("me", 1, 60)))
        claim.start()
        claim.join(timeout=2)  # the claim waits on the row, or (unlocked) has read the old status
        transaction.commit()
        deleting.close()
        claim.join(timeout=30)
        assert not claim.is_alive()
        assert claimed == []
        assert store.get("111122223333", "DataSource", "ds-race").status == "DELETED"
        with engine.connect() as conn:
            assert conn.execute(sa.select(jobs.c.state)).scalar_one() == "done"
    finally:
        engine.dispose()
        drop_postgres_database(url)
