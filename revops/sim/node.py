"""The simulated node: channels, peers, forwards, wallet and chain, advanced in simulated time.

`Node` owns all state and one event queue. `advance(seconds)` runs the market (payment
arrivals in `step_s` batches), HTLC resolutions, blocks, peer flaps, channel lifecycle and
sling tasks in time order, and returns the notifications lightningd would have sent, as
`Notification(topic, payload)` pairs in CLN's field form (the payload is what goes under
`params[topic]` on the wire). RPC answers are built by `revops.sim.rpc.SimRpc`.

Each subsystem draws from its own `random.Random` derived from the seed, so the same seed
gives the same forwards whatever RPCs are called in between (unless they change the state
that drives traffic, such as fees).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from revops.sim import model_ids as ids
from revops.sim.bookkeeper import Bookkeeper
from revops.sim.model_chain import Chain
from revops.sim.model_channel import NORMAL, ONCHAIN, Channel, Peer
from revops.sim.model_forwards import ForwardStore


class Notification(NamedTuple):
    """One notification: `topic` (e.g. "forward_event") and its payload object."""

    topic: str
    payload: dict


@dataclass(frozen=True)
class NodeConfig:
    """Identity and built-in configuration of the simulated lightningd."""

    node_id: str
    alias: str = "SIMNODE"
    color: str = "3399ff"
    network: str = "bitcoin"
    version: str = "v25.12"
    lightning_dir: str = "/tmp/revops-sim/bitcoin"
    address: str = "203.0.113.7"
    port: int = 9735
    fee_base_msat: int = 1000
    fee_ppm: int = 10
    cltv_delta: int = 34
    max_concurrent_htlcs: int = 30
    htlc_minimum_msat: int = 0
    sling: bool = True
    bookkeeper: bool = True
    sling_version: str = "v4.2.0"


PLUGIN_DIR = "/usr/local/libexec/c-lightning/plugins"
BATCH_OUTPUT_WEIGHT = 172  # a P2WSH funding output (43 vB) added to a batch funding transaction


class Node:
    """All state of the simulated lightningd, plus its event loop."""

    def __init__(self, config: NodeConfig, *, seed: int, start_time_s: float,
                 blockheight: int, chain_params: dict[str, Any] | None = None):
        self.config = config
        self.seed = seed
        self.now_s = float(start_time_s)
        self.rng_ids = random.Random(f"{seed}/ids")
        self.chain = Chain(random.Random(f"{seed}/chain"), blockheight, self.now_s,
                           **(chain_params or {"base_perkw": 2500, "volatility": 0.05,
                                               "shocks": [], "shock_rate_per_week": 0.0,
                                               "shock_multiplier": 5.0,
                                               "shock_duration_s": 6 * 3600}))
        self.peers: dict[str, Peer] = {}
        self.channels: list[Channel] = []          # open and still-onchain channels
        self.closed: list[Channel] = []            # forgotten: listclosedchannels
        self.by_scid: dict[str, Channel] = {}
        self.by_cid: dict[str, Channel] = {}
        self.forwards = ForwardStore()
        self.fees_collected_msat = 0
        # ground truth for accounting tests: on-chain fees we paid, per channel_id (a batch
        # funding's fee is split evenly over its channels in output order, remainder first)
        self.onchain_fee_truth_msat: dict[str, int] = {}
        self.outputs: list[list] = []              # [txid, vout, msat, spk, addr, status, height]
        self.bookkeeper = (Bookkeeper(config.node_id, ids.currency(config.network))
                           if config.bookkeeper else None)
        self.sling = None
        self.market = None
        self.lifecycle = None
        self.shifts = None                         # market_shifts.MarketShifts, if it moves
        self.channel_factory: Callable[[random.Random], Channel] | None = None
        self._heap: list[tuple[float, int, Callable, Any]] = []
        self._seq = 0
        self._notes: list[Notification] = []
        self._started = False

    # -- plugins --------------------------------------------------------------------
    @property
    def plugins(self) -> list[str]:
        """Return the path names of the fake plugins loaded, for `plugin list`."""
        out = []
        if self.bookkeeper is not None:
            out.append(f"{PLUGIN_DIR}/bookkeeper")
        if self.sling is not None:
            out.append(f"{PLUGIN_DIR}/sling")
        return out

    # -- events ---------------------------------------------------------------------
    def schedule(self, at_s: float, fn: Callable[[float, Any], None], arg: Any) -> None:
        """Run `fn(at_s, arg)` when simulated time reaches `at_s`."""
        self._seq += 1
        heapq.heappush(self._heap, (at_s, self._seq, fn, arg))

    def emit(self, topic: str, payload: dict) -> None:
        """Queue a notification for the caller of advance()."""
        self._notes.append(Notification(topic, payload))

    def market_dirty(self) -> None:
        """Tell the market its channel weights need rebuilding."""
        if self.market is not None:
            self.market.dirty = True

    def start(self) -> list[Notification]:
        """Schedule the recurring events; idempotent. Returns start-up notifications."""
        if not self._started:
            self._started = True
            if self.lifecycle is not None:
                self.lifecycle.start(self.now_s)
            if self.sling is not None:
                self.sling.start(self.now_s)
            if self.shifts is not None:
                self.shifts.start(self.now_s)
        notes, self._notes = self._notes, []
        return notes

    def advance(self, seconds: float) -> list[Notification]:
        """Run the model for `seconds` of simulated time; return the notifications produced."""
        notes = self.start()
        self._notes = notes
        end = self.now_s + seconds
        step = self.market.p.step_s if self.market is not None else 60.0
        heap = self._heap
        while self.now_s < end:
            t1 = min(self.now_s + step, end)
            arrivals = self.market.arrivals(self.now_s, t1) if self.market is not None else ()
            for t, kind in arrivals:
                while heap and heap[0][0] <= t:
                    at, _, fn, arg = heapq.heappop(heap)
                    self.now_s = max(self.now_s, at)
                    fn(self.now_s, arg)
                self.now_s = t
                self.market.attempt(t, kind)
            while heap and heap[0][0] <= t1:
                at, _, fn, arg = heapq.heappop(heap)
                self.now_s = max(self.now_s, at)
                fn(self.now_s, arg)
            self.now_s = t1
        notes, self._notes = self._notes, []
        return notes

    # -- building -------------------------------------------------------------------
    def new_peer(self, alias: str) -> Peer:
        """Return a new Peer with a fresh id and address (not yet added)."""
        r = self.rng_ids
        addr = f"198.51.{r.randrange(256)}.{1 + r.randrange(254)}"
        return Peer(ids.pubkey(r), alias, addr, 9735)

    def new_channel(self, peer: Peer, capacity_msat: int, to_us_msat: int, opener: str) -> Channel:
        """Return a Channel with fresh funding ids, our default fees, not yet added."""
        r = self.rng_ids
        ch = Channel(len(self.channels) + len(self.closed), peer)
        ch.funding_txid = ids.hex32(r)
        ch.funding_outnum = r.randrange(2)
        ch.channel_id = ids.channel_id_from_funding(ch.funding_txid, ch.funding_outnum)
        ch.scratch_txid = ids.hex32(r)
        ch.direction = 0 if self.config.node_id < peer.node_id else 1
        ch.alias_local = ids.scid(16_000_000 + r.randrange(100_000), r.randrange(1000), 0)
        ch.alias_remote = ids.scid(15_000_000 + r.randrange(100_000), r.randrange(1000), 1)
        ch.opener = opener
        ch.total_msat = capacity_msat
        ch.to_us_msat = ch.min_to_us_msat = ch.max_to_us_msat = to_us_msat
        # funding describes the open; balances since then come from routing
        if opener == "local":
            ch.local_funds_msat, ch.remote_funds_msat = capacity_msat, 0
        else:
            ch.local_funds_msat, ch.remote_funds_msat = 0, capacity_msat
        ch.pushed_msat = 0
        reserve = max(capacity_msat // 100 // 1000 * 1000, 546_000)
        ch.our_reserve_msat = ch.their_reserve_msat = reserve
        cfg = self.config
        ch.fee_base_msat = ch.prev_fee_base_msat = cfg.fee_base_msat
        ch.fee_ppm = ch.prev_fee_ppm = cfg.fee_ppm
        ch.cltv_delta = cfg.cltv_delta
        ch.htlc_min_msat = max(cfg.htlc_minimum_msat, ch.minimum_htlc_in_msat)
        ch.htlc_max_msat = ch.r_htlc_max_msat = capacity_msat - reserve
        ch.max_accepted_htlcs = cfg.max_concurrent_htlcs
        ch.feerate_perkw = self.chain.feerates("perkw")["perkw"]["unilateral_anchor_close"]
        return ch

    def add_peer(self, peer: Peer) -> None:
        """Register a peer (connected unless dead)."""
        self.peers[peer.node_id] = peer
        peer.connected = not peer.dead
        peer.connected_since_s = self.now_s
        if peer.connected:
            peer.last_stable_s = int(self.now_s)

    def add_channel(self, ch: Channel) -> None:
        """Register a channel (any state) and index it."""
        self.channels.append(ch)
        ch.peer.channels.append(ch)
        self.index_channel(ch)
        self.market_dirty()

    def index_channel(self, ch: Channel) -> None:
        """(Re)index a channel by scid and channel id."""
        if ch.scid:
            self.by_scid[ch.scid] = ch
        self.by_cid[ch.channel_id] = ch

    def channel_template(self, rng: random.Random) -> Channel:
        """Return a new AWAITING_LOCKIN channel for a random open (scenario-provided)."""
        if self.channel_factory is None:
            raise RuntimeError("no channel factory configured for random opens")
        return self.channel_factory(rng)

    def add_output(self, amount_msat: int, status: str = "confirmed") -> str:
        """Add a wallet UTXO; return its "txid:vout" outpoint."""
        r = self.rng_ids
        txid, vout = ids.hex32(r), r.randrange(2)
        self.outputs.append([txid, vout, amount_msat, ids.scriptpubkey_p2wpkh(r),
                             ids.address(r, self.config.network), status, self.chain.height])
        return f"{txid}:{vout}"

    # -- peers ----------------------------------------------------------------------
    def connect_peer(self, peer: Peer, now: float, direction: str = "out") -> None:
        """Mark a peer connected and emit `connect`."""
        peer.connected = True
        peer.connected_since_s = now
        # lightningd records a connection as stable after it lasted a minute
        peer.last_stable_s = int(now) + 60
        self.emit("connect", {"id": peer.node_id, "direction": direction,
                              "address": {"type": "ipv4", "address": peer.address,
                                          "port": peer.port}})

    def disconnect_peer(self, peer: Peer, now: float) -> None:
        """Mark a peer disconnected and emit `disconnect`."""
        peer.connected = False
        self.emit("disconnect", {"id": peer.node_id})

    # -- money on chain -------------------------------------------------------------
    def spend_for_funding(self, ch: Channel, now: float) -> None:
        """Pay for a channel we open from the wallet (funding amount plus on-chain fee)."""
        self.fund_batch([ch], now)

    def fund_batch(self, chs: list[Channel], now: float) -> None:
        """Pay for channels we open in one funding transaction (they share `funding_txid`):
        their amounts plus one on-chain fee, each extra output adding its weight."""
        perkw = self.chain.feerates("perkw")["perkw"]["opening"]
        fee_msat = self.chain.feerates("perkw")["onchain_fee_estimates"]["opening_channel_satoshis"] * 1000 \
            + perkw * BATCH_OUTPUT_WEIGHT * (len(chs) - 1)
        need = sum(ch.total_msat for ch in chs) + fee_msat
        spent = 0
        for o in sorted((o for o in self.outputs if o[5] == "confirmed"), key=lambda o: -o[2]):
            o[5] = "spent"
            spent += o[2]
            if spent >= need:
                break
        if spent > need:
            self.add_output(spent - need)
        ordered = sorted(chs, key=lambda c: c.funding_outnum)
        share, rest = divmod(fee_msat, len(ordered))
        for i, ch in enumerate(ordered):
            self.onchain_fee_truth_msat[ch.channel_id] = (self.onchain_fee_truth_msat.get(ch.channel_id, 0)
                                                          + share + (1 if i < rest else 0))
        if self.bookkeeper is not None:
            self.bookkeeper.events.append(("wallet", "onchain_fee", "onchain_fee", 0, fee_msat,
                                           now, 0, False, None, chs[0].funding_txid, None, None))

    def settle_close(self, ch: Channel, now: float) -> None:
        """The closing tx confirmed: our balance returns to the wallet."""
        fee_msat = 0
        if ch.opener == "local":
            fee_msat = min(ch.to_us_msat, self.chain.feerates("perkw")[
                "onchain_fee_estimates"]["mutual_close_satoshis"] * 1000)
        ch.final_to_us_msat = max(0, ch.to_us_msat - fee_msat)
        if fee_msat:
            self.onchain_fee_truth_msat[ch.channel_id] = self.onchain_fee_truth_msat.get(ch.channel_id, 0) + fee_msat
        spending = ids.hex32(self.rng_ids)
        wallet_op = self.add_output(ch.final_to_us_msat) if ch.final_to_us_msat else \
            f"{spending}:0"
        self.market_dirty()
        if self.market is not None and ch.scid:
            self.market.closed_scids.append(ch.scid)
        if self.bookkeeper is not None:
            for mvt in self.bookkeeper.record_channel_close(
                    ch.channel_id, ch.final_to_us_msat, ch.total_msat, now,
                    f"{ch.funding_txid}:{ch.funding_outnum}", self.chain.height, spending,
                    wallet_op, fee_msat):
                self.emit("coin_movement", mvt)

    def forget_channel(self, ch: Channel, now: float) -> None:
        """Move an ONCHAIN channel to listclosedchannels."""
        ch.closed_s = now
        self.channels.remove(ch)
        ch.peer.channels.remove(ch)
        self.closed.append(ch)
        self.by_cid.pop(ch.channel_id, None)
        if ch.scid:
            self.by_scid.pop(ch.scid, None)

    def account_balances(self) -> list[tuple[str, int]]:
        """Return (account, balance_msat) as bookkeeper names accounts."""
        wallet = sum(o[2] for o in self.outputs if o[5] == "confirmed")
        out = [("wallet", wallet)]
        out.extend((c.channel_id, c.to_us_msat) for c in self.channels
                   if c.state != ONCHAIN and c.scid)
        return out

    def normal_channels(self) -> list[Channel]:
        """Return channels in CHANNELD_NORMAL."""
        return [c for c in self.channels if c.state == NORMAL]
