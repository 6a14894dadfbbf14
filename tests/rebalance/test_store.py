"""The rebalance_jobs table: failure streaks, backoff, learned costs, spend queries."""

from __future__ import annotations

from revops.store import Store

T0 = 1_700_000_000.0


def job(store, scid, at, spent, moved, peer="P", candidates=("9x9x9",), outcome="x"):
    job_id = store.reserve_rebalance(scid=scid, peer_id=peer, now_s=at, budget_msat=10**9, amount_sat=100_000,
                                     chunk_sat=100_000, max_ppm=1000, reserved_msat=100_000,
                                     candidates=list(candidates), baseline={}, plan={})
    assert store.settle_rebalance(job_id, now_s=at + 600, spent_msat=spent, moved_msat=moved, outcome=outcome)
    assert not store.settle_rebalance(job_id, now_s=at + 700, spent_msat=1, moved_msat=1, outcome="again")


def test_streaks_backoff_costs_and_spend(tmp_path):
    with Store(tmp_path / "db") as store:
        job(store, "1x1x0", T0, 30_000, 100_000_000)          # success: 300 ppm
        job(store, "1x1x0", T0 + 3600, 0, 0)                  # then two failures
        job(store, "1x1x0", T0 + 7200, 0, 0)
        job(store, "1x1x0", T0 + 7300, 0, 0, outcome="shutdown")    # ended by us: not a failure
        job(store, "2x1x0", T0, 50_000, 100_000_000, peer="Q")
        h = store.rebalance_history(T0 + 8000, budget_msat=1_000_000, backoff_base_s=3600, backoff_max_s=86400)
        assert h.failures == {"1x1x0": 2}
        assert h.backoff_until_s == {"1x1x0": T0 + 7800 + 7200}      # last failure + 1 h x 2^(2-1)
        assert h.peer_cost == {"P": (30_000, 100_000_000), "Q": (50_000, 100_000_000)}
        assert h.source_outcomes == {"9x9x9": (2, 2)}
        assert h.spent_24h_msat == 80_000 and h.reserved_msat == 0
        assert store.rebalance_spend_msat(T0, T0 + 700) == 80_000
        assert len(store.rebalance_jobs(T0, "1x1x0")) == 4
        assert store.rebalance_spend_msat(T0, T0 + 700, "2x1x0") == 50_000
        assert store.rebalance_costs(T0, T0 + 86400)["1x1x0"]["fee_ppm"] == 300.0
        # A second job for a channel with one running is refused; so is one over budget.
        assert store.reserve_rebalance(scid="3x1x0", peer_id="R", now_s=T0 + 9000, budget_msat=200_000,
                                       amount_sat=1, chunk_sat=1, max_ppm=1, reserved_msat=100_000,
                                       candidates=[], baseline={}, plan={}) is not None
        assert store.reserve_rebalance(scid="3x1x0", peer_id="R", now_s=T0 + 9000, budget_msat=10**9,
                                       amount_sat=1, chunk_sat=1, max_ppm=1, reserved_msat=1,
                                       candidates=[], baseline={}, plan={}) is None
        assert store.reserve_rebalance(scid="4x1x0", peer_id="R", now_s=T0 + 9000, budget_msat=200_000,
                                       amount_sat=1, chunk_sat=1, max_ppm=1, reserved_msat=30_000,
                                       candidates=[], baseline={}, plan={}) is None  # 80k + 100k + 30k > 200k


def settled(i, t, in_channel, out_channel, out_msat, fee_msat):
    return {"created_index": i, "in_channel": in_channel, "in_htlc_id": i, "out_channel": out_channel,
            "out_htlc_id": i, "in_msat": out_msat + fee_msat, "out_msat": out_msat, "fee_msat": fee_msat,
            "status": "settled", "received_time": t - 1, "resolved_time": t}


def test_the_account_reads_the_target_channels_settled_forwards_from_the_store(tmp_path):
    with Store(tmp_path / "db") as store:
        # 100,000 sat bought for 100 sat into 1x1x0, which had 20,000 sat then (recorded with the job).
        job_id = store.reserve_rebalance(scid="1x1x0", peer_id="P", now_s=T0, budget_msat=10**9,
                                         amount_sat=100_000, chunk_sat=100_000, max_ppm=1000,
                                         reserved_msat=100_000, candidates=["9x9x9"], baseline={},
                                         plan={"local_msat": 20_000_000})
        store.settle_rebalance(job_id, now_s=T0 + 600, spent_msat=100_000, moved_msat=100_000_000, outcome="done")
        store.ingest_forwards([
            settled(1, T0 - 100, "5x5x5", "1x1x0", 50_000_000, 99_000),    # before the job: not its
            settled(2, T0 + 1000, "5x5x5", "1x1x0", 60_000_000, 72_000),   # 20,000 free, 40,000 bought
            settled(3, T0 + 2000, "1x1x0", "5x5x5", 10_000_000, 0),        # an inflow refills 10,000
            settled(4, T0 + 3000, "5x5x5", "1x1x0", 70_000_000, 84_000),   # 10,000 free, 60,000 bought
            settled(5, T0 + 4000, "5x5x5", "2x2x2", 70_000_000, 84_000),   # another channel
        ])
        [book] = store.rebalance_account(T0 + 5000, T0 - 86400)
        assert (book.job_id, book.used_msat, book.accounted) == (job_id, 100_000_000, True)
        assert book.earned_msat == 72_000 * 40 / 60 + 84_000 * 60 / 70            # 120,000 msat: 1.2x
        h = store.rebalance_history(T0 + 5000, budget_msat=10**6)
        assert h.payback == {"1x1x0": (1, 120_000, 100_000_000, 100_000)}
        assert store.rebalance_account(T0 + 5000, T0 + 1) == []                   # begun before the window
