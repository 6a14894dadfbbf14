"""A lightningd stand-in that runs any plugin executable over the real plugin protocol.

    h = Lightningd([sys.executable, "plugin.py"], lightning_dir, rpc_backend)
    with h:                                   # start(): getmanifest, socket, init
        h.call("revenue-status")              # like lightning-cli, through the RPC socket
        h.notify("forward_event", {...})      # only if the plugin subscribed
        h.setconfig("revenue-interval", 300)

It follows cln-interfaces.md §1: spawn (env, cwd), `getmanifest` checked as lightningd checks
it, `init` with exactly {options, configuration}, the `<lightning-dir>/lightning-rpc` socket
(created before init) with user calls forwarded to the plugin, `setconfig` / `listconfigs` /
`help` / `plugin`, notifications, the shutdown dance, and SIGKILL on protocol faults.
Every other RPC method is answered by `rpc_backend(method, params)`, which returns a result
or raises `revops.sim.errors.RpcError`.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
import weakref
from typing import Callable, Iterable

from revops.sim.errors import (
    LIGHTNINGD, LIGHTNINGD_SHUTDOWN, METHOD_NOT_FOUND, PLUGIN_TERMINATED, RpcError,
)
from revops.sim.harness_commands import cmd_help, cmd_listconfigs, cmd_plugin, cmd_setconfig
from revops.sim.harness_config import OptionStore, Source, check_setting
from revops.sim.harness_manifest import Manifest, ManifestError, PluginOption, parse_manifest
from revops.sim.harness_process import (
    AWAITING_INIT, AWAITING_MANIFEST, INIT_COMPLETE, NEEDS_INIT, LogBook, PluginProcess,
)
from revops.sim.jsonrpc_server import JsonRpcServer, RpcConnection, call_socket

RpcBackend = Callable[[str, "dict | list"], object]

RPC_FILE = "lightning-rpc"
# Our own (not a real node's) feature bits; a plugin's featurebits are ORed in, as lightningd does.
DEFAULT_FEATURES = {"init": "0898882a8a59a1", "node": "880898882a8a59a1", "channel": "",
                    "invoice": "02000002024100"}
BUILTINS = {"setconfig": cmd_setconfig, "listconfigs": cmd_listconfigs, "help": cmd_help,
            "plugin": cmd_plugin}
BUILTIN_USAGE = {"setconfig": "config [val] [transient]", "listconfigs": "[config]",
                 "help": "[command]", "plugin": "subcommand=start|stop|startdir|rescan|list"}
# Core lightningd commands: a plugin may not register these names either.
LIGHTNINGD_COMMANDS = frozenset("""
check stop getinfo getlog notifications listpeers listpeerchannels listfunds listforwards
listchannels listnodes connect disconnect fundchannel close setchannel feerates invoice
listinvoices delinvoice sendpay waitsendpay listsendpays datastore listdatastore deldatastore
newaddr withdraw txprepare txsend signpsbt sendpsbt listtransactions waitblockheight wait
""".split())


class PluginStartupError(RuntimeError):
    """The plugin could not be started; `reason` is lightningd's, `stderr_tail` the plugin's."""

    def __init__(self, reason: str, stderr_tail: list[str]):
        tail = "\n".join(f"    {line}" for line in stderr_tail) or "    (no stderr output)"
        super().__init__(f"{reason}\n  last stderr lines of the plugin:\n{tail}")
        self.reason = reason
        self.stderr_tail = stderr_tail


class _LaunchFailure(Exception):
    """Internal: a start attempt failed for the reason in args[0]."""


class _Resources:
    """What must be released even if the harness is never stopped (weakref finalizer)."""

    def __init__(self) -> None:
        self.proc: PluginProcess | None = None
        self.server: JsonRpcServer | None = None

    def release(self) -> None:
        if self.proc is not None and self.proc.alive:
            self.proc.kill(None)
        if self.server is not None:
            self.server.close()
            self.server = None


class Lightningd:
    """Runs one plugin executable as lightningd does; see the module docstring.

    plugin_cmd      argv (a list, e.g. [sys.executable, "plugin.py"]) or one executable path
    lightning_dir   the per-network dir: the plugin's cwd, `lightning-dir` in init, socket home
    rpc_backend     answers every method the harness does not: fn(method, params) -> result,
                    or raises RpcError; a `methods` attribute ({name: usage} or names) feeds
                    `help` and reserves those names
    options         command-line settings by option name: text as typed on a command line
                    ("300", "true"), a list for a multi option, True to set a flag
    extra_plugins   other plugin paths `plugin list` shows (e.g. .../plugins/sling), or dicts
                    {name, active, dynamic}
    startup_timeout_s  per step (getmanifest, init) unless getmanifest_timeout_s /
                    init_timeout_s say otherwise; `plugin start` gets this much in total
    shutdown_timeout_s how long a plugin subscribed to `shutdown` may take to exit at stop
    plugin_path     the path lightningd reports (default: the script in plugin_cmd)
    """

    def __init__(self, plugin_cmd: str | list[str], lightning_dir: str,
                 rpc_backend: RpcBackend | None = None, options: dict | None = None,
                 network: str = "regtest", version: str = "v25.12",
                 extra_plugins: Iterable[str | dict] = (), env: dict[str, str] | None = None,
                 startup_timeout_s: float = 60.0, *, getmanifest_timeout_s: float | None = None,
                 init_timeout_s: float | None = None, shutdown_timeout_s: float = 30.0,
                 call_timeout_s: float = 60.0, plugin_path: str | None = None,
                 feature_set: dict[str, str] | None = None):
        # Paths become absolute: the plugin runs with cwd = lightning_dir.
        self.plugin_cmd = _absolute_argv([plugin_cmd] if isinstance(plugin_cmd, str)
                                         else list(plugin_cmd))
        self.plugin_path = os.path.abspath(plugin_path or self.plugin_cmd[_script_index(
            self.plugin_cmd)])
        self.lightning_dir = os.path.abspath(lightning_dir)
        self.socket_path = os.path.join(self.lightning_dir, RPC_FILE)
        self.network = network
        self.version = version
        self.env = dict(env or {})
        self.getmanifest_timeout_s = getmanifest_timeout_s or startup_timeout_s
        self.init_timeout_s = init_timeout_s or startup_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.call_timeout_s = call_timeout_s
        self.feature_set = dict(feature_set or DEFAULT_FEATURES)
        self._backend = rpc_backend
        self._start_options = dict(options or {})
        self._extra_plugins = [{"name": p, "active": True, "dynamic": True}
                               if isinstance(p, str) else dict(p) for p in extra_plugins]

        self.manifest: Manifest | None = None
        self.disabled: str | None = None  # the plugin's reason, if it disabled itself
        self.init_params: dict | None = None  # exactly what `init` carried
        self.init_response: dict | None = None
        self.shutdown_killed = False  # True when the plugin ignored shutdown and was killed
        self.custom_notifications: list[tuple[str, object]] = []
        self._logbook = LogBook()
        self._store: OptionStore | None = None
        self._plugin: PluginProcess | None = None
        self._server: JsonRpcServer | None = None
        self._ids = itertools.count(1)
        self._lifecycle = threading.RLock()
        self._started = self._stopped = False
        self._resources = _Resources()
        # Kills the plugin and removes the socket if this object is dropped or at exit.
        self._finalizer = weakref.finalize(self, self._resources.release)

    # --- public API --------------------------------------------------------------------------

    def start(self) -> "Lightningd":
        """Starts the plugin: getmanifest, option checks, socket, init; returns self.

        Raises PluginStartupError (reason + the plugin's last stderr lines) on any failure;
        a plugin that disables itself is not a failure: see `disabled`.
        """
        with self._lifecycle:
            if self._started:
                raise RuntimeError("Lightningd.start() called twice")
            self._started = True
            os.makedirs(self.lightning_dir, exist_ok=True)
            try:
                settings = list(_cmdline_settings(self._start_options))
                self._launch(startup=True, settings=settings, source=Source.CMDLINE)
            except _LaunchFailure as e:
                tail = self._logbook.stderr_tail()
                self._resources.release()
                self._server = None
                raise PluginStartupError(f"plugin {self.plugin_path}: {e.args[0]}", tail) from None
            except BaseException:
                self._resources.release()
                raise
        return self

    def stop(self) -> None:
        """Stops like lightningd: shutdown notification (if subscribed) then kill; idempotent.

        Waits up to `shutdown_timeout_s` for a subscribed plugin to exit. Always reaps the
        process, then closes and removes the RPC socket.
        """
        with self._lifecycle:
            if self._stopped:
                return
            self._stopped = True
            self._stop_plugin("failed to self-terminate in time, killing.")
            self._resources.release()
            self._server = None

    def __enter__(self) -> "Lightningd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, method: str, params: dict | list | None = None, *,
             timeout_s: float | None = None,
             on_notification: Callable[[str, dict], None] | None = None) -> object:
        """Returns the result of `method`, called through the socket as lightning-cli calls it.

        `params` is a list (positional) or dict (keyword); None sends `[]`. Raises RpcError
        with the code and message the caller would see (`.error` holds the whole object).
        """
        if self._server is None:
            raise RuntimeError("lightningd is not running (start() not called, or stopped)")
        request = {"jsonrpc": "2.0", "id": f"cli:{method}#{os.getpid()}", "method": method,
                   "params": [] if params is None else params}
        reply = call_socket(self.socket_path, request, timeout_s or self.call_timeout_s,
                            on_notification)
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            exc = RpcError(error.get("code", LIGHTNINGD), error.get("message", str(reply)),
                           error.get("data"))
            exc.error = reply["error"]
            raise exc
        return reply.get("result")

    def setconfig(self, name: str, val: object = None, transient: bool = True) -> dict:
        """Returns the `setconfig` result for plugin option `name` (val None: no val)."""
        params: dict = {"config": name, "transient": transient}
        if val is not None:
            params["val"] = val
        return self.call("setconfig", params)

    def notify(self, topic: str, payload: dict) -> bool:
        """Sends notification `topic` nested as {topic: payload}; returns whether it was sent.

        Sent only after init, and only if the plugin subscribed to `topic` or to "*" (which
        never covers "log").
        """
        proc = self._plugin
        if proc is None or not proc.alive or proc.state != INIT_COMPLETE:
            return False
        if not self._subscribed(topic):
            return False
        return proc.send_notification(topic, {topic: payload})

    def wait_for_log(self, match: str | Callable[[str, str], bool], timeout_s: float = 10.0,
                     start: int = 0) -> tuple[str, str]:
        """Returns the first (level, message) log line matching; raises TimeoutError.

        `match` is a regex searched in the message, or a predicate(level, message).
        """
        predicate = match if callable(match) else (
            lambda _level, message, rx=re.compile(match): rx.search(message) is not None)
        return self._logbook.wait_for(predicate, timeout_s, start)

    def rpc_client(self):
        """Returns a pyln `LightningRpc` on this node's socket."""
        from pyln.client import LightningRpc
        return LightningRpc(self.socket_path)

    @property
    def logs(self) -> list[tuple[str, str]]:
        """Returns (level, message) of every `log` line (levels as lightningd names them)."""
        return list(self._logbook.logs)

    @property
    def stderr(self) -> list[str]:
        """Returns every raw line the plugin wrote to stderr."""
        return list(self._logbook.stderr)

    @property
    def lightningd_logs(self) -> list[tuple[str, str]]:
        """Returns what lightningd itself logged about the plugin (e.g. "Killing plugin: ...")."""
        return list(self._logbook.lightningd)

    @property
    def subscriptions(self) -> list[str]:
        """Returns the topics the plugin subscribed to."""
        return list(self.manifest.subscriptions) if self.manifest else []

    @property
    def methods(self) -> list[str]:
        """Returns the names of the plugin's rpcmethods."""
        return [m.name for m in self.manifest.methods] if self.manifest else []

    @property
    def running(self) -> bool:
        """Returns True while the plugin process is alive."""
        return self._plugin is not None and self._plugin.alive

    @property
    def pid(self) -> int | None:
        """Returns the plugin's process id (of the latest start)."""
        return self._plugin.pid if self._plugin else None

    @property
    def returncode(self) -> int | None:
        """Returns the plugin's exit status once it is gone (negative: killed by signal)."""
        return self._plugin.returncode if self._plugin else None

    @property
    def death_reason(self) -> str | None:
        """Returns why lightningd killed the plugin (a fault or crash), or None."""
        return self._plugin.death_reason if self._plugin else None

    # --- starting ----------------------------------------------------------------------------

    def _launch(self, startup: bool, settings: list[tuple[str, str | None]],
                source: Source) -> None:
        """Spawns the plugin and runs getmanifest and init; raises _LaunchFailure."""
        env = {**os.environ, **self.env, "LIGHTNINGD_PLUGIN": "1",
               "LIGHTNINGD_VERSION": self.version}
        try:
            proc = PluginProcess(self.plugin_cmd, self.lightning_dir, env, self._logbook,
                                 _weak_notification_sink(self))
        except OSError as e:
            raise _LaunchFailure(f"opening pipe: {e.strerror or e}") from None
        self._plugin = self._resources.proc = proc
        self.disabled = None
        deadline = time.monotonic() + self.getmanifest_timeout_s
        response = self._startup_request(proc, "getmanifest", {"allow-deprecated-apis": False},
                                         self.getmanifest_timeout_s, AWAITING_MANIFEST,
                                         next_state=NEEDS_INIT)
        try:
            manifest = parse_manifest(response, plugin_path=self.plugin_path, startup=startup,
                                      taken_methods=self._taken_methods())
        except ManifestError as e:
            proc.kill(str(e))
            raise _LaunchFailure(str(e)) from None
        self._ensure_server()  # lightningd serves RPC even if the plugin bows out
        if manifest.disable is not None:
            proc.kill(f"disabled itself: {manifest.disable}", level="info", fault=False)
            self.disabled = manifest.disable
            return
        if not startup and not manifest.dynamic:
            proc.kill("Not a dynamic plugin", level="info")
            raise _LaunchFailure("Not a dynamic plugin")
        self.manifest = manifest
        self._store = OptionStore(manifest.options, self.plugin_path, self.lightning_dir)
        for name, value in settings:
            option = manifest.option(name)
            if source is Source.CMDLINE and option is not None:
                value = _cmdline_text(option, value)
                if value is _UNSET:
                    continue
            problem = (check_setting(option, value, self.version) if option else
                       f"--{name}: unrecognized option" if startup else f"unknown parameter {name}")
            if problem:
                proc.kill(problem)
                raise _LaunchFailure(problem)
            self._store.add(name, value, source)
        self.init_params = {"options": self._store.init_options(),
                            "configuration": self._configuration(startup, manifest)}
        # A dynamic start gets one budget for both steps; at startup each step has its own.
        init_timeout_s = (self.init_timeout_s if startup else
                          max(0.0, deadline - time.monotonic()))
        response = self._startup_request(proc, "init", self.init_params, init_timeout_s,
                                         AWAITING_INIT, next_state=INIT_COMPLETE)
        self.init_response = response
        result = response.get("result")
        # Only {"disable": ...} counts: lightningd takes any other reply, even an error, as done.
        if isinstance(result, dict) and "disable" in result:
            self.disabled = json.dumps(result["disable"]) if not isinstance(
                result["disable"], str) else result["disable"]
            proc.kill(f"disabled itself at init: {self.disabled}", level="debug",
                      fault=False)

    def _ensure_server(self) -> None:
        """Opens the RPC socket once; lightningd guarantees it is live before `init`.

        The server holds only a weak reference, so a forgotten harness can still be collected
        (and its finalizer then kills the plugin).
        """
        if self._server is None:
            self._server = self._resources.server = JsonRpcServer(
                self.socket_path, _weak_handler(self))

    def _startup_request(self, proc: PluginProcess, method: str, params: dict,
                         timeout_s: float, state: str, next_state: str) -> dict:
        """Returns the plugin's reply to a startup request; raises _LaunchFailure.

        The plugin moves to `next_state` as its reply is read (unless it disables itself),
        so an exit right after replying is reported as lightningd reports it.
        """
        def advance(reply: dict) -> None:
            result = reply.get("result")
            if not (isinstance(result, dict) and "disable" in result):
                proc.state = next_state

        proc.state = state
        pending = proc.send_request({"jsonrpc": "2.0", "id": self._next_id(method),
                                     "method": method, "params": params}, on_response=advance)
        response = proc.wait(pending, timeout_s)
        if response is None:
            proc.kill(f"timed out {state}")
            raise _LaunchFailure(f"timed out {state}")
        if pending.terminated:
            proc.reap()
            raise _LaunchFailure(proc.death_reason or f"exited {state}")
        return response

    def _configuration(self, startup: bool, manifest: Manifest) -> dict:
        """Returns `init.configuration` (no proxy keys: no proxy is configured)."""
        features = dict(self.feature_set)
        for place, bits in manifest.featurebits:
            features[place] = _or_hex(features.get(place, ""), bits)
        return {"lightning-dir": self.lightning_dir, "rpc-file": RPC_FILE, "startup": startup,
                "network": self.network,
                "feature_set": {p: features.get(p, "") for p in ("init", "node", "channel",
                                                                  "invoice")}}

    def _start_plugin(self, startup: bool, settings: list[tuple[str, str | None]],
                      source: Source) -> str | None:
        """Restarts the plugin for `plugin start`; returns the failure reason or None."""
        with self._lifecycle:
            try:
                self._launch(startup=startup, settings=settings, source=source)
            except _LaunchFailure as e:
                return e.args[0]
            return self.disabled and f"disabled itself: {self.disabled}"

    # --- stopping ----------------------------------------------------------------------------

    def _stop_plugin(self, timeout_message: str) -> None:
        """Sends shutdown (if subscribed after init) and waits, else kills; always reaps."""
        with self._lifecycle:
            proc = self._plugin
            if proc is None or not proc.alive:
                if proc is not None:
                    proc.reap()
                return
            if proc.state == INIT_COMPLETE and self._subscribed("shutdown"):
                proc.expecting_exit = True
                proc.send_notification("shutdown", {"shutdown": {}})
                if not proc.wait_exit(self.shutdown_timeout_s):
                    self.shutdown_killed = True
                    self._logbook.add_lightningd("debug", timeout_message)
            proc.kill(None)

    # --- the RPC socket ----------------------------------------------------------------------

    def _handle_request(self, request: dict, conn: RpcConnection) -> dict:
        """Returns the reply to one socket request (plugin method, builtin or backend)."""
        method, req_id = request["method"], request["id"]
        proc = self._plugin
        manifest = self.manifest
        try:
            if manifest and method in {m.name for m in manifest.methods}:
                if proc is not None and proc.alive and proc.state != AWAITING_MANIFEST:
                    return self._forward(proc, request, conn)
                if proc is not None and proc.death_reason:
                    raise RpcError(PLUGIN_TERMINATED, f"Plugin terminated: {proc.death_reason}",
                                   {"reason": proc.death_reason,
                                    "stderr_tail": self._logbook.stderr_tail()})
            handler = BUILTINS.get(method)
            result = handler(self, request) if handler else self._backend_call(
                method, request["params"], unknown=None)
            return {"jsonrpc": "2.0", "id": req_id, "result": result}
        except RpcError as e:
            return {"jsonrpc": "2.0", "id": req_id, "error": e.to_json()}

    def _forward(self, proc: PluginProcess, request: dict, conn: RpcConnection) -> dict:
        """Returns the plugin's reply to a user's call: whole request, only the id rewritten."""
        caller_id = request["id"]
        forwarded = {k: (self._next_id(request["method"], caller_id) if k == "id" else v)
                     for k, v in request.items()}

        def relay(method: str, params: dict) -> None:  # plugin_notify_cb
            if conn.notifications:
                conn.send({"jsonrpc": "2.0", "method": method,
                           "params": {k: (caller_id if k == "id" else v)
                                      for k, v in params.items()}})

        response = proc.wait(proc.send_request(forwarded, relay), None)
        return {k: (caller_id if k == "id" else v) for k, v in response.items()}

    def _plugin_request(self, method: str, params: dict, caller_id: object) -> dict:
        """Returns the plugin's reply to a request lightningd makes for a caller (setconfig)."""
        proc = self._plugin
        request = {"jsonrpc": "2.0", "id": self._next_id(method, caller_id), "method": method,
                   "params": params}
        if proc is None:
            raise RpcError(PLUGIN_TERMINATED, "Plugin terminated before replying to RPC call.")
        return proc.wait(proc.send_request(request), None)

    def _backend_call(self, method: str, params: object, unknown: RpcError | None) -> object:
        """Returns rpc_backend's answer; its RpcError passes through, other errors become -1.

        An unknown method is -32601 "Unknown command 'x'" (or `unknown`, if given).
        """
        missing = unknown or RpcError(METHOD_NOT_FOUND, f"Unknown command '{method}'")
        if self._backend is None:
            raise missing
        try:
            return self._backend(method, params)
        except RpcError as e:
            if e.code == METHOD_NOT_FOUND and unknown is not None:
                raise unknown from None
            raise
        except Exception as e:  # a backend bug reaches the caller as lightningd's catch-all
            raise RpcError(LIGHTNINGD, str(e) or type(e).__name__) from None

    def _next_id(self, method: str, caller_id: object = None) -> str:
        """Returns lightningd's next request id: "cln:<method>#<n>", prefixed by the caller's."""
        own = f"cln:{method}#{next(self._ids)}"
        if caller_id is None:
            return own
        prefix = caller_id if isinstance(caller_id, str) else json.dumps(caller_id)
        if json.dumps(prefix, ensure_ascii=False)[1:-1] != prefix:
            prefix = "weird-id"  # ids needing JSON escapes are not worth escaping
        return f"{prefix}/{own}"

    # --- helpers for the command table -------------------------------------------------------

    def _plugin_running(self) -> bool:
        return self._plugin is not None and self._plugin.alive and self.manifest is not None

    def _live_option_store(self) -> OptionStore | None:
        return self._store if self._plugin_running() else None

    def _live_option(self, name: str) -> PluginOption | None:
        """Returns the running plugin's option `name`, or None."""
        return self.manifest.option(name) if self._plugin_running() else None

    def _subscribed(self, topic: str) -> bool:
        subs = self.subscriptions
        return topic in subs or ("*" in subs and topic != "log")

    def _plugin_list(self) -> list[dict]:
        """Returns `plugin list` entries: the extra plugins, then ours while it runs."""
        entries = [dict(p) for p in self._extra_plugins]
        proc = self._plugin
        if proc is not None and proc.alive and self.manifest is not None:
            entries.append({"name": self.plugin_path, "active": proc.state == INIT_COMPLETE,
                            "dynamic": self.manifest.dynamic})
        return entries

    def _backend_methods(self) -> dict[str, str]:
        """Returns {name: usage} the backend declares through a `methods` attribute, if any."""
        declared = getattr(self._backend, "methods", None)
        if callable(declared):
            declared = declared()
        if isinstance(declared, dict):
            return {str(k): str(v) for k, v in declared.items()}
        return {str(name): "" for name in declared or ()}

    def _taken_methods(self) -> frozenset[str]:
        return frozenset(BUILTINS) | LIGHTNINGD_COMMANDS | frozenset(self._backend_methods())

    def _command_usages(self) -> dict[str, str]:
        usages = {**self._backend_methods(), **BUILTIN_USAGE}
        if self._plugin_running():
            usages.update({m.name: m.usage for m in self.manifest.methods})
        return usages

    def _on_plugin_notification(self, method: str, params: object) -> None:
        """Keeps a custom notification the plugin declared; logs (and drops) any other."""
        if self.manifest and method in self.manifest.notifications:
            self.custom_notifications.append((method, params))
        else:
            self._logbook.add_lightningd(
                "unusual", f'Plugin attempted to send a notification to topic "{method}" it '
                           "hasn't declared in its manifest, not forwarding to subscribers.")


def _weak_handler(ld: Lightningd) -> Callable[[dict, RpcConnection], dict]:
    """Returns ld._handle_request without keeping `ld` alive (answers -5 once it is gone)."""
    ref = weakref.ref(ld)

    def handle(request: dict, conn: RpcConnection) -> dict:
        target = ref()
        if target is None:
            return {"jsonrpc": "2.0", "id": request["id"], "error": {
                "code": LIGHTNINGD_SHUTDOWN, "message": "lightningd is shutting down"}}
        return target._handle_request(request, conn)
    return handle


def _weak_notification_sink(ld: Lightningd) -> Callable[[str, object], None]:
    """Returns ld._on_plugin_notification without keeping `ld` alive."""
    ref = weakref.ref(ld)

    def sink(method: str, params: object) -> None:
        target = ref()
        if target is not None:
            target._on_plugin_notification(method, params)
    return sink


def _script_index(argv: list[str]) -> int:
    """Returns the index of the plugin's own file: 1 when argv[0] is a Python interpreter."""
    if len(argv) > 1 and re.fullmatch(r"python[0-9.]*", os.path.basename(argv[0])):
        return 1
    return 0


def _absolute_argv(argv: list[str]) -> list[str]:
    """Returns argv with the executable and the plugin file as absolute paths."""
    argv = list(argv)
    for i in {0, _script_index(argv)}:
        if i == _script_index(argv) or os.sep in argv[i]:
            argv[i] = os.path.abspath(argv[i])
    return argv


def _cmdline_settings(options: dict) -> Iterable[tuple[str, object]]:
    """Yields (name, value) pairs; a list or tuple sets a (multi) option once per item."""
    for name, value in options.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None:
                yield name, item


_UNSET = object()


def _cmdline_text(option: PluginOption, value: object) -> object:
    """Returns `value` as command-line text for `option` (None: a set flag; _UNSET: skip).

    A flag takes True (set) or False (unset); Python bools and numbers are spelled as a
    user would type them ("true", "600"); strings pass unchanged, to be checked as lightningd
    checks them.
    """
    if option.type == "flag" and isinstance(value, bool):
        return None if value else _UNSET
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _or_hex(a: str, b: str) -> str:
    """Returns the bitwise OR of two big-endian hex feature strings (right-aligned)."""
    width = max(len(a), len(b))
    if width == 0:
        return ""
    return format(int(a or "0", 16) | int(b or "0", 16), f"0{width}x")
