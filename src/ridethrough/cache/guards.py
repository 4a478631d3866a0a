"""Guards that veto a semantic match the embedding similarity would allow.

Cosine similarity measures topic, not meaning. With all-MiniLM-L6-v2, "Is aspirin safe during
pregnancy?" and "Is aspirin not safe during pregnancy?" score 0.992 — above a true paraphrase
("... safe to take while pregnant?", 0.948); "legal"/"illegal" 0.984; "Flights from Paris to
London" and its reverse 0.997; orders #1234 and #1243 0.938. No threshold separates those, so
a match must also pass checks that look at the words:

* ``turns``        the conversation has the same length;
* ``numbers``      the same numbers (digits and spelled-out cardinals), as a multiset;
* ``negation``     the same negations (not, no, never, n't, without, nothing …);
* ``quoted``       the same quoted strings and code spans, exactly;
* ``literals``     the same URLs, e-mail addresses, paths and identifiers;
* ``entities``     every capitalized / mixed-case word of one text occurs in the other;
* ``language``     both written in the same language;
* ``contrast:*``   the same marked words — antonyms, direction words, comparatives,
  quantifiers, time words, units, output formats and instructions, language names (the second
  stage, ``contrast.py``: it compares the two questions' contrasting words directly);
* ``word_order``   two words that trade places around a word kept between them ("Paris to
  London" / "London to Paris", "Alice sent Bob" / "Bob sent Alice") is a new question;
* ``addition``     one question is the other plus a qualifier ("Write a reply" / "Write a
  polite reply"): a more specific question wants another answer;
* ``substitution`` content words swapped for others, however many ("safe" -> "unsafe", "buy"
  -> "sell", "taken as capsules by mouth" -> "given as intravenous hospital infusion") needs a
  second, much higher threshold (``strict_threshold``). Paraphrases mostly differ by function
  words ("How do I" / "How can I"), which are not content words. The count of swapped words
  says nothing: in a long question the shared words carry the similarity, so a three-word
  swap that changes the answer still scored 0.92-0.93 with MiniLM.

A miss costs one provider call (or, during an outage, a static answer); a wrong hit serves the
answer to a different question. Every rule errs toward the miss.

The stored side keeps only a :class:`Fingerprint`: truncated sha256 digests of the tokens (the
marked words are plain: closed-class dictionary words). Its ``v`` names the fingerprint's
version; an entry fingerprinted by another version never matches (it is "unreadable").
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from .contrast import canonical, contrast, language_of, marks_of, swapped

__all__ = ["FINGERPRINT_VERSION", "Fingerprint", "disagreement", "fingerprint"]

FINGERPRINT_VERSION = 2

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words(
    # Articles, auxiliaries, modals, pronouns, filler: swapping them keeps the question.
    # Deliberately absent: question words, prepositions of direction (to/from/before/after/
    # for/with…), comparatives, and/or — changing those changes the question.
    "a an the is are was were be been being am do does did done can could would will shall "
    "may might i me my mine you your yours we us our ours it its this that these those there "
    "here of about in on at by please kindly just some any he she they him her his them their "
    "theirs hers"
)
# Not part of the word-order sequence: the words whose place says nothing about who does what.
_UNORDERED = STOPWORDS - _words("of about in on at by")
# Added to a question, these ask for nothing new ("the capital city of France").
_FILLER = _words("city really actually exactly please also again currently way get command "
                 "keyword mean meaning going have has there should if per for")
_PREPOSITIONS = _words("of about in on at by to from for with")
NEGATIONS = _words("not no never without none nothing nobody nowhere neither nor cannot")
# Capitalized only because they open a sentence: not names.
_COMMON_OPENERS = STOPWORDS | NEGATIONS | _words(
    "what how why when where who whom whose which if and but or so then also hi hello hey "
    "thanks thank tell give explain write list show describe summarize summarise translate "
    "convert find make create help generate compare calculate define suggest recommend should "
    "must let have has had yes ok okay sure for from to with as after before again now today "
    "every each all many much more most"
)
_CARDINALS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: str(i) for i, word in enumerate(_CARDINALS.split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
                      "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100",
                      "thousand": "1000", "million": "1000000", "billion": "1000000000",
                      "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5",
                      "once": "1", "twice": "2", "half": "0.5", "dozen": "12"})

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_CONTRACTIONS = [
    (re.compile(r"\bcan't\b|\bcannot\b", re.IGNORECASE), "can not"),
    (re.compile(r"\bwon't\b", re.IGNORECASE), "will not"),
    (re.compile(r"\bshan't\b", re.IGNORECASE), "shall not"),
    (re.compile(r"n't\b", re.IGNORECASE), " not"),
    (re.compile(r"'(?:s|re|ve|ll|d|m)\b", re.IGNORECASE), ""),
]
_QUOTED = re.compile(
    r'"([^"\n]{1,500})"|\u201c([^\u201d\n]{1,500})\u201d|(?<!\w)\'([^\'\n]{1,500})\'(?!\w)'
    r"|`+([^`]{1,2000})`+"
)
_LITERAL = re.compile(
    r"https?://\S+|www\.\S+"                    # URLs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"              # e-mail addresses
    r"|[\w.-]*[/\\][\w./\\-]*\w"                # paths, a/b
    r"|\w*_\w+"                                # snake_case identifiers
    r"|[A-Za-z_][\w-]+(?:\.[A-Za-z_][\w-]+)+"     # file.py, example.com (not "e.g.")
)
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_WORD = re.compile(r"[^\W_]+")
_TOKEN = re.compile("\x00|" + _NUMBER.pattern + "|" + _WORD.pattern)  # \x00: a literal's place
_SENTENCE_END = ".!?:;\n"


@dataclass(frozen=True)
class Fingerprint:
    """The checkable features of one question, as short digests (no plain text)."""

    turns: int
    v: int                       # FINGERPRINT_VERSION
    content: tuple[str, ...]     # content words in order (numbers and literals included)
    numbers: tuple[str, ...]     # sorted
    negations: tuple[str, ...]   # sorted; closed-class words, kept plain
    entities: tuple[str, ...]    # sorted, lowercased before hashing
    quoted: tuple[str, ...]      # sorted
    literals: tuple[str, ...]    # sorted
    marks: tuple[str, ...]       # sorted "class:word" (contrast.marks_of), plain
    language: str
    sequence: tuple[str, ...]    # every word but _UNORDERED ones, in order: who does what

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fingerprint:
        if data.get("v") != FINGERPRINT_VERSION:
            raise ValueError(f"fingerprint version {data.get('v')!r}")
        return cls(
            turns=int(data["turns"]),
            v=FINGERPRINT_VERSION,
            content=tuple(data["content"]),
            numbers=tuple(data["numbers"]),
            negations=tuple(data["negations"]),
            entities=tuple(data["entities"]),
            quoted=tuple(data["quoted"]),
            literals=tuple(data["literals"]),
            marks=tuple(data["marks"]),
            language=str(data["language"]),
            sequence=tuple(data["sequence"]),
        )


def _digest(token: str) -> str:
    return hashlib.sha256(b"ridethrough-guard:" + token.encode()).hexdigest()[:16]


_FILLER_DIGESTS = frozenset(_digest(w) for w in _FILLER)
_PIVOT_DIGESTS = frozenset(_digest(w) for w in _PREPOSITIONS)


def _stem(word: str) -> str:
    """Plural "s" only: "passwords" is "password"; anything cleverer merges real differences."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def fingerprint(text: str, turns: int) -> Fingerprint:
    """The features of ``text`` (the last user turn of a ``turns``-message conversation)."""
    text = canonical(text.translate(_APOSTROPHES))
    language = language_of(text)
    quoted = [" ".join(next(g for g in m.groups() if g is not None).split())
              for m in _QUOTED.finditer(text)]
    literals = [m.group(0).rstrip(".,;:!?)") for m in _LITERAL.finditer(text)]
    rest = _LITERAL.sub(" \x00 ", text)  # a placeholder keeps literals' place in the order
    for pattern, replacement in _CONTRACTIONS:
        rest = pattern.sub(replacement, rest)
    literal_iter = iter(literals)
    content: list[str] = []
    numbers: list[str] = []
    negations: list[str] = []
    entities: list[str] = []
    lowered: list[str] = []
    sequence: list[str] = []
    for match in _TOKEN.finditer(rest):
        token = match.group(0)
        if token == "\x00":
            literal = next(literal_iter, "")
            content.append(literal)
            sequence.append(literal)
            continue
        if token[0].isdigit() and _NUMBER.fullmatch(token):
            number = token.replace(",", "")
            numbers.append(number)
            content.append(number)
            sequence.append(number)
            continue
        lower = token.lower()
        lowered.append(lower)
        if lower in _NUMBER_WORDS:
            numbers.append(_NUMBER_WORDS[lower])
            content.append(_NUMBER_WORDS[lower])
            sequence.append(_NUMBER_WORDS[lower])
            continue
        numbers.extend(re.findall(r"\d+", token))  # "A123", "3rd", "v2"
        if lower in NEGATIONS:
            negations.append("not" if lower == "cannot" else lower)
        if _is_entity(token, rest, match.start()):
            entities.append(lower)
        if lower not in STOPWORDS:
            content.append(_stem(lower))
        if lower not in _UNORDERED:
            sequence.append(_stem(lower))
    return Fingerprint(
        turns=turns,
        v=FINGERPRINT_VERSION,
        content=tuple(_digest(t) for t in content),
        numbers=tuple(sorted(_digest(n) for n in numbers)),
        negations=tuple(sorted(negations)),
        entities=tuple(sorted(_digest(_stem(e)) for e in entities)),
        quoted=tuple(sorted(_digest(q) for q in quoted)),
        literals=tuple(sorted(_digest(x) for x in literals)),
        marks=marks_of(lowered),
        language=language,
        sequence=tuple(_digest(t) for t in sequence),
    )


def _is_entity(token: str, text: str, start: int) -> bool:
    if token == "I" or not any(c.isupper() for c in token):
        return False
    lower = token.lower()
    if lower in STOPWORDS:
        return False
    if any(c.isupper() for c in token[1:]):  # API, iPhone, McDonald
        return len(token) > 1
    before = text[:start].rstrip(" \t\"'(\u201c[")
    opens_sentence = not before or before[-1] in _SENTENCE_END
    return not opens_sentence or lower not in _COMMON_OPENERS


def disagreement(
    a: Fingerprint, b: Fingerprint, similarity: float, *, threshold: float, strict_threshold: float
) -> str | None:
    """Why ``b`` must not be served for ``a`` (a guard name), or ``None`` when it may."""
    if similarity < threshold:
        return "threshold"
    if a.turns != b.turns:
        return "turns"
    if a.numbers != b.numbers:
        return "numbers"
    if a.negations != b.negations:
        return "negation"
    if a.quoted != b.quoted:
        return "quoted"
    if a.literals != b.literals:
        return "literals"
    a_words, b_words = set(a.content), set(b.content)
    # Entities are checked against the other side's words, so "france" matches "France".
    if not set(a.entities) <= b_words or not set(b.entities) <= a_words:
        return "entities"
    if a.language != b.language:
        return "language"
    contrasting = contrast(a.marks, b.marks)
    if contrasting is not None:
        return "contrast:" + contrasting
    # Two words that trade places around a third: the roles changed ("Alice sent Bob" / "Bob
    # sent Alice"). When nothing but the order differs, a preposition between them is enough
    # ("bought online in store" / "bought in store online").
    if a.sequence != b.sequence:
        pivots = _PIVOT_DIGESTS if Counter(a.sequence) == Counter(b.sequence) else frozenset()
        if swapped(a.sequence, b.sequence, pivots):
            return "word_order"
    only_a, only_b = a_words - b_words, b_words - a_words
    if bool(only_a) != bool(only_b) and not (only_a | only_b) <= _FILLER_DIGESTS:
        return "addition"
    # Any content word swapped, not only one or two: a long question keeps its similarity
    # when a whole phrase changes ("... taken as capsules by mouth?" / "... given as
    # intravenous hospital infusion?", 0.922).
    if only_a and only_b and similarity < strict_threshold:
        return "substitution"
    return None
