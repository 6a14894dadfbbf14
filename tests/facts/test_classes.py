"""Derived facts: decayed reputation, reputation-weighted revenue, profitability and classes."""

from __future__ import annotations

import pytest

from revops.facts import classes
from revops.facts.build import build_facts
from revops.facts.history import History, history_from_json, history_to_json
from revops.facts.rebalance import RebalanceHistory

from tests.facts.test_build import A, B, C, Dc, H, NOW, P1, P2, chan, fwd

# A channel of ours is ~400 days old at block 900000 + 57600 (400 days x 144 blocks).
HEIGHT = 900_000 + 57_600


def build(channels, forwards, states=None, history=None, feerates=None, rebalance=None):
    rpc = {"getinfo": {"id": "02" + "f" * 64, "blockheight": HEIGHT},
           "listpeerchannels": {"channels": channels}, "listforwards": {"forwards": forwards},
           "feerates": feerates or {"perkw": {"opening": 2500, "mutual_close": 2500}}}
    return {f.scid: f.values for f in build_facts(rpc, NOW, history=history, states=states, rebalance=rebalance)}


def test_reputation_decays_in_floating_point_and_never_collapses():
    fresh = classes.decayed_reputation(((0, 1), (0, 0), (0, 0)))
    old = classes.decayed_reputation(((0, 0), (0, 0), (0, 1)))
    assert 0.5 > old > fresh  # an old failure weighs less than a fresh one, but still counts
    assert old < 0.5 - 0.01   # the original's integer decay would have rounded it to nothing
    assert classes.decayed_reputation(((0, 0), (0, 0), (0, 0))) == 0.5
    assert classes.decayed_reputation(((100, 0), (0, 0), (0, 0))) > 0.98


def test_peer_reputation_from_forwards_it_sent(tmp_path):
    # P2 (channel B) sends us 1 settled and 9 failed HTLCs today; P1 sends 10 settled.
    fwds = ([fwd(B, A, "failed", NOW - H - i) for i in range(9)] + [fwd(B, A, "settled", NOW - H, 10**6, 100)]
            + [fwd(A, B, "settled", NOW - 2 * H - i, 10**6, 200) for i in range(10)])
    f = build([chan(A, P1, 10**9, 5 * 10**8), chan(B, P2, 10**9, 5 * 10**8)], fwds)
    assert f[A]["peer.reputation"] == pytest.approx((10 * 0.5 ** (0.5 / 7) + 1) / (10 * 0.5 ** (0.5 / 7) + 2))
    assert f[B]["peer.reputation"] < 0.25
    # Fees out of A came in from spammy P2: weighted by P2's score; out of B from P1.
    assert f[A]["channel.rep_weighted_fees_1d_msat"] == pytest.approx(100 * f[B]["peer.reputation"])
    assert f[B]["channel.rep_weighted_fees_1d_msat"] == pytest.approx(2000 * f[A]["peer.reputation"])
    assert f[A]["channel.fees_earned_1d_msat"] == 100


def test_weighted_fees_from_the_store_history_and_unknown_channels():
    hist = History(as_of_s=NOW, in_fees_1d={A: {B: 1000, "800000x1x1": 1000}})
    f = build([chan(A, P1, 10**9, 5 * 10**8), chan(B, P2, 10**9, 5 * 10**8)], [], history=hist)
    # no forwards known for P2: 0.5; the closed channel's peer is unknown: 0.5
    assert f[A]["channel.rep_weighted_fees_1d_msat"] == pytest.approx(1000)
    assert history_from_json(history_to_json(hist)) == hist


def test_profitability_and_profit_classes():
    # A (we opened) earned 100 sat over 30 d, B earned nothing for 20 days, C (remote opened) 0.
    fwds = [fwd(B, A, "settled", NOW - 20 * 86400, 10**8, 100_000)]
    chans = [chan(A, P1, 10**9, 5 * 10**8), chan(B, P2, 10**9, 5 * 10**8),
             chan(C, P1, 10**9, 5 * 10**8, opener="remote")]
    f = build(chans, fwds)
    open_cost_sat = f[A]["market.open_cost_sat"]
    assert f[A]["channel.open_cost_estimate_sat"] == open_cost_sat and f[C]["channel.open_cost_estimate_sat"] == 0
    cost = open_cost_sat * 1000 * 30 / 365
    assert f[A]["channel.contribution_30d_msat"] == 100_000
    assert f[A]["channel.return_on_cost_30d"] == pytest.approx((100_000 - cost) / cost)
    assert f[A]["channel.profit_class"] == "IDLE"          # nothing for 20 days
    assert f[C]["channel.return_on_cost_30d"] == 0.0                        # no cost, no contribution
    # fresh routing makes A earn far more than its share of the open cost
    f = build(chans, fwds + [fwd(B, A, "settled", NOW - H, 10**8, 5_000_000)])
    assert f[A]["channel.profit_class"] == "PROFITABLE" and f[A]["channel.marginal_roi_30d"] == 1.0
    # a little routing against the amortised open cost: UNDERWATER
    f = build(chans, [fwd(B, A, "settled", NOW - H, 10**6, 1_000)])
    assert f[A]["channel.profit_class"] == "UNDERWATER" and f[A]["channel.return_on_cost_30d"] < -0.1


def test_rebalance_cost_counts_against_profit():
    chans = [chan(A, P1, 10**9, 5 * 10**8, opener="remote")]
    fwds = [fwd(B, A, "settled", NOW - H, 10**8, 100_000)]
    f = build(chans, fwds, rebalance=RebalanceHistory(cost_30d_msat={A: 400_000}))
    assert f[A]["channel.rebalance_cost_30d_msat"] == 400_000
    assert f[A]["channel.marginal_roi_30d"] == pytest.approx((100_000 - 400_000) / 400_000)
    assert f[A]["channel.profit_class"] == "UNDERWATER"


def test_zombie_needs_the_defibrillators_verdict():
    chans = [chan(A, P1, 10**9, 9 * 10**8)]
    assert build(chans, [])[A]["channel.profit_class"] == "IDLE"
    assert build(chans, [], states={A: {"zombie": True}})[A]["channel.profit_class"] == "ZOMBIE"
    # a routing channel is never a zombie, whatever the stale flag says
    busy = build(chans, [fwd(A, B, "settled", NOW - H, 10**6, 100)], states={A: {"zombie": True}})
    assert busy[A]["channel.profit_class"] != "ZOMBIE"


def test_flow_classes_and_stagnant_inventory():
    out = [fwd(B, A, "settled", NOW - H - i, 10**8, 100) for i in range(5)]
    f = build([chan(A, P1, 10**9, 5 * 10**8), chan(B, P2, 10**9, 5 * 10**8),
               chan(C, P1, 10**9, 10**8), chan(Dc, P2, 10**9, 5 * 10**8)], out)
    assert f[A]["channel.flow_class"] == "DRAINING" and f[B]["channel.flow_class"] == "FILLING"
    assert f[C]["channel.flow_class"] == "DRAINING"      # no flow: drained means DRAINING
    assert f[Dc]["channel.flow_class"] == "BALANCED"
    assert f[Dc]["channel.stagnant_inventory"] and not f[A]["channel.stagnant_inventory"]
    assert not f[C]["channel.stagnant_inventory"]      # 10 % local is not balanced
