"""Moves the price learner forward each cycle: store + node in, `PriceBook` out (issue #14).

The shell half of revops/facts/price.py: reads every channel's stored learner state (a
corrupt or unreadable one starts fresh with one log line, never a crash), credits the time
since the last update and the forward attempts the store saw meanwhile to the fee each
channel had, refreshes the cached estimate, and saves the result when asked (the fee cycle
saves; explain and the rebalance cycle only read).
"""

from __future__ import annotations

import json
from typing import Callable, Mapping

from revops.facts import current_fee_ppm
from revops.facts.price import PriceBook, PriceSettings, cached_estimate, observe, parse_state, shift_words


def load_states(store, log: Callable[[str, str], None]) -> dict[str, dict]:
    """Returns scid -> parsed state; corrupt rows are logged and left out (they start fresh)."""
    out: dict[str, dict] = {}
    try:
        raw = store.price_states()
    except Exception as err:  # an unreadable table must not stop the fee cycle
        log(f"price learner: cannot read its state ({type(err).__name__}: {err}); starting fresh", "warn")
        return out
    for scid, text in raw.items():
        state = store.saved_price_state(scid, text)
        if state is not None:  # this process saved it as it is: parsed and checked already
            out[scid] = state
            continue
        try:
            state, why = parse_state(json.loads(text))
        except (TypeError, ValueError) as err:
            state, why = None, f"not JSON: {err}"
        if state is None:
            log(f"price learner: stored state of {scid} is corrupt ({why}); that channel starts fresh", "warn")
            continue
        out[scid] = state
    return out


def update_price_book(store, channels: list, now_s: float, settings: PriceSettings,
                      log: Callable[[str, str], None], save: bool) -> PriceBook:
    """Returns the PriceBook as of now_s for the channels of listpeerchannels; saves it if `save`."""
    states = load_states(store, log)
    attempts_by_since: dict[float, dict[str, float]] = {}
    new: dict[str, dict] = {}
    estimates = {}
    for ch in channels:
        scid = ch.get("short_channel_id") if isinstance(ch, Mapping) else None
        if not isinstance(scid, str):
            continue
        fee = float(current_fee_ppm(ch) or 0)
        active = ch.get("state") == "CHANNELD_NORMAL" and ch.get("peer_connected") is True
        old = states.get(scid)
        attempts = 0
        if old is not None and old["last_s"] < now_s:
            since = old["last_s"]
            if since not in attempts_by_since:
                attempts_by_since[since] = store.forward_attempts(since, now_s, settings.dust_sat * 1000)
            attempts = attempts_by_since[since].get(scid, 0)
        state = observe(old, now_s, fee, attempts, active, settings)
        shift = state.get("shift")
        if save and shift and shift["at_s"] == now_s:  # once: explain and dry-run do not save
            log(f"price learner: {scid}: the market moved ({shift_words(shift)}); learning again from the last day",
                "info")
        estimates[scid], cache = cached_estimate(state, scid, now_s, fee, settings)
        if cache is not None:
            state["cache"] = cache
        new[scid] = state
    if save and new:
        try:
            store.save_price_states(new, now_s)
        except Exception as err:  # the decision still runs on this cycle's book
            log(f"price learner: cannot save its state ({type(err).__name__}: {err})", "warn")
    return PriceBook(states=new, settings=settings, estimates=estimates)
