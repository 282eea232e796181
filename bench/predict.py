"""Real-time Predict throughput and latency, against a bare reference and
while a training job runs on the same server.

    python bench/predict.py                      # ~3 minutes on 2 cores
    python bench/predict.py --duration 5 --connections 16 --engine python

One run:

1. starts `treadle serve --workers N` (N: the CPU count unless --workers
   says otherwise) on a temporary data dir (SigV4 on, a per-endpoint
   limit high enough never to throttle), creates an access key with
   `treadle credentials create`, trains a BINARY, a MULTICLASS and a
   REGRESSION model through boto3 and mounts their real-time endpoints;
2. starts `bench/predict_reference.py` (Starlette + numpy, no auth) on the
   same model files, served by plain uvicorn with the same N processes;
3. for each model type runs `bench/predict_load.py` in its own process
   against Treadle and then the reference: a pool of distinct requests
   signed by botocore's SigV4Auth, replayed over keep-alive connections
   (wrk when installed, else Python asyncio), a warm-up, then the window;
4. measures Predict again while two training jobs run at once: a slow
   CreateMLModel on a large datasource (with bigrams; a new job whenever
   the last completes), and short ones on 5,000 rows, one after another,
   so that jobs start and end inside every window. It reports how often
   the slow job was found running and how many short jobs started and
   completed during each window.

It prints one line per measurement and a table with the targets. CPU
columns are the share of one core used by the server's HTTP processes
(summed) and by the generator during the window: a generator near 100% is
the bottleneck, not the server.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from learning_data import schema, write_dataset  # noqa: E402

RECIPE = json.dumps({"outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC", "lowercase(ALL_TEXT)"]})
TRAINING_RECIPE = json.dumps({"outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC", "lowercase(ALL_TEXT)",
                                          "ngram(lowercase(text), 2)", "quantile_bin(x1, 50)",
                                          "cartesian(colour, quantile_bin(x2, 20))"]})
KINDS = ("BINARY", "MULTICLASS", "REGRESSION")
TARGET_RPS, TARGET_P99_MS, TARGET_RATIO, TARGET_TRAINING_P99_MS = 2000, 10.0, 0.5, 25.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def write_large(path: Path, n: int, seed: int = 11) -> None:
    """tests/learning_data.py's BINARY rows plus six words from a 20,000-word
    vocabulary (some informative), generated with numpy so that a million
    rows take seconds; with bigrams these give the job millions of features
    to learn over several passes."""
    rng = np.random.default_rng(seed)
    words = np.array(["good", "bad", "great", "awful", "ok", "meh", "fine", "poor"]
                     + [f"w{i}" for i in range(20_000)])
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.integers(0, 3, size=n)
    w = np.concatenate([rng.integers(0, 8, size=(n, 4)), 8 + rng.zipf(1.3, size=(n, 6)) % 20_000], axis=1)
    z = (1.5 * x1 - x2 + np.where(colour == 0, 0.8, -0.3) + 0.7 * (w == 0).sum(1) - 0.7 * (w == 1).sum(1)
         + 0.3 * (w % 7 == 0).sum(1) - 0.3 * (w % 5 == 0).sum(1))
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    colours = np.array(["red", "green", "blue"])[colour]
    text = [" ".join(row) for row in words[w].tolist()]
    with open(path, "w") as handle:
        handle.write("id,x1,x2,colour,text,y\n")
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            handle.writelines(f"r{i},{a:.5f},{b:.5f},{c},{t},{label}\n" for i, a, b, c, t, label in zip(
                range(start, stop), x1[start:stop].tolist(), x2[start:stop].tolist(),
                colours[start:stop].tolist(), text[start:stop], y[start:stop].tolist()))


def cpu_seconds(pids) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


class TrainingKeeper(threading.Thread):
    """Keeps one CreateMLModel job on a datasource running: when it
    completes, the next starts, so the job's CPU load (a worker process of
    the server's job runner) lasts as long as the measurement. It polls
    the model's status, counts how often a job was found running, and
    counts the jobs started and completed in each window."""

    def __init__(self, ml, datasource_id: str, passes: int, recipe: str, name: str):
        super().__init__(daemon=True)
        self.ml, self.datasource_id, self.passes, self.recipe, self.name = ml, datasource_id, passes, recipe, name
        self.started = self.completed = 0
        self.in_progress = False
        self.stopping = threading.Event()
        self.error: Exception | None = None
        self.counting = False
        self.polls = self.running = 0

    def window(self, start: bool) -> dict:
        self.counting = start
        if start:
            self.polls = self.running = 0
            self.marks = (self.started, self.completed)
            return {}
        return {f"{self.name}_share": self.running / max(self.polls, 1), f"{self.name}_polls": self.polls,
                f"{self.name}_started": self.started - self.marks[0],
                f"{self.name}_completed": self.completed - self.marks[1]}

    def run(self) -> None:
        try:
            self._keep()
        except Exception as error:  # reported by check(), in the main thread
            self.error = error

    def _keep(self) -> None:
        model_id = None
        while not self.stopping.is_set():
            status = self.ml.get_ml_model(MLModelId=model_id)["Status"] if model_id else "COMPLETED"
            if status == "FAILED":
                raise RuntimeError(f"training job {model_id} failed")
            if status == "COMPLETED":
                self.completed += model_id is not None
                model_id = f"ml-bench-{self.name}-{self.started}-{int(time.time())}"
                self.ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY",
                                        TrainingDataSourceId=self.datasource_id, Recipe=self.recipe,
                                        Parameters={"sgd.maxPasses": str(self.passes)})
                self.started += 1
            self.in_progress = status == "INPROGRESS"
            if self.counting:
                self.polls += 1
                self.running += self.in_progress
            self.stopping.wait(0.1)

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the {self.name} training keeper failed: {self.error}") from self.error

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


class Bench:
    def __init__(self, args):
        self.args = args
        self.dir = Path(args.dir or tempfile.mkdtemp(prefix="treadle-bench-predict-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "treadle"
        shutil.rmtree(self.data_dir, ignore_errors=True)  # a fresh server each run; the CSVs are kept
        self.processes: list[subprocess.Popen] = []
        self.results: list[dict] = []

    # ------------------------------------------------------------ processes
    def spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.dir / f"{name}.log"
        process = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                   cwd=HERE.parent, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
        self.processes.append(process)
        return process, log

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def treadle_cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "treadle", *args, "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, check=True, cwd=HERE.parent)

    # ----------------------------------------------------------------- setup
    def start_treadle(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        created = self.treadle_cli("credentials", "create", "--user", "bench")
        values = dict(line.removeprefix("export ").split("=", 1) for line in created.stdout.splitlines())
        self.keys = {"access_key_id": values["AWS_ACCESS_KEY_ID"],
                     "secret_access_key": values["AWS_SECRET_ACCESS_KEY"], "region": "us-east-1"}
        self.server, self.server_log = self.spawn("treadle", [
            sys.executable, "-m", "treadle", "serve", "--port", str(port), "--data-dir", str(self.data_dir),
            "--peak-requests-per-second", "1000000", "--allow-local-path", str(self.dir),
            "--workers", str(self.args.workers)])
        wait_http(self.url + "/health", self.server, self.server_log)

    def treadle_http_pids(self) -> list[int]:
        """The server's HTTP workers: itself and the workers its log names
        (its other children are job workers)."""
        pids = [self.server.pid]
        for line in self.server_log.read_text().splitlines():
            if '"worker started"' in line:
                pids.append(json.loads(line)["worker_pid"])
        return [pid for pid in pids if Path(f"/proc/{pid}").exists()]

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("machinelearning", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.keys["access_key_id"],
                            aws_secret_access_key=self.keys["secret_access_key"],
                            config=Config(retries={"max_attempts": 3}))

    def wait(self, what: str, check, timeout: float = 900):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}")

    def datasource(self, ml, name: str, path: Path, kind: str) -> str:
        ds_id = f"ds-bench-{name}-{int(time.time())}"
        ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                      DataSpec={"DataLocationS3": path.as_uri(), "DataSchema": schema(kind)})
        return ds_id

    def completed(self, get, **key):
        def check():
            status = get(**key)["Status"]
            if status in ("FAILED", "DELETED"):
                raise RuntimeError(f"{key} is {status}: {get(**key).get('Message')}")
            return status == "COMPLETED"
        return check

    def setup_models(self, kinds=KINDS, large: bool = True) -> None:
        """Served models of `kinds`, and (`large`) the datasource the
        training measurement trains on."""
        ml = self.client()
        self.models, self.served_ds = {}, {}
        for kind in kinds:
            path = self.dir / f"{kind.lower()}-{self.args.rows}.csv"
            if not path.exists():
                write_dataset(path, self.args.rows, kind, seed=5)
            ds_id = self.served_ds[kind] = self.datasource(ml, kind.lower(), path, kind)
            model_id = f"ml-bench-{kind.lower()}-{int(time.time())}"
            ml.create_ml_model(MLModelId=model_id, MLModelType=kind, TrainingDataSourceId=ds_id, Recipe=RECIPE)
            ml.create_realtime_endpoint(MLModelId=model_id)
            self.models[kind] = model_id
        if large:
            big = self.dir / f"large-{self.args.training_rows}.csv"
            if not big.exists():
                print(f"writing {self.args.training_rows:,} rows for the training job ...", flush=True)
                write_large(big, self.args.training_rows)
            self.large_ds = self.datasource(ml, "large", big, "BINARY")
        for kind, model_id in self.models.items():
            def ready(model_id=model_id):
                model = ml.get_ml_model(MLModelId=model_id)
                if model["Status"] == "FAILED" or model["EndpointInfo"]["EndpointStatus"] == "FAILED":
                    raise RuntimeError(f"{model_id}: {model.get('Message')}")
                return model["EndpointInfo"]["EndpointStatus"] == "READY"
            self.wait(f"the {kind} endpoint", ready)
            print(f"{kind} model {model_id}: endpoint READY", flush=True)
        if large:
            self.wait("the large datasource", self.completed(ml.get_data_source, DataSourceId=self.large_ds))
            print(f"large datasource {self.large_ds}: COMPLETED", flush=True)

    def start_reference(self) -> None:
        port = free_port()
        self.reference_url = f"http://127.0.0.1:{port}"
        self.reference, log = self.spawn("reference", [
            sys.executable, str(HERE / "predict_reference.py"), "--artifacts", str(self.data_dir / "artifacts"),
            "--port", str(port), "--workers", str(self.args.workers)])
        wait_http(self.reference_url + "/", self.reference, log)
        if self.args.workers > 1:  # uvicorn's workers answer only once each has started
            self.wait("the reference's workers", lambda: len(children(self.reference.pid)) >= self.args.workers)
            time.sleep(3.0)

    def http_pids(self, target: str) -> list[int]:
        if target == "treadle":
            return self.treadle_http_pids()
        return [self.reference.pid, *children(self.reference.pid)]

    # ------------------------------------------------------------------ load
    def load(self, label: str, target: str, kind: str) -> dict:
        url = self.url if target == "treadle" else self.reference_url
        spec = {"url": url, "model_id": self.models[kind], "keys": self.keys if target == "treadle" else None,
                "pool": self.args.pool, "seed": len(self.results) + 1, "connections": self.args.connections,
                "warmup": self.args.warmup, "duration": self.args.duration, "engine": self.engine}
        spec_path = self.dir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        generator = subprocess.Popen([sys.executable, str(HERE / "predict_load.py"), "--spec", str(spec_path)],
                                     stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
        # The server's CPU over the warm-up and the window (the pool is
        # signed before the warm-up; that second is left out).
        time.sleep(min(1.0, self.args.warmup))
        pids = self.http_pids(target)
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        out, _ = generator.communicate()
        cpu1, t1 = cpu_seconds(pids), time.monotonic()
        if generator.returncode != 0:
            raise RuntimeError(f"load generator failed ({generator.returncode})")
        result = json.loads(out.strip().splitlines()[-1])
        result.update(label=label, target=target, kind=kind, server_cpu=(cpu1 - cpu0) / (t1 - t0))
        self.results.append(result)
        print(f"{label:<28} {result['rps']:>9,.0f}/s  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
              f"max {result['max_ms']:7.1f} ms  ok {result['ok']}/{result['requests']}  "
              f"server cpu {result['server_cpu']:4.0%}  client cpu {result['client_cpu']:4.0%}", flush=True)
        if result["ok"] != result["requests"]:
            raise RuntimeError(f"{label}: not every answer was 200: {result['statuses']}")
        return result

    def measure(self) -> None:
        # Alternating the two servers spreads the machine's other load over both.
        for round_ in range(self.args.repeat):
            for kind in KINDS:
                self.load(f"treadle {kind}", "treadle", kind)
                self.load(f"reference {kind}", "reference", kind)

    def renice_jobs(self) -> None:
        """--nice-jobs: an experiment, not what Treadle does by itself: lower
        the priority of the server's job worker processes."""
        http = set(self.treadle_http_pids())
        jobs = [pid for pid in children(self.server.pid) if pid not in http]
        for pid in jobs:
            # Linux applies a priority per thread: every thread of the worker.
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.setpriority(os.PRIO_PROCESS, int(tid), self.args.nice_jobs)
        print(f"  job workers {jobs} reniced to {self.args.nice_jobs}", flush=True)

    def measure_training(self) -> None:
        """Two jobs at once (the job runner's default concurrency is the CPU
        count): a slow one on the large datasource, kept running through
        every window, and short ones on the BINARY model's 5,000 rows, one
        after another, so that jobs start and end inside each window."""
        ml = self.client()
        slow = TrainingKeeper(ml, self.large_ds, self.args.training_passes, TRAINING_RECIPE, "slow")
        short = TrainingKeeper(self.client(), self.served_ds["BINARY"], 1, RECIPE, "short")
        slow.start()
        self.wait("a training job to start", lambda: slow.in_progress or slow.check(), timeout=120)
        time.sleep(2.0)  # past the job's start-up
        short.start()
        if self.args.nice_jobs:
            self.renice_jobs()
        self.training = []
        for kind in KINDS:
            slow.window(True)
            short.window(True)
            result = self.load(f"treadle {kind} + training", "treadle", kind)
            result.update(slow.window(False), **short.window(False))
            slow.check()
            short.check()
            self.training.append(result)
            print(f"  the slow job was running at {result['slow_share']:.0%} of {result['slow_polls']} polls "
                  f"in this window; short jobs started {result['short_started']}, "
                  f"completed {result['short_completed']}", flush=True)
        short.stop()
        slow.stop()

    # ---------------------------------------------------------------- report
    def report(self) -> None:
        by = {}  # the best window of each server and model type
        for r in self.results:
            key = (r["target"], r["kind"])
            if "training" not in r["label"] and (key not in by or r["rps"] > by[key]["rps"]):
                by[key] = r
        print()
        print(f"engine {self.engine}, {self.args.connections} connections, {self.args.duration:g} s windows, "
              f"pool of {self.args.pool} signed requests, {self.args.workers} HTTP worker process(es) per server")
        print(f"{'model':<11} {'Treadle/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'reference/s':>12} {'ratio':>6} "
              f"{'p99 training':>13}  targets (>= {TARGET_RPS}/s, p99 < {TARGET_P99_MS:g} ms, "
              f"ratio >= {TARGET_RATIO}, p99 training < {TARGET_TRAINING_P99_MS:g} ms)")
        misses = []
        training = {r["kind"]: r for r in getattr(self, "training", [])}
        for kind in KINDS:
            t, ref = by[("treadle", kind)], by[("reference", kind)]
            ratio = t["rps"] / ref["rps"]
            tr = training.get(kind)
            flags = []
            if t["rps"] < TARGET_RPS:
                flags.append("throughput")
            if t["p99_ms"] >= TARGET_P99_MS:
                flags.append("p99")
            if ratio < TARGET_RATIO:
                flags.append("ratio")
            if tr and tr["p99_ms"] >= TARGET_TRAINING_P99_MS:
                flags.append("p99 under training")
            misses += [f"{kind} {f}" for f in flags]
            print(f"{kind:<11} {t['rps']:>10,.0f} {t['p50_ms']:>7.2f} {t['p99_ms']:>7.2f} {ref['rps']:>12,.0f} "
                  f"{ratio:>6.2f} {tr['p99_ms'] if tr else float('nan'):>13.2f}  "
                  f"{'MISS: ' + ', '.join(flags) if flags else 'ok'}")
        print("all targets met" if not misses else f"missed: {'; '.join(misses)}")
        (self.dir / "results.json").write_text(json.dumps(self.results, indent=1))
        print(f"raw results: {self.dir / 'results.json'}")


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options Bench reads to start Treadle, train its models and load them."""
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per window")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each window")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (concurrency)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="HTTP worker processes of the servers (treadle serve --workers; uvicorn's "
                             "--workers for bench/predict.py's reference); default: the CPU count")
    parser.add_argument("--engine", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk if installed (auto), or Python asyncio")
    parser.add_argument("--pool", type=int, default=2000, help="distinct pre-signed requests per window")
    parser.add_argument("--rows", type=int, default=5000, help="rows of each served model's training data")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_options(parser)
    parser.add_argument("--training-rows", type=int, default=1_000_000,
                        help="rows of the datasource trained on during the last measurement (one job "
                             "after another is kept running through it)")
    parser.add_argument("--training-passes", type=int, default=10, help="sgd.maxPasses of that training job")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the plain measurements; the table shows each one's best window")
    parser.add_argument("--nice-jobs", type=int, default=0, metavar="N",
                        help="experiment: renice the server's job workers to N during the training windows")
    parser.add_argument("--no-training", action="store_true", help="skip the measurement under training")
    parser.add_argument("--dir", default=None, help="working directory (default: a new temp dir); "
                                                    "generated CSVs are reused from it")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)
    bench = Bench(args)
    bench.engine = args.engine if args.engine != "auto" else ("wrk" if shutil.which("wrk") else "python")
    try:
        bench.start_treadle()
        bench.setup_models()
        bench.start_reference()
        bench.measure()
        if not args.no_training:
            bench.measure_training()
        bench.report()
    finally:
        bench.stop_all()
        if not args.keep and not args.dir:
            shutil.rmtree(bench.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
