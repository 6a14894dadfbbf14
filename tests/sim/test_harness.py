"""End-to-end tests of the lightningd stand-in, with real plugin subprocesses.

tiny_plugin.py is a pyln-client plugin; raw_plugin.py speaks the protocol with plain json and
dumps what it receives, so tests can check the exact bytes-level contract.
"""

import gc
import json
import os
import shutil
import socket
import sys
import tempfile
import time

import pytest
from pyln.client import LightningRpc
from pyln.client import RpcError as PylnRpcError

from revops.sim.errors import RpcError
from revops.sim.harness import DEFAULT_FEATURES, Lightningd, PluginStartupError

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")
TINY = [sys.executable, os.path.join(PLUGINS, "tiny_plugin.py")]
RAW = [sys.executable, os.path.join(PLUGINS, "raw_plugin.py")]
GETINFO = {"id": "02" + "11" * 32, "alias": "sim", "network": "regtest", "blockheight": 900000}
SLING = "/usr/local/libexec/c-lightning/plugins/sling"


def backend(method, params):
    """A small backend: getinfo, a listconfigs with one builtin option, and a failing method."""
    if method == "getinfo":
        return GETINFO
    if method == "listconfigs":
        configs = {"fee-base": {"value_int": 1000, "source": "default"}}
        name = (params.get("config") if isinstance(params, dict) else (params or [None])[0])
        if name is not None and name not in configs:
            raise RpcError(-32602, "config: Unknown config option: invalid token "
                                   "(see logs for details)")
        return {"configs": configs if name is None else {name: configs[name]}}
    if method == "setchannel":
        raise RpcError(-32602, "id: Short channel id not found: invalid token "
                               "(see logs for details)")
    if method == "explode":
        raise ValueError("backend bug")
    raise RpcError(-32601, f"Unknown command '{method}'")


backend.methods = {"getinfo": "", "setchannel": "id [feebase] [feeppm]"}


def assert_reaped(pid):
    """The process is gone and was waited for: no zombie, no stray child."""
    assert not os.path.exists(f"/proc/{pid}"), open(f"/proc/{pid}/status").read()[:200]


@pytest.fixture
def ldir():
    # A short path: unix sockets are limited to ~108 bytes (tmp_path can be longer).
    path = tempfile.mkdtemp(prefix="rv")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make(ldir):
    """Returns a factory of started harnesses; stops them all and checks they were reaped."""
    started = []

    def factory(cmd=TINY, start=True, **kwargs):
        kwargs.setdefault("rpc_backend", backend)
        kwargs.setdefault("startup_timeout_s", 10)
        h = Lightningd(cmd, kwargs.pop("lightning_dir", ldir), **kwargs)
        started.append(h)
        return h.start() if start else h

    yield factory
    for h in started:
        h.stop()
        if h.pid is not None:
            assert_reaped(h.pid)
        assert not os.path.exists(h.socket_path)


@pytest.fixture(scope="module")
def tiny():
    """One tiny plugin shared by the read-only tests of this module."""
    path = tempfile.mkdtemp(prefix="rv")
    h = Lightningd(TINY, path, backend, options={"tiny-interval": "300", "tiny-verbose": True,
                                                 "tiny-peer": ["02aa", "03bb"]},
                   extra_plugins=[SLING], startup_timeout_s=10)
    with h:
        yield h
    assert_reaped(h.pid)
    shutil.rmtree(path, ignore_errors=True)


def raw_env(ldir, mode="ok", manifest=None):
    """Returns the environment for raw_plugin.py, dumping to <ldir>/dump.jsonl."""
    env = {"RAW_MODE": mode, "RAW_DUMP": os.path.join(ldir, "dump.jsonl")}
    if manifest is not None:
        env["RAW_MANIFEST"] = json.dumps(manifest)
    return env


def dumped(ldir):
    """Returns the messages raw_plugin.py received (after its startup record)."""
    with open(os.path.join(ldir, "dump.jsonl")) as f:
        return [json.loads(line) for line in f]


def wait_until(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# --- startup ---------------------------------------------------------------------------------

def test_start_reports_manifest_and_plugin_list(tiny):
    assert tiny.running
    assert {"tiny-echo", "tiny-fail", "tiny-getinfo", "tiny-self"} <= set(tiny.methods)
    assert tiny.subscriptions == ["connect", "shutdown"]
    assert tiny.manifest.option("tiny-interval").dynamic
    listed = tiny.call("plugin", ["list"])
    assert listed == {"command": "list", "plugins": [
        {"name": SLING, "active": True, "dynamic": True},
        {"name": os.path.join(PLUGINS, "tiny_plugin.py"), "active": True, "dynamic": True}]}
    assert tiny.call("plugin", {"subcommand": "list"}) == listed
    assert ("info", "tiny plugin initialised") in tiny.logs


def test_spawn_environment_and_exact_startup_messages(make, ldir):
    manifest = {
        "options": [
            {"name": "r-int", "type": "int", "description": "d", "default": 600},
            {"name": "r-bool", "type": "bool", "description": "d", "default": False},
            {"name": "r-str", "type": "string", "description": "d", "default": "x"},
            {"name": "r-secret", "type": "string-conceal", "description": "d"},
            {"name": "r-flag", "type": "flag", "description": "d"},
            {"name": "r-unset-flag", "type": "flag", "description": "d", "default": False},
            {"name": "r-multi", "type": "string", "description": "d", "multi": True,
             "default": "dflt"},
            {"name": "r-multi-set", "type": "int", "description": "d", "multi": True},
            {"name": "r-nodefault", "type": "string", "description": "d"},
        ],
        "rpcmethods": [{"name": "raw-emit", "usage": "text"}], "dynamic": True,
        "featurebits": {"node": "0200"}}
    manifest["dynamic"] = False  # featurebits need a non-dynamic plugin
    h = make(RAW, env=raw_env(ldir, manifest=manifest), version="v24.11",
             options={"r-int": "0x20", "r-bool": "True", "r-secret": "hunter2", "r-flag": True,
                      "r-multi-set": ["1", 2]})
    startup, getmanifest, init = dumped(ldir)[:3]
    assert startup["startup"] == {"cwd": ldir, "argv": [RAW[1]], "LIGHTNINGD_PLUGIN": "1",
                                  "LIGHTNINGD_VERSION": "v24.11"}
    assert getmanifest == {"jsonrpc": "2.0", "method": "getmanifest", "id": "cln:getmanifest#1",
                           "params": {"allow-deprecated-apis": False}}
    assert init["id"] == "cln:init#2" and init["method"] == "init"
    assert set(init["params"]) == {"options", "configuration"}
    assert init["params"]["options"] == {
        "r-int": 32, "r-bool": True, "r-str": "x", "r-secret": "hunter2", "r-flag": True,
        "r-multi": ["dflt"], "r-multi-set": [1, 2]}
    configuration = init["params"]["configuration"]
    assert configuration["lightning-dir"] == ldir and configuration["rpc-file"] == "lightning-rpc"
    assert configuration["startup"] is True and configuration["network"] == "regtest"
    assert set(configuration) == {"lightning-dir", "rpc-file", "startup", "network",
                                  "feature_set"}
    assert configuration["feature_set"] == {**DEFAULT_FEATURES, "node": format(
        int(DEFAULT_FEATURES["node"], 16) | 0x0200, "016x")}  # the plugin's bit ORed in
    assert h.init_params == init["params"]


def test_init_options_as_pyln_receives_them(tiny):
    got = tiny.call("tiny-options")
    assert got["init"]["options"] == {"tiny-interval": 300, "tiny-dry-run": False,
                                      "tiny-label": "tiny", "tiny-verbose": True,
                                      "tiny-peer": ["02aa", "03bb"]}
    assert got["init"]["configuration"]["lightning-dir"] == tiny.lightning_dir


@pytest.mark.parametrize("options, reason", [
    ({"tiny-interval": "abc"}, "--tiny-interval=abc: 'abc' is not a number"),
    ({"tiny-dry-run": "1"}, "boolean plugin arguments must be true or false"),
    ({"tiny-verbose": "yes"}, "option '--tiny-verbose' doesn't allow an argument"),
    ({"no-such-option": "1"}, "--no-such-option: unrecognized option"),
])
def test_bad_option_values_fail_startup(make, options, reason):
    h = make(start=False, options=options)
    with pytest.raises(PluginStartupError, match=reason):
        h.start()
    assert not h.running
    assert_reaped(h.pid)


@pytest.mark.parametrize("manifest, reason", [
    ({"options": [], "rpcmethods": [{"name": "m"}]}, '"usage" not provided by plugin'),
    ({"options": [{"name": "Bad", "type": "string", "description": ""}], "rpcmethods": []},
     'must be lowercase alphanumeric'),
    ({"options": [{"name": "x", "type": "int", "description": "", "default": "ten"}],
      "rpcmethods": []}, "Invalid default 'ten': 'ten' is not a number"),
    ({"options": [], "rpcmethods": [], "nonnumericids": False},
     "Plugin does not allow nonnumericids"),
    ({"options": [], "rpcmethods": [{"name": "setconfig", "usage": ""}]},
     'Could not register method "setconfig"'),
])
def test_bad_manifest_is_a_startup_error(make, ldir, manifest, reason):
    h = make(RAW, start=False, env=raw_env(ldir, manifest=manifest))
    with pytest.raises(PluginStartupError, match=reason) as err:
        h.start()
    assert err.value.reason.endswith(reason) or reason in err.value.reason
    assert not h.running and not os.path.exists(h.socket_path)
    assert ("unusual", f"Killing plugin: {err.value.reason.split(': ', 1)[1]}") \
        in h.lightningd_logs


@pytest.mark.parametrize("mode, timeouts, reason, stderr", [
    ("crash_manifest", {}, "exited before replying to getmanifest", "RuntimeError: boom"),
    ("garbage_manifest", {}, "Failed to parse JSON response 'hello, I am not JSON", None),
    ("hang_manifest", {"getmanifest_timeout_s": 0.5}, "timed out before replying to getmanifest",
     None),
    ("hang_init", {"init_timeout_s": 0.5}, "timed out before replying to init", None),
])
def test_plugin_failing_at_startup_is_reported_and_reaped(make, ldir, mode, timeouts, reason,
                                                          stderr):
    h = make(RAW, start=False, env=raw_env(ldir, mode=mode), **timeouts)
    started = time.monotonic()
    with pytest.raises(PluginStartupError) as err:
        h.start()
    assert reason in str(err.value)
    assert time.monotonic() - started < 5
    if stderr:
        assert stderr in err.value.stderr_tail and stderr in str(err.value)
    assert_reaped(h.pid)


def test_disable_in_manifest_or_init_is_honoured(make, ldir):
    h = make(RAW, env=raw_env(ldir, manifest={"disable": "no sling here"}))
    assert h.disabled == "no sling here" and not h.running
    assert h.call("plugin", ["list"])["plugins"] == []
    h2 = make(RAW, env=raw_env(ldir, mode="disable_init"), lightning_dir=ldir + "-2")
    assert h2.disabled == "no backend here" and not h2.running
    with pytest.raises(RpcError) as err:
        h2.call("raw-emit", ["x"])
    assert err.value.code == -32601  # its methods went away with it
    shutil.rmtree(ldir + "-2", ignore_errors=True)


def test_init_error_reply_still_counts_as_initialised(make, ldir):
    # lightningd only looks for result.disable: any other reply completes init.
    h = make(RAW, env=raw_env(ldir, mode="error_init"))
    assert h.running and h.init_response["error"]["message"] == "nope"


# --- RPC: forwarding, plugin.rpc, errors -------------------------------------------------

def test_positional_and_keyword_calls_are_forwarded_unchanged(tiny):
    got = tiny.call("tiny-echo", ["hi", 2])
    assert got["params"] == ["hi", 2] and (got["message"], got["count"]) == ("hi", 2)
    assert got["id"].startswith(f"cli:tiny-echo#{os.getpid()}/cln:tiny-echo#")
    got = tiny.call("tiny-echo", {"message": "kw", "count": 3})
    assert got["params"] == {"message": "kw", "count": 3} and got["count"] == 3


def test_request_forwarded_verbatim_with_only_id_rewritten(make, ldir):
    manifest = {"options": [], "rpcmethods": [{"name": "raw-echo", "usage": "[anything]"}]}
    h = make(RAW, env=raw_env(ldir, manifest=manifest))
    request = {"jsonrpc": "2.0", "id": 'we"ird', "method": "raw-echo", "params": [1],
               "filter": {"x": True}, "extra": 5}
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(h.socket_path)
        sock.sendall(json.dumps(request).encode())
        buf = b""
        while b"\n\n" not in buf:
            buf += sock.recv(4096)
    reply = json.loads(buf.split(b"\n\n")[0])
    assert reply == {"jsonrpc": "2.0", "id": 'we"ird',
                     "result": {"method": "raw-echo", "params": [1]}}
    forwarded = dumped(ldir)[-1]
    assert forwarded == {**request, "id": forwarded["id"]}
    assert forwarded["id"].startswith("weird-id/cln:raw-echo#")  # needs escaping: replaced


def test_plugin_errors_are_relayed_with_code_and_message(tiny):
    with pytest.raises(RpcError) as err:
        tiny.call("tiny-fail", {"code": 777, "message": "not today"})
    assert (err.value.code, err.value.message) == (777, "not today")
    assert "traceback" in err.value.error  # the plugin's error object, unchanged
    with pytest.raises(RpcError) as err:
        tiny.call("tiny-echo", ["a", 1, 2, 3])  # pyln: TypeError -> -32600
    assert err.value.code == -32600
    assert err.value.message.startswith("Error while processing tiny-echo: ")


def test_plugin_rpc_reaches_backend_and_itself(tiny):
    assert tiny.call("tiny-getinfo") == GETINFO
    got = tiny.call("tiny-self")
    assert got["message"] == "from-self"
    assert "/tiny_plugin:tiny-echo#" in got["id"]  # pyln's cmdprefix chain, treated as opaque


def test_backend_errors_builtin_errors_and_unknown_methods(tiny):
    cases = [("setchannel", ["1x2x3"], -32602, "id: Short channel id not found: invalid token "
                                               "(see logs for details)"),
             ("explode", [], -1, "backend bug"),
             ("nope", [], -32601, "Unknown command 'nope'")]
    for method, params, code, message in cases:
        with pytest.raises(RpcError) as err:
            tiny.call(method, params)
        assert (err.value.code, err.value.message) == (code, message)


def test_socket_protocol_no_params_and_pipelined_requests(tiny):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(tiny.socket_path)
        # No delimiter between requests, several per connection, one split mid-object.
        payload = (json.dumps({"jsonrpc": "2.0", "id": "a", "method": "getinfo"}) +
                   json.dumps({"jsonrpc": "2.0", "id": "b", "method": "tiny-echo",
                               "params": ["x"]}) +
                   json.dumps({"jsonrpc": "2.0", "id": 7, "method": "getinfo", "params": {}}))
        sock.sendall(payload[:50].encode())
        time.sleep(0.05)
        sock.sendall(payload[50:].encode())
        buf = b""
        while buf.count(b"\n\n") < 3:
            buf += sock.recv(65536)
    replies = {r["id"]: r for r in map(json.loads, buf.split(b"\n\n")[:3])}
    assert replies["a"]["error"] == {"code": -32600, "message": "No params"}
    assert replies["b"]["result"]["message"] == "x"
    assert replies[7]["result"] == GETINFO


def test_pyln_client_works_on_the_socket_including_notifications(tiny):
    rpc = LightningRpc(tiny.socket_path)
    assert rpc.getinfo() == GETINFO
    assert rpc.tiny_echo(message="hi")["message"] == "hi"
    with pytest.raises(PylnRpcError) as err:
        rpc.call("nope")
    assert err.value.error == {"code": -32601, "message": "Unknown command 'nope'"}
    seen = []

    def on_message(message, progress, request, **kwargs):
        seen.append(message)

    with rpc.notify(on_message):
        assert rpc.call("tiny-progress", {"steps": 2}) == {"steps": 2}
    assert seen == ["step 1", "step 2"]
    notes = []
    tiny.call("tiny-progress", [1], on_notification=lambda m, p: notes.append((m, p)))
    assert notes == [("message", {"id": f"cli:tiny-progress#{os.getpid()}", "level": "info",
                                  "message": "step 1"})]


def test_long_lightning_dir_socket_path(make):
    base = tempfile.mkdtemp(prefix="rv")
    deep = os.path.join(base, *["d" * 40] * 3)
    h = make(lightning_dir=deep)
    assert len(h.socket_path) > 108
    assert h.call("tiny-getinfo") == GETINFO  # pyln inside the plugin copes too
    assert h.rpc_client().getinfo() == GETINFO
    h.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_help_and_listconfigs_merge_plugin_and_backend(tiny):
    commands = {entry["command"].split(" ")[0]: entry["command"]
                for entry in tiny.call("help")["help"]}
    assert commands["tiny-echo"].startswith("tiny-echo message [count]")
    assert commands["setchannel"] == "setchannel id [feebase] [feeppm]"
    assert {"getinfo", "setconfig", "listconfigs", "plugin", "help"} <= set(commands)
    one = tiny.call("help", ["tiny-fail"])
    assert one["help"][0]["command"].startswith("tiny-fail [code] [message]")
    configs = tiny.call("listconfigs")["configs"]
    assert configs["fee-base"] == {"value_int": 1000, "source": "default"}
    assert configs["tiny-peer"] == {"values_str": ["02aa", "03bb"],
                                    "sources": ["cmdline", "cmdline"],
                                    "plugin": tiny.plugin_path, "dynamic": True}
    assert configs["tiny-verbose"] == {"set": True, "source": "cmdline",
                                       "plugin": tiny.plugin_path}
    assert tiny.call("listconfigs", ["tiny-dry-run"]) == {"configs": {"tiny-dry-run": {
        "value_bool": False, "source": "default", "plugin": tiny.plugin_path}}}
    with pytest.raises(RpcError, match="config: Unknown config option: invalid token"):
        tiny.call("listconfigs", {"config": "nope"})


# --- setconfig ------------------------------------------------------------------------------

def test_setconfig_sends_a_string_val_and_answers_like_lightningd(make, ldir):
    manifest = {"options": [{"name": "r-int", "type": "int", "description": "d",
                             "default": 1, "dynamic": True},
                            {"name": "r-static", "type": "string", "description": "d"}],
                "rpcmethods": [{"name": "raw-emit", "usage": "text"}], "dynamic": True}
    h = make(RAW, env=raw_env(ldir, manifest=manifest))
    assert h.setconfig("r-int", 300) == {"config": {
        "config": "r-int", "value_int": 300, "source": "setconfig transient",
        "plugin": h.plugin_path, "dynamic": True}}
    sent = dumped(ldir)[-1]
    assert sent["method"] == "setconfig"
    assert sent["params"] == {"config": "r-int", "val": "300"}  # a JSON string, always
    assert sent["id"].startswith(f"cli:setconfig#{os.getpid()}/cln:setconfig#")
    persisted = h.call("setconfig", ["r-int", "42"])  # positional; not transient: a file line
    assert persisted["config"]["source"] == os.path.join(ldir, "config.setconfig") + ":2"
    assert h.call("listconfigs", ["r-int"])["configs"]["r-int"]["value_int"] == 42
    for params, message in [
            (["r-static", "x"], "config: Not a dynamic config option: invalid token"),
            (["nope", "x"], "config: Unknown config option: invalid token"),
            (["r-int"], "r-int requires a value"),
            (["r-int", ["1"]], "r-int is not a multi option: val must not be an array"),
            ({"config": "r-int", "val": "1", "transient": "maybe"},
             "transient: should be 'true' or 'false'")]:
        with pytest.raises(RpcError) as err:
            h.call("setconfig", params)
        assert err.value.code == -32602 and message in err.value.message


def test_setconfig_on_change_refusal_is_relayed(make):
    h = make()
    with pytest.raises(RpcError) as err:
        h.setconfig("tiny-interval", -5)
    assert err.value.code == -32600
    assert err.value.message == ("Error while processing setconfig: "
                                 "tiny-interval must be > 0, got -5")
    assert h.setconfig("tiny-interval", "120")["config"]["value_int"] == 120
    assert h.call("tiny-options")["current"]["tiny-interval"] == "120"  # pyln keeps the string
    multi = h.setconfig("tiny-peer", ["02cc"])["config"]
    assert multi["values_str"] == ["02cc"] and multi["sources"] == ["setconfig transient"]


# --- notifications -------------------------------------------------------------------------

def test_notify_only_subscribed_topics_in_nested_form(make):
    h = make()
    payload = {"id": "02" + "aa" * 32, "direction": "in",
               "address": {"type": "ipv4", "address": "10.0.0.1", "port": 9735}}
    assert h.notify("connect", payload) is True
    assert h.notify("forward_event", {"status": "settled"}) is False  # not subscribed
    wait_until(lambda: h.call("tiny-events")["events"])
    assert h.call("tiny-events")["events"] == [{"topic": "connect", "connect": payload,
                                                "extra": []}]
    assert h.running  # an unsubscribed topic would have crashed pyln: it was not sent


def test_wildcard_subscription_excludes_log(make, ldir):
    manifest = {"options": [], "rpcmethods": [], "subscriptions": ["*"]}
    # "*" covers shutdown too: this plugin ignores it, so do not wait 30 s at stop.
    h = make(RAW, env=raw_env(ldir, manifest=manifest), shutdown_timeout_s=0.3)
    assert h.notify("log", {"level": "info", "message": "x"}) is False
    assert h.notify("block_added", {"hash": "00" * 32, "height": 1}) is True
    wait_until(lambda: dumped(ldir)[-1].get("method") == "block_added")
    assert dumped(ldir)[-1] == {"jsonrpc": "2.0", "method": "block_added", "params": {
        "block_added": {"hash": "00" * 32, "height": 1}}}


# --- stopping -------------------------------------------------------------------------------

def test_shutdown_is_sent_and_plugin_exits_cleanly(make):
    h = make()
    pid = h.pid
    started = time.monotonic()
    h.stop()
    assert time.monotonic() - started < 5
    assert h.returncode == 0 and not h.shutdown_killed and h.death_reason is None
    assert ("info", "tiny plugin shutting down") in h.logs
    assert_reaped(pid)
    with pytest.raises(RuntimeError, match="not running"):
        h.call("getinfo")


def test_plugin_ignoring_shutdown_is_killed_after_timeout(make):
    h = make(env={"TINY_SHUTDOWN_HANG": "1"}, shutdown_timeout_s=0.5)
    started = time.monotonic()
    h.stop()
    assert 0.5 <= time.monotonic() - started < 5
    assert h.shutdown_killed and h.returncode == -9
    assert_reaped(h.pid)


def test_unsubscribed_plugin_is_killed_at_once(make, ldir):
    h = make(RAW, env=raw_env(ldir), shutdown_timeout_s=30)
    started = time.monotonic()
    h.stop()
    assert time.monotonic() - started < 2 and h.returncode == -9


def test_plugin_stop_and_start_commands(make):
    h = make(options={"tiny-label": "first"})
    with pytest.raises(RpcError, match="Could not find plugin nope.py"):
        h.call("plugin", ["stop", "nope.py"])
    assert h.call("plugin", ["stop", "tiny_plugin.py"]) == {
        "command": "stop", "result": "Successfully stopped tiny_plugin.py."}
    assert not h.running and h.returncode == 0
    with pytest.raises(RpcError) as err:
        h.call("tiny-echo", ["x"])
    assert err.value.code == -32601  # stopped plugins' commands are gone
    started = h.call("plugin", {"subcommand": "start", "plugin": h.plugin_path,
                                "tiny-label": "second"})
    assert started["command"] == "start" and started["plugins"][-1]["active"]
    got = h.call("tiny-options")["init"]
    assert got["configuration"]["startup"] is False
    assert got["options"]["tiny-label"] == "second"
    assert h.call("listconfigs", ["tiny-label"])["configs"]["tiny-label"]["source"] == \
        "pluginstart"


# --- faults: lightningd kills the plugin --------------------------------------------------

@pytest.mark.parametrize("text, reason", [
    ("this is not json\n", "Failed to parse JSON response 'this is not json"),
    ('{"id": "x", "result": {}}', 'JSON-RPC message does not contain "jsonrpc" field'),
    ('{"jsonrpc": "2.0", "method": "log", "params": {"level": "io", "message": "x"}}',
     'Unknown log-level "io", valid values are "debug", "info", "warn", or "error".'),
    ('{"jsonrpc": "2.0", "method": "log", "params": {"level": "loud", "message": "x"}}',
     'Unknown log-level "loud"'),
    ('{"jsonrpc": "2.0", "method": "log", "params": {"message": 5}}',
     'Log notification from plugin doesn\'t have a string "message" field'),
    ('{"jsonrpc": "2.0", "method": "message", "params": {"message": "x"}}',
     'JSON-RPC notify "id"-field is not present'),
])
def test_protocol_violations_kill_the_plugin(make, ldir, text, reason):
    h = make(RAW, env=raw_env(ldir))
    with pytest.raises(RpcError) as err:
        h.call("raw-emit", {"text": text})  # pending when killed
    assert (err.value.code, err.value.message) == (
        -4, "Plugin terminated before replying to RPC call.")
    assert reason in h.death_reason and not h.running
    with pytest.raises(RpcError) as err:
        h.call("raw-emit", {"text": "{}"})
    assert err.value.code == -4 and reason in err.value.message
    assert h.call("plugin", ["list"])["plugins"] == []
    assert h.returncode == -9
    assert_reaped(h.pid)


def test_accepted_log_levels_and_messages(make, ldir):
    h = make(RAW, env=raw_env(ldir))
    text = "".join(json.dumps({"jsonrpc": "2.0", "method": "log",
                               "params": {"level": level, "message": message}})
                   for level, message in [("WARN", "careful"), ("error", "bad\nworse"),
                                          ("trace", "t")])
    with pytest.raises(TimeoutError):  # raw-emit never answers
        h.call("raw-emit", {"text": text}, timeout_s=0.3)
    h.wait_for_log("^t$", timeout_s=5)
    assert h.logs == [("unusual", "careful"), ("broken", "bad"), ("broken", "worse"),
                      ("trace", "t")]
    assert h.running


def test_bad_log_level_from_pyln_kills_it(make):
    h = make()
    with pytest.raises(RpcError) as err:
        h.call("tiny-log", ["hello", "io"])
    assert err.value.code == -4 and 'Unknown log-level "io"' in h.death_reason


def test_plugin_dying_mid_request_gives_minus_4_with_stderr(make, ldir):
    h = make(RAW, env=raw_env(ldir, mode="stderr_then_exit_after_init"))
    wait_until(lambda: not h.running)
    assert h.death_reason == "exited during normal operation"
    with pytest.raises(RpcError) as err:
        h.call("raw-emit", ["x"])
    assert err.value.code == -4
    assert "fatal: lost my marbles" in err.value.data["stderr_tail"]
    h2 = make(lightning_dir=ldir + "-2")
    with pytest.raises(RpcError) as err:
        h2.call("tiny-crash")
    assert err.value.code == -4
    wait_until(lambda: h2.returncode == 3)
    shutil.rmtree(ldir + "-2", ignore_errors=True)


def test_forgotten_harness_is_cleaned_up_by_its_finalizer(ldir):
    h = Lightningd(TINY, ldir, backend, startup_timeout_s=10).start()
    pid, socket_path = h.pid, h.socket_path
    del h
    gc.collect()
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"))
    assert not os.path.exists(socket_path)
