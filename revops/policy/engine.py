"""prepare() -> evaluate(): the pure decision function (facts, state, policy) -> decision + trace.

`prepare(compiled, overrides)` folds one set of param values into the compiled policy and
builds its durable-rules rulesets in a Host of its own, so a new policy (or new params) is
built while the old one keeps serving. `PreparedPolicy.evaluate` then decides one channel:

  1. decide phase: every rule's condition is matched (durable-rules, or the reference
     interpreter); the first stage with a matching target rule wins (priority, then file
     order, break ties); modifiers and bounds of every matching rule apply unless the
     winning stage is clamp-exempt; a guard's veto applies to its own stage and later ones.
  2. post phase: rules in post stages see decision.* and may force or suppress the
     broadcast, update state, or skip rebalancing.
Actions of a target rule that lost are not applied (it was shadowed).

Each channel is decided on its own (issue #12): anything that goes wrong while deciding
one channel — a fact that is not a finite number, NaN or an overflow in an action, even an
unforeseen exception — is that channel's `error` decision (no fee change, no state change,
the reason in the decision and the trace); the others are decided as usual. A crash or hang
of durable-rules (it runs in a worker process, see rete.py) makes that chunk's channels
`error`. State updates are finite and bounded (STATE_NUMBER_LIMIT, STATE_STRING_LIMIT); one
that is not is dropped and said in `Decision.notes`, which the runtime logs.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable, Mapping

from revops.diagnostics import Diagnostic, DiagnosticError
from revops.policy.compile import DECISION_FACTS, CompiledPolicy, CompiledRule, Template, with_lets
from revops.policy.dsl import Ref, walk
from revops.policy.encode import FactError, as_double
from revops.policy.host import HostSettings
from revops.policy.interp import EVAL_ERRORS, EvalError, evaluate, explain_false, format_value
from revops.policy.lower import Derived, DerivedFacts, LoweredRule, LoweringError, alias, lower_rule
from revops.policy.rete import ReteError, RuleSession
from revops.policy.limits import MAX_WHY_CHARS

MAX_FEE_PPM = 2**32 - 1  # setchannel's feeppm is a u32
MATCHERS = ("durable", "reference")
CHUNK = 256  # channels decided together: bounds the memory of a cycle, keeps batches large
PIPELINE = 4  # chunks in flight, so the engine worker always has a request waiting (2: -10 %)
# A state number is a finite double within ±2**53 (every integer up to it is exact, so it
# survives SQLite and JSON unchanged); a state string holds at most 1,000 characters.
STATE_NUMBER_LIMIT = 2 ** 53
STATE_STRING_LIMIT = 1000
_INT_FAST = 2 ** 52  # ints below this convert to float exactly and fast


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one channel."""

    scid: str
    peer_id: str
    action: str  # set_fee | hold | suppressed | vetoed | error
    fee_ppm: int  # the fee the decision proposes (the old one when nothing changes)
    old_fee_ppm: int
    stage: str | None
    rule: str | None
    broadcast: bool
    suppressed_by: str | None = None
    forced_by: str | None = None
    vetoed_by: str | None = None
    skip_rebalance: str | None = None
    rebalance: Mapping[str, Any] | None = None  # {"role": "target"|"source", "rule", ...} (rebalance stage)
    state_updates: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    notes: tuple[str, ...] = ()  # what was refused without failing the decision (a state update out of bounds)

    def to_json(self) -> dict:
        out = {"action": self.action, "fee_ppm": self.fee_ppm, "old_fee_ppm": self.old_fee_ppm,
               "stage": self.stage, "rule": self.rule, "broadcast": self.broadcast,
               "suppressed_by": self.suppressed_by, "forced_by": self.forced_by,
               "vetoed_by": self.vetoed_by, "skip_rebalance": self.skip_rebalance,
               "rebalance": None if self.rebalance is None else dict(self.rebalance),
               "state_updates": dict(self.state_updates), "error": self.error}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    trace: tuple[dict, ...]
    values: Mapping[str, Any]  # every value the rules could read: facts, params, state, decision
    why: str | None = None  # the winning rule's rendered why


@dataclass(slots=True)
class Outcome:
    """One channel's decision while the stages run: the target's fee after modifiers and
    bounds (then peer sync), and who vetoed, suppressed or forced it. `_finish` turns it
    into the frozen Decision."""

    winner: CompiledRule | None
    fee_ppm: int
    old_fee_ppm: int
    vetoed_by: str | None
    applied: list[CompiledRule]  # the rules whose actions took effect, winner first
    exempt: bool  # a clamp-exempt stage or hold(): modifiers and bounds do not apply
    sync_rule: CompiledRule | None  # the sync_peer rule that applies, unless vetoed
    forced_by: str | None = None
    suppressed_by: str | None = None
    skip_rebalance: str | None = None
    rebalance: Mapping[str, Any] | None = None


@dataclass
class _Phase:
    name: str
    rules: list[CompiledRule]
    lowered: dict[str, LoweredRule]  # rule id -> its durable-rules form
    refs: list[tuple[str, str, str | None]]  # (dotted name, message property, type) of every fact read
    derived: list[Derived]  # operands computed in Python per channel (lower.py)
    session: RuleSession | None = None
    # Every action of every rule is a rebalance instruction: the fee cycle can skip the phase.
    rebalance_only: bool = False
    sub_rules: dict[str, str] = field(default_factory=dict)  # durable-rules rule name -> rule id
    always: frozenset = frozenset()  # rules whose condition is constantly true

    def __post_init__(self):
        self.number_refs = [(name, prop) for name, prop, kind in self.refs if kind == "number"]
        self.other_refs = [ref for ref in self.refs if ref[2] != "number"]




class PreparedPolicy:
    """One compiled policy with one set of param values, ready to evaluate. Immutable."""

    def __init__(self, compiled: CompiledPolicy, params: Mapping[str, Any], overrides: Mapping[str, Any]):
        self.compiled = compiled
        self.params = dict(params)
        self.overrides = dict(overrides)
        self.layers = None  # overrides.Layers: groups.yaml facts and per-channel params (issue 13)
        # What revops' own code reads of this policy (rebalancer, price learner, reserve, gossip)
        self.host = HostSettings.of(compiled.source.requires, self.params)
        self._param_values = {f"params.{k}": v for k, v in params.items()}
        self._state_defaults = {f"state.{k}": s.default for k, s in compiled.source.state.items()}
        # The decide phase, then one phase per post stage, in order: a later post stage sees
        # what the earlier ones did (decision.broadcast, decision.suppressed).
        stages = compiled.stages
        self._phases = [self._build_phase("decide", [r for r in compiled.rules if r.phase == "decide"])]
        self._phases += [self._build_phase(st.name, [r for r in compiled.rules if r.stage.name == st.name])
                         for st in stages if st.phase == "post"]
        for phase in self._phases:
            rules = []
            for rid, lowered in phase.lowered.items():  # constant conditions need no engine
                for k, (cond, branches) in enumerate(lowered.parts):
                    name = f"r{len(phase.sub_rules)}"
                    phase.sub_rules[name] = rid
                    rules.append((name, cond, branches))
            if rules:
                try:
                    phase.session = RuleSession(f"revops_{phase.name}", rules)
                except ReteError as err:  # the engine refused, crashed or hung: say where, keep the old policy
                    first = phase.rules[0]
                    raise DiagnosticError([Diagnostic(first.file, first.line, 1, "dsl_compile_error",
                                                      f"durable-rules could not build the {phase.name} rules: {err}")])

    # -- preparation -----------------------------------------------------------------------

    def _build_phase(self, phase: str, rules: list[CompiledRule]) -> _Phase:
        lowered: dict[str, LoweredRule] = {}
        names: dict[str, None] = {}
        errors: list[Diagnostic] = []
        derived = DerivedFacts()
        for rule in rules:
            if rule.when is None:
                lowered[rule.id] = LoweredRule(True, (), ())
                continue
            try:
                lowered[rule.id] = lower_rule(rule.id, rule.when, self.params, self._type_of, derived)
            except LoweringError as err:
                line, col = rule.when_text.locate(err.node.span.line, err.node.span.col)
                errors.append(Diagnostic(rule.when_text.pos.file, line, col, "dsl_compile_error", err.message))
                continue
            # Every fact a condition reads is checked (and posted) for every channel, by both
            # matchers alike, even where folding left the condition constant.
            for node in walk(rule.when):
                if isinstance(node, Ref) and node.path[0] != "params":
                    names[node.name] = None
        if errors:
            raise DiagnosticError(errors)
        refs = [(n, alias(n), self._type_of(n)) for n in names]
        rebalance_only = phase != "decide" and bool(rules) and all(
            a.spec.kind == "rebalance" for r in rules for a in r.actions)
        always = frozenset(rid for rid, low in lowered.items() if low.constant is True)
        return _Phase(phase, rules, lowered, refs, derived.all, rebalance_only=rebalance_only, always=always)

    def _type_of(self, name: str) -> str | None:
        if name.startswith("state."):
            spec = self.compiled.source.state.get(name[6:])
            return spec.type if spec else None
        if name.startswith("decision."):
            return DECISION_FACTS.get(name)
        return self.compiled.fact_types.get(name)

    def rebalance_stages(self) -> set[str]:
        """Post stages that hold only rebalance instructions (skipped by the fee cycle)."""
        return {p.name for p in self._phases if p.rebalance_only}

    def durable_rulesets(self) -> dict[str, dict]:
        """The lowered durable-rules conditions per phase (True/False when constant), for tests."""
        return {p.name: {rid: low.condition for rid, low in p.lowered.items()} for p in self._phases}

    def engine_rulesets(self) -> dict[str, int]:
        """How many durable-rules rulesets each phase is spread over (rete.MAX_BRANCHES each)."""
        return {p.name: len(p.session.names) if p.session else 0 for p in self._phases}

    # -- matching --------------------------------------------------------------------------

    @staticmethod
    def _fact(phase: _Phase, key: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The message durable-rules gets for one channel: every fact the phase's conditions
        read, numbers as finite doubles; raise FactError (that channel's error) otherwise.
        Both matchers call this, so a bad fact is the same error under either."""
        fact: dict[str, Any] = {"scid": key}
        try:
            for name, prop in phase.number_refs:  # most facts: checked on the fast path
                v = values[name]
                if v.__class__ is float and v - v == 0.0:  # finite (inf - inf and nan - nan are nan)
                    fact[prop] = v
                elif v.__class__ is int and -_INT_FAST < v < _INT_FAST:
                    fact[prop] = float(v)
                else:
                    fact[prop] = as_double(v, name)
            for name, prop, kind in phase.other_refs:
                v = values[name]
                if kind == "bool" and v.__class__ is not bool:
                    raise FactError(f"{name} is not a bool ({v!r:.40})")
                if kind == "string" and v.__class__ is not str:
                    raise FactError(f"{name} is not a string ({v!r:.40})")
                fact[prop] = v
        except KeyError as err:
            raise FactError(f"{err.args[0]} has no value") from None
        return fact

    @staticmethod
    def _derive(phase: _Phase, values: Mapping[str, Any], fact: dict[str, Any]) -> dict[str, str]:
        """Compute the phase's derived facts into the message; {rule id: error} for those that fail."""
        errors: dict[str, str] = {}
        for derived in phase.derived:
            try:
                fact[derived.prop] = derived.compute(values)
            except EVAL_ERRORS as err:
                for rid in derived.rules:
                    errors.setdefault(rid, _reason(err))
        return errors

    def _submit_durable(self, phase: _Phase, items: list[tuple[str, dict]]) -> Callable[[], list]:
        """Post one fact per channel to the phase's durable-rules rulesets; returns the call
        that waits for the answer: per channel (matched rule ids, {rule id: error}, the
        channel's error or None)."""
        results: list = []
        facts, posted = [], []
        for i, (_, values) in enumerate(items):
            try:
                fact = self._fact(phase, str(i), values)
            except FactError as err:
                results.append((set(), {}, str(err)))
                continue
            results.append((None, self._derive(phase, values, fact), None))
            facts.append(fact)
            posted.append(i)
        session = phase.session if facts else None
        try:
            ticket = session.submit(facts) if session is not None else None
        except ReteError as err:
            return lambda: self._engine_failed(results, posted, err)

        def collect() -> list:
            found: dict[str, set[str]] = {}
            if session is not None:
                try:
                    found = session.collect(facts, ticket)
                except ReteError as err:
                    return self._engine_failed(results, posted, err)
            for i in posted:
                _, errors, _ = results[i]
                matched = {phase.sub_rules[name] for name in found.get(str(i), ())} | phase.always
                results[i] = (matched - errors.keys(), errors, None)
            return results
        return collect

    @staticmethod
    def _engine_failed(results: list, posted: list[int], err: ReteError) -> list:
        for i in posted:
            results[i] = (set(), {}, f"durable-rules: {err}; fees untouched")
        return results

    def _match_reference(self, phase: _Phase, values: Mapping[str, Any]) -> tuple[set[str], dict, str | None]:
        try:
            self._fact(phase, "", values)
        except FactError as err:
            return set(), {}, str(err)
        matched, errors = set(), {}
        for rule in phase.rules:
            if rule.when is None:
                matched.add(rule.id)
                continue
            try:
                if evaluate(rule.when, values):
                    matched.add(rule.id)
            except EVAL_ERRORS as err:
                errors[rule.id] = _reason(err)
        return matched, errors, None

    def _submit(self, phase: _Phase, items: list[tuple[str, dict]], matcher: str) -> Callable[[], list]:
        """Start matching a phase for these channels; the returned call gives the results."""
        if matcher == "durable":
            return self._submit_durable(phase, items)
        if matcher == "reference":
            results = [self._match_reference(phase, values) for _, values in items]
            return lambda: results
        raise ValueError(f"unknown matcher {matcher!r}; use one of {MATCHERS}")

    # -- evaluation ------------------------------------------------------------------------

    def base_values(self, facts_values: Mapping[str, Any], state: Mapping[str, Any] | None) -> dict[str, Any]:
        """Facts, params and state as one flat dict keyed by dotted names."""
        values = dict(facts_values)
        values.update(self._param_values)
        values.update(self._state_defaults)
        if state:
            for key, value in state.items():
                name = f"state.{key}"
                if name in self._state_defaults:
                    values[name] = value
        return values

    def evaluate(self, facts, state: Mapping[str, Any] | None = None, *, matcher: str = "durable",
                 explain: bool = False, rebalance: bool = True) -> Evaluation:
        """Decide one channel. `facts` is a revops.facts.build.ChannelFacts."""
        return self.evaluate_many([facts], {facts.scid: state or {}}, matcher=matcher, explain=explain,
                                  rebalance=rebalance)[0]

    def evaluate_many(self, channel_facts: Iterable, states: Mapping[str, Mapping[str, Any]] | None = None,
                      *, matcher: str = "durable", explain: bool = False,
                      keep_values: bool = True, keep_trace: bool = True,
                      rebalance: bool = True) -> list[Evaluation]:
        """Decide every channel, CHUNK channels at a time (one durable-rules batch per phase each).

        `keep_values=False` drops each channel's value dict once decided: the fee cycle does
        not need it, and at 5,000 channels those dicts are most of the memory a cycle uses.
        `keep_trace=False` skips the trace (the fee cycle journals the winner's `why` only).
        `rebalance=False` skips post stages that hold only rebalance instructions (the fee
        cycle does not act on them; the rebalance cycle, explain and tests do).
        """
        kw = dict(matcher=matcher, explain=explain, keep_values=keep_values, keep_trace=keep_trace,
                  rebalance=rebalance)
        if self.layers is not None:  # channels with other params are decided by their own policy
            return self.layers.evaluate_many(list(channel_facts), states or {}, **kw)
        return self._evaluate_all(list(channel_facts), states or {}, **kw)

    def _evaluate_all(self, facts_list: list, states, *, matcher: str, explain: bool, keep_values: bool,
                      keep_trace: bool, rebalance: bool) -> list[Evaluation]:
        """PIPELINE chunks in flight: while the engine worker matches one chunk's phase, Python
        decides another (each chunk is a generator that yields at every engine request)."""
        results: list[Evaluation] = [None] * len(facts_list)  # type: ignore[list-item]
        chunks = iter(_peer_chunks(facts_list))
        running: deque = deque()  # (chunk, its steps, the answer it waits for or None)
        while True:
            while len(running) < PIPELINE and (chunk := next(chunks, None)) is not None:
                steps = self._chunk_steps([facts_list[i] for i in chunk], states, matcher, explain,
                                          keep_values, keep_trace, rebalance)
                running.append((chunk, steps, None))
            if not running:
                return results
            chunk, steps, waiting = running.popleft()
            try:
                running.append((chunk, steps, steps.send(waiting() if waiting else None)))
            except StopIteration as done:
                for i, evaluation in zip(chunk, done.value):
                    results[i] = evaluation

    def _chunk_steps(self, facts_list: list, states, matcher: str, explain: bool, keep_values: bool,
                     keep_trace: bool, rebalance: bool = True) -> Generator[Callable[[], list], list, list[Evaluation]]:
        items = [(f.scid, self.base_values(f.values, states.get(f.scid))) for f in facts_list]
        decide, posts = self._phases[0], self._phases[1:]
        if not rebalance:
            posts = [p for p in posts if not p.rebalance_only]
        results: list[Evaluation | None] = [None] * len(items)

        def fail(i: int, old_fee: int, trace: dict, err) -> None:
            # One channel's error decision; the others go on (issue #12).
            reason = err if isinstance(err, str) else _reason(err)
            results[i] = self._error_evaluation(facts_list[i], old_fee, items[i][1], trace, reason)

        pending = []  # (index, outcome, trace, errors) of channels that reach the post phases
        decided = yield self._submit(decide, items, matcher)
        for i, ((scid, values), (matched, errors, problem)) in enumerate(zip(items, decided)):
            old_fee = _old_fee(values)
            trace: dict[str, dict] = {}
            if problem is not None:
                fail(i, old_fee, trace, problem)
                continue
            try:
                outcome = self._decide(decide, matched, values, old_fee, trace)
            except Exception as err:  # noqa: BLE001 — any failure is this channel's alone
                fail(i, old_fee, trace, err)
                continue
            pending.append((i, outcome, trace, errors))
        _sync_peers([(outcome, items[i][1], trace) for i, outcome, trace, _ in pending])
        for i, outcome, _, _ in pending:
            items[i][1].update(_decision_values(outcome, outcome.old_fee_ppm))
        for post in posts:
            survivors = []
            post_items = [items[i] for i, *_ in pending]
            post_results = yield self._submit(post, post_items, matcher)
            for entry, (matched, post_errors, problem) in zip(pending, post_results):
                i, outcome, trace, errors = entry
                values = items[i][1]
                if problem is not None:
                    fail(i, outcome.old_fee_ppm, trace, problem)
                    continue
                errors.update(post_errors)
                try:
                    self._post(post, matched, values, outcome, trace)
                    values.update(_broadcast_values(outcome, values))
                except Exception as err:  # noqa: BLE001
                    fail(i, outcome.old_fee_ppm, trace, err)
                    continue
                survivors.append(entry)
            pending = survivors
        for i, outcome, trace, errors in pending:
            facts, values = facts_list[i], items[i][1]
            old_fee = outcome.old_fee_ppm
            try:
                outcome.skip_rebalance, outcome.rebalance = _rebalance_plan(outcome.applied, values)
                state_updates, notes = self._state_updates(outcome.applied, values)
                decision = self._finish(facts, outcome, old_fee, state_updates, notes)
                winner = outcome.winner
                why = render_why(winner.why, values) if winner is not None else None
                events = tuple(self._trace(values, trace, errors, explain)) if keep_trace else ()
            except Exception as err:  # noqa: BLE001
                fail(i, old_fee, trace, err)
                continue
            results[i] = Evaluation(decision, events, values if keep_values else {}, why)
        if not keep_values:
            results = [r if not r.values else Evaluation(r.decision, r.trace, {}, r.why) for r in results]
        return results

    def _decide(self, phase: _Phase, matched: set[str], values, old_fee: int, trace: dict) -> Outcome:
        winner: CompiledRule | None = None
        in_order = [rule for rule in phase.rules if rule.id in matched]  # a few of many
        for rule in in_order:
            if rule.is_target:
                winner = rule
                break
        fee = float(old_fee)
        if winner is not None:
            target = next(a for a in winner.actions if a.spec.kind == "target")
            fee = _finite(target.value(0, values), "set_fee") if target.spec.name == "set_fee" else float(old_fee)
            trace[winner.id] = {"outcome": "won", "effects": [{"action": target.spec.name, "fee_ppm": [old_fee, fee]}]}
        # A clamp-exempt stage's fee is final, and so is hold(): "leave this fee alone".
        exempt = winner is not None and (winner.stage.clamp_exempt or
                                         any(a.spec.name == "hold" for a in winner.actions))
        winner_index = winner.stage_index if winner else len(self.compiled.stages)
        applied: list[CompiledRule] = [winner] if winner else []
        floors: list[tuple[float, str]] = []
        ceilings: list[tuple[float, str]] = []
        vetoed_by = None
        sync_rule = None
        for rule in in_order:
            if rule is winner:
                continue
            if rule.is_target:
                trace[rule.id] = {"outcome": "shadowed", "by": winner.id if winner else None}
                continue
            effects = []
            outcome = "applied"
            for action in rule.actions:
                kind = action.spec.kind
                if kind == "modifier":
                    if exempt:
                        outcome = "exempt"
                        continue
                    arg = _finite(action.value(0, values), action.spec.name)
                    new = _finite(fee * arg if action.spec.name == "multiply" else fee + arg,
                                  f"the fee after {action.spec.name}")
                    effects.append({"action": action.spec.name, "fee_ppm": [fee, new]})
                    fee = new
                elif kind == "bound":
                    if exempt:
                        outcome = "exempt"
                        continue
                    bound = _finite(action.value(0, values), action.spec.name)
                    (floors if action.spec.name == "raise_floor" else ceilings).append((bound, rule.id))
                    effects.append({"action": action.spec.name, "ppm": bound})
                elif kind == "sync":
                    if exempt or winner is None:
                        outcome = "exempt" if exempt else "not_applicable"
                        continue
                    sync_rule = rule
                elif kind == "guard":
                    if winner is not None and rule.stage_index <= winner_index and vetoed_by is None:
                        vetoed_by = rule.id
                        effects.append({"action": "veto", "reason": action.value(0, values)})
                    elif winner is not None:
                        outcome = "not_applicable"
            trace[rule.id] = {"outcome": outcome, "effects": effects}
            if outcome == "applied":
                applied.append(rule)
        if not exempt:
            fee = self._clamp(fee, floors, ceilings, trace)
        fee_ppm = min(MAX_FEE_PPM, max(0, int(math.floor(fee + 0.5))))
        return Outcome(winner=winner, fee_ppm=fee_ppm, old_fee_ppm=old_fee, vetoed_by=vetoed_by, applied=applied,
                       exempt=exempt, sync_rule=sync_rule if not vetoed_by else None)

    @staticmethod
    def _clamp(fee: float, floors, ceilings, trace: dict) -> float:
        # Floors first, then ceilings: when they conflict the ceiling (the operator's hard
        # cap on what a channel may charge) wins, and the trace says so.
        if floors:
            floor, rid = max(floors)
            if fee < floor:
                trace[rid].setdefault("effects", []).append({"action": "clamp_floor", "fee_ppm": [fee, floor]})
                fee = floor
        if ceilings:
            ceiling, rid = min(ceilings)
            if fee > ceiling:
                trace[rid].setdefault("effects", []).append({"action": "clamp_ceiling", "fee_ppm": [fee, ceiling]})
                fee = ceiling
        return fee

    def _post(self, phase: _Phase, matched: set[str], values, outcome: Outcome, trace: dict) -> None:
        for rule in phase.rules:
            if rule.id not in matched:
                continue
            effects = []
            for action in rule.actions:
                name = action.spec.name
                if name == "force_broadcast" and outcome.forced_by is None:
                    outcome.forced_by = rule.id
                    effects.append({"action": name})
                elif name == "suppress_broadcast" and outcome.suppressed_by is None:
                    outcome.suppressed_by = rule.id
                    effects.append({"action": name, "reason": action.value(0, values)})
                elif action.spec.kind == "rebalance":
                    effects.append({"action": name})
            trace[rule.id] = {"outcome": "applied", "effects": effects}
            outcome.applied.append(rule)

    def _state_updates(self, applied: list[CompiledRule], values) -> tuple[dict[str, Any], tuple[str, ...]]:
        """(the state that changes, notes on updates refused for being out of bounds)."""
        updates: dict[str, Any] = {}
        notes: list[str] = []
        for rule in applied:
            for action in rule.actions:
                if action.spec.kind != "state":
                    continue
                name = action.args[0].path[-1]
                if action.spec.name == "mark":
                    updates[name] = True
                elif action.spec.name == "clear":
                    updates[name] = False
                else:
                    value = action.value(1, values)
                    why = _state_out_of_bounds(value)
                    if why:
                        notes.append(f"{rule.id}: set_state({name}) refused: {why}; state.{name} kept")
                        continue
                    updates[name] = value
        # Only what changes: most state (an EMA at rest, a flag already set) stays as it is,
        # and every update is a database write in the fee cycle.
        return {name: v for name, v in updates.items() if values.get(f"state.{name}") != v}, tuple(notes)

    def _finish(self, facts, outcome: Outcome, old_fee: int, state_updates, notes: tuple[str, ...] = ()) -> Decision:
        winner = outcome.winner
        fee = outcome.fee_ppm
        changed = fee != old_fee
        action, broadcast = "hold", False
        if outcome.vetoed_by and changed:
            action, fee = "vetoed", old_fee
        elif changed and outcome.suppressed_by and not outcome.forced_by:
            action = "suppressed"
        elif changed:
            action, broadcast = "set_fee", True
        return Decision(
            scid=facts.scid, peer_id=facts.peer_id, action=action, fee_ppm=fee, old_fee_ppm=old_fee,
            stage=winner.stage.name if winner else None, rule=winner.id if winner else None,
            broadcast=broadcast, suppressed_by=outcome.suppressed_by if action == "suppressed" else None,
            forced_by=outcome.forced_by if action == "set_fee" else None,
            vetoed_by=outcome.vetoed_by if action == "vetoed" else None,
            skip_rebalance=outcome.skip_rebalance, rebalance=outcome.rebalance,
            state_updates=state_updates, notes=notes)

    def _error_evaluation(self, facts, old_fee: int, values, trace, message: str) -> Evaluation:
        decision = Decision(scid=facts.scid, peer_id=facts.peer_id, action="error", fee_ppm=old_fee,
                            old_fee_ppm=old_fee, stage=None, rule=None, broadcast=False,
                            error=f"eval_error: {message}; keeping the current fee")
        try:
            events = tuple(self._trace(values, trace, {}, explain=True))
        except Exception:  # noqa: BLE001 — the error decision stands without its trace
            events = ()
        return Evaluation(decision, events, values)

    # -- trace -----------------------------------------------------------------------------

    def _trace(self, values, trace: dict, errors: dict[str, str], explain: bool) -> list[dict]:
        """Trace events in precedence order.

        With explain, every rule appears: matched ones with their rendered `why` and
        effects, the others with the first comparison that failed. Without it (the fee
        cycle), only rules that matched or failed to evaluate, and only the winner's `why`.
        """
        events = []
        for rule in self.compiled.rules:
            entry = trace.get(rule.id)
            if entry is not None:
                event = {"rule": rule.id, "stage": rule.stage.name, "at": rule.location, "matched": True}
                event.update(entry)
                if explain or entry["outcome"] == "won":
                    event["why"] = render_why(rule.why, values)
            elif rule.id in errors:
                event = {"rule": rule.id, "stage": rule.stage.name, "at": rule.location, "matched": False,
                         "outcome": "error", "reason": errors[rule.id]}
            elif explain:
                event = {"rule": rule.id, "stage": rule.stage.name, "at": rule.location, "matched": False,
                         "outcome": "not_matched"}
                if rule.when is not None:
                    if rule.phase == "post" and "decision.fee_ppm" not in values:
                        event["reason"] = "not reached"
                    else:
                        event["reason"] = explain_false(rule.when, values, rule.when_text.text) or "not reached"
            else:
                continue
            events.append(event)
        return events


def _reason(err: BaseException) -> str:
    """One line saying what went wrong: our own errors as they are, others with their type."""
    if isinstance(err, (EvalError, FactError)):
        text = str(err)
    else:
        text = f"{type(err).__name__}: {err}"
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= 300 else text[:297] + "..."


def _old_fee(values: Mapping[str, Any]) -> int:
    """The channel's current fee, or 0 when that fact itself is unusable (then it errors anyway)."""
    v = values.get("channel.fee_ppm", 0)
    try:
        return min(MAX_FEE_PPM, max(0, int(v)))
    except (TypeError, ValueError, OverflowError):
        return 0


def _finite(value: Any, what: str) -> float:
    """An action's number as a finite float; EvalError naming the action otherwise."""
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        text = repr(value)
        raise EvalError(f"{what} got {text if len(text) < 40 else text[:37] + '...'}") from None
    if not math.isfinite(number):
        raise EvalError(f"{what} got {number}")
    return number


def _state_out_of_bounds(value: Any) -> str | None:
    """Why a set_state value cannot be kept (None when it can): see STATE_NUMBER_LIMIT."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if len(value) <= STATE_STRING_LIMIT else f"a string of {len(value)} characters (at most {STATE_STRING_LIMIT})"
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return "not a finite number"
    if not math.isfinite(number):
        return f"{number} is not a finite number"
    if abs(number) > STATE_NUMBER_LIMIT:
        return f"{number:.6g} is beyond ±2^53"
    return None


def _rebalance_plan(applied: list[CompiledRule], values) -> tuple[str | None, dict | None]:
    """(skip, plan) from the rules that took effect, in precedence order.

    skip is the first skip_rebalance as "rule: reason"; it cancels any role. Otherwise the
    plan is the first rebalance_target ({"role": "target", "rule", "amount_sat", "max_ppm"})
    or, without one, the first rebalance_source ({"role": "source", "rule", "score"}). A target
    with amount_sat or max_ppm <= 0 has role "none" (kept, so explain shows the numbers).
    """
    skip = target = source = None
    for rule in applied:
        for action in rule.actions:
            name = action.spec.name
            if name == "skip_rebalance" and skip is None:
                skip = f"{rule.id}: {action.value(0, values)}"
            elif name == "rebalance_target" and target is None:
                amount, ppm = float(action.value(0, values)), float(action.value(1, values))
                if not (math.isfinite(amount) and math.isfinite(ppm)):
                    raise EvalError(f"rebalance_target got amount_sat={amount}, max_ppm={ppm}")
                amount_sat, max_ppm = max(0, int(amount)), min(MAX_FEE_PPM, max(0, int(ppm)))
                # A target with nothing to move (EV or Kelly not positive) is no target.
                role = "target" if amount_sat > 0 and max_ppm > 0 else "none"
                target = {"role": role, "rule": rule.id, "amount_sat": amount_sat, "max_ppm": max_ppm}
            elif name == "rebalance_source" and source is None:
                score = float(action.value(0, values))
                if not math.isfinite(score):
                    raise EvalError(f"rebalance_source got score={score}")
                source = {"role": "source", "rule": rule.id, "score": score}
    if skip is not None:
        return skip, None
    if target is not None and target["role"] == "none" and source is not None:
        return None, source
    return None, target or source


def _broadcast_values(outcome: Outcome, values: Mapping[str, Any]) -> dict[str, Any]:
    """decision.broadcast / decision.suppressed as the post stages so far have left them."""
    changed = values["decision.changed"]
    suppressed = changed and outcome.suppressed_by is not None and outcome.forced_by is None
    return {"decision.broadcast": changed and not suppressed, "decision.suppressed": suppressed}


def _peer_chunks(facts_list: list) -> list[list[int]]:
    """Indexes of the channels in chunks of about CHUNK, never splitting a peer's channels
    (peer-level fee syncing needs all of them decided together)."""
    by_peer: dict[str, list[int]] = {}
    for i, f in enumerate(facts_list):
        by_peer.setdefault(f.peer_id, []).append(i)
    chunks: list[list[int]] = [[]]
    for indexes in by_peer.values():
        if len(chunks[-1]) + len(indexes) > CHUNK and chunks[-1]:
            chunks.append([])
        chunks[-1].extend(indexes)
    return [c for c in chunks if c]


def _sync_peers(decided: list[tuple[Outcome, dict, dict]]) -> None:
    """Peer-level fee syncing on a baseline with floors (the roadmap's "Baseline/Floor
    architecture rather than Leader Override", High-02; docs/policy.md "Peer sync").

    The channels of one peer whose sync_peer rule applied share one baseline: the
    capacity-weighted median of their decided fees (the lowest fee at which at least half of
    the synced capacity is priced). Each then charges max(baseline, its own floor), never more
    than its own ceiling. Emergency fees never take part. With the leader override they all
    took the highest fee, so whoever pushed one small channel's fee up (drain it and the
    balance curve prices it high) set the price of the peer's whole capacity."""
    groups: dict[str, list[tuple[Outcome, dict, dict]]] = {}
    for outcome, values, trace in decided:
        if outcome.sync_rule is not None:
            groups.setdefault(values.get("peer.id", ""), []).append((outcome, values, trace))
    for members in groups.values():
        if len(members) < 2:
            continue
        weighted = sorted((outcome.fee_ppm, max(1.0, float(values.get("channel.capacity_sat") or 0)))
                          for outcome, values, _ in members)
        half, seen, baseline = sum(w for _, w in weighted) / 2, 0.0, weighted[-1][0]
        for fee, weight in weighted:
            seen += weight
            if seen >= half:
                baseline = fee
                break
        for outcome, _, trace in members:
            floor, ceiling = _bounds(trace)
            price = min(MAX_FEE_PPM, max(0, int(math.floor(min(max(baseline, floor), ceiling) + 0.5))))
            rid = outcome.sync_rule.id
            trace[rid].setdefault("effects", []).append(
                {"action": "sync_peer", "baseline_ppm": baseline, "fee_ppm": [outcome.fee_ppm, price]})
            outcome.fee_ppm = price


def _bounds(trace: dict) -> tuple[float, float]:
    """The highest floor and lowest ceiling that applied to one channel, from its trace."""
    floor, ceiling = 0.0, float(MAX_FEE_PPM)
    for entry in trace.values():
        for effect in entry.get("effects", ()):
            if effect.get("action") == "raise_floor":
                floor = max(floor, effect["ppm"])
            elif effect.get("action") == "lower_ceiling":
                ceiling = min(ceiling, effect["ppm"])
    return floor, ceiling


def _decision_values(outcome: Outcome, old_fee: int) -> dict[str, Any]:
    winner = outcome.winner
    fee = old_fee if outcome.vetoed_by else outcome.fee_ppm
    changed = fee != old_fee
    return {
        "decision.fee_ppm": fee,
        "decision.old_fee_ppm": old_fee,
        "decision.change_ratio": abs(fee - old_fee) / max(old_fee, 1),
        "decision.changed": changed,
        "decision.stage": winner.stage.name if winner else "",
        "decision.rule": winner.id if winner else "",
        "decision.emergency": bool(outcome.exempt),
        "decision.vetoed": outcome.vetoed_by is not None,
        # Before any post stage: a change is broadcast unless a post stage suppresses it.
        "decision.broadcast": changed,
        "decision.suppressed": False,
    }


def render_why(template: Template, values: Mapping[str, Any]) -> str:
    """The rule's `why` with its placeholders filled from the values (and the rule's lets)."""
    out = []
    if template.lets:
        try:
            with_lets(template.lets, values)
        except EVAL_ERRORS:
            pass
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        _, fmt, _, fn = part
        try:
            value = fn(values)
            out.append(format(value, fmt) if fmt else format_value(value))
        except EVAL_ERRORS:
            out.append("?")
    text = "".join(out)  # capped: the journal keeps every why (issue 12)
    return text if len(text) <= MAX_WHY_CHARS else text[:MAX_WHY_CHARS - 1] + "…"


def resolve_params(compiled: CompiledPolicy, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Defaults with valid overrides layered on; returns (params, problems with overrides)."""
    from revops.policy.overrides import is_scoped, scoped_problem
    params = {name: spec.default for name, spec in compiled.source.params.items()}
    problems = []
    for name, value in overrides.items():
        if is_scoped(name):  # channel:<scid>:<param> / peer:<id>:<param> (policy/overrides.py)
            why, _ = scoped_problem(compiled, name, value)
            if why:
                problems.append(f"override {why}")
            continue
        spec = compiled.source.params.get(name)
        if spec is None:
            problems.append(f"override of {name!r} ignored: the policy has no such param")
            continue
        coerced, why = spec.check(value)
        if why:
            problems.append(f"override of {name!r} ignored: {why}")
            continue
        params[name] = coerced
    return params, problems


def prepare(compiled: CompiledPolicy, overrides: Mapping[str, Any] | None = None) -> PreparedPolicy:
    """Fold param values into the compiled policy and build its durable-rules Host.

    Invalid overrides are dropped (see `resolve_params` to list them); a condition that
    cannot be lowered with these values raises DiagnosticError(dsl_compile_error).
    """
    from revops.policy.overrides import attach, split_scoped
    flat, scoped = split_scoped(overrides or {})
    params, _ = resolve_params(compiled, flat)
    base = PreparedPolicy(compiled, params, {k: params[k] for k in flat if k in params})
    return attach(base, scoped)  # groups.yaml and per-peer/per-channel params, if any
