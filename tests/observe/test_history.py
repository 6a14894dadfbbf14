"""revenue-history through the plugin against the simulator's ground truth: routing income per
channel from listforwards, on-chain fees per channel from what the simulated wallet paid
(a batch open's fee split over its channels), for open and closed channels."""

from __future__ import annotations

import pytest

from revops.sim.errors import RpcError
from tests.observe.conftest import (Node, rebalance_fees_by_channel, run_with_opens_and_closes,
                                    settled_fees_by_channel)


def test_history_from_bookkeeper_equals_the_ground_truth(workdir):
    n = Node(workdir, scenario="hub", seed=3)
    n.start()
    try:
        ids = run_with_opens_and_closes(n)
        h = n.call("revenue-history")
        sim = n.sim
        assert h["source"] == "bookkeeper"
        fees = settled_fees_by_channel(sim)
        truth_onchain = sim.onchain_fee_truth_msat
        assert h["totals"]["routing_income_msat"] == sum(fees.values()) > 0
        assert h["totals"]["onchain_cost_msat"] == sum(truth_onchain.values()) > 0
        assert h["totals"]["wallet_onchain_cost_msat"] == 0
        rebalanced = rebalance_fees_by_channel(sim)
        assert h["totals"]["rebalance_cost_msat"] == sum(rebalanced.values()) > 0
        assert set(rebalanced) == {ids["pulled"]}
        rows = {r["channel_id"]: r for r in h["channels"]}
        for cid, truth in truth_onchain.items():
            assert rows[cid]["onchain_cost_msat"] == truth, cid
        for row in rows.values():
            assert row["routing_income_msat"] == fees.get(row["scid"], 0), row["scid"]
            assert row["rebalance_cost_msat"] == rebalanced.get(row["scid"], 0), row["scid"]
        # the batch: one fee, three channels, no msat lost or counted twice
        batch_fees = [rows[c]["open_cost_msat"] for c in ids["batch"]]
        assert max(batch_fees) - min(batch_fees) <= 1 and all(f > 0 for f in batch_fees)
        assert rows[ids["single"]]["open_cost_msat"] > batch_fees[0]  # one output pays for the whole tx
        for cid in ids["closed"]:
            assert rows[cid]["status"] == "closed" and rows[cid]["close_cost_msat"] > 0
        closed_income = sum(rows[c]["routing_income_msat"] for c in ids["closed"])
        assert h["closed_channels"]["routing_income_msat"] == closed_income > 0
        assert h["open_channels"]["routing_income_msat"] + closed_income == h["totals"]["routing_income_msat"]
        assert h["totals"]["net_msat"] == (h["totals"]["routing_income_msat"] - h["totals"]["onchain_cost_msat"]
                                           - h["totals"]["rebalance_cost_msat"])
        # a window: only what happened in it
        recent = n.call("revenue-history", {"days": 0.5})
        assert 0 < recent["totals"]["routing_income_msat"] < h["totals"]["routing_income_msat"]
        assert recent["totals"]["open_cost_msat"] == 0
        with pytest.raises(RpcError, match="days must be a positive number"):
            n.call("revenue-history", {"days": -1})
    finally:
        n.stop()


def test_history_without_bookkeeper_comes_from_the_plugins_own_records(workdir):
    n = Node(workdir, scenario="hub", seed=3, bookkeeper=False)
    n.start()
    try:
        run_with_opens_and_closes(n, days=1)
        h = n.call("revenue-history")
        fees = settled_fees_by_channel(n.sim)
        assert h["source"] == "revops"
        assert h["totals"]["routing_income_msat"] == sum(fees.values()) > 0
        assert {r["scid"]: r["routing_income_msat"] for r in h["channels"] if r["routing_income_msat"]} == \
            {k: v for k, v in fees.items() if v}
        assert any("on-chain" in note for note in h["notes"])
    finally:
        n.stop()
