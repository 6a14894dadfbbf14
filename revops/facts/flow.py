"""Per-channel forwarding aggregates (`ChannelFlow`) from listforwards entries.

`ChannelFlow` holds only counts, sums, sums of squares and latest times per window, so the
plugin's store can fill it with SQL aggregates (`COUNT`, `SUM`, `MAX` over `WHERE t >= now - w`)
instead of replaying forwards. `flows_from_forwards` is the in-memory equivalent over
`listforwards.forwards`, counting each forward with `apply_row`, the same per-forward function
the store's incremental cache applies.

Counting rules (see docs/facts.md):
- Only `settled` forwards count as volume and fees. Fees are credited to the outgoing channel
  (`fees_msat`) and, as "sourced" fees, to the incoming channel (`sourced_fees_msat`).
- `local_failed` with an `out_channel`: failcodes 4107-4110 (amount below minimum, fee
  insufficient, incorrect cltv, expiry too soon) are policy refusals (`out_failed_policy`);
  every other local failure (4103 temporary channel failure: no liquidity or no free slot,
  4116 channel disabled, none given) is `out_failed_liquidity`.
- `failed` (failed downstream, after we sent the HTLC out) counts as `out_failed_remote` on
  the outgoing channel.
- Every `failed`/`local_failed` forward counts as `in_failed` on its incoming channel.
- Hold time (`resolved_time - received_time`) is sampled from `settled` and `failed` forwards
  with an outgoing channel and a `resolved_time`, and credited to the outgoing channel.
- A forward's time is its `resolved_time` when present, else its `received_time`. A forward
  from the future (clock skew) counts as age 0. `offered` (still pending) forwards count for
  nothing here: pending HTLCs are read from listpeerchannels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from revops.facts.registry import WINDOWS_S

#: local_failed failcodes that mean "your HTLC broke our channel policy", not "no liquidity":
#: 4107 amount_below_minimum, 4108 fee_insufficient, 4109 incorrect_cltv_expiry,
#: 4110 expiry_too_soon (BOLT 4, UPDATE|11..14).
POLICY_FAILCODES = frozenset({4107, 4108, 4109, 4110})


@dataclass(frozen=True)
class WindowFlow:
    """Aggregates of one channel's forwards over one time window (all SQL-computable)."""

    out_count: int = 0            # settled forwards out
    out_msat: int = 0             # sum out_msat of those
    fees_msat: int = 0            # sum fee_msat of those
    in_count: int = 0             # settled forwards in
    in_msat: int = 0              # sum in_msat of those
    sourced_fees_msat: int = 0    # sum fee_msat of those
    out_failed_liquidity: int = 0
    out_failed_policy: int = 0
    out_failed_remote: int = 0
    in_failed: int = 0
    hold_count: int = 0           # forwards out with a hold-time sample
    hold_sum_s: float = 0.0       # sum of hold times
    hold_sumsq_s2: float = 0.0    # sum of squared hold times

    @property
    def hold_avg_s(self) -> float:
        """Returns the mean hold time, 0.0 without samples."""
        return self.hold_sum_s / self.hold_count if self.hold_count else 0.0

    @property
    def hold_std_s(self) -> float:
        """Returns the population standard deviation of hold times, 0.0 with < 2 samples."""
        n = self.hold_count
        if n < 2:
            return 0.0
        mean = self.hold_sum_s / n
        var = self.hold_sumsq_s2 / n - mean * mean
        return var ** 0.5 if var > 0 else 0.0


EMPTY_WINDOW = WindowFlow()

# Offsets of WindowFlow's fields in the flat accumulators of flows_from_forwards.
_FIELDS = [f.name for f in fields(WindowFlow)]
_NFIELDS = len(_FIELDS)
#: Offset of each WindowFlow field in the accumulators (Windows).
FIELD_INDEX = {name: i for i, name in enumerate(_FIELDS)}
(_OUT_COUNT, _OUT_MSAT, _FEES, _IN_COUNT, _IN_MSAT, _SOURCED, _OUT_FAILED_LIQUIDITY,
 _OUT_FAILED_POLICY, _OUT_FAILED_REMOTE, _IN_FAILED, _HOLD_COUNT, _HOLD_SUM, _HOLD_SUMSQ) = (
    _FIELDS.index(n) for n in (
        "out_count", "out_msat", "fees_msat", "in_count", "in_msat", "sourced_fees_msat",
        "out_failed_liquidity", "out_failed_policy", "out_failed_remote", "in_failed",
        "hold_count", "hold_sum_s", "hold_sumsq_s2"))


@dataclass(frozen=True)
class ChannelFlow:
    """One channel's forwarding aggregates: a WindowFlow per WINDOWS_S label, and last times."""

    scid: str
    windows: Mapping[str, WindowFlow] = field(default_factory=dict)
    last_out_s: float | None = None   # unix time of the latest settled forward out, None = never
    last_in_s: float | None = None    # unix time of the latest settled forward in, None = never

    def window(self, label: str) -> WindowFlow:
        """Returns the WindowFlow for `label` ("1d", "7d", "30d"), empty when absent."""
        return self.windows.get(label, EMPTY_WINDOW)


#: The windows, shortest first: their lengths in seconds and their labels ("1d", "7d", "30d").
WINDOW_BOUNDS = tuple(sorted(WINDOWS_S.values()))
WINDOW_LABELS = tuple(sorted(WINDOWS_S, key=WINDOWS_S.__getitem__))


# --- one forward: the counting rules, shared by every aggregation -----------------------------
# flows_from_forwards below (a listforwards reply), the store's incremental cache
# (store/flowcache.py) and its row columns (store/forwards.py) all count a forward through
# these functions; the store's SQL sums (store/flows.py) are the same sums, proven equal by
# tests/store/test_flows.py.

#: How a forward counts: the store's `kind` column.
K_OFFERED, K_SETTLED, K_REMOTE, K_LIQUIDITY, K_POLICY = 0, 1, 2, 3, 4


def forward_kind(status: str, failcode: Any) -> int | None:
    """Returns the K_* of a forward's status ("offered", "settled", "failed", "local_failed");
    local_failed splits by failcode into policy (4107-4110) and liquidity (anything else,
    or none). None for an unknown status."""
    if status == "settled":
        return K_SETTLED
    if status == "failed":
        return K_REMOTE
    if status == "local_failed":
        return K_POLICY if failcode in POLICY_FAILCODES else K_LIQUIDITY
    return K_OFFERED if status == "offered" else None


#: Bitcoin's standard dust limit, lightningd's default dust_limit_msat. A forward out smaller
#: than this locks no capital worth a hold-time premium: a flood of 1-10 sat HTLCs held for
#: minutes (jamming) would otherwise make every channel it crosses look slow.
DUST_MSAT = 546_000


def forward_times(kind: int, received: float | None, resolved: float | None,
                  out_msat: int | None) -> tuple[float, float | None]:
    """Returns (t, hold_s): t is resolved_time, else received_time, else 0 (a zero time
    counts as absent); hold_s is resolved - received for settled and failed forwards with
    both times, else None, and None for a dust forward (out_msat below DUST_MSAT; 0 or None:
    the amount is unknown, the hold counts)."""
    t = resolved or received or 0.0
    hold = resolved - received if (kind in (K_SETTLED, K_REMOTE) and resolved and received
                                   and not (out_msat and out_msat < DUST_MSAT)) else None
    return t, hold


#: Window sums of one channel: one list of SLOTS counters per window, shortest first,
#: nested (a forward in the 1-day window is in the 7- and 30-day ones too). The first
#: _NFIELDS are WindowFlow's fields; then, per window, the magnitude (sum of |terms|) that
#: went through the hold sums, for the incremental cache's error bound (store/flows.py).
Windows = list  # list[list[int | float]]
MAG_SUM, MAG_SQ = _NFIELDS, _NFIELDS + 1
SLOTS = _NFIELDS + 2
FAIL_FIELD = {K_REMOTE: _OUT_FAILED_REMOTE, K_LIQUIDITY: _OUT_FAILED_LIQUIDITY,
              K_POLICY: _OUT_FAILED_POLICY}


def fresh_windows() -> Windows:
    """Returns all-zero Windows."""
    return [[0] * SLOTS for _ in WINDOW_BOUNDS]


def first_window(now_s: float, t: float) -> int:
    """Returns the index of the shortest window holding a forward of time t as of now_s,
    len(WINDOW_BOUNDS) when none does; the same float test as the SQL (`(now - t) < bound`)."""
    age = now_s - t
    for i, b in enumerate(WINDOW_BOUNDS):
        if age < b:
            return i
    return len(WINDOW_BOUNDS)


def apply_row(acc: dict[str, Windows], row: tuple, sign: int, lo: int, hi: int) -> list[str]:
    """Adds (sign 1) or removes (sign -1) one forward's counters in windows lo..hi-1 of its
    channels; returns the channels touched.

    `row` is a flow row: (kind, t, out_channel, in_channel, out_msat, in_msat, fee_msat,
    hold_s). Hold-time sums of a window left without samples are reset to 0.0, so float
    rounding never outlives the samples it came from; otherwise each update adds to the
    window's error bookkeeping (MAG_SUM, MAG_SQ).
    """
    kind, _t, out, inc, out_msat, in_msat, fee, hold = row
    if kind == K_OFFERED or lo >= hi:
        return []
    touched = []
    if out is not None:
        ws = acc.get(out) or acc.setdefault(out, fresh_windows())
        for i in range(lo, hi):
            v = ws[i]
            if kind == K_SETTLED:
                v[_OUT_COUNT] += sign
                v[_OUT_MSAT] += sign * (out_msat or 0)
                v[_FEES] += sign * (fee or 0)
            else:
                v[FAIL_FIELD[kind]] += sign
            if hold is not None:
                v[_HOLD_COUNT] += sign
                if v[_HOLD_COUNT]:
                    sq = hold * hold
                    v[_HOLD_SUM] += sign * hold
                    v[_HOLD_SUMSQ] += sign * sq
                    v[MAG_SUM] += abs(hold)
                    v[MAG_SQ] += sq
                else:
                    v[_HOLD_SUM] = v[_HOLD_SUMSQ] = v[MAG_SUM] = v[MAG_SQ] = 0.0
        touched.append(out)
    if inc is not None:
        ws = acc.get(inc) or acc.setdefault(inc, fresh_windows())
        for i in range(lo, hi):
            v = ws[i]
            if kind == K_SETTLED:
                v[_IN_COUNT] += sign
                v[_IN_MSAT] += sign * (in_msat or 0)
                v[_SOURCED] += sign * (fee or 0)
            else:
                v[_IN_FAILED] += sign
        touched.append(inc)
    return touched


def window_flows(ws: Windows) -> dict[str, WindowFlow]:
    """Returns label -> WindowFlow of one channel's Windows."""
    return {label: WindowFlow(*ws[i][:_NFIELDS]) for i, label in enumerate(WINDOW_LABELS)}


# --- a listforwards reply ---------------------------------------------------------------------

_TIME_TYPES = (int, float)  # exact types: a bool is not a time


def _flow_row(f: Mapping[str, Any]) -> tuple | None:
    """Returns the flow row of one listforwards entry; None when it counts for nothing
    (offered) or is malformed (no status, a non-integer amount, a non-numeric time)."""
    g = f.get
    kind = forward_kind(f["status"], g("failcode"))
    if kind is None or kind == K_OFFERED:
        return None
    out_msat, in_msat, fee = g("out_msat") or 0, g("in_msat") or 0, g("fee_msat") or 0
    received, resolved = g("received_time"), g("resolved_time")
    if type(out_msat) is not int or type(in_msat) is not int or type(fee) is not int or \
            (received is not None and type(received) not in _TIME_TYPES) or \
            (resolved is not None and type(resolved) not in _TIME_TYPES):
        return None
    t, hold = forward_times(kind, received, resolved, out_msat)
    return (kind, t, g("out_channel"), g("in_channel"), out_msat, in_msat, fee, hold)


def flows_from_forwards(forwards: Iterable[Mapping[str, Any]],
                        now_s: float) -> dict[str, ChannelFlow]:
    """Returns scid -> ChannelFlow aggregated from listforwards entries, as of `now_s`.

    Each entry is counted by apply_row, the function the store's incremental cache uses.
    Channels that appear in no counted forward get no entry (callers treat that as an empty
    flow); a settled forward too old for any window still sets the last times. An entry
    without `status` or with mistyped fields is skipped, never raised on.
    """
    acc: dict[str, Windows] = {}
    last: dict[str, list] = {}  # scid -> [last_out_s, last_in_s]
    nb = len(WINDOW_BOUNDS)
    for f in forwards:
        try:
            row = _flow_row(f)
        except (KeyError, TypeError, AttributeError):
            continue  # a malformed entry; the snapshot loader reports these with a position
        if row is None:
            continue
        kind, t, out, inc = row[:4]
        w = first_window(now_s, t)
        if w < nb:  # into its shortest window only: the windows are nested at the end
            apply_row(acc, row, 1, w, w + 1)
        if kind == K_SETTLED:
            for side, scid in enumerate((out, inc)):
                if scid is not None:
                    lt = last.get(scid) or last.setdefault(scid, [None, None])
                    if lt[side] is None or t > lt[side]:
                        lt[side] = t
    result: dict[str, ChannelFlow] = {}
    for scid in {*acc, *last}:
        if isinstance(scid, str):
            ws = acc.get(scid)
            lo, li = last.get(scid) or (None, None)
            if ws is not None:
                for i in range(1, nb):  # a forward in a shorter window is in every longer one
                    ws[i] = [x + y for x, y in zip(ws[i - 1], ws[i])]
                windows = window_flows(ws)
            else:
                windows = {label: EMPTY_WINDOW for label in WINDOW_LABELS}
            result[scid] = ChannelFlow(scid, MappingProxyType(windows), lo, li)
    return result
