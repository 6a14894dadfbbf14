"""Hot reload: atomic swap on success, old policy kept on any failure, overrides validated."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

from revops.diagnostics import DiagnosticError
from revops.policy.reload import PolicyHolder
from revops.resources import default_policy_dir
from tests.policy.helpers import BASE_FEE_POLICY as BODY, FACT_TYPES, channel, write_policy

ROOT = Path(__file__).resolve().parents[2]



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
    # Issue 13: the shipped tests pin the params they assume, so a param edit within its
    # range reloads; a change of a rule's logic is what they refuse, with the diff.
    assert holder.reload().ok
    premiums.write_text(premiums.read_text().replace("then: multiply(params.hold_premium)",
                                                     "then: multiply(params.hold_premium * 1.25)"))
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


# -- one verdict: `revops check` and `revenue-reload` agree (issue 13), a reload never throws (issue 12)

FIXTURES = Path(__file__).resolve().parents[1] / "policies"
FOLDERS = [default_policy_dir()] + sorted(p for kind in ("good", "bad") for p in (FIXTURES / kind).iterdir())
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>\w+): ")


def _verdict_key(file: str, line, col, code: str) -> tuple:
    return (os.path.basename(file), int(line), int(col), code)


@pytest.fixture(scope="module")
def cli_verdicts():
    """`revops check --format json` once over every folder, as an operator runs it."""
    run = subprocess.run([sys.executable, "-m", "revops.cli", "check", "--format", "json", *map(str, FOLDERS)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert run.returncode == 1, run.stderr  # some folders are bad
    docs = json.loads(run.stdout)
    assert len(docs) == len(FOLDERS)
    return {doc["policy"]: doc for doc in docs}


@pytest.fixture(scope="module")
def reload_node():
    from tests.plugin.conftest import Node
    workdir = Path(tempfile.mkdtemp(prefix="rvt"))  # short: unix socket paths are limited
    node = Node(workdir, options={"revenue-ops-metrics-listen": "127.0.0.1:0"})
    node.start()
    yield node
    node.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _scrape(node) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families
    body = urllib.request.urlopen(f"http://{node.call('revenue-status')['metrics']}/metrics", timeout=5).read()
    return {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples
            if s.name.startswith("revops_policy_")}


@pytest.mark.parametrize("folder", FOLDERS, ids=[f"{p.parent.name}/{p.name}" for p in FOLDERS])
def test_check_and_revenue_reload_give_one_verdict(folder, cli_verdicts, reload_node):
    from revops.sim.errors import RpcError
    node = reload_node
    before = node.call("revenue-status")["policy"]
    metrics_before = _scrape(node)
    shutil.rmtree(node.policy_dir)
    shutil.copytree(folder, node.policy_dir)  # symlinked snapshots are copied as files
    try:
        reply = node.call("revenue-reload")
        reload_ok, reload_errors = True, set()
    except RpcError as err:
        lines = err.message.splitlines()
        assert lines[0] == "policy not reloaded, previous policy kept:", err.message
        reload_ok, reload_errors = False, {_verdict_key(*LINE.match(l).group("file", "line", "col", "code"))
                                           for l in lines[1:]}
    check = cli_verdicts[str(folder)]
    assert reload_ok == check["ok"]
    assert reload_errors == {_verdict_key(e["file"], e["line"], e["col"], e["code"]) for e in check.get("errors", [])}
    assert all(code != "policy_internal_error" for *_, code in reload_errors)

    status = node.call("revenue-status")  # the plugin is alive and says what happened
    assert status["last_reload"]["ok"] == reload_ok
    metrics = _scrape(node)
    assert metrics["revops_policy_last_reload_successful"] == (1 if reload_ok else 0)
    assert metrics["revops_policy_reload_duration_seconds_count"] == \
        metrics_before["revops_policy_reload_duration_seconds_count"] + 1  # every attempt counts
    if reload_ok:
        assert reply["digest"] == check["digest"] == status["policy"]["digest"]
    else:
        assert status["policy"]["digest"] == before["digest"]  # the old policy stays
        assert metrics["revops_policy_last_reload_success_timestamp_seconds"] == \
            metrics_before["revops_policy_last_reload_success_timestamp_seconds"]


def test_auto_reload_refuses_billion_laughs_fast_and_keeps_the_policy():
    """A 600-byte file of nested aliases (1.5 GB and 20 s to expand before) is refused at its
    first anchor by the file watch as by revenue-reload; the plugin keeps answering."""
    from tests.plugin.conftest import Node
    workdir = Path(tempfile.mkdtemp(prefix="rvt"))
    node = Node(workdir, options={"revenue-ops-sim-clock": "0", "revenue-ops-auto-reload": "true",
                                  "revenue-ops-metrics-listen": "127.0.0.1:0"})
    ld = node.start()
    try:
        digest = node.call("revenue-status")["policy"]["digest"]
        before = _scrape(node)
        laughs = (FIXTURES / "bad" / "billion_laughs" / "policy.yaml").read_text()
        anchors = laughs[laughs.index("a: &a"):laughs.index("rules:")]
        params = node.policy_dir / "params.yaml"
        nested = "".join(f"  {line}\n" for line in anchors.strip().splitlines())  # under one key
        params.write_text(params.read_text().replace("params:\n", f"lols:\n{nested}params:\n", 1))
        ld.wait_for_log(r"policy reload failed \(file change\)", timeout_s=20)
        ld.wait_for_log(r"params.yaml:\d+:\d+: policy_yaml_error: YAML anchors and aliases", timeout_s=5)
        status = node.call("revenue-status")
        assert status["last_reload"]["ok"] is False and status["policy"]["digest"] == digest
        after = _scrape(node)
        assert after["revops_policy_last_reload_successful"] == 0
        attempts = after["revops_policy_reload_duration_seconds_count"] - before["revops_policy_reload_duration_seconds_count"]
        spent_s = after["revops_policy_reload_duration_seconds_sum"] - before["revops_policy_reload_duration_seconds_sum"]
        assert attempts == 1 and spent_s < 1.0
    finally:
        node.stop()
        shutil.rmtree(workdir, ignore_errors=True)
