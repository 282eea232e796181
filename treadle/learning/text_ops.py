"""Reference implementation of the text transformations on single values.

This is the single-record path (real-time Predict) and the readable
definition the numba kernels in ``token_kernels`` must match token for token,
in the same order.  Tokens are UTF-8 bytes.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .token_kernels import PUNCT_BYTES


def lowercase(text: str) -> str:
    # Arrow's utf8_lower lowers the batch path; Python's str.lower differs
    # from it on a few characters (e.g. U+0130), so only ASCII takes the
    # fast Python route.
    if text.isascii():
        return text.lower()
    return pc.utf8_lower(pa.scalar(text, pa.string())).as_py()


def tokens(text: str, strip_punct: bool = False) -> list[bytes]:
    """Whitespace tokens; with strip_punct, punctuation is trimmed from each
    token's ends and tokens of punctuation only disappear (no_punct)."""
    raw = [word.encode("utf-8") for word in text.split()]  # str.split: the cell grammar's whitespace
    if not strip_punct:
        return raw
    out = []
    for tok in raw:
        tok = tok.strip(PUNCT_BYTES)
        if tok:
            out.append(tok)
    return out


def ngrams(toks: list[bytes], size: int) -> list[bytes]:
    out = []
    for s in range(len(toks)):
        for e in range(s + 1, min(s + size, len(toks)) + 1):
            out.append(b" ".join(toks[s:e]))
    return out


def osb(toks: list[bytes], window: int) -> list[bytes]:
    out = []
    for s in range(len(toks)):
        for e in range(s + 1, min(s + window, len(toks))):
            out.append(toks[s] + b"_" * (e - s) + toks[e])
    return out


def cartesian(left: list[bytes], right: list[bytes]) -> list[bytes]:
    return [a + b"_" + b for a in left for b in right]
