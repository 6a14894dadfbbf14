"""Per-group, per-peer and per-channel params: one prepared policy per distinct param set.

Params are folded into the durable-rules rulesets as constants (engine.prepare), so a
channel whose params differ is decided by a PreparedPolicy of its own. `Layers` sorts the
channels of a batch by their effective params, decides each set with its own prepared
policy (built once, then cached), and adds the facts groups.yaml defines: `groups.<name>`
and the pin (`pin.active`, `pin.fee_ppm`, `pin.source`).

Where a param's value comes from, most specific first (issue 13):
    runtime channel override > groups.yaml channel > runtime peer > groups.yaml peer
    > groups.yaml groups, the first in the file that sets it > the policy's own params.
Runtime overrides are set with `revenue-config channel:<scid>:<param> VALUE` or
`peer:<node id>:<param> VALUE` (persisted in SQLite beside the global ones).

Caveat: peer-level fee syncing (sync_peer) joins channels decided by the same prepared
policy; a peer whose channels have different params is synced within each set only.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any, Mapping

from revops.diagnostics import DiagnosticError
from revops.policy.groups import NODE_ID, PIN, SCID, GroupsConfig, Override, check_param, check_pin

SCOPED_KEY = re.compile(r"^(channel|peer):([^:]+):([a-z_][a-z0-9_]*)$")
SOURCE_PREFIX = "override."  # values["override.<param>"] = where the channel's value came from


def is_scoped(key: str) -> bool:
    return isinstance(key, str) and (key.startswith("channel:") or key.startswith("peer:"))


def split_scoped(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(global param overrides, scoped ones keyed `channel:<scid>:<param>` / `peer:<id>:<param>`)."""
    flat, scoped = {}, {}
    for key, value in overrides.items():
        (scoped if is_scoped(key) else flat)[key] = value
    return flat, scoped


def scoped_problem(compiled, key: str, value: Any) -> tuple[str | None, Any]:
    """(None, coerced value) or (why the scoped override cannot be used, None)."""
    m = SCOPED_KEY.match(key)
    if m is None:
        return f"{key!r}: write channel:<scid>:<param> or peer:<node id>:<param>", None
    scope, target, name = m.groups()
    if scope == "channel" and not SCID.match(target):
        return f"{key!r}: {target!r} is not a short channel id", None
    if scope == "peer" and not NODE_ID.match(target):
        return f"{key!r}: {target!r} is not a node id (66 hex digits starting 02 or 03)", None
    if name == PIN:
        if compiled.source.groups is None:
            return (f"{key!r}: pins need a groups.yaml in the policy folder (it may be empty), "
                    "which adds the pin stage"), None
        why, fee = check_pin(value)
        return (f"{key!r}: {why}", None) if why else (None, fee)
    why, coerced = check_param(compiled.source.params, name, value)
    return (f"{key!r}: {why}", None) if why else (None, coerced)


def runtime_overrides(compiled, scoped: Mapping[str, Any]) -> tuple[Override, ...]:
    """The valid scoped runtime overrides, one Override per channel or peer."""
    by_target: dict[tuple[str, str], dict[str, Any]] = {}
    for key, value in scoped.items():
        why, coerced = scoped_problem(compiled, key, value)
        if why is None:
            scope, target, name = SCOPED_KEY.match(key).groups()
            by_target.setdefault((scope, target), {})[name] = coerced
    out = []
    for (scope, target), values in sorted(by_target.items()):
        pin = values.pop(PIN, None)
        label = f"{scope} {target}" if scope != "peer" else f"peer {target[:12]}…"
        out.append(Override(scope, target, values, pin, f"revenue-config ({label})"))
    return tuple(out)


@dataclass(frozen=True)
class _View:
    """What groups.yaml and the runtime overrides say about one channel."""

    values: dict[str, Any]  # groups.*, pin.*, override.<param> -> source
    key: tuple  # the channel's effective override params, sorted: its prepared policy's key


class Layers:
    """Evaluates a batch with each channel's effective params (see the module doc)."""

    def __init__(self, base, config: GroupsConfig | None, runtime: tuple[Override, ...]):
        self.base = base
        self.config = config
        self.runtime = runtime
        groups = config.groups if config else ()
        file_ovs = config.overrides if config else ()
        self._groups = groups
        self._channel = {o.target: o for o in runtime if o.scope == "channel"}
        self._channel_file = {o.target: o for o in file_ovs if o.scope == "channel"}
        self._peer = {o.target: o for o in runtime if o.scope == "peer"}
        self._peer_file = {o.target: o for o in file_ovs if o.scope == "peer"}
        self._group_ovs = [o for o in file_ovs if o.scope == "group"]
        self._views: dict[tuple[str, str, str], _View] = {}
        self._variants: dict[tuple, Any] = {(): base}
        self._lock = threading.Lock()

    def check(self) -> None:
        """Build the prepared policy of every override on its own, so one that cannot be
        compiled with its values fails the reload (DiagnosticError) instead of a cycle."""
        for ov in (self.config.overrides if self.config else ()) + self.runtime:
            if ov.params:
                self.variant(tuple(sorted(ov.params.items())))

    def view(self, peer_id: str, alias: str, scid: str) -> _View:
        cache_key = (peer_id, alias, scid)
        view = self._views.get(cache_key)
        if view is not None:
            return view
        values: dict[str, Any] = {}
        member = []
        for g in self._groups:
            hit = g.matches(peer_id, alias, scid)
            values[f"groups.{g.name}"] = hit
            if hit:
                member.append(g.name)
        chain = [self._channel.get(scid), self._channel_file.get(scid), self._peer.get(peer_id),
                 self._peer_file.get(peer_id)] + [o for o in self._group_ovs if o.target in member]
        params: dict[str, Any] = {}
        pin = None
        for ov in chain:
            if ov is None:
                continue
            for name, value in ov.params.items():
                if name not in params:
                    params[name] = value
                    values[SOURCE_PREFIX + name] = ov.source
            if pin is None and ov.pin_fee_ppm is not None:
                pin = ov
        if self.config is not None:
            values["pin.active"] = pin is not None
            values["pin.fee_ppm"] = pin.pin_fee_ppm if pin else 0
            values["pin.source"] = pin.source if pin else ""
        # Values equal to the policy's own need no policy of their own.
        key = tuple(sorted((k, v) for k, v in params.items() if self.base.params.get(k) != v))
        view = _View(values, key)
        if len(self._views) < 100_000:  # channels come and go; never grow without bound
            self._views[cache_key] = view
        return view

    def variant(self, key: tuple):
        """The prepared policy for the base params with `key`'s overrides (cached)."""
        policy = self._variants.get(key)
        if policy is None:
            with self._lock:
                policy = self._variants.get(key)
                if policy is None:
                    from revops.policy.engine import PreparedPolicy
                    extra = dict(key)
                    base = self.base
                    policy = PreparedPolicy(base.compiled, {**base.params, **extra}, {**base.overrides, **extra})
                    self._variants[key] = policy
        return policy

    def evaluate_many(self, facts_list: list, states, **kw) -> list:
        """Decide every channel with its own params; results in the order of `facts_list`."""
        patched, sets = [], {}
        for i, f in enumerate(facts_list):
            view = self.view(f.peer_id, f.values.get("peer.alias", ""), f.scid)
            patched.append(replace(f, values={**f.values, **view.values}) if view.values else f)
            sets.setdefault(view.key, []).append(i)
        results: list = [None] * len(facts_list)
        for key, indexes in sets.items():
            chunk = [patched[i] for i in indexes]
            try:
                done = self.variant(key)._evaluate_all(chunk, states, **kw)
            except DiagnosticError as err:  # these params cannot be compiled: keep these fees
                done = [self.base._error_evaluation(f, int(f.values.get("channel.fee_ppm", 0)), dict(f.values),
                                                    {}, f"override params do not compile: {err}") for f in chunk]
            for i, evaluation in zip(indexes, done):
                results[i] = evaluation
        return results

    def unmatched_groups(self, facts_list: list) -> list[str]:
        """Groups no channel of `facts_list` belongs to (a lint line for explain and reload)."""
        hit = set()
        for f in facts_list:
            view = self.view(f.peer_id, f.values.get("peer.alias", ""), f.scid)
            hit |= {k[7:] for k, v in view.values.items() if k.startswith("groups.") and v}
        return [g.name for g in self._groups if g.name not in hit]


def attach(base, scoped: Mapping[str, Any]):
    """`base` with its Layers when the policy has a groups.yaml or scoped overrides exist."""
    config = base.compiled.source.groups
    runtime = runtime_overrides(base.compiled, scoped)
    if config is None and not runtime:
        return base
    base.layers = Layers(base, config, runtime)
    base.layers.check()
    return base
