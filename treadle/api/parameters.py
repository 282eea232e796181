"""CreateMLModel's training parameters (docs/behaviour.md, "Training")."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..protocol.errors import InvalidInputException


@dataclass(frozen=True)
class Parameter:
    """One training parameter: its API default and what values it takes
    (a whole number in [low, high], an amount >= 0, or one of `choices`)."""
    key: str
    default: str
    kind: str  # "integer", "amount" or "choice"
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()

    def normalize(self, text: str) -> str:
        """The value as TrainingParameters echoes it; InvalidInputException
        naming the key when it is not one this parameter takes."""
        if self.kind == "integer":
            return _integer(self.key, text, self.low, self.high)
        if self.kind == "amount":
            return _amount(self.key, text)
        value = text.strip().lower()
        if value not in self.choices:
            raise InvalidInputException(f"Parameters {self.key} must be {' or '.join(self.choices)}, got {text!r}")
        return value


PARAMETERS = (
    Parameter("sgd.maxMLModelSizeInBytes", "33554432", "integer", 100000, 2147483648),
    Parameter("sgd.maxPasses", "10", "integer", 1, 10000),
    Parameter("sgd.shuffleType", "none", "choice", choices=("auto", "none")),
    Parameter("sgd.l1RegularizationAmount", "0.0", "amount"),
    Parameter("sgd.l2RegularizationAmount", "0.0", "amount"),
)
DEFAULTS = {parameter.key: parameter.default for parameter in PARAMETERS}
BOTH_REGULARIZATIONS = ("Parameters sgd.l1RegularizationAmount and sgd.l2RegularizationAmount cannot both be set")


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
    result = {parameter.key: parameter.normalize(merged[parameter.key]) for parameter in PARAMETERS}
    if float(result["sgd.l1RegularizationAmount"]) > 0 and float(result["sgd.l2RegularizationAmount"]) > 0:
        raise InvalidInputException(BOTH_REGULARIZATIONS)
    result["algorithm"] = "sgd"
    return result
