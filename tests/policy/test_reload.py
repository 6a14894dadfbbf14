"""Hot reload: atomic swap on success, old policy kept on any failure, overrides validated."""

from __future__ import annotations

import shutil
import threading

import pytest

from revops.diagnostics import DiagnosticError
from revops.policy.reload import PolicyHolder
from revops.resources import default_policy_dir
from tests.policy.helpers import FACT_TYPES, channel, write_policy

BODY = """
params:
  base: {type: int, default: 100, min: 1, max: 5000, doc: base fee}
rules:
  - id: base
    stage: discovery
    then: set_fee(params.base)
    why: base
"""


def test_failed_reload_keeps_the_running_policy(tmp_path):
    folder = write_policy(tmp_path, BODY)
    holder = PolicyHolder(folder, fact_types=FACT_TYPES)
    first = holder.reload()
    assert first.ok and first.changed_rules["added"] == ["base"]
    active = holder.current
    (folder / "policy.yaml").write_text((folder / "policy.yaml").read_text().replace("set_fee(params.base)",
                                                                                   "set_fee(params.bse)"))
    result = holder.reload()
    assert not result.ok
    assert [d.code for d in result.errors] == ["dsl_name_error"]
    assert holder.current is active and holder.last_success is first
    assert holder.current.evaluate(channel()).decision.fee_ppm == 100


def test_successful_reload_swaps_and_reports_changed_rules(tmp_path):
    folder = write_policy(tmp_path, BODY)
    holder = PolicyHolder(folder, fact_types=FACT_TYPES)
    holder.reload()
    old = holder.current
    (folder / "policy.yaml").write_text((folder / "policy.yaml").read_text().replace("set_fee(params.base)",
                                                                                   "set_fee(params.base * 2)"))
    result = holder.reload()
    assert result.ok and result.changed_rules == {"added": [], "removed": [], "changed": ["base"]}
    assert result.digest != old.compiled.digest
    # an evaluation that started on the old snapshot finishes on it
    assert old.evaluate(channel()).decision.fee_ppm == 100
    assert holder.current.evaluate(channel()).decision.fee_ppm == 200


def test_overrides_are_typed_range_checked_and_reported_after_reload(tmp_path):
    folder = write_policy(tmp_path, BODY)
    holder = PolicyHolder(folder, fact_types=FACT_TYPES)
    holder.reload()
    with pytest.raises(ValueError, match="above the maximum"):
        holder.set_overrides({"base": 9000})
    with pytest.raises(ValueError, match="no such param"):
        holder.set_overrides({"nope": 1})
    assert holder.current.params["base"] == 100
    holder.set_overrides({"base": "250"})
    assert holder.current.params["base"] == 250
    assert holder.current.evaluate(channel()).decision.fee_ppm == 250
    # the reloaded policy drops the param: the override is reported, not silently kept
    (folder / "policy.yaml").write_text((folder / "policy.yaml").read_text()
                                        .replace("params.base", "100").replace("  base: {type: int", "  other: {type: int"))
    result = holder.reload()
    assert result.ok and result.override_problems == ("override of 'base' ignored: the policy has no such param",)


def test_reload_runs_the_policy_tests_and_refuses_a_policy_that_fails_them(tmp_path):
    folder = tmp_path / "default"
    shutil.copytree(default_policy_dir(), folder)
    holder = PolicyHolder(folder)
    assert holder.reload().ok
    premiums = folder / "premiums.yaml"
    premiums.write_text(premiums.read_text().replace("default: 1.2\n", "default: 1.5\n", 1))
    result = holder.reload()
    assert not result.ok
    assert result.errors[0].code == "policy_test_failure"
    assert "fee_ppm: want 488, got 610" in result.errors[0].message


def test_concurrent_evaluations_during_reloads_see_whole_snapshots(tmp_path):
    folder = write_policy(tmp_path, BODY)
    holder = PolicyHolder(folder, fact_types=FACT_TYPES)
    holder.reload()
    seen = set()
    stop = threading.Event()

    def evaluate():
        while not stop.is_set():
            policy = holder.current
            fees = {e.decision.fee_ppm for e in policy.evaluate_many([channel(f"{i}x1x0") for i in range(20)])}
            assert len(fees) == 1  # never a mix of two param sets
            seen.update(fees)

    worker = threading.Thread(target=evaluate)
    worker.start()
    for value in (150, 300, 450, 600):
        holder.set_overrides({"base": value})
        holder.reload()
    stop.set()
    worker.join(timeout=10)
    assert seen <= {100, 150, 300, 450, 600}


def test_override_that_makes_a_condition_uncompilable_is_refused(tmp_path):
    body = BODY.replace("params:\n", "params:\n  k: {type: number, default: 2, min: -10, max: 10, doc: divisor}\n")
    folder = write_policy(tmp_path, body + """
  - id: scaled
    stage: safety
    when: channel.fee_ppm / params.k > 100
    then: hold()
    why: scaled
""")
    holder = PolicyHolder(folder, fact_types=FACT_TYPES)
    assert holder.reload().ok
    active = holder.current
    with pytest.raises(DiagnosticError, match="dsl_compile_error"):
        holder.set_overrides({"k": 0})
    assert holder.current is active
    holder.set_overrides({"k": -1})  # a negative divisor flips the comparison
    assert holder.current.evaluate(channel(channel__fee_ppm=50)).decision.rule == "base"


def test_reloads_start_no_threads(tmp_path):
    # durable-rules' own Host starts two timer threads per instance; we drive the engine
    # directly, so a node that reloads its policy all day keeps a flat thread count.
    folder = write_policy(tmp_path, BODY)
    holder = PolicyHolder(folder, fact_types=FACT_TYPES)
    holder.reload()
    before = threading.active_count()
    for value in range(20):
        holder.reload()
        holder.set_overrides({"base": 100 + value})
        holder.current.evaluate(channel())
    assert threading.active_count() == before
