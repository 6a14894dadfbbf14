"""build_facts and flows_from_forwards on hand-checked fixtures, plus property tests."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.facts.build import build_facts, market_facts, missing_facts, scid_block
from revops.facts.flow import ChannelFlow, WindowFlow, flows_from_forwards
from revops.facts.registry import FACTS, NEVER_S
from revops.facts.snapshot import load_snapshot

from tests.cln_schema import response_errors

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_767_225_600.0
H, D = 3600, 86_400
P1, P2, P3, P4 = ("02" + c * 64 for c in "1234")
A, B, C, Dc, F, G = "900000x1x0", "900001x2x1", "900002x3x0", "900003x4x1", "850000x5x0", "900005x6x0"
U64_MAX = 18446744073709551615

def htlc(amount_msat: int, direction: str = "out") -> dict:
    return {"direction": direction, "id": 1, "amount_msat": amount_msat, "expiry": 901300,
            "payment_hash": "ab" * 32,
            "state": "SENT_ADD_ACK_REVOCATION" if direction == "out" else "RCVD_ADD_ACK_REVOCATION"}


def chan(scid, peer, total, local, **kw) -> dict:
    ch = {"peer_id": peer, "peer_connected": True, "state": "CHANNELD_NORMAL", "opener": "local",
          "features": [], "short_channel_id": scid, "direction": 0, "private": False,
          "to_us_msat": local, "total_msat": total, "spendable_msat": max(0, local - total // 100),
          "receivable_msat": max(0, total - local - total // 100),
          "our_max_htlc_value_in_flight_msat": U64_MAX, "max_accepted_htlcs": 483,
          "fee_base_msat": 0, "fee_proportional_millionths": 1,
          "updates": {"local": {"htlc_minimum_msat": 1000, "htlc_maximum_msat": total,
                                "cltv_expiry_delta": 34, "fee_base_msat": 0,
                                "fee_proportional_millionths": 250},
                      "remote": {"htlc_minimum_msat": 1000, "htlc_maximum_msat": total,
                                 "cltv_expiry_delta": 144, "fee_base_msat": 1000,
                                 "fee_proportional_millionths": 120}},
          "htlcs": []}
    ch.update(kw)
    return ch


def fwd(inc, out, status, t, out_msat=0, fee=0, hold=None, failcode=None) -> dict:
    """A listforwards entry received at t (resolved at t + hold when given)."""
    f = {"created_index": 1, "in_channel": inc, "in_msat": out_msat + fee, "status": status,
         "received_time": t}
    if out is not None:
        f["out_channel"] = out
    if status in ("settled", "failed", "offered"):
        f["out_msat"], f["fee_msat"] = out_msat, fee
    if hold is not None:
        f["resolved_time"] = t + hold
    if failcode is not None:
        f["failcode"] = failcode
    return f


FORWARDS = [
    fwd(A, B, "settled", NOW - H - 2, 1_000_000, 100, hold=2),            # 1h ago, hold 2 s
    fwd(A, B, "settled", NOW - 3 * D - 4, 2_000_000, 200, hold=4),        # 3 days ago, hold 4 s
    fwd(B, A, "settled", NOW - 20 * D, 5_000_000, 500, hold=1),           # 20 days ago
    fwd(B, A, "settled", NOW - 40 * D, 7_000_000, 700, hold=1),           # beyond 30 days
    fwd(A, B, "local_failed", NOW - 2 * H, 9_000_000, failcode=4103),     # no liquidity
    fwd(A, B, "local_failed", NOW - 2 * H, 9_000_000, failcode=4108),     # fee insufficient
    fwd(A, None, "local_failed", NOW - 2 * H, 9_000_000, failcode=16394), # unknown next peer
    fwd(A, B, "failed", NOW - 5 * H - 10, 3_000_000, 300, hold=10),       # failed downstream
    fwd(A, B, "offered", NOW - 60, 4_000_000, 400),                       # pending: ignored
]


def rpc(**over) -> dict:
    r = {
        "getinfo": {"id": "03" + "aa" * 32, "alias": "T", "blockheight": 901_234,
                    "network": "regtest", "fees_collected_msat": 777},
        "listpeerchannels": {"channels": [
            chan(A, P1, 2_000_000_000, 500_000_000, max_accepted_htlcs=30,
                 htlcs=[htlc(100_000_000), htlc(100_000_000, "in"), htlc(100_000_000)]),
            chan(B, P2, 1_000_000_000, 900_000_000, max_accepted_htlcs=30,
                 htlcs=[htlc(1000)] * 24),                                   # dust flood
            chan(C, P1, 1_000_000_000, 0, our_max_htlc_value_in_flight_msat=500_000_000,
                 htlcs=[htlc(250_000_000, "in")]),                           # value-capped
            chan(Dc, P3, 3_000_000_000, 1_500_000_000, updates={}, fee_base_msat=1000,
                 fee_proportional_millionths=10),                            # no updates at all
            {"peer_id": P3, "peer_connected": True, "state": "CHANNELD_AWAITING_LOCKIN",
             "opener": "remote", "features": [], "total_msat": 5_000_000_000},  # no scid
            chan(F, P3, 4_000_000_000, 4_000_000_000, state="ONCHAIN"),
            chan(G, P4, 1_000_000_000, 100_000_000, peer_connected=False),
        ]},
        "listforwards": {"forwards": FORWARDS},
        "feerates": {
            "perkw": {"opening": 2500, "mutual_close": 1250, "unilateral_close": 3000,
                      "min_acceptable": 253, "max_acceptable": 60000, "floor": 253,
                      "estimates": [{"blockcount": 6, "feerate": 3000, "smoothed_feerate": 3100},
                                    {"blockcount": 2, "feerate": 6000, "smoothed_feerate": 5800},
                                    {"blockcount": 100, "feerate": 1250, "smoothed_feerate": 1250}]},
            "onchain_fee_estimates": {"opening_channel_satoshis": 1755, "mutual_close_satoshis": 841,
                                      "unilateral_close_satoshis": 1137,
                                      "htlc_timeout_satoshis": 1657, "htlc_success_satoshis": 1757}},
        "listfunds": {"outputs": [
            {"amount_msat": 1_000_000_000, "status": "confirmed"},
            {"amount_msat": 500_000_000, "status": "confirmed"},
            {"amount_msat": 200_000_000, "status": "unconfirmed"},
            {"amount_msat": 100_000_000, "status": "immature"},
            {"amount_msat": 900_000_000, "status": "spent"}], "channels": []},
        "listpeers": {"peers": [{"id": P1, "connected": True}, {"id": P4, "connected": False}]},
    }
    r.update(over)
    return r


@pytest.fixture(scope="module")
def facts() -> dict[str, dict]:
    return {f.scid: f.values for f in build_facts(rpc(), NOW)}


def test_which_channels_get_facts(facts):
    assert list(facts) == [A, B, C, Dc, F, G]  # RPC order; the pre-lock-in channel is skipped


def test_every_fact_present_and_typed(facts):
    for values in facts.values():
        assert missing_facts(values) == []
        assert set(values) == set(FACTS)
        for name, spec in FACTS.items():
            assert_typed(spec, values[name])


def assert_typed(spec, v):
    if spec.type == "number":
        assert type(v) in (int, float), (spec.name, v)
        assert math.isfinite(v), (spec.name, v)
    elif spec.type == "bool":
        assert type(v) is bool, (spec.name, v)
    else:
        assert type(v) is str, (spec.name, v)


def test_balances_and_ratios(facts):
    a = facts[A]
    assert a["channel.capacity_sat"] == 2_000_000
    assert a["channel.local_msat"] == 500_000_000
    assert a["channel.remote_msat"] == 1_500_000_000
    assert a["channel.local_ratio"] == 0.25
    assert a["channel.spendable_msat"] == 480_000_000
    assert a["channel.spendable_ratio"] == 0.24
    assert a["channel.receivable_msat"] == 1_480_000_000
    assert facts[C]["channel.local_ratio"] == 0.0


def test_state_and_activity(facts):
    assert facts[A]["channel.active"] is True
    assert facts[F]["channel.state"] == "ONCHAIN" and facts[F]["channel.active"] is False
    assert facts[G]["channel.state"] == "CHANNELD_NORMAL" and facts[G]["channel.active"] is False
    assert facts[G]["peer.connected"] is False
    assert facts[A]["channel.opener_local"] is True and facts[A]["channel.private"] is False


def test_ages(facts):
    assert facts[A]["channel.age_blocks"] == 1234
    assert facts[A]["channel.age_days"] == pytest.approx(1234 * 600 / 86400)  # 8.569
    assert facts[F]["channel.age_blocks"] == 51_234
    assert scid_block("880001x1234x0") == 880001
    assert scid_block("nonsense") is None


def test_age_of_future_or_odd_scid_is_zero():
    r = rpc()
    r["listpeerchannels"]["channels"] = [chan("999999x1x0", P1, 10**9, 0), chan("abc", P2, 10**9, 0)]
    f = build_facts(r, NOW)
    assert [x.values["channel.age_blocks"] for x in f] == [0, 0]


def test_fees_ours_and_peers(facts):
    a, d = facts[A], facts[Dc]
    assert (a["channel.fee_ppm"], a["channel.fee_base_msat"]) == (250, 0)  # updates.local wins
    assert (a["channel.peer_fee_known"], a["channel.peer_fee_ppm"],
            a["channel.peer_fee_base_msat"]) == (True, 120, 1000)
    assert (d["channel.fee_ppm"], d["channel.fee_base_msat"]) == (10, 1000)  # top-level fallback
    assert (d["channel.peer_fee_known"], d["channel.peer_fee_ppm"],
            d["channel.peer_fee_base_msat"]) == (False, 0, 0)                # neutral default
    assert a["channel.htlc_min_msat"] == 1000 and a["channel.htlc_max_msat"] == 2_000_000_000


def test_htlc_utilisation(facts):
    a, b, c, d = facts[A], facts[B], facts[C], facts[Dc]
    assert a["channel.htlcs_in_flight"] == 3 and a["channel.htlcs_in_flight_msat"] == 300_000_000
    assert a["channel.htlc_slot_util"] == pytest.approx(0.1)    # 3 / 30
    assert a["channel.htlc_value_util"] == pytest.approx(0.15)  # 300M / min(u64 max, 2e9)
    assert a["channel.htlc_util"] == pytest.approx(0.15)
    assert b["channel.htlc_slot_util"] == pytest.approx(0.8)    # 24 dust HTLCs / 30
    assert b["channel.htlcs_in_flight_dust"] == 24 and a["channel.htlcs_in_flight_dust"] == 0
    assert b["channel.htlc_value_util"] == pytest.approx(24_000 / 1e9)
    assert b["channel.htlc_util"] == pytest.approx(24_000 / 1e9)  # dust slots: no fee to ration
    assert c["channel.htlc_value_util"] == pytest.approx(0.5)   # 250M / our 500M limit
    assert d["channel.max_accepted_htlcs"] == 483 and d["channel.htlc_util"] == 0.0


def test_trimmed_htlcs_are_dust_whatever_their_size():
    """lightningd's local_trimmed (too small to enforce on chain: under the dust limit after
    the HTLC transaction's fee) marks dust above dust_limit_msat too; dust holds slots that
    htlc_util leaves out."""
    r = rpc()
    trimmed = dict(htlc(2_000_000), local_trimmed=True)
    r["listpeerchannels"]["channels"][1]["htlcs"] = [trimmed] * 12 + [htlc(600_000)] * 6
    b = build_facts(r, NOW)
    b = next(f.values for f in b if f.scid == B)
    assert b["channel.htlcs_in_flight_dust"] == 12 and b["channel.htlc_slot_util"] == pytest.approx(0.6)
    assert b["channel.htlc_util"] == pytest.approx(0.2)    # the 6 HTLCs above the dust limit / 30


def test_windows_out_side(facts):
    b = facts[B]
    assert [b[f"channel.out_fwds_{w}"] for w in ("1d", "7d", "30d")] == [1, 2, 2]
    assert b["channel.out_volume_1d_msat"] == 1_000_000
    assert b["channel.out_volume_7d_msat"] == 3_000_000
    assert b["channel.fees_earned_7d_msat"] == 300
    assert b["channel.out_failed_liquidity_7d"] == 1
    assert b["channel.out_failed_policy_7d"] == 1
    assert b["channel.out_failed_remote_7d"] == 1
    assert b["channel.out_failed_remote_1d"] == 1
    assert b["channel.in_fwds_30d"] == 1 and b["channel.in_volume_30d_msat"] == 5_000_500
    assert b["channel.fees_sourced_30d_msat"] == 500
    assert b["channel.in_fwds_7d"] == 0


def test_windows_in_side_and_reputation(facts):
    a = facts[A]
    assert [a[f"channel.in_fwds_{w}"] for w in ("1d", "7d", "30d")] == [1, 2, 2]
    assert a["channel.fees_sourced_7d_msat"] == 300
    assert a["channel.in_failed_7d"] == 4  # 3 local_failed + 1 failed, all entered via A
    assert a["channel.in_reputation_7d"] == pytest.approx(3 / 8)  # (2+1)/(2+4+2)
    assert a["channel.out_fwds_30d"] == 1 and a["channel.fees_earned_30d_msat"] == 500
    assert a["channel.out_fwds_7d"] == 0
    assert facts[C]["channel.in_reputation_7d"] == 0.5  # no observations


def test_hold_times(facts):
    b = facts[B]
    assert b["channel.hold_samples_1d"] == 2                       # 2 s settled + 10 s failed
    assert b["channel.hold_time_avg_1d_s"] == pytest.approx(6.0)
    assert b["channel.hold_time_std_1d_s"] == pytest.approx(4.0)
    assert b["channel.hold_samples_7d"] == 3
    assert b["channel.hold_time_avg_7d_s"] == pytest.approx(16 / 3)
    assert b["channel.hold_time_std_7d_s"] == pytest.approx(math.sqrt(((2 - 16 / 3) ** 2 + (4 - 16 / 3) ** 2
                                                                   + (10 - 16 / 3) ** 2) / 3))
    assert facts[C]["channel.hold_time_avg_7d_s"] == 0.0


def test_last_forward_ages_and_never_sentinel(facts):
    a, b, c = facts[A], facts[B], facts[C]
    assert b["channel.last_out_fwd_age_s"] == pytest.approx(H)      # resolved 1 h ago
    assert b["channel.last_in_fwd_age_s"] == pytest.approx(20 * D - 1)  # resolved 1 s after receipt
    assert a["channel.last_out_fwd_age_s"] == pytest.approx(20 * D - 1)
    assert c["channel.last_out_fwd_age_s"] == NEVER_S == 315_360_000
    assert c["channel.last_in_fwd_age_s"] == NEVER_S
    assert c["channel.has_forwarded"] is False and a["channel.has_forwarded"] is True


def test_flow_direction_turnover_and_revenue(facts):
    a, b, c = facts[A], facts[B], facts[C]
    assert b["channel.net_flow_7d_msat"] == 3_000_000
    assert b["channel.flow_ratio_7d"] == 1.0
    assert a["channel.flow_ratio_7d"] == -1.0
    assert c["channel.flow_ratio_7d"] == 0.0
    assert b["channel.turnover_7d"] == pytest.approx(3_000_000 / 7 / 1_000_000_000)
    assert b["channel.revenue_rate_7d_msat_per_h"] == pytest.approx(300 / 168)


def test_peer_aggregates(facts):
    p1 = facts[A]  # P1 has A (2M sat, 0.5M local) and C (1M sat, 0 local)
    assert p1["peer.id"] == P1 and facts[C]["peer.id"] == P1
    assert p1["peer.num_channels"] == 2 and p1["peer.num_active_channels"] == 2
    assert p1["peer.capacity_sat"] == 3_000_000
    assert p1["peer.local_msat"] == 500_000_000
    assert p1["peer.local_ratio"] == pytest.approx(1 / 6)
    assert p1["peer.in_volume_7d_msat"] == 3_000_300
    assert p1["peer.reputation_7d"] == pytest.approx(3 / 8)
    p3 = facts[Dc]  # P3: D open, F ONCHAIN (not counted in balances), pending (no scid)
    assert p3["peer.num_channels"] == 1 and p3["peer.capacity_sat"] == 3_000_000
    assert facts[B]["peer.fees_earned_7d_msat"] == 300


def test_node_facts(facts):
    n = facts[A]
    assert n["node.id"] == "03" + "aa" * 32 and n["node.alias"] == "T"
    assert n["node.network"] == "regtest" and n["node.blockheight"] == 901_234
    assert n["node.num_channels"] == 5          # A B C D G (F is ONCHAIN, pending has no scid)
    assert n["node.num_active_channels"] == 4   # G's peer is disconnected
    assert n["node.total_capacity_sat"] == 8_000_000
    assert n["node.total_local_msat"] == 3_000_000_000
    assert n["node.local_ratio"] == pytest.approx(3 / 8)
    assert n["node.channel_spendable_msat"] == sum(facts[s]["channel.spendable_msat"] for s in (A, B, C, Dc))
    assert n["node.onchain_confirmed_sat"] == 1_500_000
    assert n["node.onchain_unconfirmed_sat"] == 300_000
    assert n["node.fees_collected_msat"] == 777
    assert n["node.fees_earned_1d_msat"] == 100 and n["node.fees_earned_7d_msat"] == 300
    assert all(facts[s]["node.num_channels"] == 5 for s in facts)


def test_market_facts(facts):
    m = facts[A]
    assert m["market.feerates_known"] is True
    assert m["market.opening_feerate_perkw"] == 2500
    assert m["market.fast_feerate_perkw"] == 6000 and m["market.slow_feerate_perkw"] == 1250
    assert m["market.opening_sat_per_vb"] == 10.0
    assert (m["market.open_cost_sat"], m["market.close_cost_sat"],
            m["market.replacement_cost_sat"]) == (1755, 841, 2596)


def test_market_fallbacks():
    perkb = market_facts({"perkb": {"opening": 10_000, "mutual_close": 5_000,
                                    "min_acceptable": 1012, "max_acceptable": 240_000, "floor": 1012}})
    assert perkb["market.opening_feerate_perkw"] == 2500
    assert perkb["market.open_cost_sat"] == 2500 * 702 // 1000 == 1755   # derived, no estimates
    assert perkb["market.close_cost_sat"] == 1250 * 673 // 1000 == 841
    assert perkb["market.fast_feerate_perkw"] == 2500 and perkb["market.slow_feerate_perkw"] == 1250
    empty = market_facts({})
    assert empty["market.feerates_known"] is False
    assert empty["market.opening_feerate_perkw"] == 253
    assert (empty["market.open_cost_sat"], empty["market.close_cost_sat"],
            empty["market.replacement_cost_sat"]) == (5000, 3000, 8000)
    for name in (n for n in FACTS if n.startswith("market.")):
        assert name in empty and empty[name] is not None


def test_given_flows_replace_listforwards():
    flows = {A: ChannelFlow(A, {"7d": WindowFlow(out_count=9, out_msat=90, fees_msat=7)},
                            last_out_s=NOW - 10)}
    f = {x.scid: x.values for x in build_facts(rpc(), NOW, flows)}
    assert f[A]["channel.out_fwds_7d"] == 9 and f[A]["channel.fees_earned_7d_msat"] == 7
    assert f[A]["channel.out_fwds_1d"] == 0             # window missing -> empty
    assert f[A]["channel.last_out_fwd_age_s"] == 10
    assert f[B]["channel.out_fwds_7d"] == 0             # listforwards not used
    assert f[B]["channel.has_forwarded"] is False


def test_window_boundaries():
    fl = flows_from_forwards([fwd(A, B, "settled", NOW - D, 1, 0),          # exactly 1 day: 7d
                              fwd(A, B, "settled", NOW - D + 1, 1, 0),      # just inside 1d
                              fwd(A, B, "settled", NOW - 30 * D, 1, 0),     # exactly 30d: out
                              fwd(A, B, "settled", NOW + 50, 1, 0)], NOW)   # future: age 0
    w = fl[B].windows
    assert (w["1d"].out_count, w["7d"].out_count, w["30d"].out_count) == (2, 3, 3)
    assert fl[B].last_out_s == NOW + 50


def test_flows_skip_malformed_entries():
    fl = flows_from_forwards([{"in_channel": A}, None, {"status": "settled", "received_time": "x"},
                              fwd(A, B, "settled", NOW - 5, 10, 1)], NOW)
    assert fl[B].window("1d").out_count == 1


def test_missing_rpc_methods_give_neutral_facts():
    f = build_facts({"listpeerchannels": {"channels": [chan(A, P1, 10**9, 10**8)]}}, NOW)
    v = f[0].values
    assert missing_facts(v) == []
    assert v["node.blockheight"] == 0 and v["channel.age_blocks"] == 0
    assert v["market.feerates_known"] is False
    assert v["peer.connected"] is True  # from the channel's peer_connected


def test_values_are_read_only(facts):
    with pytest.raises(TypeError):
        facts[A]["channel.fee_ppm"] = 1  # type: ignore[index]


def test_reference_fixtures():
    fx = Path("/work/shared/reference/fixtures")
    if not fx.exists():
        pytest.skip("reference fixtures not available")
    r = {k: json.loads((fx / f"{k}.json").read_text())
         for k in ("getinfo", "listpeerchannels", "listforwards", "feerates")}
    f = {x.scid: x.values for x in build_facts(r, 1767225600)}
    assert list(f) == ["880001x1234x0", "850123x77x1"]
    hub = f["880001x1234x0"]
    assert hub["channel.local_ratio"] == 0.62 and hub["channel.peer_fee_ppm"] == 120
    assert hub["channel.age_blocks"] == 901234 - 880001
    onchain = f["850123x77x1"]
    assert onchain["channel.active"] is False and onchain["channel.peer_fee_known"] is False
    assert onchain["channel.out_failed_liquidity_7d"] == 1 and onchain["channel.out_failed_policy_7d"] == 1


# --------------------------------------------------------------------------- the example snapshot

@pytest.fixture(scope="module")
def example():
    return load_snapshot(ROOT / "examples" / "snapshot.json")


@pytest.mark.parametrize("method", ["getinfo", "listpeerchannels", "listforwards", "feerates",
                                    "listfunds", "listpeers"])
def test_example_matches_cln_schemas(example, method):
    assert response_errors(method, example.rpc[method]) == []


def test_example_generator_reproduces_the_file():
    spec = importlib.util.spec_from_file_location("make_snapshot", ROOT / "examples" / "make_snapshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.make_snapshot() == json.loads((ROOT / "examples" / "snapshot.json").read_text())


def test_example_stories(example):
    f = {x.scid: x.values for x in build_facts(example.rpc, example.captured_at)}
    assert len(f) == 8                                       # the pending channel is skipped
    hub, depleted, full = f["880001x1234x0"], f["850123x77x1"], f["870500x400x1"]
    congested, zombie = f["860000x12x0"], f["820000x900x2"]
    private, offline = f["890000x55x0"], f["875000x10x1"]
    assert depleted["channel.local_ratio"] <= 0.02 and depleted["channel.out_failed_liquidity_7d"] > 10
    assert depleted["channel.flow_ratio_7d"] > 0.5
    assert full["channel.local_ratio"] >= 0.95 and full["channel.flow_ratio_7d"] < -0.5
    assert congested["channel.htlc_slot_util"] == pytest.approx(0.9)
    assert congested["channel.hold_time_avg_7d_s"] > 8
    assert hub["channel.htlcs_in_flight"] == 27
    assert zombie["channel.out_fwds_30d"] == 0 and zombie["channel.last_out_fwd_age_s"] > 40 * D
    assert zombie["channel.age_days"] > 500
    assert private["channel.private"] is True and private["channel.out_failed_remote_7d"] > 0
    assert offline["channel.active"] is False and offline["channel.peer_fee_known"] is False
    assert hub["peer.num_channels"] == 2
    for v in f.values():
        assert missing_facts(v) == []


# --------------------------------------------------------------------------- property test

_SCIDS = [A, B, C, "1x1x1", "0x0x0", "999999999x9x9"]
_nat = st.integers(0, 2**64 - 1)
_small = st.integers(0, 10**13)
_time = st.floats(0, 2e9, allow_nan=False)


def _optional(d: dict) -> st.SearchStrategy[dict]:
    """Returns dicts holding any subset of d's keys, each with a value drawn from its strategy."""
    return st.fixed_dictionaries({}, optional=d)


_fee_update = _optional({"htlc_minimum_msat": _small, "htlc_maximum_msat": _nat,
                         "cltv_expiry_delta": st.integers(0, 2**32 - 1),
                         "fee_base_msat": st.integers(0, 2**32 - 1),
                         "fee_proportional_millionths": st.integers(0, 2**32 - 1)})
_htlc = st.fixed_dictionaries({"amount_msat": _small}, optional={
    "direction": st.sampled_from(["in", "out"]), "id": _nat, "state": st.text(max_size=5)})
_channel = st.fixed_dictionaries(
    {"peer_id": st.sampled_from([P1, P2, P3]),
     "state": st.sampled_from(["CHANNELD_NORMAL", "ONCHAIN", "CHANNELD_AWAITING_LOCKIN",
                               "CLOSINGD_COMPLETE", "weird"])},
    optional={
        "short_channel_id": st.sampled_from(_SCIDS) | st.text(max_size=12),
        "peer_connected": st.booleans(), "opener": st.sampled_from(["local", "remote"]),
        "private": st.booleans(), "to_us_msat": _small, "total_msat": _small,
        "spendable_msat": _small, "receivable_msat": _small,
        "max_accepted_htlcs": st.integers(0, 2**16), "fee_base_msat": _small,
        "fee_proportional_millionths": st.integers(0, 2**32 - 1),
        "our_max_htlc_value_in_flight_msat": _nat,
        "updates": _optional({"local": _fee_update, "remote": _fee_update}),
        "htlcs": st.lists(_htlc, max_size=5),
    })
_forward = st.fixed_dictionaries(
    {"in_channel": st.sampled_from(_SCIDS), "in_msat": _small, "received_time": _time,
     "status": st.sampled_from(["offered", "settled", "local_failed", "failed"])},
    optional={"out_channel": st.sampled_from(_SCIDS), "out_msat": _small, "fee_msat": _small,
              "resolved_time": _time, "failcode": st.integers(0, 2**16)})
_feerates = _optional({
    "perkw": _optional({k: st.integers(0, 10**6) for k in
                        ("opening", "mutual_close", "unilateral_close", "min_acceptable",
                         "max_acceptable", "floor")}
                       | {"estimates": st.lists(st.fixed_dictionaries(
                           {"blockcount": st.integers(1, 1000), "feerate": st.integers(0, 10**6)}),
                           max_size=3)}),
    "perkb": _optional({"opening": st.integers(0, 10**6)}),
    "onchain_fee_estimates": _optional({"opening_channel_satoshis": _small,
                                        "mutual_close_satoshis": _small})})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channels=st.lists(_channel, max_size=8), forwards=st.lists(_forward, max_size=20),
       feerates=_feerates, blockheight=st.integers(0, 2**32 - 1),
       now=st.floats(0, 2.1e9, allow_nan=False))
def test_build_facts_never_crashes_on_shape_valid_input(channels, forwards, feerates, blockheight, now):
    r = {"getinfo": {"id": "03" + "aa" * 32, "blockheight": blockheight},
         "listpeerchannels": {"channels": channels}, "listforwards": {"forwards": forwards},
         "feerates": feerates, "listfunds": {"outputs": []}, "listpeers": {"peers": []}}
    before = copy.deepcopy(r)
    out = build_facts(r, now)
    assert r == before                                   # pure: input untouched
    assert len(out) == sum(1 for c in channels if c.get("short_channel_id"))
    for cf in out:
        assert missing_facts(cf.values) == []
        for name, spec in FACTS.items():
            assert_typed(spec, cf.values[name])
        for name in ("channel.local_ratio", "channel.spendable_ratio", "channel.htlc_slot_util",
                     "channel.htlc_value_util", "channel.htlc_util", "peer.local_ratio",
                     "node.local_ratio", "channel.in_reputation_7d", "peer.reputation_7d"):
            assert 0.0 <= cf.values[name] <= 1.0, (name, cf.values[name])
        assert -1.0 <= cf.values["channel.flow_ratio_7d"] <= 1.0
        assert 0 <= cf.values["channel.last_out_fwd_age_s"] <= NEVER_S
