"""`revops test --mutate`: mutation testing of a policy, through the CLI and in-process."""

from __future__ import annotations

import json
import shutil

from revops.policy.engine import prepare
from revops.policy.mutate import Mutation, _run_one, policy_mutations, run_mutants
from revops.policy.reload import build
from revops.policy.testing import load_cases
from revops.policy.testing import test_files as policy_test_files
from revops.resources import default_policy_dir

from .test_cli import revops

# A one-rule policy whose single test pins the fee above the threshold only: the boundary
# (loosen >= to >) and the multiplier's literal are left untested on purpose.
POLICY = """apiVersion: revops/v1
version: "1"
stages: [{name: premiums}]
params:
  busy: {type: number, default: 0.5, min: 0, max: 1, doc: busy above this}
rules:
  - id: busy-premium
    stage: premiums
    when: channel.htlc_util >= params.busy and channel.active
    then: set_fee(channel.fee_ppm * 2)
    why: busy
"""


def small_policy(tmp_path, with_tests=True):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "policy.yaml").write_text(POLICY)
    if with_tests:
        (folder / "tests").mkdir()
        shutil.copy(default_policy_dir() / "tests" / "snapshot.json", folder / "tests" / "snapshot.json")
        (folder / "tests" / "t.yaml").write_text("""cases:
  - note: a busy channel pays double
    snapshot: snapshot.json
    facts: {"860000x12x0": {channel.htlc_util: 0.9}}
    want: {"860000x12x0": {fee_ppm: 800}}
  - note: a quiet one does not
    snapshot: snapshot.json
    facts: {"860000x12x0": {channel.htlc_util: 0.1}}
    want: {"860000x12x0": {fee_ppm: 400}}
""")
    return folder


def test_mutate_lists_survivors_with_positions_and_prints_the_kill_ratio(tmp_path):
    folder = small_policy(tmp_path)
    run = revops("test", "--mutate", str(folder))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    # The loosened boundary survives (no case sits at 0.5), and so does dropping
    # `channel.active` (the snapshot's channel is active): both with file:line:col.
    assert f"SURVIVED {folder}/policy.yaml:9:11: busy-premium: when: loosen `channel.htlc_util >= params.busy`" in out
    assert f"SURVIVED {folder}/policy.yaml:9:11: busy-premium: when: drop conjunct `channel.active`" in out
    assert f"{folder}/policy.yaml:9:11: busy-premium: when: flip" not in out      # killed by a case
    assert "remove the rule" not in out                                            # killed
    assert "set_fee: scale `2` -> 4" not in out                                    # 1600 != 800: killed
    assert "killed " in out and "%)" in out
    doc = json.loads(revops("test", "--mutate", "--json", str(folder)).stdout)
    assert 0 < doc["kill_ratio"] < 1 and doc["mutants"] == len(doc["results"])
    assert revops("test", "--mutate", "--min-kill", "0.99", str(folder)).returncode == 1


def test_mutate_without_tests_says_so_and_exits_1(tmp_path):
    folder = small_policy(tmp_path, with_tests=False)
    run = revops("test", "--mutate", str(folder))
    assert run.returncode == 1 and "no test files" in run.stderr


def test_a_crashing_mutant_is_an_engine_bug_not_a_kill(tmp_path):
    prepared = build(small_policy(tmp_path))
    cases, _ = load_cases(policy_test_files(prepared.compiled.source.root))

    def explode(compiled):
        raise KeyError("boom")
    result = _run_one(Mutation("busy-premium", "f", 1, 1, "explode", explode), prepared, cases, "reference")
    assert result.outcome == "crash" and "KeyError" in result.detail


def test_the_default_policy_tests_kill_the_six_broken_rules_of_issue_16():
    prepared = build(default_policy_dir())
    cases, errors = load_cases(policy_test_files(default_policy_dir()))
    assert not errors
    wanted = [
        ("spam-underwater-premium", "drop conjunct `peer.reputation < params.spam_max_reputation`"),
        ("vegas-reflex", "let early: drop conjunct `let.draw < let.boost * 0.5`"),
        ("scarcity-premium", "let ema: scale `params.scarcity_ema_down`"),
        ("one-way-street-premium", "drop conjunct `channel.oneway_out_volume_7d_msat"),
        ("channel-daily-budget", "remove the rule"),
        ("emergency-broadcast", "drop conjunct `channel.htlc_util >= params.congestion_util`"),
    ]
    mutations = policy_mutations(prepared.compiled)
    for rule, what in wanted:
        [m] = [m for m in mutations if m.rule == rule and what in m.what]
        assert _run_one(m, prepared, list(cases), "reference").outcome == "killed", (rule, what)


def test_reload_does_not_run_mutation_testing(tmp_path):
    # build_and_test (reload) runs the cases once; a mutation run is many times that.
    import revops.policy.reload as reload_module
    assert "mutate" not in open(reload_module.__file__).read()
    prepared = prepare(build(small_policy(tmp_path)).compiled)
    report = run_mutants(prepared, policy_test_files(prepared.compiled.source.root))
    assert report.count("crash") == 0 and report.results
