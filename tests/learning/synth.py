"""Synthetic tables for the learner tests, featurised by the real pipeline."""
import json

import numpy as np
import scipy.sparse as sp

from treadle.data.schema import DataSchema
from treadle.learning import FeaturePipeline, PipelineOptions, parse_recipe
from treadle.learning.features import CsrBatch

INPUTS = (("n1", "NUMERIC"), ("n2", "NUMERIC"), ("n3", "NUMERIC"), ("c1", "CATEGORICAL"),
          ("c2", "CATEGORICAL"), ("flag", "BINARY"), ("words", "TEXT"))
RECIPE = json.dumps({"outputs": ["ALL_NUMERIC", "ALL_CATEGORICAL", "ALL_BINARY", "ALL_TEXT"]})
_COEF = np.random.default_rng(99)
C1 = _COEF.normal(0, 1.0, 30)
C2 = _COEF.normal(0, 0.7, 12)
WORDS = [f"w{i}" for i in range(40)]
WORD_W = _COEF.normal(0, 0.4, 40)


def table(n, seed, task="binary", classes=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    c1 = rng.integers(0, 30, n)
    c2 = rng.integers(0, 12, n)
    flag = rng.random(n) < 0.3
    nw = rng.integers(0, 4, n)
    toks = [rng.integers(0, 40, k) for k in nw]
    z = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.3 * x[:, 2] + C1[c1] + C2[c2] + 0.5 * flag
    z += np.array([WORD_W[t].sum() for t in toks])
    missing = rng.random(n) < 0.05
    cols = {
        "n1": [("" if m else f"{v:.6g}") for v, m in zip(x[:, 0], missing)],
        "n2": [f"{v:.6g}" for v in x[:, 1]],
        "n3": [f"{v:.6g}" for v in x[:, 2]],
        "c1": [f"a{v}" for v in c1],
        "c2": [f"b{v}" for v in c2],
        "flag": ["1" if f else "0" for f in flag],
        "words": [" ".join(WORDS[t] for t in ts) for ts in toks],
    }
    if task == "binary":
        y = (rng.random(n) < 1 / (1 + np.exp(-(z - 0.4)))).astype(np.float64)
    elif task == "multi":
        w = np.random.default_rng(7).normal(size=(classes, 2))
        logits = np.stack([2 * z * w[k, 0] + 1.5 * x[:, 2] * w[k, 1] for k in range(classes)], 1)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    else:
        y = 1000.0 + 250.0 * z + rng.normal(0, 100.0, n)
    return cols, y


def schema(target_type="BINARY"):
    return DataSchema(INPUTS + (("y", target_type),), target="y")


def fit_pipeline(cols, hash_bits=14, target_type="BINARY"):
    recipe = parse_recipe(RECIPE, schema(target_type))
    return FeaturePipeline(recipe, PipelineOptions(hash_bits=hash_bits)).fit([cols])


def batches(X: CsrBatch, size):
    for a in range(0, X.n_rows, size):
        b = min(X.n_rows, a + size)
        p0, p1 = X.indptr[a], X.indptr[b]
        yield a, b, CsrBatch(X.indptr[a:b + 1] - p0, X.indices[p0:p1], X.data[p0:p1], X.n_features)


def train(trainer, X, y, w=None, size=4096):
    for _ in range(trainer.config.max_passes):
        for a, b, part in batches(X, size):
            trainer.partial_fit(part, y[a:b], None if w is None else w[a:b])
        if not trainer.end_pass():
            break
    return trainer.finish()


def compact(*mats):
    """The same matrices restricted to the columns any of them uses, so
    scikit-learn solves a small problem."""
    scs = [m.to_scipy().copy() for m in mats]  # sum_duplicates works in place
    for s in scs:
        s.sum_duplicates()
    used = np.unique(np.concatenate([s.indices for s in scs]))
    return [s[:, used] for s in scs]


def margins(trained, X):
    W = trained.weights
    S = X.to_scipy()
    S = sp.csr_matrix((S.data, S.indices & (W.shape[0] - 1), S.indptr), shape=(S.shape[0], W.shape[0]))
    return S @ W.astype(np.float64) + trained.bias


def drifting(n, seed, task="binary", numeric=12, levels=20, classes=10):
    """Records sorted by time, like a marketing campaign's: ``numeric``
    standardised columns whose means move from -1 to 1 over the rows, three
    slow 'economic' indicators that are smooth functions of the time and
    carry much of the target, a one-hot categorical column whose level
    frequencies shift with the time, and an intercept that drifts.
    Returns (CsrBatch, y)."""
    rng = np.random.default_rng(seed)
    time = np.arange(n) / n
    x = rng.normal(size=(n, numeric)) + np.outer(2 * time - 1, np.linspace(-1, 1, numeric))
    econ = np.stack([np.sin(6 * time), np.cos(4 * time), 2 * time - 1], 1) + rng.normal(0, 0.05, (n, 3))
    p_level = np.exp(np.outer(2 * time - 1, np.linspace(-1.5, 1.5, levels)))
    level = (p_level.cumsum(1) / p_level.sum(1, keepdims=True) > rng.random((n, 1))).argmax(1)
    coef = np.random.default_rng(1000).normal(0, 0.5, numeric)
    effect = np.random.default_rng(2000).normal(0, 0.8, levels)
    z = x @ coef + econ @ np.array([1.5, -1.0, 1.2]) + effect[level] + 0.8 * time - 1.0
    if task == "binary":
        y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    elif task == "regression":
        y = 50.0 + 20.0 * z + rng.normal(0, 15.0, n)
    else:
        w = np.random.default_rng(3000).normal(size=(classes, 2))
        logits = np.outer(z, w[:, 0]) + np.outer(x[:, 0], w[:, 1])
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    dense = numeric + 3
    indices = np.concatenate([np.tile(np.arange(dense), (n, 1)), (dense + level)[:, None]], 1)
    data = np.concatenate([x, econ, np.ones((n, 1))], 1)
    width = dense + 1
    X = CsrBatch(np.arange(0, n * width + 1, width, dtype=np.int64), indices.ravel().astype(np.int32),
                 data.ravel().astype(np.float32), 1 << 8)
    return X, y


def campaign(n, seed, task="binary"):
    """Records sorted by time like a bank's phone-marketing campaign over 30
    months (the public bank-marketing data's shape): a long busy first
    stretch, then fewer calls a month; five correlated 'economic' indicators
    that are constant within a month and carry the target through a contrast
    of two of them (ill-conditioned: within the first 70 % of the rows they
    move almost together with the month-of-year levels); a month-of-year
    one-hot whose levels occur only in some stretches; attributes whose
    shares change with the time (contact type, contacted before) and a rare
    strong one (a previous success); a positive rate rising from about 5 %
    to 40 %.  Returns (CsrBatch, y); binary only."""
    rng = np.random.default_rng(seed)
    fixed = np.random.default_rng(4000)
    months = 30
    share = np.r_[np.full(7, 8.0), np.full(12, 2.0), np.full(11, 1.0)]
    month = np.minimum(np.searchsorted(np.cumsum(share / share.sum()), (np.arange(n) + 0.5) / n), months - 1)
    t = np.arange(months) / (months - 1)
    macro = np.where(t < 0.25, 1.0, np.cos(np.pi * np.minimum(1, (t - 0.25) / 0.5))) + fixed.normal(0, 0.15, months)
    econ = (np.outer(macro, [1.0, 0.9, 0.6, 1.0, 0.95]) + fixed.normal(0, 0.1, (months, 5)))[month]
    econ += rng.normal(0, 0.01, (n, 5))
    econ = (econ - econ.mean(0)) / econ.std(0)
    moy = month % 12
    age = rng.normal(0, 1, n)
    job = rng.integers(0, 12, n)
    contact = rng.random(n) < np.where(month < 10, 0.3, 0.8)
    previous = rng.random(n) < np.minimum(0.5, 0.02 + 0.4 * t[month])
    success = previous & (rng.random(n) < 0.35)
    calls = np.log1p(rng.geometric(0.4, n))
    job_w, moy_w = fixed.normal(0, 0.4, 12), fixed.normal(0, 0.5, 12)
    z = (-2.6 + econ @ np.array([-1.5, 0.0, 1.5, 0.0, -0.5]) + moy_w[moy] + job_w[job] + 0.3 * age ** 2 - 0.2 * age
         + 0.6 * contact + 2.2 * success - 0.3 * previous - 0.4 * calls)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    ones = np.ones((n, 1))
    outcome = np.where(success, 2, np.where(previous, 1, 0))  # none, failure, success
    indices = np.concatenate([np.tile(np.arange(5), (n, 1)), (5 + moy)[:, None], (17 + job)[:, None],
                              np.tile(np.arange(29, 34), (n, 1)), (34 + outcome)[:, None]], 1)
    data = np.concatenate([econ, ones, ones, age[:, None], (age ** 2 - 1)[:, None], contact[:, None] * 1.0,
                           (calls - calls.mean())[:, None], ones, ones], 1)
    width = indices.shape[1]
    X = CsrBatch(np.arange(0, n * width + 1, width, dtype=np.int64), indices.ravel().astype(np.int32),
                 data.ravel().astype(np.float32), 1 << 8)
    return X, y


def rows(X: CsrBatch, a, b):
    """Rows a..b of X."""
    p0, p1 = X.indptr[a], X.indptr[b]
    return CsrBatch(X.indptr[a:b + 1] - p0, X.indices[p0:p1], X.data[p0:p1], X.n_features)
