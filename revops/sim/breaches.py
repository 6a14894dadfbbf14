"""Budget breaches of a simulated run: what the policy spent beyond the budgets it declares.

Counted from what the node saw, not from what the plugin says about itself (docs/simulator.md):

* rebalance: every `rebalance_fee` payment (bkpr-listincome) after which the fees paid in the
  rolling 24 h ending at it exceed the policy's `rebalance_budget_sat` (its hard cap);
* gossip: every fee broadcast (a setchannel that changed a channel's fee) after which that
  channel has sent more than `gossip_max_updates_per_channel_day` in the rolling 24 h ending at
  it, and every one after which the whole node has sent more than `gossip_max_updates_node_day`.
  Emergency broadcasts count too: a budget a policy overrides is still a budget exceeded.

A budget the policy does not declare (no such param) is not checked.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

DAY_S = 86400


def over_rolling_day(events: Iterable[tuple[float, int]], limit: int) -> int:
    """How many of the (time, amount) events, taken in time order, leave the sum of amounts in
    the rolling 24 h ending at them (that event included) above `limit`."""
    window: deque[tuple[float, int]] = deque()
    total = breaches = 0
    for at, amount in sorted(events, key=lambda e: e[0]):
        window.append((at, amount))
        total += amount
        while window[0][0] <= at - DAY_S:
            total -= window.popleft()[1]
        breaches += total > limit
    return breaches


def rebalance_breaches(income_events: list[dict], budget_sat: int) -> int:
    """rebalance_fee payments that take the rolling-24 h spend over `budget_sat`."""
    spends = [(e.get("timestamp", 0), e.get("debit_msat", 0) - e.get("credit_msat", 0))
              for e in income_events if e.get("tag") == "rebalance_fee"]
    return over_rolling_day(spends, budget_sat * 1000)


def gossip_breaches(broadcasts: list[tuple[float, str]], per_channel_day: int | None,
                    node_day: int | None) -> int:
    """Fee broadcasts (time, scid) beyond the per-channel and node-wide daily budgets (None: not declared)."""
    breaches = 0
    if per_channel_day is not None:
        by_channel: dict[str, list[tuple[float, int]]] = {}
        for at, scid in broadcasts:
            by_channel.setdefault(scid, []).append((at, 1))
        breaches += sum(over_rolling_day(sent, per_channel_day) for sent in by_channel.values())
    if node_day is not None:
        breaches += over_rolling_day([(at, 1) for at, _ in broadcasts], node_day)
    return breaches


def budget_breaches(params: dict, income_events: list[dict], broadcasts: list[tuple[float, str]]) -> int:
    """All breaches of the budgets `params` (the policy's effective params) declare."""
    breaches = 0
    if params.get("rebalance_budget_sat") is not None:
        breaches += rebalance_breaches(income_events, int(params["rebalance_budget_sat"]))
    per_channel, node = params.get("gossip_max_updates_per_channel_day"), params.get("gossip_max_updates_node_day")
    breaches += gossip_breaches(broadcasts, None if per_channel is None else int(per_channel),
                                None if node is None else int(node))
    return breaches
