"""The default policy's fee strategies through the real plugin on the simulator's scenarios:
the Vegas Reflex on a mempool shock, scarcity pricing under an HTLC flood, the Defibrillator
and Fire Sale on zombies, and flap protection on flappy peers."""

from __future__ import annotations

import pytest

from revops.sim import model_render
from revops.sim.model_chain import Shock

from .conftest import Node

HOUR = 3600


@pytest.fixture
def run(workdir):
    nodes = []

    def start(scenario: str, seed: int | None = None) -> Node:
        n = Node(workdir, scenario=scenario, **({"seed": seed} if seed is not None else {}))
        n.start()
        nodes.append(n)
        return n
    yield start
    for n in nodes:
        n.stop()


def cycles(node: Node, hours: float, every_h: float = 0.5) -> list[dict]:
    out = []
    for _ in range(round(hours / every_h)):
        node.advance(every_h * HOUR)
        out.append(node.cycle()["fees"])
    return out


def explain(node: Node) -> dict[str, dict]:
    return {c["scid"]: c for c in node.call("revenue-explain")["channels"]}


def event(channel: dict, rule: str) -> dict | None:
    return next((e for e in channel["trace"] if e["rule"] == rule), None)


def floor_ppm(channel: dict, rule: str) -> float:
    e = event(channel, rule)
    return next(x["ppm"] for x in e["effects"] if x["action"] == "raise_floor")


def test_mempool_shock_raises_floors_in_one_cycle_then_decays(run):
    node = run("mempool-shock")
    cycles(node, 8)
    calm = explain(node)
    routed = [s for s, c in calm.items() if c["facts"]["channel.out_volume_30d_msat"] > 0
              and event(c, "chain-cost-floor")["matched"]]
    assert len(routed) >= 10
    assert not any(event(calm[s], "vegas-reflex")["matched"] for s in routed)

    with node.lock:
        node.sim.chain.shocks.append(Shock(node.sim.now_s, 12 * HOUR, 8.0))
    node.advance(4 * HOUR)
    summary = node.cycle()["fees"]                    # the first cycle after the shock
    shocked = explain(node)
    for s in routed:
        c = shocked[s]
        assert c["facts"]["market.feerate_shock_ratio"] >= 4
        assert c["facts"]["state.vegas_intensity"] == 1   # stored by that one cycle
        # the floor is the chain-cost floor (itself up with the feerate) times 3
        assert floor_ppm(c, "vegas-reflex") == pytest.approx(3 * floor_ppm(c, "chain-cost-floor"), rel=1e-6) \
            or floor_ppm(c, "chain-cost-floor") >= 500 / 3
        assert floor_ppm(c, "vegas-reflex") > 2 * floor_ppm(calm[s], "chain-cost-floor")
    decisions = [d for d in node.call("revenue-decisions", {"limit": 1000})["decisions"]
                 if d["cycle_id"] == summary["cycle_id"]]
    raised = [d for d in decisions if d["fee_ppm"] > d["old_fee_ppm"] and d["applied"]]
    assert raised, "the shock cycle re-prices at once"

    cycles(node, 36)                                  # the shock ends after 12 h; a day of decay
    after = explain(node)
    for s in routed:
        assert after[s]["facts"]["state.vegas_intensity"] == 0
        assert not event(after[s], "vegas-reflex")["matched"]


def scarcity_curve(c: dict, up: float = 0.4, down: float = 0.1, start: float = 0.35, top: float = 3.0) -> float:
    """The default policy's premium for this channel: the asymmetric EMA updated by this
    cycle's value-weighted utilisation, on the exponential curve (no step anywhere)."""
    f = c["facts"]
    ema, util = f["state.htlc_util_ema"], f["channel.htlc_util"]
    ema += max(0.0, util - ema) * up + min(0.0, util - ema) * down
    return top ** (max(0.0, ema - start) / (1 - start))


def test_a_dust_flood_fills_slots_but_is_not_priced(run):
    """htlc-flood's 1-10 sat HTLCs are under every channel's dust limit (546 sat): they fill
    the flooders' slots, revenue-explain shows them, and no scarcity premium prices them in
    (a fee cannot ration what pays no fee; real payments would only be turned away)."""
    node = run("htlc-flood")
    flooded = {node.sim.channels[i].scid for i in node.sim.market.flood_rate}
    cycles(node, 6)
    now = explain(node)
    for scid in flooded:
        f = now[scid]["facts"]
        assert f["channel.htlcs_in_flight_dust"] > 0 and f["channel.htlc_slot_util"] > 0.35, scid
        assert f["channel.htlc_util"] < 0.35, scid
        assert not event(now[scid], "scarcity-premium")["matched"], scid


def test_a_dust_flood_does_not_price_the_node_out_of_its_market(run):
    """Two days of htlc-flood through the plugin: the flood is most of what a channel forwards,
    yet the fees stay near each channel's competitor price. Before the flood was discounted
    (learner, scarcity and hold premiums), most channels reached the 2,500 ppm ceiling."""
    node = run("htlc-flood", seed=3)
    cycles(node, 48)
    fees = {c["short_channel_id"]: c["updates"]["local"]["fee_proportional_millionths"]
            for c in node.backend("listpeerchannels", {})["channels"]}
    ref = {ch.scid: ch.ref_fee_ppm for ch in node.sim.channels if ch.scid in fees}
    dear = sorted(s for s in ref if fees[s] > 2 * ref[s] + 100)
    assert len(dear) <= len(ref) // 10, {s: (fees[s], round(ref[s])) for s in dear}


def test_scarce_slots_are_priced_on_a_continuous_curve(run, monkeypatch):
    """The same flood on a node whose channels have a dust limit below its HTLCs (0.5 sat):
    they hold slots that a fee could ration, and the premium follows the curve."""
    monkeypatch.setattr(model_render, "DUST_LIMIT_MSAT", 500)
    node = run("htlc-flood")
    flooded = {node.sim.channels[i].scid for i in node.sim.market.flood_rate}
    samples = []
    for _ in range(12):
        cycles(node, 0.5)
        for scid, c in explain(node).items():
            e = event(c, "scarcity-premium")
            if e["matched"] and e["outcome"] == "applied":
                [(before, after)] = [x["fee_ppm"] for x in e["effects"] if x["action"] == "multiply"]
                samples.append((scid, c["facts"]["channel.htlc_util"], after / before, scarcity_curve(c)))
    now = explain(node)
    for scid in flooded:
        c = now[scid]
        assert c["facts"]["channel.htlc_util"] > 0.35, scid
        assert c["facts"]["state.htlc_util_ema"] > 0.35, scid   # smoothed: fast up
        assert event(c, "scarcity-premium")["matched"], scid
    calm = [s for s in now if s not in flooded]
    assert sum(event(now[s], "scarcity-premium")["matched"] for s in calm) <= len(calm) // 4
    # Every premium the plugin applied is the curve's value: no x2 step at 80 % anywhere,
    # above and below it alike.
    assert {s for s, *_ in samples} >= flooded
    for scid, util, applied, curve in samples:
        assert applied == pytest.approx(curve, rel=1e-9), (scid, util)
    assert any(util >= 0.8 for _, util, _, _ in samples) and any(util < 0.8 for _, util, _, _ in samples)
    assert max(applied for *_, applied, _ in samples) < 3.0 + 1e-9
    journal = node.call("revenue-decisions", {"limit": 10000})["decisions"]
    assert journal and not any(d["stage"] == "congestion" for d in journal)


def test_zombies_are_probed_then_sold(run):
    node = run("zombies")
    idle = {ch.scid for ch in node.sim.channels
            if ch.demand_out == 0 and ch.demand_in == 0 and not ch.peer.dead}
    cycles(node, 24 * 10, every_h=2)
    journal = node.call("revenue-decisions", {"limit": 10000})["decisions"]
    rules = {}
    for d in journal:
        rules.setdefault(d["scid"], set()).add(d["rule"])
    facts = {s: c["facts"] for s, c in explain(node).items()}
    eligible = {s for s in idle if facts[s]["channel.local_ratio"] >= 0.5 and facts[s]["channel.age_days"] >= 14}
    assert eligible
    for s in eligible:
        assert "defibrillator-start" in rules[s], s
    sold = {s for s in eligible if facts[s]["channel.age_days"] >= 90}
    assert sold
    for s in sold:
        assert "fire-sale-zombie" in rules[s], s
        assert facts[s]["channel.profit_class"] == "ZOMBIE"
        assert facts[s]["channel.fee_ppm"] == 1
    busy = {s for s, r in rules.items() if s not in idle and facts.get(s, {}).get("channel.out_fwds_7d", 0) > 10}
    assert busy and not any("fire-sale-zombie" in rules[s] for s in busy)


def test_flapping_peers_volume_is_discounted(run):
    node = run("flappy-peers")
    # the hill climber, not the price learner, prices every channel here (it is what discounts)
    node.call("revenue-config", {"key": "price_min_samples", "value": 100000})
    cycles(node, 26)
    alpha = node.call("revenue-config", {"key": "hc_ema_alpha"})["value"]
    checked = 0
    for _ in range(48):
        node.advance(0.5 * HOUR)
        before = explain(node)                   # the state before the cycle
        summary = node.cycle()["fees"]
        stepped = {d["scid"] for d in node.call("revenue-decisions", {"limit": 1000})["decisions"]
                   if d["cycle_id"] == summary["cycle_id"] and d["rule"] == "hill-climb-step" and d["applied"]}
        after = explain(node)
        for scid in stepped:
            # facts at the cycle's instant (the clock moves with revenue-cycle), state before it
            f = after[scid]["facts"]
            if f["peer.uptime_ratio_7d"] >= 0.9:
                continue
            fees = f["channel.fees_earned_1d_msat"]
            weight = 1 if f["channel.profit_class"] == "PROFITABLE" else f["channel.rep_weighted_fees_1d_msat"] / max(1, fees)
            revenue = (fees / max(1, f["channel.out_volume_1d_msat"]) * f["channel.out_fwds_1d"]
                       * f["channel.out_volume_7d_msat"] / max(1, f["channel.out_fwds_7d"]) * weight)
            rate = revenue * f["peer.uptime_ratio_7d"] / 24   # revenue times the peer's uptime
            prev = before[scid]["facts"]["state.hc_rate_msat_h"]
            smoothed = alpha * rate + (1 - alpha) * prev if prev > 0 else rate
            assert f["state.hc_rate_msat_h"] == pytest.approx(smoothed), scid
            if revenue > 0:
                checked += 1
        if checked >= 2:
            break
    assert checked >= 2, "no flapping channel took a climbing step with revenue"


def test_an_overpriced_node_prices_down_to_a_cheap_market(run):
    """Eight days of cheap-market through the plugin: competitors charge 10-80 ppm and our
    channels start at 50-450. A channel that sells nothing is priced down until it sells, and
    no chain-cost floor grows out of its thin flow: most channels end below where they
    started, and the node routes. Before, the hill climber read "0 now, 0 before" as no worse
    and climbed away from the market, and the floor (replacement cost over a thin flow, up
    to 500 ppm) locked out the channels a zero-fee probe had revived: 509 sat in 8 days."""
    node = run("cheap-market")
    start = {c["short_channel_id"]: c["updates"]["local"]["fee_proportional_millionths"]
             for c in node.backend("listpeerchannels", {})["channels"]}
    cycles(node, 8 * 24)
    end = {c["short_channel_id"]: c["updates"]["local"]["fee_proportional_millionths"]
           for c in node.backend("listpeerchannels", {})["channels"]}
    cheaper = [s for s in start if s in end and end[s] < start[s]]
    assert len(cheaper) >= 3 * len(start) // 4, {s: (start[s], end.get(s)) for s in start if s not in cheaper}
    earned_sat = sum(f["fee_msat"] for f in node.backend("listforwards", {"status": "settled"})["forwards"]) // 1000
    assert earned_sat > 5000, earned_sat
    explained = explain(node)
    floors = [(s, e["why"]) for s, c in explained.items() for e in c["trace"]
              if e["rule"] == "chain-cost-floor" and e["matched"]]
    assert floors and all(float(why.rsplit("needs ", 1)[1].split()[0]) <= 50 for _, why in floors), floors
