"""Mutation testing of a policy: do its own tests notice when one rule is broken?

`revops test --mutate DIR` makes one small change at a time to the compiled policy, in
memory (no files are written or parsed again), runs the policy's tests against each
mutant and lists the mutants no test noticed (the survivors), with file:line:col:

    flip       a comparison turned round (`a >= b` -> `a < b`), `in` <-> `not in`
    loosen     a comparison's boundary moved (`>=` -> `>`, `<` -> `<=`, ...)
    drop       one conjunct of an `and`, or one alternative of an `or`, left out
    scale      a number literal or a numeric param use doubled (0 -> 1, a zero param + 1)
    remove     one action of a rule with several, or the whole rule

A mutant that makes the engine refuse the policy with a clean diagnostic (say a
dsl_compile_error when a flipped comparison can no longer be lowered) is killed; any other
exception is a crash, reported as a bug in the engine, never counted as killed. Reload
never runs this: it is for policy authors.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from revops.diagnostics import DiagnosticError
from revops.policy.compile import CompiledAction, CompiledPolicy, CompiledRule
from revops.policy.dsl import And, Arith, Call, Compare, In, Neg, Node, Not, Num, Or, Ref, parse_condition
from revops.policy.engine import PreparedPolicy, prepare
from revops.policy.interp import compile_expr
from revops.policy.model import DslText
from revops.policy.testing import LoadedCase, load_cases, run_case

_FLIP = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_LOOSEN = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}


@dataclass(frozen=True)
class Mutation:
    """One change to one rule, and where it stands in the policy's files."""

    rule: str
    file: str
    line: int
    col: int
    what: str
    build: Callable[[CompiledPolicy], CompiledPolicy]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class MutantResult:
    mutation: Mutation
    outcome: str  # killed | diagnostic | survived | crash
    detail: str = ""  # the case that killed it, the diagnostic, or the crash


@dataclass
class MutationReport:
    results: list[MutantResult]
    cases: int
    matcher: str
    seconds: float

    def count(self, *outcomes: str) -> int:
        return sum(1 for r in self.results if r.outcome in outcomes)

    @property
    def kill_ratio(self) -> float:
        return self.count("killed", "diagnostic") / len(self.results) if self.results else 1.0


# -- expression mutations ------------------------------------------------------------------

def _source(node: Node, text: str) -> str:
    return text[node.span.start:node.span.end]


def _node_variants(node, text: str, params: dict) -> Iterator[tuple[str, object]]:
    """(description, replacement) for the mutations of this node itself."""
    if isinstance(node, Compare):
        yield f"flip `{_source(node, text)}` to `{node.op}` -> `{_FLIP[node.op]}`", replace(node, op=_FLIP[node.op])
        if node.op in _LOOSEN:
            yield f"loosen `{_source(node, text)}`: `{node.op}` -> `{_LOOSEN[node.op]}`", replace(node, op=_LOOSEN[node.op])
    elif isinstance(node, In):
        yield f"flip `{_source(node, text)}` (`in` <-> `not in`)", replace(node, negated=not node.negated)
    elif isinstance(node, (And, Or)):
        word = "conjunct" if isinstance(node, And) else "alternative"
        for i, item in enumerate(node.items):
            rest = node.items[:i] + node.items[i + 1:]
            yield f"drop {word} `{_source(item, text)}`", rest[0] if len(rest) == 1 else replace(node, items=rest)
    elif isinstance(node, Num):
        value = 1 if node.value == 0 else node.value * 2
        yield f"scale `{_source(node, text)}` -> {value:g}", replace(node, value=value)
    elif isinstance(node, Ref) and node.path[0] == "params" and node.path[1] in params:
        spec = params[node.path[1]]
        if spec.type in ("number", "int"):
            if spec.default == 0:
                yield f"scale `{node.name}` -> {node.name} + 1", Arith(node.span, "+", node, Num(node.span, 1))
            else:
                yield f"scale `{node.name}` -> {node.name} x 2", Arith(node.span, "*", node, Num(node.span, 2))


def _fields(node) -> list[tuple[str, object]]:
    """The child fields of a node: (field name, child or tuple of children)."""
    if isinstance(node, (Arith, Compare)):
        return [("left", node.left), ("right", node.right)]
    if isinstance(node, (Neg, Not)):
        return [("operand", node.operand)]
    if isinstance(node, In):
        return [("operand", node.operand), ("items", node.items)]
    if isinstance(node, (And, Or)):
        return [("items", node.items)]
    if isinstance(node, Call):
        return [("args", node.args)]
    return []


def mutate_tree(node, text: str, params: dict) -> Iterator[tuple[Node, str, object]]:
    """Every single-change mutant of an expression: (mutated node, description, new root)."""
    for what, new in _node_variants(node, text, params):
        yield node, what, new
    for name, child in _fields(node):
        if isinstance(child, tuple):
            for i, item in enumerate(child):
                for at, what, new in mutate_tree(item, text, params):
                    yield at, what, replace(node, **{name: child[:i] + (new,) + child[i + 1:]})
        else:
            for at, what, new in mutate_tree(child, text, params):
                yield at, what, replace(node, **{name: new})


# -- rule mutations ------------------------------------------------------------------------

def _swap_rule(rule_id: str, make: Callable[[CompiledRule], CompiledRule | None]):
    def build(compiled: CompiledPolicy) -> CompiledPolicy:
        rules = []
        for rule in compiled.rules:
            if rule.id == rule_id:
                rule = make(rule)
            if rule is not None:
                rules.append(rule)
        return replace(compiled, rules=tuple(rules))
    return build


def _located(rule: CompiledRule, text: DslText, node: Node, what: str, build) -> Mutation:
    line, col = text.locate(node.span.line, node.span.col)
    return Mutation(rule.id, text.pos.file, line, col, what, build)


def _with_lets(rule: CompiledRule, lets: tuple) -> CompiledRule:
    actions = tuple(replace(a, lets=lets) for a in rule.actions)
    return replace(rule, actions=actions, why=replace(rule.why, lets=lets))


def _compiled_lets(rule_id: str, parsed: list[tuple[str, object]]) -> tuple:
    return tuple((f"let.{rule_id}.{name}", compile_expr(expr, rule_id)) for name, expr in parsed)


def _with_arg(action: CompiledAction, i: int, new_arg, rule_id: str) -> CompiledAction:
    args = action.args[:i] + (new_arg,) + action.args[i + 1:]
    fns = action.fns[:i] + (compile_expr(new_arg, rule_id),) + action.fns[i + 1:]
    return replace(action, args=args, fns=fns)


def rule_mutations(compiled: CompiledPolicy, rule: CompiledRule) -> Iterator[Mutation]:
    """Every mutation of one rule, in source order of kind: when, lets, actions, removals."""
    params = compiled.source.params
    if rule.when is not None:
        for at, what, new in mutate_tree(rule.when, rule.when_text.text, params):
            yield _located(rule, rule.when_text, at, f"when: {what}",
                           _swap_rule(rule.id, lambda r, new=new: replace(r, when=new)))
    source = next(r for r in compiled.source.rules if r.id == rule.id)
    parsed = [(name, parse_condition(text.text)) for name, text in source.lets]
    for i, (name, text) in enumerate(source.lets):
        for at, what, new in mutate_tree(parsed[i][1], text.text, params):
            lets = parsed[:i] + [(name, new)] + parsed[i + 1:]
            yield _located(rule, text, at, f"let {name}: {what}",
                           _swap_rule(rule.id, lambda r, lets=lets: _with_lets(r, _compiled_lets(r.id, lets))))
    for j, action in enumerate(rule.actions):
        for i, (spec, arg) in enumerate(zip(action.spec.args, action.args)):
            if spec.kind in ("flag", "state"):
                continue
            for at, what, new in mutate_tree(arg, action.text.text, params):
                def make(r, j=j, i=i, new=new):
                    actions = list(r.actions)
                    actions[j] = _with_arg(actions[j], i, new, r.id)
                    return replace(r, actions=tuple(actions))
                yield _located(rule, action.text, at, f"{action.spec.name}: {what}", _swap_rule(rule.id, make))
    if len(rule.actions) > 1:
        for j, action in enumerate(rule.actions):
            yield _located(rule, action.text, action.node, f"remove action `{_source(action.node, action.text.text)}`",
                           _swap_rule(rule.id, lambda r, j=j: replace(r, actions=r.actions[:j] + r.actions[j + 1:])))
    yield Mutation(rule.id, rule.file, rule.line, 1, "remove the rule", _swap_rule(rule.id, lambda r: None))


def policy_mutations(compiled: CompiledPolicy) -> list[Mutation]:
    """Every mutation of every rule, rule by rule in precedence order."""
    return [m for rule in compiled.rules for m in rule_mutations(compiled, rule)]


# -- running -------------------------------------------------------------------------------

class NoTestsError(Exception):
    """The policy has no tests (or its own tests fail): mutation testing means nothing then."""


def run_mutants(prepared: PreparedPolicy, files, matcher: str = "reference",
                progress: Callable[[int, int], None] | None = None) -> MutationReport:
    """Run the policy's tests against every mutant of `prepared`'s policy."""
    start = time.perf_counter()
    cases, errors = load_cases(files)
    if errors:
        raise NoTestsError("; ".join(str(e) for e in errors))
    if not cases:
        raise NoTestsError("the test files hold no cases")
    failing = [c for c in cases if not run_case(c, prepared, (matcher,)).ok]
    if failing:
        raise NoTestsError(f"{len(failing)} of the policy's own test case(s) fail ({failing[0].result.note}): "
                           f"fix them first (`revops test`)")
    mutations = policy_mutations(prepared.compiled)
    order = list(cases)  # a case that killed a mutant is tried first for the next one
    results = []
    for n, mutation in enumerate(mutations):
        results.append(_run_one(mutation, prepared, order, matcher))
        if progress:
            progress(n + 1, len(mutations))
    return MutationReport(results, len(cases), matcher, time.perf_counter() - start)


def _run_one(mutation: Mutation, prepared: PreparedPolicy, order: list[LoadedCase], matcher: str) -> MutantResult:
    try:
        mutant = prepare(mutation.build(prepared.compiled), prepared.overrides)
    except DiagnosticError as err:
        return MutantResult(mutation, "diagnostic", str(err).splitlines()[0])
    except Exception:  # a mutant of a valid policy must never crash the engine
        return MutantResult(mutation, "crash", _last_frame())
    cache: dict = {}  # the mutant with each set of pinned params, built once
    for k, case in enumerate(order):
        try:
            result = run_case(case, mutant, (matcher,), cache)
        except Exception:
            return MutantResult(mutation, "crash", _last_frame())
        if not result.ok:
            order.insert(0, order.pop(k))
            return MutantResult(mutation, "killed", f"{result.file}:{result.line}: {result.note}")
    return MutantResult(mutation, "survived")


def _last_frame() -> str:
    lines = traceback.format_exc().strip().splitlines()
    frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
    return f"{lines[-1]} ({frames[-1]})" if frames else lines[-1]


def format_mutation_report(report: MutationReport, policy: str) -> str:
    """Survivors and engine crashes with their positions, then the kill ratio."""
    lines = []
    for r in report.results:
        m = r.mutation
        if r.outcome == "survived":
            lines.append(f"SURVIVED {m.where}: {m.rule}: {m.what}")
        elif r.outcome == "crash":
            lines.append(f"ENGINE BUG {m.where}: {m.rule}: {m.what}: the engine crashed: {r.detail}")
    total = len(report.results)
    killed = report.count("killed", "diagnostic")
    lines.append("-" * 60)
    lines.append(f"{policy}: {total} mutants, {report.cases} cases ({report.matcher} matcher), "
                 f"{report.seconds:.1f} s")
    lines.append(f"killed {killed}/{total} ({report.kill_ratio:.1%}): {report.count('killed')} by a failing case, "
                 f"{report.count('diagnostic')} by a diagnostic; survived {report.count('survived')}; "
                 f"engine crashes {report.count('crash')}")
    return "\n".join(lines)


def report_json(report: MutationReport) -> dict:
    return {"mutants": len(report.results), "cases": report.cases, "matcher": report.matcher,
            "seconds": round(report.seconds, 1), "kill_ratio": report.kill_ratio,
            "results": [{"rule": r.mutation.rule, "at": r.mutation.where, "mutation": r.mutation.what,
                         "outcome": r.outcome, "detail": r.detail} for r in report.results]}
