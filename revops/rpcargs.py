"""The arguments of the revenue-* RPC methods, checked before anything runs.

Each checker returns the value in the type the runtime wants or raises `RequestError` with a
one-line message naming the argument, which plugin.py turns into a -32602 reply. Issue 12:
`revenue-decisions scid=<2^64>` overflowed SQLite, `revenue-capacity days=null` failed on a
format; every argument now meets a checker first.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

from revops.runtime import RequestError

SCID_RE = re.compile(r"\d{1,10}x\d{1,10}x\d{1,5}")
MAX_TEXT = 256  # longer strings are refused rather than echoed back or stored
INT64 = 2**63 - 1
MAX_UNIX_S = 2**40  # ~36,800 years: any larger `now` is a mistake, and overflows timestamps


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scid(value: Any, name: str = "scid", optional: bool = True) -> str | None:
    """A short channel id like 880001x1234x0 (None allowed when optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not SCID_RE.fullmatch(value):
        raise RequestError(f"{name} must be a short channel id string like 880001x1234x0, got {_show(value)}")
    return value


def integer(value: Any, name: str, lo: int, hi: int) -> int:
    """A whole number in lo..hi (a string of digits is accepted, as lightning-cli may send one)."""
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        value = int(value)
    elif isinstance(value, float) and value.is_integer() and abs(value) <= INT64:
        value = int(value)
    if type(value) is not int or not lo <= value <= hi:
        raise RequestError(f"{name} must be an integer from {lo} to {hi}, got {_show(value)}")
    return value


def number(value: Any, name: str, lo: float, hi: float, what: str) -> float:
    """A finite number with lo < value <= hi (a numeric string is accepted)."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            value = float(value)
        except ValueError:
            pass
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and (not isinstance(value, int) or abs(value) <= INT64))
    if not ok or not math.isfinite(value) or not lo < value <= hi:
        raise RequestError(f"{name} must be {what}, got {_show(value)}")
    return float(value)


def choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise RequestError(f"{name} must be one of {', '.join(choices)}, got {_show(value)}")
    return value


def text(value: Any, name: str, what: str, optional: bool = True) -> str | None:
    """A string of at most MAX_TEXT characters (None allowed when optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise RequestError(f"{name} must be {what}, got {_show(value)}")
    return value


def boolean(value: Any, name: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise RequestError(f"{name} must be true or false, got {_show(value)}")
    return value


def config_value(value: Any) -> Any:
    """A param override value: null (show the param), a bool, a finite number or a string."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > INT64:
            raise RequestError(f"value is too large: {_show(value)}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RequestError(f"value must be a finite number, got {_show(value)}")
        return value
    if isinstance(value, str):
        return text(value, "value", f"at most {MAX_TEXT} characters")
    raise RequestError(f"value must be a bool, a number or a string, got {_show(value)}")


def unix_time(value: Any, name: str = "now") -> float | None:
    if value is None:
        return None
    return number(value, name, 0, MAX_UNIX_S, "a unix time in seconds")
