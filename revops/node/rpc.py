"""lightningd's JSON-RPC, behind a small contract: call(method, params) -> result or NodeRpcError.

Every failure — an error reply, a dropped socket, a timeout, a plugin that is not loaded —
becomes a `NodeRpcError` carrying the method, CLN's error code and message, so the
runtime can decide per call what a failure means (skip one channel, degrade a feature).
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

METHOD_NOT_FOUND = -32601
TIMEOUT = -90001  # ours: the call did not answer in time
DISCONNECTED = -90002  # ours: the socket failed


class NodeRpcError(Exception):
    def __init__(self, method: str, code: int, message: str):
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message

    @property
    def method_missing(self) -> bool:
        """The method does not exist: the plugin providing it (sling, bookkeeper) is not loaded."""
        return self.code == METHOD_NOT_FOUND


class NodeRpc(Protocol):
    """What the runtime needs from lightningd."""

    def call(self, method: str, params: dict | list | None = None) -> Any:
        """Return the result of `method`, or raise NodeRpcError."""


class LightningdRpc:
    """NodeRpc over pyln-client's LightningRpc (plugin.rpc)."""

    def __init__(self, pyln_rpc, timeout_s: float = 60.0):
        self._rpc = pyln_rpc
        # pyln opens a new unix socket per call and sets no timeout; a default timeout on
        # new sockets makes a hung lightningd an error instead of a stuck fee cycle.
        if socket.getdefaulttimeout() is None:
            socket.setdefaulttimeout(timeout_s)

    def call(self, method: str, params: dict | list | None = None) -> Any:
        from pyln.client import RpcError
        try:
            result = self._rpc.call(method, params if params is not None else {})
        except RpcError as err:
            error = err.error if isinstance(err.error, dict) else {"message": str(err.error)}
            raise NodeRpcError(method, int(error.get("code", -1)), str(error.get("message", error))) from None
        except socket.timeout:
            raise NodeRpcError(method, TIMEOUT, "lightningd did not answer in time") from None
        except (OSError, ValueError) as err:
            raise NodeRpcError(method, DISCONNECTED, f"RPC failed: {err}") from None
        if isinstance(result, dict) and "error" in result and len(result) == 1:
            raise NodeRpcError(method, DISCONNECTED, str(result["error"]))
        return result
