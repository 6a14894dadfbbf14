"""Lower conditions to durable-rules rulesets with one meaning: the reference interpreter's.

durable-rules compares one message property against a constant or another property. So
each comparison operand of a condition becomes one of:
  - a constant: an operand without facts (literals, params) is computed now, with the
    prepared param values, exactly as the reference interpreter would;
  - a fact, posted as a message property (`channel.fee_ppm` -> `channel__fee_ppm`);
  - a *derived fact*: any other operand (`channel.local_ratio * channel.capacity_sat`,
    `max(channel.a, channel.b) / channel.c`, `abs(channel.x - 50)`) is computed in Python
    for every channel, by the same code the reference interpreter runs, and posted as a
    property of its own (`d__3`); durable-rules still matches the comparison.
Computing the operands in Python rather than rewriting them into durable-rules arithmetic
is what makes the two matchers agree on every value: rewriting `a * 3 > 0.9` as
`a > 0.3` rounds differently, and durable-rules cannot raise where Python does.

Errors have one meaning too (docs/policy.md, "Conditions"): a condition is evaluated whole.
If any operand cannot be computed for a channel (division by zero, log of a negative, a
value that is not a finite double), the rule does not match for that channel and the trace
says why, whatever the other operands say. So folding `X or true` to `true` is sound
here: X's derived facts still run, and their error still unmatches the rule.

Measured durable-rules limits (see rete.py) shape the output: every `$or` alternative is a
branch, `and` of `or`s multiplies out, and a ruleset must stay under 64 true branches per
fact and 512 branches in all. A rule wider than `rete.MAX_BRANCHES` is split into
sub-rules (its alternatives, distributed over `and` as needed) that rete.py spreads over
rulesets; a rule of more than MAX_RULE_BRANCHES alternatives is a located compile error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from revops.policy.dsl import And, Bool, Compare, In, Not, Num, Or, Ref, Str, walk
from revops.policy.encode import FactError, as_double
from revops.policy.interp import EVAL_ERRORS, compare_values, compile_expr, evaluate
from revops.policy.rete import MAX_BRANCHES

MAX_RULE_BRANCHES = 1024  # alternatives of one condition (an `in` list of 1,024 items is one each)

_FLIP_SIDES = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_DURABLE_OP = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}


class LoweringError(Exception):
    """A condition that durable-rules cannot express; `node` locates it."""

    def __init__(self, node, message: str):
        super().__init__(message)
        self.node = node
        self.message = message


def alias(name: str) -> str:
    """The message property a fact is posted under (durable-rules reads '.' as a path)."""
    return name.replace(".", "__")


@dataclass
class Derived:
    """An operand computed in Python per channel and posted as property `prop`."""

    prop: str
    node: Any
    fn: Callable[[Mapping[str, Any]], Any]
    rules: list[str] = field(default_factory=list)  # rule ids whose condition uses it

    def compute(self, values: Mapping[str, Any]) -> Any:
        """The value to post; raise one of EVAL_ERRORS / FactError when it cannot be computed."""
        value = self.fn(values)
        if value.__class__ is float and value - value == 0.0:  # finite: the common case, no call
            return value
        return posted_value(value, f"{_text(self.node)}")


def posted_value(value: Any, name: str) -> Any:
    """A comparison operand as durable-rules receives it: strings and bools as they are,
    numbers as finite doubles (FactError otherwise) — what interp.compare_values compares."""
    if isinstance(value, (bool, str)):
        return value
    return as_double(value, name)


@dataclass(frozen=True)
class LoweredRule:
    """A rule's condition for durable-rules: constant, or sub-rules (condition, branches)."""

    constant: bool | None  # True/False when no fact is left after folding
    parts: tuple[tuple[dict, int], ...]
    derived: tuple[str, ...]  # props of the derived facts the condition reads (even folded away)

    @property
    def condition(self) -> Any:
        """One durable-rules condition (an `$or` of the sub-rules), or the constant."""
        if self.constant is not None:
            return self.constant
        return self.parts[0][0] if len(self.parts) == 1 else {"$or": [p for p, _ in self.parts]}


class DerivedFacts:
    """The derived facts of one phase, shared by its rules (one computation per channel)."""

    def __init__(self):
        self.by_key: dict[str, Derived] = {}

    @property
    def all(self) -> list[Derived]:
        return list(self.by_key.values())

    def add(self, node, rule_id: str) -> Ref:
        key = _key(node)
        derived = self.by_key.get(key)
        if derived is None:
            derived = Derived(f"d__{len(self.by_key) + 1}", node, compile_expr(node))
            self.by_key[key] = derived
        if rule_id not in derived.rules:
            derived.rules.append(rule_id)
        return Ref(node.span, ("d", derived.prop[3:]))


def lower_rule(rule_id: str, when, params: Mapping[str, Any], type_of: Callable[[str], str | None],
               derived: DerivedFacts) -> LoweredRule:
    """Lower one `when` (params still as Refs) for durable-rules; raise LoweringError, located."""
    param_values = {f"params.{k}": v for k, v in params.items()}
    used: list[str] = []
    node = _operands(when, param_values, type_of, derived, rule_id, used)
    node = _fold(node)
    if isinstance(node, Bool):
        return LoweredRule(node.value, (), tuple(used))
    lowered = _lower(node, type_of)
    total = _branches(lowered)
    if total > MAX_RULE_BRANCHES:
        raise LoweringError(when, f"this condition has {total} alternatives for durable-rules (each `or` "
                                  f"alternative and `in` item, multiplied out over `and`); at most "
                                  f"{MAX_RULE_BRANCHES}: split the rule")
    return LoweredRule(None, tuple((p, _branches(p)) for p in _split(lowered)), tuple(used))


# -- operands: constants, facts, derived facts -------------------------------------------------

def _is_fact(node) -> bool:
    return isinstance(node, Ref) and node.path[0] != "params"


def _has_fact(node) -> bool:
    return any(_is_fact(n) for n in walk(node))


def _operands(node, param_values, type_of, derived: DerivedFacts, rule_id: str, used: list):
    """The condition with every comparison operand a constant, a fact or a derived fact."""
    def operand(x):
        if not _has_fact(x):
            return _constant(x, param_values)
        if _is_fact(x):
            return x
        _check_constant_parts(x, param_values)
        ref = derived.add(x, rule_id)
        prop = alias(ref.name)
        if prop not in used:
            used.append(prop)
        return ref

    def visit(n):
        if isinstance(n, Bool):
            return n
        if isinstance(n, Ref):
            if n.path[0] == "params":
                return _constant(n, param_values)
            return n
        if isinstance(n, Not):
            return Not(n.span, visit(n.operand))
        if isinstance(n, (And, Or)):
            return type(n)(n.span, tuple(visit(i) for i in n.items))
        if isinstance(n, Compare):
            left, right = operand(n.left), operand(n.right)
            if _literal(left) and _literal(right):
                return Bool(n.span, compare_values(n.op, left.value, right.value))
            return Compare(n.span, n.op, left, right)
        if isinstance(n, In):
            value = operand(n.operand)
            items = tuple(operand(i) for i in n.items)
            if _literal(value) and all(_literal(i) for i in items):
                return Bool(n.span, any(compare_values("==", value.value, i.value) for i in items) != n.negated)
            return In(n.span, value, items, n.negated)
        raise LoweringError(n, "not a condition")
    return visit(node)


def _literal(node) -> bool:
    return isinstance(node, (Num, Str, Bool))


def _constant(node, param_values):
    """A fact-free operand's value now, as the reference interpreter computes it."""
    try:
        value = posted_value(evaluate(node, param_values), _text(node))
    except FactError as err:
        raise LoweringError(node, f"this constant is not usable: {err}") from None
    except EVAL_ERRORS as err:
        raise LoweringError(node, f"cannot compute this constant: {err}") from None
    if isinstance(value, bool):
        return Bool(node.span, value)
    if isinstance(value, str):
        return Str(node.span, value)
    return Num(node.span, value)


def _check_constant_parts(node, param_values) -> None:
    """Refuse now what would fail for every channel: a fact-free part of a derived operand
    that cannot be computed (log(params.x) with x <= 0), or a division by a constant zero."""
    from revops.policy.dsl import Arith, children
    if not _has_fact(node):
        _constant(node, param_values)
        return
    if isinstance(node, Arith) and node.op == "/" and not _has_fact(node.right):
        if _constant(node.right, param_values).value == 0:
            raise LoweringError(node, "division by zero (the divisor is 0 with these params)")
    for child in children(node):
        _check_constant_parts(child, param_values)


def _fold(node):
    """Fold true/false through and/or/not (sound: errors live in the derived facts)."""
    if isinstance(node, Not):
        operand = _fold(node.operand)
        return Bool(node.span, not operand.value) if isinstance(operand, Bool) else Not(node.span, operand)
    if isinstance(node, (And, Or)):
        absorbing = isinstance(node, Or)  # true absorbs an `or`, false absorbs an `and`
        kept = []
        for item in (_fold(i) for i in node.items):
            if isinstance(item, Bool):
                if item.value == absorbing:
                    return Bool(node.span, absorbing)
                continue
            kept.append(item)
        if not kept:
            return Bool(node.span, not absorbing)
        return kept[0] if len(kept) == 1 else type(node)(node.span, tuple(kept))
    return node


# -- to durable-rules ---------------------------------------------------------------------------

def negate(node):
    """The logical negation of a condition, pushed down to its comparisons (exact: no NaN here)."""
    if isinstance(node, Compare):
        return Compare(node.span, _NEGATE[node.op], node.left, node.right)
    if isinstance(node, And):
        return Or(node.span, tuple(negate(i) for i in node.items))
    if isinstance(node, Or):
        return And(node.span, tuple(negate(i) for i in node.items))
    if isinstance(node, Not):
        return node.operand
    if isinstance(node, In):
        return In(node.span, node.operand, node.items, not node.negated)
    if isinstance(node, Bool):
        return Bool(node.span, not node.value)
    if isinstance(node, Ref):  # a bool fact standing alone
        return Compare(node.span, "!=", node, Bool(node.span, True))
    raise LoweringError(node, "cannot negate this expression")


def _lower(node, type_of) -> dict:
    if isinstance(node, Ref):
        if node.path[0] != "d" and type_of(node.name) != "bool":
            raise LoweringError(node, f"{node.name} is not a bool; compare it with something")
        return {alias(node.name): True}
    if isinstance(node, Not):
        return _lower(negate(node.operand), type_of)
    if isinstance(node, (And, Or)):
        key = "$and" if isinstance(node, And) else "$or"
        items = []
        for item in node.items:
            lowered = _lower(item, type_of)
            items.extend(lowered[key] if set(lowered) == {key} else [lowered])  # flatten a and (b and c)
        return {key: items}
    if isinstance(node, In):
        op = "!=" if node.negated else "=="
        compares = tuple(Compare(node.span, op, node.operand, item) for item in node.items)
        if len(compares) == 1:
            return _lower(compares[0], type_of)
        return _lower((And if node.negated else Or)(node.span, compares), type_of)
    if isinstance(node, Compare):
        return _lower_compare(node)
    raise LoweringError(node, "not a condition")


def _lower_compare(node: Compare) -> dict:
    op, left, right = node.op, node.left, node.right
    if _literal(left):
        op, left, right = _FLIP_SIDES[op], right, left
    if op not in ("==", "!=") and any(isinstance(x, Str) for x in (left, right)):
        raise LoweringError(node, f"strings are compared with == or != only, not {op!r}")
    name = alias(left.name)
    rhs = {"$m": alias(right.name)} if isinstance(right, Ref) else right.value
    if op == "==":
        return {name: rhs}
    return {_DURABLE_OP[op]: {name: rhs}}


def _branches(cond: dict) -> int:
    """How many branches durable-rules makes of a condition (measured: or adds, and multiplies)."""
    if "$or" in cond:
        return sum(_branches(c) for c in cond["$or"])
    if "$and" in cond:
        return math.prod(_branches(c) for c in cond["$and"])
    return 1


def _split(cond: dict) -> list[dict]:
    """Equivalent alternatives, each of at most MAX_BRANCHES branches (their `or` is `cond`)."""
    if _branches(cond) <= MAX_BRANCHES:
        return [cond]
    if "$or" in cond:
        pieces = [p for c in cond["$or"] for p in _split(c)]
    else:  # an `and` of `or`s: distribute the widest item over the others
        items = cond["$and"]
        j = max(range(len(items)), key=lambda k: _branches(items[k]))
        pieces = [p for alt in items[j]["$or"] for p in _split({"$and": items[:j] + [alt] + items[j + 1:]})]
    packed: list[list[dict]] = [[]]
    width = 0
    for piece in pieces:
        b = _branches(piece)
        if width + b > MAX_BRANCHES and packed[-1]:
            packed.append([])
            width = 0
        packed[-1].append(piece)
        width += b
    return [group[0] if len(group) == 1 else {"$or": group} for group in packed]


def _key(node) -> str:
    """A structural key of an expression (positions left out): equal operands share a fact."""
    name = type(node).__name__
    if isinstance(node, (Num, Str, Bool)):
        return f"{name}({node.value!r})"
    if isinstance(node, Ref):
        return node.name
    from revops.policy.dsl import children
    extra = getattr(node, "op", None) or getattr(node, "func", None) or getattr(node, "negated", "")
    return f"{name}{extra}(" + ",".join(_key(c) for c in children(node)) + ")"


def _text(node) -> str:
    """The expression written back in the DSL (for messages)."""
    from revops.policy.dsl import Arith, Call, Neg
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Str):
        return repr(node.value)
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Arith):
        return f"({_text(node.left)} {node.op} {_text(node.right)})"
    if isinstance(node, Neg):
        return f"-{_text(node.operand)}"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(_text(a) for a in node.args)})"
    if isinstance(node, Compare):
        return f"({_text(node.left)} {node.op} {_text(node.right)})"
    return type(node).__name__.lower()
