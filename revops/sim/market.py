"""The payment market around the node: who tries to route through us, and what happens.

Model (common random numbers: the payment stream does not depend on any fee decision):

* Arrival times come from their own stream, and every arriving payment takes a fixed set of
  uniform draws from the payment stream (route, size, the draw against the acceptance curve,
  the draw against failure memory, stale gossip, hold time, success, payment hash) whether it
  uses them or not. So two policies on one seed face the identical payments, a payment priced
  out at one fee is the same payment accepted at a lower fee, and the same policy twice gives
  identical results. Dust floods have their own pair of streams.

* Candidate payments arrive as a Poisson process at `payments_per_hour`, modulated by a
  daily cycle. Each picks an outgoing channel with probability ∝ its `demand_out` and an
  incoming channel ∝ `demand_in`. Unequal in/out weights per peer make channels sources or
  sinks, so balances drift as in real routing.
* Sizes are lognormal (heavy right tail) around `amount_median_sat`.
* Price elasticity: a payment takes our route with probability
  1 / (1 + exp((our_effective_ppm - ref_fee_ppm) / elasticity_scale_ppm)), where ref_fee_ppm
  is the competitor price for reaching that peer. Payments that go elsewhere leave no trace
  (lightningd never sees them), exactly as for a real node.
* Senders use the fee gossip brought them: a channel's updates spread at most
  `gossip_updates_per_day` times in 24 h (lightningd's gossip rate limit); within
  `gossip_delay_s` of one spreading, a fraction
  still use the previous one; if that underpays outside the enforcedelay window the forward
  fails locally with 4108 WIRE_FEE_INSUFFICIENT.
* The outgoing channel must be usable (peer connected, state normal), have spendable balance
  and a free HTLC slot, else `local_failed` 4103 WIRE_TEMPORARY_CHANNEL_FAILURE. A small
  share of payments ask for a channel we no longer have: 16394 WIRE_UNKNOWN_NEXT_PEER.
* An offered HTLC is held for a lognormal time set by the downstream peer (slow or erratic
  peers hold longer and with a heavier tail), then settles with the peer's success rate
  (smaller for large payments) or fails.
* Dust floods: channels with `flood_per_hour` push tiny HTLCs that are held for
  `flood_hold_s` and then fail, filling HTLC slots.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

from revops.sim.model_channel import NORMAL, Channel
from revops.sim.model_forwards import FAILED, LOCAL_FAILED, OFFERED, SETTLED

if TYPE_CHECKING:
    from revops.sim.node import Node

FAIL_TEMP_CHANNEL = 4103
FAIL_FEE_INSUFFICIENT = 4108
FAIL_UNKNOWN_NEXT_PEER = 16394
_CLTV_FINAL = 40


@dataclass(frozen=True)
class TrafficParams:
    """Scenario knobs of the payment market (see docs/simulator.md for each)."""

    payments_per_hour: float = 120.0
    amount_median_sat: int = 40_000
    amount_sigma: float = 1.5
    max_amount_sat: int = 20_000_000
    diurnal_amplitude: float = 0.3
    elasticity_scale_ppm: float = 150.0
    gossip_delay_s: float = 600.0
    stale_gossip_fraction: float = 0.5
    gossip_updates_per_day: float = 4.0
    unknown_channel_fraction: float = 0.003
    large_payment_sat: int = 3_000_000
    step_s: float = 60.0
    failure_penalty: float = 0.1
    failure_memory_h: float = 3.0


class Market:
    """Generates forwards for a Node and resolves them over simulated time."""

    def __init__(self, node: "Node", params: TrafficParams, seed: int | str):
        self.node = node
        self.p = params
        # common random numbers: arrival times and each payment's draws never depend on fees
        self.rng_arrivals = random.Random(f"{seed}/market/arrivals")
        self.rng_payments = random.Random(f"{seed}/market/payments")
        self.rng_flood_arrivals = random.Random(f"{seed}/market/flood-arrivals")
        self.rng_flood = random.Random(f"{seed}/market/flood")
        self._mem_tau_s = max(params.failure_memory_h * 3600.0, 1e-9)
        self._out: list[Channel] = []
        self._out_cum: list[float] = []
        self._in: list[Channel] = []
        self._in_cum: list[float] = []
        self._flood: list[Channel] = []
        self._flood_cum: list[float] = []
        self.flood_rate: dict[int, tuple[float, float]] = {}   # idx -> (per_s, hold_s)
        self.closed_scids: list[str] = []
        self.dirty = True
        self._mu = math.log(params.amount_median_sat * 1000)

    # -- channel weights ------------------------------------------------------------
    def rebuild(self) -> None:
        """Recompute the cumulative demand weights after channels changed state."""
        chans = [c for c in self.node.channels if c.state == NORMAL and not c.peer.dead]
        self._out = [c for c in chans if c.demand_out > 0]
        self._out_cum = list(accumulate(c.demand_out for c in self._out))
        self._in = [c for c in chans if c.demand_in > 0]
        self._in_cum = list(accumulate(c.demand_in for c in self._in))
        self._flood = [c for c in chans if c.idx in self.flood_rate]
        self._flood_cum = list(accumulate(self.flood_rate[c.idx][0] for c in self._flood))
        self.dirty = False

    @staticmethod
    def _pick(chans: list[Channel], cum: list[float], u: float) -> Channel:
        return chans[bisect.bisect_right(cum, u * cum[-1])]

    # -- arrivals -------------------------------------------------------------------
    def arrivals(self, t0: float, t1: float) -> list[tuple[float, int]]:
        """Return sorted (time, kind) arrivals in [t0, t1): kind 0 = payment, 1 = dust."""
        if self.dirty:
            self.rebuild()
        out: list[tuple[float, int]] = []
        if self._out and self._in:
            mid = (t0 + t1) / 2
            day = 1.0 + self.p.diurnal_amplitude * math.sin(2 * math.pi * (mid % 86400) / 86400)
            lam = self.p.payments_per_hour / 3600.0 * day * (t1 - t0)
            r = self.rng_arrivals
            out.extend((t0 + r.random() * (t1 - t0), 0) for _ in range(_poisson(r, lam)))
        if self._flood:
            lam = self._flood_cum[-1] * (t1 - t0)
            r = self.rng_flood_arrivals
            out.extend((t0 + r.random() * (t1 - t0), 1) for _ in range(_poisson(r, lam)))
        out.sort()
        return out

    # -- failure memory -------------------------------------------------------------
    def memory(self, ch: Channel, now: float) -> float:
        """The share of payments senders currently steer away from `ch` after its failures."""
        if ch.fail_memory <= 0.0:
            return 0.0
        return ch.fail_memory * math.exp(-(now - ch.fail_memory_s) / self._mem_tau_s)

    def remember_failure(self, ch: Channel, now: float) -> None:
        """A local failure on `ch`: senders avoid it a little more for a few hours."""
        if self.p.failure_penalty <= 0.0:
            return
        ch.fail_memory = min(0.9, self.memory(ch, now) + self.p.failure_penalty)
        ch.fail_memory_s = now

    # -- one payment ----------------------------------------------------------------
    def attempt(self, now: float, kind: int) -> None:
        """Process one arriving payment (kind 0) or dust HTLC (kind 1) at `now`."""
        # every arrival takes the same draws, used or not (common random numbers)
        r = self.rng_payments if kind == 0 else self.rng_flood
        u = r.random
        u_out, u_in, u_unknown, u_accept, u_memory, u_stale, u_success = (
            u(), u(), u(), u(), u(), u(), u())
        g_size, g_hold = r.gauss(0.0, 1.0), r.gauss(0.0, 1.0)
        phash = "%064x" % r.getrandbits(256)
        if kind == 1:
            in_ch = self._pick(self._flood, self._flood_cum, u_in)
            out_ch = self._pick(self._out, self._out_cum, u_out)
            amount = 1000 * (1 + int(u_accept * 10))
        else:
            out_ch = self._pick(self._out, self._out_cum, u_out)
            in_ch = self._pick(self._in, self._in_cum, u_in)
            amount = int(math.exp(self._mu + self.p.amount_sigma * g_size))
            amount = min(max(amount, 1000), self.p.max_amount_sat * 1000)
        if in_ch is out_ch or in_ch.peer is out_ch.peer or not in_ch.peer.connected:
            return          # a peer cannot loop through itself; an offline peer sends nothing
        if kind == 0:
            if self.closed_scids and u_unknown < self.p.unknown_channel_fraction:
                self._unknown_peer(now, in_ch, amount, phash)
                return
            if amount < out_ch.htlc_min_msat or amount > out_ch.htlc_max_msat:
                return      # senders see our htlc limits in gossip and route elsewhere
            if out_ch.fail_memory > 0.0 and u_memory < self.memory(out_ch, now):
                return      # senders remember this channel's recent failures
            # senders price and pay with the fee gossip brought them, not our current one
            base, ppm, spread_s, prev_base, prev_ppm = out_ch.advertised(now, self.p.gossip_updates_per_day)
            fee = base + amount * ppm // 1_000_000
            eff_ppm = fee * 1_000_000 / amount
            x = (eff_ppm - out_ch.ref_fee_ppm) / self.p.elasticity_scale_ppm
            if u_accept * (1.0 + math.exp(min(x, 50.0))) > 1.0:
                return      # priced out: the payment took a competitor's route
            if now - spread_s < self.p.gossip_delay_s and u_stale < self.p.stale_gossip_fraction:
                fee = prev_base + amount * prev_ppm // 1_000_000
        else:
            # a flooder still has to respect the htlc minimums (that is the defence)
            if amount < out_ch.htlc_min_msat or amount < in_ch.minimum_htlc_in_msat:
                return
            fee = out_ch.effective_fee_msat(amount, now)
        in_msat = amount + fee
        node = self.node
        # the incoming HTLC must fit the peer's balance and our HTLC slots on that channel
        if in_ch.receivable_msat() < in_msat or in_ch.pend_in_n >= in_ch.max_accepted_htlcs:
            return
        in_id = in_ch.next_in_htlc_id
        in_ch.next_in_htlc_id += 1
        in_ch.in_payments_offered += 1
        in_ch.in_offered_msat += in_msat
        if fee < out_ch.effective_fee_msat(amount, now):
            self._local_fail(now, in_ch, in_id, in_msat, out_ch, FAIL_FEE_INSUFFICIENT, phash)
            if kind == 0:
                self.remember_failure(out_ch, now)
            return
        if (not out_ch.usable() or out_ch.spendable_msat() < amount
                or out_ch.pend_out_n >= out_ch.their_max_accepted_htlcs):
            self._local_fail(now, in_ch, in_id, in_msat, out_ch, FAIL_TEMP_CHANNEL, phash)
            if kind == 0:
                self.remember_failure(out_ch, now)
            return
        out_id = out_ch.next_out_htlc_id
        out_ch.next_out_htlc_id += 1
        out_ch.out_payments_offered += 1
        out_ch.out_offered_msat += amount
        height = node.chain.height
        in_ch.htlcs[("in", in_id)] = (in_msat, height + out_ch.cltv_delta + _CLTV_FINAL, phash)
        in_ch.pend_in_n += 1
        in_ch.pend_in_msat += in_msat
        out_ch.htlcs[("out", out_id)] = (amount, height + _CLTV_FINAL, phash)
        out_ch.pend_out_n += 1
        out_ch.pend_out_msat += amount
        ci = node.forwards.add(in_ch.scid, in_id, in_msat, now, out_ch.scid, out_id, amount,
                               OFFERED)
        node.emit("forward_event", node.forwards.to_json(ci, phash, True, True))
        peer = out_ch.peer
        if kind == 1:
            hold = self.flood_rate[in_ch.idx][1] * (0.5 + u_success)
            ok = False
        else:
            hold = math.exp(math.log(peer.hold_median_s) + peer.hold_sigma * g_hold)
            p_ok = peer.success_rate / (1.0 + amount / (self.p.large_payment_sat * 1000))
            ok = u_success < p_ok
        node.schedule(now + hold, self._resolve, (ci, in_ch, out_ch, in_id, out_id, in_msat,
                                                  amount, phash, ok))

    def _local_fail(self, now: float, in_ch: Channel, in_id: int, in_msat: int,
                    out_ch: Channel | None, failcode: int, phash: str) -> None:
        node = self.node
        ci = node.forwards.add(in_ch.scid, in_id, in_msat, now,
                               out_ch.scid if out_ch else None, None, 0, LOCAL_FAILED, failcode)
        # a forward that fails before an outgoing HTLC exists gives a single event
        node.emit("forward_event", node.forwards.to_json(ci, phash, True, True))

    def _unknown_peer(self, now: float, in_ch: Channel, amount: int, phash: str) -> None:
        in_msat = amount + 1000
        if in_ch.receivable_msat() < in_msat:
            return
        in_id = in_ch.next_in_htlc_id
        in_ch.next_in_htlc_id += 1
        in_ch.in_payments_offered += 1
        in_ch.in_offered_msat += in_msat
        self._local_fail(now, in_ch, in_id, in_msat, None, FAIL_UNKNOWN_NEXT_PEER, phash)

    def _resolve(self, now: float, args: tuple) -> None:
        ci, in_ch, out_ch, in_id, out_id, in_msat, out_msat, phash, ok = args
        node = self.node
        del in_ch.htlcs[("in", in_id)]
        in_ch.pend_in_n -= 1
        in_ch.pend_in_msat -= in_msat
        del out_ch.htlcs[("out", out_id)]
        out_ch.pend_out_n -= 1
        out_ch.pend_out_msat -= out_msat
        # a channel that started closing meanwhile still resolves its HTLCs on chain
        if ok:
            out_ch.to_us_msat -= out_msat
            in_ch.to_us_msat += in_msat
            out_ch.min_to_us_msat = min(out_ch.min_to_us_msat, out_ch.to_us_msat)
            in_ch.max_to_us_msat = max(in_ch.max_to_us_msat, in_ch.to_us_msat)
            out_ch.out_payments_fulfilled += 1
            out_ch.out_fulfilled_msat += out_msat
            in_ch.in_payments_fulfilled += 1
            in_ch.in_fulfilled_msat += in_msat
            node.fees_collected_msat += in_msat - out_msat
            node.forwards.resolve(ci, SETTLED, now)
        else:
            node.forwards.resolve(ci, FAILED, now)
        for ch in (in_ch, out_ch):
            ch.total_local_commitments += 2
            ch.total_remote_commitments += 2
        node.emit("forward_event", node.forwards.to_json(ci, phash, True, False))
        if ok and node.bookkeeper is not None:
            for mvt in node.bookkeeper.record_routed(in_ch.channel_id, out_ch.channel_id,
                                                     in_msat, out_msat, now, phash):
                node.emit("coin_movement", mvt)


def _poisson(rng: random.Random, lam: float) -> int:
    """Return a Poisson(lam) draw (normal approximation above 50)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    # Knuth: fine for the small per-step means we use
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k
