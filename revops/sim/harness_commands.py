"""The lightningd commands the harness answers itself: setconfig, listconfigs, help, plugin.

Each `cmd_*(ld, request)` returns the command's result or raises RpcError, with lightningd's
parameter rules (common/json_param.c) and messages. `ld` is the `Lightningd` harness; these
functions are its command table and use its internals on purpose.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from revops.sim.errors import INVALID_PARAMS, LIGHTNINGD, METHOD_NOT_FOUND, PLUGIN_ERROR, RpcError
from revops.sim.harness_config import Source
from revops.sim.harness_manifest import raw_text

if TYPE_CHECKING:
    from revops.sim.harness import Lightningd

_ABSENT = object()


def bad_param(name: str, why: str) -> RpcError:
    """Returns command_fail_badparam's error (the non-developer wording)."""
    return RpcError(INVALID_PARAMS, f"{name}: {why}: invalid token (see logs for details)")


def bind_params(params: object, spec: list[tuple[str, bool]],
                allow_extra: bool = False) -> dict[str, object]:
    """Returns {name: value} for `params` bound to `spec` [(name, required)], like param().

    JSON null counts as absent. Raises -32602 with json_param.c's messages.
    """
    if isinstance(params, list):
        if len(params) > len(spec) and not allow_extra:
            raise RpcError(INVALID_PARAMS,
                           f"too many parameters: got {len(params)}, expected {len(spec)}")
        bound = {name: value for (name, _), value in zip(spec, params)}
    elif isinstance(params, dict):
        names = {name for name, _ in spec}
        for key in params:
            if key not in names and not allow_extra:
                raise RpcError(INVALID_PARAMS, f"unknown parameter: {key}, this may be caused by "
                               "a failure to autodetect key=value-style parameters. Please try "
                               "using the -k flag and explicit key=value pairs of parameters.")
        bound = {name: params[name] for name, _ in spec if name in params}
    else:
        raise RpcError(INVALID_PARAMS, "Expected array or object for params")
    bound = {k: v for k, v in bound.items() if v is not None}
    for name, required in spec:
        if required and name not in bound:
            raise RpcError(INVALID_PARAMS, f"missing required parameter: {name}")
    return bound


def _param_bool(name: str, value: object) -> bool:
    """Returns a bool parameter (json_to_bool reads the token text: true/false)."""
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise bad_param(name, "should be 'true' or 'false'")


def cmd_setconfig(ld: Lightningd, request: dict) -> dict:
    """`setconfig config [val] [transient]` for a plugin option (§1.4); others go to the backend."""
    args = bind_params(request["params"], [("config", True), ("val", False),
                                           ("transient", False)])
    name = raw_text(args["config"])
    option = ld._live_option(name)
    if option is None:
        return ld._backend_call("setconfig", request["params"], unknown=bad_param(
            "config", "Unknown config option"))
    if not option.dynamic:
        raise bad_param("config", "Not a dynamic config option")
    transient = _param_bool("transient", args.get("transient", False))
    val = args.get("val", _ABSENT)
    if option.multi:
        if val is not _ABSENT and not isinstance(val, list):
            raise RpcError(INVALID_PARAMS,
                           f"{name} is a multi option: val must be an array")
        vals = [raw_text(v) for v in val] if val is not _ABSENT else []
    elif isinstance(val, list):
        raise RpcError(INVALID_PARAMS, f"{name} is not a multi option: val must not be an array")
    else:
        vals = [] if val is _ABSENT else [raw_text(val)]
    if not transient:
        ld._store.check_writable(name)
    if option.type == "flag" and vals:
        raise RpcError(INVALID_PARAMS, f"{name} does not take a value")
    if option.type != "flag" and not option.multi and not vals:
        raise RpcError(INVALID_PARAMS, f"{name} requires a value")

    plugin_params: dict = {"config": name}
    if option.multi:
        plugin_params["val"] = vals
    elif vals:
        plugin_params["val"] = vals[0]  # always a JSON string (json_add_string)
    response = ld._plugin_request("setconfig", plugin_params, caller_id=request["id"])
    error = response.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, int) and not isinstance(code, bool) and "message" in error:
            raise RpcError(code, raw_text(error["message"]))
        raise RpcError(LIGHTNINGD, f"Malformed setvalue {name} plugin return")
    if "result" not in response:
        raise RpcError(LIGHTNINGD, f"Malformed setvalue {name} plugin return")
    ld._store.apply_setconfig(name, vals, transient)
    return {"config": {"config": name, **(ld._store.config_entry(name) or {})}}


def cmd_listconfigs(ld: Lightningd, request: dict) -> dict:
    """`listconfigs [config]`: the backend's configs plus the running plugin's options."""
    args = bind_params(request["params"], [("config", False)])
    unknown = bad_param("config", "Unknown config option")
    if "config" in args:
        name = raw_text(args["config"])
        if ld._live_option(name) is not None:
            entry = ld._store.config_entry(name)
            return {"configs": {name: entry} if entry is not None else {}}
        return ld._backend_call("listconfigs", request["params"], unknown=unknown)
    try:
        base = ld._backend_call("listconfigs", request["params"], unknown=None)
    except RpcError as e:
        if e.code != METHOD_NOT_FOUND:
            raise
        base = {"configs": {}}
    configs = dict(base.get("configs", {})) if isinstance(base, dict) else {}
    if ld._live_option_store() is not None:
        configs.update(ld._store.listconfigs())
    return {**(base if isinstance(base, dict) else {}), "configs": configs}


def cmd_help(ld: Lightningd, request: dict) -> dict:
    """`help [command]`: `{"help":[{"command":"<name> <usage>"}]}` for every known command."""
    args = bind_params(request["params"], [("command", False)])
    usages = ld._command_usages()
    if "command" in args:
        name = raw_text(args["command"])
        if name not in usages:
            raise RpcError(METHOD_NOT_FOUND, f"Unknown command {name}")
        usages = {name: usages[name]}
    result: dict = {"help": [{"command": f"{name} {usage}".rstrip()}
                             for name, usage in sorted(usages.items())]}
    if "command" in args:
        result["format-hint"] = "simple"
    return result


def _plugin_matches(path: str, name: str) -> bool:
    """Returns True if `name` names plugin `path` (plugin_paths_match)."""
    if "/" in name:
        return os.path.realpath(name) == os.path.realpath(path) or name == path
    return os.path.basename(path) == name


def cmd_plugin(ld: Lightningd, request: dict) -> dict:
    """`plugin subcommand=list|stop|start|rescan|startdir` (§1.9)."""
    params = request["params"]
    args = bind_params(params, [("subcommand", True), ("plugin", False), ("options", False)],
                       allow_extra=True)
    sub = args["subcommand"]
    if sub in ("list", "rescan", "startdir"):
        return {"command": sub, "plugins": ld._plugin_list()}
    if sub == "stop":
        name = raw_text(args.get("plugin", ""))
        if "plugin" not in args:
            raise RpcError(INVALID_PARAMS, "missing required parameter: plugin")
        for entry in ld._extra_plugins:
            if _plugin_matches(entry["name"], name):
                if not entry["dynamic"]:
                    raise RpcError(INVALID_PARAMS, f"{name} cannot be managed when "
                                                   "lightningd is up")
                ld._extra_plugins.remove(entry)
                return {"command": "stop", "result": f"Successfully stopped "
                                                     f"{os.path.basename(entry['name'])}."}
        if ld._plugin_running() and _plugin_matches(ld.plugin_path, name):
            if not ld.manifest.dynamic:
                raise RpcError(INVALID_PARAMS, f"{name} cannot be managed when lightningd is up")
            ld._stop_plugin(timeout_message="Timeout on shutdown: killing anyway")
            return {"command": "stop",
                    "result": f"Successfully stopped {os.path.basename(ld.plugin_path)}."}
        raise RpcError(INVALID_PARAMS, f"Could not find plugin {name}")
    if sub == "start":
        if "plugin" not in args:
            raise RpcError(INVALID_PARAMS, "missing required parameter: plugin")
        path = raw_text(args["plugin"])
        if not _plugin_matches(ld.plugin_path, path):
            raise RpcError(INVALID_PARAMS, f"{path}: the simulator only starts its own plugin "
                                           f"{ld.plugin_path}")
        if ld._plugin_running():
            raise RpcError(INVALID_PARAMS, f"{path}: already registered")
        settings = _start_settings(params, args)
        problem = ld._start_plugin(startup=False, settings=settings, source=Source.PLUGIN_START)
        if problem:
            raise RpcError(PLUGIN_ERROR, f"{ld.plugin_path}: {problem}")
        return {"command": "start", "plugins": ld._plugin_list()}
    raise bad_param("subcommand", "unknown subcommand")


def _start_settings(params: object, args: dict) -> list[tuple[str, str | None]]:
    """Returns the (name, value) options of a `plugin start` ("options" array + extra keys)."""
    settings: list[tuple[str, str | None]] = []
    for item in args.get("options", []) or []:
        name, _, value = raw_text(item).partition("=")
        settings.append((name, value if "=" in raw_text(item) else None))
    if isinstance(params, dict):
        for key, value in params.items():
            if key not in ("subcommand", "plugin", "options"):
                settings.append((key, None if value is True else raw_text(value)))
    return settings

