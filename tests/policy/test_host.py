"""The params revops' code reads (policy/host.py): declared by `requires:`, checked with a location."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from revops.policy.host import FEATURES, HostSettings
from revops.policy.reload import build
from revops.resources import default_policy_dir
from tests.policy.test_cli import revops

ROOT = Path(__file__).resolve().parents[2]


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "p"
    shutil.copytree(default_policy_dir(), folder, ignore=shutil.ignore_patterns("tests"))
    return folder


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _drop_param(path: Path, name: str) -> None:
    """Removes one param block (its name line and the indented lines under it)."""
    out, skipping = [], False
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith(f"  {name}:"):
            skipping = True
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        out.append(line)
    path.write_text("".join(out))


def test_the_docs_table_lists_every_host_param():
    table = {m[1]: re.findall(r"`(\w+)`", m[2]) for m in
             re.finditer(r"^\| `(\w+)` \| (.*) \|$", (ROOT / "docs" / "policy.md").read_text(), re.M)}
    assert {f: [p.name for p in ps] for f, ps in FEATURES.items()} == {f: table.get(f) for f in FEATURES}


def test_a_required_param_dropped_is_an_error_at_the_requires_line(tmp_path):
    folder = _copy(tmp_path)
    _drop_param(folder / "rebalance.yaml", "rebalance_max_jobs")
    run = revops("check", str(folder))
    assert run.returncode == 1
    line = _line_of(folder / "policy.yaml", "requires:")
    assert re.search(rf"policy\.yaml:{line}:\d+: policy_schema_error: requires rebalancer, whose code reads "
                     r"rebalance_max_jobs: declare it under params", run.stdout + run.stderr), run.stdout + run.stderr


def test_a_mistyped_host_param_is_an_error_at_its_declaration(tmp_path):
    folder = _copy(tmp_path)
    path = folder / "rebalance.yaml"
    text = path.read_text()
    declared = ("  wallet_reserve_sat:\n    type: int\n    default: 1000000\n    min: 0\n"
                "    max: 2100000000000000\n")
    assert declared in text
    path.write_text(text.replace(declared, "  wallet_reserve_sat:\n    type: bool\n    default: false\n"))
    run = revops("check", str(folder))
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    line = _line_of(path, "wallet_reserve_sat:") + 1  # its type: line
    assert f"rebalance.yaml:{line}:" in out and "read by revops' code as int; declared as bool" in out, out


def test_an_unknown_feature_is_named_with_the_known_ones(tmp_path):
    folder = _copy(tmp_path)
    root = folder / "policy.yaml"
    root.write_text(root.read_text().replace("requires: [rebalancer,", "requires: [rebalancer, autopilot,"))
    run = revops("check", str(folder))
    assert run.returncode == 1
    assert "unknown host feature 'autopilot' (known: rebalancer, price_learner, wallet_reserve, gossip_budget)" \
        in run.stdout + run.stderr


def test_without_requires_the_old_reading_stays_with_a_lint_warning(tmp_path):
    folder = _copy(tmp_path)
    root = folder / "policy.yaml"
    root.write_text(re.sub(r"^requires:.*\n", "", root.read_text(), flags=re.M))
    run = revops("check", str(folder))
    assert run.returncode == 3, run.stdout + run.stderr  # lint only
    assert "no requires: key" in run.stdout + run.stderr
    host = build(folder).host
    assert host.rebalancer and host.wallet_reserve_sat == build(default_policy_dir()).host.wallet_reserve_sat


def test_a_feature_not_required_runs_on_the_defaults(tmp_path):
    folder = _copy(tmp_path)
    root = folder / "policy.yaml"
    root.write_text(root.read_text().replace("requires: [rebalancer, price_learner, wallet_reserve, gossip_budget]",
                                             "requires: [price_learner, gossip_budget]"))
    assert revops("check", str(folder)).returncode == 0
    host = build(folder).host
    assert not host.rebalancer and host.wallet_reserve_sat == 0
    assert host.gossip_node_budget == build(default_policy_dir()).params["gossip_max_updates_node_day"]


@pytest.mark.parametrize("requires, params, rebalancer", [
    (None, {"rebalance_budget_sat": 1}, True), (None, {}, False), ((), {"rebalance_budget_sat": 1}, False)])
def test_host_settings_of(requires, params, rebalancer):
    host = HostSettings.of(requires, params)
    assert host.rebalancer is rebalancer
    assert host.values["rebalance_budget_sat"] == (1 if rebalancer else 0)
