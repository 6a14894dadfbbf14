#!/usr/bin/env python3
"""A tiny pyln-client plugin exercising every part of the harness (tests/sim/test_harness.py).

Set TINY_SHUTDOWN_HANG=1 in its environment to make it ignore `shutdown` (to test the kill).
"""
import os
import threading
import time

from pyln.client import Plugin, RpcException

plugin = Plugin()
# Methods take `plugin` and `request` first: pyln injects them by position into a positional
# call, which misplaces them after omitted optional arguments.
RECEIVED = {"events": [], "init": None}


def on_interval_change(plugin, name, value):
    """Refuses anything but a positive integer (setconfig sends a string, e.g. "300")."""
    if int(value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


plugin.add_option("tiny-interval", 600, "seconds between cycles", opt_type="int",
                  dynamic=True, on_change=on_interval_change)
plugin.add_option("tiny-dry-run", False, "only pretend", opt_type="bool")
plugin.add_option("tiny-label", "tiny", "a label", opt_type="string", dynamic=True)
plugin.add_flag_option("tiny-verbose", "talk more")
plugin.add_option("tiny-peer", None, "peers to watch", opt_type="string", multi=True,
                  dynamic=True)


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    RECEIVED["init"] = {"options": options, "configuration": configuration}
    plugin.log("tiny plugin initialised", level="info")


@plugin.method("tiny-echo")
def tiny_echo(plugin, request, message, count=1):
    """Returns its arguments, the raw params and the request id it was called with."""
    params = request.params
    if isinstance(params, dict):  # pyln adds `plugin` and `request` to keyword params
        params = {k: v for k, v in params.items() if k not in ("plugin", "request")}
    return {"message": message, "count": count, "params": params, "id": request.id}


@plugin.method("tiny-fail")
def tiny_fail(plugin, code=1234, message="tiny failure"):
    """Raises an RpcException with the given code and message."""
    raise RpcException(message, code=code)


@plugin.method("tiny-getinfo")
def tiny_getinfo(plugin):
    """Returns lightningd's getinfo, fetched through plugin.rpc."""
    return plugin.rpc.getinfo()


@plugin.method("tiny-options")
def tiny_options(plugin):
    """Returns the init params received and the current option values."""
    current = {name: plugin.get_option(name) for name in plugin.options}
    return {"init": RECEIVED["init"], "current": current}


@plugin.async_method("tiny-self")
def tiny_self(plugin, request):
    """Calls this plugin's own tiny-echo through the RPC socket (async: stdin keeps flowing)."""
    def worker():
        try:
            request.set_result(plugin.rpc.call("tiny-echo", {"message": "from-self"}))
        except Exception as e:  # report, never hang the caller
            request.set_exception(e)
    threading.Thread(target=worker, daemon=True).start()


@plugin.method("tiny-events")
def tiny_events(plugin):
    """Returns the notifications received so far."""
    return {"events": RECEIVED["events"]}


@plugin.method("tiny-log")
def tiny_log(plugin, message, level="info"):
    """Logs `message` at `level` (a bad level gets this plugin killed)."""
    plugin.log(message, level=level)
    return {}


@plugin.method("tiny-progress")
def tiny_progress(plugin, request, steps=2):
    """Sends `steps` message notifications to the caller, then returns."""
    for i in range(steps):
        request.notify(f"step {i + 1}")
    return {"steps": steps}


@plugin.method("tiny-crash")
def tiny_crash(plugin):
    """Dies while the caller waits."""
    os._exit(3)


@plugin.subscribe("connect")
def on_connect(plugin, connect=None, **kwargs):
    RECEIVED["events"].append({"topic": "connect", "connect": connect, "extra": sorted(kwargs)})


@plugin.subscribe("shutdown")
def on_shutdown(plugin, **kwargs):
    if os.environ.get("TINY_SHUTDOWN_HANG") == "1":
        time.sleep(3600)
    plugin.log("tiny plugin shutting down")
    os._exit(0)


plugin.run()
