"""compile_expr (one generated Python function per expression) against evaluate (the tree
walker): the same value, or the same EvalError message, for every kind of node."""

from __future__ import annotations

import pytest

from revops.policy.dsl import parse_condition
from revops.policy.interp import EVAL_ERRORS, compile_expr, evaluate

VALUES = {"channel.a": 3.0, "channel.b": 0.0, "channel.n": -2.0, "channel.big": 10 ** 400,
          "channel.s": "CHANNELD_NORMAL", "channel.t": True, "channel.f": False, "let.r1.x": 5.0,
          "let.x": 5.0}  # evaluate reads let.x as written; compile_expr(.., "r1") reads let.r1.x

EXPRESSIONS = [
    "channel.a + channel.n * 2 - 1", "channel.a / 4", "-channel.a", "channel.a / channel.b",
    "channel.big * 1.5", "channel.big + 1.0", "channel.missing + 1",
    "min(channel.a, channel.n, 7)", "max(channel.a, 1)", "clamp(channel.a, 0, 1)", "abs(channel.n)",
    "round(2.5)", "floor(channel.n / 3)", "ceil(channel.a / 2)", "sqrt(channel.a)", "sqrt(channel.n)",
    "log(channel.b)", "log(channel.a)", "exp(701)", "exp(channel.a)",
    "pick(channel.t, channel.a, channel.n)", "pick(channel.f, 1, 2)",
    "channel.a > 2 and channel.t", "channel.a > 2 and channel.f", "channel.a < 2 or channel.t",
    "not channel.t", "channel.s == \"CHANNELD_NORMAL\"", "channel.s != \"X\"",
    "channel.s in [\"A\", \"CHANNELD_NORMAL\"]", "channel.a not in [1, 2, 3]", "channel.a in [1, 2, 3.0]",
    "channel.s in [1, 2]",
    "channel.big > 1", "channel.a / channel.b > 1", "let.x * 2",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_the_generated_function_gives_what_the_tree_walker_gives(text):
    node = parse_condition(text)
    values = dict(VALUES)
    fast = compile_expr(node, "r1")
    try:
        expected = evaluate(node, values)
    except EVAL_ERRORS as err:
        with pytest.raises(type(err)) as raised:
            fast(values)
        assert str(raised.value) == str(err)
        return
    got = fast(values)
    assert got == expected and type(got) is type(expected)

