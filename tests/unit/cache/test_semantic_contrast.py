"""The second stage of a semantic match (cache/contrast.py), rule by rule, without the model.

Similarities are 0.999 (above any threshold) so that only the comparison of the two
questions decides; the reason names the rule a user could look up in docs/semantic-cache.md.
"""

from __future__ import annotations

import pytest

from ridethrough.cache.contrast import canonical, contrast, language_of, marks_of, swapped
from ridethrough.cache.guards import Fingerprint, disagreement, fingerprint


def verdict(a: str, b: str, similarity: float = 0.999) -> str | None:
    return disagreement(fingerprint(a, 1), fingerprint(b, 1), similarity,
                        threshold=0.92, strict_threshold=0.99)


@pytest.mark.parametrize("a, b, reason", [
    ("Refund window for purchases over 100 dollars?",
     "Refund window for purchases under 100 dollars?", "contrast:antonym"),
    ("How do I enable two-factor authentication?", "How do I disable two-factor authentication?",
     "contrast:antonym"),
    ("How do I turn on notifications?", "How do I turn off notifications?", "contrast:antonym"),
    ("Cheapest flight to Tokyo?", "Cheapest flight from Tokyo?", "contrast:to/from"),
    ("Are all items on sale?", "Are some items on sale?", "contrast:quantifier"),
    ("Paris weather this week", "Paris weather next week", "contrast:time"),
    ("Does the bag weigh 2 kg?", "Does the bag weigh 2 lbs?", "contrast:unit"),
    ("Explain index funds.", "Explain index funds briefly.", "contrast:format"),
    ("List the http methods.", "List the http methods in json.", "contrast:format"),
    ("Explain what a bond is.", "Explain what a bond is in french.", "contrast:language"),
    ("Which laptop is cheaper?", "Which laptop is more expensive?", "contrast:comparison"),
    ("Can a mother pass the virus to her baby?", "Can a baby pass the virus to its mother?",
     "word_order"),
    ("Did Alice send Bob the money?", "Did Bob send Alice the money?", "word_order"),
    ("Can I exchange an item bought online in store?",
     "Can I exchange an item bought in store online?", "word_order"),
    ("Write a reply to this complaint.", "Write a polite reply to this complaint.",
     "contrast:format"),
    ("Write a reply to this complaint.", "Write a reply to this complaint, pirate style.",
     "addition"),
    ("how do i reset my password?", "wie setze ich mein passwort zurueck?", "language"),
])
def test_contrasting_questions_are_vetoed_with_the_rule_named(a: str, b: str, reason: str) -> None:
    assert verdict(a, b) == reason
    assert verdict(b, a) is not None  # and the other way round


@pytest.mark.parametrize("a, b", [
    ("How do I turn off email notifications?", "How do I disable email notifications?"),
    ("How do I enable 2FA?", "How do I turn on two-factor authentication?"),
    ("How do I log out of all devices?", "How can I sign out of all devices?"),
    ("How do I sort a dictionary by value in Python?", "How can I sort a Python dict by value?"),
    ("What is the capital of France?", "What is the capital city of France?"),
    ("Is it possible to return a gift without a receipt?",
     "Can I return a gift without a receipt?"),
    ("List all files in a folder using Python", "List every file in a folder with Python"),
])
def test_paraphrases_pass_the_second_stage(a: str, b: str) -> None:
    assert verdict(a, b) is None
    assert verdict(b, a) is None


def test_canonical_spelling_joins_synonyms_and_keeps_other_text() -> None:
    assert canonical("Turn on 2FA") == "enable twofactor"
    assert canonical("sign out of Slack") == "logout Slack"
    assert canonical("Is it possible to pay?") == "can pay?"


def test_weak_direction_words_contrast_only_with_their_opposite() -> None:
    assert contrast(marks_of(["to", "tokyo"]), marks_of(["from", "tokyo"])) == "to/from"
    assert contrast(marks_of(["how", "to", "pay"]), marks_of(["how", "pay"])) is None
    assert contrast(marks_of(["to", "in"]), marks_of(["in"])) is None


def test_language_needs_clear_evidence_before_calling_a_question_foreign() -> None:
    assert language_of("Can I come to the die cast museum?") == "en"
    assert language_of("Wie setze ich mein Passwort zurück?") == "de"
    assert language_of("Quelle est la meilleure période pour visiter?") == "fr"
    assert language_of("パスワードをリセットするには?") == "cjk"


def test_swaps_need_a_word_kept_between_them() -> None:
    assert swapped(["paris", "to", "london"], ["london", "to", "paris"])
    assert not swapped(["sort", "dict", "by", "value", "python"],
                       ["sort", "python", "dict", "by", "value"])


def test_an_older_fingerprint_is_unreadable_not_trusted() -> None:
    data = fingerprint("How do I reset my password?", 1).to_json()
    data["v"] = 1
    with pytest.raises(ValueError, match="version"):
        Fingerprint.from_json(data)


def test_marked_words_are_the_only_plain_words_in_a_fingerprint() -> None:
    fp = fingerprint("Send 5 kg to Alice in Berlin before Friday", 1)
    flat = repr(fp.to_json()).lower()
    assert "alice" not in flat and "berlin" not in flat and "5" not in fp.marks
    assert "unit:kg" in fp.marks and "time:friday" in fp.marks
