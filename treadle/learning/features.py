"""Feature pipeline: a parsed recipe turned into sparse design matrices.

Two phases, kept apart like scikit-learn estimators:

* ``FeaturePipeline(recipe).fitter()`` accumulates, in one streaming pass,
  what needs training data: population mean/variance of numeric variables
  (``normalize`` and, by default, raw numeric outputs) and quantile-bin
  boundaries from a KLL sketch.  ``finish()`` returns a ``FittedPipeline``.
* ``FittedPipeline.transform(chunk)`` -> ``CsrBatch``;
  ``transform_record(record)`` -> the same row for one ``dict[str, str]``.

Feature identity and columns
    Every feature is identified by (term, token), where the term is the
    canonical text of one expanded output expression (``ngram(title,2)``) and
    the token is what it emits (see ``hashing`` for the exact string and
    hash).  The column is that identity hashed into ``2**hash_bits`` columns
    (default 2**22).  Hashing was chosen over a vocabulary because it needs no
    extra pass over the data, bounds memory whatever the text cardinality,
    makes the fitted state tiny (only numeric statistics) and gives the
    real-time path unseen tokens for free.  Distinct identities can share a
    column; with k active identities about k**2 / 2**(hash_bits+1) pairs
    collide (1M identities at 2**22: ~12% of identities share a column).  A
    linear learner tolerates this; raise ``hash_bits`` for text-heavy data.

What each term emits, per row (values add up if a column repeats)
    * NUMERIC (raw or ``normalize``): one value feature, or, when missing or
      invalid, a ``#missing`` indicator of 1 instead.  ``normalize`` always
      standardises with the training population mean/variance; raw numeric
      outputs are standardised too when ``standardize_numeric`` (the default)
      so that one SGD learning rate suits all features.  That is an affine
      change the model's bias absorbs, so it changes nothing a linear model
      can express, and it makes a missing value mean-imputed.
    * BINARY: 1.0 for true; false is the implicit sparse 0; ``#missing``
      indicator when missing/invalid.
    * CATEGORICAL: one-hot of the (transformed) value; empty is a category.
    * TEXT: one feature per whitespace token (unigrams), counts add up.
    * ngram / osb / cartesian: one feature per emitted token.
    * quantile_bin: one-hot of the bin number, or ``#missing``.
    No intercept column is added; that is the learner's job.

Row layout: features appear term by term in recipe order, then token order;
``transform_record`` produces exactly the batch row's (column, value) list.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ..data import cells
from ..data.schema import BINARY, NUMERIC, TEXT
from . import text_ops, token_kernels as K
from .chunks import Columns, string_buffers
from .fitting import NumericAccumulator, kll_k_for
from .hashing import column_of, hash_bytes, nb_columns, prefix_hash
from .recipe_parser import ParsedRecipe
from .terms import BINNED, Apply, Term, Var, term_from_dict

FORMAT = "treadle.features"
FORMAT_VERSION = 1
MISSING = b"#missing"
_BINARY_TOKENS = (b"0", b"1", MISSING)  # token view of a binary inside cartesian
_RECORD_CACHE_SIZE = 100_000  # per term; cleared when full, so memory stays bounded


@dataclass(frozen=True)
class PipelineOptions:
    hash_bits: int = 22
    standardize_numeric: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not 8 <= self.hash_bits <= 40:
            raise ValueError("hash_bits must be between 8 and 40")
        if self.dtype not in ("float32", "float64"):
            raise ValueError("dtype must be float32 or float64")


@dataclass
class CsrBatch:
    """A CSR design matrix: row i's columns are
    ``indices[indptr[i]:indptr[i+1]]``; a column may repeat within a row
    (its values add)."""

    indptr: np.ndarray  # int64
    indices: np.ndarray  # int32 when n_features <= 2**31, else int64
    data: np.ndarray  # float32 or float64
    n_features: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.data[a:b]

    def to_scipy(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_features))


# ------------------------------------------------------------- term helpers
def _text_chain(term: Term) -> tuple[Var, bool, bool]:
    """Peel lowercase/no_punct off a text or categorical term: (variable,
    lower, strip).  Lower-casing never creates or removes ASCII whitespace or
    punctuation, so the two commute and their order does not matter."""
    lower = strip = False
    while isinstance(term, Apply):
        if term.fn == "lowercase":
            lower = True
        elif term.fn == "no_punct":
            strip = True
        else:
            raise AssertionError(term.fn)
        term = term.args[0]
    return term, lower, strip


def _numeric_var(term: Term) -> Var:
    return term if isinstance(term, Var) else term.args[0]


def _needs(terms: Iterable[Term], standardize: bool) -> tuple[set[str], dict[str, int]]:
    """(variables needing moments, variable -> largest bin count)."""
    moments: set[str] = set()
    bins: dict[str, int] = {}

    def walk(t: Term, top: bool) -> None:
        if isinstance(t, Var):
            if top and t.type == NUMERIC and standardize:
                moments.add(t.name)
            return
        if t.fn == "normalize":
            moments.add(t.args[0].name)
        elif t.fn == "quantile_bin":
            name = t.args[0].name
            bins[name] = max(bins.get(name, 0), t.param)
        for a in t.args:
            walk(a, False)

    for t in terms:
        walk(t, True)
    return moments, bins


def _sub_terms(term: Term) -> Iterable[Term]:
    yield term
    if isinstance(term, Apply):
        for a in term.args:
            yield from _sub_terms(a)


# ---------------------------------------------------------------- fitting
class FeaturePipeline:
    """An unfitted pipeline: the recipe's terms plus options."""

    def __init__(self, recipe: ParsedRecipe | Iterable[Term], options: PipelineOptions | None = None):
        self.terms: tuple[Term, ...] = tuple(recipe.terms if isinstance(recipe, ParsedRecipe) else recipe)
        self.options = options or PipelineOptions()

    def fitter(self) -> "PipelineFitter":
        return PipelineFitter(self)

    def fit(self, chunks: Iterable[Any]) -> "FittedPipeline":
        fitter = self.fitter()
        for chunk in chunks:
            fitter.update(chunk)
        return fitter.finish()


class PipelineFitter:
    """Accumulates training statistics chunk by chunk (one pass)."""

    def __init__(self, pipeline: FeaturePipeline):
        self.pipeline = pipeline
        moments, bins = _needs(pipeline.terms, pipeline.options.standardize_numeric)
        names = sorted(moments | set(bins))
        self.acc = {n: NumericAccumulator(kll_k_for(bins[n]) if n in bins else None) for n in names}
        self.rows = 0

    def update(self, chunk: Any) -> None:
        cols = Columns(chunk)
        self.rows += cols.n_rows
        for name, acc in self.acc.items():
            acc.update(cells.numeric(cols.strings(name)).values)

    def merge(self, other: PipelineFitter) -> None:
        """Add another fitter's records of the same pipeline (a training shard's)."""
        self.rows += other.rows
        for name, acc in self.acc.items():
            acc.merge(other.acc[name])

    def finish(self) -> "FittedPipeline":
        numeric = {
            name: {"count": acc.moments.count, "mean": acc.moments.mean, "variance": acc.moments.variance}
            for name, acc in self.acc.items()
        }
        bins = {}
        for term in self.pipeline.terms:
            for t in _sub_terms(term):
                if isinstance(t, Apply) and t.fn == "quantile_bin":
                    bins[t.canonical] = self.acc[t.args[0].name].bin_edges(t.param)
        return FittedPipeline(self.pipeline.terms, self.pipeline.options, numeric, bins, self.rows)


# ------------------------------------------------------------- transforming
@dataclass
class _Plan:
    """Per-term constants precomputed once for both transform paths."""

    term: Term
    prefix_h: int
    value_col: int
    missing_col: int
    scale: tuple[float, float] | None  # (mean, std) when standardised
    # token -> column for the record path; real-time traffic repeats the same
    # categories and words, and a dict hit is ~10x cheaper than hashing.
    columns: dict[bytes, int] = field(default_factory=dict)


class FittedPipeline:
    def __init__(
        self,
        terms: Iterable[Term],
        options: PipelineOptions,
        numeric: Mapping[str, Mapping[str, float]],
        bins: Mapping[str, list[float]],
        training_rows: int = 0,
    ):
        self.terms = tuple(terms)
        self.options = options
        self.numeric = {k: dict(v) for k, v in numeric.items()}
        self.bins = {k: list(v) for k, v in bins.items()}
        self.training_rows = training_rows
        self.n_features = 1 << options.hash_bits
        self._mask = self.n_features - 1
        self._dtype = np.dtype(options.dtype)
        self._index_dtype = np.int32 if options.hash_bits <= 31 else np.int64
        self._edges = {k: np.asarray(v, dtype=np.float64) for k, v in self.bins.items()}
        self._label_h = {
            k: np.array([hash_bytes(str(i).encode()) for i in range(len(v) + 1)] + [hash_bytes(MISSING)], dtype=np.int64)
            for k, v in self.bins.items()
        }
        self._label_ln = {
            k: np.array([len(str(i)) for i in range(len(v) + 1)] + [len(MISSING)], dtype=np.int64)
            for k, v in self.bins.items()
        }
        self._edge_lists = {k: [float(e) for e in v] for k, v in self.bins.items()}
        self._labels = {k: [str(i).encode() for i in range(len(v) + 1)] for k, v in self.bins.items()}
        self._plans = [self._plan(t) for t in self.terms]

    def _plan(self, term: Term) -> _Plan:
        p = prefix_hash(term.canonical)
        scale = None
        if term.type == NUMERIC and (isinstance(term, Apply) or self.options.standardize_numeric):
            stats = self.numeric[_numeric_var(term).name]
            std = math.sqrt(stats["variance"])
            scale = (stats["mean"], std if std > 0 else 1.0)
        return _Plan(term, p, column_of(p, b"", self._mask), column_of(p, MISSING, self._mask), scale)

    # ---- batch ---------------------------------------------------------
    def transform(self, chunk: Any) -> CsrBatch:
        cols = Columns(chunk)
        memo: dict[str, Any] = {}
        n = cols.n_rows
        parts = [self._emit(plan, cols, memo) for plan in self._plans]
        counts = np.stack([p[0] for p in parts]) if parts else np.zeros((0, n), dtype=np.int64)
        sizes = [p[1].shape[0] for p in parts]
        term_starts = np.zeros(len(parts), dtype=np.int64)
        if parts:
            np.cumsum(sizes[:-1], out=term_starts[1:])
        all_cols = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        all_vals = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=self._dtype)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts.sum(axis=0), out=indptr[1:])
        indices = np.empty(int(indptr[-1]), dtype=self._index_dtype)
        data = np.empty(int(indptr[-1]), dtype=self._dtype)
        K.scatter_rows(counts, term_starts, all_cols, all_vals, indices, data)
        return CsrBatch(indptr, indices, data, self.n_features)

    def _emit(self, plan: _Plan, cols: Columns, memo: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        term, n = plan.term, cols.n_rows
        if term.type == NUMERIC:
            values = self._numeric(term, cols, memo)
            missing = np.isnan(values)
            if plan.scale is not None:
                values = (values - plan.scale[0]) / plan.scale[1]
            c = np.where(missing, plan.missing_col, plan.value_col).astype(np.int64)
            v = np.where(missing, 1.0, values).astype(self._dtype)
            return np.ones(n, dtype=np.int64), c, v
        if term.type == BINARY and isinstance(term, Var):
            codes = self._binary(term, cols, memo)
            keep = codes != 0
            c = np.where(codes[keep] > 0, plan.value_col, plan.missing_col).astype(np.int64)
            return keep.astype(np.int64), c, np.ones(c.shape[0], dtype=self._dtype)
        counts, h, ln = self._bag(term, cols, memo)
        c = np.empty(h.shape[0], dtype=np.int64)
        nb_columns(h, ln, plan.prefix_h, self._mask, c)
        return counts, c, np.ones(h.shape[0], dtype=self._dtype)

    def _numeric(self, term: Term, cols: Columns, memo: dict) -> np.ndarray:
        name = _numeric_var(term).name
        key = ("num", name)
        if key not in memo:
            memo[key] = cells.numeric(cols.strings(name)).values
        return memo[key]

    def _binary(self, var: Var, cols: Columns, memo: dict) -> np.ndarray:
        key = ("bin", var.name)
        if key not in memo:
            memo[key] = cells.binary_codes(cols.strings(var.name))
        return memo[key]

    def _strings(self, var: Var, lower: bool, cols: Columns, memo: dict) -> pa.Array:
        key = ("str", var.name, lower)
        if key not in memo:
            arr = cols.strings(var.name)
            memo[key] = pc.utf8_lower(arr) if lower else arr
        return memo[key]

    def _bag(self, term: Term, cols: Columns, memo: dict):
        key = ("bag", term.canonical)
        if key in memo:
            return memo[key]
        if term.type == BINARY:
            codes = self._binary(term, cols, memo)
            idx = np.where(codes < 0, 2, codes)
            hs = np.array([hash_bytes(t) for t in _BINARY_TOKENS], dtype=np.int64)
            ls = np.array([len(t) for t in _BINARY_TOKENS], dtype=np.int64)
            bag = (np.ones(cols.n_rows, dtype=np.int64), hs[idx], ls[idx])
        elif term.type == BINNED:
            values = self._numeric(term, cols, memo)
            edges = self._edges[term.canonical]
            idx = np.searchsorted(edges, values, side="left")
            idx[np.isnan(values)] = len(edges) + 1
            bag = (np.ones(cols.n_rows, dtype=np.int64), self._label_h[term.canonical][idx],
                   self._label_ln[term.canonical][idx])
        elif isinstance(term, Apply) and term.fn in ("ngram", "osb"):
            counts, h, ln = self._tokens(term.args[0], cols, memo)
            kernel = K.ngrams if term.fn == "ngram" else K.osb_pairs
            bag = kernel(counts, h, ln, term.param)
        elif isinstance(term, Apply) and term.fn == "cartesian":
            bag = K.cartesian_pairs(*self._bag(term.args[0], cols, memo), *self._bag(term.args[1], cols, memo))
        elif term.type == TEXT:
            bag = self._tokens(term, cols, memo)
        else:  # CATEGORICAL value, possibly lower-cased / punctuation-trimmed
            var, lower, strip = _text_chain(term)
            if strip:
                bag = K.join_tokens(*self._tokens(term, cols, memo))
            else:
                bag = K.whole_values(*string_buffers(cells.trim(self._strings(var, lower, cols, memo))))
        memo[key] = bag
        return bag

    def _tokens(self, term: Term, cols: Columns, memo: dict):
        var, lower, strip = _text_chain(term)
        key = ("tok", var.name, lower, strip)
        if key not in memo:
            offsets, data = string_buffers(self._strings(var, lower, cols, memo))
            memo[key] = K.tokenize(offsets, data, strip, K.PUNCT)
        return memo[key]

    # ---- one record ------------------------------------------------------
    def transform_record(self, record: Mapping[str, str]) -> tuple[list[int], list[float]]:
        """(columns, values) of one record, equal to its row of
        ``transform`` (values before the cast to ``dtype``)."""
        out_c: list[int] = []
        out_v: list[float] = []
        mask = self._mask
        for plan in self._plans:
            term = plan.term
            if term.type == NUMERIC:
                x = cells.number_value(record.get(_numeric_var(term).name) or "")
                if x != x:
                    out_c.append(plan.missing_col)
                    out_v.append(1.0)
                else:
                    out_c.append(plan.value_col)
                    out_v.append((x - plan.scale[0]) / plan.scale[1] if plan.scale else x)
            elif term.type == BINARY and isinstance(term, Var):
                code = cells.binary_value(record.get(term.name) or "")
                if code:
                    out_c.append(plan.value_col if code > 0 else plan.missing_col)
                    out_v.append(1.0)
            else:
                cache = plan.columns
                for tok in self._record_bag(term, record):
                    col = cache.get(tok)
                    if col is None:
                        if len(cache) >= _RECORD_CACHE_SIZE:
                            cache.clear()
                        col = cache[tok] = column_of(plan.prefix_h, tok, mask)
                    out_c.append(col)
                    out_v.append(1.0)
        return out_c, out_v

    def _record_bag(self, term: Term, record: Mapping[str, str]) -> list[bytes]:
        if term.type == BINARY:
            code = cells.binary_value(record.get(term.name) or "")
            return [_BINARY_TOKENS[code if code >= 0 else 2]]
        if term.type == BINNED:
            x = cells.number_value(record.get(term.args[0].name) or "")
            if x != x:
                return [MISSING]
            key = term.canonical
            return [self._labels[key][bisect.bisect_left(self._edge_lists[key], x)]]
        if isinstance(term, Apply) and term.fn in ("ngram", "osb"):
            toks = self._record_tokens(term.args[0], record)
            return text_ops.ngrams(toks, term.param) if term.fn == "ngram" else text_ops.osb(toks, term.param)
        if isinstance(term, Apply) and term.fn == "cartesian":
            return text_ops.cartesian(self._record_bag(term.args[0], record), self._record_bag(term.args[1], record))
        if term.type == TEXT:
            return self._record_tokens(term, record)
        var, lower, strip = _text_chain(term)
        text = record.get(var.name) or ""
        if lower:
            text = text_ops.lowercase(text)
        return [b" ".join(text_ops.tokens(text, True))] if strip else [text.strip().encode("utf-8")]

    def _record_tokens(self, term: Term, record: Mapping[str, str]) -> list[bytes]:
        var, lower, strip = _text_chain(term)
        text = record.get(var.name) or ""
        return text_ops.tokens(text_ops.lowercase(text) if lower else text, strip)

    # ---- persistence -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able state; ``from_dict`` needs no recipe or schema."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "options": {
                "hash_bits": self.options.hash_bits,
                "standardize_numeric": self.options.standardize_numeric,
                "dtype": self.options.dtype,
            },
            "terms": [t.to_dict() for t in self.terms],
            "numeric": self.numeric,
            "bins": self.bins,
            "training_rows": self.training_rows,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FittedPipeline":
        if d.get("format") != FORMAT or d.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} document")
        return cls(
            [term_from_dict(t) for t in d["terms"]],
            PipelineOptions(**d["options"]),
            d["numeric"],
            d["bins"],
            d.get("training_rows", 0),
        )


__all__ = ["CsrBatch", "FeaturePipeline", "FittedPipeline", "PipelineFitter", "PipelineOptions"]
