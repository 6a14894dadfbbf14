"""Fuzz the policy build: every input goes through `verdict()`, the function `revops check`
and `revenue-reload` run, in a guarded worker process.

Inputs (seeded, reproducible): grammar-aware mutations of rules taken from the shipped
policy (numbers, facts, operators, functions, nesting, `in` lists, why formats),
YAML-level mutations of the resulting files (lines, quotes, brackets, indentation, types,
anchors, tags, bytes), and the crash classes of issue 12 at random sizes. Now and then the
whole shipped policy with one mutation, tests included.

Each input runs in a worker process with a memory limit and a time limit. Prints inputs
tried, accepted, refused with a located diagnostic (by code), tracebacks (an exception that
escaped `verdict()` or its `policy_internal_error` backstop), crashes (the worker died) and
hangs (no verdict within --timeout-s). Inputs of the last three are saved with --save DIR.
Exit status 1 when any of them is counted (outside --allow-known engine classes).

    PYTHONPATH=. python bench/fuzz.py --inputs 100000 --seed 1 [--time-limit-s 3600] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revops.facts.registry import FACTS  # noqa: E402
from revops.policy.reload import INTERNAL, verdict  # noqa: E402
from revops.resources import default_policy_dir  # noqa: E402

# A token is repeated only while short: repeating a repeat would grow an input to gigabytes (it
# did: 3.2 GB), which tests the fuzzer's memory, not the policy build. Inputs still reach ~16 MB,
# far over the 1 MiB a policy file may hold.
MAX_REPEATED_TOKEN = 8_000
MEMORY_LIMIT_BYTES = 2 << 30  # a worker that needs more is a finding (MemoryError), not a swapped machine

# Engine classes another branch (engine-safety) fixes: issue 12 items 1-3. With --allow-known
# they are counted apart, recognised by the input that caused them.
KNOWN_ENGINE = {
    "exponent number literal (issue 12.1)": re.compile(r"(?<![\w.])\d+[eE][+-]?\d+(?![\w.])"),
    "64 or more or/and branches in one condition (issue 12.2)": re.compile(r"(?:\b(?:or|and)\b[^\n]*?){64}"),
    "long in-list (issue 12.3)": re.compile(r"\[(?:[^\[\]\n]*?,){300}"),
}


# -- inputs ------------------------------------------------------------------------------

def _shipped() -> dict:
    """The shipped policy as plain data: stages, params, state, rules, and its raw files."""
    folder = default_policy_dir()
    files = {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}
    root = yaml.safe_load(files["policy.yaml"])
    params, state, rules = {}, {}, []
    for rel in ["policy.yaml", *root.get("include", [])]:
        doc = yaml.safe_load(files[rel]) or {}
        params.update(doc.get("params") or {})
        state.update(doc.get("state") or {})
        rules.extend(doc.get("rules") or [])
    return {"stages": root["stages"], "params": params, "state": state, "rules": rules, "files": files}


NUMBERS = ["0", "1", "-1", "0.5", "1.5", "100", "2500", "1e-05", "2e-07", "1e16", "1e+16", "1e308", "1e400",
           "0.000001", "99999999999999999999", "1_000_000", "9" * 40, "9" * 309, "9" * 4301, "00", "1.", ".5",
           "-0", "4294967295", "18446744073709551616"]
OPERATORS = ["<", "<=", ">", ">=", "==", "!=", "+", "-", "*", "/", "and", "or"]
FUNCTIONS = ["min", "max", "abs", "clamp", "round", "floor", "ceil", "log", "sqrt", "nope"]
TOKEN = re.compile(r"\s+|\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?|[A-Za-z_][\w.]*|<=|>=|==|!=|\"[^\"]*\"|'[^']*'|.")


def to_yaml(value, indent: str = "") -> str:
    """Block-style YAML, strings double-quoted as JSON writes them (valid YAML): ~50x faster
    than yaml.safe_dump, which would otherwise take most of the fuzzer's time."""
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{indent}{key}:\n{to_yaml(item, indent + '  ')}")
            else:
                out.append(f"{indent}{key}: {to_yaml(item, indent + '  ')}")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = []
        for item in value:
            body = to_yaml(item, indent + "  ")
            out.append(f"{indent}- {body.lstrip() if isinstance(item, dict) and item else body}")
        return "".join(out)
    return json.dumps(value, ensure_ascii=False) + "\n"


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.shipped = _shipped()
        self.facts = sorted(FACTS)
        self.params = sorted(self.shipped["params"])

    def next(self) -> tuple[str, dict[str, str]]:
        """One input: (kind, {relative path: text})."""
        r = self.rng.random()
        if r < 0.55:
            return "dsl", self._small(mutate_dsl=True)
        if r < 0.85:
            return "yaml", self._yaml_mutation(self._small(mutate_dsl=self.rng.random() < 0.3))
        if r < 0.995:
            return "crash-class", self._crash_class()
        return "shipped", self._shipped_mutation()

    # small policies built from the shipped rules
    def _small(self, mutate_dsl: bool) -> dict[str, str]:
        rng = self.rng
        rules = [dict(r) for r in rng.sample(self.shipped["rules"], rng.randint(1, 6))]
        if mutate_dsl:
            for _ in range(rng.randint(1, 3)):
                rule = rng.choice(rules)
                key = rng.choice(["when", "then", "why", "when", "then"])
                text = rule.get(key)
                if isinstance(text, list):
                    text = "; ".join(map(str, text))
                rule[key] = self.mutate_expression(str(text) if text is not None else "true", key)
        used = set(re.findall(r"params\.(\w+)", json.dumps(rules)))  # only what the rules name: small and fast
        if rng.random() < 0.2:
            used.add(rng.choice(self.params))
        doc = {"apiVersion": "revops/v1", "version": f"fuzz-{rng.randint(0, 999)}",
               "stages": self.shipped["stages"],
               "params": {k: v for k, v in self.shipped["params"].items() if k in used},
               "state": self.shipped["state"], "rules": rules}
        return {"policy.yaml": to_yaml(doc)}

    def mutate_expression(self, text: str, key: str) -> str:
        rng = self.rng
        if key == "why":
            choice = rng.random()
            if choice < 0.4:
                width = rng.choice(["5", "10.2f", "64", "65", "100000", "10000000", ",", ">12", "x", ".400f"])
                return f"{text} {{{rng.choice(self.facts)}:{width}}}"
            if choice < 0.6:
                return text + rng.choice(["{", "}", "{{", "{channel.nope}", "{1/0}", "{" + rng.choice(self.facts) + "}"])
        tokens = [t for t in TOKEN.findall(text)]
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(12)
            idx = rng.randrange(len(tokens)) if tokens else 0
            if op == 0 and tokens:
                tokens[idx] = rng.choice(NUMBERS)
            elif op == 1 and tokens:
                tokens[idx] = rng.choice(self.facts + [f"params.{p}" for p in self.params] +
                                         ["channel.nope", "params.nope", "state.nope", "decision.fee_ppm", "let.x"])
            elif op == 2 and tokens:
                tokens[idx] = f" {rng.choice(OPERATORS)} "
            elif op == 3 and tokens:
                del tokens[idx]
            elif op == 4:
                tokens.insert(idx, rng.choice(["(", ")", ",", "[", "]", " not ", " in ", "\"s\"", ";", "!", "=",
                                               "{", "&", " true ", " false "]))
            elif op == 5:
                fn = rng.choice(FUNCTIONS)
                args = ", ".join(rng.choice(NUMBERS[:8] + self.facts[:20]) for _ in range(rng.randint(0, 4)))
                tokens.insert(idx, f" {fn}({args}) ")
            elif op == 6:
                depth = rng.choice([2, 10, 47, 48, 49, 100, 1000, 3000])
                inner = "".join(tokens) or "true"
                wrap = rng.choice(["not ", "(", "-", "abs("])
                closing = ")" if wrap in ("(", "abs(") else ""
                tokens = [wrap * depth + inner + closing * depth]
            elif op == 7:
                n = rng.choice([2, 10, 64, 65, 200, 1000])
                glue = rng.choice([" and ", " or "])
                tokens = [glue.join([f"{rng.choice(self.facts)} > {rng.choice(NUMBERS[:8])}"] * n)]
            elif op == 8:
                n = rng.choice([1, 3, 100, 520, 1000])
                items = ", ".join(f'"{i}"' if rng.random() < 0.5 else str(i) for i in range(n))
                tokens.insert(idx, f" {rng.choice(self.facts)} in [{items}] ")
            elif op == 9 and tokens and len(tokens[idx]) < MAX_REPEATED_TOKEN:
                tokens.insert(idx, tokens[idx] * rng.choice([2, 50, 2000]))
            elif op == 10:
                tokens = [t.upper() if rng.random() < 0.1 else t for t in tokens]
            else:
                tokens.insert(idx, rng.choice(["\n", "\t", "\x00", "é", "\u2028", "#", "'", "\\"]))
        return "".join(tokens)

    # YAML-level
    def _yaml_mutation(self, files: dict[str, str]) -> dict[str, str]:
        rng = self.rng
        text = files["policy.yaml"]
        lines = text.split("\n")
        for _ in range(rng.randint(1, 3)):
            lines = lines or [""]  # a truncation may have left nothing
            op = rng.randrange(12)
            i = rng.randrange(len(lines))
            if op == 0:
                del lines[i]
            elif op == 1:
                lines.insert(i, lines[i])
            elif op == 2:
                lines[i] = " " * rng.choice([1, 2, 3, 4]) + lines[i] if rng.random() < 0.5 else lines[i].lstrip()
            elif op == 3:
                pos = rng.randint(0, len(lines[i]))
                lines[i] = lines[i][:pos] + rng.choice(["\"", "'", "[", "{", "]", "}", ":", "- ", "&a ", "*a",
                                                        "!!python/object:os.system ", "!!binary ", "? ", "|", ">",
                                                        "%", "@", "`", "\t", "---\n"]) + lines[i][pos:]
            elif op == 4:
                key = rng.choice(["description", "params", "state", "rules", "stages", "include", "version",
                                  "apiVersion", "name", "extra"])
                value = rng.choice(["null", "[]", "{}", "1", "true", "'x'", "[1, [2, [3]]]", "{a: 1}", ".inf", ".nan",
                                    "&r [*r]", "!!set {a}", "2001-12-14", "0x1F", "0o17", "~", "9" * 500])
                lines.insert(rng.randint(0, len(lines)), f"{key}: {value}")
            elif op == 5:
                depth = rng.choice([5, 31, 32, 33, 100, 1000])
                lines.insert(rng.randint(0, len(lines)), "description: " + "[" * depth + "]" * depth)
            elif op == 6:
                lines = lines[:rng.randint(0, len(lines))]
            elif op == 7:
                data = bytearray("\n".join(lines).encode())
                for _ in range(rng.randint(1, 5)):
                    if data:
                        data[rng.randrange(len(data))] = rng.randrange(256)
                lines = data.decode("utf-8", errors="replace").split("\n")
            elif op == 8:
                lines.insert(rng.randint(0, len(lines)), "include: [" + rng.choice(
                    ["\"a\\0b.yaml\"", "a" * rng.choice([10, 255, 256, 5000]) + ".yaml", "/etc/passwd", "../x.yaml",
                     "policy.yaml", "~/x.yaml", "\"\"", "tests", ".", "nested/deep.yaml"]) + "]")
            elif op == 9:
                levels = rng.randint(2, 9)
                laughs = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                laughs += [f"a{k}: &a{k} [{','.join([f'*a{k - 1}'] * 9)}]" for k in range(1, levels)]
                lines[i:i] = laughs
            elif op == 10:
                lines[i] = lines[i].replace(": ", ": " + rng.choice(["", "-", "[", "{", "'", "\""]), 1)
            else:
                lines[i] = lines[i] + " " + rng.choice(["#", "x: y", "- z", "]", "}", "\"", "'"])
        return {"policy.yaml": "\n".join(lines)}

    # the crash classes of issue 12 at random sizes
    def _crash_class(self) -> dict[str, str]:
        rng = self.rng
        n = rng.choice([10, 48, 49, 300, 1000, 4301, 5000])
        when, then, why, extra = "true", "set_fee(100)", "w", ""
        case = rng.randrange(10)
        if case == 0:
            when = "channel.fee_ppm > " + "9" * n
        elif case == 1:
            when = rng.choice(["max(5) > 1", "min(5) > 1", "max() > 1", "abs() > 1", "max(channel.fee_ppm) > 1"])
        elif case == 2:
            when = rng.choice(["not " * n + "true", "(true and " * (n // 10) + "true" + ")" * (n // 10),
                               " and ".join(["true"] * n)[:9_990]])
        elif case == 3:
            extra = "description: " + "[" * n + "]" * n + "\n"
        elif case == 4:
            extra = rng.choice(["description: &r [*r]\n", "description: &r {a: *r}\n", "x: &x a\ny: *x\n"])
        elif case == 5:
            then = f"set_fee({'9' * rng.choice([308, 309, 310])} * 1.5)"
        elif case == 6:
            extra = f"params:\n  p: {{type: {rng.choice(['int', 'number'])}, default: {'9' * rng.choice([21, 22, 400])}, doc: x}}\n"
            then = "set_fee(params.p * 1.5)"
        elif case == 7:
            extra = "include: [" + rng.choice(["\"a\\0.yaml\"", "a" * n + ".yaml"]) + "]\n"
        elif case == 8:
            why = f"fee {{channel.fee_ppm:{rng.choice(['10000000', '64', '65', '1000.1000f', '0>99999'])}}}"
        else:
            then = f"set_fee({rng.choice(['1e308 * 10', '99999999999999999999 * 99999999999999999999', '1 / 0', '0 * 1e400'])})"
        rule = {"id": "r", "stage": "discovery", "when": when, "then": then, "why": why}
        head = ('apiVersion: revops/v1\nversion: "1"\nstages:\n  - name: congestion\n  - name: discovery\n')
        return {"policy.yaml": head + extra + to_yaml({"rules": [rule]})}

    def _shipped_mutation(self) -> dict[str, str]:
        files = dict(self.shipped["files"])
        rel = self.rng.choice([f for f in files if f.endswith(".yaml")])
        lines = files[rel].split("\n")
        candidates = [i for i, line in enumerate(lines) if re.match(r"\s+(when|then|why):", line)]
        if candidates:
            i = self.rng.choice(candidates)
            head, _, expr = lines[i].partition(": ")
            key = head.strip()
            lines[i] = f"{head}: {json.dumps(self.mutate_expression(expr.strip().strip(chr(34)), key))}"
        files[rel] = "\n".join(lines)
        return files


# -- guarded runs --------------------------------------------------------------------------

def _worker(conn, folder: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    folder = Path(folder)
    while True:
        try:
            files = conn.recv()
        except EOFError:
            return
        shutil.rmtree(folder, ignore_errors=True)
        for rel, text in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        try:
            judged = verdict(folder)
            internal = [d.message for d in judged.errors if d.code == INTERNAL]
            conn.send(("traceback", internal[0]) if internal else
                      ("ok", None) if judged.ok else ("refused", sorted({d.code for d in judged.errors})))
        except BaseException as err:  # escaped verdict(): exactly what must never happen
            conn.send(("traceback", f"escaped {type(err).__name__}: {str(err)[:200]} "
                                    f"{traceback.format_tb(err.__traceback__)[-1].strip()[:200]}"))


class Runner:
    """One worker process at a time; a dead or stuck one is replaced."""

    def __init__(self, scratch: Path, timeout_s: float, start_method: str = "forkserver"):
        self.scratch = scratch
        self.timeout_s = timeout_s
        # forkserver: each worker forks from a small server, not from this process, whose heap
        # (every input generated so far) would otherwise count against the worker's memory limit.
        self.ctx = multiprocessing.get_context(start_method)
        self.proc = None

    def _start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, str(self.scratch / "policy")), daemon=True)
        self.proc.start()

    def run(self, files: dict[str, str]) -> tuple[str, object]:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        try:
            self.conn.send(files)
            if self.conn.poll(self.timeout_s):
                return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
            return "hang", f"no verdict within {self.timeout_s:g} s"
        self.proc.join()
        return "crash", f"worker died, exit code {self.proc.exitcode}"

    def close(self):
        if self.proc is not None and self.proc.is_alive():
            self.conn.close()
            self.proc.join(timeout=5)
            if self.proc.is_alive():
                self.proc.kill()


def known_engine_class(files: dict[str, str]) -> str | None:
    text = "\n".join(files.values())
    for name, pattern in KNOWN_ENGINE.items():
        if pattern.search(text):
            return name
    return None


def fuzz(inputs: int, seed: int, timeout_s: float = 10.0, time_limit_s: float | None = None,
         save: Path | None = None, allow_known: bool = False, progress=None,
         start_method: str = "forkserver") -> dict:
    """Run up to `inputs` inputs (or until `time_limit_s`); return the figures. `start_method`
    "fork" lets a test patch this module in the workers."""
    gen = Generator(seed)
    scratch = Path(tempfile.mkdtemp(prefix="rvfuzz"))
    runner = Runner(scratch, timeout_s, start_method)
    counts: Counter = Counter()
    codes: Counter = Counter()
    kinds: Counter = Counter()
    findings: Counter = Counter()
    known: Counter = Counter()
    started = time.monotonic()
    tried = 0
    try:
        for tried in range(1, inputs + 1):
            kind, files = gen.next()
            kinds[kind] += 1
            outcome, detail = runner.run(files)
            if outcome in ("traceback", "crash", "hang"):
                engine = known_engine_class(files) if allow_known else None
                if engine:
                    known[f"{outcome}: {engine}"] += 1
                    outcome = "known_engine"
                else:
                    findings[f"{outcome}: {detail}"[:240]] += 1
                    if save is not None:
                        folder = save / f"{outcome}-{seed}-{tried}"
                        for rel, text in files.items():
                            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                            (folder / rel).write_bytes(text.encode("utf-8", errors="surrogateescape"))
            elif outcome == "refused":
                codes.update(detail)
            counts[outcome] += 1
            if progress and tried % 1000 == 0:
                progress(tried, counts, time.monotonic() - started)
            if time_limit_s is not None and time.monotonic() - started > time_limit_s:
                break
    finally:
        runner.close()
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - started
    return {"seed": seed, "inputs": tried, "seconds": round(elapsed, 1),
            "per_second": round(tried / elapsed, 1) if elapsed else None,
            "accepted": counts["ok"], "diagnostics": counts["refused"], "tracebacks": counts["traceback"],
            "crashes": counts["crash"], "hangs": counts["hang"], "known_engine": counts["known_engine"],
            "by_kind": dict(kinds), "by_code": dict(codes.most_common()),
            "findings": dict(findings.most_common(20)), "known": dict(known.most_common())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=10.0, help="per input: longer is a hang")
    parser.add_argument("--time-limit-s", type=float, default=None, help="stop after this long")
    parser.add_argument("--save", type=Path, default=None, help="save the inputs of findings here")
    parser.add_argument("--allow-known", action="store_true",
                        help="count engine classes fixed on branch engine-safety (issue 12.1-3) apart")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def progress(n, counts, elapsed):
        print(f"  {n:,} inputs, {elapsed:.0f} s: {dict(counts)}", file=sys.stderr, flush=True)

    report = fuzz(args.inputs, args.seed, args.timeout_s, args.time_limit_s, args.save, args.allow_known,
                  progress=None if args.json else progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"fuzz seed {report['seed']}: {report['inputs']:,} inputs in {report['seconds']} s "
              f"({report['per_second']}/s)")
        print(f"  accepted {report['accepted']:,}, refused with a located diagnostic {report['diagnostics']:,}")
        print(f"  tracebacks {report['tracebacks']}, crashes {report['crashes']}, hangs {report['hangs']}"
              + (f", known engine classes {report['known_engine']}" if args.allow_known else ""))
        print(f"  by kind: {report['by_kind']}")
        print(f"  diagnostics by code: {report['by_code']}")
        for finding, n in report["findings"].items():
            print(f"  FINDING x{n}: {finding}")
        for finding, n in report["known"].items():
            print(f"  known x{n}: {finding}")
    bad = report["tracebacks"] + report["crashes"] + report["hangs"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
