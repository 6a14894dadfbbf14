"""The `getmanifest` reply as lightningd parses it, and its option-value checkers.

Mirrors lightningd/plugin.c (`plugin_parse_getmanifest_response`, `plugin_opt_add`,
`plugin_rpcmethod_add`, ...) and the ccan/opt value checkers it uses. Error strings are
lightningd's own, so a test can compare them with what a real node logs. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

OPTION_TYPES = ("string", "string-conceal", "int", "bool", "flag")
_OPTION_NAME_CHARS = re.compile(r"[0-9a-z_-]*")
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_VERSION = re.compile(r"v(\d+)\.(\d+)(?:\.(\d+))?")

# Option names lightningd itself registers (from doc/schemas/listconfigs.json, v26.06):
# a plugin option with one of these names is a duplicate.
LIGHTNINGD_OPTION_NAMES = frozenset("""
accept-htlc-tlv-type addr alias allow-deprecated-apis always-use-proxy announce-addr
announce-addr-discovered announce-addr-discovered-port announce-addr-dns
autoconnect-seeker-peers autolisten bind-addr clear-plugins cltv-delta cltv-final commit-fee
commit-feerate-offset commit-time conf currencyrate-add-source currencyrate-disable-source
daemon database-upgrade developer disable-dns disable-mpp disable-plugin encrypted-hsm
experimental-anchors experimental-dual-fund experimental-peer-storage
experimental-shutdown-wrong-funding experimental-simple-close experimental-splicing fee-base
fee-per-satoshi fetchinvoice-noconnect force-feerates funding-confirms hsm-passphrase
htlc-maximum-msat htlc-minimum-msat i-promise-to-fix-broken-api-user ignore-fee-limits
important-plugin invoices-onchain-fallback large-channels lightning-dir log-file log-level
log-prefix log-timestamps mainnet max-concurrent-htlcs max-dust-htlc-exposure-msat
max-locktime-blocks message-padding min-capacity-sat min-emergency-msat network offline
payment-fronting-node pid-file plugin plugin-dir proxy recover regtest
require-confirmed-inputs rescan rgb rpc-file rpc-file-mode signet subdaemon testnet
tor-service-password wallet watchtime-blocks
""".split())

# Notification topics only lightningd may emit (notification.c); a plugin may not declare them.
NATIVE_TOPICS = frozenset("""
connect disconnect warning invoice_payment invoice_creation channel_opened
channel_open_failed channel_state_changed forward_event sendpay_success sendpay_failure
coin_movement balance_snapshot openchannel_peer_sigs shutdown block_added log
plugin_started plugin_stopped custommsg onionmessage_forward_fail deprecated_oneshot
pay_part_start pay_part_end xpay_pay_part_start xpay_pay_part_end
""".split())

# Hooks lightningd knows (plugin_hook.c users); registering any other name fails.
KNOWN_HOOKS = frozenset("""
peer_connected commitment_revocation db_write invoice_payment openchannel openchannel2
openchannel2_changed openchannel2_sign rbf_channel htlc_accepted rpc_command custommsg
onion_message_recv onion_message_recv_secret recover
""".split())


class ManifestError(ValueError):
    """A manifest lightningd refuses; the message is lightningd's reason for killing the plugin."""


@dataclass(frozen=True)
class PluginOption:
    """One option from the manifest. `default` is lightningd's string form (json_strdup)."""

    name: str
    type: str
    description: str
    default: str | None
    multi: bool
    dynamic: bool
    deprecated: tuple[str, ...] | None  # (start[, end]) versions, () for plain `true`

    @property
    def value_field(self) -> str:
        """Returns the listconfigs/setconfig field name for this option's value(s)."""
        base = {"int": "int", "bool": "bool"}.get(self.type, "str")
        return f"values_{base}" if self.multi else f"value_{base}"


@dataclass(frozen=True)
class PluginMethod:
    """One rpcmethod from the manifest."""

    name: str
    usage: str
    description: str


@dataclass(frozen=True)
class Manifest:
    """A validated `getmanifest` result. `disable` set means the plugin disabled itself."""

    raw: dict
    disable: str | None
    dynamic: bool = False
    options: tuple[PluginOption, ...] = ()
    methods: tuple[PluginMethod, ...] = ()
    subscriptions: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    notifications: tuple[str, ...] = ()
    featurebits: tuple[tuple[str, str], ...] = ()
    custommessages: tuple[int, ...] = ()
    nonnumericids: bool = True
    cancheck: bool = False

    def option(self, name: str) -> PluginOption | None:
        """Returns the option called `name`, or None."""
        return next((o for o in self.options if o.name == name), None)


def raw_text(value: object) -> str:
    """Returns lightningd's `json_strdup` of a token: string contents, else compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def version_number(version: str) -> int:
    """Returns a comparable number for "vX.Y[.Z]" (0 if unparsable), like version_to_number."""
    m = _VERSION.fullmatch(version.split("-")[0]) if isinstance(version, str) else None
    if not m:
        return 0
    return int(m.group(1)) * 10000 + int(m.group(2)) * 100 + int(m.group(3) or 0)


def parse_long(arg: str) -> int | None:
    """Returns `arg` as C strtol(arg, &end, 0) reads a whole string, or None if it does not."""
    m = _STRTOL.fullmatch(arg)
    if not m:
        return None
    digits = m.group(2)
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if m.group(1) == "-" else value


def check_value(opt_type: str, arg: str) -> str | None:
    """Returns lightningd's complaint about `arg` as a value of `opt_type`, or None if valid.

    int is ccan's opt_set_longval; bool is plugin_opt_bool_check ("1"/"0" were deprecated in
    v23.08 and are refused without allow-deprecated-apis); strings take anything.
    """
    if opt_type == "int":
        value = parse_long(arg)
        if value is None:
            return f"'{arg}' is not a number"
        if not _LONG_MIN <= value <= _LONG_MAX:
            return f"'{arg}' is out of range"
    elif opt_type == "bool":
        if arg in ("1", "0"):
            return "boolean plugin arguments must be true or false"
        if arg.lower() not in ("true", "yes", "false", "no"):
            return f"Invalid argument '{arg}'"
    return None


def canon_bool(arg: str) -> bool:
    """Returns the bool lightningd's opt_canon_bool makes of a checked bool value."""
    return arg.lower() in ("true", "yes")


def typed_value(option: PluginOption, arg: str | None) -> object:
    """Returns the JSON value lightningd puts in `init` for one checked value of `option`."""
    if option.type == "flag" or arg is None:
        return True
    if option.type == "int":
        return parse_long(arg)
    if option.type == "bool":
        return canon_bool(arg)
    return arg


def _bool_setting(where: str, obj: dict, key: str) -> bool:
    """Returns obj[key] as a bool (absent is False); raises ManifestError otherwise."""
    if key not in obj:
        return False
    if not isinstance(obj[key], bool):
        raise ManifestError(f'{where}: invalid "{key}" field {raw_text(obj[key])}')
    return obj[key]


def _parse_deprecated(value: object) -> tuple[str, ...] | None:
    """Returns the deprecation window of a `deprecated` field (None if not deprecated)."""
    if isinstance(value, bool):
        return () if value else None
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        raise ManifestError(
            f'"deprecated" must be an array of 1 or 2 elements, not {raw_text(value)}')
    for label, version in zip(("start", "end"), value):
        if version_number(raw_text(version)) == 0:
            raise ManifestError(f'invalid "deprecated" {label} version {raw_text(version)}')
    return tuple(raw_text(v) for v in value)


def _parse_option(opt: object, taken: set[str], startup: bool, plugin_path: str) -> PluginOption:
    """Returns one checked option, in plugin_opt_add's order of checks."""
    if not isinstance(opt, dict) or not all(k in opt for k in ("name", "type", "description")):
        raise ManifestError('An option is missing either "name", "description" or "type"')
    name = raw_text(opt["name"])
    if not _OPTION_NAME_CHARS.fullmatch(name):
        raise ManifestError("Option \"name\" must be lowercase alphanumeric, plus _ or -'")
    if name in taken:
        if startup:  # lightningd calls fatal() here: the whole node refuses to start
            raise ManifestError(
                f"error starting plugin '{plugin_path}': option name '{name}' is already taken")
        raise ManifestError(f'Option "{name}" already registered')
    deprecated = _parse_deprecated(opt["deprecated"]) if "deprecated" in opt else None
    multi = _bool_setting(f"--{name}", opt, "multi")
    dynamic = _bool_setting(f"--{name}", opt, "dynamic")
    opt_type, default = opt["type"], opt.get("default")
    if opt_type == "flag":
        if "default" in opt and default is not False:
            raise ManifestError(
                f"--{name} type flag default must be 'false' not {raw_text(default)}")
        if multi:
            raise ManifestError("flag type cannot be multi")
        default_text = None
    elif opt_type in ("string", "string-conceal", "int", "bool"):
        if opt_type == "bool" and multi:
            raise ManifestError("bool type cannot be multi")
        default_text = None if default is None else raw_text(default)
        if default_text is not None:
            problem = check_value(opt_type, default_text)
            if problem:
                raise ManifestError(f"Invalid default '{default_text}': {problem}")
    else:
        raise ManifestError('Only "string", "string-conceal", "int", "bool", and "flag" '
                            "options are supported")
    taken.add(name)
    return PluginOption(name=name, type=opt_type, description=raw_text(opt["description"]),
                        default=default_text, multi=multi, dynamic=dynamic,
                        deprecated=deprecated)


def _parse_method(meth: object, taken: set[str]) -> PluginMethod:
    """Returns one checked rpcmethod (v24.08+ rules: usage required, description ignored)."""
    shown = raw_text(meth)
    if not isinstance(meth, dict) or not isinstance(meth.get("name"), str):
        raise ManifestError(f'rpcmethod does not have a string "name": {shown}')
    if "usage" in meth and not isinstance(meth["usage"], str):
        raise ManifestError(f'"usage" is not a string: {shown}')
    if "usage" not in meth:
        raise ManifestError('"usage" not provided by plugin')
    if "deprecated" in meth:
        _parse_deprecated(meth["deprecated"])
    name = meth["name"]
    if name in taken:
        raise ManifestError(f'Could not register method "{name}", a method with that name '
                            "is already registered")
    taken.add(name)
    return PluginMethod(name=name, usage=meth["usage"],
                        description=raw_text(meth.get("description", "")))


def _parse_featurebits(result: dict, dynamic: bool) -> tuple[tuple[str, str], ...]:
    """Returns the (place, hex) featurebits, checked as lightningd checks them."""
    features = result.get("featurebits")
    if features is None:
        return ()
    if not isinstance(features, dict):
        features = {}
    found = []
    for place in ("init", "node", "channel", "invoice"):
        if place not in features:
            continue
        bits = features[place]
        if not isinstance(bits, str) or not _HEX.fullmatch(bits):
            raise ManifestError("Featurebits returned by plugin is not a valid hexadecimal "
                                f"string: {raw_text(bits)}")
        found.append((place, bits))
    if dynamic and any(bits for _, bits in found):
        raise ManifestError("Custom featurebits only allows for non-dynamic plugins: "
                            f"dynamic=1, featurebits={raw_text(features)}")
    return tuple(found)


def _parse_list(result: dict, key: str, required: bool, missing: str) -> list:
    """Returns result[key] when it is an array; raises lightningd's complaint otherwise."""
    if key not in result:
        if required:
            raise ManifestError(missing)
        return []
    if not isinstance(result[key], list):
        raise ManifestError(f'"result.{key}" is not an array')
    return result[key]


def parse_manifest(response: dict, *, plugin_path: str, startup: bool = True,
                   taken_methods: frozenset[str] = frozenset(),
                   taken_options: frozenset[str] = LIGHTNINGD_OPTION_NAMES) -> Manifest:
    """Returns the checked manifest of a `getmanifest` response; raises ManifestError.

    `taken_methods` are command names already registered (builtins, other plugins):
    a plugin method with one of those names is refused, as lightningd refuses it.
    """
    result = response.get("result")
    if not isinstance(result, dict):
        raise ManifestError(f"Invalid/missing result tok in '{raw_text(response)}'")
    if "disable" in result:
        return Manifest(raw=result, disable=raw_text(result["disable"]))
    dynamic = _bool_setting("getmanifest", result, "dynamic")
    featurebits = _parse_featurebits(result, dynamic)
    custommessages = _parse_list(result, "custommessages", False, "")
    for i, msg in enumerate(custommessages):
        if not isinstance(msg, int) or isinstance(msg, bool) or not 0 <= msg <= 0xFFFF:
            raise ManifestError(f"custommessages {i} not a u16: '{raw_text(msg)}'")
    if "nonnumericids" in result:
        if not isinstance(result["nonnumericids"], bool):
            raise ManifestError(f"Invalid nonnumericids: {raw_text(result['nonnumericids'])}")
        if not result["nonnumericids"]:  # allowed only with allow-deprecated-apis (v23.08-v24.08)
            raise ManifestError("Plugin does not allow nonnumericids")
    if "cancheck" in result and not isinstance(result["cancheck"], bool):
        raise ManifestError(f"Invalid cancheck: {raw_text(result['cancheck'])}")

    notifications = []
    for i, obj in enumerate(_parse_list(result, "notifications", False, "")):
        if not isinstance(obj, dict):
            raise ManifestError(f'"result.notifications[{i}]" is not an object')
        if not isinstance(obj.get("method"), str):
            raise ManifestError(f'"result.notifications[{i}].name" missing or not a string.')
        if obj["method"] in NATIVE_TOPICS:
            raise ManifestError(f'plugin attempted to register a native notification topic '
                                f'"{obj["method"]}", these may however only be sent by lightningd')
        notifications.append(obj["method"])

    taken = set(taken_options)
    options = tuple(_parse_option(opt, taken, startup, plugin_path) for opt in _parse_list(
        result, "options", True, '"result.options" was not found in the manifest'))
    taken = set(taken_methods)
    methods = tuple(_parse_method(m, taken) for m in _parse_list(
        result, "rpcmethods", True, '"result.rpcmethods" missing'))

    subscriptions = []
    for i, topic in enumerate(_parse_list(result, "subscriptions", False, "")):
        if not isinstance(topic, str):
            raise ManifestError(f"result.subscriptions[{i}] is not a string: '{raw_text(topic)}'")
        subscriptions.append(topic)

    hooks = []
    for hook in _parse_list(result, "hooks", False, ""):
        if isinstance(hook, dict):
            if "name" not in hook:
                raise ManifestError(f"no name in hook obj {raw_text(hook)}")
            hook = hook["name"]
        name = raw_text(hook)
        if name not in KNOWN_HOOKS or name in hooks:
            raise ManifestError(f"could not register hook '{name}', either the name doesn't "
                                "exist or another plugin already registered it.")
        hooks.append(name)

    return Manifest(raw=result, disable=None, dynamic=dynamic, options=options,
                    methods=methods, subscriptions=tuple(subscriptions), hooks=tuple(hooks),
                    notifications=tuple(notifications), featurebits=featurebits,
                    custommessages=tuple(custommessages),
                    nonnumericids=result.get("nonnumericids", True),
                    cancheck=result.get("cancheck", False))
