"""Word-level guards on semantic matches, without the model: each rule, in isolation.

Similarities are given as 0.999 (above any threshold) so that only the guard decides.
"""

from __future__ import annotations

import pytest

from ridethrough.cache.guards import Fingerprint, disagreement, fingerprint


def verdict(a: str, b: str, similarity: float = 0.999, *, turns: tuple[int, int] = (1, 1),
            threshold: float = 0.92, strict: float = 0.99) -> str | None:
    return disagreement(fingerprint(a, turns[0]), fingerprint(b, turns[1]), similarity,
                        threshold=threshold, strict_threshold=strict)


@pytest.mark.parametrize("a, b", [
    ("How do I reset my password?", "How can I reset my password?"),
    ("What's the capital of France?", "What is the capital city of France?"),
    ("What's the capital of France?", "what is the capital of france"),
    ("Where is order 1,234?", "Where is order 1234?"),
    ("Can I take five pills?", "Could I take 5 pills?"),
    ("Can't I go?", "Cannot I go?"),
    ("Is aspirin safe during pregnancy?", "Is aspirin safe to take while pregnant?"),
    ("Show me my passwords", "Show me my password"),
])
def test_paraphrases_pass_every_guard(a: str, b: str) -> None:
    assert verdict(a, b) is None


@pytest.mark.parametrize("a, b, guard", [
    ("Is aspirin safe during pregnancy?", "Is aspirin not safe during pregnancy?", "negation"),
    ("Is it ever okay to lie?", "Is it never okay to lie?", "negation"),
    ("Can I cancel my subscription?", "Can I cancel my subscription without a fee?", "negation"),
    ("Should I go?", "Shouldn't I go?", "negation"),
    ("Where is my order #1234?", "Where is my order #1243?", "numbers"),
    ("Take two pills", "Take three pills", "numbers"),
    ("Tell me about the iPhone 15", "Tell me about the iPhone 14", "numbers"),
    ('Define "affect"', 'Define "effect"', "quoted"),
    ("What does `git rebase` do?", "What does `git merge` do?", "quoted"),
    ("Email bob@example.com", "Email rob@example.com", "literals"),
    ("What does src/app.py do?", "What does src/api.py do?", "literals"),
    ("What time does the store open on Monday?", "What time does the store open on Tuesday?",
     "entities"),
    ("Paris weather this week", "London weather this week", "entities"),
    ("How do I install Python on Windows?", "How do I install Python on Linux?", "entities"),
    ("Flights from Paris to London", "Flights from London to Paris", "word_order"),
    ("Convert 5 miles to km", "Convert 5 km to miles", "word_order"),
    ("Is aspirin safe during pregnancy?", "Is aspirin unsafe during pregnancy?",
     "contrast:comparison"),
    ("Should I buy this stock?", "Should I sell this stock?", "contrast:antonym"),
    ("What happens before the meeting?", "What happens after the meeting?", "contrast:antonym"),
    ("Is the hypothyroid dose right?", "Is the hyperthyroid dose right?", "substitution"),
])
def test_near_misses_are_vetoed_by_the_named_guard(a: str, b: str, guard: str) -> None:
    assert verdict(a, b, similarity=0.985) == guard


def test_different_conversation_length_is_vetoed() -> None:
    assert verdict("Why?", "Why?", turns=(1, 3)) == "turns"


def test_substitution_passes_only_above_the_strict_threshold() -> None:
    a, b = "How do I contact support?", "How do I reach support?"
    assert verdict(a, b, similarity=0.997) is None
    assert verdict(a, b, similarity=0.95) == "substitution"


@pytest.mark.parametrize("a, b, similarity", [
    # The reviewer's pairs (bench/semantic/heldout2.txt), served before the rule counted any
    # number of swapped words: a long shared question keeps the similarity above 0.92.
    ("What is the usual dose of amoxicillin for an adult with a chest infection, taken as "
     "capsules by mouth?",
     "What is the usual dose of amoxicillin for an adult with a chest infection, given as "
     "intravenous hospital infusion?", 0.922),
    ("In Python, how do I sort a list of dictionaries by a key, in place, keeping the original "
     "order for ties, using the built-in sorted function?",
     "In Python, how do I sort a list of dictionaries by a key, in place, keeping the original "
     "order for ties, using the numpy argsort routine?", 0.932),
    # Not tied to those words: any phrase of content words swapped for another.
    ("Summarize the quarterly report for the sales team in the Berlin office",
     "Summarize the quarterly report for the legal department of the Berlin office", 0.95),
])
def test_a_substitution_of_any_number_of_words_needs_the_strict_threshold(
        a: str, b: str, similarity: float) -> None:
    assert verdict(a, b, similarity=similarity) == "substitution"
    assert verdict(b, a, similarity=similarity) == "substitution"
    assert verdict(a, b, similarity=0.995) is None


def test_below_threshold_is_vetoed_first() -> None:
    assert verdict("a question", "a question", similarity=0.5) == "threshold"


def test_sentence_openers_are_not_names_but_real_names_are() -> None:
    assert verdict("Explain recursion", "Describe recursion", similarity=0.999) is None
    assert verdict("Explain recursion.", "Explain recursion. Java please.") == "entities"


def test_fingerprint_holds_no_plain_words_and_round_trips() -> None:
    fp = fingerprint('Is "ZEBRA" safe for Alice at 918273 Main St?', 1)
    flat = repr(fp.to_json())
    for word in ("ZEBRA", "zebra", "alice", "Alice", "918273", "main"):
        assert word not in flat
    assert Fingerprint.from_json(fp.to_json()) == fp
