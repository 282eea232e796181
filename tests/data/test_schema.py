import json

import pytest

from treadle.data.schema import SchemaError, infer_schema, parse_schema

DOCUMENTED = {
    "version": "1.0",
    "rowId": "id",
    "rowWeight": None,
    "targetAttributeName": "y",
    "dataFormat": "CSV",
    "dataFileContainsHeader": True,
    "attributes": [
        {"attributeName": "id", "attributeType": "CATEGORICAL"},
        {"attributeName": "age", "attributeType": "NUMERIC"},
        {"attributeName": "note", "attributeType": "TEXT"},
        {"attributeName": "y", "attributeType": "BINARY"},
    ],
    "excludedAttributeNames": ["note"],
}


def test_documented_spelling():
    s = parse_schema(json.dumps(DOCUMENTED))
    assert s.target == "y" and s.row_id == "id" and s.row_weight is None
    assert s.contains_header is True
    assert s.attributes == (("id", "CATEGORICAL"), ("age", "NUMERIC"), ("note", "TEXT"), ("y", "BINARY"))
    assert s.excluded == ("note",)


def test_legacy_spelling_gives_the_same_schema():
    legacy = {
        "version": "1.0",
        "recordAnnotationFieldName": "id",
        "recordWeightFieldName": "w",
        "targetFieldName": "y",
        "dataFormat": "CSV",
        "dataFileContainsHeader": False,
        "variables": [
            {"fieldName": "id", "fieldType": "CATEGORICAL"},
            {"fieldName": "w", "fieldType": "NUMERIC"},
            {"fieldName": "y", "fieldType": "BINARY"},
        ],
        "excludedVariableNames": [],
    }
    s = parse_schema(json.dumps(legacy))
    assert (s.row_id, s.row_weight, s.target) == ("id", "w", "y")
    assert s.names == ("id", "w", "y")


def test_api_reference_mixed_example():
    mixed = {"version": "1.0", "recordAnnotationFieldName": "F1", "recordWeightFieldName": "F2",
             "targetFieldName": "F3", "dataFormat": "CSV", "dataFileContainsHeader": True,
             "attributes": [{"attributeName": f"F{i}", "attributeType": "NUMERIC"} for i in range(1, 5)],
             "excludedAttributeNames": ["F4"]}
    s = parse_schema(json.dumps(mixed))
    assert (s.row_id, s.row_weight, s.target, s.excluded) == ("F1", "F2", "F3", ("F4",))


def test_to_json_key_order_and_round_trip():
    s = parse_schema(json.dumps(DOCUMENTED))
    text = s.to_json()
    assert list(json.loads(text)) == ["version", "rowId", "rowWeight", "targetAttributeName", "dataFormat",
                                      "dataFileContainsHeader", "attributes", "excludedAttributeNames"]
    assert '"version" : "1.0"' in text
    assert parse_schema(text) == s


def _with(**changes):
    doc = json.loads(json.dumps(DOCUMENTED))
    for key, value in changes.items():
        if value is ...:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc)


@pytest.mark.parametrize("text, message", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (_with(targetAttributeName="z"), 'targetAttributeName "z" is not one of the attributes'),
    (_with(rowId="nope"), 'rowId "nope" is not one of the attributes'),
    (_with(rowWeight="id"), 'rowWeight "id" must be a NUMERIC attribute'),
    (_with(rowWeight="ghost"), 'rowWeight "ghost" is not one of the attributes'),
    (_with(excludedAttributeNames=["ghost"]), 'excludedAttributeNames entry "ghost" is not one of the attributes'),
    (_with(excludedAttributeNames=["y"]), 'target "y" cannot be excluded'),
    (_with(dataFormat="JSON"), 'dataFormat must be "CSV"'),
    (_with(attributes=...), "no attributes"),
    (_with(attributes=[]), "non-empty array"),
    (_with(attributes=[{"attributeName": "a", "attributeType": "NUMERIC"},
                       {"attributeName": "a", "attributeType": "TEXT"}], targetAttributeName=None, rowId=None,
           excludedAttributeNames=[]), 'attribute "a" is defined more than once'),
    (_with(attributes=[{"attributeName": "a", "attributeType": "DATE"}], targetAttributeName=None, rowId=None,
           excludedAttributeNames=[]), 'attribute "a" has unknown type "DATE"'),
    (_with(attributes=[{"attributeName": "a", "attributeType": "WEIGHTED_INT_SEQUENCE"}], targetAttributeName=None,
           rowId=None, excludedAttributeNames=[]), "WEIGHTED_INT_SEQUENCE, which Treadle does not support"),
    (_with(attributes=[{"attributeName": "a", "attributeType": "WEIGHTED_STRING_SEQUENCE"}], targetAttributeName=None,
           rowId=None, excludedAttributeNames=[]), "WEIGHTED_STRING_SEQUENCE, which Treadle does not support"),
    (_with(attributes=[{"attributeType": "NUMERIC"}]), "attribute #1 has no attributeName"),
    (_with(dataFileContainsHeader="maybe"), "dataFileContainsHeader must be true or false"),
    (_with(targetFieldName="age"), "targetAttributeName and targetFieldName are both given with different values"),
    (_with(bogus=1), 'unknown schema key "bogus"'),
])
def test_errors_name_the_problem(text, message):
    with pytest.raises(SchemaError) as info:
        parse_schema(text)
    assert message in info.value.message


def test_attribute_limit():
    attrs = [{"attributeName": f"v{i}", "attributeType": "NUMERIC"} for i in range(1001)]
    with pytest.raises(SchemaError, match="1001 attributes; at most 1000"):
        parse_schema(json.dumps({"attributes": attrs}))
    parse_schema(json.dumps({"attributes": attrs[:1000]}))


def test_infer_with_header():
    lines = ["id,age,married,comment,job,y"] + [
        f"{i},{20 + i},{'yes' if i % 2 else 'No'},this is a long free text comment {i},job{i % 3},{i % 2}"
        for i in range(20)
    ]
    s = infer_schema(lines, target="y")
    assert s.contains_header
    assert s.attributes == (("id", "NUMERIC"), ("age", "NUMERIC"), ("married", "BINARY"),
                            ("comment", "TEXT"), ("job", "CATEGORICAL"), ("y", "BINARY"))
    assert s.target == "y"


def test_infer_without_header_and_with_rows():
    rows = [["1.5", "a", ""], ["2e3", "b", ""], ["-4", "a", ""]]
    s = infer_schema(rows)
    assert not s.contains_header
    assert s.attributes == (("Var1", "NUMERIC"), ("Var2", "CATEGORICAL"), ("Var3", "CATEGORICAL"))


def test_infer_header_of_all_categorical_columns():
    assert infer_schema(["color,size", "red,big", "blue,small"]).contains_header
    # The first row repeats below: it is data, not a header.
    assert not infer_schema(["red,big", "blue,small", "red,small"]).contains_header


def test_infer_rejects_unknown_target_and_empty_sample():
    with pytest.raises(SchemaError, match='"q" is not one of the attributes'):
        infer_schema(["a,b", "1,2"], target="q")
    with pytest.raises(SchemaError):
        infer_schema([])


def test_infer_single_binary_spelling_is_not_binary():
    s = infer_schema(["flag", "1", "1", "1"])
    assert s.attributes == (("flag", "NUMERIC"),)
