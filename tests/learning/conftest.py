import pytest

from treadle.data.schema import DataSchema


@pytest.fixture
def schema():
    return DataSchema(
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
        excluded=("secret",),
    )
