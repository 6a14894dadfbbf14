"""revops as a Core Lightning plugin: options, RPC methods and subscriptions. Wiring only.

Install: `plugin=/path/to/revops-plugin` in the lightningd config, or
`lightning-cli plugin start /path/to/revops-plugin`. Everything else is in `runtime.py`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pyln.client import Plugin, RpcException

from revops import rpcargs
from revops.accounting import service as accounting
from revops.act.limits import MAX_FEE_PPM, parse_max_fee_ppm
from revops.clock import ManualClock, SystemClock
from revops.diagnostics import DiagnosticError
from revops.lds.driver import Lds, LdsUnavailable
from revops.lds.metrics import register_lds_metrics
from revops.lds.params import LdsConfigError, from_options as lds_params
from revops.reserve_metrics import register_reserve_metrics
from revops.metrics import Metrics
from revops.node.rpc import LightningdRpc, NodeRpcError, fast_lightning_rpc
from revops.resources import default_policy_dir
from revops.memory import limit_malloc_arenas
from revops.runtime import CYCLE_KINDS, RequestError, Runtime, RuntimeOptions

INVALID_PARAMS = -32602
MIN_INTERVAL_S = 10



class _Plugin(Plugin):
    """pyln's Plugin, with arguments that do not fit a method's signature (too many, unknown
    names) answered as -32602 with the reason instead of pyln's generic -32600. It also holds
    what init built: the runtime, the metrics exporter and the address it listens on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runtime: Runtime | None = None
        self.metrics: Metrics | None = None
        self.metrics_at: str | None = None

    def _bind_pos(self, func, params, request):
        try:
            return super()._bind_pos(func, params, request)
        except TypeError as err:
            raise RpcException(f"{request.method}: {err}", INVALID_PARAMS) from None

    def _bind_kwargs(self, func, params, request):
        try:
            return super()._bind_kwargs(func, params, request)
        except TypeError as err:
            raise RpcException(f"{request.method}: {err}", INVALID_PARAMS) from None


plugin = _Plugin(dynamic=True)


def _interval_changed(name: str):
    def on_change(plugin, option, value):
        # setconfig's val is always a JSON string ("300"), whatever the option type.
        try:
            seconds = int(str(value))
        except ValueError:
            raise RpcException(f"{option} must be a whole number of seconds, got {value!r}", INVALID_PARAMS)
        if seconds < MIN_INTERVAL_S:
            raise RpcException(f"{option} must be at least {MIN_INTERVAL_S} seconds, got {seconds}", INVALID_PARAMS)
        runtime = plugin.runtime
        if runtime is not None:
            setattr(runtime.options, name, seconds)
    return on_change


plugin.add_option("revenue-ops-policy", "", "policy folder (default: <lightning-dir>/revops/policy, "
                  "created from the shipped default on first start)")
plugin.add_option("revenue-ops-db", "", "SQLite database (default: <lightning-dir>/revops/revops.sqlite3)")
plugin.add_option("revenue-ops-dry-run", False, "decide and journal, never call setchannel or sling",
                  opt_type="bool")
plugin.add_option("revenue-ops-fee-interval", 1800, "seconds between fee cycles", opt_type="int",
                  dynamic=True, on_change=_interval_changed("fee_interval_s"))
plugin.add_option("revenue-ops-rebalance-interval", 900, "seconds between rebalance cycles", opt_type="int",
                  dynamic=True, on_change=_interval_changed("rebalance_interval_s"))
plugin.add_option("revenue-ops-max-fee-ppm", MAX_FEE_PPM, "hard ceiling of any fee revops sets, in ppm; "
                  f"a decision above it is refused and journaled as an error (at most {MAX_FEE_PPM})",
                  opt_type="int")
plugin.add_option("revenue-ops-metrics-listen", "127.0.0.1:9750",
                  "host:port of the Prometheus exporter; empty disables it")
plugin.add_option("revenue-ops-metrics-textfile", "",
                  "also write the metrics to this .prom file after every cycle (node_exporter textfile collector)")
plugin.add_option("revenue-ops-auto-reload", False, "reload the policy when one of its files changes",
                  opt_type="bool")
plugin.add_option("revenue-lds-lnbits-url", "", "Liquidity Dividend System: URL of the LNbits with the "
                  "vault extension; empty turns LDS off")
plugin.add_option("revenue-lds-operator-key", "", "LDS: admin key of the operator wallet that set up the vault")
plugin.add_option("revenue-lds-max-liability-ratio", "0.85", "LDS: payouts halt and withdrawals queue when "
                  "liabilities exceed this fraction of physical liquidity")
plugin.add_option("revenue-lds-carry", "flex:0.30,30d:0.15,90d:0,180d:0", "LDS: operator carry by vault tier")
plugin.add_option("revenue-lds-opex-sat-per-day", 0, "LDS: operating expenses, sat per day", opt_type="int")
plugin.add_option("revenue-lds-chain-cost-sat-per-day", 0, "LDS: amortised channel open/close costs, sat per day",
                  opt_type="int")
plugin.add_option("revenue-ops-sim-clock", 0, "testing only: unix time the simulator starts at; time then "
                  "comes from revenue-cycle's `now` and no timer runs. 0 (never change it on a real node) "
                  "is the system clock", opt_type="int")


def _bool(value) -> bool:
    return value is True or str(value).lower() == "true"


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    lightning_dir = Path(configuration["lightning-dir"])
    home = lightning_dir / "revops"
    policy_dir = Path(options.get("revenue-ops-policy") or home / "policy")
    if not (policy_dir / "policy.yaml").exists() and not options.get("revenue-ops-policy"):
        # First start: give the operator their own editable copy of the shipped default.
        shutil.copytree(default_policy_dir(), policy_dir, dirs_exist_ok=True)
        plugin.log(f"copied the default policy to {policy_dir}; edit it there", "info")
    from revops.store import Store
    db_path = options.get("revenue-ops-db") or home / "revops.sqlite3"
    try:
        store = Store(db_path)
    except Exception as err:  # unwritable path, corrupt or newer database: say so, do not crash
        return {"disable": f"cannot open the database {db_path}: {err}"}
    try:
        max_fee_ppm = parse_max_fee_ppm(options.get("revenue-ops-max-fee-ppm", MAX_FEE_PPM))
    except ValueError as err:
        store.close()
        return {"disable": str(err)}
    sim_start_s = int(options.get("revenue-ops-sim-clock") or 0)
    simulated = sim_start_s > 0
    metrics = Metrics()
    metrics.textfile = options.get("revenue-ops-metrics-textfile") or None
    lds, lds_off_reason = _lds_factory(options, plugin)
    runtime = Runtime(
        LightningdRpc(fast_lightning_rpc(plugin.rpc.socket_path)), store,
        RuntimeOptions(policy_dir=policy_dir, dry_run=_bool(options.get("revenue-ops-dry-run")),
                       fee_interval_s=int(options.get("revenue-ops-fee-interval")),
                       rebalance_interval_s=int(options.get("revenue-ops-rebalance-interval")),
                       auto_reload=_bool(options.get("revenue-ops-auto-reload")), simulated_clock=simulated,
                       max_fee_ppm=max_fee_ppm),
        ManualClock(sim_start_s) if simulated else SystemClock(), plugin.log,
        observers=[metrics], lds=lds, lds_off_reason=lds_off_reason)
    if runtime.lds is not None:
        register_lds_metrics(metrics.registry, runtime.lds)
    register_reserve_metrics(metrics.registry, runtime.reserve)
    plugin.runtime, plugin.metrics = runtime, metrics
    try:
        runtime.start()
    except DiagnosticError as err:
        runtime.stop()
        plugin.runtime = None
        return {"disable": f"policy {policy_dir} is invalid: {err.diagnostics[0]}"}
    listen = options.get("revenue-ops-metrics-listen") or ""
    try:
        plugin.metrics_at = metrics.serve(listen)
    except (OSError, ValueError, OverflowError) as err:
        plugin.log(f"metrics exporter not started, running without it: revenue-ops-metrics-listen={listen!r}: "
                   f"{err}", "unusual")
    plugin.log(f"revops ready: policy {policy_dir}, {'dry-run' if runtime.options.dry_run else 'active'}", "info")
    return None


def _observer(fn):
    """Wraps a metrics hook for a notification so that a metrics bug is logged and never
    stops the notification (the runtime guards its own observers the same way)."""
    def call(*args):
        try:
            fn(*args)
        except Exception as err:
            plugin.log(f"metrics: {fn.__name__}: {type(err).__name__}: {err}", "unusual")
    return call


def _lds_factory(options: dict, plugin):
    """(how to build LDS from the runtime, or None; why it is off). LDS is optional: a bad
    option turns it off with the reason; the plugin runs on."""
    try:
        params = lds_params(options)
    except LdsConfigError as err:
        plugin.log(f"LDS off: {err}", "warn")
        return None, str(err)
    if params is None:
        return None, "revenue-lds-lnbits-url is not set"
    return (lambda runtime: Lds(runtime.rpc, runtime.store, params, plugin.log,
                                before_accounting=runtime.forward_events.flush,
                                reserve=runtime.reserve.suspension)), "revenue-lds-lnbits-url is not set"


def _runtime() -> Runtime:
    runtime = plugin.runtime
    if runtime is None:
        raise RpcException("revops is not running (see the log for why)", -32603)
    return runtime


# pyln binds `plugin` by position in positional calls and misplaces it after omitted
# optional arguments, so every method takes `plugin` first.
def _call(fn, *args):
    try:
        return fn(*args)
    except RequestError as err:
        raise RpcException(str(err), INVALID_PARAMS) from None
    except NodeRpcError as err:
        raise RpcException(f"cannot read the node: {err}", -32603) from None
    except RpcException:
        raise
    except Exception as err:  # a bug: one line to the caller, the traceback to the log
        import traceback
        plugin.log(traceback.format_exc(), "broken")
        raise RpcException(f"internal error: {type(err).__name__}: {err}", -32603) from None


@plugin.method("revenue-status")
def revenue_status(plugin):
    """Active policy, last reload, mode, dependencies (sling, bookkeeper) and the last cycle."""
    status = _runtime().status()
    status["metrics"] = plugin.metrics_at
    return status


@plugin.method("revenue-reload")
def revenue_reload(plugin):
    """Validate the policy folder and swap it in atomically; on error the running policy stays."""
    result = _runtime().reload()
    if not result.ok:
        lines = "\n".join(str(e) for e in result.errors)
        raise RpcException(f"policy not reloaded, previous policy kept:\n{lines}", INVALID_PARAMS)
    return {"name": result.name, "version": result.version, "digest": result.digest,
            "changed_rules": dict(result.changed_rules), "override_problems": list(result.override_problems),
            "duration_ms": round(result.duration_s * 1000, 1),
            "tests": {"passed": result.tests_passed, "remembered": result.tests_remembered}}


@plugin.method("revenue-explain")
def revenue_explain(plugin, scid=None):
    """For every channel (or one scid): each rule considered, why it matched or not, and the decision."""
    return _call(lambda: _runtime().explain(rpcargs.scid(scid)))


@plugin.method("revenue-config")
def revenue_config(plugin, key=None, value=None):
    """List params; `key` shows one; `key value` overrides it; `reset [key]` removes overrides."""
    def checked():
        k = rpcargs.text(key, "key", "a param name or `reset`")
        v = (rpcargs.text(value, "value", "the name of the param to reset") if k == "reset"
             else rpcargs.config_value(value))
        return _runtime().config(k, v)
    return _call(checked)


@plugin.method("revenue-snapshot")
def revenue_snapshot(plugin):
    """A revops-snapshot/1 of the live node and the plugin's state, for `revops explain` offline."""
    return _call(lambda: _runtime().snapshot())


@plugin.method("revenue-cycle")
def revenue_cycle(plugin, what="all", now=None):
    """Run a cycle now: fees, rebalance or all. (`now` is for the simulator's clock only.)"""
    return _call(lambda: _runtime().cycle(rpcargs.choice(what, "what", CYCLE_KINDS), rpcargs.unix_time(now)))


@plugin.method("revenue-decisions")
def revenue_decisions(plugin, scid=None, limit=50):
    """The decision journal, newest first: for one scid or all, at most `limit` entries."""
    return _call(lambda: _runtime().decisions(rpcargs.scid(scid), rpcargs.integer(limit, "limit", 1, 10000)))


@plugin.method("revenue-history")
def revenue_history(plugin, days=None):
    """Lifetime P&L (or the last `days`): routing income, rebalance and on-chain costs, open and closed channels."""
    return _call(lambda: accounting.history(_runtime(), days))


@plugin.method("revenue-capacity")
def revenue_capacity(plugin, days=30):
    """Capacity Augmentation: channels to close and where to splice their funds, with the numbers."""
    return _call(lambda: accounting.capacity(_runtime(), days))


@plugin.method("revenue-rebalances")
def revenue_rebalances(plugin, days=30):
    """Each rebalance of the last `days` (default 30) and what it earned back: the routing fees of the
    forwards that used the liquidity it bought, against its fee."""
    return _call(lambda: accounting.rebalances(_runtime(), days))


@plugin.method("revenue-dashboard")
def revenue_dashboard(plugin):
    """One human summary: P&L by period, top earners and bleeders, budget, mode, policy."""
    metrics = plugin.metrics
    return _call(lambda: accounting.dashboard(_runtime(), metrics.rebalance_summary() if metrics else None))


@plugin.method("revenue-lds-status")
def revenue_lds_status(plugin):
    """Liquidity Dividend System: solvency, payouts halted or not, high-water mark, recent periods."""
    runtime = _runtime()
    if runtime.lds is None:
        return {"enabled": False, "reason": runtime.lds_off_reason}
    return runtime.lds.status()


@plugin.method("revenue-lds-investors")
def revenue_lds_investors(plugin):
    """Each LDS investor: principal, lots by tier and lock-up, 72 h TWAB, dividends paid."""
    try:
        return _lds().investors(_runtime().clock.now())
    except LdsUnavailable as err:
        raise RpcException(str(err), -32603) from None


@plugin.method("revenue-lds-payout")
def revenue_lds_payout(plugin, dry_run=False):
    """Pay the LDS dividends due now; `dry_run` shows the next payout table and pays nothing."""
    dry_run = _call(lambda: rpcargs.boolean(dry_run, "dry_run"))
    result = _lds().payout(_runtime().clock.now(), dry_run)
    if "error" in result:
        raise RpcException(f"LDS payout: {result['error']}", -32603)
    return result


def _lds():
    runtime = _runtime()
    if runtime.lds is None:
        raise RpcException(f"LDS is off: {runtime.lds_off_reason}", INVALID_PARAMS)
    return runtime.lds


@plugin.subscribe("forward_event")
def on_forward_event(plugin, forward_event=None, **kwargs):
    runtime = plugin.runtime
    if runtime is not None and isinstance(forward_event, dict):
        runtime.on_forward_event(forward_event)
        if plugin.metrics is not None:
            _observer(plugin.metrics.on_forward_event)(forward_event)


@plugin.subscribe("connect")
def on_connect(plugin, connect=None, **kwargs):
    payload = connect if isinstance(connect, dict) else kwargs  # pre-v24.08 flat form too
    if plugin.runtime is not None and payload.get("id"):
        plugin.runtime.on_connection(payload["id"], True)
        _observer(plugin.metrics.on_connection)(True)


@plugin.subscribe("disconnect")
def on_disconnect(plugin, disconnect=None, **kwargs):
    payload = disconnect if isinstance(disconnect, dict) else kwargs
    if plugin.runtime is not None and payload.get("id"):
        plugin.runtime.on_connection(payload["id"], False)
        _observer(plugin.metrics.on_connection)(False)


@plugin.subscribe("channel_state_changed")
def on_channel_state_changed(plugin, channel_state_changed=None, **kwargs):
    # short_channel_id and message may be JSON null (before v25.09/v25.12) or absent.
    if plugin.runtime is not None and isinstance(channel_state_changed, dict):
        plugin.runtime.on_channel_state(channel_state_changed)


@plugin.subscribe("channel_opened")
def on_channel_opened(plugin, channel_opened=None, **kwargs):
    if plugin.runtime is not None and isinstance(channel_opened, dict):
        plugin.runtime.on_event("channel_opened", channel_opened)


@plugin.subscribe("block_added")
def on_block_added(plugin, block_added=None, **kwargs):
    payload = block_added if isinstance(block_added, dict) else kwargs.get("block") or {}
    if plugin.runtime is not None and payload:
        plugin.runtime.on_event("block_added", payload)


# Not subscribed: coin_movement. lightningd sends one for each leg of every forward (as many
# as forward_event on a routing node) and revops reads none of them: its costs come from
# bookkeeper (bkpr-listincome), its forwards from forward_event.


@plugin.subscribe("balance_snapshot")
def on_balance_snapshot(plugin, balance_snapshot=None, **kwargs):
    if plugin.runtime is not None and isinstance(balance_snapshot, dict):
        plugin.runtime.on_event("balance_snapshot", balance_snapshot)


@plugin.subscribe("shutdown")
def on_shutdown(plugin, **kwargs):
    # pyln does not exit by itself; lightningd kills us after 30 s. Finish writes and go.
    runtime = plugin.runtime
    if runtime is not None:
        runtime.stop()
    if plugin.metrics is not None:
        plugin.metrics.close()
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    limit_malloc_arenas()
    plugin.run()


if __name__ == "__main__":
    main()
