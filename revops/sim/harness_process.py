"""One plugin subprocess and lightningd's side of its stdin/stdout protocol.

What lightningd/plugin.c does with a plugin's pipes: compact JSON + "\\n\\n" to its stdin,
an incremental JSON reader on its stdout, requests tracked by string id, `log` / `message` /
`progress` notifications handled, and the plugin SIGKILLed (never just closed) on any protocol
violation or when its stdout closes. Stderr passes through untouched; we keep its lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from revops.sim.jsonrpc_server import JsonStreamDecoder, JsonStreamError, encode_message

# log_level_parse names; warn and error are aliases for unusual and broken. io is refused.
LOG_LEVELS = {"trace": "trace", "debug": "debug", "info": "info", "unusual": "unusual",
              "warn": "unusual", "broken": "broken", "error": "broken"}
TERMINATED_MESSAGE = "Plugin terminated before replying to RPC call."
PLUGIN_TERMINATED = -4

# plugin_state descriptions, used in "exited <state>" / "timed out <state>".
AWAITING_MANIFEST = "before replying to getmanifest"
NEEDS_INIT = "before we sent init"
AWAITING_INIT = "before replying to init"
INIT_COMPLETE = "during normal operation"


class LogBook:
    """Everything a plugin said: `log` lines, raw stderr lines and lightningd's own lines.

    Shared by successive processes of one harness (e.g. after `plugin start`), and safe to
    read from any thread; `wait_for` blocks until a matching line arrives.
    """

    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []  # (level, message) from `log` notifications
        self.stderr: list[str] = []
        self.lightningd: list[tuple[str, str]] = []  # what lightningd itself would log
        self.cond = threading.Condition()

    def add_log(self, level: str, message: str) -> None:
        with self.cond:
            self.logs.append((level, message))
            self.cond.notify_all()

    def add_stderr(self, line: str) -> None:
        with self.cond:
            self.stderr.append(line)
            self.cond.notify_all()

    def add_lightningd(self, level: str, message: str) -> None:
        with self.cond:
            self.lightningd.append((level, message))
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[str, str], bool], timeout_s: float,
                 start: int = 0) -> tuple[str, str]:
        """Returns the first (level, message) at index >= start matching; raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            index = start
            while True:
                while index < len(self.logs):
                    level, message = self.logs[index]
                    if predicate(level, message):
                        return level, message
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching log line within {timeout_s}s; "
                                       f"last lines: {self.logs[-5:]}")
                self.cond.wait(remaining)

    def stderr_tail(self, n: int = 20) -> list[str]:
        """Returns the last `n` stderr lines."""
        with self.cond:
            return self.stderr[-n:]


@dataclass
class Pending:
    """A request sent to the plugin; `response` is set (or faked with -4) exactly once."""

    request_id: str
    on_notify: Callable[[str, dict], None] | None = None
    on_response: Callable[[dict], None] | None = None  # runs on the reader, in stream order
    done: threading.Event = field(default_factory=threading.Event)
    response: dict | None = None
    terminated: bool = False  # the response is the -4 lightningd makes up for a dead plugin


class PluginProcess:
    """A running plugin executable, spoken to as lightningd speaks to it.

    `on_notification(method, params)` receives notifications other than log/message/progress
    (custom topics); it runs on the stdout reader thread.
    """

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str], logbook: LogBook,
                 on_notification: Callable[[str, dict], None] | None = None):
        self.logbook = logbook
        self.state = AWAITING_MANIFEST
        self.death_reason: str | None = None  # set when killed for a fault or a crash
        self.expecting_exit = False  # shutdown sent: a clean exit is not a fault
        self._on_notification = on_notification
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._exited = threading.Event()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self.pid = self.proc.pid
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True,
                                               name=f"plugin-stderr-{self.pid}")
        self._stdout_thread = threading.Thread(target=self._read_stdout, daemon=True,
                                               name=f"plugin-stdout-{self.pid}")
        self._stderr_thread.start()
        self._stdout_thread.start()

    @property
    def alive(self) -> bool:
        """Returns True until the plugin exited or was killed."""
        return not self._exited.is_set()

    @property
    def returncode(self) -> int | None:
        """Returns the exit status once reaped (negative: killed by that signal)."""
        return self.proc.returncode

    # --- sending -----------------------------------------------------------------------------

    def send_request(self, request: dict, on_notify: Callable[[str, dict], None] | None = None,
                     on_response: Callable[[dict], None] | None = None) -> Pending:
        """Writes a request (its "id" a string) and returns its Pending entry.

        `on_response` sees the reply before anything later on stdout is read (so a state
        change lands before a following exit). A dead plugin's entry is answered with -4.
        """
        pending = Pending(request["id"], on_notify, on_response)
        with self._lock:
            dead = not self.alive
            if not dead:
                self._pending[pending.request_id] = pending
        if dead or not self._write(request):
            self._fail(pending)
        return pending

    def send_notification(self, method: str, params: dict) -> bool:
        """Writes a notification; returns False if the plugin is gone."""
        return self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, pending: Pending, timeout_s: float | None) -> dict | None:
        """Returns the response to `pending`, or None if `timeout_s` passed first."""
        if not pending.done.wait(timeout_s):
            return None
        return pending.response

    def _write(self, obj: dict) -> bool:
        with self._write_lock:
            try:
                self.proc.stdin.write(encode_message(obj))
                self.proc.stdin.flush()
                return True
            except (OSError, ValueError):  # broken pipe / closed: the reader reports the death
                return False

    # --- stopping ----------------------------------------------------------------------------

    def kill(self, reason: str | None, level: str = "unusual", fault: bool = True) -> None:
        """SIGKILLs the plugin (plugin_kill), fails its pending requests and reaps it.

        `reason` is logged as lightningd logs it; it becomes `death_reason` only for a
        `fault` (a plugin disabling itself is killed too, but did nothing wrong).
        `reason` None means an expected stop.
        """
        with self._lock:
            first = not self._exited.is_set()
            self._exited.set()
            if first and reason is not None and fault:
                self.death_reason = reason
            pending = list(self._pending.values())
            self._pending.clear()
        if first and reason is not None:
            self.logbook.add_lightningd(level, f"Killing plugin: {reason}")
        try:
            self.proc.send_signal(signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass
        self.wait_exit(10.0)  # reaped before anyone hears of the death
        for p in pending:
            self._fail(p)
        self.reap()

    def wait_exit(self, timeout_s: float) -> bool:
        """Returns True if the process exits by itself within `timeout_s`."""
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def reap(self, timeout_s: float = 10.0) -> None:
        """Waits for the (killed) process so no zombie remains, then closes the pipes."""
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:  # cannot happen after SIGKILL, short of a D-state
            pass
        for thread in (self._stdout_thread, self._stderr_thread):
            if thread is not threading.current_thread():
                thread.join(2.0)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass

    @staticmethod
    def _fail(pending: Pending) -> None:
        """Answers `pending` as plugin_terminated_fail_req does."""
        if not pending.done.is_set():
            pending.response = {"jsonrpc": "2.0", "id": pending.request_id, "error": {
                "code": PLUGIN_TERMINATED, "message": TERMINATED_MESSAGE}}
            pending.terminated = True
            pending.done.set()

    # --- reading -----------------------------------------------------------------------------

    def _read_stderr(self) -> None:
        partial = b""
        fd = self.proc.stderr.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            partial += data
            *lines, partial = partial.split(b"\n")
            for line in lines:
                self.logbook.add_stderr(line.decode("utf-8", "replace"))
        if partial:
            self.logbook.add_stderr(partial.decode("utf-8", "replace"))

    def _read_stdout(self) -> None:
        decoder = JsonStreamDecoder()
        fd = self.proc.stdout.fileno()
        while self.alive:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                messages = decoder.feed(data)
            except JsonStreamError as e:
                self._fatal(str(e))
                return
            for message in messages:
                problem = self._handle(message)
                if problem:
                    self._fatal(problem)
                    return
        if self.alive:
            # stdout closed: lightningd kills (plugin_conn_finish), however it ended.
            self._stderr_thread.join(2.0)  # keep its dying words for the report
            if self.expecting_exit:
                self.kill(None)
            else:
                self.kill(f"exited {self.state}", level="info")

    def _fatal(self, reason: str) -> None:
        self._stderr_thread.join(0.2)  # let a last traceback line land in the report
        self.kill(reason)

    def _handle(self, message: object) -> str | None:
        """Dispatches one message from the plugin; returns a reason to kill it, or None."""
        if not isinstance(message, dict):
            return "JSON-RPC message is not a valid JSON object type"
        if "jsonrpc" not in message:
            return 'JSON-RPC message does not contain "jsonrpc" field'
        if "id" in message:
            req_id = message["id"]
            with self._lock:
                pending = self._pending.pop(req_id, None) if isinstance(req_id, str) else None
            if pending is not None:  # answers to forgotten requests are dropped
                if pending.on_response is not None:
                    pending.on_response(message)
                pending.response = message
                pending.done.set()
            return None
        method, params = message.get("method"), message.get("params")
        if "method" not in message or "params" not in message:
            return ('Malformed JSON-RPC notification missing "method" or "params": '
                    f"{encode_message(message).decode().strip()}")
        if method == "log":
            return self._handle_log(params)
        if method in ("message", "progress"):
            if not isinstance(params, dict) or "id" not in params:
                return 'JSON-RPC notify "id"-field is not present'
            with self._lock:
                pending = self._pending.get(params["id"]) if isinstance(params["id"], str) else None
            if pending is not None and pending.on_notify is not None:
                pending.on_notify(method, params)
            return None
        if self._on_notification is not None:
            self._on_notification(method if isinstance(method, str) else str(method), params)
        return None

    def _handle_log(self, params: object) -> str | None:
        """Records a `log` notification; returns the kill reason for a bad one."""
        params = params if isinstance(params, dict) else {}
        msg = params.get("message")
        if not isinstance(msg, str):
            return 'Log notification from plugin doesn\'t have a string "message" field'
        level = params.get("level", "info")
        canonical = LOG_LEVELS.get(level.lower()) if isinstance(level, str) else None
        if canonical is None:
            shown = f'"{level}"' if isinstance(level, str) else encode_message(level).decode()
            return (f"Unknown log-level {shown.strip()}, valid values are "
                    '"debug", "info", "warn", or "error".')
        for line in msg.split("\n"):
            self.logbook.add_log(canonical, line)
        return None
