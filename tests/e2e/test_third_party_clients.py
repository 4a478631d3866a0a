"""The clients people really use, unmodified, against the gateway over real sockets.

Node clients are installed by ``make test``'s set-up from ``tests/clients/node/package-lock.json``
(exact versions with integrity hashes): the official TypeScript SDKs, the Vercel AI SDK with
its Anthropic and OpenAI providers, and the Claude Code CLI in print mode. Each does a JSON
call, a stream and a tool round trip, in both route directions: to a target speaking its own
format (passthrough) and to one speaking the other (translation). The upstreams are the
built-in simulator, so the answers are known: ``[<provider>] Here is a short answer about: …``,
and after a tool result ``[<provider>] The tool returned: …``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread

NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"
CLAUDE = NODE_DIR / "node_modules" / ".bin" / "claude"
HAVE_NODE = shutil.which("node") is not None and (NODE_DIR / "node_modules").is_dir()

pytestmark = pytest.mark.skipif(not HAVE_NODE, reason="node or tests/clients/node/node_modules "
                                                      "missing (scripts/setup.sh installs them)")

# Route → the simulated provider behind it. Claude Code picks its behaviour from the model
# name (tool loading, context size), so its routes carry Claude model names.
ROUTES = {"claude-sonnet-4-5": "a", "claude-haiku-4-5": "o", "gpt-4.1": "o", "gpt-4o": "a"}
DIRECTIONS = {  # client format → (same-format route, cross-format route)
    "anthropic": ("claude-sonnet-4-5", "claude-haiku-4-5"),
    "openai": ("gpt-4.1", "gpt-4o"),
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    cfg = parse_config({
        "server": {"access_log": False, "data_dir": str(tmp_path_factory.mktemp("rt-data"))},
        "providers": {"a": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0.001},
                      "o": {"kind": "simulated", "format": "openai", "token_delay_s": 0.001}},
        "routes": {name: {"targets": [{"provider": p, "model": name}], "cache": {"mode": "off"}}
                   for name, p in ROUTES.items()},
    })
    with GatewayThread(cfg) as g:
        yield g


def node(script: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(["node", str(NODE_DIR / script), *args], capture_output=True, text=True,
                          timeout=120, cwd=NODE_DIR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


CASES = [(fmt, mode, direction) for fmt in DIRECTIONS for mode in ("json", "stream", "tools")
         for direction in ("same", "cross")]


def _check(out: dict[str, Any], mode: str, route: str, prompt: str) -> None:
    sim = ROUTES[route]
    if mode == "tools":
        assert out["tool_called"] == "get_weather", out
        assert out["text"].startswith(f"[{sim}] The tool returned: sunny, 21 C"), out
    else:
        assert out["text"].startswith(f"[{sim}] Here is a short answer about: {prompt}"), out
    if mode == "stream":
        assert out["deltas"] > 1, out          # it really streamed


@pytest.mark.parametrize("fmt,mode,direction", CASES)
def test_official_typescript_sdks(gw, fmt, mode, direction):
    route = DIRECTIONS[fmt][direction == "cross"]
    prompt = f"ts {fmt} {mode} {direction}"
    out = node("official.mjs", fmt, mode, gw.url, route, prompt)
    _check(out, mode, route, prompt)
    assert out["stop"] in (("tool_use", "end_turn") if fmt == "anthropic" else ("stop",))


@pytest.mark.parametrize("fmt,mode,direction", CASES)
def test_vercel_ai_sdk(gw, fmt, mode, direction):
    route = DIRECTIONS[fmt][direction == "cross"]
    prompt = f"vercel {fmt} {mode} {direction}"
    out = node("vercel-ai.mjs", fmt, mode, gw.url, route, prompt)
    _check(out, mode, route, prompt)
    assert out["stop"] == "stop"


def claude_code(gw: GatewayThread, tmp_path: Path, model: str, prompt: str,
                tools: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update({
        "HOME": str(tmp_path / "home"), "ANTHROPIC_BASE_URL": gw.url,
        "ANTHROPIC_API_KEY": "client-key", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_ERROR_REPORTING": "1",
    })
    proc = subprocess.run([str(CLAUDE), "-p", prompt, "--model", model, "--tools", tools,
                           "--output-format", "json"], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env=env)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    return json.loads(proc.stdout)


@pytest.mark.parametrize("direction", ["same", "cross"])
def test_claude_code_print_mode(gw, tmp_path, direction):
    model = DIRECTIONS["anthropic"][direction == "cross"]
    sim = ROUTES[model]
    out = claude_code(gw, tmp_path, model, "Say hello", tools="")
    assert out["is_error"] is False and out["num_turns"] == 1, out
    assert out["result"].startswith(f"[{sim}] Here is a short answer about:"), out


@pytest.mark.parametrize("direction", ["same", "cross"])
def test_claude_code_tool_round_trip(gw, tmp_path, direction):
    model = DIRECTIONS["anthropic"][direction == "cross"]
    sim = ROUTES[model]
    out = claude_code(gw, tmp_path, model, "Read the file notes.txt", tools="Read")
    # The simulator asked for the Read tool; Claude Code ran it and sent its result back.
    assert out["is_error"] is False and out["num_turns"] == 2, out
    assert out["result"].startswith(f"[{sim}] The tool returned:"), out


# -- LangChain (Python) -------------------------------------------------------------------


def _langchain(fmt: str, url: str, route: str) -> Any:
    if fmt == "anthropic":
        from langchain_anthropic import ChatAnthropic

        return ChatAnthropic(model=route, base_url=url, api_key="client-key", max_retries=0,
                             max_tokens=300)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=route, base_url=url + "/v1", api_key="client-key", max_retries=0)


def _weather(city: str) -> str:
    """Weather in a city."""
    return "sunny, 21 C"


@pytest.mark.parametrize("fmt,mode,direction", CASES)
def test_langchain_chat_models(gw, fmt, mode, direction):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    route = DIRECTIONS[fmt][direction == "cross"]
    prompt = f"langchain {fmt} {mode} {direction}"
    chat = _langchain(fmt, gw.url, route)
    out: dict[str, Any] = {}
    if mode == "json":
        out["text"] = chat.invoke(prompt).text
    elif mode == "stream":
        pieces = [chunk.text for chunk in chat.stream(prompt)]
        out["deltas"] = sum(1 for p in pieces if p)
        out["text"] = "".join(pieces)
    else:
        get_weather = tool("get_weather")(_weather)
        bound = chat.bind_tools([get_weather])
        first = bound.invoke([HumanMessage(prompt)])
        [call] = first.tool_calls
        out["tool_called"] = call["name"]
        second = bound.invoke([HumanMessage(prompt), first,
                               ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])])
        out["text"] = second.text
    _check(out, mode, route, prompt)
