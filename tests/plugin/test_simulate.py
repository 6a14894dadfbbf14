"""`revops simulate`: the real plugin on the simulated node, figures per policy, side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.plugin.conftest import ROOT


def revops(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=timeout)


def test_simulate_json_compares_policies_on_one_seed():
    run = revops("simulate", "--scenario", "hub", "--days", "1", "--seed", "3", "--json",
                 "--compare", str(ROOT / "policies/baselines/static"))
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["seed"] == 3 and len(doc["policies"]) == 2
    default, static = doc["policies"]
    for p in doc["policies"]:
        assert {"policy", "net_profit_msat", "routing_fees_msat", "rebalance_spend_msat", "onchain_cost_msat",
                "fee_updates", "budget_breaches", "forwards_settled", "forwards_failed", "channels"} <= set(p)
        assert p["forwards_settled"] > 0 and len(p["channels"]) >= 40
        assert p["net_profit_msat"] == p["routing_fees_msat"] - p["rebalance_spend_msat"] - p["onchain_cost_msat"]
    # the static baseline sets every channel to its fixed fee once, then never again
    assert {c["fee_ppm_end"] for c in static["channels"] if c["state"] == "CHANNELD_NORMAL"} == {100}
    assert static["fee_updates"] <= len(static["channels"])
    # the default policy's gossip discipline: the first pricing plus at most two routine
    # updates per channel per day (emergencies such as congestion may add a forced one)
    assert default["fee_updates_per_channel_day"] <= 3
    assert max(c["fee_updates"] for c in default["channels"]) <= 4
    # same seed, same market: a second run of the same policy gives the same figures
    again = json.loads(revops("simulate", "--scenario", "hub", "--days", "1", "--seed", "3", "--json").stdout)
    assert again["policies"][0]["routing_fees_msat"] == default["routing_fees_msat"]


def test_simulate_rejects_a_bad_scenario_with_its_location(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "revops/sim/scenarios/hub.yaml").read_text() + "\nnot_a_key: 1\n")
    run = revops("simulate", "--scenario", str(bad), "--days", "1")
    assert run.returncode == 1
    [line] = run.stderr.strip().splitlines()
    assert line.startswith(f"{bad}:") and "scenario_error" in line


def test_fair_baselines_anchor_the_baselines_on_the_scenarios_typical_fee():
    from revops.sim.driver import typical_ref_fee_ppm
    from revops.sim.model_build import build_node
    t = typical_ref_fee_ppm(build_node("hub", seed=3))
    run = revops("simulate", "--scenario", "hub", "--days", "0.5", "--seed", "3", "--json", "--fair-baselines",
                 "--compare", str(ROOT / "policies/baselines/static"), str(ROOT / "policies/baselines/proportional"))
    assert run.returncode == 0, run.stderr
    default, static, proportional = json.loads(run.stdout)["policies"]
    assert default["params"] == {}   # the default policy has none of the baselines' params
    assert static["params"] == {"static_fee_ppm": t}
    assert proportional["params"] == {"prop_min_fee_ppm": t // 4, "prop_max_fee_ppm": t * 7 // 4}
    assert {c["fee_ppm_end"] for c in static["channels"] if c["state"] == "CHANNELD_NORMAL"} == {t}
