"""Hot reload: build the complete new policy on the side, swap one reference on success.

Every trigger (`revenue-reload`, the file watch, a param override) goes through
`PolicyHolder.reload()` or `PolicyHolder.set_overrides()`, so the outcome is recorded in
one place (`last_reload`). A failed reload leaves `current` untouched; evaluations in
flight keep the PreparedPolicy object they started with (it is immutable).

`verdict()` is the one judgement on a policy folder: `revops check` prints it and
`PolicyHolder.reload()` acts on it, so the two always agree (issue 13). It never raises:
whatever goes wrong is a located diagnostic (issue 12).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from revops.diagnostics import Diagnostic, DiagnosticError
from revops.policy.compile import CompiledPolicy, compile_policy
from revops.policy.engine import PreparedPolicy, prepare, resolve_params
from revops.policy.load import load_policy
from revops.policy.passed import PassedTests


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    at: float
    duration_s: float
    errors: tuple[Diagnostic, ...] = ()
    name: str | None = None
    version: str | None = None
    digest: str | None = None
    changed_rules: Mapping[str, list[str]] = field(default_factory=dict)  # added / removed / changed
    override_problems: tuple[str, ...] = ()
    tests_passed: int = 0
    tests_remembered: bool = False  # a pass on the same inputs stood for the run (policy/passed.py)

    def to_json(self) -> dict:
        return {"ok": self.ok, "at": self.at, "duration_ms": round(self.duration_s * 1000, 1),
                "errors": [str(e) for e in self.errors], "name": self.name, "version": self.version,
                "digest": self.digest, "changed_rules": dict(self.changed_rules),
                "override_problems": list(self.override_problems),
                "tests": {"passed": self.tests_passed, "remembered": self.tests_remembered}}


def build(path: str | Path, overrides: Mapping[str, Any] | None = None,
          fact_types: Mapping[str, str] | None = None) -> PreparedPolicy:
    """Load, validate, compile and prepare the policy at `path`; raise DiagnosticError on any error.

    This is exactly what `revops check` runs.
    """
    compiled = compile_policy(load_policy(path), fact_types)
    return prepare(compiled, overrides)


def build_and_test(path: str | Path, overrides: Mapping[str, Any] | None = None,
                   fact_types: Mapping[str, str] | None = None) -> PreparedPolicy:
    """`build`, then run the policy's own tests/ cases: a policy that fails them is not activated."""
    prepared = build(path, overrides, fact_types)
    run_tests(prepared)
    return prepared


def run_tests(prepared: PreparedPolicy, remembered: PassedTests | None = None,
              fact_types: Mapping[str, str] | None = None):
    """Run the policy's tests/ cases; return the TestReport (None without tests) or raise
    DiagnosticError with one located line per failed case. With `remembered`, a pass recorded
    for the same inputs (policy/passed.py) stands for the run, and a new pass is recorded."""
    from revops.policy.testing import TestReport, run_policy_tests, test_files
    root = prepared.compiled.source.root
    files = test_files(root)
    report = None
    if files:
        key = None
        if remembered is not None:
            key = remembered.key(prepared.compiled.digest, root, prepared.overrides, fact_types, files)
            count = remembered.passed(key, root)
            if count is not None:
                return TestReport([], [], remembered=count)
        report = run_policy_tests(prepared, files)
        if report.ok and key is not None:
            remembered.record(key, report.passed, root, report.inputs)
        if not report.ok:
            diagnostics = list(report.errors)
            for case in report.results:
                if not case.ok:
                    first = case.failures[0].splitlines()[0]
                    more = f" (+{len(case.failures) - 1} more)" if len(case.failures) > 1 else ""
                    diagnostics.append(Diagnostic(case.file, case.line, 1, "policy_test_failure",
                                                  f"{case.note}: {first}{more}"))
            raise DiagnosticError(diagnostics)
    return report


@dataclass(frozen=True)
class Verdict:
    """What `revops check` prints and `revenue-reload` acts on."""

    prepared: PreparedPolicy | None  # None when the policy is refused
    errors: tuple[Diagnostic, ...] = ()
    tests_passed: int = 0
    tests_failed: int = 0
    tests_remembered: bool = False  # passed before on the same inputs, not run again

    @property
    def ok(self) -> bool:
        return self.prepared is not None and not self.errors

    @property
    def lint(self) -> tuple[Diagnostic, ...]:
        return self.prepared.compiled.source.lint if self.prepared else ()


INTERNAL = "policy_internal_error"


def verdict(path: str | Path, overrides: Mapping[str, Any] | None = None,
            fact_types: Mapping[str, str] | None = None, remembered: PassedTests | None = None) -> Verdict:
    """Load, compile, prepare and test the policy at `path` (`remembered`: see run_tests).
    Never raises: an unexpected exception becomes a `policy_internal_error` diagnostic at the
    root file (a bug to report; `bench/fuzz.py` counts them as tracebacks)."""
    try:
        prepared = build(path, overrides, fact_types)
        report = run_tests(prepared, remembered, fact_types)
    except DiagnosticError as err:
        failed = sum(1 for d in err.diagnostics if d.code == "policy_test_failure")
        return Verdict(None, tuple(err.diagnostics), tests_failed=failed)
    except Exception as err:  # noqa: BLE001 -- the backstop: a reload never throws (issue 12)
        return Verdict(None, (internal_diagnostic(path, err),))
    if report is None:
        return Verdict(prepared)
    return Verdict(prepared, tests_passed=report.passed, tests_failed=report.failed,
                   tests_remembered=report.remembered > 0)


def internal_diagnostic(path: str | Path, err: BaseException) -> Diagnostic:
    """An unexpected exception as one located line: where in revops it happened, and why."""
    root = Path(path)
    try:
        root = root / "policy.yaml" if root.is_dir() else root
    except (OSError, ValueError):
        pass
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    message = str(err).replace("\n", " ")
    message = message if len(message) <= 200 else message[:197] + "..."
    return Diagnostic(str(root), 1, 1, INTERNAL, f"{type(err).__name__}{where}: {message}")


def rule_changes(old: CompiledPolicy | None, new: CompiledPolicy) -> dict[str, list[str]]:
    """Which rule ids were added, removed or changed (condition, actions, why, stage, priority)."""
    def signature(rule):
        return (rule.stage.name, rule.priority, rule.when_text.text if rule.when_text else None,
                tuple(a.text.text for a in rule.actions), rule.why.text.text)
    before = {r.id: signature(r) for r in old.rules} if old else {}
    after = {r.id: signature(r) for r in new.rules}
    return {"added": sorted(after.keys() - before.keys()),
            "removed": sorted(before.keys() - after.keys()),
            "changed": sorted(k for k in after.keys() & before.keys() if after[k] != before[k])}


class PolicyHolder:
    """Owns the active PreparedPolicy and the param overrides layered on it."""

    def __init__(self, path: str | Path, overrides: Mapping[str, Any] | None = None,
                 fact_types: Mapping[str, str] | None = None, remembered: PassedTests | None = None):
        self.path = Path(path)
        self.fact_types = fact_types
        self.remembered = remembered  # passes of the policy's tests on the same inputs
        self._overrides = dict(overrides or {})
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self.current: PreparedPolicy | None = None
        self.last_reload: ReloadResult | None = None
        self.last_success: ReloadResult | None = None

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self._overrides)

    def reload(self) -> ReloadResult:
        """Load the policy folder again; swap only if everything validates."""
        with self._lock:
            start = time.perf_counter()
            old = self.current
            judged = verdict(self.path, self._overrides, self.fact_types, self.remembered)
            if not judged.ok:
                return self._record(ReloadResult(False, time.time(), time.perf_counter() - start, judged.errors))
            prepared = judged.prepared
            try:
                _, problems = resolve_params(prepared.compiled, self._overrides)
                changes = rule_changes(old.compiled if old else None, prepared.compiled)
            except Exception as err:  # noqa: BLE001 -- never throw, never swap half-judged
                return self._record(ReloadResult(False, time.time(), time.perf_counter() - start,
                                                 (internal_diagnostic(self.path, err),)))
            self.current = prepared  # the swap: one reference assignment
            compiled = prepared.compiled
            return self._record(ReloadResult(
                True, time.time(), time.perf_counter() - start, (), compiled.name, compiled.version,
                compiled.digest, changes, tuple(problems), judged.tests_passed, judged.tests_remembered))

    def set_overrides(self, overrides: Mapping[str, Any]) -> PreparedPolicy:
        """Re-prepare the active policy with new param overrides and swap it in.

        Raises ValueError naming the problem when an override is unknown or out of range,
        or DiagnosticError when a condition cannot be compiled with the new values; the
        active policy is unchanged in both cases.
        """
        with self._lock:
            if self.current is None:
                raise ValueError("no policy is loaded")
            compiled = self.current.compiled
            _, problems = resolve_params(compiled, overrides)
            if problems:
                raise ValueError("; ".join(problems))
            prepared = prepare(compiled, overrides)
            self._overrides = dict(overrides)
            self.current = prepared
            return prepared

    def _record(self, result: ReloadResult) -> ReloadResult:
        self.last_reload = result
        if result.ok:
            self.last_success = result
        return result
