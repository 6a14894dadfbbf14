"""Scenario files: the bundled ones load and run; bad ones fail with scenario_error at line:col;
`from_snapshot` seeds a node from a captured revops-snapshot/1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revops.diagnostics import DiagnosticError
from revops.sim.model_build import build_node
from revops.sim.model_channel import NORMAL
from revops.sim.rpc import SimRpc
from revops.sim.scenario import SCENARIO_DIR, load_scenario, parse_scenario, scenario_names

EXPECTED = {"hub": 40, "sink-drain": 40, "zombies": 40, "mempool-shock": 40,
            "htlc-flood": 40, "flappy-peers": 40, "large": 2000, "self-loops": 28,
            "competitor-shift": 40, "demand-shift": 40, "cheap-market": 40}
EXAMPLE_SNAPSHOT = Path(__file__).resolve().parents[2] / "examples" / "snapshot.json"


def test_bundled_scenarios_are_all_there():
    assert set(scenario_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_scenario_loads_builds_and_runs(name):
    sc = load_scenario(name)
    assert sc.name == name
    text = (SCENARIO_DIR / f"{name}.yaml").read_text()
    assert text.startswith(f"# {name} — "), "each scenario opens with a comment saying what it is"
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 5
    node = build_node(sc)
    assert len(node.channels) == EXPECTED[name]
    node.advance(3600)
    assert len(node.forwards) > 0


def test_load_by_path_equals_load_by_name():
    assert load_scenario(SCENARIO_DIR / "hub.yaml").data == load_scenario("hub").data


def test_overrides_for_seed_and_plugins():
    a = build_node("hub", seed=1, sling=False)
    b = build_node("hub", seed=2, bookkeeper=False)
    assert a.sling is None and a.bookkeeper is not None
    assert b.bookkeeper is None and b.sling is not None
    assert a.config.node_id != b.config.node_id


def diag(text: str):
    with pytest.raises(DiagnosticError) as e:
        parse_scenario(text, "bad.yaml")
    return [(d.line, d.col, d.code, d.message) for d in e.value.diagnostics]


def test_unknown_key_points_at_the_key():
    text = "name: x\ntraffic:\n  payments_per_hr: 10\n"
    ((line, col, code, msg),) = diag(text)
    assert (line, col, code) == (3, 3, "scenario_error")
    assert "unknown key 'payments_per_hr' in scenario.traffic" in msg
    assert "payments_per_hour" in msg          # the allowed keys are listed


def test_wrong_type_points_at_the_value():
    ((line, col, _, msg),) = diag("name: x\nseed: forty-two\n")
    assert (line, col) == (2, 7)
    assert msg == "scenario.seed must be an integer, got string"


def test_out_of_range_points_at_the_value():
    ((line, col, _, msg),) = diag("name: x\nnode:\n  max_concurrent_htlcs: 999\n")
    assert (line, col) == (3, 25)
    assert msg == "scenario.node.max_concurrent_htlcs must be between 1 and 483, got 999"


def test_errors_inside_channel_groups_and_ranges():
    text = ("name: x\n"
            "channel_groups:\n"
            "  - count: 3\n"
            "    local_ratio: [0.9, 0.1]\n"
            "    opener: sideways\n"
            "  - capacity_sat: [1, 2, 3]\n")
    got = diag(text)
    assert got == [
        (4, 18, "scenario_error", "scenario.channel_groups[0].local_ratio: low 0.9 is greater "
                                  "than high 0.1"),
        (5, 13, "scenario_error", "scenario.channel_groups[0].opener must be one of local, "
                                  "remote, got 'sideways'"),
        (6, 5, "scenario_error", "missing required key 'count' in scenario.channel_groups[1]"),
        (6, 19, "scenario_error", "scenario.channel_groups[1].capacity_sat must be a number or "
                                  "a [low, high] pair"),
    ]


def test_yaml_1_1_booleans_are_caught():
    # `name: off` is a boolean in YAML 1.1: a classic trap an operator should hear about
    ((line, col, _, msg),) = diag("name: x\nchannel_groups:\n  - {name: off, count: 1}\n")
    assert (line, col) == (3, 12) and msg.endswith("must be a string, got boolean")


def test_missing_name_and_bad_nesting():
    got = diag("seed: 1\nmempool: 5\nplugins: {sling: yes please}\n")
    assert [(l, c) for l, c, _, _ in got] == [(1, 1), (2, 10), (3, 18)]
    assert got[0][3] == "missing required key 'name' in scenario"
    assert got[1][3] == "scenario.mempool must be a mapping"
    assert got[2][3] == "scenario.plugins.sling must be true or false, got string"


def test_yaml_syntax_error_has_position():
    ((line, col, code, msg),) = diag("name: x\ntraffic: {payments_per_hour: 3\n")
    assert code == "scenario_error" and msg.startswith("YAML syntax:") and line >= 2


def test_bad_file_reports_path(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("name: mine\nwallet_sat: -5\n")
    with pytest.raises(DiagnosticError) as e:
        load_scenario(p)
    assert str(e.value) == (f"{p}:2:13: scenario_error: scenario.wallet_sat must be between "
                            "0 and 2100000000000000, got -5")


def test_missing_snapshot_points_at_from_snapshot(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nfrom_snapshot: nowhere.json\n")
    with pytest.raises(DiagnosticError) as e:
        build_node(load_scenario(p))
    (d,) = e.value.diagnostics
    assert (d.file, d.line, d.col, d.code) == (str(p), 2, 16, "scenario_error")


def test_invalid_snapshot_is_a_snapshot_error(tmp_path):
    (tmp_path / "snap.json").write_text(json.dumps({"format": "revops-snapshot/2"}))
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nfrom_snapshot: snap.json\n")
    with pytest.raises(DiagnosticError) as e:
        build_node(load_scenario(p))
    assert all(d.code == "snapshot_error" for d in e.value.diagnostics)


@pytest.mark.skipif(not EXAMPLE_SNAPSHOT.exists(), reason="examples/snapshot.json not present")
def test_from_snapshot_seeds_the_node(tmp_path):
    snap = json.loads(EXAMPLE_SNAPSHOT.read_text())
    p = tmp_path / "from-snap.yaml"
    p.write_text(f"name: from-snap\nfrom_snapshot: {EXAMPLE_SNAPSHOT}\n"
                 "traffic: {payments_per_hour: 300}\n")
    node = build_node(load_scenario(p))
    rpc = SimRpc(node)
    gi = rpc("getinfo")
    assert gi["id"] == snap["rpc"]["getinfo"]["id"]
    assert gi["blockheight"] == snap["rpc"]["getinfo"]["blockheight"]
    assert node.now_s == snap["captured_at"]
    want = {c["channel_id"]: c for c in snap["rpc"]["listpeerchannels"]["channels"]}
    got = {c["channel_id"]: c for c in rpc("listpeerchannels")["channels"]}
    assert set(got) == set(want)
    for cid, c in want.items():
        for key in ("to_us_msat", "total_msat", "fee_proportional_millionths", "state",
                    "short_channel_id", "peer_connected"):
            assert got[cid].get(key) == c.get(key), (cid, key)
    assert len(rpc("listforwards")["forwards"]) == len(snap["rpc"]["listforwards"]["forwards"])
    node.advance(6 * 3600)
    assert len(rpc("listforwards")["forwards"]) > len(snap["rpc"]["listforwards"]["forwards"])
    assert any(c.state == NORMAL for c in node.channels)
