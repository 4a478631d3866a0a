"""`make fuzz`: many seeded, broken requests against a live gateway on loopback (issue 11).

    .venv/bin/python bench/fuzz.py                        100,000 examples, at most 15 minutes
    .venv/bin/python bench/fuzz.py --examples 20000 --seed 7 --max-seconds 300

The gateway runs in this process (``ridethrough.harness.GatewayThread``) with four built-in
simulators in both wire formats and three cross-format routes (one with the response cache
on), so every body meets a passthrough target, a translation and the cache's keys. Bodies
are, in equal parts: typed from the shape
tables (``ridethrough.protocols.shape``, every field ridethrough reads, with roles and block
types known and unknown), the golden request fixtures of ``tests/protocol/fixtures`` with one
to three mutations (a value of another type, a deleted key, a null, an unknown key), and
bodies that are no JSON object at all (truncated JSON, other values, bytes). Both endpoints
(and a few to ``/v1/messages/count_tokens``), streamed or not, some with odd ``anthropic-beta``
headers. ``random.Random(seed)`` makes a run repeatable; the in-suite property tests
(tests/e2e/test_bad_input_properties.py) use Hypothesis for the same sources, which shrinks
a failure but is too slow for 100,000.

Counted and printed: statuses, 5xx, dropped connections, errors not in the caller's format,
streams that did not end properly, requests whose own record blames a target (an attempt
a breaker or a health window counts as failed), and at the end what the gateway holds
against its targets (breakers, health windows, incidents) and whether it still serves.
Exit status 1 if any of those is not zero. Traffic goes to 127.0.0.1 only; bounded in count
and time.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.health.samples import attempt_verdict
from ridethrough.protocols import shape
from ridethrough.records import RequestRecord

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "protocol" / "fixtures"
PATHS = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions",
         "count_tokens": "/v1/messages/count_tokens"}
ROUTES = ["claude-first", "gpt-first", "cached"]
BETAS = ["mid-conversation-system-2026-04-07", "claude-code-20250219,interleaved-thinking-2025-05-14",
         "", "x" * 300, "caf\u00e9", "a, ,b"]
ROLES = {"anthropic": ["user", "assistant", "system", "robot"],
         "openai": ["system", "developer", "user", "assistant", "tool", "function", "robot"]}
BLOCK_TYPES = {"anthropic": ["text", "image", "tool_use", "tool_result", "thinking", "document"],
               "openai": ["text", "image_url", "refusal", "input_audio", "file"]}
WORDS = ["", "hi", "auto", "none", "function", "any", "required", "text", "\u00e9t\u00e9",
         "data:image/png;base64,iVBORw0KGgo=", "https://example.com/a.png", "x" * 70, " ", "\n"]
SCALARS: list[Any] = [None, True, False, 0, 1, -1, 2**63, 2**64 - 1, -(2**63), 1.5, -0.5, 1e300,
                      "", "x", "\u00e9", "\U0001f600", "\\", '"']


def config() -> Any:
    roomy = {"connect": 5, "first_byte": 20, "first_token": 20, "idle": 20, "total": 30}
    providers = {name: {"kind": "simulated", "format": fmt, "token_delay_s": 0, "timeouts": roomy}
                 for name, fmt in (("a_primary", "anthropic"), ("a_backup", "anthropic"),
                                   ("o_primary", "openai"), ("o_backup", "openai"))}
    models = {"a_primary": "claude-sonnet-4-6", "a_backup": "claude-sonnet-4-6",
              "o_primary": "gpt-4o", "o_backup": "gpt-4o"}
    routes = {route: {"targets": [{"provider": p, "model": models[p]} for p in pair],
                      "cache": {"mode": "off"}}
              for route, pair in (("claude-first", ("a_primary", "o_backup")),
                                  ("gpt-first", ("o_primary", "a_backup")),
                                  ("cached", ("a_primary", "o_primary")))}
    routes["cached"]["cache"] = {"mode": "always"}  # every body through the cache's keys too
    # No hedging: a lost race on a busy 2-core machine is not what this run is about.
    return parse_config({"server": {"access_log": False}, "providers": providers, "routes": routes,
                         "resilience": {"hedge": {"enabled": False}}})


# -- bodies -------------------------------------------------------------------------------------

def golden(fmt: str) -> list[dict[str, Any]]:
    folder, direction = ("request_a2o", "a2o") if fmt == "anthropic" else ("request_o2a", "o2a")
    bodies = [json.loads(p.read_text())["input"] for p in sorted((FIXTURES / folder).glob("*.json"))]
    for name in ("dropped", "untranslatable"):
        cases = json.loads((FIXTURES / "losses" / f"{name}.json").read_text())["cases"]
        bodies.extend(c["input"] for c in cases if c["direction"] == direction)
    return bodies


def json_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 2 or roll < 0.6:
        return rng.choice(SCALARS + WORDS)
    if roll < 0.8:
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["type", "text", "x", "content", "role", ""]): json_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def typed(rng: random.Random, spec: shape.Spec, fmt: str) -> Any:
    """A value of the type ridethrough reads for ``spec`` (shape tables)."""
    if isinstance(spec, shape.Scalar):
        kind = rng.choice(spec.types)
        if kind is str:
            return rng.choice(WORDS)
        if kind is bool:
            return rng.random() < 0.5
        if kind is int:
            return rng.choice([-1, 0, 1, 3, 2**40])
        return rng.uniform(-1, 3)
    if isinstance(spec, shape.Obj):
        out = {name: typed(rng, spec.fields[name], fmt) for name in spec.required}
        for name, sub in spec.fields.items():
            if name not in out and rng.random() < 0.35:
                out[name] = typed(rng, sub, fmt) if rng.random() < 0.85 else None
        return out
    if isinstance(spec, shape.ListOf):
        return [typed(rng, spec.item, fmt) for _ in range(rng.randint(0, 3))]
    if isinstance(spec, shape.OneOf):
        return typed(rng, rng.choice(spec.options), fmt)
    if isinstance(spec, shape.Tagged):
        if rng.random() < 0.8:
            kind, variant = rng.choice(list(spec.variants.items()))
            return {**typed(rng, variant, fmt), "type": kind}
        return {"type": rng.choice(BLOCK_TYPES[fmt]), "text": rng.choice(WORDS)}
    return json_value(rng)


def typed_request(rng: random.Random, fmt: str) -> dict[str, Any]:
    spec = shape.ANTHROPIC if fmt == "anthropic" else shape.OPENAI
    top = {k: v for k, v in spec.fields.items() if k != "messages"}
    body = typed(rng, shape.Obj(top), fmt)
    message_spec = spec.fields["messages"].item  # type: ignore[attr-defined]
    body["messages"] = [{**typed(rng, message_spec, fmt), "role": rng.choice(ROLES[fmt])}
                        for _ in range(rng.randint(1, 4))]
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body:
            body[key] = rng.randint(1, 64)
    if fmt == "anthropic" and rng.random() < 0.7:
        body["max_tokens"] = rng.randint(1, 64)
    return body


def paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(paths(v, (*path, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(paths(v, (*path, i)))
    return out


def mutate(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for _ in range(rng.randint(1, 3)):
        inner = paths(body)[1:]
        if not inner:
            break
        path = rng.choice(inner)
        parent: Any = body
        for step in path[:-1]:
            parent = parent[step]
        key, op = path[-1], rng.random()
        if op < 0.55:
            parent[key] = json_value(rng)
        elif op < 0.7:
            parent[key] = None
        elif op < 0.85:
            del parent[key]
        elif isinstance(parent, dict):
            parent[rng.choice(["stream", "tools", "x", "system", "role"])] = json_value(rng)
        else:
            parent.insert(key, json_value(rng))
    return body


class Bodies:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.golden = {fmt: golden(fmt) for fmt in PATHS}

    def next(self) -> tuple[str, str, bytes]:
        """(format, source, raw body). Format ``count_tokens``: Anthropic's other POST."""
        rng = self.rng
        fmt = rng.choice(["anthropic", "openai"])
        if fmt == "anthropic" and rng.random() < 0.05:
            fmt = "count_tokens"
        source = rng.choice(["typed", "mutated", "raw"])
        wire = "anthropic" if fmt == "count_tokens" else fmt
        if source == "raw":
            return fmt, source, self.raw(wire)
        if source == "typed":
            body = typed_request(rng, wire)
        else:
            body = mutate(rng, dict(rng.choice(self.golden[wire]), model=rng.choice(ROUTES)))
        if isinstance(body, dict):
            body.setdefault("model", rng.choice(ROUTES))
            if source == "typed":
                body["model"] = rng.choice(ROUTES)
            if rng.random() < 0.4:
                body["stream"] = True
        return fmt, source, orjson.dumps(body)

    def raw(self, fmt: str) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            data = orjson.dumps(mutate(rng, dict(rng.choice(self.golden[fmt]), model=rng.choice(ROUTES))))
            return data[: rng.randint(0, len(data) - 1)]
        if roll < 0.8:
            return orjson.dumps(json_value(rng) if rng.random() < 0.5 else [json_value(rng)])
        return rng.randbytes(rng.randint(0, 40))


# -- the run ------------------------------------------------------------------------------------

class Run:
    def __init__(self, gt: GatewayThread) -> None:
        self.gt = gt
        self.lock = threading.Lock()
        self.status: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.examples: list[str] = []
        self.records: dict[str, RequestRecord] = {}
        gt.gateway.observers.append(self._observe)

    def _observe(self, record: RequestRecord) -> None:
        if any(attempt_verdict(a.outcome) == (True, True) for a in record.attempts):
            self.records[record.request_id] = record  # only the ones that blame a target

    def problem(self, kind: str, fmt: str, body: bytes, detail: str) -> None:
        with self.lock:
            self.problems[kind] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind} [{fmt}] {detail[:200]}\n    body: {body[:300]!r}")

    def post(self, client: httpx.Client, rid: str, fmt: str, body: bytes, beta: str | None) -> None:
        headers: dict[str, str | bytes] = {"content-type": "application/json", "x-request-id": rid}
        if fmt != "openai":
            headers["anthropic-version"] = "2023-06-01"
            if beta is not None:
                headers["anthropic-beta"] = beta.encode("latin-1")  # bytes: httpx sends them as is
        try:
            with client.stream("POST", PATHS[fmt], content=body, headers=headers) as r:
                data = r.read()
        except httpx.HTTPError as e:
            with self.lock:
                self.status["dropped"] += 1
            self.problem("dropped connection", fmt, body, repr(e))
            return
        with self.lock:
            self.status[str(r.status_code)] += 1
        if r.status_code >= 500:
            self.problem("5xx", fmt, body, data.decode(errors="replace"))
        elif r.status_code >= 400 and not in_format("openai" if fmt == "openai" else "anthropic", data):
            self.problem("error not in the caller's format", fmt, body, data.decode(errors="replace"))
        elif r.status_code == 200 and r.headers.get("content-type", "").startswith("text/event-stream"):
            end = b"event: message_stop" if fmt == "anthropic" else b"data: [DONE]"
            if end not in data or b'"error"' in data:
                self.problem("stream did not end properly", fmt, body, data[-200:].decode(errors="replace"))


class LogCount(logging.Handler):
    """The gateway's log, counted rather than printed: a request refused by a translated
    target is logged loudly on purpose, and 100,000 bad requests would bury the summary. A
    traceback (an unexpected exception, even one answered 400) is worth a look."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.levels: Counter[str] = Counter()
        self.tracebacks = 0
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[f"{record.name}:{record.levelname}"] += 1
        if record.exc_info:
            self.tracebacks += 1
            if len(self.examples) < 5:
                self.examples.append(f"{record.getMessage()[:200]} ({record.exc_info[0].__name__})")


def in_format(fmt: str, data: bytes) -> bool:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    if fmt == "anthropic":
        return body.get("type") == "error" and isinstance(body["error"].get("type"), str)
    return set(body) == {"error"} and isinstance(body["error"].get("message"), str)


def still_serving(url: str) -> bool:
    ok = True
    for fmt in ("anthropic", "openai"):
        body = {"model": "claude-first", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"anthropic-version": "2023-06-01"} if fmt == "anthropic" else {}
        ok = ok and httpx.post(url + PATHS[fmt], json=body, headers=headers, timeout=30).status_code == 200
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--max-seconds", type=float, default=900.0, help="stop early after this long")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--clients", type=int, default=4, help="concurrent client connections")
    args = ap.parse_args(argv)

    logged = LogCount()
    logging.basicConfig(handlers=[logged], level=logging.WARNING, force=True)
    bodies = Bodies(args.seed)
    planned = [bodies.next() for _ in range(args.examples)]  # generated first: repeatable
    betas = random.Random(args.seed + 1)
    headers = [betas.choice([*BETAS, None, None, None]) for _ in planned]
    sources = Counter(source for _, source, _ in planned) + Counter(fmt for fmt, _, _ in planned)
    with GatewayThread(config()) as gt:
        run = Run(gt)
        started = time.monotonic()
        stop_at = started + args.max_seconds
        cursor = iter(enumerate(planned))
        sent = [0]

        def worker() -> None:
            with httpx.Client(base_url=gt.url, timeout=60) as client:
                while time.monotonic() < stop_at:
                    with run.lock:
                        item = next(cursor, None)
                        if item is None:
                            return
                        sent[0] += 1
                    i, (fmt, _, body) = item
                    try:
                        run.post(client, f"fuzz-{args.seed}-{i}", fmt, body, headers[i])
                    except Exception as e:  # the fuzzer's own failure must not pass for a clean run
                        run.problem("fuzzer error", fmt, body, repr(e))

        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # the last streams' records
        blamed = gt.blamed()
        serving = still_serving(gt.url)
        blamed_requests = len(run.records)

    done = sent[0]
    print(f"fuzz: {done} of {args.examples} examples (seed {args.seed}) in {elapsed:.0f} s, "
          f"{done / elapsed:.0f}/s, {args.clients} clients; sources {dict(sources)}")
    print("status counts:", dict(sorted(run.status.items())))
    fives = sum(n for s, n in run.status.items() if s.startswith("5"))
    wrong_format = run.problems["error not in the caller's format"]
    print(f"5xx: {fives}  dropped connections: {run.status['dropped']}  "
          f"errors not in the caller's format: {wrong_format}  "
          f"streams not ended: {run.problems['stream did not end properly']}")
    print(f"log lines: {dict(logged.levels) or 'none'}; with a traceback: {logged.tracebacks}")
    for line in logged.examples:
        print("  " + line)
    print(f"requests whose record blames a target: {blamed_requests}; "
          f"held against targets at the end: {blamed or 'nothing'}; still serving: {serving}")
    if run.problems:
        print("problems:", dict(run.problems))
    for line in run.examples:
        print("  " + line)
    bad = fives or run.status["dropped"] or sum(run.problems.values()) or blamed_requests or blamed \
        or not serving
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
