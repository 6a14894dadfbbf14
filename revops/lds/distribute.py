"""The payout table: distributable profit split pro rata to TWAB, less operator carry by tier.

Investors as a whole earn the share of profit their capital is of the node's capital (TWAB
against the node's TWAB, never more than all of it). Each deposit lot then keeps
(1 − carry[tier]) of its share: the Management Fee Rebate — longer lock-ups give the operator
less carry. What is not paid stays with the operator. Amounts are floored to whole msat.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    lot_id: str
    wallet_id: str
    tier: str
    twab_msat: int


@dataclass(frozen=True)
class Line:
    wallet_id: str
    amount_msat: int
    twab_msat: int
    share: float  # of the distributable profit, before carry


def payout_table(distributable_msat: int, positions: list[Position], node_twab_msat: int,
                 carry_by_tier: dict[str, float]) -> tuple[list[Line], int]:
    """Returns (one line per wallet with a positive amount, operator's msat)."""
    if distributable_msat < 0:
        raise ValueError("distributable profit cannot be negative")
    unknown = sorted({p.tier for p in positions} - set(carry_by_tier))
    if unknown:
        raise ValueError(f"no carry configured for tier(s) {', '.join(unknown)}")
    investors_twab = sum(p.twab_msat for p in positions)
    capital = max(node_twab_msat, investors_twab)
    by_wallet: dict[str, list[float]] = {}
    for p in positions:
        if p.twab_msat <= 0 or capital <= 0:
            continue
        share = p.twab_msat / capital
        amount = distributable_msat * share * (1 - carry_by_tier[p.tier])
        entry = by_wallet.setdefault(p.wallet_id, [0.0, 0, 0.0])
        entry[0] += amount
        entry[1] += p.twab_msat
        entry[2] += share
    lines = [Line(w, int(a), t, round(s, 9)) for w, (a, t, s) in sorted(by_wallet.items()) if int(a) > 0]
    return lines, distributable_msat - sum(line.amount_msat for line in lines)
