"""Things that happen to channels and peers over time: blocks, flapping, opens and closes.

Each handler runs from the node's event queue at its scheduled time and emits the
notifications lightningd would: block_added (+ balance_snapshot), connect/disconnect,
channel_opened, channel_state_changed (old_state omitted for a channel's first state).
Closed channels stay in listpeerchannels as ONCHAIN and move to listclosedchannels
100 blocks later, as lightningd forgets them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from revops.sim import model_ids as ids
from revops.sim.model_channel import (AWAITING_LOCKIN, AWAITING_UNILATERAL, CLOSED,
                                      CLOSINGD_COMPLETE, CLOSINGD_SIGEXCHANGE,
                                      FUNDING_SPEND_SEEN, NORMAL, ONCHAIN, SHUTTING_DOWN,
                                      Channel, iso_ts)

if TYPE_CHECKING:
    from revops.sim.node import Node

LOCKIN_BLOCKS = 3
FORGET_AFTER_BLOCKS = 100


@dataclass(frozen=True)
class LifecycleParams:
    """How often channels open and close on their own (per week of simulated time)."""

    opens_per_week: float = 0.0
    closes_per_week: float = 0.0
    force_close_fraction: float = 0.3
    balance_snapshot_every_blocks: int = 1


class Lifecycle:
    """Schedules and performs block arrivals, peer flaps and channel opens/closes."""

    def __init__(self, node: "Node", params: LifecycleParams, rng: random.Random):
        self.node = node
        self.p = params
        self.rng = rng
        # flaps have their own stream (common random numbers: opens/closes never shift them)
        self.rng_flaps = random.Random(f"{node.seed}/flaps")
        self.lockins: list[tuple[int, Channel]] = []      # (confirm height, channel)
        self.forgets: list[tuple[int, Channel]] = []      # (forget height, channel)
        self.blocks_seen = 0

    def start(self, now: float) -> None:
        """Schedule the first block, flaps, opens and closes."""
        node = self.node
        node.schedule(node.chain.next_block_s, self.on_block, None)
        for peer in node.peers.values():
            self.schedule_flap(peer, now)
        for ch in node.channels:
            if ch.close_at_s is not None:
                node.schedule(ch.close_at_s, self.begin_close, (ch, "remote", True))
        if self.p.opens_per_week > 0:
            node.schedule(now + self.rng.expovariate(self.p.opens_per_week / 604800),
                          self.on_random_open, None)
        if self.p.closes_per_week > 0:
            node.schedule(now + self.rng.expovariate(self.p.closes_per_week / 604800),
                          self.on_random_close, None)

    # -- blocks ---------------------------------------------------------------------
    def on_block(self, now: float, _arg) -> None:
        node = self.node
        height, bhash = node.chain.mine_block(now)
        node.emit("block_added", {"hash": bhash, "height": height})
        anchor_rate = node.chain.feerates("perkw")["perkw"]["unilateral_anchor_close"]
        for ch in node.channels:
            if ch.state == NORMAL:
                ch.feerate_perkw = anchor_rate
        for item in [x for x in self.lockins if x[0] <= height]:
            self.lockins.remove(item)
            self.lock_in(now, item[1])
        for item in [x for x in self.forgets if x[0] <= height]:
            self.forgets.remove(item)
            self.forget(now, item[1])
        self.blocks_seen += 1
        every = self.p.balance_snapshot_every_blocks
        if node.bookkeeper is not None and every and self.blocks_seen % every == 0:
            node.emit("balance_snapshot",
                      node.bookkeeper.balance_snapshot(height, now, node.account_balances()))
        node.schedule(node.chain.next_block_s, self.on_block, None)

    # -- peers ----------------------------------------------------------------------
    def schedule_flap(self, peer, now: float) -> None:
        """Schedule the peer's next disconnect (or reconnect) if it flaps."""
        if peer.dead or peer.mean_up_s <= 0:
            return
        mean = peer.mean_up_s if peer.connected else peer.mean_down_s
        self.node.schedule(now + self.rng_flaps.expovariate(1 / mean), self.on_flap, peer)

    def on_flap(self, now: float, peer) -> None:
        node = self.node
        if peer.connected:
            node.disconnect_peer(peer, now)
        else:
            node.connect_peer(peer, now)
        self.schedule_flap(peer, now)

    # -- opening --------------------------------------------------------------------
    def on_random_open(self, now: float, _arg) -> None:
        node = self.node
        self.open_channel(now, node.channel_template(self.rng))
        node.schedule(now + self.rng.expovariate(self.p.opens_per_week / 604800),
                      self.on_random_open, None)

    def open_batch(self, now: float, chs: list[Channel]) -> None:
        """Open channels we fund in one transaction (as `multifundchannel` does): they share
        the funding txid, one output each, and one on-chain fee."""
        if not chs or any(ch.opener != "local" for ch in chs):
            raise ValueError("a batch open funds one or more of our own channels")
        txid = chs[0].funding_txid
        for outnum, ch in enumerate(chs):
            ch.funding_txid, ch.funding_outnum = txid, outnum
            ch.channel_id = ids.channel_id_from_funding(txid, outnum)
            self.open_channel(now, ch, funded=True)
        self.node.fund_batch(chs, now)

    def open_channel(self, now: float, ch: Channel, funded: bool = False) -> None:
        """Begin funding `ch` (already built, state AWAITING_LOCKIN) and announce it;
        `funded`: the caller pays for the funding transaction."""
        node = self.node
        peer = ch.peer
        if peer.node_id not in node.peers:
            node.peers[peer.node_id] = peer
            node.connect_peer(peer, now, direction="in" if ch.opener == "remote" else "out")
            self.schedule_flap(peer, now)
        node.add_channel(ch)
        if ch.opener == "remote":
            node.emit("channel_opened", {"id": peer.node_id, "funding_msat": ch.total_msat,
                                         "funding_txid": ch.funding_txid,
                                         "channel_ready": False})
        elif not funded:
            node.spend_for_funding(ch, now)
        node.emit("channel_state_changed", {
            "peer_id": peer.node_id, "channel_id": ch.channel_id, "timestamp": iso_ts(now),
            "new_state": AWAITING_LOCKIN, "cause": "remote" if ch.opener == "remote" else "user",
            "message": "new channel opened"})
        self.lockins.append((node.chain.height + LOCKIN_BLOCKS, ch))

    def lock_in(self, now: float, ch: Channel) -> None:
        """Funding reached depth: assign the scid and go CHANNELD_NORMAL."""
        node = self.node
        block = node.chain.height - LOCKIN_BLOCKS + 1
        ch.scid = ids.scid(block, 1 + self.rng.randrange(3000), ch.funding_outnum)
        ch.opened_s = now
        node.index_channel(ch)
        self.change_state(now, ch, NORMAL, "user" if ch.opener == "local" else "remote",
                          "Lockin complete")
        if node.bookkeeper is not None:
            outpoint = f"{ch.funding_txid}:{ch.funding_outnum}"
            for mvt in node.bookkeeper.record_channel_open(
                    ch.channel_id, ch.to_us_msat, ch.total_msat, now, outpoint, block,
                    ch.peer.node_id, 0, ch.funding_txid):
                node.emit("coin_movement", mvt)

    # -- closing --------------------------------------------------------------------
    def on_random_close(self, now: float, _arg) -> None:
        node = self.node
        live = [c for c in node.channels if c.state == NORMAL]
        if live:
            ch = live[self.rng.randrange(len(live))]
            force = self.rng.random() < self.p.force_close_fraction
            closer = "remote" if force or self.rng.random() < 0.5 else "local"
            self.begin_close(now, (ch, closer, force))
        node.schedule(now + self.rng.expovariate(self.p.closes_per_week / 604800),
                      self.on_random_close, None)

    def begin_close(self, now: float, arg: tuple) -> None:
        """Start closing a channel: mutual (via shutdown) or unilateral (force)."""
        ch, closer, force = arg
        if ch.state != NORMAL:
            return
        ch.closer = closer
        ch.close_cause = "user" if closer == "local" else ("onchain" if force else "remote")
        cause = "user" if closer == "local" else "remote"
        if force:
            if closer == "local":
                self.change_state(now, ch, AWAITING_UNILATERAL, "user", "Forcibly closed by user")
            self.node.schedule(self.node.chain.next_block_s + 1, self.spend_seen, ch)
        else:
            self.change_state(now, ch, SHUTTING_DOWN, cause, "Start closingd")
            self.node.schedule(now + 30, self.negotiate, ch)

    def negotiate(self, now: float, ch: Channel) -> None:
        """Mutual close: wait for HTLCs to clear, then sign and broadcast."""
        if ch.pend_in_n or ch.pend_out_n:
            self.node.schedule(now + 30, self.negotiate, ch)
            return
        cause = "user" if ch.closer == "local" else "remote"
        self.change_state(now, ch, CLOSINGD_SIGEXCHANGE, cause, "Start closingd")
        self.change_state(now + 1, ch, CLOSINGD_COMPLETE, cause, "Closing complete")
        self.node.schedule(self.node.chain.next_block_s + 1, self.spend_seen, ch)

    def spend_seen(self, now: float, ch: Channel) -> None:
        """The funding output was spent on chain: FUNDING_SPEND_SEEN then ONCHAIN."""
        self.change_state(now, ch, FUNDING_SPEND_SEEN, "onchain", "Onchain funding spend")
        self.change_state(now, ch, ONCHAIN, "onchain", "Onchain init reply")
        node = self.node
        ch.onchain_since_block = node.chain.height
        node.settle_close(ch, now)
        self.forgets.append((node.chain.height + FORGET_AFTER_BLOCKS, ch))

    def forget(self, now: float, ch: Channel) -> None:
        """100 blocks after resolution lightningd forgets the channel (listclosedchannels)."""
        self.change_state(now, ch, CLOSED, "onchain", "Forgetting channel")
        self.node.forget_channel(ch, now)

    def change_state(self, now: float, ch: Channel, new_state: str, cause: str,
                     message: str) -> None:
        """Record a state change and emit channel_state_changed."""
        old = ch.record_state(now, new_state, cause, message)
        payload = {"peer_id": ch.peer.node_id, "channel_id": ch.channel_id}
        if ch.scid:
            payload["short_channel_id"] = ch.scid
        payload.update({"timestamp": iso_ts(now), "old_state": old, "new_state": new_state,
                        "cause": cause, "message": message})
        self.node.emit("channel_state_changed", payload)
        self.node.market_dirty()
