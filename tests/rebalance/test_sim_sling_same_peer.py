"""The simulated sling with a candidate to the target's own peer (sling issue #11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revops.sim.model_build import build_node

TWIN = Path(__file__).resolve().parents[1] / "plugin" / "twin-peer.yaml"


@pytest.mark.parametrize("version", ["v4.2.0", "v4.0.0"])
def test_a_same_peer_candidate_pays_for_nothing_or_is_refused(version):
    node = build_node(str(TWIN), seed=2)
    node.sling.version = version
    by_peer: dict = {}
    for c in node.channels:
        by_peer.setdefault(c.peer.node_id, []).append(c)
    drained, full = next(chs for chs in by_peer.values() if len(chs) == 2)
    drained.to_us_msat = drained.total_msat // 20
    full.to_us_msat = full.total_msat * 95 // 100
    for c in (drained, full):
        c.demand_out = c.demand_in = 0.0
    node.sling.rpc_job({"scid": drained.scid, "direction": "pull", "amount": 50_000, "maxppm": 100_000,
                        "candidates": [full.scid]})
    node.sling.rpc_go({"scid": drained.scid})
    before = drained.to_us_msat,
    node.advance(600)
    stats = node.sling.rpc_stats({"scid": drained.scid, "json": True})
    if version == "v4.2.0":
        assert stats["successes_in_time_window"] is None
        assert stats["failures_in_time_window"]["top_5_failure_reasons"][0]["failure_reason"] == \
            "came back on the wrong channel"
        assert node.sling.banned_until[drained.peer.node_id] > node.now_s - 600
        assert drained.to_us_msat == before[0]
    else:  # paid, and nothing moved into the target
        assert stats["successes_in_time_window"]["total_spent_sats"] > 0
        assert drained.to_us_msat == before[0]
