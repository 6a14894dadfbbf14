"""Validate JSON against CLN's own schemas (tests/data/cln-schemas, copied from doc/schemas v26.06).

CLN's schemas use custom types (msat, u32, pubkey, short_channel_id, ...); like pyln-testing's
validator, this extends jsonschema's Draft 7 type checker with them.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import jsonschema
import pytest

SCHEMA_DIR = Path(__file__).resolve().parent / "data" / "cln-schemas"


# -- CLN's custom types --------------------------------------------------------------
def _is_hex(checker, v):
    return isinstance(v, str) and all(c in string.hexdigits for c in v)


def _uint(bits):
    return lambda checker, v: (isinstance(v, int) and not isinstance(v, bool)
                               and 0 <= v < 2**bits)


def _is_scid(checker, v):
    if not isinstance(v, str):
        return False
    parts = v.split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return False
    b, t, o = (int(p) for p in parts)
    return b < 2**24 and t < 2**24 and o < 2**16


def _is_outpoint(checker, v):
    if not isinstance(v, str) or v.count(":") != 1:
        return False
    txid, out = v.split(":")
    return len(txid) == 64 and _is_hex(checker, txid) and out.isdigit() and int(out) < 2**32


def _is_feerate(checker, v):
    if isinstance(v, int) and not isinstance(v, bool):
        return True
    if not isinstance(v, str):
        return False
    if v in ("urgent", "normal", "slow", "minimum", "opening", "mutual_close",
             "unilateral_close", "penalty", "min_acceptable", "max_acceptable"):
        return True
    return (v.endswith("perkw") or v.endswith("perkb")) and v[:-5].isdigit()


TYPES = {
    "hex": _is_hex,
    "hash": lambda c, v: _is_hex(c, v) and len(v) == 64,
    "secret": lambda c, v: _is_hex(c, v) and len(v) == 64,
    "txid": lambda c, v: _is_hex(c, v) and len(v) == 64,
    "u64": _uint(64), "u32": _uint(32), "u16": _uint(16), "u8": _uint(8),
    "pubkey": lambda c, v: _is_hex(c, v) and len(v) == 66 and v[:2] in ("02", "03"),
    "msat": lambda c, v: type(v) is int and v >= 0,
    "short_channel_id": _is_scid,
    "outpoint": _is_outpoint,
    "feerate": _is_feerate,
    "signature": lambda c, v: _is_hex(c, v) and len(v) <= 144,
}
Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(TYPES))


def _load(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())


_validators: dict[str, jsonschema.protocols.Validator] = {}


def validator(name: str) -> jsonschema.protocols.Validator:
    """Return the validator for the `response` part of schema `name` (e.g. notification/x)."""
    if name not in _validators:
        _validators[name] = Validator(_load(name)["response"])
    return _validators[name]


def check(name: str, obj) -> None:
    """Assert `obj` validates against schema `name`'s response, with a readable failure."""
    errors = sorted(validator(name).iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        pytest.fail(f"{name}: {len(errors)} schema error(s); first at "
                    f"{'/'.join(map(str, e.absolute_path))}: {e.message}")


def response_errors(method: str, response) -> list[str]:
    """Every schema error of `response` as "path: message" (empty when it is valid)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(method).iter_errors(response)]
