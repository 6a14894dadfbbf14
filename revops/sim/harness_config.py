"""Plugin option values as lightningd keeps them: a list of config vars with their sources.

Mirrors common/configvar.c and lightningd/configs.c for plugin options only: values set on
the command line, by `plugin start`, by `setconfig` (written to `<lightning-dir>/config.setconfig`)
or by a transient `setconfig`; the typed `init.options` object; and the `listconfigs` /
`setconfig` reply entries. For a non-multi option the last var wins; a multi option shows all.
"""

from __future__ import annotations

import enum
import json
import os
import re
import time
from dataclasses import dataclass

from revops.sim.errors import INVALID_PARAMS, LIGHTNINGD, RpcError
from revops.sim.harness_manifest import (
    PluginOption, canon_bool, check_value, typed_value, version_number,
)

SETCONFIG_HEADER = ("# Created and update by setconfig, but you can edit this manually "
                    "when node is stopped.")
_LITERAL = re.compile(r"[-0-9.]+")


class Source(enum.Enum):
    """Where a config var came from (enum configvar_src)."""

    CMDLINE = "cmdline"
    PLUGIN_START = "pluginstart"
    FILE = "file"
    TRANSIENT = "setconfig transient"


@dataclass
class ConfigVar:
    """One `name[=value]` setting; `value` is None for a flag."""

    name: str
    value: str | None
    src: Source
    file: str | None = None
    linenum: int = 0

    @property
    def source(self) -> str:
        """Returns the `source` string listconfigs shows for this var."""
        return f"{self.file}:{self.linenum}" if self.src is Source.FILE else self.src.value

    @property
    def confline(self) -> str:
        """Returns the line a config file holds for this var."""
        return self.name if self.value is None else f"{self.name}={self.value}"


def deprecation_refused(option: PluginOption, version: str) -> bool:
    """Returns True when setting `option` fails with "deprecated option (will be removed!)".

    Without allow-deprecated-apis a deprecated option is refused once the running version
    has reached its start version, and always once past its end (common/deprecation.c).
    A plain `deprecated: true` starts at the next release, so it is still accepted.
    """
    if not option.deprecated:
        return False
    now = version_number(version)
    end = option.deprecated[1] if len(option.deprecated) > 1 else None
    if end and version_number(end) <= now:
        return True
    return version_number(option.deprecated[0]) <= now


def check_setting(option: PluginOption, value: object, version: str) -> str | None:
    """Returns why `value` (as given on a command line) cannot set `option`, or None."""
    if deprecation_refused(option, version):
        return "deprecated option (will be removed!)"
    if option.type == "flag":
        return None if value is None else f"option '--{option.name}' doesn't allow an argument"
    if value is None:
        return f"option '--{option.name}' requires an argument"
    problem = check_value(option.type, value)
    return f"--{option.name}={value}: {problem}" if problem else None


class OptionStore:
    """The config vars of one plugin's options, plus lightningd's config.setconfig file."""

    def __init__(self, options: tuple[PluginOption, ...], plugin_path: str, lightning_dir: str):
        self.options = {o.name: o for o in options}
        self.plugin_path = plugin_path
        self.lightning_dir = lightning_dir
        self.vars: list[ConfigVar] = []
        self.setconfig_file: str | None = None

    def add(self, name: str, value: str | None, src: Source) -> None:
        """Adds a checked setting (command line or `plugin start`)."""
        self.vars.append(ConfigVar(name, value, src))

    def effective(self, name: str) -> list[ConfigVar]:
        """Returns the vars in force for `name`: all for multi, else only the last one."""
        found = [cv for cv in self.vars if cv.name == name]
        return found if self.options[name].multi else found[-1:]

    def init_options(self) -> dict:
        """Returns `init.params.options`, typed as json_add_plugin_options types them."""
        out: dict = {}
        for opt in self.options.values():
            cvs = self.effective(opt.name)
            if not cvs and opt.default is None:
                continue  # unset without default (and every unset flag) is omitted
            values = [cv.value for cv in cvs] or [opt.default]
            typed = [typed_value(opt, v) for v in values]
            out[opt.name] = typed if opt.multi else typed[-1]
        return out

    def config_entry(self, name: str) -> dict | None:
        """Returns the listconfigs fields of option `name` (no "config" key), or None if hidden.

        A multi option only lists values that were set: its default does not appear.
        """
        opt = self.options[name]
        cvs = self.effective(name)
        entry: dict
        if opt.type == "flag":
            entry = {"set": bool(cvs), "source": cvs[-1].source if cvs else "default"}
        elif opt.multi:
            entry = {opt.value_field: [_shown(opt, cv.value) for cv in cvs],
                     "sources": [cv.source for cv in cvs]}
        else:
            value = cvs[-1].value if cvs else opt.default
            if value is None:
                return None
            entry = {opt.value_field: _shown(opt, value),
                     "source": cvs[-1].source if cvs else "default"}
        entry["plugin"] = self.plugin_path
        if opt.dynamic:
            entry["dynamic"] = True
        return entry

    def listconfigs(self) -> dict:
        """Returns `{name: entry}` for every option listconfigs shows."""
        entries = {name: self.config_entry(name) for name in self.options}
        return {name: entry for name, entry in entries.items() if entry is not None}

    # --- setconfig -------------------------------------------------------------------------

    def check_writable(self, name: str) -> None:
        """Raises -32602 "Cannot write to config file ..." when a non-transient set would fail."""
        old = [cv for cv in self.effective(name) if cv.file]
        if old and not os.access(os.path.dirname(old[-1].file), os.W_OK):
            raise RpcError(INVALID_PARAMS, f"Cannot write to config file {old[-1].file}")
        target = self.setconfig_file or os.path.join(self.lightning_dir, "config")
        probe = os.path.dirname(target) if self.setconfig_file is None else target
        if not os.access(probe, os.W_OK):
            raise RpcError(INVALID_PARAMS, f"Cannot write to config file {target}")
        for cv in old:
            changed = _line_changed(cv)
            if changed:
                raise RpcError(INVALID_PARAMS, changed)

    def apply_setconfig(self, name: str, vals: list[str], transient: bool) -> None:
        """Records a value the plugin accepted, as setconfig_success does.

        `vals` holds one value (none for a flag); for a multi option it replaces all values.
        """
        opt = self.options[name]
        for val in vals:
            if opt.type == "int" and not _LITERAL.fullmatch(val):
                # configs.c check_literal() calls errx(): lightningd itself would exit here.
                raise RpcError(LIGHTNINGD, f"Bad literal for {name}: {val} "
                                           "(a real lightningd aborts on this value)")
        lines = [f"{name}={v}" for v in vals] if (vals or opt.multi) else [name]
        if opt.multi:
            self.vars = [cv for cv in self.vars if not (cv.name == name
                                                        and cv.src is Source.TRANSIENT)]
        if transient:
            self.vars.extend(ConfigVar(name, _value_of(line), Source.TRANSIENT) for line in lines)
            return
        if self.setconfig_file is None:
            self._create_setconfig_include()
        if opt.multi:
            for cv in [cv for cv in self.vars if cv.name == name and cv.file]:
                _replace_line(cv, None)
            self.vars = [cv for cv in self.vars if not (cv.name == name and cv.file)]
        else:
            old = [cv for cv in self.effective(name) if cv.file]
            if old and old[-1].file == self.setconfig_file:
                _replace_line(old[-1], lines[0])
                self.vars.remove(old[-1])
                self.vars.append(ConfigVar(name, _value_of(lines[0]), Source.FILE,
                                           self.setconfig_file, old[-1].linenum))
                return
            if old:
                _replace_line(old[-1], None)
        for line in lines:
            linenum = _append_to_file(self.setconfig_file, line)
            self.vars.append(ConfigVar(name, _value_of(line), Source.FILE,
                                       self.setconfig_file, linenum))

    def _create_setconfig_include(self) -> None:
        """Adds `include config.setconfig` to `<dir>/config` and creates the include."""
        base = os.path.join(self.lightning_dir, "config")
        _append_to_file(base, f"# Inserted by setconfig {time.ctime()}\ninclude config.setconfig")
        self.setconfig_file = base + ".setconfig"
        _append_to_file(self.setconfig_file, SETCONFIG_HEADER)


def _shown(opt: PluginOption, value: str | None) -> object:
    """Returns a value as listconfigs prints it (json_add_configval)."""
    if opt.type == "string-conceal":
        return "..."
    if opt.type == "bool":
        return canon_bool(value or "")
    if opt.type == "int":
        return json.loads(value) if _LITERAL.fullmatch(value or "") else typed_value(opt, value)
    return value


def _value_of(confline: str) -> str | None:
    """Returns the value part of `name=value` (None for a bare flag name)."""
    return confline.split("=", 1)[1] if "=" in confline else None


def _append_to_file(path: str, text: str) -> int:
    """Appends `text` as lines and returns the 1-based line number it starts at."""
    try:
        with open(path, encoding="utf-8") as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if old and not old.endswith("\n"):
        text = "\n" + text
    with open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    return old.count("\n") + 1


def _line_changed(cv: ConfigVar) -> str | None:
    """Returns why `cv`'s file line no longer holds what we wrote there, or None."""
    try:
        with open(cv.file, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        return f"Could not load configfile {cv.file}: {e.strerror}"
    if cv.linenum >= len(lines):
        return f"Configfile {cv.file} no longer has {cv.linenum} lines!"
    if lines[cv.linenum - 1] != cv.confline:
        return (f"Configfile {cv.file} line {cv.linenum} changed from {cv.confline} "
                f"to {lines[cv.linenum - 1]}!")
    return None


def _replace_line(cv: ConfigVar, replacement: str | None) -> None:
    """Replaces `cv`'s line, or comments it out when `replacement` is None (atomic rename)."""
    with open(cv.file, encoding="utf-8") as f:
        lines = f.read().split("\n")
    lines[cv.linenum - 1] = replacement if replacement is not None else (
        f"# setconfig commented out (see config.setconfig): {lines[cv.linenum - 1]}")
    tmp = f"{cv.file}.setconfig.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, cv.file)
