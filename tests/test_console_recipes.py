"""The recipe editor's error positions: the parser's place inside one
expression string, found in the recipe text as typed."""
import json

from treadle.console.recipes import check, locate

SCHEMA = json.dumps({"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV",
                     "attributes": [{"attributeName": "x", "attributeType": "NUMERIC"},
                                    {"attributeName": "note", "attributeType": "TEXT"},
                                    {"attributeName": "y", "attributeType": "BINARY"}]})


def at(text: str, problem) -> str:
    return text[problem.offset:]


def test_an_output_error_points_into_its_string():
    text = '{\n  "outputs": [\n    "x",\n    "ngram(note, 22)"\n  ]\n}'
    problem = check(text, SCHEMA)
    assert problem.message.startswith("outputs[1] at column 13:")
    assert (problem.line, problem.column) == (4, 18) and at(text, problem).startswith("22)")
    assert problem.excerpt == '    "ngram(note, 22)"'


def test_escapes_before_the_place_are_counted_as_typed():
    # \" is two characters of text and one of the expression.
    text = '{"outputs": ["ngram(\\"note\\", 22)"]}'
    problem = check(text, SCHEMA)
    assert problem.message.startswith("outputs[0] at column 15:") and at(text, problem).startswith("22)")
    # An emoji is one character of the expression and a surrogate pair in the text.
    text = '{"outputs": ["x", "x \\ud83d\\ude00 )"]}'
    problem = check(text, SCHEMA)
    assert problem.message.startswith("outputs[1] at column 5: unexpected ')'")
    assert at(text, problem).startswith(")")


def test_groups_json_errors_and_sections():
    text = '{\n "groups": {"g": "group(x, nope)"},\n "outputs": ["g"]\n}'
    problem = check(text, SCHEMA)
    assert "unknown variable 'nope'" in problem.message and at(text, problem).startswith("nope")
    text = '{\n "outputs": [,]\n}'
    problem = check(text, SCHEMA)
    assert "not valid JSON" in problem.message and (problem.line, problem.column) == (2, 14)
    problem = check('{"outputs": []}', SCHEMA)
    assert problem.offset == 1  # the section's key
    assert check('{"outputs": ["x", "lowercase(note)"]}', SCHEMA) is None


def test_without_a_schema_only_syntax_is_checked():
    assert check('{"outputs": ["anything_at_all"]}', None) is None
    problem = check('{"outputs": ["ngram(a, 2"]}', None)
    assert "expected ',' or ')'" in problem.message and problem.column == 25


def test_a_create_message_is_placed_like_the_parser_s():
    text = '{"outputs": ["x", "bad(x)"]}'
    problem = locate(text, 'Recipe: outputs[1] at column 1: unknown transformation "bad"')
    assert at(text, problem).startswith("bad(x)")
    assert locate(text, "A BINARY model needs a BINARY target").line is None
