"""Read the live node: the RPC responses the facts need, the plugins present, forwards to backfill.

A fee cycle makes a constant number of reads (getinfo, listpeerchannels, feerates,
listfunds, listpeers, listnodes) whatever the channel count; forwards come from the store, which
notifications and `backfill_forwards` keep complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from revops.node.rpc import NodeRpc, NodeRpcError

NODE_READS: tuple[tuple[str, dict], ...] = (
    ("getinfo", {}),
    ("listpeerchannels", {}),
    ("feerates", {"style": "perkw"}),
    ("listfunds", {}),
    ("listpeers", {}),
)
PAGE = 1000
INVALID_PARAMS = -32602


@dataclass(frozen=True)
class Dependencies:
    """Plugins revops works with, as `plugin list` shows them."""

    sling: bool
    bookkeeper: bool
    plugins: tuple[str, ...]

    def to_json(self) -> dict:
        return {"sling": self.sling, "bookkeeper": self.bookkeeper}


def detect_dependencies(rpc: NodeRpc) -> Dependencies:
    """Which of sling and bookkeeper are loaded (plugin names are full paths)."""
    try:
        plugins = rpc.call("plugin", {"subcommand": "list"}).get("plugins", [])
    except NodeRpcError:
        plugins = []
    names = tuple(str(p.get("name", "")) for p in plugins if p.get("active", True))
    base = {os.path.basename(n).split(".")[0] for n in names}
    return Dependencies(sling="sling" in base, bookkeeper="bookkeeper" in base, plugins=names)


def capture_node(rpc: NodeRpc) -> dict[str, Any]:
    """The RPC responses of NODE_READS, keyed by method, plus our peers' gossip (listnodes);
    raises NodeRpcError if any of NODE_READS fails."""
    out = {method: rpc.call(method, params) for method, params in NODE_READS}
    out["listnodes"] = peer_nodes(rpc, out["listpeerchannels"])
    return out


class CycleReads:
    """The node reads of one `revenue-cycle`, shared by its fee and rebalance halves.

    The first `capture` reads everything (NODE_READS, listnodes) and backfills forwards; once
    the fee half has acted (`fees_changed`), the next one re-reads only listpeerchannels, the
    one reply setchannel changes, and every later one (the wallet reserve's check, the
    rebalance half) reuses that. The node info, feerates, funds, peers and gossip read
    milliseconds earlier are reused throughout. That halves the RPCs of a cycle "all" (the
    simulator makes thousands). Outside a cycle (explain, accounting) use a fresh
    CycleReads: nothing is reused.
    """

    def __init__(self) -> None:
        self._first: dict[str, Any] | None = None
        self._channels: Any = None  # listpeerchannels as the node has it now, None: read it again
        # the price learner's book of this cycle (runtime.observe): its states and estimates
        # do not change between the halves, only the fees do, and an estimate ignores the fee
        self.price_book: Any = None
        # and its forward sums (History.in_fees_1d, in_volume_7d): the fee half moves no forward
        self.forward_sums: tuple | None = None

    @property
    def first(self) -> bool:
        """Nothing read yet: the caller should backfill forwards before `capture`."""
        return self._first is None

    def capture(self, rpc: NodeRpc) -> dict[str, Any]:
        """capture_node(rpc), or its first result with listpeerchannels as it is now."""
        if self._first is None:
            self._first = capture_node(rpc)
            self._channels = self._first["listpeerchannels"]
            return dict(self._first)
        if self._channels is None:
            self._channels = rpc.call("listpeerchannels", {})
        return {**self._first, "listpeerchannels": self._channels}

    def fees_changed(self) -> None:
        """The fee half has acted: the next capture reads listpeerchannels again."""
        self._channels = None


def peer_nodes(rpc: NodeRpc, listpeerchannels: dict) -> dict[str, Any]:
    """listnodes, kept to our peers' entries (peer.alias). Best effort: gossip is a nicety,
    so a failing listnodes gives no aliases rather than no fee cycle."""
    peers = {c.get("peer_id") for c in listpeerchannels.get("channels", []) if isinstance(c, dict)}
    try:
        nodes = rpc.call("listnodes", {}).get("nodes", [])
    except NodeRpcError:
        return {"nodes": []}
    return {"nodes": [n for n in nodes if isinstance(n, dict) and n.get("nodeid") in peers]}


def page_forwards(rpc: NodeRpc, index: str, start: int, on_page: Callable[[list[dict], dict], None]) -> int:
    """Page through listforwards by `index` (created|updated) from `start`; returns rows seen.

    `on_page(rows, max_index)` gets each page's rows and the highest created_index and
    updated_index lightningd sent in it, rows dropped by node/replies.py included."""
    seen = 0
    while True:
        reply = rpc.call("listforwards", {"index": index, "start": start, "limit": PAGE})
        page = reply.get("forwards", [])
        # A checked reply (node/replies.py) may have dropped bad rows: page by what lightningd
        # sent, so a dropped row neither ends the paging early nor is asked for again.
        raw_count = getattr(reply, "raw_count", len(page))
        max_index = dict(getattr(reply, "max_index", {}))
        for f in page:
            for key in ("created_index", "updated_index"):
                if type(f.get(key)) is int and f[key] > max_index.get(key, -1):
                    max_index[key] = f[key]
        if raw_count:
            on_page(page, max_index)
            seen += len(page)
        last = max_index.get(f"{index}_index", -1)
        if raw_count == 0 or last < start:
            return seen
        start = last + 1
        if raw_count < PAGE:
            return seen


def backfill_forwards(rpc: NodeRpc, store) -> int:
    """Fetch what was routed (or resolved) since the store's last indexes; returns rows changed.

    Forwards created while the plugin was down come by created_index; forwards that were
    pending (offered) and resolved meanwhile come by updated_index. lightningd before
    v23.11 has no `index` parameter (-32602): then the whole list is read and ingested,
    which the store's idempotent ingestion makes safe.
    """
    created, updated = store.forward_index()
    changed = [0]

    def ingest(page: list[dict], max_index: dict | None = None) -> None:
        own = {k: max([f[k] for f in page if type(f.get(k)) is int], default=-1)
               for k in ("created_index", "updated_index")}
        if max_index and any(v > own[k] for k, v in max_index.items()):
            # the cursor moves past rows node/replies.py dropped too: a bad row is not asked for again
            changed[0] += store.ingest_forwards(page, cursor_floor=max_index)
        else:
            changed[0] += store.ingest_forwards(page)
    try:
        page_forwards(rpc, "created", created + 1, ingest)
        page_forwards(rpc, "updated", updated + 1, ingest)
    except NodeRpcError as err:
        if err.code != INVALID_PARAMS:
            raise
        ingest(rpc.call("listforwards", {}).get("forwards", []))
    return changed[0]


def recent_forwards(rpc: NodeRpc, since_s: float) -> list[dict]:
    """listforwards entries of the last window, plus each channel's latest settled forward
    in and out from before it; entries are exactly as lightningd returns them.

    The older ones keep "seconds since the last forward" right for idle channels when the
    snapshot is explained offline, without copying a node's whole forwarding history.
    """
    kept: list[dict] = []
    last_out: dict[str, dict] = {}
    last_in: dict[str, dict] = {}

    def when(f: dict) -> float:
        return f.get("resolved_time") or f.get("received_time") or 0

    def keep(page: list[dict], max_index: dict) -> None:
        for f in page:
            if when(f) >= since_s:
                kept.append(f)
            elif f.get("status") == "settled":
                for latest, scid in ((last_out, f.get("out_channel")), (last_in, f.get("in_channel"))):
                    if scid and (scid not in latest or when(f) > when(latest[scid])):
                        latest[scid] = f
    page_forwards(rpc, "created", 0, keep)
    # A channel with a settled forward inside the window needs nothing older for that side.
    recent_out = {f.get("out_channel") for f in kept if f.get("status") == "settled"}
    recent_in = {f.get("in_channel") for f in kept if f.get("status") == "settled"}
    older = {id(f): f for scid, f in last_out.items() if scid not in recent_out}
    older.update({id(f): f for scid, f in last_in.items() if scid not in recent_in})
    return sorted([*older.values(), *kept], key=lambda f: f.get("created_index", 0))
