"""Memory stays bounded: the jobs a model goes through (a datasource with
statistics, training, an evaluation and a batch prediction) need no more
memory for four times the rows. Each size runs in a fresh process, jobs
in-process as a job worker runs them; the figure is the growth of the
peak resident set over a warm-up on a tiny file."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

ACCOUNT = "123412341234"
SCHEMA = {"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": True,
          "attributes": [{"attributeName": "id", "attributeType": "CATEGORICAL"},
                         {"attributeName": "x1", "attributeType": "NUMERIC"},
                         {"attributeName": "x2", "attributeType": "NUMERIC"},
                         {"attributeName": "colour", "attributeType": "CATEGORICAL"},
                         {"attributeName": "text", "attributeType": "TEXT"},
                         {"attributeName": "y", "attributeType": "BINARY"}],
          "rowId": "id", "excludedAttributeNames": ["id"]}
# Measured here: the jobs' growth over the warm-up was ~157 MB for both
# sizes (+10 MB for the larger). With the in-order feature cache that held
# a whole pass in memory, it was +50 MB: the limit sits between the two.
SMALL, LARGE = 250_000, 1_000_000
ALLOWED_GROWTH = 32 << 20


def write_rows(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = np.array(["good", "bad", "great", "awful", "ok", "meh", "fine", "poor"])
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.integers(0, 3, size=n)
    w = rng.integers(0, 8, size=(n, 4))
    z = 1.5 * x1 - x2 + np.where(colour == 0, 0.8, -0.3) + 0.7 * (w == 0).sum(1) - 0.7 * (w == 1).sum(1)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    # Ten more words from a larger vocabulary: rows of ~20 features, so that
    # state kept per row would show.
    extra = np.char.add("w", rng.integers(0, 1000, size=(n, 10)).astype(str))
    text = [" ".join(row) for row in np.concatenate([words[w], extra], axis=1).tolist()]
    colours = np.array(["red", "green", "blue"])[colour].tolist()
    with open(path, "w") as handle:
        handle.write("id,x1,x2,colour,text,y\n")
        handle.writelines(f"r{i},{a:.6f},{b:.6f},{c},{t},{label}\n" for i, a, b, c, t, label in zip(
            range(n), x1.tolist(), x2.tolist(), colours, text, y.tolist()))


def run_jobs(settings, prefix: str, data: Path, out: Path) -> None:
    from treadle.jobs.queue import JobQueue
    from treadle.jobs.worker import run_job
    from treadle.store import db
    from treadle.store.entities import ID_FIELD, EntityStore, now

    store = EntityStore(db.create_engine(settings.effective_database_url))
    params = {"sgd.maxMLModelSizeInBytes": "33554432", "sgd.maxPasses": "2", "sgd.shuffleType": "none",
              "sgd.l1RegularizationAmount": "0.0", "sgd.l2RegularizationAmount": "0.0", "algorithm": "sgd"}
    jobs = [("DataSource", f"ds-{prefix}", {"DataLocationS3": data.as_uri(), "ComputeStatistics": True,
                                             "_schema": json.dumps(SCHEMA), "_source": {"type": "s3"}}),
            ("MLModel", f"ml-{prefix}", {"MLModelType": "BINARY", "TrainingDataSourceId": f"ds-{prefix}",
                                        "TrainingParameters": params,
                                        "EndpointInfo": {"EndpointStatus": "NONE", "PeakRequestsPerSecond": 0}}),
            ("Evaluation", f"ev-{prefix}", {"MLModelId": f"ml-{prefix}", "EvaluationDataSourceId": f"ds-{prefix}"}),
            ("BatchPrediction", f"bp-{prefix}", {"MLModelId": f"ml-{prefix}", "BatchPredictionDataSourceId":
                                                 f"ds-{prefix}", "OutputUri": (out / prefix).as_uri() + "/"})]
    for kind, entity_id, fields in jobs:
        stamp = now()
        with store.engine.begin() as conn:
            store.insert(conn, ACCOUNT, kind, entity_id, {
                ID_FIELD[kind]: entity_id, "CreatedByIamUser": f"arn:aws:iam::{ACCOUNT}:root", "CreatedAt": stamp,
                "LastUpdatedAt": stamp, "Status": "PENDING", **fields})
            store.enqueue(conn, ACCOUNT, kind, entity_id)
        (job,) = JobQueue(store).claim("memory-test", 1, 3600)
        status = run_job(settings, job)
        assert status == "COMPLETED", store.get(ACCOUNT, kind, entity_id).document.get("Message")


def child(workdir: str, rows: int) -> None:
    from treadle.config import Settings
    from treadle.store import db

    work = Path(workdir)
    settings = Settings(data_dir=work / f"store-{rows}", allowed_local_paths=[work], job_concurrency=1)
    settings.data_dir.mkdir()
    db.migrate(db.create_engine(settings.effective_database_url))
    # Each size's own store writes its own batch output: a store never
    # replaces files another store wrote.
    out = work / f"out-{rows}"
    run_jobs(settings, "warm", work / "warm.csv", out)
    # Sampled, not ru_maxrss: the warm-up's peak (compiling the kernels)
    # is higher than anything after it and would hide the growth.
    baseline, peak, done = resident(), [0], threading.Event()

    def sample():
        while not done.wait(0.005):
            peak[0] = max(peak[0], resident())
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run_jobs(settings, "big", work / f"rows-{rows}.csv", out)
    done.set()
    sampler.join()
    print(json.dumps({"rows": rows, "baseline": baseline, "growth": max(peak[0], resident()) - baseline}))


def resident() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(workdir: Path, rows: int) -> int:
    done = subprocess.run([sys.executable, __file__, str(workdir), str(rows)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["growth"]


def test_jobs_need_no_more_memory_for_four_times_the_rows(tmp_path):
    write_rows(tmp_path / "warm.csv", 2000, seed=1)
    for rows in (SMALL, LARGE):
        write_rows(tmp_path / f"rows-{rows}.csv", rows, seed=2)
    small, large = growth(tmp_path, SMALL), growth(tmp_path, LARGE)
    print(f"growth: {small / 2**20:.1f} MB for {SMALL:,} rows, {large / 2**20:.1f} MB for {LARGE:,}")
    assert large - small < ALLOWED_GROWTH, (
        f"peak memory grew {small / 2**20:.0f} MB over the warm-up for {SMALL:,} rows and "
        f"{large / 2**20:.0f} MB for {LARGE:,}")


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]))
