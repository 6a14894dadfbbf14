"""Node state → CLN JSON shapes (doc/schemas v26.06), built only when an RPC asks.

Field order follows lightningd's json_add_channel and friends so a diff against a real
node reads naturally; only presence and types matter to clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from revops.sim.model_channel import (DUST_LIMIT_MSAT, MAX_U64, NORMAL, ONCHAIN,
                                      PENDING_STATES, Channel)

if TYPE_CHECKING:
    from revops.sim.node import Node

_TYPE_NAMES = {12: "static_remotekey/even", 22: "anchors/even"}
_FEATURES = {12: "option_static_remotekey", 22: "option_anchors"}


def _status_line(ch: Channel) -> list[str]:
    if ch.state == NORMAL:
        if ch.peer.connected:
            return ["CHANNELD_NORMAL:Channel ready for use. Reconnected, and reestablished."]
        return ["CHANNELD_NORMAL:Will attempt reconnect in 60 seconds"]
    if ch.state == ONCHAIN:
        return ["ONCHAIN:All outputs resolved: waiting 100 more blocks before forgetting channel"]
    if ch.state in PENDING_STATES:
        return [f"{ch.state}:Funding needs more confirmations to be ready."]
    return [f"{ch.state}:Closing channel"]


def channel_json(node: "Node", ch: Channel) -> dict:
    """Return one listpeerchannels entry."""
    peer = ch.peer
    d: dict = {"peer_id": peer.node_id, "peer_connected": peer.connected}
    if peer.connected:
        d["reestablished"] = ch.state == NORMAL
    d["channel_type"] = {"bits": list(ch.channel_type_bits),
                         "names": [_TYPE_NAMES[b] for b in ch.channel_type_bits]}
    d["updates"] = {"local": {"htlc_minimum_msat": ch.htlc_min_msat,
                              "htlc_maximum_msat": ch.htlc_max_msat,
                              "cltv_expiry_delta": ch.cltv_delta,
                              "fee_base_msat": ch.fee_base_msat,
                              "fee_proportional_millionths": ch.fee_ppm}}
    if ch.scid:   # the peer's channel_update arrives once the channel is announced
        d["updates"]["remote"] = {"htlc_minimum_msat": ch.r_htlc_min_msat,
                                  "htlc_maximum_msat": ch.r_htlc_max_msat,
                                  "cltv_expiry_delta": ch.r_cltv_delta,
                                  "fee_base_msat": ch.r_fee_base_msat,
                                  "fee_proportional_millionths": ch.r_fee_ppm}
    d["ignore_fee_limits"] = ch.ignore_fee_limits
    if peer.last_stable_s is not None and node.now_s >= peer.last_stable_s:
        d["last_stable_connection"] = peer.last_stable_s
    d["state"] = ch.state
    d["scratch_txid"] = ch.scratch_txid
    d["last_tx_fee_msat"] = ch.commit_fee_msat()
    d["lost_state"] = False
    d["feerate"] = {"perkw": ch.feerate_perkw, "perkb": ch.feerate_perkw * 4}
    d["owner"] = "onchaind" if ch.state == ONCHAIN else (
        "closingd" if ch.state.startswith("CLOSINGD") else "channeld")
    if ch.scid:
        d["short_channel_id"] = ch.scid
        d["direction"] = ch.direction
    d["channel_id"] = ch.channel_id
    d["funding_txid"] = ch.funding_txid
    d["funding_outnum"] = ch.funding_outnum
    d["private"] = ch.private
    d["opener"] = ch.opener
    if ch.closer:
        d["closer"] = ch.closer
    alias = {}
    if ch.alias_local:
        alias["local"] = ch.alias_local
    if ch.alias_remote and ch.scid:
        alias["remote"] = ch.alias_remote
    d["alias"] = alias
    d["features"] = [_FEATURES[b] for b in ch.channel_type_bits]
    d["funding"] = {"local_funds_msat": ch.local_funds_msat,
                    "remote_funds_msat": ch.remote_funds_msat, "pushed_msat": ch.pushed_msat}
    d["to_us_msat"] = ch.to_us_msat
    d["min_to_us_msat"] = ch.min_to_us_msat
    d["max_to_us_msat"] = ch.max_to_us_msat
    d["total_msat"] = ch.total_msat
    d["fee_base_msat"] = ch.fee_base_msat
    d["fee_proportional_millionths"] = ch.fee_ppm
    d["dust_limit_msat"] = DUST_LIMIT_MSAT
    d["their_max_htlc_value_in_flight_msat"] = MAX_U64
    d["our_max_htlc_value_in_flight_msat"] = MAX_U64
    d["their_reserve_msat"] = ch.their_reserve_msat
    d["our_reserve_msat"] = ch.our_reserve_msat
    d["spendable_msat"] = ch.spendable_msat()
    d["receivable_msat"] = ch.receivable_msat()
    d["minimum_htlc_in_msat"] = ch.minimum_htlc_in_msat
    d["minimum_htlc_out_msat"] = ch.htlc_min_msat
    d["maximum_htlc_out_msat"] = ch.htlc_max_msat
    d["their_to_self_delay"] = 144
    d["our_to_self_delay"] = 144
    d["max_accepted_htlcs"] = ch.max_accepted_htlcs
    d["state_changes"] = [{"timestamp": ts, "old_state": old, "new_state": new,
                           "cause": cause, "message": msg}
                          for ts, old, new, cause, msg in ch.state_changes if old]
    d["status"] = _status_line(ch)
    d["in_payments_offered"] = ch.in_payments_offered
    d["in_offered_msat"] = ch.in_offered_msat
    d["in_payments_fulfilled"] = ch.in_payments_fulfilled
    d["in_fulfilled_msat"] = ch.in_fulfilled_msat
    d["out_payments_offered"] = ch.out_payments_offered
    d["out_offered_msat"] = ch.out_offered_msat
    d["out_payments_fulfilled"] = ch.out_payments_fulfilled
    d["out_fulfilled_msat"] = ch.out_fulfilled_msat
    htlcs = []
    for (direction, hid), (amount, expiry, phash) in sorted(ch.htlcs.items()):
        h = {"direction": direction, "id": hid, "amount_msat": amount, "expiry": expiry,
             "payment_hash": phash,
             "state": "RCVD_ADD_ACK_REVOCATION" if direction == "in" else
             "SENT_ADD_ACK_REVOCATION"}
        if amount < DUST_LIMIT_MSAT:
            h["local_trimmed"] = True
        htlcs.append(h)
    d["htlcs"] = htlcs
    return d


def closed_channel_json(ch: Channel) -> dict:
    """Return one listclosedchannels entry."""
    d: dict = {"peer_id": ch.peer.node_id, "channel_id": ch.channel_id}
    if ch.scid:
        d["short_channel_id"] = ch.scid
    d["alias"] = {k: v for k, v in (("local", ch.alias_local), ("remote", ch.alias_remote)) if v}
    d["opener"] = ch.opener
    if ch.closer:
        d["closer"] = ch.closer
    d["private"] = ch.private
    d["channel_type"] = {"bits": list(ch.channel_type_bits),
                         "names": [_TYPE_NAMES[b] for b in ch.channel_type_bits]}
    d["total_local_commitments"] = ch.total_local_commitments
    d["total_remote_commitments"] = ch.total_remote_commitments
    d["total_htlcs_sent"] = ch.out_payments_offered
    d["funding_txid"] = ch.funding_txid
    d["funding_outnum"] = ch.funding_outnum
    d["funding_withheld"] = False
    d["leased"] = False
    d["total_msat"] = ch.total_msat
    d["final_to_us_msat"] = ch.final_to_us_msat
    d["min_to_us_msat"] = ch.min_to_us_msat
    d["max_to_us_msat"] = ch.max_to_us_msat
    d["last_commitment_txid"] = ch.scratch_txid
    d["last_commitment_fee_msat"] = ch.commit_fee_msat()
    d["close_cause"] = ch.close_cause
    if ch.peer.last_stable_s is not None:
        d["last_stable_connection"] = ch.peer.last_stable_s
    return d


def peer_json(node: "Node", peer) -> dict:
    """Return one listpeers entry."""
    d: dict = {"id": peer.node_id, "connected": peer.connected,
               "num_channels": len(peer.channels)}
    if peer.connected:
        d["netaddr"] = [f"{peer.address}:{peer.port}"]
        d["features"] = peer.features
    return d


def node_json(node: "Node") -> dict:
    """Return our own listnodes entry (as our node_announcement gives it)."""
    cfg = node.config
    return {"nodeid": cfg.node_id, "last_timestamp": int(node.now_s), "alias": cfg.alias[:32],
            "color": cfg.color, "features": "88898882a8a59a1",
            "addresses": [{"type": "ipv4", "address": cfg.address, "port": cfg.port}]}


def gossip_node_json(node: "Node", peer) -> dict:
    """Return a peer's listnodes entry: announced when its first channel with us was opened."""
    return {"nodeid": peer.node_id, "last_timestamp": int(node.now_s), "alias": peer.alias[:32],
            "color": peer.node_id[2:8], "features": peer.features,
            "addresses": [{"type": "ipv4", "address": peer.address, "port": peer.port}]}


def funds_json(node: "Node", spent: bool) -> dict:
    """Return the listfunds result."""
    outputs = []
    for txid, vout, msat, spk, addr, status, height in node.outputs:
        if status == "spent" and not spent:
            continue
        o = {"txid": txid, "output": vout, "amount_msat": msat, "scriptpubkey": spk,
             "address": addr, "status": status, "reserved": False}
        if status == "confirmed":
            o["blockheight"] = height
        outputs.append(o)
    chans = []
    for ch in node.channels:
        c = {"peer_id": ch.peer.node_id, "connected": ch.peer.connected, "state": ch.state,
             "channel_id": ch.channel_id}
        if ch.scid:
            c["short_channel_id"] = ch.scid
        c.update({"our_amount_msat": ch.to_us_msat, "amount_msat": ch.total_msat,
                  "funding_txid": ch.funding_txid, "funding_output": ch.funding_outnum})
        chans.append(c)
    return {"outputs": outputs, "channels": chans}


def getinfo_json(node: "Node") -> dict:
    """Return the getinfo result."""
    cfg = node.config
    pending = active = inactive = 0
    for ch in node.channels:
        if ch.state in PENDING_STATES:
            pending += 1
        elif ch.state == NORMAL:
            active += 1
        else:
            inactive += 1
    return {"id": cfg.node_id, "alias": cfg.alias, "color": cfg.color,
            "num_peers": sum(1 for p in node.peers.values() if p.connected),
            "num_pending_channels": pending, "num_active_channels": active,
            "num_inactive_channels": inactive,
            "address": [{"type": "ipv4", "address": cfg.address, "port": cfg.port}],
            "binding": [{"type": "ipv4", "address": "0.0.0.0", "port": cfg.port}],
            "version": cfg.version, "blockheight": node.chain.height, "network": cfg.network,
            "fees_collected_msat": node.fees_collected_msat,
            "lightning-dir": cfg.lightning_dir,
            "our_features": {"init": "0898882a8a59a1", "node": "88898882a8a59a1",
                             "channel": "", "invoice": "02000002024100"}}
