"""Unit tests of the harness's pure parts: stream decoding, manifest rules, option values."""

import json
import os

import pytest

from revops.sim.errors import INVALID_PARAMS, RpcError
from revops.sim.harness_commands import bind_params
from revops.sim.harness_config import OptionStore, Source, check_setting
from revops.sim.harness_manifest import (
    ManifestError, check_value, parse_long, parse_manifest,
)
from revops.sim.jsonrpc_server import JsonStreamDecoder, JsonStreamError, encode_message


def test_decoder_splits_undelimited_values_fed_byte_by_byte():
    stream = b'{"a":"x\\\\\\"}{[","b":[1,{"c":2}]}  \n{"z":"\xc3\xa9"}[3]'
    decoder = JsonStreamDecoder()
    values = []
    for i in range(len(stream)):
        values += decoder.feed(stream[i:i + 1])
    assert values == [{"a": 'x\\"}{[', "b": [1, {"c": 2}]}, {"z": "é"}, [3]]


@pytest.mark.parametrize("garbage", [b"hello\n", b"123", b'{"a": tru}', b'"str"'])
def test_decoder_rejects_garbage(garbage):
    with pytest.raises(JsonStreamError, match="Failed to parse JSON response"):
        JsonStreamDecoder().feed(garbage)


def test_decoder_waits_for_incomplete_values():
    decoder = JsonStreamDecoder()
    assert decoder.feed(b'{"a": tr') == []
    assert decoder.feed(b'ue}') == [{"a": True}]


def test_encode_message_is_compact_and_double_newline_framed():
    raw = encode_message({"s": "line1\nline2", "n": [1, 2]})
    assert raw == b'{"s":"line1\\nline2","n":[1,2]}\n\n'
    assert b"\n" not in raw[:-2]


def manifest(**result):
    """Returns a getmanifest response with defaults for the mandatory fields."""
    base = {"options": [], "rpcmethods": []}
    return {"jsonrpc": "2.0", "id": "cln:getmanifest#1", "result": {**base, **result}}


def opt(**fields):
    return {"name": "x-opt", "type": "string", "description": "d", **fields}


@pytest.mark.parametrize("result, reason", [
    (dict(rpcmethods=[{"name": "m"}]), '"usage" not provided by plugin'),
    (dict(rpcmethods=[{"name": "m", "usage": 5}]), '"usage" is not a string'),
    (dict(rpcmethods=[{"usage": ""}]), 'rpcmethod does not have a string "name"'),
    (dict(rpcmethods=[{"name": "getinfo", "usage": ""}]), 'Could not register method "getinfo"'),
    (dict(rpcmethods=[{"name": "m", "usage": ""}, {"name": "m", "usage": ""}]),
     'Could not register method "m"'),
    (dict(options=[{"name": "x", "type": "string"}]),
     'An option is missing either "name", "description" or "type"'),
    (dict(options=[opt(name="Bad_Name")]), 'Option "name" must be lowercase alphanumeric'),
    (dict(options=[opt(type="float")]), 'Only "string", "string-conceal", "int", "bool", '
                                        'and "flag" options are supported'),
    (dict(options=[opt(type="flag", default=True)]), "type flag default must be 'false' not true"),
    (dict(options=[opt(type="flag", multi=True)]), "flag type cannot be multi"),
    (dict(options=[opt(type="bool", multi=True)]), "bool type cannot be multi"),
    (dict(options=[opt(type="int", default="abc")]), "Invalid default 'abc': 'abc' is not a number"),
    (dict(options=[opt(type="int", default=1.5)]), "Invalid default '1.5'"),
    (dict(options=[opt(type="bool", default="maybe")]), "Invalid default 'maybe'"),
    (dict(options=[opt(multi="yes")]), '--x-opt: invalid "multi" field yes'),
    (dict(options=[opt(), opt()]), "option name 'x-opt' is already taken"),
    (dict(options=[opt(name="network")]), "option name 'network' is already taken"),
    (dict(nonnumericids=False), "Plugin does not allow nonnumericids"),
    (dict(nonnumericids="yes"), "Invalid nonnumericids: yes"),
    (dict(dynamic="yes"), 'getmanifest: invalid "dynamic" field yes'),
    (dict(featurebits={"node": "zz"}), "not a valid hexadecimal string"),
    (dict(dynamic=True, featurebits={"node": "0100"}), "only allows for non-dynamic plugins"),
    (dict(notifications=[{"method": "forward_event"}]), "native notification topic"),
    (dict(subscriptions=[5]), "result.subscriptions[0] is not a string"),
    (dict(hooks=["no_such_hook"]), "could not register hook 'no_such_hook'"),
    ({"rpcmethods": [], "options": None}, '"result.options" is not an array'),
])
def test_manifest_rules(result, reason):
    response = manifest(**result)
    if result.get("options", []) is None:
        response["result"]["options"] = None
    with pytest.raises(ManifestError) as err:
        parse_manifest(response, plugin_path="/p.py",
                       taken_methods=frozenset({"getinfo"}))
    assert reason in str(err.value)


def test_manifest_missing_sections_and_error_reply():
    with pytest.raises(ManifestError, match='"result.options" was not found'):
        parse_manifest({"result": {"rpcmethods": []}}, plugin_path="/p.py")
    with pytest.raises(ManifestError, match='"result.rpcmethods" missing'):
        parse_manifest({"result": {"options": []}}, plugin_path="/p.py")
    with pytest.raises(ManifestError, match="Invalid/missing result tok"):
        parse_manifest({"error": {"code": -1, "message": "x"}}, plugin_path="/p.py")


def test_duplicate_option_when_started_dynamically_is_not_fatal_wording():
    with pytest.raises(ManifestError, match='Option "x-opt" already registered'):
        parse_manifest(manifest(options=[opt(), opt()]), plugin_path="/p.py", startup=False)


def test_manifest_accepts_what_pyln_sends_and_disable_wins():
    pyln_style = manifest(
        options=[opt(name="rv-interval", type="int", default=600, multi=False,
                     deprecated=False, dynamic=True),
                 opt(name="rv-flag", type="flag", default=False),
                 opt(name="rv-old", deprecated=["v23.08", "v24.02"])],
        rpcmethods=[{"name": "rv-reload", "usage": "[force]", "description": ""}],
        subscriptions=["forward_event", "*"], hooks=[{"name": "htlc_accepted", "before": [],
                                                      "after": []}],
        dynamic=True, nonnumericids=True, notifications=[{"method": "rv-event"}],
        featurebits={}, custommessages=[])
    parsed = parse_manifest(pyln_style, plugin_path="/p.py")
    assert [o.name for o in parsed.options] == ["rv-interval", "rv-flag", "rv-old"]
    assert parsed.option("rv-interval").default == "600"
    assert parsed.subscriptions == ("forward_event", "*")
    assert parsed.notifications == ("rv-event",)
    disabled = parse_manifest(manifest(disable="no sling", rpcmethods=[{"name": "x"}]),
                              plugin_path="/p.py")
    assert disabled.disable == "no sling"


@pytest.mark.parametrize("arg, value", [("600", 600), (" -12", -12), ("0x10", 16), ("010", 8),
                                        ("+7", 7), ("", None), ("12 ", None), ("0x", None),
                                        ("08", None), ("1.5", None), ("abc", None)])
def test_parse_long_is_strtol_base_0(arg, value):
    assert parse_long(arg) == value


def test_value_checks_use_lightningd_wording():
    assert check_value("int", "abc") == "'abc' is not a number"
    assert check_value("int", str(2**63)) == f"'{2**63}' is out of range"
    assert check_value("bool", "1") == "boolean plugin arguments must be true or false"
    assert check_value("bool", "maybe") == "Invalid argument 'maybe'"
    assert check_value("bool", "YES") is None
    assert check_value("string", "") is None


def test_deprecated_option_refused_once_its_start_version_is_reached():
    parsed = parse_manifest(manifest(options=[opt(name="old", deprecated=["v24.02"]),
                                              opt(name="soon", deprecated=True)]),
                            plugin_path="/p.py")
    assert check_setting(parsed.option("old"), "x", "v25.12") == \
        "deprecated option (will be removed!)"
    assert check_setting(parsed.option("old"), "x", "v23.08") is None
    assert check_setting(parsed.option("soon"), "x", "v25.12") is None


def test_option_store_typing_and_listconfigs(tmp_path):
    parsed = parse_manifest(manifest(options=[
        opt(name="i", type="int", default=5, dynamic=True),
        opt(name="b", type="bool", default="false"),
        opt(name="s"),
        opt(name="c", type="string-conceal", default="secret"),
        opt(name="f", type="flag"),
        opt(name="m", multi=True, default="dflt"),
    ]), plugin_path="/p.py")
    store = OptionStore(parsed.options, "/p.py", str(tmp_path))
    assert store.init_options() == {"i": 5, "b": False, "c": "secret", "m": ["dflt"]}
    store.add("i", "0x10", Source.CMDLINE)
    store.add("b", "Yes", Source.CMDLINE)
    store.add("f", None, Source.CMDLINE)
    store.add("m", "a", Source.CMDLINE)
    store.add("m", "b", Source.PLUGIN_START)
    assert store.init_options() == {"i": 16, "b": True, "c": "secret", "f": True,
                                    "m": ["a", "b"]}
    configs = store.listconfigs()
    assert "s" not in configs  # unset, no default: not shown
    assert configs["c"]["value_str"] == "..."
    assert configs["f"] == {"set": True, "source": "cmdline", "plugin": "/p.py"}
    assert configs["m"] == {"values_str": ["a", "b"], "sources": ["cmdline", "pluginstart"],
                            "plugin": "/p.py"}
    assert configs["i"] == {"value_int": 16, "source": "cmdline", "plugin": "/p.py",
                            "dynamic": True}


def test_setconfig_file_lines_are_appended_then_replaced(tmp_path):
    parsed = parse_manifest(manifest(options=[opt(name="i", type="int", dynamic=True),
                                              opt(name="m", multi=True, dynamic=True)]),
                            plugin_path="/p.py")
    store = OptionStore(parsed.options, "/p.py", str(tmp_path))
    store.apply_setconfig("i", ["300"], transient=False)
    setconfig = os.path.join(tmp_path, "config.setconfig")
    assert store.config_entry("i")["source"] == f"{setconfig}:2"
    store.apply_setconfig("i", ["400"], transient=False)
    assert store.config_entry("i")["source"] == f"{setconfig}:2"
    store.apply_setconfig("m", ["a", "b"], transient=False)
    lines = open(setconfig).read().splitlines()
    assert lines[1:] == ["i=400", "m=a", "m=b"]
    assert "include config.setconfig" in open(os.path.join(tmp_path, "config")).read()
    store.apply_setconfig("m", ["c"], transient=False)
    assert open(setconfig).read().splitlines()[2:] == [
        "# setconfig commented out (see config.setconfig): m=a",
        "# setconfig commented out (see config.setconfig): m=b", "m=c"]
    store.apply_setconfig("i", ["7"], transient=True)
    assert store.config_entry("i") == {"value_int": 7, "source": "setconfig transient",
                                       "plugin": "/p.py", "dynamic": True}
    with pytest.raises(RpcError, match="Bad literal"):
        store.apply_setconfig("i", ["abc"], transient=True)


def test_bind_params_matches_json_param_messages():
    spec = [("config", True), ("val", False)]
    assert bind_params(["a", 3], spec) == {"config": "a", "val": 3}
    assert bind_params({"config": "a", "val": None}, spec) == {"config": "a"}
    for params, message in [(["a", 1, 2], "too many parameters: got 3, expected 2"),
                            ({"val": 1}, "missing required parameter: config"),
                            ({"config": "a", "x": 1}, "unknown parameter: x, this may be caused"),
                            ("str", "Expected array or object for params")]:
        with pytest.raises(RpcError) as err:
            bind_params(params, spec)
        assert err.value.code == INVALID_PARAMS and message in err.value.message


def test_rpc_error_json_shape():
    assert json.loads(json.dumps(RpcError(-4, "x").to_json())) == {"code": -4, "message": "x"}
