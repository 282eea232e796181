import json

import pytest

from treadle.data.schema import parse_schema


def make_schema(attributes, **keys):
    doc = {"version": "1.0", "dataFormat": "CSV", "dataFileContainsHeader": False,
           "attributes": [{"attributeName": n, "attributeType": t} for n, t in attributes]}
    doc.update(keys)
    return parse_schema(json.dumps(doc))


@pytest.fixture
def schema3():
    return make_schema([("a", "NUMERIC"), ("b", "CATEGORICAL"), ("c", "TEXT")])
