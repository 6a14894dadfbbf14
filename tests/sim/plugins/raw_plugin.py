#!/usr/bin/env python3
"""A plugin speaking the raw protocol with plain json (no pyln), steered by its environment.

RAW_MANIFEST  getmanifest result as JSON (default: one method `raw-emit`, no options)
RAW_DUMP      file to which every message received is appended, one JSON per line
RAW_MODE      ok | hang_manifest | hang_init | crash_manifest | garbage_manifest |
              disable_init | error_init | stderr_then_exit_after_init
Method `raw-emit {"text": "..."}` writes `text` verbatim to stdout and never replies: the way
to test what lightningd does with garbage, a missing "jsonrpc", or a bad log level.
"""
import json
import os
import sys
import time

MODE = os.environ.get("RAW_MODE", "ok")
DEFAULT_MANIFEST = {"options": [], "rpcmethods": [{"name": "raw-emit", "usage": "text"}],
                    "subscriptions": [], "dynamic": True, "nonnumericids": True}


def send(obj):
    sys.stdout.buffer.write(json.dumps(obj).encode() + b"\n\n")
    sys.stdout.buffer.flush()


def reply(msg, result):
    send({"jsonrpc": "2.0", "id": msg["id"], "result": result})


def handle(msg):
    dump = os.environ.get("RAW_DUMP")
    if dump:
        with open(dump, "a") as f:
            f.write(json.dumps(msg) + "\n")
    method = msg.get("method")
    if method == "getmanifest":
        if MODE == "hang_manifest":
            time.sleep(3600)
        if MODE == "crash_manifest":
            sys.stderr.write("Traceback (most recent call last):\nRuntimeError: boom\n")
            sys.stderr.flush()
            sys.exit(1)
        if MODE == "garbage_manifest":
            sys.stdout.write("hello, I am not JSON\n")
            sys.stdout.flush()
            return
        reply(msg, json.loads(os.environ.get("RAW_MANIFEST", json.dumps(DEFAULT_MANIFEST))))
    elif method == "init":
        if MODE == "hang_init":
            time.sleep(3600)
        if MODE == "disable_init":
            reply(msg, {"disable": "no backend here"})
        elif MODE == "error_init":
            send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -1, "message": "nope"}})
        else:
            reply(msg, {})
        if MODE == "stderr_then_exit_after_init":
            sys.stderr.write("fatal: lost my marbles\n")
            sys.stderr.flush()
            os._exit(2)
    elif method == "raw-emit":
        params = msg["params"]
        text = params["text"] if isinstance(params, dict) else params[0]
        sys.stdout.write(text)
        sys.stdout.flush()
    elif "id" in msg:
        reply(msg, {"method": method, "params": msg.get("params")})


def main():
    dump = os.environ.get("RAW_DUMP")
    if dump:
        with open(dump, "a") as f:
            f.write(json.dumps({"startup": {
                "cwd": os.getcwd(), "argv": sys.argv,
                "LIGHTNINGD_PLUGIN": os.environ.get("LIGHTNINGD_PLUGIN"),
                "LIGHTNINGD_VERSION": os.environ.get("LIGHTNINGD_VERSION")}}) + "\n")
    partial = b""
    for line in sys.stdin.buffer:
        partial += line
        *complete, partial = partial.split(b"\n\n")
        for chunk in complete:
            if chunk.strip():
                handle(json.loads(chunk))


if __name__ == "__main__":
    main()
