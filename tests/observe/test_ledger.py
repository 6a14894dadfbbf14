"""The ledger's rules on hand-made bookkeeper events, and store rollups keeping history."""

from __future__ import annotations

from revops.accounting.ledger import bookkeeper_ledger, store_ledger
from revops.store import Store


def chain(account, tag, outpoint=None, txid=None, ts=100, credit=0, debit=0):
    return {"account": account, "type": "chain", "tag": tag, "outpoint": outpoint, "txid": txid,
            "credit_msat": credit, "debit_msat": debit, "timestamp": ts}


def fee(account, txid, debit, credit=0, ts=100):
    return {"account": account, "type": "onchain_fee", "tag": "onchain_fee", "txid": txid,
            "debit_msat": debit, "credit_msat": credit, "timestamp": ts}


def test_a_batch_fee_booked_on_the_wallet_and_on_channels_is_split_once_over_its_channels():
    events = [chain("A", "channel_open", "tx1:2"), chain("B", "channel_open", "tx1:0"),
              chain("C", "channel_open", "tx1:1"),
              # bookkeeper books part on the wallet, part on a channel, and corrects itself
              fee("wallet", "tx1", 7_000), fee("B", "tx1", 3_001), fee("wallet", "tx1", 0, credit=1_000),
              fee("wallet", "tx9", 500)]  # a withdrawal: no channel
    lines, wallet = bookkeeper_ledger(events)
    assert [lines[c].open_cost_msat for c in "BCA"] == [3_001, 3_000, 3_000]  # output order, remainder first
    assert sum(line.onchain_cost_msat for line in lines.values()) == 9_001
    assert wallet == 500


def test_close_fees_routing_income_and_rebalances_land_on_the_right_channel():
    events = [chain("A", "channel_open", "tx1:0", ts=10), chain("A", "channel_close", "op", txid="tx2", ts=500),
              fee("A", "tx2", 1_234, ts=500),
              {"account": "A", "type": "channel", "tag": "routed", "credit_msat": 0, "debit_msat": 100_000,
               "fees_msat": 70, "timestamp": 200},
              {"account": "B", "type": "channel", "tag": "routed", "credit_msat": 100_070, "debit_msat": 0,
               "fees_msat": 70, "timestamp": 200},
              # a rebalance A -> B: its fee is the price of B's new liquidity
              {"account": "A", "type": "channel", "tag": "invoice", "credit_msat": 0, "debit_msat": 50_025,
               "fees_msat": 25, "is_rebalance": True, "payment_id": "p1", "timestamp": 300},
              {"account": "B", "type": "channel", "tag": "invoice", "credit_msat": 50_000, "debit_msat": 0,
               "fees_msat": 0, "is_rebalance": True, "payment_id": "p1", "timestamp": 300}]
    lines, wallet = bookkeeper_ledger(events)
    assert (lines["A"].close_cost_msat, lines["A"].routing_income_msat, lines["A"].rebalance_cost_msat) == (1_234, 70, 0)
    assert (lines["B"].routing_income_msat, lines["B"].sourced_income_msat, lines["B"].rebalance_cost_msat) == (0, 70, 25)
    assert lines["A"].net_msat == 70 - 1_234 and wallet == 0
    # a period sees only its own events, but still links the close to the channel
    late, _ = bookkeeper_ledger(events, start_s=400)
    assert late["A"].close_cost_msat == 1_234 and late["A"].routing_income_msat == 0


def test_routing_income_survives_pruning_as_daily_rollups(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    day = 86400
    forwards = [{"in_channel": "1x1x0", "in_htlc_id": i, "out_channel": "2x2x0", "in_msat": 1_000_100,
                 "out_msat": 1_000_000, "fee_msat": 100 + i, "status": "settled",
                 "received_time": 1_700_000_000 + i * day, "resolved_time": 1_700_000_001 + i * day}
                for i in range(100)]
    store.ingest_forwards(forwards)
    before = store_ledger(store.daily_history())
    result = store.rollup_and_prune(1_700_000_000 + 100 * day, 45)
    assert result["pruned"] > 0
    after = store_ledger(store.daily_history())
    assert after["2x2x0"].routing_income_msat == before["2x2x0"].routing_income_msat == sum(100 + i for i in range(100))
    assert after["1x1x0"].sourced_income_msat == before["1x1x0"].sourced_income_msat
    store.close()
