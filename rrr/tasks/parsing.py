"""Answer extraction shared by every task.

The final answer is the **last** ``<answer>…</answer>`` of a completion (a model may "think out loud" with earlier
tags). Extraction is string search from the right — linear, allocation-light and safe on a 10 MB completion — never a
regular expression that can backtrack.
"""

from __future__ import annotations

OPEN, CLOSE = "<answer>", "</answer>"
#: Answers longer than this are rejected before any parsing (a real answer is a line, not a novel).
MAX_ANSWER_CHARS = 2_000


def last_answer(text: object) -> str | None:
    """The stripped content of the last complete ``<answer>…</answer>`` in ``text``, or None.

    Tags are matched case-insensitively only when the exact lower-case tags are absent (cheap common path).
    """
    if not isinstance(text, str):
        return None
    end = text.rfind(CLOSE)
    if end < 0:
        lowered = text.lower()
        end = lowered.rfind(CLOSE)
        if end < 0:
            return None
        start = lowered.rfind(OPEN, 0, end)
    else:
        start = text.rfind(OPEN, 0, end)
        if start < 0:
            start = text.lower().rfind(OPEN, 0, end)
    if start < 0:
        return None
    return text[start + len(OPEN) : end].strip()
