"""Parser for Amazon ML's recipe language (docs/behaviour.md, "Recipes").

``parse_recipe(text, schema)`` checks everything that can be checked without
data (syntax, names, types, argument ranges) and expands groups, so the result
is a flat list of terms over concrete variables.  Every error is a
``RecipeError`` whose message starts with the position, e.g.
``outputs[2] at column 14: unknown transformation "ngrams"``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple, Union

from ..data.schema import BINARY, CATEGORICAL, NUMERIC, TEXT, DataSchema
from .errors import RecipeError
from .recipe_lexer import Token, tokenize
from .terms import ACCEPTS, Apply, Term, Var, result_type

PREDEFINED_GROUPS = {
    "ALL_TEXT": TEXT,
    "ALL_NUMERIC": NUMERIC,
    "ALL_CATEGORICAL": CATEGORICAL,
    "ALL_BINARY": BINARY,
    "ALL_INPUTS": None,
}
# name -> (min, max) of the integer parameter, or None for no parameter.
TRANSFORMATIONS: dict[str, tuple[int, int] | None] = {
    "lowercase": None,
    "no_punct": None,
    "ngram": (2, 10),
    "osb": (2, 10),
    "quantile_bin": (2, 1000),
    "normalize": None,
    "cartesian": None,
}
_PARAM_NAMES = {"ngram": "size", "osb": "window", "quantile_bin": "number of bins"}
MAX_OUTPUT_TERMS = 10_000  # DG system limit on processed output variables


# ---------------------------------------------------------------- syntax tree
class Name(NamedTuple):
    text: str
    column: int
    quoted: bool


class Number(NamedTuple):
    value: int
    column: int


class Call(NamedTuple):
    fn: str
    column: int
    args: tuple["Node", ...]


Node = Union[Name, Number, Call]


class _Parser:
    def __init__(self, source: str, where: str):
        self.where = where
        self.tokens = tokenize(source, where)
        self.pos = 0

    def fail(self, column: int, message: str) -> RecipeError:
        return RecipeError(f"{self.where} at column {column}: {message}")

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail(1, "empty expression")
        node = self.expr()
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok.column, f"unexpected {_describe(tok)} after the expression")
        return node

    def expr(self) -> Node:
        tok = self.take()
        if tok.kind == "quoted":
            return Name(tok.text, tok.column, True)
        if tok.kind != "bare":
            raise self.fail(tok.column, f"expected a variable, group or transformation, found {_describe(tok)}")
        if self.peek().kind == "(":
            return self.call(tok)
        if tok.text.isdigit():
            return Number(int(tok.text), tok.column)
        if not tok.text[0].isalpha():
            raise self.fail(tok.column, f"name {tok.text!r} must start with a letter or be quoted")
        return Name(tok.text, tok.column, False)

    def call(self, head: Token) -> Call:
        self.take()  # "("
        args: list[Node] = []
        if self.peek().kind == ")":
            self.take()
            return Call(head.text, head.column, ())
        while True:
            args.append(self.expr())
            tok = self.take()
            if tok.kind == ")":
                return Call(head.text, head.column, tuple(args))
            if tok.kind != ",":
                raise self.fail(tok.column, f"expected ',' or ')', found {_describe(tok)}")


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "end of expression"
    if tok.kind == "quoted":
        return f"quoted name {tok.text!r}"
    return repr(tok.text)


def parse_expression(source: str, where: str = "expression") -> Node:
    return _Parser(source, where).parse()


# ------------------------------------------------------------- parsed recipe
@dataclass(frozen=True)
class OutputEntry:
    source: str
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class ParsedRecipe:
    """A validated recipe: ``terms`` are the distinct feature generators in
    output order (a term listed twice, even via an alias, is kept once)."""

    outputs: tuple[OutputEntry, ...]
    terms: tuple[Term, ...]
    schema: DataSchema


class _Resolver:
    def __init__(self, schema: DataSchema, groups: dict[str, str], assignments: dict[str, str]):
        self.schema = schema
        self.group_src = groups
        self.assign_src = assignments
        self.group_cache: dict[str, list[Var]] = {}
        self.assign_cache: dict[str, list[Term]] = {}
        self.active: list[str] = []

    # names --------------------------------------------------------------
    def check_definition_names(self) -> None:
        for section, names in (("groups", self.group_src), ("assignments", self.assign_src)):
            for name in names:
                where = f"{section}.{name}"
                if not name or not name[0].isalpha() or len(name) > 64:
                    raise RecipeError(f"{where}: name must start with a letter and be 1-64 characters")
                if name in PREDEFINED_GROUPS:
                    raise RecipeError(f"{where}: {name} is a predefined group and cannot be redefined")
                if name in self.schema.names:
                    raise RecipeError(f"{where}: {name!r} is already a variable of the datasource")
                if section == "assignments" and name in self.group_src:
                    raise RecipeError(f"{where}: {name!r} is already defined as a group")

    def variable(self, node: Name, where: str) -> Var:
        if node.text not in self.schema.names:
            raise RecipeError(f"{where} at column {node.column}: unknown variable {node.text!r}")
        kind = self.schema.type_of(node.text)
        if not self.schema.is_input(node.text):
            role = ("the target attribute" if node.text == self.schema.target
                    else "the rowId attribute" if node.text == self.schema.row_id
                    else "the rowWeight attribute" if node.text == self.schema.row_weight
                    else "an excluded attribute")
            raise RecipeError(f"{where} at column {node.column}: {node.text!r} is {role} and cannot be used in a recipe")
        return Var(node.text, kind)

    def predefined(self, name: str) -> list[Var]:
        kind = PREDEFINED_GROUPS[name]
        return [Var(n, t) for n, t in self.schema.inputs if kind is None or t == kind]

    def group(self, name: str, where: str, column: int) -> list[Var]:
        if name in self.group_cache:
            return self.group_cache[name]
        if name in self.active:
            raise RecipeError(f"{where} at column {column}: group {name!r} refers to itself")
        self.active.append(name)
        gwhere = f"groups.{name}"
        node = parse_expression(self.group_src[name], gwhere)
        if not isinstance(node, Call) or node.fn not in ("group", "group_remove"):
            col = node.column
            raise RecipeError(f"{gwhere} at column {col}: a group must be defined with group(...) or group_remove(...)")
        members = self.group_call(node, gwhere)
        self.active.pop()
        self.group_cache[name] = members
        return members

    def assignment(self, name: str, where: str, column: int) -> list[Term]:
        if name in self.assign_cache:
            return self.assign_cache[name]
        if name in self.active:
            raise RecipeError(f"{where} at column {column}: assignment {name!r} refers to itself")
        self.active.append(name)
        awhere = f"assignments.{name}"
        terms = self.resolve(parse_expression(self.assign_src[name], awhere), awhere)
        self.active.pop()
        self.assign_cache[name] = terms
        return terms

    # groups ---------------------------------------------------------------
    def group_member(self, node: Node, where: str) -> list[Var]:
        if isinstance(node, Call):
            if node.fn in ("group", "group_remove"):
                return self.group_call(node, where)
            raise RecipeError(f"{where} at column {node.column}: a group can only contain variables and groups, not {node.fn}(...)")
        if isinstance(node, Number):
            raise RecipeError(f"{where} at column {node.column}: a group can only contain variables and groups, not a number")
        if node.text == "ALL_INPUTS" and not node.quoted:
            raise RecipeError(f"{where} at column {node.column}: ALL_INPUTS cannot be used to build a group")
        if node.text in PREDEFINED_GROUPS and not node.quoted:
            return self.predefined(node.text)
        if node.text in self.group_src:
            return self.group(node.text, where, node.column)
        if node.text in self.assign_src:
            raise RecipeError(f"{where} at column {node.column}: assignment {node.text!r} cannot be part of a group")
        return [self.variable(node, where)]

    def group_call(self, node: Call, where: str) -> list[Var]:
        if not node.args:
            raise RecipeError(f"{where} at column {node.column}: {node.fn}() needs at least one argument")
        if node.fn == "group":
            out: list[Var] = []
            for arg in node.args:
                out.extend(v for v in self.group_member(arg, where) if v not in out)
            return out
        first = node.args[0]
        if isinstance(first, Name) and first.text not in PREDEFINED_GROUPS and first.text not in self.group_src:
            raise RecipeError(f"{where} at column {first.column}: group_remove needs a group as its first argument, not {first.text!r}")
        base = self.group_member(first, where)
        for arg in node.args[1:]:
            for var in self.group_member(arg, where):
                if var not in base:
                    col = arg.column
                    raise RecipeError(f"{where} at column {col}: {var.name!r} is not in the group being reduced")
                base = [v for v in base if v != var]
        return base

    # expressions ----------------------------------------------------------
    def resolve(self, node: Node, where: str) -> list[Term]:
        if isinstance(node, Number):
            raise RecipeError(f"{where} at column {node.column}: a number is not a variable")
        if isinstance(node, Name):
            if not node.quoted and node.text in PREDEFINED_GROUPS:
                return list(self.predefined(node.text))
            if node.text in self.group_src:
                return list(self.group(node.text, where, node.column))
            if node.text in self.assign_src:
                return list(self.assignment(node.text, where, node.column))
            return [self.variable(node, where)]
        if node.fn in ("group", "group_remove"):
            return list(self.group_call(node, where))
        if node.fn not in TRANSFORMATIONS:
            raise RecipeError(f'{where} at column {node.column}: unknown transformation "{node.fn}"')
        return self.transformation(node, where)

    def transformation(self, node: Call, where: str) -> list[Term]:
        fn, bounds = node.fn, TRANSFORMATIONS[node.fn]
        n_vars = 2 if fn == "cartesian" else 1
        expected = n_vars + (1 if bounds else 0)
        if len(node.args) != expected:
            shape = {"cartesian": "(variable, variable)"}.get(fn, f"(variable, {_PARAM_NAMES[fn]})" if bounds else "(variable)")
            raise RecipeError(
                f"{where} at column {node.column}: {fn} takes {expected} argument{'s' if expected > 1 else ''} "
                f"{shape}, got {len(node.args)}"
            )
        param = None
        if bounds:
            arg = node.args[-1]
            lo, hi = bounds
            if not isinstance(arg, Number) or not lo <= arg.value <= hi:
                shown = arg.value if isinstance(arg, Number) else (arg.text if isinstance(arg, Name) else arg.fn + "(...)")
                raise RecipeError(
                    f"{where} at column {arg.column}: {fn} {_PARAM_NAMES[fn]} must be a whole number "
                    f"from {lo} to {hi}, got {shown!r}"
                )
            param = arg.value
        expanded = [self.typed_args(fn, arg, where) for arg in node.args[:n_vars]]
        if n_vars == 1:
            combos = [(t,) for t in expanded[0]]
        else:
            combos = [(a, b) for a in expanded[0] for b in expanded[1]]
        return [Apply(fn, args, param, result_type(fn, tuple(a.type for a in args))) for args in combos]

    def typed_args(self, fn: str, node: Node, where: str) -> list[Term]:
        terms = self.resolve(node, where)
        for term in terms:
            if term.type not in ACCEPTS[fn]:
                what = term.name if isinstance(term, Var) else term.canonical
                raise RecipeError(
                    f"{where} at column {node.column}: {fn} expects {_either(ACCEPTS[fn])}, "
                    f"but {what!r} is {_article(term.type)}"
                )
            if fn in ("quantile_bin", "normalize") and not isinstance(term, Var):
                raise RecipeError(
                    f"{where} at column {node.column}: {fn} needs a NUMERIC variable of the datasource, "
                    f"not the derived value {term.canonical!r}"
                )
        return terms


def _either(types: tuple[str, ...]) -> str:
    words = [t if t not in ("BINNED", "TOKENS") else {"BINNED": "binned", "TOKENS": "token"}[t] for t in types]
    joined = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return f"a {joined} value"


def _article(kind: str) -> str:
    return {"BINNED": "a binned value", "TOKENS": "a token bag"}.get(kind, kind)


def _section(recipe: dict[str, Any], key: str) -> dict[str, str]:
    value = recipe.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecipeError(f"{key}: must be an object mapping names to expressions")
    for name, expr in value.items():
        if not isinstance(expr, str):
            raise RecipeError(f"{key}.{name}: must be an expression string")
    return value


def parse_recipe(text: str | dict[str, Any], schema: DataSchema) -> ParsedRecipe:
    """Validate ``text`` (recipe JSON or an already decoded dict) against
    the datasource's schema."""
    if isinstance(text, str):
        try:
            recipe = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecipeError(f"recipe at line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from None
    else:
        recipe = text
    if not isinstance(recipe, dict):
        raise RecipeError("recipe: must be a JSON object with groups, assignments and outputs")
    unknown = sorted(set(recipe) - {"groups", "assignments", "outputs"})
    if unknown:
        raise RecipeError(f"recipe: unknown section {unknown[0]!r} (expected groups, assignments, outputs)")
    groups, assignments = _section(recipe, "groups"), _section(recipe, "assignments")
    outputs = recipe.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise RecipeError("outputs: a non-empty list of expressions is required")

    resolver = _Resolver(schema, groups, assignments)
    resolver.check_definition_names()
    for name in groups:
        resolver.group(name, f"groups.{name}", 1)
    for name in assignments:
        resolver.assignment(name, f"assignments.{name}", 1)

    entries: list[OutputEntry] = []
    seen: dict[str, Term] = {}
    for i, source in enumerate(outputs):
        where = f"outputs[{i}]"
        if not isinstance(source, str):
            raise RecipeError(f"{where}: must be an expression string")
        terms = tuple(resolver.resolve(parse_expression(source, where), where))
        entries.append(OutputEntry(source, terms))
        for term in terms:
            seen.setdefault(term.canonical, term)
        if len(seen) > MAX_OUTPUT_TERMS:
            raise RecipeError(f"{where}: the recipe produces more than {MAX_OUTPUT_TERMS} output variables")
    return ParsedRecipe(tuple(entries), tuple(seen.values()), schema)
