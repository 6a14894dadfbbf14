"""Peers and channels of the simulated node: mutable state, kept in __slots__ objects.

A channel holds what lightningd knows about it (balances, fees, HTLCs in flight, counters,
state history) plus the market parameters that drive its traffic (demand weights, the
competitor reference fee, the peer's hold-time profile). RPC shapes are built elsewhere
(model_render.py) only when asked.
"""

from __future__ import annotations

import time as _time

# Channel states lightningd reports (doc/schemas listpeerchannels state enum).
NORMAL = "CHANNELD_NORMAL"
AWAITING_LOCKIN = "CHANNELD_AWAITING_LOCKIN"
SHUTTING_DOWN = "CHANNELD_SHUTTING_DOWN"
CLOSINGD_SIGEXCHANGE = "CLOSINGD_SIGEXCHANGE"
CLOSINGD_COMPLETE = "CLOSINGD_COMPLETE"
AWAITING_UNILATERAL = "AWAITING_UNILATERAL"
FUNDING_SPEND_SEEN = "FUNDING_SPEND_SEEN"
ONCHAIN = "ONCHAIN"
CLOSED = "CLOSED"

# setchannel acts on these (lightningd channel_state_can_setchannel).
SETCHANNEL_STATES = frozenset({NORMAL, AWAITING_LOCKIN, "DUALOPEND_AWAITING_LOCKIN",
                               "CHANNELD_AWAITING_SPLICE"})
# channel_id lookups only see channels that still talk to the peer
# (channel_state_wants_peercomms): not the closing-onchain ones.
PEERCOMMS_STATES = frozenset({NORMAL, AWAITING_LOCKIN, SHUTTING_DOWN, CLOSINGD_SIGEXCHANGE,
                              "DUALOPEND_AWAITING_LOCKIN", "CHANNELD_AWAITING_SPLICE"})
PENDING_STATES = frozenset({"OPENINGD", AWAITING_LOCKIN, "DUALOPEND_OPEN_INIT",
                            "DUALOPEND_AWAITING_LOCKIN", "DUALOPEND_OPEN_COMMITTED",
                            "DUALOPEND_OPEN_COMMIT_READY"})

DUST_LIMIT_MSAT = 546_000
MAX_U64 = 18446744073709551615


def iso_ts(unix_s: float) -> str:
    """Return CLN's state-change timestamp form, e.g. "2025-01-27T17:46:40.000Z"."""
    whole = int(unix_s)
    ms = int(round((unix_s - whole) * 1000)) % 1000
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(whole)) + ".%03dZ" % ms


class Peer:
    """A remote node: connection state and the behaviour the market model gives it."""

    __slots__ = ("node_id", "alias", "connected", "address", "port", "features",
                 "connected_since_s", "last_stable_s", "mean_up_s", "mean_down_s",
                 "hold_median_s", "hold_sigma", "success_rate", "dead", "channels",
                 "next_flap_s")

    def __init__(self, node_id: str, alias: str, address: str, port: int):
        self.node_id = node_id
        self.alias = alias
        self.connected = True
        self.address = address
        self.port = port
        self.features = "08a0000a8a5961"
        self.connected_since_s = 0.0
        self.last_stable_s: int | None = None
        self.mean_up_s = 0.0        # 0 = never flaps
        self.mean_down_s = 0.0
        self.hold_median_s = 1.5
        self.hold_sigma = 0.6
        self.success_rate = 0.85
        self.dead = False
        self.channels: list[Channel] = []
        self.next_flap_s = float("inf")


class Channel:
    """One channel with a peer, as lightningd tracks it, plus its market parameters."""

    __slots__ = (
        # identity
        "idx", "peer", "scid", "channel_id", "funding_txid", "funding_outnum", "direction",
        "alias_local", "alias_remote", "private", "opener", "closer", "close_cause",
        "channel_type_bits",
        # state
        "state", "state_changes", "opened_s", "onchain_since_block", "closed_s",
        # balances (msat)
        "total_msat", "to_us_msat", "min_to_us_msat", "max_to_us_msat",
        "local_funds_msat", "remote_funds_msat", "pushed_msat",
        "our_reserve_msat", "their_reserve_msat", "feerate_perkw", "final_to_us_msat",
        # our channel_update
        "fee_base_msat", "fee_ppm", "htlc_min_msat", "htlc_max_msat", "cltv_delta",
        "ignore_fee_limits", "old_fee_base_msat", "old_fee_ppm", "old_fee_until_s",
        "fee_changed_s", "prev_fee_base_msat", "prev_fee_ppm",
        # their channel_update (updates.remote)
        "r_fee_base_msat", "r_fee_ppm", "r_htlc_min_msat", "r_htlc_max_msat", "r_cltv_delta",
        # limits
        "max_accepted_htlcs", "their_max_accepted_htlcs", "minimum_htlc_in_msat",
        # htlcs in flight: key (direction, id) -> (amount_msat, expiry, payment_hash)
        "htlcs", "pend_in_n", "pend_in_msat", "pend_out_n", "pend_out_msat",
        "next_in_htlc_id", "next_out_htlc_id",
        # counters
        "in_payments_offered", "in_offered_msat", "in_payments_fulfilled", "in_fulfilled_msat",
        "out_payments_offered", "out_offered_msat", "out_payments_fulfilled",
        "out_fulfilled_msat", "total_local_commitments", "total_remote_commitments",
        # market parameters
        "demand_in", "demand_out", "ref_fee_ppm", "close_at_s", "scratch_txid",
        # senders' memory of our local failures (market.py) and the values a moving market
        # drifts around (market_shifts.py)
        "fail_memory", "fail_memory_s", "base_demand_in", "base_demand_out", "base_ref_fee_ppm",
        # what the network has heard (gossip is rate-limited): see advertised()
        "adv_fee_base_msat", "adv_fee_ppm", "adv_prev_fee_base_msat", "adv_prev_fee_ppm",
        "adv_changed_s", "gossip_times", "gossip_pending",
    )

    def __init__(self, idx: int, peer: Peer):
        self.idx = idx
        self.peer = peer
        self.scid: str | None = None
        self.channel_id = ""
        self.funding_txid = ""
        self.funding_outnum = 0
        self.direction = 0
        self.alias_local: str | None = None
        self.alias_remote: str | None = None
        self.private = False
        self.opener = "local"
        self.closer: str | None = None
        self.close_cause = "unknown"
        self.channel_type_bits = (12, 22)
        self.state = NORMAL
        self.state_changes: list[tuple[str, str | None, str, str, str]] = []
        self.opened_s = 0.0
        self.onchain_since_block: int | None = None
        self.closed_s: float | None = None
        self.total_msat = 0
        self.to_us_msat = 0
        self.min_to_us_msat = 0
        self.max_to_us_msat = 0
        self.local_funds_msat = 0
        self.remote_funds_msat = 0
        self.pushed_msat = 0
        self.our_reserve_msat = 0
        self.their_reserve_msat = 0
        self.feerate_perkw = 253
        self.final_to_us_msat = 0
        self.fee_base_msat = 1000
        self.fee_ppm = 10
        self.htlc_min_msat = 1000
        self.htlc_max_msat = 0
        self.cltv_delta = 34
        self.ignore_fee_limits = False
        self.old_fee_base_msat = 0
        self.old_fee_ppm = 0
        self.old_fee_until_s = 0.0
        self.fee_changed_s = -1e18
        self.prev_fee_base_msat = 1000
        self.prev_fee_ppm = 10
        self.adv_fee_base_msat: int | None = None  # None: the network knows our current fee
        self.adv_fee_ppm = 0
        self.adv_prev_fee_base_msat = 0
        self.adv_prev_fee_ppm = 0
        self.adv_changed_s = -1e18
        self.gossip_times: list[float] = []
        self.gossip_pending = False
        self.r_fee_base_msat = 1000
        self.r_fee_ppm = 1
        self.r_htlc_min_msat = 1000
        self.r_htlc_max_msat = 0
        self.r_cltv_delta = 144
        self.max_accepted_htlcs = 30
        self.their_max_accepted_htlcs = 483
        self.minimum_htlc_in_msat = 1000
        self.htlcs: dict[tuple[str, int], tuple[int, int, str]] = {}
        self.pend_in_n = 0
        self.pend_in_msat = 0
        self.pend_out_n = 0
        self.pend_out_msat = 0
        self.next_in_htlc_id = 0
        self.next_out_htlc_id = 0
        self.in_payments_offered = 0
        self.in_offered_msat = 0
        self.in_payments_fulfilled = 0
        self.in_fulfilled_msat = 0
        self.out_payments_offered = 0
        self.out_offered_msat = 0
        self.out_payments_fulfilled = 0
        self.out_fulfilled_msat = 0
        self.total_local_commitments = 0
        self.total_remote_commitments = 0
        self.demand_in = 1.0
        self.demand_out = 1.0
        self.ref_fee_ppm = 300
        self.close_at_s: float | None = None
        self.scratch_txid = ""
        self.fail_memory = 0.0
        self.fail_memory_s = 0.0
        self.base_demand_in: float | None = None
        self.base_demand_out: float | None = None
        self.base_ref_fee_ppm: float | None = None

    # -- derived amounts ------------------------------------------------------------
    def commit_fee_msat(self) -> int:
        """Return the commitment tx fee the opener pays (anchor commitment, ~1124 weight)."""
        return (self.feerate_perkw * (1124 + 172 * (self.pend_in_n + self.pend_out_n))
                // 1000) * 1000

    def spendable_msat(self) -> int:
        """Return what we could send now: balance minus reserve, in-flight and our commit fee."""
        if self.state != NORMAL:
            return 0
        fee = self.commit_fee_msat() if self.opener == "local" else 0
        return max(0, self.to_us_msat - self.pend_out_msat - self.our_reserve_msat - fee)

    def receivable_msat(self) -> int:
        """Return what the peer could send us now."""
        if self.state != NORMAL:
            return 0
        fee = self.commit_fee_msat() if self.opener == "remote" else 0
        theirs = self.total_msat - self.to_us_msat - self.pend_in_msat
        return max(0, theirs - self.their_reserve_msat - fee)

    def usable(self) -> bool:
        """True if the channel can forward now (normal state, peer connected)."""
        return self.state == NORMAL and self.peer.connected

    def fee_changed(self, now_s: float, updates_per_day: float, old_base_msat: int, old_ppm: int) -> None:
        """Our fee changed from (old_base_msat, old_ppm): send the channel_update if the
        gossip rate limit allows, else when it next does."""
        if self.adv_fee_base_msat is None:  # until now the network knew the old fee
            self.adv_fee_base_msat, self.adv_fee_ppm = old_base_msat, old_ppm
            self.adv_prev_fee_base_msat, self.adv_prev_fee_ppm = old_base_msat, old_ppm
        self.gossip_pending = True
        self.advertised(now_s, updates_per_day)

    def advertised(self, now_s: float, updates_per_day: float) -> tuple[int, int, float, int, int]:
        """The fee the network routes with: (base, ppm, when it spread, previous base, ppm).

        lightningd's gossip daemon lets a channel's updates through at a limited rate
        (about two a day, with some slack); a change beyond that waits until the rolling
        24 h window has room, and senders keep using the last fee that got out.
        """
        if self.adv_fee_base_msat is None:
            self.adv_fee_base_msat, self.adv_fee_ppm = self.fee_base_msat, self.fee_ppm
            self.adv_prev_fee_base_msat, self.adv_prev_fee_ppm = self.fee_base_msat, self.fee_ppm
        if self.gossip_pending:
            self.gossip_times = [t for t in self.gossip_times if now_s - t < 86400]
            if len(self.gossip_times) < updates_per_day:
                self.adv_prev_fee_base_msat, self.adv_prev_fee_ppm = self.adv_fee_base_msat, self.adv_fee_ppm
                self.adv_fee_base_msat, self.adv_fee_ppm = self.fee_base_msat, self.fee_ppm
                self.adv_changed_s = now_s
                self.gossip_times.append(now_s)
                self.gossip_pending = False
        return (self.adv_fee_base_msat, self.adv_fee_ppm, self.adv_changed_s,
                self.adv_prev_fee_base_msat, self.adv_prev_fee_ppm)

    def effective_fee_msat(self, amount_msat: int, now_s: float) -> int:
        """Return the lowest fee we accept at `now_s` for forwarding `amount_msat` out.

        After a fee increase lightningd keeps honouring the old fee until enforcedelay ends.
        """
        fee = self.fee_base_msat + amount_msat * self.fee_ppm // 1_000_000
        if now_s < self.old_fee_until_s:
            old = self.old_fee_base_msat + amount_msat * self.old_fee_ppm // 1_000_000
            return min(fee, old)
        return fee

    def record_state(self, now_s: float, new_state: str, cause: str, message: str) -> str | None:
        """Move to `new_state`, append to state_changes, return the old state."""
        old = self.state
        self.state = new_state
        self.state_changes.append((iso_ts(now_s), old, new_state, cause, message))
        return old
