"""The runtime: owns the active policy and config, runs the cycles, wires node, store and actuators.

Everything here is reachable from `plugin.py` (lightningd) and from tests without it. The
rule: a failure in one place degrades that one thing and is said once, clearly; the fee
cycle never stops for one channel's error; a bad reload or config change never replaces
the last good policy.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from revops.act.fees import FeeActuator
from revops.act.journal import settle_quietly
from revops.act.limits import MAX_FEE_PPM
from revops.act.rebalance import Rebalancer, Settings as RebalanceSettings
from revops.diagnostics import DiagnosticError
from revops.cycle import CycleObserver, Observation, ObserverError, run_fee_cycle
from revops.facts.build import build_facts
from revops.facts.history import history_to_json
from revops.facts.price import price_to_json
from revops.facts.rebalance import rebalance_to_json
from revops.events import ForwardEventBuffer
from revops.memory import release_free_memory
from revops.facts.snapshot import FORMAT as SNAPSHOT_FORMAT
from revops.node.capture import (CycleReads, Dependencies, backfill_forwards, capture_node,
                                 detect_dependencies, recent_forwards)
from revops.node.replies import checked
from revops.node.rpc import NodeRpc, NodeRpcError
from revops.policy.engine import prepare
from revops.policy.explain import explain_json
from revops.policy.overrides import is_scoped, scoped_problem
from revops.policy.passed import PassedTests
from revops.price_book import update_price_book
from revops.reserve import WalletReserve, refresh as refresh_reserve, status_json as reserve_status_json
from revops.policy.reload import PolicyHolder, ReloadResult
from revops.policy.watch import PolicyWatcher

CYCLE_KINDS = ("fees", "rebalance", "all")
FORWARD_KEEP_DAYS = 45.0  # raw forwards older than this are rolled up into daily totals
JOURNAL_KEEP_DAYS = 90.0
WATCH_INTERVAL_S = 2.0  # how often the policy folder is checksummed when auto-reload is on


class RequestError(Exception):
    """A request the runtime refuses; the message is meant for the operator as is."""


@dataclass
class RuntimeOptions:
    policy_dir: Path
    dry_run: bool = False
    fee_interval_s: int = 1800
    rebalance_interval_s: int = 900
    auto_reload: bool = False
    simulated_clock: bool = False
    max_fee_ppm: int = MAX_FEE_PPM  # the actuator's hard ceiling (act/limits.py)


@dataclass
class _Status:
    dependencies: Dependencies | None = None
    last_cycle: dict = field(default_factory=dict)
    events: Counter = field(default_factory=Counter)  # notifications received, by topic
    blockheight: int | None = None
    last_rebalance: dict = field(default_factory=dict)


class Runtime:
    def __init__(self, rpc: NodeRpc, store, options: RuntimeOptions, clock, log: Callable[[str, str], None],
                 observers: Iterable[CycleObserver] = (), lds: Callable[["Runtime"], Any] | None = None,
                 lds_off_reason: str = "revenue-lds-lnbits-url is not set"):
        """`observers` hear every reload, fee cycle and rebalance cycle (metrics, ...); `lds`
        builds the Liquidity Dividend System from the finished runtime, if it is configured."""
        self.rpc = rpc = checked(rpc, log)  # every node reply is read through node/replies.py
        self.store = store
        self.options = options
        self.clock = clock
        self.log = log
        self.holder = PolicyHolder(options.policy_dir, overrides=store.get_overrides(),
                                   remembered=PassedTests.default())
        self.fees = FeeActuator(rpc, options.dry_run, options.max_fee_ppm)
        self.rebalancer = Rebalancer(rpc, store, options.dry_run, log)
        self.status_ = _Status()
        self._cycle_lock = threading.Lock()
        self._reads: CycleReads | None = None  # set while a cycle runs (node/capture.py)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watcher = PolicyWatcher(options.policy_dir)
        self.forward_events = ForwardEventBuffer(store, log)
        self.observers: tuple[CycleObserver, ...] = tuple(observers)
        self.lds_off_reason = lds_off_reason
        self.reserve = WalletReserve(rpc, lambda: self.holder.current.host.wallet_reserve_sat, clock.now, log)
        self.lds = lds(self) if lds is not None else None  # revops.lds.driver.Lds when configured

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Load the policy, check dependencies, backfill forwards, start the loops."""
        result = self.reload(trigger="startup")
        if not result.ok:
            raise DiagnosticError(list(result.errors))
        settle_quietly(self.store, self.rpc, self.log)  # fee changes a crash left unjournaled
        self.store.mark_watching(self.clock.now())
        if self.check_dependencies().sling and not self.options.dry_run:
            self.rebalancer.cleanup(self.clock.now(), "startup: a job of a previous run")
        try:
            added = backfill_forwards(self.rpc, self.store)
            if added:
                self.log(f"backfilled {added} forwards from listforwards", "info")
        except NodeRpcError as err:
            self.log(f"forward backfill failed, will retry next cycle: {err}", "warn")
        if not self.options.simulated_clock:
            self._spawn("revops-fees", lambda: self.options.fee_interval_s, lambda: self.cycle("fees"))
            self._spawn("revops-rebalance", lambda: self.options.rebalance_interval_s, lambda: self.cycle("rebalance"))
            if self.options.auto_reload:
                self._spawn("revops-watch", lambda: WATCH_INTERVAL_S, self._reload_if_changed)
            if self.lds is not None:  # it decides itself what is due (snapshot, solvency, payout)
                self._spawn("revops-lds", lambda: 60.0, lambda: self.lds.tick(self.clock.now()))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the loops (a running cycle finishes first), then close the store."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        with self._cycle_lock:
            deps = self.status_.dependencies
            if deps is not None and deps.sling and not self.options.dry_run:
                try:  # our jobs only; best effort, lightningd may be going down too
                    self.rebalancer.cleanup(self.clock.now(), "shutdown")
                except Exception as err:
                    self.log(f"rebalance cleanup at shutdown failed: {err}", "warn")
            self.forward_events.close()
            if self.lds is not None:
                self.lds.close()
            self.store.close()

    def _spawn(self, name: str, interval_s: Callable[[], float], job: Callable[[], Any]) -> None:
        def loop():
            while not self._stop.wait(interval_s()):
                try:
                    job()
                except Exception as err:  # a loop never dies; the next tick tries again
                    self.log(f"{name}: {type(err).__name__}: {err}", "broken")
        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def check_dependencies(self) -> Dependencies:
        deps = detect_dependencies(self.rpc)
        if self.status_.dependencies != deps:
            if not deps.sling:
                self.log("sling is not loaded: fees run, rebalancing is off until it is", "warn")
            if not deps.bookkeeper:
                self.log("bookkeeper is not loaded: accounting falls back to listforwards", "warn")
        self.status_.dependencies = deps
        return deps

    # -- policy ------------------------------------------------------------------------------

    def reload(self, trigger: str = "revenue-reload") -> ReloadResult:
        """The one reload path (RPC, file watch, startup): validate, swap or keep, record, log.

        Observers (metrics, journal) record before the log line, so whoever waits for the
        line sees the recorded state."""
        result = self.holder.reload()
        self._notify("reload_done", result)
        if result.ok:
            self._watcher.remember()
            changed = result.changed_rules
            self.log(f"policy {result.name} {result.version} loaded ({trigger}): "
                     f"{len(changed['added'])} added, {len(changed['removed'])} removed, "
                     f"{len(changed['changed'])} changed rules; {result.tests_passed} policy tests passed"
                     f"{' (remembered: the same policy, tests and code passed before)' if result.tests_remembered else ''}",
                     "info")
            for problem in result.override_problems:
                self.log(problem, "warn")
        else:
            kept = self.holder.current.compiled if self.holder.current else None
            self.log(f"policy reload failed ({trigger}); "
                     f"{'keeping ' + kept.name + ' ' + kept.version if kept else 'no policy active'}: "
                     f"{len(result.errors)} error(s)", "warn")
            for err in result.errors:
                self.log(str(err), "warn")
        return result

    def _reload_if_changed(self) -> None:
        if self._watcher.changed():
            self.reload(trigger="file change")

    # -- cycles ------------------------------------------------------------------------------

    def cycle(self, kind: str = "all", now_s: float | None = None) -> dict:
        if kind not in CYCLE_KINDS:
            raise RequestError(f"unknown cycle {kind!r}: use one of {', '.join(CYCLE_KINDS)}")
        if now_s is not None:
            if not self.clock.simulated:
                raise RequestError("`now` is only accepted with revenue-ops-sim-clock (simulation)")
            self.clock.set(now_s)
        with self._cycle_lock:
            self._reads = CycleReads()  # the fee and rebalance halves share one read of the node
            try:
                out: dict[str, Any] = {}
                if kind in ("fees", "all"):
                    out["fees"] = self._fee_cycle()
                    if out["fees"].get("set_fee"):  # setchannel changed listpeerchannels
                        self._reads.fees_changed()
                # revenue-status and the metrics show the suspension; checked on the cycle's
                # read of the node once it has one (the first read also backfills forwards)
                reads = self._reads
                refresh_reserve(self.reserve, None if reads.first else lambda: reads.capture(self.rpc))
                if kind in ("rebalance", "all"):
                    out["rebalance"] = self._rebalance_cycle()
                    self._notify("rebalance_done", out["rebalance"])
                if kind == "all" and self.lds is not None:
                    out["lds"] = self.lds.tick(self.clock.now())
                return out
            finally:
                self._reads = None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the cycle lock: no cycle runs (and the store is not shared mid-cycle) inside."""
        with self._cycle_lock:
            yield

    def observe(self, learn: bool = False) -> Observation:
        """Read the node and the store: rpc responses, channel facts, states, now. With
        `learn` (the fee cycle) the price learner's moved-on state is saved. The caller holds
        the cycle lock (`exclusive()`)."""
        now = self.clock.now()
        self.forward_events.flush()
        reads = self._reads or CycleReads()  # outside a cycle (explain, accounting): read afresh
        if reads.first:
            try:
                backfill_forwards(self.rpc, self.store)
            except NodeRpcError as err:
                self.log(f"forward backfill failed: {err}", "warn")
        rpc = reads.capture(self.rpc)
        rpc["listforwards"] = {"forwards": []}  # flows come from the store
        flows = self.store.channel_flows(now)
        states = self.store.load_states()
        price = reads.price_book
        if price is None:
            price = reads.price_book = update_price_book(
                self.store, rpc["listpeerchannels"].get("channels", []), now, self.holder.current.host.price(),
                self.log, save=learn and not self.options.dry_run)
        history = self.store.history(now, reads.forward_sums)
        reads.forward_sums = (history.in_fees_1d, history.in_volume_7d)
        facts = build_facts(rpc, now, flows, history, states, self._rebalance_history(now, flows), price)
        return Observation(rpc, facts, states, now)

    def _rebalance_history(self, now: float, flows: dict):
        """The store's rebalance ledger as facts need it, with the budget the active params give."""
        settings = RebalanceSettings.from_host(self.holder.current.host)
        if settings is None:
            return None
        revenue_1d_msat = sum(f.window("1d").fees_msat for f in flows.values())
        return self.store.rebalance_history(now, settings.budget_msat(revenue_1d_msat), settings.backoff_base_s,
                                            settings.backoff_max_s, settings.chunk_sat * 1000)

    def _fee_cycle(self) -> dict:
        """One fee cycle: the pipeline in cycle.py, then its observers."""
        result = run_fee_cycle(self)
        self.status_.last_cycle = result.summary
        self.store.set_meta("last_fee_cycle", result.summary)
        self._notify("fee_cycle_done", result)
        result.records = result.facts = None
        release_free_memory()
        return result.summary

    def _notify(self, event: str, arg) -> None:
        """Tell every observer; one that fails is logged and never stops the others or the cycle."""
        for observer in self.observers:
            try:
                getattr(observer, event)(arg)
            except ObserverError as err:  # it names its failed steps
                self.log(f"{observer.name}: {err}", "unusual")
            except Exception as err:
                self.log(f"{observer.name}: {event}: {type(err).__name__}: {err}", "unusual")

    def _rebalance_cycle(self) -> dict:
        """Watch revops' sling jobs, then start the moves the policy asks for (act/rebalance.py)."""
        deps = self.check_dependencies()
        if not deps.sling:
            expired = self.rebalancer.expire_stale(self.clock.now())
            return self._record_rebalance({"ok": False, "skipped": "sling is not loaded: rebalancing is off",
                                           **({"expired": expired} if expired else {})})
        policy = self.holder.current
        settings = RebalanceSettings.from_host(policy.host)
        if settings is None:
            return self._record_rebalance({"ok": True, "skipped": "the active policy does not use the rebalancer "
                                           "(not in its requires:, or no rebalance_budget_sat param)"})
        try:
            obs = self.observe()
        except NodeRpcError as err:
            return self._record_rebalance({"ok": False, "error": f"cannot read the node: {err}"})
        now = obs.now
        # With rebalance_enabled false the rebalancer only watches jobs and the wallet reserve
        # (facts): no decision of the policy is read, so none is evaluated.
        evaluations = (policy.evaluate_many(obs.facts, obs.states, keep_values=False, keep_trace=False)
                       if settings.enabled else [])
        values = {f.scid: f.values for f in obs.facts}
        budget_msat = next(iter(values.values()), {}).get("node.rebalance_budget_msat", 0)
        summary = self.rebalancer.cycle(evaluations, values, settings, int(budget_msat), now)
        summary["at"] = now
        return self._record_rebalance(summary)

    def _record_rebalance(self, summary: dict) -> dict:
        self.status_.last_rebalance = summary
        self.store.set_meta("last_rebalance_cycle", summary)
        return summary

    def maintain(self, now: float) -> None:
        """Retention: roll old forwards into daily totals, trim the journal, VACUUM when it pays."""
        last = self.store.get_meta("last_maintenance_s", 0) or 0
        if now - last < 86400:
            return
        self.store.rollup_and_prune(now, FORWARD_KEEP_DAYS)
        self.store.prune_journal(now, JOURNAL_KEEP_DAYS)
        self.store.prune_peer_events(now, JOURNAL_KEEP_DAYS)
        self.store.vacuum_if_worth()
        self.store.set_meta("last_maintenance_s", now)

    # -- queries -----------------------------------------------------------------------------

    def explain(self, scid: str | None = None) -> dict:
        """What the policy would do for each channel (or one), and why; touches nothing."""
        policy = self.holder.current
        with self._cycle_lock:
            obs = self.observe()
        facts, states = obs.facts, obs.states
        if scid is not None:
            facts = [f for f in facts if f.scid == scid]
            if not facts:
                raise RequestError(f"no channel {scid}")
        return explain_json(policy, policy.evaluate_many(facts, states, explain=True))

    def snapshot(self) -> dict:
        """A revops-snapshot/1 of the live node plus the plugin's per-channel state."""
        with self._cycle_lock:
            self.forward_events.flush()
            now = self.clock.now()
            rpc = capture_node(self.rpc)
            rpc["listforwards"] = {"forwards": recent_forwards(self.rpc, now - 30 * 86400)}
            deps = self.check_dependencies()
            if deps.bookkeeper:
                try:
                    rpc["bkpr-listincome"] = self.rpc.call("bkpr-listincome", {"start_time": int(now - 30 * 86400)})
                except NodeRpcError as err:
                    self.log(f"snapshot: bkpr-listincome failed: {err}", "warn")
            doc = {"format": SNAPSHOT_FORMAT, "captured_at": now, "rpc": rpc, "state": self.store.load_states(),
                   "history": history_to_json(self.store.history(now))}
            rebalance = self._rebalance_history(now, self.store.channel_flows(now))
            if rebalance is not None:
                doc["rebalance"] = rebalance_to_json(rebalance)
            price = update_price_book(self.store, rpc["listpeerchannels"].get("channels", []), now,
                                      self.holder.current.host.price(), self.log, save=False)
            doc["price"] = price_to_json(price)
            return doc

    def status(self) -> dict:
        policy = self.holder.current
        compiled = policy.compiled if policy else None
        last = self.holder.last_reload
        deps = self.status_.dependencies
        mode = "dry-run" if self.options.dry_run else "active"
        reason = None
        if deps is not None and not deps.sling:
            mode, reason = ("dry-run" if self.options.dry_run else "degraded"), "sling is not loaded: no rebalancing"
        elif (self.status_.last_rebalance.get("wallet_reserve") or {}).get("suspended"):
            reason = "wallet below reserve: rebalancing suspended"
        return {
            "policy": None if compiled is None else {
                "name": compiled.name, "version": compiled.version, "digest": compiled.digest,
                "loaded_at": self.holder.last_success.at if self.holder.last_success else None,
                "path": str(self.options.policy_dir), "overrides": policy.overrides},
            "last_reload": None if last is None else {"ok": last.ok, "at": last.at,
                                                       "errors": [str(e) for e in last.errors]},
            "mode": mode, "mode_reason": reason,
            "dependencies": deps.to_json() if deps else None,
            "channels": self.status_.last_cycle.get("channels"),
            "last_cycle": self.status_.last_cycle or self.store.get_meta("last_fee_cycle"),
            "rebalance": self.status_.last_rebalance or self.store.get_meta("last_rebalance_cycle"),
            "intervals_s": {"fees": self.options.fee_interval_s, "rebalance": self.options.rebalance_interval_s},
            "store": {"forwards": self._stored_forwards()},
            "notifications": dict(self.status_.events), "blockheight": self.status_.blockheight,
            "clock": "simulated" if self.clock.simulated else "system",
            "lds": self.lds.status_line() if self.lds else {"enabled": False, "reason": self.lds_off_reason},
            "wallet_reserve": reserve_status_json(self.reserve),
        }

    def _stored_forwards(self) -> int:
        self.forward_events.flush()
        return self.store.forward_count()

    def decisions(self, scid: str | None = None, limit: int = 50) -> dict:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10000:
            raise RequestError("limit must be an integer from 1 to 10000")
        return {"decisions": self.store.decisions(scid, limit)}

    # -- runtime config ----------------------------------------------------------------------

    def config(self, key: str | None = None, value: Any = None) -> dict:
        """List, get, set (key value) or reset (`reset [key]`) param overrides; a key
        `channel:<scid>:<param>` or `peer:<node id>:<param>` is a per-channel or per-peer
        override (policy/overrides.py), `pin_fee_ppm` as param pins the fee."""
        policy = self.holder.current
        params = policy.compiled.source.params
        stored = self.store.get_overrides()
        if key is None:
            return {"params": [self._param_view(name, policy, stored) for name in params],
                    "scoped_overrides": {k: v for k, v in stored.items() if is_scoped(k)},
                    "stale_overrides": {k: v for k, v in stored.items() if k not in params and not is_scoped(k)}}
        if is_scoped(key) or (key == "reset" and is_scoped(value)):
            return self._scoped_config(key, value, stored)
        if key == "reset":
            removed = self.store.reset_override(value) if value is not None else self.store.reset_override(None)
            if value is not None and not removed:
                raise RequestError(f"{value!r} has no override")
            self.holder.set_overrides(self._usable_overrides(policy.compiled))
            return {"reset": removed}
        if key not in params:
            raise RequestError(f"unknown param {key!r}; see `lightning-cli revenue-config` for the list")
        if value is None:
            return self._param_view(key, policy, stored)
        coerced, why = params[key].check(value)
        if why:
            raise RequestError(f"{key}: {why}")
        wanted = self._usable_overrides(policy.compiled)
        wanted[key] = coerced
        try:
            prepare(policy.compiled, wanted)  # the new snapshot must build before anything is written
        except DiagnosticError as err:
            raise RequestError(f"{key}={coerced!r} would break the policy: {err}") from None
        written = self.store.set_override(key, coerced, self.clock.now())
        if written != coerced:
            raise RequestError(f"{key}: the database stored {written!r} instead of {coerced!r}; not applied")
        self.holder.set_overrides(wanted)
        return self._param_view(key, self.holder.current, self.store.get_overrides())

    def _usable_overrides(self, compiled) -> dict[str, Any]:
        """The stored overrides this policy can use: known params and valid scoped ones."""
        return {k: v for k, v in self.store.get_overrides().items()
                if k in compiled.source.params or (is_scoped(k) and scoped_problem(compiled, k, v)[0] is None)}

    def _scoped_config(self, key: str, value: Any, stored: dict) -> dict:
        """Get, set or reset one per-channel or per-peer override, persisted like the others."""
        compiled = self.holder.current.compiled
        if key == "reset":
            removed = self.store.reset_override(value)
            if not removed:
                raise RequestError(f"{value!r} has no override")
            self.holder.set_overrides(self._usable_overrides(compiled))
            return {"reset": removed}
        if value is None:
            return {"name": key, "value": stored.get(key), "overridden": key in stored}
        why, coerced = scoped_problem(compiled, key, value)
        if why:
            raise RequestError(why)
        wanted = self._usable_overrides(compiled)
        wanted[key] = coerced
        try:
            prepare(compiled, wanted)  # the new snapshot must build before anything is written
        except DiagnosticError as err:
            raise RequestError(f"{key}={coerced!r} would break the policy: {err}") from None
        written = self.store.set_override(key, coerced, self.clock.now())
        if written != coerced:
            raise RequestError(f"{key}: the database stored {written!r} instead of {coerced!r}; not applied")
        self.holder.set_overrides(wanted)
        return {"name": key, "value": written, "overridden": True}

    @staticmethod
    def _param_view(name: str, policy, stored: dict) -> dict:
        spec = policy.compiled.source.params[name]
        return {"name": name, "value": policy.params[name], "default": spec.default, "type": spec.type,
                "min": spec.min, "max": spec.max, "unit": spec.unit, "doc": spec.doc,
                "overridden": name in stored}

    # -- notifications -----------------------------------------------------------------------

    def on_forward_event(self, event: dict) -> None:
        self.status_.events["forward_event"] += 1
        self.forward_events.add(event)

    def on_connection(self, peer_id: str, connected: bool) -> None:
        self.store.record_connection(peer_id, connected, self.clock.now())

    def on_channel_state(self, change: dict) -> None:
        scid = change.get("short_channel_id") or change.get("channel_id", "?")
        new, old = change.get("new_state"), change.get("old_state")
        self.status_.events["channel_state_changed"] += 1
        if new in ("CHANNELD_SHUTTING_DOWN", "AWAITING_UNILATERAL", "FUNDING_SPEND_SEEN", "ONCHAIN", "CLOSED"):
            self.log(f"channel {scid} {old or '(new)'} -> {new} ({change.get('cause', 'unknown')})", "info")

    def on_event(self, topic: str, payload: dict) -> None:
        """Notifications kept for status now and for accounting later (block height, balances)."""
        self.status_.events[topic] += 1
        if topic == "block_added" and isinstance(payload.get("height"), int):
            self.status_.blockheight = payload["height"]
        elif topic == "balance_snapshot":
            self.store.set_meta("last_balance_snapshot", payload)
