"""Per-channel state merge, param overrides (set, read back, reset) and meta values."""

from __future__ import annotations

import pytest


def test_state_updates_merge(store):
    assert store.load_states() == {}
    store.save_state_updates({"1x1x1": {"step_ppm": 10, "trend": "up"},
                              "2x2x2": {"sleep": True}}, at_s=100.0)
    store.save_state_updates({"1x1x1": {"step_ppm": 20, "ema": 1.5}}, at_s=200.0)
    assert store.load_states() == {"1x1x1": {"step_ppm": 20, "trend": "up", "ema": 1.5},
                                   "2x2x2": {"sleep": True}}
    store.save_state_updates({"1x1x1": {"trend": None}, "2x2x2": {"sleep": None}}, at_s=300.0)
    assert store.load_states() == {"1x1x1": {"step_ppm": 20, "ema": 1.5}}


def test_state_values_keep_their_json_type(store):
    value = {"curve": [1, 2.5, None], "ok": False, "name": "x"}
    store.save_state_updates({"1x1x1": {"v": value, "i": 3, "f": 3.0}}, at_s=1.0)
    got = store.load_states()["1x1x1"]
    assert got == {"v": value, "i": 3, "f": 3.0}
    assert type(got["i"]) is int and type(got["f"]) is float


def test_bad_state_value_writes_nothing(store):
    store.save_state_updates({"1x1x1": {"a": 1}}, at_s=1.0)
    with pytest.raises(ValueError):
        store.save_state_updates({"1x1x1": {"a": 2}, "2x2x2": {"b": float("nan")}}, at_s=2.0)
    assert store.load_states() == {"1x1x1": {"a": 1}}


@pytest.mark.parametrize("value", [7, 0.05, True, False, "aggressive", 0, -3])
def test_override_reads_back_its_json_type(store, value):
    got = store.set_override("min_fee_ppm", value, at_s=1.0)
    assert got == value and type(got) is type(value)
    assert store.get_overrides() == {"min_fee_ppm": value}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None, [1], {"a": 1}])
def test_override_refuses_non_scalars(store, value):
    with pytest.raises(ValueError):
        store.set_override("x", value, at_s=1.0)
    assert store.get_overrides() == {}


def test_override_replace_and_reset(store):
    store.set_override("a", 1, 1.0)
    store.set_override("b", "x", 1.0)
    assert store.set_override("a", 2.5, 2.0) == 2.5
    assert store.get_overrides() == {"a": 2.5, "b": "x"}
    assert store.reset_override("missing") == []
    assert store.reset_override("a") == ["a"]
    assert store.get_overrides() == {"b": "x"}
    store.set_override("c", True, 3.0)
    assert store.reset_override() == ["b", "c"]
    assert store.get_overrides() == {}


def test_meta(store):
    assert store.get_meta("last_fee_cycle") is None
    assert store.get_meta("last_maintenance_s", 0) == 0
    store.set_meta("last_fee_cycle", {"changed": 3, "at": 1.5})
    store.set_meta("last_maintenance_s", 123.0)
    store.set_meta("last_maintenance_s", 124.0)
    assert store.get_meta("last_fee_cycle") == {"changed": 3, "at": 1.5}
    assert store.get_meta("last_maintenance_s") == 124.0
