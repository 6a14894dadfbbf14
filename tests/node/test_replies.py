"""node/replies.py: unusable replies are one clear NodeReplyError, bad entries are dropped and said."""

from __future__ import annotations

import copy

import pytest

from revops.node.capture import backfill_forwards, page_forwards
from revops.node.replies import NodeReplyError, ReplyCheckingRpc, check_reply
from revops.node.rpc import NodeRpcError
from revops.sim.model_build import build_node
from revops.sim.rpc import SimRpc


def _listpeerchannels() -> dict:
    """A real-shaped reply: the simulator's (its shapes are checked against CLN's schemas)."""
    return SimRpc(build_node("hub", seed=7))("listpeerchannels", {})


class Log(list):
    def __call__(self, message: str, level: str) -> None:
        self.append((level, message))


@pytest.mark.parametrize("method, reply, message", [
    ("listpeerchannels", [], "listpeerchannels returned array, not an object"),
    ("listpeerchannels", None, "listpeerchannels returned null, not an object"),
    ("listpeerchannels", {"channels": None}, "listpeerchannels.channels is null, not an array"),
    ("listpeerchannels", {}, "listpeerchannels.channels is missing"),
    ("listforwards", {"forwards": "many"}, "listforwards.forwards is string, not an array"),
    ("getinfo", "up", "getinfo returned string, not an object"),
    ("getinfo", {"id": "02ab", "blockheight": None}, "getinfo.blockheight is null, not a block height"),
    ("getinfo", {"id": "02ab"}, "getinfo.blockheight is missing, not a block height"),
    ("getinfo", {"id": 7, "blockheight": 800000}, "getinfo.id is 7, not a string"),
    ("feerates", {"perkw": []}, "feerates.perkw is array, not an object"),
    ("bkpr-listaccountevents", {"events": {}}, "bkpr-listaccountevents.events is object, not an array"),
])
def test_an_unusable_reply_is_one_line(method, reply, message):
    with pytest.raises(NodeReplyError) as info:
        check_reply(method, {}, reply, Log())
    assert str(info.value) == message
    assert isinstance(info.value, NodeRpcError)  # every "cannot read the node" path catches it


def test_bad_channels_are_dropped_with_a_log_line_and_the_rest_kept():
    good = _listpeerchannels()["channels"]
    assert good
    bad = [copy.deepcopy(good[0]) for _ in range(4)]
    del bad[0]["peer_id"]
    bad[1]["to_us_msat"] = "lots"
    bad[2]["updates"] = {"local": {"fee_proportional_millionths": "100"}}
    bad[3] = "not a channel"
    log = Log()
    out = check_reply("listpeerchannels", {}, {"channels": good + bad}, log)
    assert out["channels"] == good and out.raw_count == len(good) + 4
    lines = [m for _, m in log]
    assert len(lines) == 4 and all(m.startswith("skipped one entry of listpeerchannels: ") for m in lines)
    assert 'missing required key "peer_id"' in lines[0]
    assert f"listpeerchannels.channels[{len(good) + 1}].to_us_msat must be an integer, got string" in lines[1]
    assert "updates.local.fee_proportional_millionths must be an integer" in lines[2]


def test_many_bad_entries_are_summed_up_after_a_few_lines():
    log = Log()
    out = check_reply("listpeers", {}, {"peers": [None] * 50}, log)
    assert out["peers"] == [] and len(log) == 6 and "45 more" in log[-1][1]


def test_methods_revops_does_not_read_pass_as_they_are():
    assert check_reply("setchannel", {}, ["anything"], Log()) == ["anything"]
    assert check_reply("plugin", {"subcommand": "stop"}, {"result": "ok"}, Log()) == {"result": "ok"}


def _forward(i: int, **kw) -> dict:
    f = {"created_index": i, "updated_index": i, "in_channel": "1x1x0", "out_channel": "2x1x0",
         "in_htlc_id": i, "in_msat": 1_000_100, "out_msat": 1_000_000, "fee_msat": 100,
         "status": "settled", "received_time": 1_700_000_000.0 + i, "resolved_time": 1_700_000_001.0 + i,
         "style": "tlv"}
    f.update(kw)
    return f


class PagedForwards:
    """listforwards with index paging over a fixed list, some rows odd."""

    def __init__(self, rows: list):
        self.rows = rows
        self.calls = 0

    def call(self, method, params=None):
        assert method == "listforwards"
        self.calls += 1
        key = f"{params['index']}_index"
        rows = [r for r in self.rows if (r.get(key) if isinstance(r, dict) else 0) >= params["start"]]
        return {"forwards": rows[:params["limit"]]}


def test_paging_goes_past_dropped_rows_and_the_cursor_too(tmp_path, monkeypatch):
    import revops.node.capture as capture
    from revops.store import Store
    monkeypatch.setattr(capture, "PAGE", 10)
    rows = [_forward(i) for i in range(1, 26)]
    rows[9]["fee_msat"] = None          # the last row of the first page
    rows[14]["in_msat"] = "1000"        # a string amount
    del rows[24]["in_channel"]          # the very last row
    log = Log()
    rpc = ReplyCheckingRpc(PagedForwards(rows), log)
    seen = []
    page_forwards(rpc, "created", 1, lambda page, max_index: seen.extend(f["created_index"] for f in page))
    assert seen == [i for i in range(1, 25) if i not in (10, 15)]
    assert len(log) == 3
    with Store(tmp_path / "s.sqlite3") as store:
        assert backfill_forwards(rpc, store) == 22
        assert store.forward_index() == (25, 25)  # past the bad last row: not asked for again
        calls = rpc.inner.calls
        assert backfill_forwards(rpc, store) == 0 and rpc.inner.calls == calls + 2
