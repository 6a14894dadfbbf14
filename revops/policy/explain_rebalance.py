"""The rebalance side of one channel's evaluation, for explain (revenue-explain, revops explain).

Reads only the evaluation: its decision's rebalance plan and skip, the trace of the rules in
rebalance-only post stages (every guard that applied), the let values those rules computed
(EV and its inputs, the Kelly fraction, ...) and the budget facts.
"""

from __future__ import annotations

from typing import Any

_BUDGET = ("node.rebalance_budget_msat", "node.rebalance_spent_24h_msat", "node.rebalance_reserved_msat",
           "node.rebalance_budget_left_msat", "node.wallet_funds_sat")


def rebalance_explain(prepared, evaluation) -> dict[str, Any]:
    """{"role", "plan", "skip", "guards": [{rule, why}], "values": {rule: {let: value}}, "budget": {...}}."""
    stages = prepared.rebalance_stages()
    decision = evaluation.decision
    plan = dict(decision.rebalance) if decision.rebalance else None
    guards, values = [], {}
    for event in evaluation.trace:
        if event.get("stage") not in stages or not event.get("matched"):
            continue
        effects = event.get("effects") or []
        rule = event["rule"]
        lets = {k[len(f"let.{rule}."):]: v for k, v in evaluation.values.items() if k.startswith(f"let.{rule}.")}
        if lets:
            values[rule] = lets
        if any(e.get("action") == "skip_rebalance" for e in effects) or rule in (decision.skip_rebalance or ""):
            guards.append({"rule": rule, "why": event.get("why")})
    role = plan["role"] if plan else "neither"
    return {"role": role if role != "none" else "neither", "plan": plan, "skip": decision.skip_rebalance,
            "guards": guards, "values": values,
            "budget": {k.split(".", 1)[1]: evaluation.values.get(k) for k in _BUDGET}}
