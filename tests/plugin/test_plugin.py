"""The revops plugin end to end: a real subprocess speaking CLN's plugin protocol to the harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from revops.sim.errors import RpcError
from tests.plugin.conftest import ROOT, Node, failing_backend

METHODS = {"revenue-status", "revenue-reload", "revenue-explain", "revenue-config", "revenue-snapshot",
           "revenue-cycle", "revenue-decisions"}


def test_manifest_methods_subscriptions_and_status(node):
    ld = node.ld
    assert METHODS <= set(ld.methods)
    assert {"forward_event", "connect", "disconnect", "channel_state_changed", "shutdown"} <= set(ld.subscriptions)
    status = node.call("revenue-status")
    assert status["policy"]["name"] == "default" and status["policy"]["digest"].startswith("sha256:")
    assert status["last_reload"]["ok"] is True
    assert status["dependencies"] == {"sling": True, "bookkeeper": True}
    assert status["mode"] == "active" and status["clock"] == "simulated"
    # lightning-cli help shows a usage line for every method
    usages = {c["command"].split()[0]: c["command"].splitlines()[0].strip() for c in node.call("help")["help"]}
    assert usages["revenue-explain"] == "revenue-explain [scid]"
    assert usages["revenue-config"] == "revenue-config [key] [value]"


def test_fee_cycle_sets_fees_and_is_idempotent(node):
    node.advance(3600)
    first = node.cycle()["fees"]
    assert first["ok"] and first["channels"] > 30 and first["set_fee"] > 0
    calls = node.backend.calls["setchannel"]
    assert calls == first["set_fee"]
    second = node.cycle()["fees"]  # same minute, same facts: nothing to send again
    assert node.backend.calls["setchannel"] == calls and second["set_fee"] == 0
    journal = node.call("revenue-decisions", {"limit": 5})["decisions"]
    assert len(journal) == 5 and journal[0]["policy_digest"].startswith("sha256:")
    assert all(d["why"] and d["rule"] for d in journal)  # each says which rule decided, and why


def test_a_cycle_reads_the_node_once_and_listpeerchannels_again_only_after_setchannel(node):
    """A cycle "all" shares its reads between the fee half, the wallet reserve's check and the
    rebalance half: listpeerchannels is read again only when the fee half changed a fee, and
    coin_movement (which revops does not read) is not subscribed to."""
    assert "coin_movement" not in node.ld.subscriptions
    node.advance(3600)

    def cycle_reads():
        before = dict(node.backend.calls)
        out = node.cycle("all")
        return out, {m: node.backend.calls[m] - before.get(m, 0) for m in ("listpeerchannels", "listfunds")}

    first, reads = cycle_reads()
    assert first["fees"]["set_fee"] > 0
    assert reads == {"listpeerchannels": 2, "listfunds": 1}
    second, reads = cycle_reads()  # same minute, same facts: nothing to set
    assert second["fees"]["set_fee"] == 0
    assert reads == {"listpeerchannels": 1, "listfunds": 1}
    assert node.call("revenue-status")["wallet_reserve"]["funds_sat"] > 0


def test_reload_good_and_broken_policies_keeps_the_old_one(node):
    before = node.call("revenue-status")["policy"]["digest"]
    fees = node.policy_dir / "fees.yaml"
    original = fees.read_text()
    for broken, code in [
        (original.replace("then: hold()", "then: hodl()", 1), "dsl_name_error"),
        (original.replace("stage: safety", "stage: saftey", 1), "policy_schema_error"),
        (original.replace("when: not peer.connected", "when: not peer.connected and", 1), "dsl_parse_error"),
        (original + "\n  - {id: x\n", "policy_yaml_error"),
    ]:
        fees.write_text(broken)
        with pytest.raises(RpcError) as info:
            node.call("revenue-reload")
        assert info.value.code == -32602
        assert "previous policy kept" in info.value.message
        assert f"{fees}:" in info.value.message and code in info.value.message
        status = node.call("revenue-status")
        assert status["policy"]["digest"] == before and status["last_reload"]["ok"] is False
    fees.write_text(original.replace("default: 500", "default: 500").replace(
        'why: "peer is offline', 'why: "the peer is offline'))
    result = node.call("revenue-reload")
    assert result["changed_rules"]["changed"] == ["peer-offline-hold"]
    assert node.call("revenue-status")["policy"]["digest"] == result["digest"] != before


def test_a_policy_test_pass_is_remembered_across_restarts_and_an_edited_test_runs_again(workdir, monkeypatch):
    monkeypatch.setenv("REVOPS_CACHE_DIR", str(workdir / "cache"))  # inherited by the plugin
    n = Node(workdir)
    n.start()  # the tests run (nothing remembered yet) and their pass is recorded
    cases = n.policy_dir / "tests" / "roadmap.yaml"
    original = cases.read_text()
    try:
        assert n.call("revenue-reload")["tests"]["remembered"] is True
        cases.write_text(original.replace('"880001x1234x0": {fee_ppm: 250}', '"880001x1234x0": {fee_ppm: 251}', 1))
        with pytest.raises(RpcError, match=r"roadmap.yaml:\d+:1: policy_test_failure.*want 251, got 250"):
            n.call("revenue-reload")
        cases.write_text(original)
        reloaded = n.call("revenue-reload")
        assert reloaded["tests"]["remembered"] is True and reloaded["tests"]["passed"] > 200
    finally:
        n.stop()
    n.start()
    try:
        assert any("policy tests passed (remembered" in line for _, line in n.ld.logs)
    finally:
        n.stop()


def test_config_is_typed_checked_persisted_and_survives_restart(workdir):
    n = Node(workdir)
    n.start()
    try:
        assert n.call("revenue-config", ["congestion_util", 0.9])["value"] == 0.9
        with pytest.raises(RpcError, match="above the maximum"):
            n.call("revenue-config", ["congestion_util", 3])
        with pytest.raises(RpcError, match="expected an int"):
            n.call("revenue-config", {"key": "min_fee_ppm", "value": "ten"})
        with pytest.raises(RpcError, match="unknown param"):
            n.call("revenue-config", ["nope", 1])
        listed = {p["name"]: p for p in n.call("revenue-config")["params"]}
        assert listed["congestion_util"]["overridden"] and listed["congestion_util"]["value"] == 0.9
    finally:
        n.stop()
    n.start()
    try:
        assert n.call("revenue-config", ["congestion_util"])["value"] == 0.9
        assert n.call("revenue-status")["policy"]["overrides"] == {"congestion_util": 0.9}
        assert n.call("revenue-config", ["reset", "congestion_util"])["reset"] == ["congestion_util"]
        assert n.call("revenue-config", ["congestion_util"])["value"] == 0.8
    finally:
        n.stop()


def test_explain_equals_offline_explain_on_the_snapshot(node, tmp_path):
    node.advance(6 * 3600)
    node.cycle()
    node.advance(3600)
    calls_before = dict(node.backend.calls)
    snapshot = node.call("revenue-snapshot")
    live = node.call("revenue-explain")
    assert node.backend.calls["setchannel"] == calls_before.get("setchannel", 0)  # explain touches nothing
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot))
    run = subprocess.run([sys.executable, "-m", "revops.cli", "explain", "--policy", str(node.policy_dir),
                          "--snapshot", str(path), "--json"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert run.returncode == 0, run.stderr
    offline = json.loads(run.stdout)
    assert offline["policy"]["digest"] == live["policy"]["digest"]
    assert [c["scid"] for c in offline["channels"]] == [c["scid"] for c in live["channels"]]
    for a, b in zip(offline["channels"], live["channels"]):
        assert a["decision"] == b["decision"], a["scid"]
        assert [(e["rule"], e["matched"], e.get("outcome")) for e in a["trace"]] == \
            [(e["rule"], e["matched"], e.get("outcome")) for e in b["trace"]]
        # SQL and Python add hold times in different orders: equal to the last few bits
        assert a["facts"].keys() == b["facts"].keys()
        for name, value in a["facts"].items():
            other = b["facts"][name]
            if isinstance(value, float):
                assert value == pytest.approx(other, rel=1e-9, abs=1e-9), (a["scid"], name)
            else:
                assert value == other, (a["scid"], name)
    assert live["policy"] == offline["policy"]


def test_explain_one_channel_and_bad_params(node):
    scid = node.call("revenue-explain")["channels"][0]["scid"]
    one = node.call("revenue-explain", [scid])
    assert [c["scid"] for c in one["channels"]] == [scid] and one["channels"][0]["trace"]
    for method, params, text in [
        ("revenue-explain", ["1x1x1"], "no channel 1x1x1"),
        ("revenue-explain", [5], "scid must be"),
        ("revenue-cycle", ["everything"], "what must be one of"),
        ("revenue-cycle", {"what": "fees", "now": "soon"}, "now must be a unix time"),
        ("revenue-decisions", {"limit": 0}, "limit must be"),
    ]:
        with pytest.raises(RpcError) as info:
            node.call(method, params)
        assert text in info.value.message and info.value.code == -32602
    with pytest.raises(RpcError) as info:
        node.call("revenue-status", ["extra"])  # too many positional params: refused as invalid params
    assert info.value.code == -32602 and "too many positional arguments" in info.value.message
    assert node.ld.running


def test_forwards_missed_while_down_are_backfilled_without_duplicates(workdir):
    n = Node(workdir)
    n.start()
    try:
        n.advance(6 * 3600)
        n.cycle()
    finally:
        n.stop()
    n.advance(6 * 3600, deliver=False)  # routed while the plugin was down
    n.start()
    try:
        n.advance(3600)
        n.cycle()
        n.advance(3600)
        n.cycle()
        stored = n.call("revenue-status")["store"]["forwards"]
        total = len(n.backend("listforwards", {})["forwards"])
        assert stored == total > 0
    finally:
        n.stop()


def test_setconfig_of_dynamic_intervals(node):
    result = node.ld.setconfig("revenue-ops-fee-interval", "300")
    assert result["config"]["value_int"] == 300
    assert node.call("revenue-status")["intervals_s"]["fees"] == 300
    for bad in ("abc", "5"):
        with pytest.raises(RpcError) as info:
            node.ld.setconfig("revenue-ops-fee-interval", bad)
        assert info.value.code == -32602
    assert node.call("revenue-status")["intervals_s"]["fees"] == 300
    with pytest.raises(RpcError):
        node.ld.setconfig("revenue-ops-dry-run", "true")  # not dynamic


def test_dry_run_never_calls_setchannel(workdir):
    n = Node(workdir, options={"revenue-ops-dry-run": "true"})
    n.start()
    try:
        n.advance(3600)
        fees = n.cycle("all")["fees"]
        assert fees["dry_run"] and fees["would_set"] > 0 and fees["set_fee"] == 0
        assert n.backend.calls["setchannel"] == 0
        assert not any(m.startswith("sling-") and m not in ("sling-stats", "sling-jobsettings")
                       for m in n.backend.calls)
        assert n.call("revenue-status")["mode"] == "dry-run"
        assert all(d["applied"] is False for d in n.call("revenue-decisions", {"limit": 100})["decisions"])
    finally:
        n.stop()


def test_shutdown_exits_cleanly_and_quickly(node):
    node.advance(1800)
    node.cycle()
    started = time.monotonic()
    node.stop()
    assert time.monotonic() - started < 10
    assert node.ld.returncode == 0 and not node.ld.shutdown_killed


def test_degraded_without_sling_fees_still_run(workdir):
    n = Node(workdir, sling=False)
    n.start()
    try:
        status = n.call("revenue-status")
        assert status["dependencies"] == {"sling": False, "bookkeeper": True}
        assert status["mode"] == "degraded" and "sling" in status["mode_reason"]
        n.advance(3600)
        result = n.cycle("all")
        assert result["fees"]["ok"] and result["fees"]["set_fee"] > 0
        assert result["rebalance"]["ok"] is False
        assert any("sling is not loaded" in m for _, m in n.ld.logs)
    finally:
        n.stop()


def test_setchannel_failure_on_one_channel_does_not_stop_the_cycle(workdir):
    failing = {}
    wrapper = failing_backend(lambda method, params: method == "setchannel" and params.get("id") in failing,
                              RpcError(-1, "Could not find any active channels of peer with that id"))
    n = Node(workdir, backend_wrapper=wrapper)
    n.start()
    try:
        n.advance(3600)
        plan = n.call("revenue-explain")["channels"]
        to_set = [c["scid"] for c in plan if c["decision"]["action"] == "set_fee"]
        failing[to_set[0]] = True
        fees = n.cycle()["fees"]
        assert fees["rpc_errors"] == 1 and fees["set_fee"] == len(to_set) - 1
        journal = n.call("revenue-decisions", [to_set[0], 1])["decisions"][0]
        assert journal["applied"] is False and "setchannel failed" in journal["error"]
        assert n.ld.running
    finally:
        n.stop()


def test_dynamic_plugin_stop_and_start(node):
    path = node.ld.plugin_path
    listed = node.call("plugin", {"subcommand": "list"})["plugins"]
    assert any(p["name"] == path and p["dynamic"] for p in listed)
    stopped = node.call("plugin", {"subcommand": "stop", "plugin": path})
    assert stopped["command"] == "stop" and "Successfully stopped" in stopped["result"]
    assert node.ld.returncode == 0  # it got `shutdown`, closed its database and exited by itself
    started = node.call("plugin", {"subcommand": "start", "plugin": path})
    assert started["command"] == "start"
    assert node.call("revenue-status")["last_reload"]["ok"] is True
