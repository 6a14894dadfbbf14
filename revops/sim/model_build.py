"""Build a running Node from a validated Scenario (channel groups and/or a captured snapshot).

Channel groups draw each channel's parameters from the group's ranges with the scenario's
seed. A `from_snapshot` file (format `revops-snapshot/1`) seeds identity, channels, peers,
balances, fees, wallet, feerates and forward history from a real node; the market then
learns per-channel demand from the captured forwards.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Mapping

from revops.diagnostics import DiagnosticError
from revops.facts.snapshot import load_snapshot
from revops.sim import model_ids as ids
from revops.sim.market import Market, TrafficParams
from revops.sim.market_shifts import MarketShifts, ShiftParams
from revops.sim.model_chain import Shock
from revops.sim.model_channel import AWAITING_LOCKIN, NORMAL, ONCHAIN, Channel, Peer, iso_ts
from revops.sim.model_forwards import FAILED, SETTLED, STATUS_CODES
from revops.sim.model_lifecycle import Lifecycle, LifecycleParams
from revops.sim.node import Node, NodeConfig
from revops.sim.scenario import Scenario, load_scenario
from revops.sim.sling import Sling, SlingParams

def _draw(rng: random.Random, spec: Any, log: bool = False) -> float:
    """Return a value from a scalar or a (lo, hi) range (log-uniform when `log`)."""
    if not isinstance(spec, tuple):
        return spec
    lo, hi = spec
    if log and lo > 0:
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.uniform(lo, hi)


def build_node(scenario: Scenario | str, *, seed: int | None = None,
               sling: bool | None = None, bookkeeper: bool | None = None,
               lightning_dir: str | None = None) -> Node:
    """Return a Node for `scenario` (object, bundled name or path), ready to advance().

    `seed`, `sling` and `bookkeeper` override the scenario's values.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    d = scenario.data
    seed = d["seed"] if seed is None else seed
    rng = random.Random(f"{seed}/build")
    snap = _load_snapshot(scenario) if d["from_snapshot"] else None
    n, plugins = d["node"], d["plugins"]
    node_id = ids.pubkey(rng)
    alias, network, version = n["alias"], n["network"], n["version"]
    start_s, height = float(d["start_time"]), n["blockheight"]
    if snap is not None:
        gi = snap["rpc"]["getinfo"]
        node_id, alias = gi["id"], gi.get("alias", alias)
        network, version = gi.get("network", network), gi.get("version", version)
        height, start_s = gi.get("blockheight", height), float(snap["captured_at"])
    cfg = NodeConfig(
        node_id=node_id, alias=alias, color=n["color"], network=network, version=version,
        lightning_dir=lightning_dir or f"/tmp/revops-sim/{network}",
        fee_base_msat=n["fee_base_msat"], fee_ppm=n["fee_ppm"], cltv_delta=n["cltv_delta"],
        max_concurrent_htlcs=n["max_concurrent_htlcs"],
        htlc_minimum_msat=n["htlc_minimum_msat"],
        sling=plugins["sling"] if sling is None else sling,
        bookkeeper=plugins["bookkeeper"] if bookkeeper is None else bookkeeper)
    m = d["mempool"]
    base_perkw = m["base_perkw"]
    if snap is not None and "feerates" in snap["rpc"]:
        fr = snap["rpc"]["feerates"]
        perkw = fr.get("perkw") or {k: v // 4 for k, v in fr.get("perkb", {}).items()
                                    if isinstance(v, int)}
        base_perkw = max(253, int(perkw.get("opening", base_perkw)))
    chain = {"base_perkw": base_perkw, "volatility": m["volatility"],
             "shocks": [Shock(start_s + s["at_day"] * 86400, s["duration_h"] * 3600,
                              s["multiplier"]) for s in m["shocks"]],
             "shock_rate_per_week": m["shock_rate_per_week"],
             "shock_multiplier": m["shock_multiplier"],
             "shock_duration_s": m["shock_duration_h"] * 3600}
    node = Node(cfg, seed=seed, start_time_s=start_s, blockheight=height, chain_params=chain)
    traffic = TrafficParams(**d["traffic"])
    node.market = Market(node, traffic, seed)
    shifts = ShiftParams(**{k: tuple(v) if isinstance(v, (list, tuple)) else v
                            for k, v in d["shifts"].items()})
    if shifts.active:
        node.shifts = MarketShifts(node, shifts, seed)
    node.lifecycle = Lifecycle(node, LifecycleParams(**d["lifecycle"]),
                               random.Random(f"{seed}/lifecycle"))
    if cfg.sling:
        node.sling = Sling(node, SlingParams(**d["rebalance_market"]),
                           random.Random(f"{seed}/sling"), cfg.sling_version)
    if snap is not None:
        _seed_from_snapshot(node, snap, rng)
    else:
        outpoint = node.add_output(d["wallet_sat"] * 1000)
        if node.bookkeeper is not None:
            node.bookkeeper.record_deposit(d["wallet_sat"] * 1000, start_s - 86400 * 60,
                                           outpoint, height - 8000)
    for gi, group in enumerate(d["channel_groups"]):
        for _ in range(group["count"]):
            _add_group_channels(node, group, rng, gi)
    template = d["new_channels"]
    node.channel_factory = lambda r: _new_lockin_channel(node, template, r)
    node.market.rebuild()
    return node


def _apply_group(node: Node, ch: Channel, peer: Peer, g: Mapping[str, Any],
                 rng: random.Random) -> None:
    ch.private = g["private"]
    ch.fee_ppm = ch.prev_fee_ppm = int(_draw(rng, g["fee_ppm"]))
    ch.fee_base_msat = ch.prev_fee_base_msat = int(_draw(rng, g["fee_base_msat"]))
    ch.ref_fee_ppm = int(_draw(rng, g["ref_fee_ppm"], log=True))
    ch.r_fee_ppm = int(_draw(rng, g["peer_fee_ppm"]))
    ch.demand_out = 0.0 if g["dead"] else _draw(rng, g["demand_out"])
    ch.demand_in = 0.0 if g["dead"] else _draw(rng, g["demand_in"])
    ch.their_max_accepted_htlcs = g["max_accepted_htlcs"]
    if g["flood_per_hour"] > 0:
        node.market.flood_rate[ch.idx] = (g["flood_per_hour"] / 3600.0, g["flood_hold_s"])


def _make_peer(node: Node, g: Mapping[str, Any], rng: random.Random, label: str) -> Peer:
    peer = node.new_peer(label)
    peer.hold_median_s = _draw(rng, g["hold_median_s"], log=True)
    peer.hold_sigma = _draw(rng, g["hold_sigma"])
    peer.success_rate = _draw(rng, g["success_rate"])
    peer.mean_up_s = g["mean_up_h"] * 3600
    peer.mean_down_s = g["mean_down_h"] * 3600
    peer.dead = g["dead"]
    return peer


def _add_group_channels(node: Node, g: Mapping[str, Any], rng: random.Random, gi: int) -> None:
    label = f"{g['name'] or 'group%d' % gi}-{len(node.peers) + 1}"[:32]
    peer = _make_peer(node, g, rng, label)
    node.add_peer(peer)
    for _ in range(g["channels_per_peer"]):
        cap_msat = int(_draw(rng, g["capacity_sat"], log=True)) * 1000
        to_us = int(cap_msat * _draw(rng, g["local_ratio"]))
        ch = node.new_channel(peer, cap_msat, to_us, g["opener"])
        _apply_group(node, ch, peer, g, rng)
        age_blocks = 1000 + rng.randrange(50_000)
        block = node.chain.height - age_blocks
        ch.scid = ids.scid(block, 1 + rng.randrange(3000), ch.funding_outnum)
        ch.opened_s = node.now_s - age_blocks * 600
        ch.state = NORMAL
        ch.state_changes.append((iso_ts(ch.opened_s), AWAITING_LOCKIN, NORMAL,
                                 "user" if ch.opener == "local" else "remote",
                                 "Lockin complete"))
        if g["close_after_days"] is not None:
            ch.close_at_s = node.now_s + _draw(rng, g["close_after_days"]) * 86400
        node.add_channel(ch)
        if node.bookkeeper is not None:
            node.bookkeeper.record_channel_open(
                ch.channel_id, to_us, cap_msat, ch.opened_s,
                f"{ch.funding_txid}:{ch.funding_outnum}", block, peer.node_id, 0, ch.funding_txid)


def _new_lockin_channel(node: Node, g: Mapping[str, Any], rng: random.Random) -> Channel:
    peer = _make_peer(node, g, rng, f"{g['name'] or 'new'}-{len(node.peers) + 1}"[:32])
    cap_msat = int(_draw(rng, g["capacity_sat"], log=True)) * 1000
    opener = g["opener"]
    to_us = cap_msat if opener == "local" else 0
    ch = node.new_channel(peer, cap_msat, to_us, opener)
    _apply_group(node, ch, peer, g, rng)
    ch.state = AWAITING_LOCKIN
    ch.opened_s = node.now_s
    return ch


# -- snapshots ----------------------------------------------------------------------
def _load_snapshot(scenario: Scenario) -> dict:
    """Return the snapshot a scenario starts from, validated by revops.facts.snapshot."""
    ref = scenario.data["from_snapshot"]
    path = Path(ref)
    if not path.is_absolute():
        path = Path(scenario.path).parent / path
    if not path.exists():
        line, col = scenario.marks.get("from_snapshot", (1, 1))
        raise DiagnosticError.single(scenario.path, line, col, "scenario_error",
                                     f"from_snapshot: no such file {str(path)!r}")
    snap = load_snapshot(path)        # raises DiagnosticError (snapshot_error) when invalid
    return {"captured_at": snap.captured_at, "rpc": snap.rpc}


def _seed_from_snapshot(node: Node, snap: dict, rng: random.Random) -> None:
    rpc = snap["rpc"]
    listpeers = {p["id"]: p for p in rpc.get("listpeers", {}).get("peers", [])}
    fwd = rpc.get("listforwards", {}).get("forwards", [])
    outs: dict[str, int] = {}
    ins: dict[str, int] = {}
    for f in fwd:
        if f.get("status") == "settled":
            ins[f["in_channel"]] = ins.get(f["in_channel"], 0) + 1
            if "out_channel" in f:
                outs[f["out_channel"]] = outs.get(f["out_channel"], 0) + 1
    for c in rpc["listpeerchannels"].get("channels", []):
        pid = c["peer_id"]
        peer = node.peers.get(pid)
        if peer is None:
            lp = listpeers.get(pid, {})
            addr = (lp.get("netaddr") or ["198.51.100.1:9735"])[0]
            host, _, port = addr.rpartition(":")
            peer = Peer(pid, pid[:8], host or addr, int(port) if port.isdigit() else 9735)
            node.add_peer(peer)
            peer.connected = bool(c.get("peer_connected", lp.get("connected", True)))
        ch = Channel(len(node.channels), peer)
        ch.scid = c.get("short_channel_id")
        ch.channel_id = c.get("channel_id") or ids.hex32(rng)
        ch.funding_txid = c.get("funding_txid") or ids.hex32(rng)
        ch.funding_outnum = c.get("funding_outnum", 0)
        ch.scratch_txid = c.get("scratch_txid") or ids.hex32(rng)
        ch.direction = c.get("direction", 0 if node.config.node_id < pid else 1)
        alias = c.get("alias", {})
        ch.alias_local, ch.alias_remote = alias.get("local"), alias.get("remote")
        ch.private = c.get("private", False)
        ch.opener = c.get("opener", "local")
        ch.closer = c.get("closer")
        ch.state = c.get("state", NORMAL)
        ch.total_msat = c.get("total_msat", 0)
        ch.to_us_msat = c.get("to_us_msat", 0)
        ch.min_to_us_msat = c.get("min_to_us_msat", ch.to_us_msat)
        ch.max_to_us_msat = c.get("max_to_us_msat", ch.to_us_msat)
        fund = c.get("funding", {})
        ch.local_funds_msat = fund.get("local_funds_msat", 0)
        ch.remote_funds_msat = fund.get("remote_funds_msat", 0)
        ch.pushed_msat = fund.get("pushed_msat", 0)
        ch.our_reserve_msat = c.get("our_reserve_msat", ch.total_msat // 100)
        ch.their_reserve_msat = c.get("their_reserve_msat", ch.total_msat // 100)
        ch.feerate_perkw = c.get("feerate", {}).get("perkw", 253)
        local = c.get("updates", {}).get("local", {})
        ch.fee_base_msat = ch.prev_fee_base_msat = c.get(
            "fee_base_msat", local.get("fee_base_msat", node.config.fee_base_msat))
        ch.fee_ppm = ch.prev_fee_ppm = c.get(
            "fee_proportional_millionths", local.get("fee_proportional_millionths", 10))
        ch.htlc_min_msat = c.get("minimum_htlc_out_msat", local.get("htlc_minimum_msat", 0))
        ch.htlc_max_msat = c.get("maximum_htlc_out_msat",
                                 local.get("htlc_maximum_msat", ch.total_msat))
        ch.cltv_delta = local.get("cltv_expiry_delta", node.config.cltv_delta)
        remote = c.get("updates", {}).get("remote")
        if remote:
            ch.r_fee_base_msat = remote["fee_base_msat"]
            ch.r_fee_ppm = remote["fee_proportional_millionths"]
            ch.r_htlc_min_msat = remote["htlc_minimum_msat"]
            ch.r_htlc_max_msat = remote["htlc_maximum_msat"]
            ch.r_cltv_delta = remote["cltv_expiry_delta"]
        ch.max_accepted_htlcs = c.get("max_accepted_htlcs", node.config.max_concurrent_htlcs)
        ch.minimum_htlc_in_msat = c.get("minimum_htlc_in_msat", 0)
        ch.ignore_fee_limits = c.get("ignore_fee_limits", False)
        for k in ("in_payments_offered", "in_offered_msat", "in_payments_fulfilled",
                  "in_fulfilled_msat", "out_payments_offered", "out_offered_msat",
                  "out_payments_fulfilled", "out_fulfilled_msat"):
            setattr(ch, k, c.get(k, 0))
        for sc in c.get("state_changes", []):
            ch.state_changes.append((sc["timestamp"], sc["old_state"], sc["new_state"],
                                     sc["cause"], sc["message"]))
        # demand follows captured flow; the market price is taken to be near our fee
        ch.demand_out = 0.2 + outs.get(ch.scid, 0)
        ch.demand_in = 0.2 + ins.get(ch.scid, 0)
        ch.ref_fee_ppm = max(50, int(ch.fee_ppm * 1.2))
        ch.next_in_htlc_id = ch.in_payments_offered
        ch.next_out_htlc_id = ch.out_payments_offered
        node.add_channel(ch)
        if node.bookkeeper is not None and ch.scid:
            node.bookkeeper.record_channel_open(
                ch.channel_id, ch.local_funds_msat, ch.total_msat, node.now_s - 86400 * 30,
                f"{ch.funding_txid}:{ch.funding_outnum}", node.chain.height - 4320,
                pid, 0, ch.funding_txid)
    for o in rpc.get("listfunds", {}).get("outputs", []):
        node.outputs.append([o["txid"], o["output"], o["amount_msat"], o["scriptpubkey"],
                             o.get("address", ""), o["status"],
                             o.get("blockheight", node.chain.height)])
    _import_forwards(node, fwd)
    # captured channels that were still opening or already closed continue their lifecycle
    for ch in node.channels:
        if ch.state == AWAITING_LOCKIN:
            node.lifecycle.lockins.append((node.chain.height + 1, ch))
        elif ch.state == ONCHAIN:
            ch.onchain_since_block = node.chain.height
            node.lifecycle.forgets.append((node.chain.height + 100, ch))


def _import_forwards(node: Node, fwd: list[dict]) -> None:
    """Copy captured forwards into the store (in created order; resolved ones updated)."""
    store = node.forwards
    resolved = []
    for f in sorted(fwd, key=lambda f: f.get("created_index", 0)):
        status = STATUS_CODES.get(f.get("status"), 2)
        ci = store.add(f["in_channel"], f.get("in_htlc_id", 0), f["in_msat"],
                       float(f["received_time"]), f.get("out_channel"), f.get("out_htlc_id"),
                       f.get("out_msat", 0), status, f.get("failcode", 0))
        if status in (SETTLED, FAILED):
            resolved.append((float(f.get("resolved_time", f["received_time"])), ci, status))
        if status == SETTLED:
            node.fees_collected_msat += f.get("fee_msat", 0)
    for ts, ci, status in sorted(resolved):
        store.resolve(ci, status, ts)
