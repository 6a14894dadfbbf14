"""lightningd's parameter conventions, as the simulated RPC needs them.

Mirrors common/json_param.c: positional (array) or keyword (object) params bound to an
ordered parameter list, JSON null skipped in positional form, and bad values reported as
`<name>: <why>: invalid token (see logs for details)` (non-developer form of
command_fail_badparam). Every failure raises `RpcError` with CLN's code and wording.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from revops.sim.errors import INVALID_PARAMS, RpcError

_UNKNOWN_PARAM = ("unknown parameter: {name}, this may be caused by a failure to autodetect "
                  "key=value-style parameters. Please try using the -k flag and explicit "
                  "key=value pairs of parameters.")

_SCID_RE = re.compile(r"^(\d+)x(\d+)x(\d+)$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]*$")
_MSAT_RE = re.compile(r"^(\d+)(msat)?$")
_SAT_RE = re.compile(r"^(\d+)(?:\.(\d{3}))?sat$")
_BTC_RE = re.compile(r"^(\d+)(?:\.(\d{1,11}))?btc$")


def badparam(name: str, why: str) -> RpcError:
    """Return the -32602 error lightningd gives for a parameter that failed to parse."""
    return RpcError(INVALID_PARAMS, f"{name}: {why}: invalid token (see logs for details)")


def bind(params: Any, spec: list[tuple[str, bool]]) -> dict[str, Any]:
    """Bind positional or keyword `params` to `spec` [(name, required)]; return {name: raw}.

    Raises the same errors as lightningd's param(): too many parameters, unknown parameter,
    duplicate names are impossible in a dict, missing required parameter.
    """
    out: dict[str, Any] = {}
    if params is None:
        params = {}
    if isinstance(params, list):
        if len(params) > len(spec):
            raise RpcError(INVALID_PARAMS,
                           f"too many parameters: got {len(params)}, expected {len(spec)}")
        for (name, _), value in zip(spec, params):
            if value is not None:
                out[name] = value
    elif isinstance(params, dict):
        names = {n for n, _ in spec}
        for key, value in params.items():
            if key not in names:
                raise RpcError(INVALID_PARAMS, _UNKNOWN_PARAM.format(name=key))
            out[key] = value
    else:
        raise RpcError(INVALID_PARAMS, "Expected array or object for params")
    for name, required in spec:
        if required and name not in out:
            raise RpcError(INVALID_PARAMS, f"missing required parameter: {name}")
    return out


def parse_msat(value: Any) -> int | None:
    """Return msat for an int or a "1000msat" / "1sat" / "1.000sat" / "0.001btc" string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    m = _MSAT_RE.match(value)
    if m:
        return int(m.group(1))
    m = _SAT_RE.match(value)
    if m:
        return int(m.group(1)) * 1000 + int(m.group(2) or 0)
    m = _BTC_RE.match(value)
    if m:
        frac = (m.group(2) or "").ljust(11, "0")
        return int(m.group(1)) * 100_000_000_000 + int(frac)
    return None


def msat_param(name: str, value: Any) -> int:
    """Parse an msat parameter or raise "should be a millisatoshi amount"."""
    msat = parse_msat(value)
    if msat is None:
        raise badparam(name, "should be a millisatoshi amount")
    return msat


def _int_like(value: Any) -> int | None:
    # lightningd's json_to_number/u32/u64 accept a JSON number token; pyln and lightning-cli
    # may also pass numbers as strings ("600"), which the token parser reads the same way.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def u32_param(name: str, value: Any, why: str = "should be an unsigned 32 bit integer") -> int:
    """Parse a u32 parameter (param_u32 / param_number wording via `why`)."""
    n = _int_like(value)
    if n is None or not 0 <= n < 2**32:
        raise badparam(name, why)
    return n


def u64_param(name: str, value: Any) -> int:
    """Parse a u64 parameter or raise "should be an unsigned 64 bit integer"."""
    n = _int_like(value)
    if n is None or not 0 <= n < 2**64:
        raise badparam(name, "should be an unsigned 64 bit integer")
    return n


def bool_param(name: str, value: Any) -> bool:
    """Parse a bool parameter (JSON bool or "true"/"false") or raise."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise badparam(name, "should be 'true' or 'false'")


def is_scid(value: Any) -> bool:
    """True if `value` is a short channel id string `BLOCKxTXxOUT` within BOLT 7 bounds."""
    if not isinstance(value, str):
        return False
    m = _SCID_RE.match(value)
    if not m:
        return False
    b, t, o = (int(g) for g in m.groups())
    return b < 2**24 and t < 2**24 and o < 2**16


def scid_param(name: str, value: Any) -> str:
    """Parse a short_channel_id parameter or raise "should be a short_channel_id of form NxNxN"."""
    if not is_scid(value):
        raise badparam(name, "should be a short_channel_id of form NxNxN")
    return value


def is_hex(value: Any, length: int | None = None) -> bool:
    """True if `value` is a hex string (of `length` characters when given)."""
    return (isinstance(value, str) and bool(_HEX_RE.match(value))
            and (length is None or len(value) == length))


def is_node_id(value: Any) -> bool:
    """True if `value` looks like a compressed pubkey (66 hex, 02/03 prefix)."""
    return is_hex(value, 66) and value[:2] in ("02", "03")


def node_id_param(name: str, value: Any) -> str:
    """Parse a node id parameter or raise "should be a node id"."""
    if not is_node_id(value):
        raise badparam(name, "should be a node id")
    return value.lower()


def channel_id_param(name: str, value: Any) -> str:
    """Parse a 32-byte channel id parameter or raise "should be a channel id"."""
    if not is_hex(value, 64):
        raise badparam(name, "should be a channel id")
    return value.lower()


def enum_param(name: str, value: Any, allowed: tuple[str, ...], why: str) -> str:
    """Parse a string from `allowed` or raise with `why`."""
    if value not in allowed:
        raise badparam(name, why)
    return value


Parser = Callable[[str, Any], Any]
