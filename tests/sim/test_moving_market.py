"""A market that moves (issue 14 item 4): competitor prices, demand regimes, senders' memory of
failures, and the depth and persistence of the liquidity price."""

from __future__ import annotations

from revops.sim.model_build import build_node
from revops.sim.model_channel import Channel, Peer
from revops.sim.rpc import SimRpc
from revops.sim.scenario import parse_scenario
from revops.sim.sling_price import LiquidityPrice

GROUP = "  - {name: p, count: 12, capacity_sat: [3000000, 6000000], ref_fee_ppm: 300}"


def _node(extra: str = "", traffic: str = "payments_per_hour: 600", seed: int = 3):
    text = f"name: t\nseed: {seed}\ntraffic: {{{traffic}}}\n{extra}\nchannel_groups:\n{GROUP}\n"
    return build_node(parse_scenario(text, "t.yaml"))


def test_competitor_shift_moves_prices_the_same_way_whatever_the_fees():
    runs = []
    for fee in (100, 900):
        node = build_node("competitor-shift", seed=5)
        start = {c.idx: c.ref_fee_ppm for c in node.channels}
        SimRpc(node)("setchannel", {"id": "all", "feeppm": fee})
        node.advance(30 * 86400)
        runs.append({c.idx: c.ref_fee_ppm for c in node.channels if c.idx in start})
    assert runs[0] == runs[1]
    ratios = [runs[0][i] / start[i] for i in runs[0]]
    assert sum(r > 1.6 or r < 1 / 1.6 for r in ratios) >= 3, "no competitor price jumped"
    assert sum(0.8 < r < 1.25 and r != 1 for r in ratios) >= 3, "prices never drifted"


def test_demand_shift_switches_regimes():
    node = build_node("demand-shift", seed=5)
    node.advance(30 * 86400)
    mults = [st.out_mult for st in node.shifts.state.values()] + [st.in_mult for st in node.shifts.state.values()]
    assert {0.1, 3.0} <= set(mults)


def test_senders_remember_failures():
    counts = {}
    for penalty in (0.0, 0.5):
        node = _node(traffic=f"payments_per_hour: 600, failure_penalty: {penalty}, failure_memory_h: 6")
        target = node.normal_channels()[0]
        node.disconnect_peer(target.peer, node.now_s)
        node.advance(6 * 3600)
        fw = SimRpc(node)("listforwards", {"out_channel": target.scid})["forwards"]
        counts[penalty] = sum(f["status"] == "local_failed" for f in fw)
        if penalty:
            assert node.market.memory(target, node.now_s) > 0.3
    assert counts[0.5] < counts[0.0] * 0.7, counts


def test_liquidity_price_rises_with_depth_and_does_not_reset_in_a_minute():
    ch = Channel(0, Peer("02" + "11" * 32, "p", "198.51.100.1", 9735))
    ch.total_msat = 10_000_000_000
    price = LiquidityPrice(seed=1, noise_sigma=0.5, noise_memory_h=12, depth_weight=1.0)
    n0 = price.noise(ch, 1000.0)
    assert abs(price.noise(ch, 1060.0) - n0) < 0.05      # a minute later: nearly the same quote
    assert price.depth(ch, 1000.0) == 1.0
    price.record(ch, 1000.0, 5_000_000_000)               # bought half the channel today
    assert price.depth(ch, 2000.0) == 1.5
    assert price.depth(ch, 1000.0 + 86400) == 1.0         # a day later the depth is back
    fresh = LiquidityPrice(seed=1, noise_sigma=0.5, noise_memory_h=0, depth_weight=0)
    draws = {round(fresh.noise(ch, 1000.0 + 60 * i), 6) for i in range(10)}
    assert len(draws) == 10                               # no memory: redrawn every minute


def test_rebalancing_pays_more_with_depth():
    paid = {}
    for depth in (0.0, 3.0):
        node = _node(extra=f"rebalance_market: {{base_ppm: 300, depth_weight: {depth}, route_failure_rate: 0}}",
                     traffic="payments_per_hour: 0")
        rpc = SimRpc(node)
        ch = max(node.normal_channels(), key=lambda c: c.receivable_msat())
        rpc("sling-job", {"scid": ch.scid, "direction": "pull", "amount": 200000, "maxppm": 100000,
                          "outppm": 100000, "target": 0.95})
        rpc("sling-go", [])
        node.advance(3 * 3600)
        succ = node.sling.successes[ch.scid]
        paid[depth] = sum(s[2] for s in succ) * 1e6 / sum(s[1] for s in succ)
    assert paid[3.0] > 1.3 * paid[0.0], paid
