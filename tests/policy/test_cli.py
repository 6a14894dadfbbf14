"""The `revops` CLI as an operator runs it: a subprocess, exit codes, stdout/stderr."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from revops.resources import default_policy_dir

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "examples" / "snapshot.json"


def revops(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


def test_check_default_policy_succeeds_with_one_summary_line():
    run = revops("check", str(default_policy_dir()))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("SUCCESS: default ") and len(run.stdout.strip().splitlines()) == 1


def test_check_json_and_lint_exit_code(tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(default_policy_dir(), folder)
    (folder / "stray.yaml").write_text("apiVersion: revops/v1\n")
    run = revops("check", str(folder), "--format", "json")
    assert run.returncode == 3
    doc = json.loads(run.stdout)
    assert doc["name"] == "default" and doc["lint"][0]["code"] == "policy_lint"


def test_explain_json_shape_for_one_channel():
    run = revops("explain", "--snapshot", str(SNAPSHOT), "--channel", "860000x12x0", "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert set(doc["policy"]) >= {"name", "version", "api_version", "digest"}
    [ch] = doc["channels"]
    assert ch["scid"] == "860000x12x0" and ch["peer_id"]
    assert set(ch["decision"]) >= {"action", "fee_ppm", "stage", "rule", "broadcast", "suppressed_by"}
    assert ch["decision"]["rule"] == "hill-climb-start"
    assert next(e for e in ch["trace"] if e["rule"] == "scarcity-premium")["outcome"] == "applied"
    rules = {e["rule"]: e for e in ch["trace"]}
    assert rules["defibrillator-start"]["matched"] is False and rules["defibrillator-start"]["reason"]
    assert ch["facts"]["channel.htlc_util"] > 0.8


def test_explain_human_output_shows_old_and_new_fee():
    run = revops("explain", "--snapshot", str(SNAPSHOT), "--channel", "860000x12x0")
    assert run.returncode == 0
    assert "860000x12x0  400 ➜ 488 ppm  set_fee  [discovery/hill-climb-start]" in run.stdout
    assert "✗ defibrillator-start" in run.stdout


def test_explain_unknown_channel_and_bad_snapshot_fail_with_one_line(tmp_path):
    run = revops("explain", "--snapshot", str(SNAPSHOT), "--channel", "1x1x1")
    assert run.returncode == 1 and "no channel 1x1x1" in run.stderr
    truncated = tmp_path / "cut.json"
    truncated.write_text(SNAPSHOT.read_text()[:500])
    run = revops("explain", "--snapshot", str(truncated))
    assert run.returncode == 1
    [line] = run.stderr.strip().splitlines()
    assert line.startswith(f"{truncated}:") and "snapshot_error" in line


def test_test_command_passes_default_and_prints_a_diff_on_failure(tmp_path):
    run = revops("test", str(default_policy_dir()))
    assert run.returncode == 0, run.stdout
    assert re.search(r"PASS: (\d+)/\1\n", run.stdout) and "FAIL" not in run.stdout, run.stdout
    folder = tmp_path / "p"
    shutil.copytree(default_policy_dir(), folder)
    cases = folder / "tests" / "alpha_sequence.yaml"
    cases.write_text(cases.read_text().replace("fee_ppm: 488", "fee_ppm: 489"))
    run = revops("test", str(folder))
    assert run.returncode == 1
    assert "FAIL" in run.stdout and "860000x12x0.fee_ppm: want 489, got 488" in run.stdout


def test_report_scenario_leaves_no_temporary_folders(tmp_path):
    """`revops report --scenario` simulates into a scratch folder and removes it, on success
    and when the simulation fails (issue 12)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)}
    out = tmp_path / "report.html"
    for scenario, code in (("hub", 0), ("no-such-scenario", 1)):
        run = subprocess.run([sys.executable, "-m", "revops.cli", "report", "--scenario", scenario,
                              "--days", "0.2", "-o", str(out)], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == code, run.stderr
        assert list(scratch.iterdir()) == [], scenario
    assert out.stat().st_size > 0


def test_check_runs_the_policy_tests_like_reload(tmp_path):
    """check's verdict includes the policy's tests/ (issue 13): a failing case refuses the folder."""
    folder = tmp_path / "p"
    shutil.copytree(default_policy_dir(), folder)
    run = revops("check", str(folder))
    assert run.returncode == 0 and re.search(r", \d+ tests passed ", run.stdout), run.stdout
    cases = folder / "tests" / "alpha_sequence.yaml"
    cases.write_text(cases.read_text().replace("fee_ppm: 488", "fee_ppm: 489", 1))
    run = revops("check", str(folder))
    assert run.returncode == 1 and run.stdout == ""
    assert re.search(r"alpha_sequence.yaml:\d+:1: policy_test_failure: .*want 489, got 488", run.stderr), run.stderr
    doc = json.loads(revops("check", str(folder), "--format", "json").stdout)
    assert doc["ok"] is False and doc["tests"]["failed"] == 1


def test_check_help_says_it_runs_what_reload_runs():
    run = revops("check", "--help")
    assert "revenue-reload" in run.stdout and "tests/" in run.stdout
