"""Number spellings of the real service.

* ``java_double(x)``: Java's ``Double.toString`` (evaluation metrics are
  strings such as ``"29853.250469108018"``: docs/behaviour.md, "Evaluations").  Digits are the
  shortest that round-trip, as Python's ``repr`` and Java 19+ both produce;
  plain notation for 1e-3 <= |x| < 1e7, else ``d.dddE<n>``.
* ``prediction_strings(values)``: Java ``DecimalFormat("0.######E0")``
  applied to a float (docs/behaviour.md, "Batch prediction output"): the float32
  value rounded half-even to at most 7 significant digits, trailing zeros
  dropped, ``E`` exponent without ``+``: ``8.7642E-3``, ``1E0``.  A numba
  kernel writes all strings into one buffer, so millions format in well
  under a second.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from numba import njit


def java_double(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    digits, exp = _shortest_digits(abs(x))  # value = 0.d1d2... * 10**exp
    if 1e-3 <= abs(x) < 1e7:
        if exp <= 0:
            return f"{sign}0.{'0' * -exp}{digits}"
        if exp >= len(digits):
            return f"{sign}{digits}{'0' * (exp - len(digits))}.0"
        return f"{sign}{digits[:exp]}.{digits[exp:]}"
    frac = digits[1:] or "0"
    return f"{sign}{digits[0]}.{frac}E{exp - 1}"


def _shortest_digits(x: float) -> tuple[str, int]:
    mant, _, e = repr(x).partition("e")
    intpart, _, frac = mant.partition(".")
    digits = (intpart + frac).lstrip("0")
    exp = len(intpart) + (int(e) if e else 0)
    if intpart == "0":
        stripped = frac.lstrip("0")
        exp -= 1 + (len(frac) - len(stripped))
        digits = stripped
    return digits.rstrip("0") or "0", exp


_POW10 = np.array([10.0 ** k for k in range(23)])


@njit(cache=True)
def _format_kernel(values, out, offsets):
    pos = 0
    for i in range(values.shape[0]):
        offsets[i] = pos
        v = values[i]
        if v != v:
            for ch in b"NaN":
                out[pos] = ch
                pos += 1
            continue
        if v < 0.0 or (v == 0.0 and math.copysign(1.0, v) < 0.0):
            out[pos] = 45  # '-'
            pos += 1
            v = -v
        if v == math.inf:
            # Java's DecimalFormatSymbols infinity is U+221E
            out[pos] = 0xE2
            out[pos + 1] = 0x88
            out[pos + 2] = 0x9E
            pos += 3
            continue
        if v == 0.0:
            out[pos] = 48
            out[pos + 1] = 69
            out[pos + 2] = 48
            pos += 3
            continue
        e = int(math.floor(math.log10(v)))
        m = 0
        for _ in range(3):  # log10 can be one off next to powers of ten
            k = 6 - e
            if 0 <= k <= 22:
                scaled = v * _POW10[k]
            elif -22 <= k < 0:
                scaled = v / _POW10[-k]
            else:
                scaled = v * 10.0 ** k
            m = int(np.rint(scaled))  # half-even, like DecimalFormat
            if m >= 10_000_000:
                e += 1
            elif m < 1_000_000:
                e -= 1
            else:
                break
        if m >= 10_000_000:  # 9999999.5 rounded up
            m //= 10
            e += 1
        digits = np.empty(7, np.uint8)
        for d in range(6, -1, -1):
            digits[d] = 48 + m % 10
            m //= 10
        last = 6
        while last > 0 and digits[last] == 48:
            last -= 1
        out[pos] = digits[0]
        pos += 1
        if last > 0:
            out[pos] = 46  # '.'
            pos += 1
            for d in range(1, last + 1):
                out[pos] = digits[d]
                pos += 1
        out[pos] = 69  # 'E'
        pos += 1
        if e < 0:
            out[pos] = 45
            pos += 1
            e = -e
        start = pos
        if e == 0:
            out[pos] = 48
            pos += 1
        while e > 0:
            out[pos] = 48 + e % 10
            pos += 1
            e //= 10
        a, b = start, pos - 1
        while a < b:
            t = out[a]
            out[a] = out[b]
            out[b] = t
            a += 1
            b -= 1
    offsets[values.shape[0]] = pos


def prediction_strings(values) -> pa.StringArray:
    """Batch-prediction spellings of ``values`` (rounded to float32 first)."""
    v = np.ascontiguousarray(np.asarray(values, dtype=np.float32).astype(np.float64).ravel())
    out = np.empty(v.shape[0] * 16, dtype=np.uint8)
    offsets = np.empty(v.shape[0] + 1, dtype=np.int32)
    _format_kernel(v, out, offsets)
    return pa.StringArray.from_buffers(len(v), pa.py_buffer(offsets), pa.py_buffer(out[: offsets[-1]].copy()))


def format_prediction(value: float) -> str:
    return prediction_strings([value])[0].as_py()


__all__ = ["format_prediction", "java_double", "prediction_strings"]
