"""The durable-rules worker process: the only place the C engine runs (see rete.py for why).

It reads requests on stdin and answers each with one line on stdout:

    C <name>\\n<definition JSON>\\n      create a ruleset           -> ok | err <message>
    D <name> <name> ...\\n                delete rulesets            -> ok
    M <name>,<name>,... <bytes>\\n         then <bytes> of marshal data: a list of (sid, facts)
                                          batches, each fact carrying that "sid"; every batch
                                          goes into every named ruleset
                                          -> a JSON list of [rule, scid] pairs (catch-all left out)

The parent sends facts as marshal data (its own process, our own format: cheap to write);
the worker writes the JSON durable-rules reads with `encode.dumps` (no bare exponents).
It imports nothing of revops beyond this module and encode.py (standard library only), so
it starts in tens of milliseconds and a crash in the engine takes down this process only.
"""

from __future__ import annotations

import json
import marshal
import sys

from revops.policy.encode import dumps

CATCH_ALL = "__handled"  # matches every fact, so no fact is ever "not handled"
_PREFIX = '":{"m":{"scid": "'


def rule_and_scid(action: str) -> tuple[str, str]:
    """(rule name, scid) of an engine action `{"<rule>":{"m":{"scid": "<scid>", ...}}}`.

    The fact text is our own JSON with scid first, so both are found by position;
    decoding the whole fact for two strings was a third of the matching time.
    """
    end = action.find(_PREFIX, 2)
    if action.startswith('{"') and end > 0:
        start = end + len(_PREFIX)
        return action[2:end], action[start:action.index('"', start)]
    rule, match = next(iter(json.loads(action).items()))  # any other layout: parse it
    return rule, match["m"]["scid"]


def _match(engine, handle, batch: str, sid: str, found: list) -> None:
    try:
        result = engine.assert_facts(handle, batch)
        if result[0] not in (0, 3):  # 1: not handled, 2: already observed
            raise RuntimeError(f"durable-rules refused the batch (code {result[0]})")
        state = result[1]
        started = engine.start_action_for_state(handle, state)
        pending = started[1] if started else None
        while pending:
            rule, scid = rule_and_scid(pending)
            if rule != CATCH_ALL:
                found.append((rule, scid))
            pending = engine.complete_and_start_action(handle, state)
    finally:
        engine.delete_state(handle, sid)


def serve(stdin, stdout) -> None:
    import durable_rules_engine as engine
    handles: dict[str, int] = {}

    def reply(line: str) -> None:
        stdout.write(line.encode() + b"\n")
        stdout.flush()

    while True:
        header = stdin.readline()
        if not header:
            return  # the parent is gone
        op, *args = header.decode().split()
        try:
            if op == "C":
                definition = stdin.readline().decode()
                handles[args[0]] = engine.create_ruleset(args[0], definition)
                reply("ok")
            elif op == "D":
                for name in args:
                    handle = handles.pop(name, None)
                    if handle is not None:
                        engine.delete_ruleset(handle)
                reply("ok")
            elif op == "M":
                payload = stdin.read(int(args[1]))
                # facts as JSON text are passed on as they are (tests send what dumps never writes)
                batches = [(sid, facts if isinstance(facts, str) else dumps(facts))
                           for sid, facts in marshal.loads(payload)]
                found: list = []
                for name in args[0].split(","):
                    handle = handles[name]
                    for sid, batch in batches:
                        _match(engine, handle, batch, sid, found)
                reply(json.dumps(found))
            else:
                reply(f"err unknown request {op!r}")
        except Exception as err:  # an engine error is the request's answer, never the worker's end
            reply("err " + " ".join(f"{type(err).__name__}: {err}".split()))


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
