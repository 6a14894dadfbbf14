"""revenue-history: lifetime (or recent) P&L per channel, open and closed, and for the node.

Source: bookkeeper when it is loaded (routing income, rebalance fees and on-chain fees, see
ledger.py), else revops' own store: routing income from forwards and their daily rollups
(so it survives pruning) and rebalance spend from the rebalancer's records when the store has
them; on-chain costs are then unknown and said so.
"""

from __future__ import annotations

import time

from revops.accounting.ledger import Line, bookkeeper_ledger, store_ledger
from revops.node.rpc import NodeRpc, NodeRpcError

CLOSING_STATES = {"CHANNELD_SHUTTING_DOWN", "CLOSINGD_SIGEXCHANGE", "CLOSINGD_COMPLETE", "AWAITING_UNILATERAL",
                  "FUNDING_SPEND_SEEN", "ONCHAIN", "CLOSED"}


def channel_index(rpc: NodeRpc) -> list[dict]:
    """Returns every channel lightningd knows, open or closed: channel_id, scid, peer_id,
    status (open | closing | closed), opener, capacity_msat, local_msat."""
    out = []
    for ch in rpc.call("listpeerchannels", {}).get("channels", []):
        state = ch.get("state")
        out.append({"channel_id": ch.get("channel_id"), "scid": ch.get("short_channel_id"),
                    "peer_id": ch.get("peer_id"), "status": "closing" if state in CLOSING_STATES else "open",
                    "state": state, "opener": ch.get("opener"), "capacity_msat": ch.get("total_msat"),
                    "local_msat": ch.get("to_us_msat")})
    try:
        closed = rpc.call("listclosedchannels", {}).get("closedchannels", [])
    except NodeRpcError:
        closed = []  # before v23.05
    for ch in closed:
        out.append({"channel_id": ch.get("channel_id"), "scid": ch.get("short_channel_id"),
                    "peer_id": ch.get("peer_id"), "status": "closed", "state": "CLOSED",
                    "opener": ch.get("opener"), "capacity_msat": ch.get("total_msat"),
                    "local_msat": ch.get("final_to_us_msat"), "close_cause": ch.get("close_cause")})
    return out


def revenue_history(rpc: NodeRpc, store, now_s: float, days: float | None = None,
                    use_bookkeeper: bool = True) -> dict:
    """Returns the P&L of the last `days` (None: lifetime) per channel and in total."""
    start_s = 0.0 if days is None else now_s - days * 86400
    channels = channel_index(rpc)
    notes: list[str] = []
    wallet_msat: int | None = 0
    if use_bookkeeper:
        events = rpc.call("bkpr-listaccountevents", {}).get("events", [])
        lines, wallet_msat = bookkeeper_ledger(events, start_s, now_s)
        key, source = "channel_id", "bookkeeper"
    else:
        start_day = "" if days is None else time.strftime("%Y-%m-%d", time.gmtime(start_s))
        lines = store_ledger(store.daily_history(), start_day)
        key, source, wallet_msat = "scid", "revops", None
        spend = getattr(store, "rebalance_spend_msat", None)
        if spend is not None:
            for ch in channels:
                if ch["scid"]:
                    lines.setdefault(ch["scid"], Line()).rebalance_cost_msat += int(spend(start_s, now_s, ch["scid"]))
        else:
            notes.append("rebalance costs unknown: no rebalancer records")
        notes.append("on-chain open/close/splice costs unknown without bookkeeper")
    rows, seen = [], set()
    for ch in channels:
        k = ch.get(key)
        if not k or k in seen:
            continue
        seen.add(k)
        rows.append({**ch, **lines.get(k, Line()).to_json()})
    for k, line in lines.items():  # accounts lightningd no longer lists
        if k not in seen:
            rows.append({key: k, "status": "unknown", **line.to_json()})
    rows.sort(key=lambda r: (-r["net_msat"], str(r.get("scid") or r.get("channel_id"))))
    by_status: dict[str, Line] = {"open": Line(), "closed": Line()}
    total = Line()
    for r in rows:
        line = Line(**{f: r[f] for f in Line.__dataclass_fields__})
        total.add(line)
        by_status["open" if r["status"] == "open" else "closed"].add(line)
    totals = total.to_json()
    if wallet_msat is not None:
        totals["wallet_onchain_cost_msat"] = wallet_msat
        totals["net_msat"] -= wallet_msat
    return {"source": source, "start_s": start_s, "end_s": now_s, "days": days, "totals": totals,
            "open_channels": by_status["open"].to_json(), "closed_channels": by_status["closed"].to_json(),
            "channels": rows, "notes": notes}
