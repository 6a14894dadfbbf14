"""Issue 12 through the real plugin: a kill between setchannel and the journal loses no applied
change, the actuator refuses absurd fees, malformed node replies are one clear line, and every
bad RPC argument is a -32602 with a message."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from revops.sim.errors import RpcError
from tests.plugin.conftest import Node


def _wrapper(on_call):
    """A backend_wrapper: `on_call(method, params, result)` sees every answered call and
    returns the reply to give the plugin."""
    def wrapper(inner):
        def backend(method, params):
            return on_call(method, params, inner(method, params))
        backend.methods = inner.methods
        return backend
    return wrapper


def _wait_dead(node: Node, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while node.ld.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not node.ld.running


# --------------------------------------------------------------------- journal before act

def test_a_kill_between_setchannel_and_the_journal_loses_no_applied_change(workdir):
    sent: list[tuple[str, int]] = []
    kill_at = {"n": 0}
    holder: dict = {}

    def on_call(method, params, result):
        if method == "setchannel":
            sent.append((params["id"], params["feeppm"]))
            if len(sent) == kill_at["n"]:  # lightningd took it; the plugin dies before it hears back
                os.kill(holder["node"].ld.pid, signal.SIGKILL)
        return result

    node = holder["node"] = Node(workdir, backend_wrapper=_wrapper(on_call))
    node.start()
    try:
        node.advance(3600)
        # every channel starts from base_fee_ppm, not its own fee: the first cycle changes many
        node.call("revenue-config", {"key": "hc_adopt_min_ppm", "value": 100000})
        plan = [c for c in node.call("revenue-explain")["channels"] if c["decision"]["action"] == "set_fee"]
        assert len(plan) >= 10
        kill_at["n"] = 6
        with pytest.raises(Exception):
            node.cycle()
        _wait_dead(node)
    finally:
        node.stop()
    assert len(sent) == 6
    kill_at["n"] = 0
    node.start(**{"revenue-ops-sim-clock": str(int(node.sim.now_s) + 1)})  # the restart is a second later
    try:
        journal = node.call("revenue-decisions", {"limit": 10000})["decisions"]
        applied = {(d["scid"], d["fee_ppm"]) for d in journal if d["applied"]}
        assert applied == set(sent)  # every change lightningd took, and nothing it did not
        assert all(d["recovered"] for d in journal)
        assert len({d["cycle_id"] for d in journal}) == 1
        # the changes the kill stopped before setchannel are journaled as not applied, with why
        unsent = [d for d in journal if not d["applied"]]
        assert len(unsent) == len(plan) - 6
        assert all("not applied: the node has" in d["error"] for d in unsent)
        # the gossip budget counts them: per channel and node-wide
        facts = {c["scid"]: c["facts"] for c in node.call("revenue-explain")["channels"]}
        assert {s for s, f in facts.items() if f["channel.fee_updates_24h"] == 1} == {s for s, _ in sent}
        assert all(f["node.fee_updates_24h"] == 6 for f in facts.values())
        assert any("fee change(s) of an interrupted cycle: 6 applied on the node" in m for _, m in node.ld.logs)
        # and the next cycle takes it from there: what the node has is not sent again
        sent.clear()
        assert node.cycle()["fees"]["ok"]
        assert not set(sent) & applied
    finally:
        node.stop()


# --------------------------------------------------------------------- hard actuator limit

_POLICY = """\
apiVersion: revops/v1
version: "limits-1"
stages:
  - name: emergency
    clamp_exempt: true
  - name: base
rules:
  - id: absurd
    stage: emergency
    when: channel.scid == "{absurd}"
    then: set_fee(10000000)
    why: "a policy bug"
  - id: high
    stage: emergency
    when: channel.scid == "{high}"
    then: set_fee({high_fee})
    why: "high but sane"
  - id: base
    stage: base
    then: set_fee(100)
    why: "base fee"
"""


def test_the_actuator_refuses_fees_above_its_hard_ceiling(workdir):
    sent: list[tuple[str, int]] = []

    def on_call(method, params, result):
        if method == "setchannel":
            sent.append((params["id"], params["feeppm"]))
        return result

    node = Node(workdir, backend_wrapper=_wrapper(on_call))
    scids = [c["short_channel_id"] for c in node.backend("listpeerchannels", {})["channels"]
             if c.get("state") == "CHANNELD_NORMAL"]
    absurd, high = scids[0], scids[1]
    shutil.rmtree(node.policy_dir)
    node.policy_dir.mkdir()
    (node.policy_dir / "policy.yaml").write_text(_POLICY.format(absurd=absurd, high=high, high_fee=3000))
    node.start()
    try:
        fees = node.cycle()["fees"]
        assert fees["ok"] and fees["error"] == 1 and fees["set_fee"] > 1
        assert max(f for _, f in sent) == 3000 and absurd not in {s for s, _ in sent}
        [d] = node.call("revenue-decisions", {"scid": absurd, "limit": 1})["decisions"]
        assert d["action"] == "error" and d["applied"] is False and d["fee_ppm"] == 10_000_000
        assert "above the hard ceiling of 50000 ppm" in d["error"]
        assert node.call("revenue-decisions", {"scid": high, "limit": 1})["decisions"][0]["applied"]
        assert any(absurd in m and "refused by the actuator" in m for _, m in node.ld.logs)
    finally:
        node.stop()
    sent.clear()
    (node.policy_dir / "policy.yaml").write_text(_POLICY.format(absurd=absurd, high=high, high_fee=2500))
    node.start(**{"revenue-ops-max-fee-ppm": "2000"})  # the operator lowers the ceiling
    try:
        fees = node.cycle()["fees"]
        assert fees["error"] == 2 and not sent  # the rest is already at 100
        [d] = node.call("revenue-decisions", {"scid": high, "limit": 1})["decisions"]
        assert d["action"] == "error" and "above the hard ceiling of 2000 ppm" in d["error"]
    finally:
        node.stop()
    node.start(**{"revenue-ops-max-fee-ppm": "60000"})  # it can only lower it
    try:
        assert node.ld.disabled and "within 0..50000" in node.ld.disabled
    finally:
        node.stop()


# --------------------------------------------------------------------- malformed node replies

def _drop_peer_id(reply):
    reply["channels"][0].pop("peer_id")
    reply["channels"][1]["to_us_msat"] = "lots"
    return reply


MANGLES = {
    "listpeerchannels-array": ("listpeerchannels", lambda r: [r], "listpeerchannels returned array, not an object"),
    "channels-null": ("listpeerchannels", lambda r: {**r, "channels": None},
                      "listpeerchannels.channels is null, not an array"),
    "getinfo-bad": ("getinfo", lambda r: {**r, "blockheight": "tall"}, "getinfo.blockheight is 'tall'"),
    "feerates-bad": ("feerates", lambda r: {**r, "perkw": 12}, "feerates.perkw is integer, not an object"),
}
#: what each mangled method breaks: the methods that read it
READERS = {
    "listpeerchannels": ("revenue-explain", "revenue-snapshot", "revenue-history", "revenue-capacity",
                         "revenue-dashboard"),
    "getinfo": ("revenue-explain", "revenue-snapshot", "revenue-capacity"),
    "feerates": ("revenue-explain", "revenue-snapshot", "revenue-capacity"),
}
ALL_READS = ("revenue-explain", "revenue-snapshot", "revenue-history", "revenue-capacity", "revenue-dashboard",
             "revenue-status", "revenue-decisions", "revenue-rebalances")


@pytest.fixture(scope="module")
def mangled():
    """One plugin for every malformed-reply case: `mangle[method] = fn` changes replies."""
    workdir = Path(tempfile.mkdtemp(prefix="rvh"))
    mangle: dict = {}

    def on_call(method, params, result):
        fn = mangle.get(method)
        return fn(copy.deepcopy(result)) if fn else result

    node = Node(workdir, backend_wrapper=_wrapper(on_call))
    node.mangle = mangle
    node.start()
    node.advance(3600)
    yield node
    node.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("case", sorted(MANGLES))
def test_a_malformed_reply_is_one_clear_line_everywhere(mangled, case):
    method, fn, message = MANGLES[case]
    mangled.mangle.clear()
    mangled.mangle[method] = fn
    try:
        fees = mangled.cycle()["fees"]
        assert fees["ok"] is False and fees["error"].startswith(f"cannot read the node: {message}")
        for rpc in ALL_READS:
            if rpc in READERS[method]:
                with pytest.raises(RpcError) as info:
                    mangled.call(rpc)
                assert info.value.message.startswith(f"cannot read the node: {message}"), rpc
                # one line, and ours: pyln's uncaught-exception reply is -32600 "Error while processing"
                assert "\n" not in info.value.message and info.value.code == -32603
            else:
                mangled.call(rpc)  # what does not read it keeps working
    finally:
        mangled.mangle.clear()
    assert mangled.ld.running and mangled.cycle()["fees"]["ok"]


def test_odd_channels_are_skipped_and_the_others_priced(mangled):
    total = len(mangled.call("revenue-explain")["channels"])
    mangled.mangle["listpeerchannels"] = _drop_peer_id
    try:
        fees = mangled.cycle()["fees"]
        assert fees["ok"] and fees["channels"] == total - 2
        assert len(mangled.call("revenue-explain")["channels"]) == total - 2
        lines = [m for _, m in mangled.ld.logs if m.startswith("skipped one entry of listpeerchannels")]
        assert any('missing required key "peer_id" in listpeerchannels.channels[0]' in m for m in lines)
        assert any("listpeerchannels.channels[1].to_us_msat must be an integer, got string" in m for m in lines)
        mangled.call("revenue-history")
        mangled.call("revenue-capacity")
    finally:
        mangled.mangle.clear()


def test_odd_listforwards_rows_are_skipped_and_the_rest_stored(mangled):
    mangled.advance(3 * 3600, deliver=False)  # routed while the plugin was not told: backfill gets them

    def odd_rows(reply):
        rows = reply["forwards"]
        if len(rows) > 6:
            rows[1]["fee_msat"] = None
            rows[2]["in_msat"] = "1000"
            rows[3].pop("in_channel")
            rows[4] = "garbage"
        return reply

    before = mangled.call("revenue-status")["store"]["forwards"]
    mangled.mangle["listforwards"] = odd_rows
    try:
        assert mangled.cycle()["fees"]["ok"]
        lines = [m for _, m in mangled.ld.logs if m.startswith("skipped one entry of listforwards")]
        assert len(lines) >= 4 and any("fee_msat must be an integer, got null" in m for m in lines)
        snapshot = mangled.call("revenue-snapshot")
        assert all(isinstance(f, dict) for f in snapshot["rpc"]["listforwards"]["forwards"])
    finally:
        mangled.mangle.clear()
    stored = mangled.call("revenue-status")["store"]["forwards"]
    assert stored > before
    total = len(mangled.backend("listforwards", {})["forwards"])
    assert total - 4 <= stored < total  # everything but the odd rows (the cursor moved past them)


# --------------------------------------------------------------------- RPC arguments

BAD_CALLS = [
    ("revenue-decisions", {"scid": 2**64}, "scid must be a short channel id"),
    ("revenue-decisions", {"scid": ["1x1x1"]}, "scid must be a short channel id"),
    ("revenue-decisions", {"scid": "1x1x1; DROP TABLE decisions"}, "scid must be a short channel id"),
    ("revenue-decisions", {"limit": -1}, "limit must be an integer from 1 to 10000"),
    ("revenue-decisions", {"limit": 10**30}, "limit must be an integer from 1 to 10000"),
    ("revenue-decisions", {"limit": "many"}, "limit must be an integer"),
    ("revenue-decisions", {"limit": None}, "limit must be an integer"),
    ("revenue-decisions", {"limit": 2.5}, "limit must be an integer"),
    ("revenue-decisions", {"limit": True}, "limit must be an integer"),
    ("revenue-decisions", {"scid": "1x1x1", "limit": 5, "order": "asc"}, "unexpected keyword argument 'order'"),
    ("revenue-capacity", {"days": None}, "days must be a positive number"),
    ("revenue-capacity", {"days": -3}, "days must be a positive number"),
    ("revenue-capacity", {"days": float("inf")}, "days must be a positive number"),
    ("revenue-capacity", {"days": 10**400}, "days must be a positive number"),
    ("revenue-capacity", {"days": [30]}, "days must be a positive number"),
    ("revenue-rebalances", {"days": None}, "days must be a positive number"),
    ("revenue-rebalances", {"days": -3}, "days must be a positive number"),
    ("revenue-rebalances", {"days": float("nan")}, "days must be a positive number"),
    ("revenue-rebalances", {"days": 10**400}, "days must be a positive number"),
    ("revenue-rebalances", {"days": [30]}, "days must be a positive number"),
    ("revenue-history", {"days": "soon"}, "days must be a positive number"),
    ("revenue-history", {"days": 0}, "days must be a positive number"),
    ("revenue-history", {"days": float("nan")}, "days must be a positive number"),
    ("revenue-history", {"days": {"n": 1}}, "days must be a positive number"),
    ("revenue-cycle", {"what": "everything"}, "what must be one of fees, rebalance, all"),
    ("revenue-cycle", {"what": ["fees"]}, "what must be one of"),
    ("revenue-cycle", {"what": None}, "what must be one of"),
    ("revenue-cycle", {"what": "fees", "now": 2**64}, "now must be a unix time"),
    ("revenue-cycle", {"what": "fees", "now": float("nan")}, "now must be a unix time"),
    ("revenue-cycle", {"what": "fees", "now": True}, "now must be a unix time"),
    ("revenue-cycle", {"what": "fees", "now": -5}, "now must be a unix time"),
    ("revenue-explain", {"scid": 2**64}, "scid must be a short channel id"),
    ("revenue-explain", {"scid": "x" * 10000}, "scid must be a short channel id"),
    ("revenue-explain", ["1x1x1", "extra"], "too many positional arguments"),
    ("revenue-config", {"key": 5}, "key must be a param name"),
    ("revenue-config", {"key": "x" * 1000}, "key must be a param name"),
    ("revenue-config", {"key": "reset", "value": {"a": 1}}, "value must be the name of the param to reset"),
    ("revenue-config", {"key": "reset", "value": "nope"}, "'nope' has no override"),
    ("revenue-config", {"key": "congestion_util", "value": 10**400}, "value is too large"),
    ("revenue-config", {"key": "congestion_util", "value": [1]}, "value must be a bool, a number or a string"),
    ("revenue-config", {"key": "congestion_util", "value": float("inf")}, "value must be a finite number"),
    ("revenue-config", {"key": "congestion_util", "value": "high"}, "congestion_util: expected a number"),
    ("revenue-config", {"key": "nope", "value": 1}, "unknown param 'nope'"),
    ("revenue-status", {"verbose": True}, "unexpected keyword argument 'verbose'"),
    ("revenue-status", ["extra"], "too many positional arguments"),
    ("revenue-reload", {"force": True}, "unexpected keyword argument 'force'"),
    ("revenue-snapshot", [1], "too many positional arguments"),
    ("revenue-dashboard", {"days": 3}, "unexpected keyword argument 'days'"),
    ("revenue-lds-status", [1], "too many positional arguments"),
    ("revenue-lds-investors", {"all": True}, "unexpected keyword argument 'all'"),
    ("revenue-lds-payout", {"dry_run": "maybe"}, "dry_run must be true or false"),
    ("revenue-lds-payout", {"dry_run": 2**64}, "dry_run must be true or false"),
]


@pytest.mark.parametrize("method, params, text", BAD_CALLS, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(BAD_CALLS)])
def test_every_bad_argument_is_invalid_params_with_a_message(mangled, method, params, text):
    with pytest.raises(RpcError) as info:
        mangled.call(method, params)
    assert info.value.code == -32602 and text in info.value.message, info.value.message
    assert "\n" not in info.value.message
    assert mangled.ld.running


def test_the_bad_calls_cover_every_revenue_method(mangled):
    revenue = {m for m in mangled.ld.methods if m.startswith("revenue-")}
    assert revenue - {"revenue-ops-sim"} <= {m for m, _, _ in BAD_CALLS}
    # and the checks do not refuse good calls
    scid = mangled.call("revenue-explain")["channels"][0]["scid"]
    assert mangled.call("revenue-decisions", {"scid": scid, "limit": "3"})["decisions"] is not None
    assert mangled.call("revenue-capacity", {"days": "7"})["days"] == 7.0
