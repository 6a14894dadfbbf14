"""revenue-capacity on the zombies scenario and revenue-dashboard, through the plugin."""

from __future__ import annotations

import pytest

from revops.sim.errors import RpcError
from tests.observe.conftest import Node, workdir  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def zombies(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("z"), scenario="zombies")
    n.start()
    for _ in range(8):
        n.advance(6 * 3600)
        n.cycle("fees")
    yield n
    n.stop()


def test_capacity_recommends_closing_the_zombies_with_the_numbers(zombies):
    r = zombies.call("revenue-capacity", {"days": 2})
    dead = {c.scid for c in zombies.sim.channels if c.peer.dead}
    closes = [rec["close"] for rec in r["recommendations"]]
    assert dead <= {c["scid"] for c in closes}
    assert [c["scid"] in dead for c in closes[:len(dead)]] == [True] * len(dead), "zombies come first"
    costs = r["costs"]
    est = zombies.call("feerates", {"style": "perkw"})["onchain_fee_estimates"]
    assert costs["unilateral_close_sat"] == est["unilateral_close_satoshis"] > 0
    for rec in r["recommendations"]:
        c = rec["close"]
        if c["scid"] in dead:
            assert any(reason.startswith("zombie") for reason in c["reasons"])
            assert c["close_cost_sat"] == costs["unilateral_close_sat"]  # the peer is not there to sign
        assert rec["amount_sat"] == c["local_sat"] - c["close_cost_sat"]
        if rec["action"] == "close_and_splice":
            w = rec["splice_into"]
            assert w["income_msat"] > 0 and w["scid"] not in dead
            assert rec["onchain_cost_sat"] == c["close_cost_sat"] + costs["splice_sat"]
            assert rec["expected_income_sat_per_30d"] > 0
        assert c["scid"] in rec["why"]
    with pytest.raises(RpcError, match="days must be"):
        zombies.call("revenue-capacity", {"days": "soon"})


def test_dashboard_is_one_human_summary(zombies):
    d = zombies.call("revenue-dashboard")
    assert d["format-hint"] == "simple"
    text = d["dashboard"]
    lifetime = zombies.call("revenue-history")["totals"]["routing_income_msat"]
    row = next(line.split() for line in text.splitlines() if line.strip().startswith("lifetime"))
    assert row[1] == f"{lifetime / 1000:,.0f}" and row[4] == row[1]  # income; net (no costs in this run)
    for part in ("mode: active", "policy: default", "top earners", "top bleeders", "rebalancing", "24h", "30d"):
        assert part in text


def test_a_failing_node_rpc_is_one_clear_error(workdir):
    from revops.sim.errors import RpcError as SimError
    from tests.plugin.conftest import failing_backend
    broken = {"on": False}
    n = Node(workdir, scenario="hub", backend_wrapper=failing_backend(
        lambda method, params: broken["on"] and method in ("bkpr-listaccountevents", "feerates"),
        SimError(-32603, "bookkeeper crashed")))
    n.start()
    try:
        broken["on"] = True
        for method in ("revenue-history", "revenue-capacity", "revenue-dashboard"):
            with pytest.raises(RpcError, match="cannot read the node: .*bookkeeper crashed"):
                n.call(method)
        broken["on"] = False
        assert n.call("revenue-history")["source"] == "bookkeeper"
    finally:
        n.stop()
