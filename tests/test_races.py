"""Changes that race each other across processes: a decision made on an
entity's state must still hold when it is written, so that a change
committed in between (a delete, a new threshold) is kept, not overwritten."""
import threading
import time

import pytest
from botocore.exceptions import ClientError

from support import unique, wait_for
from test_learning import artifact
from test_realtime import RECORD, ready, train
from treadle.jobs.queue import JobQueue, JobRef
from treadle.serving.endpoints import LocalServing
from treadle.store import db
from treadle.store.entities import EntityStore
from treadle.store.tables import jobs

ACCOUNT = "111122223333"


@pytest.fixture
def store(tmp_path):
    engine = db.create_engine(db.sqlite_url(tmp_path))
    db.migrate(engine)
    yield EntityStore(engine)
    engine.dispose()


def insert_model(store, model_id: str, status: str, endpoint: str) -> None:
    stamp = time.time()
    with store.engine.begin() as conn:
        store.insert(conn, ACCOUNT, "MLModel", model_id, {
            "MLModelId": model_id, "MLModelType": "BINARY", "Status": status, "CreatedByIamUser": "u",
            "CreatedAt": stamp, "LastUpdatedAt": stamp,
            "EndpointInfo": {"EndpointStatus": endpoint, "PeakRequestsPerSecond": 200, "CreatedAt": stamp}})


def test_an_endpoint_deleted_while_its_model_loads_stays_deleted(store):
    insert_model(store, "ml-a", "COMPLETED", "UPDATING")
    loading, release = threading.Event(), threading.Event()

    def slow_loader(account, entity):
        loading.set()
        release.wait(10)
        return object()

    serving = LocalServing(store, slow_loader, peak_rps=200)
    results = []
    mount = threading.Thread(target=lambda: results.append(serving.mount(ACCOUNT, "ml-a")))
    mount.start()
    assert loading.wait(10)
    # DeleteRealtimeEndpoint, committed by another HTTP worker meanwhile.
    store.update(ACCOUNT, "MLModel", "ml-a", {"EndpointInfo": {"EndpointStatus": "NONE"}})
    release.set()
    mount.join(10)
    assert results[0]["EndpointStatus"] == "NONE"
    assert store.get(ACCOUNT, "MLModel", "ml-a").document["EndpointInfo"]["EndpointStatus"] == "NONE"
    assert serving.predict_cached(ACCOUNT, "ml-a", RECORD) is None  # nothing left loaded


def test_a_lost_job_whose_worker_finished_meanwhile_is_left_finished(store):
    """The scheduler took the job for lost (its lease ran out, or its worker
    process died) just as the worker committed the result."""
    insert_model(store, "ml-b", "COMPLETED", "NONE")
    with store.engine.begin() as conn:
        store.enqueue(conn, ACCOUNT, "MLModel", "ml-b")
        conn.execute(jobs.update().values(state="done"))
        pk = conn.execute(jobs.select()).one().pk
    JobQueue(store).requeue(JobRef(pk, ACCOUNT, "MLModel", "ml-b", 1), "The worker running this job stopped")
    assert store.get(ACCOUNT, "MLModel", "ml-b").status == "COMPLETED"
    with store.engine.connect() as conn:
        assert conn.execute(jobs.select()).one().state == "done"


def hold_delete(server, model_id: str):
    """Start DeleteMLModel's write in the server's database and keep the
    transaction open (holding the row, or SQLite's write lock)."""
    engine = db.create_engine(server.database_url or db.sqlite_url(server.data_dir))
    store = EntityStore(engine)
    conn = engine.connect()
    transaction = conn.begin()
    account = server.default_keys.account
    store.update(account, "MLModel", model_id, {"Status": "DELETED", "EndpointInfo": {"EndpointStatus": "NONE"}},
                 conn)
    return engine, conn, transaction


CHANGES = {
    "CreateRealtimeEndpoint": lambda ml, model_id: ml.create_realtime_endpoint(MLModelId=model_id),
    "UpdateMLModel": lambda ml, model_id: ml.update_ml_model(MLModelId=model_id, ScoreThreshold=0.6),
    "AddTags": lambda ml, model_id: ml.add_tags(ResourceId=model_id, ResourceType="MLModel",
                                                Tags=[{"Key": "k", "Value": "v"}]),
}


@pytest.mark.parametrize("operation", sorted(CHANGES))
def test_a_change_to_a_model_deleted_meanwhile_is_refused(ml, server, operation):
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://no-such-bucket/k.csv"},
                                  ComputeStatistics=True)
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    engine, conn, transaction = hold_delete(server, model_id)
    outcome = []

    def change():
        try:
            outcome.append(CHANGES[operation](ml, model_id))
        except ClientError as error:
            outcome.append(error.response["Error"]["Code"])
    call = threading.Thread(target=change)
    call.start()
    call.join(1.5)  # the call has checked the model (not yet deleted) and waits on the row
    transaction.commit()
    conn.close()
    engine.dispose()
    call.join(30)
    assert outcome == ["InvalidInputException"]
    got = ml.get_ml_model(MLModelId=model_id)
    assert got["Status"] == "DELETED" and got["EndpointInfo"]["EndpointStatus"] == "NONE"
    assert "ScoreThreshold" not in got or got["ScoreThreshold"] != 0.6
    assert ml.describe_tags(ResourceId=model_id, ResourceType="MLModel")["Tags"] == []


def test_a_threshold_set_while_training_is_kept(ml, server, tmp_path_factory):
    model_id = train(ml, server, tmp_path_factory, "BINARY", n=60000)
    wait_for(lambda: ml.get_ml_model(MLModelId=model_id)["Status"] == "INPROGRESS", timeout=120, interval=0.02,
             message=f"{model_id} to start training")
    ml.update_ml_model(MLModelId=model_id, ScoreThreshold=0.93)
    assert ml.get_ml_model(MLModelId=model_id)["Status"] == "INPROGRESS"  # the job read the model before this
    wait_for(lambda: ml.get_ml_model(MLModelId=model_id)["Status"] == "COMPLETED", timeout=300,
             message=f"{model_id} to complete")
    assert ml.get_ml_model(MLModelId=model_id)["ScoreThreshold"] == pytest.approx(0.93)
    ml.create_realtime_endpoint(MLModelId=model_id)
    ready(ml, model_id)
    answer = ml.predict(MLModelId=model_id, Record=RECORD, PredictEndpoint=server.url)["Prediction"]
    assert answer["predictedLabel"] == artifact(server, model_id).predict_record(RECORD, 0.93).label
