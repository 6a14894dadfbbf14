"""The rebalancer's pieces on their own: sling reply parsing, the job lifecycle against a fake
sling, dry-run, stale reservations, and the budget formula."""

from __future__ import annotations

import random

import pytest

from revops.act.rebalance import Rebalancer, reservation_msat
from revops.act.sling import Sling, parse_rebamount, parse_scid_stats, parse_states
from revops.store import Store

from .test_budget_property import BUDGET_MSAT, FakeSling, make_settings, plan, settings_of


NOW = 1_700_000_000.0


def test_sling_stats_are_parsed_by_their_real_shapes():
    assert parse_rebamount("1,234,567") == 1_234_567 and parse_rebamount("0") == 0
    assert parse_states(["1:Rebalancing", "2:NoCandidates"]) == ["Rebalancing", "NoCandidates"]
    empty = parse_scid_stats({"successes_in_time_window": None, "failures_in_time_window": None})
    assert (empty.rebalances, empty.spent_sat) == (0, 0)
    stats = parse_scid_stats({"successes_in_time_window": {
        "time_window_days": "30", "total_amount_sats": 300000, "feeppm_weighted_avg": 610, "total_rebalances": 3,
        "total_spent_sats": 183}, "failures_in_time_window": {"total_rebalances_tried": 7}})
    assert (stats.rebalances, stats.amount_sat, stats.spent_sat, stats.attempts_failed) == (3, 300000, 183, 7)
    with pytest.raises(ValueError):
        parse_scid_stats([{"scid": "1x1x1"}])  # the summary list is not per-scid stats
    with pytest.raises(ValueError):
        parse_rebamount(None)


def test_the_job_summary_reads_states_and_rebamount_of_every_job():
    class Rpc:
        def call(self, method, params):
            assert (method, params) == ("sling-stats", {"json": True})
            return [{"alias": "A", "scid": "1x1x0", "pubkey": "02aa", "status": ["1:Rebalancing", "2:NoCandidates"],
                     "rebamount": "1,234,567", "w_feeppm": 420, "last_route_taken": "Never",
                     "last_success_reb": "Never"},
                    {"alias": "B", "scid": "2x1x0", "pubkey": "02bb", "status": ["1:Balanced"], "rebamount": "0",
                     "w_feeppm": 0, "last_route_taken": "Never", "last_success_reb": "Never"}]
    assert Sling(Rpc()).summary() == {"1x1x0": (["Rebalancing", "NoCandidates"], 1_234_567),
                                      "2x1x0": (["Balanced"], 0)}


def test_reservation_is_the_worst_case_of_the_move():
    assert reservation_msat(300_000, 100_000, 700) == 210_000  # 3 chunks x 100k sat x 700 ppm
    assert reservation_msat(250_000, 100_000, 700, standing=True) == 280_000  # ceil + one more chunk


def test_budget_follows_revenue_when_asked_and_never_above_the_cap():
    s = settings_of({"rebalance_budget_sat": 5000, "rebalance_budget_revenue_share": 0.5})
    assert s.budget_msat(2_000_000) == 1_000_000 and s.budget_msat(50_000_000) == 5_000_000
    assert settings_of({"rebalance_budget_sat": 5000}).budget_msat(0) == 5_000_000
    assert settings_of({"min_fee_ppm": 1}) is None  # no budget param: no rebalancing


def test_a_job_runs_is_measured_and_settled(tmp_path):
    sling = FakeSling(random.Random(3))
    conf = make_settings(1, 50_000)
    with Store(tmp_path / "db") as store:
        reb = Rebalancer(sling, store, dry_run=False, log=lambda m, lvl: None)
        evaluations, facts = plan(sling, random.Random(1), conf)
        out = reb.cycle(evaluations, facts, conf, BUDGET_MSAT, NOW)
        [started] = out["started"]
        assert started["sling"] == "once" and started["candidates"] == ["9x9x9"]
        assert sling.jobs[started["scid"]]["onceamount"] == started["amount_sat"]
        assert out["budget"]["reserved_msat"] == started["reserved_msat"]
        sling.work(NOW + 60, 100)
        out = reb.cycle(evaluations, facts, conf, BUDGET_MSAT, NOW + 1800)
        [ended] = out["ended"]
        paid = sum(f for _, f in sling.paid)
        assert ended["outcome"] == "amount reached" and ended["moved_msat"] == started["amount_sat"] * 1000
        assert paid <= ended["spent_msat"] <= paid + 999 and ended["spent_msat"] <= started["reserved_msat"]
        assert sling.jobs.get(started["scid"], {}).get("moved", 0) == 0  # deleted (maybe a new one since)
        assert store.rebalance_spend_msat(NOW, NOW + 1800, started["scid"]) == ended["spent_msat"]
        assert store.rebalance_costs(NOW, NOW + 1800)[started["scid"]]["moved_msat"] == ended["moved_msat"]


def test_dry_run_decides_and_calls_nothing(tmp_path):
    sling = FakeSling(random.Random(3))
    conf = make_settings(2, 50_000)
    with Store(tmp_path / "db") as store:
        reb = Rebalancer(sling, store, dry_run=True, log=lambda m, lvl: None)
        out = reb.cycle(*plan(sling, random.Random(1), conf), conf, BUDGET_MSAT, NOW)
        assert len(out["would_start"]) == 2 and not out["started"] and not sling.jobs
        assert store.running_rebalances() == []


def test_stale_reservations_expire_at_their_full_amount(tmp_path):
    with Store(tmp_path / "db") as store:
        reb = Rebalancer(FakeSling(random.Random(1)), store, dry_run=False, log=lambda m, lvl: None)
        store.reserve_rebalance(scid="1x1x0", peer_id="p", now_s=NOW, budget_msat=10**6, amount_sat=100,
                                chunk_sat=100, max_ppm=1000, reserved_msat=5000, candidates=[], baseline={},
                                plan={"max_age_s": 3600})
        assert reb.expire_stale(NOW + 3599 * 2) == []
        [gone] = reb.expire_stale(NOW + 7200)
        assert gone["reserved_msat"] == 5000 and store.running_rebalances() == []
        assert store.rebalance_spend_msat(NOW, NOW + 7200) == 5000


def test_a_job_someone_deleted_is_settled_with_what_it_spent(tmp_path):
    sling = FakeSling(random.Random(3))
    conf = make_settings(1, 50_000)
    with Store(tmp_path / "db") as store:
        reb = Rebalancer(sling, store, dry_run=False, log=lambda m, lvl: None)
        evaluations, facts = plan(sling, random.Random(1), conf)
        [started] = reb.cycle(evaluations, facts, conf, BUDGET_MSAT, NOW)["started"]
        sling.work(NOW + 60, 1)
        del sling.jobs[started["scid"]]
        [ended] = reb.cycle(evaluations, facts, conf, BUDGET_MSAT, NOW + 1800)["ended"]
        assert ended["outcome"] == "gone from sling" and ended["moved_msat"] == 50_000_000


def test_the_outppm_fence_goes_to_sling_and_keeps_dear_sources_out(tmp_path):
    sling = FakeSling(random.Random(3))
    conf = settings_of({"rebalance_budget_sat": 2000, "rebalance_max_jobs": 6, "rebalance_chunk_sat": 50_000,
                                 "rebalance_min_amount_sat": 20_000, "rebalance_outppm_fence": True})
    with Store(tmp_path / "db") as store:
        reb = Rebalancer(sling, store, dry_run=False, log=lambda m, lvl: None)
        evaluations, facts = plan(sling, random.Random(1), conf)
        facts["9x9x9"]["channel.fee_ppm"] = 600
        out = reb.cycle(evaluations, facts, conf, BUDGET_MSAT, NOW)
    # The source charges 600 ppm: only targets whose fee (3000) leaves >= 600 after max_ppm get it.
    dear = sum(1 for e in evaluations if e.decision.rebalance.get("max_ppm", 0) > 2400)
    assert out["started"] and dear
    for job in out["started"]:
        assert job["outppm"] == 3000 - job["max_ppm"] >= 600
        assert sling.jobs[job["scid"]]["outppm"] == job["outppm"]
    assert out["skipped"]["target: no eligible source"] == dear
