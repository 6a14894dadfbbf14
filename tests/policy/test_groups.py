"""groups.yaml (issue 13): groups as facts, overrides by group/peer/channel, pins; through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from revops.facts.build import build_facts
from revops.facts.snapshot import load_snapshot
from revops.policy.groups import glob_pattern
from revops.policy.reload import build

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ROOT / "tests" / "policies" / "good" / "groups"
SNAPSHOT = GROUPS / "tests" / "snapshot.json"
KRAKEN = "02779dd57980292d76499a37d6dc2b02682ff15b5ce8228aa6a0462ff4d284d3ec"


def revops(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


@pytest.mark.parametrize("glob, alias, hit", [
    ("Kraken*", "Kraken 🐙", True), ("Kraken*", "kraken", False), ("bfx-lnd?", "bfx-lnd0", True),
    ("bfx-lnd?", "bfx-lnd01", False), ("LNBig [[]lnd-0[0-9]]", "LNBig [lnd-01]", True),
    ("node[!0-9]", "nodeX", True), ("node[!0-9]", "node7", False), ("a.b*", "axb", False),
])
def test_glob_semantics(glob, alias, hit):
    assert bool(glob_pattern(glob).match(alias)) is hit


@pytest.mark.parametrize("bad", ["Kraken[", "x[]", "x[!]", "[z-a]"])
def test_bad_globs_are_refused(bad):
    assert glob_pattern(bad) is None


def test_group_policy_tests_pass_under_both_matchers():
    run = revops("test", str(GROUPS), "-v")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS: 3/3" in run.stdout


def test_explain_says_which_override_gave_each_param_and_that_a_pin_won():
    run = revops("explain", "--policy", str(GROUPS), "--snapshot", str(SNAPSHOT))
    assert run.returncode == 0, run.stderr
    blocks = {b.split()[0]: b for b in run.stdout.split("\n\n")[1:]}
    assert "param base_fee_ppm = 300 from groups.yaml:13 (peer 02779dd57980…)" in blocks["880001x1234x0"]
    assert "param base_fee_ppm = 444 from groups.yaml:15 (channel 881234x5x0)" in blocks["881234x5x0"]
    assert "param base_fee_ppm = 800 from groups.yaml:9 (group exchanges)" in blocks["890000x55x0"]
    pinned = blocks["860000x12x0"]
    assert "400 ➜ 7 ppm  set_fee  [pin/pin]" in pinned
    assert "won: pinned at 7 ppm by groups.yaml:17 (channel 860000x12x0)" in pinned
    assert "shadowed by pin" in pinned
    doc = json.loads(revops("explain", "--policy", str(GROUPS), "--snapshot", str(SNAPSHOT), "--json").stdout)
    ch = next(c for c in doc["channels"] if c["scid"] == "880001x1234x0")
    assert ch["overrides"] == {"base_fee_ppm": {"value": 300, "from": "groups.yaml:13 (peer 02779dd57980…)"}}
    assert ch["facts"]["groups.exchanges"] is True and ch["facts"]["peer.alias"] == "Kraken 🐙"
    assert doc["policy"]["groups_matching_nothing"] == []


def test_group_by_alias_changes_the_fee_only_when_gossip_names_the_peer():
    """Without listnodes (no aliases) the alias group matches nothing and the fee is the policy's."""
    prepared = build(GROUPS)
    snap = load_snapshot(SNAPSHOT)
    with_alias = {e.decision.scid: e.decision.fee_ppm for e in prepared.evaluate_many(
        build_facts(snap.rpc, snap.captured_at, history=snap.history, states=snap.state), snap.state)}
    rpc = {k: v for k, v in snap.rpc.items() if k != "listnodes"}
    without = {e.decision.scid: e.decision.fee_ppm for e in prepared.evaluate_many(
        build_facts(rpc, snap.captured_at, history=snap.history, states=snap.state), snap.state)}
    assert (with_alias["890000x55x0"], without["890000x55x0"]) == (800, 20)  # exchanges, else friends


def test_a_group_matching_nothing_is_a_lint_line_exit_3(tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(GROUPS, folder)
    text = (folder / "groups.yaml").read_text()
    (folder / "groups.yaml").write_text(text.replace("overrides:", "  nobody: {}\n  ghost:\n    aliases: ["
                                                     "\"an alias far too long to be announced by anyone\"]\n"
                                                     "overrides:"))
    run = revops("check", str(folder))
    assert run.returncode == 3, run.stdout + run.stderr
    assert "policy_lint: group 'nobody' matches nothing" in run.stderr
    assert "longer than 32 bytes and can match no node" in run.stderr
    assert run.stdout.startswith("SUCCESS")


def test_scoped_runtime_overrides_layer_over_the_file(tmp_path):
    """revenue-config's channel:/peer: keys (here through prepare, as the runtime does)."""
    from revops.policy.engine import prepare, resolve_params
    prepared = build(GROUPS)
    snap = load_snapshot(SNAPSHOT)
    facts = build_facts(snap.rpc, snap.captured_at, history=snap.history, states=snap.state)
    layered = prepare(prepared.compiled, {f"peer:{KRAKEN}:base_fee_ppm": 555,
                                          "channel:850123x77x1:pin_fee_ppm": 3})
    fees = {e.decision.scid: (e.decision.fee_ppm, e.values.get("override.base_fee_ppm"))
            for e in layered.evaluate_many(facts, snap.state)}
    assert fees["880001x1234x0"] == (555, f"revenue-config (peer {KRAKEN[:12]}…)")  # runtime peer > file peer
    assert fees["881234x5x0"][0] == 444  # the file's channel override beats a runtime peer one
    assert fees["850123x77x1"][0] == 3   # pinned at runtime
    _, problems = resolve_params(prepared.compiled, {"channel:1x2:base_fee_ppm": 5, "peer:02ab:x": 1,
                                                     "channel:1x2x3:nope": 1, "channel:1x2x3:pin_fee_ppm": -1})
    assert len(problems) == 4, problems
