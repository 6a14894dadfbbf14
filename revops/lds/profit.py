"""Net routing profit of a period, and the high-water mark that carries losses forward.

net = routing fees − rebalance spend − amortised open/close costs − operating expenses

Routing fees come from the plugin's own forwards (settled forwards, plus daily rollups of
pruned ones). Rebalance spend comes from `store.rebalance_spend_msat` when the rebalancer
provides it; without it the spend counts as 0 and the result says so. Open/close costs and
OpEx are operator params in msat per day (see params.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profit:
    start_s: float
    end_s: float
    routing_fees_msat: int
    rebalance_spend_msat: int
    chain_costs_msat: int
    opex_msat: int
    net_msat: int
    notes: tuple[str, ...]

    def to_json(self) -> dict:
        return asdict(self)


def routing_fees_msat(conn, start_s: float, end_s: float) -> int:
    """Fees earned by settled forwards in [start_s, end_s), whole pruned days included."""
    live = conn.execute("SELECT coalesce(sum(fee_msat), 0) FROM forwards WHERE kind = 1 AND t >= ? AND t < ?",
                        (start_s, end_s)).fetchone()[0]
    # Rolled-up days are whole UTC days; a period is counted only for days wholly inside it.
    first, last = _day(start_s), _day(end_s)
    rolled = conn.execute("SELECT coalesce(sum(fees_msat), 0) FROM forward_daily WHERE day >= ? AND day < ?",
                          (first if start_s % 86400 == 0 else _day(start_s + 86400), last)).fetchone()[0]
    return int(live) + int(rolled)


def _day(at_s: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at_s))


def net_profit(conn, store, start_s: float, end_s: float, chain_msat_per_day: int,
               opex_msat_per_day: int) -> Profit:
    days = (end_s - start_s) / 86400
    notes = []
    fees = routing_fees_msat(conn, start_s, end_s)
    spend_fn = getattr(store, "rebalance_spend_msat", None)
    if spend_fn is None:
        spend = 0
        notes.append("rebalance spend unknown (no rebalancer ledger): counted as 0")
    else:
        spend = int(spend_fn(start_s, end_s))
    chain = int(chain_msat_per_day * days)
    opex = int(opex_msat_per_day * days)
    return Profit(start_s, end_s, fees, spend, chain, opex, fees - spend - chain - opex, tuple(notes))


def high_water_mark(net_msat: int, deficit_in_msat: int) -> tuple[int, int]:
    """(distributable, deficit_out): a loss deepens the deficit; a profit first repays it."""
    if deficit_in_msat < 0:
        raise ValueError("the carried deficit cannot be negative")
    available = net_msat - deficit_in_msat
    if available <= 0:
        return 0, -available
    return available, 0
