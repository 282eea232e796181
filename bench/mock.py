"""What the in-process mock (`treadle.testing.mock_machinelearning`) costs
a test, against moto's `mock_aws` measured in the same run.

    python bench/mock.py                    # about 20 s on 2 cores
    python bench/mock.py --rounds 9 --calls 500

1. **A test's flow**: enter the mock with eager jobs, create a datasource
   (with statistics) on 1,000 rows, a model, an evaluation and a real-time
   endpoint, Predict, leave. Target: under 2 s.
   - first in a fresh process (`--cold` of them, each its own `python`):
     the first activation imports Treadle's server modules and loads its
     compiled kernels. The import of boto3 and `treadle.testing` before it
     is given apart;
   - then, after a first flow in this process (not counted), once per
     round: the figure of every later test in a process.
2. **Per call**: the wall time of one call under each mock, minus
   botocore's own share of it, measured as the same call answered by a
   `before-send` handler with the same response bytes at once (signing,
   serializing and parsing stay). What remains is what the mock adds:
   - Treadle: GetDataSource (a metadata read) and Predict (a mounted model);
   - moto: S3 HeadObject of an existing object.
   Target: Treadle's overhead no more than moto's.

Rounds interleave the measurements, so that the machine's other load
touches each alike; figures are medians over the rounds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from learning_data import schema, write_dataset  # noqa: E402

ROWS = 1000
RECORD = {"x1": "1.2", "x2": "-0.3", "colour": "red", "text": "good great ok fine"}
TARGET_FLOW_SECONDS = 2.0
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "111111111111", "aws_secret_access_key": "bench"}


def flow(data: Path) -> tuple[float, object, str]:
    """One test's flow; (seconds, the still active mock, the endpoint URL).
    The caller leaves the mock, and adds the time that takes."""
    import boto3

    from treadle.testing import mock_machinelearning

    ml = boto3.client("machinelearning", **KEYS)
    started = time.perf_counter()
    # No Predict limit: the per-call series sends thousands a second.
    mock = mock_machinelearning(jobs="eager", allow_local_path=data.parent, peak_requests_per_second=10**6).start()
    ml.create_data_source_from_s3(DataSourceId="ds", ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": data.as_uri(), "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId="model", MLModelType="BINARY", TrainingDataSourceId="ds")
    ml.create_evaluation(EvaluationId="evaluation", MLModelId="model", EvaluationDataSourceId="ds")
    url = ml.create_realtime_endpoint(MLModelId="model")["RealtimeEndpointInfo"]["EndpointUrl"]
    answer = ml.predict(MLModelId="model", Record=RECORD, PredictEndpoint=url)["Prediction"]
    elapsed = time.perf_counter() - started
    evaluation = ml.get_evaluation(EvaluationId="evaluation")
    assert evaluation["Status"] == "COMPLETED", evaluation.get("Message")
    assert answer["predictedLabel"] in ("0", "1")
    return elapsed, mock, url


def leave(mock) -> float:
    started = time.perf_counter()
    mock.stop()
    return time.perf_counter() - started


def cold_child(data: Path) -> None:
    started = time.perf_counter()
    import boto3  # noqa: F401

    import treadle.testing  # noqa: F401
    imported = time.perf_counter() - started
    elapsed, mock, _ = flow(data)
    elapsed += leave(mock)
    print(json.dumps({"import": imported, "flow": elapsed}))


def per_call(call, calls: int) -> float:
    """Microseconds per call, over `calls` calls after a few to warm up."""
    for _ in range(20):
        call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


class Recorded:
    """The HTTP answer a client received for one operation, to be given
    again at once by a `before-send` handler."""

    def __init__(self, client, event: str):
        self.answer = None
        client.meta.events.register(f"after-call.{event}", self._keep)

    def _keep(self, http_response, **kwargs) -> None:
        self.answer = (http_response.status_code, dict(http_response.headers), http_response.content)

    def replay(self, request, **kwargs):
        from botocore.awsrequest import AWSResponse

        from treadle.testing.hook import RawBody

        status, headers, body = self.answer
        return AWSResponse(request.url, status, headers, RawBody(body))


def canned_client(service: str, event: str, recorded: Recorded):
    import boto3

    client = boto3.client(service, **KEYS)
    client.meta.events.register_first(f"before-send.{event}", recorded.replay)
    return client


def round_of_calls(data: Path, calls: int, recorded: dict) -> dict:
    """One round: this process's flow, then each series; no mock is active
    while the canned answers are timed."""
    import boto3
    from moto import mock_aws

    import treadle.testing  # noqa: F401 (clients made from now on are answered by the mock)

    figures = {}
    ml = boto3.client("machinelearning", **KEYS)
    recorded.setdefault("get", Recorded(ml, "machine-learning.GetDataSource"))
    recorded.setdefault("predict", Recorded(ml, "machine-learning.Predict"))
    elapsed, mock, url = flow(data)
    try:
        figures["flow"] = elapsed
        figures["treadle get"] = per_call(lambda: ml.get_data_source(DataSourceId="ds"), calls)
        figures["treadle predict"] = per_call(
            lambda: ml.predict(MLModelId="model", Record=RECORD, PredictEndpoint=url), calls)
    finally:
        figures["flow"] += leave(mock)

    with mock_aws():
        s3 = boto3.client("s3", **KEYS)
        recorded.setdefault("head", Recorded(s3, "s3.HeadObject"))
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="object", Body=b"x" * 1000)
        figures["moto head"] = per_call(lambda: s3.head_object(Bucket="bench", Key="object"), calls)

    get = canned_client("machinelearning", "machine-learning.GetDataSource", recorded["get"])
    predict = canned_client("machinelearning", "machine-learning.Predict", recorded["predict"])
    head = canned_client("s3", "s3.HeadObject", recorded["head"])
    figures["botocore get"] = per_call(lambda: get.get_data_source(DataSourceId="ds"), calls)
    figures["botocore predict"] = per_call(
        lambda: predict.predict(MLModelId="model", Record=RECORD, PredictEndpoint=url), calls)
    figures["botocore head"] = per_call(lambda: head.head_object(Bucket="bench", Key="object"), calls)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of this process's measurements")
    parser.add_argument("--calls", type=int, default=300, help="calls timed per series and round")
    parser.add_argument("--cold", type=int, default=3, help="fresh processes timing a first flow")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        cold_child(args.child)
        return

    with tempfile.TemporaryDirectory(prefix="treadle-bench-mock-") as folder:
        data = Path(folder) / "data.csv"
        write_dataset(data, ROWS, "BINARY", seed=5)
        colds = []
        for run in range(args.cold):
            done = subprocess.run([sys.executable, __file__, "--child", str(data)], capture_output=True, text=True,
                                  check=True, timeout=300)
            colds.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"fresh process {run + 1}: import of boto3 and treadle.testing {colds[-1]['import']:.2f} s, "
                  f"first flow {colds[-1]['flow']:.2f} s", flush=True)
        # This process's first flow pays the imports a fresh process does.
        elapsed, mock, _ = flow(data)
        elapsed += leave(mock)
        print(f"first flow in this process (not counted): {elapsed:.2f} s", flush=True)
        rounds, recorded = [], {}
        for number in range(args.rounds):
            rounds.append(round_of_calls(data, args.calls, recorded))
            print(f"round {number + 1}: " + ", ".join(
                f"{name} {value:.3f} s" if name == "flow" else f"{name} {value:.0f} us"
                for name, value in rounds[-1].items()), flush=True)

    median = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    first = max(c["flow"] for c in colds) if colds else float("nan")
    overheads = {
        "Treadle GetDataSource": (median["treadle get"], median["botocore get"]),
        "Treadle Predict": (median["treadle predict"], median["botocore predict"]),
        "moto S3 HeadObject": (median["moto head"], median["botocore head"]),
    }
    moto = median["moto head"] - median["botocore head"]
    print()
    print(f"flow on {ROWS:,} rows (enter, datasource, model, evaluation, endpoint, Predict, leave), eager jobs:")
    flows = ", ".join(f"{c['flow']:.2f}" for c in colds)
    imports = ", ".join(f"{c['import']:.2f}" for c in colds)
    print(f"  first in a fresh process: {flows} s (after importing boto3 and treadle.testing: {imports} s)")
    print(f"  later in a process: median {median['flow']:.3f} s, best {min(r['flow'] for r in rounds):.3f} s")
    print(f"  target under {TARGET_FLOW_SECONDS:.0f} s: {'met' if max(first, median['flow']) < TARGET_FLOW_SECONDS else 'MISSED'}")
    print()
    print("| call | under the mock (us) | botocore alone (us) | mock's overhead (us) | overhead / moto's |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (total, alone) in overheads.items():
        print(f"| {name} | {total:.0f} | {alone:.0f} | {total - alone:.0f} | {(total - alone) / moto:.2f} |")
    worst = max((total - alone) / moto for name, (total, alone) in overheads.items() if name.startswith("Treadle"))
    print(f"target: Treadle's overhead no more than moto's: {'met' if worst <= 1 else 'MISSED'} "
          f"(worst ratio {worst:.2f})")


if __name__ == "__main__":
    main()
