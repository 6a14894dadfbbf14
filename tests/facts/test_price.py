"""The price learner's estimator (revops/facts/price.py): recovers known demand curves, stays
conservative without data, never leaves the floor..ceiling, and refuses corrupt state."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from revops.facts.build import build_facts
from revops.facts.price import (PRIOR_SD, STEP, TRIED_MIN_H, PriceBook, PriceSettings, cached_estimate, estimate,
                                fee_bin, new_state, observe, parse_state, price_from_json, price_to_json,
                                weighted_quantile)
from revops.facts.snapshot import load_snapshot
from revops.policy.host import HostSettings
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "snapshot.json"

SETTINGS = PriceSettings()


def acceptance(f: float, r: float, scale: float) -> float:
    return 1.0 / (1.0 + math.exp((f - r) / scale))


def best_fee(r: float, scale: float) -> float:
    return max(range(1, 20_000), key=lambda f: f * acceptance(f, r, scale))


def state_with(bins: dict[float, tuple[float, float]], anchor: float = 300.0) -> dict:
    return {"v": 1, "last_s": 0.0, "anchor_ppm": anchor,
            "bins": {str(fee_bin(f)): [t, n] for f, (t, n) in bins.items()}}


@pytest.mark.parametrize("r, scale", [(400, 150), (600, 150), (150, 60), (1200, 300)])
def test_recovers_the_revenue_maximising_fee_of_a_known_curve(r, scale):
    # 200 hours at each of five fees around r, with the attempts the curve predicts (4 an hour
    # at full acceptance), as if many weeks of forwards had been seen.
    bins = {f: (200.0, 200.0 * 4 * acceptance(f, r, scale)) for f in (0.6 * r, 0.8 * r, r, 1.2 * r, 1.5 * r)}
    e = estimate(state_with(bins, anchor=200), "1x1x1", 0, SETTINGS)
    target = best_fee(r, scale)
    assert abs(math.log(e.estimate_ppm / target)) < 0.12, (e, target)
    assert e.uncertainty < 0.12
    assert e.samples == pytest.approx(sum(n for _, n in bins.values()))


def test_learns_from_synthetic_forwards_under_the_gossip_budget():
    """Starting at half the right price, Thompson exploration with one fee change per 12 h
    reaches most of the best revenue within 30 days (random Poisson forwards)."""
    r, scale, per_hour = 500.0, 150.0, 4.0
    rng = random.Random(3)
    state, fee, now, last_change = None, 250.0, 0.0, -1e9
    earned = best = 0.0
    f_star = best_fee(r, scale)
    for _ in range(30 * 48):
        p = acceptance(fee, r, scale)
        n = sum(1 for _ in range(int(per_hour * 1.5)) if rng.random() < 1 / 3 and rng.random() < p)
        now += 1800
        earned += p * fee
        best += acceptance(f_star, r, scale) * f_star
        state = observe(state, now, fee, n, True, SETTINGS)
        e, cache = cached_estimate(state, "7x7x7", now, fee, SETTINGS)
        if cache:
            state["cache"] = cache
        if now - last_change >= 43_200 and abs(e.next_ppm - fee) / fee >= 0.05:
            fee, last_change = round(e.next_ppm), now
    assert abs(math.log(e.estimate_ppm / f_star)) < 0.25, (e, f_star)
    assert earned / best > 0.85


def poisson(rng: random.Random, mu: float) -> int:
    n, threshold, q = 0, math.exp(-mu), rng.random()
    while q >= threshold:
        n += 1
        q *= rng.random()
    return n


def near_optimum_state(r: float, scale: float, seed: int) -> dict:
    """200 hours at fees drawn within +-35 % of the optimum (4 attempts an hour at full
    acceptance): what a learner that has converged has seen."""
    rng, f_star, bins = random.Random(seed), best_fee(r, scale), {}
    for _ in range(100):
        f = f_star * math.exp(rng.uniform(-0.35, 0.35))
        cell = bins.setdefault(str(fee_bin(f)), [0.0, 0.0])
        cell[0] += 2.0
        cell[1] += poisson(rng, 2.0 * 4 * acceptance(f, r, scale))
    return {"v": 1, "last_s": 0.0, "anchor_ppm": float(r), "bins": bins}


def test_fees_tried_near_the_optimum_do_not_pull_the_estimate_above_it():
    """Fees within +-35 % of the optimum barely show the curve's bend: curves whose optimum lies
    well above fit the data almost as well, so the posterior of f* leans dear (its mean sat
    ~17 % above the optimum here, its median ~11 %). The estimate is its price_estimate_quantile
    (0.1) quantile, unbiased here on average; a higher quantile is a dearer estimate."""
    median = PriceSettings(estimate_quantile=0.5)
    errors, median_errors = [], []
    for seed in range(9):
        r = (300, 450, 600)[seed % 3]
        state, f_star = near_optimum_state(r, 150, seed), best_fee(r, 150)
        e, m = estimate(state, "6x6x6", 0, SETTINGS), estimate(state, "6x6x6", 0, median)
        assert e.estimate_ppm <= m.estimate_ppm
        errors.append(math.log(e.estimate_ppm / f_star))
        median_errors.append(math.log(m.estimate_ppm / f_star))
    # the posterior mean (the estimate before) was +0.17 here, the median +0.11
    assert abs(sum(errors) / len(errors)) < 0.05, errors
    assert sum(median_errors) > sum(errors), median_errors


def test_weighted_quantile_interpolates_between_the_points():
    # sorted: 1.0 (weight 0.3, centred at 0.15), 2.0 (0.5, at 0.55), 3.0 (0.2, at 0.9)
    w, v = [0.2, 0.3, 0.5], [3.0, 1.0, 2.0]
    assert weighted_quantile(w, v, 0.1) == 1.0                  # below the first centre
    assert weighted_quantile(w, v, 0.35) == pytest.approx(1.5)  # half way from 0.15 to 0.55
    assert weighted_quantile(w, v, 0.9) == pytest.approx(3.0)
    assert weighted_quantile(w, v, 0.99) == 3.0                 # beyond the last centre
    assert weighted_quantile([0.5, 0.5], [2.0, 2.0], 0.5) == 2.0


def test_no_data_is_conservative_and_uncertain():
    fresh = new_state(0, 420, SETTINGS)
    e = estimate(fresh, "1x1x1", 0, SETTINGS)
    assert (e.estimate_ppm, e.next_ppm, e.uncertainty, e.samples) == (420, 420, PRIOR_SD, 0)
    assert "too little data" in e.reason
    # lightningd's default fee (below hc_adopt_min_ppm) is not an anchor: base_fee_ppm is
    assert estimate(new_state(0, 10, SETTINGS), "1x1x1", 0, SETTINGS).estimate_ppm == SETTINGS.prior_ppm
    # a channel that is watched for days but never routes stays where it was
    st_ = fresh
    for k in range(1, 200):
        st_ = observe(st_, k * 1800, 420, 0, True, SETTINGS)
    e = estimate(st_, "1x1x1", 200 * 1800, SETTINGS)
    assert e.next_ppm == 420 and e.uncertainty == PRIOR_SD


def test_few_samples_do_not_produce_wild_fees():
    """Just above min_samples, at a single fee: the estimate and the draw stay within
    explore_step of the one fee tried (the data cannot say more; the prior's mass above it
    put the estimate at 2-3x it before), and the reason says the estimate is held."""
    st_ = state_with({300: (10.0, 6.0)})
    bin_fee_ppm = math.exp(fee_bin(300) * STEP)
    for epoch in range(20):
        e = estimate(st_, "2x2x2", epoch * 43_200, SETTINGS)
        assert abs(math.log(e.next_ppm / e.estimate_ppm)) <= SETTINGS.explore_step + 1e-9
        for fee in (e.estimate_ppm, e.next_ppm):
            assert abs(math.log(fee / bin_fee_ppm)) <= SETTINGS.explore_step + 1e-9
    # a dear quantile of the same posterior lies beyond the span: it is held at the edge
    dear = estimate(st_, "2x2x2", 0, PriceSettings(estimate_quantile=0.9))
    assert dear.estimate_ppm == pytest.approx(bin_fee_ppm * math.exp(SETTINGS.explore_step))
    assert "held within 22% of the fees tried so far" in dear.reason


def test_the_span_grows_with_the_fees_tried():
    """Once higher fees were tried (and still accepted), the estimate may follow them up; a fee
    offered for under TRIED_MIN_H hours does not count as tried."""
    brief = estimate(state_with({300: (10.0, 6.0), 900: (TRIED_MIN_H / 2, 0.0)}), "5x5x5", 0, SETTINGS)
    assert brief.estimate_ppm <= math.exp(fee_bin(300) * STEP + SETTINGS.explore_step) + 1e-9
    wide = estimate(state_with({300: (40.0, 160.0), 500: (40.0, 158.0), 800: (40.0, 150.0)}), "5x5x5", 0, SETTINGS)
    assert wide.estimate_ppm > 800


@hsettings(max_examples=60, deadline=None)
@given(bins=st.dictionaries(st.floats(1, 90_000), st.tuples(st.floats(0, 5000), st.floats(0, 5000)), max_size=8),
       floor=st.integers(0, 500), span=st.integers(1, 5000), anchor=st.floats(1, 50_000), now=st.floats(0, 1e9))
def test_never_outside_floor_and_ceiling(bins, floor, span, anchor, now):
    s = HostSettings.of(None, {"min_fee_ppm": floor, "max_fee_ppm": floor + span, "price_min_samples": 1}).price()
    e = estimate(state_with(bins, anchor), "3x3x3", now, s)
    for v in (e.estimate_ppm, e.next_ppm):
        assert math.isfinite(v) and s.floor_ppm <= v <= s.ceiling_ppm
    assert math.isfinite(e.uncertainty) and e.uncertainty >= 0


def test_demand_beyond_the_ceiling_is_capped():
    # every fee up to 2000 ppm accepted by all: the learner would go higher but the ceiling holds
    bins = {f: (100.0, 400.0) for f in (500, 1000, 2000)}
    e = estimate(state_with(bins, anchor=1000), "4x4x4", 0, SETTINGS)
    assert e.estimate_ppm == SETTINGS.ceiling_ppm and e.next_ppm <= SETTINGS.ceiling_ppm


def test_observe_decays_and_credits_the_fee_in_force():
    s = PriceSettings(half_life_s=86_400)
    st_ = observe(None, 0, 300, 0, True, s)
    st_ = observe(st_, 3600, 300, 5, True, s)
    assert st_["bins"][str(fee_bin(300))] == pytest.approx([1.0, 5.0])
    st_ = observe(st_, 3600 + 86_400, 600, 0, False, s)      # a day later, inactive: no exposure
    assert st_["bins"][str(fee_bin(300))] == pytest.approx([0.5, 2.5])
    assert str(fee_bin(600)) not in st_["bins"]


@pytest.mark.parametrize("doc, why", [
    ("nonsense", "not an object"),
    ({"v": 99, "last_s": 0, "anchor_ppm": 1, "bins": {}}, "unknown state version"),
    ({"v": 1, "last_s": "x", "anchor_ppm": 1, "bins": {}}, "invalid"),
    ({"v": 1, "last_s": 0, "anchor_ppm": -5, "bins": {}}, "invalid"),
    ({"v": 1, "last_s": 0, "anchor_ppm": 5, "bins": {"a": [1, 1]}}, "not an index"),
    ({"v": 1, "last_s": 0, "anchor_ppm": 5, "bins": {"3": [1, -1]}}, "invalid"),
    ({"v": 1, "last_s": 0, "anchor_ppm": 5, "bins": {"3": [1, float("nan")]}}, "invalid"),
])
def test_corrupt_state_is_refused_with_a_reason(doc, why):
    state, reason = parse_state(doc)
    assert state is None and why in reason


def test_snapshot_json_round_trip_and_facts():
    snap = load_snapshot(EXAMPLE)
    scid = snap.rpc["listpeerchannels"]["channels"][0]["short_channel_id"]
    bins = {f: (100.0, 100 * 3 * acceptance(f, 500, 150)) for f in (300, 400, 500, 650)}
    book = PriceBook(states={scid: state_with(bins)}, settings=SETTINGS)
    again = price_from_json(price_to_json(book))
    assert again.settings == book.settings and again.states[scid]["bins"] == book.states[scid]["bins"]
    facts = {f.scid: f.values for f in build_facts(snap.rpc, snap.captured_at, price=again)}
    v = facts[scid]
    assert v["channel.price_samples"] == pytest.approx(sum(n for _, n in bins.values()))
    assert 300 < v["channel.price_estimate_ppm"] < 700 and v["channel.price_uncertainty"] < 0.5
    other = next(s for s in facts if s != scid)
    assert facts[other]["channel.price_samples"] == 0 and facts[other]["channel.price_reason"] == "not learned yet"


def _posterior_by_definition(state: dict, settings: PriceSettings) -> tuple[list[float], list[float]]:
    """The posterior's log weights and log f* written as the model's definition reads: per grid
    point (rho, r), the Gamma-integrated likelihood of every data bin, plus the prior on r."""
    from revops.facts import price as P
    data = [(int(k), t, n) for k, (t, n) in state["bins"].items() if t > 0 or n > 0]
    n_total = sum(n for _, _, n in data)
    log_anchor = math.log(settings.clamp(state["anchor_ppm"]))
    reach = int(P.PRIOR_SD * 3.5 / P.STEP)
    j_anchor = int(round(log_anchor / P.STEP))
    j_lo = max(0, fee_bin(settings.floor_ppm / 4), j_anchor - reach)
    j_hi = min(P.GRID_MAX, fee_bin(settings.ceiling_ppm * 4), j_anchor + reach)
    logw, logf = [], []
    for ri in range(len(P.RHOS)):
        for j in range(j_lo, j_hi + 1, P.R_STRIDE):
            expo, ll = P._GAMMA_B_H, 0.0
            for i, t, n in data:
                d = min(P._SPAN, max(-P._SPAN, i - j)) + P._SPAN
                expo += t * P._P[ri][d]
                ll += n * P._LOGP[ri][d]
            z = (j * P.STEP - log_anchor) / P.PRIOR_SD
            logw.append(ll - (P._GAMMA_A + n_total) * math.log(expo) - 0.5 * z * z)
            logf.append(j * P.STEP + P._LOG_BEST[ri])
    top = max(logw)
    w = [math.exp(x - top) for x in logw]
    return [x / sum(w) for x in w], logf


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_posterior_is_the_models_definition(seed):
    # posterior() sums a list of grid points at a time (the learner's hot loop); it must give
    # what the definition gives, data bins far from the anchor (clamped offsets) included.
    from revops.facts.price import posterior
    rnd = random.Random(seed)
    anchor = rnd.choice([3.0, 80.0, 450.0, 5000.0])
    bins = {str(max(0, fee_bin(anchor) + rnd.randint(-90, 90))): [rnd.random() * 40, rnd.choice([0.0, rnd.random() * 25])]
            for _ in range(rnd.randint(1, 30))}
    state = {"v": 1, "last_s": 0.0, "anchor_ppm": anchor, "bins": bins}
    w, logf, _ = posterior(state, SETTINGS)
    want_w, want_logf = _posterior_by_definition(state, SETTINGS)
    assert logf == pytest.approx(want_logf, rel=1e-12)
    assert w == pytest.approx(want_w, rel=1e-9, abs=1e-15)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _run(state, rng, hours: int, fee: float, per_hour: float, settings: PriceSettings, start_s: float):
    """Half-hour cycles at one fee with Poisson attempts; returns (state, the time a shift was seen or None)."""
    seen = None
    for i in range(1, 2 * hours + 1):
        now = start_s + i * 1800
        state = observe(state, now, fee, _poisson(rng, per_hour / 2), True, settings)
        if seen is None and state.get("shift", {}).get("at_s") == now:
            seen = now
    return state, seen


@pytest.mark.parametrize("after, direction", [(0.2, "fewer"), (3.0, "more")])
def test_a_market_that_moves_under_the_channel_drops_the_older_data(after, direction):
    # Five days at 400 ppm, 4 attempts an hour; then the market moves (a cheaper route: a fifth
    # of the attempts; a competitor closes: three times as many) and the fee stays where it was.
    rng, s = random.Random(5), PriceSettings()
    state, seen = _run(observe(None, 0, 400, 0, True, s), rng, 120, 400, 4.0, s, 0)
    assert seen is None and state["bins"][str(fee_bin(400))][1] > 300
    moved_at = 120 * 3600
    state, seen = _run(state, rng, 24, 400, 4.0 * after, s, moved_at)
    assert seen is not None and seen - moved_at <= 24 * 3600, seen  # the window (half-life a day) must turn
    ratio = state["shift"]["ratio"]
    assert (ratio < 1 / s.shift_ratio) if direction == "fewer" else (ratio > s.shift_ratio)
    # what is left is the recent window (a day's half-life: at most ~35 h) and the hours since,
    # not the 120 hours of the old market
    since_h = (moved_at + 24 * 3600 - seen) / 3600
    assert state["bins"][str(fee_bin(400))][0] < 24 / math.log(2) + since_h
    e = estimate(state, "1x1x1", seen + 3600, s)
    assert "the market moved 1 h ago" in e.reason, e.reason


@pytest.mark.parametrize("seed", range(4))
def test_a_steady_market_never_looks_moved(seed):
    # 30 days of a steady logistic market, the fee moved between three bins every 12 h: the
    # rates differ by fee, but each fee's recent rate matches its own older one.
    rng, s = random.Random(seed), PriceSettings()
    state = observe(None, 0, 300, 0, True, s)
    for day in range(60):
        fee = (250, 300, 400)[(day * 7 + seed) % 3]
        state, seen = _run(state, rng, 12, fee, 6.0 * acceptance(fee, 350, 120), s, day * 12 * 3600)
        assert seen is None, (day, state.get("shift"))


@pytest.mark.parametrize("off", [0.0, 0.5, 1.0])
def test_shift_ratio_up_to_one_keeps_no_recent_window(off):
    # below 1 every ratio would pass the test: the learner treats it as off, wherever the
    # settings come from (a policy, or a snapshot's `price.settings`)
    rng, s = random.Random(1), PriceSettings(shift_ratio=off)
    state, _ = _run(observe(None, 0, 400, 0, True, s), rng, 120, 400, 4.0, s, 0)
    state, seen = _run(state, rng, 24, 400, 0.4, s, 120 * 3600)
    assert seen is None and "recent" not in state and "shift" not in state


def test_a_corrupt_recent_window_restarts_the_window_only():
    doc = {"v": 1, "last_s": 0, "anchor_ppm": 300, "bins": {"60": [5.0, 9.0]}, "recent": {"60": [1, "x"]},
           "shift": {"at_s": "yesterday"}}
    state, why = parse_state(doc)
    assert why == "" and state["bins"] == {"60": [5.0, 9.0]} and "recent" not in state and "shift" not in state
