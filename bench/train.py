"""Benchmark: Treadle's MLModel training and batch prediction against Vowpal
Wabbit and scikit-learn on the same data, in one run.

Usage:
    python bench/train.py --rows 1000000,4000000   # the issue's figures (1M and 4M training rows)
    python bench/train.py --quick                  # 200k training rows, 100k test rows, for development
    python bench/train.py --rows 1000000 --repeat 2   # best of 2 runs per timed measurement

Data: a deterministic CSV (generated once into --dir, default
/tmp/treadle-bench-train, then reused) with NUMERIC columns (three with
missing cells), CATEGORICAL columns (one with 2,000 Zipf-distributed
levels), a BINARY column, a short TEXT column (0-11 words, mixed case and
punctuation) and a BINARY target drawn from a logistic model of all of them.
Training files of different sizes share their first rows; the held-out test
file comes from another seed.

Each measurement runs in its own process and its peak resident memory is
that process's own (``os.wait4`` rusage):

* treadle-train: the MLModel job through the real worker path
  (``JobQueue.claim`` then ``worker.run_job``, i.e. ``treadle.jobs.training.run``)
  against a SQLite store and local artifacts; suggested recipe, 10 passes,
  shuffle auto.  Time = FinishedAt - StartedAt of the entity, which
  includes reading and validating the CSV, fitting the recipe,
  featurizing and every SGD pass.
* treadle-batch: the BatchPrediction job on the test datasource, end to end
  (CSV parse, features, scores, gzip CSV output); AUC from its output file.
* vw / vw-holdout-off: Treadle's fitted features (hashed columns from
  ``FittedPipeline.transform``) exported once to VW text, then
  ``vw --passes 10 -c --loss_function logistic -b 22`` (time includes text
  parsing and cache creation, as Treadle's includes CSV parsing).
* sk-sgd / sk-logreg: the same CSR matrices loaded into memory (load time
  not counted), ``SGDClassifier(loss="log_loss", max_iter=10)`` and
  ``LogisticRegression(solver="lbfgs")``.
* sk-pipeline: a ColumnTransformer pipeline (quantile bins with the recipe's
  bin counts + missing indicators, one-hot, hashed words) + SGDClassifier,
  fitted on a pandas DataFrame of the training CSV; its ``predict_proba``
  over the test DataFrame is the batch-scoring reference.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1 << 20
BLOCK = 200_000
ACCOUNT = "000000000000"
HASH_BITS = 22  # Treadle's default PipelineOptions.hash_bits

NUMERIC = ["age", "income", "tenure", "noise"]
CATEGORICAL = ["city", "device", "plan"]
BINARY = ["promo"]
TEXT = ["comment"]
COLUMNS = ([(c, "NUMERIC") for c in NUMERIC] + [(c, "CATEGORICAL") for c in CATEGORICAL]
           + [(c, "BINARY") for c in BINARY] + [(c, "TEXT") for c in TEXT] + [("y", "BINARY")])
SCHEMA = {
    "version": "1.0", "dataFormat": "CSV", "dataFileContainsHeader": True, "targetAttributeName": "y",
    "attributes": [{"attributeName": n, "attributeType": t} for n, t in COLUMNS],
}


# -- data ----------------------------------------------------------------------

class _World:
    """The fixed 'truth' the target is drawn from: effects of every level and word."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        words = sorted({"".join(rng.choice(letters, k)) for k in rng.integers(3, 10, 3200)})[:3000]
        self.words = np.array(words)
        self.surface = np.array([[w, w.capitalize(), w + ".", w + "!"] for w in words])
        self.word_p = 1.0 / np.arange(1, len(words) + 1) ** 0.9
        self.word_p /= self.word_p.sum()
        # A sparse subset of the vocabulary carries signal, as in real text.
        self.word_effect = np.where(rng.random(len(words)) < 0.1, rng.normal(0, 0.8, len(words)), 0.0)
        self.cities = np.array([f"city_{i:04d}" for i in range(2000)])
        self.city_effect = rng.normal(0, 0.5, len(self.cities))
        self.devices = np.array(["android", "ios", "web", "tablet", "tv", "other"])
        self.device_effect = np.array([0.2, 0.5, -0.3, 0.1, -0.6, 0.0])
        self.plans = np.array([f"plan-{chr(65 + i % 26)}{i // 26}" for i in range(30)])
        self.plan_effect = rng.normal(0, 0.4, len(self.plans))


def _block(world: _World, seed: int, index: int, n: int, header: bool) -> bytes:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng([seed, index])
    age = rng.integers(18, 91, n)
    log_income = rng.normal(10.5, 0.8, n)
    income = np.round(np.exp(log_income), 2)
    income_missing = rng.random(n) < 0.05
    tenure = np.round(rng.uniform(0, 20, n), 1)
    tenure_missing = rng.random(n) < 0.02
    noise = np.round(rng.normal(0, 1, n), 4)
    noise_missing = rng.random(n) < 0.10
    city = np.minimum(rng.zipf(1.15, n), len(world.cities)) - 1
    device = rng.choice(len(world.devices), n, p=[0.35, 0.3, 0.2, 0.07, 0.03, 0.05])
    plan = rng.integers(0, len(world.plans), n)
    promo = rng.random(n) < 0.3
    lengths = rng.integers(0, 12, n)
    tokens = rng.choice(len(world.words), int(lengths.sum()), p=world.word_p)
    forms = rng.choice(4, tokens.shape[0], p=[0.75, 0.15, 0.05, 0.05])
    rows_of = np.repeat(np.arange(n), lengths)
    text_effect = np.bincount(rows_of, weights=world.word_effect[tokens], minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    comment = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), pa.array(world.surface[tokens, forms])), " ")

    z = (-1.3 + 0.5 * ((age - 45) / 15.0) ** 2 - 0.3
         + np.where(income_missing, 0.3, 0.9 * np.tanh((log_income - 10.5) / 0.8))
         + np.where(tenure_missing, 0.0, np.where((tenure > 5) & (tenure < 12), 0.7, 0.0))
         + world.city_effect[city] + world.device_effect[device] + world.plan_effect[plan]
         + 0.5 * promo + text_effect)
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-z))

    def holes(values, missing):
        return pa.array(values, mask=missing)

    table = pa.table({
        "age": age, "income": holes(income, income_missing), "tenure": holes(tenure, tenure_missing),
        "noise": holes(noise, noise_missing), "city": world.cities[city], "device": world.devices[device],
        "plan": world.plans[plan], "promo": np.where(promo, "yes", "no"), "comment": comment,
        "y": y.astype(np.int8),
    })
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=header, quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def generate(path: str, rows: int, seed: int) -> None:
    """The same (rows, seed) always gives the same file; a larger file
    starts with the rows of a smaller one."""
    world = _World()
    tmp = path + ".partial"
    with open(tmp, "wb") as out:
        for index, start in enumerate(range(0, rows, BLOCK)):
            out.write(_block(world, seed, index, min(BLOCK, rows - start), header=start == 0))
    os.replace(tmp, path)


# -- Treadle: a store with the two datasources, and jobs run as the worker runs them

def _settings(store: str, scratch: str):
    sys.path.insert(0, ROOT)
    from treadle.config import Settings

    return Settings(data_dir=store, allowed_local_paths=[scratch], job_concurrency=1)


def _entities(settings):
    from treadle.store import db
    from treadle.store.entities import EntityStore

    return EntityStore(db.create_engine(settings.effective_database_url))


def _document(kind: str, entity_id: str, fields: dict) -> dict:
    from treadle.store.entities import ID_FIELD, now

    stamp = now()
    return {ID_FIELD[kind]: entity_id, "CreatedByIamUser": f"arn:aws:iam::{ACCOUNT}:root",
            "CreatedAt": stamp, "LastUpdatedAt": stamp, "Status": "PENDING", **fields}


def _run_one_job(settings, kind: str, entity_id: str, fields: dict) -> dict:
    """Insert the entity, queue it, claim it and run it in this process, as a
    worker process of the local runner does."""
    from treadle.jobs.queue import JobQueue
    from treadle.jobs.worker import run_job

    store = _entities(settings)
    with store.engine.begin() as conn:
        store.insert(conn, ACCOUNT, kind, entity_id, _document(kind, entity_id, fields))
        store.enqueue(conn, ACCOUNT, kind, entity_id)
    (job,) = JobQueue(store).claim("bench", 1, 3600)
    began = time.perf_counter()
    status = run_job(settings, job)
    wall = time.perf_counter() - began
    doc = store.get(ACCOUNT, kind, entity_id).document
    if status != "COMPLETED":
        raise SystemExit(f"{kind} {entity_id} {status}: {doc.get('Message')}")
    return {"wall": wall, "seconds": doc["FinishedAt"] - doc["StartedAt"], "doc": doc}


def child_setup(store: str, scratch: str, train: str, test: str, warm: str) -> dict:
    """The store with the training datasource (with statistics, which the
    suggested recipe needs), the test datasource and a tiny warm-up one.
    Datasources already there are kept. Not part of the figures."""
    from treadle.store import db

    os.makedirs(store, exist_ok=True)
    settings = _settings(store, scratch)
    db.migrate(db.create_engine(settings.effective_database_url))
    out = {}
    for entity_id, path, stats in (("ds-train", train, True), ("ds-test", test, False), ("ds-warm", warm, True)):
        existing = _entities(settings).get(ACCOUNT, "DataSource", entity_id)
        if existing is not None and existing.status == "COMPLETED":
            continue
        result = _run_one_job(settings, "DataSource", entity_id, {
            "DataLocationS3": "file://" + path, "ComputeStatistics": stats, "_schema": json.dumps(SCHEMA),
            "_source": {"type": "s3"}})
        out[entity_id] = {"seconds": result["seconds"], "records": result["doc"]["_records"]}
    return out


TRAINING = {
    "MLModelType": "BINARY", "Algorithm": "sgd",
    "EndpointInfo": {"EndpointStatus": "NONE", "PeakRequestsPerSecond": 0},
    "TrainingParameters": {"sgd.maxMLModelSizeInBytes": "33554432", "sgd.maxPasses": "10",
                           "sgd.shuffleType": "auto", "sgd.l1RegularizationAmount": "0.0",
                           "sgd.l2RegularizationAmount": "0.0", "algorithm": "sgd"},
}


def child_treadle_train(store: str, scratch: str, model_id: str) -> dict:
    settings = _settings(store, scratch)
    import resource

    import treadle.jobs.training  # noqa: F401  imported before the baseline, as in a warm worker

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The local runner's worker processes live on from job to job, so a job
    # normally finds the numba kernels loaded; a tiny job first makes that so
    # here (loading them costs 1-3 s once per process).
    _run_one_job(settings, "MLModel", model_id + "-warm", {"TrainingDataSourceId": "ds-warm", **TRAINING})
    result = _run_one_job(settings, "MLModel", model_id, {"TrainingDataSourceId": "ds-train", **TRAINING})
    from treadle.store.job_logs import log_key
    from treadle.store.artifacts import open_artifacts

    log = open_artifacts(settings.effective_artifacts_url).get(log_key(ACCOUNT, "MLModel", model_id)).decode()
    passes = int(log.split("finished-training: total-passes=")[1].split()[0])
    records = store_records(settings, "ds-train")
    return {"seconds": result["seconds"], "wall": result["wall"], "passes": passes, "records": records,
            "baseline_rss": baseline, "recipe": result["doc"]["_recipe_used"],
            "size_bytes": result["doc"]["SizeInBytes"], "model_key": result["doc"]["_model"]}


def store_records(settings, datasource_id: str) -> int:
    return int(_entities(settings).get(ACCOUNT, "DataSource", datasource_id).document["_records"])


def child_treadle_batch(store: str, scratch: str, model_id: str, prediction_id: str) -> dict:
    settings = _settings(store, scratch)
    import treadle.jobs.batch_prediction  # noqa: F401

    out_dir = os.path.join(scratch, "batch-output", prediction_id)
    _run_one_job(settings, "BatchPrediction", prediction_id + "-warm", {  # as in child_treadle_train
        "MLModelId": model_id, "BatchPredictionDataSourceId": "ds-warm", "OutputUri": "file://" + out_dir + "-warm/"})
    result = _run_one_job(settings, "BatchPrediction", prediction_id, {
        "MLModelId": model_id, "BatchPredictionDataSourceId": "ds-test", "OutputUri": "file://" + out_dir + "/"})
    (output,) = [os.path.join(dp, f) for dp, _, fs in os.walk(out_dir) for f in fs if f.endswith(".gz")]
    return {"seconds": result["seconds"], "wall": result["wall"], "records": result["doc"]["TotalRecordCount"],
            "output": output}


# -- features exported from Treadle's fitted pipeline, for VW and scikit-learn --

def _read_strings(path: str):
    import pyarrow.csv as pa_csv

    names = [n for n, _ in COLUMNS]
    return pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=8 << 20),
                           convert_options=pa_csv.ConvertOptions(column_types={n: "string" for n in names},
                                                                 strings_can_be_null=False))


def child_export(store: str, scratch: str, model_key: str, train: str, test: str, out_dir: str) -> dict:
    """Write <split>.vw (VW text) and <split>.npz (CSR) for both files."""
    import pyarrow as pa
    import pyarrow.compute as pc

    settings = _settings(store, scratch)
    from treadle.learning import MLModelArtifact
    from treadle.store.artifacts import open_artifacts

    model = MLModelArtifact.from_bytes(open_artifacts(settings.effective_artifacts_url).get(model_key))
    pipeline = model.fitted_pipeline
    os.makedirs(out_dir, exist_ok=True)
    began = time.perf_counter()
    for split, path in (("train", train), ("test", test)):
        parts = {"indptr": [], "indices": [], "data": [], "y": []}
        tmp = os.path.join(out_dir, f"{split}.vw.partial")
        with open(tmp, "wb") as vw:
            for batch in _read_strings(path):
                csr = pipeline.transform(batch)
                y = (np.asarray(batch.column("y").to_pylist()) == "1").astype(np.int8)
                # VW reads a bare integer feature name as that column index.
                names = pa.array(csr.indices.astype(np.int64)).cast(pa.string())
                ones = csr.data == 1.0
                if not ones.all():
                    values = pa.array(csr.data.astype(np.float64)).cast(pa.string())
                    names = pc.if_else(pa.array(ones), names, pc.binary_join_element_wise(names, values, ":"))
                features = pc.binary_join(pa.ListArray.from_arrays(pa.array(csr.indptr.astype(np.int32)), names), " ")
                lines = pc.binary_join_element_wise(pa.array(np.where(y == 1, "1 |f ", "-1 |f ")), features, "")
                vw.write(("\n".join(lines.to_pylist()) + "\n").encode())
                base = sum(len(a) for a in parts["indices"])
                parts["indptr"].append(csr.indptr[1:] + base if parts["indptr"] else csr.indptr + base)
                parts["indices"].append(csr.indices)
                parts["data"].append(csr.data)
                parts["y"].append(y)
        os.replace(tmp, os.path.join(out_dir, f"{split}.vw"))
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        np.savez(os.path.join(out_dir, f"{split}.npz"), n_features=np.int64(pipeline.n_features), **arrays)
    with open(os.path.join(out_dir, "done"), "w") as marker:
        marker.write("ok\n")
    return {"seconds": time.perf_counter() - began}


def _load_csr(path: str):
    import scipy.sparse as sp

    with np.load(path) as z:
        n = int(z["n_features"])
        X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(len(z["y"]), n))
        return X, z["y"].copy()


def _auc(y, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def child_sklearn(model: str, feature_dir: str) -> dict:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    began = time.perf_counter()
    X, y = _load_csr(os.path.join(feature_dir, "train.npz"))
    Xt, yt = _load_csr(os.path.join(feature_dir, "test.npz"))
    load = time.perf_counter() - began
    if model == "sgd":
        estimator = SGDClassifier(loss="log_loss", max_iter=10, tol=None, random_state=0)
    else:
        # Dropping the hashed columns no row uses leaves the same problem (their
        # weights stay 0) but spares lbfgs dense work over 2**22 columns (~40x).
        used = np.unique(X.indices)
        X, Xt = X[:, used], Xt[:, used]
        estimator = LogisticRegression(solver="lbfgs", max_iter=100)
    import warnings

    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the iteration cap is the point
        estimator.fit(X, y)
    seconds = time.perf_counter() - began
    passes = int(np.max(estimator.n_iter_))
    began = time.perf_counter()
    scores = estimator.decision_function(Xt)
    score_seconds = time.perf_counter() - began
    return {"seconds": seconds, "passes": passes, "records": X.shape[0], "load_seconds": load,
            "auc": _auc(yt, scores), "score_rows_s": Xt.shape[0] / score_seconds}


def _fill_text(frame):
    return frame.fillna("")


def child_sk_pipeline(train: str, test: str, bins_json: str) -> dict:
    import warnings

    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, KBinsDiscretizer, OneHotEncoder

    bins = json.loads(bins_json)
    dtypes = {c: "string" for c in CATEGORICAL + BINARY + TEXT}
    began = time.perf_counter()
    frame = pd.read_csv(train, dtype=dtypes)
    read_seconds = time.perf_counter() - began
    numeric = [c for c in NUMERIC if c in bins]
    prep = ColumnTransformer([
        ("bins", make_pipeline(SimpleImputer(strategy="median"),
                               KBinsDiscretizer(n_bins=[bins[c] for c in numeric], encode="onehot",
                                                strategy="quantile", quantile_method="averaged_inverted_cdf")),
         numeric),
        ("missing", MissingIndicator(features="all"), numeric),
        ("onehot", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL + BINARY),
        ("words", make_pipeline(FunctionTransformer(_fill_text),
                                HashingVectorizer(n_features=1 << 20, alternate_sign=False, norm=None,
                                                  token_pattern=r"(?u)\b\w+\b")), TEXT[0]),
    ])
    pipe = Pipeline([("prep", prep), ("model", SGDClassifier(loss="log_loss", max_iter=10, tol=None, random_state=0))])
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(frame.drop(columns=["y"]), frame["y"].to_numpy())
    fit_seconds = time.perf_counter() - began
    del frame
    began = time.perf_counter()
    test_frame = pd.read_csv(test, dtype=dtypes)
    test_read = time.perf_counter() - began
    began = time.perf_counter()
    proba = pipe.predict_proba(test_frame.drop(columns=["y"]))[:, 1]
    predict_seconds = time.perf_counter() - began
    return {"seconds": predict_seconds, "records": len(test_frame), "read_seconds": test_read,
            "fit_seconds": fit_seconds, "train_read_seconds": read_seconds,
            "auc": _auc(test_frame["y"].to_numpy(), proba)}


def child(args: list[str]) -> None:
    tool, rest = args[0], args[1:]
    out = {"setup": child_setup, "treadle-train": child_treadle_train, "treadle-batch": child_treadle_batch,
           "export": child_export, "sklearn": child_sklearn, "sk-pipeline": child_sk_pipeline}[tool](*rest)
    print(json.dumps(out))


# -- parent: runs the children and measures each one's own peak memory ----------

def run_child(args: list[str], log_path: str, capture_json: bool = True) -> dict:
    """Run a child to completion and return its JSON result plus its peak RSS
    (from wait4, so it is this process's alone)."""
    with open(log_path, "wb") as log, open(log_path + ".out", "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=log, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        with open(log_path, "rb") as log:
            raise SystemExit(f"{' '.join(args[:4])} failed:\n{log.read()[-4000:].decode(errors='replace')}")
    result = {}
    if capture_json:
        with open(log_path + ".out") as out:
            result = json.loads(out.read().strip().splitlines()[-1])
    result["peak_rss"] = usage.ru_maxrss * 1024  # KiB on Linux
    return result


def me(*args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--child", *args]


def run_vw(feature_dir: str, rows: int, holdout: bool, log_dir: str) -> dict:
    model = os.path.join(feature_dir, "model.vw")
    cache = os.path.join(feature_dir, "train.vw.cache")
    if os.path.exists(cache):
        os.unlink(cache)  # -c would otherwise reuse the cache and skip parsing
    train = [sys.executable, "-m", "vowpalwabbit", "-d", os.path.join(feature_dir, "train.vw"), "-c",
             "--cache_file", cache, "--passes", "10", "--loss_function", "logistic", "-b", str(HASH_BITS),
             "-f", model] + ([] if holdout else ["--holdout_off"])
    log = os.path.join(log_dir, f"vw-{'holdout' if holdout else 'noholdout'}.log")
    began = time.perf_counter()
    result = run_child(train, log, capture_json=False)
    seconds = time.perf_counter() - began
    text = open(log).read()
    passes = int(text.split("passes used = ")[1].split()[0])
    preds = os.path.join(feature_dir, "test.pred")
    began = time.perf_counter()
    run_child([sys.executable, "-m", "vowpalwabbit", "-t", "-i", model, "-d", os.path.join(feature_dir, "test.vw"),
               "-p", preds, "--quiet"], log + ".predict", capture_json=False)
    score_seconds = time.perf_counter() - began
    with np.load(os.path.join(feature_dir, "test.npz")) as z:
        yt = z["y"]
    scores = np.loadtxt(preds, dtype=np.float64, usecols=0)
    os.unlink(cache)
    return {"seconds": seconds, "passes": passes, "records": rows, "peak_rss": result["peak_rss"],
            "auc": _auc(yt, scores), "score_rows_s": len(yt) / score_seconds}


def output_auc(path: str) -> float:
    import pandas as pd

    with gzip.open(path, "rt") as handle:
        frame = pd.read_csv(handle)
    return _auc(frame["trueLabel"].to_numpy(), frame["score"].to_numpy())


def recipe_bins(recipe_text: str) -> dict:
    """Column -> quantile bin count, from the suggested recipe's groups."""
    recipe = json.loads(recipe_text)
    out = {}
    for group, members in recipe["groups"].items():
        if group.startswith("NUMERIC_VARS_QB_"):
            level = int(group.rsplit("_", 1)[1])
            for name in members[len("group("):-1].split(","):
                out[name.strip().strip("'")] = level
    return out


def ensure_file(path: str, rows: int, seed: int) -> None:
    if os.path.exists(path):
        return
    print(f"generating {path} ({rows:,} rows) ...", flush=True)
    began = time.perf_counter()
    generate(path, rows, seed)
    print(f"  {os.path.getsize(path) / MB:,.0f} MB in {time.perf_counter() - began:.0f} s", flush=True)


def bench_size(args, rows: int, test_path: str) -> dict:
    scratch = os.path.realpath(args.dir)
    train_path = os.path.join(scratch, f"train_{rows}.csv")
    ensure_file(train_path, rows, seed=20240601)
    store = os.path.join(scratch, f"store-{rows}")
    logs = os.path.join(scratch, "logs", str(rows))
    os.makedirs(logs, exist_ok=True)
    warm_path = os.path.join(scratch, "warm.csv")
    ensure_file(warm_path, 3000, seed=5)
    if not os.path.exists(os.path.join(store, "ready-v2")):
        print(f"  creating the datasources in {store} (ingest with statistics, not part of the figures) ...",
              flush=True)
        setup = run_child(me("setup", store, scratch, train_path, test_path, warm_path),
                          os.path.join(logs, "setup.log"))
        for entity_id, info in setup.items():
            if entity_id.startswith("ds-"):
                print(f"    {entity_id}: {info['records']:,} records ({info['seconds']:.0f} s)", flush=True)
        open(os.path.join(store, "ready-v2"), "w").close()

    results: dict[str, dict] = {}

    def best(tool: str, runs: list[dict]) -> None:
        results[tool] = min(runs, key=lambda r: r["seconds"])

    stamp = time.strftime("%H%M%S")
    runs = []
    for i in range(args.repeat):
        model_id = f"ml-{stamp}-{i}"
        r = run_child(me("treadle-train", store, scratch, model_id), os.path.join(logs, f"train-{i}.log"))
        r["model_id"] = model_id
        r["rows_s"] = r["records"] * r["passes"] / r["seconds"]
        print(f"  treadle-train   {r['rows_s']:12,.0f} rows/s  {r['seconds']:7.1f} s  {r['passes']} passes  "
              f"peak {r['peak_rss'] / MB:6.0f} MB (after imports {r['baseline_rss'] / MB:.0f} MB)", flush=True)
        runs.append(r)
    best("treadle-train", runs)
    model = results["treadle-train"]

    runs = []
    for i in range(args.repeat):
        r = run_child(me("treadle-batch", store, scratch, model["model_id"], f"bp-{stamp}-{i}"),
                      os.path.join(logs, f"batch-{i}.log"))
        r["rows_s"] = r["records"] / r["seconds"]
        r["auc"] = output_auc(r["output"])
        print(f"  treadle-batch   {r['rows_s']:12,.0f} rows/s  {r['seconds']:7.1f} s  AUC {r['auc']:.4f}  "
              f"peak {r['peak_rss'] / MB:6.0f} MB", flush=True)
        runs.append(r)
    best("treadle-batch", runs)
    for r in runs:
        r["auc"] = results["treadle-batch"]["auc"]
    results["treadle-train"]["auc"] = results["treadle-batch"]["auc"]

    digest = hashlib.sha1(json.dumps([model["recipe"], rows]).encode()).hexdigest()[:10]
    feature_dir = os.path.join(scratch, f"features-{rows}-{digest}")
    if not os.path.exists(os.path.join(feature_dir, "done")):
        print("  exporting Treadle's features to VW text and CSR (not timed) ...", flush=True)
        r = run_child(me("export", store, scratch, model["model_key"], train_path, test_path, feature_dir),
                      os.path.join(logs, "export.log"))
        print(f"    {r['seconds']:.0f} s", flush=True)

    tools = args.tools.split(",")
    for tool, holdout in (("vw", True), ("vw-holdout-off", False)):
        if tool not in tools:
            continue
        runs = []
        for _ in range(args.repeat):
            r = run_vw(feature_dir, rows, holdout, logs)
            r["rows_s"] = r["records"] * r["passes"] / r["seconds"]
            print(f"  {tool:15s} {r['rows_s']:12,.0f} rows/s  {r['seconds']:7.1f} s  {r['passes']} passes  "
                  f"AUC {r['auc']:.4f}  peak {r['peak_rss'] / MB:6.0f} MB", flush=True)
            runs.append(r)
        best(tool, runs)

    for tool, estimator in (("sk-sgd", "sgd"), ("sk-logreg", "logreg")):
        if tool not in tools:
            continue
        runs = []
        for i in range(args.repeat if tool == "sk-sgd" else 1):  # lbfgs is slow and only a reference
            r = run_child(me("sklearn", estimator, feature_dir), os.path.join(logs, f"{tool}-{i}.log"))
            r["rows_s"] = r["records"] * r["passes"] / r["seconds"]
            print(f"  {tool:15s} {r['rows_s']:12,.0f} rows/s  {r['seconds']:7.1f} s  {r['passes']} passes  "
                  f"AUC {r['auc']:.4f}  peak {r['peak_rss'] / MB:6.0f} MB (matrix in memory; "
                  f"load {r['load_seconds']:.0f} s not counted)", flush=True)
            runs.append(r)
        best(tool, runs)

    if "sk-pipeline" in tools:
        runs = []
        for i in range(1):  # fitting it takes minutes; its predict_proba is steady
            r = run_child(me("sk-pipeline", train_path, test_path, json.dumps(recipe_bins(model["recipe"]))),
                          os.path.join(logs, f"sk-pipeline-{i}.log"))
            r["rows_s"] = r["records"] / r["seconds"]
            r["rows_s_with_read"] = r["records"] / (r["seconds"] + r["read_seconds"])
            print(f"  sk-pipeline     {r['rows_s']:12,.0f} rows/s predict_proba  "
                  f"({r['rows_s_with_read']:,.0f} with read_csv)  AUC {r['auc']:.4f}  "
                  f"peak {r['peak_rss'] / MB:6.0f} MB (fit {r['fit_seconds']:.0f} s)", flush=True)
            runs.append(r)
        best("sk-pipeline", runs)
    return results


def print_tables(all_results: dict[int, dict], test_rows: int) -> None:
    print()
    print("Training (rows/s = training rows x passes run / wall time; Treadle's time includes reading the CSV)")
    print(f"{'rows':>9} {'tool':16} {'rows/s':>12} {'seconds':>8} {'passes':>6} {'AUC':>7} {'peak MB':>8}"
          f"  {'treadle/tool rows/s':>19} {'AUC diff':>9}")
    for rows, res in all_results.items():
        t = res["treadle-train"]
        for tool in ("treadle-train", "vw", "vw-holdout-off", "sk-sgd", "sk-logreg"):
            r = res.get(tool)
            if not r:
                continue
            ratio = "" if tool == "treadle-train" else f"{t['rows_s'] / r['rows_s']:18.2f}x"
            diff = "" if tool == "treadle-train" else f"{t['auc'] - r['auc']:+9.4f}"
            print(f"{rows:>9,} {tool:16} {r['rows_s']:12,.0f} {r['seconds']:8.1f} {r['passes']:>6} "
                  f"{r['auc']:7.4f} {r['peak_rss'] / MB:8.0f}  {ratio:>19} {diff:>9}")
    print()
    print(f"Batch scoring of the {test_rows:,}-row test file")
    print(f"{'rows':>9} {'tool':34} {'rows/s':>12} {'AUC':>7} {'peak MB':>8}  {'treadle/tool':>12}")
    for rows, res in all_results.items():
        b, p = res["treadle-batch"], res.get("sk-pipeline")
        print(f"{rows:>9,} {'treadle BatchPrediction job (e2e)':34} {b['rows_s']:12,.0f} {b['auc']:7.4f} "
              f"{b['peak_rss'] / MB:8.0f}")
        if p:
            print(f"{rows:>9,} {'sklearn pipeline predict_proba':34} {p['rows_s']:12,.0f} {p['auc']:7.4f} "
                  f"{p['peak_rss'] / MB:8.0f}  {b['rows_s'] / p['rows_s']:11.2f}x")
            print(f"{rows:>9,} {'sklearn read_csv + predict_proba':34} {p['rows_s_with_read']:12,.0f} {'':7} "
                  f"{'':8}  {b['rows_s'] / p['rows_s_with_read']:11.2f}x")
    sizes = list(all_results)
    if len(sizes) > 1:
        first, last = all_results[sizes[0]]["treadle-train"], all_results[sizes[-1]]["treadle-train"]
        print()
        print(f"Treadle training peak memory: {first['peak_rss'] / MB:.0f} MB at {sizes[0]:,} rows, "
              f"{last['peak_rss'] / MB:.0f} MB at {sizes[-1]:,} rows "
              f"({last['peak_rss'] / first['peak_rss']:.2f}x for {sizes[-1] / sizes[0]:.0f}x the rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,4000000", help="training rows, comma separated")
    parser.add_argument("--test-rows", type=int, default=500_000, help="rows of the held-out test file")
    parser.add_argument("--quick", action="store_true", help="200k training rows and 100k test rows")
    parser.add_argument("--dir", default="/tmp/treadle-bench-train", help="scratch directory (files are reused)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per timed measurement, the fastest kept (sk-logreg and sk-pipeline run once)")
    parser.add_argument("--tools", default="vw,vw-holdout-off,sk-sgd,sk-logreg,sk-pipeline",
                        help="comparison tools to run besides Treadle")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    sizes = [200_000] if args.quick else [int(float(s)) for s in args.rows.split(",")]
    test_rows = 100_000 if args.quick else args.test_rows
    os.makedirs(args.dir, exist_ok=True)
    test_path = os.path.join(os.path.realpath(args.dir), f"test_{test_rows}.csv")
    ensure_file(test_path, test_rows, seed=99)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; best of {args.repeat} run(s) per measurement")
    all_results = {}
    for rows in sizes:
        print(f"{rows:,} training rows", flush=True)
        all_results[rows] = bench_size(args, rows, test_path)
    print_tables(all_results, test_rows)


if __name__ == "__main__":
    main()
