"""Training data-parallel on a Dask cluster (docs/behaviour.md, "Cluster mode").

The datasource's byte-range parts are dealt, in runs of neighbouring parts,
to shards, one per worker thread. Each shard reads its parts once on its
worker: it fits its share of the recipe's data-dependent state (moments and
quantile sketches, which merge) and observes the target's classes, spooling
the accepted records to that worker's disk. The job merges the shards'
fitters and classes into the one fitted pipeline, and each shard featurizes
its spooled records into a feature cache and keeps an SGD trainer in the
worker's memory between the job's tasks (`_SHARDS`). Every pass, each shard trains on its rows and
returns its contribution (`SGDTrainer.contribution`); the job merges them
(`merge_contributions`: the SGD stage's weights averaged, the refinement's
gradients added exactly) and sends the one result to every shard, so every
trainer, the job's own included, closes the pass from the same state and
takes the same decisions, and the job's trainer gives the model.

Shards number their columns as they meet them; the job numbers the union of
all shards' columns in hashed order, and each shard maps its own numbers to
those before training, so every trainer's column i is the same column.

A worker that stops loses its shard: the job is handed back to the queue
and runs again (`WorkLost`), like a job whose own worker stopped.
"""
from __future__ import annotations

import copy
import dataclasses
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from ..learning.columns import ColumnMap
from ..learning.features import CsrBatch, FeaturePipeline, FittedPipeline
from ..learning.sgd import PassContribution, SGDConfig, SGDTrainer, TrainedLinear, merge_contributions
from ..learning.targets import TargetClasses, TargetValues
from .context import JobContext, JobFailed, WorkLost
from .feature_cache import FeatureCache, RecordFit, RecordSpool, featurize_spool
from .parts import (JobCancelled, Part, PartCancelled, PartRead, PartTask, log_parts, merge_reads, read_part,
                    stop_if_deleted, where_am_i)


@dataclass
class ShardTask:
    key: str  # the shard's name in its worker's `_SHARDS`
    parts: list[PartTask]
    pipeline: FeaturePipeline
    labels: TargetValues | TargetClasses  # nothing observed yet


@dataclass
class _Shard:
    work: tempfile.TemporaryDirectory
    spool: RecordSpool
    records: int  # accepted, spooled
    config: SGDConfig | None = None
    cache: FeatureCache | None = None
    columns: ColumnMap | None = None
    trainer: SGDTrainer | None = None
    remap: np.ndarray | None = None  # the shard's column numbers -> the job's
    n_columns: int = 0


_SHARDS: dict[str, _Shard] = {}
LOST_CHECK_SECONDS = 1.0  # how often a job waiting on its shards checks that their workers are there


def _local_directory() -> str:
    from distributed import get_worker

    return get_worker().local_directory


def _shard(key: str) -> _Shard:
    shard = _SHARDS.get(key)
    if shard is None:
        raise WorkLost(f"the Dask worker {where_am_i()} no longer holds training shard {key}")
    return shard


def fit_shard(settings, task: ShardTask) -> dict:
    """Read the shard's parts once: fit its share of the recipe, observe the
    target, and spool the accepted records on this worker for featurizing."""
    started = time.monotonic()
    work = tempfile.TemporaryDirectory(prefix="treadle-shard-", dir=_local_directory())
    fit = RecordFit(task.pipeline, task.labels, task.parts[0].schema, work.name, moments=True)
    try:
        reads = [read_part(settings, part, fit.add) for part in task.parts]
        fit.close()
    except BaseException:
        work.cleanup()
        raise
    drop_shard(task.key)
    _SHARDS[task.key] = _Shard(work, fit.spool, sum(read.accepted for read in reads))
    return {"reads": reads, "fitter": fit.fitter, "labels": fit.labels, "target": fit.target, "where": where_am_i(),
            "seconds": time.monotonic() - started}


def featurize_shard(key: str, pipeline: FittedPipeline, labels, config: SGDConfig, shuffle: bool, seed: int) -> dict:
    """Featurize the shard's spooled records into a feature cache on this worker."""
    shard = _shard(key)
    started = time.monotonic()
    labels = copy.deepcopy(labels)  # its sums are this shard's
    shard.config = config
    shard.cache = FeatureCache(max(1, shard.records), shuffle=shuffle, seed=seed, directory=shard.work.name)
    shard.columns = ColumnMap(pipeline.n_features)
    featurize_spool(shard.spool, pipeline, labels, shard.columns, shard.cache)
    return {"rows": shard.cache.rows, "columns": shard.columns.hashed_columns.copy(), "labels": labels,
            "where": where_am_i(), "seconds": time.monotonic() - started}


def train_shard(key: str, columns: np.ndarray | None, previous: PassContribution | None) -> dict:
    """One pass of the shard's trainer: first combining and closing the
    previous pass (`previous`: every shard's contribution, merged by the
    job), or, on the first pass, starting a trainer over the job's `columns`."""
    shard = _shard(key)
    started = time.monotonic()
    if columns is not None:
        shard.remap = np.searchsorted(columns, shard.columns.hashed_columns).astype(np.int32)
        shard.n_columns = max(len(columns), 1)
        shard.trainer = SGDTrainer(shard.config, shard.n_columns)
    trainer = shard.trainer
    if previous is not None:
        trainer.combine([previous])
        trainer.end_pass()
    for rows in shard.cache.passes(shard.columns.n_columns):
        batch = rows.batch
        trainer.partial_fit(CsrBatch(batch.indptr, shard.remap[batch.indices], batch.data, shard.n_columns),
                            rows.y, rows.weight)
    # A copy: the trainer goes on changing its arrays, and a result kept in
    # this worker's memory is handed to its readers as it is.
    return {"contribution": copy.deepcopy(trainer.contribution()), "where": where_am_i(),
            "seconds": time.monotonic() - started}


def drop_shard(key: str) -> None:
    shard = _SHARDS.pop(key, None)
    if shard is not None:
        if shard.cache is not None:
            shard.cache.close()
        shard.work.cleanup()


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


def gather_shards(ctx: JobContext, client, futures: list, workers: list[str]) -> list:
    """The results of shard tasks pinned to `workers`, fetched one by one.
    A worker that left the cluster loses the work (`WorkLost`): its tasks may
    run only there, and a result it held is lost with it, so either would be
    waited on for ever. A deleted model stops the job."""
    from concurrent.futures import CancelledError  # Dask's FutureCancelledError is one

    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker

    def check() -> None:
        present = set(client.nthreads())
        gone = sorted(set(workers) - present)
        if gone:
            raise WorkLost(f"the Dask worker {', '.join(gone)} holding a training shard left the cluster")
        if ctx.cancelled():
            stop_if_deleted(ctx)

    def result(future):
        while True:
            try:
                return future.result(timeout=LOST_CHECK_SECONDS)
            except TimeoutError:
                check()

    try:
        return [result(future) for future in futures]
    except (KilledWorker, CommClosedError, CancelledError) as error:
        client.cancel(futures)
        raise WorkLost(f"a Dask worker holding a training shard stopped ({type(error).__name__})")
    except BaseException:
        client.cancel(futures)
        raise


@dataclass
class ShardedResult:
    trained: TrainedLinear  # over hashed columns
    pipeline: FittedPipeline
    labels: TargetValues | TargetClasses
    records: int  # accepted
    rejected: int


def train_on_shards(ctx: JobContext, client, slots: list[str], runs: list[list[PartTask]], pipeline: FeaturePipeline,
                    model_type, config: SGDConfig, shuffle: bool, seed: int) -> ShardedResult:
    """Fit the recipe, featurize and train `config` data-parallel over the shards."""
    prefix = f"treadle-MLModel-{ctx.entity.entity_id}-attempt{ctx.parts.attempt}"
    keys = [f"{prefix}-shard-{i + 1}-of-{len(runs)}" for i in range(len(runs))]
    where = [[slots[i % len(slots)]] for i in range(len(runs))]
    schema = runs[0][0].schema

    def submit(fn, *args, shard: int, step: str):
        return client.submit(fn, *args, key=f"{keys[shard]}-{step}", workers=where[shard],
                             allow_other_workers=False, pure=False)

    def gather(futures) -> list:
        return gather_shards(ctx, client, futures, [shard[0] for shard in where])

    try:
        fitted = gather([submit(fit_shard, ctx.settings, ShardTask(keys[i], run, pipeline, model_type.targets(schema)),
                                shard=i, step="fit") for i, run in enumerate(runs)])
        parts = [t.part for run in runs for t in run]
        reads: list[PartRead] = [read for f in fitted for read in f["reads"]]
        log_parts(ctx, parts, reads)
        merged = merge_reads(parts, reads)
        if merged.accepted == 0:
            raise JobFailed(f"The training datasource {ctx.document['TrainingDataSourceId']} has no records with a "
                            "valid target")
        fitter, labels, target = fitted[0]["fitter"], fitted[0]["labels"], fitted[0]["target"]
        for f in fitted[1:]:
            fitter.merge(f["fitter"])
            labels.observe_from(f["labels"])
            if target is not None:
                target.merge(f["target"])
        labels.finish()
        fitted_pipeline = fitter.finish()
        ctx.log(f"recipe fitted on {merged.accepted} records ({merged.rejected} rejected) in {len(runs)} shards "
                f"(" + ", ".join(f"shard {i + 1} on {f['where']} in {f['seconds']:.2f} s" for i, f in enumerate(fitted))
                + f"); {fitted_pipeline.n_features} hashed feature columns")
        config = dataclasses.replace(config, n_classes=max(len(labels.classes), 2))
        if target is not None:
            # Every shard standardises a numeric target alike (docs/behaviour.md, "Cluster mode").
            config = dataclasses.replace(config, target_mean=target.mean, target_std=target.std)
        built = gather([submit(featurize_shard, keys[i], fitted_pipeline, labels, config, shuffle, seed + i,
                               shard=i, step="featurize") for i in range(len(runs))])
        for i, b in enumerate(built):
            labels.merge(b["labels"])
            ctx.log(f"training shard {i + 1} of {len(runs)}: {b['rows']} records featurized on {b['where']} "
                    f"in {b['seconds']:.2f} s")
        columns = np.unique(np.concatenate([b["columns"] for b in built]))
        ctx.log(f"featurized {merged.accepted} records on {len(runs)} shards: {len(columns)} of the hashed "
                "columns in use")
        trainer = SGDTrainer(config, max(len(columns), 1))
        previous = None  # the last pass's contributions merged, held on shard 1's worker
        while True:
            stop_if_deleted(ctx)
            started = time.monotonic()
            step = trainer.passes + 1
            results = gather([submit(train_shard, keys[i], columns if previous is None else None, previous,
                                     shard=i, step=f"pass-{step}") for i in range(len(runs))])
            combined = merge_contributions([r["contribution"] for r in results])
            trainer.combine([combined])
            more = trainer.end_pass()
            ctx.log(f"pass {step}: " + ", ".join(f"shard {i + 1} on {r['where']} in {r['seconds']:.2f} s"
                                                 for i, r in enumerate(results))
                    + f"; combined in {time.monotonic() - started - max(r['seconds'] for r in results):.2f} s")
            if not more:
                break
            # Sent once and fetched by every shard's worker, rather than
            # carried in each task through the scheduler.
            previous = client.scatter(combined, workers=where[0], hash=False)
        mapped = ColumnMap.of_columns(fitted_pipeline.n_features, columns)
        return ShardedResult(mapped.to_hashed(trainer.finish()), fitted_pipeline, labels, merged.accepted,
                             merged.rejected)
    except PartCancelled as error:
        raise JobCancelled(f"{error} while its job ran: its cluster work was cancelled")
    finally:
        from distributed import fire_and_forget

        # Not on a worker that left: the task would wait for it for ever.
        present = set(client.nthreads())
        fire_and_forget([submit(drop_shard, keys[i], shard=i, step="drop") for i in range(len(runs))
                         if where[i][0] in present])


__all__ = ["ShardTask", "ShardedResult", "deal", "featurize_shard", "fit_shard", "gather_shards",
           "train_on_shards", "train_shard"]
