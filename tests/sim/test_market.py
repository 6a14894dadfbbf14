"""The market model: determinism, price elasticity, liquidity and slot failures, flapping,
channel lifecycle, mempool shocks, stale-gossip fee failures, speed."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter

from revops.sim.model_build import build_node
from revops.sim.model_channel import NORMAL
from revops.sim.rpc import SimRpc
from revops.sim.scenario import parse_scenario

BASE = """
name: t
seed: {seed}
traffic: {{payments_per_hour: {pph}}}
channel_groups:
{groups}
"""


def node_for(groups: str, seed: int = 1, pph: int = 600, **kw):
    text = BASE.format(seed=seed, pph=pph, groups=groups)
    return build_node(parse_scenario(text, "t.yaml"), **kw)


PLAIN = "  - {name: p, count: 12, capacity_sat: [3000000, 6000000], ref_fee_ppm: 300}"


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def test_same_seed_same_everything():
    runs = []
    for _ in range(2):
        node = node_for(PLAIN, seed=5)
        rpc = SimRpc(node)
        notes = node.advance(6 * 3600)
        runs.append((digest(rpc("listforwards")), digest([tuple(n) for n in notes]),
                     digest(rpc("listpeerchannels"))))
    assert runs[0] == runs[1]
    other = node_for(PLAIN, seed=6)
    other.advance(6 * 3600)
    assert digest(SimRpc(other)("listforwards")) != runs[0][0]


def test_rpc_reads_do_not_perturb_the_model():
    a, b = node_for(PLAIN, seed=9), node_for(PLAIN, seed=9)
    rpc_b = SimRpc(b)
    a.advance(4 * 3600)
    for _ in range(4):
        b.advance(3600)
        rpc_b("listpeerchannels")
        rpc_b("feerates", ["perkw"])
    assert digest(SimRpc(a)("listforwards")) == digest(rpc_b("listforwards"))


def _settled(node) -> int:
    return sum(1 for f in SimRpc(node)("listforwards", {"status": "settled"})["forwards"])


def test_higher_fee_fewer_forwards():
    """Elasticity: the same market at 3 fee levels; settled forwards fall as fees rise."""
    counts = []
    for ppm in (50, 300, 1500):
        node = node_for(PLAIN, seed=3)
        SimRpc(node)("setchannel", {"id": "all", "feebase": 0, "feeppm": ppm})
        node.advance(12 * 3600)
        counts.append(_settled(node))
    assert counts[0] > counts[1] > counts[2]
    assert counts[0] > 3 * counts[2]


def test_sink_drains_then_fails_with_temporary_channel_failure():
    groups = ("  - {name: sink, count: 2, local_ratio: 0.3, demand_out: 20, demand_in: 0.01,"
              " capacity_sat: 2000000, ref_fee_ppm: 2000}\n" + PLAIN)
    node = node_for(groups, seed=4)
    sinks = [c for c in node.channels if c.peer.alias.startswith("sink")]
    node.advance(24 * 3600)
    fw = SimRpc(node)("listforwards")["forwards"]
    sink_scids = {c.scid for c in sinks}
    fails = [f for f in fw if f["status"] == "local_failed" and f.get("out_channel") in sink_scids]
    assert fails and all(f["failcode"] == 4103 and
                         f["failreason"] == "WIRE_TEMPORARY_CHANNEL_FAILURE" for f in fails)
    assert all("out_msat" not in f and "resolved_time" not in f for f in fails)
    for c in sinks:     # drained down to (roughly) the reserve
        assert c.spendable_msat() < 0.05 * c.total_msat


def test_flapping_peers_alternate_connect_disconnect_and_show_offline():
    groups = PLAIN + "\n  - {name: flap, count: 3, mean_up_h: 1, mean_down_h: 0.5, demand_out: 4}"
    node = node_for(groups, seed=8)
    rpc = SimRpc(node)
    flappy = {p.node_id: p for p in node.peers.values() if p.alias.startswith("flap")}
    state = {pid: True for pid in flappy}
    saw_offline_view = False
    for _ in range(48):
        for topic, p in node.advance(600):
            if topic in ("connect", "disconnect") and p["id"] in flappy:
                up = topic == "connect"
                assert state[p["id"]] != up, "connect/disconnect must alternate"
                state[p["id"]] = up
        for pid, peer in flappy.items():
            assert peer.connected == state[pid]
            if not peer.connected:
                chans = rpc("listpeerchannels", {"id": pid})["channels"]
                assert all(c["peer_connected"] is False and "reestablished" not in c
                           for c in chans)
                saw_offline_view = True
    assert saw_offline_view


def test_no_forward_arrives_from_a_disconnected_peer():
    groups = PLAIN + "\n  - {name: down, count: 2, demand_in: 5, mean_up_h: 0.5, mean_down_h: 2}"
    node = node_for(groups, seed=12)
    flips: list[tuple[str, float, bool]] = []
    real_connect, real_disconnect = node.connect_peer, node.disconnect_peer

    def connect(peer, now, direction="out"):
        flips.append((peer.node_id, now, True))
        real_connect(peer, now, direction)

    def disconnect(peer, now):
        flips.append((peer.node_id, now, False))
        real_disconnect(peer, now)

    node.connect_peer, node.disconnect_peer = connect, disconnect
    node.advance(12 * 3600)
    downs: dict[str, list[tuple[float, float]]] = {}
    open_at: dict[str, float] = {}
    for pid, t, up in flips:
        if up and pid in open_at:
            downs.setdefault(pid, []).append((open_at.pop(pid), t))
        elif not up:
            open_at[pid] = t
    for pid, t in open_at.items():
        downs.setdefault(pid, []).append((t, node.now_s))
    assert downs, "the peers never went down"
    scid_peer = {c.scid: c.peer.node_id for c in node.channels}
    fw = SimRpc(node)("listforwards")["forwards"]
    checked = 0
    for f in fw:
        for lo, hi in downs.get(scid_peer[f["in_channel"]], ()):
            assert not lo < f["received_time"] < hi
            checked += 1
    assert checked


def test_disconnected_out_peer_fails_forwards_locally():
    node = node_for(PLAIN, seed=2)
    target = node.normal_channels()[0]
    node.disconnect_peer(target.peer, node.now_s)
    node.advance(6 * 3600)
    fw = SimRpc(node)("listforwards", {"out_channel": target.scid})["forwards"]
    assert fw and all(f["status"] == "local_failed" and f["failcode"] == 4103 for f in fw)
    assert not SimRpc(node)("listforwards", {"in_channel": target.scid})["forwards"]


def test_htlc_slots_fill_and_show_in_listpeerchannels():
    groups = ("  - {name: flood, count: 2, flood_per_hour: 2000, flood_hold_s: 900}\n"
              "  - {name: narrow, count: 6, max_accepted_htlcs: 4, demand_out: 3}")
    node = node_for(groups, seed=6, pph=300)
    rpc = SimRpc(node)
    flood_ids = {p.node_id for p in node.peers.values() if p.alias.startswith("flood")}
    full_in = []
    # look every 10 minutes for 2 hours (HTLCs resolve all the time, so a slot frees now and then)
    for _ in range(12):
        node.advance(600)
        chans = rpc("listpeerchannels")["channels"]
        for c in chans:
            ins = [h for h in c["htlcs"] if h["direction"] == "in"]
            outs = [h for h in c["htlcs"] if h["direction"] == "out"]
            assert len(ins) <= c["max_accepted_htlcs"]
            if c["peer_id"] not in flood_ids:
                assert len(outs) <= 4
        full_in += [c for c in chans if c["peer_id"] in flood_ids
                    and sum(h["direction"] == "in" for h in c["htlcs"]) == c["max_accepted_htlcs"]]
    assert full_in, "the flood never filled a channel's slots"
    dust = [h for c in chans for h in c["htlcs"] if h["amount_msat"] < 546_000]
    assert dust and all(h["local_trimmed"] for h in dust)
    fw = rpc("listforwards", {"status": "local_failed"})["forwards"]
    assert any(f["failcode"] == 4103 for f in fw)


def test_fee_increase_gives_fee_insufficient_only_without_enforcedelay():
    results = {}
    for delay in (0, 3600):
        node = node_for(PLAIN, seed=14)
        node.advance(3600)
        SimRpc(node)("setchannel", {"id": "all", "feebase": 0, "feeppm": 600,
                                    "enforcedelay": delay})
        node.advance(1800)
        fw = SimRpc(node)("listforwards", {"status": "local_failed"})["forwards"]
        results[delay] = sum(1 for f in fw if f["failcode"] == 4108)
    assert results[0] > 0 and results[3600] == 0


def test_remote_force_close_lifecycle():
    node = node_for(PLAIN + "\n  - {name: dying, count: 1, close_after_days: 0.1}", seed=10)
    rpc = SimRpc(node)
    dying = [c for c in node.channels if c.peer.alias.startswith("dying")][0]
    changes = []
    for _ in range(30):
        for topic, p in node.advance(3600):
            if topic == "channel_state_changed" and p["channel_id"] == dying.channel_id:
                changes.append((p.get("old_state"), p["new_state"], p["cause"]))
    assert [c[1] for c in changes] == ["FUNDING_SPEND_SEEN", "ONCHAIN", "CLOSED"]
    assert changes[0][0] == NORMAL
    closed = rpc("listclosedchannels")["closedchannels"]
    assert [c["channel_id"] for c in closed] == [dying.channel_id]
    assert closed[0]["closer"] == "remote"
    assert dying.channel_id not in {c["channel_id"] for c in rpc("listpeerchannels")["channels"]}
    income = rpc("bkpr-listaccountevents", [dying.channel_id])["events"]
    assert any(e["tag"] == "channel_close" for e in income)


def test_random_opens_announce_and_lock_in():
    text = BASE.format(seed=2, pph=100, groups=PLAIN) + \
        "lifecycle: {opens_per_week: 40}\nnew_channels: {opener: remote}\n"
    node = build_node(parse_scenario(text, "t.yaml"))
    start = len(node.channels)
    notes = node.advance(24 * 3600)
    opened = [p for t, p in notes if t == "channel_opened"]
    assert opened and all(p["channel_ready"] is False for p in opened)
    firsts = [p for t, p in notes if t == "channel_state_changed" and "old_state" not in p]
    assert len(firsts) == len(opened)
    assert all(p["new_state"] == "CHANNELD_AWAITING_LOCKIN" for p in firsts)
    normal = [c for c in node.channels[start:] if c.state == NORMAL]
    assert normal and all(c.scid for c in normal)


def test_mempool_shock_raises_feerates():
    text = BASE.format(seed=2, pph=10, groups=PLAIN) + \
        "mempool: {base_perkw: 2000, volatility: 0.0, shocks: [{at_day: 0.5, multiplier: 10, duration_h: 6}]}\n"
    node = build_node(parse_scenario(text, "t.yaml"))
    rpc = SimRpc(node)
    node.advance(6 * 3600)
    calm = rpc("feerates", ["perkw"])["perkw"]["estimates"][2]["feerate"]
    node.advance(8 * 3600)
    shocked = rpc("feerates", ["perkw"])["perkw"]["estimates"][2]["feerate"]
    node.advance(24 * 3600)
    after = rpc("feerates", ["perkw"])["perkw"]["estimates"][2]["feerate"]
    assert shocked >= 8 * calm and after < 2 * calm


def test_hub_week_is_fast_and_busy():
    node = build_node("hub")
    t = time.perf_counter()
    notes = node.advance(7 * 86400)
    wall = time.perf_counter() - t
    assert wall < 10, f"7 simulated days took {wall:.1f}s"
    statuses = Counter(p["status"] for topic, p in notes if topic == "forward_event")
    assert statuses["settled"] > 5000
    assert len(node.forwards) == statuses["offered"] + statuses["local_failed"]


def test_raising_htlcmin_stops_dust_floods():
    groups = "  - {name: flood, count: 2, flood_per_hour: 2000, flood_hold_s: 60}\n" + PLAIN
    node = node_for(groups, seed=6, pph=60)
    rpc = SimRpc(node)
    node.advance(600)
    dust_before = len([f for f in rpc("listforwards")["forwards"] if f["in_msat"] < 20_000])
    assert dust_before > 50
    rpc("setchannel", {"id": "all", "htlcmin": "20sat"})
    n = len(node.forwards)
    node.advance(3600)
    new = rpc("listforwards", {"index": "created", "start": n + 1})["forwards"]
    assert new and all(f["in_msat"] >= 20_000 for f in new)


def test_gossip_rate_limit_keeps_senders_on_the_last_fee_that_spread():
    from revops.sim.model_channel import Channel, Peer
    ch = Channel(0, Peer("02" + "11" * 32, "p", "198.51.100.1", 9735))
    ch.fee_base_msat, ch.fee_ppm = 0, 100
    per_day = 2
    for i, ppm in enumerate((200, 300, 400)):
        old = (ch.fee_base_msat, ch.fee_ppm)
        ch.fee_base_msat, ch.fee_ppm = 0, ppm
        ch.fee_changed(1000.0 + i, per_day, *old)
    base, ppm, spread_s, prev_base, prev_ppm = ch.advertised(1003.0, per_day)
    assert (ppm, prev_ppm, spread_s) == (300, 200, 1001.0)  # the third update waits
    base, ppm, spread_s, _, prev_ppm = ch.advertised(1000.0 + 86400, per_day)
    assert (ppm, prev_ppm, spread_s) == (400, 300, 1000.0 + 86400)  # the window made room
