"""`History`: what the plugin's store remembers, as one frozen value `build_facts` reads.

A single RPC snapshot cannot say how often a peer dropped, how often we changed a fee or
whether the mempool is quieter than usual; the store can. `Store.history(now_s)` condenses
it into a History (peer uptime over 7 d, fee changes we applied, opening-feerate samples);
`revenue-snapshot` writes it under the snapshot's top-level `history` key, so `revops
explain` on the file rebuilds exactly the facts the plugin saw (docs/facts.md).

Pure: no I/O. `EMPTY_HISTORY` stands for "nothing known": every history fact then takes its
documented neutral default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from revops.facts.registry import NEVER_S

#: Window of the peer uptime stats (the `_7d` peer facts).
UPTIME_WINDOW_S = 604_800
#: Window of the fee-update counts (the `_24h` facts).
FEE_UPDATES_WINDOW_S = 86_400
#: Windows of the opening-feerate moving averages, by fact label.
FEERATE_WINDOWS_S: Mapping[str, int] = MappingProxyType({"24h": 86_400, "7d": 604_800})
#: Feerate samples older than this are not kept (store) nor needed (facts use at most 7 d).
FEERATE_KEEP_S = 14 * 86_400


@dataclass(frozen=True)
class PeerUptime:
    """A peer's connectivity over the last 7 d (store/peers.py's uptime rule)."""

    uptime_ratio: float = 1.0   # connected time / known time, 0..1; 1.0 when known_s == 0
    disconnects: int = 0        # disconnects in the window that changed the state
    known_s: float = 0.0        # seconds of the window whose state is known


@dataclass(frozen=True)
class ChannelFeeHistory:
    """Fee changes revops applied (setchannel succeeded) to one channel."""

    updates_24h: int                # applied changes in (as_of_s - 24 h, as_of_s]
    last_change_s: float            # unix time of the latest applied change


@dataclass(frozen=True)
class FeerateSample:
    """The opening feerate seen by one fee cycle."""

    at_s: float
    opening_perkw: int


@dataclass(frozen=True)
class History:
    """Stored history as of `as_of_s`: everything `build_facts` needs beyond the RPC data.

    Counts over a window (uptime, fee updates) are as of `as_of_s`; times (last fee change,
    feerate samples) are absolute, so the facts derived from them follow `now_s`.
    """

    as_of_s: float = 0.0
    peers: Mapping[str, PeerUptime] = field(default_factory=lambda: MappingProxyType({}))
    channels: Mapping[str, ChannelFeeHistory] = field(
        default_factory=lambda: MappingProxyType({}))
    node_fee_updates_24h: int = 0
    feerates: tuple[FeerateSample, ...] = ()   # oldest first
    # Fees earned over the last 24 h by (outgoing scid -> incoming scid -> msat), for
    # reputation-weighted revenue; None when the store did not say (then they come from
    # the snapshot's listforwards).
    in_fees_1d: Mapping[str, Mapping[str, int]] | None = None
    # Volume forwarded over the last 7 d by (outgoing scid -> incoming scid -> out_msat), to
    # tell self-loops (in and out through one peer) from one-way streets; None as above.
    in_volume_7d: Mapping[str, Mapping[str, int]] | None = None
    # When the record of forwards begins: the earlier of the oldest forward stored and when
    # revops started watching the node. A node younger than 30 days (or revops on a node whose
    # forwards lightningd autocleaned) has seen less than the 30-day window: rates over a
    # window divide by the days it really covers (channel.flow_days_30d). None: unknown, the
    # windows count as full.
    forwards_since_s: float | None = None


EMPTY_HISTORY = History()
_NO_PEER = PeerUptime()


def feerate_averages(samples: tuple[FeerateSample, ...], now_s: float
                     ) -> dict[str, float | None]:
    """Returns window label -> mean opening_perkw of the samples with now - w < at_s <= now,
    None for a window without samples (a plain mean: fee cycles sample at a steady pace)."""
    out: dict[str, float | None] = {}
    for label, w in FEERATE_WINDOWS_S.items():
        total = n = 0
        start = now_s - w
        for s in samples:
            if start < s.at_s <= now_s:
                total += s.opening_perkw
                n += 1
        out[label] = total / n if n else None
    return out


def market_history_facts(history: History, now_s: float, opening_perkw: int
                         ) -> dict[str, Any]:
    """Returns the market.* facts of the feerate history, given the current opening feerate:
    the 24 h and 7 d moving averages (the current feerate when no sample) and the shock ratio
    current / 7 d average (1.0 when no sample)."""
    ma = feerate_averages(history.feerates, now_s)
    ma_24h, ma_7d = ma["24h"], ma["7d"]
    return {
        "market.opening_feerate_ma_24h_perkw": ma_24h if ma_24h is not None else opening_perkw,
        "market.opening_feerate_ma_7d_perkw": ma_7d if ma_7d is not None else opening_perkw,
        "market.feerate_shock_ratio": opening_perkw / ma_7d if ma_7d else 1.0,
    }


def peer_history_facts(history: History, peer_id: str) -> dict[str, Any]:
    """Returns the peer.* uptime facts of one peer (neutral defaults when unknown)."""
    p = history.peers.get(peer_id, _NO_PEER)
    return {
        "peer.uptime_ratio_7d": p.uptime_ratio,
        "peer.disconnects_7d": p.disconnects,
        "peer.uptime_known_s_7d": p.known_s,
    }


def channel_history_facts(history: History, scid: str, now_s: float) -> dict[str, Any]:
    """Returns the channel.* fee-change facts of one channel (0 and NEVER_S when none)."""
    c = history.channels.get(scid)
    if c is None:
        return {"channel.fee_updates_24h": 0, "channel.last_fee_change_age_s": NEVER_S}
    return {
        "channel.fee_updates_24h": c.updates_24h,
        "channel.last_fee_change_age_s": min(NEVER_S, max(0.0, now_s - c.last_change_s)),
    }


# --------------------------------------------------------------------------- JSON form

def history_to_json(h: History) -> dict:
    """Returns the snapshot's `history` object (plain JSON values) for a History;
    history_from_json(history_to_json(h)) == h."""
    return {
        "as_of_s": h.as_of_s,
        "peers": {pid: {"uptime_ratio": p.uptime_ratio, "disconnects": p.disconnects,
                        "known_s": p.known_s} for pid, p in h.peers.items()},
        "channels": {scid: {"fee_updates_24h": c.updates_24h, "last_fee_change_s": c.last_change_s}
                     for scid, c in h.channels.items()},
        "node": {"fee_updates_24h": h.node_fee_updates_24h,
                 **({} if h.forwards_since_s is None else {"forwards_since_s": h.forwards_since_s})},
        "feerates": [{"at_s": s.at_s, "opening_perkw": s.opening_perkw} for s in h.feerates],
        **({} if h.in_fees_1d is None else
           {"in_fees_1d": {out: dict(ins) for out, ins in h.in_fees_1d.items()}}),
        **({} if h.in_volume_7d is None else
           {"in_volume_7d": {out: dict(ins) for out, ins in h.in_volume_7d.items()}}),
    }


def history_from_json(doc: Mapping[str, Any]) -> History:
    """Returns the History of a `history` object already checked by the snapshot loader
    (missing optional parts count as empty)."""
    peers = doc.get("peers") or {}
    chans = doc.get("channels") or {}
    node = doc.get("node") or {}
    return History(
        as_of_s=doc["as_of_s"],
        peers=MappingProxyType({pid: PeerUptime(float(p["uptime_ratio"]), p["disconnects"],
                                                     float(p["known_s"]))
                                for pid, p in peers.items()}),
        channels=MappingProxyType({scid: ChannelFeeHistory(c["fee_updates_24h"],
                                                           c["last_fee_change_s"])
                                   for scid, c in chans.items()}),
        node_fee_updates_24h=node.get("fee_updates_24h", 0),
        forwards_since_s=node.get("forwards_since_s"),
        feerates=tuple(sorted((FeerateSample(s["at_s"], s["opening_perkw"])
                               for s in doc.get("feerates") or ()), key=lambda s: s.at_s)),
        in_fees_1d=(None if doc.get("in_fees_1d") is None else MappingProxyType(
            {out: MappingProxyType(dict(ins)) for out, ins in doc["in_fees_1d"].items()})),
        in_volume_7d=(None if doc.get("in_volume_7d") is None else MappingProxyType(
            {out: MappingProxyType(dict(ins)) for out, ins in doc["in_volume_7d"].items()})),
    )
