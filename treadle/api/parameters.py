"""CreateMLModel's training parameters (spec Decision 1)."""
from __future__ import annotations

import math

from ..protocol.errors import InvalidInputException

DEFAULTS = {
    "sgd.maxMLModelSizeInBytes": "33554432",
    "sgd.maxPasses": "10",
    "sgd.shuffleType": "none",
    "sgd.l1RegularizationAmount": "0.0",
    "sgd.l2RegularizationAmount": "0.0",
}


def _integer(key: str, text: str, low: int, high: int) -> str:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInputException(f"Parameters {key} must be an integer, got {text!r}")
    if not low <= value <= high:
        raise InvalidInputException(f"Parameters {key} must be between {low} and {high}, got {value}")
    return str(value)


def _amount(key: str, text: str) -> str:
    try:
        value = float(text.strip())
    except ValueError:
        raise InvalidInputException(f"Parameters {key} must be a number, got {text!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidInputException(f"Parameters {key} must be a finite number >= 0, got {text!r}")
    return repr(value)


def normalize_parameters(given: dict[str, str] | None) -> dict[str, str]:
    """Validate and fill in defaults; the result is what TrainingParameters
    echoes (plus "algorithm")."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise InvalidInputException(
            f"Unknown training parameter(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **given}
    result = {
        "sgd.maxMLModelSizeInBytes": _integer(
            "sgd.maxMLModelSizeInBytes", merged["sgd.maxMLModelSizeInBytes"], 100000, 2147483648),
        "sgd.maxPasses": _integer("sgd.maxPasses", merged["sgd.maxPasses"], 1, 10000),
        "sgd.l1RegularizationAmount": _amount("sgd.l1RegularizationAmount", merged["sgd.l1RegularizationAmount"]),
        "sgd.l2RegularizationAmount": _amount("sgd.l2RegularizationAmount", merged["sgd.l2RegularizationAmount"]),
    }
    shuffle = merged["sgd.shuffleType"].strip().lower()
    if shuffle not in ("auto", "none"):
        raise InvalidInputException(f"Parameters sgd.shuffleType must be auto or none, got {merged['sgd.shuffleType']!r}")
    result["sgd.shuffleType"] = shuffle
    if float(result["sgd.l1RegularizationAmount"]) > 0 and float(result["sgd.l2RegularizationAmount"]) > 0:
        raise InvalidInputException(
            "Parameters sgd.l1RegularizationAmount and sgd.l2RegularizationAmount cannot both be set")
    result["algorithm"] = "sgd"
    return result
