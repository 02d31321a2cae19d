"""Answer extraction shared by every task.

The final answer is the **last** ``<answer>…</answer>`` of a completion (a model may "think out loud" with earlier
tags). Extraction is string search from the right — linear, allocation-light and safe on a 10 MB completion — never a
regular expression that can backtrack.

Case-insensitive tag search must never take indices from a transformed string and slice the original with them:
``"İ".lower()`` is two code points, so after such a character every index of ``text.lower()`` is shifted and the
slice lands on the wrong characters (a correct answer is read as garbage, or a wrong one as a correct expression
elsewhere). ``same_length_lower`` gives a lower-cased view whose indices are the original's.
"""

from __future__ import annotations

from collections.abc import Iterator

OPEN, CLOSE = "<answer>", "</answer>"
#: Answers longer than this are rejected before any parsing (a real answer is a line, not a novel).
MAX_ANSWER_CHARS = 2_000

_DOTTED_CAPITAL_I = "\u0130"  # "İ".lower() == "i\u0307": the one code point whose lower() is longer (Unicode 15)
_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def same_length_lower(text: str) -> str:
    """``text.lower()`` with exactly one character per character of ``text``, so indices carry over.

    Fast path: ``str.lower`` (C speed) when it keeps the length — ``lower`` maps each character to one or more, so
    equal lengths mean every index is aligned. Otherwise U+0130 is lowered to a plain ``i`` first; should a future
    Unicode add another expanding character, only ASCII letters are lowered (tags are ASCII, so nothing is lost).
    """
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    lowered = text.replace(_DOTTED_CAPITAL_I, "i").lower()
    if len(lowered) == len(text):
        return lowered
    return text.translate(_ASCII_LOWER)  # pragma: no cover - no such character in this Python's Unicode tables


def last_answer(text: object) -> str | None:
    """The stripped content of the last complete ``<answer>…</answer>`` in ``text``, or None.

    Tags are matched case-insensitively only when the exact lower-case tags are absent (cheap common path).
    """
    if not isinstance(text, str):
        return None
    end = text.rfind(CLOSE)
    if end < 0:
        lowered = same_length_lower(text)
        end = lowered.rfind(CLOSE)
        if end < 0:
            return None
        start = lowered.rfind(OPEN, 0, end)
    else:
        start = text.rfind(OPEN, 0, end)
        if start < 0:
            start = same_length_lower(text).rfind(OPEN, 0, end)
    if start < 0:
        return None
    return text[start + len(OPEN) : end].strip()


def iter_answer_tags(text: str, max_chars: int = MAX_ANSWER_CHARS) -> Iterator[str]:
    """Every ``<answer>…</answer>`` content in ``text`` (tags in any case), left to right; linear scan.

    Contents longer than ``max_chars`` are skipped (not an answer anyone would write), but the scan goes on after
    them.
    """
    lowered = same_length_lower(text)
    pos = 0
    while True:
        start = lowered.find(OPEN, pos)
        if start < 0:
            return
        end = lowered.find(CLOSE, start + len(OPEN))
        if end < 0:
            return
        if end - start - len(OPEN) <= max_chars:
            yield text[start + len(OPEN) : end]
        pos = end + len(CLOSE)
