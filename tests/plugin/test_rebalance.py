"""Rebalancing through the real plugin on the simulated node (issue #6).

sink-drain refills depleted sinks and earns more on them than it spends, and
revenue-rebalances accounts for what each refill earned back; a peer with two
channels is never rebalanced against itself; without sling only fees run; below the wallet
reserve nothing is spent and running jobs stop; only revops' own sling jobs are cleaned up,
also after a crash.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from revops.sim.errors import RpcError
from revops.store import Store

from .conftest import Node

CYCLE_S = 1800
HERE = Path(__file__).resolve().parent


def run(node: Node, hours: float) -> list[dict]:
    """Advance the market and run both cycles every half hour; returns the rebalance summaries."""
    out = []
    for _ in range(int(hours * 3600 / CYCLE_S)):
        node.advance(CYCLE_S)
        out.append(node.cycle("all")["rebalance"])
    return out


def until_a_job_runs(node: Node, hours: float = 48) -> None:
    """Run both cycles every half hour until a rebalance job runs (at most `hours`)."""
    for _ in range(int(hours * 3600 / CYCLE_S)):
        node.advance(CYCLE_S)
        if node.cycle("all")["rebalance"]["jobs"]["running"]:
            return


def rebalance_fees_msat(node: Node) -> int:
    """What the node's bookkeeper says rebalancing cost (independent of the plugin's own record)."""
    events = node.backend("bkpr-listincome", {"consolidate_fees": False})["income_events"]
    return sum(e.get("debit_msat", 0) - e.get("credit_msat", 0) for e in events if e.get("tag") == "rebalance_fee")


def recording(calls: list):
    """A backend_wrapper that records the params of every sling-job and sling-once call."""
    def wrapper(inner):
        def backend(method, params):
            if method in ("sling-job", "sling-once"):
                calls.append(dict(params))
            return inner(method, params)
        backend.methods = inner.methods
        return backend
    return wrapper


def memoryless_liquidity_price(workdir: Path, name: str = "sink-drain") -> str:
    """The bundled scenario with the liquidity price of before issue 14 (a fresh noise draw per
    attempt, no depth): this test checks the rebalancer's mechanics (jobs, budget, bookkeeping,
    refills paying off), not how the default policy copes with the deeper market."""
    from revops.sim.scenario import SCENARIO_DIR
    text = (SCENARIO_DIR / f"{name}.yaml").read_text()
    text = text.replace("rebalance_market:\n", "rebalance_market:\n  noise_memory_h: 0\n  depth_weight: 0\n", 1)
    path = workdir / f"{name}-memoryless.yaml"
    path.write_text(text)
    return str(path)


def test_sink_drain_refills_depleted_channels_with_positive_net(workdir):
    node = Node(workdir, scenario=memoryless_liquidity_price(workdir), seed=1)
    local_ratio_at_start = {c.scid: c.to_us_msat / c.total_msat for c in node.sim.channels}
    node.start()
    try:
        start_s = node.sim.now_s
        summaries = run(node, 6 * 24)
        status = node.call("revenue-status")
        explain = node.call("revenue-explain")
        account = node.call("revenue-rebalances", {"days": 7})
        dashboard = node.call("revenue-dashboard")["dashboard"]
        with pytest.raises(RpcError, match="days must be a positive number"):
            node.call("revenue-rebalances", {"days": "a week"})
    finally:
        node.stop()
    with Store(workdir / "revops.sqlite3") as store:
        jobs = store.rebalance_jobs(0)
        spent_msat = store.rebalance_spend_msat(0, node.sim.now_s)
        costs = store.rebalance_costs(0, node.sim.now_s)
    moved = [j for j in jobs if j["state"] == "done" and j["moved_msat"] > 0]
    assert len(moved) >= 3, [j["outcome"] for j in jobs]
    assert not any(s.get("errors") for s in summaries), [s["errors"] for s in summaries if s.get("errors")]
    # Targets are channels the policy found depleted (below rebalance_depleted_ratio, 0.2, when
    # the job began: the plan records the ratio it aims for and the amount); the sinks, 50-80 %
    # full at start, drained first.
    capacity_sat = {c.scid: c.total_msat // 1000 for c in node.sim.channels}
    assert all(j["plan"]["target"] - j["plan"]["amount_sat"] / capacity_sat[j["scid"]] < 0.2 + 1e-4 for j in moved)
    assert any(local_ratio_at_start[j["scid"]] >= 0.5 for j in moved)
    # Measured spend: what bookkeeper recorded, to the sat per job (sling-stats counts whole sats).
    assert spent_msat > 0
    assert abs(rebalance_fees_msat(node) - spent_msat) <= 1000 * len(jobs)
    # Never maxppm x amount: the measured fee is below the worst case of every job (to the sat:
    # the spend is measured in whole sats from sling-stats, the reservation in msat).
    assert all(j["spent_msat"] <= j["reserved_msat"] + 1000 for j in jobs if j["state"] == "done")
    assert spent_msat < sum(j["max_ppm"] * j["moved_msat"] // 1_000_000 for j in moved)
    # Rolling 24 h: no window holds more than the budget (5,000 sat by default).
    ends = sorted((j["ended_s"], j["spent_msat"]) for j in jobs if j["state"] == "done")
    for t, _ in ends:
        assert sum(s for e, s in ends if t - 86400 < e <= t) <= 5_000_000
    # Positive net on the refilled channels: what they earned after their first refill began
    # beats everything spent to refill them.
    first = {}
    for j in jobs:
        first[j["scid"]] = min(first.get(j["scid"], j["created_s"]), j["created_s"])
    earned = sum(f["fee_msat"] for f in node.backend("listforwards", {})["forwards"]
                 if f.get("status") == "settled" and f.get("out_channel") in costs
                 and f["received_time"] >= first[f["out_channel"]])
    assert earned > sum(c["fee_msat"] for c in costs.values()) > 0
    assert node.sim.now_s - start_s == 6 * 86400
    # revenue-rebalances: every rebalance that moved something, and what it earned back from the
    # forwards out of its channel after it began, never more than those forwards paid.
    # (The account was read before the stop, which settled the jobs still running then.)
    assert sorted(r["job_id"] for r in account["rebalances"]) == sorted(
        j["id"] for j in moved if not j["outcome"].startswith("shutdown"))
    assert all(j["plan"]["local_msat"] >= 0 for j in moved)
    fees_after = {r["job_id"]: sum(f["fee_msat"] for f in node.backend("listforwards", {})["forwards"]
                                   if f.get("status") == "settled" and f.get("out_channel") == r["scid"]
                                   and f["resolved_time"] >= r["start_s"]) for r in account["rebalances"]}
    assert all(0 <= r["used_msat"] <= r["moved_msat"] for r in account["rebalances"])
    assert all(r["earned_msat"] <= fees_after[r["job_id"]] + 1 for r in account["rebalances"])
    assert any(r["earned_msat"] > 0 for r in account["rebalances"])
    totals = account["accounted"]["earned_msat"] + account["in_use"]["earned_so_far_msat"]
    assert abs(totals - sum(r["earned_msat"] for r in account["rebalances"])) <= len(moved)
    done = account["accounted"]
    assert (f"30d: {done['count']} rebalances accounted, earned back {done['payback']:.2f}x of their fees "
            f"({done['paid_back']} paid back") in dashboard
    # revenue-status carries the cycle summary the metrics helper reads.
    reb = status["rebalance"]
    assert reb["ok"] and {"jobs", "budget", "reservations", "wallet_reserve"} <= set(reb)
    assert reb["budget"]["budget_msat"] == 5_000_000 and reb["wallet_reserve"]["suspended"] is False
    # revenue-explain: the rebalance side of every channel, with EV inputs and the budget.
    roles = {c["rebalance"]["role"] for c in explain["channels"]}
    assert "source" in roles
    target_values = [c["rebalance"]["values"]["rebalance-target"] for c in explain["channels"]
                     if "rebalance-target" in c["rebalance"]["values"]]
    assert target_values and {"ev_ppm", "cost_ppm", "opp_ppm", "kelly", "stake"} <= set(target_values[0])
    assert all("budget_left_msat" not in c["rebalance"] and
               "rebalance_budget_left_msat" in c["rebalance"]["budget"] for c in explain["channels"])


def test_a_peer_with_two_channels_is_never_rebalanced_against_itself(workdir):
    calls: list[dict] = []
    node = Node(workdir, scenario=str(HERE / "twin-peer.yaml"), seed=2, backend_wrapper=recording(calls))
    by_peer: dict = {}
    for c in node.sim.channels:
        by_peer.setdefault(c.peer.node_id, []).append(c)
    drained, full = next(chs for chs in by_peer.values() if len(chs) == 2)
    drained.to_us_msat = drained.total_msat // 20          # 5% and dear: a target worth refilling
    drained.fee_ppm = 2000
    full.to_us_msat = full.total_msat * 95 // 100          # 95% and cheap: the best source there is
    full.fee_ppm = 20
    full.demand_out = full.demand_in = 0.01                # idle: no Source Protection for it
    peer_of = {c.scid: c.peer.node_id for c in node.sim.channels}
    node.start()
    try:
        # Every source goes to sling, so only the guard can keep the full twin out.
        node.call("revenue-config", {"key": "rebalance_max_candidates", "value": 50})
        # Peer sync prices the twins as one pool (their capacity-weighted baseline), which
        # makes the drained twin not worth refilling at all; this test is about the guard.
        node.call("revenue-config", {"key": "peer_sync", "value": False})
        run(node, 36)
        explain = node.call("revenue-explain", {"scid": drained.scid})["channels"][0]["rebalance"]
    finally:
        node.stop()
    assert calls, "no sling job was created"
    assert any(c["scid"] == drained.scid for c in calls), explain
    for c in calls:
        assert c["direction"] == "pull" and c["candidates"]
        assert all(peer_of[s] != peer_of[c["scid"]] for s in c["candidates"]), c
    assert not any(f[2] == "came back on the wrong channel"
                   for fails in node.sim.sling.failures.values() for f in fails)


def test_without_sling_fees_run_and_rebalancing_is_off(workdir):
    node = Node(workdir, scenario="sink-drain", seed=1, sling=False)
    node.start()
    try:
        node.advance(CYCLE_S)
        out = node.cycle("all")
        status = node.call("revenue-status")
    finally:
        node.stop()
    assert out["fees"]["ok"] and out["fees"]["set_fee"] > 0
    assert out["rebalance"] == {"ok": False, "skipped": "sling is not loaded: rebalancing is off"}
    assert status["mode"] == "degraded" and "sling" in status["mode_reason"]
    assert rebalance_fees_msat(node) == 0


def test_below_the_wallet_reserve_nothing_is_spent_and_our_jobs_stop(workdir):
    node = Node(workdir, scenario="sink-drain", seed=1)
    # Someone else's sling job: never touched by revops (not at startup, not by the reserve).
    spare = next(c for c in node.sim.channels if c.to_us_msat < c.total_msat // 2)
    node.sim.sling.rpc_job({"scid": spare.scid, "direction": "pull", "amount": 10000, "maxppm": 1,
                            "outppm": 1})
    node.start()
    try:
        until_a_job_runs(node)
        ours = set(node.sim.sling.jobs) - {spare.scid}
        assert ours, "no job started within two days"
        node.call("revenue-config", {"key": "wallet_reserve_sat", "value": 10**12})
        node.advance(CYCLE_S)
        reb = node.cycle("all")["rebalance"]
        assert reb["wallet_reserve"]["suspended"] is True
        assert {e["scid"] for e in reb["ended"]} == ours
        # a job that reached its amount in this very cycle ends as such; every other one is stopped
        assert {e["outcome"] for e in reb["ended"]} <= {"wallet below reserve", "amount reached"}, reb["ended"]
        assert any(e["outcome"] == "wallet below reserve" for e in reb["ended"]), reb["ended"]
        assert set(node.sim.sling.jobs) == {spare.scid}
        spent_at_reserve = rebalance_fees_msat(node)
        summaries = run(node, 24)
        status = node.call("revenue-status")
        assert rebalance_fees_msat(node) == spent_at_reserve
        assert all(not s["started"] and s["jobs"]["running"] == 0 for s in summaries)
        assert status["mode_reason"] == "wallet below reserve: rebalancing suspended"
        assert status["rebalance"]["wallet_reserve"] == {"funds_sat": status["rebalance"]["wallet_reserve"]
                                                          ["funds_sat"], "reserve_sat": 10**12, "suspended": True}
        node.call("revenue-config", {"key": "reset", "value": "wallet_reserve_sat"})
        until_a_job_runs(node)
        ours = set(node.sim.sling.jobs) - {spare.scid}
        assert ours
        node.stop()  # shutdown deletes our jobs only
        assert set(node.sim.sling.jobs) == {spare.scid}
    finally:
        node.stop()


def test_standing_jobs_use_sling_job_with_a_target_and_sling_go(workdir):
    calls: list[dict] = []
    node = Node(workdir, scenario="sink-drain", seed=1, backend_wrapper=recording(calls))
    node.start()
    try:
        node.call("revenue-config", {"key": "rebalance_standing_jobs", "value": True})
        until_a_job_runs(node)
        status = node.call("revenue-status")["rebalance"]
    finally:
        node.stop()
    started = status["started"][0]   # the first cycle with a target may start several
    [call] = [c for c in calls if c["scid"] == started["scid"]]
    assert "onceamount" not in call and 0 < call["target"] <= 0.5 and call["amount"] == started["chunk_sat"]
    assert node.backend.calls["sling-go"] >= 1 and node.backend.calls["sling-once"] == 0
    assert started["sling"] == "job" and not node.sim.sling.jobs  # shutdown removed it


def test_a_crash_leaves_a_reservation_that_the_next_start_settles_with_what_sling_spent(workdir):
    node = Node(workdir, scenario="sink-drain", seed=1)
    node.start()
    try:
        until_a_job_runs(node)
        ours = set(node.sim.sling.jobs)
        assert ours
        os.kill(node.ld.pid, signal.SIGKILL)  # no shutdown: the reservation stays, sling keeps going
        node.stop()
        node.advance(3600, deliver=False)
        with Store(workdir / "revops.sqlite3") as store:
            assert {j["scid"] for j in store.running_rebalances()} == ours
        node.start()
        assert not node.sim.sling.jobs  # the next start ended our jobs
        with Store(workdir / "revops.sqlite3") as store:
            assert store.running_rebalances() == []
            jobs = store.rebalance_jobs(0)
            assert all(j["outcome"].startswith("startup") for j in jobs if j["scid"] in ours)
            spent = store.rebalance_spend_msat(0, node.sim.now_s)
        assert abs(rebalance_fees_msat(node) - spent) <= 1000 * len(jobs)
    finally:
        node.stop()
