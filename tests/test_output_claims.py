"""A job never replaces an object in a user's location that it did not
write (docs/behaviour.md, "Output locations are never overwritten by
someone else's job"): two accounts with the same BatchPredictionId and
OutputUri, a user's own file at a result's path, and a retry that may
replace its own files."""
import gzip
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from learning_data import schema, write_dataset
from support import settle, unique, wait_for
from treadle.data import locations
from treadle.data.locations import Confinement, LocationError
from treadle.store import db
from treadle.store.entities import EntityStore
from treadle.store.tables import jobs

ROWS = 300


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / unique("claims") / "scored.csv"
    path.parent.mkdir()
    write_dataset(path, ROWS, "BINARY", seed=5)
    return path


def trained_model(ml, data) -> tuple[str, str]:
    """A datasource and a model trained on it, in the client's account."""
    ds_id, model_id = unique("ds"), unique("ml")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": data.as_uri(), "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id,
                       Parameters={"sgd.maxPasses": "1"})
    model = settle(ml.get_ml_model, MLModelId=model_id, timeout=300)
    assert model["Status"] == "COMPLETED", model.get("Message")
    return ds_id, model_id


@pytest.fixture(scope="module")
def accounts(server, data):
    """Alice's and Bob's clients, each with its own model and datasource."""
    alice, bob = server.client(server.default_keys), server.client(server.other_keys)
    return (alice, *trained_model(alice, data)), (bob, *trained_model(bob, data))


def output_location(kind: str, tmp_path, s3) -> str:
    if kind == "file":
        return tmp_path.as_uri() + "/out/"
    bucket = unique("out").lower()
    s3.client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/out/"


def read_object(uri: str, s3) -> bytes:
    if uri.startswith("file://"):
        return Path(unquote(urlsplit(uri).path)).read_bytes()
    bucket, _, key = uri[len("s3://"):].partition("/")
    return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def write_object(uri: str, body: bytes, s3) -> None:
    if uri.startswith("file://"):
        path = Path(unquote(urlsplit(uri).path))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return
    bucket, _, key = uri[len("s3://"):].partition("/")
    s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def predict(ml, ds_id, model_id, bp_id, out) -> dict:
    ml.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id, BatchPredictionDataSourceId=ds_id,
                               OutputUri=out)
    return settle(ml.get_batch_prediction, BatchPredictionId=bp_id, timeout=300)


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_another_account_cannot_replace_a_batch_prediction_output(accounts, s3, tmp_path, kind, data):
    (alice, alice_ds, alice_model), (bob, bob_ds, bob_model) = accounts
    out = output_location(kind, tmp_path, s3)
    bp_id = unique("bp")
    first = predict(alice, alice_ds, alice_model, bp_id, out)
    assert first["Status"] == "COMPLETED", first.get("Message")
    manifest = f"{out}batch-prediction/{bp_id}.manifest"
    result = f"{out}batch-prediction/result/{bp_id}-{data.name}.gz"
    before = {uri: read_object(uri, s3) for uri in (manifest, result)}

    second = predict(bob, bob_ds, bob_model, bp_id, out)
    assert second["Status"] == "FAILED"
    assert manifest in second["Message"] or result in second["Message"]
    assert {uri: read_object(uri, s3) for uri in (manifest, result)} == before
    assert alice.get_batch_prediction(BatchPredictionId=bp_id)["Status"] == "COMPLETED"


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_users_own_file_at_a_result_path_is_left_untouched(accounts, s3, tmp_path, kind, data):
    (alice, ds_id, model_id), _ = accounts
    out = output_location(kind, tmp_path, s3)
    bp_id = unique("bp")
    result = f"{out}batch-prediction/result/{bp_id}-{data.name}.gz"
    write_object(result, b"the user's own file", s3)
    got = predict(alice, ds_id, model_id, bp_id, out)
    assert got["Status"] == "FAILED"
    assert result in got["Message"]
    assert read_object(result, s3) == b"the user's own file"
    if kind == "file":  # nothing else was written either
        assert not (tmp_path / "out" / "batch-prediction" / f"{bp_id}.manifest").exists()
        assert not [p for p in (tmp_path / "out").rglob(".tmp-*")]


def test_a_retried_batch_prediction_replaces_its_own_files(fresh_server, tmp_path_factory, data):
    folder = tmp_path_factory.getbasetemp()
    server = fresh_server("--jobs", "1", "--allow-local-path", str(folder))
    ml = server.client()
    ds_id, model_id = trained_model(ml, data)
    out_dir = folder / unique("retry")
    bp_id = unique("bp")
    first = predict(ml, ds_id, model_id, bp_id, out_dir.as_uri() + "/")
    assert first["Status"] == "COMPLETED", first.get("Message")
    result = out_dir / "batch-prediction" / "result" / f"{bp_id}-{data.name}.gz"
    result.write_bytes(gzip.compress(b"damaged\n"))
    server.stop()
    # As a server that died after writing the files but before recording
    # the outcome would leave it.
    engine = db.create_engine(db.sqlite_url(server.data_dir))
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.entity_id == bp_id).values(
            state="running", owner="crashed-server", attempts=1, lease_expires=time.time() - 1))
        EntityStore(engine).update("111111111111", "BatchPrediction", bp_id,
                                   {"Status": "INPROGRESS", "StartedAt": time.time()}, conn)
    engine.dispose()
    server.restart()
    ml = server.client()

    def run_again():
        got = ml.get_batch_prediction(BatchPredictionId=bp_id)
        return got if got["Status"] in ("COMPLETED", "FAILED") else None

    again = wait_for(run_again, timeout=120, message="the retry")
    assert again["Status"] == "COMPLETED", again.get("Message")
    lines = gzip.decompress(result.read_bytes()).decode().split("\n")
    assert len(lines) == ROWS + 2  # the header, every record, and the last line's end


def test_a_failed_write_leaves_nothing_behind(tmp_path, s3, monkeypatch):
    """Neither a temporary file beside a file:// target nor an unfinished
    multipart upload in a bucket."""
    access = Confinement((tmp_path,))
    with pytest.raises(LocationError):
        locations.write_file(tmp_path, (tmp_path / "out" / "result.gz").as_uri(), access)  # a folder: no copy
    assert not list((tmp_path / "out").iterdir())

    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    locations.s3_client.cache_clear()
    try:
        bucket = unique("out").lower()
        s3.client().create_bucket(Bucket=bucket)
        big = tmp_path / "big.gz"
        big.write_bytes(b"\0" * (9 << 20))  # past the transfer manager's 8 MB multipart threshold

        def refuse(**kwargs):
            raise ConnectionError("the connection dropped")
        locations.s3_client().meta.events.register("before-call.s3.UploadPart", refuse)
        with pytest.raises(LocationError):
            locations.write_file(big, f"s3://{bucket}/out/result.gz", access)
        assert not s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads")
        assert not s3.client().list_objects_v2(Bucket=bucket).get("Contents")
    finally:
        locations.s3_client.cache_clear()
