"""Journal before act: a cycle's fee changes are on disk before setchannel, and settled after a crash.

The fee cycle (runtime.py) calls `record` with every change it is about to send, once, before
the first setchannel; `done` after each call; and journals the whole cycle at its end, which
drops the intents (store.journal). When the plugin dies in between, `settle` runs at the next
start (and before a fee cycle, until it succeeds): each intent left is compared with the fee
the node really has, journaled as applied or not, with its policy state updates when applied.
Then the decision journal, `channel_fee_last` and the gossip budget (24 h counts of applied
changes) hold every change lightningd accepted. Issue 12, item 8.

How an intent left behind is read:
- marked applied (setchannel answered ok): applied.
- marked failed: not applied, with the error setchannel gave.
- pending (no answer recorded): the node's fee decides — the intended fee means lightningd
  took it; anything else (the old fee, another fee, the channel gone) means it did not, and
  the record says what the node had.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Mapping

from revops.facts import current_fee_ppm
from revops.node.rpc import NodeRpc, NodeRpcError

RECOVERED = "journaled at the next start: the plugin stopped before the end of its cycle"


class CycleIntents:
    """The intents of one fee cycle."""

    def __init__(self, store, cycle_id: str, at_s: float, batch: Mapping[str, Any]):
        self.store = store
        self.cycle_id = cycle_id
        self.at_s = at_s
        self.batch = dict(batch)
        self.ids: list[int] = []

    def record(self, items: list[tuple[dict, int | None, Mapping[str, Any] | None]]) -> list[int]:
        """Stores (record, chain fee, state updates) of every change about to be sent, synced
        to disk; returns the intent ids, in order."""
        self.ids = self.store.add_fee_intents(self.cycle_id, self.at_s, self.batch, items)
        return self.ids

    def done(self, intent_id: int, applied: bool, error: str | None) -> None:
        self.store.finish_fee_intent(intent_id, applied, error)


def _outcome(intent: dict, channels: Mapping[str, Mapping[str, Any]]) -> tuple[bool, str | None]:
    """Returns (applied, error) of an intent left behind, from its mark or the node's fee."""
    if intent["status"] == "applied":
        return True, None
    if intent["status"] == "failed":
        return False, intent["error"] or "setchannel failed"
    channel = channels.get(intent["scid"])
    if channel is None:
        return False, "not applied: the channel is no longer listed by the node"
    now_ppm = current_fee_ppm(channel)
    if now_ppm == intent["fee_ppm"]:
        return True, None
    if now_ppm is None:
        return False, "not applied: the node does not report this channel's fee"
    return False, (f"not applied: the node has {now_ppm} ppm, not the intended {intent['fee_ppm']} ppm "
                   f"(setchannel never completed)")


def settle(store, rpc: NodeRpc, log: Callable[[str, str], None]) -> dict | None:
    """Journals the intents a crash left behind, read against listpeerchannels; returns
    {"applied": n, "not_applied": m} or None when there were none. Raises NodeRpcError when
    the node cannot be read (the intents stay for the next try)."""
    left = store.open_fee_intents()
    if not left:
        return None
    reply = rpc.call("listpeerchannels", {})
    channels = {c.get("short_channel_id"): c for c in reply.get("channels", []) if isinstance(c, dict)}
    by_cycle: dict[str, list[dict]] = defaultdict(list)
    for intent in left:
        by_cycle[intent["cycle_id"]].append(intent)
    batches, states = [], []
    applied_n = 0
    for cycle_id, intents in by_cycle.items():
        records = []
        for intent in intents:
            applied, error = _outcome(intent, channels)
            applied_n += applied
            records.append({**intent["record"], "applied": applied, "error": error, "recovered": RECOVERED})
            if applied and intent["state_updates"]:
                states.append(({intent["scid"]: intent["state_updates"]}, intent["at_s"]))
        b = intents[0]["batch"]
        batches.append({"records": records, "at_s": intents[0]["at_s"], "cycle_id": cycle_id,
                        "policy_name": b.get("policy_name", "?"), "policy_version": b.get("policy_version", "?"),
                        "policy_digest": b.get("policy_digest", "?"), "dry_run": bool(b.get("dry_run")),
                        "intent_ids": [i["id"] for i in intents]})
    store.journal_fee_intents(batches)
    for updates, at_s in states:
        try:
            store.save_state_updates(updates, at_s)
        except (ValueError, TypeError) as err:
            log(f"state of {next(iter(updates))} after a recovered fee change not saved: {err}", "warn")
    summary = {"applied": applied_n, "not_applied": len(left) - applied_n}
    log(f"journaled {len(left)} fee change(s) of an interrupted cycle: {summary['applied']} applied on the node, "
        f"{summary['not_applied']} not", "warn")
    return summary


def settle_quietly(store, rpc: NodeRpc, log: Callable[[str, str], None]) -> dict | None:
    """settle, with a node that cannot be read said once and left for the next try."""
    try:
        return settle(store, rpc, log)
    except NodeRpcError as err:
        log(f"fee changes of an interrupted cycle not settled yet, cannot read the node: {err}", "warn")
        return None
