"""History facts through the real plugin: connect/disconnect notifications, applied fee changes
and the feerate series show in revenue-explain, and `revops explain` on a revenue-snapshot
gives the same facts offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from revops.facts.registry import NEVER_S
from revops.sim.model_chain import Shock

from .conftest import ROOT

CYCLE_S = 1800


def facts_by_scid(doc: dict) -> dict[str, dict]:
    return {c["scid"]: c["facts"] for c in doc["channels"]}


def assert_offline_equals_live(node, tmp_path) -> dict:
    """Takes a revenue-snapshot and a revenue-explain at the same instant, runs `revops
    explain` on the snapshot and checks decisions, traces and every fact agree; returns live."""
    snapshot = node.call("revenue-snapshot")
    live = node.call("revenue-explain")
    assert "history" in snapshot
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot))
    run = subprocess.run([sys.executable, "-m", "revops.cli", "explain", "--policy",
                          str(node.policy_dir), "--snapshot", str(path), "--json"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=60)
    assert run.returncode == 0, run.stderr
    offline = json.loads(run.stdout)
    assert [c["scid"] for c in offline["channels"]] == [c["scid"] for c in live["channels"]]
    for a, b in zip(offline["channels"], live["channels"]):
        assert a["decision"] == b["decision"], a["scid"]
        assert [(e["rule"], e["matched"]) for e in a["trace"]] == \
            [(e["rule"], e["matched"]) for e in b["trace"]]
        assert a["facts"].keys() == b["facts"].keys()
        for name, value in a["facts"].items():
            if isinstance(value, float):
                assert value == pytest.approx(b["facts"][name], rel=1e-9, abs=1e-9), (a["scid"], name)
            else:
                assert value == b["facts"][name], (a["scid"], name)
    return live


def test_uptime_and_fee_updates_show_in_explain_and_offline(node, tmp_path):
    # The climber keeps a channel's own fee at its first pricing; start every channel from
    # base_fee_ppm instead, so that the first cycle changes fees.
    node.call("revenue-config", {"key": "hc_adopt_min_ppm", "value": 100000})
    node.cycle()
    t0 = node.sim.now_s
    decisions = node.call("revenue-decisions", {"limit": 10000})["decisions"]
    applied = {}
    for d in decisions:
        if d["applied"]:
            applied[d["scid"]] = applied.get(d["scid"], 0) + 1
    assert applied, "the first cycle sets fees"

    first = facts_by_scid(node.call("revenue-explain"))
    peer = next(iter(first.values()))["peer.id"]
    assert first[next(iter(first))]["peer.uptime_ratio_7d"] == 1.0  # nothing known yet
    for scid, f in first.items():
        assert f["channel.fee_updates_24h"] == applied.get(scid, 0), scid
        assert f["channel.last_fee_change_age_s"] == (0.0 if scid in applied else NEVER_S)
        assert f["node.fee_updates_24h"] == sum(applied.values())
        assert f["node.now_s"] == pytest.approx(t0)

    # connected at t0, gone at t0 + 3 h, explained at t0 + 4 h: 3/4 up, one disconnect
    assert node.ld.notify("connect", {"id": peer, "direction": "out",
                                      "address": {"type": "ipv4", "address": "10.0.0.1", "port": 9735}})
    node.advance(3 * 3600)
    node.cycle()
    t1 = node.sim.now_s
    assert node.ld.notify("disconnect", {"id": peer})
    node.advance(3600)
    node.cycle()
    t2 = node.sim.now_s

    live = assert_offline_equals_live(node, tmp_path)
    for f in facts_by_scid(live).values():
        if f["peer.id"] == peer:
            assert f["peer.uptime_ratio_7d"] == pytest.approx((t1 - t0) / (t2 - t0))
            assert f["peer.disconnects_7d"] == 1
            assert f["peer.uptime_known_s_7d"] == pytest.approx(t2 - t0)
        else:
            assert (f["peer.uptime_ratio_7d"], f["peer.disconnects_7d"]) == (1.0, 0)
        scid = f["channel.scid"]
        if scid in applied:  # changed by the first cycle, maybe again since
            assert f["channel.fee_updates_24h"] >= applied[scid]
            assert f["channel.last_fee_change_age_s"] <= t2 - t0
        assert f["node.now_s"] == pytest.approx(t2)
    total = sum(1 for d in node.call("revenue-decisions", {"limit": 10000})["decisions"]
                if d["applied"])
    assert next(iter(facts_by_scid(live).values()))["node.fee_updates_24h"] == total


def test_mempool_shock_raises_the_shock_ratio(node, tmp_path):
    for _ in range(8):  # 4 h of calm fee cycles: the series the averages are over
        node.advance(CYCLE_S)
        node.cycle()
    calm = next(iter(facts_by_scid(node.call("revenue-explain")).values()))
    assert 0.5 < calm["market.feerate_shock_ratio"] < 1.5
    assert calm["market.opening_feerate_ma_7d_perkw"] == pytest.approx(
        calm["market.opening_feerate_ma_24h_perkw"])  # all samples are within 24 h

    with node.lock:
        node.sim.chain.shocks.append(Shock(node.sim.now_s, 12 * 3600, 6.0))
    node.advance(4 * 3600)   # lightningd's smoothing catches up over a few blocks
    live = assert_offline_equals_live(node, tmp_path)
    f = next(iter(facts_by_scid(live).values()))
    assert f["market.feerate_shock_ratio"] > 3.0
    assert f["market.feerate_shock_ratio"] == pytest.approx(
        f["market.opening_feerate_perkw"] / f["market.opening_feerate_ma_7d_perkw"])
    assert f["market.opening_feerate_ma_7d_perkw"] == pytest.approx(
        calm["market.opening_feerate_ma_7d_perkw"], rel=0.2)


def test_flow_windows_count_only_the_days_revops_has_watched(node, tmp_path):
    """A node revops started watching two days ago (the simulated node has no older forwards)
    has two days of flow in its 30-day window: rates divide by two days, not thirty. Before,
    the chain-cost floor read a thirtieth of the real flow and sat at its 500 ppm cap. (The
    floor's minimum flow is set to 1 sat a day here, so that it reads each channel's own flow.)"""
    t0 = node.sim.now_s                          # the plugin's clock at start
    node.call("revenue-config", ["chain_cost_floor_min_flow_sat", 1])
    node.advance(2 * 86400)
    node.cycle()
    live = assert_offline_equals_live(node, tmp_path)   # the snapshot carries when watching began
    days = (node.sim.now_s - t0) / 86400
    routed = 0
    for c in live["channels"]:
        f = c["facts"]
        assert f["channel.flow_days_30d"] == pytest.approx(max(0.25, min(days, f["channel.age_days"]))), c["scid"]
        out30 = f["channel.out_volume_30d_msat"]
        if not out30 or f["channel.age_days"] < days:
            continue
        routed += 1
        volume7 = f["channel.out_volume_7d_msat"] + f["channel.in_volume_7d_msat"]
        assert f["channel.turnover_7d"] == pytest.approx(volume7 / days / (f["channel.capacity_sat"] * 1000))
        assert f["channel.revenue_rate_7d_msat_per_h"] == pytest.approx(f["channel.fees_earned_7d_msat"] / (days * 24))
        floor = next(e for e in c["trace"] if e["rule"] == "chain-cost-floor")
        assert floor["matched"]
        want = min(500, f["market.replacement_cost_sat"] * 1e9 / (max(out30 / days, 1000) * 365))
        assert next(x["ppm"] for x in floor["effects"] if x["action"] == "raise_floor") == pytest.approx(want)
    assert routed >= 10
