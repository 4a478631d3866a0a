"""Error classification: status × provider error type/code → ErrorClass, for both adapters.

The class decides what the executor does (errors.ACTIONS), so these tables are the
contract: a 529 is an overload to retry once and fail over, an insufficient_quota 429 holds
the target down, a 400 from a same-format target is the caller's own mistake.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import orjson
import pytest

from ridethrough.errors import ACTIONS, ErrorClass, UpstreamError
from ridethrough.providers.anthropic import classify_anthropic, classify_anthropic_event
from ridethrough.providers.http import _translate_errors
from ridethrough.providers.openai import classify_openai, classify_openai_chunk_error

C = ErrorClass


def anthropic_body(etype: str, message: str = "x") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": etype, "message": message},
                         "request_id": "req_1"})


def openai_body(etype: str | None = None, code: str | None = None, message: str = "x") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": etype, "param": None, "code": code}})


# -- Anthropic -------------------------------------------------------------------------------

ANTHROPIC_TABLE = [
    (529, "overloaded_error", C.OVERLOADED),
    (500, "overloaded_error", C.OVERLOADED),   # the "500 Overloaded" variant
    (500, "api_error", C.SERVER),
    (502, None, C.SERVER),
    (503, None, C.SERVER),
    (504, "timeout_error", C.SERVER),
    (500, "invalid_request_error", C.SERVER),  # a 5xx is never the caller's fault
    (408, None, C.SERVER),
    (429, "rate_limit_error", C.RATE_LIMITED),
    (402, "billing_error", C.QUOTA),
    (401, "authentication_error", C.AUTH),
    (403, "permission_error", C.AUTH),
    (404, "not_found_error", C.MODEL_NOT_FOUND),
    (413, "request_too_large", C.TOO_LARGE),
    (400, "invalid_request_error", C.CLIENT),
    (422, "invalid_request_error", C.CLIENT),
]


@pytest.mark.parametrize("status,etype,expected", ANTHROPIC_TABLE)
def test_anthropic_classify(status, etype, expected):
    body = anthropic_body(etype) if etype else b"<html>bad gateway</html>"
    err = classify_anthropic(status, body, {})
    assert err.error_class is expected
    assert err.upstream_status == status
    assert err.provider_type == etype
    assert err.body == body                  # kept: a CLIENT error is passed back verbatim


def test_anthropic_prompt_too_long_is_too_large_not_the_clients_fault():
    err = classify_anthropic(400, anthropic_body("invalid_request_error",
                                                 "prompt is too long: 250000 tokens > 200000 maximum"), {})
    assert err.error_class is C.TOO_LARGE


def test_anthropic_empty_account_is_quota_not_the_clients_fault():
    # What the real API answers when the account is out of credit: a 400, not a 402.
    err = classify_anthropic(400, anthropic_body(
        "invalid_request_error", "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits."), {})
    assert err.error_class is C.QUOTA


def test_anthropic_retry_after_is_read():
    err = classify_anthropic(429, anthropic_body("rate_limit_error"), {"retry-after": "7"})
    assert err.retry_after == 7
    err = classify_anthropic(429, anthropic_body("rate_limit_error"), {"retry-after-ms": "1500"})
    assert err.retry_after == 1.5


@pytest.mark.parametrize("etype,expected", [
    ("overloaded_error", C.OVERLOADED), ("api_error", C.STREAM_ERROR), (None, C.STREAM_ERROR),
])
def test_anthropic_in_band_error_event(etype, expected):
    data = {"type": "error", "error": {"type": etype, "message": "Overloaded"}} if etype else {}
    assert classify_anthropic_event(data).error_class is expected


# -- OpenAI (and OpenAI-compatible servers) ----------------------------------------------------

OPENAI_TABLE = [
    (429, openai_body("requests", "rate_limit_exceeded"), C.RATE_LIMITED),
    (429, openai_body("insufficient_quota", "insufficient_quota"), C.QUOTA),
    (429, openai_body("insufficient_quota"), C.QUOTA),
    (429, openai_body(None, "billing_hard_limit_reached"), C.QUOTA),
    (402, openai_body("billing_error"), C.QUOTA),
    (401, openai_body("invalid_request_error", "invalid_api_key"), C.AUTH),
    (403, openai_body("permission_error"), C.AUTH),
    (404, openai_body("invalid_request_error", "model_not_found"), C.MODEL_NOT_FOUND),
    (400, openai_body("invalid_request_error", "context_length_exceeded"), C.TOO_LARGE),
    (413, openai_body("invalid_request_error"), C.TOO_LARGE),
    (400, openai_body("invalid_request_error"), C.CLIENT),
    (422, openai_body("invalid_request_error"), C.CLIENT),
    (409, openai_body("invalid_request_error"), C.CLIENT),
    (500, openai_body("server_error"), C.SERVER),
    (502, b"Bad Gateway", C.SERVER),
    (503, openai_body("server_error"), C.SERVER),
    (503, openai_body("overloaded_error"), C.OVERLOADED),
    (529, openai_body("server_error"), C.OVERLOADED),
    (408, b"", C.SERVER),
    # Bodies of OpenAI-compatible servers (Ollama, vLLM, llama.cpp…) vary:
    (500, orjson.dumps({"error": "model crashed"}), C.SERVER),
    (400, orjson.dumps({"detail": "bad field"}), C.CLIENT),
    (500, orjson.dumps({"error": {"code": 500, "message": "boom"}}), C.SERVER),
    (404, orjson.dumps({"error": "model 'llama9' not found"}), C.MODEL_NOT_FOUND),
]


@pytest.mark.parametrize("status,body,expected", OPENAI_TABLE)
def test_openai_classify(status, body, expected):
    err = classify_openai(status, body, {})
    assert err.error_class is expected
    assert err.upstream_status == status


def test_openai_retry_after_ms_wins():
    err = classify_openai(429, openai_body("requests", "rate_limit_exceeded"),
                          {"retry-after-ms": "250", "retry-after": "9"})
    assert err.retry_after == 0.25


@pytest.mark.parametrize("data,expected", [
    ({"error": {"type": "overloaded_error", "message": "Overloaded"}}, C.OVERLOADED),
    ({"error": {"type": "server_error", "message": "oops", "code": None}}, C.STREAM_ERROR),
    ({"error": {"code": "overloaded", "message": "busy"}}, C.OVERLOADED),
    ({"error": "plain text"}, C.STREAM_ERROR),
])
def test_openai_in_band_chunk_error(data, expected):
    assert classify_openai_chunk_error(data).error_class is expected


# -- transport failures (one place: providers/http.py) -------------------------------------------


async def _raise_in(phase: str, exc: BaseException) -> UpstreamError:
    try:
        async with _translate_errors("p", phase):
            raise exc
    except UpstreamError as e:
        return e
    raise AssertionError("not translated")


@pytest.mark.parametrize("phase,exc,expected", [
    ("headers", TimeoutError(), C.TIMEOUT),
    ("body", TimeoutError(), C.IDLE_TIMEOUT),
    ("headers", ConnectionRefusedError(), C.CONNECT),
    ("headers", ConnectionResetError(), C.CONNECT),
    ("headers", aiohttp.ServerDisconnectedError(), C.CONNECT),
    ("body", aiohttp.ClientPayloadError("cut"), C.TRUNCATED),
])
def test_transport_errors_are_classified_in_one_place(phase, exc, expected):
    err = asyncio.run(_raise_in(phase, exc))
    assert err.error_class is expected and err.target == "p"


# -- the action table and its documentation ----------------------------------------------------


def test_every_class_has_an_action():
    assert set(ACTIONS) == set(ErrorClass)


def test_only_the_callers_own_errors_are_not_failed_over():
    assert [c for c, a in ACTIONS.items() if not a.failover] == [C.CLIENT]


def test_our_own_limits_and_the_providers_rate_limits_never_open_a_breaker():
    for c in (C.LOCAL_SATURATION, C.RATE_LIMITED, C.CLIENT, C.TRANSLATION, C.UNAVAILABLE):
        assert not ACTIONS[c].counts_for_breaker


def test_docs_errors_md_matches_the_actions_table():
    doc = (Path(__file__).resolve().parents[3] / "docs" / "errors.md").read_text()
    section = doc.split("## Error classes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|(.*)\|\s*$", line)
        if m and m.group(1) in {c.value for c in ErrorClass}:
            cells = [c.strip() for c in m.group(2).split("|")]
            rows[m.group(1)] = cells
    assert set(rows) == {c.value for c in ErrorClass}
    for cls, action in ACTIONS.items():
        _trigger, _action, failover, retry, breaker, hold = rows[cls.value]
        assert failover == ("yes" if action.failover else "no"), cls
        assert retry == ("once" if action.retry_same else "no"), cls
        assert breaker == ("yes" if action.counts_for_breaker else "no"), cls
        expected_hold = f"{action.hold_down_s / 60:g} min" if action.hold_down_s else "—"
        assert hold == expected_hold, cls


@pytest.mark.parametrize("body,fields", [
    # Named only in the message: not read (wording is no contract).
    (b'{"error": {"message": "Unrecognized request argument supplied: stream_options", '
     b'"type": "invalid_request_error", "param": null}}', ()),
    (b'{"error": {"message": "bad", "type": "invalid_request_error", "param": "messages"}}',
     ("messages",)),
    (b'{"detail": [{"type": "extra_forbidden", "loc": ["body", "stream_options"], "msg": "x"}, '
     b'{"type": "extra_forbidden", "loc": ["body", "seed_x"], "msg": "x"}]}',
     ("stream_options", "seed_x")),
    (b"not json", ()),
])
def test_the_fields_an_error_names_are_read_from_its_structure(body, fields):
    err = classify_openai(400, body, {})
    assert err.fields == fields and err.param == (fields[0] if fields else None)


def test_mistrals_422_names_its_fields_under_message():
    body = (b'{"object": "error", "message": {"detail": [{"type": "extra_forbidden", '
            b'"loc": ["body", "stream_options"], "msg": "Extra inputs are not permitted"}]}, '
            b'"type": "invalid_request_error", "param": null, "code": null}')
    assert classify_openai(422, body, {}).fields == ("stream_options",)
