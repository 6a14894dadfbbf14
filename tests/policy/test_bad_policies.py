"""Every bad policy fixture fails with the code and file:line:col its WANT file names.

The verdict is the one `revops check` prints and `revenue-reload` acts on (tests included);
the crash classes of issue 12 and the late YAML marks of issue 17 are fixtures here too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from revops.policy.reload import build, verdict

FIXTURES = Path(__file__).resolve().parents[1] / "policies"
BAD = sorted(p for p in (FIXTURES / "bad").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", BAD, ids=[p.name for p in BAD])
def test_bad_policy_reports_code_and_location(folder: Path, monkeypatch):
    code, location = (folder / "WANT").read_text().split()
    monkeypatch.chdir(folder)
    judged = verdict(".")
    assert not judged.ok and judged.prepared is None
    first = judged.errors[0]
    assert (first.code, f"{first.file}:{first.line}:{first.col}") == (code, location), \
        "\n".join(map(str, judged.errors))


@pytest.mark.parametrize("folder", BAD, ids=[p.name for p in BAD])
def test_bad_fixture_opens_with_the_code_it_wants(folder: Path):
    """New fixtures say why they are bad on line 1 (older ones predate the rule: WANT only)."""
    code = (folder / "WANT").read_text().split()[0]
    first = (folder / "policy.yaml").read_text(errors="replace").split("\n", 1)[0]
    if first.startswith("#"):
        assert f"want {code}" in first, first


def test_good_policies_build():
    for folder in sorted((FIXTURES / "good").iterdir()):
        prepared = build(folder)
        assert prepared.compiled.rules
        judged = verdict(folder)
        assert judged.ok, judged.errors


def test_check_cli_prints_one_line_per_error_and_exits_1(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    text = (FIXTURES / "good" / "minimal" / "policy.yaml").read_text()
    # two independent errors: both are reported, each on its own line
    text = text.replace("channel.htlc_util >=", "channel.htlc_utl >=").replace("set_fee(100)", "set_fees(100)")
    (folder / "policy.yaml").write_text(text)
    run = subprocess.run([sys.executable, "-m", "revops.cli", "check", str(folder)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2, run.stderr
    assert all(line.startswith(str(folder / "policy.yaml") + ":") or line.startswith("/") or ":" in line
               for line in lines)
    assert "dsl_name_error: unknown fact 'channel.htlc_utl'" in run.stderr
    assert "dsl_name_error: unknown action 'set_fees'" in run.stderr
    assert run.stdout == ""


def test_check_refuses_a_file_of_gigabytes_without_reading_it(tmp_path):
    """A policy folder holding a 3 GB file (a log or an image saved there by mistake; the fuzzer made
    one) is refused from its first bytes, with 256 MB of address space: never read whole."""
    folder = tmp_path / "p"
    folder.mkdir()
    with open(folder / "policy.yaml", "wb") as f:
        f.write(b"apiVersion: revops/v1\n# ")
        f.truncate(3 << 30)  # sparse: costs no disk
    limit = "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20)); " \
            "sys.argv = ['revops', 'check', sys.argv[1]]; runpy.run_module('revops.cli', run_name='__main__')"
    run = subprocess.run([sys.executable, "-c", limit, str(folder)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path.cwd())}, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "policy.yaml:1:1" in run.stderr and "policy_yaml_error" in run.stderr, run.stderr
    assert "a policy file may hold at most 1,048,576 characters" in run.stderr, run.stderr
