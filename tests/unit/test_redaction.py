"""Provider keys never leave in error text, even the fragments providers echo back."""

from __future__ import annotations

from ridethrough.redact import redact, redact_text


def test_own_key_and_key_shaped_fragments_are_cut():
    body = (b'{"error": {"message": "Incorrect API key provided: sk-proj-ab***********wxyz. '
            b'Also sk-ant-api03-SECRETSECRET", "code": "invalid_api_key"}}')
    out = redact(body, "sk-ant-api03-SECRETSECRET")
    assert b"SECRET" not in out and b"wxyz" not in out
    assert b'"code": "invalid_api_key"' in out  # the classification keys survive


def test_ordinary_text_is_untouched():
    assert redact_text("model not found: claude-sonnet-4-5", None) == "model not found: claude-sonnet-4-5"
