"""Cluster scaling: ingest with statistics, training and batch scoring of one
generated datasource with the local runner, a one-worker Dask cluster and a
two-worker Dask cluster, in one run (bench/README.md, "Cluster scaling").

    python bench/scale.py            # 4M rows
    python bench/scale.py --quick    # 400k rows, for development
    python bench/scale.py --repeat 3 # best of three runs per step on the same servers (the first is cold)

Each configuration is a real `treadle serve` (--auth none on loopback) on a
PostgreSQL metadata database created for the run; the clusters are started
with the `dask` command (`--nthreads 1`) and share the server's local
artifact folder (`--shared-artifacts`). Each Dask worker, and the local
runner's server with its job processes, is pinned to a core of its own
(`taskset`), standing for a one-core machine: on a 2-core machine that is
the only way to compare two workers with one, since a single process
already uses both cores. The scheduler is not pinned. Data is generated once with a fixed
seed into --dir and read as file://. Times are each object's
FinishedAt - StartedAt as the API reports it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = str(Path(__file__).resolve().parent.parent)
PG_ADMIN_URL = os.environ.get("TREADLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SCHEMA = {
    "version": "1.0", "rowId": "id", "targetAttributeName": "y", "dataFormat": "CSV",
    "dataFileContainsHeader": True,
    "attributes": [{"attributeName": "id", "attributeType": "CATEGORICAL"},
                   *({"attributeName": f"x{i}", "attributeType": "NUMERIC"} for i in range(1, 5)),
                   {"attributeName": "city", "attributeType": "CATEGORICAL"},
                   {"attributeName": "job", "attributeType": "CATEGORICAL"},
                   {"attributeName": "text", "attributeType": "TEXT"},
                   {"attributeName": "y", "attributeType": "BINARY"}]}
WORDS = np.array([f"w{i}" for i in range(2000)])
TARGETS = {"ingest": 1.7, "batch": 1.7, "train": 1.4}


def generate(path: Path, rows: int, seed: int = 7) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as handle:
        handle.write(b"id,x1,x2,x3,x4,city,job,text,y\n")
        block = 200_000
        for start in range(0, rows, block):
            n = min(block, rows - start)
            x = rng.normal(size=(n, 4))
            city = rng.zipf(1.3, n) % 300
            job = rng.integers(0, 12, n)
            words = WORDS[np.minimum(rng.zipf(1.2, (n, 5)), 2000) - 1]
            z = x[:, 0] - 0.7 * x[:, 1] + 0.3 * x[:, 2] + (city % 3 == 0) - 0.5 * (job < 4) \
                + 0.5 * (words[:, 0] == "w0")
            y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
            missing = rng.random(n) < 0.02
            columns = {
                "id": pa.array(np.char.add("r", np.arange(start, start + n).astype(str))),
                **{f"x{i + 1}": pa.array(np.round(x[:, i], 5).astype(str)) for i in range(4)},
                "city": pa.array(np.char.add("c", city.astype(str))),
                "job": pa.array(np.char.add("j", job.astype(str))),
                "text": pa.array([" ".join(r) for r in words.tolist()]),
                "y": pa.array(y.astype(str)),
            }
            columns["x4"] = pa.array(np.where(missing, "", np.round(x[:, 3], 5).astype(str)))
            pa_csv.write_csv(pa.table(columns), handle, pa_csv.WriteOptions(include_header=False,
                                                                            quoting_style="none"))
    tmp.rename(path)


def pinned(core: int) -> list[str]:
    """The command prefix that runs a process on one core (the machine's cores in turn)."""
    cores = sorted(os.sched_getaffinity(0))
    return ["taskset", "-c", str(cores[core % len(cores)])] if shutil.which("taskset") else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a process exited early ({process.args[:3]})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port}")


class Setup:
    """One configuration: a server, and for a cluster its scheduler and workers."""

    def __init__(self, name: str, workers: int, work: Path, data: Path, part_bytes: int):
        import psycopg
        from cryptography.fernet import Fernet

        self.name, self.processes = name, []
        self.folder = work / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.database = "treadle_scale_" + uuid.uuid4().hex[:10]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self.env = {**os.environ, "TREADLE_MASTER_KEY": Fernet.generate_key().decode(),
                    "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.database
        self.port = free_port()
        extra = []
        if workers:
            scheduler = free_port()
            self._start("scheduler", ["dask", "scheduler", "--host", "127.0.0.1", "--port", str(scheduler),
                                      "--dashboard-address", f"127.0.0.1:{free_port()}"])
            for k in range(workers):
                self._start(f"w{k + 1}", [*pinned(k), "dask", "worker", f"tcp://127.0.0.1:{scheduler}", "--name", f"w{k + 1}",
                                          "--nthreads", "1", "--no-nanny",
                                          "--local-directory", str(self.folder / f"w{k + 1}")])
            from distributed import Client

            with Client(f"tcp://127.0.0.1:{scheduler}", timeout=60) as client:
                client.wait_for_workers(workers, timeout=120)
            extra = ["--dask-scheduler", f"tcp://127.0.0.1:{scheduler}", "--shared-artifacts",
                     "--part-bytes", str(part_bytes)]
        else:
            extra = ["--jobs", "1"]
        # The local runner's jobs run in the server's worker processes, which
        # inherit its core; a cluster's server only waits on the cluster.
        self._start("server", [*(pinned(0) if not workers else []), sys.executable, "-m", "treadle", "serve", "--auth", "none", "--port", str(self.port),
                               "--data-dir", str(self.folder / "data"), "--database-url", url,
                               "--allow-local-path", str(data.parent), *extra])
        wait_port(self.port, self.processes[-1])

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "ab")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                               cwd=ROOT))

    def client(self):
        import boto3

        return boto3.client("machinelearning", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench")

    def stop(self) -> None:
        import psycopg

        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def settle(get, **key) -> dict:
    while True:
        found = get(**key)
        if found["Status"] in ("COMPLETED", "FAILED", "DELETED"):
            if found["Status"] != "COMPLETED":
                raise SystemExit(f"{key}: {found['Status']} {found.get('Message')}")
            return found
        time.sleep(0.5)


def seconds(found: dict) -> float:
    return (found["FinishedAt"] - found["StartedAt"]).total_seconds()


def measure(setup: Setup, data: Path, held_out: Path, passes: int, out: Path) -> dict:
    ml = setup.client()
    tag = uuid.uuid4().hex[:6]
    ds, model, bp, test, ev = f"ds-{tag}", f"ml-{tag}", f"bp-{tag}", f"test-{tag}", f"ev-{tag}"
    ml.create_data_source_from_s3(DataSourceId=ds, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": data.as_uri(), "DataSchema": json.dumps(SCHEMA)})
    ingest = settle(ml.get_data_source, DataSourceId=ds)
    ml.create_ml_model(MLModelId=model, MLModelType="BINARY", TrainingDataSourceId=ds,
                       Parameters={"sgd.maxPasses": str(passes), "sgd.shuffleType": "none"})
    train = settle(ml.get_ml_model, MLModelId=model)
    ml.create_batch_prediction(BatchPredictionId=bp, MLModelId=model, BatchPredictionDataSourceId=ds,
                               OutputUri=(out / setup.name).as_uri() + "/")
    batch = settle(ml.get_batch_prediction, BatchPredictionId=bp)
    # The model's quality on held-out records, which training on shards must keep.
    ml.create_data_source_from_s3(DataSourceId=test, ComputeStatistics=False,
                                  DataSpec={"DataLocationS3": held_out.as_uri(), "DataSchema": json.dumps(SCHEMA)})
    settle(ml.get_data_source, DataSourceId=test)
    ml.create_evaluation(EvaluationId=ev, MLModelId=model, EvaluationDataSourceId=test)
    auc = float(settle(ml.get_evaluation, EvaluationId=ev)["PerformanceMetrics"]["Properties"]["BinaryAUC"])
    return {"ingest": seconds(ingest), "train": seconds(train), "batch": seconds(batch),
            "records": batch["TotalRecordCount"], "auc": auc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--quick", action="store_true", help="400k rows")
    parser.add_argument("--dir", default="/tmp/treadle-bench-scale")
    parser.add_argument("--passes", type=int, default=3, help="training passes (sgd.maxPasses)")
    parser.add_argument("--part-bytes", type=int, default=0,
                        help="the clusters' part size (default: the file in 16 parts)")
    parser.add_argument("--configs", default="local,cluster-1,cluster-2")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of runs on the same servers, the configurations in turn; each step's best "
                             "time is kept")
    args = parser.parse_args()
    rows = 400_000 if args.quick else args.rows
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "input" / f"scale-{rows}.csv"
    data.parent.mkdir(exist_ok=True)
    if not data.exists():
        print(f"generating {rows} rows into {data}", flush=True)
        generate(data, rows)
    held_out = work / "input" / "held-out-400000.csv"
    if not held_out.exists():
        generate(held_out, 400_000, seed=8)
    size = data.stat().st_size
    part_bytes = args.part_bytes or -(-size // 16)
    out = Path(tempfile.mkdtemp(prefix="out-", dir=data.parent))
    # Every configuration is started first and the runs take turns, so that
    # each step's best time comes from the same stretch of the machine's
    # noise for every configuration, not from minutes apart.
    names = args.configs.split(",")
    setups: dict[str, Setup] = {}
    runs: dict[str, list[dict]] = {name: [] for name in names}
    try:
        for name in names:
            setups[name] = Setup(name, 0 if name == "local" else int(name.split("-")[1]), work, data, part_bytes)
        for round_ in range(max(1, args.repeat)):
            for name in names:
                runs[name].append(measure(setups[name], data, held_out, args.passes, out))
                print(f"round {round_ + 1}", name, json.dumps(runs[name][-1]), flush=True)
    finally:
        for setup in setups.values():
            setup.stop()
    results = {name: {key: min(run[key] for run in done) if key in ("ingest", "train", "batch") else done[-1][key]
                      for key in done[0]} for name, done in runs.items()}
    shutil.rmtree(out, ignore_errors=True)
    mb = size / 1e6
    print(f"\n{rows:,} rows, {mb:.0f} MB, parts of {part_bytes / 1e6:.1f} MB, {args.passes} training passes\n")
    print("| step | " + " | ".join(f"{n} s (MB/s)" for n in results) + " | 2 workers vs 1 | target |")
    print("|---|" + "---|" * (len(results) + 2))
    for step in ("ingest", "train", "batch"):
        cells = [f"{r[step]:.1f} ({mb / r[step]:.1f})" for r in results.values()]
        ratio = (f"{results['cluster-1'][step] / results['cluster-2'][step]:.2f}x"
                 if {"cluster-1", "cluster-2"} <= set(results) else "-")
        print(f"| {step} | " + " | ".join(cells) + f" | {ratio} | {TARGETS[step]}x |")
    print("\nheld-out AUC: " + ", ".join(f"{name} {r['auc']:.4f}" for name, r in results.items())
          + (f"; two workers against one process {results['cluster-2']['auc'] - results['local']['auc']:+.4f} "
             "(bound: -0.005)" if {"local", "cluster-2"} <= set(results) else ""))
    if {"local", "cluster-1"} <= set(results):
        print("\ncluster overhead, one worker against the local runner: " + ", ".join(
            f"{step} {100 * (results['cluster-1'][step] / results['local'][step] - 1):+.0f}%"
            for step in ("ingest", "train", "batch")) + " (target: under 15%)")


if __name__ == "__main__":
    main()
