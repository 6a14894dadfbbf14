"""Rebalance facts: what the store knows about revops' own sling jobs, as facts per channel.

`RebalanceHistory` is one frozen value the runtime reads from the store (revops/store/
rebalance.py) before each evaluation: measured costs of past rebalances, job outcomes per
target and per source, running jobs, and the rolling-24 h budget. `rebalance_facts` turns it
into the facts below; `build_facts` calls it for every channel, so every fact always has a
value (the neutral one when nothing is known: `EMPTY_REBALANCE`).

Pure: no I/O.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping

from revops.facts.classes import laplace

#: Window of the learned rebalance costs (sling keeps 30 days of stats too).
COST_WINDOW_S = 30 * 86_400

ROWS: list[tuple[str, str, str, str]] = [
    ("channel.rebalance_job_active", "bool", "", "a sling job revops started runs for this channel now"),
    ("channel.rebalance_failures", "number", "count",
     "consecutive revops rebalance jobs into this channel that ended without moving anything"),
    ("channel.rebalance_backoff_s", "number", "s",
     "seconds until this channel may be a target again after failures (0 = now)"),
    ("channel.rebalance_cost_30d_msat", "number", "msat",
     "measured fees paid to rebalance into this channel over 30 d"),
    ("channel.rebalanced_30d_msat", "number", "msat", "amount revops moved into this channel over 30 d"),
    ("channel.source_reliability", "number", "ratio",
     "Laplace score (s+1)/(s+f+2) of finished jobs that had this channel as a candidate "
     "(s: the job moved something; 0.5 when none)"),
    ("channel.source_opportunity_ppm", "number", "ppm",
     "opportunity cost of pulling liquidity into this channel: median over active channels to other "
     "peers holding at least half their balance of fee_ppm x min(1, max(0.01, 7 x turnover_7d)) "
     "(idle liquidity costs little; 0 when none)"),
    ("channel.rebalance_slot_util_after", "number", "ratio",
     "forecast HTLC slot utilisation while a rebalance lands here: (htlcs_in_flight + 1) / max_accepted_htlcs"),
    ("channel.rebalance_value_util_after", "number", "ratio",
     "forecast HTLC value utilisation with one more chunk in flight: (in flight + chunk) / the "
     "in-flight limit (capacity when the limit cannot be derived)"),
    ("channel.rebalance_accounted_30d", "number", "count",
     "rebalances into this channel begun in the last 30 d whose account is final: their liquidity was "
     "used up, or 14 d passed (revenue-rebalances)"),
    ("channel.rebalance_earned_ppm", "number", "ppm",
     "what those rebalances earned back per sat they bought: routing fees of the forwards that used "
     "their liquidity / amount moved (idle liquidity earns 0; 0 when none)"),
    ("channel.rebalance_payback_30d", "number", "ratio",
     "what those rebalances earned back per sat of fee they cost (0 when none)"),
    ("peer.rebalance_cost_known", "bool", "", "a revops rebalance into this peer succeeded in the last 30 d"),
    ("peer.rebalance_cost_ppm", "number", "ppm",
     "measured fee per amount of rebalances into this peer over 30 d, amount-weighted (0 when unknown)"),
    ("node.rebalance_budget_msat", "number", "msat", "the rolling-24 h rebalance fee budget now"),
    ("node.rebalance_spent_24h_msat", "number", "msat", "measured rebalance fees settled in the last 24 h"),
    ("node.rebalance_reserved_msat", "number", "msat", "budget reserved by running jobs (worst case)"),
    ("node.rebalance_budget_left_msat", "number", "msat",
     "budget - spent_24h - reserved, at least 0"),
    ("node.rebalance_jobs_active", "number", "count", "sling jobs revops runs now"),
    ("node.wallet_funds_sat", "number", "sat",
     "on-chain confirmed funds plus spendable channel funds (the wallet-reserve measure)"),
]


@dataclass(frozen=True)
class RebalanceHistory:
    """What the store knows about revops' rebalances, as of one time."""

    active_scids: frozenset = frozenset()
    failures: Mapping[str, int] = field(default_factory=dict)         # scid -> consecutive failed jobs
    backoff_until_s: Mapping[str, float] = field(default_factory=dict)  # scid -> unix time
    cost_30d_msat: Mapping[str, int] = field(default_factory=dict)     # target scid -> fees
    moved_30d_msat: Mapping[str, int] = field(default_factory=dict)    # target scid -> amount
    peer_cost: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # peer -> (fees, amount) msat
    source_outcomes: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # scid -> (ok, failed)
    budget_msat: int = 0
    spent_24h_msat: int = 0
    reserved_msat: int = 0
    chunk_msat: int = 0  # the size of one sling attempt (the rebalance_chunk_sat param)
    # target scid -> (count, earned, moved, spent) msat of the accounted rebalances (facts/payback.py)
    payback: Mapping[str, tuple[int, int, int, int]] = field(default_factory=dict)


EMPTY_REBALANCE = RebalanceHistory()


def rebalance_facts(chans: list[tuple[str, str, dict[str, Any]]], history: RebalanceHistory, now_s: float,
                    wallet_funds_sat: int) -> None:
    """Adds the rebalance facts to each (scid, peer_id, values) in place."""
    # Opportunity cost of pulling from a source, per target peer: the median fee of the
    # channels sling could drain (active, to another peer, at least half full).
    own_fees: dict[str, list[float]] = {}
    for _, pid, v in chans:
        if v["channel.active"] and v["channel.local_ratio"] >= 0.5:
            own_fees.setdefault(pid, []).append(v["channel.fee_ppm"] * min(1.0, max(0.01, 7 * v["channel.turnover_7d"])))
    all_fees = sorted(f for fees in own_fees.values() for f in fees)
    overall = float(statistics.median(all_fees)) if all_fees else 0.0
    median_by_peer: dict[str, float] = {}
    left = max(0, history.budget_msat - history.spent_24h_msat - history.reserved_msat)
    node = {"node.rebalance_budget_msat": history.budget_msat,
            "node.rebalance_spent_24h_msat": history.spent_24h_msat,
            "node.rebalance_reserved_msat": history.reserved_msat,
            "node.rebalance_budget_left_msat": left,
            "node.rebalance_jobs_active": len(history.active_scids),
            "node.wallet_funds_sat": wallet_funds_sat}
    for scid, pid, v in chans:
        if pid not in median_by_peer:
            median_by_peer[pid] = _median_without(all_fees, own_fees[pid]) if pid in own_fees else overall
        fees_msat, amount_msat = history.peer_cost.get(pid, (0, 0))
        ok, failed = history.source_outcomes.get(scid, (0, 0))
        accounted, earned, bought, paid = history.payback.get(scid, (0, 0, 0, 0))
        v.update({
            "channel.rebalance_job_active": scid in history.active_scids,
            "channel.rebalance_failures": history.failures.get(scid, 0),
            "channel.rebalance_backoff_s": max(0.0, history.backoff_until_s.get(scid, 0.0) - now_s),
            "channel.rebalance_cost_30d_msat": history.cost_30d_msat.get(scid, 0),
            "channel.rebalanced_30d_msat": history.moved_30d_msat.get(scid, 0),
            "channel.source_reliability": laplace(ok, failed),
            "channel.source_opportunity_ppm": median_by_peer[pid],
            "channel.rebalance_slot_util_after": min(1.0, (v["channel.htlcs_in_flight"] + 1)
                                                     / max(1, v["channel.max_accepted_htlcs"])),
            "channel.rebalance_value_util_after": _value_util_after(v, history.chunk_msat),
            "channel.rebalance_accounted_30d": accounted,
            "channel.rebalance_earned_ppm": earned * 1_000_000 / bought if bought > 0 else 0.0,
            "channel.rebalance_payback_30d": earned / paid if paid > 0 else 0.0,
            "peer.rebalance_cost_known": amount_msat > 0,
            "peer.rebalance_cost_ppm": fees_msat * 1_000_000 / amount_msat if amount_msat > 0 else 0.0,
        })
        v.update(node)


def _median_without(sorted_fees: list[float], removed: list[float]) -> float:
    """Median of sorted_fees without the values in `removed` (a peer's own channels)."""
    rest = list(sorted_fees)
    for f in removed:
        del rest[bisect.bisect_left(rest, f)]
    return float(statistics.median(rest)) if rest else 0.0


def _value_util_after(v: Mapping[str, Any], chunk_msat: int) -> float:
    in_flight, util = v["channel.htlcs_in_flight_msat"], v["channel.htlc_value_util"]
    limit = in_flight / util if in_flight > 0 and util > 0 else v["channel.capacity_sat"] * 1000
    return min(1.0, (in_flight + chunk_msat) / limit) if limit > 0 else 1.0


def rebalance_to_json(h: RebalanceHistory) -> dict:
    """The snapshot's `rebalance` object (revenue-snapshot), so offline explain sees the same facts."""
    return {"active_scids": sorted(h.active_scids), "failures": dict(h.failures),
            "backoff_until_s": dict(h.backoff_until_s), "cost_30d_msat": dict(h.cost_30d_msat),
            "moved_30d_msat": dict(h.moved_30d_msat), "peer_cost": {k: list(v) for k, v in h.peer_cost.items()},
            "source_outcomes": {k: list(v) for k, v in h.source_outcomes.items()},
            "budget_msat": h.budget_msat, "spent_24h_msat": h.spent_24h_msat,
            "reserved_msat": h.reserved_msat, "chunk_msat": h.chunk_msat,
            "payback": {k: list(v) for k, v in h.payback.items()}}


def rebalance_from_json(d: Mapping[str, Any]) -> RebalanceHistory:
    """The inverse of rebalance_to_json; raises ValueError on a malformed object."""
    try:
        return RebalanceHistory(
            active_scids=frozenset(d.get("active_scids", ())), failures=dict(d.get("failures", {})),
            backoff_until_s=dict(d.get("backoff_until_s", {})), cost_30d_msat=dict(d.get("cost_30d_msat", {})),
            moved_30d_msat=dict(d.get("moved_30d_msat", {})),
            peer_cost={k: (int(a), int(b)) for k, (a, b) in d.get("peer_cost", {}).items()},
            source_outcomes={k: (int(a), int(b)) for k, (a, b) in d.get("source_outcomes", {}).items()},
            budget_msat=int(d.get("budget_msat", 0)), spent_24h_msat=int(d.get("spent_24h_msat", 0)),
            reserved_msat=int(d.get("reserved_msat", 0)), chunk_msat=int(d.get("chunk_msat", 0)),
            payback={k: (int(n), int(e), int(m), int(p)) for k, (n, e, m, p) in d.get("payback", {}).items()})
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"rebalance: {err}") from None
