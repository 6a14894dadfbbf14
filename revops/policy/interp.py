"""The reference interpreter: evaluates DSL expressions over a flat dict of values.

It computes every action argument and `why` placeholder, and it is the second evaluator
that policy tests run conditions through, to show that lowering to durable-rules keeps
their meaning. It also says *why* a condition failed: the first comparison that did not
hold, with the actual values (`channel.htlc_util 0.42 < params.congestion_util 0.8`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from revops.policy.dsl import And, Arith, Bool, Call, Compare, In, Neg, Not, Num, Or, Ref, Str


class EvalError(Exception):
    """An expression could not be evaluated (division by zero, log of a negative, ...)."""


# What evaluating an expression may raise: our own EvalError, and Python's arithmetic on
# values no check foresaw (float(10**400) overflows). Both matchers catch exactly these.
EVAL_ERRORS = (EvalError, ArithmeticError, ValueError, TypeError)
_DOUBLE_MAX = 1.7976931348623157e308


def _double(v: Any) -> Any:
    """A comparison operand as compared: numbers as finite doubles (what durable-rules sees)."""
    if isinstance(v, (bool, str)):
        return v
    try:
        d = float(v)
    except OverflowError:
        raise EvalError(f"{v if abs(v) < 10**30 else 'a number'} is too large to compare") from None
    if not math.isfinite(d):
        raise EvalError(f"cannot compare {d}: not a finite number")
    return d


def compare_values(op: str, a: Any, b: Any) -> bool:
    """`a op b` with the conditions' meaning: numbers are compared as finite doubles
    (EvalError for NaN, infinity or an integer beyond a double), strings and bools as they are."""
    return _COMPARE[op](_double(a), _double(b))


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def _log(x: float) -> float:
    if x <= 0:
        raise EvalError(f"log({x}) is undefined")
    return math.log(x)


def _sqrt(x: float) -> float:
    if x < 0:
        raise EvalError(f"sqrt({x}) is undefined")
    return math.sqrt(x)


def _exp(x: float) -> float:
    if x > 700:
        raise EvalError(f"exp({x}) overflows")
    return math.exp(x)


def _pow(x: float, y: float) -> float:
    try:
        result = math.pow(x, y)
    except (OverflowError, ValueError):
        raise EvalError(f"pow({x}, {y}) is undefined") from None
    return result


# name -> (min args, max args or None for variadic, implementation)
FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., float]]] = {
    # min/max of one value is that value: almost surely a slip (min(a) for min(a, b)); and
    # Python's min() of one number raises. Two or more, checked at compile time.
    "min": (2, None, min),
    "max": (2, None, max),
    "clamp": (3, 3, _clamp),
    "abs": (1, 1, abs),
    "round": (1, 1, lambda x: float(round(x))),
    "floor": (1, 1, lambda x: float(math.floor(x))),
    "ceil": (1, 1, lambda x: float(math.ceil(x))),
    "sqrt": (1, 1, _sqrt),
    "log": (1, 1, _log),
    "exp": (1, 1, _exp),
    "pow": (2, 2, _pow),
    "sign": (1, 1, lambda x: float((x > 0) - (x < 0))),
    # pick(condition, a, b): a when the condition holds, else b (both are evaluated).
    "pick": (3, 3, lambda condition, a, b: a if condition else b),
}
BOOL_ARGUMENT = {"pick": 0}  # functions whose argument at this index is a condition

_FLIP = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def evaluate(node, values: Mapping[str, Any]) -> Any:
    """Return the value of an expression; raise EvalError on an undefined operation."""
    if isinstance(node, (Num, Str, Bool)):
        return node.value
    if isinstance(node, Ref):
        try:
            return values[node.name]
        except KeyError:
            raise EvalError(f"{node.name} has no value") from None
    if isinstance(node, Arith):
        a = evaluate(node.left, values)
        b = evaluate(node.right, values)
        return _arith(node.op, a, b)
    if isinstance(node, Neg):
        return -evaluate(node.operand, values)
    if isinstance(node, Call):
        fn = FUNCTIONS[node.func][2]
        args = [evaluate(a, values) for a in node.args]
        try:
            return fn(*args)
        except (OverflowError, ValueError) as err:
            raise EvalError(f"{node.func}: {err}") from None
    if isinstance(node, Compare):
        return compare_values(node.op, evaluate(node.left, values), evaluate(node.right, values))
    if isinstance(node, In):
        v = evaluate(node.operand, values)
        # Every item is evaluated (no short cut), like `and`/`or` below.
        items = [evaluate(i, values) for i in node.items]
        return _member(v, items) != node.negated
    # `and`/`or` evaluate every operand: an operand that cannot be evaluated makes the whole
    # condition an error, whatever the others say (docs/policy.md "Conditions"; the
    # durable-rules path computes every operand in Python before matching, so it cannot
    # short-cut either).
    if isinstance(node, And):
        return all([evaluate(i, values) for i in node.items])
    if isinstance(node, Or):
        return any([evaluate(i, values) for i in node.items])
    if isinstance(node, Not):
        return not evaluate(node.operand, values)
    raise EvalError(f"cannot evaluate {type(node).__name__}")


def _arith(op: str, a, b):
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise EvalError("division by zero")
        return a / b
    except OverflowError:
        raise EvalError(f"'{op}' overflows a double") from None


def format_value(v: Any) -> str:
    """Short, stable rendering of a value for traces."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def _operand_text(node, text: str, values: Mapping[str, Any]) -> str:
    source = text[node.span.start:node.span.end]
    if isinstance(node, (Num, Str, Bool)):
        return source
    try:
        return f"{source} {format_value(evaluate(node, values))}"
    except EVAL_ERRORS as err:
        return f"{source} ({err})"


def explain_false(node, values: Mapping[str, Any], text: str) -> str | None:
    """If the condition is false, return the first part that failed, with actual values.

    Returns None when the condition holds. For `or`, every alternative failed, so each
    one's reason is listed.
    """
    try:
        if evaluate(node, values):
            return None
    except EVAL_ERRORS as err:
        return f"cannot evaluate: {err}"
    if isinstance(node, And):
        for item in node.items:
            reason = explain_false(item, values, text)
            if reason:
                return reason
    if isinstance(node, Or):
        return "none of: " + "; ".join(explain_false(i, values, text) or "?" for i in node.items)
    if isinstance(node, Compare):
        return (f"{_operand_text(node.left, text, values)} {_FLIP[node.op]} "
                f"{_operand_text(node.right, text, values)}")
    if isinstance(node, Ref):
        return f"{node.name} is false"
    if isinstance(node, Not):
        return f"{text[node.operand.span.start:node.operand.span.end]} is true"
    if isinstance(node, In):
        listed = "not in" if not node.negated else "in"
        return f"{_operand_text(node.operand, text, values)} {listed} the list"
    return f"{text[node.span.start:node.span.end]} is false"


def compile_expr(node, let_scope: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    """Return a function computing `evaluate(node, values)`: the same operations, built once.

    Actions and `why` templates run for every channel of every cycle; walking the tree
    each time was the largest cost of a decision. The expression becomes one Python
    function (`_generated`: a function call per expression, not per operator); when it
    raises anything, the same expression is evaluated again by closures (`_closures`) that
    call the same functions step by step and raise the exact EvalError `evaluate` would.

    `let_scope` (a rule id) makes `let.x` read the rule's own value, stored in the values
    under `let.<rule>.x`, so two rules' lets of the same name never meet.
    """
    careful = _closures(node, let_scope)
    names: dict[str, Any] = {"careful": careful}
    body = _generated(node, let_scope, names)
    source = f"def fast(v):\n    try:\n        return {body}\n    except Exception:\n        return careful(v)\n"
    try:
        exec(compile(source, "<policy expression>", "exec"), names)  # noqa: S102 — built from our own AST only
    except (SyntaxError, RecursionError, MemoryError):  # nesting beyond Python's parser: closures only
        return careful
    return names["fast"]


def _generated(node, let_scope: str | None, names: dict[str, Any]) -> str:
    """Python source for the expression over `v` (the values); constants and functions are
    passed in `names`, never written as text, so no policy string becomes code."""
    def bind(value: Any) -> str:
        key = f"k{len(names)}"
        names[key] = value
        return key

    def gen(n) -> str:
        if isinstance(n, (Num, Str, Bool)):
            return bind(n.value)
        if isinstance(n, Ref):
            name = n.name
            if let_scope is not None and n.path[0] == "let":
                name = f"let.{let_scope}.{n.path[1]}"
            return f"v[{bind(name)}]"
        if isinstance(n, Arith):
            if n.op == "/":
                return f"{bind(_divide)}({gen(n.left)}, {gen(n.right)})"
            return f"({gen(n.left)} {n.op} {gen(n.right)})"
        if isinstance(n, Neg):
            return f"(-{gen(n.operand)})"
        if isinstance(n, Call):
            return f"{bind(FUNCTIONS[n.func][2])}({', '.join(gen(a) for a in n.args)})"
        if isinstance(n, Compare):
            return f"{bind(_COMPARE[n.op])}({bind(_double)}({gen(n.left)}), {bind(_double)}({gen(n.right)}))"
        if isinstance(n, In):
            items = "".join(f"{gen(i)}, " for i in n.items)
            return f"({bind(_member)}({gen(n.operand)}, ({items})) != {bind(n.negated)})"
        if isinstance(n, (And, Or)):  # every operand evaluated, as in evaluate()
            return f"{'all' if isinstance(n, And) else 'any'}(({''.join(gen(i) + ', ' for i in n.items)}))"
        if isinstance(n, Not):
            return f"(not {gen(n.operand)})"
        raise EvalError(f"cannot compile {type(n).__name__}")
    return gen(node)


def _divide(a, b):
    return _arith("/", a, b)


def _member(v, items) -> bool:
    """`v in items` as conditions mean it: == on every item (each compared, none skipped)."""
    return any([compare_values("==", v, x) for x in items])


def _closures(node, let_scope: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    """`compile_expr`'s careful form: one closure per operator, each raising what `evaluate` raises."""
    if isinstance(node, (Num, Str, Bool)):
        value = node.value
        return lambda values: value
    if isinstance(node, Ref):
        name = node.name
        if let_scope is not None and node.path[0] == "let":
            name = f"let.{let_scope}.{node.path[1]}"

        def ref(values):
            try:
                return values[name]
            except KeyError:
                raise EvalError(f"{name} has no value") from None
        return ref
    if isinstance(node, Arith):
        left, right = _closures(node.left, let_scope), _closures(node.right, let_scope)
        op = node.op
        # The same operations as _arith; + - * inline (the hot path), their rare
        # OverflowError (an int too large for a float) turned into EvalError like _arith's.
        if op == "/":
            return lambda values: _arith("/", left(values), right(values))
        plain = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}[op]

        def arith(values):
            try:
                return plain(left(values), right(values))
            except OverflowError:
                raise EvalError(f"'{op}' overflows a double") from None
        return arith
    if isinstance(node, Neg):
        operand = _closures(node.operand, let_scope)
        return lambda values: -operand(values)
    if isinstance(node, Call):
        fn = FUNCTIONS[node.func][2]
        args = [_closures(a, let_scope) for a in node.args]
        func = node.func

        def call(values):
            try:
                return fn(*[a(values) for a in args])
            except (OverflowError, ValueError) as err:
                raise EvalError(f"{func}: {err}") from None
        return call
    if isinstance(node, Compare):
        op = node.op
        left, right = _closures(node.left, let_scope), _closures(node.right, let_scope)
        return lambda values: compare_values(op, left(values), right(values))
    if isinstance(node, In):
        operand = _closures(node.operand, let_scope)
        items = [_closures(i, let_scope) for i in node.items]
        negated = node.negated

        def member(values):
            v = operand(values)
            return _member(v, [i(values) for i in items]) != negated
        return member
    if isinstance(node, (And, Or)):  # every operand evaluated, as in evaluate()
        items = [_closures(i, let_scope) for i in node.items]
        if isinstance(node, And):
            return lambda values: all([i(values) for i in items])
        return lambda values: any([i(values) for i in items])
    if isinstance(node, Not):
        operand = _closures(node.operand, let_scope)
        return lambda values: not operand(values)
    raise EvalError(f"cannot compile {type(node).__name__}")
