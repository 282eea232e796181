"""Resolved recipe terms: one feature generator over concrete variables.

After group expansion every output entry becomes a list of terms such as
``ngram(lowercase(title),2)``.  A term's canonical text is part of each of its
features' identity, so it must never change for a given recipe.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Union

from ..data.schema import BINARY, CATEGORICAL, NUMERIC, TEXT

# Result types beyond the four attribute types.
BINNED = "BINNED"  # quantile_bin output: a categorical bin label
TOKENS = "TOKENS"  # ngram/osb output or a cartesian involving text: a token bag

_BARE_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*\Z")


def quote_name(name: str) -> str:
    if _BARE_SAFE.match(name) and "//" not in name:
        return name
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Var:
    name: str
    type: str

    @property
    def canonical(self) -> str:
        return quote_name(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"var": self.name, "type": self.type}


@dataclass(frozen=True)
class Apply:
    fn: str
    args: tuple["Term", ...]
    param: int | None
    type: str

    @cached_property  # the record path asks for it on every call
    def canonical(self) -> str:
        parts = [a.canonical for a in self.args]
        if self.param is not None:
            parts.append(str(self.param))
        return f"{self.fn}({','.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"fn": self.fn, "args": [a.to_dict() for a in self.args], "type": self.type}
        if self.param is not None:
            d["param"] = self.param
        return d


Term = Union[Var, Apply]


def term_from_dict(d: dict[str, Any]) -> Term:
    if "var" in d:
        return Var(d["var"], d["type"])
    return Apply(d["fn"], tuple(term_from_dict(a) for a in d["args"]), d.get("param"), d["type"])


def variables_of(term: Term) -> list[str]:
    if isinstance(term, Var):
        return [term.name]
    out: list[str] = []
    for arg in term.args:
        out.extend(v for v in variables_of(arg) if v not in out)
    return out


# Which argument types each transformation accepts, and what it yields.
TOKEN_LIKE = (TEXT, TOKENS, CATEGORICAL, BINARY, BINNED)


def result_type(fn: str, arg_types: tuple[str, ...]) -> str:
    if fn in ("lowercase", "no_punct"):
        return arg_types[0]
    if fn in ("ngram", "osb"):
        return TOKENS
    if fn == "quantile_bin":
        return BINNED
    if fn == "normalize":
        return NUMERIC
    if fn == "cartesian":
        return TOKENS if any(t in (TEXT, TOKENS) for t in arg_types) else CATEGORICAL
    raise KeyError(fn)


ACCEPTS: dict[str, tuple[str, ...]] = {
    "lowercase": (TEXT, CATEGORICAL),
    "no_punct": (TEXT, CATEGORICAL),
    "ngram": (TEXT,),
    "osb": (TEXT,),
    "quantile_bin": (NUMERIC,),
    "normalize": (NUMERIC,),
    "cartesian": TOKEN_LIKE,
}
