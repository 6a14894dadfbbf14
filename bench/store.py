"""Store benchmark: prints ingest and backfill rates, channel_flows times and DB size.

    python bench/store.py [--big 1000000] [--channels 5000] [--events 20000]

Figures: forward_event notifications/s through the single-call path (one transaction per
event, offered + resolution pairs) and in batches of 100 and 1,000 (ingest_forward_events),
listforwards backfill rows/s (pages of 1,000 entries), channel_flows time at 100k and --big
stored forwards over --channels channels (all within the 30-day window, the worst case):
the full computation and the incremental 30-minute step with that half hour's events
ingested in between; DB size and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from revops.store import Store  # noqa: E402

NOW_S = 1_767_225_600.0
PAGE = 1000


def scids(n: int) -> list[str]:
    """Returns n distinct short channel ids."""
    return [f"{800000 + i // 10}x{i % 10}x0" for i in range(n)]


def forwards(n: int, chans: list[str], start_index: int, rng: random.Random,
             now_s: float = NOW_S, span_s: float = 29 * 86_400) -> list[dict]:
    """Returns n listforwards-shaped entries spread over the span_s before now_s."""
    out = []
    statuses = ("settled",) * 6 + ("failed", "local_failed", "local_failed", "offered")
    for i in range(n):
        status = rng.choice(statuses)
        received = now_s - rng.random() * span_s
        f = {"created_index": start_index + i, "in_channel": rng.choice(chans),
             "in_htlc_id": start_index + i, "in_msat": 1_000_000 + i,
             "status": status, "received_time": received, "style": "tlv"}
        if status != "local_failed" or rng.random() < 0.5:
            f["out_channel"] = rng.choice(chans)
        if status in ("settled", "failed", "offered"):
            f["out_msat"], f["fee_msat"] = 1_000_000 + i - 100, 100
        if status in ("settled", "failed"):
            f["resolved_time"] = received + rng.random() * 5
            f["updated_index"] = start_index + i
        if status == "local_failed":
            f["failcode"] = rng.choice((4103, 4108, 16394))
        out.append(f)
    return out


def events_of(fs: list[dict]) -> list[dict]:
    """Returns the forward_event payloads of forwards: offered, then the resolution."""
    events = []
    for f in fs:
        offered = {k: v for k, v in f.items()
                   if k not in ("resolved_time", "updated_index", "failcode")}
        offered["status"] = "offered"
        resolution = {k: v for k, v in f.items() if k != "created_index"}
        events += [offered, resolution]
    return events


def bench_events(store: Store, n: int, rng: random.Random, chans: list[str], start: int,
                 batch: int = 1) -> float:
    """Returns forward_event notifications/s through ingest_forward_event (batch 1) or
    ingest_forward_events (batches of `batch`)."""
    events = events_of(forwards(n // 2, chans, start, rng))
    t0 = time.perf_counter()
    if batch == 1:
        for e in events:
            store.ingest_forward_event(e)
    else:
        for i in range(0, len(events), batch):
            store.ingest_forward_events(events[i:i + batch])
    return len(events) / (time.perf_counter() - t0)


def bench_steps(store: Store, chans: list[str], rng: random.Random, start: int,
                steps: int = 6) -> tuple[float, list[float], int]:
    """Returns (full channel_flows seconds, incremental step seconds, forwards per step):
    one full computation at NOW_S, then `steps` 30-minute steps, each after that half
    hour's forwards (the table's own rate) were ingested as events in batches of 1,000."""
    per_step = max(1, round(store.forward_count() * 1800 / (29 * 86_400)))
    store.invalidate_flows()
    full, _ = timed(store.channel_flows, NOW_S)
    times = []
    for k in range(1, steps + 1):
        now = NOW_S + k * 1800
        events = events_of(forwards(per_step, chans, start + k * per_step, rng, now, 1800))
        for i in range(0, len(events), 1000):
            store.ingest_forward_events(events[i:i + 1000])
        dt, _ = timed(store.channel_flows, now)
        assert not store._flows.last_step["full"]
        times.append(dt)
    return full, times, per_step


def fill(store: Store, n: int, chans: list[str], start: int, rng: random.Random,
         keep: list | None = None) -> float:
    """Backfills n forwards in pages (keeping the first 10 pages in keep, if given); returns
    rows/s."""
    dt = 0.0
    done = 0
    while done < n:
        page = forwards(min(PAGE, n - done), chans, start + done, rng)
        t0 = time.perf_counter()
        store.ingest_forwards(page)
        dt += time.perf_counter() - t0
        done += len(page)
        if keep is not None and len(keep) < 10:
            keep.append(page)
    return n / dt


def timed(fn, *args) -> tuple[float, object]:
    """Returns (seconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def time_flows(store: Store) -> tuple[float, int]:
    """Returns (best seconds of 3 full channel_flows computations, channels returned)."""
    best = float("inf")
    for _ in range(3):
        store.invalidate_flows()
        t0 = time.perf_counter()
        flows = store.channel_flows(NOW_S)
        best = min(best, time.perf_counter() - t0)
    return best, len(flows)


def rss_mib() -> float:
    """Returns the current resident set size in MiB (Linux), 0 elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--channels", type=int, default=5000)
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp, "events.sqlite3")) as small:
            ev_s = bench_events(small, args.events, rng, scids(200), 1)
        print(f"ingest_forward_event: {ev_s:,.0f} events/s ({args.events:,} events, one call each)")

        path = Path(tmp, "big.sqlite3")
        store = Store(path)
        chans = scids(args.channels)
        first: list[list[dict]] = []
        rate = fill(store, 100_000, chans, 1, rng, first)
        print(f"ingest_forwards backfill: {rate:,.0f} rows/s (100k rows, pages of {PAGE})")
        t, n = time_flows(store)
        print(f"channel_flows: {t * 1000:,.0f} ms at 100k forwards ({n:,} channels)")
        if args.big > 100_000:
            rate = fill(store, args.big - 100_000, chans, 100_001, rng)
            print(f"ingest_forwards backfill: {rate:,.0f} rows/s (up to {args.big:,} rows)")
            t, n = time_flows(store)
            print(f"channel_flows: {t * 1000:,.0f} ms at {store.forward_count():,} forwards "
                  f"({n:,} channels)")
        print(f"RSS after channel_flows: {rss_mib():,.0f} MiB")
        full, steps, per_step = bench_steps(store, chans, rng, 20_000_000)
        print(f"channel_flows at {store.forward_count():,} forwards: full {full * 1000:,.0f} ms; "
              f"30-minute step ({per_step:,} new forwards each) median "
              f"{sorted(steps)[len(steps) // 2] * 1000:,.1f} ms, max {max(steps) * 1000:,.1f} ms")
        for batch, start in ((1, 10_000_000), (100, 11_000_000), (1000, 12_000_000)):
            ev_s = bench_events(store, 10_000 if batch == 1 else 20_000, rng, chans, start, batch)
            how = "one call each" if batch == 1 else f"ingest_forward_events, batches of {batch:,}"
            print(f"forward events: {ev_s:,.0f} events/s into the {store.forward_count():,}-row "
                  f"DB ({how})")
        t0 = time.perf_counter()
        for page in first[:10]:
            assert store.ingest_forwards(page) == 0
        print(f"ingest_forwards replay of known rows: {10 * PAGE / (time.perf_counter() - t0):,.0f}"
              f" rows/s")
        dt, days = timed(store.daily_history)
        print(f"daily_history: {dt * 1000:,.0f} ms ({len(days):,} day-channel rows)")
        dt, r = timed(store.rollup_and_prune, NOW_S + 10 * 86_400, 30)
        print(f"rollup_and_prune: {dt * 1000:,.0f} ms (rolled {r['rolled']:,}, "
              f"pruned {r['pruned']:,})")
        dt, did = timed(store.vacuum_if_worth)
        print(f"vacuum_if_worth: {dt * 1000:,.0f} ms (vacuumed: {did})")
        store.close()
        size = sum(os.path.getsize(p) for p in Path(tmp).glob("big.sqlite3*"))
        print(f"DB size: {size / 2**20:,.1f} MiB ({size / max(args.big, 100_000):,.0f} B/forward, "
              f"incl. WAL)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
