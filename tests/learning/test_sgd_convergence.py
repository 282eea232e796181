"""Training reaches the regularised optimum whatever the record order
(docs/behaviour.md, "Training: convergence"): references are scikit-learn's
converged fits of the same objective on the same features.

SGD's penalty per record of weight c is c * (l1 |w| + l2/2 w^2), so over n
unit-weight records the objective is sum(loss) + n*l2/2 |w|^2 (+ n*l1 |w|_1):
scikit-learn's LogisticRegression (C * sum(loss) + |w|^2 / 2) matches with
C = 1 / (l2 * n), and its Ridge (sum of squared errors + alpha |w|^2, against
the learner's halved squared loss) with alpha = l2 * n.

``campaign()`` is the harder case: time-ordered records whose target runs
through a weakly determined contrast of month-level indicators that matters
on the later 30 %.  Plain SGD in record order (early stopping after a few
passes, tail-averaged) was about a hundredth of AUC below the reference
there with the marketing sample's settings; on ``drifting()`` it was within
a few ten-thousandths, so only ``campaign()`` shows the refinement's effect.
L-BFGS needed most of 100 passes on it and did not get within 0.005 with L1
(OWL-QN) or in five passes; the Newton refinement of small models does.
"""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

from treadle.learning import SGDConfig, SGDTrainer, refinement
from treadle.learning.features import CsrBatch
from treadle.learning.sgd import merge_contributions

from .synth import campaign, compact, drifting, margins, rows, train

N = 10000
CUT = 7000  # a sequential 70/30 split


def split(task):
    X, y = drifting(N, 11, task)
    return rows(X, 0, CUT), y[:CUT], rows(X, CUT, N), y[CUT:]


def shuffled(X, y, seed=5):
    order = np.random.default_rng(seed).permutation(X.n_rows)
    S = X.to_scipy()[order]
    return CsrBatch(S.indptr.astype(np.int64), S.indices.astype(np.int32), S.data, X.n_features), y[order]


def logistic_reference(A, y, l1=0.0, l2=0.0):
    n = A.shape[0]
    if l1:  # liblinear penalises the intercept: a large intercept scaling makes that negligible
        return LogisticRegression(C=1 / (l1 * n), l1_ratio=1.0, solver="liblinear", intercept_scaling=100,
                                  max_iter=10000, tol=1e-10).fit(A, y)
    if l2:  # lbfgs stops short on campaign() with l2=1e-6 (3e-5 above the optimum, 0.003 AUC off)
        return LogisticRegression(C=1 / (l2 * n), solver="newton-cg", max_iter=10000, tol=1e-10).fit(A, y)
    return LogisticRegression(C=np.inf, max_iter=10000, tol=1e-10).fit(A, y)


def check_auc(data, params, order):
    """Test AUC within 0.005 of the converged reference's; the training result."""
    X, y, Xt, yt = data
    if order == "shuffled":  # sgd.shuffleType=auto
        X, y = shuffled(X, y)
    res = train(SGDTrainer(SGDConfig("BINARY", **params), X.n_features), X, y)
    auc = roc_auc_score(yt, margins(res, Xt)[:, 0])
    A, At = compact(X, Xt)
    ref = logistic_reference(A, y, params.get("l1", 0.0), params.get("l2", 0.0))
    ref_auc = roc_auc_score(yt, ref.decision_function(At))
    assert auc >= ref_auc - 0.005, (auc, ref_auc, res.passes, res.refined)
    return res


@pytest.fixture(scope="module")
def binary():
    return split("binary")


# Every combination of the training parameters, in record order and shuffled.
EVERY_SETTING = pytest.mark.parametrize("params", [
    dict(max_passes=100, l2=1e-4),  # the targeted-marketing sample's settings
    dict(),  # the API's defaults: 10 passes, no regularisation
    dict(max_passes=10, l2=1e-6),
    dict(max_passes=100, l1=1e-4),
    dict(max_passes=20, l1=1e-3),
    dict(max_passes=5, l2=1e-4),
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "defaults")
EVERY_ORDER = pytest.mark.parametrize("order", ["time", "shuffled"])


@EVERY_SETTING
@EVERY_ORDER
def test_binary_auc_matches_the_converged_model_in_any_order(binary, params, order):
    res = check_auc(binary, params, order)
    assert res.passes <= params.get("max_passes", 10)


CAMPAIGN_N = 20000
CAMPAIGN_CUT = 14000


@pytest.fixture(scope="module")
def marketing():
    X, y = campaign(CAMPAIGN_N, 11)
    return rows(X, 0, CAMPAIGN_CUT), y[:CAMPAIGN_CUT], rows(X, CAMPAIGN_CUT, CAMPAIGN_N), y[CAMPAIGN_CUT:]


@EVERY_SETTING
@EVERY_ORDER
def test_campaign_auc_matches_the_converged_model_in_any_order(marketing, params, order):
    check_auc(marketing, params, order)


@pytest.mark.parametrize("params", [dict(max_passes=100, l2=1e-4), dict(max_passes=20, l1=1e-3)],
                         ids=["l2", "l1"])
def test_newton_refinement_converges_in_a_few_passes(marketing, params):
    X, y, _, _ = marketing
    trainer = SGDTrainer(SGDConfig("BINARY", **params), X.n_features)
    res = train(trainer, X, y)
    assert isinstance(trainer.refiner, refinement.NewtonRefiner)
    assert res.pass_reports[-1].converged and res.refined <= 8, res.refined
    if "l1" in params:  # proximal Newton keeps exact zeros
        assert 0 < np.count_nonzero(res.weights) < np.count_nonzero(trainer.seen)


@pytest.mark.parametrize("params", [dict(max_passes=100, l2=1e-4), dict(max_passes=100, l1=1e-4)],
                         ids=["l2", "l1"])
def test_larger_models_refine_by_lbfgs(binary, params, monkeypatch):
    monkeypatch.setattr(refinement, "NEWTON_MAX_DIM", 0)
    X, y, _, _ = binary
    trainer = SGDTrainer(SGDConfig("BINARY", **params), X.n_features)
    check_auc(binary, params, "time")
    assert type(train(trainer, X, y) and trainer.refiner) is refinement.Refiner


def test_regression_rmse_matches_ridge_on_time_ordered_data():
    X, y, Xt, yt = split("regression")
    l2 = 1e-4
    res = train(SGDTrainer(SGDConfig("REGRESSION", max_passes=100, l2=l2), X.n_features), X, y)
    rmse = mean_squared_error(yt, margins(res, Xt)[:, 0]) ** 0.5
    A, At = compact(X, Xt)
    ref_rmse = mean_squared_error(yt, Ridge(alpha=l2 * CUT).fit(A, y).predict(At)) ** 0.5
    assert rmse <= ref_rmse * 1.02, (rmse, ref_rmse)


def digits_like(n=1800, classes=10, features=64, seed=3):
    """Small dense numeric data shaped like scikit-learn's digits: class
    prototypes on a 0..16 scale, noisy copies, normalised to [0, 1]."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 17, (classes, features)).astype(float)
    y = rng.integers(0, classes, n)
    values = np.clip(protos[y] + rng.normal(0, 6.0, (n, features)), 0, 16) / 16
    X = CsrBatch(np.arange(0, n * features + 1, features, dtype=np.int64),
                 np.tile(np.arange(features, dtype=np.int32), n), values.ravel().astype(np.float32), 1 << 7)
    return X, y


def test_multiclass_macro_f1_matches_multinomial_logistic_regression():
    X, y = digits_like()
    cut = 1260
    Xtr, ytr = shuffled(rows(X, 0, cut), y[:cut])
    Xte, yte = rows(X, cut, X.n_rows), y[cut:]
    l2 = 1e-4
    res = train(SGDTrainer(SGDConfig("MULTICLASS", n_classes=10, max_passes=50, l2=l2), X.n_features), Xtr, ytr)
    f1 = f1_score(yte, margins(res, Xte).argmax(1), average="macro")
    A, At = compact(Xtr, Xte)
    ref = LogisticRegression(C=1 / (l2 * cut), max_iter=10000, tol=1e-10).fit(A, ytr)
    ref_f1 = f1_score(yte, ref.predict(At), average="macro")
    assert f1 >= ref_f1 - 0.01, (f1, ref_f1)


def test_refinement_reports_its_passes_and_never_keeps_a_worse_point(binary):
    X, y, _, _ = binary
    res = train(SGDTrainer(SGDConfig("BINARY", max_passes=100, l2=1e-4), X.n_features), X, y)
    refining = [r for r in res.pass_reports if r.objective is not None]
    assert res.refined == len(refining) > 1 and res.passes < 100
    assert refining[-1].converged and len(refining[0].learners) == 1
    assert min(r.objective for r in refining) <= refining[0].objective
    # the holdout is only scored while refining, as in the SGD passes
    assert res.pass_reports[-1].records == CUT - CUT // 10 and res.pass_reports[-1].holdout_records == CUT // 10


def test_refinement_stops_after_one_pass_where_sgd_is_close_enough(monkeypatch):
    """The first refinement pass only measures the SGD model's gap; below
    SKIP_TOLERANCE nothing more is spent."""
    rng = np.random.default_rng(0)
    n = 5000
    cols = rng.integers(0, 64, (n, 3)) + np.array([0, 64, 128])
    y = ((cols[:, 0] < 32) ^ (rng.random(n) < 0.1)).astype(float)
    X = CsrBatch(np.arange(0, 3 * n + 1, 3, dtype=np.int64), cols.ravel().astype(np.int32),
                 np.ones(3 * n, np.float32), 1 << 10)
    trainer = SGDTrainer(SGDConfig("BINARY", max_passes=50, l2=1e-3), X.n_features)
    monkeypatch.setattr(refinement, "SKIP_TOLERANCE", 10 * train(trainer, X, y).pass_reports and trainer.refiner.first_gap)
    trainer = SGDTrainer(SGDConfig("BINARY", max_passes=50, l2=1e-3), X.n_features)
    res = train(trainer, X, y)
    assert res.refined == 1 and res.pass_reports[-1].converged


def train_in_shards(config, X, y, shards=2, size=1000):
    """Every pass: each shard's trainer reads its share of the chunks, then
    all combine the contributions and close the pass alike: the first shard
    combines them all, the others their merge, as the job sends it; all
    must end with the same model."""
    trainers = [SGDTrainer(config, X.n_features) for _ in range(shards)]
    chunks = [(a, min(a + size, X.n_rows)) for a in range(0, X.n_rows, size)]
    while True:
        for s, trainer in enumerate(trainers):
            for a, b in chunks[s::shards]:
                trainer.partial_fit(rows(X, a, b), y[a:b])
        contributions = [t.contribution() for t in trainers]
        merged = merge_contributions(contributions)
        trainers[0].combine(contributions)
        for t in trainers[1:]:
            t.combine([merged])
        more = {t.end_pass() for t in trainers}
        assert len(more) == 1
        if not more.pop():
            break
    results = [t.finish() for t in trainers]
    for r in results[1:]:
        assert np.array_equal(r.weights, results[0].weights) and np.array_equal(r.bias, results[0].bias)
    return results[0]


@pytest.mark.parametrize("params", [dict(max_passes=30, l2=1e-4), dict(max_passes=30, l1=1e-4), dict()])
def test_two_shards_combined_each_pass_match_one_process(binary, params):
    X, y, Xt, yt = binary
    config = SGDConfig("BINARY", **params)
    single = roc_auc_score(yt, margins(train(SGDTrainer(config, X.n_features), X, y), Xt)[:, 0])
    res = train_in_shards(config, X, y)
    sharded = roc_auc_score(yt, margins(res, Xt)[:, 0])
    assert abs(sharded - single) <= 0.005, (sharded, single)
    assert res.pass_reports[0].records + res.pass_reports[0].holdout_records == CUT


def test_shards_combine_multiclass_and_regression():
    X, y = digits_like()
    cut = 1260
    Xtr, ytr = shuffled(rows(X, 0, cut), y[:cut])
    Xte, yte = rows(X, cut, X.n_rows), y[cut:]
    config = SGDConfig("MULTICLASS", n_classes=2, max_passes=30, l2=1e-4)
    single = f1_score(yte, margins(train(SGDTrainer(config, X.n_features), Xtr, ytr), Xte).argmax(1), average="macro")
    sharded = f1_score(yte, margins(train_in_shards(config, Xtr, ytr, size=200), Xte).argmax(1), average="macro")
    assert sharded >= single - 0.01, (sharded, single)

    X, y, Xt, yt = split("regression")
    config = SGDConfig("REGRESSION", max_passes=30, l2=1e-4, target_mean=float(y.mean()), target_std=float(y.std()))
    single = mean_squared_error(yt, margins(train(SGDTrainer(config, X.n_features), X, y), Xt)[:, 0]) ** 0.5
    sharded = mean_squared_error(yt, margins(train_in_shards(config, X, y), Xt)[:, 0]) ** 0.5
    assert sharded <= single * 1.02, (sharded, single)


def test_shards_must_standardise_the_target_alike():
    X, y, _, _ = split("regression")
    trainers = [SGDTrainer(SGDConfig("REGRESSION", max_passes=3), X.n_features) for _ in range(2)]
    trainers[0].partial_fit(rows(X, 0, 100), y[:100])
    trainers[1].partial_fit(rows(X, 100, 200), y[100:200])
    with pytest.raises(ValueError):
        trainers[0].combine([t.contribution() for t in trainers])
