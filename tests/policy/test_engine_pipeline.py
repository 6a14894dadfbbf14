"""The engine worker's pipelined requests: several chunks in flight, answers in order, and
writes that never wait on a worker that stopped reading."""

from __future__ import annotations

import marshal
import time

import pytest

from revops.facts.build import ChannelFacts
from revops.policy import engine
from revops.policy.rete import EngineFailure, EngineWorker, RuleSession
from tests.policy.helpers import channel, make_policy

POLICY = """
rules:
  - id: offline
    stage: safety
    when: not peer.connected
    then: hold()
    why: offline
  - id: busy
    stage: premiums
    when: channel.htlc_util >= 0.5 and channel.local_ratio < 0.3
    then: multiply(1.5)
    why: busy
  - id: floor
    stage: premiums
    when: channel.fee_ppm > 400
    then: raise_floor(channel.fee_ppm / 2)
    why: floor
  - id: base
    stage: discovery
    then: set_fee(channel.fee_ppm * (1 + channel.local_ratio))
    why: base
  - id: small-change
    stage: gossip
    when: decision.changed and decision.change_ratio < 0.05
    then: suppress_broadcast("small")
    why: small
"""


def _channels(n: int) -> list[ChannelFacts]:
    # One peer per channel, so the engine cuts them into many chunks (engine.CHUNK each).
    out = []
    for i in range(n):
        facts = channel(f"{700000 + i}x1x0", channel__fee_ppm=10 + (i * 37) % 900, channel__local_ratio=(i % 100) / 100,
                        channel__htlc_util=(i % 7) / 7, peer__connected=i % 11 != 0)
        out.append(ChannelFacts(facts.scid, f"02{i:064x}", facts.values))
    return out


def test_many_chunks_in_flight_decide_exactly_as_the_reference_interpreter(tmp_path):
    policy = make_policy(tmp_path, POLICY)
    chans = _channels(engine.CHUNK * (engine.PIPELINE + 2) + 17)
    evaluations = policy.evaluate_many(chans)
    assert [e.decision.scid for e in evaluations] == [c.scid for c in chans]  # in the callers' order
    durable = [e.decision.to_json() for e in evaluations]
    reference = [e.decision.to_json() for e in policy.evaluate_many(chans, matcher="reference")]
    assert durable == reference
    assert {d["rule"] for d in durable} == {"offline", "base"}
    assert any(d["action"] == "suppressed" for d in durable) and any(d["action"] == "set_fee" for d in durable)


def test_answers_are_kept_for_the_ticket_that_asks_later():
    worker = EngineWorker(timeout_s=20)
    try:
        session = RuleSession("p", [("r0", {"$gt": {"x": 0.5}}, 1)], worker=worker)
        low, high = [{"scid": "a", "x": 0.1}], [{"scid": "b", "x": 0.9}]
        first, second = session.submit(low), session.submit(high)
        assert session.collect(high, second) == {"b": {"r0"}}  # read past the first answer
        assert session.collect(low, first) == {"a": set()}
    finally:
        worker.close()


def test_a_worker_that_stops_reading_fails_the_write_after_the_timeout():
    worker = EngineWorker(timeout_s=1)
    try:
        with worker._lock:
            worker._ensure()
            # 520 branches hang create_ruleset (measured): the worker never reads again.
            branches = ",".join(f'{{"s": "v{i}"}}' for i in range(520))
            worker._send(f'C hang\n{{"r": {{"all": [{{"m": {{"$or": [{branches}]}}}}]}}}}\n'.encode())
            started = time.monotonic()
            with pytest.raises(EngineFailure, match="took no request"):
                worker._send(b"D " + b"x" * (8 << 20) + b"\n")  # far more than the pipe holds
        assert time.monotonic() - started < 10
        assert worker.restarts == 1
        session = RuleSession("q", [("r0", {"$gt": {"x": 0.5}}, 1)], worker=worker)  # a new worker
        assert session.match([{"scid": "c", "x": 1.0}]) == {"c": {"r0"}}
    finally:
        worker.close()


@pytest.mark.parametrize("noticed_by", ["its own answer", "the next submit"])
def test_only_the_request_that_crashes_the_worker_fails_those_behind_it_are_sent_again(noticed_by):
    worker = EngineWorker(timeout_s=20)
    try:
        session = RuleSession("s", [("r0", {"$gt": {"x": 0.5}}, 1)], worker=worker)
        # JSON text goes to the engine as it is: a bare exponent first in a batch is a SIGSEGV.
        raw = marshal.dumps([("b1", '[{"scid": "0", "x": 1e-05, "sid": "b1"}]')])
        with worker._lock:
            crash = worker._send(f"M {session.names[0]} {len(raw)}\n".encode() + raw)
        if noticed_by == "the next submit":  # the worker is already dead when the next request comes
            worker._proc.wait(timeout=20)
        innocent = [{"scid": "a", "x": 0.9}]
        waiting = session.submit(innocent)
        with pytest.raises(EngineFailure, match="signal 11"):
            worker.collect(crash)
        assert session.collect(innocent, waiting) == {"a": {"r0"}}
        assert worker.restarts == 1
    finally:
        worker.close()
