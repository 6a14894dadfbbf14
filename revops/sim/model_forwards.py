"""The forwards table, stored column-wise so a 2,000-channel node's history stays small.

lightningd keeps every forward forever (until `delforward`), so we do too, but as typed
arrays (about 70 bytes per forward) rather than dicts; dicts are built only for an RPC reply.
Semantics follow lightningd/forwards.c and wallet.c: created_index is the 1-based row id,
updated_index is 0 until the forward changes status (CLN's column default), `index=updated`
orders by updated_index (0 first), and `start` is an inclusive lower bound.
"""

from __future__ import annotations

from array import array

STATUS_NAMES = ("offered", "settled", "local_failed", "failed")
OFFERED, SETTLED, LOCAL_FAILED, FAILED = range(4)
STATUS_CODES = {name: i for i, name in enumerate(STATUS_NAMES)}

# onion_wire names for the failcodes the model produces
FAILREASONS = {
    4103: "WIRE_TEMPORARY_CHANNEL_FAILURE",
    4108: "WIRE_FEE_INSUFFICIENT",
    4109: "WIRE_INCORRECT_CLTV_EXPIRY",
    16394: "WIRE_UNKNOWN_NEXT_PEER",
    8194: "WIRE_TEMPORARY_NODE_FAILURE",
}

_NO_TIME = -1.0


class ForwardStore:
    """Append-only forwards with in-place status updates; answers listforwards queries."""

    def __init__(self) -> None:
        self.scids: list[str] = []             # scid table; columns hold indexes into it
        self._scid_ix: dict[str, int] = {}
        self.in_ch = array("i")
        self.out_ch = array("i")                # -1 = no out_channel
        self.in_htlc = array("q")
        self.out_htlc = array("q")              # -1 = none
        self.in_msat = array("q")
        self.out_msat = array("q")              # 0 = absent (CLN prints out/fee only if nonzero)
        self.status = array("b")
        self.failcode = array("i")              # 0 = none
        self.received = array("d")
        self.resolved = array("d")              # -1 = none
        self.updated = array("q")               # updated_index, 0 = never updated
        self.by_updated = array("q")            # created_index (1-based) in updated order

    def __len__(self) -> int:
        return len(self.status)

    def scid_ix(self, scid: str) -> int:
        """Return the index of `scid` in the scid table, adding it if new."""
        ix = self._scid_ix.get(scid)
        if ix is None:
            ix = self._scid_ix[scid] = len(self.scids)
            self.scids.append(scid)
        return ix

    def add(self, in_scid: str, in_htlc_id: int, in_msat: int, received_s: float,
            out_scid: str | None, out_htlc_id: int | None, out_msat: int,
            status: int, failcode: int = 0) -> int:
        """Insert a forward and return its created_index (1-based)."""
        self.in_ch.append(self.scid_ix(in_scid))
        self.out_ch.append(self.scid_ix(out_scid) if out_scid else -1)
        self.in_htlc.append(in_htlc_id)
        self.out_htlc.append(-1 if out_htlc_id is None else out_htlc_id)
        self.in_msat.append(in_msat)
        self.out_msat.append(out_msat)
        self.status.append(status)
        self.failcode.append(failcode)
        self.received.append(received_s)
        self.resolved.append(_NO_TIME)
        self.updated.append(0)
        return len(self.status)

    def resolve(self, created_index: int, status: int, resolved_s: float,
                failcode: int = 0) -> int:
        """Set a forward's final status; return its new updated_index."""
        i = created_index - 1
        self.status[i] = status
        self.resolved[i] = resolved_s
        if failcode:
            self.failcode[i] = failcode
        self.by_updated.append(created_index)
        upd = len(self.by_updated)
        self.updated[i] = upd
        return upd

    def to_json(self, created_index: int, payment_hash: str | None = None,
                for_notification: bool = False, first_event: bool = True) -> dict:
        """Return one forward in json_add_forwarding_fields order.

        For listforwards: both indexes as known. For forward_event: created_index only on
        the first event, updated_index only on resolutions, plus payment_hash.
        """
        i = created_index - 1
        d: dict = {}
        upd = self.updated[i]
        if for_notification:
            if first_event:
                d["created_index"] = created_index
            elif upd:
                d["updated_index"] = upd
            d["payment_hash"] = payment_hash
        else:
            d["created_index"] = created_index
            if upd:
                d["updated_index"] = upd
        d["in_channel"] = self.scids[self.in_ch[i]]
        d["in_htlc_id"] = self.in_htlc[i]
        out_ix = self.out_ch[i]
        out_msat = self.out_msat[i]
        if out_ix >= 0:
            d["out_channel"] = self.scids[out_ix]
            # the schema allows out_htlc_id only together with out_msat; the notification
            # normally carries no out_htlc_id (cln-interfaces.md §2)
            if out_msat and self.out_htlc[i] >= 0 and not for_notification:
                d["out_htlc_id"] = self.out_htlc[i]
        d["in_msat"] = self.in_msat[i]
        if out_msat:
            d["out_msat"] = out_msat
            d["fee_msat"] = self.in_msat[i] - out_msat
        st = self.status[i]
        d["status"] = STATUS_NAMES[st]
        fc = self.failcode[i]
        if fc:
            d["failcode"] = fc
            d["failreason"] = FAILREASONS.get(fc, "WIRE_UNKNOWN_%d" % fc)
        d["style"] = "tlv"
        d["received_time"] = self.received[i]
        # wallet.c sets resolved_time only for settled and failed
        if st in (SETTLED, FAILED):
            d["resolved_time"] = self.resolved[i]
        return d

    def query(self, status: int | None, in_scid: str | None, out_scid: str | None,
              index: str | None, start: int, limit: int | None) -> list[int]:
        """Return created_indexes matching listforwards filters, in CLN's order."""
        in_ix = self._scid_ix.get(in_scid, -2) if in_scid else None
        out_ix = self._scid_ix.get(out_scid, -2) if out_scid else None
        if in_ix == -2 or out_ix == -2:
            return []
        if index == "updated" and in_scid is None and out_scid is None:
            order: list[int] = []
            if start == 0:
                order.extend(i + 1 for i, u in enumerate(self.updated) if u == 0)
            order.extend(self.by_updated[max(start, 1) - 1:])
        else:
            lo = max(start, 1) - 1
            order = range(lo + 1, len(self.status) + 1)  # type: ignore[assignment]
        out: list[int] = []
        st_col, in_col, out_col = self.status, self.in_ch, self.out_ch
        for ci in order:
            i = ci - 1
            if status is not None and st_col[i] != status:
                continue
            if in_ix is not None and in_col[i] != in_ix:
                continue
            if out_ix is not None and out_col[i] != out_ix:
                continue
            out.append(ci)
            if limit is not None and len(out) >= limit:
                break
        return out
