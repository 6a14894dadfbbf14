"""Policy tests pin the params they assume (issue 13): any param within its range keeps the
shipped tests green; a change of logic still fails them, with the diff."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from revops.policy.engine import prepare
from revops.policy.reload import build
from revops.policy.testing import run_policy_tests
from revops.resources import default_policy_dir

ROOT = Path(__file__).resolve().parents[2]


def revops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


@pytest.mark.parametrize("side", ["min", "max"])
def test_every_param_at_the_end_of_its_range_keeps_the_shipped_tests_green(side):
    """All 85 params at once at their min (or max), as revenue-config overrides would set them."""
    prepared = build(default_policy_dir())
    overrides = {}
    for name, spec in prepared.compiled.source.params.items():
        bound = getattr(spec, side)
        if spec.type in ("number", "int") and bound is not None:
            overrides[name] = bound
        elif spec.type == "bool":
            overrides[name] = not spec.default
    report = run_policy_tests(prepare(prepared.compiled, overrides))
    assert report.ok and report.passed == len(report.results) > 40, [r.failures for r in report.results if not r.ok]


def test_params_yaml_edit_passes_and_a_logic_change_fails_with_the_diff(tmp_path):
    folder = tmp_path / "policy"
    shutil.copytree(default_policy_dir(), folder)
    premiums = folder / "premiums.yaml"
    edited = premiums.read_text().replace("    default: 1.2\n", "    default: 1.5\n", 1)  # hold_premium
    premiums.write_text(edited)
    run = revops("test", str(folder))
    assert run.returncode == 0, run.stdout
    premiums.write_text(edited.replace("then: multiply(params.hold_premium)",
                                       "then: multiply(params.hold_premium * 1.25)"))
    run = revops("test", str(folder))
    assert run.returncode == 1
    assert "fee_ppm: want 488, got 610" in run.stdout, run.stdout


def test_a_pinned_param_the_policy_does_not_have_or_out_of_range_fails_the_case(tmp_path):
    folder = tmp_path / "policy"
    shutil.copytree(default_policy_dir(), folder)
    cases = folder / "tests" / "rebalance.yaml"
    cases.write_text(cases.read_text().replace("params:\n", "params:\n  no_such_param: 1\n", 1).replace("  congestion_util: 0.8\n", "  congestion_util: 7\n", 1))
    run = revops("test", str(folder))
    assert run.returncode == 1
    assert "pinned param 'no_such_param': the policy has no such param" in run.stdout
    assert "pinned param 'congestion_util': 7 is above the maximum 1" in run.stdout


def test_the_shipped_test_files_pin_their_params():
    from revops.policy.yamlsrc import load_yaml
    for name in ("alpha_sequence.yaml", "rebalance.yaml"):
        path = default_policy_dir() / "tests" / name
        doc = load_yaml(path.read_text(), str(path))
        assert len(doc["params"]) >= 15, name
