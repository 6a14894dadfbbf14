"""A small client for the LNbits Vault extension's REST API (stdlib only: urllib + json)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class LnbitsError(Exception):
    """LNbits refused or could not be reached; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class VaultClient:
    def __init__(self, url: str, operator_key: str, timeout_s: float = 20.0):
        self.url = url.rstrip("/")
        self._key = operator_key  # never logged
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/vault/api/v1/{path}", data=data, method=method,
                                     headers={"X-Api-Key": self._key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                detail = json.loads(raw).get("detail")
            except (ValueError, AttributeError):
                detail = raw[:200].decode(errors="replace")
            raise LnbitsError(f"LNbits {method} {path}: HTTP {err.code}: {detail}", err.code) from None
        except (OSError, ValueError) as err:
            raise LnbitsError(f"LNbits {method} {path}: {err}") from None

    def book(self) -> dict:
        return self._call("GET", "book")

    def report_solvency(self, physical_msat: int, liabilities_msat: int, max_ratio: float) -> dict:
        return self._call("POST", "solvency", {"physical_msat": physical_msat, "liabilities_msat": liabilities_msat,
                                               "max_ratio": max_ratio})

    def payout(self, period_key: str, lines: list[dict]) -> dict:
        return self._call("POST", "payouts", {"period_key": period_key, "lines": lines})
