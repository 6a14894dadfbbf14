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


DEFAULT_TIMEOUT_S = 60.0


def fast_lightning_rpc(socket_path: str, timeout_s: float | None = DEFAULT_TIMEOUT_S):
    """pyln's LightningRpc, reading replies in linear time, with a timeout on its own sockets.

    pyln's `_readobj` splits the whole buffer on every recv while looking for the blank
    line that ends a reply; on the 15 MB listpeerchannels of a 5,000-channel node that was
    30 % of a fee cycle (measured with py-spy). This keeps pyln's protocol and error
    handling and only searches the bytes that just arrived.

    pyln opens a new unix socket per call and sets no timeout; `timeout_s` is set on each of
    those sockets before the request is written, so a hung lightningd is a `socket.timeout`
    (NodeRpcError TIMEOUT) instead of a stuck fee cycle — and only these sockets get it, not
    every socket of the process (the metrics server, the LNbits client; issue 15 item 5).
    """
    import json
    import threading

    from pyln.client import LightningRpc, RpcError
    from pyln.client.lightning import UnixSocket

    class FastLightningRpc(LightningRpc):
        def __init__(self, path: str):
            super().__init__(path)
            self.timeout_s = timeout_s
            self._kept = threading.local()  # each thread's open connection (sock, unread bytes)

        def call(self, method, payload=None, cmdprefix=None, filter=None):
            """pyln's call, on a connection each thread keeps open between calls.

            pyln connects a new unix socket per call; lightningd serves any number of
            requests on one connection, and a fee cycle makes a dozen calls (the simulator,
            tens of thousands). Calls that opt into notifications or filters take pyln's own path.
            """
            if self._notify is not None or filter is not None or self._filter is not None:
                return super().call(method, payload, cmdprefix, filter)
            if payload is None:
                payload = {}
            if isinstance(payload, dict):
                payload = {k: v for k, v in payload.items() if v is not None}
            this_id = self.get_json_id(method, cmdprefix)
            self.next_id += 1
            request = {"jsonrpc": "2.0", "method": method, "params": payload, "id": this_id}
            resp = self._exchange(request, fresh=False)
            if resp is None:  # a kept connection lightningd had closed: once more on a new one
                resp = self._exchange(request, fresh=True)
            if not isinstance(resp, dict):
                raise TypeError(f"Malformed response, response is not a dictionary {resp}.")
            if "id" in resp and resp["id"] != this_id:
                self._drop()
                raise ValueError(f"Malformed response, id is not {this_id}: {resp}.")
            if "error" in resp:
                raise RpcError(method, payload, resp["error"])
            if "result" not in resp:
                raise ValueError('Malformed response, "result" missing.')
            return resp["result"]

        def _exchange(self, request: dict, fresh: bool):
            """Write `request` and read its reply; None if a reused connection was found closed."""
            kept = getattr(self._kept, "conn", None)
            reused = kept is not None and not fresh
            if not reused:
                self._drop()
                kept = self._kept.conn = [UnixSocket(self.socket_path), b""]
            try:
                self._writeobj(kept[0], request)
                while True:
                    resp, kept[1] = self._readobj(kept[0], kept[1])
                    if not (isinstance(resp, dict) and "method" in resp and "id" in resp):
                        break  # pyln's loop: skip what is neither a reply nor an error
            except OSError:
                self._drop()
                if reused:
                    return None
                raise
            except BaseException:  # a timeout or a bad reply: the connection's state is unknown
                self._drop()
                raise
            if isinstance(resp, dict) and resp.get("error") == "Connection to RPC server lost.":
                self._drop()
                if reused and not kept[1]:
                    return None
            return resp

        def _drop(self) -> None:
            kept = getattr(self._kept, "conn", None)
            self._kept.conn = None
            if kept is not None:
                kept[0].close()

        def _writeobj(self, sock, obj):
            # sock is pyln's UnixSocket wrapper, connected; its .sock is the real socket
            if getattr(sock, "sock", None) is not None:
                sock.sock.settimeout(self.timeout_s)
            super()._writeobj(sock, obj)

        def _readobj(self, sock, buff=b""):
            buf = bytearray(buff)
            scan = 0
            while True:
                end = buf.find(b"\n\n", scan)
                if end >= 0:
                    obj, _ = json.JSONDecoder().raw_decode(buf[:end].decode("UTF-8"))
                    return obj, bytes(buf[end + 2:])
                scan = max(0, len(buf) - 1)
                chunk = sock.recv(max(65536, len(buf)))
                if not chunk:
                    return {"error": "Connection to RPC server lost."}, bytes(buf)
                buf += chunk

    return FastLightningRpc(socket_path)


class LightningdRpc:
    """NodeRpc over pyln-client's LightningRpc (plugin.rpc)."""

    def __init__(self, pyln_rpc):
        # The timeout lives on each RPC socket (fast_lightning_rpc), never process-wide.
        self._rpc = pyln_rpc

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
