"""revenue-dashboard: one screen of text an operator reads in a terminal (lightning-cli prints a
`format-hint: simple` result as is): P&L by period, top earners and bleeders, rebalance
budget, mode and policy."""

from __future__ import annotations

import time
from typing import Any, Mapping

TOP_N = 5


def _sat(msat: int | None) -> str:
    return "?" if msat is None else f"{msat / 1000:,.0f}"


def _row(label: str, t: Mapping[str, Any]) -> str:
    onchain = t.get("onchain_cost_msat", 0) + t.get("wallet_onchain_cost_msat", 0)
    return (f"  {label:<9}{_sat(t.get('routing_income_msat')):>14}{_sat(t.get('rebalance_cost_msat')):>14}"
            f"{_sat(onchain):>14}{_sat(t.get('net_msat')):>14}")


def _chan(r: Mapping[str, Any], key: str) -> str:
    who = r.get("scid") or str(r.get("channel_id", "?"))[:16]
    return f"  {who:<18} {str(r.get('peer_id') or '')[:16]:<17} {r.get('status', ''):<8}{_sat(r[key]):>12} sat"


def dashboard_text(periods: Mapping[str, Mapping[str, Any]], status: Mapping[str, Any], now_s: float,
                   rebalance: Mapping[str, Any] | None = None, payback: Mapping[str, Any] | None = None) -> str:
    """Returns the dashboard; `periods` maps a label (24h, 7d, 30d, lifetime) to a revenue-history result,
    `payback` is revenue-rebalances' result for 30 days."""
    policy = status.get("policy") or {}
    reload = status.get("last_reload") or {}
    lines = [f"revops dashboard, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(now_s))}",
             f"mode: {status.get('mode')}" + (f" ({status['mode_reason']})" if status.get("mode_reason") else ""),
             f"policy: {policy.get('name')} {policy.get('version')} ({str(policy.get('digest', ''))[:19]}), "
             f"last reload {'ok' if reload.get('ok') else 'FAILED: ' + '; '.join(reload.get('errors', []))[:200]}"]
    any_period = next(iter(periods.values()))
    lines += ["", f"P&L in sat (source: {any_period['source']})",
              f"  {'period':<9}{'income':>14}{'rebalance':>14}{'on-chain':>14}{'net':>14}"]
    lines += [_row(label, h["totals"]) for label, h in periods.items()]
    for note in any_period.get("notes", []):
        lines.append(f"  note: {note}")
    month = periods.get("30d") or any_period
    rows = month["channels"]
    earners = sorted((r for r in rows if r["routing_income_msat"] > 0), key=lambda r: -r["routing_income_msat"])
    lines += ["", f"top earners, 30d ({len(earners)} channels earned)"]
    lines += [_chan(r, "routing_income_msat") for r in earners[:TOP_N]] or ["  none"]
    life = periods.get("lifetime") or any_period
    bleeders = sorted((r for r in life["channels"] if r["net_msat"] < 0), key=lambda r: r["net_msat"])
    lines += ["", f"top bleeders, lifetime net ({len(bleeders)} channels lost money)"]
    lines += [_chan(r, "net_msat") for r in bleeders[:TOP_N]] or ["  none"]
    lines += ["", "rebalancing"]
    deps = status.get("dependencies") or {}
    if not deps.get("sling"):
        lines.append("  off: sling is not loaded")
    elif not rebalance or not any(k in rebalance for k in ("budget_used_msat", "budget_left_msat")):
        lines.append("  no budget reported by the rebalancer yet")
    else:
        lines.append(f"  budget used {_sat(rebalance.get('budget_used_msat'))} sat, "
                     f"left {_sat(rebalance.get('budget_left_msat'))} sat, "
                     f"reservations {rebalance.get('reservations', 0)}, "
                     f"wallet reserve {'ok' if rebalance.get('wallet_reserve_ok', True) else 'BREACHED'}")
    if payback and (payback["accounted"]["count"] or payback["in_use"]["count"]):
        done, live = payback["accounted"], payback["in_use"]
        ratio = "-" if done["payback"] is None else f"{done['payback']:.2f}x"
        lines.append(f"  30d: {done['count']} rebalances accounted, earned back {ratio} of their fees "
                     f"({done['paid_back']} paid back, net {_sat(done['net_msat'])} sat); {live['count']} still in use "
                     "(revenue-rebalances)")
    cycle = status.get("last_cycle") or {}
    if cycle:
        lines += ["", f"last fee cycle: {cycle.get('channels')} channels, {cycle.get('set_fee', 0)} fees set, "
                      f"{cycle.get('suppressed', 0)} suppressed, {cycle.get('hold', 0)} held"]
    return "\n".join(lines)
