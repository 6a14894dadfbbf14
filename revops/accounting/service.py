"""The accounting RPCs as the plugin calls them: check the parameters, read the node and the
store with no cycle running (`Runtime.exclusive()`) (the store is not shared mid-cycle), answer JSON.

A node that cannot be read raises NodeRpcError (replies are checked in node/replies.py);
plugin.py answers it as "cannot read the node: ..." like every other method."""

from __future__ import annotations

from typing import Any

from revops.accounting.capacity import recommend
from revops.accounting.dashboard import dashboard_text
from revops.accounting.history import revenue_history
from revops.accounting.payback import payback_report
from revops.runtime import RequestError


def _days(days: Any) -> float | None:
    if days is None:
        return None
    if isinstance(days, str):
        try:
            days = float(days)
        except ValueError:
            raise RequestError(f"days must be a positive number of days, got {days!r}") from None
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= 36500:
        raise RequestError(f"days must be a positive number of days (at most 36500), got {days!r}")
    return float(days)


def _window_days(days: Any) -> float:
    """`days` of a method that weighs a recent window: null is not "lifetime" there."""
    if days is None:
        raise RequestError("days must be a positive number of days (at most 36500), got None")
    return _days(days)


def _history(runtime, days: float | None) -> dict:
    deps = runtime.check_dependencies()
    runtime.forward_events.flush()
    return revenue_history(runtime.rpc, runtime.store, runtime.clock.now(), days, deps.bookkeeper)


def history(runtime, days: Any = None) -> dict:
    """revenue-history [days]: P&L per channel (open and closed) and in total."""
    days = _days(days)
    with runtime.exclusive():
        return _history(runtime, days)


def capacity(runtime, days: Any = 30) -> dict:
    """revenue-capacity [days]: close-and-splice recommendations with their numbers."""
    days = _window_days(days)
    with runtime.exclusive():
        lifetime = _history(runtime, None)
        recent = _history(runtime, days)
        feerates = runtime.rpc.call("feerates", {"style": "perkw"})
        obs = runtime.observe()
        latest = {d["scid"]: d for d in reversed(runtime.store.decisions(None, 10000))}
    return recommend(obs.facts, lifetime, recent, latest, feerates, days, obs.now)


def rebalances(runtime, days: Any = 30) -> dict:
    """revenue-rebalances [days]: each settled rebalance of the last `days` with what it earned back
    (facts/payback.py), and the totals."""
    days = _window_days(days)
    with runtime.exclusive():
        runtime.forward_events.flush()
        now = runtime.clock.now()
        books = runtime.store.rebalance_account(now, now - days * 86400)
    return payback_report(books, days)


def dashboard(runtime, rebalance: dict | None = None) -> dict:
    """revenue-dashboard: one human summary, printed flat by lightning-cli (format-hint simple);
    `rebalance` is the rebalancer's last summary (Metrics.on_rebalance), if any."""
    with runtime.exclusive():
        periods = {label: _history(runtime, days) for label, days in
                   (("24h", 1.0), ("7d", 7.0), ("30d", 30.0), ("lifetime", None))}
        now = runtime.clock.now()
        payback = payback_report(runtime.store.rebalance_account(now, now - 30 * 86400), 30)
    text = dashboard_text(periods, runtime.status(), now, rebalance, payback)
    return {"format-hint": "simple", "dashboard": text}
