"""Budget breaches of a simulated run (revops/sim/breaches.py, docs/simulator.md): counted from
what the node saw — fee broadcasts per rolling 24 h, rebalance fees per rolling 24 h."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from revops.sim.breaches import budget_breaches, gossip_breaches, over_rolling_day, rebalance_breaches

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400

# Moves every channel's fee by 50 ppm at every fee cycle (no gossip rule holds it back), over a
# declared budget of one update per channel per day.
RESTLESS = """\
apiVersion: revops/v1
name: restless
version: "1"
description: changes every fee at every cycle, over its own gossip budget

stages:
  - name: safety
  - name: restless

params:
  gossip_max_updates_per_channel_day:
    type: int
    default: 1
    min: 1
    max: 100
    unit: count
    doc: routine fee updates one channel may send in 24 h

rules:
  - id: not-normal-hold
    stage: safety
    when: channel.state != "CHANNELD_NORMAL"
    then: hold()
    why: "channel is {channel.state}: left alone"

  - id: move
    stage: restless
    then: set_fee(channel.fee_ppm + 50)
    why: "always moving"
"""


def test_rolling_day_counts_each_event_that_leaves_the_window_over_the_limit():
    assert over_rolling_day([(0, 1), (100, 1), (200, 1)], 2) == 1
    # an event exactly 24 h after another no longer shares its window
    assert over_rolling_day([(0, 1), (DAY, 1), (2 * DAY, 1)], 1) == 0
    assert over_rolling_day([(0, 1), (DAY - 1, 1), (DAY, 1)], 1) == 2
    assert over_rolling_day([(5, 3), (0, 3)], 5) == 1  # taken in time order


def test_rebalance_spend_over_the_budget_is_a_breach_per_payment():
    events = [{"tag": "rebalance_fee", "timestamp": 0, "debit_msat": 600_000, "credit_msat": 0},
              {"tag": "routed", "timestamp": 10, "credit_msat": 9_000_000, "debit_msat": 0},
              {"tag": "rebalance_fee", "timestamp": 3600, "debit_msat": 500_000, "credit_msat": 0},
              {"tag": "rebalance_fee", "timestamp": DAY + 1, "debit_msat": 400_000, "credit_msat": 0}]
    assert rebalance_breaches(events, 1000) == 1       # 1,100 sat in the first 24 h
    assert rebalance_breaches(events, 1100) == 0
    assert budget_breaches({"rebalance_budget_sat": 1000}, events, []) == 1
    assert budget_breaches({}, events, []) == 0         # no declared budget: nothing checked


def test_gossip_budgets_per_channel_and_node_wide():
    sent = [(0, "a"), (10, "a"), (20, "b"), (30, "a"), (DAY + 40, "a")]
    assert gossip_breaches(sent, per_channel_day=2, node_day=None) == 1   # a's third in 24 h
    assert gossip_breaches(sent, per_channel_day=None, node_day=3) == 1   # the fourth of the node
    assert gossip_breaches(sent, per_channel_day=None, node_day=None) == 0


def test_simulate_counts_the_broadcasts_a_policy_sends_over_its_declared_budget(tmp_path):
    (tmp_path / "restless").mkdir()
    (tmp_path / "restless" / "policy.yaml").write_text(RESTLESS)
    run = subprocess.run([sys.executable, "-m", "revops.cli", "simulate", "--scenario", "hub", "--days", "0.25",
                          "--seed", "3", "--json", "--compare", str(tmp_path / "restless")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert run.returncode == 0, run.stderr
    default, restless = json.loads(run.stdout)["policies"]
    assert default["budget_breaches"] == 0
    # all within one day: every update of a channel after its first is over the budget of 1
    assert restless["fee_updates"] > 2 * len(restless["channels"])
    assert restless["budget_breaches"] == sum(max(0, c["fee_updates"] - 1) for c in restless["channels"])
