"""The wallet reserve through the plugin: when the node's funds drop below the policy's
wallet_reserve_sat, revenue-status, the metrics and the log say what is suspended and why;
when they come back, everything resumes. (Rebalancing and LDS payouts stopping: test_rebalance.py
and tests/lds/test_plugin_lds.py.)"""

from __future__ import annotations

import urllib.request

from revops.reserve import wallet_funds_sat

from .conftest import Node

CYCLE_S = 1800


def scrape(status: dict) -> str:
    return urllib.request.urlopen(f"http://{status['metrics']}/metrics", timeout=10).read().decode()


def gauge(text: str, name: str) -> float:
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))


def sim_funds_sat(node: Node) -> int:
    return wallet_funds_sat(node.backend("listfunds", {}), node.backend("listpeerchannels", {}))


def test_a_wallet_drained_below_the_reserve_suspends_spending_and_says_why(workdir):
    node = Node(workdir, scenario="hub", seed=3, options={"revenue-ops-metrics-listen": "127.0.0.1:0"})
    node.start()
    try:
        node.advance(CYCLE_S)
        node.cycle("all")
        status = node.call("revenue-status")
        funds = sim_funds_sat(node)
        reserve = status["wallet_reserve"]
        assert reserve["suspended"] is False and reserve["reason"] is None and reserve["funds_sat"] == funds
        assert reserve["opens_and_splices"] == "revops opens no channels and splices none"
        text = scrape(status)
        assert 'revops_wallet_reserve_suspended{operation="rebalancing",reason=""} 0.0' in text
        assert 'revops_wallet_reserve_suspended{operation="lds_payouts",reason=""} 0.0' in text
        # The on-chain wallet is spent elsewhere (an operator's withdrawal): only channel funds are left,
        # and the reserve sits between what was there and what is left.
        with node.lock:
            onchain_sat = sum(o[2] for o in node.sim.outputs if o[5] == "confirmed") // 1000
            assert onchain_sat > 0
            node.sim.outputs = [o for o in node.sim.outputs if o[5] != "confirmed"]
        left = sim_funds_sat(node)
        assert left == funds - onchain_sat
        # halfway between: the market's earnings of the next half hour do not lift the wallet over it
        limit = left + onchain_sat // 2
        node.call("revenue-config", {"key": "wallet_reserve_sat", "value": limit})
        node.advance(CYCLE_S)
        out = node.cycle("all")
        assert out["rebalance"]["wallet_reserve"]["suspended"] is True, out["rebalance"]
        status = node.call("revenue-status")
        reserve = status["wallet_reserve"]
        assert reserve["suspended"] is True and reserve["reserve_sat"] == limit
        assert reserve["suspends"] == ["rebalancing", "LDS payouts"]
        assert reserve["reason"] == (f"wallet {reserve['funds_sat']:,} sat below reserve {limit:,} sat: "
                                     "rebalancing and LDS payouts suspended")
        text = scrape(status)
        assert ('revops_wallet_reserve_suspended{operation="rebalancing",reason="wallet_below_reserve"} 1.0'
                in text)
        assert ('revops_wallet_reserve_suspended{operation="lds_payouts",reason="wallet_below_reserve"} 1.0'
                in text)
        assert gauge(text, "revops_wallet_reserve_sat") == limit
        # Fees keep running below the reserve: the cycle decides and sets fees as before.
        assert out["fees"]["ok"] and out["fees"]["channels"] > 0
        # Back above the reserve: nothing is suspended any more.
        node.call("revenue-config", {"key": "reset", "value": "wallet_reserve_sat"})
        node.advance(CYCLE_S)
        node.cycle("all")
        status = node.call("revenue-status")
        assert status["wallet_reserve"]["suspended"] is False and status["wallet_reserve"]["suspends"] == []
        assert 'revops_wallet_reserve_suspended{operation="rebalancing",reason=""} 0.0' in scrape(status)
    finally:
        node.stop()
