"""Incremental `channel_flows`: the last result kept in memory and moved forward, not rescanned.

It also keeps the per-pair sums History reads (in_fees_1d, in_volume_7d: settled forwards per
(out, in) channel over 1 d and 7 d, PAIR_SUMS) by the same updates: `pair_sums_at(now)` gives
those of the last `flows(now)` snapshot, and store.history takes them instead of grouping a
week of forwards in SQL every cycle.

A full computation (flows.window_sums) scans every forward of the last 30 days: 0.7 s at 1M
forwards, too slow for a fee cycle every 30 minutes. The cache keeps its per-channel window
sums as of the `now` they were computed for, and keeps them equal to a full computation by
two kinds of updates:

- **Writes.** Every committed change of a forward that can count (old or new row resolved)
  is applied as "remove the old row, add the new one", evaluated at the cache's `now`.
  Whatever its time: a late resolution, a replayed page or an out-of-order event is exact
  too (integer sums are; hold-time float sums are to rounding). forwards.ingest reports the
  changes; Store commits them through `commit`, which runs COMMIT and the update under one
  lock.
- **Time.** From `a` to `b > a` no forward enters a window (a forward's age only grows; one
  from the future already counts, as age < 0), so the step only removes, per window, the
  rows whose age crossed its bound: `(a - t) < bound` and not `(b - t) < bound`, the same
  float test as the SQL and as flow.py. An index on t (migration 4) finds them: ~1,400 rows
  for a 30-minute step at 1M forwards, where the full scan reads all of them.

Race-freedom. A computation takes its read snapshot (BEGIN + a first read) under the lock,
and a writer's COMMIT and its update happen under the same lock, so every change is either
in the snapshot or committed after it — never both, never neither. Changes committed while
a computation runs (after its snapshot) are queued in `_pending` and applied once it
installs its result, at its `now`; until then writers never touch the state the
computation is moving.

Float sums. Integer fields stay exact through any number of updates; hold-time sums round
at each. A channel whose sums may carry more than rounding (a large hold time added and
removed again: flows.needs_refresh) is summed again in SQL within the step's snapshot.

Full recompute instead, next time: no state yet; `now` went backwards; 24 h of `now`
progress since the last full one, or FULL_AFTER_FLOAT_OPS hold-time additions and
subtractions (so float rounding never accumulates unbounded); more than
MAX_APPLIED_CHANGES changes since (a long backfill: one scan is then cheaper than replaying
them); forwards deleted (rollup_and_prune); a COMMIT that failed; `invalidate()`.

Scope: the cache sees the writes of its own Store (all threads). Another process or Store
instance writing the same file is not seen; the plugin has one Store per database.
"""

from __future__ import annotations

import sqlite3
import threading
from sys import intern
from typing import Iterable, Mapping

from revops.facts.flow import K_SETTLED, WINDOW_BOUNDS, ChannelFlow, Windows, apply_row, first_window
from revops.store import flows as fl
from revops.store import history as hist

#: A full recompute at least this often, in seconds of `now` progress.
FULL_EVERY_S = 86_400.0
#: ... and after this many hold-time float additions/subtractions (each rounds once).
FULL_AFTER_FLOAT_OPS = 1_000_000
#: Changes applied one by one before a full recompute becomes the cheaper way.
MAX_APPLIED_CHANGES = 200_000

#: Forwards whose age may cross a bound between two times: t in (lo, hi], kind != 0.
_LEAVING_SQL = ("SELECT kind, t, out_channel, in_channel, out_msat, in_msat, fee_msat, hold_s "
                "FROM forwards INDEXED BY forwards_t WHERE kind != 0 AND t > ? AND t <= ?")
_NB = len(WINDOW_BOUNDS)
_ALL = (1 << _NB) - 1  # every window

#: The per-pair sums History carries (hist.FORWARD_SUMS: in_fees_1d, in_volume_7d): settled
#: forwards summed per (out channel, in channel) with now - window < t <= now, as (window, the
#: flow row's field, its column). The same test as store/history.py's SQL, kept here by the
#: same updates as the window sums, so a cycle does not group a week of forwards in SQL
#: (~9 ms on `hub`). Unlike the flow windows, a forward from the future counts only once `now`
#: reaches it: a step adds those that entered.
#: Above this many (out, in) pairs in all, the pair sums are not kept (until the next full
#: recompute): ~200 bytes each, and History groups them in SQL instead. A busy node has far
#: fewer; bench/cycle.py's 5,000 channels with 1M forwards between random pairs have ~250,000.
MAX_PAIRS = 50_000
_ROW_FIELD = {"out_msat": 4, "fee_msat": 6}  # a flow row's fields by column
PAIR_SUMS = tuple((window, _ROW_FIELD[column], column) for window, column in hist.FORWARD_SUMS)


def pair_sums(conn: sqlite3.Connection, now_s: float, acc: dict[str, Windows] | None = None
              ) -> list[dict[tuple, list[int]]] | None:
    """Returns, per PAIR_SUMS entry, (out, in) -> [rows, sum] as of now_s (a full computation;
    call it inside a read transaction); None as soon as there are more than MAX_PAIRS, or at
    once when the window sums `acc` of the same now_s bound them above it."""
    if acc is not None and pair_bound(acc) > MAX_PAIRS:
        return None  # SQLite would sort every group before the cap could stop it
    out, kept = [], 0
    for window, _, column in PAIR_SUMS:
        sums: dict[tuple, list[int]] = {}
        for o, i, n, total in hist.pair_rows(conn, now_s, window, column):
            kept += 1
            if kept > MAX_PAIRS:
                return None
            sums[(intern(o), intern(i))] = [n, total]
        out.append(sums)
    return out


def pair_bound(acc: dict[str, Windows]) -> int:
    """An upper bound of the pairs PAIR_SUMS would hold, from the flow windows: per window,
    each out channel pairs with at most one in channel per settled forward out and at most
    every channel with a settled forward in. The flow windows also count forwards from the
    future and test the bound the other way round, so a margin covers the edge rows."""
    bound = 0
    for window, _, _ in PAIR_SUMS:
        i = WINDOW_BOUNDS.index(window)
        counts = [fl.settled_counts(ws, i) for ws in acc.values()]
        ins = sum(1 for _, n_in in counts if n_in)
        bound += sum(min(n_out, ins) for n_out, _ in counts) + 16
    return bound


def nested(pairs: dict[tuple, list[int]]) -> Mapping[str, Mapping[str, int]]:
    """(out, in) -> [rows, sum] as out -> {in: sum}, read-only: the shape History holds."""
    result: dict[str, dict[str, int]] = {}
    for (o, i), (_, total) in pairs.items():
        result.setdefault(o, {})[i] = total
    return hist.frozen_sums(result)


class _State:
    """Window sums of every channel as of `now` (mutated in place), their ChannelFlows and
    the bookkeeping that decides the next full recompute."""

    def __init__(self, acc: dict[str, Windows], now_s: float, pairs: list[dict[tuple, list[int]]] | None):
        self.acc = acc
        self.pairs = pairs  # per PAIR_SUMS entry: (out, in) -> [rows, sum]; None: more than MAX_PAIRS
        self.now = now_s
        self.full_now = now_s
        self.last: dict[str, tuple] = {}
        self.built: dict[str, ChannelFlow] = {}
        # scid -> bitmask of the windows whose sums changed since the last result (0: only
        # its last times did): the rest of its previous ChannelFlow is reused as is.
        self.dirty: dict[str, int] = dict.fromkeys(acc, _ALL)
        self.float_ops = 0
        self.applied = 0

    def needs_full(self, now_s: float) -> bool:
        """Returns whether moving to now_s must be a full recompute instead of a step."""
        return (now_s < self.now or now_s - self.full_now >= FULL_EVERY_S
                or self.float_ops >= FULL_AFTER_FLOAT_OPS or self.applied > MAX_APPLIED_CHANGES)

    def apply(self, changes: Iterable[tuple]) -> None:
        """Applies (old, new) flow rows of committed writes at self.now."""
        acc, now = self.acc, self.now
        for old, new in changes:
            for row, sign in ((old, -1), (new, 1)):
                if row is not None:
                    lo = first_window(now, row[1])
                    self._touch(apply_row(acc, row, sign, lo, _NB), lo, _NB)
                    if self.pairs is not None:
                        for k, (window, _, _) in enumerate(PAIR_SUMS):
                            if now - window < row[1] <= now:
                                self._pair_row(k, row, sign)
                    if row[7] is not None:
                        self.float_ops += 1
            self.applied += 1

    def _pair_row(self, k: int, row: tuple, sign: int) -> None:
        """Adds or removes one flow row in the k-th pair sums (settled ones with an out
        channel, as the SQL); a pair left without rows is dropped, as the SQL lists none."""
        if row[0] != K_SETTLED or row[2] is None or self.pairs is None:
            return
        key = (intern(row[2]), intern(row[3]))  # one copy of each scid, not one per pair
        pairs = self.pairs[k]
        cell = pairs.get(key) or pairs.setdefault(key, [0, 0])
        cell[0] += sign
        cell[1] += sign * int(row[PAIR_SUMS[k][1]] or 0)
        if cell[0] == 0:
            del pairs[key]
        elif cell[0] == sign == 1 and sum(map(len, self.pairs)) > MAX_PAIRS:
            self.pairs = None

    def _touch(self, scids: list[str], lo: int, hi: int) -> None:
        """Marks windows lo..hi-1 of the channels changed."""
        mask = ((1 << hi) - 1) ^ ((1 << lo) - 1)
        for scid in scids:
            self.dirty[scid] = self.dirty.get(scid, 0) | mask

    def advance(self, conn: sqlite3.Connection, now_s: float) -> int:
        """Moves the sums from self.now to now_s (later) by removing, per window, the
        forwards that aged out of it; returns how many (row, window) pairs it removed."""
        a, b = self.now, now_s
        removed = 0
        if b > a:
            for i, bound in enumerate(WINDOW_BOUNDS):
                # The 1 s margins only widen the index range; the exact test is below.
                for row in conn.execute(_LEAVING_SQL, (a - bound - 1.0, b - bound + 1.0)):
                    t = row[1]
                    if (a - t) < bound and not (b - t) < bound:
                        self._touch(apply_row(self.acc, row, -1, i, i + 1), i, i + 1)
                        self.float_ops += row[7] is not None
                        removed += 1
            self._advance_pairs(conn, a, b)
        self.now = b
        return removed

    def _advance_pairs(self, conn: sqlite3.Connection, a: float, b: float) -> None:
        """Moves the pair sums from a to b > a: forwards counted at a and not at b leave
        (a - w < t <= b - w), forwards not counted at a and counted at b enter (those from
        a's future: max(a, b - w) < t <= b); the same float tests as the SQL."""
        for k, (window, _, _) in enumerate(PAIR_SUMS):
            for lo, hi, sign in ((a - window, min(a, b - window), -1), (max(a, b - window), b, 1)):
                if hi > lo and self.pairs is not None:
                    for row in conn.execute(_LEAVING_SQL, (lo, hi)):
                        self._pair_row(k, row, sign)

    def refresh(self, conn: sqlite3.Connection) -> int:
        """Sums again in SQL (as of self.now) the changed channels whose hold-time sums may
        carry more than rounding (flows.needs_refresh); returns how many."""
        stale = [s for s, m in self.dirty.items()
                 if m and s in self.acc and fl.needs_refresh(self.acc[s])]
        for scid in stale:
            self.dirty[scid] = _ALL
            ws = fl.window_sums(conn, self.now, scid).get(scid)
            if ws is None:
                del self.acc[scid]
            else:
                self.acc[scid] = ws
        return len(stale)

    def result(self, last: dict[str, tuple]) -> dict[str, ChannelFlow]:
        """Returns scid -> ChannelFlow with last times `last`, rebuilding only the channels
        whose sums or last times changed since the previous result."""
        if last != self.last:
            prev = self.last
            for s, times in last.items():
                if prev.get(s) != times:
                    self.dirty.setdefault(s, 0)
            for s in prev.keys() - last.keys():  # never in practice: rows are kept
                self.dirty.setdefault(s, 0)
            self.last = last
        for scid, changed in self.dirty.items():
            ws = self.acc.get(scid)
            if changed and ws is not None and not fl.has_forwards(ws):
                del self.acc[scid]  # everything aged out: as if never counted
                ws = None
            lt = last.get(scid)
            if ws is None and lt is None:
                self.built.pop(scid, None)
            else:
                self.built[scid] = fl.make_flow(scid, ws, lt, self.built.get(scid), changed)
        self.dirty.clear()
        return dict(self.built)


class FlowCache:
    """channel_flows kept up to date across calls; one per Store, safe across threads."""

    def __init__(self) -> None:
        # Guards _state, _pending and _epoch; writers hold it across COMMIT (see module doc).
        self._lock = threading.Lock()
        # One computation at a time (two would move the same state).
        self._compute = threading.Lock()
        self._state: _State | None = None
        self._pending: list | None = None  # changes committed during a computation
        self._epoch = 0  # bumped by every invalidation
        self.last_step: dict = {}  # how the last call went (full or step, rows), for benches
        # the `now` of the last flows() snapshot while its pair sums are the state's (no write since)
        self._pairs_now: float | None = None

    def commit(self, conn: sqlite3.Connection, changes: list, invalidate: bool = False) -> None:
        """COMMITs conn's write transaction and applies its forward changes (flow rows from
        forwards.ingest) to the cache, atomically with respect to computations' snapshots;
        `invalidate` drops the cache instead (rows deleted)."""
        with self._lock:
            try:
                conn.execute("COMMIT")
            except BaseException:
                self._invalidate()  # did it commit? unknown: recompute rather than guess
                raise
            if changes:
                self._pairs_now = None  # the state's pair sums are newer than the snapshot
            if invalidate:
                self._invalidate()
            elif not changes:
                pass
            elif self._pending is not None:
                self._pending.extend(changes)
            elif self._state is not None:
                if self._state.applied + len(changes) > MAX_APPLIED_CHANGES:
                    self._invalidate()
                else:
                    self._state.apply(changes)

    def invalidate(self) -> None:
        """Makes the next flows() call a full recompute."""
        with self._lock:
            self._invalidate()

    def _invalidate(self) -> None:
        self._state = None
        self._pairs_now = None
        self._epoch += 1
        if self._pending is not None:
            self._pending.clear()  # the running computation will not keep its state

    def flows(self, conn: sqlite3.Connection, now_s: float) -> dict[str, ChannelFlow]:
        """Returns scid -> ChannelFlow as of now_s, equal to flows.channel_flows over the
        current rows; a step from the last call's result when possible (see module doc)."""
        now_s = float(now_s)
        with self._compute:
            with self._lock:
                state = self._state
                full = state is None or state.needs_full(now_s)
                conn.execute("BEGIN")
                try:
                    # The snapshot starts at the first read: take it while writers wait.
                    conn.execute("SELECT horizon_s FROM forward_cursor WHERE id = 1").fetchone()
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._pending = []
                epoch = self._epoch
                if full:
                    self._state = None
            try:
                try:
                    if full:
                        acc = fl.window_sums(conn, now_s)
                        state = _State(acc, now_s, pair_sums(conn, now_s, acc))
                        removed = refreshed = 0
                    else:
                        removed = state.advance(conn, now_s)
                        refreshed = state.refresh(conn)
                    last = fl.channel_last(conn)
                finally:
                    conn.execute("COMMIT")  # ends the read transaction
                result = state.result(last)
            except BaseException:
                with self._lock:
                    self._pending = None
                    self._invalidate()
                raise
            with self._lock:
                pending, self._pending = self._pending, None
                if self._epoch == epoch:
                    # Writes committed after the snapshot: not in this result (it is one
                    # snapshot's), counted from the next one on.
                    state.apply(pending)
                    self._state = state
                else:
                    self._state = None  # invalidated meanwhile; result is right for the snapshot
                # History may take the snapshot's pair sums while nothing was written since
                self._pairs_now = now_s if self._state is state and not pending else None
            self.last_step = {"full": full, "removed": removed, "refreshed": refreshed,
                              "pending": len(pending)}
            return result

    def pair_sums_at(self, now_s: float) -> tuple | None:
        """(in_fees_1d, in_volume_7d) of the snapshot the last flows() call read, if it was as
        of now_s and no forward was written since; None otherwise (the caller sums in SQL)."""
        with self._lock:
            if (self._pairs_now is None or self._pairs_now != float(now_s) or self._state is None
                    or self._state.pairs is None):
                return None
            # built on demand, not kept: at 5,000 channels they are tens of MB
            return tuple(nested(p) for p in self._state.pairs)
