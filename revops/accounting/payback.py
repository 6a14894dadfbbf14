"""revenue-rebalances: the rebalances of a window with what each earned back, and the totals.

The account itself (which forwards used which rebalance's liquidity) is facts/payback.py; this
only sums and words it. A rebalance still being used counts in `earned_so_far`, not in the
payback of the accounted ones, so a fresh rebalance never looks like a loss.
"""

from __future__ import annotations

from typing import Iterable

from revops.facts.payback import HORIZON_S, Payback


def payback_report(books: Iterable[Payback], days: float) -> dict:
    books = list(books)
    done = [b for b in books if b.accounted]
    spent = sum(b.spent_msat for b in done)
    earned = sum(b.earned_msat for b in done)
    open_ = [b for b in books if not b.accounted]
    return {
        "days": days,
        "horizon_days": HORIZON_S / 86400,
        "rebalances": [b.to_json() for b in reversed(books)],  # newest first, like revenue-decisions
        "accounted": {"count": len(done), "spent_msat": spent, "earned_msat": round(earned),
                      "net_msat": round(earned - spent),
                      "payback": round(earned / spent, 3) if spent > 0 else None,
                      "paid_back": sum(1 for b in done if b.spent_msat > 0 and b.earned_msat >= b.spent_msat)},
        "in_use": {"count": len(open_), "spent_msat": sum(b.spent_msat for b in open_),
                   "earned_so_far_msat": round(sum(b.earned_msat for b in open_)),
                   "unused_msat": sum(b.moved_msat - b.used_msat for b in open_)},
        "note": ("a rebalance earns the fees of the forwards out of its channel that the balance the channel "
                 "had (and later refilled) could not have served, oldest rebalance first; it is accounted "
                 "when its liquidity is used up or after the horizon"),
    }
