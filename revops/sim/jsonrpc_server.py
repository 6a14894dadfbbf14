"""lightningd's JSON-RPC unix socket, and the incremental JSON reader both of its pipes use.

Clients (pyln's LightningRpc, lightning-cli) write bare JSON objects with no delimiter and may
send several requests on one connection; lightningd answers each, concurrently, with the same
`id` and a `"\\n\\n"` terminator. `JsonStreamDecoder` splits such a byte stream into values.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import socket
import threading
from typing import Callable

_OUTSIDE_STRING = re.compile(r'[{}\[\]"]')
_INSIDE_STRING = re.compile(r'["\\]')
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, including the NUL


class JsonStreamError(ValueError):
    """The stream holds something that is not JSON; the message quotes it."""


class JsonStreamDecoder:
    """Splits a byte stream into top-level JSON values, without needing any delimiter.

    A structural scan finds where each top-level object or array ends; then
    `json.JSONDecoder.raw_decode` parses exactly that span. Anything else at top level
    (text, bare numbers) is garbage, as it is for lightningd's parser.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._decoder = json.JSONDecoder()
        self._text = ""
        self._pos = 0  # scan position in _text
        self._start: int | None = None  # where the current value began
        self._depth = 0
        self._in_string = False

    def feed(self, data: bytes) -> list[object]:
        """Returns the values completed by `data`; raises JsonStreamError on garbage."""
        self._text += self._utf8.decode(data)
        values = []
        while True:
            value = self._next_value()
            if value is _INCOMPLETE:
                return values
            values.append(value)

    def _next_value(self) -> object:
        """Returns the next complete value, or _INCOMPLETE when more bytes are needed."""
        text = self._text
        if self._start is None:
            remaining = text[self._pos:]
            self._pos += len(remaining) - len(remaining.lstrip())
            if self._pos >= len(text):
                self._text, self._pos = "", 0
                return _INCOMPLETE
            if text[self._pos] not in "{[":
                raise JsonStreamError(f"Failed to parse JSON response '{text[self._pos:]}'")
            self._start, self._depth = self._pos, 0
        while True:
            pattern = _INSIDE_STRING if self._in_string else _OUTSIDE_STRING
            m = pattern.search(text, self._pos)
            if not m:
                self._pos = len(text)
                return _INCOMPLETE
            char, self._pos = m.group(), m.end()
            if self._in_string:
                if char == "\\":
                    if self._pos >= len(text):  # escape split across reads: rescan it later
                        self._pos -= 1
                        return _INCOMPLETE
                    self._pos += 1
                else:
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    break
        start, end = self._start, self._pos
        try:
            value, consumed = self._decoder.raw_decode(text, start)
        except json.JSONDecodeError as e:
            raise JsonStreamError(f"Failed to parse JSON response '{text[start:end]}': {e}")
        if consumed != end:
            raise JsonStreamError(f"Failed to parse JSON response '{text[start:end]}'")
        self._text, self._pos, self._start = text[end:], 0, None
        return value


_INCOMPLETE = object()


def encode_message(obj: object) -> bytes:
    """Returns `obj` as lightningd writes it: compact JSON (no raw newline) + "\\n\\n"."""
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n\n").encode()


class RpcConnection:
    """One client connection; `send` is thread-safe, `notifications` is set by the client."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.notifications = False
        self._write_lock = threading.Lock()
        self.closed = False

    def send(self, obj: dict) -> None:
        """Writes one message; a vanished client is ignored, as lightningd ignores it."""
        with self._write_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(encode_message(obj))
            except OSError:
                self.closed = True


Handler = Callable[[dict, RpcConnection], dict]


def bind_unix_socket(path: str) -> socket.socket:
    """Returns a listening unix socket at `path`, even when `path` is over the 107-byte limit.

    For a long path it binds through `/proc/self/fd/<dirfd>/<name>`, the same trick pyln's
    UnixSocket uses to connect.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
        sock.bind(path)
    else:
        dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.bind(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
        finally:
            os.close(dirfd)
    sock.listen(64)
    return sock


class JsonRpcServer:
    """Serves requests on a unix socket; every request runs in its own thread.

    `handler(request, connection)` returns the complete reply object (with the request's id).
    The server itself answers malformed input and the `notifications` opt-in.
    """

    def __init__(self, path: str, handler: Handler):
        self.path = path
        self._handler = handler
        self._sock = bind_unix_socket(path)
        self._sock.settimeout(0.2)  # lets the accept loop notice close()
        self._stopping = threading.Event()
        self._conns: set[RpcConnection] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name="rpc-accept", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stops accepting, closes every connection and removes the socket file."""
        self._stopping.set()
        self._thread.join(timeout_s)
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.closed = True
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            conn = RpcConnection(client)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._read_loop, args=(conn,), name="rpc-conn",
                             daemon=True).start()

    def _read_loop(self, conn: RpcConnection) -> None:
        decoder = JsonStreamDecoder()
        try:
            while not self._stopping.is_set():
                try:
                    data = conn.sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    requests = decoder.feed(data)
                except JsonStreamError as e:
                    conn.send(_error(None, -32600, f"Invalid token in json input: {e}"))
                    return
                for request in requests:
                    self._start_request(request, conn)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.closed = True
            conn.sock.close()

    def _start_request(self, request: object, conn: RpcConnection) -> None:
        """Answers malformed requests at once; runs the rest in a thread (parse_request)."""
        if not isinstance(request, dict):
            conn.send(_error(None, -32600, "Expected {} for json command"))
            return
        req_id = request.get("id")
        if "id" not in request or isinstance(req_id, (dict, list)):
            conn.send(_error(None, -32600, "No id" if "id" not in request
                             else "Expected string/primitive for id"))
            return
        method = request.get("method")
        if "method" not in request:
            conn.send(_error(req_id, -32600, "No method"))
        elif not isinstance(method, str):
            conn.send(_error(req_id, -32600, "Expected string for method"))
        elif "params" not in request:
            conn.send(_error(req_id, -32600, "No params"))
        elif method == "notifications":
            conn.notifications = bool((request["params"] or {}).get("enable", False)
                                      if isinstance(request["params"], dict) else False)
            conn.send({"jsonrpc": "2.0", "id": req_id, "result": {}})
        else:
            threading.Thread(target=self._run, args=(request, conn), name=f"rpc-{method}",
                             daemon=True).start()

    def _run(self, request: dict, conn: RpcConnection) -> None:
        try:
            reply = self._handler(request, conn)
        except Exception as e:  # a handler bug must still answer the caller
            reply = _error(request["id"], -1, f"{type(e).__name__}: {e}")
        conn.send(reply)


def _error(req_id: object, code: int, message: str) -> dict:
    """Returns a JSON-RPC error reply."""
    return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}


def connect_unix(path: str, timeout_s: float) -> socket.socket:
    """Returns a socket connected to `path` (long paths via /proc/self/fd, as pyln does)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
        sock.connect(path)
        return sock
    dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
    finally:
        os.close(dirfd)
    return sock


def call_socket(path: str, request: dict, timeout_s: float,
                on_notification: Callable[[str, dict], None] | None = None) -> dict:
    """Sends one request as lightning-cli does and returns the reply object.

    With `on_notification`, first opts into notifications and passes each `message` /
    `progress` notification for this request to it. Raises TimeoutError or ConnectionError.
    """
    sock = connect_unix(path, timeout_s)
    decoder = JsonStreamDecoder()
    try:
        if on_notification is not None:
            sock.sendall(encode_message({"jsonrpc": "2.0", "id": f"{request['id']}+notify-enable",
                                         "method": "notifications",
                                         "params": {"enable": True}}))
        sock.sendall(encode_message(request))
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("Connection to RPC server lost.")
            for message in decoder.feed(data):
                if not isinstance(message, dict):
                    continue
                if "id" not in message and on_notification is not None:
                    on_notification(message.get("method"), message.get("params"))
                elif message.get("id") == request["id"]:
                    return message
    except socket.timeout:
        raise TimeoutError(f"no reply to {request['method']} within {timeout_s}s") from None
    finally:
        sock.close()
