"""Per-channel forwarding aggregates (`ChannelFlow`) from listforwards entries.

`ChannelFlow` holds only counts, sums, sums of squares and latest times per window, so the
plugin's store can fill it with SQL aggregates (`COUNT`, `SUM`, `MAX` over `WHERE t >= now - w`)
instead of replaying forwards. `flows_from_forwards` is the in-memory equivalent over
`listforwards.forwards`, written as a single pass for speed (100k forwards in well under 0.1 s).

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


_BOUNDS = tuple(sorted(WINDOWS_S.values()))
_LABELS = tuple(sorted(WINDOWS_S, key=WINDOWS_S.__getitem__))
_NB = len(_BOUNDS)
assert _NB == 3, "flows_from_forwards buckets by exactly three nested windows"


def flows_from_forwards(forwards: Iterable[Mapping[str, Any]],
                        now_s: float) -> dict[str, ChannelFlow]:
    """Returns scid -> ChannelFlow aggregated from listforwards entries, as of `now_s`.

    Channels that appear in no forward get no entry (callers treat that as an empty flow).
    An entry without `status` or with mistyped fields is skipped, never raised on.
    """
    # acc[scid] = flat list: 3 disjoint age buckets (<1d, 1d..7d, 7d..30d) of _NFIELDS
    # counters laid out as WindowFlow's fields, then last_out, last_in. Disjoint buckets keep
    # the per-forward work constant; they are cumulated into the nested windows at the end.
    acc: dict[str, list] = {}
    size = _NB * _NFIELDS
    b0, b1, b2 = _BOUNDS
    fresh = [0] * size + [None, None]

    for f in forwards:
        try:
            status = f["status"]
            settled = status == "settled"
            if not settled and status != "failed" and status != "local_failed":
                continue  # offered: still pending, counts for nothing here
            rt = f.get("resolved_time")
            rv = f.get("received_time")
            t = rt or rv or 0.0
            age = now_s - t
            if age < b0:
                base = 0
            elif age < b1:
                base = _NFIELDS
            elif age < b2:
                base = 2 * _NFIELDS
            elif settled:
                base = -1  # too old for any window, still counts for the last times
            else:
                continue
            out = f.get("out_channel")
            if out is not None:
                a = acc.get(out)
                if a is None:
                    a = acc[out] = fresh.copy()
                if base >= 0:
                    if settled:
                        a[base + _OUT_COUNT] += 1
                        a[base + _OUT_MSAT] += f.get("out_msat") or 0
                        a[base + _FEES] += f.get("fee_msat") or 0
                    elif status == "failed":
                        a[base + _OUT_FAILED_REMOTE] += 1
                    elif f.get("failcode") in POLICY_FAILCODES:
                        a[base + _OUT_FAILED_POLICY] += 1
                    else:
                        a[base + _OUT_FAILED_LIQUIDITY] += 1
                    if rt and rv and status != "local_failed":
                        h = rt - rv
                        a[base + _HOLD_COUNT] += 1
                        a[base + _HOLD_SUM] += h
                        a[base + _HOLD_SUMSQ] += h * h
                if settled and (a[size] is None or t > a[size]):
                    a[size] = t
            inc = f.get("in_channel")
            if inc is not None:
                a = acc.get(inc)
                if a is None:
                    a = acc[inc] = fresh.copy()
                if settled:
                    if base >= 0:
                        a[base + _IN_COUNT] += 1
                        a[base + _IN_MSAT] += f.get("in_msat") or 0
                        a[base + _SOURCED] += f.get("fee_msat") or 0
                    if a[size + 1] is None or t > a[size + 1]:
                        a[size + 1] = t
                else:
                    a[base + _IN_FAILED] += 1
        except (KeyError, TypeError, AttributeError):
            continue  # a malformed entry; the snapshot loader reports these with a position

    result: dict[str, ChannelFlow] = {}
    for scid, a in acc.items():
        if not isinstance(scid, str):
            continue
        windows = {}
        run = [0] * _NFIELDS
        for i, label in enumerate(_LABELS):
            off = i * _NFIELDS
            run = [x + y for x, y in zip(run, a[off:off + _NFIELDS])]
            windows[label] = WindowFlow(*run)
        result[scid] = ChannelFlow(scid, MappingProxyType(windows), a[size], a[size + 1])
    return result
