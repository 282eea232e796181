"""Models stored by an earlier version of Treadle keep loading and score as
they did: in batch, as the batch output's columns, and through Predict's
record path. Their records hold only cells every version read alike."""
import json
from pathlib import Path

import pytest

from treadle.learning import MLModelArtifact

STORED = Path(__file__).parent / "stored_models"


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_stored_model_scores_as_it_did(kind):
    model = MLModelArtifact.from_bytes((STORED / f"{kind}.model").read_bytes())
    expected = json.loads((STORED / f"{kind}.json").read_text())
    records, threshold = expected["records"], expected["threshold"]
    batch = model.fitted_pipeline.transform({name: [r[name] for r in records] for name in records[0]})
    assert model.score_batch(batch).tolist() == expected["scores"]
    assert model.output_header(True, True) == expected["header"]
    columns = model.type.output_columns(*model.predict_batch(batch, threshold))
    assert [column.to_pylist() for column in columns] == expected["columns"]
    for record, want in zip(records, expected["predictions"]):
        got = model.predict_record(record, threshold)
        assert {"label": got.label, "score": got.score, "scores": got.scores} == want
