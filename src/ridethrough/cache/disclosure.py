"""Telling the user that an answer was given to another, similar question.

A semantic answer is a guess that two questions mean the same. The caller deserves to see
which question it answered: the ``x-ridethrough-semantic-match`` header names it and its
similarity. End-user-facing apps whose users never see headers can ask for a note in the
answer text itself (``semantic_cache.disclose``), in JSON and in streams alike.

Both cross a trust boundary, so both are built here, in one place:

* the stored question is redacted before it is written (API keys, tokens, card and account
  numbers, IBANs, e-mail addresses, US social security numbers, phone numbers, the word after
  "password is") and capped, so the cache file does not hold the secrets a user commonly
  pastes (a pattern list: a secret in no known shape can still get through);
* the header is one ASCII line (anything else ``\\uXXXX``-escaped, quotes and backslashes
  escaped, control characters dropped), so no question can split or forge a header;
* the question is shown only to the gateway key that asked it (``question_visible``): with
  ``share_across_keys`` it may be another caller's, and so it may on a gateway without keys,
  where every caller shares the scope "anonymous"; the header then carries the similarity
  alone;
* the note in the answer text never quotes the question: behind one app key sit many end
  users, and one must not read another's question.
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["DEFAULT_NOTE", "QUESTION_MAX_CHARS", "match_header", "question_visible",
           "redact_question", "with_note"]

QUESTION_MAX_CHARS = 160
HEADER_MAX_CHARS = 240
DEFAULT_NOTE = ("Note: our AI service is temporarily unavailable. This is a saved answer to a "
                "similar earlier question, so it may not fit yours exactly.")

REDACTED = "[redacted]"
_SECRETS = re.compile(
    r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{8,}"                  # OpenAI / Anthropic / Stripe keys
    r"|\bAKIA[0-9A-Z]{16}\b"                              # AWS access key ids
    r"|\b(?:ghp|gho|ghu|ghs|github_pat)_[A-Za-z0-9_]{10,}"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"                    # Slack tokens
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]+"           # JWTs
    r"|\b[Bb]earer\s+\S+"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"                      # e-mail addresses
    r"|\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"  # IBANs
    r"|\b\d(?:[ -]?\d){12,18}\b"                         # card and account numbers
    r"|\b\d{3}-\d{2}-\d{4}\b"                             # US social security numbers
    r"|\b(?=[A-Za-z0-9_\-+/]*\d)(?=[A-Za-z0-9_\-+/]*[A-Za-z])[A-Za-z0-9_\-+/]{20,}={0,2}"
    # ^ any long token mixing letters and digits: keys of formats not listed above
)


# "my password is X", "pin: 1234", "passcode=X": the word after the keyword, whatever it is.
_PASSWORD = re.compile(
    r"\b(pass(?:word|phrase|code)?s?|passwd|pwd|pin(?: code)?)(\s+(?:is|was)\s+|\s*[:=]\s*)"
    r"(?!\[redacted\])\S+",
    re.IGNORECASE)
# Phone numbers: a "+" country code or "(area)" with digit groups, or groups of digits with
# 9 to 15 digits in all and one group of at least three ("555-123-4567", "020 7946 0958").
# A date (8 digits) or "10 20 30" is left alone.
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,8}(?:[ .-]\d{2,8}){1,5}"
    r"(?![\w-]|\.\d)")


def _phone(match: re.Match[str]) -> str:
    number = match.group(0)
    digits = sum(c.isdigit() for c in number)
    groups = re.findall(r"\d+", number)
    marked = number.startswith("+") or "(" in number
    if 9 <= digits <= 15 and (marked or max(len(g) for g in groups) >= 3):
        return REDACTED
    return number


def redact_question(text: str) -> str:
    """``text`` with secret-looking tokens replaced, whitespace collapsed, capped.

    A replaced token takes nothing around it: "IBAN DE89 ... transfer" keeps its spaces.
    """
    text = _PASSWORD.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _SECRETS.sub(REDACTED, text)
    text = _PHONE.sub(_phone, text)
    cleaned = " ".join(text.split())
    if len(cleaned) > QUESTION_MAX_CHARS:
        cleaned = cleaned[:QUESTION_MAX_CHARS - 3].rstrip() + "..."
    return cleaned


def question_visible(scope: str) -> bool:
    """Whether a semantic match may name the stored question to a caller of ``scope``.

    Only a named gateway key's scope (``key:<name>``, ``keys.scope_of``) is one caller's own:
    "shared" (``share_across_keys``) and "anonymous" (a gateway without keys) mix callers.
    """
    return scope.startswith("key:")


def _ascii_quoted(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(" ")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def match_header(question: str | None, similarity: float) -> str:
    """The ``x-ridethrough-semantic-match`` value: ``similarity=0.953; question="..."``."""
    value = f"similarity={similarity:.3f}"
    if question:
        text = redact_question(question)
        room = HEADER_MAX_CHARS - len(value) - len("; question=")
        quoted = _ascii_quoted(text)
        while len(quoted) > room:  # cut the text, never an escape sequence
            text = text[:int(len(text) * 0.8)].rstrip()
            quoted = _ascii_quoted(text + "...")
        value += f"; question={quoted}"
    return value


def with_note(obj: dict[str, Any], fmt: str, note: str) -> dict[str, Any]:
    """A copy of the answer with ``note`` leading its text (a new text block if it has none)."""
    out = copy.deepcopy(obj)
    if fmt == "anthropic":
        content = out.setdefault("content", [])
        first_text = next((b for b in content if isinstance(b, dict) and b.get("type") == "text"),
                          None)
        if first_text is not None and content and content[0] is first_text:
            first_text["text"] = f"{note}\n\n{first_text.get('text') or ''}"
        else:
            content.insert(0, {"type": "text", "text": note})
        return out
    for choice in out.get("choices") or []:
        message = choice.get("message") or {}
        text = message.get("content")
        message["content"] = f"{note}\n\n{text}" if isinstance(text, str) and text else note
    return out
