"""revenue-capacity (Capacity Augmentation): move capital from channels that do not earn it
back to channels that do: "close A (loser), splice its funds into B (source winner)".

Losers are open channels older than MIN_AGE_DAYS that the data says will not pay for their
capital: a peer offline for the week (zombie), no routing income and no income sourced in the
window (stagnant), the fee policy dumping them (Fire Sale, zero-fee probe), a lifetime loss
(underwater), or a profit class of ZOMBIE / UNDERWATER / IDLE when the facts have one.
Winners earn the most per sat of capacity in the window and are drained (local balance under
half, or flowing out): more of our liquidity there earns at their rate. Every recommendation
carries the numbers behind it and the on-chain cost at today's feerate (mutual close when
the peer is online, paid by the opener, else unilateral; a splice priced as a channel open).
"""

from __future__ import annotations

from typing import Any, Mapping

MIN_AGE_DAYS = 14
LOSER_STAGES = {"fire_sale": "Fire Sale: the policy is dumping its liquidity at minimum fee",
                "zero_fee_probe": "Stagnant: the policy is probing it at 0 ppm"}
LOSER_CLASSES = {"ZOMBIE", "UNDERWATER", "IDLE"}
MAX_RECOMMENDATIONS = 10


def _by_scid(history: Mapping[str, Any]) -> dict[str, dict]:
    return {r["scid"]: r for r in history.get("channels", []) if r.get("scid")}


def _reasons(v: Mapping[str, Any], recent: Mapping[str, Any], lifetime: Mapping[str, Any],
             decision: Mapping[str, Any] | None, days: float) -> list[str]:
    reasons = []
    if not v.get("peer.connected"):
        if not v.get("peer.uptime_known_s_7d"):
            reasons.append("zombie: peer offline, not seen online since revops started watching")
        elif v.get("peer.uptime_ratio_7d", 1) < 0.1:
            reasons.append(f"zombie: peer online {v.get('peer.uptime_ratio_7d', 0):.0%} of the last 7 d")
    if recent.get("routing_income_msat", 0) == 0 and recent.get("sourced_income_msat", 0) == 0:
        reasons.append(f"stagnant: no routing income in or out in {days:g} d")
    if decision and decision.get("stage") in LOSER_STAGES:
        reasons.append(LOSER_STAGES[decision["stage"]] + f" (rule {decision.get('rule')})")
    if lifetime.get("net_msat", 0) < 0:
        reasons.append(f"underwater: lifetime net {lifetime['net_msat'] // 1000} sat")
    profit_class = v.get("channel.profit_class")
    if profit_class in LOSER_CLASSES:
        reasons.append(f"profit class {profit_class}")
    return reasons


def recommend(facts: list, lifetime: Mapping[str, Any], recent: Mapping[str, Any],
              latest_decisions: Mapping[str, Mapping[str, Any]], feerates: Mapping[str, Any],
              days: float, now_s: float) -> dict:
    """Returns {"costs": today's on-chain costs, "recommendations": [...], "losers", "winners"}."""
    est = feerates.get("onchain_fee_estimates") or {}
    mutual_sat = int(est.get("mutual_close_satoshis", 0))
    force_sat = int(est.get("unilateral_close_satoshis", mutual_sat))
    splice_sat = int(est.get("opening_channel_satoshis", 0))
    perkw = (feerates.get("perkw") or {}).get("opening")
    life, rec = _by_scid(lifetime), _by_scid(recent)
    losers, winners = [], []
    for f in facts:
        v = f.values
        if v.get("channel.state") != "CHANNELD_NORMAL":
            continue
        recent_row, life_row = rec.get(f.scid, {}), life.get(f.scid, {})
        cap_sat = int(v.get("channel.capacity_sat", 0))
        local_sat = int(v.get("channel.local_msat", 0)) // 1000
        income_msat = int(recent_row.get("routing_income_msat", 0))
        row = {"scid": f.scid, "peer_id": f.peer_id, "capacity_sat": cap_sat, "local_sat": local_sat,
               "local_ratio": round(float(v.get("channel.local_ratio", 0)), 3),
               "age_days": round(float(v.get("channel.age_days", 0)), 1),
               "peer_connected": bool(v.get("peer.connected")),
               "income_msat": income_msat, "sourced_income_msat": int(recent_row.get("sourced_income_msat", 0)),
               "lifetime_net_msat": int(life_row.get("net_msat", 0)),
               "yield_ppm": round(income_msat * 1e3 / cap_sat, 3) if cap_sat else 0.0}
        reasons = _reasons(v, recent_row, life_row, latest_decisions.get(f.scid), days)
        if reasons and row["age_days"] >= MIN_AGE_DAYS:
            # the opener pays a mutual close; a force close we budget in full (anchor CPFP)
            if row["peer_connected"]:
                close_sat = mutual_sat if v.get("channel.opener_local") else 0
            else:
                close_sat = force_sat
            losers.append({**row, "reasons": reasons, "close_cost_sat": close_sat,
                           "recoverable_sat": max(0, local_sat - close_sat)})
        elif income_msat > 0 and (row["local_ratio"] < 0.5 or float(v.get("channel.flow_ratio_7d", 0)) > 0):
            winners.append(row)
    # zombies first, then the least earning capital; the best earners per sat first
    losers.sort(key=lambda r: (r["peer_connected"], r["yield_ppm"], -r["recoverable_sat"]))
    winners.sort(key=lambda r: -r["yield_ppm"])
    recs = []
    for i, loser in enumerate(losers[:MAX_RECOMMENDATIONS]):
        amount_sat = loser["recoverable_sat"]
        if amount_sat <= 0:
            continue
        winner = winners[i % len(winners)] if winners else None
        cost_sat = loser["close_cost_sat"] + (splice_sat if winner else 0)
        r = {"action": "close_and_splice" if winner else "close", "close": loser, "splice_into": winner,
             "amount_sat": amount_sat, "onchain_cost_sat": cost_sat}
        why = f"close {loser['scid']} ({'; '.join(loser['reasons'])}) for {loser['close_cost_sat']} sat"
        if winner:
            # at the winner's yield over the window, per 30 days
            gain_sat = winner["yield_ppm"] * amount_sat / 1e6 * 30 / days
            r["expected_income_sat_per_30d"] = round(gain_sat, 1)
            r["payback_days"] = round(cost_sat / gain_sat * 30, 1) if gain_sat > 0 else None
            why += (f", splice {amount_sat} sat into {winner['scid']} (earned {winner['yield_ppm']} ppm of its "
                    f"capacity in {days:g} d, local ratio {winner['local_ratio']}) for {splice_sat} sat")
        else:
            why += "; no channel earns enough to take the capital: keep it on-chain"
        r["why"] = why
        recs.append(r)
    return {"days": days, "at_s": now_s,
            "costs": {"opening_feerate_perkw": perkw, "mutual_close_sat": mutual_sat,
                      "unilateral_close_sat": force_sat, "splice_sat": splice_sat},
            "recommendations": recs, "losers": losers, "winners": winners[:MAX_RECOMMENDATIONS]}
