"""An emulation of daywalker90/sling: jobs, tasks, stats and the rebalances they perform.

RPC shapes and quirks follow cln-interfaces.md §4 and sling's rpc_sling.rs/parse.rs:
`sling-job` takes an object only; `sling-go` answers `{"tasks_started","tasks_failed_start:"}`
(the colon is sling's); `sling-jobsettings` capitalises "Pull"/"Push"; `sling-stats` has
json and text forms with `"<n>:<State>"` statuses and a comma-formatted `rebamount`; every
error is -32700 with sling's English message.

Rebalance model: each active task tries `attempts_per_tick` circular payments of `amount`
per tick. The cheapest route costs `base_ppm` × (price of the liquidity being bought:
the relevant channel's ref_fee_ppm over the median) × persistent lognormal noise × depth
(the price rises with what was bought on that channel in 24 h; see sling_price.py) × (1 +
mempool stress weight); above `maxppm` the task shows NoCheapRoute and pays nothing. A tried route
fails with `route_failure_rate` (recorded as a failure), else balances move, the fee is
paid, and sling-stats and bookkeeper (is_rebalance) record it.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time as _time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from revops.sim.errors import PLUGIN_RETURNED_ERROR, RpcError
from revops.sim.model_channel import NORMAL, Channel
from revops.sim.model_params import is_node_id, is_scid
from revops.sim.sling_price import LiquidityPrice

if TYPE_CHECKING:
    from revops.sim.node import Node

_JOB_KEYS = ("scid", "direction", "amount", "maxppm", "outppm", "target", "maxhops",
             "candidates", "depleteuptopercent", "depleteuptoamount", "paralleljobs")
_WINDOW_S = 30 * 86400          # sling-stats-delete-*-age default
_MAX_HTLC_COUNT = 5             # sling-max-htlc-count default


@dataclass(frozen=True)
class SlingParams:
    """Market cost of liquidity as sling meets it."""

    base_ppm: float = 400.0
    noise_sigma: float = 0.5
    stress_weight: float = 0.3
    route_failure_rate: float = 0.35
    tick_s: float = 60.0
    attempts_per_tick: int = 2
    noise_memory_h: float = 12.0
    depth_weight: float = 1.0


def _err(msg: str) -> RpcError:
    return RpcError(PLUGIN_RETURNED_ERROR, msg)


def _version(text: str) -> tuple[int, ...]:
    """(4, 2, 0) from "v4.2.0"; unparsable parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in text.lstrip("v").split(".")[:3])


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "Never"
    return _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(ts))


class Job:
    """A sling job as stored in jobs.json (amounts in msat)."""

    __slots__ = ("direction", "amount_msat", "maxppm", "outppm", "candidates", "target",
                 "maxhops", "depleteuptopercent", "depleteuptoamount_msat", "paralleljobs",
                 "onceamount_msat", "once_done_msat")

    def __init__(self) -> None:
        self.direction = "pull"
        self.amount_msat = 0
        self.maxppm = 0
        self.outppm: int | None = None
        self.candidates: list[str] | None = None
        self.target: float | None = None
        self.maxhops: int | None = None
        self.depleteuptopercent: float | None = None
        self.depleteuptoamount_msat: int | None = None
        self.paralleljobs: int | None = None
        self.onceamount_msat: int | None = None
        self.once_done_msat = 0

    def settings(self) -> dict:
        """Return the jobsettings representation (serde: None fields skipped)."""
        d: dict[str, Any] = {"sat_direction": self.direction.capitalize(),
                             "amount_msat": self.amount_msat, "maxppm": self.maxppm}
        for key in ("outppm", "candidates", "target", "maxhops", "depleteuptopercent",
                    "depleteuptoamount_msat", "paralleljobs", "onceamount_msat"):
            v = getattr(self, key)
            if v is not None:
                d[key] = v
        return d


class Sling:
    """Jobs, tasks and stats of the fake sling plugin, plus its RPC methods."""

    def __init__(self, node: "Node", params: SlingParams, rng: random.Random,
                 version: str = "v4.2.0"):
        self.node = node
        self.p = params
        self.rng = rng
        self.version = version
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[str, list[list]] = {}     # scid -> [[state, active], ...]
        self.except_chans: list[str] = []
        self.except_peers: list[str] = []
        # scid -> [(ts, amount_msat, fee_msat, ppm, partner_scid, hops)]
        self.successes: dict[str, list[tuple]] = {}
        # scid -> [(ts, amount_msat, reason, fail_node, partner_scid, hops)]
        self.failures: dict[str, list[tuple]] = {}
        self.last_attempt: dict[str, float] = {}
        self.banned_until: dict[str, float] = {}   # peer node_id -> end of a 1 h ban
        self._ticking = False
        self.price = LiquidityPrice(node.seed, params.noise_sigma, params.noise_memory_h,
                                    params.depth_weight)

    # -- RPC dispatch ---------------------------------------------------------------
    def methods(self) -> dict[str, Any]:
        """Return {rpc method name: handler(params)}."""
        return {"sling-job": self.rpc_job, "sling-once": self.rpc_once, "sling-go": self.rpc_go,
                "sling-stop": self.rpc_stop, "sling-deletejob": self.rpc_deletejob,
                "sling-stats": self.rpc_stats, "sling-jobsettings": self.rpc_jobsettings,
                "sling-except-chan": self.rpc_except_chan,
                "sling-except-peer": self.rpc_except_peer, "sling-version": self.rpc_version}

    @staticmethod
    def _scid(value: Any) -> str:
        if not isinstance(value, str):
            raise _err("invalid short_channel_id")
        if not is_scid(value):
            # cln_rpc's ShortChannelId::from_str error text (unverified wording)
            raise _err(f"Malformed short_channel_id: {value}")
        return value

    def _parse_job(self, args: Any, once: bool) -> tuple[str, Job]:
        if not isinstance(args, dict):
            raise _err("Invalid arguments: " + json.dumps(args, separators=(",", ":")))
        valid = _JOB_KEYS + (("onceamount",) if once else ())
        for k in args:
            if k not in valid or (once and k == "target"):
                raise _err(f"Invalid argument: {k}")
        if "scid" not in args:
            raise _err("Missing scid")
        scid = self._scid(args["scid"])
        if "direction" not in args:
            raise _err("Missing direction")
        direction = args["direction"]
        if not isinstance(direction, str):
            raise _err("invalid string for direction")
        if direction.lower() not in ("pull", "push"):
            raise _err(f"Could not parse direction: {direction}")
        job = Job()
        job.direction = direction.lower()
        if "amount" not in args:
            raise _err("Missing amount")
        amount = args["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise _err("amount must be a positive integer")
        if amount == 0:
            raise _err("amount must be greater than 0")
        job.amount_msat = amount * 1000
        if "maxppm" not in args:
            raise _err("Missing maxppm")
        job.maxppm = self._uint(args["maxppm"], "maxppm must be an integer")
        if "outppm" in args:
            job.outppm = self._uint(args["outppm"], "outppm must be an integer")
        if "target" in args:
            t = args["target"]
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise _err("target must be a floating point")
            job.target = float(t)
        if "maxhops" in args:
            job.maxhops = self._uint(args["maxhops"], "maxhops must be an integer")
            if job.maxhops < 2:
                raise _err("maxhops must be atleast 2")
        if "depleteuptopercent" in args:
            dp = args["depleteuptopercent"]
            if isinstance(dp, bool) or not isinstance(dp, (int, float)):
                raise _err("depleteuptopercent must be a floating point")
            if not 0.0 <= dp < 1.0:
                raise _err("depleteuptopercent must be between 0.0 and <1.0")
            job.depleteuptopercent = float(dp)
        if "depleteuptoamount" in args:
            job.depleteuptoamount_msat = self._uint(
                args["depleteuptoamount"], "depleteuptoamount must be an integer") * 1000
        if "paralleljobs" in args:
            job.paralleljobs = self._uint(args["paralleljobs"], "paralleljobs must be an integer")
            if job.paralleljobs < 1:
                raise _err("paralleljobs must be atleast 1")
            if job.direction == "push" and job.paralleljobs > _MAX_HTLC_COUNT:
                raise _err("paralleljobs must be less than or equal to sling-max-htlc-count "
                           "for push jobs")
        if "candidates" in args:
            cands = args["candidates"]
            if not isinstance(cands, list):
                raise _err("Invalid array for candidate list")
            for c in cands:
                if not isinstance(c, str):
                    raise _err("invalid string for channel id in candidate list")
                self._scid(c)
            job.candidates = list(cands)
        if once:
            if "onceamount" not in args:
                raise _err("Missing onceamount")
            oa = self._uint(args["onceamount"], "onceamount must be an integer") * 1000
            if oa == 0 or oa % job.amount_msat:
                raise _err("onceamount must be a multiple of amount")
            job.onceamount_msat = oa
        if job.outppm is None and job.candidates is None:
            raise _err("Atleast one of outppm and candidatelist must be set.")
        return scid, job

    @staticmethod
    def _uint(v: Any, msg: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _err(msg)
        return v

    def _normal_channel(self, scid: str) -> Channel:
        ch = self.node.by_scid.get(scid)
        if ch is None:
            raise _err("Channel not found")
        if ch.state != NORMAL:
            raise _err("Not in CHANNELD_NORMAL or CHANNELD_AWAITING_SPLICE state!")
        return ch

    def _check_conflicts(self, scid: str, job: Job) -> None:
        for cand in job.candidates or []:
            other = self.jobs.get(cand)
            if other is not None and other.direction == job.direction:
                raise _err(f"candidate {cand} has a {other.direction}-job that rebalances "
                           "in the other direction!")

    def _once_running(self, scid: str) -> bool:
        job = self.jobs.get(scid)
        return (job is not None and job.onceamount_msat is not None
                and any(t[1] for t in self.tasks.get(scid, [])))

    def rpc_job(self, args: Any) -> dict:
        scid, job = self._parse_job(args, once=False)
        self._normal_channel(scid)
        if self._once_running(scid):
            raise _err("Once-job is currently running for this channel")
        self._check_conflicts(scid, job)
        if scid in self.tasks:           # an existing job is stopped and replaced
            for t in self.tasks[scid]:
                t[0], t[1] = "Stopped", False
        self.jobs[scid] = job
        return {"result": "success"}

    def rpc_once(self, args: Any) -> dict:
        scid, job = self._parse_job(args, once=True)
        ch = self._normal_channel(scid)
        room = ch.receivable_msat() if job.direction == "pull" else ch.spendable_msat()
        if room < job.onceamount_msat:
            raise _err(f"Channel {scid} has not enough capacity to {job.direction} "
                       f"{job.onceamount_msat}msat")
        if scid in self.jobs:
            raise _err("There is already a job for that scid!")
        self.jobs[scid] = job
        self._spawn(scid, job)
        return {"result": "started"}

    def _spawn(self, scid: str, job: Job) -> int:
        n = job.paralleljobs or 1
        tasks = self.tasks.setdefault(scid, [])
        started = 0
        for i in range(n):
            if i < len(tasks):
                if tasks[i][1]:
                    continue
                tasks[i][0], tasks[i][1] = "Starting", True
            else:
                tasks.append(["Starting", True])
            started += 1
        self._ensure_ticking()
        return started

    @staticmethod
    def _optional_scid_arg(args: Any, method: str) -> str | None:
        if isinstance(args, dict):
            v = args.get("scid")
            extra = set(args) - {"scid"}
            if extra:
                raise _err(f"Invalid argument: {sorted(extra)[0]}")
        elif isinstance(args, list):
            if len(args) > 1:
                raise _err("Please provide exactly one short_channel_id or nothing")
            v = args[0] if args else None
        else:
            raise _err(f"{method}: invalid arguments, expected array or object")
        if v is not None and not isinstance(v, str):
            raise _err("invalid short_channel_id")
        return v

    def rpc_go(self, args: Any) -> dict:
        scid = self._optional_scid_arg(args if args is not None else [], "sling-go")
        if not self.jobs:
            raise _err("No jobs found")
        jobs = dict(self.jobs)
        if scid is not None:
            self._scid(scid)
            jobs = {k: v for k, v in jobs.items() if k == scid}
            if not jobs:
                raise _err("Shortchannelid not found in jobs")
        started = failed = 0
        for s, job in jobs.items():
            if self._once_running(s):
                failed += job.paralleljobs or 1
                continue
            started += self._spawn(s, job)
        return {"tasks_started": started, "tasks_failed_start:": failed}

    def rpc_stop(self, args: Any) -> dict:
        scid = self._optional_scid_arg(args if args is not None else [], "sling-stop")
        return {"stopped_count": self._stop(scid)}

    def _stop(self, scid: str | None) -> int:
        if scid is not None:
            self._scid(scid)
            tasks = self.tasks.get(scid)
            if tasks is None:
                raise _err(f"{scid}: No job running")
            targets = [tasks]
        else:
            targets = list(self.tasks.values())
        n = 0
        for tasks in targets:
            n += len(tasks)
            for t in tasks:
                t[0], t[1] = "Stopped", False
        return n

    def rpc_deletejob(self, args: Any) -> dict:
        if isinstance(args, dict):
            extra = set(args) - {"job", "delete_stats"}
            if extra:
                raise _err(f"Invalid argument: {sorted(extra)[0]}")
            job, delete_stats = args.get("job"), args.get("delete_stats", False)
        elif isinstance(args, list) and 1 <= len(args) <= 2:
            job = args[0]
            delete_stats = args[1] if len(args) == 2 else False
        else:
            raise _err("Please provide exactly one short_channel_id or `all`")
        if job is None:
            raise _err("Missing job")
        if not isinstance(job, str):
            raise _err("invalid string for deleting job(s)")
        if isinstance(delete_stats, str) and delete_stats in ("true", "false"):
            delete_stats = delete_stats == "true"
        if not isinstance(delete_stats, bool):
            raise _err("delete_stats must be a boolean")
        if job == "all":
            self._stop(None)
            scids = list(self.jobs)
            self.jobs.clear()
            self.tasks.clear()
        else:
            self._scid(job)
            if job not in self.jobs:
                raise _err(f"{job}: No job running")
            if job in self.tasks:
                self._stop(job)
            del self.jobs[job]
            self.tasks.pop(job, None)
            scids = [job]
        if delete_stats:
            for s in scids:
                self.successes.pop(s, None)
                self.failures.pop(s, None)
        return {"result": "success"}

    def rpc_jobsettings(self, args: Any) -> dict:
        scid = self._optional_scid_arg(args if args is not None else [], "sling-jobsettings")
        if scid is None:
            return {s: j.settings() for s, j in sorted(self.jobs.items())}
        self._scid(scid)
        if scid not in self.jobs:
            raise _err("channel not found")
        return {scid: self.jobs[scid].settings()}

    def _except_args(self, args: Any, key: str) -> tuple[str, Any]:
        if isinstance(args, dict):
            extra = set(args) - {"command", key}
            if extra:
                raise _err(f"Invalid argument: {sorted(extra)[0]}")
            if "command" not in args:
                raise _err("Missing command")
            return args["command"], args.get(key)
        if isinstance(args, list) and 1 <= len(args) <= 2:
            return args[0], (args[1] if len(args) == 2 else None)
        raise _err("Please either provide `add`/`remove` and a short_channel_id or just `list`")

    def rpc_except_chan(self, args: Any) -> Any:
        command, scid = self._except_args(args, "scid")
        if command == "list" and scid is None:
            return list(self.except_chans)
        if scid is None or command not in ("add", "remove"):
            raise _err("Use `add`/`remove` and a short_channel_id or just `list`")
        self._scid(scid)
        if command == "add":
            if scid in self.except_chans:
                raise _err(f"{scid} is already in excepts")
            if scid in self.node.by_scid:
                raise _err(f"{scid} is one of our own channels and can't be an except")
            self.except_chans.append(scid)
        else:
            if scid not in self.except_chans:
                raise _err(f"short_channel_id {scid} not in excepts, nothing to remove")
            self.except_chans.remove(scid)
        return {"result": "success"}

    def rpc_except_peer(self, args: Any) -> Any:
        command, pk = self._except_args(args, "id")
        if command == "list" and pk is None:
            return list(self.except_peers)
        if pk is None or command not in ("add", "remove"):
            raise _err("Unknown commmand. Use `add`/`remove` <node_id> or `list`")
        if not is_node_id(pk):
            raise _err(f"invaild node_id: {json.dumps(pk)}")
        if pk == self.node.config.node_id:
            raise _err("Can't exclude yourself")
        if command == "add":
            if pk in self.except_peers:
                raise _err(f"{pk} is already in excepts")
            self.except_peers.append(pk)
        else:
            if pk not in self.except_peers:
                raise _err(f"node_id {pk} not in excepts, nothing to remove")
            self.except_peers.remove(pk)
        return {"result": "success"}

    def rpc_version(self, args: Any) -> dict:
        return {"version": self.version}

    # -- stats ----------------------------------------------------------------------
    def rpc_stats(self, args: Any) -> Any:
        scid, as_json = None, False
        if isinstance(args, dict):
            extra = set(args) - {"scid", "json"}
            if extra:
                raise _err(f"Invalid argument: {sorted(extra)[0]}")
            scid, as_json = args.get("scid"), args.get("json", False)
        elif isinstance(args, list):
            if len(args) > 2:
                raise _err("Too many arguments")
            if len(args) == 1:
                if isinstance(args[0], bool):
                    as_json = args[0]
                else:
                    scid = args[0]
            elif len(args) == 2:
                scid, as_json = args
        elif args is not None:
            raise _err("sling-stats: invalid arguments, expected array or object")
        if isinstance(as_json, str) and as_json in ("true", "false"):
            as_json = as_json == "true"
        if not isinstance(as_json, bool):
            raise _err("json must be a boolean")
        now = self.node.now_s
        if scid is None:
            rows = [self._summary_row(s, now) for s in sorted(self.jobs)]
            if as_json:
                return rows
            return {"format-hint": "simple", "result": self._table(rows)}
        self._scid(scid)
        detail = {"successes_in_time_window": self._success_detail(scid, now),
                  "failures_in_time_window": self._failure_detail(scid, now)}
        if as_json:
            return detail
        return {"format-hint": "simple", "result": json.dumps(detail, indent=2)}

    def _summary_row(self, scid: str, now: float) -> dict:
        ch = self.node.by_scid.get(scid)
        peer = ch.peer if ch else None
        succ = [s for s in self.successes.get(scid, []) if now - s[0] <= _WINDOW_S]
        amt = sum(s[1] for s in succ)
        w_ppm = int(sum(s[1] * s[3] for s in succ) / amt) if amt else 0
        tasks = self.tasks.get(scid) or []
        status = [f"{i + 1}:{t[0]}" for i, t in enumerate(tasks)] or ["1:NotStarted"]
        return {"alias": peer.alias if peer else "ALIAS_NOT_FOUND", "scid": scid,
                "pubkey": peer.node_id if peer else "",
                "status": status, "rebamount": f"{amt // 1000:,}", "w_feeppm": w_ppm,
                "last_route_taken": _fmt_time(self.last_attempt.get(scid)),
                "last_success_reb": _fmt_time(succ[-1][0] if succ else None)}

    @staticmethod
    def _table(rows: list[dict]) -> str:
        cols = ("alias", "scid", "pubkey", "status", "rebamount", "w_feeppm",
                "last_route_taken", "last_success_reb")
        cells = [[c for c in cols]] + [[", ".join(r[c]) if c == "status" else str(r[c])
                                        for c in cols] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
        return "\n".join(" ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                         for row in cells)

    def _partners(self, entries: list[tuple], idx_scid: int) -> list[dict]:
        totals: dict[str, int] = {}
        for e in entries:
            totals[e[idx_scid]] = totals.get(e[idx_scid], 0) + e[1]
        top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        out = []
        for scid, msat in top:
            ch = self.node.by_scid.get(scid)
            out.append({"scid": scid, "alias": ch.peer.alias if ch else "ALIAS_NOT_FOUND",
                        "sats": msat // 1000})
        return out

    def _success_detail(self, scid: str, now: float) -> dict | None:
        succ = [s for s in self.successes.get(scid, []) if now - s[0] <= _WINDOW_S]
        if not succ:
            return None
        ppms = sorted(s[3] for s in succ)
        amt = sum(s[1] for s in succ)
        hops = statistics.mode(s[5] for s in succ)
        return {"time_window_days": str(_WINDOW_S // 86400),
                "total_amount_sats": amt // 1000,
                "feeppm_weighted_avg": int(sum(s[1] * s[3] for s in succ) / amt),
                "feeppm_min": ppms[0], "feeppm_max": ppms[-1],
                "feeppm_median": int(statistics.median(ppms)),
                "feeppm_90th_percentile": ppms[min(len(ppms) - 1, int(len(ppms) * 0.9))],
                "top_5_channel_partners": self._partners(succ, 4),
                "most_common_hop_count": hops,
                "time_of_last_rebalance": _fmt_time(succ[-1][0]),
                "last_channel_partner": succ[-1][4],
                "total_rebalances": len(succ),
                "total_spent_sats": sum(s[2] for s in succ) // 1000}

    def _failure_detail(self, scid: str, now: float) -> dict | None:
        fails = [f for f in self.failures.get(scid, []) if now - f[0] <= _WINDOW_S]
        if not fails:
            return None
        reasons: dict[str, int] = {}
        nodes: dict[str, int] = {}
        for f in fails:
            reasons[f[2]] = reasons.get(f[2], 0) + 1
            nodes[f[3]] = nodes.get(f[3], 0) + 1
        return {"time_window_days": str(_WINDOW_S // 86400),
                "total_amount_tried_sats": sum(f[1] for f in fails) // 1000,
                "top_5_failure_reasons": [{"failure_reason": r, "failure_count": n} for r, n in
                                          sorted(reasons.items(), key=lambda kv: -kv[1])[:5]],
                "top_5_fail_nodes": [{"peer_id": p, "alias": "ALIAS_NOT_FOUND", "count": n}
                                     for p, n in sorted(nodes.items(), key=lambda kv: -kv[1])[:5]],
                "top_5_channel_partners": self._partners(fails, 4),
                "most_common_hop_count": statistics.mode(f[5] for f in fails),
                "time_of_last_attempt": _fmt_time(fails[-1][0]),
                "total_rebalances_tried": len(fails)}

    # -- rebalancing ----------------------------------------------------------------
    def _same_peer(self, now: float, scid: str, job: Job, ch: Channel, partner: Channel, ppm: int) -> bool:
        """Out through one channel to a peer and back in through another to the same peer: the
        peer picks the channel and sends it back over `partner` itself (sling issue #11).
        Before v4.1.1 sling paid the fee and moved nothing; since then it sees the payment
        arrive on the wrong channel, fails it and bans the peer for an hour."""
        amount = job.amount_msat
        if _version(self.version) >= (4, 1, 1):
            self.failures.setdefault(scid, []).append(
                (now, amount, "came back on the wrong channel", ch.peer.node_id, partner.scid, 2))
            self.banned_until[ch.peer.node_id] = now + 3600
            return False
        fee = amount * ppm // 1_000_000
        partner.to_us_msat -= fee  # out and back over the same channel: only the fee leaves
        partner.min_to_us_msat = min(partner.min_to_us_msat, partner.to_us_msat)
        self.successes.setdefault(scid, []).append((now, amount, fee, ppm, partner.scid, 2))
        if self.node.bookkeeper is not None:
            phash = "%064x" % self.rng.getrandbits(256)
            for mvt in self.node.bookkeeper.record_rebalance(partner.channel_id, partner.channel_id,
                                                             amount, fee, now, phash):
                self.node.emit("coin_movement", mvt)
        return True

    def start(self, now: float) -> None:
        """Called when the node starts; ticking begins once a task is active."""
        if any(t[1] for ts in self.tasks.values() for t in ts):
            self._ensure_ticking()

    def _ensure_ticking(self) -> None:
        if not self._ticking:
            self._ticking = True
            self.node.schedule(self.node.now_s + self.p.tick_s, self._tick, None)

    def _tick(self, now: float, _arg) -> None:
        active = False
        for scid in sorted(self.tasks):
            job = self.jobs.get(scid)
            for task in self.tasks[scid]:
                if not task[1] or job is None:
                    continue
                active = True
                for _ in range(self.p.attempts_per_tick):
                    if not self._attempt(now, scid, job, task):
                        break
        if active:
            self.node.schedule(now + self.p.tick_s, self._tick, None)
        else:
            self._ticking = False

    def _floor(self, job: Job, ch: Channel) -> int:
        pct = 0.2 if job.depleteuptopercent is None else job.depleteuptopercent
        amt = 2_000_000_000 if job.depleteuptoamount_msat is None else job.depleteuptoamount_msat
        return min(int(pct * ch.total_msat), amt)

    def _candidates(self, scid: str, job: Job, target: Channel, need: int) -> list[Channel]:
        node = self.node
        if job.candidates is not None:
            pool = [node.by_scid[s] for s in job.candidates if s in node.by_scid]
        else:
            pool = [c for c in node.channels if c.scid and c.scid != scid]
        out = []
        for c in pool:
            # A channel to the target's own peer stays a candidate (sling does not filter it;
            # see _same_peer); a peer banned for that is skipped until the ban ends.
            if (c.state != NORMAL or not c.peer.connected or c.scid in self.except_chans
                    or c.peer.node_id in self.except_peers
                    or self.banned_until.get(c.peer.node_id, 0.0) > self.node.now_s):
                continue
            if job.direction == "pull":
                if job.outppm is not None and c.fee_ppm > job.outppm:
                    continue
                if c.spendable_msat() < need or c.to_us_msat - need < self._floor(job, c):
                    continue
            else:
                if job.outppm is not None and c.fee_ppm < job.outppm:
                    continue
                theirs = c.total_msat - c.to_us_msat
                if c.receivable_msat() < need or theirs - need < self._floor(job, c):
                    continue
            out.append(c)
        return out

    def _attempt(self, now: float, scid: str, job: Job, task: list) -> bool:
        """Try one rebalance for a task; return True if another attempt may follow now."""
        node = self.node
        ch = node.by_scid.get(scid)
        if ch is None or ch.state != NORMAL:
            task[0] = "ChanNotNormal"
            return False
        if not ch.peer.connected:
            task[0] = "Disconnected"
            return False
        if job.onceamount_msat is not None and job.once_done_msat >= job.onceamount_msat:
            task[0], task[1] = "Balanced", False
            return False
        target = 0.5 if job.target is None else job.target
        if job.direction == "pull" and ch.to_us_msat >= target * ch.total_msat:
            task[0] = "Balanced"
            return False
        if job.direction == "push" and ch.total_msat - ch.to_us_msat >= target * ch.total_msat:
            task[0] = "Balanced"
            return False
        if ch.pend_in_n + ch.pend_out_n >= _MAX_HTLC_COUNT:
            task[0] = "HTLCcapped"
            return False
        amount = job.amount_msat
        room = ch.receivable_msat() if job.direction == "pull" else ch.spendable_msat()
        if room < amount:
            task[0] = "Balanced"
            return False
        fee_guess = amount * job.maxppm // 1_000_000
        cands = self._candidates(scid, job, ch, amount + fee_guess)
        if not cands:
            task[0] = "NoCandidates"
            return False
        rng = self.rng
        partner = cands[rng.randrange(len(cands))]
        priced = ch if job.direction == "pull" else partner
        refs = sorted(c.ref_fee_ppm for c in node.channels if c.state == NORMAL) or [1]
        median_ref = max(refs[len(refs) // 2], 1)
        cost_ppm = (self.p.base_ppm * priced.ref_fee_ppm / median_ref
                    * math.exp(self.price.noise(priced, now)) * self.price.depth(priced, now)
                    * (1.0 + self.p.stress_weight * max(0.0, node.chain.stress() - 1.0)))
        ppm = max(1, int(cost_ppm))
        if ppm > job.maxppm:
            task[0] = "NoCheapRoute"
            return False
        task[0] = "Rebalancing"
        self.last_attempt[scid] = now
        hops = 2 + min(rng.randrange(4), (job.maxhops or 8) - 2)
        if partner.peer is ch.peer:
            return self._same_peer(now, scid, job, ch, partner, ppm)
        if rng.random() < self.p.route_failure_rate:
            fail_node = "02" + "%064x" % rng.getrandbits(256)
            self.failures.setdefault(scid, []).append(
                (now, amount, "WIRE_TEMPORARY_CHANNEL_FAILURE", fail_node, partner.scid, hops))
            return True
        fee = amount * ppm // 1_000_000
        out_ch, in_ch = (partner, ch) if job.direction == "pull" else (ch, partner)
        out_ch.to_us_msat -= amount + fee
        in_ch.to_us_msat += amount
        out_ch.min_to_us_msat = min(out_ch.min_to_us_msat, out_ch.to_us_msat)
        in_ch.max_to_us_msat = max(in_ch.max_to_us_msat, in_ch.to_us_msat)
        job.once_done_msat += amount
        self.price.record(priced, now, amount)
        self.successes.setdefault(scid, []).append((now, amount, fee, ppm, partner.scid, hops))
        if node.bookkeeper is not None:
            phash = "%064x" % rng.getrandbits(256)
            for mvt in node.bookkeeper.record_rebalance(out_ch.channel_id, in_ch.channel_id,
                                                        amount, fee, now, phash):
                node.emit("coin_movement", mvt)
        return True
