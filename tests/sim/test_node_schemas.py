"""Every RPC response and notification the simulated node produces matches CLN's schemas.

Schemas are CLN's own (tests/data/cln-schemas, copied from doc/schemas v26.06). The validator
is JSON Schema Draft 7 with CLN's custom types, written after pyln-testing's
`_extra_validator(is_request=False)`: in responses an msat is a plain non-negative integer.
The model runs a "kitchen sink" scenario for a simulated day and a half (flapping, floods,
opens, closes, forgets, mempool shock, sling rebalances, fee changes) and every output is
checked, including notification payloads by topic.
"""

from __future__ import annotations

from collections import Counter

import pytest

from revops.sim.model_build import build_node
from revops.sim.rpc import SimRpc
from revops.sim.scenario import parse_scenario
from tests.cln_schema import SCHEMA_DIR, _load, check

RPC_SCHEMAS = ["getinfo", "listpeerchannels", "listforwards", "setchannel", "feerates",
               "listfunds", "listpeers", "listclosedchannels", "listconfigs",
               "bkpr-listincome", "bkpr-listaccountevents", "bkpr-channelsapy"]
TOPICS = ["forward_event", "connect", "disconnect", "channel_opened", "channel_state_changed",
          "block_added", "coin_movement", "balance_snapshot"]


# -- the schema files themselves ------------------------------------------------------
@pytest.mark.parametrize("name", RPC_SCHEMAS)
def test_rpc_schema_files_carry_request_and_response(name):
    doc = _load(name)
    assert doc["rpc"] == name
    # CLN's descriptions are arrays of lines, so the Draft 7 metaschema does not apply;
    # check the parts we rely on instead
    assert isinstance(doc["request"], dict) and isinstance(doc["response"], dict)
    assert doc["response"].get("properties")


@pytest.mark.parametrize("topic", TOPICS)
def test_notification_schema_files_carry_response(topic):
    doc = _load(f"notification/{topic}")
    assert doc["notification"] == topic
    assert isinstance(doc["response"], dict) and doc["response"].get("properties")


def test_licence_and_readme_are_copied():
    assert (SCHEMA_DIR / "LICENSE").read_text().strip()
    assert "doc/schemas" in (SCHEMA_DIR / "README.md").read_text()


def test_validator_rejects_what_cln_would_not_return():
    # the old "123msat" strings, bad scids and short pubkeys are all errors in responses
    with pytest.raises(pytest.fail.Exception):
        check("getinfo", {**_minimal_getinfo(), "fees_collected_msat": "123msat"})
    with pytest.raises(pytest.fail.Exception):
        check("notification/forward_event", {"payment_hash": "00" * 32, "in_channel": "1x2",
                                             "in_msat": 1, "status": "offered",
                                             "received_time": 1.0})
    with pytest.raises(pytest.fail.Exception):
        check("notification/disconnect", {"id": "02abc"})
    check("getinfo", _minimal_getinfo())


def _minimal_getinfo() -> dict:
    return {"id": "02" + "ab" * 32, "alias": "x", "color": "000000", "num_peers": 0,
            "num_pending_channels": 0, "num_active_channels": 0, "num_inactive_channels": 0,
            "version": "v25.12", "blockheight": 1, "network": "regtest",
            "fees_collected_msat": 0, "lightning-dir": "/x", "address": []}


# -- a day and a half of everything --------------------------------------------------
KITCHEN_SINK = """
name: kitchen-sink
seed: 3
traffic: {payments_per_hour: 400}
mempool:
  shock_rate_per_week: 3
  shocks: [{at_day: 0.5, multiplier: 8, duration_h: 6}]
lifecycle: {opens_per_week: 20, closes_per_week: 14, force_close_fraction: 0.5}
new_channels: {opener: remote, capacity_sat: [1000000, 3000000]}
channel_groups:
  - {name: core, count: 12, capacity_sat: [2000000, 8000000]}
  - {name: local-open, count: 4, opener: local}
  - {name: flappy, count: 4, mean_up_h: 3, mean_down_h: 0.3}
  - {name: flood, count: 2, flood_per_hour: 300, flood_hold_s: 300}
  - {name: narrow, count: 3, max_accepted_htlcs: 5}
  - {name: dead, count: 2, dead: true}
  - {name: dying, count: 3, close_after_days: [0.05, 0.2]}
"""


@pytest.fixture(scope="module")
def run():
    """Run the kitchen-sink model; return (rpc, notifications, mid-run listpeerchannels)."""
    node = build_node(parse_scenario(KITCHEN_SINK, "kitchen-sink.yaml"))
    rpc = SimRpc(node)
    scids = [c.scid for c in node.normal_channels()]
    rpc("sling-job", {"scid": scids[0], "direction": "pull", "amount": 50000,
                      "maxppm": 2000, "outppm": 5000})
    rpc("sling-job", {"scid": scids[1], "direction": "push", "amount": 50000,
                      "maxppm": 2000, "candidates": scids[2:6], "target": 0.7})
    rpc("sling-go", {})
    notes = list(node.advance(3 * 3600))
    mid = rpc("listpeerchannels", {})
    rpc("setchannel", {"id": "all", "feeppm": 500, "enforcedelay": 0})
    notes += node.advance(33 * 3600)
    return node, rpc, notes, mid


def test_every_notification_matches_its_schema(run):
    _, _, notes, _ = run
    seen = Counter()
    for topic, payload in notes:
        check(f"notification/{topic}", payload)
        seen[topic] += 1
    assert set(seen) == set(TOPICS), f"topics never produced: {set(TOPICS) - set(seen)}"


def test_forward_events_come_in_offered_then_resolved_pairs(run):
    _, _, notes, _ = run
    offered, statuses = {}, Counter()
    for topic, p in notes:
        if topic != "forward_event":
            continue
        statuses[p["status"]] += 1
        if p["status"] == "offered":
            assert "created_index" in p and "resolved_time" not in p
            offered[p["payment_hash"]] = p
        elif p["status"] in ("settled", "failed"):
            first = offered.pop(p["payment_hash"], None)
            assert first is not None, "resolution without an offered event"
            assert "updated_index" in p and "created_index" not in p
            assert p["resolved_time"] >= p["received_time"]
            assert first["in_channel"] == p["in_channel"]
        else:  # local_failed: a single event, nothing went out
            assert "created_index" in p and "out_msat" not in p and "failcode" in p
    assert set(statuses) == {"offered", "settled", "failed", "local_failed"}


def test_rpc_responses_match_schemas(run):
    node, rpc, _, mid = run
    check("listpeerchannels", mid)
    assert any(c["htlcs"] for c in mid["channels"]), "no HTLC was in flight mid-run"
    check("getinfo", rpc("getinfo"))
    lpc = rpc("listpeerchannels")
    check("listpeerchannels", lpc)
    states = {c["state"] for c in lpc["channels"]}
    assert "CHANNELD_NORMAL" in states and len(states) > 1
    some = lpc["channels"][0]
    check("listpeerchannels", rpc("listpeerchannels", {"id": some["peer_id"]}))
    check("listpeerchannels", rpc("listpeerchannels", {"channel_id": some["channel_id"]}))
    fw = rpc("listforwards")
    check("listforwards", fw)
    assert {f["status"] for f in fw["forwards"]} == {"offered", "settled", "failed",
                                                      "local_failed"}
    assert any(f.get("failcode") == 4108 for f in fw["forwards"]), "no stale-gossip 4108"
    check("listforwards", rpc("listforwards", {"index": "updated", "start": 5, "limit": 50}))
    check("listforwards", rpc("listforwards", {"status": "local_failed"}))
    scid = next(c for c in node.normal_channels()).scid
    check("setchannel", rpc("setchannel", [scid, 10, 20, "1sat", "0.01btc"]))
    check("setchannel", rpc("setchannel", {"id": scid, "htlcmin": 0, "htlcmax": 10**15}))
    for style in ("perkw", "perkb"):
        check("feerates", rpc("feerates", {"style": style}))
    check("listfunds", rpc("listfunds"))
    check("listfunds", rpc("listfunds", {"spent": True}))
    check("listpeers", rpc("listpeers"))
    closed = rpc("listclosedchannels")
    check("listclosedchannels", closed)
    assert closed["closedchannels"], "no channel was forgotten"
    check("listconfigs", rpc("listconfigs"))
    check("listconfigs", rpc("listconfigs", {"config": "fee-per-satoshi"}))
    income = rpc("bkpr-listincome")
    check("bkpr-listincome", income)
    assert {"routed", "rebalance_fee", "onchain_fee"} <= {e["tag"] for e in
                                                          income["income_events"]}
    events = rpc("bkpr-listaccountevents")
    check("bkpr-listaccountevents", events)
    assert any(e.get("is_rebalance") for e in events["events"])
    check("bkpr-listaccountevents", rpc("bkpr-listaccountevents", [some["channel_id"]]))
    apy = rpc("bkpr-channelsapy")
    check("bkpr-channelsapy", apy)
    assert apy["channels_apy"][-1]["account"] == "net"
