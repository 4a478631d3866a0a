"""After the first token: complete streams finish, broken frames are skipped, cut streams continue.

The official SDKs' own stream helpers (``messages.stream`` / ``chat.completions.stream``)
read every answer, so what is asserted is what an application gets: one well-formed
message. Topology: simulated Claude models that take a prefill (Haiku 4.5), one that
refuses it (Opus 4.6), and an OpenAI-format one (no prefill, as OpenAI's API). A cut is set
on the route's first target; the continuation is asked of the next that can take it.

"Faithful" is checked against the simulators themselves: the text before the cut is the cut
target's own answer up to the cut (the prefill recorded in the continuation request), and
the text after it is exactly what the continuation target answers to that recorded
request when asked directly. Usage adds up: the tokens the client had plus the
continuation's own.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.simulator import Fault, FaultKind
from ridethrough.simulator.answers import split_tokens

TIMEOUTS = {"connect": 1, "first_byte": 2, "first_token": 2, "idle": 1, "total": 5}
MODELS = {"a1": "claude-haiku-4-5", "a2": "claude-haiku-4-5", "o1": "gpt-4o",
          "refuser": "claude-opus-4-6", "liar": "claude-opus-4-6"}
FORMATS = {"a1": "anthropic", "a2": "anthropic", "o1": "openai", "refuser": "anthropic",
           "liar": "anthropic"}
ROUTES = {
    "a-then-a": ["a1", "a2"],          # cut on Claude, continued on Claude
    "o-then-a": ["o1", "a2"],          # cut on an OpenAI-format target, continued on Claude
    "learns": ["o1", "liar", "a2"],    # "liar" claims prefill but refuses it: learned, skipped
    "nobody": ["o1", "refuser"],       # no target takes a prefill
}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


def _config() -> Any:
    # The first targets pace their tokens (10 ms), so a fault "after N tokens" always lands
    # after the commit point (the client has the first words), never in the first read.
    providers = {name: {"kind": "simulated", "format": FORMATS[name],
                        "token_delay_s": 0.01 if name in ("a1", "o1") else 0.0,
                        "timeouts": dict(TIMEOUTS)} for name in MODELS}
    providers["liar"]["capabilities"] = {"prefill": True}
    routes: dict[str, Any] = {
        route: {"targets": [{"provider": p, "model": MODELS[p]} for p in targets],
                "cache": {"mode": "off"}, "hedge": False}
        for route, targets in ROUTES.items()}
    routes["a-then-a-off"] = {**routes["a-then-a"], "continuation": False}
    return parse_config({
        "server": {"access_log": False}, "providers": providers, "routes": routes,
        "resilience": {"retry": {"backoff_s": 0.01},
                       "breaker": {"consecutive_failures": 1000, "min_requests": 1000,
                                   "slow_call_min": 1000}},
    })


@pytest.fixture(scope="module")
def gw():
    with GatewayThread(_config()) as gt:
        yield gt


@pytest.fixture()
def gt(gw):
    _reset(gw)
    yield gw
    _reset(gw)


def _reset(gt: GatewayThread) -> None:
    gt.gateway.executor.streams.no_prefill.clear()
    for p in gt.gateway.providers.values():
        p.server.clear_faults()
        p.server.stats.reset()
        p.server.last_requests.clear()


def sim(gt: GatewayThread, name: str) -> Any:
    return gt.gateway.providers[name].server


# -- what the client got --------------------------------------------------------------------


class Got:
    def __init__(self) -> None:
        self.text = ""
        self.tool: tuple[str, Any] | None = None  # (name, arguments)
        self.stop: str | None = None
        self.output_tokens: int | None = None
        self.input_tokens: int | None = None
        self.error: Exception | None = None
        self.blocks: list[str] = []


def ask(gt: GatewayThread, sdk: str, route: str, prompt: str, *, tools: bool = False) -> Got:
    got = Got()
    messages = [{"role": "user", "content": prompt}]
    try:
        if sdk == "anthropic":
            c = anthropic.Anthropic(base_url=gt.url, api_key="k", max_retries=0)
            kw: dict[str, Any] = {"tools": [WEATHER]} if tools else {}
            with c.messages.stream(model=route, max_tokens=300, messages=messages, **kw) as s:
                msg = s.get_final_message()
            got.blocks = [b.type for b in msg.content]
            got.text = "".join(b.text for b in msg.content if b.type == "text")
            calls = [b for b in msg.content if b.type == "tool_use"]
            got.tool = (calls[0].name, calls[0].input) if calls else None
            got.stop = msg.stop_reason
            got.output_tokens, got.input_tokens = msg.usage.output_tokens, msg.usage.input_tokens
        else:
            c = openai.OpenAI(base_url=gt.url + "/v1", api_key="k", max_retries=0)
            kw = {"tools": [{"type": "function", "function": {
                "name": WEATHER["name"], "description": WEATHER["description"],
                "parameters": WEATHER["input_schema"]}}]} if tools else {}
            with c.chat.completions.stream(model=route, messages=messages,
                                           stream_options={"include_usage": True}, **kw) as s:
                comp = s.get_final_completion()
            choice = comp.choices[0]
            got.text = choice.message.content or ""
            calls = choice.message.tool_calls or []
            got.tool = (calls[0].function.name, orjson.loads(calls[0].function.arguments)) \
                if calls else None
            got.stop = choice.finish_reason
            got.output_tokens = comp.usage.completion_tokens
            got.input_tokens = comp.usage.prompt_tokens
            assert comp.usage.total_tokens == got.input_tokens + got.output_tokens
    except (anthropic.APIError, openai.APIError) as e:
        got.error = e
    return got


def continuation_request(gt: GatewayThread, name: str) -> dict[str, Any]:
    """The (last) continuation request the gateway sent to ``name``."""
    bodies = [orjson.loads(r.body) for r in sim(gt, name).last_requests if r.path == "/v1/messages"]
    assert bodies, f"{name} was not asked to continue"
    return bodies[-1]


def asked_directly(gt: GatewayThread, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """What simulator ``name`` answers to ``body`` (the same request always gets the same
    answer, streamed or not), with its faults cleared."""
    server = sim(gt, name)
    r = httpx.post(server.base_url + "/v1/messages", json={**body, "stream": False},
                   headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def own_answer(gt: GatewayThread, name: str, messages: list[dict[str, Any]]) -> str:
    """``name``'s own answer to ``messages``, asked directly with its faults cleared."""
    server = sim(gt, name)
    fault = server.fault
    server.clear_faults()
    try:
        if FORMATS[name] == "anthropic":
            return str(asked_directly(gt, name, {"model": MODELS[name], "max_tokens": 300,
                                                 "messages": messages})["content"][0]["text"])
        r = httpx.post(server.base_url + "/v1/chat/completions",
                       json={"model": MODELS[name], "messages": messages},
                       headers={"authorization": "Bearer k"}, timeout=10)
        return str(r.json()["choices"][0]["message"]["content"])
    finally:
        server.set_fault(fault)


def own_answer_prefix(gt: GatewayThread, name: str, prompt: str, tokens: int) -> str:
    """The first ``tokens`` words of ``name``'s own (uncut) answer to ``prompt``."""
    text = own_answer(gt, name, [{"role": "user", "content": prompt}])
    return "".join(split_tokens(text)[:tokens])


def spliced(before: str, after: str) -> str:
    """The client's text: what it had, then the continuation — less the whitespace it repeats
    (a prefill may not end in whitespace, so the model writes that whitespace again)."""
    pending = len(before) - len(before.rstrip())
    n = 0
    while n < min(pending, len(after)) and after[n].isspace():
        n += 1
    return before + after[n:]


SDKS = pytest.mark.parametrize("sdk", ["anthropic", "openai"])
DIRECTIONS = pytest.mark.parametrize("route", ["a-then-a", "o-then-a"])


# -- complete by meaning, malformed frames --------------------------------------------------------


@SDKS
@DIRECTIONS
def test_a_complete_stream_without_its_terminator_is_a_success(gt, sdk, route):
    first = ROUTES[route][0]
    sim(gt, first).set_fault(Fault(FaultKind.NO_TERMINATOR))
    breaker = gt.gateway.board.get(f"{first}/{MODELS[first]}")
    for i in range(6):  # more than enough failures to open a breaker, were they failures
        got = ask(gt, sdk, route, f"no terminator {i}")
        assert got.error is None, got.error
        assert got.text.startswith(f"[{first}] Here is a short answer about: no terminator {i}.")
        assert got.stop in ("end_turn", "stop")
    assert sim(gt, ROUTES[route][1]).stats.total == 0
    snap = breaker.snapshot()
    assert snap["consecutive_failures"] == 0 and snap["window_error_rate"] == 0.0
    assert gt.gateway.executor.streams.stats["ended_without_terminator"] >= 6


@SDKS
@DIRECTIONS
def test_a_malformed_frame_is_skipped_and_counted(gt, sdk, route):
    first = ROUTES[route][0]
    sim(gt, first).set_fault(Fault(FaultKind.MALFORMED_FRAME, after_tokens=10))
    before = gt.gateway.executor.streams.stats["malformed_frames"]
    prompt = "one bad frame"
    got = ask(gt, sdk, route, prompt)
    assert got.error is None, got.error
    assert got.text == own_answer_prefix(gt, first, prompt, 10_000)  # the whole answer
    assert gt.gateway.executor.streams.stats["malformed_frames"] == before + 1
    assert sim(gt, ROUTES[route][1]).stats.total == 0


# -- continuation --------------------------------------------------------------------------------


CUTS = [
    pytest.param(Fault(FaultKind.TRUNCATED, after_tokens=7), 7, id="cut-between-words"),
    pytest.param(Fault(FaultKind.TRUNCATED, after_tokens=7, cut_at="mid_token"), 8, id="cut-mid-word"),
    pytest.param(Fault(FaultKind.STALL_MID_STREAM, after_tokens=9), 9, id="stall"),
    pytest.param(Fault(FaultKind.INBAND_ERROR_AFTER_FIRST_TOKEN, after_tokens=5,
                       error_type="overloaded_error"), 5, id="in-band-error"),
]


@SDKS
@DIRECTIONS
@pytest.mark.parametrize("fault,sent", CUTS)
def test_a_cut_stream_is_continued_into_one_answer(gt, sdk, route, fault, sent):
    first, second = ROUTES[route]
    sim(gt, first).set_fault(fault)
    prompt = f"continue me {fault.kind} {fault.cut_at}"
    got = ask(gt, sdk, route, prompt)
    assert got.error is None, got.error

    assert sim(gt, second).stats.total == 1  # one continuation request, nothing else
    cont = continuation_request(gt, second)
    prefill = cont["messages"][-1]
    assert prefill["role"] == "assistant"
    # Before the cut: the first target's own words, exactly what the client had.
    before = own_answer_prefix(gt, first, prompt, sent)
    if fault.cut_at == "mid_token":  # the last word only half sent
        last = split_tokens(before)[-1]
        before = before[: len(before) - len(last)] + last[: max(1, (len(last) + 1) // 2)]
    assert prefill["content"] == before.rstrip()
    # After it: exactly what the second target answers to that request.
    direct = asked_directly(gt, second, cont)
    after = direct["content"][0]["text"]
    assert got.text == spliced(before, after)
    assert got.stop in ("end_turn", "stop")
    # One usage: what the client had (one token per word) plus the continuation's own.
    assert got.output_tokens == sent + direct["usage"]["output_tokens"]


@SDKS
def test_the_switch_is_recorded(gt, sdk):
    sim(gt, "o1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=4))
    url = gt.url + ("/v1/messages" if sdk == "anthropic" else "/v1/chat/completions")
    body: dict[str, Any] = {"model": "o-then-a", "stream": True,
                            "messages": [{"role": "user", "content": "recorded"}]}
    if sdk == "anthropic":
        body["max_tokens"] = 100
    records: list[Any] = []
    gt.gateway.observers.append(records.append)
    try:
        with httpx.stream("POST", url, json=body, headers={"x-api-key": "k"}, timeout=10) as r:
            raw = b"".join(r.iter_bytes()).decode()
    finally:
        gt.gateway.observers.remove(records.append)
    # The access log (and the health of each target) has both sides of the switch.
    [record] = [x.as_dict() for x in records]
    assert record["outcome"] == "ok"
    assert [(a["target"], a["outcome"], a.get("continuation", False)) for a in record["attempts"]] == [
        ("o1/gpt-4o", "ok", False), ("o1/gpt-4o", "truncated_after_commit", False),
        ("a2/claude-haiku-4-5", "ok", True)]
    assert ": ridethrough continued-on a2/claude-haiku-4-5 after truncated from o1/gpt-4o" in raw
    continued = gt.gateway.executor.streams.stats["continued"]
    assert continued >= 1
    metrics = httpx.get(gt.url + "/metrics").text
    assert f'ridethrough_stream_events_total{{event="continued"}} {continued}' in metrics


@SDKS
def test_continuation_off_for_a_route_gives_the_clean_error(gt, sdk):
    sim(gt, "a1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=5))
    got = ask(gt, sdk, "a-then-a-off", "no continuation here")
    assert got.error is not None
    assert sim(gt, "a2").stats.total == 0


# -- tool calls ----------------------------------------------------------------------------------


@SDKS
def test_a_tool_call_opened_without_arguments_is_restarted(gt, sdk):
    """The OpenAI-format target opened the call (id, name) and was cut before any argument:
    the continuation is asked for exactly that tool, and its arguments fill the open call."""
    sim(gt, "o1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=0, cut_at="open"))
    got = ask(gt, sdk, "o-then-a", "weather in Lisbon?", tools=True)
    assert got.error is None, got.error
    cont = continuation_request(gt, "a2")
    assert cont["tool_choice"] == {"type": "tool", "name": "get_weather"}
    direct = asked_directly(gt, "a2", cont)
    call = next(b for b in direct["content"] if b["type"] == "tool_use")
    assert got.tool == ("get_weather", call["input"])
    assert got.stop in ("tool_use", "tool_calls")


def test_a_cut_between_blocks_continues_with_the_next_block(gt):
    """Claude's sentence before its tool call closed, then the cut: the continuation (with
    that sentence as its prefill) makes the call, as the next block of the same message."""
    preamble = split_tokens("[a1] I'll use the get_weather tool.")
    sim(gt, "a1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=len(preamble), cut_at="close"))
    got = ask(gt, "anthropic", "a-then-a", "weather in Porto?", tools=True)
    assert got.error is None, got.error
    assert got.blocks == ["text", "tool_use"]
    assert got.text == "".join(preamble)
    assert continuation_request(gt, "a2")["messages"][-1]["content"] == "".join(preamble)
    assert got.tool is not None and got.tool[0] == "get_weather"


def test_a_tool_call_whose_arguments_began_ends_cleanly(gt):
    preamble = split_tokens("[a1] I'll use the get_weather tool.")
    sim(gt, "a1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=len(preamble) + 1))
    got = ask(gt, "anthropic", "a-then-a", "weather in Faro?", tools=True)
    assert isinstance(got.error, anthropic.APIStatusError)
    assert sim(gt, "a2").stats.total == 0  # nothing could be spliced faithfully: not asked


# -- prefill refusals ------------------------------------------------------------------------------


@SDKS
def test_a_refused_prefill_is_learned_and_never_shown(gt, sdk):
    sim(gt, "o1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=6))
    for i in range(2):
        got = ask(gt, sdk, "learns", f"learn {i}")
        assert got.error is None, got.error
        assert got.text.startswith(f"[o1] Here is a short answer about: learn {i}"[:20])
    assert sim(gt, "liar").stats.total == 1            # refused once, then skipped
    assert sim(gt, "a2").stats.total == 2
    assert "liar/claude-opus-4-6" in gt.gateway.executor.streams.no_prefill


@SDKS
def test_when_no_target_takes_a_prefill_the_client_gets_the_original_error(gt, sdk):
    sim(gt, "o1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=6))
    got = ask(gt, sdk, "nobody", "nobody can continue")
    assert got.error is not None
    message = str(got.error)
    assert "truncated" in message and "prefill" not in message
    assert sim(gt, "refuser").stats.total == 0  # declared unable: never asked


# -- the local model continues a cloud's answer ---------------------------------------------------


@pytest.mark.local_model
def test_the_local_model_continues_a_cut_answer_as_llama_cpp_would(tmp_path, llama_reference):
    """The cloud is cut after six words; the local model (llama.cpp, SmolLM2) continues from
    them. Its part is exactly what llama.cpp itself generates after the template's assistant
    opening and those words (the differential reference, on this machine's kernels)."""
    cfg = parse_config({
        "server": {"access_log": False, "data_dir": str(tmp_path)},
        "providers": {"o1": {"kind": "simulated", "format": "openai", "token_delay_s": 0.01,
                             "timeouts": dict(TIMEOUTS)},
                      "local": {"kind": "local", "n_ctx": 2048, "max_queue": 2}},
        "routes": {"o-then-local": {"targets": [{"provider": "o1", "model": "gpt-4o"},
                                                {"provider": "local", "model": "smollm2"}],
                                    "cache": {"mode": "off"}, "hedge": False}},
    })
    with GatewayThread(cfg) as g:
        assert g.gateway.providers["local"].unavailable_reason is None
        sim(g, "o1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=6))
        question = "What is the capital of France?"
        c = openai.OpenAI(base_url=g.url + "/v1", api_key="k", max_retries=0)
        with c.chat.completions.stream(model="o-then-local", max_tokens=6 + 24, temperature=0,
                                       messages=[{"role": "user", "content": question}],
                                       stream_options={"include_usage": True}) as s:
            comp = s.get_final_completion()
    sent = "".join(split_tokens(f"[o1] Here is a short answer about: {question}")[:6])
    ref = llama_reference.answer([{"role": "user", "content": question}], max_tokens=24,
                                 prefill=sent.rstrip())
    assert comp.choices[0].message.content == spliced(sent, ref.text)
    assert comp.usage.completion_tokens == 6 + ref.completion_tokens


def test_the_access_log_counts_a_continued_answer_the_client_asked_no_usage_for(gt):
    """The OpenAI SDK's default: no include_usage. The usage chunk never reaches the client,
    but the access log (billing, health) still gets the whole answer's tokens."""
    sim(gt, "a1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=6))
    records: list[Any] = []
    gt.gateway.observers.append(records.append)
    try:
        c = openai.OpenAI(base_url=gt.url + "/v1", api_key="k", max_retries=0)
        chunks = list(c.chat.completions.create(model="a-then-a", stream=True,
                                                messages=[{"role": "user", "content": "tokens?"}]))
    finally:
        gt.gateway.observers.remove(records.append)
    assert all(ch.usage is None for ch in chunks)
    direct = asked_directly(gt, "a2", continuation_request(gt, "a2"))
    [record] = [r.as_dict() for r in records]
    assert record["outcome"] == "ok"
    tokens = record["tokens"]
    assert tokens.get("output_tokens", tokens.get("completion_tokens")) == \
        6 + direct["usage"]["output_tokens"]


def test_the_clients_own_prefill_is_kept_in_front_of_the_answer_so_far(gt):
    sim(gt, "a1").set_fault(Fault(FaultKind.TRUNCATED, after_tokens=4))
    c = anthropic.Anthropic(base_url=gt.url, api_key="k", max_retries=0)
    with c.messages.stream(model="a-then-a", max_tokens=300, messages=[
            {"role": "user", "content": "own prefill"},
            {"role": "assistant", "content": "Answer:"}]) as s:
        msg = s.get_final_message()
    cont = continuation_request(gt, "a2")
    own = own_answer(gt, "a1", [{"role": "user", "content": "own prefill"},
                                {"role": "assistant", "content": "Answer:"}])
    sent = "".join(split_tokens(own)[:4])
    assert cont["messages"][-1] == {"role": "assistant", "content": "Answer:" + sent.rstrip()}
    direct = asked_directly(gt, "a2", cont)
    assert msg.content[0].text == spliced(sent, direct["content"][0]["text"])
