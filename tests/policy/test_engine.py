"""Engine semantics: precedence, exemptions, bounds, guards, post phase, state, fallbacks.

Each test runs under both matchers (durable-rules and the reference interpreter).
"""

from __future__ import annotations

import pytest

from tests.policy.helpers import channel, make_policy

MATCHERS = ["durable", "reference"]

ALPHA = """
params:
  congestion_util: {type: number, default: 0.8, min: 0, max: 1, doc: congested above this}
  min_fee_ppm: {type: int, default: 50, min: 0, max: 5000, doc: floor}
  max_fee_ppm: {type: int, default: 1000, min: 1, max: 5000, doc: ceiling}
state:
  probing: {type: bool, default: false, doc: probing}
  last_fee: {type: number, default: -1, doc: last fee}
rules:
  - id: congestion
    stage: congestion
    when: channel.htlc_util >= params.congestion_util
    then: set_fee(channel.fee_ppm * 3)
    why: "congested {channel.htlc_util:.0%}"
  - id: probe
    stage: probe
    when: channel.out_fwds_7d == 0
    then: "set_fee(0); mark(probing)"
    why: "idle: probe"
  - id: floor
    stage: premiums
    then: raise_floor(params.min_fee_ppm)
    why: floor
  - id: ceiling
    stage: premiums
    then: lower_ceiling(params.max_fee_ppm)
    why: ceiling
  - id: scarcity
    stage: premiums
    when: channel.local_ratio < 0.2
    then: multiply(1.5)
    why: scarce
  - id: base
    stage: discovery
    then: "set_fee(100 + 200 * (1 - channel.local_ratio)); set_state(last_fee, 1)"
    why: "base"
"""


@pytest.mark.parametrize("matcher", MATCHERS)
def test_first_stage_with_a_target_wins_and_later_targets_are_shadowed(tmp_path, matcher):
    policy = make_policy(tmp_path, ALPHA)
    ev = policy.evaluate(channel(channel__htlc_util=0.9, channel__out_fwds_7d=0), matcher=matcher, explain=True)
    d = ev.decision
    assert (d.stage, d.rule, d.fee_ppm, d.action) == ("congestion", "congestion", 300, "set_fee")
    outcomes = {e["rule"]: e["outcome"] for e in ev.trace}
    assert outcomes["probe"] == "shadowed" and outcomes["base"] == "shadowed"
    # a shadowed rule's state actions do not apply
    assert "probing" not in d.state_updates and "last_fee" not in d.state_updates


@pytest.mark.parametrize("matcher", MATCHERS)
def test_clamp_exempt_stage_is_not_raised_to_the_floor(tmp_path, matcher):
    policy = make_policy(tmp_path, ALPHA)
    d = policy.evaluate(channel(channel__out_fwds_7d=0, channel__local_ratio=0.1), matcher=matcher).decision
    assert (d.rule, d.fee_ppm) == ("probe", 0)  # not 50 (floor), not 0 * 1.5
    assert d.state_updates == {"probing": True}


@pytest.mark.parametrize("matcher", MATCHERS)
def test_modifiers_then_bounds_apply_to_normal_stages(tmp_path, matcher):
    policy = make_policy(tmp_path, ALPHA)
    d = policy.evaluate(channel(channel__local_ratio=0.1), matcher=matcher).decision
    assert d.fee_ppm == round((100 + 200 * 0.9) * 1.5)  # 420
    d = policy.evaluate(channel(channel__htlc_util=0.95, channel__fee_ppm=900), matcher=matcher).decision
    assert d.fee_ppm == 1000  # 2700 clamped to the ceiling


@pytest.mark.parametrize("matcher", MATCHERS)
def test_ceiling_wins_when_floor_and_ceiling_conflict(tmp_path, matcher):
    policy = make_policy(tmp_path, ALPHA, overrides={"min_fee_ppm": 2000, "max_fee_ppm": 700})
    ev = policy.evaluate(channel(), matcher=matcher, explain=True)
    assert ev.decision.fee_ppm == 700
    effects = [e["action"] for t in ev.trace for e in t.get("effects", [])]
    assert "clamp_floor" in effects and "clamp_ceiling" in effects


@pytest.mark.parametrize("matcher", MATCHERS)
def test_hold_keeps_the_fee_and_no_change_means_no_broadcast(tmp_path, matcher):
    policy = make_policy(tmp_path, ALPHA + """
  - id: not-normal
    stage: safety
    when: channel.state != "CHANNELD_NORMAL"
    then: hold()
    why: closing
""")
    d = policy.evaluate(channel(channel__state="ONCHAIN", channel__fee_ppm=7), matcher=matcher).decision
    assert (d.action, d.fee_ppm, d.broadcast, d.rule) == ("hold", 7, False, "not-normal")  # floor 50 not applied


@pytest.mark.parametrize("matcher", MATCHERS)
def test_guard_vetoes_its_own_and_later_stages_only(tmp_path, matcher):
    policy = make_policy(tmp_path, ALPHA + """
  - id: no-reprice-young
    stage: premiums
    when: channel.age_days < 3
    then: veto("channel younger than 3 days")
    why: young
""")
    d = policy.evaluate(channel(channel__age_days=1), matcher=matcher).decision
    assert (d.action, d.fee_ppm, d.vetoed_by) == ("vetoed", 100, "no-reprice-young")
    d = policy.evaluate(channel(channel__age_days=1, channel__htlc_util=0.9), matcher=matcher).decision
    assert (d.action, d.rule, d.fee_ppm) == ("set_fee", "congestion", 300)  # earlier stage: not vetoed


@pytest.mark.parametrize("matcher", MATCHERS)
def test_post_phase_sees_the_decision_and_gates_broadcast(tmp_path, matcher):
    policy = make_policy(tmp_path, ALPHA + """
  - id: emergency
    stage: gossip
    when: decision.changed and decision.emergency
    then: force_broadcast()
    why: emergency
  - id: small
    stage: gossip
    when: decision.changed and decision.change_ratio < 0.05
    then: suppress_broadcast("small")
    why: small
""")
    d = policy.evaluate(channel(channel__fee_ppm=198, channel__local_ratio=0.5), matcher=matcher).decision
    assert (d.action, d.fee_ppm, d.broadcast, d.suppressed_by) == ("suppressed", 200, False, "small")
    d = policy.evaluate(channel(channel__out_fwds_7d=0, channel__fee_ppm=1), matcher=matcher).decision
    assert (d.action, d.broadcast, d.forced_by) == ("set_fee", True, "emergency")


@pytest.mark.parametrize("matcher", MATCHERS)
def test_evaluation_error_falls_back_to_hold(tmp_path, matcher):
    policy = make_policy(tmp_path, """
rules:
  - id: divide
    stage: discovery
    then: set_fee(1000 / channel.out_fwds_7d)
    why: per forward
""")
    d = policy.evaluate(channel(channel__out_fwds_7d=0, channel__fee_ppm=42), matcher=matcher).decision
    assert (d.action, d.fee_ppm, d.broadcast) == ("error", 42, False)
    assert "division by zero" in d.error
    d = policy.evaluate(channel(channel__out_fwds_7d=4), matcher=matcher).decision
    assert d.fee_ppm == 250


@pytest.mark.parametrize("matcher", MATCHERS)
def test_fee_is_rounded_half_up_and_kept_within_u32(tmp_path, matcher):
    policy = make_policy(tmp_path, """
rules:
  - id: huge
    stage: discovery
    when: channel.local_ratio > 0.9
    then: set_fee(1e12)
    why: huge
  - id: negative
    stage: discovery
    when: channel.local_ratio < 0.1
    then: set_fee(-5)
    why: negative
  - id: half
    stage: discovery
    then: set_fee(100.5)
    why: half
""")
    assert policy.evaluate(channel(channel__local_ratio=0.95), matcher=matcher).decision.fee_ppm == 2**32 - 1
    assert policy.evaluate(channel(channel__local_ratio=0.05), matcher=matcher).decision.fee_ppm == 0
    assert policy.evaluate(channel(), matcher=matcher).decision.fee_ppm == 101


@pytest.mark.parametrize("matcher", MATCHERS)
def test_priority_breaks_ties_inside_a_stage(tmp_path, matcher):
    policy = make_policy(tmp_path, """
rules:
  - id: second
    stage: discovery
    priority: 20
    then: set_fee(2)
    why: second
  - id: first
    stage: discovery
    priority: 10
    then: set_fee(1)
    why: first
""")
    assert policy.evaluate(channel(), matcher=matcher).decision.rule == "first"


def test_explain_trace_gives_the_failing_comparison_with_values(tmp_path):
    policy = make_policy(tmp_path, ALPHA)
    ev = policy.evaluate(channel(channel__htlc_util=0.42), explain=True)
    event = next(e for e in ev.trace if e["rule"] == "congestion")
    assert event["matched"] is False
    assert event["reason"] == "channel.htlc_util 0.42 < params.congestion_util 0.8"
    won = next(e for e in ev.trace if e["outcome"] == "won")
    assert won["rule"] == "base" and won["why"] == "base"


def test_params_overrides_change_the_compiled_conditions(tmp_path):
    policy = make_policy(tmp_path, ALPHA, overrides={"congestion_util": 0.4})
    assert policy.evaluate(channel(channel__htlc_util=0.42)).decision.rule == "congestion"
    assert policy.durable_rulesets()["decide"]["congestion"] == {"$gte": {"channel__htlc_util": 0.4}}


def test_many_channels_in_one_batch_match_like_one_at_a_time(tmp_path):
    policy = make_policy(tmp_path, ALPHA)
    chans = [channel(f"{i}x1x0", channel__htlc_util=(i % 10) / 10, channel__out_fwds_7d=i % 3,
                     channel__local_ratio=(i % 7) / 7) for i in range(300)]
    batch = [e.decision for e in policy.evaluate_many(chans)]
    single = [policy.evaluate(c).decision for c in chans]
    reference = [e.decision for e in policy.evaluate_many(chans, matcher="reference")]
    assert batch == single == reference


@pytest.mark.parametrize("matcher", MATCHERS)
def test_later_post_stages_see_what_earlier_ones_did(tmp_path, matcher):
    header = """\
apiVersion: revops/v1
version: "t2"
stages:
  - name: discovery
  - name: gossip
    phase: post
  - name: memory
    phase: post
"""
    policy = make_policy(tmp_path, """
state:
  last_sent: {type: number, default: -1, doc: the fee last broadcast}
  held: {type: number, default: 0, doc: changes held back}
rules:
  - id: base
    stage: discovery
    then: set_fee(200)
    why: base
  - id: small
    stage: gossip
    when: decision.changed and decision.change_ratio < 0.05
    then: suppress_broadcast("small")
    why: small
  - id: remember-sent
    stage: memory
    when: decision.broadcast
    then: set_state(last_sent, decision.fee_ppm)
    why: sent
  - id: count-held
    stage: memory
    when: decision.suppressed
    then: set_state(held, state.held + 1)
    why: held
""", header=header)
    sent = policy.evaluate(channel(channel__fee_ppm=100), {"held": 2}, matcher=matcher).decision
    assert (sent.action, sent.state_updates) == ("set_fee", {"last_sent": 200})
    held = policy.evaluate(channel(channel__fee_ppm=199), {"held": 2}, matcher=matcher).decision
    assert (held.action, held.state_updates) == ("suppressed", {"held": 3})
    assert set(policy.durable_rulesets()) == {"decide", "gossip", "memory"}


@pytest.mark.parametrize("matcher", MATCHERS)
def test_pick_and_sign_in_actions(tmp_path, matcher):
    policy = make_policy(tmp_path, """
rules:
  - id: step
    stage: discovery
    then: set_fee(channel.fee_ppm + sign(channel.local_ratio - 0.5) * pick(channel.fee_ppm < 100, 1, 50))
    why: step
""")
    assert policy.evaluate(channel(channel__fee_ppm=80, channel__local_ratio=0.7), matcher=matcher).decision.fee_ppm == 81
    assert policy.evaluate(channel(channel__fee_ppm=300, channel__local_ratio=0.2), matcher=matcher).decision.fee_ppm == 250


def test_pick_needs_a_condition_first(tmp_path):
    from revops.diagnostics import DiagnosticError
    with pytest.raises(DiagnosticError, match="pick\\(\\) needs a condition there, got a number"):
        make_policy(tmp_path, """
rules:
  - id: step
    stage: discovery
    then: set_fee(pick(1, 2, 3))
    why: step
""")


@pytest.mark.parametrize("matcher", MATCHERS)
def test_let_values_feed_actions_why_and_later_lets(tmp_path, matcher):
    policy = make_policy(tmp_path, """
rules:
  - id: lets
    stage: discovery
    let:
      doubled: channel.fee_ppm * 2
      plus: let.doubled + 1
    then: set_fee(let.plus)
    why: "{let.doubled} then {let.plus}"
""")
    ev = policy.evaluate(channel(channel__fee_ppm=50), matcher=matcher, explain=True)
    assert ev.decision.fee_ppm == 101
    assert next(e for e in ev.trace if e["rule"] == "lets")["why"] == "100 then 101"


@pytest.mark.parametrize("body, message", [
    ("    when: let.x > 1\n    let:\n      x: channel.fee_ppm\n", "not in when"),
    ("    let:\n      x: let.y + 1\n      y: channel.fee_ppm\n", "unknown let value 'let.y'"),
])
def test_let_scoping_errors(tmp_path, body, message):
    from revops.diagnostics import DiagnosticError
    with pytest.raises(DiagnosticError, match=message):
        make_policy(tmp_path, f"""
rules:
  - id: lets
    stage: discovery
{body}    then: set_fee(1)
    why: x
""")


def test_unchanged_state_is_not_rewritten(tmp_path):
    policy = make_policy(tmp_path, """
state:
  seen: {type: bool, default: false, doc: seen}
  level: {type: number, default: 0, doc: level}
rules:
  - id: remember
    stage: discovery
    then: "hold(); mark(seen); set_state(level, 3)"
    why: remember
""")
    assert policy.evaluate(channel()).decision.state_updates == {"seen": True, "level": 3}
    assert policy.evaluate(channel(), {"seen": True, "level": 3}).decision.state_updates == {}


def test_rule_and_scid_are_read_from_the_action_text():
    from revops.policy.rete import _rule_and_scid
    assert _rule_and_scid('{"r-1":{"m":{"scid": "1x2x3", "a": 1.0, "sid": "b1"}}}') == ("r-1", "1x2x3")
    assert _rule_and_scid('{"r":{"m":{"a": 1.0, "scid": "9x9x9"}}}') == ("r", "9x9x9")  # other layout
