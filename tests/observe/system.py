"""System binaries the observability tests need (Debian's prometheus, promtool, chromium) and a
real Prometheus server on loopback. In CI (CI=true) a missing binary fails the test; locally it
skips it, saying which package to install (`make system-deps`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest


def require_binary(*names: str) -> str:
    """Returns the path of the first of `names` installed; fails (CI) or skips without one."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    why = f"{' or '.join(names)} is not installed: run `make system-deps`"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """prometheus on 127.0.0.1:<free port>, scraping every second, data in a temporary folder."""

    def __init__(self, targets: list[str], rule_files: list[Path], job: str = "revops"):
        self.binary = require_binary("prometheus")
        self.dir = Path(tempfile.mkdtemp(prefix="prom"))
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": [str(p.resolve()) for p in rule_files],
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}]}
        (self.dir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30) -> "PrometheusServer":
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "log", "wb"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.dir / 'log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            return json.loads(urllib.request.urlopen(url, timeout=10).read())
        except urllib.error.HTTPError as err:  # a bad query answers 400 with a JSON error
            return json.loads(err.read())

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
