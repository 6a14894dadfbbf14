"""Shared helpers for the observability tests: the plugin fixtures and ground truth from the simulator."""

from __future__ import annotations

from revops.sim.model_channel import AWAITING_LOCKIN
from revops.sim.rpc import SimRpc
from tests.plugin.conftest import Node, workdir  # noqa: F401 (fixtures)


def new_local_channels(sim, capacities_sat: list[int]) -> list:
    """Returns channels we fund, to new peers, not yet opened (AWAITING_LOCKIN)."""
    chs = []
    for cap in capacities_sat:
        peer = sim.new_peer(f"new-{len(sim.peers) + len(chs)}")
        ch = sim.new_channel(peer, cap * 1000, cap * 1000, "local")
        ch.state, ch.opened_s = AWAITING_LOCKIN, sim.now_s
        chs.append(ch)
    return chs


def settled_fees_by_channel(sim) -> dict[str, int]:
    """Returns out scid -> routing fees of settled forwards, as listforwards reports them."""
    out: dict[str, int] = {}
    for f in SimRpc(sim)("listforwards", {"status": "settled"})["forwards"]:
        out[f["out_channel"]] = out.get(f["out_channel"], 0) + f["fee_msat"]
    return out


def run_with_opens_and_closes(n: Node, days: int = 2) -> dict:
    """Runs `n` for `days` with a batch open of 3 channels, a single open, 2 closes of our
    channels and a sling pull job on day one; returns {"batch": channel_ids, "single":
    channel_id, "closed": channel_ids, "pulled": scid}."""
    sim = n.sim
    n.advance(6 * 3600)
    with n.lock:
        batch = new_local_channels(sim, [1_000_000, 1_500_000, 1_200_000])
        sim.lifecycle.open_batch(sim.now_s, batch)
        single = new_local_channels(sim, [1_000_000])[0]
        sim.lifecycle.open_channel(sim.now_s, single)
        closing = [c for c in sim.normal_channels() if c.opener == "local"][:2]
        for c in closing:
            sim.lifecycle.begin_close(sim.now_s, (c, "local", False))
        # a sling job pulling liquidity into our emptiest channel: rebalance fees to account for
        emptiest = min((c for c in sim.normal_channels() if c not in closing),
                       key=lambda c: c.to_us_msat / c.total_msat)
        if sim.sling is not None:
            rpc = SimRpc(sim)
            rpc("sling-job", {"scid": emptiest.scid, "direction": "pull", "amount": 50_000, "maxppm": 3000, "outppm": 100_000,
                              "target": 0.4})
            rpc("sling-go", {})
    for _ in range(days * 4):
        n.advance(6 * 3600)
        n.cycle("fees")
    return {"batch": [c.channel_id for c in batch], "single": single.channel_id,
            "closed": [c.channel_id for c in closing], "pulled": emptiest.scid}


def rebalance_fees_by_channel(sim) -> dict[str, int]:
    """Returns scid -> fees sling paid to pull liquidity into that channel."""
    return {scid: sum(s[2] for s in done) for scid, done in sim.sling.successes.items()}
