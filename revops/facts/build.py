"""Channel facts from lightningd RPC responses: `build_facts(rpc, now_s, flows, history)`.

Which channels get facts: every listpeerchannels entry with a `short_channel_id`, whatever its
state (pre-lock-in channels have no scid and are skipped; closing and ONCHAIN channels are
included with `channel.active` false, so a policy can see them but should gate on `active`).

peer.* and node.* balance sums and channel counts cover open channels (CHANNELD_NORMAL or
CHANNELD_AWAITING_SPLICE); their flow sums cover every channel with a scid.

Every fact of the registry is present in every ChannelFacts.values, never None: unknown values
take the neutral default documented in the registry (0, "", false, 0.5 for reputations, NEVER_S
for "time since" facts) alongside a companion bool where it matters.

Pure: reads only its arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any

from revops.facts import classes
from revops.facts.classes import laplace
from revops.facts.flow import DUST_MSAT, EMPTY_WINDOW, ChannelFlow, flows_from_forwards
from revops.facts.history import (EMPTY_HISTORY, History, channel_history_facts,
                                  market_history_facts, peer_history_facts)
from revops.facts.price import EMPTY_PRICE, PriceBook, price_facts
from revops.facts.rebalance import EMPTY_REBALANCE, RebalanceHistory, rebalance_facts
from revops.facts.registry import BLOCK_S, FACTS, NEVER_S, WINDOWS_S

#: CLN's default max_accepted_htlcs, used when a channel does not report one.
DEFAULT_MAX_HTLCS = 483
#: Relay floor (253 perkw = 1 sat/vB), the fallback for unknown feerates.
FLOOR_PERKW = 253
#: Weights lightningd uses for onchain_fee_estimates (sat = perkw * weight / 1000).
OPEN_WEIGHT = 702
MUTUAL_CLOSE_WEIGHT = 673
#: Costs used when feerates returns nothing at all (a typical open and close, in sat).
DEFAULT_OPEN_COST_SAT = 5000
DEFAULT_CLOSE_COST_SAT = 3000

#: The shortest span a window's rate is taken over (channel.flow_days_30d): one forward
#: minutes after revops first saw the node is not a day's flow a hundred times over.
MIN_FLOW_DAYS = 0.25

#: States whose balances count in peer.* and node.* sums ("open" channels).
OPEN_STATES = frozenset({"CHANNELD_NORMAL", "CHANNELD_AWAITING_SPLICE"})

_EMPTY_FLOW = ChannelFlow("")

#: Per window: the 13 channel.* fact names filled from a WindowFlow, in _channel_facts order.
_WINDOW_KEYS = tuple((tuple(k.format(w) for k in (
    "channel.out_fwds_{}", "channel.in_fwds_{}", "channel.out_volume_{}_msat",
    "channel.in_volume_{}_msat", "channel.fees_earned_{}_msat", "channel.fees_sourced_{}_msat",
    "channel.out_failed_liquidity_{}", "channel.out_failed_policy_{}",
    "channel.out_failed_remote_{}", "channel.in_failed_{}", "channel.hold_samples_{}",
    "channel.hold_time_avg_{}_s", "channel.hold_time_std_{}_s")), w) for w in WINDOWS_S)
_ZERO_WINDOW_FACTS = {k: (0.0 if k.endswith("_s") else 0) for keys, _ in _WINDOW_KEYS for k in keys}


@dataclass
class _PeerSums:
    """Running sums over one peer's channels while build_facts walks listpeerchannels."""

    connected: bool
    n_open: int = 0
    n_active: int = 0
    total_msat: int = 0
    local_msat: int = 0
    out_7d_msat: int = 0
    in_7d_msat: int = 0
    fees_7d_msat: int = 0
    in_settled_7d: int = 0
    in_failed_7d: int = 0
    # (settled, failed) forwards in from this peer over 1d, 7d and 30d (for the decayed reputation)
    in_1d: tuple[int, int] = (0, 0)
    in_30d: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ChannelFacts:
    """The facts of one channel: its scid, its peer and a value for every registered fact."""

    scid: str
    peer_id: str
    values: Mapping[str, Any]   # keys are FACTS names; every registered fact, never None


def _int(v: Any, default: int = 0) -> int:
    """Returns v if it is an integer (not bool), int(v) if a finite float, else default."""
    if type(v) is int:
        return v
    return int(v) if type(v) is float and math.isfinite(v) else default


def _is_map(v: Any) -> bool:
    """Returns whether v is a mapping (dict checked first: abc checks are slow in hot loops)."""
    return type(v) is dict or isinstance(v, Mapping)


def _dict(v: Any) -> Mapping[str, Any]:
    """Returns v if it is a mapping, else an empty one."""
    return v if type(v) is dict or isinstance(v, Mapping) else {}


def _list(v: Any) -> list:
    """Returns v if it is a list, else an empty list."""
    return v if isinstance(v, list) else []


def scid_block(scid: str) -> int | None:
    """Returns the funding block height encoded in a scid "BLOCKxTXxOUT", None if unparsable."""
    head, sep, _ = scid.partition("x")
    return int(head) if sep and head.isdigit() else None


def market_facts(feerates: Mapping[str, Any], history: History = EMPTY_HISTORY,
                 now_s: float = 0.0) -> dict[str, Any]:
    """Returns the market.* facts from a feerates response (perkw or perkb style) and the
    feerate samples of `history` as of `now_s`."""
    feerates = _dict(feerates)
    perkw = _dict(feerates.get("perkw"))
    scale = 1.0
    if not perkw and isinstance(feerates.get("perkb"), Mapping):
        perkw, scale = feerates["perkb"], 0.25  # perkb = 4 x perkw

    def rate(key: str) -> int | None:
        v = _int(perkw.get(key), -1)
        return int(v * scale) if v >= 0 else None

    opening = rate("opening")
    known = opening is not None
    floor = rate("floor") or FLOOR_PERKW
    opening = opening or floor
    mutual = rate("mutual_close") or opening
    estimates = sorted(
        (e for e in _list(perkw.get("estimates"))
         if isinstance(e, Mapping) and type(e.get("blockcount")) is int
         and _int(e.get("feerate"), -1) >= 0),
        key=lambda e: e["blockcount"])
    fast = int(_int(estimates[0]["feerate"]) * scale) if estimates else opening
    slow = int(_int(estimates[-1]["feerate"]) * scale) if estimates else mutual

    est = _dict(feerates.get("onchain_fee_estimates"))
    open_cost = est.get("opening_channel_satoshis")
    close_cost = est.get("mutual_close_satoshis")
    if type(open_cost) is not int:
        open_cost = opening * OPEN_WEIGHT // 1000 if known else DEFAULT_OPEN_COST_SAT
    if type(close_cost) is not int:
        close_cost = mutual * MUTUAL_CLOSE_WEIGHT // 1000 if known else DEFAULT_CLOSE_COST_SAT
    facts = {
        "market.feerates_known": known,
        "market.opening_feerate_perkw": opening,
        "market.mutual_close_feerate_perkw": mutual,
        "market.unilateral_close_feerate_perkw": rate("unilateral_close") or opening,
        "market.min_acceptable_perkw": rate("min_acceptable") or FLOOR_PERKW,
        "market.max_acceptable_perkw": rate("max_acceptable") or opening * 10,
        "market.floor_perkw": floor,
        "market.fast_feerate_perkw": fast,
        "market.slow_feerate_perkw": slow,
        "market.opening_sat_per_vb": opening * 4 / 1000,
        "market.open_cost_sat": open_cost,
        "market.close_cost_sat": close_cost,
        "market.replacement_cost_sat": open_cost + close_cost,
    }
    facts.update(market_history_facts(history, now_s, opening))
    return facts


def _onchain(listfunds: Mapping[str, Any]) -> tuple[int, int]:
    """Returns (confirmed_sat, unconfirmed_sat) of listfunds outputs (immature counts as unconfirmed)."""
    conf = unconf = 0
    for o in _list(_dict(listfunds).get("outputs")):
        if not isinstance(o, Mapping):
            continue
        amt = _int(o.get("amount_msat"))
        st = o.get("status")
        if st == "confirmed":
            conf += amt
        elif st in ("unconfirmed", "immature"):
            unconf += amt
    return conf // 1000, unconf // 1000


def current_fee_ppm(channel: Any) -> int | None:
    """The proportional fee lightningd has in force for a listpeerchannels entry: its
    `updates.local` value, else the top-level field; None when it reports neither.

    The one source of "the channel's fee": the channel.fee_ppm fact, the actuator's
    idempotency check and the journal's "fee on chain" all read it here."""
    if not _is_map(channel):
        return None
    loc = _dict(_dict(channel.get("updates")).get("local"))
    for v in (loc.get("fee_proportional_millionths"), channel.get("fee_proportional_millionths")):
        if type(v) is int:
            return v
        if type(v) is float and math.isfinite(v):
            return int(v)
    return None


def flow_days(age_days: float | None, forwards_since_s: float | None, now_s: float) -> float:
    """Returns the days of the last 30 that a channel's flow windows really cover: no more
    than the channel's age (None: unknown) and the time since the record of forwards begins
    (None: unknown), and at least MIN_FLOW_DAYS."""
    days = 30.0
    if age_days is not None:
        days = min(days, age_days)
    if forwards_since_s is not None:
        days = min(days, (now_s - forwards_since_s) / 86_400)
    return max(MIN_FLOW_DAYS, days)


def _channel_facts(ch: Mapping[str, Any], scid: str, blockheight: int, now_s: float,
                   flow: ChannelFlow, forwards_since_s: float | None = None) -> dict[str, Any]:
    """Returns the channel.* facts of one listpeerchannels entry with its flow aggregates."""
    g = ch.get
    total = _int(g("total_msat"))
    local = _int(g("to_us_msat"))
    spendable = _int(g("spendable_msat"))
    state = g("state")
    state = state if isinstance(state, str) else ""
    connected = g("peer_connected") is True

    updates = _dict(g("updates"))
    loc = _dict(updates.get("local"))
    rem = updates.get("remote")
    peer_known = _is_map(rem) and "fee_proportional_millionths" in rem
    rem = _dict(rem)

    start = scid_block(scid)
    age_known = start is not None and blockheight > 0
    age_blocks = max(0, blockheight - start) if age_known else 0
    age_days = age_blocks * BLOCK_S / 86_400
    days = flow_days(age_days if age_known else None, forwards_since_s, now_s)

    max_htlcs = _int(g("max_accepted_htlcs"), DEFAULT_MAX_HTLCS) or DEFAULT_MAX_HTLCS
    # A dust HTLC (lightningd marks it local_trimmed: too small to enforce on chain; or under
    # the channel's dust limit) pays no fee a premium could ration: a flood of them (jamming)
    # is defended by htlc minimums, so it fills slots but not htlc_util.
    dust_limit = _int(g("dust_limit_msat"), DUST_MSAT) or DUST_MSAT
    n_htlcs = n_dust = 0
    htlc_msat = 0
    for h in _list(g("htlcs")):
        n_htlcs += 1
        if _is_map(h):
            amount = _int(h.get("amount_msat"))
            htlc_msat += amount
            n_dust += h.get("local_trimmed") is True or 0 < amount < dust_limit
    value_cap = _int(g("our_max_htlc_value_in_flight_msat"), total) or total
    value_cap = min(value_cap, total) if total else value_cap
    slot_util = min(1.0, n_htlcs / max_htlcs)
    priced_slot_util = min(1.0, (n_htlcs - n_dust) / max_htlcs)
    value_util = min(1.0, htlc_msat / value_cap) if value_cap > 0 else 0.0

    v: dict[str, Any] = {
        "channel.scid": scid,
        "channel.state": state,
        "channel.active": state == "CHANNELD_NORMAL" and connected,
        "channel.private": g("private") is True,
        "channel.opener_local": g("opener") == "local",
        "channel.capacity_sat": total // 1000,
        "channel.local_msat": local,
        "channel.remote_msat": max(0, total - local),
        "channel.local_ratio": min(1.0, local / total) if total > 0 else 0.0,
        "channel.spendable_msat": spendable,
        "channel.receivable_msat": _int(g("receivable_msat")),
        "channel.spendable_ratio": min(1.0, spendable / total) if total > 0 else 0.0,
        "channel.age_blocks": age_blocks,
        "channel.age_days": age_days,
        "channel.flow_days_30d": days,
        "channel.fee_ppm": current_fee_ppm(ch) or 0,
        "channel.fee_base_msat": _int(loc.get("fee_base_msat"), _int(g("fee_base_msat"))),
        "channel.htlc_min_msat": _int(loc.get("htlc_minimum_msat"),
                                      _int(g("minimum_htlc_out_msat"))),
        "channel.htlc_max_msat": _int(loc.get("htlc_maximum_msat"),
                                      _int(g("maximum_htlc_out_msat"), total)),
        "channel.peer_fee_known": peer_known,
        "channel.peer_fee_ppm": _int(rem.get("fee_proportional_millionths")),
        "channel.peer_fee_base_msat": _int(rem.get("fee_base_msat")),
        "channel.max_accepted_htlcs": max_htlcs,
        "channel.htlcs_in_flight": n_htlcs,
        "channel.htlcs_in_flight_msat": htlc_msat,
        "channel.htlcs_in_flight_dust": n_dust,
        "channel.htlc_slot_util": slot_util,
        "channel.htlc_value_util": value_util,
        "channel.htlc_util": max(priced_slot_util, value_util),
    }

    if flow.windows:
        for keys, w in _WINDOW_KEYS:
            wf = flow.windows.get(w, EMPTY_WINDOW)
            v.update(zip(keys, (
                wf.out_count, wf.in_count, wf.out_msat, wf.in_msat, wf.fees_msat,
                wf.sourced_fees_msat, wf.out_failed_liquidity, wf.out_failed_policy,
                wf.out_failed_remote, wf.in_failed, wf.hold_count, wf.hold_avg_s, wf.hold_std_s)))
    else:
        v.update(_ZERO_WINDOW_FACTS)

    w7 = flow.window("7d")
    out7, in7 = w7.out_msat, w7.in_msat
    last_out, last_in = flow.last_out_s, flow.last_in_s
    v["channel.has_forwarded"] = last_out is not None or last_in is not None
    v["channel.last_out_fwd_age_s"] = (min(NEVER_S, max(0.0, now_s - last_out))
                                       if last_out is not None else NEVER_S)
    v["channel.last_in_fwd_age_s"] = (min(NEVER_S, max(0.0, now_s - last_in))
                                      if last_in is not None else NEVER_S)
    v["channel.net_flow_7d_msat"] = out7 - in7
    v["channel.flow_ratio_7d"] = (out7 - in7) / (out7 + in7) if out7 + in7 > 0 else 0.0
    days_7d = min(7.0, days)
    v["channel.turnover_7d"] = (out7 + in7) / days_7d / total if total > 0 else 0.0
    v["channel.revenue_rate_7d_msat_per_h"] = w7.fees_msat / (days_7d * 24)
    v["channel.in_reputation_7d"] = laplace(w7.in_count, w7.in_failed)
    return v


def _in_fees_from_forwards(forwards: list, now_s: float, window_s: float = 86_400,
                           field: str = "fee_msat") -> dict[str, dict[str, int]]:
    """out_scid -> {in_scid: sum of `field`} of the settled forwards of the last window (24 h)."""
    pairs: dict[str, dict[str, int]] = {}
    for f in forwards:
        if not _is_map(f) or f.get("status") != "settled":
            continue
        out, inc = f.get("out_channel"), f.get("in_channel")
        t = f.get("resolved_time") or f.get("received_time") or 0
        if isinstance(out, str) and isinstance(inc, str) and now_s - window_s < t <= now_s:
            ins = pairs.setdefault(out, {})
            ins[inc] = ins.get(inc, 0) + _int(f.get(field))
    return pairs


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def clock_facts(now_s: float) -> dict[str, Any]:
    """node.hour_utc and node.weekday of the evaluation time (the simulated clock in simulations)."""
    day, second_of_day = divmod(int(math.floor(now_s)), 86400)
    # 1970-01-01 was a Thursday (index 3 of WEEKDAYS).
    return {"node.hour_utc": second_of_day // 3600, "node.weekday": WEEKDAYS[(day + 3) % 7]}


def peer_aliases(listnodes: Any) -> dict[str, str]:
    """nodeid -> alias from a listnodes response (nodes without a node_announcement have none)."""
    out: dict[str, str] = {}
    for n in _list(_dict(listnodes).get("nodes")):
        if _is_map(n) and isinstance(n.get("nodeid"), str) and isinstance(n.get("alias"), str):
            out[n["nodeid"]] = n["alias"]
    return out


def _loop_facts(v: dict, ins: Mapping[str, int], peer_id: str, peer_of: Mapping[str, str]) -> None:
    """Self-loops vs one-way streets (roadmap v1.4): the channel's 7-day outflow that came in
    through the same peer, plus what revops' own rebalances put back into it (the 30-day
    amount scaled to 7 days), is a loop; the rest is its genuine one-way outflow."""
    same_peer = sum(msat for scid, msat in ins.items() if peer_of.get(scid) == peer_id)
    out7, in7 = v["channel.out_volume_7d_msat"], v["channel.in_volume_7d_msat"]
    days = v["channel.flow_days_30d"]
    loop = min(out7, same_peer + int(v.get("channel.rebalanced_30d_msat", 0) * min(7.0, days) / days))
    oneway = out7 - loop
    v["channel.loop_out_volume_7d_msat"] = loop
    v["channel.loop_ratio_7d"] = loop / out7 if out7 > 0 else 0.0
    v["channel.oneway_out_volume_7d_msat"] = oneway
    v["channel.oneway_flow_ratio_7d"] = (oneway - in7) / (oneway + in7) if oneway + in7 > 0 else 0.0


def build_facts(rpc: Mapping[str, Any], now_s: float,
                flows: Mapping[str, ChannelFlow] | None = None,
                history: History | None = None,
                states: Mapping[str, Mapping[str, Any]] | None = None,
                rebalance: RebalanceHistory | None = None,
                price: PriceBook | None = None) -> list[ChannelFacts]:
    """Returns one ChannelFacts per listpeerchannels entry that has a scid, in RPC order.

    `rpc` holds lightningd responses by method name (getinfo, listpeerchannels, listforwards,
    feerates, listfunds, listpeers, listnodes; missing ones count as empty). `flows` are per-scid forward
    aggregates (e.g. from the plugin's store); when None they are computed from
    rpc["listforwards"]["forwards"] as of `now_s`. `history` is what the store remembers
    (peer uptime, applied fee changes, feerate samples); None means nothing is known and the
    history facts take their neutral defaults. `states` are the policy's stored per-channel
    state (scid -> {name: value}); only the Defibrillator's `zombie` flag is read from it.
    history facts take their neutral defaults. `rebalance` is what the store knows about
    revops' own rebalances (facts/rebalance.py); None means nothing. `price` is the price
    learner's state per channel (facts/price.py); None means nothing learned yet.
    """
    if history is None:
        history = EMPTY_HISTORY
    states = states or {}
    getinfo = _dict(rpc.get("getinfo"))
    blockheight = _int(getinfo.get("blockheight"))
    if flows is None or history.in_fees_1d is None:
        forwards = _list(_dict(rpc.get("listforwards")).get("forwards"))
    if flows is None:
        flows = flows_from_forwards(forwards, now_s)
    in_fees_1d = history.in_fees_1d if history.in_fees_1d is not None else _in_fees_from_forwards(forwards, now_s)
    in_volume_7d = history.in_volume_7d if history.in_volume_7d is not None else \
        _in_fees_from_forwards(_list(_dict(rpc.get("listforwards")).get("forwards")), now_s, 7 * 86_400, "out_msat")

    aliases = peer_aliases(rpc.get("listnodes"))
    connected_peers: dict[str, bool] = {}
    for p in _list(_dict(rpc.get("listpeers")).get("peers")):
        if isinstance(p, Mapping) and isinstance(p.get("id"), str):
            connected_peers[p["id"]] = p.get("connected") is True

    # Pass 1: channel facts, and the per-peer / per-node sums they feed.
    chans: list[tuple[str, str, dict[str, Any]]] = []
    peers: dict[str, _PeerSums] = {}
    node_n = node_active = node_total = node_local = node_spend = node_recv = 0
    node_fees_1d = node_fees_7d = 0
    for ch in _list(_dict(rpc.get("listpeerchannels")).get("channels")):
        if not _is_map(ch):
            continue
        scid = ch.get("short_channel_id")
        peer_id = ch.get("peer_id")
        if not isinstance(scid, str) or not scid or not isinstance(peer_id, str):
            continue
        flow = flows.get(scid) or _EMPTY_FLOW
        v = _channel_facts(ch, scid, blockheight, now_s, flow, history.forwards_since_s)
        v.update(channel_history_facts(history, scid, now_s))
        v.update(price_facts(price or EMPTY_PRICE, scid, now_s, v["channel.fee_ppm"]))
        chans.append((scid, peer_id, v))

        # Balances and counts cover open channels only; flows cover every channel with a scid.
        is_open = v["channel.state"] in OPEN_STATES
        total = _int(ch.get("total_msat")) if is_open else 0
        local = v["channel.local_msat"] if is_open else 0
        active = v["channel.active"]
        p = peers.get(peer_id)
        if p is None:
            p = peers[peer_id] = _PeerSums(connected=connected_peers.get(peer_id, False))
        w7 = flow.window("7d")
        p.n_open += is_open
        p.n_active += active
        p.total_msat += total
        p.local_msat += local
        p.out_7d_msat += w7.out_msat
        p.in_7d_msat += w7.in_msat
        p.fees_7d_msat += w7.fees_msat
        p.in_settled_7d += w7.in_count
        p.in_failed_7d += w7.in_failed
        w1, w30 = flow.window("1d"), flow.window("30d")
        p.in_1d = (p.in_1d[0] + w1.in_count, p.in_1d[1] + w1.in_failed)
        p.in_30d = (p.in_30d[0] + w30.in_count, p.in_30d[1] + w30.in_failed)
        p.connected = p.connected or ch.get("peer_connected") is True

        node_n += is_open
        node_active += active
        node_total += total
        node_local += local
        if active:
            node_spend += v["channel.spendable_msat"]
            node_recv += v["channel.receivable_msat"]
        node_fees_1d += flow.window("1d").fees_msat
        node_fees_7d += w7.fees_msat

    conf_sat, unconf_sat = _onchain(_dict(rpc.get("listfunds")))
    alias = getinfo.get("alias")
    network = getinfo.get("network")
    node_id = getinfo.get("id")
    common: dict[str, Any] = {
        "node.id": node_id if isinstance(node_id, str) else "",
        "node.alias": alias if isinstance(alias, str) else "",
        "node.network": network if isinstance(network, str) else "",
        "node.blockheight": blockheight,
        "node.num_channels": node_n,
        "node.num_active_channels": node_active,
        "node.total_capacity_sat": node_total // 1000,
        "node.total_local_msat": node_local,
        "node.local_ratio": min(1.0, node_local / node_total) if node_total > 0 else 0.0,
        "node.channel_spendable_msat": node_spend,
        "node.channel_receivable_msat": node_recv,
        "node.onchain_confirmed_sat": conf_sat,
        "node.onchain_unconfirmed_sat": unconf_sat,
        "node.fees_collected_msat": _int(getinfo.get("fees_collected_msat")),
        "node.fees_earned_1d_msat": node_fees_1d,
        "node.fees_earned_7d_msat": node_fees_7d,
        "node.now_s": now_s,
        **clock_facts(now_s),
        "node.fee_updates_24h": history.node_fee_updates_24h,
    }
    common.update(market_facts(_dict(rpc.get("feerates")), history, now_s))

    peer_facts: dict[str, dict[str, Any]] = {}
    reputation: dict[str, float] = {}
    for pid, p in peers.items():
        reputation[pid] = classes.decayed_reputation(classes.bands(
            p.in_1d, (p.in_settled_7d, p.in_failed_7d), p.in_30d))
        peer_facts[pid] = {
            "peer.id": pid,
            "peer.alias": aliases.get(pid, ""),
            "peer.connected": p.connected,
            "peer.num_channels": p.n_open,
            "peer.num_active_channels": p.n_active,
            "peer.capacity_sat": p.total_msat // 1000,
            "peer.local_msat": p.local_msat,
            "peer.local_ratio": min(1.0, p.local_msat / p.total_msat) if p.total_msat > 0 else 0.0,
            "peer.out_volume_7d_msat": p.out_7d_msat,
            "peer.in_volume_7d_msat": p.in_7d_msat,
            "peer.fees_earned_7d_msat": p.fees_7d_msat,
            "peer.reputation_7d": laplace(p.in_settled_7d, p.in_failed_7d),
            "peer.reputation": reputation[pid],
            **peer_history_facts(history, pid),
        }

    rebalance_facts(chans, rebalance or EMPTY_REBALANCE, now_s, conf_sat + node_spend // 1000)
    peer_of = {scid: peer_id for scid, peer_id, _ in chans}
    out: list[ChannelFacts] = []
    for scid, peer_id, v in chans:
        v.update(peer_facts[peer_id])
        v.update(common)
        v["channel.rep_weighted_fees_1d_msat"] = classes.weighted_fees(
            in_fees_1d.get(scid, {}), peer_of, reputation)
        _loop_facts(v, in_volume_7d.get(scid, {}), peer_id, peer_of)
        v.update(classes.profitability(v))
        v["channel.profit_class"] = classes.profit_class(v, (states.get(scid) or {}).get("zombie") is True)
        v["channel.flow_class"] = classes.flow_class(v)
        v["channel.stagnant_inventory"] = classes.stagnant_inventory(v)
        out.append(ChannelFacts(scid, peer_id, MappingProxyType(v)))
    return out


def missing_facts(values: Mapping[str, Any]) -> list[str]:
    """Returns the registered fact names absent from `values` or set to None (for tests/checks)."""
    return [n for n in FACTS if values.get(n) is None]
