"""The simulated lightningd's RPC: shapes, filters, pagination, setchannel, errors, sling quirks.

Expected codes and messages are CLN's (cln-interfaces.md §2-§4; lightningd/peer_control.c,
forwards.c, configs.c, common/json_param.c; sling's rpc_sling.rs and parse.rs).
"""

from __future__ import annotations

import pytest

from revops.sim.errors import RpcError
from revops.sim.model_build import build_node
from revops.sim.model_channel import NORMAL, ONCHAIN
from revops.sim.rpc import SimRpc
from revops.sim.scenario import parse_scenario

SMALL = """
name: small
seed: 21
traffic: {payments_per_hour: 600}
channel_groups:
  - {name: a, count: 6, capacity_sat: [2000000, 4000000]}
  - {name: b, count: 2, channels_per_peer: 2}
"""


def small_node(**kw):
    return build_node(parse_scenario(SMALL, "small.yaml"), **kw)


@pytest.fixture(scope="module")
def ran():
    """A small node that has routed for six hours."""
    node = small_node()
    node.advance(6 * 3600)
    return node, SimRpc(node)


def err(rpc, method, params=None):
    with pytest.raises(RpcError) as e:
        rpc(method, params)
    return e.value.code, e.value.message


# -- generic -------------------------------------------------------------------------
def test_unknown_method_is_32601(ran):
    _, rpc = ran
    assert err(rpc, "frobnicate", {}) == (-32601, "Unknown command 'frobnicate'")


def test_param_binding_errors_match_lightningd(ran):
    _, rpc = ran
    assert err(rpc, "getinfo", ["x"]) == (-32602, "too many parameters: got 1, expected 0")
    code, msg = err(rpc, "listpeerchannels", {"peer": "x"})
    assert code == -32602 and msg.startswith("unknown parameter: peer, this may be caused")
    assert err(rpc, "feerates", {}) == (-32602, "missing required parameter: style")


def test_getinfo_counts(ran):
    node, rpc = ran
    gi = rpc("getinfo")
    assert gi["id"] == node.config.node_id
    assert gi["num_active_channels"] == 10
    assert gi["blockheight"] == node.chain.height
    assert gi["fees_collected_msat"] == node.fees_collected_msat > 0


# -- listpeerchannels ----------------------------------------------------------------
def test_listpeerchannels_filters(ran):
    node, rpc = ran
    chans = rpc("listpeerchannels")["channels"]
    assert len(chans) == 10
    two = [p for p in node.peers.values() if len(p.channels) == 2][0]
    assert len(rpc("listpeerchannels", {"id": two.node_id})["channels"]) == 2
    assert len(rpc("listpeerchannels", [two.node_id])["channels"]) == 2
    c = chans[3]
    assert rpc("listpeerchannels", {"short_channel_id": c["short_channel_id"]})["channels"] == [c]
    assert rpc("listpeerchannels", {"short_channel_id": c["alias"]["local"]})["channels"] == [c]
    assert rpc("listpeerchannels", {"channel_id": c["channel_id"]})["channels"] == [c]
    assert rpc("listpeerchannels", {"id": "02" + "11" * 32})["channels"] == []
    assert rpc("listpeerchannels", [None, "1x1x1"])["channels"] == []


def test_listpeerchannels_at_most_one_filter(ran):
    _, rpc = ran
    c = rpc("listpeerchannels")["channels"][0]
    code, _ = err(rpc, "listpeerchannels", {"id": c["peer_id"],
                                            "short_channel_id": c["short_channel_id"]})
    assert code == -32602
    code, _ = err(rpc, "listpeerchannels", [None, c["short_channel_id"], c["channel_id"]])
    assert code == -32602


def test_listpeerchannels_bad_values(ran):
    _, rpc = ran
    assert err(rpc, "listpeerchannels", {"id": "nope"}) == (
        -32602, "id: should be a node id: invalid token (see logs for details)")
    assert err(rpc, "listpeerchannels", {"short_channel_id": "1x2"}) == (
        -32602, "short_channel_id: should be a short_channel_id of form NxNxN: "
                "invalid token (see logs for details)")


def test_balances_are_consistent(ran):
    _, rpc = ran
    for c in rpc("listpeerchannels")["channels"]:
        assert 0 <= c["to_us_msat"] <= c["total_msat"]
        assert c["min_to_us_msat"] <= c["to_us_msat"] <= c["max_to_us_msat"]
        assert c["spendable_msat"] <= c["to_us_msat"]
        assert c["receivable_msat"] <= c["total_msat"] - c["to_us_msat"]
        assert c["updates"]["local"]["fee_proportional_millionths"] == \
            c["fee_proportional_millionths"]


# -- listforwards --------------------------------------------------------------------
def test_listforwards_optional_field_rules(ran):
    _, rpc = ran
    fws = rpc("listforwards")["forwards"]
    assert len(fws) > 500
    for f in fws:
        assert ("out_msat" in f) == ("fee_msat" in f)
        if "out_msat" in f:
            assert f["fee_msat"] == f["in_msat"] - f["out_msat"] and "out_channel" in f
        else:
            assert "out_htlc_id" not in f
        assert ("resolved_time" in f) == (f["status"] in ("settled", "failed"))
        if "failcode" in f or "failreason" in f:
            assert f["status"] in ("local_failed", "failed")
        if f["status"] == "local_failed":
            assert "failcode" in f and "failreason" in f and "updated_index" not in f
        if f["status"] == "offered":
            assert "updated_index" not in f


def test_listforwards_created_pagination(ran):
    _, rpc = ran
    every = rpc("listforwards")["forwards"]
    assert [f["created_index"] for f in every] == list(range(1, len(every) + 1))
    page = rpc("listforwards", {"index": "created", "start": 10, "limit": 7})["forwards"]
    assert [f["created_index"] for f in page] == list(range(10, 17))
    rebuilt, start = [], 1
    while True:
        page = rpc("listforwards", {"index": "created", "start": start, "limit": 100})["forwards"]
        if not page:
            break
        rebuilt += page
        start = page[-1]["created_index"] + 1
    assert rebuilt == every


def test_listforwards_updated_index(ran):
    _, rpc = ran
    resolved = [f for f in rpc("listforwards")["forwards"] if "updated_index" in f]
    ups = rpc("listforwards", {"index": "updated", "start": 1})["forwards"]
    assert [f["updated_index"] for f in ups] == list(range(1, len(resolved) + 1))
    times = [f["resolved_time"] for f in ups]
    assert times == sorted(times)
    # start=0 also lists the never-updated rows (updated_index 0), first
    zero = rpc("listforwards", {"index": "updated"})["forwards"]
    n_never = len(zero) - len(ups)
    assert all("updated_index" not in f for f in zero[:n_never]) and zero[n_never:] == ups
    tail = rpc("listforwards", {"index": "updated", "start": len(ups) - 2})["forwards"]
    assert len(tail) == 3


def test_listforwards_filters(ran):
    _, rpc = ran
    every = rpc("listforwards")["forwards"]
    scid = every[0]["in_channel"]
    got = rpc("listforwards", {"in_channel": scid})["forwards"]
    assert got == [f for f in every if f["in_channel"] == scid]
    got = rpc("listforwards", ["settled", None, scid])["forwards"]
    assert got == [f for f in every if f["status"] == "settled" and f.get("out_channel") == scid]
    assert rpc("listforwards", {"in_channel": "1x1x1"})["forwards"] == []


def test_listforwards_errors(ran):
    _, rpc = ran
    assert err(rpc, "listforwards", {"status": "done"}) == (
        -32602, "status: Unrecognized status: invalid token (see logs for details)")
    assert err(rpc, "listforwards", {"start": 3}) == (
        -32602, "Can only specify {start} with {index}")
    assert err(rpc, "listforwards", {"limit": 3}) == (
        -32602, "Can only specify {limit} with {index}")
    assert err(rpc, "listforwards", {"in_channel": "1x1x1", "index": "created", "start": 3}) \
        == (-32602, "Cannot use start with in_channel or out_channel")


# -- setchannel ----------------------------------------------------------------------
def test_setchannel_keyword_and_positional_update_immediately():
    node = small_node()
    rpc = SimRpc(node)
    c = rpc("listpeerchannels")["channels"][0]
    res = rpc("setchannel", {"id": c["short_channel_id"], "feebase": "2sat", "feeppm": 777})
    (entry,) = res["channels"]
    assert entry["fee_base_msat"] == 2000 and entry["fee_proportional_millionths"] == 777
    assert entry["short_channel_id"] == c["short_channel_id"]
    after = rpc("listpeerchannels", {"short_channel_id": c["short_channel_id"]})["channels"][0]
    assert after["fee_proportional_millionths"] == 777
    assert after["updates"]["local"]["fee_proportional_millionths"] == 777
    assert after["updates"]["local"]["fee_base_msat"] == 2000
    # positional: id feebase feeppm htlcmin htlcmax; omitted values are unchanged
    res = rpc("setchannel", [c["channel_id"], None, 5, "0.00001btc"])
    assert res["channels"][0]["fee_base_msat"] == 2000
    assert res["channels"][0]["fee_proportional_millionths"] == 5
    assert res["channels"][0]["minimum_htlc_out_msat"] == 1_000_000


def test_setchannel_by_peer_and_all():
    node = small_node()
    rpc = SimRpc(node)
    two = [p for p in node.peers.values() if len(p.channels) == 2][0]
    assert len(rpc("setchannel", [two.node_id, 0, 1])["channels"]) == 2
    res = rpc("setchannel", {"id": "all", "feeppm": 42})["channels"]
    assert len(res) == 10 and all(r["fee_proportional_millionths"] == 42 for r in res)
    assert all(c["fee_proportional_millionths"] == 42
               for c in rpc("listpeerchannels")["channels"])


def test_setchannel_htlc_limits_clamp_with_warnings():
    node = small_node()
    rpc = SimRpc(node)
    ch = node.normal_channels()[0]
    res = rpc("setchannel", {"id": ch.scid, "htlcmin": 1, "htlcmax": "21000000btc"})["channels"][0]
    assert res["minimum_htlc_out_msat"] == ch.r_htlc_min_msat
    assert res["warning_htlcmin_too_low"] == "Set minimum_htlc_out_msat to minimum allowed by peer"
    assert res["maximum_htlc_out_msat"] == ch.total_msat - ch.our_reserve_msat
    assert res["warning_htlcmax_too_high"] == \
        "Set maximum_htlc_out_msat to maximum possible in channel"
    assert err(rpc, "setchannel", [ch.scid, None, None, 5000, 4000]) == (
        -1, "htlcmax cannot be less than htlcmin")


def test_setchannel_errors():
    node = small_node()
    rpc = SimRpc(node)
    ch = node.normal_channels()[0]
    tail = ": invalid token (see logs for details)"
    assert err(rpc, "setchannel", {"id": "1x2x3"}) == (-32602, "id: Short channel id not found" + tail)
    assert err(rpc, "setchannel", {"id": "ab" * 32}) == (-32602, "id: Channel id not found" + tail)
    assert err(rpc, "setchannel", {"id": "garbage"}) == (
        -32602, "id: should be a channel ID or short channel ID" + tail)
    # an unknown *peer* id is not a channel id either
    assert err(rpc, "setchannel", {"id": "02" + "11" * 32})[0] == -32602
    assert err(rpc, "setchannel", {"feeppm": 1}) == (-32602, "missing required parameter: id")
    assert err(rpc, "setchannel", [ch.scid, 1, 2, 3, 4, 5, True, 8]) == (
        -32602, "too many parameters: got 8, expected 7")
    assert err(rpc, "setchannel", {"id": ch.scid, "feeppm": "lots"}) == (
        -32602, "feeppm: should be an integer" + tail)
    assert err(rpc, "setchannel", {"id": ch.scid, "feebase": 2**32}) == (
        -32602, "feebase: exceeds u32 max" + tail)
    assert err(rpc, "setchannel", {"id": ch.scid, "htlcmin": "12bits"}) == (
        -32602, "htlcmin: should be a millisatoshi amount" + tail)
    assert err(rpc, "setchannel", {"id": ch.scid, "ignorefeelimits": "maybe"}) == (
        -32602, "ignorefeelimits: should be 'true' or 'false'" + tail)


def test_setchannel_on_closing_channel():
    node = small_node()
    rpc = SimRpc(node)
    ch = node.normal_channels()[0]
    node.lifecycle.begin_close(node.now_s, (ch, "remote", True))
    node.advance(3 * 3600)
    assert ch.state == ONCHAIN
    tail = ": invalid token (see logs for details)"
    assert err(rpc, "setchannel", {"id": ch.scid}) == (-32602, "id: Channel in state ONCHAIN" + tail)
    # by channel_id lightningd only looks at channels still talking to the peer
    assert err(rpc, "setchannel", {"id": ch.channel_id}) == (-32602, "id: Channel id not found" + tail)
    if len(ch.peer.channels) == 1:
        assert err(rpc, "setchannel", {"id": ch.peer.node_id}) == (
            -1, "Could not find any active channels of peer with that id")
    assert all(r["short_channel_id"] != ch.scid
               for r in rpc("setchannel", {"id": "all"})["channels"])


def test_enforcedelay_keeps_old_fee_acceptable():
    node = small_node()
    rpc = SimRpc(node)
    ch = node.normal_channels()[0]
    rpc("setchannel", {"id": ch.scid, "feebase": 0, "feeppm": 100})
    rpc("setchannel", {"id": ch.scid, "feeppm": 1000, "enforcedelay": 300})
    assert ch.effective_fee_msat(1_000_000, node.now_s + 299) == 100
    assert ch.effective_fee_msat(1_000_000, node.now_s + 301) == 1000
    rpc("setchannel", {"id": ch.scid, "feeppm": 2000, "enforcedelay": 0})
    assert ch.effective_fee_msat(1_000_000, node.now_s + 1) == 2000


# -- other built-ins -----------------------------------------------------------------
def test_feerates_styles(ran):
    _, rpc = ran
    kw, kb = rpc("feerates", ["perkw"]), rpc("feerates", {"style": "perkb"})
    assert set(kw) == {"perkw", "onchain_fee_estimates"} and set(kb) == {"perkb",
                                                                         "onchain_fee_estimates"}
    assert kb["perkb"]["opening"] == 4 * kw["perkw"]["opening"]
    assert kw["perkw"]["floor"] == 253
    assert err(rpc, "feerates", {"style": "persat"}) == (
        -32602, "style: should be 'perkb' or 'perkw': invalid token (see logs for details)")


def test_listfunds_listpeers_listconfigs(ran):
    node, rpc = ran
    funds = rpc("listfunds")
    assert len(funds["channels"]) == 10 and funds["outputs"]
    assert all(o["status"] != "spent" for o in funds["outputs"])
    peers = rpc("listpeers")["peers"]
    assert {p["id"] for p in peers} == set(node.peers)
    assert all(p["num_channels"] >= 1 for p in peers)
    cfg = rpc("listconfigs")["configs"]
    assert cfg["fee-base"] == {"value_int": 1000, "source": cfg["fee-base"]["source"]}
    assert cfg["max-concurrent-htlcs"]["value_int"] == 30
    assert cfg["plugin"]["values_str"][0].endswith("/sling")
    assert rpc("listconfigs", ["fee-per-satoshi"]) == {"configs": {"fee-per-satoshi":
                                                                   cfg["fee-per-satoshi"]}}
    assert err(rpc, "listconfigs", {"config": "fee-rate"}) == (
        -32602, "config: Unknown config option: invalid token (see logs for details)")


def test_bookkeeper_accounts_are_channel_ids(ran):
    node, rpc = ran
    accounts = {e["account"] for e in rpc("bkpr-listaccountevents")["events"]}
    assert "wallet" in accounts
    assert {c.channel_id for c in node.channels} <= accounts
    apy = rpc("bkpr-channelsapy")["channels_apy"]
    assert all(r["apy_total"].endswith("%") and r["utilization_out"].endswith("%") for r in apy)
    routed = [e for e in rpc("bkpr-listincome")["income_events"] if e["tag"] == "routed"]
    assert sum(e["credit_msat"] for e in routed) == node.fees_collected_msat
    assert err(rpc, "bkpr-listaccountevents", ["nope"])[1] == "Account 'nope' not found"


# -- absent plugins ------------------------------------------------------------------
def test_absent_sling_and_bookkeeper_are_unknown_commands():
    node = small_node(sling=False, bookkeeper=False)
    rpc = SimRpc(node)
    assert node.plugins == []
    for m in ("sling-job", "sling-stats", "sling-version", "bkpr-listincome",
              "bkpr-channelsapy", "bkpr-listaccountevents"):
        assert err(rpc, m, {}) == (-32601, f"Unknown command '{m}'")
    assert rpc("listconfigs")["configs"]["plugin"]["values_str"] == []
    notes = node.advance(3600)
    assert not any(t in ("coin_movement", "balance_snapshot") for t, _ in notes)
    assert "sling-job" not in rpc.methods()


def test_plugin_paths_listed_when_present():
    node = small_node()
    assert [p.rsplit("/", 1)[1] for p in node.plugins] == ["bookkeeper", "sling"]
    assert all(p.startswith("/") for p in node.plugins)
    only_bk = small_node(sling=False)
    assert [p.rsplit("/", 1)[1] for p in only_bk.plugins] == ["bookkeeper"]
    assert "bkpr-listincome" in SimRpc(only_bk).methods()


# -- sling ---------------------------------------------------------------------------
def sling_err(rpc, method, params):
    code, msg = err(rpc, method, params)
    assert code == -32700
    return msg


def test_sling_job_validation():
    node = small_node()
    rpc = SimRpc(node)
    scid = node.normal_channels()[0].scid
    good = {"scid": scid, "direction": "pull", "amount": 100000, "maxppm": 500, "outppm": 200}
    assert sling_err(rpc, "sling-job", [scid, "pull", 100000, 500]) == \
        f'Invalid arguments: ["{scid}","pull",100000,500]'
    assert sling_err(rpc, "sling-job", {**good, "bogus": 1}) == "Invalid argument: bogus"
    assert sling_err(rpc, "sling-job", {k: v for k, v in good.items() if k != "scid"}) == \
        "Missing scid"
    assert sling_err(rpc, "sling-job", {k: v for k, v in good.items() if k != "outppm"}) == \
        "Atleast one of outppm and candidatelist must be set."
    assert sling_err(rpc, "sling-job", {**good, "amount": 0}) == "amount must be greater than 0"
    assert sling_err(rpc, "sling-job", {**good, "maxhops": 1}) == "maxhops must be atleast 2"
    assert sling_err(rpc, "sling-job", {**good, "depleteuptopercent": 1.0}) == \
        "depleteuptopercent must be between 0.0 and <1.0"
    assert sling_err(rpc, "sling-job", {**good, "scid": "1x1x1"}) == "Channel not found"
    assert rpc("sling-job", good) == {"result": "success"}
    other = node.normal_channels()[1].scid
    assert rpc("sling-job", {"scid": other, "direction": "push", "amount": 1000,
                             "maxppm": 10, "candidates": [scid]}) == {"result": "success"}
    assert sling_err(rpc, "sling-job", {"scid": node.normal_channels()[2].scid,
                                        "direction": "pull", "amount": 1000, "maxppm": 10,
                                        "candidates": [scid]}) == \
        f"candidate {scid} has a pull-job that rebalances in the other direction!"


def test_sling_go_stop_settings_and_version():
    node = small_node()
    rpc = SimRpc(node)
    assert sling_err(rpc, "sling-go", []) == "No jobs found"
    scid = node.normal_channels()[0].scid
    rpc("sling-job", {"scid": scid, "direction": "pull", "amount": 100000, "maxppm": 500,
                      "outppm": 200, "paralleljobs": 2, "target": 0.6})
    assert sling_err(rpc, "sling-go", [node.normal_channels()[1].scid]) == \
        "Shortchannelid not found in jobs"
    assert rpc("sling-go", {}) == {"tasks_started": 2, "tasks_failed_start:": 0}
    assert rpc("sling-go", [scid]) == {"tasks_started": 0, "tasks_failed_start:": 0}
    settings = rpc("sling-jobsettings", {})
    assert settings == {scid: {"sat_direction": "Pull", "amount_msat": 100_000_000,
                               "maxppm": 500, "outppm": 200, "target": 0.6,
                               "paralleljobs": 2}}
    assert rpc("sling-jobsettings", [scid]) == settings
    assert sling_err(rpc, "sling-jobsettings", [node.normal_channels()[1].scid]) == \
        "channel not found"
    assert rpc("sling-stop", [scid]) == {"stopped_count": 2}
    assert rpc("sling-version", {})["version"].startswith("v")
    assert rpc("sling-deletejob", {"job": scid}) == {"result": "success"}
    assert rpc("sling-jobsettings", []) == {}


def test_sling_stats_forms_after_rebalancing():
    node = small_node()
    rpc = SimRpc(node)
    ch = min(node.normal_channels(), key=lambda c: c.to_us_msat / c.total_msat)
    before = ch.to_us_msat
    rpc("sling-job", {"scid": ch.scid, "direction": "pull", "amount": 50000, "maxppm": 5000,
                      "outppm": 100000, "target": 0.9})
    rpc("sling-go", [])
    node.advance(4 * 3600)
    assert ch.to_us_msat > before
    rows = rpc("sling-stats", [True])
    (row,) = rows
    assert row["scid"] == ch.scid and row["pubkey"] == ch.peer.node_id
    assert all(":" in s and s.split(":")[0].isdigit() for s in row["status"])
    assert "," in row["rebamount"] or row["rebamount"].isdigit()
    assert int(row["rebamount"].replace(",", "")) > 0
    assert row["last_success_reb"] != "Never"
    text = rpc("sling-stats", {})
    assert text["format-hint"] == "simple" and ch.scid in text["result"]
    detail = rpc("sling-stats", {"scid": ch.scid, "json": True})
    s = detail["successes_in_time_window"]
    assert s["total_rebalances"] > 0 and s["feeppm_min"] <= s["feeppm_median"] <= s["feeppm_max"]
    assert s["time_window_days"] == "30"
    assert set(detail) == {"successes_in_time_window", "failures_in_time_window"}
    events = rpc("bkpr-listaccountevents", [ch.channel_id])["events"]
    assert any(e.get("is_rebalance") and e["credit_msat"] for e in events)


def test_sling_cheap_maxppm_finds_no_route():
    node = small_node()
    rpc = SimRpc(node)
    # the channel with the most room to pull into, so the job never reads "Balanced"
    ch = max(node.normal_channels(), key=lambda c: c.receivable_msat())
    rpc("sling-job", {"scid": ch.scid, "direction": "pull", "amount": 50000, "maxppm": 1,
                      "outppm": 100000, "target": 0.99})
    rpc("sling-go", [])
    node.advance(3600)
    (row,) = rpc("sling-stats", [True])
    assert row["status"] == ["1:NoCheapRoute"] and row["rebamount"] == "0"
    assert rpc("sling-stats", [ch.scid, True]) == {"successes_in_time_window": None,
                                                   "failures_in_time_window": None}
    assert not node.sling.successes


def test_sling_excepts():
    node = small_node()
    rpc = SimRpc(node)
    assert rpc("sling-except-chan", ["list"]) == []
    assert rpc("sling-except-chan", {"command": "add", "scid": "700000x1x1"}) == \
        {"result": "success"}
    assert rpc("sling-except-chan", ["list"]) == ["700000x1x1"]
    assert sling_err(rpc, "sling-except-chan", ["add", "700000x1x1"]) == \
        "700000x1x1 is already in excepts"
    assert rpc("sling-except-chan", ["remove", "700000x1x1"]) == {"result": "success"}
    assert sling_err(rpc, "sling-except-chan", ["remove", "700000x1x1"]) == \
        "short_channel_id 700000x1x1 not in excepts, nothing to remove"
    assert sling_err(rpc, "sling-except-chan", ["add", node.normal_channels()[0].scid])
    pk = "02" + "33" * 32
    assert rpc("sling-except-peer", ["add", pk]) == {"result": "success"}
    assert rpc("sling-except-peer", {"command": "list"}) == [pk]
    assert sling_err(rpc, "sling-except-peer", ["add", node.config.node_id]) == \
        "Can't exclude yourself"


def test_msat_strings_are_accepted():
    from revops.sim.model_params import parse_msat
    assert parse_msat(1234) == 1234
    assert parse_msat("1234msat") == 1234
    assert parse_msat("1000sat") == 1_000_000
    assert parse_msat("1.500sat") == 1500
    assert parse_msat("0.001btc") == 100_000_000
    assert parse_msat("1btc") == 100_000_000_000
    for bad in ("-1", "1.5msat", "abc", True, -5, "1.5btcx"):
        assert parse_msat(bad) is None


def test_normal_channels_only_in_market(ran):
    node, _ = ran
    assert all(c.state == NORMAL for c in node.market._out)
