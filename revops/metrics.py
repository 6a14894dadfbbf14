"""Prometheus metrics: a registry of our own, the HTTP exporter, and the reload/cycle gauges.

Reload metrics follow Prometheus' own config reload (`*_last_reload_successful`, its
timestamp); they are set in one place, from the runtime's single reload path.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.policy = Info("revops_policy", "The active policy.", registry=r)
        self.reload_ok = Gauge("revops_policy_last_reload_successful",
                               "Whether the last policy reload succeeded (1) or failed (0).", registry=r)
        self.reload_success_ts = Gauge("revops_policy_last_reload_success_timestamp_seconds",
                                       "Unix time of the last successful policy reload.", registry=r)
        self.reload_seconds = Histogram("revops_policy_reload_duration_seconds",
                                        "Time to load, validate, compile and swap a policy.", registry=r,
                                        buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
        self.decisions = Counter("revops_fee_decisions_total", "Fee decisions by outcome.",
                                 ["action"], registry=r)
        self.cycle_seconds = Gauge("revops_fee_cycle_duration_seconds", "Wall time of the last fee cycle.",
                                   registry=r)
        self.channels = Gauge("revops_channels", "Channels evaluated in the last fee cycle.", registry=r)
        self.forward_events = Counter("revops_forward_events_total", "forward_event notifications received.",
                                      ["status"], registry=r)
        self.server = None

    def serve(self, listen: str) -> str | None:
        """Start the HTTP exporter on host:port (port 0 picks one); returns the bound address."""
        if not listen:
            return None
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"revenue-ops-metrics-listen must be host:port, got {listen!r}")
        self.server, _ = start_http_server(int(port), addr=host, registry=self.registry)
        return f"{host}:{self.server.server_port}"

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def on_reload(self, result) -> None:
        self.reload_ok.set(1 if result.ok else 0)
        self.reload_seconds.observe(result.duration_s)
        if result.ok:
            self.reload_success_ts.set(result.at)
            self.policy.info({"name": result.name or "", "version": result.version or "",
                              "digest": result.digest or ""})

    def on_cycle(self, summary: dict) -> None:
        if not summary.get("ok"):
            return
        for action in ("set_fee", "would_set", "hold", "suppressed", "vetoed", "error"):
            if summary.get(action):
                self.decisions.labels(action).inc(summary[action])
        self.channels.set(summary.get("channels", 0))
        self.cycle_seconds.set(summary.get("duration_ms", 0) / 1000)
