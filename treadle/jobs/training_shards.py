"""Training data-parallel on a Dask cluster (docs/behaviour.md, "Cluster mode").

The MLModel job's own task fits the recipe and numbers the target's classes
in one read, as on one machine. The datasource's byte-range parts are then
dealt, in runs of neighbouring parts, to shards, one per worker thread; each
shard reads its parts on its worker, featurizes them into a feature cache on
that worker's disk and keeps an SGD trainer in the worker's memory between
the job's tasks (`_SHARDS`). Every pass, each shard trains on its rows and
returns its contribution (`SGDTrainer.contribution`); every shard's trainer
and the job's own combine the same contributions in the same order and close
the pass, so all take the same decisions (the SGD stage's weights averaged,
the refinement's gradients added exactly), and the job's trainer gives the
model.

Shards number their columns as they meet them; the job numbers the union of
all shards' columns in hashed order, and each shard maps its own numbers to
those before training, so every trainer's column i is the same column.

A worker that stops loses its shard: the job is handed back to the queue
and runs again (`WorkLost`), like a job whose own worker stopped.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np

from ..learning.columns import ColumnMap
from ..learning.features import CsrBatch, FittedPipeline
from ..learning.sgd import PassContribution, SGDConfig, SGDTrainer, TrainedLinear
from ..learning.targets import TargetClasses, TargetValues, row_weights
from .context import JobContext, WorkLost
from .feature_cache import FeatureCache, Rows
from .parts import (JobCancelled, Part, PartCancelled, PartRead, PartTask, log_parts, merge_reads, read_part,
                    stop_if_deleted, where_am_i)


@dataclass
class ShardTask:
    key: str  # the shard's name in its worker's `_SHARDS`
    parts: list[PartTask]
    pipeline: FittedPipeline
    labels: TargetValues | TargetClasses  # classes numbered; nothing added yet
    shuffle: bool
    seed: int
    expected_rows: int


@dataclass
class _Shard:
    cache: FeatureCache
    columns: ColumnMap
    config: SGDConfig
    trainer: SGDTrainer | None = None
    remap: np.ndarray | None = None  # the shard's column numbers -> the job's
    n_columns: int = 0


_SHARDS: dict[str, _Shard] = {}


def _local_directory() -> str:
    from distributed import get_worker

    return get_worker().local_directory


def build_shard(settings, task: ShardTask, config: SGDConfig) -> dict:
    """Read and featurize the shard's parts into a feature cache on this
    worker; what the job needs to number columns and log the parts."""
    started = time.monotonic()
    labels = copy.deepcopy(task.labels)
    cache = FeatureCache(task.expected_rows, shuffle=task.shuffle, seed=task.seed,
                         directory=_local_directory())
    columns = ColumnMap(task.pipeline.n_features)
    schema = task.parts[0].schema

    def featurize(chunk) -> None:
        y, weight = labels.y(chunk), row_weights(chunk, schema)
        labels.add(y, weight)
        cache.add(Rows(columns.translate(task.pipeline.transform(chunk.table)), y, weight))

    try:
        reads = [read_part(settings, part, featurize) for part in task.parts]
        cache.seal()
    except BaseException:
        cache.close()
        raise
    _drop(task.key)
    _SHARDS[task.key] = _Shard(cache, columns, config)
    return {"reads": reads, "rows": cache.rows, "columns": columns.hashed_columns.copy(), "labels": labels,
            "where": where_am_i(), "seconds": time.monotonic() - started}


def train_shard(key: str, columns: np.ndarray | None, previous: list[PassContribution] | None) -> dict:
    """One pass of the shard's trainer: first combining and closing the
    previous pass (`previous`: every shard's contribution, in shard order),
    or, on the first pass, starting a trainer over the job's `columns`."""
    shard = _SHARDS.get(key)
    if shard is None:
        raise WorkLost(f"the Dask worker {where_am_i()} no longer holds training shard {key}")
    started = time.monotonic()
    if columns is not None:
        shard.remap = np.searchsorted(columns, shard.columns.hashed_columns).astype(np.int32)
        shard.n_columns = max(len(columns), 1)
        shard.trainer = SGDTrainer(shard.config, shard.n_columns)
    trainer = shard.trainer
    if previous:
        trainer.combine(previous)
        trainer.end_pass()
    for rows in shard.cache.passes(shard.columns.n_columns):
        batch = rows.batch
        trainer.partial_fit(CsrBatch(batch.indptr, shard.remap[batch.indices], batch.data, shard.n_columns),
                            rows.y, rows.weight)
    # A copy: the trainer goes on changing its arrays, and a result kept in
    # this worker's memory is handed to its readers as it is.
    return {"contribution": copy.deepcopy(trainer.contribution()), "where": where_am_i(),
            "seconds": time.monotonic() - started}


def _drop(key: str) -> None:
    shard = _SHARDS.pop(key, None)
    if shard is not None:
        shard.cache.close()


def drop_shard(key: str) -> None:
    _drop(key)


# -- the job's side --------------------------------------------------------------------------

def deal(parts: list[Part], shards: int) -> list[list[Part]]:
    """Runs of neighbouring parts of about equal bytes, one run per shard."""
    total = sum(p.end - p.start for p in parts) or 1
    runs: list[list[Part]] = [[] for _ in range(shards)]
    done = 0
    for part in parts:
        runs[min(shards - 1, int(done * shards / total))].append(part)
        done += part.end - part.start
    return [run for run in runs if run]


def train_on_shards(ctx: JobContext, client, slots: list[str], runs: list[list[PartTask]], pipeline: FittedPipeline,
                    labels, config: SGDConfig, shuffle: bool, seed: int, accepted: int) -> tuple[TrainedLinear, int]:
    """Train `config` data-parallel over the shards; the trained result (over
    hashed columns) and the records trained on. `labels` gets the shards'
    target sums."""
    prefix = f"treadle-MLModel-{ctx.entity.entity_id}-attempt{ctx.parts.attempt}"
    keys = [f"{prefix}-shard-{i + 1}-of-{len(runs)}" for i in range(len(runs))]
    where = [[slots[i % len(slots)]] for i in range(len(runs))]
    total_bytes = sum(t.part.end - t.part.start for run in runs for t in run) or 1

    def submit(fn, *args, shard: int, key: str):
        return client.submit(fn, *args, key=key, workers=where[shard], allow_other_workers=False, pure=False)

    def gather(futures) -> list:
        try:
            return client.gather(futures)
        except WorkLost:
            raise
        except Exception as error:
            if type(error).__name__ in ("KilledWorker", "CommClosedError", "FutureCancelledError", "CancelledError"):
                raise WorkLost(f"a Dask worker holding a training shard stopped ({type(error).__name__})")
            raise

    try:
        futures = []
        for i, run in enumerate(runs):
            shard_bytes = sum(t.part.end - t.part.start for t in run)
            task = ShardTask(keys[i], run, pipeline, labels, shuffle, seed + i,
                             max(1, int(accepted * shard_bytes / total_bytes)))
            futures.append(submit(build_shard, ctx.settings, task, config, shard=i, key=f"{keys[i]}-featurize"))
        built = gather(futures)
        parts = [t.part for run in runs for t in run]
        reads: list[PartRead] = [read for b in built for read in b["reads"]]
        log_parts(ctx, parts, reads)
        merged = merge_reads(parts, reads)
        for i, b in enumerate(built):
            labels.merge(b["labels"])
            ctx.log(f"training shard {i + 1} of {len(runs)}: {b['rows']} records featurized on {b['where']} "
                    f"in {b['seconds']:.2f} s")
        columns = np.unique(np.concatenate([b["columns"] for b in built]))
        ctx.log(f"featurized {merged.accepted} records on {len(runs)} shards: {len(columns)} of the hashed "
                "columns in use")
        trainer = SGDTrainer(config, max(len(columns), 1))
        previous = None
        while True:
            stop_if_deleted(ctx)
            started = time.monotonic()
            step = trainer.passes + 1
            futures = [submit(train_shard, keys[i], columns if previous is None else None, previous, shard=i,
                              key=f"{keys[i]}-pass-{step}") for i in range(len(runs))]
            results = gather(futures)
            previous = [r["contribution"] for r in results]
            trainer.combine(previous)
            more = trainer.end_pass()
            ctx.log(f"pass {step}: " + ", ".join(f"shard {i + 1} on {r['where']} in {r['seconds']:.2f} s"
                                                 for i, r in enumerate(results))
                    + f"; combined in {time.monotonic() - started - max(r['seconds'] for r in results):.2f} s")
            if not more:
                break
        mapped = ColumnMap.of_columns(pipeline.n_features, columns)
        return mapped.to_hashed(trainer.finish()), merged.accepted
    except PartCancelled as error:
        raise JobCancelled(f"{error} while its job ran: its cluster work was cancelled")
    finally:
        from distributed import fire_and_forget

        fire_and_forget([client.submit(drop_shard, key, key=f"{key}-drop", workers=where[i],
                                       allow_other_workers=False, pure=False) for i, key in enumerate(keys)])


__all__ = ["ShardTask", "build_shard", "deal", "train_on_shards", "train_shard"]
