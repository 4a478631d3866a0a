"""What a semantic answer tells its reader (cache/disclosure.py): safe header, honest note."""

from __future__ import annotations

from ridethrough.cache.disclosure import (
    HEADER_MAX_CHARS,
    QUESTION_MAX_CHARS,
    match_header,
    question_visible,
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


def test_a_redaction_keeps_the_spaces_around_it() -> None:
    assert (redact_question("IBAN DE89 3704 0044 0532 0130 00 transfer")
            == "IBAN [redacted] transfer")
    assert redact_question("card 4111 1111 1111 1111 expired") == "card [redacted] expired"
    assert redact_question("my ssn 123-45-6789 is wrong") == "my ssn [redacted] is wrong"


def test_passwords_ssns_and_phone_numbers_are_redacted() -> None:
    cases = {
        "My password is Hunter2hunter2! and it fails": "My password is [redacted] and it fails",
        "Login with password: s3cret;x": "Login with password: [redacted]",
        "my PIN is 4821": "my PIN is [redacted]",
        "passcode=letmein now": "passcode=[redacted] now",
        "My SSN is 123-45-6789.": "My SSN is [redacted].",
        "Call me at 555-123-4567 tomorrow": "Call me at [redacted] tomorrow",
        "or (555) 123-4567 at work": "or [redacted] at work",
        "UK: +44 20 7946 0958, thanks": "UK: [redacted], thanks",
        "Berlin 030 1234567 please": "Berlin [redacted] please",
    }
    for text, expected in cases.items():
        assert redact_question(text) == expected, text
        assert redact_question(expected) == expected  # stored, then shown: stable


def test_ordinary_numbers_and_password_questions_are_kept() -> None:
    for text in ("How do I reset my password?", "Why am I not getting password reset emails?",
                 "Is 2024-01-15 a Monday?", "What is 1,000,000 times 3?",
                 "Upgrade from 3.11.4 to 3.12.1", "Order 12345 arrived late",
                 "Add 10 20 30 40 50", "Where is order #1234?"):
        assert redact_question(text) == text


def test_similarity_alone_when_the_question_is_not_ours_to_show() -> None:
    assert match_header(None, 0.97) == "similarity=0.970"


def test_only_a_named_keys_scope_may_see_the_question() -> None:
    assert question_visible("key:team-a")
    assert not question_visible("shared")
    assert not question_visible("anonymous")


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
