"""Run the real revops plugin process under the lightningd harness, against the simulated node."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from revops.resources import default_policy_dir
from revops.sim.driver import CountingBackend, plugin_command
from revops.sim.harness import Lightningd
from revops.sim.model_build import build_node
from revops.sim.rpc import SimRpc

ROOT = Path(__file__).resolve().parents[2]


class Node:
    """A simulated node plus the plugin running on it; restartable on the same database."""

    def __init__(self, workdir: Path, scenario: str = "hub", seed: int = 7, options: dict | None = None,
                 backend_wrapper=None, **node_kwargs):
        self.workdir = workdir
        self.sim = build_node(scenario, seed=seed, **node_kwargs)
        self.lock = threading.Lock()
        inner = SimRpc(self.sim)
        self.backend = CountingBackend(backend_wrapper(inner) if backend_wrapper else inner, self.lock)
        self.policy_dir = workdir / "policy"
        if not self.policy_dir.exists():
            shutil.copytree(default_policy_dir(), self.policy_dir)
        self.options = {"revenue-ops-policy": str(self.policy_dir),
                        "revenue-ops-db": str(workdir / "revops.sqlite3"),
                        "revenue-ops-sim-clock": str(int(self.sim.now_s)),
                        "revenue-ops-metrics-listen": "", **(options or {})}
        self.ld: Lightningd | None = None

    def start(self, **extra_options) -> Lightningd:
        self.ld = Lightningd(plugin_command(), str(self.workdir / "ln"), self.backend,
                             options={**self.options, **extra_options}, extra_plugins=self.sim.plugins,
                             network=self.sim.config.network, env={"PYTHONPATH": str(ROOT)},
                             startup_timeout_s=60, shutdown_timeout_s=30)
        self.ld.start()
        return self.ld

    def stop(self) -> None:
        if self.ld is not None:
            self.ld.stop()

    def advance(self, seconds: float, deliver: bool = True) -> int:
        """Run the market; deliver its notifications to the plugin (or drop them, as if it were down)."""
        with self.lock:
            notes = self.sim.advance(seconds)
        if deliver and self.ld is not None:
            for topic, payload in notes:
                self.ld.notify(topic, payload)
        return len(notes)

    def cycle(self, what: str = "fees") -> dict:
        return self.ld.call("revenue-cycle", {"what": what, "now": self.sim.now_s})

    def call(self, method: str, params=None):
        return self.ld.call(method, params)


def failing_backend(fails, error):
    """A backend_wrapper for Node: `fails(method, params)` decides which calls raise `error`."""
    def wrapper(inner):
        def backend(method, params):
            if fails(method, params):
                raise error
            return inner(method, params)
        backend.methods = inner.methods
        return backend
    return wrapper


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="rvt"))  # short: unix socket paths are limited to ~108 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def node(workdir):
    n = Node(workdir)
    n.start()
    yield n
    n.stop()
