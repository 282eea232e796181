"""The trained model artifact: plain data, versioned, self-contained.

Bytes layout (``to_bytes``)::

    b"TREADLE-MLMODEL\\n" | header length (8 bytes, little endian) | JSON header | .npz

The JSON header holds the model type, class labels (training order), the
fitted feature pipeline (``FittedPipeline.to_dict``), ``weight_bits``, the
bias per output (exact float reprs), the default score threshold and the
training summary.  The uncompressed npz holds the weights sparsely as a CSR
over outputs: ``class_ptr`` (K+1), ``indices`` (int32 columns) and
``values`` (float32), so the size is a constant plus 8 bytes per kept
weight; ``size_in_bytes`` is the real length of those bytes.  Loading needs
only numpy and this package's feature pipeline, none of the training code.

Scores: BINARY -> probability of "1"; MULTICLASS -> K probabilities in
label order; REGRESSION -> the value.  They are float32, like the service's
output, and the binary label is ``score >= threshold``.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from numba import njit

from .features import CsrBatch, FittedPipeline
from .model_types import MODEL_TYPES, ModelType, Prediction
from .pruning import PruneReport, fit_size, ranked_entries

MAGIC = b"TREADLE-MLMODEL\n"
FORMAT_VERSION = 1
DEFAULT_THRESHOLD = 0.5
_DENSE_LIMIT = 64 << 20  # bytes of a dense lookup table before falling back to a sorted one


@njit(cache=True)
def _linear(indptr, pos, data, table, bias, out):
    for i in range(indptr.shape[0] - 1):
        for k in range(bias.shape[0]):
            out[i, k] = bias[k]
        for p in range(indptr[i], indptr[i + 1]):
            r = pos[p]
            if r >= 0:
                x = data[p]
                for k in range(bias.shape[0]):
                    out[i, k] += table[r, k] * x


_SMALL_PRODUCT = 512  # classes x features below which scoring stays in Python


@dataclass
class MLModelArtifact:
    model_type: str
    pipeline: dict[str, Any]
    weight_bits: int
    bias: np.ndarray  # (K,) float64
    class_ptr: np.ndarray  # (K+1,) int64
    indices: np.ndarray  # int32 columns in 0..2**weight_bits-1
    values: np.ndarray  # float32
    labels: list[str] = field(default_factory=list)
    score_threshold: float = DEFAULT_THRESHOLD
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.type: ModelType = MODEL_TYPES[self.model_type]
        self._fitted: FittedPipeline | None = None
        self._table: np.ndarray | None = None
        self._cols: np.ndarray | None = None  # sorted distinct columns when the table is compact
        self._record_rows: dict[int, int] | None = None

    # ---------------------------------------------------------- persistence
    def _header(self) -> dict[str, Any]:
        return {
            "format": "treadle.mlmodel",
            "version": FORMAT_VERSION,
            "model_type": self.model_type,
            "algorithm": "sgd",
            "labels": self.labels,
            "weight_bits": self.weight_bits,
            "bias": [float(b) for b in self.bias],
            "score_threshold": self.score_threshold,
            "pipeline": self.pipeline,
            "summary": self.summary,
        }

    def to_bytes(self) -> bytes:
        header = json.dumps(self._header(), separators=(",", ":"), allow_nan=False).encode()
        buf = io.BytesIO()
        np.savez(buf, class_ptr=self.class_ptr.astype(np.int64), indices=self.indices, values=self.values.astype(np.float32))
        return MAGIC + len(header).to_bytes(8, "little") + header + buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "MLModelArtifact":
        if not blob.startswith(MAGIC):
            raise ValueError("not a Treadle model")
        n = int.from_bytes(blob[len(MAGIC): len(MAGIC) + 8], "little")
        start = len(MAGIC) + 8
        h = json.loads(blob[start: start + n])
        if h.get("format") != "treadle.mlmodel" or h.get("version") != FORMAT_VERSION:
            raise ValueError("unsupported model format version")
        with np.load(io.BytesIO(blob[start + n:]), allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("class_ptr", "indices", "values")}
        return cls(h["model_type"], h["pipeline"], h["weight_bits"], np.asarray(h["bias"], dtype=np.float64),
                   arrays["class_ptr"], arrays["indices"], arrays["values"], h["labels"], h["score_threshold"],
                   h["summary"])

    @property
    def size_in_bytes(self) -> int:
        return len(self.to_bytes())

    def save(self, path: str) -> int:
        """Write atomically (temp file + rename); returns the size."""
        blob = self.to_bytes()
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".model-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return len(blob)

    @classmethod
    def load(cls, path: str) -> "MLModelArtifact":
        with open(path, "rb") as f:
            return cls.from_bytes(f.read())

    # -------------------------------------------------------------- scoring
    @property
    def n_outputs(self) -> int:
        return len(self.bias)

    @property
    def fitted_pipeline(self) -> FittedPipeline:
        if self._fitted is None:
            self._fitted = FittedPipeline.from_dict(self.pipeline)
        return self._fitted

    def _prepare(self) -> None:
        """Build the weight lookup once: dense when small, else sorted columns."""
        if self._table is not None:
            return
        k, n = self.n_outputs, 1 << self.weight_bits
        cls_of = np.repeat(np.arange(k), np.diff(self.class_ptr))
        if n * k * 4 <= _DENSE_LIMIT:
            table = np.zeros((n, k), dtype=np.float32)
            table[self.indices, cls_of] = self.values
        else:
            self._cols, rows = np.unique(self.indices, return_inverse=True)
            table = np.zeros((len(self._cols), k), dtype=np.float32)
            table[rows, cls_of] = self.values
        self._table = table

    def _positions(self, cols: np.ndarray) -> np.ndarray:
        c = np.asarray(cols, dtype=np.int64) & ((1 << self.weight_bits) - 1)
        if self._cols is None:
            return c
        pos = np.searchsorted(self._cols, c)
        pos = np.minimum(pos, max(len(self._cols) - 1, 0))
        found = self._cols[pos] == c if len(self._cols) else np.zeros(c.shape, dtype=bool)
        return np.where(found, pos, -1)

    def margins(self, csr: CsrBatch) -> np.ndarray:
        self._prepare()
        out = np.empty((csr.n_rows, self.n_outputs))
        _linear(csr.indptr, self._positions(csr.indices), csr.data, self._table, self.bias, out)
        return out

    def score_batch(self, csr: CsrBatch) -> np.ndarray:
        """(n,) float32 for BINARY and REGRESSION, (n, K) for MULTICLASS."""
        return self.type.link(self.margins(csr))

    def predict_batch(self, csr: CsrBatch, threshold: float | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """(best-answer class numbers or None for REGRESSION, scores)."""
        s = self.score_batch(csr)
        return self.type.answers(s, self.score_threshold if threshold is None else threshold), s

    def predict_record(self, record: Mapping[str, str], threshold: float | None = None) -> Prediction:
        cols, vals = self.fitted_pipeline.transform_record(record)
        t = self.score_threshold if threshold is None else threshold
        return self.type.record_prediction(self._record_margins(cols, vals), self.labels, t)

    def _record_margins(self, cols: list[int], vals: list[float]) -> list[float]:
        self._prepare()
        table, mask = self._table, (1 << self.weight_bits) - 1
        if self._cols is not None and self._record_rows is None:
            self._record_rows = {int(c): i for i, c in enumerate(self._cols)}
        rows = self._record_rows
        if self.n_outputs == 1:
            z = float(self.bias[0])
            for c, v in zip(cols, vals):
                r = c & mask if rows is None else rows.get(c & mask, -1)
                if r >= 0:
                    z += table.item(r, 0) * v
            return [z]
        k = self.n_outputs
        hits = [(r, v) for r, v in ((c & mask if rows is None else rows.get(c & mask, -1), v)
                                    for c, v in zip(cols, vals)) if r >= 0]
        if k * len(hits) <= _SMALL_PRODUCT:
            # Plain Python beats numpy's per-call overhead on a handful of
            # features and classes, the common real-time case.
            z = self.bias.tolist()
            for r, v in hits:
                weights = self._rows_list(r)
                for j in range(k):
                    z[j] += weights[j] * v
            return z
        z = self.bias.copy()
        if hits:
            r = np.fromiter((h[0] for h in hits), dtype=np.int64, count=len(hits))
            v = np.fromiter((h[1] for h in hits), dtype=np.float64, count=len(hits))
            z += v @ table[r].astype(np.float64)
        return z.tolist()

    def _rows_list(self, r: int) -> list[float]:
        cache = self.__dict__.setdefault("_row_lists", {})
        row = cache.get(r)
        if row is None:
            row = cache[r] = self._table[r].astype(np.float64).tolist()
        return row

    # ----------------------------------------------------- batch output text
    def output_header(self, has_tag: bool = False, has_true_label: bool = False) -> list[str]:
        """Column names of the batch-prediction result file (docs/behaviour.md,
        "Batch prediction output")."""
        lead = (["tag"] if has_tag else []) + (["trueLabel"] if has_true_label else [])
        return lead + self.type.output_names(self.labels)


# ------------------------------------------------------------ construction
def build_model(trained, pipeline: FittedPipeline | Mapping[str, Any], labels: Sequence[str] | None = None,
                max_size_bytes: int = 33554432, summary: Mapping[str, Any] | None = None,
                score_threshold: float = DEFAULT_THRESHOLD) -> tuple[MLModelArtifact, PruneReport]:
    """The artifact of a ``sgd.TrainedLinear``, pruned until its bytes fit
    ``max_size_bytes`` (see ``pruning``).  ``labels``: MULTICLASS class names
    by class number (training order); BINARY defaults to ["0", "1"]."""
    pdict = pipeline.to_dict() if isinstance(pipeline, FittedPipeline) else dict(pipeline)
    k = trained.weights.shape[1]
    labels = MODEL_TYPES[trained.model_type].model_labels(k, labels)
    cols, ks = ranked_entries(trained.weights, trained.feature_scale)
    vals = trained.weights[cols, ks]
    if trained.column_ids is not None:  # trained on dense column numbers (columns.ColumnMap)
        cols = trained.column_ids[cols]
    summ = dict(summary or {})
    idx_dtype = np.int32 if trained.weight_bits <= 31 else np.int64

    def make(m: int) -> MLModelArtifact:
        c, kk, v = cols[:m], ks[:m], vals[:m]
        order = np.lexsort((c, kk))
        ptr = np.zeros(k + 1, dtype=np.int64)
        np.cumsum(np.bincount(kk, minlength=k), out=ptr[1:])
        return MLModelArtifact(trained.model_type, pdict, trained.weight_bits, np.asarray(trained.bias, dtype=np.float64),
                               ptr, c[order].astype(idx_dtype), v[order].astype(np.float32), labels,
                               score_threshold, summ)

    m, size, calls = fit_size(len(cols), lambda m: make(m).size_in_bytes, max_size_bytes)
    report = PruneReport(len(cols), m, len(cols) - m, size, max_size_bytes, calls)
    summ["pruning"] = {"nonzero": report.nonzero, "kept": report.kept, "pruned": report.pruned,
                       "max_size_bytes": max_size_bytes, "pruning_calls": calls}
    model = make(m)
    # the summary grew by the pruning record; re-check the cap with it included
    while model.size_in_bytes > max_size_bytes and m > 0:
        m = max(0, m - 1 - (model.size_in_bytes - max_size_bytes) // 8)
        summ["pruning"].update(kept=m, pruned=len(cols) - m)
        model = make(m)
    report = PruneReport(len(cols), m, len(cols) - m, model.size_in_bytes, max_size_bytes, calls)
    return model, report


__all__ = ["MLModelArtifact", "Prediction", "build_model"]
