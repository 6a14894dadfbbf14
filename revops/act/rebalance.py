"""The rebalancer: turns the policy's rebalance decisions into sling pull jobs, within hard limits.

The policy decides per channel (policies/default/rebalance.yaml): target (amount_sat, max_ppm),
source (score), or skipped with a reason. This module adds what needs the whole node and the
database, and is never left to a rule:
  - the wallet reserve: below it nothing starts and our running jobs are stopped;
  - the rolling-24 h fee budget: each job reserves its worst case (amount x maxppm) in one
    database transaction before sling hears of it, and is settled with the measured fee;
  - concurrency (rebalance_max_jobs), the same-peer guard (a source to the target's own peer
    is never a candidate: the peer picks the channel and sling would pay for nothing);
  - the job lifecycle: sling-job, sling-go, per-scid sling-stats each cycle, sling-deletejob
    when the target is reached, the reservation is used up, the job stalls or grows old.
Only jobs recorded in our table are ever stopped or deleted (never someone else's).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from revops.act.sling import STALLED, ScidStats, Sling
from revops.node.rpc import NodeRpc, NodeRpcError
from revops.policy.host import HostSettings


@dataclass(frozen=True)
class Settings:
    """The rebalancer's params as one value (read once per cycle from the active policy's host settings)."""

    enabled: bool
    budget_sat: int
    budget_revenue_share: float
    wallet_reserve_sat: int
    max_jobs: int
    chunk_sat: int
    min_amount_sat: int
    max_candidates: int
    job_max_age_s: float
    stall_s: float
    backoff_base_s: float
    backoff_max_s: float
    standing_jobs: bool = False  # sling-job + target + sling-go instead of sling-once
    outppm_fence: bool = False  # pass sling `outppm` = target fee - max_ppm, and keep to it

    @staticmethod
    def from_host(host: HostSettings) -> "Settings | None":
        """None when the policy does not use the rebalancer (revops/policy/host.py)."""
        if not host.rebalancer:
            return None
        p = host.values
        return Settings(
            enabled=bool(p["rebalance_enabled"]), budget_sat=int(p["rebalance_budget_sat"]),
            budget_revenue_share=float(p["rebalance_budget_revenue_share"]),
            wallet_reserve_sat=host.wallet_reserve_sat, max_jobs=int(p["rebalance_max_jobs"]),
            chunk_sat=max(1, int(p["rebalance_chunk_sat"])), min_amount_sat=int(p["rebalance_min_amount_sat"]),
            max_candidates=max(1, int(p["rebalance_max_candidates"])),
            job_max_age_s=float(p["rebalance_job_max_age_h"]) * 3600, stall_s=float(p["rebalance_stall_h"]) * 3600,
            backoff_base_s=float(p["rebalance_backoff_base_h"]) * 3600,
            backoff_max_s=float(p["rebalance_backoff_max_h"]) * 3600,
            standing_jobs=bool(p["rebalance_standing_jobs"]), outppm_fence=bool(p["rebalance_outppm_fence"]))

    def budget_msat(self, revenue_24h_msat: int) -> int:
        """The rolling-24 h cap: budget_sat, or less when tied to the last 24 h of routing revenue."""
        cap = self.budget_sat * 1000
        if self.budget_revenue_share > 0:
            return int(min(cap, self.budget_revenue_share * max(0, revenue_24h_msat)))
        return cap


def reservation_msat(amount_sat: int, chunk_sat: int, max_ppm: int, standing: bool = False) -> int:
    """The most a job can spend at max_ppm (effective, base fee included).

    A sling-once job moves exactly amount_sat (a multiple of the chunk) and stops: that is a
    hard bound. A standing sling-job stops at its target but may finish one more chunk, and
    resumes if routing drains the channel before the next cycle ends it: its reservation is
    the plan, and what it spends beyond is measured and counted, not prevented.
    """
    chunks = amount_sat // chunk_sat if not standing else math.ceil(amount_sat / chunk_sat) + 1
    return math.ceil(chunks * chunk_sat * 1000 * max_ppm / 1_000_000)


class Rebalancer:
    """Starts, watches and ends revops' sling jobs; the store holds their reservations."""

    def __init__(self, rpc: NodeRpc, store, dry_run: bool, log: Callable[[str, str], None]):
        self.sling = Sling(rpc)
        self.store = store
        self.dry_run = dry_run
        self.log = log

    # -- watching and ending jobs --------------------------------------------------------------

    def _measure(self, job: dict) -> tuple[int, int]:
        """(spent_msat, moved_msat) since the job started, from sling's per-scid counters.

        sling counts whole sats (the floor of a msat sum), so a delta can be up to 999 msat
        short of the truth: a job that paid anything is rounded up by that much, so the
        budget never undercounts (and never past its reservation for that alone).
        """
        now = self.sling.stats(job["scid"])
        base = ScidStats.from_json(job["baseline"])
        spent = max(0, now.spent_sat - base.spent_sat) * 1000
        if now.rebalances > base.rebalances:
            spent = max(spent, min(spent + 999, job["reserved_msat"]))
        return spent, max(0, now.amount_sat - base.amount_sat) * 1000

    def end_job(self, job: dict, now_s: float, outcome: str) -> dict:
        """Deletes our sling job, then settles its reservation with the measured spend."""
        try:
            self.sling.delete(job["scid"])
        except NodeRpcError as err:
            gone = "No job" in err.message or "not found" in err.message
            if not gone and not self.stale(job, now_s):
                # It may still be paying: keep the reservation and try again next cycle.
                self.log(f"rebalance {job['scid']}: sling-deletejob failed, will retry: {err}", "warn")
                raise
        try:
            spent, moved = self._measure(job)
        except NodeRpcError as err:
            if not self.stale(job, now_s):
                raise  # try again next cycle: the reservation stays
            # Stale and unmeasurable: settle at the reservation (the worst case) so the
            # budget never undercounts.
            self.log(f"rebalance {job['scid']}: cannot measure ({err}); settling at the reservation", "warn")
            spent, moved, outcome = job["reserved_msat"], 0, f"{outcome}; unmeasured"
        self.store.settle_rebalance(job["id"], now_s=now_s, spent_msat=spent, moved_msat=moved, outcome=outcome)
        self.log(f"rebalance {job['scid']} ended ({outcome}): moved {moved // 1000} sat for "
                 f"{spent // 1000} sat in fees (reserved {job['reserved_msat'] // 1000})", "info")
        return {"scid": job["scid"], "outcome": outcome, "spent_msat": spent, "moved_msat": moved,
                "reserved_msat": job["reserved_msat"]}

    @staticmethod
    def stale(job: dict, now_s: float) -> bool:
        """A reservation older than twice its job's maximum age."""
        return now_s - job["created_s"] >= 2 * job["plan"].get("max_age_s", 6 * 3600)

    def expire_stale(self, now_s: float) -> list[dict]:
        """Without sling (not loaded): settle stale reservations at their full amount, so they
        stop holding budget after 24 h without ever undercounting what the job may have spent."""
        ended = []
        for job in self.store.running_rebalances():
            if self.stale(job, now_s):
                self.store.settle_rebalance(job["id"], now_s=now_s, spent_msat=job["reserved_msat"], moved_msat=0,
                                            outcome="expired unmeasured (sling not loaded)")
                ended.append({"scid": job["scid"], "outcome": "expired unmeasured", "reserved_msat": job["reserved_msat"]})
        return ended

    def _watch(self, job: dict, states: list[str] | None, now_s: float, settings: Settings) -> str | None:
        """Why the job should end now, or None to let it run."""
        if states is None:
            return "gone from sling"
        spent, moved = self._measure(job)
        age_s = now_s - job["created_s"]
        if moved >= job["amount_sat"] * 1000:
            return "amount reached"
        if spent >= job["reserved_msat"]:
            return "reservation used up"
        if states and all(s == "Balanced" for s in states):
            return "target reached"
        if age_s >= settings.job_max_age_s:
            return "too old"
        if states and all(s in STALLED for s in states) and age_s >= settings.stall_s:
            return f"stalled: {','.join(sorted(set(states)))}"
        return None

    def cleanup(self, now_s: float, reason: str) -> list[dict]:
        """Ends every job revops recorded as running (startup, shutdown, wallet reserve)."""
        ended = []
        for job in self.store.running_rebalances():
            try:
                ended.append(self.end_job(job, now_s, reason))
            except NodeRpcError as err:
                self.log(f"rebalance {job['scid']}: cleanup failed, will retry: {err}", "warn")
        return ended

    # -- a cycle -------------------------------------------------------------------------------

    def cycle(self, evaluations: list, facts_by_scid: Mapping[str, Mapping[str, Any]], settings: Settings,
              budget_msat: int, now_s: float) -> dict:
        """Watch running jobs, then start new ones the policy asks for; returns the summary."""
        summary: dict[str, Any] = {"ok": True, "dry_run": self.dry_run, "started": [], "ended": [],
                                   "would_start": [], "skipped": Counter(), "errors": []}
        running = self.store.running_rebalances()
        states: dict[str, list[str]] = {}
        rebamount: dict[str, int] = {}
        if running:
            try:
                rows = self.sling.summary()
                states = {scid: s for scid, (s, _) in rows.items()}
                rebamount = {scid: a for scid, (_, a) in rows.items()}
            except NodeRpcError as err:
                summary["errors"].append(f"sling-stats: {err}")
                running = []  # cannot see sling: leave the jobs and their reservations alone
        for job in running:
            try:
                why = self._watch(job, states.get(job["scid"]), now_s, settings)
                if why is not None:
                    summary["ended"].append(self.end_job(job, now_s, why))
            except NodeRpcError as err:
                summary["errors"].append(f"{job['scid']}: {err}")
                if self.stale(job, now_s):
                    try:
                        summary["ended"].append(self.end_job(job, now_s, "stale"))
                    except NodeRpcError:
                        pass

        any_values = next(iter(facts_by_scid.values()), {})
        funds_sat = int(any_values.get("node.wallet_funds_sat", 0))
        suspended = funds_sat < settings.wallet_reserve_sat
        summary["wallet_reserve"] = {"funds_sat": funds_sat, "reserve_sat": settings.wallet_reserve_sat,
                                     "suspended": suspended}
        if suspended:
            # Below the reserve nothing may spend: stop what runs, start nothing.
            summary["ended"] += self.cleanup(now_s, "wallet below reserve")
        elif settings.enabled:
            self._start_jobs(evaluations, facts_by_scid, settings, budget_msat, now_s, summary)
        else:
            summary["skipped"]["rebalance_enabled is false"] += 1
        spent, reserved = self.store.rebalance_budget_used(now_s)
        running = self.store.running_rebalances()
        summary.update({
            "jobs": {"running": len(running), "started": len(summary["started"]), "ended": len(summary["ended"]),
                     "by_state": dict(Counter(s for j in running for s in states.get(j["scid"], ["Starting"])))},
            "budget": {"budget_msat": budget_msat, "spent_24h_msat": spent, "reserved_msat": reserved,
                       "left_msat": max(0, budget_msat - spent - reserved)},
            "reservations": [{"scid": j["scid"], "reserved_msat": j["reserved_msat"], "since": j["created_s"],
                              "states": states.get(j["scid"], ["Starting"]),
                              "rebamount_window_sat": rebamount.get(j["scid"])} for j in running],
            "skipped": dict(summary["skipped"])})
        return summary

    def _start_jobs(self, evaluations: list, facts_by_scid, settings: Settings, budget_msat: int, now_s: float,
                    summary: dict) -> None:
        running = self.store.running_rebalances()
        busy = {j["scid"] for j in running}
        try:
            foreign = self.sling.jobs() - busy  # someone else's jobs: never replaced, never candidates
        except NodeRpcError as err:
            summary["errors"].append(f"sling-jobsettings: {err}")
            return
        targets, sources = [], []
        for ev in evaluations:
            plan = ev.decision.rebalance
            if not plan:
                continue
            if ev.decision.scid in foreign:
                summary["skipped"]["another sling job owns the channel"] += 1
                continue
            if plan["role"] == "target":
                if ev.decision.scid in busy:
                    continue
                if plan["amount_sat"] < settings.min_amount_sat or plan["max_ppm"] <= 0:
                    summary["skipped"]["target: no positive move (EV, Kelly or budget)"] += 1
                    continue
                targets.append(ev.decision)
            elif plan["role"] == "source" and ev.decision.scid not in busy:
                sources.append(ev.decision)
        # Richest margin first; sources by score (reliability and excess), best first.
        targets.sort(key=lambda d: (-d.rebalance["max_ppm"], d.scid))
        sources.sort(key=lambda d: (-d.rebalance["score"], d.scid))
        summary["targets"], summary["sources"] = len(targets), len(sources)
        free = settings.max_jobs - len(running)
        for target in targets:
            if free <= 0:
                summary["skipped"]["target: concurrency limit"] += 1
                continue
            facts = facts_by_scid[target.scid]
            chunk = min(settings.chunk_sat, max(1, target.rebalance["amount_sat"]))
            # Same-peer guard: never a channel to the target's own peer.
            # outppm fence: a source whose own fee is above what is left of the target's fee
            # after paying max_ppm earns more where it is.
            fence = (max(0, int(facts["channel.fee_ppm"]) - target.rebalance["max_ppm"])
                     if settings.outppm_fence else None)
            candidates = [s.scid for s in sources if s.peer_id != target.peer_id
                          and facts_by_scid[s.scid]["channel.spendable_msat"] >= chunk * 1000 * 2
                          and (fence is None or facts_by_scid[s.scid]["channel.fee_ppm"] <= fence)]
            candidates = candidates[:settings.max_candidates]
            if not candidates:
                summary["skipped"]["target: no eligible source"] += 1
                continue
            started = self._start(target, facts, candidates, chunk, settings, budget_msat, now_s, summary, fence)
            free -= started

    def _start(self, target, facts, candidates: list[str], chunk_sat: int, settings: Settings, budget_msat: int,
               now_s: float, summary: dict, outppm: int | None = None) -> int:
        plan = target.rebalance
        amount, max_ppm = int(plan["amount_sat"]), int(plan["max_ppm"])
        capacity_sat = facts["channel.capacity_sat"]
        local_sat = facts["channel.local_msat"] / 1000
        standing = settings.standing_jobs
        if not standing:  # sling-once moves whole chunks
            amount = amount // chunk_sat * chunk_sat
        # Budget-fit: shrink the move until its worst case fits what is left.
        spent, reserved = self.store.rebalance_budget_used(now_s)
        left = budget_msat - spent - reserved
        while amount >= settings.min_amount_sat and reservation_msat(amount, chunk_sat, max_ppm, standing) > left:
            amount -= chunk_sat
        if amount < settings.min_amount_sat or amount <= 0:
            summary["skipped"]["target: budget exhausted"] += 1
            return 0
        target_ratio = min(1.0, (local_sat + amount) / capacity_sat) if capacity_sat else 0.0
        record = {"scid": target.scid, "amount_sat": amount, "chunk_sat": chunk_sat, "max_ppm": max_ppm,
                  "local_msat": int(facts["channel.local_msat"]),
                  "target": round(target_ratio, 4), "candidates": candidates,
                  "reserved_msat": reservation_msat(amount, chunk_sat, max_ppm, standing), "rule": plan["rule"],
                  "sling": "job" if standing else "once", "outppm": outppm}
        if self.dry_run:
            summary["would_start"].append(record)
            return 1
        try:
            baseline = self.sling.stats(target.scid)
        except NodeRpcError as err:
            summary["errors"].append(f"{target.scid}: {err}")
            return 0
        job_id = self.store.reserve_rebalance(
            scid=target.scid, peer_id=target.peer_id, now_s=now_s, budget_msat=budget_msat, amount_sat=amount,
            chunk_sat=chunk_sat, max_ppm=max_ppm, reserved_msat=record["reserved_msat"], candidates=candidates,
            baseline=baseline.to_json(), plan={**record, "max_age_s": settings.job_max_age_s})
        if job_id is None:
            summary["skipped"]["target: budget exhausted"] += 1
            return 0
        try:
            if standing:
                self.sling.create_pull(target.scid, chunk_sat, max_ppm, candidates, target_ratio, outppm)
                self.sling.go(target.scid)
            else:
                self.sling.create_once(target.scid, chunk_sat, max_ppm, candidates, amount, outppm)
        except NodeRpcError as err:
            self.store.cancel_rebalance(job_id)
            try:  # a job sling accepted but could not start is ours: remove it
                self.sling.delete(target.scid)
            except NodeRpcError:
                pass
            summary["errors"].append(f"{target.scid}: {err}")
            return 0
        self.log(f"rebalance {target.scid}: pull {amount} sat in {chunk_sat} sat chunks at <= {max_ppm} ppm "
                 f"from {len(candidates)} source(s), reserved {record['reserved_msat'] // 1000} sat", "info")
        summary["started"].append(record)
        return 1
