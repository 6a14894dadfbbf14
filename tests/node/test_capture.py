"""Capture helpers against a fake lightningd RPC: pagination, backfill cursor, snapshot forwards."""

from __future__ import annotations

from revops.node.capture import PAGE, backfill_forwards, detect_dependencies, recent_forwards
from revops.node.rpc import NodeRpcError


class FakeRpc:
    def __init__(self, forwards, plugins=()):
        self.forwards = forwards
        self.plugins = plugins
        self.calls = []

    def call(self, method, params=None):
        self.calls.append((method, params))
        if method == "plugin":
            return {"command": "list", "plugins": [{"name": p, "active": True, "dynamic": True}
                                                   for p in self.plugins]}
        if method == "listforwards":
            key = f"{params['index']}_index"
            rows = sorted((f for f in self.forwards if f.get(key, 0) >= params["start"]), key=lambda f: f[key])
            return {"forwards": rows[:params["limit"]]}
        raise NodeRpcError(method, -32601, f"Unknown command '{method}'")


def fwd(i, out, t, status="settled", inc="1x1x1"):
    f = {"created_index": i, "in_channel": inc, "in_htlc_id": i, "out_channel": out, "in_msat": 1100,
         "out_msat": 1000, "fee_msat": 100, "status": status, "received_time": t - 1}
    if status == "settled":
        f.update(updated_index=i, resolved_time=t)
    return f


def test_recent_forwards_keeps_the_window_and_each_channels_latest_older_forward():
    now = 100 * 86400.0
    forwards = [fwd(1, "2x2x2", now - 60 * 86400), fwd(2, "2x2x2", now - 40 * 86400),
                fwd(3, "3x3x3", now - 50 * 86400), fwd(4, "3x3x3", now - 86400),
                fwd(5, "4x4x4", now - 45 * 86400, status="local_failed")]
    kept = recent_forwards(FakeRpc(forwards), now - 30 * 86400)
    assert [f["created_index"] for f in kept] == [2, 4]  # 2: latest before the window (out 2x2x2, in 1x1x1)


def test_pagination_reads_every_page():
    forwards = [fwd(i, "2x2x2", 1000.0 + i) for i in range(1, 2 * PAGE + 10)]
    rpc = FakeRpc(forwards)
    assert len(recent_forwards(rpc, 0)) == len(forwards)
    assert sum(1 for m, _ in rpc.calls if m == "listforwards") == 3


class CountingStore:
    def __init__(self):
        self.rows = []

    def forward_index(self):
        return (max((f["created_index"] for f in self.rows), default=0),
                max((f.get("updated_index", 0) for f in self.rows), default=0))

    def ingest_forwards(self, page):
        self.rows.extend(page)
        return len(page)


def test_backfill_starts_after_the_stored_cursor():
    store = CountingStore()
    rpc = FakeRpc([fwd(i, "2x2x2", 1000.0 + i) for i in range(1, 6)])
    assert backfill_forwards(rpc, store) >= 5
    rpc.forwards.append(fwd(6, "2x2x2", 2000.0))
    before = len(store.rows)
    backfill_forwards(rpc, store)
    assert [f["created_index"] for f in store.rows[before:]][0] == 6


def test_dependencies_by_plugin_path():
    deps = detect_dependencies(FakeRpc([], plugins=["/usr/libexec/c-lightning/plugins/bookkeeper",
                                                    "/home/op/.lightning/plugins/sling"]))
    assert deps.sling and deps.bookkeeper
    deps = detect_dependencies(FakeRpc([], plugins=["/usr/libexec/c-lightning/plugins/bookkeeper"]))
    assert not deps.sling and deps.bookkeeper


class OldLightningd(FakeRpc):
    """lightningd before v23.11: listforwards has no index/start/limit."""

    def call(self, method, params=None):
        if method != "listforwards":
            return super().call(method, params)
        self.calls.append((method, params))
        if params:
            raise NodeRpcError(method, -32602, "unknown parameter: index")
        return {"forwards": list(self.forwards)}


def test_backfill_falls_back_to_the_whole_list_on_old_lightningd():
    store = CountingStore()
    rpc = OldLightningd([fwd(i, "2x2x2", 1000.0 + i) for i in range(1, 4)])
    assert backfill_forwards(rpc, store) == 3
    assert ("listforwards", {}) in rpc.calls


class NodeReadsRpc:
    """Counts reads; listpeerchannels shows the fee a setchannel last gave."""

    def __init__(self):
        self.calls = []
        self.fee_ppm = 100

    def call(self, method, params=None):
        self.calls.append(method)
        if method == "listpeerchannels":
            return {"channels": [{"peer_id": "02aa", "short_channel_id": "1x1x1", "fee_proportional_millionths":
                                  self.fee_ppm}]}
        if method == "listnodes":
            return {"nodes": [{"nodeid": "02aa", "alias": "A"}, {"nodeid": "03bb"}]}
        return {"method": method}


def test_cycle_reads_reads_the_node_once_and_listpeerchannels_again_after_fees_changed():
    from revops.node.capture import NODE_READS, CycleReads, capture_node
    rpc = NodeReadsRpc()
    reads = CycleReads()
    assert reads.first
    first = reads.capture(rpc)
    assert first == capture_node(NodeReadsRpc())
    assert not reads.first and len(rpc.calls) == len(NODE_READS) + 1
    first["listforwards"] = {"forwards": []}  # a caller's additions do not leak into the next capture
    unchanged = reads.capture(rpc)  # the fee half set nothing: nothing is read again
    assert len(rpc.calls) == len(NODE_READS) + 1 and "listforwards" not in unchanged
    rpc.fee_ppm = 250  # the fee half's setchannel
    reads.fees_changed()
    second = reads.capture(rpc)
    third = reads.capture(rpc)  # the wallet reserve's check, then the rebalance half: one read
    assert rpc.calls[len(NODE_READS) + 1:] == ["listpeerchannels"]
    assert second["listpeerchannels"]["channels"][0]["fee_proportional_millionths"] == 250
    assert third == second
    assert "listforwards" not in second
    assert {k: v for k, v in second.items() if k != "listpeerchannels"} == \
        {k: v for k, v in first.items() if k not in ("listpeerchannels", "listforwards")}
