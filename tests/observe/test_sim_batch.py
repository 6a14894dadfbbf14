"""The simulator's batch open: one funding transaction, one fee, split in the ground truth."""

from __future__ import annotations

from revops.sim.model_build import build_node
from revops.sim.node import BATCH_OUTPUT_WEIGHT
from revops.sim.rpc import SimRpc
from tests.observe.conftest import new_local_channels


def test_a_batch_open_pays_one_fee_from_the_wallet_and_the_truth_adds_up():
    sim = build_node("hub", seed=5)
    sim.start()
    sim.advance(600)
    rates = sim.chain.feerates("perkw")
    fee_msat = rates["onchain_fee_estimates"]["opening_channel_satoshis"] * 1000 \
        + rates["perkw"]["opening"] * BATCH_OUTPUT_WEIGHT * 2
    wallet = lambda: sum(o["amount_msat"] for o in SimRpc(sim)("listfunds", {})["outputs"]  # noqa: E731
                         if o["status"] == "confirmed")
    before = wallet()
    chs = new_local_channels(sim, [1_000_000, 1_500_000, 2_000_000])
    sim.lifecycle.open_batch(sim.now_s, chs)
    assert before - wallet() == 4_500_000_000 + fee_msat
    assert len({c.funding_txid for c in chs}) == 1 and [c.funding_outnum for c in chs] == [0, 1, 2]
    assert len({c.channel_id for c in chs}) == 3
    assert [sim.onchain_fee_truth_msat[c.channel_id] for c in chs] == \
        [fee_msat // 3 + (1 if i < fee_msat % 3 else 0) for i in range(3)]
    fees = [e for e in SimRpc(sim)("bkpr-listaccountevents", {})["events"] if e["type"] == "onchain_fee"]
    assert [(e["account"], e["txid"], e["debit_msat"]) for e in fees] == [("wallet", chs[0].funding_txid, fee_msat)]
    sim.advance(3 * 3600)  # locked in
    states = {c["channel_id"]: c["state"] for c in SimRpc(sim)("listpeerchannels", {})["channels"]}
    assert all(states[c.channel_id] == "CHANNELD_NORMAL" for c in chs)
