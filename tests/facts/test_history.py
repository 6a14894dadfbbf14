"""History facts: node.now_s, peer uptime, fee-change history, feerate averages and shock."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from revops.diagnostics import DiagnosticError
from revops.facts.build import build_facts, missing_facts
from revops.facts.history import (EMPTY_HISTORY, ChannelFeeHistory, FeerateSample, History,
                                  PeerUptime, feerate_averages, history_from_json,
                                  history_to_json)
from revops.facts.registry import FACTS, NEVER_S
from revops.facts.snapshot import parse_snapshot, snapshot_to_json

NOW = 1_767_225_600.0
HISTORY_FACTS = ("node.now_s", "node.fee_updates_24h", "peer.uptime_ratio_7d",
                 "peer.disconnects_7d", "peer.uptime_known_s_7d", "channel.fee_updates_24h",
                 "channel.last_fee_change_age_s", "market.opening_feerate_ma_24h_perkw",
                 "market.opening_feerate_ma_7d_perkw", "market.feerate_shock_ratio")


def rpc(opening: int | None = 2500) -> dict:
    chans = [{"peer_id": "02aa", "state": "CHANNELD_NORMAL", "short_channel_id": "800000x1x0",
              "peer_connected": True, "total_msat": 1_000_000_000, "to_us_msat": 500_000_000},
             {"peer_id": "02aa", "state": "CHANNELD_NORMAL", "short_channel_id": "800000x2x0",
              "peer_connected": True, "total_msat": 1_000_000_000, "to_us_msat": 500_000_000},
             {"peer_id": "02bb", "state": "CHANNELD_NORMAL", "short_channel_id": "800000x3x0",
              "peer_connected": False, "total_msat": 1_000_000_000, "to_us_msat": 500_000_000}]
    return {"getinfo": {"id": "03me", "blockheight": 900_000},
            "listpeerchannels": {"channels": chans}, "listforwards": {"forwards": []},
            "feerates": {"perkw": {"opening": opening}} if opening is not None else {},
            "listfunds": {"outputs": []}, "listpeers": {"peers": []}}


def history(**kw) -> History:
    base = dict(
        as_of_s=NOW,
        peers=MappingProxyType({"02aa": PeerUptime(0.75, 3, 86_400.0)}),
        channels=MappingProxyType({"800000x1x0": ChannelFeeHistory(2, NOW - 3600),
                                   "899999x9x9": ChannelFeeHistory(1, NOW - 60)}),  # closed
        node_fee_updates_24h=3,
        feerates=(FeerateSample(NOW - 6 * 86_400, 1000), FeerateSample(NOW - 7200, 2000),
                  FeerateSample(NOW - 3600, 3000)),
    )
    base.update(kw)
    return History(**base)


def by_scid(facts) -> dict:
    return {f.scid: f.values for f in facts}


def test_history_facts_are_registered_with_types():
    for name in HISTORY_FACTS:
        assert FACTS[name].type == "number", name


def test_neutral_defaults_without_history():
    for hist in (None, EMPTY_HISTORY):
        facts = by_scid(build_facts(rpc(), NOW, history=hist))
        for v in facts.values():
            assert missing_facts(v) == []
            assert v["node.now_s"] == NOW
            assert v["node.fee_updates_24h"] == 0
            assert (v["peer.uptime_ratio_7d"], v["peer.disconnects_7d"],
                    v["peer.uptime_known_s_7d"]) == (1.0, 0, 0.0)
            assert v["channel.fee_updates_24h"] == 0
            assert v["channel.last_fee_change_age_s"] == NEVER_S
            assert v["market.opening_feerate_ma_24h_perkw"] == 2500
            assert v["market.opening_feerate_ma_7d_perkw"] == 2500
            assert v["market.feerate_shock_ratio"] == 1.0


def test_peer_uptime_facts_per_peer():
    facts = by_scid(build_facts(rpc(), NOW, history=history()))
    for scid in ("800000x1x0", "800000x2x0"):  # both channels of 02aa
        v = facts[scid]
        assert (v["peer.uptime_ratio_7d"], v["peer.disconnects_7d"],
                v["peer.uptime_known_s_7d"]) == (0.75, 3, 86_400.0)
    v = facts["800000x3x0"]  # 02bb: no events
    assert (v["peer.uptime_ratio_7d"], v["peer.disconnects_7d"], v["peer.uptime_known_s_7d"]) \
        == (1.0, 0, 0.0)


def test_fee_change_facts():
    facts = by_scid(build_facts(rpc(), NOW, history=history()))
    assert facts["800000x1x0"]["channel.fee_updates_24h"] == 2
    assert facts["800000x1x0"]["channel.last_fee_change_age_s"] == 3600
    assert facts["800000x2x0"]["channel.fee_updates_24h"] == 0
    assert facts["800000x2x0"]["channel.last_fee_change_age_s"] == NEVER_S
    # node count includes changes of channels no longer listed
    assert all(v["node.fee_updates_24h"] == 3 for v in facts.values())
    # the age follows now; a change "in the future" (clock skew) is age 0; clamped at NEVER_S
    later = by_scid(build_facts(rpc(), NOW + 100, history=history()))
    assert later["800000x1x0"]["channel.last_fee_change_age_s"] == 3700
    h = history(channels=MappingProxyType({"800000x1x0": ChannelFeeHistory(0, NOW + 50),
                                           "800000x2x0": ChannelFeeHistory(0, 0.0)}))
    f = by_scid(build_facts(rpc(), NOW, history=h))
    assert f["800000x1x0"]["channel.last_fee_change_age_s"] == 0.0
    assert f["800000x2x0"]["channel.last_fee_change_age_s"] == NEVER_S


def test_feerate_moving_averages_and_shock():
    v = build_facts(rpc(5000), NOW, history=history())[0].values
    assert v["market.opening_feerate_ma_24h_perkw"] == 2500        # (2000 + 3000) / 2
    assert v["market.opening_feerate_ma_7d_perkw"] == 2000         # (1000 + 2000 + 3000) / 3
    assert v["market.feerate_shock_ratio"] == 2.5                  # 5000 / 2000
    # window bounds: now - w < at_s <= now
    s = (FeerateSample(NOW - 86_400, 100), FeerateSample(NOW - 86_399, 300),
         FeerateSample(NOW + 1, 999_999))
    assert feerate_averages(s, NOW) == {"24h": 300, "7d": 200}
    # only samples older than 7 d: like none
    old = history(feerates=(FeerateSample(NOW - 8 * 86_400, 9000),))
    v = build_facts(rpc(4000), NOW, history=old)[0].values
    assert (v["market.opening_feerate_ma_7d_perkw"], v["market.feerate_shock_ratio"]) == (4000, 1.0)
    # 24 h empty, 7 d not: the 24 h average falls back to the current rate
    mid = history(feerates=(FeerateSample(NOW - 3 * 86_400, 1000),))
    v = build_facts(rpc(3000), NOW, history=mid)[0].values
    assert v["market.opening_feerate_ma_24h_perkw"] == 3000
    assert v["market.feerate_shock_ratio"] == 3.0


def test_feerates_unknown_uses_the_floor_as_current():
    v = build_facts(rpc(None), NOW, history=history())[0].values
    assert v["market.opening_feerate_perkw"] == 253
    assert v["market.feerate_shock_ratio"] == 253 / 2000


def test_existing_facts_unchanged_by_history():
    plain = by_scid(build_facts(rpc(), NOW))
    with_h = by_scid(build_facts(rpc(), NOW, history=history()))
    for scid, v in plain.items():
        for name, value in v.items():
            if name not in HISTORY_FACTS:
                assert with_h[scid][name] == value, name


def test_json_round_trip():
    h = history()
    doc = json.loads(json.dumps(history_to_json(h)))
    assert history_from_json(doc) == h
    assert history_from_json({"as_of_s": 5}) == History(as_of_s=5)


SNAP = {"format": "revops-snapshot/1", "captured_at": NOW, "rpc": rpc()}


def test_snapshot_round_trip_with_history():
    doc = {**SNAP, "history": history_to_json(history())}
    s = parse_snapshot(json.dumps(doc, indent=1), "snap.json")
    assert s.history == history()
    again = parse_snapshot(json.dumps(snapshot_to_json(s)), "again.json")
    assert again.history == s.history
    assert by_scid(build_facts(s.rpc, s.captured_at, history=s.history)) == \
        by_scid(build_facts(rpc(), NOW, history=history()))


def test_snapshot_without_history_loads_with_defaults():
    s = parse_snapshot(json.dumps(SNAP), "snap.json")
    assert s.history is None
    assert "history" not in snapshot_to_json(s)
    v = build_facts(s.rpc, s.captured_at, history=s.history)[0].values
    assert v["peer.uptime_ratio_7d"] == 1.0 and v["market.feerate_shock_ratio"] == 1.0


@pytest.mark.parametrize("patch, fragment", [
    ({"history": []}, "history must be an object, got array"),
    ({"history": {}}, 'missing required key "as_of_s" in history'),
    ({"history": {"as_of_s": 1, "peer": {}}}, 'unknown key "peer" in history'),
    ({"history": {"as_of_s": -1}}, "history.as_of_s must be >= 0"),
    ({"history": {"as_of_s": 1, "peers": {"02aa": {"uptime_ratio": 1.5, "disconnects": 0,
                                                    "known_s": 0}}}},
     "history.peers.02aa.uptime_ratio must be within 0..1, got 1.5"),
    ({"history": {"as_of_s": 1, "peers": {"02aa": {"uptime_ratio": 1, "disconnects": 0.5,
                                                    "known_s": 0}}}},
     "history.peers.02aa.disconnects must be an integer, got number"),
    ({"history": {"as_of_s": 1, "peers": {"02aa": {"uptime_ratio": 1, "disconnects": 0}}}},
     'missing required key "known_s" in history.peers.02aa'),
    ({"history": {"as_of_s": 1, "channels": {"1x1x1": {"fee_updates_24h": -2,
                                                        "last_fee_change_s": 0}}}},
     "history.channels.1x1x1.fee_updates_24h must be >= 0"),
    ({"history": {"as_of_s": 1, "node": {"fee_updates_24h": "3"}}},
     "history.node.fee_updates_24h must be an integer, got string"),
    ({"history": {"as_of_s": 1, "feerates": [{"at_s": 1, "opening_perkw": 2500, "x": 1}]}},
     'unknown key "x" in history.feerates[0]'),
    ({"history": {"as_of_s": 1, "feerates": [{"at_s": 1}]}},
     'missing required key "opening_perkw" in history.feerates[0]'),
])
def test_history_errors_are_located(patch, fragment):
    text = json.dumps({**SNAP, **patch}, indent=1)
    with pytest.raises(DiagnosticError) as ei:
        parse_snapshot(text, "snap.json")
    diags = ei.value.diagnostics
    assert [d.code for d in diags] == ["snapshot_error"]
    d = diags[0]
    assert fragment in d.message, d.message
    assert d.line > 1  # points into the history object, not at the top
    line = text.splitlines()[d.line - 1]
    assert line.strip()  # a real position in the file
