"""Fee intents (journal before act): stored before setchannel, journaled with the cycle, and
settled against the node's fees when a crash left them behind."""

from __future__ import annotations

import pytest

from revops.act.journal import CycleIntents, settle
from revops.node.rpc import NodeRpcError
from revops.store.history import fee_updates

BATCH = {"policy_name": "default", "policy_version": "7", "policy_digest": "sha256:x", "dry_run": False}


def _rec(scid: str, fee: int, old: int) -> dict:
    return {"scid": scid, "peer_id": "02" + "ab" * 32, "action": "set_fee", "fee_ppm": fee, "old_fee_ppm": old,
            "stage": "discovery", "rule": "climb", "broadcast": True, "suppressed_by": None,
            "applied": True, "error": None, "why": f"to {fee}"}


class Node:
    def __init__(self, fees: dict):
        self.fees = fees

    def call(self, method, params=None):
        assert method == "listpeerchannels"
        return {"channels": [{"short_channel_id": scid, "peer_id": "02", "state": "CHANNELD_NORMAL",
                              "updates": {"local": {"fee_proportional_millionths": fee}}}
                             for scid, fee in self.fees.items()]}


class Down:
    def call(self, method, params=None):
        raise NodeRpcError(method, -1, "lightningd went away")


def _log():
    lines = []
    return lines, lambda message, level: lines.append((level, message))


def test_a_whole_cycle_journals_its_intents_away(store):
    intents = CycleIntents(store, "c1", 1000.0, BATCH)
    ids = intents.record([(_rec("1x1x1", 200, 100), 100, {"step": 2})])
    intents.done(ids[0], True, None)
    assert [i["status"] for i in store.open_fee_intents()] == ["applied"]
    store.journal([{**_rec("1x1x1", 200, 100)}], 1000.0, "default", "7", "sha256:x", "c1", False)
    assert store.open_fee_intents() == []


def test_intents_left_by_a_crash_are_settled_from_the_nodes_fees(store):
    intents = CycleIntents(store, "c1", 1000.0, BATCH)
    ids = intents.record([(_rec("1x1x1", 200, 100), 100, {"step": 2}),   # answered ok
                          (_rec("2x2x2", 300, 100), 100, {"step": 3}),   # applied, then the kill
                          (_rec("3x3x3", 400, 100), 100, None),          # never sent
                          (_rec("4x4x4", 500, 100), 100, None),          # setchannel refused it
                          (_rec("5x5x5", 600, 100), 100, None)])         # channel gone since
    intents.done(ids[0], True, None)
    intents.done(ids[3], False, "setchannel failed: no (code -1)")
    lines, log = _log()
    node = Node({"1x1x1": 200, "2x2x2": 300, "3x3x3": 100, "4x4x4": 100})
    assert settle(store, node, log) == {"applied": 2, "not_applied": 3}
    assert store.open_fee_intents() == []
    got = {d["scid"]: d for d in store.decisions()}
    assert {s for s, d in got.items() if d["applied"]} == {"1x1x1", "2x2x2"}
    assert "the node has 100 ppm, not the intended 400 ppm" in got["3x3x3"]["error"]
    assert got["4x4x4"]["error"] == "setchannel failed: no (code -1)"
    assert "no longer listed" in got["5x5x5"]["error"]
    assert all(d["cycle_id"] == "c1" and d["at_s"] == 1000.0 and d["policy_version"] == "7" and d["recovered"]
               for d in got.values())
    # the gossip budget counts what the node took, and the policy state of those moved with it
    assert fee_updates(store._conn(), 1000.0) == {"1x1x1": (1, 1000.0), "2x2x2": (1, 1000.0)}
    assert store.load_states() == {"1x1x1": {"step": 2}, "2x2x2": {"step": 3}}
    assert "2 applied on the node, 3 not" in lines[-1][1]
    assert settle(store, node, log) is None  # nothing left


def test_an_unreadable_node_keeps_the_intents_for_the_next_try(store):
    CycleIntents(store, "c1", 1000.0, BATCH).record([(_rec("1x1x1", 200, 100), 100, None)])
    lines, log = _log()
    with pytest.raises(NodeRpcError):
        settle(store, Down(), log)
    assert len(store.open_fee_intents()) == 1 and store.decisions() == []
    assert settle(store, Node({"1x1x1": 200}), log) == {"applied": 1, "not_applied": 0}
