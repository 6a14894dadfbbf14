"""Lowering to durable-rules keeps the meaning: random conditions, random facts, both matchers agree."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.diagnostics import DiagnosticError
from tests.policy.helpers import channel, make_policy

NUMERIC = ["channel.fee_ppm", "channel.local_ratio", "channel.htlc_util", "channel.age_days", "params.k", "state.s"]
CONST = st.sampled_from(["0", "1", "2.5", "-4", "100", "0.5"])


def _term():
    return st.one_of(st.sampled_from(NUMERIC), CONST)


def _side():
    return st.one_of(
        _term(),
        st.tuples(_term(), st.sampled_from(["+", "-", "*"]), _term()).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(NUMERIC), st.sampled_from(["2", "-0.5", "4"])).map(lambda t: f"({t[0]} / {t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), _term(), _term()).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.sampled_from(NUMERIC).map(lambda n: f"abs({n})"),
        st.sampled_from(NUMERIC).map(lambda n: f"-{n}"),
    )


def _comparison():
    return st.tuples(_side(), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _side()).map(" ".join)


def _condition():
    atoms = st.one_of(_comparison(), st.sampled_from(["channel.active", "state.b", "channel.state in [\"A\", \"CHANNELD_NORMAL\"]"]))
    return st.recursive(atoms, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda c: f"not ({c})")), max_leaves=4)


VALUES = st.fixed_dictionaries({
    "channel__fee_ppm": st.sampled_from([0, 1, 2, 100, 250, 4000]),
    "channel__local_ratio": st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    "channel__htlc_util": st.sampled_from([0.0, 0.5, 2.5, 1.0]),
    "channel__age_days": st.sampled_from([0.0, 1.0, 100.0, -4.0]),
    "channel__active": st.booleans(),
    "channel__state": st.sampled_from(["A", "CHANNELD_NORMAL", "ONCHAIN"]),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_condition(), st.lists(VALUES, min_size=1, max_size=6), st.sampled_from([0, 2, -1, 0.5]),
       st.sampled_from([0, 2.5, -4]), st.booleans())
def test_durable_rules_and_reference_interpreter_agree(tmp_path_factory, condition, rows, k, s, b):
    body = f"""
params:
  k: {{type: number, default: {k}, doc: k}}
state:
  s: {{type: number, default: 0, doc: s}}
  b: {{type: bool, default: false, doc: b}}
rules:
  - id: r
    stage: discovery
    when: '{condition}'
    then: set_fee(1)
    why: x
"""
    try:
        policy = make_policy(tmp_path_factory.mktemp("lower"), body)
    except DiagnosticError as err:
        # Only "cannot be expressed in durable-rules" is an acceptable refusal here.
        assert all(d.code in ("dsl_compile_error", "dsl_type_error") for d in err.diagnostics), str(err)
        return
    chans = [channel(f"{i}x1x0", **row) for i, row in enumerate(rows)]
    states = {c.scid: {"s": s, "b": b} for c in chans}
    durable = [e.decision.rule for e in policy.evaluate_many(chans, states)]
    reference = [e.decision.rule for e in policy.evaluate_many(chans, states, matcher="reference")]
    assert durable == reference, condition


def test_tricky_conditions_compile_and_agree(tmp_path):
    conditions = [
        "channel.fee_ppm * 2 > 300",            # isolate through * by a constant
        "-channel.fee_ppm / -2 >= 50",           # negation and division by a negative constant
        "100 - channel.fee_ppm < 0",             # fact on the right of a subtraction
        "max(channel.fee_ppm, channel.age_days) > 99",
        "min(channel.fee_ppm, channel.age_days) >= 100",
        "abs(channel.age_days - 50) < 10",
        "channel.fee_ppm + channel.age_days > 2 * params.k",
        "not (channel.fee_ppm < 100 or channel.state in [\"ONCHAIN\"])",
    ]
    body = "params:\n  k: {type: number, default: 100, doc: k}\nrules:\n" + "".join(
        f"  - id: r{i}\n    stage: safety\n    when: '{c}'\n    then: veto(\"x\")\n    why: x\n"
        for i, c in enumerate(conditions)) + "  - id: t\n    stage: discovery\n    then: set_fee(1)\n    why: t\n"
    policy = make_policy(tmp_path, body)
    lowered = policy.durable_rulesets()["decide"]
    assert all(not isinstance(lowered[f"r{i}"], bool) for i in range(len(conditions)))
    rows = [dict(channel__fee_ppm=f, channel__age_days=a, channel__state=s)
            for f in (0, 99, 100, 151, 400) for a in (-5.0, 45.0, 55.0, 100.0) for s in ("ONCHAIN", "CHANNELD_NORMAL")]
    chans = [channel(f"{i}x1x0", **row) for i, row in enumerate(rows)]

    def matched(matcher):
        return [sorted(e["rule"] for e in ev.trace if e["matched"] and e["rule"] != "t")
                for ev in policy.evaluate_many(chans, matcher=matcher, explain=True)]
    durable, reference = matched("durable"), matched("reference")
    assert durable == reference
    assert any(durable) and not all(len(m) == len(conditions) for m in durable)


FACTS = ["channel.fee_ppm", "channel.local_ratio", "channel.age_days"]


def _fact_side():
    """Arithmetic between facts (issue #13): products, ratios (division by a fact that may be
    0), min/max/abs of facts, nested; what the reference interpreter may fail on."""
    fact = st.sampled_from(FACTS)
    leaf = st.one_of(fact, CONST, st.just("params.k"))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        inner.map(lambda x: f"abs({x})")), max_leaves=4)


def _fact_condition():
    compare = st.tuples(_fact_side(), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _fact_side()).map(" ".join)
    atoms = st.one_of(compare, st.sampled_from(["true", "false", "channel.active"]))
    return st.recursive(atoms, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda c: f"not ({c})")), max_leaves=4)


FACT_VALUES = st.fixed_dictionaries({
    "channel__fee_ppm": st.sampled_from([0, 1, 3, 250, 10**6]),
    "channel__local_ratio": st.sampled_from([0.0, 1e-05, 0.1, 0.3, 1.0]),
    "channel__age_days": st.sampled_from([0.0, -4.0, 0.1, 1e16, 1e300]),
    "channel__active": st.booleans(),
})


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_fact_condition(), st.lists(FACT_VALUES, min_size=1, max_size=5), st.sampled_from([0, 3, -0.5]))
def test_arithmetic_between_facts_and_its_errors_mean_the_same_under_both_matchers(tmp_path_factory, condition, rows, k):
    body = f"""
params:
  k: {{type: number, default: {k}, doc: k}}
rules:
  - id: r
    stage: safety
    when: '{condition}'
    then: hold()
    why: x
  - id: base
    stage: discovery
    then: set_fee(1)
    why: base
"""
    try:
        policy = make_policy(tmp_path_factory.mktemp("facts"), body)
    except DiagnosticError as err:
        assert all(d.code in ("dsl_compile_error", "dsl_type_error") for d in err.diagnostics), str(err)
        return
    chans = [channel(f"{i}x1x0", **row) for i, row in enumerate(rows)]

    def outcome(matcher):
        return [(e.decision.rule, e.decision.action,
                 next(t["outcome"] for t in e.trace if t["rule"] == "r"))
                for e in policy.evaluate_many(chans, matcher=matcher, explain=True)]
    assert outcome("durable") == outcome("reference"), condition
