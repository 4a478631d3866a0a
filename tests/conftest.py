"""Shared fixtures for the resilience tests (fault matrix, breakers, deadlines, admin).

``resilience_kit`` builds the standard test topology — two routes whose primaries and
secondaries speak different wire formats, each target a built-in simulator on its own
loopback port — and asks one question through an official SDK, reporting what the *client*
saw: which target served it (``x-ridethrough-target``), the text, whether the answer ended
properly, or the error the SDK raised and its type. Tests assert on that and on the
simulators' own request counters, never on durations.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest

from ridethrough.config import Config, parse_config
from ridethrough.harness import GatewayThread

# Per-target timeouts for the tests: the simulator answers in a few ms when unloaded, so
# these are still >= 50x its latency, while a hung target costs the suite only 0.5-1 s.
FAST_TIMEOUTS = {"connect": 1, "first_byte": 0.5, "first_token": 0.5, "idle": 0.5, "total": 1}

# route -> (primary provider, secondary provider).
ROUTES = {
    "claude-first": ("a_primary", "o_backup"),   # Anthropic-format primary, OpenAI-format backup
    "gpt-first": ("o_primary", "a_backup"),      # the reverse
}
MODELS = {"a_primary": "claude-sonnet-4-6", "a_backup": "claude-sonnet-4-6",
          "o_primary": "gpt-4o", "o_backup": "gpt-4o"}
FORMATS = {"a_primary": "anthropic", "a_backup": "anthropic",
           "o_primary": "openai", "o_backup": "openai"}


def target_key(provider: str) -> str:
    return f"{provider}/{MODELS[provider]}"


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def two_route_config(*, primary_token_delay_s: float = 0.0, **overrides: Any) -> Config:
    """The standard topology; ``overrides`` deep-merge into the raw config mapping
    (e.g. ``resilience={"breaker": {"consecutive_failures": 3}}``). Pacing the primaries'
    tokens makes a fault "after the first token" reliably land after the commit point."""
    providers = {}
    for name in MODELS:
        providers[name] = {
            "kind": "simulated", "format": FORMATS[name],
            "token_delay_s": primary_token_delay_s if name.endswith("primary") else 0.0,
            "timeouts": dict(FAST_TIMEOUTS),
        }
    raw: dict[str, Any] = {
        "server": {"access_log": False},
        "providers": providers,
        "routes": {
            route: {"targets": [{"provider": p, "model": MODELS[p]},
                                {"provider": s, "model": MODELS[s]}],
                    "cache": {"mode": "off"}}
            for route, (p, s) in ROUTES.items()
        },
        # Same-target retries stay on (they are part of what is tested) but back off briefly.
        "resilience": {"retry": {"backoff_s": 0.01}},
    }
    return parse_config(_deep_merge(raw, overrides))


@dataclass
class Seen:
    """What the client saw for one request."""

    target: str | None = None            # x-ridethrough-target
    text: str = ""
    finished: bool = False               # ended with its stop reason / terminal event
    stop_reason: str | None = None
    status: int | None = None            # HTTP status of the error the SDK raised
    error_type: str | None = None        # the error's type from its body
    error: Exception | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def in_band(self) -> bool:
        """The error arrived inside a 200 stream, after the answer had started."""
        return self.error is not None and self.status in (None, 200)


def _error_type(sdk: str, e: Exception) -> str | None:
    body = getattr(e, "body", None)
    if not isinstance(body, dict):
        return None
    if sdk == "anthropic":
        err = body.get("error")
        return err.get("type") if isinstance(err, dict) else None
    return body.get("type")


_CLIENTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def client(sdk: str, url: str, *, max_retries: int = 0, timeout: float | None = None) -> Any:
    """An official SDK client for a gateway (a few are kept: building one costs ~50 ms)."""
    key = (sdk, url, max_retries, timeout)
    if key in _CLIENTS:
        _CLIENTS.move_to_end(key)
        return _CLIENTS[key]
    kw: dict[str, Any] = {"api_key": "client-key", "max_retries": max_retries}
    if timeout is not None:
        kw["timeout"] = timeout
    if sdk == "anthropic":
        c: Any = anthropic.Anthropic(base_url=url, **kw)
    else:
        c = openai.OpenAI(base_url=url + "/v1", **kw)
    _CLIENTS[key] = c
    while len(_CLIENTS) > 8:
        _CLIENTS.popitem(last=False)[1].close()
    return c


def ask(sdk: str, url: str, route: str, prompt: str, *, stream: bool, max_retries: int = 0,
        timeout: float | None = None, sdk_client: Any = None) -> Seen:
    """One chat request through the official SDK; any SDK error is captured, not raised."""
    c = sdk_client or client(sdk, url, max_retries=max_retries, timeout=timeout)
    seen = Seen()
    messages = [{"role": "user", "content": prompt}]
    try:
        if sdk == "anthropic":
            raw = c.messages.with_raw_response.create(model=route, max_tokens=300,
                                                      messages=messages, stream=stream)
            seen.headers = dict(raw.headers)
            seen.target = raw.headers.get("x-ridethrough-target")
            if stream:
                for ev in raw.parse():
                    if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                        seen.text += ev.delta.text
                    elif ev.type == "message_delta":
                        seen.stop_reason = ev.delta.stop_reason
                    elif ev.type == "message_stop":
                        seen.finished = seen.stop_reason is not None
            else:
                msg = raw.parse()
                seen.text = "".join(b.text for b in msg.content or [] if b.type == "text")
                seen.stop_reason = msg.stop_reason
                seen.finished = msg.stop_reason is not None
        else:
            raw = c.chat.completions.with_raw_response.create(model=route, messages=messages,
                                                              stream=stream)
            seen.headers = dict(raw.headers)
            seen.target = raw.headers.get("x-ridethrough-target")
            if stream:
                done = False
                for chunk in raw.parse():
                    for choice in chunk.choices:
                        seen.text += choice.delta.content or ""
                        if choice.finish_reason:
                            seen.stop_reason = choice.finish_reason
                done = True  # the SDK stops at data: [DONE]; an error frame raises instead
                seen.finished = done and seen.stop_reason is not None
            else:
                comp = raw.parse()
                seen.text = comp.choices[0].message.content or ""
                seen.stop_reason = comp.choices[0].finish_reason
                seen.finished = seen.stop_reason is not None
    except (anthropic.APIError, openai.APIError) as e:
        seen.error = e
        seen.status = getattr(e, "status_code", None)
        seen.error_type = _error_type(sdk, e)
        response = getattr(e, "response", None)
        if response is not None and not seen.headers:
            seen.headers = dict(response.headers)
    return seen


def answered_by(seen: Seen, provider: str, prompt: str) -> bool:
    """A complete, correct answer from this simulator to this prompt."""
    return (seen.error is None and seen.target == target_key(provider) and seen.finished
            and seen.text.startswith(f"[{provider}] Here is a short answer about: {prompt}"))


def sim(gt: GatewayThread, provider: str) -> Any:
    return gt.gateway.providers[provider].server


def reset_sims(gt: GatewayThread) -> None:
    for p in gt.gateway.providers.values():
        server = getattr(p, "server", None)
        if server is not None:
            server.clear_faults()
            server.stats.reset()


class ResilienceKit:
    """The helpers above, handed to tests through a fixture."""

    ROUTES = ROUTES
    FAST_TIMEOUTS = FAST_TIMEOUTS
    config = staticmethod(two_route_config)
    ask = staticmethod(ask)
    client = staticmethod(client)
    answered_by = staticmethod(answered_by)
    target_key = staticmethod(target_key)
    sim = staticmethod(sim)
    reset_sims = staticmethod(reset_sims)


@pytest.fixture(scope="session")
def resilience_kit() -> ResilienceKit:
    return ResilienceKit()


@pytest.fixture()
def start_gateway() -> Iterator[Any]:
    """Start gateways on loopback ports (kwargs go to Gateway: clock=, sleep=, rng=);
    every one is stopped at teardown."""
    started: list[GatewayThread] = []

    def start(cfg: Config, **gateway_kwargs: Any) -> GatewayThread:
        gt = GatewayThread(cfg, **gateway_kwargs).start()
        started.append(gt)
        return gt

    yield start
    for gt in started:
        gt.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI every dependency is installed by the project's own set-up, so a skip there (no
    llama.cpp, no SmolLM2, no Chromium) means a missing install step: fail, don't hide it."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which installs everything: {report.longrepr}"


@pytest.fixture(scope="session")
def llama_reference() -> Iterator[Any]:
    """llama.cpp's own answers on this machine, for differential tests of the local model
    (tests/support/llama_reference.py says why no test compares a model's words to a string)."""
    import importlib.util

    from ridethrough.providers.local_model import find_gguf

    if importlib.util.find_spec("llama_cpp") is None or find_gguf() is None:
        pytest.skip("llama-cpp-python or SmolLM2 missing")
    from support.llama_reference import LlamaReference

    ref = LlamaReference()
    yield ref
    ref.close()
