"""Node replies checked once, at the RPC boundary: the shapes the rest of revops reads.

`ReplyCheckingRpc` wraps any NodeRpc. For each method whose reply revops reads it checks the
reply's top level (an object holding the expected list: `listpeerchannels.channels`,
`listforwards.forwards`, ...) and each entry of that list. A reply whose top level is wrong
cannot be used at all: it raises `NodeReplyError` (a NodeRpcError, so every caller that
already says "cannot read the node: ..." for a failed call says it for this too, e.g.
"cannot read the node: listpeerchannels.channels is null"). An entry that is wrong is dropped
with one log line and the rest is used, so one odd channel or forward row costs only itself.

The entry checks are the snapshot format's (facts/snapshot.py) plus the few fields the shell
reads besides the facts (fee updates, listforwards indexes), so a `revenue-snapshot` taken
from a checked node always loads in `revops explain --snapshot`.

Issue 12: `listpeerchannels` not an object, `channels: null` and odd `listforwards` rows raised
uncaught exceptions in the fee cycle and in history, capacity, dashboard and explain.
"""

from __future__ import annotations

from typing import Any, Callable

from revops.facts.snapshot import FORWARD_STATUSES, _Checker, _kind_of, path_str
from revops.node.rpc import NodeRpc, NodeRpcError

BAD_REPLY = -90003  # ours: lightningd answered, but not in a shape revops can read
MAX_SKIP_LINES = 5  # log lines per reply about dropped entries; the rest are counted


class NodeReplyError(NodeRpcError):
    """A reply revops cannot use at all; str() is the one-line reason."""

    def __init__(self, method: str, message: str):
        super().__init__(method, BAD_REPLY, message)

    def __str__(self) -> str:
        return self.message


class Reply(dict):
    """A checked reply (a plain dict to every reader) that remembers what was dropped.

    `raw_count` is how many entries lightningd sent and `max_index` the highest
    created_index / updated_index among them, dropped ones included, so that paging through
    listforwards neither stops early nor asks for a bad row forever.
    """

    raw_count: int = 0
    max_index: dict

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_index = {}


def _problems(check: Callable[[_Checker, Any, tuple], None], item: Any, path: tuple) -> list[str]:
    checker = _Checker()
    check(checker, item, path)
    return [p.message for p in checker.problems]


def _typed(checker: _Checker, obj: dict, fields: dict[str, str], path: tuple) -> None:
    """Records a problem for each present field of `obj` whose kind is not its `fields` kind."""
    for key, kind in fields.items():
        if key in obj:
            checker.typed(obj[key], kind, path + (key,))


def _non_negative(checker: _Checker, obj: dict, keys: tuple[str, ...], path: tuple) -> None:
    for key in keys:
        v = obj.get(key)
        if type(v) is int and v < 0:
            checker.bad(path + (key,), f"{path_str(path + (key,))} must be >= 0, got {v}")


_FEE_FIELDS = {"fee_proportional_millionths": "integer", "fee_base_msat": "integer"}
_CHANNEL_MSAT = ("to_us_msat", "total_msat", "spendable_msat", "receivable_msat")


def _channel(checker: _Checker, ch: Any, path: tuple) -> None:
    """A listpeerchannels entry: the snapshot's checks, fee updates, amounts not negative."""
    checker.check_channel(ch, path)
    if not isinstance(ch, dict):
        return
    _typed(checker, ch, {"channel_id": "string"}, path)
    _non_negative(checker, ch, _CHANNEL_MSAT, path)
    updates = ch.get("updates")
    if isinstance(updates, dict):
        for side in ("local", "remote"):
            fees = updates.get(side)
            if isinstance(fees, dict):
                _typed(checker, fees, _FEE_FIELDS, path + ("updates", side))
                _non_negative(checker, fees, tuple(_FEE_FIELDS), path + ("updates", side))


def _forward(checker: _Checker, f: Any, path: tuple) -> None:
    """A listforwards entry: the snapshot's checks, indexes, amounts not negative."""
    checker.check_forward(f, path)
    if isinstance(f, dict):
        _typed(checker, f, {"created_index": "integer", "updated_index": "integer",
                            "received_time": "number"}, path)
        _non_negative(checker, f, ("in_msat", "out_msat", "fee_msat"), path)


def _closed(checker: _Checker, ch: Any, path: tuple) -> None:
    if checker.typed(ch, "object", path):
        _typed(checker, ch, {"channel_id": "string", "short_channel_id": "string", "peer_id": "string",
                             "opener": "string", "total_msat": "integer", "final_to_us_msat": "integer",
                             "close_cause": "string"}, path)


def _output(checker: _Checker, o: Any, path: tuple) -> None:
    if checker.typed(o, "object", path):
        checker.member(o, "amount_msat", "integer", path)
        checker.member(o, "status", "string", path)


def _peer(checker: _Checker, p: Any, path: tuple) -> None:
    if checker.typed(p, "object", path):
        checker.member(p, "id", "string", path)
        checker.member(p, "connected", "bool", path)


def _event(checker: _Checker, e: Any, path: tuple) -> None:
    if checker.typed(e, "object", path):
        _typed(checker, e, {"account": "string", "tag": "string", "type": "string", "txid": "string",
                            "outpoint": "string", "payment_id": "string", "timestamp": "integer",
                            "credit_msat": "integer", "debit_msat": "integer", "fees_msat": "integer"}, path)


def _object(checker: _Checker, v: Any, path: tuple) -> None:
    checker.typed(v, "object", path)


def _plugin_entry(checker: _Checker, p: Any, path: tuple) -> None:
    if checker.typed(p, "object", path):
        checker.member(p, "name", "string", path)


#: method -> (the list it holds, the check of one entry of it)
LISTS: dict[str, tuple[str, Callable[[_Checker, Any, tuple], None]]] = {
    "listpeerchannels": ("channels", _channel),
    "listforwards": ("forwards", _forward),
    "listclosedchannels": ("closedchannels", _closed),
    "listfunds": ("outputs", _output),
    "listpeers": ("peers", _peer),
    "bkpr-listaccountevents": ("events", _event),
    "bkpr-listincome": ("income_events", _object),
    "plugin": ("plugins", _plugin_entry),
}
#: method -> its optional members that must be objects when present
OPTIONAL_OBJECTS = {"feerates": ("perkw", "perkb", "onchain_fee_estimates")}


def _top(method: str, reply: Any) -> dict:
    if not isinstance(reply, dict):
        raise NodeReplyError(method, f"{method} returned {_kind_of(reply)}, not an object")
    return reply


def _getinfo(reply: Any) -> dict:
    reply = _top("getinfo", reply)
    for key, kind in (("id", str), ("blockheight", int)):
        v = reply.get(key)
        if not isinstance(v, kind) or isinstance(v, bool) or (kind is int and v < 0):
            what = "missing" if key not in reply else repr(v) if type(v) in (int, str) else _kind_of(v)
            raise NodeReplyError("getinfo", f"getinfo.{key} is {what}, not "
                                            f"{'a string' if kind is str else 'a block height'}")
    return reply


def check_reply(method: str, params: Any, reply: Any, log: Callable[[str, str], None]) -> Any:
    """Returns `reply` checked for `method` (entries that fail their check dropped, each said
    in `log`); raises NodeReplyError when its top level is unusable. Methods revops does not
    read are returned as they are."""
    if method == "getinfo":
        return _getinfo(reply)
    if method in OPTIONAL_OBJECTS:
        reply = _top(method, reply)
        for key in OPTIONAL_OBJECTS[method]:
            if key in reply and not isinstance(reply[key], dict):
                raise NodeReplyError(method, f"{method}.{key} is {_kind_of(reply[key])}, not an object")
        return reply
    if method not in LISTS:
        return reply
    key, check = LISTS[method]
    reply = _top(method, reply)
    if key not in reply:
        # `plugin start|stop` and friends answer without the list; everything else must have it
        if method == "plugin" and not (isinstance(params, dict) and params.get("subcommand") == "list"):
            return reply
        raise NodeReplyError(method, f"{method}.{key} is missing")
    items = reply[key]
    if not isinstance(items, list):
        raise NodeReplyError(method, f"{method}.{key} is {_kind_of(items)}, not an array")
    out = Reply(reply)
    out.raw_count = len(items)
    kept, dropped = [], []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            for index in ("created_index", "updated_index"):
                v = item.get(index)
                if type(v) is int and v > out.max_index.get(index, -1):
                    out.max_index[index] = v
        problems = _problems(check, item, (method, key, i))
        if problems:
            dropped.append(problems[0])
        else:
            kept.append(item)
    out[key] = kept
    if dropped:
        for line in dropped[:MAX_SKIP_LINES]:
            log(f"skipped one entry of {method}: {line}", "warn")
        if len(dropped) > MAX_SKIP_LINES:
            log(f"skipped {len(dropped) - MAX_SKIP_LINES} more entries of {method}", "warn")
    return out


class ReplyCheckingRpc:
    """NodeRpc whose replies went through check_reply; errors of the inner rpc pass through."""

    def __init__(self, rpc: NodeRpc, log: Callable[[str, str], None]):
        self.inner = rpc
        self.log = log

    def call(self, method: str, params: dict | list | None = None) -> Any:
        return check_reply(method, params, self.inner.call(method, params), self.log)


def checked(rpc: NodeRpc, log: Callable[[str, str], None]) -> ReplyCheckingRpc:
    """Returns rpc wrapped in ReplyCheckingRpc (once: an already checked rpc is returned)."""
    return rpc if isinstance(rpc, ReplyCheckingRpc) else ReplyCheckingRpc(rpc, log)
