"""The rebalance account (revops/facts/payback.py): which forwards used which rebalance's liquidity."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from revops.facts.payback import HORIZON_S, ChannelForward, Rebalance, account

DAY = 86_400


def out(t, amount, fee):
    return ChannelForward(t, False, amount, fee)


def into(t, amount):
    return ChannelForward(t, True, amount, 0)


def test_the_balance_a_channel_had_serves_first_then_the_bought_layer_earns_pro_rata():
    # 100 local when the job began, 1,000 bought for a fee of 10; two forwards of 600 at 1 %.
    [b] = account([Rebalance(1, "T", 0, 1000, 10, local_msat=100)], [out(1, 600, 6), out(2, 600, 6)], now_s=3)
    assert (b.used_msat, b.earned_msat, b.accounted, b.ratio) == (1000, 10.0, True, 1.0)


def test_a_refill_by_inflow_is_spent_before_the_bought_liquidity():
    [b] = account([Rebalance(1, "T", 0, 1000, 10, local_msat=0)], [into(1, 500), out(2, 600, 6)], now_s=3)
    assert (b.used_msat, b.earned_msat, b.accounted) == (100, 1.0, False)


def test_forwards_before_the_job_began_earn_it_nothing():
    [b] = account([Rebalance(1, "T", 10, 1000, 10, local_msat=0)], [out(5, 600, 6)], now_s=20)
    assert (b.used_msat, b.earned_msat) == (0, 0.0)


def test_older_rebalances_are_used_first_and_an_unused_layer_is_closed_at_the_horizon():
    jobs = [Rebalance(1, "T", 0, 1000, 10, 0), Rebalance(2, "T", 5, 1000, 10, 0)]
    first, second = account(jobs, [out(1, 600, 6), out(6, 900, 9)], now_s=HORIZON_S + 10)
    assert (first.used_msat, first.earned_msat, first.accounted) == (1000, 10.0, True)
    assert (second.used_msat, second.earned_msat, second.accounted) == (500, 5.0, True)
    assert second.ratio == 0.5


def test_after_the_horizon_what_is_left_is_free_liquidity_for_the_next_rebalance():
    # Job 1's 1,000 never left before the horizon; job 2 starts later without a recorded balance.
    jobs = [Rebalance(1, "T", 0, 1000, 10, 0), Rebalance(2, "T", HORIZON_S + DAY, 500, 5, None)]
    first, second = account(jobs, [out(HORIZON_S + 2 * DAY, 1200, 12)], now_s=HORIZON_S + 3 * DAY)
    assert (first.used_msat, first.accounted) == (0, True)
    assert (second.used_msat, second.earned_msat) == (200, 2.0)


def test_a_balance_below_an_expired_layer_is_the_free_liquidity_not_the_layer():
    # Job 1's 1,000 was never used by forwards but left unseen (a payment of our own): job 2
    # recorded 300 local when it began, after job 1's horizon. The 300 serves first, job 2's
    # layer the rest; the expired layer adds nothing on top of the balance it was part of.
    jobs = [Rebalance(1, "T", 0, 1000, 10, 0), Rebalance(2, "T", HORIZON_S + DAY, 500, 5, local_msat=300)]
    first, second = account(jobs, [out(HORIZON_S + 2 * DAY, 1000, 10)], now_s=HORIZON_S + 3 * DAY)
    assert (first.used_msat, first.accounted) == (0, True)
    assert (second.used_msat, second.earned_msat, second.accounted) == (500, 5.0, True)


def test_a_job_that_moved_nothing_has_no_account():
    assert account([Rebalance(1, "T", 0, 0, 0, 0)], [out(1, 600, 6)], now_s=2) == []


@settings(max_examples=200, deadline=None)
@given(jobs=st.lists(st.tuples(st.integers(0, 20), st.integers(1, 5000), st.integers(0, 100),
                               st.one_of(st.none(), st.integers(0, 5000))), max_size=5),
       flows=st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.integers(0, 4000), st.integers(0, 400)),
                      max_size=30))
def test_the_account_never_credits_more_than_was_bought_or_earned(jobs, flows):
    rebalances = [Rebalance(i, "T", t * DAY, moved, spent, local) for i, (t, moved, spent, local) in enumerate(jobs)]
    forwards = [ChannelForward(t * DAY + 1, inflow, amount, 0 if inflow else fee)
                for t, inflow, amount, fee in flows]
    books = account(rebalances, forwards, now_s=40 * DAY)
    first = min((r.start_s for r in rebalances), default=0)
    fees_after = sum(f.fee_msat for f in forwards if not f.inflow and f.t >= first)
    out_after = sum(f.amount_msat for f in forwards if not f.inflow and f.t >= first)
    assert all(0 <= b.used_msat <= b.moved_msat for b in books)
    assert sum(b.used_msat for b in books) <= out_after
    assert sum(b.earned_msat for b in books) <= fees_after + 1e-6
    assert all(b.accounted for b in books)  # 40 days on: every layer is past the horizon
