"""A bookkeeper stand-in: account events for every balance movement, and the bkpr-* RPCs.

Accounts are named as CLN's bookkeeper names them: a channel's account is its channel_id
hex; on-chain funds are "wallet". Events are stored as tuples and turned into JSON only
when an RPC asks. The node calls the `record_*` methods; each returns the coin_movement
notification payloads lightningd would emit for that movement.
"""

from __future__ import annotations

from revops.sim.errors import PLUGIN_ERROR, RpcError
from revops.sim.model_params import bind, bool_param, u32_param, u64_param

# event tuple layout
_ACCOUNT, _TYPE, _TAG, _CREDIT, _DEBIT, _TS, _FEES, _REBAL, _PAYID, _TXID, _OUTPOINT, \
    _BLOCK = range(12)
_YEAR_S = 365 * 86400


class Bookkeeper:
    """Event journal of the node's accounts."""

    def __init__(self, node_id: str, currency: str):
        self.node_id = node_id
        self.currency = currency
        self.events: list[tuple] = []
        self.mvt_index = 0
        # account -> (opened_s, our_start_msat, capacity_msat)
        self.channel_accounts: dict[str, tuple[float, int, int]] = {}

    # -- recording ------------------------------------------------------------------
    def _mvt(self, account: str, mvt_type: str, tag: str, credit: int, debit: int,
             ts: float, **extra) -> dict:
        self.mvt_index += 1
        d = {"version": 2, "coin_type": self.currency, "node_id": self.node_id,
             "type": mvt_type, "created_index": self.mvt_index, "account_id": account,
             "credit_msat": credit, "debit_msat": debit, "timestamp": int(ts),
             "primary_tag": tag, "extra_tags": []}
        d.update(extra)
        return d

    def record_routed(self, in_account: str, out_account: str, in_msat: int, out_msat: int,
                      ts: float, payment_hash: str) -> list[dict]:
        """Record a settled forward; return its two channel coin movements."""
        fee = in_msat - out_msat
        # fees sit on both legs, as bkpr-channelsapy reports fees_in and fees_out
        self.events.append((in_account, "channel", "routed", in_msat, 0, ts, fee, False,
                            None, None, None, None))
        self.events.append((out_account, "channel", "routed", 0, out_msat, ts, fee, False,
                            None, None, None, None))
        return [self._mvt(in_account, "channel_mvt", "routed", in_msat, 0, ts,
                          payment_hash=payment_hash, fees_msat=fee),
                self._mvt(out_account, "channel_mvt", "routed", 0, out_msat, ts,
                          payment_hash=payment_hash, fees_msat=fee)]

    def record_rebalance(self, out_account: str, in_account: str, amount_msat: int,
                         fee_msat: int, ts: float, payment_hash: str) -> list[dict]:
        """Record a circular self-payment (is_rebalance); return its coin movements."""
        self.events.append((out_account, "channel", "invoice", 0, amount_msat + fee_msat, ts,
                            fee_msat, True, payment_hash, None, None, None))
        self.events.append((in_account, "channel", "invoice", amount_msat, 0, ts, 0, True,
                            payment_hash, None, None, None))
        return [self._mvt(out_account, "channel_mvt", "invoice", 0, amount_msat + fee_msat, ts,
                          payment_hash=payment_hash, part_id=0, group_id=1, fees_msat=fee_msat),
                self._mvt(in_account, "channel_mvt", "invoice", amount_msat, 0, ts,
                          payment_hash=payment_hash, fees_msat=0)]

    def record_channel_open(self, account: str, our_msat: int, capacity_msat: int,
                            ts: float, outpoint: str, block: int, peer_id: str,
                            onchain_fee_msat: int, funding_txid: str) -> list[dict]:
        """Record a channel funding (chain channel_open, plus our on-chain fee if we opened)."""
        self.channel_accounts[account] = (ts, our_msat, capacity_msat)
        self.events.append((account, "chain", "channel_open", our_msat, 0, ts, 0, False, None,
                            None, outpoint, block))
        mvts = [self._mvt(account, "chain_mvt", "channel_open", our_msat, 0, ts, utxo=outpoint,
                          output_msat=capacity_msat, blockheight=block, peer_id=peer_id)]
        if onchain_fee_msat:
            self.events.append(("wallet", "onchain_fee", "onchain_fee", 0, onchain_fee_msat, ts,
                                0, False, None, funding_txid, None, None))
        return mvts

    def record_channel_close(self, account: str, to_us_msat: int, capacity_msat: int,
                             ts: float, outpoint: str, block: int, spending_txid: str,
                             wallet_outpoint: str, onchain_fee_msat: int) -> list[dict]:
        """Record a channel close: funds leave the channel account and land in the wallet."""
        self.events.append((account, "chain", "channel_close", 0, to_us_msat, ts, 0, False,
                            None, spending_txid, outpoint, block))
        self.events.append(("wallet", "chain", "deposit", to_us_msat, 0, ts, 0, False, None,
                            spending_txid, wallet_outpoint, block))
        if onchain_fee_msat:
            self.events.append((account, "onchain_fee", "onchain_fee", 0, onchain_fee_msat, ts,
                                0, False, None, spending_txid, None, None))
        return [self._mvt(account, "chain_mvt", "channel_close", 0, to_us_msat, ts,
                          utxo=outpoint, spending_txid=spending_txid,
                          output_msat=capacity_msat, output_count=2, blockheight=block),
                self._mvt("wallet", "chain_mvt", "deposit", to_us_msat, 0, ts,
                          utxo=wallet_outpoint, output_msat=to_us_msat, blockheight=block)]

    def record_deposit(self, amount_msat: int, ts: float, outpoint: str, block: int) -> None:
        """Record the initial on-chain wallet funds."""
        self.events.append(("wallet", "chain", "deposit", amount_msat, 0, ts, 0, False, None,
                            None, outpoint, block))

    def balance_snapshot(self, height: int, ts: float, balances: list[tuple[str, int]]) -> dict:
        """Return a balance_snapshot payload for the given (account, balance_msat) list."""
        return {"node_id": self.node_id, "blockheight": height, "timestamp": int(ts),
                "accounts": [{"account_id": a, "balance_msat": b, "coin_type": self.currency}
                             for a, b in balances]}

    # -- RPC ------------------------------------------------------------------------
    def listaccountevents(self, params) -> dict:
        """Answer bkpr-listaccountevents [account] [payment_id]."""
        p = bind(params, [("account", False), ("payment_id", False)])
        acct, payid = p.get("account"), p.get("payment_id")
        if acct is not None and acct not in self._accounts():
            # bookkeeper.c fails an unknown account with PLUGIN_ERROR (unverified)
            raise RpcError(PLUGIN_ERROR, f"Account '{acct}' not found")
        out = []
        for e in self.events:
            if acct is not None and e[_ACCOUNT] != acct:
                continue
            if payid is not None and e[_PAYID] != payid:
                continue
            out.append(self._event_json(e))
        return {"events": out}

    def _accounts(self) -> set[str]:
        return {e[_ACCOUNT] for e in self.events} | set(self.channel_accounts)

    def _event_json(self, e: tuple) -> dict:
        d = {"account": e[_ACCOUNT], "type": e[_TYPE], "tag": e[_TAG],
             "credit_msat": e[_CREDIT], "debit_msat": e[_DEBIT], "currency": self.currency,
             "timestamp": int(e[_TS])}
        if e[_TYPE] == "chain":
            d["outpoint"] = e[_OUTPOINT]
            d["blockheight"] = e[_BLOCK]
            if e[_TXID]:
                d["txid"] = e[_TXID]
        elif e[_TYPE] == "onchain_fee":
            d["txid"] = e[_TXID]
        else:
            d["fees_msat"] = e[_FEES]
            d["is_rebalance"] = e[_REBAL]
            if e[_PAYID]:
                d["payment_id"] = e[_PAYID]
                d["part_id"] = 0
        return d

    def listincome(self, params) -> dict:
        """Answer bkpr-listincome [consolidate_fees] [start_time] [end_time]."""
        p = bind(params, [("consolidate_fees", False), ("start_time", False),
                          ("end_time", False)])
        if "consolidate_fees" in p:
            bool_param("consolidate_fees", p["consolidate_fees"])
        start = u32_param("start_time", p["start_time"]) if "start_time" in p else 0
        end = u32_param("end_time", p["end_time"]) if "end_time" in p else 2**32 - 1
        out = []
        for e in self.events:
            ts = int(e[_TS])
            if ts < start or ts > end:
                continue
            tag, typ = e[_TAG], e[_TYPE]
            base = {"account": e[_ACCOUNT], "currency": self.currency, "timestamp": ts}
            if typ == "onchain_fee":
                out.append({**base, "tag": "onchain_fee", "credit_msat": 0,
                            "debit_msat": e[_DEBIT], "txid": e[_TXID]})
            elif tag == "routed" and e[_DEBIT]:
                # income is the fee, reported once per forward (on the outgoing leg)
                out.append({**base, "tag": "routed", "credit_msat": e[_FEES], "debit_msat": 0})
            elif e[_REBAL] and e[_DEBIT]:
                # a rebalance moves our own money; only its fee is an expense
                out.append({**base, "tag": "rebalance_fee", "credit_msat": 0,
                            "debit_msat": e[_FEES], "payment_id": e[_PAYID]})
            elif tag == "deposit" and typ == "chain" and not e[_TXID]:
                out.append({**base, "tag": "deposit", "credit_msat": e[_CREDIT],
                            "debit_msat": 0, "outpoint": e[_OUTPOINT]})
        return {"income_events": out}

    def channelsapy(self, params, now_s: float) -> dict:
        """Answer bkpr-channelsapy [start_time] [end_time]; percentages are strings."""
        p = bind(params, [("start_time", False), ("end_time", False)])
        start = u64_param("start_time", p["start_time"]) if "start_time" in p else 0
        end = u64_param("end_time", p["end_time"]) if "end_time" in p else 2**64 - 1
        acc: dict[str, list[int]] = {a: [0, 0, 0, 0, 0, 0] for a in self.channel_accounts}
        for e in self.events:
            if e[_TYPE] != "channel" or not start <= int(e[_TS]) <= end:
                continue
            row = acc.get(e[_ACCOUNT])
            if row is None:
                continue
            if e[_TAG] == "routed":
                if e[_CREDIT]:
                    row[0] += e[_CREDIT]
                    row[2] += e[_FEES]
                else:
                    row[1] += e[_DEBIT]
                    row[3] += e[_FEES]
            elif e[_REBAL]:
                if e[_CREDIT]:
                    row[4] += e[_CREDIT]
                else:
                    row[5] += e[_DEBIT]
        rows = []
        net = [0] * 8
        for account, (opened_s, our_start, cap) in self.channel_accounts.items():
            r_in, r_out, f_in, f_out, _, _ = acc[account]
            lo = max(opened_s, float(start))
            hi = min(now_s, float(end)) if end < 2**63 else now_s
            rows.append(_apy_row(account, r_in, r_out, f_in, f_out, our_start, cap,
                                 max(hi - lo, 1.0)))
            for i, v in enumerate((r_in, r_out, f_in, f_out, our_start, cap)):
                net[i] += v
        if rows:
            first = min(o for o, _, _ in self.channel_accounts.values())
            lo = max(first, float(start))
            rows.append(_apy_row("net", net[0], net[1], net[2], net[3], net[4], net[5],
                                 max(now_s - lo, 1.0)))
        return {"channels_apy": rows}


def _pct(x: float) -> str:
    return "%.4f%%" % (x * 100)


def _apy_row(account: str, r_in: int, r_out: int, f_in: int, f_out: int, our_start: int,
             cap: int, span_s: float) -> dict:
    """Return one channels_apy entry (bookkeeper's formulas: fees over balance, annualised)."""
    years = span_s / _YEAR_S
    theirs = cap - our_start
    util_out = r_out / our_start if our_start else 0.0
    util_in = r_in / theirs if theirs else 0.0
    apy_out = (f_out / our_start) / years if our_start else 0.0
    apy_in = (f_in / our_start) / years if our_start else 0.0
    apy_total = ((f_in + f_out) / our_start) / years if our_start else 0.0
    return {"account": account, "routed_out_msat": r_out, "routed_in_msat": r_in,
            "lease_fee_paid_msat": 0, "lease_fee_earned_msat": 0, "pushed_out_msat": 0,
            "pushed_in_msat": 0, "our_start_balance_msat": our_start,
            "channel_start_balance_msat": cap, "fees_out_msat": f_out, "fees_in_msat": f_in,
            "utilization_out": _pct(util_out), "utilization_in": _pct(util_in),
            "apy_out": _pct(apy_out), "apy_in": _pct(apy_in), "apy_total": _pct(apy_total)}
