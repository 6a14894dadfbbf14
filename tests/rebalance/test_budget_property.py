"""Property: whatever the order of cycles, job completions, crashes, restarts and reloads, the
rebalance fees actually paid in any rolling 24 h never exceed the budget.

The Rebalancer and the Store are the real ones; sling is a fake that behaves like sling's
contract: a pull job moves `amount` per attempt at any fee up to maxppm (msat-exact), stops
once the channel reaches `target`, keeps running while revops is down, and reports whole sats
in sling-stats. The check uses the fake's own ledger of payments, not revops' record.
"""

from __future__ import annotations

import random
import threading
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings, strategies as st

from revops.act.rebalance import Rebalancer, Settings
from revops.node.rpc import NodeRpcError
from revops.policy.host import HostSettings
from revops.store import Store


def settings_of(params):
    """The rebalancer's Settings of a policy with these params and no requires: key."""
    return Settings.from_host(HostSettings.of(None, params))


DAY_S = 86_400
BUDGET_MSAT = 2_000_000
CAPACITY_SAT = 5_000_000


class FakeSling:
    """sling's RPC surface over a few channels, with a ledger of every fee paid (time, msat)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.local_sat = {f"1x{i}x0": 200_000 for i in range(6)}
        self.jobs: dict[str, dict] = {}
        self.stats: dict[str, list[int]] = {}  # scid -> [rebalances, amount_msat, spent_msat]
        self.paid: list[tuple[float, int]] = []

    def call(self, method, params):
        if method in ("sling-job", "sling-once"):
            if method == "sling-once" and params["scid"] in self.jobs:
                raise NodeRpcError(method, -32700, "There is already a job for that scid!")
            self.jobs[params["scid"]] = {**params, "moved": 0}
            return {"result": "success" if method == "sling-job" else "started"}
        if method == "sling-go":
            return {"tasks_started": 1, "tasks_failed_start:": 0}
        if method == "sling-deletejob":
            if params["job"] not in self.jobs:
                raise NodeRpcError(method, -32700, f"{params['job']}: No job running")
            del self.jobs[params["job"]]
            return {"result": "success"}
        if method == "sling-jobsettings":
            return {s: {"sat_direction": "Pull"} for s in self.jobs}
        if method == "sling-stats" and "scid" in params:
            n, amount, spent = self.stats.get(params["scid"], [0, 0, 0])
            if not n:
                return {"successes_in_time_window": None, "failures_in_time_window": None}
            return {"successes_in_time_window": {"total_rebalances": n, "total_amount_sats": amount // 1000,
                                                 "total_spent_sats": spent // 1000},
                    "failures_in_time_window": None}
        if method == "sling-stats":
            return [{"scid": s, "status": ["1:Rebalancing"],
                     "rebamount": f"{self.stats.get(s, [0, 0, 0])[1] // 1000:,}"} for s in self.jobs]
        raise AssertionError(method)

    def work(self, now_s: float, attempts: int) -> None:
        """Every running job tries `attempts` rebalances now (revops may be down meanwhile)."""
        for scid, job in list(self.jobs.items()):
            for _ in range(attempts):
                if "onceamount" in job and job["moved"] >= job["onceamount"]:
                    break
                if "target" in job and self.local_sat[scid] >= job["target"] * CAPACITY_SAT:
                    break
                job["moved"] += job["amount"]
                # Adversarial but legal: mostly the most sling may pay.
                ppm = job["maxppm"] if self.rng.random() < 0.75 else self.rng.randint(1, job["maxppm"])
                fee_msat = job["amount"] * 1000 * ppm // 1_000_000
                self.local_sat[scid] += job["amount"]
                row = self.stats.setdefault(scid, [0, 0, 0])
                row[0] += 1
                row[1] += job["amount"] * 1000
                row[2] += fee_msat
                self.paid.append((now_s, fee_msat))

    def drain(self) -> None:
        """Routing empties the channels again, so there is always something to refill."""
        for scid in self.local_sat:
            self.local_sat[scid] = min(self.local_sat[scid], 200_000)


def plan(sling: FakeSling, rng: random.Random, settings_: Settings) -> tuple[list, dict]:
    """Evaluations (every channel a target with random size and price; one source) and facts."""
    evaluations, facts = [], {}
    for i, scid in enumerate(sling.local_sat):
        facts[scid] = {"channel.capacity_sat": CAPACITY_SAT, "channel.local_msat": sling.local_sat[scid] * 1000,
                       "channel.fee_ppm": 3000,
                       "channel.spendable_msat": 10**12, "node.wallet_funds_sat": 10**9}
        evaluations.append(SimpleNamespace(decision=SimpleNamespace(
            scid=scid, peer_id=f"peer{i}", rebalance={"role": "target", "rule": "t",
                                                     "amount_sat": rng.choice([60_000, 300_000, 1_500_000]),
                                                     "max_ppm": rng.choice([100, 700, 2500])})))
    src = "9x9x9"
    facts[src] = {"channel.capacity_sat": CAPACITY_SAT, "channel.local_msat": 4 * 10**9, "channel.fee_ppm": 400,
                  "channel.spendable_msat": 4 * 10**9, "node.wallet_funds_sat": 10**9}
    evaluations.append(SimpleNamespace(decision=SimpleNamespace(
        scid=src, peer_id="peer-src", rebalance={"role": "source", "rule": "s", "score": 1.0})))
    return evaluations, facts


def make_settings(max_jobs: int, chunk_sat: int) -> Settings:
    return settings_of({"rebalance_budget_sat": BUDGET_MSAT // 1000, "rebalance_max_jobs": max_jobs,
                        "rebalance_chunk_sat": chunk_sat, "rebalance_min_amount_sat": 20_000,
                        "rebalance_job_max_age_h": 3, "rebalance_stall_h": 100})


# Cycles, completions and short waits dominate, so most runs spend their budget many times.
STEP = st.one_of(
    st.tuples(st.just("cycle"), st.integers(0, 0)),
    st.tuples(st.just("cycle"), st.integers(0, 0)),
    st.tuples(st.just("cycle"), st.integers(0, 0)),
    st.tuples(st.just("work"), st.integers(1, 40)),      # concurrent completions between cycles
    st.tuples(st.just("work"), st.integers(1, 40)),
    st.tuples(st.just("work"), st.integers(1, 40)),
    st.tuples(st.just("wait"), st.integers(600, 4 * 3600)),
    st.tuples(st.just("crash"), st.integers(0, 0)),      # no shutdown cleanup; sling keeps going
    st.tuples(st.just("restart"), st.integers(0, 0)),    # startup cleanup of our recorded jobs
    st.tuples(st.just("reload"), st.integers(1, 4)),     # new params (jobs, chunk); same budget
    st.tuples(st.just("drain"), st.integers(0, 0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=20, max_size=150), seed=st.integers(0, 10**6))
def test_rolling_24h_spend_never_exceeds_the_budget(tmp_path_factory, steps, seed):
    path = tmp_path_factory.mktemp("budget") / "revops.sqlite3"
    rng = random.Random(seed)
    sling = FakeSling(rng)
    now = 1_700_000_000.0
    store = Store(path)
    conf = make_settings(3, 50_000)
    rebalancer = Rebalancer(sling, store, dry_run=False, log=lambda msg, level: None)
    up = True
    for op, arg in steps:
        if op == "cycle" and up:
            evaluations, facts = plan(sling, rng, conf)
            rebalancer.cycle(evaluations, facts, conf, BUDGET_MSAT, now)
        elif op == "work":
            sling.work(now, arg)
        elif op == "wait":
            now += arg
        elif op == "crash" and up:
            store.close()
            up = False
        elif op == "restart":
            if up:
                rebalancer.cleanup(now, "shutdown")
                store.close()
            store = Store(path)
            rebalancer = Rebalancer(sling, store, dry_run=False, log=lambda msg, level: None)
            rebalancer.cleanup(now, "startup")
            up = True
        elif op == "reload" and up:
            conf = make_settings(arg, rng.choice([20_000, 50_000, 100_000]))
        elif op == "drain":
            sling.drain()
    if up:
        store.close()
    paid = sorted(sling.paid)
    for t, _ in paid:
        window = sum(fee for at, fee in paid if t - DAY_S < at <= t)
        assert window <= BUDGET_MSAT, (t, window)


def test_concurrent_reservations_never_oversubscribe_the_budget(tmp_path):
    """Eight writers, each with its own connection, race for the last of the budget."""
    path = tmp_path / "revops.sqlite3"
    Store(path).close()
    results: list = []

    def reserve(i: int) -> None:
        with Store(path) as store:
            for k in range(5):
                results.append(store.reserve_rebalance(
                    scid=f"{i}x{k}x0", peer_id="p", now_s=1000.0, budget_msat=1_000_000, amount_sat=1,
                    chunk_sat=1, max_ppm=1, reserved_msat=70_000, candidates=[], baseline={}, plan={}))

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Store(path) as store:
        spent, reserved = store.rebalance_budget_used(1000.0)
    granted = [r for r in results if r is not None]
    assert len(granted) == 14 and reserved == 14 * 70_000 <= 1_000_000 and spent == 0


def test_a_busy_week_spends_up_to_the_budget_and_no_more(tmp_path):
    """The same model without randomness in the schedule: jobs run, spend, end, and the node
    spends close to its budget every day without a window above it."""
    rng = random.Random(1)
    sling = FakeSling(rng)
    now = 1_700_000_000.0
    conf = make_settings(3, 50_000)
    with Store(tmp_path / "revops.sqlite3") as store:
        rebalancer = Rebalancer(sling, store, dry_run=False, log=lambda msg, level: None)
        for i in range(7 * 48):
            rebalancer.cycle(*plan(sling, rng, conf), conf, BUDGET_MSAT, now)
            sling.work(now + 900, 4)
            if i % 6 == 0:
                sling.drain()
            now += 1800
        assert store.rebalance_spend_msat(now - 7 * DAY_S, now) > 3 * BUDGET_MSAT
    paid = sorted(sling.paid)
    assert max(sum(f for at, f in paid if t - DAY_S < at <= t) for t, _ in paid) <= BUDGET_MSAT
