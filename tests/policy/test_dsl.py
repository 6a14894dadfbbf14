"""The DSL parser: shapes, readable errors, and fuzzing (any input: an AST or a located error)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.diagnostics import DiagnosticError
from revops.policy.compile import compile_policy
from revops.policy.dsl import And, Compare, DslSyntaxError, In, Not, Num, Or, Ref, parse_actions, parse_condition
from revops.policy.engine import prepare
from revops.policy.load import load_policy
from tests.policy.helpers import FACT_TYPES, write_policy


def test_precedence_and_flattening():
    node = parse_condition("a.b > 1 and not a.c or x.y in [1, 2]")
    assert isinstance(node, Or) and len(node.items) == 2
    left, right = node.items
    assert isinstance(left, And) and isinstance(left.items[1], Not)
    assert isinstance(right, In) and [i.value for i in right.items] == [1, 2]


def test_numbers_and_negation():
    node = parse_condition("channel.fee_ppm >= -1_000.5e0")
    assert isinstance(node, Compare) and isinstance(node.right, Num) and node.right.value == -1000.5


def test_keywords_are_word_bounded():
    node = parse_condition("channel.order == channel.android")
    assert isinstance(node.left, Ref) and node.left.name == "channel.order"


def test_actions_list():
    actions = parse_actions("set_fee(max(1, channel.fee_ppm * 1.2)); mark(fire_sale);")
    assert [a.name for a in actions] == ["set_fee", "mark"]


@pytest.mark.parametrize("text, col, message", [
    ("channel.a 5", 11, "missing comparison operator"),
    ("channel.a >", 11, "missing operand"),
    ("(channel.a > 1", 14, "unbalanced parenthesis"),
    ("channel.a = 1", 11, "'=' is not a comparison; use '=='"),
    ("channel.a && b", 11, "use 'and'"),
    ("1 < channel.a < 2", 15, "two comparison operators"),
    ("", 1, "empty expression"),
])
def test_syntax_errors_are_located_and_readable(text, col, message):
    with pytest.raises(DslSyntaxError) as info:
        parse_condition(text)
    assert info.value.col == col and message in info.value.message


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("abcxyz_.0123456789 ()[],<>=!+-*/'\"&|#\n") +
                                ["and ", "or ", "not ", "in ", "channel.", "params.", "true"]),
                max_size=40).map("".join))
def test_fuzz_parser_never_crashes(text):
    try:
        parse_condition(text)
    except DslSyntaxError as err:
        assert err.line >= 1 and err.col >= 1 and err.message


_ATOMS = ["channel.fee_ppm", "channel.local_ratio", "channel.htlc_util", "channel.active", "channel.state",
          "params.k", "1", "0.5", "-3", '"CHANNELD_NORMAL"', "true", "state.s", "channel.nope", "min(1, channel.fee_ppm)"]
_OPS = [" < ", " >= ", " == ", " != ", " + ", " * ", " / ", " and ", " or ", " in [1, 2]", ""]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_ATOMS), st.sampled_from(_OPS)), min_size=1, max_size=5),
       st.booleans(), st.booleans())
def test_fuzz_policy_path_gives_a_policy_or_a_located_error(tmp_path_factory, parts, negate, wrap):
    expr = "".join(a + o for a, o in parts).rstrip(" +*/<>=!andorin")
    if negate:
        expr = "not " + expr
    if wrap:
        expr = f"({expr})"
    folder = write_policy(tmp_path_factory.mktemp("fuzz"), f"""
params:
  k: {{type: number, default: 2, doc: k}}
state:
  s: {{type: number, default: 0, doc: s}}
rules:
  - id: r
    stage: discovery
    when: '{expr.replace("'", "''")}'
    then: set_fee(1)
    why: x
""")
    try:
        prepare(compile_policy(load_policy(folder), FACT_TYPES))
    except DiagnosticError as err:
        for d in err.diagnostics:
            assert d.file.endswith("policy.yaml") and d.line >= 1 and d.col >= 1 and d.code and d.message
