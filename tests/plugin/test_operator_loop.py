"""The operator's loop (issue 13) through the real plugin: param edits reload, logic changes
are refused with the diff, groups by alias, overrides by peer, and pins that survive a reload
and a restart (in groups.yaml and set with revenue-config)."""

from __future__ import annotations

import pytest
from revops.sim.errors import RpcError

from tests.plugin.conftest import Node

CORE_1 = "912320x46x0"   # peer alias core-1 in the hub scenario (seed 7)
EDGE_21 = "896480x1328x1"  # alias edge-21


def _explain(node: Node, scid: str) -> dict:
    return node.call("revenue-explain", {"scid": scid})["channels"][0]


def _fee_on_node(node: Node, scid: str) -> int:
    ch = next(c for c in node.call("listpeerchannels")["channels"] if c.get("short_channel_id") == scid)
    return ch["updates"]["local"]["fee_proportional_millionths"]


def test_a_param_edit_in_range_reloads_and_a_logic_change_is_refused_with_the_diff(node):
    premiums = node.policy_dir / "premiums.yaml"
    text = premiums.read_text()
    edited = text.replace("    default: 1.2\n", "    default: 1.5\n", 1)  # hold_premium, range 1..5
    assert edited != text
    premiums.write_text(edited)
    result = node.call("revenue-reload")  # the shipped tests pin the premium they assume
    assert result["digest"].startswith("sha256:") and result["override_problems"] == []
    assert node.call("revenue-config", ["hold_premium"])["value"] == 1.5

    premiums.write_text(edited.replace("then: multiply(params.hold_premium)",
                                       "then: multiply(params.hold_premium * 1.25)"))
    with pytest.raises(RpcError) as info:
        node.call("revenue-reload")
    message = info.value.message
    assert "previous policy kept" in message and "policy_test_failure" in message
    assert "fee_ppm: want 488, got 610" in message, message  # the diff
    assert node.call("revenue-status")["policy"]["digest"] == result["digest"]


def test_groups_by_alias_overrides_by_peer_and_pins_survive_reload_and_restart(workdir):
    node = Node(workdir)
    core_1 = next(p.node_id for p in node.sim.peers.values() if p.alias == "core-1")
    (node.policy_dir / "groups.yaml").write_text(f"""
groups:
  edges:
    aliases: ["edge-*"]
overrides:
  - group: edges
    params: {{min_fee_ppm: 777}}
  - peer: "{core_1}"
    params: {{max_fee_ppm: 40}}
  - {{channel: {EDGE_21}, pin_fee_ppm: 3}}
""")
    node.start()
    try:
        node.advance(3600)
        node.cycle()
        pinned = _explain(node, EDGE_21)
        assert (pinned["decision"]["rule"], pinned["decision"]["fee_ppm"]) == ("pin", 3)
        assert _fee_on_node(node, EDGE_21) == 3
        edges = [c for c in node.call("revenue-explain")["channels"] if c["facts"]["peer.alias"].startswith("edge-")]
        assert len(edges) == 20 and all(c["facts"]["groups.edges"] for c in edges)
        floored = [c for c in edges if c["decision"]["rule"] not in ("pin",) and not c["decision"]["stage"] in
                   ("zero_fee_probe", "fire_sale", "safety")]
        assert floored and all(c["decision"]["fee_ppm"] >= 777 for c in floored)
        assert all(c["overrides"]["min_fee_ppm"] == {"value": 777, "from": "groups.yaml:6 (group edges)"}
                   for c in floored)
        capped = _explain(node, CORE_1)
        assert capped["overrides"]["max_fee_ppm"]["from"] == f"groups.yaml:8 (peer {core_1[:12]}…)"
        assert capped["decision"]["fee_ppm"] <= 40 or capped["decision"]["stage"] in ("zero_fee_probe", "fire_sale")

        # A runtime pin for one channel, persisted like any override.
        assert node.call("revenue-config", [f"channel:{CORE_1}:pin_fee_ppm", 5])["value"] == 5
        with pytest.raises(RpcError, match="below 0"):
            node.call("revenue-config", [f"channel:{CORE_1}:pin_fee_ppm", -1])
        with pytest.raises(RpcError, match="unknown param"):
            node.call("revenue-config", [f"peer:{core_1}:min_fee", 5])
        assert node.call("revenue-reload")["override_problems"] == []
        node.cycle()
        assert _explain(node, CORE_1)["decision"]["fee_ppm"] == 5
    finally:
        node.stop()
    node.start()
    try:
        node.advance(1800)
        node.cycle()
        assert _fee_on_node(node, EDGE_21) == 3 and _fee_on_node(node, CORE_1) == 5
        why = next(e for e in _explain(node, CORE_1)["trace"] if e["rule"] == "pin")["why"]
        assert why == f"pinned at 5 ppm by revenue-config (channel {CORE_1})"
        assert node.call("revenue-config")["scoped_overrides"] == {f"channel:{CORE_1}:pin_fee_ppm": 5}
        assert node.call("revenue-config", ["reset", f"channel:{CORE_1}:pin_fee_ppm"])["reset"] == [
            f"channel:{CORE_1}:pin_fee_ppm"]
        assert _explain(node, CORE_1)["decision"]["rule"] != "pin"
    finally:
        node.stop()


def test_a_bad_groups_file_keeps_the_running_policy(node):
    before = node.call("revenue-status")["policy"]["digest"]
    groups = node.policy_dir / "groups.yaml"
    for text, where, what in [
        ("groups:\n  x:\n    nodes: [02abc]\n", "groups.yaml:3:13", "is not a node id"),
        ("groups:\n  x:\n    aliases: [\"a[\"]\n", "groups.yaml:3:15", "bad glob"),
        ("overrides:\n  - {channel: 1x2x3, params: {min_fee_ppm: -4}}\n", "groups.yaml:2:44", "below the minimum"),
        ("overrides:\n  - {channel: 1x2x3, pin_fee_ppm: -1}\n", "groups.yaml:2:35", "below 0"),
    ]:
        groups.write_text(text)
        with pytest.raises(RpcError) as info:
            node.call("revenue-reload")
        assert f"{where}: policy_schema_error" in info.value.message and what in info.value.message, info.value.message
        assert node.call("revenue-status")["policy"]["digest"] == before
