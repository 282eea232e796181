"""The model types (the service model's MLModelType) and what differs between
them: the targets a type learns and how it encodes them, the loss and
metrics its training log names, the evaluation's metric and baseline, the
scores its models give, the answer Predict returns and the batch output's
columns. Features, the learner's loop and the model artifact are the same
for every type, so a new type is one more object here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..data import cells
from ..data.mutual_info import TARGET_BINS
from ..data.records import RecordChunk
from ..data.schema import BINARY, CATEGORICAL, NUMERIC, DataSchema
from .metrics import BASELINE_AUC, BinaryScores, ConfusionMatrix, RegressionErrors, baseline_macro_f1
from .numfmt import java_double, prediction_strings
from .targets import TargetClasses, TargetValues

if TYPE_CHECKING:  # sgd reads the model types
    from .sgd import LearnerMetrics

INSIGHT_POINTS = 1000  # ROC points and threshold table an evaluation keeps for the console


@dataclass(slots=True)
class Prediction:
    label: str | None  # BINARY, MULTICLASS
    score: float | None  # BINARY probability of "1", REGRESSION value
    scores: dict[str, float] | None = None  # MULTICLASS probabilities


def _num(x: float | None) -> str:
    return "nan" if x is None or x != x else f"{x:.4f}"


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _target_summary(model) -> dict:
    return model.summary.get("target", {})


@dataclass(frozen=True)
class ModelType:
    name: str
    target_types: tuple[str, ...]  # attribute types its target may have; the console offers it for the first
    likelihood: str  # the training log's likelihood-function
    objective: str  # what the training log's convergence line measures
    metric: str  # the evaluation's PerformanceMetrics property
    has_threshold: bool = False  # whether a ScoreThreshold makes its answers
    loss: str = "logistic"  # the learner's per-record loss (sgd_kernels.LOSSES)

    def outputs(self, classes: int) -> int:
        """The learner's outputs (margins per record), given the classes seen so far."""
        return 1

    def check_target(self, schema: DataSchema, error=ValueError) -> None:
        """That the schema's target suits this type; `error` is raised when not."""
        if schema.target is None:
            raise error("The training datasource's schema has no targetAttributeName; a model needs a target")
        kind = schema.type_of(schema.target)
        if kind not in self.target_types:
            raise error(f"A {self.name} model needs a {' or '.join(self.target_types)} target; "
                        f"{schema.target} is {kind}")

    def targets(self, schema: DataSchema, classes: list[str] | None = None) -> TargetValues | TargetClasses:
        """The target's encoding; `classes`: those of a trained model, where the type has classes."""
        return TargetValues(schema)

    def target_levels(self, classes: int) -> int:
        """The target's levels in the statistics' mutual information (which
        the suggested recipe reads), given the classes the statistics saw."""
        raise NotImplementedError

    def model_labels(self, outputs: int, labels: list[str] | None) -> list[str]:
        """The labels a model stores, given its number of outputs and the training classes."""
        return []

    def log_performance(self, m: LearnerMetrics) -> str:
        """A learner's model-performance line in the training log."""
        raise NotImplementedError

    def link(self, margins: np.ndarray) -> np.ndarray:
        """float32 scores of a batch from its (n, outputs) margins."""
        raise NotImplementedError

    def answers(self, scores: np.ndarray, threshold: float) -> np.ndarray | None:
        """The best answer's class number per record, where the type has one."""
        return None

    def record_prediction(self, margins: list[float], labels: list[str], threshold: float) -> Prediction:
        """One record's prediction from its margins (as `link`, in plain Python)."""
        raise NotImplementedError

    def response(self, prediction: Prediction, details: dict) -> dict:
        """Predict's `Prediction` member."""
        raise NotImplementedError

    def output_names(self, labels: list[str]) -> list[str]:
        """The batch output's prediction columns."""
        raise NotImplementedError

    def output_columns(self, answers: np.ndarray | None, scores: np.ndarray) -> list[pa.Array]:
        raise NotImplementedError

    def true_labels(self, chunk: RecordChunk, target: str, kind: str) -> pa.Array:
        """The batch output's trueLabel column: the target as written, trimmed."""
        return cells.trim(chunk.column(target))

    def evaluation(self, model, threshold: float, spill_dir: str):
        """What accumulates the evaluation's metric, its baseline and insights."""
        raise NotImplementedError

    def performance_metrics(self, value: float) -> dict[str, dict[str, str]]:
        """The API's `PerformanceMetrics` of an evaluation."""
        return {"Properties": {self.metric: java_double(value)}}


class Binary(ModelType):
    def target_levels(self, classes: int) -> int:
        return 2

    def model_labels(self, outputs: int, labels: list[str] | None) -> list[str]:
        return ["0", "1"]

    def link(self, margins: np.ndarray) -> np.ndarray:
        """The probability of "1", without overflow on either side."""
        z = margins[:, 0]
        small = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + small), small / (1.0 + small)).astype(np.float32)

    def answers(self, scores: np.ndarray, threshold: float) -> np.ndarray:
        # At or above the threshold is "1" (docs/behaviour.md, "Training").
        return (scores.astype(np.float64) >= threshold).astype(np.int64)

    def record_prediction(self, margins: list[float], labels: list[str], threshold: float) -> Prediction:
        score = float(np.float32(_sigmoid(margins[0])))
        return Prediction("1" if score >= threshold else "0", score)

    def response(self, prediction: Prediction, details: dict) -> dict:
        # Amazon ML returns one entry, keyed by the predicted label, whose
        # value is the probability of class "1".
        return {"predictedLabel": prediction.label, "predictedScores": {prediction.label: prediction.score},
                "details": details}

    def output_names(self, labels: list[str]) -> list[str]:
        return ["bestAnswer", "score"]

    def output_columns(self, answers: np.ndarray, scores: np.ndarray) -> list[pa.Array]:
        return [pa.array(np.where(answers == 1, "1", "0")), prediction_strings(scores)]

    def true_labels(self, chunk: RecordChunk, target: str, kind: str) -> pa.Array:
        if kind != BINARY:
            return super().true_labels(chunk, target, kind)
        typed = chunk.typed(target)
        return pa.array(np.where(typed.missing | typed.invalid, "", np.where(typed.values > 0.5, "1", "0")))

    def log_performance(self, m: LearnerMetrics) -> str:
        if m.confusion is None:
            return f"rmse={_num(m.rmse)}"
        tp, fp, tn, fn = m.confusion
        recall = tp / (tp + fn) if tp + fn else math.nan
        precision = tp / (tp + fp) if tp + fp else math.nan
        f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else math.nan
        return (f"accuracy={_num(m.accuracy)} recall={_num(recall)} precision={_num(precision)} "
                f"f1-score={_num(f1)} auc={_num(m.auc)}")

    def evaluation(self, model, threshold: float, spill_dir: str) -> BinaryEvaluation:
        return BinaryEvaluation(spill_dir, threshold)


class Multiclass(ModelType):
    def targets(self, schema: DataSchema, classes: list[str] | None = None) -> TargetClasses:
        return TargetClasses(schema, classes)

    def target_levels(self, classes: int) -> int:
        return max(classes, 2)

    def outputs(self, classes: int) -> int:
        return classes

    def model_labels(self, outputs: int, labels: list[str] | None) -> list[str]:
        labels = list(labels or [])
        return (labels + [str(i) for i in range(len(labels), outputs)])[:outputs]

    def link(self, margins: np.ndarray) -> np.ndarray:
        e = np.exp(margins - margins.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def answers(self, scores: np.ndarray, threshold: float) -> np.ndarray:
        return np.argmax(scores, axis=1)

    def record_prediction(self, margins: list[float], labels: list[str], threshold: float) -> Prediction:
        top = max(margins)
        e = [math.exp(x - top) for x in margins]
        total = sum(e)
        p = [x / total for x in e]
        best = max(range(len(p)), key=p.__getitem__)
        return Prediction(labels[best], None, {label: float(np.float32(q)) for label, q in zip(labels, p)})

    def response(self, prediction: Prediction, details: dict) -> dict:
        return {"predictedLabel": prediction.label, "predictedScores": prediction.scores, "details": details}

    def output_names(self, labels: list[str]) -> list[str]:
        return list(labels)

    def output_columns(self, answers: np.ndarray, scores: np.ndarray) -> list[pa.Array]:
        return [prediction_strings(scores[:, k]) for k in range(scores.shape[1])]

    def log_performance(self, m: LearnerMetrics) -> str:
        return f"accuracy={_num(m.accuracy)}"

    def evaluation(self, model, threshold: float, spill_dir: str) -> MulticlassEvaluation:
        return MulticlassEvaluation(model.labels, _target_summary(model).get("class_weights") or [0])


class Regression(ModelType):
    def target_levels(self, classes: int) -> int:
        # The statistics bin a NUMERIC target into TARGET_BINS levels for mutual information.
        return TARGET_BINS

    def link(self, margins: np.ndarray) -> np.ndarray:
        return margins[:, 0].astype(np.float32)

    def record_prediction(self, margins: list[float], labels: list[str], threshold: float) -> Prediction:
        return Prediction(None, float(np.float32(margins[0])))

    def response(self, prediction: Prediction, details: dict) -> dict:
        return {"predictedValue": prediction.score, "details": details}

    def output_names(self, labels: list[str]) -> list[str]:
        return ["score"]

    def output_columns(self, answers: np.ndarray | None, scores: np.ndarray) -> list[pa.Array]:
        return [prediction_strings(scores)]

    def true_labels(self, chunk: RecordChunk, target: str, kind: str) -> pa.Array:
        if kind != NUMERIC:
            return super().true_labels(chunk, target, kind)
        typed = chunk.typed(target)
        return pc.if_else(pa.array(typed.missing | typed.invalid), "", prediction_strings(typed.values))

    def log_performance(self, m: LearnerMetrics) -> str:
        return f"rmse={_num(m.rmse)}"

    def evaluation(self, model, threshold: float, spill_dir: str) -> RegressionEvaluation:
        return RegressionEvaluation(_target_summary(model).get("mean"))


# -- evaluations: a metric, its baseline and the console's insights ----------------------

class BinaryEvaluation:
    def __init__(self, spill_dir: str, threshold: float):
        self.scores = BinaryScores(spill_dir=spill_dir)
        self.threshold = threshold

    def update(self, scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> None:
        self.scores.update(scores, y, weights)

    def close(self) -> None:
        """Remove what the scores put on disk, if anything."""
        self.scores.close()

    def finish(self) -> tuple[float, dict]:
        value = self.scores.auc()
        # Coarsened in place: the histograms and the curve are of the kept points.
        coarse = self.scores.coarsen(INSIGHT_POINTS)
        insights = {"binary": coarse.to_dict(), "histograms": coarse.histograms(50), "baseline": BASELINE_AUC,
                    "threshold": self.threshold}
        fpr, tpr, thresholds = coarse.roc()
        self.close()
        insights["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}
        return value, insights


class MulticlassEvaluation:
    def __init__(self, labels: list[str], class_weights: list[float]):
        self.confusion = ConfusionMatrix(len(labels), labels)
        self.majority = int(np.argmax(class_weights))  # the baseline always predicts it
        self.unknown = 0  # records of a class the model never saw

    def update(self, scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> None:
        known = y >= 0
        self.unknown += int((~known).sum())
        self.confusion.update(y[known], np.argmax(scores[known], axis=1), weights[known])

    def close(self) -> None:
        pass

    def finish(self) -> tuple[float, dict]:
        confusion = self.confusion
        return confusion.macro_f1(), {
            "confusion": confusion.to_dict(), "top": confusion.top(10),
            "per_class": {k: np.asarray(v).tolist() for k, v in confusion.per_class().items()},
            "baseline": baseline_macro_f1(confusion, self.majority), "unknown_labels": self.unknown}


class RegressionEvaluation:
    def __init__(self, training_mean: float | None):
        self.errors = RegressionErrors(training_mean)  # the baseline predicts the training mean

    def update(self, scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> None:
        self.errors.update(y, scores, weights)

    def close(self) -> None:
        pass

    def finish(self) -> tuple[float, dict]:
        return self.errors.rmse(), {"baseline": self.errors.baseline_rmse(),
                                    "residual_histogram": self.errors.residual_histogram()}


# One per MLModelType of the service model (tests/learning/test_model_types.py
# checks that), named here rather than read from it: loading the service model
# would cost every job worker process 7 MB.
MODEL_TYPES: dict[str, ModelType] = {t.name: t for t in (
    Binary("BINARY", (BINARY,), likelihood="logreg", objective="negative-log-likelihood", metric="BinaryAUC",
           has_threshold=True),
    Multiclass("MULTICLASS", (CATEGORICAL, BINARY), likelihood="multinomial-logreg",
               objective="negative-log-likelihood", metric="MulticlassAvgFScore", loss="softmax"),
    Regression("REGRESSION", (NUMERIC,), likelihood="linreg", objective="squared-error", metric="RegressionRMSE",
               loss="squared"),
)}
