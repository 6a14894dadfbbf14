"""Run the real plugin process against the simulated node, in simulated time.

The loop: advance the market by one step, deliver its notifications to the plugin
(the harness sends only the topics it subscribed to), and at every fee interval call
`revenue-cycle` with the simulated time. The plugin learns time only from those calls
(`revenue-ops-sim-clock`); nothing in it is patched. At the end the figures are read
through the same RPC shapes an operator would use (listforwards, bkpr-listincome).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from revops.sim.breaches import budget_breaches
from revops.sim.harness import Lightningd
from revops.sim.model_build import build_node
from revops.sim.rpc import SimRpc

DAY_S = 86400


class CountingBackend:
    """The simulated node's RPC, counting calls per method and fee updates per channel."""

    def __init__(self, backend: Callable, lock: threading.Lock, clock: Callable[[], float] = lambda: 0.0):
        self.backend = backend
        self.lock = lock
        self.clock = clock
        self.calls: Counter = Counter()
        self.fee_updates: Counter = Counter()
        self.broadcasts: list[tuple[float, str]] = []  # (simulated time, scid) of each fee update

    def __call__(self, method: str, params):
        with self.lock:
            self.calls[method] += 1
            result = self.backend(method, params)
            if method == "setchannel":
                for ch in result.get("channels", []):
                    self.fee_updates[ch.get("short_channel_id")] += 1
                    self.broadcasts.append((self.clock(), ch.get("short_channel_id")))
            return result

    def methods(self):
        return self.backend.methods()


@dataclass
class SimReport:
    policy: str
    scenario: str
    days: float
    seed: int
    forwards_settled: int = 0
    forwards_failed: int = 0
    volume_msat: int = 0
    routing_fees_msat: int = 0
    rebalance_spend_msat: int = 0
    onchain_cost_msat: int = 0
    net_profit_msat: int = 0
    fee_updates: int = 0
    fee_updates_per_channel_day: float = 0.0
    budget_breaches: int = 0
    cycles: int = 0
    wall_s: float = 0.0
    channels: list[dict] = field(default_factory=list)
    params: dict = field(default_factory=dict)   # params set for the run (fair baselines)
    capture: float | None = None                 # net profit / the oracle's (simulate --oracle)
    rebalance_payback: dict = field(default_factory=dict)  # revenue-rebalances' totals at the end
    note: str = ""                               # e.g. the oracle says it is only a reference

    def to_json(self) -> dict:
        return asdict(self)


def plugin_command() -> list[str]:
    """How to start revops-plugin from this Python (installed or from a checkout)."""
    return [sys.executable, str(Path(__file__).resolve().parents[1] / "plugin.py")]


def typical_ref_fee_ppm(node) -> int:
    """The scenario's typical competitor fee: the median ref_fee_ppm of the node's channels."""
    return int(statistics.median(ch.ref_fee_ppm for ch in node.channels))


def fair_baseline_params(node) -> dict[str, int]:
    """Baseline params anchored on the market (docs/results.md): a static fee at the typical
    competitor fee T, a proportional range T/4 .. 7T/4 (T for a balanced channel)."""
    t = typical_ref_fee_ppm(node)
    return {"static_fee_ppm": t, "prop_min_fee_ppm": t // 4, "prop_max_fee_ppm": t * 7 // 4}


def simulate(scenario: str, policy_dir: str | Path, days: float = 30, seed: int | None = None, *,
             fee_interval_s: int = 1800, step_s: int = 300, plugin_cmd: list[str] | None = None,
             progress: Callable[[float], None] | None = None, dry_run: bool = False,
             fair_baselines: bool = False, db_path: str | Path | None = None,
             params: dict | None = None) -> SimReport:
    """Simulate `days` of `scenario` with the plugin running `policy_dir`; returns the figures.

    `fair_baselines` sets fair_baseline_params() on the policy through revenue-config, for
    the params it has (the baselines have them, the default policy has none of them).
    `db_path`: keep the plugin's database there (for `revops report`) instead of discarding it.
    `params`: param overrides set through revenue-config before the first cycle (e.g.
    {"rebalance_enabled": False} for fees alone)."""
    started = time.perf_counter()
    node = build_node(scenario, seed=seed)
    lock = threading.Lock()
    backend = CountingBackend(SimRpc(node), lock, clock=lambda: node.now_s)
    workdir = Path(tempfile.mkdtemp(prefix="rvsim"))  # short: unix socket paths are limited
    options = {"revenue-ops-policy": str(Path(policy_dir).resolve()),
               "revenue-ops-db": str(Path(db_path).resolve() if db_path else workdir / "revops.sqlite3"),
               "revenue-ops-sim-clock": str(int(node.now_s)),
               "revenue-ops-metrics-listen": "",
               "revenue-ops-dry-run": "true" if dry_run else "false"}
    report = SimReport(policy=str(policy_dir), scenario=scenario, days=days, seed=node.seed)
    start_fees = {}
    try:
        with Lightningd(plugin_cmd or plugin_command(), str(workdir / "ln"), backend, options=options,
                        extra_plugins=node.plugins, network=node.config.network,
                        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])}) as ld:
            if ld.disabled:
                raise RuntimeError(f"plugin disabled itself: {ld.disabled}")
            if fair_baselines:
                known = {p["name"] for p in ld.call("revenue-config")["params"]}
                for key, value in fair_baseline_params(node).items():
                    if key in known:
                        ld.call("revenue-config", {"key": key, "value": value})
                        report.params[key] = value
            for key, value in (params or {}).items():
                ld.call("revenue-config", {"key": key, "value": value})
                report.params[key] = value
            start_fees = {c["short_channel_id"]: _fee(c) for c in _channels(backend)}
            end_s = node.now_s + days * DAY_S
            next_cycle = node.now_s
            while node.now_s < end_s:
                if node.now_s >= next_cycle:
                    ld.call("revenue-cycle", {"what": "all", "now": node.now_s}, timeout_s=600)
                    report.cycles += 1
                    next_cycle += fee_interval_s
                with lock:
                    notes = node.advance(min(step_s, end_s - node.now_s))
                for topic, payload in notes:
                    ld.notify(topic, payload)
                if progress:
                    progress(1 - (end_s - node.now_s) / (days * DAY_S))
            ld.call("revenue-cycle", {"what": "all", "now": node.now_s}, timeout_s=600)
            report.cycles += 1
            params = {p["name"]: p.get("value") for p in ld.call("revenue-config").get("params", [])}
            account = ld.call("revenue-rebalances", {"days": days + 1})
            report.rebalance_payback = {"accounted": account["accounted"], "in_use": account["in_use"]}
            _figures(report, backend, start_fees, days, params)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.wall_s = round(time.perf_counter() - started, 2)
    return report


def _channels(backend) -> list[dict]:
    return [c for c in backend("listpeerchannels", {}).get("channels", []) if c.get("short_channel_id")]


def _fee(channel: dict) -> int:
    return int(((channel.get("updates") or {}).get("local") or {}).get(
        "fee_proportional_millionths", channel.get("fee_proportional_millionths", 0)))


def _figures(report: SimReport, backend: CountingBackend, start_fees: dict, days: float,
             params: dict | None = None) -> None:
    forwards = backend("listforwards", {}).get("forwards", [])
    per_channel: dict[str, Counter] = {}
    for f in forwards:
        status = f.get("status")
        if status == "settled":
            report.forwards_settled += 1
            report.volume_msat += f.get("out_msat", 0)
            report.routing_fees_msat += f.get("fee_msat", 0)
            row = per_channel.setdefault(f.get("out_channel"), Counter())
            row["forwards_out"] += 1
            row["volume_out_msat"] += f.get("out_msat", 0)
            row["fees_earned_msat"] += f.get("fee_msat", 0)
        elif status in ("failed", "local_failed"):
            report.forwards_failed += 1
            if f.get("out_channel"):
                per_channel.setdefault(f["out_channel"], Counter())["failed_out"] += 1
    income: list[dict] = []
    try:
        income = backend("bkpr-listincome", {"consolidate_fees": False}).get("income_events", [])
        for e in income:
            if e.get("tag") == "onchain_fee":
                report.onchain_cost_msat += e.get("debit_msat", 0) - e.get("credit_msat", 0)
            elif e.get("tag") == "rebalance_fee":
                report.rebalance_spend_msat += e.get("debit_msat", 0) - e.get("credit_msat", 0)
    except Exception:  # bookkeeper absent: on-chain and rebalance costs unknown here
        pass
    report.net_profit_msat = report.routing_fees_msat - report.rebalance_spend_msat - report.onchain_cost_msat
    report.fee_updates = sum(backend.fee_updates.values())
    report.budget_breaches = budget_breaches(params or {}, income, backend.broadcasts)
    channels = _channels(backend)
    report.fee_updates_per_channel_day = round(report.fee_updates / max(1, len(channels)) / max(days, 1e-9), 3)
    for c in channels:
        scid = c["short_channel_id"]
        row = per_channel.get(scid, Counter())
        report.channels.append({
            "scid": scid, "state": c.get("state"),
            "capacity_sat": c.get("total_msat", 0) // 1000,
            "local_ratio": round(c.get("to_us_msat", 0) / c["total_msat"], 3) if c.get("total_msat") else 0.0,
            "fee_ppm_start": start_fees.get(scid), "fee_ppm_end": _fee(c),
            "fee_updates": backend.fee_updates.get(scid, 0),
            "forwards_out": row["forwards_out"], "failed_out": row["failed_out"],
            "volume_out_msat": row["volume_out_msat"], "fees_earned_msat": row["fees_earned_msat"]})


def _ppm(value) -> str:
    """A fee for people: `-` for a channel that had none (opened or gone during the run)."""
    return "-" if value is None else str(value)


def _payback(r: SimReport) -> str:
    """What the rebalances accounted by the end earned per sat they cost (revenue-rebalances)."""
    done = (r.rebalance_payback or {}).get("accounted") or {}
    if not done.get("count"):
        return "-"
    ratio = "-" if done.get("payback") is None else f"{done['payback']:.2f}x"
    return f"{ratio} ({done['paid_back']} of {done['count']} paid back)"


def add_capture(reports: list[SimReport], oracle: SimReport) -> None:
    """Set each report's capture = its net profit / the oracle's (None if the oracle lost money)."""
    for r in reports:
        r.capture = round(r.net_profit_msat / oracle.net_profit_msat, 4) if oracle.net_profit_msat > 0 else None


def render(reports: list[SimReport], verbose: bool = False) -> str:
    """Side-by-side figures per policy, then each policy's per-channel table."""
    rows = [("net profit (sat)", lambda r: f"{r.net_profit_msat / 1000:,.0f}"),
            ("routing fees (sat)", lambda r: f"{r.routing_fees_msat / 1000:,.0f}"),
            ("rebalance spend (sat)", lambda r: f"{r.rebalance_spend_msat / 1000:,.0f}"),
            ("rebalances earned back", _payback),
            ("on-chain costs (sat)", lambda r: f"{r.onchain_cost_msat / 1000:,.0f}"),
            ("forwards settled", lambda r: f"{r.forwards_settled:,}"),
            ("forwards failed", lambda r: f"{r.forwards_failed:,}"),
            ("volume (sat)", lambda r: f"{r.volume_msat / 1000:,.0f}"),
            ("fee updates", lambda r: f"{r.fee_updates:,}"),
            ("fee updates / channel / day", lambda r: f"{r.fee_updates_per_channel_day:.2f}"),
            ("budget breaches", lambda r: str(r.budget_breaches)),
            ("cycles", lambda r: str(r.cycles)),
            ("wall time (s)", lambda r: f"{r.wall_s:.1f}")]
    names = [os.path.basename(os.path.normpath(r.policy)) for r in reports]
    width = max(14, *(len(n) for n in names))
    first = reports[0]
    out = [f"scenario {first.scenario}, {first.days:g} days, seed {first.seed}", "",
           f"{'':<28}" + "".join(f"{n:>{width + 2}}" for n in names)]
    for label, fmt in rows:
        out.append(f"{label:<28}" + "".join(f"{fmt(r):>{width + 2}}" for r in reports))
    for name, r in zip(names, reports):
        shown = [c for c in r.channels if verbose or c["fee_updates"] or c["fee_ppm_start"] != c["fee_ppm_end"]]
        out += ["", _table_heading(name, len(shown), len(r.channels)), TABLE_LEGEND,
                f"  {'scid':<16}{'local':>7}{'fee':>14}{'updates':>9}{'fwd out':>9}{'failed':>8}{'earned sat':>12}"]
        for c in shown:
            fee = f"{_ppm(c['fee_ppm_start'])} ➜ {_ppm(c['fee_ppm_end'])}"
            out.append(f"  {c['scid']:<16}{c['local_ratio']:>7.0%}{fee:>14}{c['fee_updates']:>9}"
                       f"{c['forwards_out']:>9}{c['failed_out']:>8}{c['fees_earned_msat'] / 1000:>12,.0f}")
        listed = sum(c["fee_updates"] for c in r.channels)  # hidden rows have none
        if listed != r.fee_updates:
            n = r.fee_updates - listed
            out.append(f"  + {n:,} fee update{'s' if n != 1 else ''} on channels closed during the run (not listed): "
                       f"{r.fee_updates:,} in all, as in the summary")
    return "\n".join(out + ["", verdict(reports, names)])


TABLE_LEGEND = ("  local: our share of the channel's balance at the end; fee: ppm at the start ➜ at the end "
                "(- if the channel\n  did not exist then); updates: fee updates sent; fwd out / failed: forwards "
                "out of the channel settled / failed;\n  earned sat: routing fees it earned")


def _table_heading(name: str, shown: int, total: int) -> str:
    if shown == total:
        return f"{name}: all {total} channels open at the end"
    return f"{name}: the {shown} of {total} channels whose fee changed (-v for all)"


def verdict(reports: list[SimReport], names: list[str]) -> str:
    """One line: each policy's net profit against the first policy's, in sat and %."""
    first = reports[0]
    base_sat = round(first.net_profit_msat / 1000)  # whole sats, as the summary shows them
    if len(reports) == 1:
        return f"verdict: {names[0]} made a net profit of {base_sat:,.0f} sat in {_days(first.days)}"
    parts = []
    for name, r in zip(names[1:], reports[1:]):
        diff = round(r.net_profit_msat / 1000) - base_sat
        pct = f" ({diff / abs(base_sat):+.1%})" if base_sat else ""
        parts.append(f"{name} {diff:+,.0f} sat{pct}")
    return (f"verdict: net profit against {names[0]} ({base_sat:,.0f} sat in {_days(first.days)}): "
            + ", ".join(parts))


def _days(days: float) -> str:
    return f"{days:g} day{'' if days == 1 else 's'}"
