"""The price learner through the real plugin (issue #14): its facts in revenue-explain, the
discovery rules deciding from them, its state surviving a restart, and a corrupt state
starting fresh with a log line."""

from __future__ import annotations

import sqlite3

import pytest

from revops.facts.price import estimate, price_from_json
from revops.sim.errors import RpcError
from tests.plugin.conftest import Node

PRICE_RULES = ("price-explore", "price-exploit")


def run_cycles(node: Node, n: int) -> None:
    for _ in range(n):
        node.advance(1800)
        assert node.cycle("fees")["fees"]["ok"]


def price_facts(explain: dict) -> dict[str, dict]:
    return {c["scid"]: {k: v for k, v in c["facts"].items() if k.startswith("channel.price_")}
            for c in explain["channels"]}


def test_learned_price_decides_and_survives_a_restart(workdir):
    node = Node(workdir, scenario="hub", seed=11)
    node.start()
    try:
        node.call("revenue-config", {"key": "price_min_samples", "value": 3})
        run_cycles(node, 16)   # 8 simulated hours
        explain = node.call("revenue-explain")
        facts = price_facts(explain)
        learned = {s: f for s, f in facts.items() if f["channel.price_samples"] >= 3}
        assert learned, facts
        for f in facts.values():
            assert 10 <= f["channel.price_estimate_ppm"] <= 2500 and 10 <= f["channel.price_next_ppm"] <= 2500
        # the discovery stage decides from the facts wherever nothing above it matched
        by_rule = {c["scid"]: c for c in explain["channels"]}
        deciding = [s for s in learned if by_rule[s]["decision"]["rule"] in PRICE_RULES]
        assert deciding, {s: by_rule[s]["decision"]["rule"] for s in learned}
        scid = deciding[0]
        won = [t for t in by_rule[scid]["trace"] if t.get("rule") in PRICE_RULES and t.get("outcome") == "won"]
        assert won and ("learn" in won[0]["why"])
        before = facts[scid]
    finally:
        node.stop()

    # Restart on the same database: the learner remembers (revenue-explain before any cycle).
    node.start(**{"revenue-ops-sim-clock": str(int(node.sim.now_s))})
    try:
        after = price_facts(node.call("revenue-explain", {"scid": scid}))[scid]
        assert after == before
    finally:
        node.stop()


def test_corrupt_price_state_starts_fresh_with_a_log_line(workdir):
    node = Node(workdir, scenario="hub", seed=12)
    node.start()
    try:
        run_cycles(node, 6)
    finally:
        node.stop()
    db = sqlite3.connect(workdir / "revops.sqlite3")
    with db:
        scid = db.execute("SELECT scid FROM price_state ORDER BY scid LIMIT 1").fetchone()[0]
        db.execute("UPDATE price_state SET state_json = 'not json at all' WHERE scid = ?", (scid,))
    db.close()
    ld = node.start()
    try:
        run_cycles(node, 1)
        ld.wait_for_log(lambda level, msg: "corrupt" in msg and scid in msg, timeout_s=10)
        facts = price_facts(node.call("revenue-explain", {"scid": scid}))[scid]
        assert facts["channel.price_samples"] < 1          # half an hour since the fresh start
    finally:
        node.stop()


def test_a_market_that_moves_is_seen_and_the_older_data_dropped(workdir):
    """The payments through one busy channel fall to a tenth (in the simulator, its demand out:
    a cheaper route took them, or the merchant behind it went quiet) while its fee stays
    (pinned by the operator, so the learner sees the same fee before and after): within a
    day its price_reason in revenue-explain says the market moved and its samples restart;
    the channels whose market stayed are not touched."""
    node = Node(workdir, scenario="hub", seed=11)
    (node.policy_dir / "groups.yaml").write_text("")   # pins need the pin stage it adds
    node.start()
    try:
        channel = max((ch for ch in node.sim.channels if ch.scid), key=lambda ch: ch.demand_out * ch.total_msat)
        scid = channel.scid
        node.call("revenue-config", [f"channel:{scid}:pin_fee_ppm", int(channel.ref_fee_ppm * 0.8)])
        run_cycles(node, 96)   # two days
        before = price_facts(node.call("revenue-explain"))[scid]
        assert before["channel.price_samples"] > 30, before
        channel.demand_out /= 10
        node.sim.market_dirty()
        run_cycles(node, 48)
        node.ld.wait_for_log(lambda level, msg: f"{scid}: the market moved" in msg and level == "info", timeout_s=10)
        after = price_facts(node.call("revenue-explain"))
        assert "the market moved" in after[scid]["channel.price_reason"], after[scid]
        assert after[scid]["channel.price_samples"] < before["channel.price_samples"] / 2
        moved = [s for s, f in after.items() if "the market moved" in f["channel.price_reason"]]
        assert moved == [scid], moved
    finally:
        node.stop()


def test_estimate_quantile_is_an_operator_knob_that_takes_effect_at_once(workdir):
    """price_estimate_quantile through revenue-config: a dearer quantile gives dearer learned
    prices in the very next revenue-explain (the cached estimates are recomputed), never
    outside the bounds, and the default's are the cheaper ones."""
    node = Node(workdir, scenario="hub", seed=11)
    node.start()
    try:
        node.call("revenue-config", {"key": "price_min_samples", "value": 3})
        run_cycles(node, 16)
        low = price_facts(node.call("revenue-explain"))
        node.call("revenue-config", {"key": "price_estimate_quantile", "value": 0.9})
        high = price_facts(node.call("revenue-explain"))
        book = price_from_json(node.call("revenue-snapshot")["price"])
        assert book.settings.estimate_quantile == 0.9
        learned = [s for s, f in low.items() if f["channel.price_samples"] >= 3]
        assert learned
        for s in learned:
            assert high[s]["channel.price_estimate_ppm"] >= low[s]["channel.price_estimate_ppm"]
            assert 10 <= high[s]["channel.price_estimate_ppm"] <= 2500
            # what the learner works out afresh under the new settings, not a cached estimate
            fresh = estimate(book.states[s], s, node.sim.now_s, book.settings)
            assert high[s]["channel.price_estimate_ppm"] == pytest.approx(fresh.estimate_ppm)
        assert any(high[s]["channel.price_estimate_ppm"] > low[s]["channel.price_estimate_ppm"] * 1.05
                   for s in learned)
        with pytest.raises(RpcError) as refused:       # outside the param's declared 0.05..0.95
            node.call("revenue-config", {"key": "price_estimate_quantile", "value": 1.5})
        assert "price_estimate_quantile" in refused.value.message
    finally:
        node.stop()


def attempts_learned(node: Node) -> dict[str, float]:
    """Each channel's attempts in its learner state now (decayed), from revenue-snapshot."""
    book = price_from_json(node.call("revenue-snapshot")["price"])
    return {scid: sum(n for _, n in st["bins"].values()) for scid, st in book.states.items()}


def test_a_dust_flood_is_not_taken_for_demand(workdir):
    """htlc-flood: three peers push 1-10 sat HTLCs through every channel whatever its fee,
    most of what a channel forwards there. Each counts as its size over price_dust_sat (1,000
    sat) of an attempt, so the learner's samples are the real payments plus a sliver; counted
    whole (price_dust_sat 0, as before), the flood was demand at any fee and priced every
    channel at the ceiling. Attempts are credited from a channel's first cycle on; they are
    read from the learner's state (price_samples is cached for up to 3 h)."""
    node = Node(workdir, scenario="htlc-flood", seed=3)
    node.start()
    try:
        run_cycles(node, 1)
        start = node.sim.now_s
        run_cycles(node, 12)   # 6 simulated hours
        real: dict[str, float] = {}
        dust: dict[str, float] = {}
        for f in node.backend("listforwards", {})["forwards"]:
            kept = f["status"] in ("settled", "failed") or (
                f["status"] == "local_failed" and f.get("failcode") not in (4107, 4108, 4109, 4110))
            if not kept or "out_channel" not in f or f.get("resolved_time", f["received_time"]) <= start:
                continue
            size = f.get("out_msat") or f["in_msat"]
            into = real if size >= 1_000_000 else dust
            into[f["out_channel"]] = into.get(f["out_channel"], 0.0) + min(1.0, size / 1_000_000)
        dust_count = sum(1 for f in node.backend("listforwards", {})["forwards"]
                         if (f.get("out_msat") or f["in_msat"]) < 1_000_000)
        samples = attempts_learned(node)
        assert dust_count > 2 * sum(real.values()), (dust_count, sum(real.values()))
        for scid, n in samples.items():
            counted = real.get(scid, 0.0) + dust.get(scid, 0.0)
            assert 0.97 * real.get(scid, 0.0) - 1e-6 <= n <= counted + 1e-6, (scid, n, real.get(scid), dust.get(scid))
        node.call("revenue-config", {"key": "price_dust_sat", "value": 0})
        run_cycles(node, 2)
        whole = attempts_learned(node)
        assert sum(whole.values()) > sum(samples.values()) + 50, (sum(whole.values()), sum(samples.values()))
    finally:
        node.stop()
