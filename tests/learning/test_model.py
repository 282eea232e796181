import numpy as np
import pytest
from decimal import ROUND_HALF_EVEN, Decimal

from treadle.learning import (MLModelArtifact, SGDConfig, SGDTrainer, build_model, format_prediction,
                              prediction_strings, training_log)
from treadle.learning.model import FORMAT_VERSION, MAGIC

from .synth import fit_pipeline, table, train


def records(cols, n):
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


@pytest.fixture(scope="module", params=["BINARY", "MULTICLASS", "REGRESSION"])
def trained(request):
    kind = request.param
    task = {"BINARY": "binary", "MULTICLASS": "multi", "REGRESSION": "regression"}[kind]
    target = {"BINARY": "BINARY", "MULTICLASS": "CATEGORICAL", "REGRESSION": "NUMERIC"}[kind]
    cols, y = table(6000, 11, task)
    pipe = fit_pipeline(cols, hash_bits=16, target_type=target)
    X = pipe.transform(cols)
    config = SGDConfig(kind, max_passes=3, l2=1e-6)
    res = train(SGDTrainer(config, X.n_features), X, y)
    labels = ["dog", "cat", "emu", "owl"] if kind == "MULTICLASS" else None
    model, report = build_model(res, pipe, labels=labels, summary={"passes": res.passes})
    tcols, _ = table(300, 12, task)
    return kind, config, res, report, model, pipe, tcols


def test_bytes_round_trip_gives_identical_scores(trained, tmp_path):
    kind, _, _, report, model, pipe, tcols = trained
    blob = model.to_bytes()
    assert blob.startswith(MAGIC) and model.size_in_bytes == len(blob) == report.size_bytes
    again = MLModelArtifact.from_bytes(blob)
    X = pipe.transform(tcols)
    np.testing.assert_array_equal(model.score_batch(X), again.score_batch(X))
    assert again.labels == model.labels and again.summary == model.summary
    path = tmp_path / "m.bin"
    assert model.save(str(path)) == len(blob)
    assert MLModelArtifact.load(str(path)).to_bytes() == blob
    with pytest.raises(ValueError):
        MLModelArtifact.from_bytes(b"junk")


def test_predict_record_equals_score_batch(trained):
    kind, _, _, _, model, pipe, tcols = trained
    loaded = MLModelArtifact.from_bytes(model.to_bytes())  # scores without the trainer or the fitted object
    scores = loaded.score_batch(pipe.transform(tcols))
    for i, rec in enumerate(records(tcols, 50)):
        p = loaded.predict_record(rec)
        if kind == "BINARY":
            assert p.score == pytest.approx(float(scores[i]), rel=1e-6, abs=1e-7)
            assert p.label == ("1" if p.score >= 0.5 else "0")
        elif kind == "REGRESSION":
            assert p.score == pytest.approx(float(scores[i]), rel=1e-5)
        else:
            assert list(p.scores) == ["dog", "cat", "emu", "owl"]
            np.testing.assert_allclose(list(p.scores.values()), scores[i], rtol=1e-5, atol=1e-7)
            assert p.label == loaded.labels[int(np.argmax(scores[i]))]


def test_scores_have_the_right_shape_and_range(trained):
    kind, _, _, _, model, pipe, tcols = trained
    s = model.score_batch(pipe.transform(tcols))
    assert s.dtype == np.float32
    if kind == "BINARY":
        assert s.shape == (300,) and 0 <= s.min() and s.max() <= 1
        answers, _ = model.predict_batch(pipe.transform(tcols), threshold=0.9)
        np.testing.assert_array_equal(answers, (s.astype(np.float64) >= 0.9).astype(int))
    elif kind == "MULTICLASS":
        assert s.shape == (300, 4)
        np.testing.assert_allclose(s.sum(axis=1), 1, rtol=1e-5)
    else:
        assert s.shape == (300,) and 500 < s.mean() < 1500


def test_missing_and_unknown_variables_score(trained):
    kind, _, _, _, model, _, _ = trained
    p = model.predict_record({"unknown": "x"})
    assert (p.score is not None) or (p.scores is not None)


def test_batch_output_columns(trained):
    kind, _, _, _, model, pipe, tcols = trained
    X = pipe.transform(tcols)
    columns = [c.to_pylist() for c in model.type.output_columns(*model.predict_batch(X))]
    header = model.output_header(has_true_label=True)
    assert len(header) == len(columns) + 1 and header[0] == "trueLabel"
    if kind == "BINARY":
        assert header[1:] == ["bestAnswer", "score"] and set(columns[0]) <= {"0", "1"}
        assert float(columns[1][0]) == pytest.approx(float(model.score_batch(X)[0]), rel=1e-6)
    elif kind == "MULTICLASS":
        assert header[1:] == ["dog", "cat", "emu", "owl"]
    else:
        assert header[1:] == ["score"]


def test_training_log_lines(trained):
    kind, config, res, report, _, _, _ = trained
    lines = training_log(config, res, report, 33554432)
    assert lines[1].startswith("initial-training: l1=0.0 l2=1.0E-6 likelihood-function=")
    assert "max-passes=3 max-model-size=33554432 (32.00 MB) readable=false" in lines[1]
    perf = [ln for ln in lines if "model-performance:" in ln]
    blocks = sum(len(c) for c in res.checkpoints) + sum(len(r.learners) for r in res.pass_reports)
    assert len(perf) >= blocks
    # All five learners until the first pass ends, then the two best of it, under their own ids.
    assert [len(r.learners) for r in res.pass_reports] == [5] + [2] * (res.passes - 1)
    first = res.pass_reports[0]
    kept = sorted(range(5), key=lambda i: first.learners[i].holdout_loss)[:2]
    assert all(sorted(m.learner for m in r.learners) == sorted(kept) for r in res.pass_reports[1:])
    last = res.pass_reports[-1]
    best_id = 1000 * (last.learners[last.best].learner + 1) + 1
    assert f"best-learner-id={best_id}" in [ln for ln in lines if ln.startswith("end-of-pass")][-1]
    assert any(f"finished-training: total-passes={res.passes} valid-records={res.records} invalid-records=0" == ln
               for ln in lines)
    assert "best learner:" in lines and lines[-1] == "Training complete."
    if kind == "BINARY":
        assert "auc=" in perf[0] and "f1-score=" in perf[0]


def test_version_is_checked(trained):
    model = trained[4]
    blob = model.to_bytes().replace(b'"version":%d' % FORMAT_VERSION, b'"version":99', 1)
    with pytest.raises(ValueError):
        MLModelArtifact.from_bytes(blob)


@pytest.mark.parametrize("value, text", [
    (0.0087642, "8.7642E-3"), (0.7899012, "7.899012E-1"), (1.0, "1E0"), (-15.26385, "-1.526385E1"),
    (1.945252e-5, "1.945252E-5"), (8.359159, "8.359159E0"), (0.5005147, "5.005147E-1"), (0.0, "0E0"),
    (1234567.5, "1.234568E6"), (100.0, "1E2"), (9999999.0, "9.999999E6"),
])
def test_prediction_number_format(value, text):
    assert format_prediction(value) == text


def test_prediction_format_matches_exact_half_even_rounding():
    rng = np.random.default_rng(3)
    v = (rng.random(20000) * 10.0 ** rng.integers(-9, 9, 20000) * rng.choice([-1, 1], 20000)).astype(np.float32)
    got = prediction_strings(v).to_pylist()
    for x, s in zip(v, got):
        d = Decimal(float(x))
        e = d.copy_abs().adjusted()
        m = d.scaleb(-e).quantize(Decimal("1.000000"), rounding=ROUND_HALF_EVEN)
        if abs(m) >= 10:
            e += 1
            m = d.scaleb(-e).quantize(Decimal("1.000000"), rounding=ROUND_HALF_EVEN)
        mant = str(m).rstrip("0").rstrip(".")
        assert s == f"{mant}E{e}", (float(x), s)
