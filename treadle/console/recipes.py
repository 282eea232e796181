"""The recipe editor's checks: Treadle's own recipe parser, with each
error's position turned into a line and column of the text as typed.

The parser names a position inside one expression string
(`outputs[2] at column 14`, `groups.NAME at column 3`), or a line and
column of the JSON when the text is not JSON; the editor needs the place
in the whole text, so the JSON is walked to find where each string starts.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring

from ..data.schema import SchemaError, parse_schema
from ..learning.compatibility import check_recipe_syntax
from ..learning.errors import RecipeError
from ..learning.recipe_parser import parse_expression, parse_recipe

_JSON_AT = re.compile(r"at line (\d+) column (\d+)")
_EXPRESSION_AT = re.compile(r"^(?:Recipe: )?(outputs\[(\d+)\]|(groups|assignments)\.(.+?))(?: at column (\d+))?:")
_SECTION_AT = re.compile(r"^(?:Recipe: )?(outputs|groups|assignments):")
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True)
class RecipeProblem:
    message: str
    line: int | None = None
    column: int | None = None
    excerpt: str = ""  # the line in question
    offset: int | None = None  # characters from the start of the text, for the editor's selection

    def to_json(self) -> dict:
        return {"message": self.message, "line": self.line, "column": self.column, "excerpt": self.excerpt,
                "offset": self.offset}


def check(recipe: str, schema_text: str | None) -> RecipeProblem | None:
    """None when the recipe suits the schema; without a schema yet, only
    whether each expression parses."""
    try:
        if schema_text is None:
            _check_syntax(recipe)
        else:
            parse_recipe(recipe, parse_schema(schema_text))
    except (RecipeError, SchemaError) as error:
        return locate(recipe, str(error))
    return None


def _check_syntax(recipe: str) -> None:
    check_recipe_syntax(recipe, RecipeError)
    parsed = json.loads(recipe)
    for section in ("groups", "assignments"):
        for name, expression in (parsed.get(section) or {}).items():
            parse_expression(str(expression), f"{section}.{name}")
    for index, expression in enumerate(parsed["outputs"]):
        parse_expression(str(expression), f"outputs[{index}]")


def locate(recipe: str, message: str) -> RecipeProblem:
    """The problem a parser or CreateMLModel message describes, placed in
    the recipe text where the message names a place."""
    offset = _offset(recipe, message)
    if offset is None:
        return RecipeProblem(message)
    line = recipe.count("\n", 0, offset) + 1
    start = recipe.rfind("\n", 0, offset) + 1
    end = recipe.find("\n", offset)
    return RecipeProblem(message, line, offset - start + 1, recipe[start:end if end >= 0 else len(recipe)],
                         offset)


def _offset(recipe: str, message: str) -> int | None:
    found = _JSON_AT.search(message)
    if found and "JSON" in message:
        return _line_column_offset(recipe, int(found.group(1)), int(found.group(2)))
    strings = _strings(recipe)
    if strings is None:
        return None
    found = _EXPRESSION_AT.match(message)
    if found:
        path = ("outputs", int(found.group(2))) if found.group(2) is not None else (found.group(3), found.group(4))
        if path not in strings:
            return None
        start, raw = strings[path]
        column = int(found.group(5)) if found.group(5) else 1
        return start + 1 + _raw_index(raw, column - 1)
    found = _SECTION_AT.match(message)
    if found and (found.group(1), None) in strings:
        return strings[(found.group(1), None)][0]
    return None


def _line_column_offset(text: str, line: int, column: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    return min(start + column - 1, len(text))


def _raw_index(raw: str, decoded: int) -> int:
    """Where the `decoded`-th character of a JSON string's value begins in
    its source `raw` (the characters between the quotes)."""
    i = 0
    for _ in range(decoded):
        if i >= len(raw):
            break
        if raw[i] != "\\":
            i += 1
        elif raw[i + 1] != "u":
            i += 2
        elif 0xD800 <= int(raw[i + 2:i + 6], 16) < 0xDC00 and raw[i + 6:i + 8] == "\\u":
            i += 12  # a surrogate pair is one character of the value
        else:
            i += 6
    return i


def _strings(text: str) -> dict | None:
    """Where each expression of a recipe stands: (section, index or name)
    -> (offset of its opening quote, its raw text); (section, None) for a
    section's key. None when the text is not the JSON object it should be."""
    found: dict = {}
    try:
        i = _skip(text, 0)
        if text[i] != "{":
            return None
        for key, key_at, value_at in _members(text, i):
            found[(key, None)] = (key_at, "")
            if text[value_at] == "{" and key in ("groups", "assignments"):
                for name, _, at in _members(text, value_at):
                    _string_at(text, at, (key, name), found)
            elif text[value_at] == "[" and key == "outputs":
                for index, at in enumerate(_items(text, value_at)):
                    _string_at(text, at, (key, index), found)
    except (ValueError, IndexError):
        return None
    return found


def _string_at(text: str, at: int, path: tuple, found: dict) -> None:
    if text[at] == '"':
        end = scanstring(text, at + 1)[1]
        found[path] = (at, text[at + 1:end - 1])


def _skip(text: str, i: int) -> int:
    while text[i] in _WHITESPACE:
        i += 1
    return i


def _value_end(text: str, i: int) -> int:
    return json.JSONDecoder().raw_decode(text, i)[1]


def _members(text: str, i: int):
    """(key, offset of the key, offset of the value) for an object at i."""
    i = _skip(text, i + 1)
    if text[i] == "}":
        return
    while True:
        key, after = scanstring(text, i + 1)
        key_at, i = i, _skip(text, after)
        if text[i] != ":":
            raise ValueError("':' expected")
        value_at = _skip(text, i + 1)
        yield key, key_at, value_at
        i = _skip(text, _value_end(text, value_at))
        if text[i] == "}":
            return
        i = _skip(text, i + 1)


def _items(text: str, i: int):
    i = _skip(text, i + 1)
    if text[i] == "]":
        return
    while True:
        yield i
        i = _skip(text, _value_end(text, i))
        if text[i] == "]":
            return
        i = _skip(text, i + 1)
