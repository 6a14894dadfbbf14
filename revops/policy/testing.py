"""Policy test cases: YAML files in `<policy>/tests/`, run by `revops test` and by reload.

    params: {congestion_multiplier: 2.0}  # optional: params every case of the file assumes
    cases:
      - note: a congested channel is priced up
        snapshot: snapshot.json          # revops-snapshot/1, relative to this file
        params: {congestion_util: 0.5}   # optional param overrides
        state: {"880001x1234x0": {probing: true}}
        facts: {"880001x1234x0": {"channel.htlc_util": 0.9}}   # optional fact patches
        want:
          "880001x1234x0": {action: set_fee, fee_ppm: 500, rule: congestion-surcharge}
        want_trace:
          "880001x1234x0": [{rule: congestion-surcharge, outcome: won}]

Pinned params (the file's `params:` block, then the case's) replace the policy's values,
including runtime overrides, so an operator who changes a param within its range in
params.yaml or with revenue-config does not break the shipped tests, while a change of a
rule's logic still fails them with the diff (issue 13). A pinned param that the policy no
longer declares, or whose value is now out of range, is a failure of the case.

Every case runs under both matchers (durable-rules and the reference interpreter); a
difference between them is a failure too, so compiling never silently changes meaning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from revops.diagnostics import Diagnostic, DiagnosticError
from revops.policy.engine import MATCHERS, PreparedPolicy, prepare
from revops.policy.yamlsrc import YList, YMap, load_yaml, read_policy_file

CASE_KEYS = {"note", "snapshot", "params", "state", "facts", "now", "want", "want_trace"}
FILE_KEYS = {"cases", "params"}


@dataclass
class CaseResult:
    file: str
    line: int
    note: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class TestReport:
    results: list[CaseResult]
    errors: list[Diagnostic]
    inputs: list[Path] = field(default_factory=list)  # the test files and snapshots read
    remembered: int = 0  # cases that passed before on the same inputs, not run (policy/passed.py)

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.ok for r in self.results)

    @property
    def passed(self) -> int:
        return self.remembered + sum(1 for r in self.results if r.ok)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed


def test_files(policy_dir: Path) -> list[Path]:
    tests = policy_dir / "tests"
    return sorted(tests.glob("*.yaml")) if tests.is_dir() else []


@dataclass
class LoadedCase:
    """One test case with its inputs built: the facts and states its decisions are made from."""

    case: YMap
    result: CaseResult  # a fresh copy is checked per run (see `fresh_result`)
    facts: list
    states: dict
    params: dict  # the params it pins: its file's, then its own

    def fresh_result(self) -> CaseResult:
        return CaseResult(self.result.file, self.result.line, self.result.note, list(self.result.failures))


def load_cases(files: list[Path], read: list[Path] | None = None) -> tuple[list[LoadedCase], list[Diagnostic]]:
    """Read every case of the test files and build its facts once (cases that cannot load
    carry a failure); `read` collects the snapshot files read."""
    from revops.facts.build import build_facts
    from revops.facts.snapshot import load_snapshot

    loaded: list[LoadedCase] = []
    errors: list[Diagnostic] = []
    # Most cases share one snapshot, and many its time and state too: read each snapshot once
    # and build facts once per (snapshot, now, state). Both are pure and never changed after.
    snapshots: dict[Path, object] = {}  # path -> Snapshot, or the DiagnosticError it raised
    built: dict[tuple, list] = {}
    for file in files:
        try:
            doc = load_yaml(read_policy_file(file, str(file)), str(file))
        except DiagnosticError as err:
            errors.extend(err.diagnostics)
            continue
        is_map = isinstance(doc, YMap)
        unknown = [k for k in doc if k not in FILE_KEYS] if is_map else []
        file_params = (doc.get("params") or {}) if is_map else {}
        if unknown or not isinstance(file_params, dict):
            at = doc.key_pos[unknown[0]] if unknown else doc.pos("params")
            why = f"unknown key {unknown[0]!r} (a test file holds cases and params)" if unknown \
                else "params must be a mapping of param name -> value"
            errors.append(Diagnostic(at.file, at.line, at.col, "policy_test_error", why))
            continue
        cases = doc.get("cases") if isinstance(doc, YMap) else None
        if not isinstance(cases, YList):
            errors.append(Diagnostic(str(file), 1, 1, "policy_test_error", "a test file needs a list under `cases`"))
            continue
        for i, case in enumerate(cases):
            pos = cases.pos(i)
            if not isinstance(case, YMap):
                errors.append(Diagnostic(pos.file, pos.line, pos.col, "policy_test_error", "a case must be a mapping"))
                continue
            bad = [k for k in case if k not in CASE_KEYS]
            if bad or "snapshot" not in case or "want" not in case:
                why = f"unknown key {bad[0]!r}" if bad else "a case needs `snapshot` and `want`"
                errors.append(Diagnostic(pos.file, pos.line, pos.col, "policy_test_error", why))
                continue
            result = CaseResult(pos.file, pos.line, str(case.get("note", f"case {i + 1}")))
            path = file.parent / case["snapshot"]
            if path not in snapshots:
                if read is not None:
                    read.append(path)
                try:
                    snapshots[path] = load_snapshot(path)
                except DiagnosticError as err:
                    snapshots[path] = err
            snapshot = snapshots[path]
            if isinstance(snapshot, DiagnosticError):
                result.failures.append(str(snapshot))
                loaded.append(LoadedCase(case, result, [], {}, {}))
                continue
            # A case's state patches the snapshot's, channel by channel, as its facts do.
            states = {scid: dict(st) for scid, st in snapshot.state.items()}
            for scid, patch in (case.get("state") or {}).items():
                states[scid] = {**states.get(scid, {}), **patch}
            now = float(case.get("now", snapshot.captured_at))
            key = (path, now, repr(states))  # repr tells 1, 1.0 and True apart
            if key not in built:
                built[key] = build_facts(snapshot.rpc, now, history=snapshot.history, states=states,
                                         rebalance=snapshot.rebalance, price=snapshot.price)
            facts = built[key]
            patches = case.get("facts") or {}
            facts = [replace(f, values={**f.values, **patches.get(f.scid, {})}) for f in facts]
            loaded.append(LoadedCase(case, result, facts, states, {**file_params, **(case.get("params") or {})}))
    return loaded, errors


def run_case(loaded: LoadedCase, prepared: PreparedPolicy, matchers=MATCHERS, cache: dict | None = None) -> CaseResult:
    """Check one loaded case against `prepared` with the case's pinned params layered on
    (`cache` shares the pinned policies between the cases of one run)."""
    result = loaded.fresh_result()
    if result.failures:
        return result
    problems = _pin_problems(prepared, loaded.params)
    if problems:
        result.failures.extend(problems)
        return result
    try:
        case_policy = _with_pins(prepared, loaded.params, {} if cache is None else cache)
    except DiagnosticError as err:
        result.failures.append(str(err))
        return result
    _check_case(loaded.case, loaded.facts, loaded.states, case_policy, result, matchers)
    return result


def run_policy_tests(prepared: PreparedPolicy, files: list[Path] | None = None) -> TestReport:
    """Run every case of the policy's test files against `prepared` (its params are the base)."""
    files = test_files(prepared.compiled.source.root) if files is None else files
    snapshots: list[Path] = []
    loaded, errors = load_cases(files, snapshots)
    cache: dict = {}  # pinned params -> prepared policy: most cases of a file share their pins
    return TestReport([run_case(case, prepared, cache=cache) for case in loaded], errors, [*files, *snapshots])


def _check_case(case, facts, states, policy: PreparedPolicy, result: CaseResult, matchers=MATCHERS) -> None:
    explain = bool(case.get("want_trace"))

    def decide(matcher: str, facts: list, explain: bool) -> dict:
        return {e.decision.scid: e for e in policy.evaluate_many(facts, states, matcher=matcher, explain=explain,
                                                                 keep_trace=explain)}

    def with_peers(scids) -> list:  # these channels and their peers' others (decided together)
        wanted = set(scids)
        peers = {f.peer_id for f in facts if f.scid in wanted}
        return [f for f in facts if f.peer_id in peers]

    if len(matchers) == 1:  # mutation runs: only the channels the case looks at
        facts = with_peers([*(case.get("want") or {}), *(case.get("want_trace") or {})])
        by_matcher = {matchers[0]: decide(matchers[0], facts, explain)}
        traced = by_matcher[matchers[0]]
    else:
        # A decision never depends on the trace, and explaining every rule of every channel
        # was most of the run: the matchers decide every channel without a trace, and only
        # the channels want_trace names are decided again, with one, by the first matcher.
        by_matcher = {m: decide(m, facts, False) for m in matchers}
        traced = decide(matchers[0], with_peers(case["want_trace"]), True) if explain else {}
        for scid, evaluation in traced.items():  # cannot differ; say so if it ever does
            untraced = by_matcher[matchers[0]][scid].decision
            if evaluation.decision != untraced:
                result.failures.append(f"{scid}: decided differently when traced:\n"
                                       f"      untraced: {json.dumps(untraced.to_json())}\n"
                                       f"      traced:   {json.dumps(evaluation.decision.to_json())}")
    for scid, evaluation in by_matcher[matchers[0]].items():
        other = by_matcher[matchers[-1]][scid]
        if evaluation.decision != other.decision:
            result.failures.append(f"{scid}: durable-rules and the reference interpreter disagree:\n"
                                   f"      durable:   {json.dumps(evaluation.decision.to_json())}\n"
                                   f"      reference: {json.dumps(other.decision.to_json())}")
    decisions = by_matcher[matchers[0]]
    for scid, want in (case.get("want") or {}).items():
        if scid not in decisions:
            result.failures.append(f"{scid}: no such channel in the snapshot")
            continue
        got = decisions[scid].decision.to_json()
        for key, expected in want.items():
            if key not in got:
                result.failures.append(f"{scid}: unknown decision field {key!r}")
            elif got[key] != expected:
                result.failures.append(f"{scid}.{key}: want {json.dumps(expected)}, got {json.dumps(got[key])}")
    for scid, wanted_events in (case.get("want_trace") or {}).items():
        trace = {e["rule"]: e for e in traced[scid].trace} if scid in traced else {}
        for wanted in wanted_events:
            event = trace.get(wanted.get("rule"))
            if event is None:
                result.failures.append(f"{scid}: no trace event for rule {wanted.get('rule')!r}")
                continue
            for key, expected in wanted.items():
                if event.get(key) != expected:
                    result.failures.append(f"{scid} trace {wanted['rule']}.{key}: want {json.dumps(expected)}, "
                                           f"got {json.dumps(event.get(key))}")


def format_report(report: TestReport, verbose: bool = False) -> str:
    """Human output in the style of `opa test`: failures with their diff, then a summary."""
    lines = [str(e) for e in report.errors]
    for r in report.results:
        if not r.ok:
            lines.append(f"FAIL {r.file}:{r.line}: {r.note}")
            lines.extend(f"    {f}" for f in r.failures)
        elif verbose:
            lines.append(f"PASS {r.file}:{r.line}: {r.note}")
    lines.append("-" * 60)
    lines.append(f"PASS: {report.passed}/{len(report.results)}" + (f"   FAIL: {report.failed}" if report.failed else "")
                 + (f"   ERROR: {len(report.errors)}" if report.errors else ""))
    return "\n".join(lines)


def _pin_problems(prepared: PreparedPolicy, pinned: dict) -> list[str]:
    """Why the pinned params cannot be used: unknown to the policy or out of its range."""
    problems = []
    declared = prepared.compiled.source.params
    for name, value in pinned.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(f"pinned param {name!r}: the policy has no such param")
            continue
        _, why = spec.check(value)
        if why:
            problems.append(f"pinned param {name!r}: {why}")
    return problems


def _with_pins(prepared: PreparedPolicy, pinned: dict, cache: dict) -> PreparedPolicy:
    """The policy with the pinned params over its own values (runtime overrides included)."""
    if not pinned:
        return prepared
    key = tuple(sorted((k, json.dumps(v)) for k, v in pinned.items()))
    if key not in cache:
        cache[key] = prepare(prepared.compiled, {**prepared.overrides, **pinned})
    return cache[key]
