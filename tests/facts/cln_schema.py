"""Validation of RPC responses against CLN's JSON schemas (copies in cln_schemas/).

CLN's schemas use custom types (msat, u32, pubkey, short_channel_id, hash, ...). pyln-testing
extends jsonschema's Draft7 type checker with them; this does the same, loosely: integer types
must be non-negative ints in range, string types must match a simple pattern.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema

SCHEMA_DIR = Path(__file__).with_name("cln_schemas")


def _is_int(lo: int, hi: int):
    return lambda checker, v: type(v) is int and lo <= v <= hi


def _matches(pattern: str):
    rx = re.compile(pattern)
    return lambda checker, v: isinstance(v, str) and rx.fullmatch(v) is not None


_CUSTOM = {
    "u8": _is_int(0, 2**8 - 1),
    "u16": _is_int(0, 2**16 - 1),
    "u32": _is_int(0, 2**32 - 1),
    "u64": _is_int(0, 2**64 - 1),
    "msat": _is_int(0, 2**64 - 1),
    "sat": _is_int(0, 2**64 - 1),
    "feerate": _is_int(0, 2**32 - 1),
    "pubkey": _matches(r"0[23][0-9a-f]{64}"),
    "short_channel_id": _matches(r"\d+x\d+x\d+"),
    "short_channel_id_dir": _matches(r"\d+x\d+x\d+/[01]"),
    "hash": _matches(r"[0-9a-f]{64}"),
    "txid": _matches(r"[0-9a-f]{64}"),
    "secret": _matches(r"[0-9a-f]{64}"),
    "hex": _matches(r"[0-9a-f]*"),  # pyln does not require an even length
    "point32": _matches(r"[0-9a-f]{64}"),
    "signature": _matches(r"[0-9a-f]+"),
    "outpoint": _matches(r"[0-9a-f]{64}:\d+"),
    "number": lambda checker, v: type(v) in (int, float),
}

_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(_CUSTOM),
)


@lru_cache(maxsize=None)
def response_validator(method: str) -> jsonschema.protocols.Validator:
    """Returns a validator for the response of `method` (a file in cln_schemas/)."""
    schema = json.loads((SCHEMA_DIR / f"{method}.json").read_text())["response"]
    return _Validator(schema)


def response_errors(method: str, response: object) -> list[str]:
    """Returns one line per schema violation of `response` (empty when valid)."""
    return [f"{method}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in response_validator(method).iter_errors(response)]
