"""Solvency: what the node owes investors against what it could pay out today.

physical = spendable local balance of usable channels − pending outgoing HTLCs
         + confirmed on-chain outputs − close reserve
The close reserve prices a unilateral close of every open channel at today's urgent feerate
(commitment plus an anchor CPFP child), never below a floor, plus an insurance margin: the
original design's flat 3,000 sat covered about 15 sat/vB (its red team's finding).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

USABLE_STATES = ("CHANNELD_NORMAL", "CHANNELD_AWAITING_SPLICE")
CLOSE_VBYTES = 300 + 200  # commitment transaction + CPFP child spending our anchor
RESERVE_FLOOR_SAT = 3000
INSURANCE = 0.10


@dataclass(frozen=True)
class Solvency:
    at_s: float
    liabilities_msat: int
    spendable_msat: int
    pending_out_msat: int
    onchain_msat: int
    close_reserve_msat: int
    physical_msat: int
    ratio: float | None  # liabilities / physical; None when physical <= 0
    max_ratio: float
    halted: bool
    reason: str

    def to_json(self) -> dict:
        return asdict(self)


def urgent_feerate_sat_vb(feerates: dict | None) -> float:
    """The highest of the unilateral-close and fastest estimates, in sat/vB (perkw × 4 / 1000)."""
    perkw = (feerates or {}).get("perkw") or {}
    candidates = [perkw.get("unilateral_close", 0), perkw.get("unilateral_anchor_close", 0)]
    candidates += [e.get("feerate", 0) for e in perkw.get("estimates", []) if e.get("blockcount", 99) <= 2]
    rate = max([c for c in candidates if isinstance(c, (int, float))] or [0])
    if rate <= 0:
        raise ValueError("feerates has no usable perkw rate: cannot price the close reserve")
    return rate * 4 / 1000


def close_reserve_msat(n_channels: int, feerates: dict | None) -> int:
    per_channel_sat = max(RESERVE_FLOOR_SAT, urgent_feerate_sat_vb(feerates) * CLOSE_VBYTES)
    return int(n_channels * per_channel_sat * (1 + INSURANCE) * 1000)


def assess(liabilities_msat: int, listpeerchannels: dict, listfunds: dict, feerates: dict,
           max_ratio: float, at_s: float) -> Solvency:
    spendable = pending_out = n_open = 0
    for ch in listpeerchannels.get("channels", []):
        if ch.get("state") not in USABLE_STATES:
            continue
        n_open += 1
        spendable += int(ch.get("spendable_msat") or 0)
        pending_out += sum(int(h.get("amount_msat") or 0) for h in ch.get("htlcs", [])
                           if h.get("direction") == "out")
    onchain = sum(int(o.get("amount_msat") or 0) for o in listfunds.get("outputs", [])
                  if o.get("status") == "confirmed" and not o.get("reserved"))
    reserve = close_reserve_msat(n_open, feerates)
    physical = spendable - pending_out + onchain - reserve
    ratio = liabilities_msat / physical if physical > 0 else None
    if ratio is None:
        halted = liabilities_msat > 0
        reason = "no physical liquidity after the close reserve" if halted else "no liabilities"
    else:
        halted = ratio > max_ratio
        reason = (f"liabilities are {ratio:.1%} of physical liquidity, above {max_ratio:.0%}" if halted
                  else f"liabilities are {ratio:.1%} of physical liquidity (limit {max_ratio:.0%})")
    return Solvency(at_s, liabilities_msat, spendable, pending_out, onchain, reserve, physical,
                    None if ratio is None else round(ratio, 6), max_ratio, halted, reason)
