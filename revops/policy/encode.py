"""Encode values for durable-rules' JSON parser, which reads less than JSON allows.

Measured on durable_rules_engine 2.0.28 (tests/policy/test_engine_safety.py repeats it in a
subprocess): a number written with an exponent and no decimal point (`1e-05`, `2e-07`,
`1e+16`, what Python's `repr` writes for |x| < 1e-4 or >= 1e16) stops the parser. As the
first fact of a batch it kills the process (SIGSEGV); later in a batch it silently drops
that fact and every fact after it. `1.0e-05` is read exactly, so every number goes out as
the shortest round-trip repr with a `.0` before any bare exponent: over 600 values from
1e-300 to 1.8e308 (and their neighbours) durable-rules then compares exactly as Python.

NaN and infinity have no JSON form and never leave Python: `as_double` refuses them (and
integers beyond a double) with a `FactError` naming the value, which the engine turns into
that channel's `error` decision.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from typing import Any

_MARK = "\x00" + secrets.token_hex(8) + ":"  # no fact string can guess it
_MARKED = re.compile(r'"\\u0000' + _MARK[1:] + r'([^"]*)"')
_DOUBLE_MAX = 1.7976931348623157e308
_ENCODER = json.JSONEncoder(allow_nan=False)  # made once: json.dumps builds one a call


class FactError(ValueError):
    """A value durable-rules cannot be given (not a finite double)."""


def number_text(value: float) -> str:
    """The text durable-rules reads as exactly this finite double: repr, with `.0` before a bare exponent."""
    text = repr(float(value))
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text


def as_double(value: Any, name: str) -> float:
    """The value as a finite float (bools and strings are not numbers here); raise FactError otherwise."""
    if isinstance(value, bool):
        raise FactError(f"{name} is a bool, not a number")
    try:
        number = float(value)
    except OverflowError:
        raise FactError(f"{name} is too large for a double ({_short(value)})") from None
    except (TypeError, ValueError):
        raise FactError(f"{name} is not a number ({_short(value)})") from None
    if not math.isfinite(number):
        raise FactError(f"{name} is not a finite number ({number})")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def dumps(obj: Any) -> str:
    """json.dumps for durable-rules: no bare exponents; NaN/inf raise ValueError.

    The fast path is one plain encoding; only text that may hold an exponent (rare: ratios
    under 1e-4, amounts over 1e16) is encoded again, and a list (a batch of facts) item by
    item, so that the floats are marked and encoded again in the items that hold one only.
    """
    if not isinstance(obj, list):
        return _dumps_item(obj)
    text = _ENCODER.encode(obj)
    if not _may_hold_exponent(text):
        return text
    return "[" + ", ".join(map(_dumps_item, obj)) + "]"  # json.dumps's own separator


def _dumps_item(obj: Any) -> str:
    text = _ENCODER.encode(obj)
    if not _may_hold_exponent(text):
        return text
    marked = _mark_numbers(obj)
    if marked is obj:  # the "e-" was in a string
        return text
    return _MARKED.sub(lambda m: m.group(1), _ENCODER.encode(marked))


def _may_hold_exponent(text: str) -> bool:
    # repr always signs an exponent: two substring tests (memchr speed) rule out most text.
    return "e-" in text or "e+" in text


def _mark_numbers(obj: Any) -> Any:
    """obj with each float that repr writes with an exponent (|x| < 1e-4 or >= 1e16) replaced
    by its marked number_text; obj itself (not a copy) when it holds none."""
    if obj.__class__ is float:
        return obj if obj == 0.0 or 1e-4 <= abs(obj) < 1e16 or obj != obj else _MARK + number_text(obj)
    if isinstance(obj, dict):
        items = [(k, _mark_numbers(v)) for k, v in obj.items()]
        return obj if all(v is obj[k] for k, v in items) else dict(items)
    if isinstance(obj, (list, tuple)):
        values = [_mark_numbers(v) for v in obj]
        return obj if all(a is b for a, b in zip(values, obj)) else values
    if isinstance(obj, float):  # a float subclass: json.dumps writes float.__repr__
        return _mark_numbers(float(obj))
    return obj
