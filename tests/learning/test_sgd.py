import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

from treadle.learning import SGDConfig, SGDTrainer, build_model
from treadle.learning.features import CsrBatch
from treadle.learning.sgd import DEFAULT_RATES

from .synth import compact, fit_pipeline, margins, table, train


@pytest.fixture(scope="module")
def binary():
    cols, y = table(20000, 1)
    tcols, ty = table(10000, 2)
    pipe = fit_pipeline(cols)
    return pipe, pipe.transform(cols), y, pipe.transform(tcols), ty


def test_binary_auc_matches_converged_logistic_regression(binary):
    pipe, X, y, Xt, yt = binary
    res = train(SGDTrainer(SGDConfig("BINARY", max_passes=10), X.n_features), X, y)
    auc = roc_auc_score(yt, margins(res, Xt)[:, 0])
    A, At = compact(X, Xt)
    ref = LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit(A, y)
    ref_auc = roc_auc_score(yt, ref.decision_function(At))
    assert auc >= ref_auc - 0.005, (auc, ref_auc)
    assert res.rate in DEFAULT_RATES and 1 <= res.passes <= 10


def test_multiclass_macro_f1_matches_multinomial_fit():
    cols, y = table(20000, 3, "multi")
    tcols, ty = table(8000, 4, "multi")
    pipe = fit_pipeline(cols, target_type="CATEGORICAL")
    X, Xt = pipe.transform(cols), pipe.transform(tcols)
    res = train(SGDTrainer(SGDConfig("MULTICLASS", n_classes=2, max_passes=10), X.n_features), X, y)
    assert res.weights.shape[1] == 4  # grew from the initial capacity
    f1 = f1_score(ty, margins(res, Xt).argmax(1), average="macro")
    A, At = compact(X, Xt)
    ref = LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit(A, y)
    ref_f1 = f1_score(ty, ref.predict(At), average="macro")
    assert f1 >= ref_f1 - 0.01, (f1, ref_f1)


def test_regression_rmse_matches_ridge():
    cols, y = table(20000, 5, "regression")
    tcols, ty = table(8000, 6, "regression")
    pipe = fit_pipeline(cols, target_type="NUMERIC")
    X, Xt = pipe.transform(cols), pipe.transform(tcols)
    res = train(SGDTrainer(SGDConfig("REGRESSION", max_passes=10), X.n_features), X, y)
    rmse = mean_squared_error(ty, margins(res, Xt)[:, 0]) ** 0.5
    A, At = compact(X, Xt)
    ref_rmse = mean_squared_error(ty, Ridge(alpha=1e-3).fit(A, y).predict(At)) ** 0.5
    assert rmse <= ref_rmse * 1.02, (rmse, ref_rmse)


def test_l1_produces_exact_zeros_and_more_with_more_penalty(binary):
    _, X, y, Xt, yt = binary
    nonzero = []
    for l1 in (0.0, 3e-3, 3e-2):
        res = train(SGDTrainer(SGDConfig("BINARY", l1=l1, max_passes=3), X.n_features), X, y)
        nonzero.append(int(np.count_nonzero(res.weights)))
        if l1 == 3e-3:
            assert roc_auc_score(yt, margins(res, Xt)[:, 0]) > 0.8
    assert nonzero[0] > nonzero[1] > nonzero[2] > 0, nonzero


def test_l2_shrinks_weights(binary):
    _, X, y, _, _ = binary
    norms = [np.linalg.norm(train(SGDTrainer(SGDConfig("BINARY", l2=l2, max_passes=2, learning_rates=(0.3,)),
                                             X.n_features), X, y).weights) for l2 in (0.0, 1e-2)]
    assert norms[1] < 0.8 * norms[0]


def test_row_weight_acts_like_duplicated_rows(binary):
    _, X, y, Xt, _ = binary
    n = 6000
    Xs = next(iter(__import__("tests.learning.synth", fromlist=["batches"]).batches(X, n)))[2]
    ys = y[:n]
    w = np.where(np.arange(n) % 3 == 0, 3.0, 1.0)
    # duplicate each weight-3 row in place, so both see the same order
    rows = np.repeat(np.arange(n), w.astype(int))
    from treadle.learning.features import CsrBatch
    S = Xs.to_scipy()[rows]
    Xd = CsrBatch(S.indptr.astype(np.int64), S.indices.astype(np.int32), S.data, X.n_features)
    cfg = SGDConfig("BINARY", max_passes=20, holdout_period=0, tolerance=0.0, learning_rates=(0.3,), l2=1e-4)
    weighted = margins(train(SGDTrainer(cfg, X.n_features), Xs, ys, w), Xt)[:, 0]
    duplicated = margins(train(SGDTrainer(cfg, X.n_features), Xd, ys[rows]), Xt)[:, 0]
    plain = margins(train(SGDTrainer(cfg, X.n_features), Xs, ys), Xt)[:, 0]
    gap = np.abs(weighted - duplicated).mean()
    assert gap < 0.25 * np.abs(plain - duplicated).mean(), gap


def test_early_stop_on_easy_data():
    rng = np.random.default_rng(0)
    from treadle.learning.features import CsrBatch
    n = 5000
    cols = rng.integers(0, 64, (n, 3)) + np.array([0, 64, 128])  # disjoint slots
    y = ((cols[:, 0] < 32) ^ (rng.random(n) < 0.1)).astype(float)  # 10 % label noise: the loss plateaus
    X = CsrBatch(np.arange(0, 3 * n + 1, 3, dtype=np.int64), cols.ravel().astype(np.int32),
                 np.ones(3 * n, np.float32), 1 << 10)
    trainer = SGDTrainer(SGDConfig("BINARY", max_passes=50), X.n_features)
    res = train(trainer, X, y)
    assert res.passes < 50
    assert trainer.pass_reports[-1].converged
    assert roc_auc_score(cols[:, 0] < 32, margins(res, X)[:, 0]) > 0.99


def test_size_cap_prunes_and_keeps_quality(binary):
    pipe, X, y, Xt, yt = binary
    res = train(SGDTrainer(SGDConfig("BINARY", max_passes=5), X.n_features), X, y)
    full, rep_full = build_model(res, pipe, max_size_bytes=10 ** 7)
    assert rep_full.pruned == 0
    cap = full.size_in_bytes - 8 * (rep_full.nonzero // 2)
    small, rep = build_model(res, pipe, max_size_bytes=cap)
    assert small.size_in_bytes <= cap == rep.max_size_bytes and rep.size_bytes == small.size_in_bytes
    assert rep.pruned >= rep_full.nonzero // 2 - 2 and rep.kept + rep.pruned == rep.nonzero
    assert small.summary["pruning"]["pruned"] == rep.pruned
    auc_full = roc_auc_score(yt, full.score_batch(Xt))
    auc_small = roc_auc_score(yt, small.score_batch(Xt))
    assert auc_small > auc_full - 0.01


def test_progressive_metrics_and_checkpoints(binary):
    _, X, y, _, _ = binary
    trainer = SGDTrainer(SGDConfig("BINARY", max_passes=2), X.n_features)
    res = train(trainer, X, y)
    marks = [c[0].records for c in res.checkpoints]
    assert marks[:3] == [64, 128, 256] and all(b == 2 * a for a, b in zip(marks, marks[1:]))
    report = res.pass_reports[0]
    assert report.records + report.holdout_records == X.n_rows and report.holdout_records == X.n_rows // 10
    m = report.learners[res.learner]
    assert 0.7 < m.auc < 1 and 0 < m.loss < 0.7 and m.holdout_loss is not None
    assert m.features.minimum >= 5 and m.features.updates == X.n_rows


def test_rejects_bad_input(binary):
    _, X, y, _, _ = binary
    trainer = SGDTrainer(SGDConfig("BINARY"), X.n_features)
    with pytest.raises(ValueError):
        trainer.partial_fit(X, y[:-1])
    with pytest.raises(ValueError):
        trainer.partial_fit(X, y, -np.ones(len(y)))
    with pytest.raises(ValueError):
        SGDConfig("RANKING")


def test_memory_budget_folds_columns(binary):
    _, X, y, Xt, yt = binary
    trainer = SGDTrainer(SGDConfig("BINARY", memory_budget=(1 << 12) * 48, max_passes=2), X.n_features)
    assert trainer.weight_bits == 12
    res = train(trainer, X, y)
    assert res.weights.shape[0] == 1 << 12
    assert roc_auc_score(yt, margins(res, Xt)[:, 0]) > 0.8


def test_averaging_brings_weights_closer_to_the_optimum_across_shuffles(binary):
    """Tail averaging exists to remove the noise of the last steps: over
    several record orders the averaged weights sit nearer the converged
    optimum than the last iterates do, and the model records it."""
    _, X, y, _, _ = binary
    A, _ = compact(X, X)
    optimum = LogisticRegression(C=1e4, max_iter=5000, tol=1e-10).fit(A, y)
    used = np.unique(X.indices)
    target = np.concatenate([optimum.coef_[0], optimum.intercept_])
    distance = {True: [], False: []}
    for seed in range(4):
        order = np.random.default_rng(seed).permutation(X.n_rows)
        Xs = X.to_scipy()[order]
        batch = CsrBatch(Xs.indptr.astype(np.int64), Xs.indices, Xs.data, X.n_features)
        for average in (True, False):
            cfg = SGDConfig("BINARY", max_passes=4, tolerance=0.0, learning_rates=(1.0,), average=average)
            res = train(SGDTrainer(cfg, X.n_features), batch, y[order])
            assert res.averaged == (32 if average else 0)
            got = np.concatenate([res.weights[used, 0], res.bias])
            distance[average].append(np.linalg.norm(got - target))
    assert np.mean(distance[True]) < 0.85 * np.mean(distance[False]), distance


def test_l1_models_are_not_averaged(binary):
    _, X, y, _, _ = binary
    res = train(SGDTrainer(SGDConfig("BINARY", l1=3e-3, max_passes=3), X.n_features), X, y)
    assert res.averaged == 0
