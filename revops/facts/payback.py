"""What each rebalance earned back: the routing fees of the forwards that used the liquidity it bought.

A rebalance into channel T bought `moved` msat of local balance there. That liquidity earns only
when it leaves T through forwards that the balance T had anyway could not have served, so the
account walks T's settled forwards after the job started, oldest first:

- the local balance T had when the job started, and every later inflow (a forward in through T),
  is *free* liquidity: outflow spends it first;
- outflow beyond it spends the bought layers, oldest rebalance first; a layer earns the fee of
  each forward in proportion to the amount of it that the layer served;
- a layer is *accounted* when it is used up, or when it is HORIZON_S old: what it had not served
  by then earned nothing, and it becomes free liquidity.

This credits a rebalance only with forwards that would have failed without it, as far as the
channel's own forwards tell (payments of our own and other rebalances out of T are not seen; the
balance is re-read at each job's start). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

#: How long a bought layer may wait for outflow before what is left of it counts as unused.
HORIZON_S = 14 * 86_400


class Rebalance(NamedTuple):
    job_id: int
    scid: str
    start_s: float
    moved_msat: int
    spent_msat: int
    local_msat: int | None  # T's local balance when the job started; None when not recorded


class ChannelForward(NamedTuple):
    t: float
    inflow: bool       # True: the forward came in through T (refills it); False: went out through T
    amount_msat: int   # the amount on T's side
    fee_msat: int


@dataclass
class Payback:
    job_id: int
    scid: str
    start_s: float
    moved_msat: int
    spent_msat: int
    used_msat: int = 0
    earned_msat: float = 0.0
    accounted: bool = False  # used up, or past the horizon: the figure is final

    @property
    def ratio(self) -> float | None:
        """Fees earned per fee spent; None when the rebalance cost nothing."""
        return self.earned_msat / self.spent_msat if self.spent_msat > 0 else None

    def to_json(self) -> dict:
        return {"job_id": self.job_id, "scid": self.scid, "start_s": self.start_s,
                "moved_msat": self.moved_msat, "spent_msat": self.spent_msat, "used_msat": self.used_msat,
                "earned_msat": round(self.earned_msat), "accounted": self.accounted,
                "payback": None if self.ratio is None else round(self.ratio, 3)}


def account(rebalances: Iterable[Rebalance], forwards: Iterable[ChannelForward], now_s: float,
            horizon_s: float = HORIZON_S) -> list[Payback]:
    """The account of one channel's rebalances (all into the same T), oldest first. `forwards` are
    T's settled forwards from the first rebalance's start on, in any order."""
    bought = sorted((r for r in rebalances if r.moved_msat > 0), key=lambda r: (r.start_s, r.job_id))
    books = [Payback(r.job_id, r.scid, r.start_s, r.moved_msat, r.spent_msat) for r in bought]
    free = 0.0
    layers: list[list] = []  # [remaining msat, Payback], oldest first
    pending = list(zip(bought, books))  # not yet begun, oldest first
    for f in sorted(forwards, key=lambda f: f.t):
        free = _open_and_expire(pending, layers, free, f.t, horizon_s)
        if f.inflow:
            free += f.amount_msat
            continue
        if f.amount_msat <= 0:
            continue
        need = f.amount_msat - min(free, f.amount_msat)
        free -= f.amount_msat - need
        for layer in layers:
            if need <= 0:
                break
            take = min(layer[0], need)
            layer[0] -= take
            need -= take
            book = layer[1]
            book.used_msat += int(take)
            book.earned_msat += f.fee_msat * take / f.amount_msat
        for layer in [lay for lay in layers if lay[0] <= 0]:
            layer[1].accounted = True
            layers.remove(layer)
    _open_and_expire(pending, layers, free, now_s, horizon_s)
    return books


def _open_and_expire(pending: list[tuple[Rebalance, Payback]], layers: list[list], free: float, t: float,
                     horizon_s: float) -> float:
    """Opens the layers of the rebalances that started by `t` and closes those past the horizon;
    returns the free liquidity after both."""
    while pending and pending[0][0].start_s <= t:
        rebalance, book = pending.pop(0)
        # Layers past the horizon at this job's start are closed first: their liquidity is part
        # of the balance recorded then, not held apart from it.
        free = _expire(layers, free, rebalance.start_s, horizon_s)
        if rebalance.local_msat is not None:  # re-read: the balance then, less what older layers still hold
            free = max(0.0, rebalance.local_msat - sum(lay[0] for lay in layers))
        layers.append([book.moved_msat, book])
    return _expire(layers, free, t, horizon_s)


def _expire(layers: list[list], free: float, t: float, horizon_s: float) -> float:
    for layer in [lay for lay in layers if t - lay[1].start_s >= horizon_s]:
        layer[1].accounted = True
        free += layer[0]
        layers.remove(layer)
    return free
