"""Forward generators for store tests: listforwards entries and the events that make them."""

from __future__ import annotations

import random
from typing import Any

NOW_S = 1_767_225_600.0
DAY_S = 86_400.0


def forward(i: int, rng: random.Random, chans: list[str], now_s: float = NOW_S,
            max_age_s: float = 40 * DAY_S) -> dict[str, Any]:
    """Returns one listforwards entry (identity i: created_index i, in_htlc_id i) shaped as
    CLN returns it: resolved_time only on settled/failed, amounts out only when sent out."""
    status = rng.choice(("settled", "settled", "settled", "failed", "local_failed", "offered"))
    # Some forwards sit exactly on window edges, some in the future (clock skew).
    edge = rng.choice((None, None, None, DAY_S, 7 * DAY_S, 30 * DAY_S, -5.0))
    received = now_s - (edge if edge is not None else rng.random() * max_age_s)
    f: dict[str, Any] = {"created_index": i, "in_channel": rng.choice(chans), "in_htlc_id": i,
                         "in_msat": rng.randrange(1_000, 10**9), "status": status,
                         "received_time": received, "style": "tlv"}
    sent = status != "local_failed" or rng.random() < 0.6
    if sent:
        f["out_channel"] = rng.choice(chans)
    if status in ("settled", "failed", "offered") or (sent and rng.random() < 0.2):
        f["out_msat"] = f["in_msat"] - rng.randrange(0, 1000)
        f["fee_msat"] = f["in_msat"] - f["out_msat"]
    if status in ("settled", "failed"):
        # a resolution exactly at received (hold 0) happens; edge resolved times too
        f["resolved_time"] = received + rng.choice((0.0, rng.random() * 30))
        if edge is not None and rng.random() < 0.5:
            f["resolved_time"] = now_s - edge
            f["received_time"] = f["resolved_time"] - rng.random() * 10
        f["updated_index"] = i
    if status in ("failed", "local_failed") and rng.random() < 0.8:
        f["failcode"] = rng.choice((4103, 4107, 4108, 4109, 4110, 4116, 16394))
    return f


def forwards(n: int, seed: int = 0, n_chans: int = 6, **kw) -> list[dict[str, Any]]:
    """Returns n distinct listforwards entries over n_chans channels."""
    rng = random.Random(seed)
    chans = [f"8000{c}x1x0" for c in range(n_chans)]
    return [forward(i, rng, chans, **kw) for i in range(1, n + 1)]


def events_for(f: dict[str, Any]) -> list[dict[str, Any]]:
    """Returns the forward_event payloads lightningd sends for the final entry f: an offered
    event (with created_index) then a resolution (with updated_index), or for local_failed
    a single event with created_index (as fixtures/forward_event.json shows)."""
    base = {k: v for k, v in f.items() if k not in ("created_index", "updated_index",
                                                     "resolved_time", "failcode", "status")}
    if f["status"] == "local_failed":
        return [{**base, "status": "local_failed", "created_index": f["created_index"],
                 **({"failcode": f["failcode"]} if "failcode" in f else {})}]
    offered = {**base, "status": "offered", "created_index": f["created_index"]}
    if f["status"] == "offered":
        return [offered]
    resolution = {**base, "status": f["status"]}
    for k in ("updated_index", "resolved_time", "failcode"):
        if k in f:
            resolution[k] = f[k]
    return [offered, resolution]
