"""Dense column numbers for training: the model is the one hashed columns give."""
import numpy as np
import pytest

from treadle.learning import SGDConfig, SGDTrainer, build_model
from treadle.learning.columns import ColumnMap
from treadle.learning.features import CsrBatch

from .synth import fit_pipeline, table, train


def test_columns_are_numbered_in_order_of_first_appearance_and_the_map_grows():
    cm = ColumnMap(1 << 20)
    hashed = np.array([77, 5, 77, 1 << 19, 5, 3], dtype=np.int32)
    got = cm.translate(CsrBatch(np.array([0, 3, 6]), hashed, np.ones(6, np.float32), 1 << 20))
    assert got.indices.tolist() == [0, 1, 0, 2, 1, 3]
    assert cm.hashed_columns.tolist() == [77, 5, 1 << 19, 3]
    many = np.random.default_rng(0).permutation(1 << 20)[:10_000].astype(np.int32)  # past the first 4,096
    out = cm.translate(CsrBatch(np.array([0, len(many)]), many, np.ones(len(many), np.float32), 1 << 20))
    assert np.array_equal(cm.hashed_columns[out.indices], many)
    assert cm.size == len(np.unique(np.concatenate([hashed, many])))
    with pytest.raises(ValueError):
        ColumnMap(1000)


@pytest.mark.parametrize("kind", ["BINARY", "MULTICLASS", "REGRESSION"])
def test_training_on_dense_numbers_gives_the_same_model(kind):
    task = {"BINARY": "binary", "MULTICLASS": "multi", "REGRESSION": "regression"}[kind]
    target = {"BINARY": "BINARY", "MULTICLASS": "CATEGORICAL", "REGRESSION": "NUMERIC"}[kind]
    cols, y = table(6000, 11, task)
    pipe = fit_pipeline(cols, target_type=target)
    X = pipe.transform(cols)
    config = SGDConfig(kind, max_passes=4, l2=1e-5, n_classes=4 if kind == "MULTICLASS" else 2)
    direct = train(SGDTrainer(config, X.n_features), X, y)
    cm = ColumnMap(X.n_features)
    dense = cm.translate(X)
    assert cm.size == len(np.unique(X.indices)) < X.n_features
    via_map = cm.to_hashed(train(SGDTrainer(config, cm.size), dense, y))
    a, _ = build_model(direct, pipe)
    b, _ = build_model(via_map, pipe)
    assert a.weight_bits == b.weight_bits
    tcols, _ = table(500, 12, task)
    Xt = pipe.transform(tcols)
    assert np.allclose(a.margins(Xt), b.margins(Xt), rtol=1e-5, atol=1e-6)
    assert np.abs(a.margins(Xt)).max() > 0.1
