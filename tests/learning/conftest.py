import pytest

from treadle.learning import RecipeSchema


@pytest.fixture
def schema():
    return RecipeSchema(
        attributes=(
            ("title", "TEXT"),
            ("body", "TEXT"),
            ("age", "NUMERIC"),
            ("hours-per-week", "NUMERIC"),
            ("country", "CATEGORICAL"),
            ("gender", "CATEGORICAL"),
            ("smoker", "BINARY"),
            ("odd,name", "CATEGORICAL"),
            ("1st", "NUMERIC"),
            ("id", "CATEGORICAL"),
            ("secret", "TEXT"),
            ("y", "BINARY"),
        ),
        target="y",
        row_id="id",
        excluded=frozenset({"secret"}),
    )
