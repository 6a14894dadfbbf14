"""Comparing ChannelFlow maps: integers exactly, float sums (hold times) to rounding."""

from __future__ import annotations

import math
from dataclasses import astuple

from revops.facts.flow import ChannelFlow


def assert_flows_equal(got: dict[str, ChannelFlow], want: dict[str, ChannelFlow]) -> None:
    """Asserts same channels, same last times, and equal windows (floats to 1e-9 relative)."""
    assert sorted(got) == sorted(want)
    for scid, w in want.items():
        g = got[scid]
        assert (g.scid, g.last_out_s, g.last_in_s) == (w.scid, w.last_out_s, w.last_in_s), scid
        assert sorted(g.windows) == sorted(w.windows), scid
        for label, wf in w.windows.items():
            for a, b in zip(astuple(g.windows[label]), astuple(wf)):
                if isinstance(a, float) or isinstance(b, float):
                    assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (scid, label, g, w)
                else:
                    assert a == b, (scid, label, g.windows[label], wf)
