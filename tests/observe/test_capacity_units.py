"""recommend() on hand-made facts: each loser reason, who pays the close, the winner's numbers."""

from __future__ import annotations

from revops.accounting.capacity import recommend
from revops.facts.build import ChannelFacts

FEERATES = {"perkw": {"opening": 2000},
            "onchain_fee_estimates": {"mutual_close_satoshis": 1000, "unilateral_close_satoshis": 1500,
                                      "opening_channel_satoshis": 1400}}


def chan(scid, local_sat, cap_sat=1_000_000, connected=True, opener_local=True, age_days=100, **extra):
    return ChannelFacts(scid, "02" + scid, {"channel.state": "CHANNELD_NORMAL", "channel.capacity_sat": cap_sat,
                                           "channel.local_msat": local_sat * 1000,
                                           "channel.local_ratio": local_sat / cap_sat, "channel.age_days": age_days,
                                           "channel.opener_local": opener_local, "peer.connected": connected,
                                           "peer.uptime_known_s_7d": 600_000, "peer.uptime_ratio_7d": 1.0 if connected else 0.02,
                                           **extra})


def hist(**rows):
    return {"channels": [{"scid": scid, **row} for scid, row in rows.items()]}


def test_losers_winners_costs_and_numbers():
    facts = [chan("1x1x0", 800_000, connected=False),                  # zombie
             chan("2x2x0", 500_000, opener_local=False),               # fire sale, peer opened: mutual close is theirs
             chan("3x3x0", 600_000),                                   # underwater
             chan("4x4x0", 300_000, age_days=3),                       # too young to judge
             chan("5x5x0", 100_000, cap_sat=2_000_000),                # winner: drained and earning
             chan("6x6x0", 900_000)]                                   # earning but full: not a splice target
    recent = hist(**{"3x3x0": {"routing_income_msat": 0, "sourced_income_msat": 5},
                     "5x5x0": {"routing_income_msat": 2_000_000}, "6x6x0": {"routing_income_msat": 900_000}})
    lifetime = hist(**{"3x3x0": {"net_msat": -50_000}})
    latest = {"2x2x0": {"stage": "fire_sale", "rule": "fire-sale"}}
    r = recommend(facts, lifetime, recent, latest, FEERATES, 30, 0)
    closes = {rec["close"]["scid"]: rec for rec in r["recommendations"]}
    # the offline zombie first, then by yield and the capital freed; 4x4x0 is too young to judge
    assert list(closes) == ["1x1x0", "3x3x0", "2x2x0"]
    assert closes["1x1x0"]["close"]["close_cost_sat"] == 1500
    assert closes["2x2x0"]["close"]["close_cost_sat"] == 0
    assert any("Fire Sale" in why for why in closes["2x2x0"]["close"]["reasons"])
    assert any(why.startswith("underwater") for why in closes["3x3x0"]["close"]["reasons"])
    assert not any(why.startswith("stagnant") for why in closes["3x3x0"]["close"]["reasons"])  # it sources fees
    assert [w["scid"] for w in r["winners"]] == ["5x5x0"]
    rec = closes["1x1x0"]
    assert rec["action"] == "close_and_splice" and rec["splice_into"]["scid"] == "5x5x0"
    assert rec["amount_sat"] == 800_000 - 1500 and rec["onchain_cost_sat"] == 1500 + 1400
    yield_ppm = 2_000_000 * 1e3 / 2_000_000  # msat per sat of capacity, x1000 = ppm
    assert rec["expected_income_sat_per_30d"] == round(yield_ppm * rec["amount_sat"] / 1e6, 1)
    assert rec["payback_days"] == round(2900 / rec["expected_income_sat_per_30d"] * 30, 1)


def test_without_winners_the_advice_is_to_close():
    r = recommend([chan("1x1x0", 800_000, connected=False)], hist(), hist(), {}, FEERATES, 30, 0)
    (rec,) = r["recommendations"]
    assert rec["action"] == "close" and rec["splice_into"] is None and "keep it on-chain" in rec["why"]
