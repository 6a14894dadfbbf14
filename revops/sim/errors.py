"""Errors the simulated lightningd returns, shaped like CLN's JSON-RPC error objects."""

from __future__ import annotations


class RpcError(Exception):
    """A JSON-RPC error as lightningd (or a plugin such as sling) returns it.

    `code` and `message` go on the wire unchanged as `{"code", "message"[, "data"]}`.
    """

    def __init__(self, code: int, message: str, data: object | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


# common/jsonrpc_errors.h
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
PLUGIN_RETURNED_ERROR = -32700  # what Rust cln-plugin (sling) uses for handler errors
LIGHTNINGD = -1
PLUGIN_ERROR = -3
PLUGIN_TERMINATED = -4
LIGHTNINGD_SHUTDOWN = -5
