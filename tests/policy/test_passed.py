"""A policy's test pass is remembered on the same inputs and stands for the next reload."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from revops.policy import passed as passed_mod
from revops.policy import testing
from revops.policy.passed import PassedTests
from revops.policy.reload import PolicyHolder, verdict
from tests.policy.helpers import BASE_FEE_POLICY as BODY, FACT_TYPES, write_policy

ROOT = Path(__file__).resolve().parents[2]

CASES = """
cases:
  - note: the base fee
    snapshot: snapshot.json
    want: {"880001x1234x0": {fee_ppm: %d}}
"""


@pytest.fixture
def policy(tmp_path):
    folder = write_policy(tmp_path, BODY)
    (folder / "tests").mkdir()
    (folder / "tests" / "cases.yaml").write_text(CASES % 100)
    shutil.copy(ROOT / "examples" / "snapshot.json", folder / "tests" / "snapshot.json")
    return folder


@pytest.fixture
def runs(monkeypatch):
    """Counts the real runs of a policy's tests."""
    count = []
    real = testing.run_policy_tests

    def counted(*a, **k):
        count.append(1)
        return real(*a, **k)
    monkeypatch.setattr(testing, "run_policy_tests", counted)
    return count


def judge(folder, remembered, overrides=None):
    return verdict(folder, overrides, FACT_TYPES, remembered)


def test_a_pass_stands_for_the_next_run_until_an_input_changes(policy, tmp_path, runs):
    remembered = PassedTests(tmp_path / "cache")
    first = judge(policy, remembered)
    assert first.ok and first.tests_passed == 1 and not first.tests_remembered and len(runs) == 1
    again = judge(policy, remembered)
    assert again.ok and again.tests_passed == 1 and again.tests_remembered and len(runs) == 1
    # by content, not by place: a copy of the folder elsewhere (each plugin test's own copy)
    copy = shutil.copytree(policy, tmp_path / "copy")
    assert judge(copy, remembered).tests_remembered and len(runs) == 1
    (copy / "tests" / "snapshot.json").write_text("{}")
    assert not judge(copy, remembered).ok and len(runs) == 2
    # every input of the outcome is part of it: the snapshot a case reads,
    snapshot = policy / "tests" / "snapshot.json"
    snapshot.write_text(snapshot.read_text() + "\n")
    assert not judge(policy, remembered).tests_remembered and len(runs) == 3
    # the test file, the policy, the params it is prepared with
    (policy / "tests" / "cases.yaml").write_text(CASES % 100 + "# edited\n")
    assert not judge(policy, remembered).tests_remembered and len(runs) == 4
    (policy / "policy.yaml").write_text((policy / "policy.yaml").read_text().replace("why: base", "why: the base"))
    assert not judge(policy, remembered).tests_remembered and len(runs) == 5
    assert not judge(policy, remembered, {"base": 100}).tests_remembered and len(runs) == 6
    assert judge(policy, remembered, {"base": 100}).tests_remembered and len(runs) == 6
    # and revops' own code
    passed_mod._code = None
    real = passed_mod.code_fingerprint()
    passed_mod._code = "another build of revops"
    try:
        assert not judge(policy, remembered).tests_remembered and len(runs) == 7
    finally:
        passed_mod._code = real


def test_a_failure_is_never_remembered(policy, tmp_path, runs):
    remembered = PassedTests(tmp_path / "cache")
    (policy / "tests" / "cases.yaml").write_text(CASES % 101)
    for n in (1, 2):
        judged = judge(policy, remembered)
        assert not judged.ok and judged.tests_failed == 1 and len(runs) == n
        assert "fee_ppm: want 101, got 100" in str(judged.errors[0])
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_a_corrupt_or_unwritable_record_only_means_the_tests_run(policy, tmp_path, runs):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    for _ in range(2):
        assert judge(policy, PassedTests(blocked / "cache")).ok
    assert len(runs) == 2
    remembered = PassedTests(tmp_path / "cache")
    judge(policy, remembered)
    for entry in (tmp_path / "cache").iterdir():
        entry.write_text("{not json")
    judged = judge(policy, remembered)
    assert judged.ok and not judged.tests_remembered and len(runs) == 4


def test_the_holder_remembers_and_says_so(policy, tmp_path, runs):
    holder = PolicyHolder(policy, fact_types=FACT_TYPES, remembered=PassedTests(tmp_path / "cache"))
    first, second = holder.reload().to_json(), holder.reload().to_json()
    assert first["tests"] == {"passed": 1, "remembered": False}
    assert second["tests"] == {"passed": 1, "remembered": True} and len(runs) == 1


def test_only_the_newest_records_are_kept(policy, tmp_path, monkeypatch):
    monkeypatch.setattr(passed_mod, "KEEP", 2)
    remembered = PassedTests(tmp_path / "cache")
    for base in (100, 101, 102):
        (policy / "tests" / "cases.yaml").write_text(CASES % base)
        assert judge(policy, remembered, {"base": base}).ok
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    assert judge(policy, remembered, {"base": 102}).tests_remembered


def test_where_it_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("REVOPS_CACHE_DIR", "off")
    assert PassedTests.default().directory is None
    monkeypatch.setenv("REVOPS_CACHE_DIR", str(tmp_path))
    assert PassedTests.default().directory == tmp_path / "policy-tests"
    monkeypatch.delenv("REVOPS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert PassedTests.default().directory == tmp_path / "xdg" / "revops" / "policy-tests"
