"""DataRearrangement parsing and record selection (docs/behaviour.md, "Data rearrangement")."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from treadle.data.sha256_batch import digest_words


class RearrangementError(ValueError):
    """The DataRearrangement text is unusable; the message says exactly why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Split:
    begin: float = 0
    end: float = 100
    complement: bool = False
    strategy: str = "sequential"
    seed: str = ""

    @property
    def selects_everything(self) -> bool:
        return not self.complement and self.begin <= 0 and self.end >= 100

    def select(self, offsets: np.ndarray, total_size: int) -> np.ndarray:
        """Boolean mask over records given by the byte offset of their first byte.

        `offsets` count across all of the datasource's files in listing order;
        `total_size` is the datasource's size in bytes (only the sequential
        strategy needs it).
        """
        offsets = np.asarray(offsets, dtype=np.int64)
        if self.selects_everything:
            return np.ones(len(offsets), dtype=bool)
        if self.strategy == "random":
            numbers = random_numbers(self.seed, offsets)
            inside = (numbers >= self.begin) & (numbers < self.end)
        else:
            if total_size <= 0:
                inside = np.zeros(len(offsets), dtype=bool)
            else:
                # Compare offset*100 with percent*size rather than dividing:
                # integer percents stay exact for any datasource below 90 PB.
                scaled = offsets.astype(np.float64) * 100.0
                inside = (scaled >= self.begin * total_size) & (scaled < self.end * total_size)
        return ~inside if self.complement else inside


def random_number(seed: str, offset: int) -> int:
    """A random split's number of a record: the first 8 digest bytes read big-endian, mod 100."""
    digest = hashlib.sha256(f"{seed}:{offset}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def random_numbers(seed: str, offsets: np.ndarray) -> np.ndarray:
    """`random_number` for many offsets at once, as an int64 array."""
    words = digest_words(f"{seed}:".encode(), np.asarray(offsets, dtype=np.int64))
    return (words % np.uint64(100)).astype(np.int64)


_SPLITTING_KEYS = {"percentBegin", "percentEnd", "complement", "strategy", "strategyParams", "randomSeed"}


def _percent(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RearrangementError(f"{key} must be a number between 0 and 100, not {json.dumps(value)}")
    if not 0 <= value <= 100:
        raise RearrangementError(f"{key} must be between 0 and 100, not {value}")
    return value


def _seed(value, where: str) -> str:
    if not isinstance(value, str):
        raise RearrangementError(f"{where} must be a string, not {json.dumps(value)}")
    return value


def parse_rearrangement(text: str | None) -> Split:
    """Parse a DataRearrangement string; None or blank means all the data."""
    if text is None or not text.strip():
        return Split()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RearrangementError(f"DataRearrangement is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RearrangementError("DataRearrangement must be a JSON object")
    unknown = sorted(set(obj) - {"splitting", "randomSeed"})
    if unknown:
        raise RearrangementError(f'unknown DataRearrangement key "{unknown[0]}"')
    splitting = obj.get("splitting", {})
    if not isinstance(splitting, dict):
        raise RearrangementError("splitting must be a JSON object")
    unknown = sorted(set(splitting) - _SPLITTING_KEYS)
    if unknown:
        raise RearrangementError(f'unknown splitting key "{unknown[0]}"')

    begin = _percent(splitting.get("percentBegin", 0), "percentBegin")
    end = _percent(splitting.get("percentEnd", 100), "percentEnd")
    if not begin < end:
        raise RearrangementError(f"percentBegin ({begin}) must be less than percentEnd ({end})")

    complement = splitting.get("complement", False)
    if isinstance(complement, str) and complement.lower() in ("true", "false"):
        complement = complement.lower() == "true"
    if not isinstance(complement, bool):
        raise RearrangementError(f'complement must be true or false, not {json.dumps(complement)}')

    strategy = splitting.get("strategy", "sequential")
    if not isinstance(strategy, str) or strategy.lower() not in ("sequential", "random"):
        raise RearrangementError(f'strategy must be "sequential" or "random", not {json.dumps(strategy)}')

    # The documented place first, then the two others (docs/behaviour.md, "Data rearrangement").
    seed = ""
    params = splitting.get("strategyParams")
    if params is not None:
        if not isinstance(params, dict):
            raise RearrangementError("strategyParams must be a JSON object")
        unknown = sorted(set(params) - {"randomSeed"})
        if unknown:
            raise RearrangementError(f'unknown strategyParams key "{unknown[0]}"')
    if params and "randomSeed" in params:
        seed = _seed(params["randomSeed"], "strategyParams.randomSeed")
    elif "randomSeed" in splitting:
        seed = _seed(splitting["randomSeed"], "splitting.randomSeed")
    elif "randomSeed" in obj:
        seed = _seed(obj["randomSeed"], "randomSeed")

    return Split(begin=begin, end=end, complement=complement, strategy=strategy.lower(), seed=seed)
