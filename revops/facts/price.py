"""The price learner: each channel's demand curve, learned from what the node sees (issue #14).

What a routing node observes about its own price is censored: a payment that finds our fee
too high takes another route and leaves no trace. What it does see is how many payments
*accepted* the fee it advertised (every forward out of the channel, settled, failed
downstream or failed locally for lack of liquidity) and for how long each fee was in force.
A forward smaller than `dust_sat` counts as its share of one attempt: dust HTLCs (a flood,
jamming, probes) come whatever the fee, so they say nothing about the price.
So the learner keeps, per channel, exposure hours and attempts per log-fee bin (10 % wide),
decayed with a half-life so old prices fade (moving markets), and fits

    attempts per hour at fee f  =  L x p(f),      p(f) = 1 / (1 + exp((f - r) / (rho x r)))

a logistic acceptance curve around the channel's unknown competitor price r with a relative
elasticity rho, and an unknown demand L. The posterior is exact on a grid (r on the same
10 % log grid, rho in RHOS) with L integrated out under a weak Gamma prior; the
revenue-maximising fee of a grid point is r x g(rho) (g below), independent of L. The facts:

    channel.price_estimate_ppm   the `estimate_quantile` (0.1) posterior quantile of f* (at
                                 most one sd below its mean), within floor..ceiling
    channel.price_uncertainty    posterior sd of log f* (0.3 ~ "within +-30 %")
    channel.price_samples        decayed attempts behind it
    channel.price_next_ppm       a Thompson draw of f*, at most `explore_step` (log) from the
                                 estimate: the fee worth trying next
    channel.price_reason         why that fee

A market that moves under the channel (a competitor that closes, a cheaper route, demand that
turns) is seen by comparing a recent window of the bins (half-life a day) with what the older
data predict at the same fees (`shift_ratio`); the older data are then dropped.

Too little data (fewer than `min_samples` attempts) gives the prior's wide uncertainty and the
conservative fee: the channel's own fee when revops first saw it (or `prior_ppm` when that was
lightningd's default), never a wild one, and always within the policy's floor and ceiling.
Past that, the estimate and the draw stay within `explore_step` of the fees the channel was
really offered at (for at least TRIED_MIN_H hours): at one fee the data cannot tell a busy
channel from a cheap one, and the prior's mass above that fee pulled the mean up to 2-3x it
(day one of the simulator, fees of 1,000 ppm on a 300 ppm market); an untried fee is now
reached step by step, one explore_step per change.

Pure: no I/O. The state is a JSON-able dict per channel that the store keeps (store/price.py);
`observe` moves it forward, `estimate` reads it. A state that does not parse starts fresh
(`parse_state` says why, the runtime logs it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Log-fee grid step (bins of data and of the competitor price r): 10 %.
STEP = math.log(1.1)
#: The grid spans 1 .. 100,000 ppm.
GRID_MAX = int(math.ceil(math.log(100_000) / STEP))
#: The competitor price r is searched every R_STRIDE bins (20 %; the posterior mean
#: interpolates between them).
R_STRIDE = 2
#: Relative elasticities rho = scale / r considered (a sharp to a very soft market).
RHOS = (0.15, 0.25, 0.4, 0.65, 1.0, 1.6)
#: Differences bin - r index covered by the acceptance tables; beyond, p is 0 or 1.
_SPAN = 80
#: Weak Gamma(a, b) prior on the demand L (attempts per hour at full acceptance).
_GAMMA_A = 0.5
_GAMMA_B_H = 1.0
#: Prior sd of log r around the anchor: wide (x2.7 either way is one sd).
PRIOR_SD = 1.0
#: The posterior is recomputed at most this often unless the fee moved to another bin.
RECOMPUTE_S = 3 * 3600
#: An interval longer than this (the plugin was down) counts only this much exposure.
MAX_GAP_S = 6 * 3600
STATE_VERSION = 1
#: Market shifts (`shift_ratio`): the recent window's half-life, the hours of it and of the
#: older data a fee bin needs to be compared, the attempts the test needs, and its deviance.
SHIFT_WINDOW_S = 86400.0
SHIFT_MIN_H = 2.0
SHIFT_MIN_OLD_H = 6.0
SHIFT_MIN_ATTEMPTS = 8.0
SHIFT_DEVIANCE = 12.0
#: A fee bin counts as tried once the channel was offered at it this long (decayed hours).
TRIED_MIN_H = 1.0

ROWS: list[tuple[str, str, str, str]] = [
    ("channel.price_estimate_ppm", "number", "ppm",
     "the price learner's revenue-maximising fee (before the balance factor): the price_estimate_quantile "
     "(0.1) posterior quantile of f* (at most one sd below its mean), within min_fee_ppm..max_fee_ppm; the "
     "conservative prior fee with too little data"),
    ("channel.price_uncertainty", "number", "ratio",
     "posterior sd of log f* (0.3 ~ within +-30 %); the prior's sd (1.0) with too little data"),
    ("channel.price_samples", "number", "count",
     "forward attempts out of this channel behind the estimate (settled, failed, local liquidity "
     "failures; one under price_dust_sat counts as its share of one), decayed with the learner's half-life"),
    ("channel.price_next_ppm", "number", "ppm",
     "the fee the learner would try next: a Thompson draw of f* kept within explore_step of the "
     "estimate, within min_fee_ppm..max_fee_ppm (the estimate with too little data)"),
    ("channel.price_reason", "string", "", "why the learner would try price_next_ppm"),
]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _best_ratio(rho: float) -> float:
    """Returns g(rho) = argmax_x x * p(x r) / r: the revenue-maximising fee over r."""
    lo, hi = 0.01, 20.0
    f = lambda x: math.log(x) + math.log(max(1e-300, _sigmoid((1.0 - x) / rho)))  # noqa: E731
    for _ in range(100):  # golden-section search; the objective is unimodal
        a = hi - (hi - lo) * 0.618
        b = lo + (hi - lo) * 0.618
        if f(a) < f(b):
            lo = a
        else:
            hi = b
    return (lo + hi) / 2


def _tables() -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """Returns (p, log p) per rho for d = bin - r index in -_SPAN.._SPAN (immutable)."""
    ps, lps = [], []
    for rho in RHOS:
        row_p, row_lp = [], []
        for d in range(-_SPAN, _SPAN + 1):
            p = _sigmoid((1.0 - math.exp(d * STEP)) / rho)
            row_p.append(p)
            row_lp.append(math.log(max(p, 1e-300)))
        ps.append(tuple(row_p))
        lps.append(tuple(row_lp))
    return tuple(ps), tuple(lps)


_P, _LOGP = _tables()
_BEST = tuple(_best_ratio(rho) for rho in RHOS)
_LOG_BEST = tuple(math.log(g) for g in _BEST)


def fee_bin(fee_ppm: float) -> int:
    """Returns the grid index of a fee (fees below 1 ppm have none: -1)."""
    if fee_ppm < 1:
        return -1
    return min(GRID_MAX, int(round(math.log(fee_ppm) / STEP)))


def bin_fee(index: float) -> float:
    return math.exp(index * STEP)


@dataclass(frozen=True)
class PriceSettings:
    """The learner's knobs (revops/policy/host.py reads them from the active policy; a
    policy that does not require the price_learner feature runs on these defaults)."""

    floor_ppm: float = 10
    ceiling_ppm: float = 2500
    prior_ppm: float = 200        # anchor when the channel's first fee was below adopt_min_ppm
    adopt_min_ppm: float = 50
    min_samples: float = 5
    half_life_s: float = 7 * 86400
    explore_step: float = 0.2     # a draw stays within e^(+-step) of the estimate
    estimate_quantile: float = 0.1  # the estimate is this posterior quantile of f* (see estimate)
    shift_ratio: float = 1.6      # the recent attempts off the older data's rate by this x: a shift (<= 1: off)
    dust_sat: float = 1000        # a forward smaller than this counts as its share of an attempt (0: all whole)

    def clamp(self, fee: float) -> float:
        return min(self.ceiling_ppm, max(self.floor_ppm, fee))


@dataclass(frozen=True)
class PriceEstimate:
    estimate_ppm: float
    uncertainty: float
    samples: float
    next_ppm: float
    reason: str

    def facts(self) -> dict[str, Any]:
        return {"channel.price_estimate_ppm": self.estimate_ppm,
                "channel.price_uncertainty": self.uncertainty,
                "channel.price_samples": self.samples,
                "channel.price_next_ppm": self.next_ppm,
                "channel.price_reason": self.reason}


@dataclass(frozen=True)
class PriceBook:
    """Every channel's learner state (scid -> state dict) and the settings, for build_facts."""

    states: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settings: PriceSettings = PriceSettings()
    # scid -> the estimate as of the book's time (update_price_book): the rebalance half of a
    # cycle reads the fee half's instead of working the posterior out again
    estimates: Mapping[str, "PriceEstimate"] = field(default_factory=dict, compare=False)


EMPTY_PRICE = PriceBook()


# --------------------------------------------------------------------------- state

def new_state(now_s: float, fee_ppm: float, settings: PriceSettings) -> dict:
    """Returns a fresh state anchored on the channel's fee as first seen."""
    anchor = fee_ppm if fee_ppm >= settings.adopt_min_ppm else settings.prior_ppm
    return {"v": STATE_VERSION, "last_s": float(now_s), "anchor_ppm": float(settings.clamp(anchor)),
            "bins": {}}


def parse_state(doc: Any) -> tuple[dict | None, str]:
    """Returns (state, "") for a well-formed stored state, else (None, why)."""
    if not isinstance(doc, Mapping):
        return None, "not an object"
    if doc.get("v") != STATE_VERSION:
        return None, f"unknown state version {doc.get('v')!r}"
    last, anchor, bins = doc.get("last_s"), doc.get("anchor_ppm"), doc.get("bins")
    if not _finite(last) or not _finite(anchor) or anchor <= 0 or not isinstance(bins, Mapping):
        return None, "last_s, anchor_ppm or bins missing or invalid"
    clean, why = _parse_bins(bins)
    if clean is None:
        return None, why
    out = {"v": STATE_VERSION, "last_s": float(last), "anchor_ppm": float(anchor), "bins": clean}
    recent, _ = _parse_bins(doc.get("recent"))
    if recent is not None:  # an invalid recent window only restarts the window
        out["recent"] = recent
    shift = doc.get("shift")
    if isinstance(shift, Mapping) and _finite(shift.get("at_s")) and _finite(shift.get("ratio")):
        out["shift"] = {"at_s": float(shift["at_s"]), "ratio": float(shift["ratio"])}
    cache = doc.get("cache")
    if isinstance(cache, Mapping):
        out["cache"] = dict(cache)
    return out, ""


def _parse_bins(bins: Any) -> tuple[dict | None, str]:
    """Returns ({bin: [hours, attempts]}, "") of well-formed stored bins, else (None, why)."""
    if not isinstance(bins, Mapping):
        return None, "bins missing"
    clean: dict[str, list[float]] = {}
    for k, v in bins.items():
        try:
            i = int(k)
        except (TypeError, ValueError):
            return None, f"bin {k!r} is not an index"
        if (not 0 <= i <= GRID_MAX or not isinstance(v, (list, tuple)) or len(v) != 2
                or not all(_finite(x) and x >= 0 for x in v)):
            return None, f"bin {k!r} is invalid"
        clean[str(i)] = [float(v[0]), float(v[1])]
    return clean, ""


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def observe(state: Mapping[str, Any] | None, now_s: float, fee_ppm: float, attempts: float,
            active: bool, settings: PriceSettings) -> dict:
    """Returns the state moved forward to now_s: old bins decayed, the hours since the last
    update credited to the fee in force (`fee_ppm`, read at the start of this cycle: the fee
    the last cycle left) while the channel was active, and the forward attempts out of the
    channel in that interval credited to the same bin. A None state starts fresh."""
    if state is None:
        return new_state(now_s, fee_ppm, settings)
    dt = now_s - float(state["last_s"])
    if dt <= 0:
        return dict(state)
    decay = 0.5 ** (dt / settings.half_life_s)
    b = fee_bin(fee_ppm)
    credit = None  # (hours, attempts) for the fee in force
    if b >= 0 and (active or attempts):
        credit = (min(dt, MAX_GAP_S) / 3600.0 if active else 0.0, max(0, attempts))
    bins = _decayed(state["bins"], decay, b, credit)
    out = {"v": STATE_VERSION, "last_s": float(now_s), "anchor_ppm": state["anchor_ppm"], "bins": bins}
    if "shift" in state:
        out["shift"] = state["shift"]
    if settings.shift_ratio > 1:  # at or below 1 every ratio would be a shift: the test is off
        out["recent"] = recent = _decayed(state.get("recent") or {}, 0.5 ** (dt / SHIFT_WINDOW_S), b, credit)
        ratio = shift_ratio(bins, recent, settings.shift_ratio)
        if ratio is not None:
            # The market moved: what came before describes another market. Only the recent
            # data stay (and the cached estimate, of the old market, goes).
            out["bins"] = {k: list(v) for k, v in recent.items()}
            out["shift"] = {"at_s": float(now_s), "ratio": ratio}
            return out
    if "cache" in state:
        out["cache"] = state["cache"]
    return out


def _decayed(bins: Mapping[str, Any], decay: float, b: int, credit: tuple[float, float] | None) -> dict:
    """Returns bins decayed by `decay` (the nearly empty dropped), `credit` (hours, attempts) added to bin b."""
    out: dict[str, list[float]] = {}
    for k, (t_h, n) in bins.items():
        t_h, n = t_h * decay, n * decay
        if t_h >= 1e-3 or n >= 1e-3:
            out[k] = [t_h, n]
    if credit is not None:
        cell = out.setdefault(str(b), [0.0, 0.0])
        cell[0] += credit[0]
        cell[1] += credit[1]
    return out


def shift_ratio(bins: Mapping[str, Any], recent: Mapping[str, Any], threshold: float) -> float | None:
    """Returns observed / expected attempts of the recent window when the market moved under the
    channel, else None. Expected is what the older data (all bins minus the recent ones) predict
    at the fees of the recent window, bin by bin, so a change of the channel's own fee is not
    mistaken for one of the market. A shift is a ratio of `threshold` or more either way (a
    competitor that closes, a cheaper route, a peer's demand that turns) with a Poisson deviance
    above SHIFT_DEVIANCE (chance alone reaches that about once in 2,000 tests)."""
    observed = expected = 0.0
    for k, (t_recent, n_recent) in recent.items():
        t_all, n_all = bins.get(k, (0.0, 0.0))
        t_old, n_old = t_all - t_recent, n_all - n_recent
        if t_recent < SHIFT_MIN_H or t_old < SHIFT_MIN_OLD_H:
            continue
        observed += n_recent
        expected += t_recent * max(n_old, 0.5) / t_old
    if max(observed, expected) < SHIFT_MIN_ATTEMPTS:
        return None
    ratio = max(observed, 0.5) / expected
    if 1 / threshold < ratio < threshold:
        return None
    deviance = 2 * ((observed * math.log(observed / expected) if observed > 0 else 0.0) - (observed - expected))
    return ratio if deviance > SHIFT_DEVIANCE else None


# --------------------------------------------------------------------------- posterior

def _uniform(scid: str, epoch: int) -> float:
    h = hashlib.blake2b(f"{scid}:{epoch}".encode(), digest_size=8).digest()
    return (int.from_bytes(h, "big") + 0.5) / 2.0 ** 64


def posterior(state: Mapping[str, Any], settings: PriceSettings) -> tuple[list[float], list[float], float]:
    """Returns (weights, log f* per grid point, decayed attempts) of the channel's posterior;
    grid points are (r index, rho index) over r in floor/4 .. ceiling x 4."""
    data = [(int(k), t_h, n) for k, (t_h, n) in state["bins"].items() if t_h > 0 or n > 0]
    n_total = sum(n for _, _, n in data)
    log_anchor = math.log(settings.clamp(state["anchor_ppm"]))  # always inside the window below
    reach = int(PRIOR_SD * 3.5 / STEP)   # the prior leaves nothing beyond 3.5 sd
    j_anchor = int(round(log_anchor / STEP))
    j_lo = max(0, fee_bin(settings.floor_ppm / 4), j_anchor - reach)
    j_hi = min(GRID_MAX, fee_bin(settings.ceiling_ppm * 4), j_anchor + reach)
    a_post = _GAMMA_A + n_total
    js = range(j_lo, j_hi + 1, R_STRIDE)
    # The learner's hot loop (~7 channels a cycle on `hub`, ~25 data bins each), a list of grid
    # points at a time: each data bin's row offsets per grid point (the same for every rho),
    # then its terms added to every grid point's sums, in the data's order as a plain double
    # loop would (the same floats, 2-3x faster).
    offsets = [(t_h, n, [min(_SPAN, max(-_SPAN, i - j)) + _SPAN for j in js]) for i, t_h, n in data]
    halfz2 = [0.5 * ((j * STEP - log_anchor) / PRIOR_SD) * ((j * STEP - log_anchor) / PRIOR_SD) for j in js]
    logw: list[float] = []
    logf: list[float] = []
    for ri, _rho in enumerate(RHOS):
        p_row, lp_row, log_g = _P[ri], _LOGP[ri], _LOG_BEST[ri]
        expo = [_GAMMA_B_H] * len(js)
        ll = [0.0] * len(js)
        for t_h, n, ds in offsets:
            expo = [e + t_h * p_row[d] for e, d in zip(expo, ds)]
            if n:
                ll = [x + n * lp_row[d] for x, d in zip(ll, ds)]
        logw.extend(x - a_post * math.log(e) - h for x, e, h in zip(ll, expo, halfz2))
        logf.extend(j * STEP + log_g for j in js)
    top = max(logw)
    w = [math.exp(x - top) for x in logw]
    s = sum(w)
    return [x / s for x in w], logf, n_total


def estimate(state: Mapping[str, Any] | None, scid: str, now_s: float,
             settings: PriceSettings) -> PriceEstimate:
    """Returns the channel's price facts from its learner state (the prior with none)."""
    if state is None:
        return PriceEstimate(0.0, PRIOR_SD, 0.0, 0.0, "not learned yet: no state")
    n_total = sum(n for _, n in state["bins"].values())
    anchor = settings.clamp(state["anchor_ppm"])
    if n_total < settings.min_samples:
        return PriceEstimate(anchor, PRIOR_SD, n_total, anchor,
                             f"too little data ({n_total:.1f} attempts): stays at the conservative "
                             f"{anchor:.0f} ppm" + _shift_note(state, now_s))
    w, logf, _ = posterior(state, settings)
    mean = sum(wi * f for wi, f in zip(w, logf))
    sd = math.sqrt(max(0.0, sum(wi * (f - mean) ** 2 for wi, f in zip(w, logf))))
    # The point estimate is a low quantile of f*, not its mean: the posterior leans dear. Fees
    # tried within +-35 % of the optimum barely show the curve's bend, so curves whose optimum
    # lies well above the data fit almost as well; on curves of known optimum the truth sat near
    # the posterior's 20th percentile on average and its mean 15 % above (docs/facts.md).
    # Charging too much also costs more than charging too little. It is never more than one sd
    # below the mean: a tight posterior split between two grid points (well-identified data)
    # would put a low quantile on the lower one. Exploration still draws from the whole posterior.
    wanted = max(weighted_quantile(w, logf, settings.estimate_quantile), mean - sd)
    lo_tried, hi_tried = tried_span(state, settings.explore_step)
    held = not lo_tried <= wanted <= hi_tried
    point = min(hi_tried, max(lo_tried, wanted))
    est = settings.clamp(math.exp(point))
    # Thompson sampling: one draw of f* per 12 h epoch (stable between cycles, so the
    # proposal does not flicker), kept within explore_step of the estimate.
    u = _uniform(scid, int(now_s // 43_200))
    acc, draw = 0.0, logf[-1]
    for wi, f in zip(w, logf):
        acc += wi
        if acc >= u:
            draw = f
            break
    lo, hi = max(lo_tried, point - settings.explore_step), min(hi_tried, point + settings.explore_step)
    nxt = settings.clamp(math.exp(min(hi, max(lo, draw))))
    where = "above" if nxt > est * 1.005 else "below" if nxt < est * 0.995 else "at"
    reason = (f"posterior draw {math.exp(draw):.0f} ppm, tried at {nxt:.0f} ({where} the estimate "
              f"{est:.0f} +-{sd:.0%})")
    if held:
        reason += (f"; the estimate is held within {math.exp(settings.explore_step) - 1:.0%} of the fees "
                   f"tried so far ({math.exp(lo_tried + settings.explore_step):.0f}.."
                   f"{math.exp(hi_tried - settings.explore_step):.0f} ppm)")
    return PriceEstimate(est, sd, n_total, nxt, reason + _shift_note(state, now_s))


def _shift_note(state: Mapping[str, Any], now_s: float) -> str:
    """Says so for two days after the learner saw the market move (observe) and dropped the older data."""
    shift = state.get("shift")
    if not shift or not 0 <= now_s - shift["at_s"] < 2 * SHIFT_WINDOW_S:
        return ""
    return f"; the market moved {(now_s - shift['at_s']) / 3600:.0f} h ago ({shift_words(shift)}): older data dropped"


def shift_words(shift: Mapping[str, float]) -> str:
    """What a shift the learner saw measured, in words (price_reason, the fee cycle's log line)."""
    return f"x{shift['ratio']:.2f} the attempts the older data predicted at the same fees"


def weighted_quantile(weights: list[float], values: list[float], q: float) -> float:
    """Returns the q quantile of a discrete distribution, interpolated between its points (each
    point holds its weight centred on it), so that it moves smoothly as weight shifts between
    neighbouring grid points instead of jumping from one to the next."""
    pairs = sorted(zip(values, weights))
    acc, prev_v, prev_c = 0.0, pairs[0][0], 0.0
    for i, (value, weight) in enumerate(pairs):
        centre = acc + weight / 2
        if q <= centre:
            if i == 0 or centre <= prev_c:
                return value
            return prev_v + (value - prev_v) * (q - prev_c) / (centre - prev_c)
        acc += weight
        prev_v, prev_c = value, centre
    return pairs[-1][0]


def tried_span(state: Mapping[str, Any], step: float) -> tuple[float, float]:
    """Returns the log-fee span the data speak for: from `step` below the lowest fee tried for
    TRIED_MIN_H hours to `step` above the highest (unbounded when none was)."""
    tried = [int(k) for k, (t_h, _) in state["bins"].items() if t_h >= TRIED_MIN_H]
    if not tried:
        return -math.inf, math.inf
    return min(tried) * STEP - step, max(tried) * STEP + step


def cached_estimate(state: Mapping[str, Any] | None, scid: str, now_s: float, fee_ppm: float,
                    settings: PriceSettings) -> tuple[PriceEstimate, dict | None]:
    """Returns (estimate, cache to store or None): the state's cached estimate while it is
    younger than RECOMPUTE_S, in the same Thompson epoch, the fee in the same bin and the
    settings unchanged; else a
    fresh one (the posterior costs ~1 ms a channel, the fee cycle runs every 30 min)."""
    if state is not None:
        c = state.get("cache")
        if (isinstance(c, Mapping) and _finite(c.get("at_s")) and 0 <= now_s - c["at_s"] < RECOMPUTE_S
                and c.get("epoch") == int(now_s // 43_200) and c.get("bin") == fee_bin(fee_ppm)
                and c.get("knobs") == _knobs(settings)
                and isinstance(c.get("reason"), str)
                and all(_finite(c.get(k)) for k in ("est", "sd", "n", "next"))):
            return PriceEstimate(c["est"], c["sd"], c["n"], c["next"], c["reason"]), None
    e = estimate(state, scid, now_s, settings)
    if state is None:
        return e, None
    return e, {"at_s": now_s, "epoch": int(now_s // 43_200), "bin": fee_bin(fee_ppm), "est": e.estimate_ppm,
               "sd": e.uncertainty, "n": e.samples, "next": e.next_ppm, "reason": e.reason,
               "knobs": _knobs(settings)}


def _knobs(settings: PriceSettings) -> list[float]:
    """The settings an estimate depends on: a cached one made under others is stale (an
    operator's revenue-config takes effect at the next cycle, not up to 3 h later)."""
    return [settings.floor_ppm, settings.ceiling_ppm, settings.min_samples, settings.explore_step,
            settings.estimate_quantile]


def price_facts(book: PriceBook, scid: str, now_s: float, fee_ppm: float) -> dict[str, Any]:
    """Returns the channel.price_* facts of one channel (neutral ones when unknown: the
    channel's own fee within the bounds, the prior's uncertainty, 0 samples)."""
    state = book.states.get(scid)
    if state is None:
        fee = book.settings.clamp(fee_ppm)
        return PriceEstimate(fee, PRIOR_SD, 0.0, fee, "not learned yet").facts()
    e = book.estimates.get(scid)
    if e is None:
        e, _ = cached_estimate(state, scid, now_s, fee_ppm, book.settings)
    return e.facts()


# --------------------------------------------------------------------------- JSON form

def price_to_json(book: PriceBook) -> dict:
    """Returns the snapshot's `price` object; price_from_json(price_to_json(b)) == b."""
    s = book.settings
    return {"settings": {"floor_ppm": s.floor_ppm, "ceiling_ppm": s.ceiling_ppm, "prior_ppm": s.prior_ppm,
                         "adopt_min_ppm": s.adopt_min_ppm, "min_samples": s.min_samples,
                         "half_life_s": s.half_life_s, "explore_step": s.explore_step,
                         "estimate_quantile": s.estimate_quantile, "shift_ratio": s.shift_ratio,
                         "dust_sat": s.dust_sat},
            "states": {scid: dict(st) for scid, st in book.states.items()}}


def price_from_json(doc: Mapping[str, Any]) -> PriceBook:
    """Returns the PriceBook of a snapshot's `price` object; raises ValueError if malformed."""
    if not isinstance(doc, Mapping):
        raise ValueError("price must be an object")
    raw_settings = doc.get("settings") or {}
    if not isinstance(raw_settings, Mapping):
        raise ValueError("price.settings must be an object")
    try:
        settings = PriceSettings(**{k: float(v) for k, v in raw_settings.items()})
    except (TypeError, ValueError) as err:
        raise ValueError(f"price.settings: {err}") from None
    states = {}
    for scid, st in (doc.get("states") or {}).items():
        parsed, why = parse_state(st)
        if parsed is None:
            raise ValueError(f"price.states.{scid}: {why}")
        states[scid] = parsed
    return PriceBook(states=states, settings=settings)
