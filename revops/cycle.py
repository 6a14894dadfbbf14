"""One fee cycle, top to bottom: observe → evaluate → act → record.

    observe   the node and the store → Observation (rpc replies, channel facts, policy state)
    evaluate  Observation + the active policy → one Evaluation per channel; inside the engine
              (policy/engine.py) each channel goes target → modifiers → bounds → peer sync →
              post stages, and ends as a Decision
    act       the decisions → Acted: fee changes journaled as intents, then sent one by one
              (journal before act, act/journal.py); one channel's error never stops the others
    record    the journal, the state the policy moved, the cycle summary → FeeCycleResult,
              which every CycleObserver (metrics, ...) is handed

The runtime (runtime.py) owns the parts this reads and writes and calls `run_fee_cycle`
under its cycle lock; nothing here keeps state between cycles.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from revops.act.journal import CycleIntents, settle_quietly
from revops.facts import current_fee_ppm
from revops.facts.build import market_facts
from revops.node.rpc import NodeRpcError

if TYPE_CHECKING:  # only for the annotations: the runtime imports this module
    from revops.policy.engine import Evaluation, PreparedPolicy
    from revops.policy.reload import ReloadResult
    from revops.runtime import Runtime

__all__ = ["Acted", "CycleObserver", "FeeCycleResult", "Observation", "ObserverError", "act", "evaluate", "journal_record",
           "observe", "record", "run_fee_cycle"]

COUNTED = ("set_fee", "would_set", "hold", "suppressed", "vetoed", "error", "rpc_errors")


@dataclass
class Observation:
    """What one cycle reads: lightningd's replies, the channel facts built from them and the
    store, the policy's per-channel state, and the node clock's now."""

    rpc: dict
    facts: list  # revops.facts.build.ChannelFacts
    states: dict[str, dict]
    now: float


@dataclass
class Acted:
    """What carrying out a cycle's decisions did."""

    records: list[dict]  # one journal record per channel
    state_updates: dict[str, dict]  # scid -> the policy state that really moved
    counts: dict[str, int]  # decisions by outcome (COUNTED)
    suppressed_by: Counter = field(default_factory=Counter)  # held-back updates by the rule that held them


@dataclass
class FeeCycleResult:
    """One fee cycle as observers see it. `records` and `facts` are None when the cycle could
    not read the node (then `summary["ok"]` is False and says why)."""

    summary: dict
    records: list[dict] | None = None
    facts: list | None = None
    gossip_budget: int | None = None  # the node's broadcasts per 24 h (host settings), None: unset
    dry_run: bool = False


class ObserverError(Exception):
    """An observer's steps failed; the message names each failed step and its error."""


class CycleObserver:
    """Listens to the runtime's results. Override what you need; a failing observer is
    logged as `<name>: ...` and never stops a cycle, a reload or another observer
    (Runtime._notify)."""

    name = "observer"

    @staticmethod
    def run_steps(*steps) -> None:
        """Run every (function, *args), each on its own: one that fails does not stop the next."""
        failed = []
        for fn, *args in steps:
            try:
                fn(*args)
            except Exception as err:
                failed.append(f"{fn.__name__}: {type(err).__name__}: {err}")
        if failed:
            raise ObserverError("; ".join(failed))

    def reload_done(self, result: "ReloadResult") -> None:
        pass

    def fee_cycle_done(self, result: FeeCycleResult) -> None:
        pass

    def rebalance_done(self, summary: dict) -> None:
        pass


def journal_record(ev: "Evaluation", applied: bool, error: str | None, action: str | None = None) -> dict:
    """The journal record of one evaluation (and the intent stored before its setchannel)."""
    d = ev.decision
    return {"scid": d.scid, "peer_id": d.peer_id, "action": action or d.action, "fee_ppm": d.fee_ppm,
            "old_fee_ppm": d.old_fee_ppm, "stage": d.stage, "rule": d.rule,
            "broadcast": d.broadcast, "suppressed_by": d.suppressed_by,
            "applied": applied, "error": error, "why": ev.why}


# -- the steps ---------------------------------------------------------------------------------


def observe(rt: "Runtime") -> Observation:
    """Read the node and the store; the price learner's moved-on state is saved (not in
    dry-run). The feerate series behind market.opening_feerate_ma_* gets one sample per fee
    cycle, taken after this cycle's facts (they average the cycles before it)."""
    obs = rt.observe(learn=True)
    market = market_facts(obs.rpc.get("feerates"))
    if market["market.feerates_known"]:
        rt.store.record_feerate(obs.now, market["market.opening_feerate_perkw"])
    return obs


def evaluate(policy: "PreparedPolicy", obs: Observation) -> list["Evaluation"]:
    """Decide every channel. The fee cycle keeps neither values nor traces (the journal
    takes the winner's `why`) and skips the rebalance-only post stages."""
    return policy.evaluate_many(obs.facts, obs.states, keep_values=False, keep_trace=False, rebalance=False)


def act(rt: "Runtime", evaluations: list["Evaluation"], channels: dict, cycle_id: str, now: float,
        compiled) -> Acted:
    """Carry out a cycle's decisions.

    Journal before act (act/journal.py): every change about to be sent is on disk before
    the first setchannel, and marked applied or failed after its own.
    """
    dry_run = rt.options.dry_run
    counts = dict.fromkeys(COUNTED, 0)
    records, state_updates = [], {}
    suppressed_by: Counter = Counter()
    checks = [(ev, rt.fees.check(ev.decision, channels.get(ev.decision.scid))) for ev in evaluations]
    due = [ev for ev, result in checks if result is None]
    intents = CycleIntents(rt.store, cycle_id, now, {
        "policy_name": compiled.name, "policy_version": compiled.version,
        "policy_digest": compiled.digest, "dry_run": dry_run})
    intent_ids = dict(zip(map(id, due), intents.record([
        (journal_record(ev, applied=True, error=None), current_fee_ppm(channels.get(ev.decision.scid)),
         ev.decision.state_updates) for ev in due])))
    for ev, result in checks:
        d = ev.decision
        for note in d.notes:  # e.g. a state update out of bounds, refused (issue #12)
            rt.log(f"{d.scid}: {note}", "warn")
        if result is None:
            result = rt.fees.send(d)
            intents.done(intent_ids[id(ev)], result.applied, result.error)
        if result.error:
            rt.log(f"{d.scid}: {result.error}", "warn")
        if result.refused:  # outside the hard limits: an error decision, nothing sent
            counts["error"] += 1
        elif d.action == "set_fee":
            counts["rpc_errors"] += result.error is not None
            counts["set_fee" if result.applied else ("would_set" if result.would_apply else "hold")] += 1
        else:
            counts[d.action] += 1
        if d.suppressed_by:
            suppressed_by[d.suppressed_by] += 1
        records.append(journal_record(ev, result.applied, d.error or result.error,
                                      action="error" if result.refused else d.action))
        # Policy memory moves only with what really happened: not in dry-run, not when
        # the fee change it describes failed or was refused.
        if d.state_updates and not dry_run and not result.error:
            state_updates[d.scid] = dict(d.state_updates)
    return Acted(records, state_updates, counts, suppressed_by)


def record(rt: "Runtime", acted: Acted, now: float, cycle_id: str, compiled) -> None:
    """Journal every decision and save the policy state that moved."""
    rt.store.journal(acted.records, now, compiled.name, compiled.version, compiled.digest, cycle_id,
                     rt.options.dry_run)
    if acted.state_updates:
        rt.store.save_state_updates(acted.state_updates, now)


# -- the pipeline ------------------------------------------------------------------------------


def run_fee_cycle(rt: "Runtime") -> FeeCycleResult:
    """One fee cycle (the caller holds the cycle lock)."""
    started = time.perf_counter()
    cycle_id = uuid.uuid4().hex[:12]
    policy = rt.holder.current
    # Before the gossip budget is read: intents of a crashed cycle the start could not settle.
    settle_quietly(rt.store, rt.rpc, rt.log)
    try:
        obs = observe(rt)
    except NodeRpcError as err:
        summary = {"cycle_id": cycle_id, "ok": False, "error": f"cannot read the node: {err}"}
        rt.log(f"fee cycle skipped: {summary['error']}", "warn")
        return FeeCycleResult(summary, gossip_budget=policy.host.gossip_node_budget, dry_run=rt.options.dry_run)
    evaluations = evaluate(policy, obs)
    channels = {c.get("short_channel_id"): c for c in obs.rpc["listpeerchannels"].get("channels", [])}
    compiled = policy.compiled
    acted = act(rt, evaluations, channels, cycle_id, obs.now, compiled)
    record(rt, acted, obs.now, cycle_id, compiled)
    rt.maintain(obs.now)
    summary = {"cycle_id": cycle_id, "ok": True, "at": obs.now, "channels": len(evaluations), **acted.counts,
               "suppressed_by": dict(acted.suppressed_by), "dry_run": rt.options.dry_run,
               "policy_version": compiled.version,
               "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
    return FeeCycleResult(summary, acted.records, obs.facts, policy.host.gossip_node_budget, rt.options.dry_run)
