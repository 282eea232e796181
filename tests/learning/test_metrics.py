import math
from itertools import pairwise

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, mean_squared_error, roc_auc_score, roc_curve

from treadle.learning import (MODEL_TYPES, BinaryScores, ConfusionMatrix, RegressionErrors, baseline_macro_f1,
                              java_double, metrics, threshold_metrics)


def scores_with_ties(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = np.clip(rng.normal(0.5 + 0.2 * y, 0.2), 0, 1)
    s[: n // 4] = np.round(s[: n // 4], 2)  # many exact ties
    w = rng.uniform(0.1, 3.0, n)
    return s.astype(np.float32), y, w


def test_auc_exact_with_weights_ties_and_merge():
    s, y, w = scores_with_ties(20000, 0)
    a, b = BinaryScores(), BinaryScores()
    a.update(s[:7000], y[:7000], w[:7000])
    b.update(s[7000:], y[7000:], w[7000:])
    merged = a.merge(b)
    assert merged.auc() == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    unweighted = BinaryScores()
    unweighted.update(s, y)
    assert unweighted.auc() == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert len(merged.scores) == len(np.unique(s))


def test_auc_survives_storage_and_undefined_when_one_class():
    s, y, w = scores_with_ties(1000, 1)
    acc = BinaryScores()
    acc.update(s, y, w)
    again = BinaryScores.from_dict(acc.to_dict())
    assert again.auc() == acc.auc()
    only = BinaryScores()
    only.update(s, np.ones_like(y))
    assert math.isnan(only.auc())


def test_roc_points_match_sklearn():
    s, y, w = scores_with_ties(3000, 2)
    acc = BinaryScores()
    acc.update(s, y, w)
    fpr, tpr, thr = acc.roc()
    ref_fpr, ref_tpr, ref_thr = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    np.testing.assert_array_equal(thr[1:], ref_thr[1:])


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.77, float(np.float32(0.61)), 1.0, 2.0])
def test_threshold_metrics_equal_direct_counts(threshold):
    s, y, w = scores_with_ties(5000, 3)
    acc = BinaryScores()
    acc.update(s, y, w)
    m = threshold_metrics(acc.to_dict(), threshold)
    pred = s.astype(np.float64) >= threshold
    tp, fp = w[pred & y].sum(), w[pred & ~y].sum()
    tn, fn = w[~pred & ~y].sum(), w[~pred & y].sum()
    assert (m.tp, m.fp, m.tn, m.fn) == pytest.approx((tp, fp, tn, fn), rel=1e-12, abs=1e-9)
    assert m.accuracy == pytest.approx((tp + tn) / w.sum())
    if tp + fp:
        assert m.precision == pytest.approx(tp / (tp + fp))
    assert m.recall == pytest.approx(tp / (tp + fn))
    assert m.false_positive_rate == pytest.approx(fp / (fp + tn))


def test_coarsened_summary_exact_at_kept_thresholds():
    s, y, w = scores_with_ties(5000, 4)
    acc = BinaryScores()
    acc.update(s, y, w)
    small = BinaryScores.from_dict(acc.to_dict()).coarsen(64)
    assert len(small.scores) <= 64
    for t in small.scores:
        got, want = threshold_metrics(small, float(t)), threshold_metrics(acc, float(t))
        assert (got.tp, got.fp) == pytest.approx((want.tp, want.fp))
    assert small.auc() == pytest.approx(acc.auc(), abs=0.02)


def test_histograms_per_true_class():
    s, y, w = scores_with_ties(2000, 5)
    acc = BinaryScores()
    acc.update(s, y, w)
    h = acc.histograms(10)
    assert sum(h["positives"]) == pytest.approx(w[y].sum())
    assert sum(h["negatives"]) == pytest.approx(w[~y].sum())
    k = np.minimum((s.astype(np.float64) * 10).astype(int), 9)
    assert h["positives"][3] == pytest.approx(w[y & (k == 3)].sum())


# ---------------------------------------------------- BinaryScores on disk
def spill_small(monkeypatch):
    """A cap of 64 distinct scores in 4 score ranges: thousands of records
    go to disk, and most ranges outgrow the cap and are dealt out again."""
    monkeypatch.setattr(metrics, "MAX_RESIDENT_SCORES", 64)
    monkeypatch.setattr(metrics, "_BUCKETS", 4)
    monkeypatch.setattr(metrics, "_READ_BLOCK", 16)
    monkeypatch.setattr(metrics, "_PAIRWISE_LEAF", 128)


def fed(s, y, w, batch=700):
    acc = BinaryScores()
    for i in range(0, len(s), batch):
        acc.update(s[i:i + batch], y[i:i + batch], None if w is None else w[i:i + batch])
    return acc


def everything(acc):
    """What evaluation asks for, in its order, and the rest of the API."""
    out = {"positives": acc.positives, "negatives": acc.negatives, "histograms": acc.histograms(37),
           "counts": [threshold_metrics(acc, t) for t in (0.0, 0.3, float(np.float32(0.61)), 2.0)],
           "auc": acc.auc()}
    out["binary"] = acc.coarsen(50).to_dict()
    out["coarse_histograms"] = acc.histograms(50)
    out["roc"] = [a.tolist() for a in acc.coarsen(50).roc()]
    return out


@pytest.mark.parametrize("weights", ["none", "integer", "fractional"])
def test_spilled_table_gives_the_same_bits(monkeypatch, weights):
    s, y, w = scores_with_ties(20000, 9)
    w = {"none": None, "integer": np.ceil(w), "fractional": w}[weights]
    full = fed(s, y, w)
    full_table, full_roc = full.to_dict(), full.roc()
    expected = everything(full)
    spill_small(monkeypatch)
    spilled = fed(s, y, w)
    assert spilled._on_disk() and len(spilled.scores) == 0
    assert spilled.to_dict() == full_table  # sums added in arrival order, as in memory
    for got, want in zip(spilled.roc(), full_roc):
        np.testing.assert_array_equal(got, want)
    got = everything(spilled)
    assert got == expected
    assert got["auc"] == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert not spilled._on_disk() and len(spilled.scores) <= 50  # coarsen left only its result


def test_memory_holds_at_most_the_cap_plus_one_batch(monkeypatch):
    spill_small(monkeypatch)
    cap, limit = 64, metrics._pending_limit()
    folded, fold = [], metrics._fold

    def counted(table, pending):  # how many entries each compaction sorts
        folded.append(len(table[0]) + sum(len(p[0]) for p in pending))
        return fold(table, pending)

    monkeypatch.setattr(metrics, "_fold", counted)
    s, y, w = scores_with_ties(20000, 10)
    acc = BinaryScores()
    for i in range(0, len(s), 500):  # batches of 500, far past the cap
        acc.update(s[i:i + 500], y[i:i + 500], w[i:i + 500])
        assert len(acc.scores) <= cap and acc._pending_n < limit
    assert acc._on_disk()
    assert acc.auc() == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert len(folded) > 300 and max(folded) <= cap + limit  # while adding and while sorting on disk


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # NaN's histogram bin, as before
def test_spilled_tables_merge_and_take_more_records(monkeypatch):
    s, y, w = scores_with_ties(20000, 11)
    s[::97] = np.nan  # scores the model could not make: one entry, as np.unique keeps them
    cuts = [0, 300, 9000, 16000, 20000]

    def parts():
        return [fed(s[a:b], y[a:b], w[a:b]) for a, b in pairwise(cuts)]

    def merged(p):
        acc = p[1].merge(p[0]).merge(p[2])  # small into spilled, spilled into spilled
        acc.auc()  # sorted on disk; what follows is dealt out again
        acc.merge(p[3]).update(s[:50], y[:50], w[:50])
        return acc

    full = merged(parts())
    expected_table, expected = full.to_dict(), everything(full)
    spill_small(monkeypatch)
    acc = merged(parts())
    assert acc._on_disk()
    # repr: NaN scores compare equal, and a float's repr gives all its bits
    assert repr(acc.to_dict()) == repr(expected_table)
    assert repr(everything(acc)) == repr(expected)


def test_disk_files_removed(monkeypatch, tmp_path):
    spill_small(monkeypatch)
    s, y, w = scores_with_ties(3000, 12)
    acc = BinaryScores(spill_dir=str(tmp_path))
    acc.update(s, y, w)
    assert list(tmp_path.iterdir()) and acc._on_disk()
    acc.coarsen(50)  # read, then removed: what evaluation stores stays in memory
    assert not list(tmp_path.iterdir())
    acc.close()
    assert len(acc.to_dict()["scores"]) <= 50
    with BinaryScores(spill_dir=str(tmp_path)) as acc:
        acc.update(s, y, w)
        assert list(tmp_path.iterdir())
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError):
        acc.auc()  # its table was on disk


@pytest.mark.parametrize("n", [0, 1, 127, 128, 129, 1000, 65_537, 300_003])
def test_streamed_sum_is_numpys_sum_bit_for_bit(monkeypatch, n):
    monkeypatch.setattr(metrics, "_PAIRWISE_LEAF", 128)
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
    reader = metrics._Reader(metrics._slices((x.astype(np.float32), x, x), 1000))
    assert metrics._pairwise(n, lambda m: (reader.take(m)[1].sum(),)) == (np.sum(x),)


def test_confusion_matrix_and_macro_f1_match_sklearn():
    rng = np.random.default_rng(6)
    t = rng.integers(0, 5, 3000)
    p = np.where(rng.random(3000) < 0.6, t, rng.integers(0, 6, 3000))
    t[t == 4] = 2  # class 4 only ever predicted: still part of the macro mean, as in sklearn
    cm = ConfusionMatrix(7)
    cm.update(t[:1000], p[:1000])
    other = ConfusionMatrix(7)
    other.update(t[1000:], p[1000:])
    cm.merge(other)
    np.testing.assert_array_equal(cm.matrix, confusion_matrix(t, p, labels=range(7)))
    assert cm.macro_f1() == pytest.approx(f1_score(t, p, average="macro"))
    np.testing.assert_allclose(cm.per_class()["f1"][:6], f1_score(t, p, average=None, labels=range(6)))
    w = rng.uniform(0, 2, 3000)
    cw = ConfusionMatrix(7)
    cw.update(t, p, w)
    assert cw.macro_f1() == pytest.approx(f1_score(t, p, average="macro", sample_weight=w))
    assert ConfusionMatrix.from_dict(cw.to_dict()).macro_f1() == cw.macro_f1()


def test_confusion_top_view_groups_others():
    cm = ConfusionMatrix(12, [f"c{i}" for i in range(12)])
    t = np.repeat(np.arange(12), np.arange(12, 0, -1))
    cm.update(t, t)
    view = cm.top(10)
    assert view["labels"][:9] == [f"c{i}" for i in range(9)] and view["labels"][9] == "others"
    assert np.asarray(view["matrix"]).sum() == cm.matrix.sum()


def test_baseline_macro_f1_predicts_majority_class():
    rng = np.random.default_rng(7)
    t = rng.choice(4, 2000, p=[0.5, 0.2, 0.2, 0.1])
    cm = ConfusionMatrix(4)
    cm.update(t, rng.integers(0, 4, 2000))
    assert baseline_macro_f1(cm, 0) == pytest.approx(f1_score(t, np.zeros_like(t), average="macro"))


def test_rmse_baseline_and_residuals():
    rng = np.random.default_rng(8)
    a = rng.normal(100, 20, 5000)
    p = a + rng.normal(0, 5, 5000)
    w = rng.uniform(0.5, 2, 5000)
    acc = RegressionErrors(baseline_mean=98.0)
    acc.update(a[:2000], p[:2000], w[:2000])
    rest = RegressionErrors(baseline_mean=98.0, bin_width=acc.bin_width)
    rest.update(a[2000:], p[2000:], w[2000:])
    acc.merge(rest)
    assert acc.rmse() == pytest.approx(mean_squared_error(a, p, sample_weight=w) ** 0.5)
    assert acc.baseline_rmse() == pytest.approx(mean_squared_error(a, np.full_like(a, 98.0), sample_weight=w) ** 0.5)
    h = acc.residual_histogram()
    assert sum(h["weights"]) == pytest.approx(w.sum())
    assert RegressionErrors.from_dict(acc.to_dict()).rmse() == acc.rmse()


def test_residual_bins_stay_capped_and_exact():
    """Heavy tails sorted to arrive last keep adding far bins; past the cap
    the width doubles, and every bin still counts exactly its residuals."""
    from treadle.learning.metrics import MAX_RESIDUAL_BINS

    rng = np.random.default_rng(3)
    r = rng.standard_cauchy(200_000)
    r = r[np.argsort(np.abs(r))]
    acc, other = RegressionErrors(), None
    for start in range(0, 100_000, 10_000):
        acc.update(r[start:start + 10_000], np.zeros(10_000))
    other = RegressionErrors(bin_width=acc.bin_width)
    other.update(r[100_000:], np.zeros(100_000))
    first_width = (r[:10_000].max() - r[:10_000].min()) / 200
    acc.merge(other)
    assert len(acc.bins) <= MAX_RESIDUAL_BINS
    assert np.log2(acc.bin_width / first_width) == pytest.approx(round(np.log2(acc.bin_width / first_width)))
    keys, counts = np.unique(np.floor(r / acc.bin_width).astype(np.int64), return_counts=True)
    assert acc.bins == dict(zip(keys.tolist(), counts.astype(float).tolist()))


@pytest.mark.parametrize("value, text", [
    (29853.250469108018, "29853.250469108018"), (1e-5, "1.0E-5"), (0.5, "0.5"), (1.0, "1.0"),
    (0.001, "0.001"), (9999999.0, "9999999.0"), (1e7, "1.0E7"), (123456789.0, "1.23456789E8"),
    (-2.5e-9, "-2.5E-9"), (0.0, "0.0"), (0.8645812345678901, "0.86458123456789"), (float("nan"), "NaN"),
])
def test_java_double_to_string(value, text):
    # 0.8645812345678901 is the same double as 0.86458123456789; Java 19+
    # prints the shortest digits, as here.
    assert java_double(value) == text


def test_performance_metrics_shape():
    assert MODEL_TYPES["REGRESSION"].performance_metrics(29853.250469108018) == {
        "Properties": {"RegressionRMSE": "29853.250469108018"}}
    assert list(MODEL_TYPES["BINARY"].performance_metrics(0.9)["Properties"]) == ["BinaryAUC"]
    assert list(MODEL_TYPES["MULTICLASS"].performance_metrics(0.9)["Properties"]) == ["MulticlassAvgFScore"]
