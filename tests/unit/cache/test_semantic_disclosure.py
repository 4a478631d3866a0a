"""What a semantic answer tells its reader (cache/disclosure.py): safe header, honest note."""

from __future__ import annotations

from ridethrough.cache.disclosure import (
    HEADER_MAX_CHARS,
    QUESTION_MAX_CHARS,
    match_header,
    redact_question,
    with_note,
)


def test_the_header_is_one_ascii_line_whatever_the_question() -> None:
    value = match_header('Wie geht\'s? "quoted" \\ back\r\nX-Injected: yes \u2603 \U0001f600', 0.9531)
    assert value.isascii() and "\r" not in value and "\n" not in value
    assert value.startswith("similarity=0.953; question=\"")
    assert '\\"quoted\\"' in value and "\\u2603" in value and "\\U0001f600" in value


def test_the_header_is_capped_and_never_cuts_an_escape() -> None:
    value = match_header("\u00e9" * 1000, 0.95)
    assert len(value) <= HEADER_MAX_CHARS and value.endswith('..."')
    assert not value[:-4].endswith("\\")


def test_secrets_and_personal_numbers_are_redacted() -> None:
    text = ("key sk-ant-api03-abcdefgh123 token ghp_abcdefghij1234 mail bob@example.com "
            "card 4111 1111 1111 1111 aws AKIAABCDEFGHIJKLMNOP Bearer abc.def")
    out = redact_question(text)
    for secret in ("sk-ant", "ghp_", "bob@", "4111", "AKIA", "abc.def"):
        assert secret not in out
    assert redact_question("How do I reset my password?") == "How do I reset my password?"
    assert len(redact_question("word " * 100)) <= QUESTION_MAX_CHARS


def test_similarity_alone_when_the_question_is_not_ours_to_show() -> None:
    assert match_header(None, 0.97) == "similarity=0.970"


def test_the_note_leads_the_text_in_both_formats_and_the_original_is_untouched() -> None:
    message = {"type": "message", "content": [{"type": "text", "text": "Click Reset."}]}
    noted = with_note(message, "anthropic", "NOTE")
    assert noted["content"][0]["text"] == "NOTE\n\nClick Reset."
    assert message["content"][0]["text"] == "Click Reset."
    tool_only = {"type": "message", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                                 "input": {}}]}
    assert with_note(tool_only, "anthropic", "NOTE")["content"][0] == {"type": "text",
                                                                       "text": "NOTE"}
    completion = {"choices": [{"message": {"role": "assistant", "content": "Click Reset."}}]}
    assert with_note(completion, "openai", "NOTE")["choices"][0]["message"]["content"] == \
        "NOTE\n\nClick Reset."
