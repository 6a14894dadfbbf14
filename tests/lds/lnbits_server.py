"""A real LNbits 1.6.2 server for tests: its own virtualenv (.lnbits-venv, made by `make lnbits`),
FakeWallet, SQLite in a temp folder, 127.0.0.1 on a free port, the vault extension installed
from contrib/lnbits-vault. Started once per test module and always stopped by its PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("LNBITS_VENV", ROOT / ".lnbits-venv"))
EXTENSION = ROOT / "contrib" / "lnbits-vault" / "vault"


def lnbits_package() -> Path | None:
    found = sorted(VENV.glob("lib/python3*/site-packages/lnbits"))
    return found[0] if found and (VENV / "bin" / "uvicorn").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpError(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def detail(self) -> str:
        return self.body.get("detail") if isinstance(self.body, dict) else str(self.body)


class LnbitsServer:
    def __init__(self, tmp: Path | None = None):
        self.owns_tmp = tmp is None
        self.tmp = Path(tempfile.mkdtemp(prefix="lnbits-")) if tmp is None else tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.token: str | None = None

    def another_worker(self) -> "LnbitsServer":
        """A second LNbits process on this server's database and data folder (as with several
        workers behind one proxy), on its own port. Its stop() leaves the data alone."""
        worker = LnbitsServer(tmp=self.tmp)
        worker.token = self.token
        worker._spawn(f"lnbits-{worker.port}.log")
        return worker

    def start(self, timeout_s: float = 60) -> "LnbitsServer":
        package = lnbits_package()
        if package is None:
            raise RuntimeError(f"LNbits is not installed in {VENV}: run `make lnbits`")
        run, data = self.tmp / "run", self.tmp / "data"
        run.mkdir()
        (run / "lnbits").symlink_to(package)  # LNbits mounts static/ and templates/ relative to the cwd
        shutil.copytree(EXTENSION, data / "ext" / "extensions" / "vault",
                        ignore=shutil.ignore_patterns("__pycache__"))
        self._spawn("lnbits.log", timeout_s)
        self.token = self.request("PUT", "/api/v1/auth/first_install",
                                  {"username": "admin", "password": "secret1234",
                                   "password_repeat": "secret1234"})["access_token"]
        return self

    def _spawn(self, log_name: str, timeout_s: float = 60) -> None:
        run, data = self.tmp / "run", self.tmp / "data"
        self.log_name = log_name
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.tmp),
               "LNBITS_DATA_FOLDER": str(data), "LNBITS_EXTENSIONS_PATH": str(data / "ext"),
               "LNBITS_BACKEND_WALLET_CLASS": "FakeWallet", "LNBITS_EXTENSIONS_MANIFESTS": "[]",
               "LNBITS_WASM_EXTENSIONS_MANIFESTS": "[]", "LNBITS_USER_DEFAULT_EXTENSIONS": '["vault"]',
               "AUTH_HTTPS_ONLY": "false", "LNBITS_RATE_LIMIT_NO": "100000",
               # Offline: every invoice and payment would otherwise try (and fail) to fetch a BTC
               # price for the wallet's fiat currency: 0.75 s per invoice+pay instead of 0.1 s.
               "LNBITS_PRICE_AGGREGATOR_ENABLED": "false", "LNBITS_EXCHANGE_RATE_PROVIDERS": "[]"}
        self.log = open(self.tmp / log_name, "wb")
        self.proc = subprocess.Popen([str(VENV / "bin" / "uvicorn"), "lnbits.__main__:app", "--host", "127.0.0.1",
                                      "--port", str(self.port)], cwd=run, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"LNbits exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.url + "/api/v1/health", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # 307 to /first_install: the server is up
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("LNbits did not answer in time:\n" + self.log_tail())
                time.sleep(0.2)

    def log_tail(self) -> str:
        return (self.tmp / self.log_name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.owns_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- HTTP ---------------------------------------------------------------------------------

    def request(self, method: str, path: str, body=None, key: str | None = None, bearer: str | None = None):
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-Api-Key"] = key
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                self.last_status = resp.status
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise HttpError(err.code, parsed) from None
        return json.loads(raw) if raw else None

    def account(self, name: str) -> dict:
        """A new user with one wallet (and the vault extension enabled by default)."""
        return self.request("POST", "/api/v1/account", {"name": name})

    def credit(self, wallet_id: str, amount_sat: int) -> None:
        self.request("PUT", "/users/api/v1/balance", {"id": wallet_id, "amount": amount_sat}, bearer=self.token)

    def balance_msat(self, wallet: dict) -> int:
        return self.request("GET", "/api/v1/wallet", key=wallet["inkey"])["balance"]
