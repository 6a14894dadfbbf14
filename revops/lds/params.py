"""LDS settings, from the plugin's `revenue-lds-*` options. Each bad value is one clear error."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

API_KEY = re.compile(r"^[0-9a-f]{32}$")  # LNbits wallet keys are uuid4 hex
DEFAULT_CARRY = "flex:0.30,30d:0.15,90d:0,180d:0"


class LdsConfigError(ValueError):
    """An LDS option is invalid; the message names the option."""


@dataclass(frozen=True)
class LdsParams:
    lnbits_url: str
    operator_key: str
    max_liability_ratio: float = 0.85
    carry_by_tier: dict[str, float] = field(default_factory=dict)
    opex_msat_per_day: int = 0
    chain_cost_msat_per_day: int = 0  # amortised channel open and close costs
    twab_window_s: int = 72 * 3600
    snapshot_interval_s: int = 3600
    solvency_interval_s: int = 600


def parse_carry(text: str) -> dict[str, float]:
    """"flex:0.30,30d:0.15" -> {"flex": 0.3, "30d": 0.15}; each carry is a fraction in [0, 1]."""
    out: dict[str, float] = {}
    for part in str(text).split(","):
        name, sep, value = part.strip().partition(":")
        try:
            carry = float(value)
        except ValueError:
            carry = -1.0
        if not sep or not name or not 0 <= carry <= 1:
            raise LdsConfigError(f"revenue-lds-carry: {part.strip()!r} must be tier:fraction with a fraction "
                                 "from 0 to 1, e.g. flex:0.30,90d:0")
        out[name] = carry
    return out


def from_options(options: dict) -> LdsParams | None:
    """None when LDS is off (no LNbits URL)."""
    url = str(options.get("revenue-lds-lnbits-url") or "").rstrip("/")
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LdsConfigError(f"revenue-lds-lnbits-url must be an http(s) URL, got {url!r}")
    key = str(options.get("revenue-lds-operator-key") or "")
    if not API_KEY.match(key):
        raise LdsConfigError("revenue-lds-operator-key must be the operator wallet's admin key "
                             "(32 hex characters)")
    try:
        ratio = float(options.get("revenue-lds-max-liability-ratio", 0.85))
    except (TypeError, ValueError):
        ratio = -1.0
    if not 0 < ratio <= 1:
        raise LdsConfigError("revenue-lds-max-liability-ratio must be a number in (0, 1], e.g. 0.85")
    amounts = {}
    for name in ("revenue-lds-opex-sat-per-day", "revenue-lds-chain-cost-sat-per-day"):
        try:
            amounts[name] = int(str(options.get(name, 0)))
        except ValueError:
            amounts[name] = -1
        if amounts[name] < 0:
            raise LdsConfigError(f"{name} must be a whole number of sats, 0 or more")
    return LdsParams(url, key, ratio, parse_carry(options.get("revenue-lds-carry") or DEFAULT_CARRY),
                     amounts["revenue-lds-opex-sat-per-day"] * 1000,
                     amounts["revenue-lds-chain-cost-sat-per-day"] * 1000)
