"""Where the plugin's notion of "now" comes from.

A real node uses the system clock. The simulator drives a `ManualClock`: the plugin is
started with `revenue-ops-sim-clock=<unix start time>` (a testing-only option a real node
never sets; 0, the default, means the system clock), its own timers stay off, and each
`revenue-cycle` call carries the simulated time. The plugin code is the same either way.
"""

from __future__ import annotations

import threading
import time


class SystemClock:
    """Wall-clock time; the plugin's timers run on it."""

    simulated = False

    def now(self) -> float:
        return time.time()


class ManualClock:
    """Time that only moves when told to (by the simulator's `revenue-cycle now=...`)."""

    simulated = True

    def __init__(self, start_s: float):
        self._now = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def set(self, now_s: float) -> None:
        """Move to `now_s`; time never goes backwards (a stale call is ignored)."""
        with self._lock:
            if now_s > self._now:
                self._now = float(now_s)
