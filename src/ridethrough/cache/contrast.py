"""The second stage of a semantic match: compare the two questions' contrasting words.

An embedding places "refund window for purchases over 100 dollars" and "... under 100 dollars"
at 0.995 — closer than most paraphrases. No threshold fixes that, and no small NLI or
cross-encoder model ships inside a package this gateway can install (see docs/choices.md),
so the two questions are compared directly, on the words where they differ:

* ``canonical``  phrases with one meaning get one spelling first ("turn on" -> enable,
  "2FA" -> two-factor authentication, "sign out" -> logout), so paraphrases do not look
  like contrasts and contrasts cannot hide behind a synonym;
* ``marks``      closed-class words that decide the answer — antonyms and direction words,
  comparatives, quantifiers, time words, units, output formats and instructions, language
  names — kept plain (they are dictionary words, never secrets) and compared as classes;
* ``language``   the language the question is written in;
* ``swapped``    two words that trade places around a word that stays between them
  ("Alice sent Bob" / "Bob sent Alice", "to JSON from YAML").

Everything here is pure and table-driven, so a missed contrast is fixed by one line in a
table, with a pair added to ``bench/semantic/pairs.txt`` to prove it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["canonical", "contrast", "language_of", "marks_of", "swapped"]

# -- one spelling per meaning ------------------------------------------------------------------

_PHRASES: list[tuple[str, str]] = [
    (r"two[- ]?factor(?: authentication| auth)?|2fa|mfa|multi[- ]?factor(?: authentication)?",
     "twofactor"),
    (r"(?:turn|switch) on|activate", "enable"),
    (r"(?:turn|switch) off|deactivate", "disable"),
    (r"(?:sign|log) ?in(?:to)?(?= |$)", "login"),
    (r"(?:sign|log) ?out(?: of)?", "logout"),
    (r"check[- ]in", "checkin"),
    (r"check[- ]out", "checkout"),
    (r"set[- ]up", "setup"),
    (r"is it possible to|am i allowed to|are we allowed to|is it okay to|is it ok to", "can"),
    (r"unable to", "can not"),
    (r"how many hours of sleep", "how much sleep"),
    (r"\bdicts?\b", "dictionary"),
    (r"\bints?\b", "integer"),
    (r"\bwhether\b", "if"),
    (r"\bwhich\b", "what"),
    (r"\bchoose\b|\bpick\b", "select"),
    (r"\bsigns\b", "symptoms"),
    (r"\bitem\b", "product"),
    (r"\bitems\b", "products"),
    (r"\bevery\b|\beach\b", "all"),
    (r"\bany\b", "some"),
    (r"\binto\b|\btowards?\b", "to"),
    (r"\brequired\b|\bnecessary\b", "need"),
    (r"\busing\b", "with"),
    (r"\bmake\b", "create"),
]
_PHRASE_RES = [(re.compile(r"(?<![\w-])(?:" + p + r")(?![\w-])", re.IGNORECASE), r)
               for p, r in _PHRASES]


def canonical(text: str) -> str:
    """``text`` with synonymous phrases spelled one way (lowercase where replaced)."""
    for pattern, replacement in _PHRASE_RES:
        text = pattern.sub(replacement, text)
    return text


# -- marked words --------------------------------------------------------------------------------
# STRONG classes: any difference between the two questions is a different question ("explain
# X" / "explain X briefly"). WEAK words are everyday words that only contrast with another
# member of their class ("to Tokyo" / "from Tokyo"), since "how to" or "some" alone is filler.

_STRONG: dict[str, str] = {}
_WEAK: dict[str, str] = {}


def _add(table: dict[str, str], cls: str, words: str) -> None:
    for word in words.split():
        table[word] = cls


_add(_STRONG, "antonym", (
    "over under above below before after more less fewer most least enable disable buy sell "
    "import export increase decrease raise lower rise fall upgrade downgrade add remove drop "
    "delete subscribe unsubscribe lock unlock login logout install uninstall show hide accept "
    "decline reject allow block deny forbid forbidden allowed archive unarchive pause resume "
    "start stop end begin open close closed push pull upload download encrypt decrypt "
    "serialize deserialize compress decompress ascending descending first last maximum "
    "minimum max min deposit withdraw debit credit debited credited fixed variable pros cons "
    "advantage disadvantage bull bear long short borrow lend gain loss lose win checkin "
    "checkout include exclude including excluding inherit avoid receive send sent received "
    "incoming outgoing inbound outbound arrival departure arrive depart benign malignant "
    "gain weight hydrate dehydrate public publicly private privately synchronous "
    "asynchronous sync async nullable new old secondhand refundable nonrefundable delayed "
    "north south east west left right hot cold heat ice warm cool high low"))
_add(_STRONG, "comparison", (
    "cheap cheaper cheapest expensive fast faster fastest slow slower slowest big bigger "
    "biggest small smaller smallest large larger largest longer longest shorter shortest "
    "higher highest lower lowest good better best bad worse worst busy busier busiest quiet "
    "quieter quietest early earlier earliest late later latest heavy heavier light lighter "
    "strong stronger weak weaker safe safer unsafe dangerous risky easy easier hard harder"))
_add(_STRONG, "quantifier", (
    "all none most few many several both either only always never sometimes often usually "
    "rarely once twice"))
_add(_STRONG, "time", (
    "today tomorrow yesterday tonight now next previous current morning afternoon evening "
    "night noon midnight monday tuesday wednesday thursday friday saturday sunday weekday "
    "weekend january february march april may june july august september october november "
    "december spring summer autumn winter christmas easter"))
_add(_STRONG, "unit", (
    "mg g kg gram grams kilogram lb lbs pound pounds oz ounce ml l liter litre km kilometer "
    "mile miles m meter metre cm centimeter mm inch inches foot feet ft celsius fahrenheit "
    "degree percent dollar usd euro eur gbp yen hour minute second day week month year "
    "byte kb mb gb tb"))
_add(_STRONG, "format", (
    "json yaml xml csv markdown html table bullet bulleted numbered code example tests "
    "sentence word paragraph essay poem haiku summary brief briefly concise concisely detail "
    "detailed simple simply polite politely formal informal friendly funny child children kid "
    "beginner expert step budget adult adults infant infants"))
_add(_STRONG, "language", (
    "english german french spanish italian portuguese dutch chinese mandarin japanese korean "
    "russian arabic hindi polish swedish norwegian danish finnish greek turkish hebrew "
    "ukrainian czech vietnamese thai indonesian"))
# Each weak class is one opposition: "to" against "from" contrasts, "to" against "in" does not.
_add(_WEAK, "to/from", "to from")
_add(_WEAK, "in/out", "in out")
_add(_WEAK, "on/off", "on off")
_add(_WEAK, "up/down", "up down")
_add(_WEAK, "quantity", "some")

def _lemma(word: str) -> str:
    for suffix in ("ly",):
        if word.endswith(suffix) and word[:-len(suffix)] in _STRONG:
            return word[:-len(suffix)]
    if len(word) > 3 and word.endswith("s") and word[:-1] in _STRONG:
        return word[:-1]
    return word


def marks_of(words: Sequence[str]) -> tuple[str, ...]:
    """The marked words among ``words`` (lowercase tokens), as sorted ``class:word``."""
    out = []
    for word in words:
        lemma = _lemma(word)
        if lemma in _STRONG:
            out.append(f"{_STRONG[lemma]}:{lemma}")
        elif word in _WEAK:
            out.append(f"~{_WEAK[word]}:{word}")
    return tuple(sorted(out))


def contrast(a: Sequence[str], b: Sequence[str]) -> str | None:
    """The class of the first contrast between two ``marks_of`` results, or ``None``."""
    strong_a = Counter(m for m in a if not m.startswith("~"))
    strong_b = Counter(m for m in b if not m.startswith("~"))
    if strong_a != strong_b:
        return next(iter((strong_a - strong_b) + (strong_b - strong_a))).split(":")[0]
    weak_a = Counter(m for m in a if m.startswith("~"))
    weak_b = Counter(m for m in b if m.startswith("~"))
    for cls in {m.split(":")[0] for m in weak_a + weak_b}:
        in_a = Counter({m: n for m, n in weak_a.items() if m.startswith(cls + ":")})
        in_b = Counter({m: n for m, n in weak_b.items() if m.startswith(cls + ":")})
        # "to" against "from" is a contrast; "to" against nothing is a way of speaking, and so
        # is "to ... from" against "to" (the other side did not say the opposite).
        if set(in_a) - set(in_b) and set(in_b) - set(in_a):
            return cls.lstrip("~")
    return None


# -- language --------------------------------------------------------------------------------

# No word that is also an English word ("die", "was", "come", "pour", "a"): a question in
# English must never look foreign because of one of them.
_FUNCTION_WORDS = {
    "en": "the is are what how do does can i you my to of and in for with".split(),
    "de": "der das ist ich wie mein meine und nicht ein eine zu mit fuer für wo warum".split(),
    "fr": "le les est je quel quelle quelle ma et pas une avec du dois puis".split(),
    "es": "el los las es como cómo qué que y una para con del puedo".split(),
    "it": "il lo gli è che mio mia una con del posso sono".split(),
    "pt": "os é eu como que meu minha não uma para posso".split(),
    "nl": "het ik hoe wat mijn niet een voor kan".split(),
}


def language_of(text: str) -> str:
    """A coarse guess of the language of ``text``: a script, or the European language whose
    function words it uses most ("und" for "en"). ``"?"`` when there is nothing to go on."""
    for name, pattern in (("cjk", r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]"),
                          ("cyrillic", r"[\u0400-\u04ff]"), ("arabic", r"[\u0600-\u06ff]"),
                          ("hebrew", r"[\u0590-\u05ff]"), ("greek", r"[\u0370-\u03ff]"),
                          ("devanagari", r"[\u0900-\u097f]"), ("thai", r"[\u0e00-\u0e7f]")):
        if re.search(pattern, text):
            return name
    words = re.findall(r"[^\W\d_]+", text.lower())
    scores = {lang: sum(w in set(fw) for w in words) for lang, fw in _FUNCTION_WORDS.items()}
    best = max(scores, key=lambda k: scores[k])
    # English unless another language has clear evidence: a tie or a single word is too weak
    # to split on, and most traffic is English.
    if best == "en" or scores[best] < 2 or scores[best] <= scores["en"]:
        return "en"
    return best


# -- swapped roles -----------------------------------------------------------------------------


def swapped(a: Sequence[str], b: Sequence[str], pivots: frozenset[str] = frozenset()) -> bool:
    """Two tokens found in both that trade places around a token kept between them.

    "mother passes virus to baby" / "baby passes virus to mother": mother and baby swap
    with "passes" between them both times — another question. "sort dictionary by value
    in Python" / "sort Python dictionary by value" moves Python, but nothing stays between
    it and "dictionary" — the same question. A ``pivots`` token (a preposition) between the
    two in either question counts as kept between them ("bought online in store" / "bought
    in store online").
    """
    count_a, count_b = Counter(a), Counter(b)
    shared = [t for t in dict.fromkeys(a) if count_a[t] == 1 and count_b[t] == 1]
    pos_a = {t: a.index(t) for t in shared}
    pos_b = {t: b.index(t) for t in shared}
    for i, x in enumerate(shared):
        for y in shared[i + 1:]:
            if (pos_a[x] < pos_a[y]) == (pos_b[x] < pos_b[y]):
                continue
            lo_a, hi_a = sorted((pos_a[x], pos_a[y]))
            lo_b, hi_b = sorted((pos_b[x], pos_b[y]))
            between_a = {t for t in a[lo_a + 1:hi_a] if t in pos_b}
            between_b = {t for t in b[lo_b + 1:hi_b] if t in pos_a}
            if between_a & between_b:
                return True
            if pivots and (pivots & set(a[lo_a + 1:hi_a]) or pivots & set(b[lo_b + 1:hi_b])):
                return True
    return False
