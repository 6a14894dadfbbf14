"""Compile a loaded policy: an ordered list of named passes, each timed and testable alone.

    parse      DSL strings -> AST (dsl_parse_error)
    resolve    every name is a known fact, param, state, function or action (dsl_name_error)
    typecheck  conditions are bool, arithmetic is numeric, actions get what they need (dsl_type_error)
    conflicts  phase rules: post stages only hold post actions, decision.* only after the fee (policy_conflict_error)

The result is a `CompiledPolicy`, independent of param values. `lower.py` then folds the
param values in and builds the durable-rules rulesets (see `engine.prepare`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from revops.diagnostics import Diagnostic, DiagnosticError
from revops.policy.actions import ACTIONS, POST_PHASE_KINDS, ActionSpec
from revops.policy.dsl import (Action, And, Arith, Bool, Call, Compare, DslSyntaxError, In, Neg, Not, Num,
                               Or, Ref, Str, parse_actions, parse_condition)
from revops.policy.interp import BOOL_ARGUMENT, FUNCTIONS, compile_expr
from revops.policy.limits import MAX_FORMAT_WIDTH
from revops.policy.model import DslText, PolicySource, Stage

# Facts about the decision itself, readable only by rules in post stages.
DECISION_FACTS: dict[str, str] = {
    "decision.fee_ppm": "number",       # the fee the decision proposes, after premiums and clamps
    "decision.old_fee_ppm": "number",   # the channel's fee before the decision
    "decision.change_ratio": "number",  # |new - old| / max(old, 1)
    "decision.changed": "bool",         # new fee differs from the old one
    "decision.stage": "string",         # stage of the winning rule ("" when no rule won)
    "decision.rule": "string",          # id of the winning rule ("" when none)
    "decision.emergency": "bool",       # the winning stage is clamp-exempt
    "decision.vetoed": "bool",          # a guard vetoed the change
    "decision.broadcast": "bool",       # the change will be sent, as the earlier post stages left it
    "decision.suppressed": "bool",      # an earlier post stage held the change back (and none forced it)
}

NAMESPACES = ("channel", "peer", "node", "market", "params", "state", "decision", "let", "groups", "pin")


@dataclass(frozen=True)
class CompiledAction:
    spec: ActionSpec
    args: tuple  # expressions, or bare names (Ref) for flag/state arguments
    node: Action
    text: DslText
    fns: tuple = ()  # compiled closures of the expression arguments (None for name arguments)
    lets: tuple = ()  # the rule's (name, closure) pairs, evaluated before an argument

    def value(self, i: int, values):
        """The i-th argument's value for these facts (with the rule's `let` values in scope)."""
        if self.lets:
            with_lets(self.lets, values)
        return self.fns[i](values)


def with_lets(lets: tuple, values) -> None:
    """Store the rule's let values in `values` (once per channel), each from the ones before.

    `lets` holds (key, closure) with keys `let.<rule>.<name>`; the closures read theirs.
    """
    if lets[0][0] in values:
        return
    for key, fn in lets:
        values[key] = fn(values)


@dataclass(frozen=True)
class Template:
    """A `why` string with {expression[:format]} placeholders, parsed once."""

    parts: tuple  # str, or (expr, format_spec, DslText of the placeholder, compiled closure)
    text: DslText
    lets: tuple = ()  # the rule's (name, closure) pairs


@dataclass(frozen=True)
class CompiledRule:
    id: str
    stage: Stage
    stage_index: int
    priority: int
    order: int
    when: Any  # Expr, or None for "always"
    when_text: DslText | None
    actions: tuple[CompiledAction, ...]
    why: Template
    doc: str
    file: str
    line: int

    @property
    def phase(self) -> str:
        return self.stage.phase

    is_target: bool = False  # set from the actions: proposes a fee

    def __post_init__(self):
        object.__setattr__(self, "is_target", any(a.spec.kind == "target" for a in self.actions))

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class CompiledPolicy:
    source: PolicySource
    rules: tuple[CompiledRule, ...]  # in precedence order: stage, priority, file order
    fact_types: Mapping[str, str]
    pass_timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def version(self) -> str:
        return self.source.version

    @property
    def digest(self) -> str:
        return self.source.digest

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self.source.stages


class _Ctx:
    def __init__(self, source: PolicySource, fact_types: Mapping[str, str]):
        self.source = source
        self.fact_types = fact_types
        self.errors: list[Diagnostic] = []
        self.lets_of: dict[str, list] = {}  # rule id -> [(name, expr, DslText)] as parsed
        self.current_lets: dict[str, str | None] = {}  # lets in scope while checking one rule
        self.in_when = False

    def error(self, text: DslText, node, code: str, message: str) -> None:
        line, col = text.locate(node.span.line, node.span.col) if node is not None else (text.pos.line, text.pos.col)
        self.errors.append(Diagnostic(text.pos.file, line, col, code, message))

    def type_of_name(self, name: str, phase: str) -> str | None:
        ns = name.split(".", 1)[0]
        if ns == "params":
            spec = self.source.params.get(name[7:])
            return None if spec is None else ("number" if spec.type == "int" else spec.type)
        if ns == "state":
            spec = self.source.state.get(name[6:])
            return None if spec is None else spec.type
        if ns == "decision":
            return DECISION_FACTS.get(name)
        if ns == "let":
            return self.current_lets.get(name[4:])
        return self.fact_types.get(name)


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}:]+)(?::([^{}]*))?\}")


def compile_policy(source: PolicySource, fact_types: Mapping[str, str] | None = None) -> CompiledPolicy:
    """Run every pass; return the compiled policy or raise DiagnosticError with all errors."""
    if fact_types is None:
        from revops.facts.registry import FACTS
        fact_types = {name: spec.type for name, spec in FACTS.items()}
    if source.groups is not None:  # groups.<name> and pin.* (groups.yaml, policy/groups.py)
        fact_types = {**fact_types, **source.groups.fact_types()}
    ctx = _Ctx(source, fact_types)
    timings: dict[str, float] = {}
    rules = []
    stage_index = {s.name: i for i, s in enumerate(source.stages)}
    stages = {s.name: s for s in source.stages}

    start = time.perf_counter()
    parsed = [_parse_rule(r, ctx) for r in source.rules]
    timings["parse"] = time.perf_counter() - start

    start = time.perf_counter()
    for rule, p in zip(source.rules, parsed):
        if p is not None:
            _resolve(rule, p, stages[rule.stage].phase, ctx)
    timings["resolve"] = time.perf_counter() - start
    if ctx.errors:
        raise DiagnosticError(ctx.errors)

    start = time.perf_counter()
    for rule, p in zip(source.rules, parsed):
        if p is not None:
            _typecheck(rule, p, ctx)
    timings["typecheck"] = time.perf_counter() - start

    start = time.perf_counter()
    for rule, p in zip(source.rules, parsed):
        if p is not None:
            _conflicts(rule, p, stages[rule.stage], ctx)
    timings["conflicts"] = time.perf_counter() - start
    if ctx.errors:
        raise DiagnosticError(ctx.errors)

    start = time.perf_counter()
    compiled_lets = {rid: tuple((f"let.{rid}.{name}", compile_expr(expr, rid)) for name, expr, _ in lets)
                     for rid, lets in ctx.lets_of.items()}
    parsed = [None if p is None else
              (p[0], [_with_closures(a, compiled_lets[r.id], r.id) for a in p[1]],
               _template_closures(p[2], compiled_lets[r.id], r.id))
              for r, p in zip(source.rules, parsed)]
    timings["closures"] = time.perf_counter() - start

    for rule, (when, actions, why) in zip(source.rules, parsed):
        rules.append(CompiledRule(
            id=rule.id, stage=stages[rule.stage], stage_index=stage_index[rule.stage], priority=rule.priority,
            order=rule.order, when=when, when_text=rule.when, actions=tuple(actions), why=why, doc=rule.doc,
            file=rule.pos.file, line=rule.pos.line))
    rules.sort(key=lambda r: (r.stage_index, r.priority, r.order))
    return CompiledPolicy(source=source, rules=tuple(rules), fact_types=dict(fact_types), pass_timings_s=timings)


def _with_closures(action: CompiledAction, lets: tuple, rule_id: str) -> CompiledAction:
    fns = tuple(None if spec.kind in ("flag", "state") else compile_expr(arg, rule_id)
                for spec, arg in zip(action.spec.args, action.args))
    return replace(action, fns=fns, lets=lets)


def _template_closures(template: Template, lets: tuple, rule_id: str) -> Template:
    parts = tuple(p if isinstance(p, str) else (p[0], p[1], p[2], compile_expr(p[0], rule_id))
                  for p in template.parts)
    return replace(template, parts=parts, lets=lets)


# -- parse ---------------------------------------------------------------------------------

def _parse_rule(rule, ctx: _Ctx):
    ok = True
    when = None
    if rule.when is not None:
        try:
            when = parse_condition(rule.when.text)
        except DslSyntaxError as err:
            _syntax_error(rule.when, err, ctx)
            ok = False
    actions: list[CompiledAction] = []
    for text in rule.then:
        try:
            for node in parse_actions(text.text):
                spec = ACTIONS.get(node.name)
                if spec is None:
                    ctx.error(text, node, "dsl_name_error",
                              f"unknown action {node.name!r} (actions: {', '.join(sorted(ACTIONS))})")
                    ok = False
                    continue
                actions.append(CompiledAction(spec, node.args, node, text))
        except DslSyntaxError as err:
            _syntax_error(text, err, ctx)
            ok = False
    why = _parse_template(rule.why, ctx)
    if why is None:
        ok = False
    lets = []
    for name, text in rule.lets:
        try:
            lets.append((name, parse_condition(text.text), text))
        except DslSyntaxError as err:
            _syntax_error(text, err, ctx)
            ok = False
    ctx.lets_of[rule.id] = lets
    return (when, actions, why) if ok else None


def _syntax_error(text: DslText, err: DslSyntaxError, ctx: _Ctx) -> None:
    line, col = text.locate(err.line, err.col)
    ctx.errors.append(Diagnostic(text.pos.file, line, col, "dsl_parse_error", err.message))


def _sub_text(text: DslText, sub: str, offset: int) -> DslText:
    """A placeholder's expression as its own DslText, positioned where it stands in `why`."""
    from dataclasses import replace
    if text.pos.style in ("|", ">"):
        return DslText(sub, replace(text.pos, indent=text.pos.indent + offset))
    return DslText(sub, replace(text.pos, col=text.pos.col + offset))


def _parse_template(text: DslText, ctx: _Ctx) -> Template | None:
    parts: list = []
    last = 0
    ok = True
    for m in _PLACEHOLDER.finditer(text.text):
        parts.append(text.text[last:m.start()])
        last = m.end()
        if m.group(0) in ("{{", "}}"):
            parts.append(m.group(0)[0])
            continue
        expr_text, fmt = m.group(1), m.group(2) or ""
        try:
            expr = parse_condition(expr_text)
        except DslSyntaxError as err:
            line, col = text.locate(1, m.start(1) + err.col)
            ctx.errors.append(Diagnostic(text.pos.file, line, col, "dsl_parse_error", f"in why placeholder: {err.message}"))
            ok = False
            continue
        # {x:10000000} would journal 10 MB per decision (issue 12): width and precision are capped,
        # and checked before the trial format below, which would build a {x:42949672952f} string.
        if any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", fmt)):
            line, col = text.locate(1, m.start(2) + 1)
            ctx.errors.append(Diagnostic(text.pos.file, line, col, "dsl_parse_error",
                                         f"format spec {fmt[:20]!r}: width and precision are limited to "
                                         f"{MAX_FORMAT_WIDTH}"))
            ok = False
            continue
        try:
            format(1.5, fmt) if fmt else None
        except ValueError:
            line, col = text.locate(1, m.start(2) + 1)
            ctx.errors.append(Diagnostic(text.pos.file, line, col, "dsl_parse_error", f"bad format spec {fmt!r}"))
            ok = False
            continue
        parts.append((expr, fmt, _sub_text(text, expr_text, m.start(1)), None))  # closure: see _template_closures
    parts.append(text.text[last:])
    stray = [i for i, ch in enumerate(_PLACEHOLDER.sub("", text.text)) if ch in "{}"]
    if stray:
        ctx.errors.append(Diagnostic(text.pos.file, text.pos.line, text.pos.col, "dsl_parse_error",
                                     "unbalanced '{' or '}' in why (write {{ or }} for a literal brace)"))
        ok = False
    return Template(tuple(p for p in parts if p != ""), text) if ok else None


# -- resolve -------------------------------------------------------------------------------

def _check_names(expr, text: DslText, phase: str, ctx: _Ctx) -> None:
    """Every Ref is a known name; every Call a known function with the right arity."""
    from revops.policy.dsl import walk
    for node in walk(expr):
        if isinstance(node, Ref):
            name = node.name
            ns = node.path[0]
            if len(node.path) != 2 or ns not in NAMESPACES:
                ctx.error(text, node, "dsl_name_error",
                          f"unknown name {name!r}: write namespace.field, namespaces: {', '.join(NAMESPACES)}")
            elif ns == "let":
                if ctx.in_when:
                    ctx.error(text, node, "dsl_name_error",
                              f"{name}: let values are known in then, why and later lets, not in when")
                elif node.path[1] not in ctx.current_lets:
                    ctx.error(text, node, "dsl_name_error",
                              f"unknown let value {name!r} (define it under let:, before it is used)")
            elif ns == "decision" and phase != "post":
                ctx.error(text, node, "policy_conflict_error",
                          f"{name} is only known after the fee is decided: use it in a post stage")
            elif ctx.type_of_name(name, phase) is None:
                kind = {"params": "param", "state": "state variable", "decision": "decision fact",
                        "groups": "group"}.get(ns, "fact")
                ctx.error(text, node, "dsl_name_error", f"unknown {kind} {name!r}{_suggest(name, ctx)}")
        elif isinstance(node, Call):
            fn = FUNCTIONS.get(node.func)
            if fn is None:
                ctx.error(text, node, "dsl_name_error",
                          f"unknown function {node.func!r} (functions: {', '.join(sorted(FUNCTIONS))})")
            else:
                lo, hi, _ = fn
                lo = max(lo, _MIN_ARGS.get(node.func, 0))
                if len(node.args) < lo or (hi is not None and len(node.args) > hi):
                    want = f"{lo}" if hi == lo else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
                    ctx.error(text, node, "dsl_type_error",
                              f"{node.func}() takes {want} argument(s), got {len(node.args)}")


# min(x) and max(x) compare nothing (Python's max(5) raises): they take two or more (issue 12).
_MIN_ARGS = {"min": 2, "max": 2}


def _suggest(name: str, ctx: _Ctx) -> str:
    import difflib
    from revops.facts.registry import RENAMED
    if name in RENAMED:
        new, why = RENAMED[name]
        return f": renamed {new!r} ({why})"
    ns = name.split(".", 1)[0]
    if ns == "params":
        pool = [f"params.{p}" for p in ctx.source.params]
    elif ns == "state":
        pool = [f"state.{s}" for s in ctx.source.state]
    else:
        pool = [n for n in ctx.fact_types if n.startswith(ns + ".")]
    close = difflib.get_close_matches(name, pool, n=1)
    if ns == "groups" and not close:  # issue 13: say where groups come from
        known = ", ".join(n[7:] for n in pool) or "none"
        return f" (groups are named in the policy folder's groups.yaml; defined: {known})"
    return f"; did you mean {close[0]!r}?" if close else ""


def _resolve(rule, parsed, phase: str, ctx: _Ctx) -> None:
    when, actions, why = parsed
    ctx.current_lets = {}
    if when is not None:
        ctx.in_when = True
        _check_names(when, rule.when, phase, ctx)
        ctx.in_when = False
    for name, expr, text in ctx.lets_of.get(rule.id, []):
        _check_names(expr, text, phase, ctx)
        ctx.current_lets[name] = None
    for action in actions:
        spec = action.spec
        if len(action.args) != len(spec.args):
            names = ", ".join(a.name for a in spec.args)
            ctx.error(action.text, action.node, "dsl_type_error",
                      f"{spec.name}({names}) takes {len(spec.args)} argument(s), got {len(action.args)}")
            continue
        for arg_spec, arg in zip(spec.args, action.args):
            if arg_spec.kind in ("flag", "state"):
                if not (isinstance(arg, Ref) and len(arg.path) in (1, 2)
                        and (len(arg.path) == 1 or arg.path[0] == "state")):
                    ctx.error(action.text, arg, "dsl_type_error",
                              f"{spec.name}: {arg_spec.name} must be the name of a state variable, e.g. {spec.name}(fire_sale)")
                    continue
                sname = arg.path[-1]
                sspec = ctx.source.state.get(sname)
                if sspec is None:
                    ctx.error(action.text, arg, "dsl_name_error",
                              f"unknown state variable {sname!r}: declare it under `state:`{_suggest('state.' + sname, ctx)}")
                elif arg_spec.kind == "flag" and sspec.type != "bool":
                    ctx.error(action.text, arg, "dsl_type_error", f"{spec.name}: state.{sname} is a {sspec.type}, not a bool flag")
            else:
                _check_names(arg, action.text, phase, ctx)
    for part in why.parts:
        if isinstance(part, tuple):
            expr, _, sub, _ = part
            _check_names(expr, sub, phase, ctx)


# -- typecheck -----------------------------------------------------------------------------

def _type(node, text: DslText, ctx: _Ctx, phase: str) -> str | None:
    """Return "number", "bool" or "string"; report mismatches; None when unknown."""
    if isinstance(node, Num):
        return "number"
    if isinstance(node, Str):
        return "string"
    if isinstance(node, Bool):
        return "bool"
    if isinstance(node, Ref):
        return ctx.type_of_name(node.name, phase)
    if isinstance(node, (Arith, Neg)):
        operands = (node.left, node.right) if isinstance(node, Arith) else (node.operand,)
        for operand in operands:
            t = _type(operand, text, ctx, phase)
            if t not in (None, "number"):
                ctx.error(text, operand, "dsl_type_error", f"arithmetic needs numbers, got a {t}")
        return "number"
    if isinstance(node, Call):
        condition_at = BOOL_ARGUMENT.get(node.func)
        for i, arg in enumerate(node.args):
            t = _type(arg, text, ctx, phase)
            want = "bool" if i == condition_at else "number"
            if t not in (None, want):
                what = "a condition" if want == "bool" else "numbers"
                ctx.error(text, arg, "dsl_type_error", f"{node.func}() needs {what} there, got a {t}")
        return "number"
    if isinstance(node, Compare):
        lt = _type(node.left, text, ctx, phase)
        rt = _type(node.right, text, ctx, phase)
        if lt and rt and lt != rt:
            ctx.error(text, node, "dsl_type_error", f"cannot compare a {lt} with a {rt}")
        elif node.op not in ("==", "!=") and "bool" in (lt, rt):
            ctx.error(text, node, "dsl_type_error", f"'{node.op}' does not order bools; use == or !=")
        return "bool"
    if isinstance(node, In):
        ot = _type(node.operand, text, ctx, phase)
        for item in node.items:
            it = _type(item, text, ctx, phase)
            if ot and it and ot != it:
                ctx.error(text, item, "dsl_type_error", f"list item is a {it} but the value is a {ot}")
        return "bool"
    if isinstance(node, (And, Or)):
        for item in node.items:
            t = _type(item, text, ctx, phase)
            if t not in (None, "bool"):
                ctx.error(text, item, "dsl_type_error", f"'and'/'or' need bool operands, got a {t}")
        return "bool"
    if isinstance(node, Not):
        t = _type(node.operand, text, ctx, phase)
        if t not in (None, "bool"):
            ctx.error(text, node.operand, "dsl_type_error", f"'not' needs a bool, got a {t}")
        return "bool"
    return None


def _typecheck(rule, parsed, ctx: _Ctx) -> None:
    when, actions, why = parsed
    phase = ctx.source.stages[[s.name for s in ctx.source.stages].index(rule.stage)].phase
    ctx.current_lets = {}
    for name, expr, text in ctx.lets_of.get(rule.id, []):
        ctx.current_lets[name] = _type(expr, text, ctx, phase)
    if when is not None:
        t = _type(when, rule.when, ctx, phase)
        if t not in (None, "bool"):
            ctx.error(rule.when, when, "dsl_type_error", f"a condition must be true or false, got a {t}")
    for action in actions:
        for arg_spec, arg in zip(action.spec.args, action.args):
            if arg_spec.kind in ("number", "string"):
                t = _type(arg, action.text, ctx, phase)
                if t not in (None, arg_spec.kind):
                    ctx.error(action.text, arg, "dsl_type_error",
                              f"{action.spec.name}: {arg_spec.name} must be a {arg_spec.kind}, got a {t}")
            elif arg_spec.kind == "value":
                name_arg = action.args[0]
                sspec = ctx.source.state.get(name_arg.path[-1]) if isinstance(name_arg, Ref) else None
                t = _type(arg, action.text, ctx, phase)
                if sspec and t and t != sspec.type:
                    ctx.error(action.text, arg, "dsl_type_error",
                              f"set_state: state.{sspec.name} is a {sspec.type}, got a {t}")


# -- conflicts -----------------------------------------------------------------------------

def _conflicts(rule, parsed, stage: Stage, ctx: _Ctx) -> None:
    _, actions, _ = parsed
    if stage.phase == "post":
        for action in actions:
            if action.spec.kind not in POST_PHASE_KINDS:
                ctx.error(action.text, action.node, "policy_conflict_error",
                          f"{action.spec.name} ({action.spec.kind}) cannot run in post stage {stage.name!r}: "
                          f"the fee is already decided there")
    else:
        for action in actions:
            if action.spec.kind == "broadcast":
                ctx.error(action.text, action.node, "policy_conflict_error",
                          f"{action.spec.name} belongs in a post stage, where the decided fee is known")
    targets = [a for a in actions if a.spec.kind == "target"]
    if len(targets) > 1:
        ctx.error(targets[1].text, targets[1].node, "policy_conflict_error",
                  f"rule {rule.id!r} proposes more than one fee")
