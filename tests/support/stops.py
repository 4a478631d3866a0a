"""Pick a stop sequence from inside a text the model produced on this machine."""

from __future__ import annotations


def stop_inside(text: str) -> tuple[str, str]:
    """A stop sequence that occurs in ``text`` after some words, and the text before it.

    The stop is " <word>" for the first word after the second that is not a prefix of
    anything earlier, so the cut is unambiguous whatever words the model chose.
    """
    words = text.split(" ")
    for i in range(2, len(words)):
        stop = " " + words[i]
        if len(words[i]) >= 2 and text.index(stop) == len(" ".join(words[:i])):
            return stop, text[:text.index(stop)]
    raise AssertionError(f"no usable stop sequence inside {text!r}")
