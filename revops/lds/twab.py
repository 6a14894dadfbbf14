"""Time-weighted average balance over a window, from hourly snapshots.

A balance holds from its snapshot until the next one. Before its first snapshot a key has
no balance: a deposit younger than the window earns only for the time it was present,
which is what makes a deposit just before the payout (TWAB sniping) worth almost nothing.
"""

from __future__ import annotations


def twab_msat(samples: list[tuple[float, int]], start_s: float, end_s: float) -> int:
    """Average balance over [start_s, end_s) of a step function given as sorted (at_s, msat).

    The last sample before start_s (if any) sets the balance at start_s.
    """
    if end_s <= start_s:
        raise ValueError("the TWAB window must have a positive length")
    total = 0.0
    balance, t = 0, start_s
    for at_s, msat in samples:
        if at_s <= start_s:
            balance = msat
            continue
        if at_s >= end_s:
            break
        total += balance * (at_s - t)
        balance, t = msat, at_s
    total += balance * (end_s - t)
    return int(total // (end_s - start_s))
