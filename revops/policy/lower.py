"""Lower conditions to durable-rules rulesets, after folding the param values in.

durable-rules compares one message property against a constant or an arithmetic
expression of other properties (`{"$gt": {"channel__a": {"$mul": {"$l": {"$m": "b"}, "$r": 2}}}}`).
So each comparison is rewritten to put a single fact on the left:
  - params are constants here (a prepared policy is one policy + one set of param values);
  - constant sub-expressions are folded;
  - `not` is pushed down to the comparisons (De Morgan), `in [...]` becomes `or` of `==`;
  - min/max/abs around one side become `and`/`or` of comparisons;
  - a fact is isolated through + and -, and through * and / by a constant (flipping the
    operator for a negative one).
What cannot be written that way (e.g. dividing by a fact, a product of two facts on both
sides) is a `LoweringError` with the node's position: never a silent fallback.

Two measured durable-rules facts shape this: an integer division by zero kills the
process (SIGFPE), so division by a fact is refused and division by a constant becomes a
multiplication by its float reciprocal; and `$div` of two ints truncates.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from revops.policy.dsl import And, Arith, Bool, Call, Compare, In, Neg, Not, Num, Or, Ref, Str
from revops.policy.interp import FUNCTIONS, EvalError

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


def _const(node) -> bool:
    return isinstance(node, (Num, Str, Bool))


def _literal(span, value):
    if isinstance(value, bool):
        return Bool(span, value)
    if isinstance(value, str):
        return Str(span, value)
    return Num(span, value)


def fold(node, params: Mapping[str, Any]):
    """Replace params.* by their values and fold every constant sub-expression."""
    if isinstance(node, Ref):
        if node.path[0] == "params":
            return _literal(node.span, params[node.path[1]])
        return node
    if isinstance(node, (Num, Str, Bool)):
        return node
    if isinstance(node, Arith):
        left, right = fold(node.left, params), fold(node.right, params)
        if node.op == "*" and any(isinstance(x, Num) and x.value == 0 for x in (left, right)):
            return Num(node.span, 0)  # facts are finite numbers: anything times zero is zero
        if _const(left) and _const(right):
            if node.op == "/" and right.value == 0:
                raise LoweringError(node, "division by zero")
            return _literal(node.span, _arith(node.op, left.value, right.value))
        return Arith(node.span, node.op, left, right)
    if isinstance(node, Neg):
        operand = fold(node.operand, params)
        return _literal(node.span, -operand.value) if _const(operand) else Neg(node.span, operand)
    if isinstance(node, Call):
        args = tuple(fold(a, params) for a in node.args)
        if all(_const(a) for a in args):
            try:
                return _literal(node.span, FUNCTIONS[node.func][2](*(a.value for a in args)))
            except (EvalError, ValueError, OverflowError) as err:
                raise LoweringError(node, f"{node.func}(): {err}") from None
        return Call(node.span, node.func, args)
    if isinstance(node, Compare):
        left, right = fold(node.left, params), fold(node.right, params)
        if _const(left) and _const(right):
            from revops.policy.interp import _COMPARE
            return Bool(node.span, _COMPARE[node.op](left.value, right.value))
        return Compare(node.span, node.op, left, right)
    if isinstance(node, In):
        operand = fold(node.operand, params)
        items = tuple(fold(i, params) for i in node.items)
        if _const(operand) and all(_const(i) for i in items):
            return Bool(node.span, any(operand.value == i.value for i in items) != node.negated)
        return In(node.span, operand, items, node.negated)
    if isinstance(node, (And, Or)):
        items = [fold(i, params) for i in node.items]
        absorbing = isinstance(node, Or)  # true absorbs an `or`, false absorbs an `and`
        kept = []
        for item in items:
            if isinstance(item, Bool):
                if item.value == absorbing:
                    return Bool(node.span, absorbing)
                continue
            kept.append(item)
        if not kept:
            return Bool(node.span, not absorbing)
        return kept[0] if len(kept) == 1 else type(node)(node.span, tuple(kept))
    if isinstance(node, Not):
        operand = fold(node.operand, params)
        return Bool(node.span, not operand.value) if isinstance(operand, Bool) else Not(node.span, operand)
    raise LoweringError(node, f"cannot fold {type(node).__name__}")


def _arith(op: str, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b


def negate(node):
    """The logical negation of a condition, pushed down to its comparisons."""
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


def lower_condition(node, type_of: Callable[[str], str | None]) -> dict | bool:
    """Return a durable-rules condition for a folded expression, or True/False if constant."""
    if isinstance(node, Bool):
        return node.value
    if isinstance(node, Ref):
        if type_of(node.name) != "bool":
            raise LoweringError(node, f"{node.name} is not a bool; compare it with something")
        return {alias(node.name): True}
    if isinstance(node, Not):
        return lower_condition(negate(node.operand), type_of)
    if isinstance(node, (And, Or)):
        key = "$and" if isinstance(node, And) else "$or"
        return {key: [_as_dict(lower_condition(i, type_of), i) for i in node.items]}
    if isinstance(node, In):
        op = "!=" if node.negated else "=="
        group = And if node.negated else Or
        compares = tuple(Compare(node.span, op, node.operand, item) for item in node.items)
        if not compares:
            return node.negated
        return lower_condition(group(node.span, compares) if len(compares) > 1 else compares[0], type_of)
    if isinstance(node, Compare):
        return _lower_compare(node, type_of)
    raise LoweringError(node, "not a condition")


def _as_dict(lowered, node) -> dict:
    # A constant inside and/or was already folded away; this only guards the invariant.
    if isinstance(lowered, bool):
        raise LoweringError(node, "constant inside a condition group")
    return lowered


def _lower_compare(node: Compare, type_of) -> dict:
    op, left, right = node.op, node.left, node.right
    if isinstance(right, Ref) and not isinstance(left, Ref):
        op, left, right = _FLIP_SIDES[op], right, left
    if isinstance(left, Call) or isinstance(right, Call):
        return lower_condition(_expand_call(node), type_of)
    if not isinstance(left, Ref):
        left, op, right = _isolate(left, op, right, node)
    rhs = _rhs(fold(right, {}))  # isolating may leave constant arithmetic on the right
    name = alias(left.name)
    if op == "==":
        return {name: rhs}
    return {_DURABLE_OP[op]: {name: rhs}}


def _has_fact(node) -> bool:
    from revops.policy.dsl import walk
    return any(isinstance(n, Ref) for n in walk(node))


def _isolate(left, op: str, right, where):
    """Rewrite `left op right` so that a single fact stands on the left."""
    if isinstance(left, Ref):
        return left, op, right
    if not _has_fact(left):
        if not _has_fact(right):
            raise LoweringError(where, "comparison of two constants should have been folded")
        return _isolate(right, _FLIP_SIDES[op], left, where)
    span = left.span
    if isinstance(left, Neg):
        return _isolate(left.operand, _FLIP_SIDES[op], Neg(span, right), where)
    if isinstance(left, Arith):
        a, b = left.left, left.right
        if left.op == "+":
            if _has_fact(a):
                return _isolate(a, op, Arith(span, "-", right, b), where)
            return _isolate(b, op, Arith(span, "-", right, a), where)
        if left.op == "-":
            if _has_fact(a):
                return _isolate(a, op, Arith(span, "+", right, b), where)
            # a - b op r  <=>  b (flipped op) a - r
            return _isolate(b, _FLIP_SIDES[op], Arith(span, "-", a, right), where)
        if left.op in ("*", "/"):
            fact_side, const_side = (a, b) if _has_fact(a) else (b, a)
            if _has_fact(const_side):
                raise LoweringError(where, "cannot compile a product or quotient of two facts for durable-rules; "
                                           "compare one fact against an expression instead")
            if left.op == "/" and fact_side is b:
                raise LoweringError(where, "cannot compile division by a fact for durable-rules; "
                                           "multiply the other side instead")
            c = const_side.value
            if c == 0:
                raise LoweringError(where, "multiplying or dividing a fact by zero")
            new_op = op if c > 0 else _FLIP_SIDES[op]
            if left.op == "*":
                return _isolate(fact_side, new_op, Arith(span, "*", right, Num(span, 1.0 / c)), where)
            return _isolate(fact_side, new_op, Arith(span, "*", right, Num(span, float(c))), where)
    raise LoweringError(where, "cannot compile this comparison for durable-rules: put a single fact on one side")


def _expand_call(node: Compare):
    """min/max/abs around one whole side of a comparison -> and/or of plain comparisons."""
    op, left, right = node.op, node.left, node.right
    if not isinstance(left, Call):
        op, left, right = _FLIP_SIDES[op], right, left
    if isinstance(right, Call):
        raise LoweringError(node, "cannot compile a function call on both sides of a comparison")
    if op in ("==", "!="):
        raise LoweringError(node, f"cannot compile {left.func}() with '{op}' for durable-rules")
    span = node.span
    greater = op in (">", ">=")
    if left.func in ("min", "max"):
        parts = tuple(Compare(span, op, arg, right) for arg in left.args)
        any_of = (left.func == "max") == greater  # max(a,b) > c: either; max(a,b) < c: both
        return Or(span, parts) if any_of else And(span, parts)
    if left.func == "abs":
        x = left.args[0]
        mirrored = Compare(span, _FLIP_SIDES[op], x, Neg(span, right))
        return Or(span, (Compare(span, op, x, right), mirrored)) if greater else \
            And(span, (Compare(span, op, x, right), mirrored))
    raise LoweringError(node, f"cannot compile {left.func}() of a fact in a condition for durable-rules; "
                              f"use it in `then`, or compare the fact directly")


def _rhs(node) -> Any:
    """The right-hand side of a durable-rules comparison: a constant or an arithmetic tree."""
    if isinstance(node, (Num, Str, Bool)):
        return node.value
    if isinstance(node, Ref):
        return {"$m": alias(node.name)}
    if isinstance(node, Neg):
        return {"$mul": {"$l": _rhs(node.operand), "$r": -1.0}}
    if isinstance(node, Arith):
        if node.op == "/":
            if _has_fact(node.right):
                raise LoweringError(node, "cannot compile division by a fact for durable-rules")
            if node.right.value == 0:
                raise LoweringError(node, "division by zero")
            return {"$mul": {"$l": _rhs(node.left), "$r": 1.0 / node.right.value}}
        op = {"+": "$add", "-": "$sub", "*": "$mul"}[node.op]
        return {op: {"$l": _rhs(node.left), "$r": _rhs(node.right)}}
    if isinstance(node, Call):
        raise LoweringError(node, f"cannot compile {node.func}() inside a comparison for durable-rules")
    raise LoweringError(node, "cannot compile this expression for durable-rules")
