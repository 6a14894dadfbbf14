"""Common random numbers, the in-process fee setters and the oracle (issue 14 items 1-2)."""

from __future__ import annotations

import subprocess
import sys
import json
from pathlib import Path

from revops.sim.driver import simulate, typical_ref_fee_ppm
from revops.sim.inprocess import FixedFee, simulate_setter
from revops.sim.model_build import build_node
from revops.sim.oracle import BALANCE_CURVES, Oracle, best_fee_ppm, run_oracle
from revops.sim.rpc import SimRpc

ROOT = Path(__file__).resolve().parents[2]


def _run_fixed(fee_ppm: int, days: float, seed: int) -> tuple[set[str], int]:
    """Payment hashes of the forwards a fixed fee saw, and the fees it collected."""
    node = build_node("hub", seed=seed)
    SimRpc(node)("setchannel", {"id": "all", "feeppm": fee_ppm})
    notes = node.advance(days * 86400)
    return {p["payment_hash"] for t, p in notes if t == "forward_event"}, node.fees_collected_msat


def test_two_fees_on_one_seed_face_the_same_payments():
    (lo, _), (hi, fees) = _run_fixed(250, 1, 7), _run_fixed(350, 1, 7)
    # nearly every payment that reached us at the higher fee is the same payment at the lower
    # fee (only balances that diverged can make one differ); without common random numbers
    # the two runs would share no payment at all
    assert len(hi & lo) >= 0.9 * len(hi) and len(lo) > len(hi)
    assert _run_fixed(350, 1, 7) == (hi, fees)


def test_noise_floor_one_ppm_moves_net_profit_smoothly():
    nets = [simulate_setter("hub", FixedFee(f), str(f), days=7, seed=1).net_profit_msat
            for f in range(300, 305)]
    steps = [abs(b - a) / a for a, b in zip(nets, nets[1:])]
    assert max(steps) <= 0.005, steps


def test_fixed_fee_in_process_equals_the_static_baseline_under_the_plugin():
    t = typical_ref_fee_ppm(build_node("hub", seed=4))
    plugin = simulate("hub", ROOT / "policies/baselines/static", days=2, seed=4, fair_baselines=True)
    inproc = simulate_setter("hub", FixedFee(t), "fixed", days=2, seed=4)
    assert plugin.params == {"static_fee_ppm": t}
    for key in ("net_profit_msat", "routing_fees_msat", "forwards_settled", "forwards_failed",
                "fee_updates", "cycles"):
        assert getattr(plugin, key) == getattr(inproc, key), key
    assert plugin.channels == inproc.channels


def test_best_fee_maximises_expected_income():
    amounts = [40_000_000]
    best = best_fee_ppm(400, 150, 0, amounts)
    income = lambda p: p / (1 + 2.718281828 ** ((p - 400) / 150))   # noqa: E731
    assert all(income(best) >= income(p) for p in range(0, 2000, 5))
    assert 330 < best < 380      # below the competitor: at 400 half the payments go elsewhere


def test_oracle_beats_fixed_fees_and_reports_capture_through_the_cli():
    oracle = simulate_setter("hub", Oracle(), "oracle", days=3, seed=2)
    for f in (150, 300, 600):
        assert simulate_setter("hub", FixedFee(f), str(f), days=3, seed=2).net_profit_msat < oracle.net_profit_msat
    run = subprocess.run([sys.executable, "-m", "revops.cli", "simulate", "--scenario", "hub", "--days", "1",
                          "--seed", "2", "--policy", str(ROOT / "policies/baselines/static"), "--oracle", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    static, orc = json.loads(run.stdout)["policies"]
    assert orc["policy"] == "oracle" and "upper reference" in orc["note"] and orc["capture"] == 1.0
    assert static["capture"] == round(static["net_profit_msat"] / orc["net_profit_msat"], 4)


def test_the_oracle_prices_each_channels_true_balance():
    node = build_node("hub", seed=2)
    ch = next(c for c in node.channels if c.scid)
    blind, priced = Oracle(), Oracle(balance_curve=1.0)
    market = blind.target_ppm(node, ch)
    fees = {}
    for ratio in (0.1, 0.5, 0.9):
        ch.to_us_msat = int(ch.total_msat * ratio)
        assert blind.target_ppm(node, ch) == market        # the blind oracle ignores balance
        fees[ratio] = priced.target_ppm(node, ch)
    # dearer as the channel drains, cheaper as it fills, the market's price when balanced
    assert fees[0.1] > fees[0.5] > fees[0.9] and abs(fees[0.5] - market) <= 1
    assert abs(fees[0.1] / market - 2.718281828 ** 0.4) < 0.01


def test_the_oracle_keeps_the_default_policys_gossip_budget():
    # a steep balance curve wants a new fee at every cycle on a draining channel; the oracle
    # still sends at most 2 updates per channel in any 24 h, 6 h apart
    sent: list[tuple[str, float]] = []
    oracle = Oracle(balance_curve=3.0)

    def recording(node, rpc, now_s):
        oracle(node, lambda method, params: (sent.append((params["id"], now_s)), rpc(method, params))[1], now_s)

    simulate_setter("hub", recording, "oracle", days=4, seed=2)
    by_scid: dict[str, list[float]] = {}
    for scid, t in sent:
        by_scid.setdefault(scid, []).append(t)
    assert any(len(ts) >= 4 for ts in by_scid.values())      # it did move fees with balance
    for ts in by_scid.values():
        assert all(b - a >= 6 * 3600 for a, b in zip(ts, ts[1:]))
        assert all(sum(1 for u in ts if t <= u < t + 86400) <= 2 for t in ts)


def test_run_oracle_keeps_its_best_balance_curve_in_hindsight():
    best = run_oracle("sink-drain", days=3, seed=2)
    blind = simulate_setter("sink-drain", Oracle(), "oracle", days=3, seed=2)
    curve = best.params["oracle_balance_curve"]
    assert curve in BALANCE_CURVES and best.net_profit_msat >= blind.net_profit_msat
    assert f"balance curve {curve:g}" in best.note and "upper reference" in best.note


def test_param_overrides_turn_rebalancing_off_through_the_plugin():
    # money_table's "default-fees-only" (sink-drain fees alone, issue 14): the default policy
    # with rebalance_enabled set false through revenue-config; the same seed with it on pays
    # for rebalancing, so the override is what stops it
    policy = ROOT / "policies/default"
    off = simulate("sink-drain", policy, days=0.5, seed=3, params={"rebalance_enabled": False})
    on = simulate("sink-drain", policy, days=0.5, seed=3)
    assert off.params == {"rebalance_enabled": False} and on.params == {}
    assert off.rebalance_spend_msat == 0 < on.rebalance_spend_msat
