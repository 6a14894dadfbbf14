"""What `revops report` draws, read from the plugin's database: fees per channel over time,
routing income and rebalance spend per time bucket, budget burn, decisions by rule.

Reads only: the decision journal (fees, rules, outcomes), forwards plus their daily rollups
(income), and the rebalancer's records when the store has them (`rebalance_spend_msat`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOUR_S, DAY_S = 3600, 86400
TOP_CHANNELS = 8


@dataclass
class ReportData:
    start_s: float
    end_s: float
    bucket_s: int
    policies: list[str]
    fee_series: dict[str, list[tuple[float, float]]]     # scid -> [(t, fee ppm on chain)]
    income_msat: list[tuple[float, int]]                 # (bucket start, routing fees)
    spend_msat: list[tuple[float, int]] | None           # (bucket start, rebalance spend); None: unknown
    fee_updates: list[tuple[float, int]]                 # (bucket start, fee updates sent)
    gossip_budget_per_day: int | None
    decisions_by_rule: dict[str, dict[str, int]]         # rule -> outcome -> count
    totals: dict = field(default_factory=dict)


def _outcome(action: str, applied: int, error) -> str:
    if error:
        return "error"
    if action == "set_fee":
        return "applied" if applied else "unchanged"
    return action or "?"


def load(store, gossip_budget_per_day: int | None = None) -> ReportData:
    """Returns the report's data for everything the database holds."""
    conn = store._conn()  # read-only queries over the store's own tables
    span = conn.execute("SELECT min(at_s), max(at_s) FROM journal_batches").fetchone()
    fwd = conn.execute("SELECT min(t), max(t) FROM forwards WHERE kind = 1").fetchone()
    starts = [v for v in (span[0], fwd[0]) if v is not None]
    ends = [v for v in (span[1], fwd[1]) if v is not None]
    if not starts:
        raise ValueError("the database holds no decisions and no forwards yet: nothing to report")
    start_s, end_s = min(starts), max(ends)
    bucket_s = HOUR_S if end_s - start_s <= 7 * DAY_S else DAY_S
    bucket = lambda t: start_s + (t - start_s) // bucket_s * bucket_s  # noqa: E731

    income: dict[float, int] = {}
    for t, fee in conn.execute("SELECT t, fee_msat FROM forwards WHERE kind = 1 AND fee_msat IS NOT NULL"):
        income[bucket(t)] = income.get(bucket(t), 0) + fee
    for day_start, fees in conn.execute("SELECT CAST(strftime('%s', day) AS REAL), sum(fees_msat) "
                                        "FROM forward_daily GROUP BY day"):
        b = bucket(max(day_start, start_s))
        income[b] = income.get(b, 0) + fees
    by_scid_income = {row[0]: row[1] for row in conn.execute(
        "SELECT out_channel, sum(fee_msat) FROM forwards WHERE kind = 1 GROUP BY out_channel")}

    rows = conn.execute(
        "SELECT b.at_s, d.scid, d.action, d.fee_ppm, d.old_fee_ppm, d.applied, d.rule, d.error "
        "FROM decisions d JOIN journal_batches b ON b.id = d.batch_id ORDER BY b.at_s").fetchall()
    fee_series: dict[str, list[tuple[float, float]]] = {}
    decisions: dict[str, dict[str, int]] = {}
    updates: dict[float, int] = {}
    for at_s, scid, action, fee, old, applied, rule, error in rows:
        on_chain = fee if applied else old
        if scid and on_chain is not None:
            fee_series.setdefault(scid, []).append((at_s, float(on_chain)))
        outcome = _outcome(action, applied, error)
        per_rule = decisions.setdefault(rule or "(no rule)", {})
        per_rule[outcome] = per_rule.get(outcome, 0) + 1
        if applied:
            updates[bucket(at_s)] = updates.get(bucket(at_s), 0) + 1
    # the channels that earned most, and any whose fee moved, are the ones worth a line
    moved = {s for s, pts in fee_series.items() if len({p[1] for p in pts}) > 1}
    ranked = sorted(fee_series, key=lambda s: (-by_scid_income.get(s, 0), s not in moved, s))
    fee_series = {s: fee_series[s] for s in ranked[:TOP_CHANNELS]}

    buckets = [start_s + i * bucket_s for i in range(int((end_s - start_s) // bucket_s) + 1)]
    spend_fn = getattr(store, "rebalance_spend_msat", None)
    spend = None if spend_fn is None else [(b, int(spend_fn(b, b + bucket_s))) for b in buckets]
    policies = [f"{n} {v}" for n, v in conn.execute(
        "SELECT policy_name, policy_version FROM journal_batches GROUP BY policy_name, policy_version "
        "ORDER BY min(at_s)")]
    data = ReportData(start_s, end_s, bucket_s, policies, fee_series,
                      [(b, income.get(b, 0)) for b in buckets], spend,
                      [(b, updates.get(b, 0)) for b in buckets], gossip_budget_per_day, decisions)
    data.totals = {"routing_income_msat": sum(income.values()),
                   "rebalance_spend_msat": None if spend is None else sum(v for _, v in spend),
                   "decisions": len(rows), "fee_updates": sum(updates.values()),
                   "channels": len({r[1] for r in rows if r[1]}), "cycles": len({r[0] for r in rows})}
    return data
