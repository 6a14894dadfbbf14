"""The simulated lightningd's JSON-RPC: `SimRpc(node)(method, params) -> result`.

This is the `rpc_backend` the harness calls. It answers lightningd's built-in commands the
plugin needs, plus bookkeeper's `bkpr-*` and sling's `sling-*` methods when those fake
plugins are loaded (otherwise -32601 `Unknown command '<m>'`, as lightningd says for a
method nobody registered). Errors are `RpcError(code, message)` with CLN's codes and text
(see cln-interfaces.md §3 and lightningd/peer_control.c, forwards.c, configs.c).
"""

from __future__ import annotations

from typing import Any, Callable

from revops.sim import model_render as render
from revops.sim.errors import INVALID_PARAMS, LIGHTNINGD, METHOD_NOT_FOUND, RpcError
from revops.sim.model_channel import PEERCOMMS_STATES, SETCHANNEL_STATES, Channel
from revops.sim.model_forwards import STATUS_CODES
from revops.sim.model_params import (badparam, bind, bool_param, channel_id_param, enum_param,
                                     is_hex, is_node_id, is_scid, msat_param, node_id_param,
                                     parse_msat, scid_param, u32_param, u64_param)
from revops.sim.node import Node

_NUMBER = "should be an integer"          # param_number wording

# `help` usage strings, as lightningd's param_usage() prints them
USAGE = {
    "getinfo": "", "listpeerchannels": "[id] [short_channel_id] [channel_id]",
    "listforwards": "[status] [in_channel] [out_channel] [index] [start] [limit]",
    "setchannel": "id [feebase] [feeppm] [htlcmin] [htlcmax] [enforcedelay] [ignorefeelimits]",
    "feerates": "style", "listfunds": "[spent]", "listpeers": "[id] [level]",
    "listclosedchannels": "[id]", "listconfigs": "[config]", "listnodes": "[id]",
    "bkpr-listincome": "[consolidate_fees] [start_time] [end_time]",
    "bkpr-listaccountevents": "[account] [payment_id]",
    "bkpr-channelsapy": "[start_time] [end_time]",
    "sling-job": "-k scid direction amount maxppm [outppm] [target] [maxhops] [candidates] "
                 "[depleteuptopercent] [depleteuptoamount] [paralleljobs]",
    "sling-once": "-k scid direction amount maxppm onceamount [outppm] [maxhops] [candidates] "
                  "[depleteuptopercent] [depleteuptoamount] [paralleljobs]",
    "sling-go": "[scid]", "sling-stop": "[scid]", "sling-deletejob": "job [delete_stats]",
    "sling-jobsettings": "[scid]", "sling-stats": "[scid] [json]",
    "sling-except-chan": "command [scid]", "sling-except-peer": "command [id]",
    "sling-version": "",
}


class SimRpc:
    """Dispatches RPC methods to handlers over a Node."""

    def __init__(self, node: Node):
        self.node = node
        self._methods: dict[str, Callable[[Any], Any]] = {
            "getinfo": self.getinfo,
            "listpeerchannels": self.listpeerchannels,
            "listforwards": self.listforwards,
            "setchannel": self.setchannel,
            "feerates": self.feerates,
            "listfunds": self.listfunds,
            "listpeers": self.listpeers,
            "listclosedchannels": self.listclosedchannels,
            "listconfigs": self.listconfigs,
            "listnodes": self.listnodes,
        }
        if node.bookkeeper is not None:
            bk = node.bookkeeper
            self._methods.update({
                "bkpr-listincome": bk.listincome,
                "bkpr-listaccountevents": bk.listaccountevents,
                "bkpr-channelsapy": lambda p: bk.channelsapy(p, node.now_s)})
        if node.sling is not None:
            self._methods.update(node.sling.methods())

    def methods(self) -> dict[str, str]:
        """Return {method: usage} for every method this backend answers (for `help`)."""
        return {m: USAGE.get(m, "") for m in sorted(self._methods)}

    def __call__(self, method: str, params: dict | list | None = None) -> Any:
        """Run `method` with `params`; return its result or raise RpcError."""
        handler = self._methods.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"Unknown command '{method}'")
        return handler(params if params is not None else {})

    # -- getinfo / peers / channels -------------------------------------------------
    def getinfo(self, params: Any) -> dict:
        bind(params, [])
        return render.getinfo_json(self.node)

    def listpeerchannels(self, params: Any) -> dict:
        p = bind(params, [("id", False), ("short_channel_id", False), ("channel_id", False)])
        peer_id = node_id_param("id", p["id"]) if "id" in p else None
        scid = scid_param("short_channel_id", p["short_channel_id"]) \
            if "short_channel_id" in p else None
        cid = channel_id_param("channel_id", p["channel_id"]) if "channel_id" in p else None
        if sum(x is not None for x in (peer_id, scid, cid)) > 1:
            # lightningd ≥ v26.04 makes the three filters mutually exclusive (wording unverified)
            raise RpcError(INVALID_PARAMS,
                           "Can only specify one of id, short_channel_id or channel_id")
        out = []
        for ch in self._ordered_channels():
            if peer_id is not None and ch.peer.node_id != peer_id:
                continue
            if scid is not None and scid not in (ch.scid, ch.alias_local):
                continue
            if cid is not None and ch.channel_id != cid:
                continue
            out.append(render.channel_json(self.node, ch))
        return {"channels": out}

    def _ordered_channels(self) -> list[Channel]:
        # lightningd lists peer by peer, each peer's channels in creation order
        return [ch for peer in self.node.peers.values() for ch in peer.channels]

    def listpeers(self, params: Any) -> dict:
        p = bind(params, [("id", False), ("level", False)])
        peer_id = node_id_param("id", p["id"]) if "id" in p else None
        if "level" in p:
            enum_param("level", p["level"], ("io", "debug", "info", "unusual", "trace"),
                       "should be 'io', 'debug', 'info', or 'unusual'")
        peers = [render.peer_json(self.node, peer) for peer in self.node.peers.values()
                 if peer_id is None or peer.node_id == peer_id]
        if "level" in p:
            for d in peers:
                d["log"] = []
        return {"peers": peers}

    def listnodes(self, params: Any) -> dict:
        """Gossip as the simulated node knows it: itself and every peer (each announced)."""
        p = bind(params, [("id", False)])
        node_id = node_id_param("id", p["id"]) if "id" in p else None
        nodes = [render.node_json(self.node)] + [render.gossip_node_json(self.node, peer)
                                                 for peer in self.node.peers.values()]
        return {"nodes": [n for n in nodes if node_id is None or n["nodeid"] == node_id]}

    def listclosedchannels(self, params: Any) -> dict:
        p = bind(params, [("id", False)])
        peer_id = node_id_param("id", p["id"]) if "id" in p else None
        return {"closedchannels": [render.closed_channel_json(ch) for ch in self.node.closed
                                   if peer_id is None or ch.peer.node_id == peer_id]}

    def listfunds(self, params: Any) -> dict:
        p = bind(params, [("spent", False)])
        spent = bool_param("spent", p["spent"]) if "spent" in p else False
        return render.funds_json(self.node, spent)

    def feerates(self, params: Any) -> dict:
        p = bind(params, [("style", True)])
        style = enum_param("style", p["style"], ("perkw", "perkb"),
                           "should be 'perkb' or 'perkw'")
        return self.node.chain.feerates(style)

    # -- listforwards ---------------------------------------------------------------
    def listforwards(self, params: Any) -> dict:
        p = bind(params, [("status", False), ("in_channel", False), ("out_channel", False),
                          ("index", False), ("start", False), ("limit", False)])
        status = None
        if "status" in p:
            if p["status"] not in STATUS_CODES:
                raise badparam("status", "Unrecognized status")
            status = STATUS_CODES[p["status"]]
        in_scid = scid_param("in_channel", p["in_channel"]) if "in_channel" in p else None
        out_scid = scid_param("out_channel", p["out_channel"]) if "out_channel" in p else None
        index = None
        if "index" in p:
            index = enum_param("index", p["index"], ("created", "updated"),
                               "should be 'created' or 'updated'")
        start = u64_param("start", p["start"]) if "start" in p else 0
        limit = u32_param("limit", p["limit"]) if "limit" in p else None
        if start != 0 and index is None:
            raise RpcError(INVALID_PARAMS, "Can only specify {start} with {index}")
        if limit is not None and index is None:
            raise RpcError(INVALID_PARAMS, "Can only specify {limit} with {index}")
        if (in_scid or out_scid) and start != 0:
            raise RpcError(INVALID_PARAMS, "Cannot use start with in_channel or out_channel")
        fw = self.node.forwards
        return {"forwards": [fw.to_json(ci)
                             for ci in fw.query(status, in_scid, out_scid, index, start, limit)]}

    # -- setchannel -----------------------------------------------------------------
    def _channels_for_id(self, value: Any) -> list[Channel] | None:
        """Resolve setchannel's `id` as param_channel_or_all does; None means "all"."""
        node = self.node
        if value == "all":
            return None
        if is_node_id(value) and value.lower() in node.peers:
            chans = [c for c in node.peers[value.lower()].channels if c.state in SETCHANNEL_STATES]
            if not chans:
                raise RpcError(LIGHTNINGD, "Could not find any active channels of peer with that id")
            return chans
        if is_hex(value, 64):
            ch = node.by_cid.get(value.lower())
            if ch is None or ch.state not in PEERCOMMS_STATES:
                raise badparam("id", "Channel id not found")
        elif is_scid(value):
            ch = node.by_scid.get(value)
            if ch is None:
                ch = next((c for c in node.channels if c.alias_local == value), None)
            if ch is None:
                raise badparam("id", "Short channel id not found")
        else:
            raise badparam("id", "should be a channel ID or short channel ID")
        if ch.state not in SETCHANNEL_STATES:
            raise badparam("id", f"Channel in state {ch.state}")
        return [ch]

    def setchannel(self, params: Any) -> dict:
        spec = [("id", True), ("feebase", False), ("feeppm", False), ("htlcmin", False),
                ("htlcmax", False), ("enforcedelay", False), ("ignorefeelimits", False)]
        raw = bind(params, [(n, False) for n, _ in spec])
        parsed: dict[str, Any] = {}
        # lightningd parses parameters in the order given, then checks required ones
        for name, value in raw.items():
            if name == "id":
                if not isinstance(value, str):
                    raise badparam("id", "should be a channel ID or short channel ID")
                parsed["id"] = self._channels_for_id(value)
            elif name == "feebase":
                msat = msat_param("feebase", value)
                if msat >= 2**32:
                    raise badparam("feebase", "exceeds u32 max")
                parsed["feebase"] = msat
            elif name in ("feeppm", "enforcedelay"):
                parsed[name] = u32_param(name, value, _NUMBER)
            elif name in ("htlcmin", "htlcmax"):
                parsed[name] = msat_param(name, value)
            else:
                parsed[name] = bool_param(name, value)
        if "id" not in raw:
            raise RpcError(INVALID_PARAMS, "missing required parameter: id")
        hmin, hmax = parsed.get("htlcmin"), parsed.get("htlcmax")
        if hmin is not None and hmax is not None and hmax < hmin:
            raise RpcError(LIGHTNINGD, "htlcmax cannot be less than htlcmin")
        chans = parsed["id"]
        if chans is None:
            chans = [c for c in self._ordered_channels() if c.state in SETCHANNEL_STATES]
        return {"channels": [self._set_channel(ch, parsed) for ch in chans]}

    def _gossip_per_day(self) -> float:
        market = self.node.market
        return market.p.gossip_updates_per_day if market is not None else float("inf")

    def _set_channel(self, ch: Channel, p: dict) -> dict:
        now = self.node.now_s
        base, ppm = p.get("feebase"), p.get("feeppm")
        hmin, hmax = p.get("htlcmin"), p.get("htlcmax")
        delay = p.get("enforcedelay", 600)
        if ((base is not None and base > ch.fee_base_msat)
                or (ppm is not None and ppm > ch.fee_ppm)
                or (hmin is not None and hmin > ch.htlc_min_msat)
                or (hmax is not None and hmax < ch.htlc_max_msat)):
            # the old values stay acceptable for `enforcedelay` seconds after an increase
            ch.old_fee_until_s = now + delay
            ch.old_fee_base_msat, ch.old_fee_ppm = ch.fee_base_msat, ch.fee_ppm
        new_base = ch.fee_base_msat if base is None else base
        new_ppm = ch.fee_ppm if ppm is None else ppm
        old_base, old_ppm = ch.fee_base_msat, ch.fee_ppm
        ch.fee_base_msat, ch.fee_ppm = new_base, new_ppm
        if (new_base, new_ppm) != (old_base, old_ppm):
            ch.prev_fee_base_msat, ch.prev_fee_ppm = old_base, old_ppm
            ch.fee_changed_s = now
            ch.fee_changed(now, self._gossip_per_day(), old_base, old_ppm)
        warn_min = warn_max = False
        if hmin is not None:
            if hmin < ch.r_htlc_min_msat:
                warn_min, ch.htlc_min_msat = True, ch.r_htlc_min_msat
            else:
                ch.htlc_min_msat = hmin
        if hmax is not None:
            possible = ch.total_msat - ch.our_reserve_msat
            if hmax > possible:
                warn_max, ch.htlc_max_msat = True, possible
            else:
                ch.htlc_max_msat = hmax
        if "ignorefeelimits" in p:
            ch.ignore_fee_limits = p["ignorefeelimits"]
        d: dict = {"peer_id": ch.peer.node_id, "channel_id": ch.channel_id}
        if ch.scid:
            d["short_channel_id"] = ch.scid
        d["fee_base_msat"] = ch.fee_base_msat
        d["fee_proportional_millionths"] = ch.fee_ppm
        d["minimum_htlc_out_msat"] = ch.htlc_min_msat
        if warn_min:
            d["warning_htlcmin_too_low"] = "Set minimum_htlc_out_msat to minimum allowed by peer"
        d["maximum_htlc_out_msat"] = ch.htlc_max_msat
        d["ignore_fee_limits"] = ch.ignore_fee_limits
        if warn_max:
            d["warning_htlcmax_too_high"] = ("Set maximum_htlc_out_msat to maximum possible "
                                             "in channel")
        return d

    # -- listconfigs ----------------------------------------------------------------
    def _configs(self) -> dict[str, dict]:
        node = self.node
        cfg = node.config
        conf_file = f"{cfg.lightning_dir}/config"
        out: dict[str, dict] = {
            "lightning-dir": {"value_str": cfg.lightning_dir, "source": "cmdline"},
            "network": {"value_str": cfg.network, "source": "cmdline"},
            "alias": {"value_str": cfg.alias, "source": f"{conf_file}:1"},
            "rgb": {"value_str": cfg.color, "source": f"{conf_file}:2"},
            "fee-base": {"value_int": cfg.fee_base_msat, "source": f"{conf_file}:3"},
            "fee-per-satoshi": {"value_int": cfg.fee_ppm, "source": f"{conf_file}:4"},
            "cltv-delta": {"value_int": cfg.cltv_delta, "source": "default"},
            "max-concurrent-htlcs": {"value_int": cfg.max_concurrent_htlcs,
                                     "source": f"{conf_file}:5"},
            "htlc-minimum-msat": {"value_msat": cfg.htlc_minimum_msat, "source": "default"},
            "min-capacity-sat": {"value_int": 10000, "source": "default", "dynamic": True},
            "funding-confirms": {"value_int": 3, "source": "default"},
            "ignore-fee-limits": {"value_bool": False, "source": "default"},
        }
        # sling is configured with plugin=...; bookkeeper ships in the default plugin dir
        slings = [p for p in node.plugins if p.endswith("/sling")]
        out["plugin"] = {"values_str": slings, "sources": [f"{conf_file}:6"] * len(slings)}
        return dict(sorted(out.items()))

    def listconfigs(self, params: Any) -> dict:
        p = bind(params, [("config", False)])
        configs = self._configs()
        if "config" in p:
            name = p["config"]
            if name not in configs:
                raise badparam("config", "Unknown config option")
            return {"configs": {name: configs[name]}}
        return {"configs": configs}


def rpc_backend_for(node: Node) -> Callable[[str, Any], Any]:
    """Return the `rpc_backend(method, params)` callable the harness expects."""
    return SimRpc(node)


# parse_msat is re-exported for callers that accept msat strings in their own params
__all__ = ["SimRpc", "rpc_backend_for", "parse_msat"]
