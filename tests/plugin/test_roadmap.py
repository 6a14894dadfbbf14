"""Roadmap details through the real plugin (issue 16): self-loops are not one-way streets."""

from __future__ import annotations

from .conftest import Node

HOUR = 3600


def test_self_loops_earn_no_one_way_street_premium_but_streets_do(workdir):
    node = Node(workdir, scenario="self-loops", seed=23)
    node.start()
    try:
        for _ in range(24):
            node.advance(2 * HOUR)
            node.cycle()
        channels = {c["scid"]: c for c in node.call("revenue-explain")["channels"]}
    finally:
        node.stop()
    loopers = [p for p in node.sim.peers.values() if len(p.channels) == 2]
    exits = {p.channels[0].scid for p in loopers}
    gate = 50_000 * 7000

    def premium(scid):
        return next(e for e in channels[scid]["trace"] if e["rule"] == "one-way-street-premium")["matched"]
    # A looper's first channel looks like a one-way street forward by forward (the old rule's
    # volume and flow ratio), but its outflow came in through the same peer: no premium.
    lookalikes = [s for s in exits if channels[s]["facts"]["channel.out_volume_7d_msat"] >= gate
                  and channels[s]["facts"]["channel.flow_ratio_7d"] >= 0.6]
    assert lookalikes, {s: channels[s]["facts"]["channel.flow_ratio_7d"] for s in exits}
    for s in lookalikes:
        f = channels[s]["facts"]
        assert f["channel.loop_ratio_7d"] > 0.5, s
        assert not premium(s), s
    streets = [s for s, c in channels.items() if c["facts"]["channel.oneway_out_volume_7d_msat"] >= gate
               and c["facts"]["channel.oneway_flow_ratio_7d"] >= 0.6 and c["decision"]["stage"] == "discovery"]
    assert streets and all(premium(s) for s in streets)
    assert all(channels[s]["facts"]["channel.loop_ratio_7d"] < 0.2 for s in streets)
