"""durable-rules' Rete engine, run as an untrusted matcher in a supervised worker process.

Why a process: the C engine has crashed (SIGSEGV, "free(): invalid size") and hung on
inputs we found only by fuzzing (issue #12). Inside the plugin that kills or freezes the
node's fee manager. So the engine runs in `rete_worker.py`, a child process that holds
every ruleset; this module sends it facts over a pipe, one request per phase and chunk.
Requests are pipelined: `submit` writes one and returns a ticket, `collect` reads its answer
(answers come back in order), so the engine can build the next chunk's facts in Python while
the worker matches the last one: the two run on two cores. Writes never block: a worker
that stops reading (hung) fails the request after `timeout_s` like one that stops answering.
When the worker dies or does not answer within `timeout_s`, the request raises
`EngineFailure` (the caller turns that batch into `error` decisions, fees untouched), the
worker is killed and counted (`EngineWorker.restarts`, exported as
revops_engine_worker_restarts_total), and the next request starts a new one and builds
every live ruleset again.

Why not durable-rules' Python `Host`: it starts two timer threads per Host that race with a
caller that asserts and deletes sessions itself, and never stops them. We need only facts
in, matched rule names out.

Measured limits of durable_rules_engine 2.0.28 (tests/policy/test_engine_safety.py keeps the
measurements honest): more than 64 actions for one fact (true branches of one ruleset: every
`$or` alternative is its own branch, `and` of `or`s multiplies out) corrupts the heap; more
than 512 branches in one ruleset hangs `create_ruleset`. `RuleSession` therefore spreads a
phase's rules over as many rulesets as it takes to keep each at `MAX_BRANCHES` (lower.py
splits a single rule that is wider than that).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import marshal
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Iterable

from revops.policy.encode import dumps
from revops.policy.rete_worker import CATCH_ALL, rule_and_scid as _rule_and_scid  # noqa: F401 (tests)

# At most this many branches per ruleset: with the catch-all, at most 61 actions per fact
# (64 is the measured limit) and far below the 512 branches that hang ruleset creation.
MAX_BRANCHES = 60
TIMEOUT_S = 10.0  # a worker that has not answered by then is taken for hung
PIPE_BYTES = 1 << 20  # pipe buffers big enough for a chunk's request: writing it never waits
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; elsewhere the default size stays
_names = itertools.count(1)


class ReteError(RuntimeError):
    """The engine refused or could not build something; the message says what."""


class EngineFailure(ReteError):
    """The worker died or hung during a request; it has been killed and will be restarted."""


class EngineRestarted(EngineFailure):
    """The worker died while this request waited behind another one; it may be sent again."""


class EngineWorker:
    """A supervised child process running durable-rules; thread-safe, one request at a time."""

    def __init__(self, timeout_s: float = TIMEOUT_S):
        self.timeout_s = timeout_s
        self.restarts = 0  # worker deaths (crash or hang) so far; each is followed by a fresh worker
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._rulesets: dict[str, str] = {}  # live rulesets: name -> definition, rebuilt after a restart
        self._built: set[str] = set()  # rulesets the current worker holds
        self._doomed: list[str] = []  # released rulesets, deleted with the next request
        self._sids = itertools.count(1)
        # Pipelining: a ticket is (worker generation, request number); answers read ahead of
        # their caller wait in _answers. A new worker is a new generation: old tickets fail.
        self._generation = 0
        self._sent = 0
        self._received = 0
        self._answers: dict[int, str] = {}
        # The first unanswered request of a dead worker is the one that killed it, whoever
        # noticed the death: (generation, number) -> why, so its caller gets the reason.
        self._culprit: tuple[tuple[int, int], str] | None = None

    # -- rulesets ---------------------------------------------------------------------------

    def create(self, name: str, definition: dict) -> None:
        """Build a ruleset in the worker; raise ReteError if the engine refuses, crashes or hangs."""
        text = dumps(definition)
        with self._lock:
            self._ensure()
            self._build(name, text)
            self._rulesets[name] = text

    def release(self, name: str) -> None:
        """Forget a ruleset (safe from a finalizer: it only queues the deletion)."""
        self._doomed.append(name)

    def _build(self, name: str, text: str) -> None:
        answer = self._request(f"C {name}\n{text}\n")
        if answer != "ok":
            raise ReteError(f"durable-rules refused the ruleset: {answer[4:]}")
        self._built.add(name)

    # -- matching ---------------------------------------------------------------------------

    def submit(self, names: list[str], facts: list[dict[str, Any]], batch: int) -> tuple[int, int]:
        """Send the facts (each with a unique "scid" first) to be asserted into every named
        ruleset, `batch` facts per session, without waiting; `collect` the ticket."""
        with self._lock:
            self._ensure()
            for name in names:
                if name not in self._built:  # a fresh worker: build what the caller needs again
                    self._build(name, self._rulesets[name])
            batches = []
            for start in range(0, len(facts), batch):
                sid = f"b{next(self._sids)}"
                chunk = facts[start:start + batch]
                for fact in chunk:
                    fact["sid"] = sid
                batches.append((sid, chunk))
            # marshal, not JSON: a tenth of the encoding time here; the worker (on the other
            # core) writes the JSON durable-rules reads, with encode.dumps.
            payload = marshal.dumps(batches)
            return self._send(f"M {','.join(names)} {len(payload)}\n".encode() + payload)

    def collect(self, ticket: tuple[int, int]) -> list[tuple[str, str]]:
        """The (rule, scid) pairs that matched in a submitted request; raise EngineFailure/ReteError."""
        with self._lock:
            answer = self._receive(ticket)
        if answer.startswith("err "):
            raise ReteError(f"durable-rules refused the batch: {answer[4:]}")
        return json.loads(answer)

    # -- the process ------------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:  # died between requests
                self._dead("the durable-rules worker had exited")
            self._proc = subprocess.Popen([sys.executable, "-m", "revops.policy.rete_worker"], env=_worker_env(),
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
                except OSError:  # above /proc/sys/fs/pipe-max-size: the default size still works
                    pass
            os.set_blocking(self._proc.stdin.fileno(), False)
            self._reset()
        if self._doomed:
            doomed, self._doomed = self._doomed, []
            names = [n for n in doomed if self._rulesets.pop(n, None) is not None and n in self._built]
            self._built.difference_update(names)
            if names:
                self._request(f"D {' '.join(names)}\n")

    def _reset(self) -> None:
        """A new worker (or none): nothing built, nothing in flight, old tickets void."""
        self._built = set()
        self._buffer = b""
        self._generation += 1
        self._sent = self._received = 0
        self._answers = {}

    def _request(self, text: str) -> str:
        return self._receive(self._send(text.encode()))

    def _send(self, request: bytes) -> tuple[int, int]:
        """Write one request, reading answers meanwhile (a worker blocked on a full stdout
        never reads its stdin); return its ticket."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        data = memoryview(request)
        wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout_s
        while data:
            left = deadline - time.monotonic()
            readable, writable, _ = select.select([rfd], [wfd], [], left) if left > 0 else ([], [], [])
            if not readable and not writable:
                raise EngineFailure(self._dead(f"the durable-rules worker took no request within {self.timeout_s:g} s"))
            if readable:
                self._read_some(rfd)
            if writable:
                try:
                    data = data[os.write(wfd, data):]
                except BlockingIOError:
                    pass
                except OSError:  # BrokenPipeError: it died
                    raise EngineFailure(self._dead("the durable-rules worker died")) from None
        self._sent += 1
        return self._generation, self._sent - 1

    def _receive(self, ticket: tuple[int, int]) -> str:
        """The answer to a ticket: answers come in request order; earlier ones are kept."""
        generation, number = ticket
        if generation != self._generation:
            if self._culprit is not None and self._culprit[0] == ticket:
                raise EngineFailure(self._culprit[1])
            raise EngineRestarted("the durable-rules worker was restarted before it answered")
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while number not in self._answers:
            deadline = time.monotonic() + self.timeout_s
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
                if not ready:
                    raise EngineFailure(self._dead(f"the durable-rules worker did not answer within {self.timeout_s:g} s"))
                self._read_some(fd)
            line, _, self._buffer = self._buffer.partition(b"\n")
            self._answers[self._received] = line.decode()
            self._received += 1
        return self._answers.pop(number)

    def _read_some(self, fd: int) -> None:
        data = os.read(fd, 1 << 20)
        if not data:
            raise EngineFailure(self._dead("the durable-rules worker died"))
        self._buffer += data

    def _dead(self, what: str) -> str:
        """Kill and reap the worker, count it; return the reason for the error decisions."""
        proc, self._proc = self._proc, None
        culprit = (self._generation, self._received)
        self._reset()
        self.restarts += 1
        if proc is None:
            return what
        if proc.poll() is None:
            proc.kill()
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except (OSError, AttributeError):
                pass
        how = f" (signal {-code})" if code is not None and code < 0 else (f" (exit {code})" if code else "")
        reason = f"{what}{how}; it has been restarted"
        self._culprit = (culprit, reason)
        return reason

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                proc.kill()
                proc.wait()
                proc.stdin.close()
                proc.stdout.close()


def _worker_env() -> dict[str, str]:
    # The worker imports this very revops (not whatever else is on the path).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


_shared: tuple[int, EngineWorker] | None = None
_shared_lock = threading.Lock()


def shared_worker() -> EngineWorker:
    """The process' one engine worker (one per process, like a connection: made on first use,
    made again in a forked child, which must not share its parent's pipes)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), EngineWorker())
        return _shared[1]


def worker_restarts() -> int:
    """Deaths (crash or hang) of this process' engine worker so far: the metric's value."""
    return _shared[1].restarts if _shared is not None and _shared[0] == os.getpid() else 0


class RuleSession:
    """One phase's rules over one or more durable-rules rulesets: `match(facts)` -> matched names.

    `rules` is a list of (name, durable-rules condition, branches), e.g.
    `("r3", {"$gte": {"channel__htlc_util": 0.8}}, 1)`; rules are packed in order into
    rulesets of at most MAX_BRANCHES branches (lower.py never gives a wider one). Facts must
    carry a unique "scid" as their first key.
    """

    BATCH = 64  # facts per session: keeps each session small; measured fastest here

    def __init__(self, label: str, rules: Iterable[tuple[str, Any, int]], worker: EngineWorker | None = None):
        self.worker = worker or shared_worker()
        packs: list[dict] = [{}]
        width = 0
        for name, cond, branches in rules:
            if branches > MAX_BRANCHES:
                raise ReteError(f"rule {name} has {branches} branches; at most {MAX_BRANCHES} per ruleset")
            if width + branches > MAX_BRANCHES and packs[-1]:
                packs.append({})
                width = 0
            packs[-1][name] = {"all": [{"m": cond}]}
            width += branches
        self.names: list[str] = []
        for pack in packs:
            pack[CATCH_ALL] = {"all": [{"m": {"$ex": {"scid": 1}}}]}
            name = f"{label}_{next(_names)}"
            self.worker.create(name, pack)
            self.names.append(name)
        weakref.finalize(self, _release, self.worker, tuple(self.names))

    def match(self, facts: list[dict[str, Any]]) -> dict[str, set[str]]:
        """Return {scid: names of matched rules} for every fact; raise EngineFailure/ReteError."""
        return self.collect(facts, self.submit(facts))

    def submit(self, facts: list[dict[str, Any]]) -> tuple[int, int]:
        """Send the facts to the worker without waiting; `collect(facts, ticket)` the answer."""
        return self.worker.submit(self.names, facts, self.BATCH)

    def collect(self, facts: list[dict[str, Any]], ticket: tuple[int, int]) -> dict[str, set[str]]:
        """The answer to `submit(facts)`. A request that was only waiting when another one
        killed the worker is sent once more: only the batch that crashed it fails."""
        try:
            pairs = self.worker.collect(ticket)
        except EngineRestarted:
            pairs = self.worker.collect(self.submit(facts))
        found: dict[str, set[str]] = {fact["scid"]: set() for fact in facts}
        for rule, scid in pairs:
            found[scid].add(rule)
        return found


def _release(worker: EngineWorker, names: tuple[str, ...]) -> None:
    for name in names:
        worker.release(name)
