"""The model types: one object per MLModelType of the service model."""
import pytest

from treadle.data.schema import DataSchema
from treadle.learning import MODEL_TYPES
from treadle.protocol.service_model import service_model


def test_one_model_type_per_name_of_the_service_model():
    assert sorted(MODEL_TYPES) == sorted(service_model().shape_for("MLModelType").enum)
    assert all(model_type.name == name for name, model_type in MODEL_TYPES.items())


@pytest.mark.parametrize("name, target, fits", [
    ("BINARY", "BINARY", True), ("BINARY", "NUMERIC", False), ("REGRESSION", "NUMERIC", True),
    ("REGRESSION", "CATEGORICAL", False), ("MULTICLASS", "CATEGORICAL", True), ("MULTICLASS", "BINARY", True),
    ("MULTICLASS", "TEXT", False),
])
def test_target_types(name, target, fits):
    schema = DataSchema((("x", "NUMERIC"), ("y", target)), target="y")
    if fits:
        MODEL_TYPES[name].check_target(schema)
    else:
        with pytest.raises(ValueError, match=f"A {name} model needs a .* target; y is {target}"):
            MODEL_TYPES[name].check_target(schema)
