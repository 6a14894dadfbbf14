"""Rebalance facts from the store's ledger (revops/facts/rebalance.py)."""

from __future__ import annotations

from revops.facts.rebalance import (EMPTY_REBALANCE, RebalanceHistory, rebalance_facts, rebalance_from_json,
                                    rebalance_to_json)


def chan(fee_ppm, local_ratio, turnover=1.0, active=True, in_flight=0, in_flight_msat=0, value_util=0.0):
    return {"channel.active": active, "channel.local_ratio": local_ratio, "channel.fee_ppm": fee_ppm,
            "channel.turnover_7d": turnover, "channel.htlcs_in_flight": in_flight, "channel.max_accepted_htlcs": 30,
            "channel.htlcs_in_flight_msat": in_flight_msat, "channel.htlc_value_util": value_util,
            "channel.capacity_sat": 1_000_000}


def test_opportunity_cost_is_the_median_of_other_peers_full_channels_weighted_by_use():
    chans = [("1x1x0", "A", chan(100, 0.9)), ("1x2x0", "A", chan(900, 0.1)),
             ("2x1x0", "B", chan(300, 0.8)), ("3x1x0", "C", chan(500, 0.7, turnover=0.01)),
             ("4x1x0", "D", chan(50, 0.2))]
    rebalance_facts(chans, EMPTY_REBALANCE, 0.0, 5_000_000)
    v = {scid: values for scid, _, values in chans}
    # Full channels: A 100, B 300, C 500 x 0.07 = 35. For a target of peer A: median(300, 35).
    assert v["1x2x0"]["channel.source_opportunity_ppm"] == 167.5
    assert v["4x1x0"]["channel.source_opportunity_ppm"] == 100.0  # median(100, 300, 35)
    assert v["4x1x0"]["node.wallet_funds_sat"] == 5_000_000


def test_forecast_after_the_move_and_the_ledger():
    hist = RebalanceHistory(active_scids=frozenset({"1x1x0"}), failures={"1x1x0": 2},
                            backoff_until_s={"1x1x0": 500.0}, peer_cost={"A": (3_000, 10_000_000)},
                            source_outcomes={"1x1x0": (3, 1)}, budget_msat=5_000_000, spent_24h_msat=1_000_000,
                            reserved_msat=500_000, chunk_msat=100_000_000)
    chans = [("1x1x0", "A", chan(100, 0.1, in_flight=14, in_flight_msat=50_000_000, value_util=0.25))]
    rebalance_facts(chans, hist, 100.0, 0)
    v = chans[0][2]
    assert v["channel.rebalance_slot_util_after"] == 0.5                      # (14 + 1) / 30
    assert v["channel.rebalance_value_util_after"] == 0.75                    # (50k + 100k sat) / 200k sat
    assert v["channel.rebalance_job_active"] and v["channel.rebalance_failures"] == 2
    assert v["channel.rebalance_backoff_s"] == 400.0
    assert v["peer.rebalance_cost_known"] and v["peer.rebalance_cost_ppm"] == 300.0
    assert v["channel.source_reliability"] == 4 / 6
    assert v["node.rebalance_budget_left_msat"] == 3_500_000
    assert rebalance_from_json(rebalance_to_json(hist)) == hist
