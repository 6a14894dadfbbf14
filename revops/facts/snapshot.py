"""The snapshot format `revops-snapshot/1`: lightningd responses + plugin state, frozen in JSON.

A snapshot is what `explain`, policy tests and the simulator feed the pure core. Layout (see
docs/facts.md for the full specification):

    {"format": "revops-snapshot/1",
     "captured_at": 1767225600,                 # unix seconds
     "rpc": {"getinfo": {...}, "listpeerchannels": {...}, "listforwards": {...},
             "feerates": {...}, "listfunds": {...}, "listpeers": {...},
             "bkpr-listincome": {...}, ...},    # responses exactly as lightningd returns them
     "state": {"880001x1234x0": {"fee_ppm_last": 250, "fire_sale": true}},  # optional
     "history": {"as_of_s": ..., "peers": {...}, "channels": {...}, "node": {...},
                 "feerates": [...]}}                                     # optional (history.py)

Loading checks the structure the fact builder relies on and reports every problem as a
`snapshot_error` Diagnostic at the line:col of the offending key or value (JSON syntax errors
at the decoder's position). Positions are found only when there are errors, by a scan that
descends along the offending paths and skips every other subtree with the C decoder.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from revops.diagnostics import Diagnostic, DiagnosticError
from revops.facts.price import PriceBook, price_from_json, price_to_json
from revops.facts.rebalance import RebalanceHistory, rebalance_from_json, rebalance_to_json
from revops.facts.history import UPTIME_WINDOW_S, History, history_from_json, history_to_json

FORMAT = "revops-snapshot/1"
CODE = "snapshot_error"
REQUIRED_RPC = ("getinfo", "listpeerchannels", "listforwards", "feerates", "listfunds",
                "listpeers")
OPTIONAL_RPC = ("bkpr-listincome", "bkpr-channelsapy", "sling-stats", "listclosedchannels", "listnodes")
TOP_KEYS = ("format", "captured_at", "rpc", "state", "history", "rebalance", "price")
HISTORY_KEYS = ("as_of_s", "peers", "channels", "node", "feerates", "in_fees_1d", "in_volume_7d")
MAX_ERRORS = 50

FORWARD_STATUSES = frozenset({"offered", "settled", "local_failed", "failed"})

JsonPath = tuple  # keys (str) and indices (int) from the document root


@dataclass(frozen=True)
class Snapshot:
    """A loaded snapshot: capture time, raw RPC responses, stored per-channel state, origin."""

    captured_at: float
    rpc: Mapping[str, Any]
    state: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "<live>"            # file path or "<live>"
    history: History | None = None    # the store's history; None when the file has none
    rebalance: RebalanceHistory | None = None  # the store's rebalance ledger (facts/rebalance.py)
    price: PriceBook | None = None    # the price learner's state (facts/price.py)


def load_snapshot(path: str | Path) -> Snapshot:
    """Returns the snapshot read from `path`; raises DiagnosticError (snapshot_error) if invalid."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DiagnosticError.single(str(p), 1, 1, CODE, f"cannot read snapshot: {e}") from None
    return parse_snapshot(text, str(p))


def parse_snapshot(text: str, source: str) -> Snapshot:
    """Returns the snapshot parsed from `text`; raises DiagnosticError with one diagnostic per
    problem (JSON syntax, wrong format, missing keys, wrong types), each at its line:col."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DiagnosticError.single(source, e.lineno, e.colno, CODE,
                                     f"invalid JSON: {e.msg}") from None
    except RecursionError:
        raise DiagnosticError.single(source, 1, 1, CODE, "invalid JSON: nested too deeply") from None
    problems = _Checker().run(doc)
    if problems:
        raise DiagnosticError(_locate_all(text, source, problems))
    state = doc.get("state") or {}
    history = doc.get("history")
    return Snapshot(
        captured_at=doc["captured_at"],
        rpc=MappingProxyType(doc["rpc"]),
        state=MappingProxyType({k: MappingProxyType(v) for k, v in state.items()}),
        source=source,
        history=history_from_json(history) if history is not None else None,
        rebalance=rebalance_from_json(doc["rebalance"]) if doc.get("rebalance") is not None else None,
        price=price_from_json(doc["price"]) if doc.get("price") is not None else None,
    )


def snapshot_to_json(s: Snapshot) -> dict:
    """Returns the JSON object (plain dicts) of a snapshot; parse_snapshot(json.dumps(it)) == s."""
    doc = {
        "format": FORMAT,
        "captured_at": s.captured_at,
        "rpc": dict(s.rpc),
        "state": {scid: dict(vals) for scid, vals in s.state.items()},
    }
    if s.history is not None:
        doc["history"] = history_to_json(s.history)
    if s.rebalance is not None:
        doc["rebalance"] = rebalance_to_json(s.rebalance)
    if s.price is not None:
        doc["price"] = price_to_json(s.price)
    return doc


# --------------------------------------------------------------------------- structure checks

_KINDS = {
    "object": (lambda v: isinstance(v, dict)),
    "array": (lambda v: isinstance(v, list)),
    "string": (lambda v: isinstance(v, str)),
    "number": (lambda v: type(v) is int or (type(v) is float and math.isfinite(v))),
    "integer": (lambda v: type(v) is int),
    "bool": (lambda v: type(v) is bool),
}


def _kind_of(v: Any) -> str:
    """Returns the JSON kind name of a decoded value, for messages."""
    if v is None:
        return "null"
    if type(v) is bool:
        return "bool"
    if type(v) is int:
        return "integer"
    if type(v) is float:
        return "number" if math.isfinite(v) else f"non-finite number {v}"
    return {str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


def path_str(path: JsonPath) -> str:
    """Returns a JSON path as text: ('rpc', 'listforwards', 'forwards', 3) -> rpc.listforwards.forwards[3]."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "<top level>"


@dataclass(frozen=True)
class _Problem:
    path: JsonPath          # where to point
    at_key: bool         # point at the key of `path` rather than its value
    message: str


# field -> kind, for optional typed fields of a listpeerchannels entry
_CHANNEL_OPTIONAL = {
    "short_channel_id": "string", "peer_connected": "bool", "opener": "string",
    "private": "bool", "to_us_msat": "integer", "total_msat": "integer",
    "spendable_msat": "integer", "receivable_msat": "integer",
    "max_accepted_htlcs": "integer", "fee_base_msat": "integer",
    "fee_proportional_millionths": "integer", "our_max_htlc_value_in_flight_msat": "integer",
    "updates": "object", "htlcs": "array",
}
_FORWARD_OPTIONAL = {
    "out_channel": "string", "out_msat": "integer", "fee_msat": "integer",
    "resolved_time": "number", "failcode": "integer",
}


class _Checker:
    """Collects structural problems of a decoded snapshot document."""

    def __init__(self) -> None:
        self.problems: list[_Problem] = []

    def bad(self, path: JsonPath, message: str, at_key: bool = False) -> None:
        self.problems.append(_Problem(path, at_key, message))

    def typed(self, v: Any, kind: str, path: JsonPath) -> bool:
        """Returns whether v has `kind`, recording a problem if not."""
        if _KINDS[kind](v):
            return True
        self.bad(path, f"{path_str(path)} must be {'an' if kind[0] in 'aeio' else 'a'} "
                       f"{kind}, got {_kind_of(v)}")
        return False

    def member(self, obj: dict, key: str, kind: str, path: JsonPath, required: bool = True) -> Any:
        """Returns obj[key] when present with the right kind, else None (recording a problem)."""
        if key not in obj:
            if required:
                self.bad(path, f"missing required key \"{key}\" in {path_str(path)}")
            return None
        v = obj[key]
        return v if self.typed(v, kind, path + (key,)) else None

    def run(self, doc: Any) -> list[_Problem]:
        """Returns every problem found in the decoded document (empty when valid)."""
        if not self.typed(doc, "object", ()):
            return self.problems
        for k in doc:
            if k not in TOP_KEYS:
                self.bad((k,), f"unknown top-level key \"{k}\" (expected one of "
                               f"{', '.join(TOP_KEYS)})", at_key=True)
        fmt = self.member(doc, "format", "string", ())
        if fmt is not None and fmt != FORMAT:
            self.bad(("format",), f"format must be \"{FORMAT}\", got \"{fmt}\"")
        cap = self.member(doc, "captured_at", "number", ())
        if cap is not None and cap < 0:
            self.bad(("captured_at",), "captured_at must be unix seconds (>= 0)")
        rpc = self.member(doc, "rpc", "object", ())
        if rpc is not None:
            self.check_rpc(rpc)
        state = self.member(doc, "state", "object", (), required=False)
        if state is not None:
            for scid, vals in state.items():
                p = ("state", scid)
                if self.typed(vals, "object", p):
                    for name, val in vals.items():
                        if not (type(val) in (int, float, bool) or isinstance(val, str)):
                            self.bad(p + (name,), f"{path_str(p + (name,))} must be a number, "
                                                  f"bool or string, got {_kind_of(val)}")
        history = self.member(doc, "history", "object", (), required=False)
        if history is not None:
            self.check_history(history)
        rebalance = self.member(doc, "rebalance", "object", (), required=False)
        if rebalance is not None:
            try:
                rebalance_from_json(rebalance)
            except ValueError as err:
                self.bad(("rebalance",), str(err))
        price = self.member(doc, "price", "object", (), required=False)
        if price is not None:
            try:
                price_from_json(price)
            except ValueError as err:
                self.bad(("price",), str(err))
        return self.problems

    def bounded(self, obj: dict, key: str, kind: str, path: JsonPath, lo: float,
                hi: float | None = None) -> None:
        """Checks obj[key] (required) has `kind` and lies in [lo, hi]."""
        v = self.member(obj, key, kind, path)
        if v is not None and (v < lo or (hi is not None and v > hi)):
            where = path_str(path + (key,))
            self.bad(path + (key,), f"{where} must be >= {lo}" if hi is None
                     else f"{where} must be within {lo}..{hi}, got {v}")

    def keys_known(self, obj: dict, known: tuple[str, ...], path: JsonPath) -> None:
        """Records every key of obj not in `known`, at the key."""
        for k in obj:
            if k not in known:
                self.bad(path + (k,), f"unknown key \"{k}\" in {path_str(path)} (expected one "
                                      f"of {', '.join(known)})", at_key=True)

    def check_history(self, h: dict) -> None:
        """Records problems of the optional `history` object (history.py, docs/facts.md)."""
        H = ("history",)
        self.keys_known(h, HISTORY_KEYS, H)
        self.bounded(h, "as_of_s", "number", H, 0)
        peers = self.member(h, "peers", "object", H, required=False)
        for pid, p in (peers or {}).items():
            pp = H + ("peers", pid)
            if self.typed(p, "object", pp):
                self.keys_known(p, ("uptime_ratio", "disconnects", "known_s"), pp)
                self.bounded(p, "uptime_ratio", "number", pp, 0, 1)
                self.bounded(p, "disconnects", "integer", pp, 0)
                self.bounded(p, "known_s", "number", pp, 0, UPTIME_WINDOW_S)
        chans = self.member(h, "channels", "object", H, required=False)
        for scid, c in (chans or {}).items():
            cp = H + ("channels", scid)
            if self.typed(c, "object", cp):
                self.keys_known(c, ("fee_updates_24h", "last_fee_change_s"), cp)
                self.bounded(c, "fee_updates_24h", "integer", cp, 0)
                self.bounded(c, "last_fee_change_s", "number", cp, 0)
        node = self.member(h, "node", "object", H, required=False)
        if node is not None:
            self.keys_known(node, ("fee_updates_24h", "forwards_since_s"), H + ("node",))
            self.bounded(node, "fee_updates_24h", "integer", H + ("node",), 0)
            if "forwards_since_s" in node:
                self.bounded(node, "forwards_since_s", "number", H + ("node",), 0)
        samples = self.member(h, "feerates", "array", H, required=False)
        for i, smp in enumerate(samples or ()):
            sp = H + ("feerates", i)
            if self.typed(smp, "object", sp):
                self.keys_known(smp, ("at_s", "opening_perkw"), sp)
                self.bounded(smp, "at_s", "number", sp, 0)
                self.bounded(smp, "opening_perkw", "integer", sp, 0)
        for key in ("in_fees_1d", "in_volume_7d"):
            pairs = self.member(h, key, "object", H, required=False)
            for out, ins in (pairs or {}).items():
                op = H + (key, out)
                if self.typed(ins, "object", op):
                    for in_scid in ins:
                        self.bounded(ins, in_scid, "integer", op, 0)

    def check_rpc(self, rpc: dict) -> None:
        """Records problems of the rpc object: required methods and the fields facts read."""
        R = ("rpc",)
        present = {m: self.member(rpc, m, "object", R) for m in REQUIRED_RPC}
        for m in OPTIONAL_RPC:
            if m in rpc and rpc[m] is None:
                self.bad(R + (m,), f"rpc.{m} must not be null (leave it out instead)")

        gi = present["getinfo"]
        if gi is not None:
            self.member(gi, "id", "string", R + ("getinfo",))
            self.member(gi, "blockheight", "integer", R + ("getinfo",))

        lpc = present["listpeerchannels"]
        if lpc is not None:
            base = R + ("listpeerchannels",)
            chans = self.member(lpc, "channels", "array", base)
            for i, ch in enumerate(chans or ()):
                self.check_channel(ch, base + ("channels", i))

        lf = present["listforwards"]
        if lf is not None:
            base = R + ("listforwards",)
            fwds = self.member(lf, "forwards", "array", base)
            for i, f in enumerate(fwds or ()):
                self.check_forward(f, base + ("forwards", i))

        fr = present["feerates"]
        if fr is not None:
            for k in ("perkw", "perkb", "onchain_fee_estimates"):
                self.member(fr, k, "object", R + ("feerates",), required=False)

        funds = present["listfunds"]
        if funds is not None:
            base = R + ("listfunds",)
            outs = self.member(funds, "outputs", "array", base)
            for i, o in enumerate(outs or ()):
                p = base + ("outputs", i)
                if self.typed(o, "object", p):
                    self.member(o, "amount_msat", "integer", p)
                    self.member(o, "status", "string", p)
            self.member(funds, "channels", "array", base, required=False)

        lp = present["listpeers"]
        if lp is not None:
            base = R + ("listpeers",)
            peers = self.member(lp, "peers", "array", base)
            for i, pe in enumerate(peers or ()):
                p = base + ("peers", i)
                if self.typed(pe, "object", p):
                    self.member(pe, "id", "string", p)
                    self.member(pe, "connected", "bool", p)

    def check_channel(self, ch: Any, p: JsonPath) -> None:
        """Records problems of one listpeerchannels entry."""
        if not self.typed(ch, "object", p):
            return
        self.member(ch, "peer_id", "string", p)
        self.member(ch, "state", "string", p)
        for k, kind in _CHANNEL_OPTIONAL.items():
            if k in ch:
                self.typed(ch[k], kind, p + (k,))
        upd = ch.get("updates")
        if isinstance(upd, dict):
            for side in ("local", "remote"):
                self.member(upd, side, "object", p + ("updates",), required=False)
        htlcs = ch.get("htlcs")
        if isinstance(htlcs, list):
            for j, h in enumerate(htlcs):
                hp = p + ("htlcs", j)
                if self.typed(h, "object", hp):
                    self.member(h, "amount_msat", "integer", hp)

    def check_forward(self, f: Any, p: JsonPath) -> None:
        """Records problems of one listforwards entry."""
        if not self.typed(f, "object", p):
            return
        self.member(f, "in_channel", "string", p)
        self.member(f, "in_msat", "integer", p)
        self.member(f, "received_time", "number", p)
        st = self.member(f, "status", "string", p)
        if st is not None and st not in FORWARD_STATUSES:
            self.bad(p + ("status",), f"{path_str(p + ('status',))} must be one of "
                                      f"{', '.join(sorted(FORWARD_STATUSES))}, got \"{st}\"")
        for k, kind in _FORWARD_OPTIONAL.items():
            if k in f:
                self.typed(f[k], kind, p + (k,))


# --------------------------------------------------------------------------- positions

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _positions(text: str, wanted: set[JsonPath]) -> tuple[dict[JsonPath, int], dict[JsonPath, int]]:
    """Returns (value offsets, key offsets) of the paths in `wanted` and of all their prefixes.

    Subtrees off every wanted path are skipped with the C decoder, so the scan costs about one
    json.loads of the document.
    """
    prefixes: set[JsonPath] = set()
    for w in wanted:
        for i in range(len(w) + 1):
            prefixes.add(w[:i])
    vpos: dict[JsonPath, int] = {}
    kpos: dict[JsonPath, int] = {}
    scanstring = json.decoder.scanstring  # type: ignore[attr-defined]

    def ws(i: int) -> int:
        return _WS.match(text, i).end()

    def value(i: int, path: JsonPath) -> int:
        i = ws(i)
        vpos[path] = i
        if path not in prefixes:
            return _DECODER.raw_decode(text, i)[1]
        c = text[i]
        if c == "{":
            i = ws(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                i = ws(i)
                key_at = i
                key, i = scanstring(text, i + 1)
                kpos[path + (key,)] = key_at
                i = ws(i) + 1  # ':'
                i = ws(value(i, path + (key,)))
                if text[i] == "}":
                    return i + 1
                i += 1  # ','
        if c == "[":
            i = ws(i + 1)
            if text[i] == "]":
                return i + 1
            n = 0
            while True:
                i = ws(value(i, path + (n,)))
                n += 1
                if text[i] == "]":
                    return i + 1
                i += 1
        return _DECODER.raw_decode(text, i)[1]

    value(0, ())
    return vpos, kpos


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """Returns the 1-based (line, column) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _locate_all(text: str, source: str, problems: list[_Problem]) -> list[Diagnostic]:
    """Returns one Diagnostic per problem (capped at MAX_ERRORS), each at its line:col."""
    shown = problems[:MAX_ERRORS]
    vpos, kpos = _positions(text, {p.path for p in shown})
    diags = []
    for p in shown:
        off = kpos.get(p.path) if p.at_key else None
        if off is None:
            # the value, else the nearest enclosing value that exists in the text
            path = p.path
            while path not in vpos and path:
                path = path[:-1]
            off = vpos.get(path, 0)
        line, col = _line_col(text, off)
        diags.append(Diagnostic(source, line, col, CODE, p.message))
    if len(problems) > MAX_ERRORS:
        last = diags[-1]
        diags.append(Diagnostic(source, last.line, last.col, CODE,
                                f"{len(problems) - MAX_ERRORS} more problems not shown"))
    return diags
