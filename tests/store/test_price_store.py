"""The price learner's store: state round trip, forward attempts, and corrupt rows starting fresh."""

from __future__ import annotations

import json

import pytest

from revops.facts.price import PriceSettings, observe
from revops.price_book import load_states, update_price_book
from revops.store import Store

T0 = 1_767_225_600.0


def fwd(i: int, status: str, t: float, out: str | None = "2x2x2", failcode: int | None = None) -> dict:
    f = {"created_index": i, "in_channel": "1x1x1", "in_htlc_id": i, "in_msat": 100_100_000,
         "status": status, "received_time": t - 1}
    if out is not None:
        f["out_channel"] = out
    if status in ("settled", "failed"):
        f.update(out_msat=100_000_000, fee_msat=100_000, resolved_time=t, out_htlc_id=i)
    if failcode is not None:
        f["failcode"] = failcode
    return f


def test_attempts_count_every_forward_that_accepted_the_fee(store):
    store.ingest_forwards([
        fwd(1, "settled", T0 + 10), fwd(2, "failed", T0 + 20), fwd(3, "local_failed", T0 + 30, failcode=4103),
        fwd(4, "local_failed", T0 + 40, failcode=4108),      # an old fee: says nothing about this one
        fwd(5, "offered", T0 + 50),                           # not resolved yet
        fwd(6, "local_failed", T0 + 60, out=None, failcode=16394),
        fwd(7, "settled", T0 - 10),                           # before the window
        fwd(8, "settled", T0 + 70, out="3x3x3"),
    ])
    assert store.forward_attempts(T0, T0 + 100) == {"2x2x2": 3, "3x3x3": 1}


def test_a_forward_under_the_dust_size_counts_as_its_share_of_an_attempt(store):
    small = fwd(1, "failed", T0 + 10)
    small.update(out_msat=5_000, in_msat=5_001)                       # a 5 sat flood HTLC
    local = fwd(2, "local_failed", T0 + 20, failcode=4103)
    local["in_msat"] = 250_000                                        # no out_msat: its in_msat is the size
    store.ingest_forwards([small, local, fwd(3, "settled", T0 + 30), fwd(4, "settled", T0 + 40, out="3x3x3")])
    assert store.forward_attempts(T0, T0 + 100, dust_msat=1_000_000) == pytest.approx(
        {"2x2x2": 0.005 + 0.25 + 1, "3x3x3": 1})
    assert store.forward_attempts(T0, T0 + 100, dust_msat=0) == {"2x2x2": 3, "3x3x3": 1}


def test_state_round_trip_and_survives_reopening(tmp_path):
    s = PriceSettings()
    state = observe(observe(None, T0, 300, 0, True, s), T0 + 3600, 300, 4, True, s)
    with Store(tmp_path / "db.sqlite3") as store:
        store.save_price_states({"2x2x2": state}, T0 + 3600)
    with Store(tmp_path / "db.sqlite3") as store:
        logs = []
        assert load_states(store, lambda m, lvl: logs.append(m)) == {"2x2x2": state}
        assert logs == []


def test_corrupt_rows_start_fresh_with_one_log_line(store):
    s = PriceSettings()
    good = observe(None, T0, 300, 0, True, s)
    store.save_price_states({"2x2x2": good, "3x3x3": good}, T0)
    store._conn().execute("UPDATE price_state SET state_json = '{\"v\": 1, \"bins\": [' WHERE scid = '3x3x3'")
    logs = []
    states = load_states(store, lambda m, lvl: logs.append((lvl, m)))
    assert list(states) == ["2x2x2"]
    assert len(logs) == 1 and logs[0][0] == "warn" and "3x3x3" in logs[0][1] and "corrupt" in logs[0][1]
    # the cycle's book still covers the channel, from scratch, and saving repairs the row
    chans = [{"short_channel_id": scid, "state": "CHANNELD_NORMAL", "peer_connected": True,
              "updates": {"local": {"fee_proportional_millionths": 250}}} for scid in ("2x2x2", "3x3x3")]
    book = update_price_book(store, chans, T0 + 1800, PriceSettings(), lambda m, lvl: None, save=True)
    assert book.states["3x3x3"]["bins"] == {} and book.states["3x3x3"]["last_s"] == T0 + 1800
    assert book.states["2x2x2"]["bins"]           # half an hour at 250 ppm credited
    assert load_states(store, lambda m, lvl: logs.append(m)) .keys() == {"2x2x2", "3x3x3"}


def test_a_missing_table_starts_everything_fresh(store):
    store._conn().execute("DROP TABLE price_state")
    logs = []
    assert load_states(store, lambda m, lvl: logs.append(m)) == {}
    assert "cannot read its state" in logs[0]


def test_what_this_process_saved_is_not_parsed_again_but_another_writer_is_read(store):
    # A fee cycle reads back what the last one saved: the saved state itself, no JSON parse.
    s = PriceSettings()
    mine = observe(None, T0, 300, 0, True, s)
    theirs = observe(None, T0, 900, 0, True, s)
    store.save_price_states({"2x2x2": mine, "3x3x3": mine}, T0)
    states = load_states(store, lambda m, lvl: None)
    assert states["2x2x2"] is mine and states["3x3x3"] is mine
    # another process (a restored backup, a second tool) rewrote a row: the database wins
    store._conn().execute(
        "UPDATE price_state SET state_json = ? WHERE scid = '3x3x3'", (json.dumps(theirs),))
    states = load_states(store, lambda m, lvl: None)
    assert states["2x2x2"] is mine
    assert states["3x3x3"] == theirs and states["3x3x3"]["anchor_ppm"] == 900
