"""The bare reference of `bench/predict.py`: the smallest Starlette app that
scores Treadle's saved models with numpy, without authentication,
validation, rate limits, logging or metrics, served by plain uvicorn
(uvloop and httptools when installed, no access log), with as many worker
processes as `treadle serve --workers` is given in the same benchmark.

    python bench/predict_reference.py --artifacts DATA_DIR/artifacts --port 8700 [--workers 2]

It loads every `models/*/*.model` below the artifacts directory with
`MLModelArtifact.from_bytes`, so it scores the very bytes Treadle serves,
and answers POST / with Predict's JSON shape for the body's MLModelId.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from treadle.learning.model import MLModelArtifact


class Scorer:
    """The features of a record from the model's own pipeline, then one
    numpy dot product against a weight table indexed by hashed column."""

    def __init__(self, artifact: MLModelArtifact):
        self.model_type = artifact.model_type
        self.labels = artifact.labels
        self.threshold = artifact.score_threshold
        self.pipeline = artifact.fitted_pipeline
        self.bias = artifact.bias.astype(np.float64)
        self.mask = (1 << artifact.weight_bits) - 1
        k = len(self.bias)
        classes = np.repeat(np.arange(k), np.diff(artifact.class_ptr))
        # A compact table over the columns that have weights, with a dict
        # from hashed column to row, so a 2**weight_bits table is never needed.
        self.columns, rows = np.unique(artifact.indices.astype(np.int64), return_inverse=True)
        self.table = np.zeros((len(self.columns) + 1, k))  # the last row: all zeros, for unknown columns
        self.table[rows, classes] = artifact.values
        self.row_of = {int(c): i for i, c in enumerate(self.columns)}
        self.unknown = len(self.columns)

    def predict(self, record: dict) -> dict:
        cols, vals = self.pipeline.transform_record(record)
        mask, row_of, unknown = self.mask, self.row_of, self.unknown
        rows = np.fromiter((row_of.get(c & mask, unknown) for c in cols), dtype=np.intp, count=len(cols))
        z = self.bias + np.asarray(vals) @ self.table[rows]
        details = {"PredictiveModelType": self.model_type, "Algorithm": "SGD"}
        if self.model_type == "REGRESSION":
            return {"Prediction": {"predictedValue": float(np.float32(z[0])), "details": details}}
        if self.model_type == "BINARY":
            p = float(np.float32(1.0 / (1.0 + math.exp(-z[0])) if z[0] >= 0 else math.exp(z[0]) / (1.0 + math.exp(z[0]))))
            label = "1" if p >= self.threshold else "0"
            return {"Prediction": {"predictedLabel": label, "predictedScores": {label: p}, "details": details}}
        e = np.exp(z - z.max())
        p = e / e.sum()
        return {"Prediction": {"predictedLabel": self.labels[int(np.argmax(p))],
                               "predictedScores": {lab: float(q) for lab, q in zip(self.labels, p)},
                               "details": details}}


def create_app(artifacts: Path) -> Starlette:
    scorers = {path.stem: Scorer(MLModelArtifact.from_bytes(path.read_bytes()))
               for path in sorted(artifacts.glob("models/*/*.model"))}

    async def predict(request: Request) -> Response:
        body = json.loads(await request.body())
        scorer = scorers.get(body.get("MLModelId"))
        if scorer is None:
            return Response(b'{"message":"no such model"}', status_code=404, media_type="application/json")
        answer = scorer.predict(body["Record"])
        return Response(json.dumps(answer, separators=(",", ":")).encode(), media_type="application/x-amz-json-1.1")

    return Starlette(routes=[Route("/", predict, methods=["POST"])])


def app_from_environment() -> Starlette:
    """The app of each of uvicorn's worker processes (--workers above 1)."""
    return create_app(Path(os.environ["TREADLE_REFERENCE_ARTIFACTS"]))


def main(argv=None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", required=True, type=Path, help="Treadle's artifacts directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (uvicorn's own --workers)")
    args = parser.parse_args(argv)
    if args.workers == 1:
        uvicorn.run(create_app(args.artifacts), host=args.host, port=args.port, log_config=None, access_log=False)
        return 0
    os.environ["TREADLE_REFERENCE_ARTIFACTS"] = str(args.artifacts.resolve())
    uvicorn.run("predict_reference:app_from_environment", factory=True, app_dir=str(Path(__file__).parent),
                workers=args.workers, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
