"""Telling the user that an answer was given to another, similar question.

A semantic answer is a guess that two questions mean the same. The caller deserves to see
which question it answered: the ``x-ridethrough-semantic-match`` header names it and its
similarity. End-user-facing apps whose users never see headers can ask for a note in the
answer text itself (``semantic_cache.disclose``), in JSON and in streams alike.

Both cross a trust boundary, so both are built here, in one place:

* the stored question is redacted before it is written (API keys, tokens, card numbers,
  e-mail addresses) and capped, so the cache file never holds a secret a user pasted;
* the header is one ASCII line (anything else ``\\uXXXX``-escaped, quotes and backslashes
  escaped, control characters dropped), so no question can split or forge a header;
* the question is shown only to the scope that asked it: with ``share_across_keys`` it may be
  another caller's, and the header then carries the similarity alone;
* the note in the answer text never quotes the question: behind one app key sit many end
  users, and one must not read another's question.
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["DEFAULT_NOTE", "QUESTION_MAX_CHARS", "match_header", "redact_question", "with_note"]

QUESTION_MAX_CHARS = 160
HEADER_MAX_CHARS = 240
DEFAULT_NOTE = ("Note: our AI service is temporarily unavailable. This is a saved answer to a "
                "similar earlier question, so it may not fit yours exactly.")

_SECRETS = re.compile(
    r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{8,}"                  # OpenAI / Anthropic / Stripe keys
    r"|\bAKIA[0-9A-Z]{16}\b"                              # AWS access key ids
    r"|\b(?:ghp|gho|ghu|ghs|github_pat)_[A-Za-z0-9_]{10,}"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"                    # Slack tokens
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]+"           # JWTs
    r"|\b[Bb]earer\s+\S+"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"                      # e-mail addresses
    r"|\b(?:\d[ -]?){13,19}\b"                            # card and account numbers
    r"|\b(?=[A-Za-z0-9_\-+/]*\d)(?=[A-Za-z0-9_\-+/]*[A-Za-z])[A-Za-z0-9_\-+/]{20,}={0,2}"
    # ^ any long token mixing letters and digits: keys of formats not listed above
)


def redact_question(text: str) -> str:
    """``text`` with secret-looking tokens replaced, whitespace collapsed, capped."""
    cleaned = " ".join(_SECRETS.sub("[redacted]", text).split())
    if len(cleaned) > QUESTION_MAX_CHARS:
        cleaned = cleaned[:QUESTION_MAX_CHARS - 3].rstrip() + "..."
    return cleaned


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
