"""Tokens of one recipe expression string (a group, assignment or output)."""
from __future__ import annotations

from typing import NamedTuple

from .errors import RecipeError

# Characters that end a bare name.  Space is not among them: the DG only
# requires quoting for , ' " tab CR LF ( ) and backslash, so a bare name may
# contain inner spaces; surrounding spaces are trimmed.
_STOP = set(",()'\"")


class Token(NamedTuple):
    kind: str  # "bare", "quoted", "(", ")", ",", "end"
    text: str
    column: int  # 1-based column in the expression string


def tokenize(source: str, where: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif source.startswith("//", i):
            break  # comment runs to the end of the entry
        elif ch in "(),":
            tokens.append(Token(ch, ch, i + 1))
            i += 1
        elif ch in "'\"":
            i = _quoted(source, i, where, tokens)
        else:
            start = i
            while i < n and source[i] not in _STOP and not source.startswith("//", i):
                if source[i] in "\\\t\r\n":
                    raise RecipeError(
                        f"{where} at column {i + 1}: character {source[i]!r} is only "
                        "allowed inside a quoted name"
                    )
                i += 1
            tokens.append(Token("bare", source[start:i].rstrip(), start + 1))
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


def _quoted(source: str, start: int, where: str, out: list[Token]) -> int:
    quote = source[start]
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source):
            chars.append(source[i + 1])
            i += 2
        elif ch == quote:
            out.append(Token("quoted", "".join(chars), start + 1))
            return i + 1
        else:
            chars.append(ch)
            i += 1
    raise RecipeError(f"{where} at column {start + 1}: unterminated quoted name")
