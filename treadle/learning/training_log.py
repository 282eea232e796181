"""Training log lines in the style of the real service's log.

The lines follow the real log's layout (``learner-id=... model-configuration:
learning-rate=...`` blocks after 64, 128, 256, ... records and at each pass
end, then ``finished-training``, ``best learner``, ``final consolidation``,
``saved final learner``).  Metrics are Treadle's progressive metrics over
the current pass; sizes are Treadle's serialized bytes (8 per weight), not
the service's 96.  The likelihood function, the convergence measure and the
performance line are the model type's (``model_types``).  Timestamps and the
``INFO:`` prefix are the log writer's job.
"""
from __future__ import annotations

from typing import Iterable

from .model_types import MODEL_TYPES, ModelType
from .numfmt import java_double
from .pruning import BYTES_PER_WEIGHT, PruneReport
from .sgd import LearnerMetrics, SGDConfig, TrainedLinear

_PAD = 27  # the real log aligns values after "active-features-quantiles: "


def _mb(n: int) -> str:
    return f"{n} ({n / (1 << 20):.2f} MB)"


def _kv(tag: str, text: str, learner_id: int) -> str:
    return f"learner-id={learner_id} {(tag + ':').ljust(_PAD)}{text}"


def learner_id(index: int) -> int:
    return 1000 * (index + 1) + 1


def header(config: SGDConfig, max_model_size: int) -> str:
    return (f"initial-training: l1={java_double(config.l1)} l2={java_double(config.l2)} "
            f"likelihood-function={MODEL_TYPES[config.model_type].likelihood} max-passes={config.max_passes} "
            f"max-model-size={_mb(max_model_size)} readable=false")


def learner_block(model_type: ModelType, m: LearnerMetrics, converged: bool = False, delta: float = 1.0,
                  pruning_calls: int = 0, params: int | None = None, with_performance: bool = True) -> list[str]:
    lid = learner_id(m.learner)
    params = m.params if params is None else params
    lines = [_kv("model-configuration", f"learning-rate={m.rate!r}", lid)]
    if with_performance:
        lines.append(_kv("model-performance", model_type.log_performance(m), lid))
    lines.append(_kv("model-convergence", f"{model_type.objective}={m.loss:.6e} (delta={delta:.6e}) "
                                          f"is-converged={'yes' if converged else 'no'}", lid))
    f = m.features
    if f is not None:
        lines.append(_kv("active-features", f"updates={f.updates:010d} min={f.minimum:07d} max={f.maximum:07d} "
                                            f"mean={round(f.mean):07d} total-sum={f.total:010d}", lid))
        q10, q50, q90 = f.quantiles
        lines.append(_kv("active-features-quantiles", f"quantile-10={q10:07d} quantile-50={q50:07d} "
                                                      f"quantile-90={q90:07d}", lid))
    lines.append(_kv("model-status", f"model-size={_mb(params * BYTES_PER_WEIGHT)} #params={params} "
                                     f"#pruning-calls={pruning_calls:010d}", lid))
    lines.append("")
    return lines


def _blocks(model_type: ModelType, ms: Iterable[LearnerMetrics], previous: dict[int, float]) -> list[str]:
    out = []
    for m in ms:
        prev = previous.get(m.learner)
        delta = 1.0 if prev is None or prev == 0 else abs(prev - m.loss) / abs(prev)
        previous[m.learner] = m.loss
        out += learner_block(model_type, m, delta=delta)
    return out


def training_log(config: SGDConfig, trained: TrainedLinear, prune: PruneReport, max_model_size: int,
                 invalid_records: int = 0) -> list[str]:
    """The whole training log as lines, in order."""
    t = MODEL_TYPES[config.model_type]
    lines = ["Begin training.", header(config, max_model_size)]
    previous: dict[int, float] = {}
    events = [(m[0].records, "checkpoint", m) for m in trained.checkpoints]
    events += [(r.learners[0].records, "pass", r) for r in trained.pass_reports]
    events.sort(key=lambda e: (e[0], e[1] == "pass"))
    for _, kind, item in events:
        if kind == "checkpoint":
            lines += _blocks(t, item, previous)
        else:
            refinement = (f" refinement={'owl-qn' if config.l1 > 0 else 'l-bfgs'} objective={item.objective:.6e}"
                          if item.objective is not None else "")
            lines.append(f"end-of-pass: pass={item.pass_number} records={item.records} "
                         f"holdout-records={item.holdout_records} best-learner-id={learner_id(item.learners[item.best].learner)}"
                         + refinement + (" converged" if item.converged else ""))
            lines += _blocks(t, item.learners, previous)
    last = trained.pass_reports[-1] if trained.pass_reports else None
    lines.append(f"finished-training: total-passes={trained.passes} valid-records={trained.records} "
                 f"invalid-records={invalid_records}")
    if last is not None:
        best = last.learners[trained.learner]
        lines.append("best learner:")
        lines += learner_block(t, best, converged=last.converged)
        lines.append("final consolidation:")
        sgd_passes = trained.passes - trained.refined
        lines.append(f"averaging: snapshots={trained.averaged} of pass {sgd_passes}" if trained.averaged
                     else "averaging: none (last iterate)")
        if trained.refined:
            lines.append(f"refinement: full-gradient passes={trained.refined} after {sgd_passes} SGD passes, "
                         f"kept the point with the lowest holdout loss")
        lines.append(f"pruning: max-model-size={_mb(max_model_size)} nonzero-weights={prune.nonzero} "
                     f"kept={prune.kept} pruned={prune.pruned} serialized-size={_mb(prune.size_bytes)}")
        lines += learner_block(t, best, converged=last.converged, pruning_calls=1, params=prune.kept,
                               with_performance=False)
        lines.append("saved final learner:")
        lines += learner_block(t, best, converged=last.converged, pruning_calls=1, params=prune.kept,
                               with_performance=False)
    lines.append("initial-training: finished")
    lines.append("Training complete.")
    return lines


__all__ = ["header", "learner_block", "learner_id", "training_log"]
