"""Meeting scheduling: can these meetings share N rooms? (and: how many rooms do they need?)

The problem (after D. Rawson's Linguistic RL scheduling task, ``docs/background.md``): a list of meetings
``[start, end]`` in whole hours and a number of rooms. A room holds one meeting at a time, so all meetings fit exactly
when the **peak** number of meetings running at the same time (the maximum overlap) is at most the number of rooms.
Meetings are half-open intervals: one that ends at 10 and one that starts at 10 do **not** clash. Two variants:

* ``yes_no`` (``get_task("scheduling")``): answer ``<answer>YES</answer>`` iff ``max_overlap <= rooms``;
* ``min_rooms`` (``get_task("scheduling_min_rooms")`` or ``variant="min_rooms"``): answer the minimum number of
  rooms, ``<answer>N</answer>`` with ``N = max_overlap``.

Design decisions, and why:

* **Balanced labels.** The original test set is 88% YES, so "always YES" scores 88% and the published LoRA students
  (86%, 82.7%) sit *below* the majority baseline. The generator here makes exactly half of every difficulty YES
  (``majority_baseline`` = 0.5), draws the number of meetings and of rooms independently of the label (so neither
  predicts it), and evaluation should report ``majority_baseline`` beside accuracy anyway.
* **No surface shortcut.** Balanced labels are not enough: in the first version of this generator the *density*
  (meeting-hours / span of the day's meetings) with the difficulty and rooms predicted YES/NO 79.8% of the time (a
  crowded day is a NO) and the min-rooms answer 70% against a 42% majority. Now every generation unit — a YES/NO
  pair with the same meetings count and rooms, or a min-rooms group holding each answer of its difficulty once —
  shares one span and one multiset of durations; only *where* the meetings lie differs. Density, span, total and
  longest duration are then distributed exactly alike for every answer of a cell, and ``surface_baseline`` (a
  cell-majority classifier on meeting count, rooms and density, fitted on generated training data) scores the
  majority baseline. Statistics that compare meetings (how many pairs overlap or touch) still tell answers
  apart — counting overlaps *is* the task.
* **Tight rooms.** ``rooms`` is ``max_overlap`` (YES) or ``max_overlap - 1`` (NO): the answer always hinges on
  counting the peak exactly; an off-by-one count flips it. Loose rooms would make most instances guessable from a
  glance at how crowded the day is.
* **Traps for heuristics.** Hard instances are selected so that half of each label's hard instances
  (``ceil(k / 2)`` of ``k``) fool ``naive_adjacent_peak`` — the "sort, then count the longest chain of neighbours
  that overlap" shortcut a weak solver uses — and the other half do not, so the shortcut scores 50% on hard. It
  overcounts chains (A overlaps B, B overlaps C, A and C do not: wrong on YES instances) and undercounts a long
  meeting whose overlap partners are separated by a short meeting nested inside it (wrong on NO instances).
  Touching meetings (one ends when another starts) are common: at least a third of each label's instances have
  them where the sizes allow, and on at least a third of the YES instances counting touching meetings as
  overlapping flips the answer to NO (measured on 1,200 examples: 41–94% touching per difficulty, and
  touching flips 78–82% of the YES instances).
* **Strict mode for training.** With a YES/NO reward a failed first attempt tells the model the answer is the other
  one, so RRR degenerates into "flip the answer": in the demo's feasibility study (``docs/background.md``)
  flipped retries rose from 26% to 66%, faithful reflections fell from 9% to 1.5% and first-try accuracy on hard
  tasks collapsed from 78% to 56.5%. ``strict=True`` also requires the stated ``peak: N`` to equal the true maximum
  overlap, which a flip cannot guess; the min-rooms variant has a numeric answer and the same property. Use strict
  (or min-rooms) to *train*; plain YES/NO accuracy stays a fine *evaluation* metric.
* **Held-out pool.** Every meeting set is assigned to the training pool or to the held-out pool by a stable hash of
  its canonical form; ``split="train"`` draws only from the first, every other split (``"test"``, ``"validation"``,
  ...) only from the second, so no evaluation problem is ever a training problem, whatever the seeds.

The verifier recomputes the peak from ``meetings`` (the stored ``max_overlap``/``answer`` columns are never
trusted), never raises, and reads only the last ``<answer>`` and a bounded tail of the completion, so a 10 MB
completion costs milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import string
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any, ClassVar

from rrr.tasks.base import GENERATED, Example, Task, TaskDataError, Verdict
from rrr.tasks.parsing import MAX_ANSWER_CHARS, iter_answer_tags, last_answer

Meeting = tuple[int, int]

VARIANTS = ("yes_no", "min_rooms")
DIFFICULTIES = ("easy", "medium", "hard")
#: Meetings lie within these hours (inclusive bounds of start and end).
DAY_START, DAY_END = 8, 20
MIN_DURATION, MAX_DURATION = 1, 4
#: difficulty -> (min meetings, max meetings, min rooms, max rooms, rooms cap below the number of meetings). Rooms
#: are at most ``meetings - cap``: 1 so that a NO instance (peak = rooms + 1) exists; 2 on hard because a NO instance
#: that fools ``naive_adjacent_peak`` needs a meeting outside the peak (if all n meetings overlap, the naive run is n).
#: The smallest meetings count admits every rooms value, so the count says nothing about the rooms (or the min-rooms
#: answer) within a difficulty; two meetings are never enough: they clash exactly when their hours exceed their span.
_SPEC: dict[str, tuple[int, int, int, int, int]] = {
    "easy": (3, 3, 1, 2, 1),
    "medium": (4, 5, 1, 3, 1),
    "hard": (6, 8, 2, 4, 2),
}
#: One meeting set in this many goes to the held-out pool (evaluation splits); the rest to the training pool.
_HELD_OUT_EVERY = 5
#: Examples with more meetings than this are rejected as malformed (bounds the verifier's work).
MAX_MEETINGS = 10_000
#: The strict-mode peak statement is searched for in this many trailing characters of a completion.
PEAK_TAIL_CHARS = 4_096
#: leaks_answer scans a reflection longer than twice this at its first and last this many characters only.
LEAK_SCAN_CHARS = 16_000
_MAX_NUMBER_DIGITS = 9
#: ``worked_solution`` writes one line per distinct start time, up to this many (else the bare reference answer).
_WORKED_MAX_LINES = 48
#: Stripped from both ends of an answer before it is judged ("**YES**", "NO.", "'3'"); a sign is kept on numbers, so
#: "-3" is not read as 3.
_STRIP = string.whitespace + string.punctuation
_STRIP_NUMBER = _STRIP.replace("-", "").replace("+", "")

#: ``peak: 3``, ``Peak = 3``, ``peak 3``, ``peak is 3``, ``**Peak:** 3`` (case-insensitive).
PEAK_PATTERN = re.compile(r"\bpeak[\s*_]*+(?:(?:[:=]|is\b)[\s*_]*+)?(\d++)", re.IGNORECASE)

# leaks_answer phrases (see SchedulingTask.leaks_answer). Linear time on any input (tests/test_linear_time.py feeds
# each pattern 100 kB of repeated pieces): every quantified run is possessive (``*+``, ``++``: never given back) and
# is followed by something it cannot match, and no two alternatives can consume the same separator characters —
# ``_SEP`` holds no letters or digits and ``_COPULA`` only words (an ``=`` copula next to ``_SEP``, which also takes
# ``=``, made "answer= = = ..." quadratic: > 20 s on 100 kB).
_SEP = r"[\s:=\"'*`>\-]*+"
_ANSWER_WORDS = r"(?:final\s++|correct\s++|right\s++|true\s++)?(?:answer|verdict|label)"
_COPULA = r"(?:is|should\s++be|must\s++be|would\s++be|will\s++be)"
_LEAK_LABEL_PATTERNS = (
    re.compile(rf"\b{_ANSWER_WORDS}{_SEP}(?:{_COPULA}{_SEP})?(yes|no)\b", re.IGNORECASE),
    re.compile(
        r"\b(?:should|must|would|will)\s++(?:have\s++)?(?:be|been|say|said|answer|answered|output|give|given)"
        rf"{_SEP}(yes|no)\b",
        re.IGNORECASE,
    ),
)
_LEAK_NUMBER_PATTERNS = (
    re.compile(rf"\b{_ANSWER_WORDS}{_SEP}(?:{_COPULA}{_SEP})?(\d++)\b(?![-:]\d)", re.IGNORECASE),
    re.compile(
        r"\b(?:need|needs|needed|require|requires|required|use|uses|take|takes)\s++"
        r"(?:only\s++|just\s++|exactly\s++|at\s++least\s++)?(\d++)\s++rooms?\b",
        re.IGNORECASE,
    ),
    re.compile(r"\b(\d++)\s++rooms?\s++(?:are\s++|is\s++)?(?:needed|required|necessary|enough|suffice)", re.IGNORECASE),
    re.compile(r"\bminimum\b[^.\n<\d]{0,40}?(?:\bis\b|=|:)\s*+(\d++)\b", re.IGNORECASE),
    PEAK_PATTERN,
)


# ----------------------------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------------------------
def max_overlap(meetings: Iterable[Sequence[int]]) -> int:
    """The peak number of meetings running at the same time (0 for no meetings).

    Sweep line over +1 (start) / -1 (end) events sorted by time, ends before starts at equal times: meetings are
    half-open ``[start, end)``, so ``[9, 10]`` and ``[10, 11]`` do not overlap. Assumes ``start < end`` integers
    (``verify`` validates examples before calling it).
    """
    events = []
    for start, end in meetings:
        events.append((start, 1))
        events.append((end, -1))
    events.sort()  # (t, -1) < (t, 1): ends first
    running = best = 0
    for _, delta in events:
        running += delta
        if running > best:
            best = running
    return best


def closed_overlap(meetings: Iterable[Sequence[int]]) -> int:
    """The peak if touching meetings *did* clash (starts before ends at equal times): the touching-endpoint mistake."""
    events = []
    for start, end in meetings:
        events.append((start, 0))
        events.append((end, 1))
    events.sort()  # (t, 0) < (t, 1): starts first
    running = best = 0
    for _, is_end in events:
        running += -1 if is_end else 1
        if running > best:
            best = running
    return best


def naive_adjacent_peak(meetings: Iterable[Sequence[int]]) -> int:
    """The peak as a weak solver counts it: the longest chain of neighbours that overlap.

    Precisely: sort the meetings by ``(start, end)``; meeting ``i + 1`` continues the current run when it overlaps
    meeting ``i`` (``start[i+1] < end[i]``), otherwise it starts a new run; the result is the length of the longest
    run (0 for no meetings). It is right on simple instances and wrong in two ways:

    * it **overcounts chains**: ``[9-11], [10-12], [11-13]`` is one run of 3, but the true peak is 2 (9-11 and
      11-13 only touch);
    * it **undercounts nested meetings**: in ``[8-12], [9-10], [10-12], [11-13]`` the short ``[9-10]`` breaks the
      run (``[10-12]`` starts as it ends), so the longest run is 2, but 8-12, 10-12 and 11-13 all run at 11: peak 3.

    The generator uses it to guarantee that hard instances punish this shortcut.
    """
    ordered = sorted((s, e) for s, e in meetings)
    best = run = 0
    previous_end = None
    for start, end in ordered:
        run = run + 1 if previous_end is not None and start < previous_end else 1
        best = max(best, run)
        previous_end = end
    return best


def format_meetings(meetings: Iterable[Sequence[int]]) -> str:
    """``[[9, 11], [10, 12]]`` -> ``"[9-11], [10-12]"`` (the prompt's notation)."""
    return ", ".join(f"[{start}-{end}]" for start, end in meetings)


def yes_no_label(meetings: Iterable[Sequence[int]], rooms: int) -> str:
    """``"YES"`` iff all meetings fit in ``rooms`` rooms (``max_overlap <= rooms``)."""
    return "YES" if max_overlap(meetings) <= rooms else "NO"


def naive_is_wrong(meetings: Sequence[Sequence[int]], rooms: int) -> bool:
    """Does the ``naive_adjacent_peak`` heuristic get the YES/NO answer wrong on this instance?"""
    return (naive_adjacent_peak(meetings) <= rooms) != (max_overlap(meetings) <= rooms)


def parse_meetings(meetings: Any) -> list[Meeting] | str:
    """Validate an example's ``meetings``: a non-empty list of ``[start, end]`` integers with ``start < end``.

    Returns the meetings as tuples, or an error message (never raises). Booleans are not integers here; integral
    floats (``9.0``, from CSV/pandas round trips) and numpy integers are accepted.
    """
    if not isinstance(meetings, (list, tuple)):
        return f"meetings must be a list of [start, end] pairs, got {type(meetings).__name__}"
    if not meetings:
        return "no meetings"
    if len(meetings) > MAX_MEETINGS:
        return f"{len(meetings)} meetings (more than {MAX_MEETINGS})"
    parsed: list[Meeting] = []
    for i, meeting in enumerate(meetings):
        if not isinstance(meeting, (list, tuple)) or len(meeting) != 2:
            return f"meeting {i} is not a [start, end] pair: {_short(meeting)}"
        start, end = meeting
        if type(start) is not int or type(end) is not int:  # fast path; also rejects bool
            start, end = _as_int(start), _as_int(end)
            if start is None or end is None:
                return f"meeting {i} has non-integer hours: {_short(meeting)}"
        if start >= end:
            return f"meeting {i} does not end after it starts: {_short(meeting)}"
        parsed.append((start, end))
    return parsed


def parse_rooms(rooms: Any) -> int | str:
    """Validate ``rooms``: an integer >= 1. Returns it or an error message (never raises)."""
    value = rooms if type(rooms) is int else _as_int(rooms)
    if value is None:
        return f"rooms must be an integer, got {_short(rooms)}"
    if value < 1:
        return f"rooms must be at least 1, got {value}"
    return value


def majority_baseline(dataset_or_examples: Iterable[Example], variant: str = "yes_no") -> float:
    """Accuracy of always giving the most common answer (the number to beat; 0.5 on a generated set).

    Labels are recomputed from ``meetings`` (and ``rooms``), not read from a stored ``answer`` column. ``variant``
    ``"min_rooms"`` takes the most common minimum number of rooms. Raises ``ValueError`` on an empty dataset or a
    malformed example (naming its index): a baseline over silently skipped rows would be wrong.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown scheduling variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    counts: Counter[str] = Counter()
    for i, example in enumerate(dataset_or_examples):
        meetings = parse_meetings(example.get("meetings"))
        if isinstance(meetings, str):
            raise ValueError(f"example {i}: malformed example: {meetings}")
        if variant == "min_rooms":
            counts[str(max_overlap(meetings))] += 1
            continue
        rooms = parse_rooms(example.get("rooms"))
        if isinstance(rooms, str):
            raise ValueError(f"example {i}: malformed example: {rooms}")
        counts["YES" if max_overlap(meetings) <= rooms else "NO"] += 1
    total = sum(counts.values())
    if total == 0:
        raise ValueError("majority_baseline of an empty dataset")
    return max(counts.values()) / total


#: Generated training examples the surface-statistics baseline is fitted on (per variant, once per process).
SURFACE_FIT_EXAMPLES = 3_000


def surface_features(example: Example, variant: str = "yes_no") -> tuple:
    """What a prompt shows without comparing meetings: ``(meetings count, rooms, density)`` (min-rooms: no rooms,
    which its prompt does not give). Density is meeting-hours / span, exact (a ``Fraction``). Raises ``ValueError``
    on a malformed example."""
    meetings = parse_meetings(example.get("meetings"))
    if isinstance(meetings, str):
        raise ValueError(f"malformed example: {meetings}")
    span, hours = surface_signature(meetings)
    density = Fraction(hours, span)
    if variant == "min_rooms":
        return (len(meetings), density)
    rooms = parse_rooms(example.get("rooms"))
    if isinstance(rooms, str):
        raise ValueError(f"malformed example: {rooms}")
    return (len(meetings), rooms, density)


def _answer(example: Example, variant: str) -> str:
    meetings = parse_meetings(example.get("meetings"))
    if isinstance(meetings, str):
        raise ValueError(f"malformed example: {meetings}")
    peak = max_overlap(meetings)
    if variant == "min_rooms":
        return str(peak)
    rooms = parse_rooms(example.get("rooms"))
    if isinstance(rooms, str):
        raise ValueError(f"malformed example: {rooms}")
    return "YES" if peak <= rooms else "NO"


@functools.lru_cache(maxsize=8)
def _surface_model(variant: str, n: int, seed: int) -> tuple[tuple[int, dict[tuple, str]], ...]:
    """Cell-majority tables fitted on ``n`` generated training examples: for every prefix length of the features
    (all of them, then fewer, down to none), the most common answer of each cell."""
    rows = generate_examples(n, seed=seed, split="train", variant=variant)
    features = [surface_features(row, variant) for row in rows]
    answers = [_answer(row, variant) for row in rows]
    tables = []
    for k in range(len(features[0]), -1, -1):
        counts: dict[tuple, Counter] = {}
        for feature, answer in zip(features, answers):
            counts.setdefault(feature[:k], Counter())[answer] += 1
        tables.append((k, {key: c.most_common(1)[0][0] for key, c in counts.items()}))
    return tuple(tables)


def surface_baseline(
    examples: Iterable[Example], variant: str = "yes_no", fit_examples: int = SURFACE_FIT_EXAMPLES, seed: int = 0
) -> float:
    """Accuracy of answering from surface statistics alone: a cell-majority classifier on ``surface_features``.

    Fitted on ``fit_examples`` generated *training* examples (seeded, cached per process), applied to ``examples``;
    a cell never seen in training backs off to the cell of fewer features (density dropped, then rooms, ...), down
    to the overall majority. Beside ``majority_baseline`` it tells whether the data has a shortcut: on this
    generator the two agree within a point; on the first version's data it scored 74.7% on YES/NO (majority 50%)
    and 67.5% on min-rooms (majority 36.5%). Labels are recomputed from ``meetings``; a malformed or empty input raises ``ValueError``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown scheduling variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    if fit_examples < 1:
        raise ValueError(f"fit_examples must be >= 1, got {fit_examples}")
    tables = _surface_model(variant, fit_examples, seed)
    right = total = 0
    for i, example in enumerate(examples):
        try:
            feature, answer = surface_features(example, variant), _answer(example, variant)
        except ValueError as exc:
            raise ValueError(f"example {i}: {exc}") from None
        guess = next(table[feature[:k]] for k, table in tables if feature[:k] in table)
        right += guess == answer
        total += 1
    if total == 0:
        raise ValueError("surface_baseline of an empty dataset")
    return right / total


def _as_int(value: Any) -> int | None:
    """``value`` as an int if it is an integer (numpy ints, integral floats like 9.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:  # numpy / other integral types implement __index__
        return value.__index__()
    except Exception:
        return None


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _normalize(answer: str, number: bool = False) -> str:
    return answer.strip(_STRIP_NUMBER if number else _STRIP)


def _parse_number(text: str) -> int | None:
    """A non-negative decimal integer of at most 9 digits (ASCII only), else None."""
    if not text or len(text) > _MAX_NUMBER_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def stated_peak(completion: str) -> str | None:
    """The digits of the last ``peak: N`` statement in the last ``PEAK_TAIL_CHARS`` characters, or None.

    Accepted forms (case-insensitive): ``PEAK_PATTERN``, e.g. ``peak: 3``, ``Peak = 3``, ``peak 3``, ``peak is 3``,
    ``**Peak:** 3``. Returns the digit string (which may be absurdly long; callers bound it).
    """
    matches = PEAK_PATTERN.findall(completion[-PEAK_TAIL_CHARS:])
    return matches[-1] if matches else None


def _stable_int(*parts: object) -> int:
    """A 64-bit integer from ``parts`` that is the same in every process (never the salted builtin ``hash``)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _is_held_out(meetings: Sequence[Meeting]) -> bool:
    """Which pool a meeting set belongs to (a stable hash of its sorted canonical form)."""
    canonical = ",".join(f"{s}-{e}" for s, e in sorted(meetings))
    return zlib.crc32(canonical.encode()) % _HELD_OUT_EVERY == 0


# ----------------------------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------------------------
def _random_meeting(rng: random.Random, lo: int = DAY_START, hi: int = DAY_END) -> Meeting:
    duration = rng.randint(MIN_DURATION, min(MAX_DURATION, hi - lo))
    start = rng.randint(lo, hi - duration)
    return (start, start + duration)


def _window_sample(rng: random.Random, n: int) -> list[Meeting]:
    """``n`` meetings inside a random window of the day (narrow windows crowd them: higher peaks, chains)."""
    width = rng.randint(4, DAY_END - DAY_START)
    lo = rng.randint(DAY_START, DAY_END - width)
    return [_random_meeting(rng, lo, lo + width) for _ in range(n)]


def _nested_sample(rng: random.Random, n: int) -> list[Meeting]:
    """A long meeting with a short meeting nested at its start and a cluster starting when the short one ends.

    This is the shape on which ``naive_adjacent_peak`` undercounts (the short meeting breaks the chain); the rest of
    the meetings are random. The generator takes only its span and meeting-hours (the signature of half of the hard
    units), so that crowded, nested days are among the signatures hard instances are placed with.
    """
    a = rng.randint(DAY_START, DAY_END - 4)
    long_meeting = (a, a + 4)
    s = rng.randint(a + 1, a + 2)
    short = (s, s + 1)
    out = [long_meeting, short]
    for _ in range(rng.randint(1, n - 2)):
        start = rng.randint(short[1], long_meeting[1] - 1)
        out.append((start, min(DAY_END, start + rng.randint(MIN_DURATION, MAX_DURATION))))
    while len(out) < n:
        out.append(_random_meeting(rng))
    return out


def _random_durations(rng: random.Random, n: int, signature: tuple[int, int]) -> list[int] | None:
    """``n`` durations (1 to ``MAX_DURATION``, none longer than the span) summing to the signature's meeting-hours."""
    span, hours = signature
    longest = min(MAX_DURATION, span)
    if not n * MIN_DURATION <= hours <= n * longest or span > DAY_END - DAY_START or n < 2:
        return None
    durations = [MIN_DURATION] * n
    extra = hours - n * MIN_DURATION
    while extra:  # each remaining hour to a random meeting that can still grow
        i = int(rng.random() * n)
        if durations[i] < longest:
            durations[i] += 1
            extra -= 1
    return durations


def _place(rng: random.Random, span: int, durations: Sequence[int]) -> list[Meeting]:
    """Meetings of these durations within ``span`` hours: one starts at the first hour, another ends at the last,
    the rest start anywhere in between (``_shift_into_pool`` then moves the block to a random hour of the day).

    Every example of a generation unit has the same span and the same durations, placed by this one function
    whatever its answer: nothing but *where* the meetings lie (so, the overlaps) tells the answers apart.
    """
    random_ = rng.random
    n = len(durations)
    first = int(random_() * n)
    last = (first + 1 + int(random_() * (n - 1))) % n  # another meeting
    meetings = []
    for i, d in enumerate(durations):
        offset = 0 if i == first else span - d if i == last else int(random_() * (span - d + 1))
        meetings.append((DAY_START + offset, DAY_START + offset + d))
    return meetings


def _has_touching(meetings: Sequence[Meeting]) -> bool:
    ends = {end for _, end in meetings}
    return any(start in ends for start, _ in meetings)


def surface_signature(meetings: Sequence[Sequence[int]]) -> tuple[int, int]:
    """``(span, meeting-hours)``: statistics read off a prompt without comparing any two meetings.

    ``span`` is last end minus first start, ``meeting-hours`` the sum of the durations; their ratio is the
    *density*. The generator gives every answer of a cell the same distribution of this pair (see
    ``generate_examples``), so density, span and total hours carry no information about the answer.
    """
    return max(e for _, e in meetings) - min(s for s, _ in meetings), sum(e - s for s, e in meetings)


def _plan(n: int, variant: str, rng: random.Random) -> list[dict[str, Any]]:
    """The generation units, before shuffling; every example of a unit shares its meetings count and signature.

    Rounding: each difficulty gets ``n // 3`` examples and the remainder goes to easy, then medium. YES/NO: each
    difficulty is half YES, half NO, generated as pairs that also share the rooms; when its count is odd the extra
    (unpaired) example alternates YES, NO, YES over the difficulties, so the whole set is off balance by at most one.
    Min-rooms: units are groups holding each answer of the difficulty (``rooms`` range of ``_SPEC``: easy 1-2,
    medium 1-3, hard 2-4) once; a remainder forms one group of randomly chosen answers. Every third unit must
    contain touching meetings that flip the answer if counted as clashing (YES/NO on NO instances: any touching
    pair), and on hard every other unit must fool ``naive_adjacent_peak`` (the rest must not), i.e. ceil(k / 2) of
    k per answer.
    """
    counts = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    plan: list[dict[str, Any]] = []
    extra_yes = True
    for difficulty, count in zip(DIFFICULTIES, counts):
        if variant == "yes_no":
            units: list[tuple] = [("YES", "NO")] * (count // 2)
            if count % 2:
                units.append(("YES",) if extra_yes else ("NO",))
                extra_yes = not extra_yes
        else:
            _, _, min_rooms, max_rooms, _ = _SPEC[difficulty]
            peaks = tuple(range(min_rooms, max_rooms + 1))
            units = [peaks] * (count // len(peaks))
            if count % len(peaks):
                units.append(tuple(sorted(rng.sample(peaks, count % len(peaks)))))
        for j, members in enumerate(units):
            plan.append(
                {
                    "difficulty": difficulty,
                    "members": members,
                    "touch": j % 3 == 1,
                    "naive_wrong": (j % 2 == 0) if difficulty == "hard" else None,
                }
            )
    return plan


def _shift_into_pool(rng: random.Random, meetings: list[Meeting], held_out: bool) -> list[Meeting] | None:
    """``meetings`` moved by a whole number of hours (within the day) into the wanted pool, or None if no shift does.

    Shifting keeps every property the generator selects for (peak, naive run, touching meetings, surface
    signature), so this replaces most of the pool rejection, which would otherwise cost 5x more samples for the
    held-out splits.
    """
    lo = DAY_START - min(s for s, _ in meetings)
    hi = DAY_END - max(e for _, e in meetings)
    offsets = list(range(lo, hi + 1))
    rng.shuffle(offsets)
    for offset in offsets:
        shifted = [(s + offset, e + offset) for s, e in meetings]
        if _is_held_out(shifted) == held_out:
            return shifted
    return None


#: Samples spent on one instance of a unit with a given signature before a new signature is drawn; signatures per
#: unit (the first ``_UNIT_TOUCH_TRIES`` with the touching constraint, the rest without: easy instances come from a
#: small space); rejected repeats (of a meeting set already in the split) before a repeat is accepted. Every unit the
#: plan asks for is satisfiable; ``_UNIT_TRIES`` only turns a future bug into an error instead of a hang.
_MATCH_TRIES = 100
_UNIT_TRIES = 2_000
_UNIT_TOUCH_TRIES = 40
_MAX_REPEATS = 20


def _generate_one(
    rng: random.Random,
    variant: str,
    n: int,
    peak: int,
    rooms: int,
    touch: bool,
    naive_wrong: bool | None,
    held_out: bool,
    seen: set,
    span: int,
    durations: Sequence[int],
) -> list[Meeting] | None:
    """One sorted instance with this peak, span, durations and traps, or None after ``_MATCH_TRIES`` samples."""
    if -(-sum(durations) // span) > peak:
        return None  # more meeting-hours than `peak` rooms can hold over the span: no such instance
    # Touching meetings do not overlap each other, so a touching trap needs a peak below the number of meetings.
    yes = variant == "yes_no" and peak <= rooms
    want_touch = touch and (yes or peak < n)
    repeats = 0
    for _ in range(_MATCH_TRIES):
        meetings = _place(rng, span, durations)
        if max_overlap(meetings) != peak:
            continue
        if naive_wrong is not None:
            wrong = naive_is_wrong(meetings, rooms) if variant == "yes_no" else naive_adjacent_peak(meetings) != peak
            if wrong != naive_wrong:
                continue
        if want_touch:
            if variant == "yes_no" and not yes:
                if not _has_touching(meetings):  # NO: any touching pair
                    continue
            elif closed_overlap(meetings) <= (rooms if yes else peak):  # touching meetings that flip the answer
                continue
        shifted = _shift_into_pool(rng, meetings, held_out)
        if shifted is None:
            continue
        shifted.sort()
        if tuple(shifted) in seen and repeats < _MAX_REPEATS:
            repeats += 1
            continue
        return shifted
    return None


def _generate_unit(rng: random.Random, item: dict[str, Any], variant: str, held_out: bool, seen: set) -> list:
    """``[(meetings, rooms), ...]`` for one plan unit, one instance per member, all with the same signature.

    The signature is drawn from the label-free samplers (``_window_sample``, and ``_nested_sample`` for half of the
    hard units: what a crowded or sparse day looks like), then every member is placed by ``_place`` with that span
    and one shared draw of durations and rejection on its peak and traps; when a member does not turn up, a new signature is
    drawn. Signatures that survive are those every member can reach, and each appears once per member, so within
    every (difficulty, meetings, rooms) cell density, span and total hours are distributed alike for every answer.
    The number of meetings (and, for YES/NO, the rooms) is drawn once per unit, before any rejection.
    """
    difficulty, members = item["difficulty"], item["members"]
    min_n, max_n, min_rooms, max_rooms, cap = _SPEC[difficulty]
    n = rng.randint(min_n, max_n)
    if variant == "yes_no":
        rooms = rng.randint(min_rooms, min(max_rooms, n - cap))
        wanted = [(rooms if label == "YES" else rooms + 1, rooms) for label in members]
    else:
        wanted = [(peak, peak) for peak in members]  # rooms column: the minimum that suffices
    wanted.sort()  # the lowest peak first: it is the rarest at a given signature, so a hopeless one fails early
    lowest = wanted[0][0]
    for attempt in range(_UNIT_TRIES):
        touch = item["touch"] and attempt < _UNIT_TOUCH_TRIES
        sample = _nested_sample(rng, n) if difficulty == "hard" and rng.random() < 0.5 else _window_sample(rng, n)
        signature = surface_signature(sample)
        durations = _random_durations(rng, n, signature)
        if durations is None or -(-signature[1] // signature[0]) > lowest:
            continue
        out = []
        for peak, rooms in wanted:
            meetings = _generate_one(
                rng, variant, n, peak, rooms, touch, item["naive_wrong"], held_out, seen, signature[0], durations
            )  # fmt: skip
            if meetings is None:
                break
            out.append((meetings, rooms))
        else:
            seen.update(tuple(meetings) for meetings, _ in out)
            return out
    raise RuntimeError(f"scheduling generator found no instances for {item} with {n} meetings")


def generate_examples(n: int, seed: int = 0, split: str = "train", variant: str = "yes_no") -> list[Example]:
    """``n`` scheduling examples, deterministic per ``(seed, split)``; see ``SchedulingTask.generate``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown scheduling variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    rng = random.Random(_stable_int("rrr.scheduling", seed, split, variant))
    held_out = split != "train"
    plan = _plan(n, variant, rng)
    rng.shuffle(plan)
    seen: set = set()
    drawn: list[tuple[str, list[Meeting], int]] = []
    for item in plan:
        drawn.extend(
            (item["difficulty"], meetings, rooms)
            for meetings, rooms in _generate_unit(rng, item, variant, held_out, seen)
        )
    rng.shuffle(drawn)  # the members of a unit are not neighbours
    rows: list[Example] = []
    for i, (difficulty, meetings, rooms) in enumerate(drawn):
        peak = max_overlap(meetings)
        rows.append(
            {
                "id": f"scheduling-{split}-{seed}-{i:06d}",
                "meetings": [[s, e] for s, e in meetings],
                "rooms": rooms,
                "difficulty": difficulty,
                "answer": str(peak) if variant == "min_rooms" else ("YES" if peak <= rooms else "NO"),
                "max_overlap": peak,
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Task
# ----------------------------------------------------------------------------------------------------------------
_RULES = (
    "A room holds one meeting at a time. Meetings that only touch (one ends at 10 and the next starts at 10) do not "
    "clash. The peak is the largest number of meetings running at the same time."
)


class SchedulingTask(Task):
    """Meeting scheduling (see the module docstring).

    Options: ``strict`` (bool, default False): also require the stated ``peak: N`` to equal the true maximum
    overlap — use it for training, so that RRR cannot win by flipping a binary answer. ``variant``: ``"yes_no"``
    (default) or ``"min_rooms"`` (the same as ``MinRoomsSchedulingTask``).
    """

    name = "scheduling"
    required_columns = ("meetings", "rooms")
    default_source = GENERATED
    difficulty_column = "difficulty"
    reflection_instruction = (
        "Your answer was wrong. Briefly say which overlap you missed or miscounted (which meetings run at the same "
        "time, and at what hour) and how to count the peak correctly. Do not state the final answer."
    )
    retry_instruction = (
        "Using your reflection, try again. State the peak as peak: N, then give the final answer as "
        "<answer>YES</answer> or <answer>NO</answer>."
    )

    #: Linguistic RL's 4-step starting strategy (``docs/background.md``).
    initial_strategy = (
        "1. Find which meetings overlap.\n"
        "2. Count the maximum number of meetings happening at the same time.\n"
        "3. If that maximum is at most the number of rooms, answer YES; otherwise answer NO.\n"
        "4. Meetings that only touch (one ends when the next starts) do not overlap."
    )
    oracle_procedure = (
        "1. For each distinct start time t, list the meetings running at t: those with start <= t < end. A meeting "
        "that ends at t has already left, so meetings that only touch do not clash.\n"
        "2. The peak is the largest of these counts (the peak is always reached at some start time, so checking the "
        "start times is enough). State it as peak: N.\n"
        "3. Answer YES if the peak is at most the number of rooms, otherwise NO."
    )
    bench_configs: ClassVar[dict[str, dict[str, Any]] | None] = {
        "scheduling": {},
        "scheduling_strict": {"strict": True},
    }

    _OPTIONS = ("strict", "variant")

    def __init__(self, strict: bool = False, variant: str = "yes_no", **unknown: Any) -> None:
        if unknown:
            raise ValueError(
                f"unknown option(s) {sorted(unknown)} for task {self.name!r}; valid options: {', '.join(self._OPTIONS)}"
            )
        if not isinstance(strict, bool):
            raise ValueError(f"strict must be True or False, got {strict!r}")
        if variant not in VARIANTS:
            raise ValueError(f"unknown scheduling variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
        self.strict = strict
        self.variant = variant
        if variant == "min_rooms" and type(self) is SchedulingTask:
            # SchedulingTask(variant="min_rooms") behaves exactly like MinRoomsSchedulingTask, name included, so
            # results and failure pools are labelled with the task that was actually run.
            self.name = MinRoomsSchedulingTask.name
            self.required_columns = MinRoomsSchedulingTask.required_columns
            self.retry_instruction = MinRoomsSchedulingTask.retry_instruction
            self.initial_strategy = MinRoomsSchedulingTask.initial_strategy
            self.oracle_procedure = MinRoomsSchedulingTask.oracle_procedure

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, strict={self.strict}, variant={self.variant!r})"

    # ------------------------------------------------------------------------------------------------------------
    # Prompts
    # ------------------------------------------------------------------------------------------------------------
    def attempt_prompt(self, example: Example) -> str:
        meetings = example.get("meetings") or []
        try:
            listed = format_meetings(meetings)
        except (TypeError, ValueError):
            listed = str(meetings)
        if self.variant == "min_rooms":
            return (
                f"Meetings (start-end, in whole hours): {listed}\n\n"
                f"What is the minimum number of rooms needed to hold all the meetings? {_RULES} The minimum number "
                "of rooms equals the peak.\n\n"
                "State the peak as peak: N, then give the minimum number of rooms as <answer>N</answer>."
            )
        return (
            f"Meetings (start-end, in whole hours): {listed}\n"
            f"Rooms available: {example.get('rooms')}\n\n"
            f"Can all the meetings be held in the rooms available? {_RULES} All meetings fit exactly when the peak "
            "is at most the number of rooms.\n\n"
            "State the peak as peak: N, then give the final answer as <answer>YES</answer> or <answer>NO</answer>."
        )

    # ------------------------------------------------------------------------------------------------------------
    # Verification
    # ------------------------------------------------------------------------------------------------------------
    def _ground_truth(self, example: Any) -> tuple[int, int | None] | str:
        """``(max_overlap, rooms)`` recomputed from the example (rooms None for min-rooms), or an error message."""
        if not isinstance(example, dict):
            return f"example must be a dict, got {type(example).__name__}"
        meetings = parse_meetings(example.get("meetings"))
        if isinstance(meetings, str):
            return meetings
        if self.variant == "min_rooms":
            return max_overlap(meetings), None
        rooms = parse_rooms(example.get("rooms"))
        if isinstance(rooms, str):
            return rooms
        return max_overlap(meetings), rooms

    def row_problem(self, example: Example) -> str | None:
        """A row whose ``meetings`` (and, YES/NO, ``rooms``) the verifier cannot read."""
        truth = self._ground_truth(example)
        return truth if isinstance(truth, str) else None

    def verify(self, example: Example, completion: str) -> Verdict:
        """Judge the last ``<answer>`` (and, in strict mode, the last ``peak: N``) against the recomputed peak.

        YES/NO: the answer, stripped of surrounding whitespace and punctuation, must be ``YES`` or ``NO`` in any case
        ("YES or NO", "MAYBE" and empty answers fail) and equal ``max_overlap <= rooms``. Min-rooms: it must be a
        plain integer equal to ``max_overlap``. Strict: the last ``PEAK_PATTERN`` match in the last
        ``PEAK_TAIL_CHARS`` characters must equal ``max_overlap`` too. Never raises.
        """
        try:
            return self._verify(example, completion)
        except Exception as exc:  # pragma: no cover - the contract is "never raise"; make a bug visible, not fatal
            return Verdict(False, f"verifier error: {type(exc).__name__}: {_short(str(exc))}", error=type(exc).__name__)

    def _verify(self, example: Example, completion: str) -> Verdict:
        truth = self._ground_truth(example)
        if isinstance(truth, str):
            return Verdict(False, f"malformed example: {truth}")
        peak, rooms = truth
        if not isinstance(completion, str):
            return Verdict(False, f"completion is not a string ({type(completion).__name__})")
        answer = last_answer(completion)
        if answer is None:
            return Verdict(False, "no <answer> tag")
        if len(answer) > MAX_ANSWER_CHARS:
            return Verdict(False, f"answer too long ({len(answer)} characters)")
        answer = _normalize(answer, number=self.variant == "min_rooms")
        if not answer:
            return Verdict(False, "empty <answer>")

        problems: list[str] = []
        if self.variant == "min_rooms":
            value = _parse_number(answer)
            if value is None:
                return Verdict(False, f"answer {_short(answer, 40)} is not a number of rooms")
            if value != peak:
                problems.append(f"answered {value} rooms, minimum is {peak}")
        else:
            # ASCII only: "yeſ".upper() is "YES" (U+017F long s), and no model means that as an answer
            label = answer.upper() if answer.isascii() else answer
            if label not in ("YES", "NO"):
                return Verdict(False, f"answer {_short(answer, 40)} is not YES or NO")
            expected = "YES" if peak <= rooms else "NO"
            if label != expected:
                problems.append(f"answered {label}, expected {expected} (peak {peak}, {rooms} rooms)")
        if self.strict:
            digits = stated_peak(completion)
            if digits is None:
                problems.append("no 'peak: N' stated (strict mode)")
            else:
                value = _parse_number(digits)
                if value != peak:
                    shown = digits if len(digits) <= 12 else digits[:9] + "..."
                    problems.append(f"peak {shown} stated, true peak {peak}")
        if problems:
            return Verdict(False, "; ".join(problems))
        if self.variant == "min_rooms":
            return Verdict(True, f"{peak} rooms")
        return Verdict(True, f"{answer.upper()} (peak {peak}, {rooms} rooms)")

    def leaks_answer(self, example: Example, reflection: str) -> bool:
        """Does ``reflection`` state the correct answer instead of a lesson? Never raises.

        YES/NO (plain and strict): True when the reflection contains an ``<answer>`` tag whose content is the correct
        label, or states the correct label as *the answer*: "answer: NO", "the (correct/final) answer is/should be
        NO", "verdict = YES", "should be NO", "should have said YES", "must answer NO". A lower-case "no"/"yes" counts
        only when no word follows it on the line, so prose ("there should be no overlap") is not a leak; upper-case
        YES/NO always counts. Saying the correct peak ("the peak is 3") is **not** a leak: naming the miscounted
        overlap is exactly the lesson a reflection should carry, and in strict mode the retry must still restate it.
        Past tense ("my answer was NO") is not matched: it describes the failed attempt.

        Min-rooms: True when it states the correct number as the answer: an ``<answer>`` tag, "the answer is 3",
        "we need 3 rooms", "3 rooms are required", "the minimum is 3", or ``peak: 3`` (here the peak *is* the
        answer). Numbers written as words are not detected.

        A reflection is a few sentences; one longer than ``2 * LEAK_SCAN_CHARS`` characters is scanned at its head
        and tail only, which bounds the cost on hostile input (a 10 MB reflection takes milliseconds).
        """
        try:
            truth = self._ground_truth(example)
            if isinstance(truth, str) or not isinstance(reflection, str):
                return False
            peak, rooms = truth
            if len(reflection) > 2 * LEAK_SCAN_CHARS:
                reflection = reflection[:LEAK_SCAN_CHARS] + "\n\n" + reflection[-LEAK_SCAN_CHARS:]
            if self.variant == "min_rooms":
                return self._leaks_number(reflection, peak)
            return self._leaks_label(reflection, "YES" if peak <= rooms else "NO")
        except Exception:  # pragma: no cover - never raise
            return False

    def _leaks_label(self, text: str, label: str) -> bool:
        if any(_normalize(tag).upper() == label for tag in iter_answer_tags(text)):
            return True
        for pattern in _LEAK_LABEL_PATTERNS:
            for match in pattern.finditer(text):
                word = match.group(1)
                if word.upper() != label:
                    continue
                if word.isupper():
                    return True
                following = text[match.end() : match.end() + 40].lstrip(" \t")
                if not following or not (following[0].isalnum()):
                    return True
        return False

    def _leaks_number(self, text: str, peak: int) -> bool:
        if any(_parse_number(_normalize(tag, number=True)) == peak for tag in iter_answer_tags(text)):
            return True
        return any(
            _parse_number(match.group(1)) == peak
            for pattern in _LEAK_NUMBER_PATTERNS
            for match in pattern.finditer(text)
        )

    def reference_answer(self, example: Example) -> str | None:
        """``"peak: 3\\n<answer>NO</answer>"`` (or ``<answer>3</answer>`` for min-rooms): passes strict mode too."""
        truth = self._ground_truth(example)
        if isinstance(truth, str):
            return None
        peak, rooms = truth
        if self.variant == "min_rooms":
            return f"peak: {peak}\n<answer>{peak}</answer>"
        return f"peak: {peak}\n<answer>{'YES' if peak <= rooms else 'NO'}</answer>"

    def worked_solution(self, example: Example) -> str | None:
        """The sweep written out: the meetings running at each start time, the peak, then the answer.

        This is the oracle teacher's curriculum (``rrr.curriculum``): a student fine-tuned on it learns the *procedure*
        (list who is running at each start, count, compare with the rooms), not just a label — a label-only
        curriculum is what let the published Linguistic RL students sit below the always-YES baseline. The peak of
        half-open meetings is always reached at some start time, so checking the start times is exhaustive. The text
        states ``peak: N`` last, so it passes strict mode. Instances with more than ``_WORKED_MAX_LINES`` distinct
        start times get the bare reference answer (a worked sweep that long would not be a useful lesson).
        """
        truth = self._ground_truth(example)
        if isinstance(truth, str):
            return None
        peak, rooms = truth
        meetings = parse_meetings(example.get("meetings"))
        if isinstance(meetings, str):  # pragma: no cover - _ground_truth validated them
            return None
        starts = sorted({start for start, _ in meetings})
        if len(starts) > _WORKED_MAX_LINES:
            return self.reference_answer(example)
        lines = ["Meetings running at each start time (a meeting that ends when another starts does not clash):"]
        for t in starts:
            active = [m for m in sorted(meetings) if m[0] <= t < m[1]]
            lines.append(f"at {t}: {format_meetings(active)} = {len(active)}")
        if self.variant == "min_rooms":
            lines.append(f"peak: {peak}, so {peak} rooms are needed.")
            lines.append(f"<answer>{peak}</answer>")
        elif peak <= rooms:
            lines.append(f"peak: {peak} <= {rooms} rooms, so all meetings fit.")
            lines.append("<answer>YES</answer>")
        else:
            lines.append(f"peak: {peak} > {rooms} rooms, so they do not all fit.")
            lines.append("<answer>NO</answer>")
        return "\n".join(lines)

    def majority_baseline(self, dataset_or_examples: Iterable[Example]) -> float:
        """Accuracy of always giving this variant's most common answer (see the module-level function)."""
        return majority_baseline(dataset_or_examples, variant=self.variant)

    def surface_baseline(self, examples: Iterable[Example]) -> float:
        """Accuracy of answering from meeting count, rooms and density alone (see the module-level function)."""
        return surface_baseline(examples, variant=self.variant)

    # ------------------------------------------------------------------------------------------------------------
    # Teaching (the oracle teacher) and benchmark fixtures
    # ------------------------------------------------------------------------------------------------------------
    def oracle_reflections(self, example: Example, attempt: str, verdict: Verdict) -> list[str]:
        """What the attempt's stated peak got wrong, a witness (the hour of the peak and the meetings running
        then), and the sweep rule; then the same without the witness (which may state the peak)."""
        meetings = parse_meetings(example.get("meetings"))
        if isinstance(meetings, str):
            return []
        peak = max_overlap(meetings)
        starts = sorted({s for s, _ in meetings})
        best_t, best = starts[0], []
        for t in starts:
            active = [m for m in sorted(meetings) if m[0] <= t < m[1]]
            if len(active) > len(best):
                best_t, best = t, active
        digits = stated_peak(attempt) if isinstance(attempt, str) else None
        stated = int(digits) if digits is not None and len(digits) <= 6 else None
        min_rooms = self.variant == "min_rooms"
        if stated is None:
            mistake = "I answered without counting the peak explicitly."
        elif stated > peak:
            mistake = (
                f"I counted a peak of {stated}, but no time has that many meetings running at once: meetings that "
                "only touch (one ends when the next starts) do not clash, and two meetings that both overlap a third "
                "need not overlap each other."
            )
        elif stated < peak:
            mistake = f"I counted a peak of {stated}, but I missed meetings that run at the same time."
        else:
            mistake = (
                "My count of the peak was right, but I compared it with the rooms the wrong way: all meetings fit "
                "exactly when the peak is at most the number of rooms."
            )
        if len(best) == 1 and not min_rooms:
            witness = (
                f"At most one meeting runs at any time (e.g. only {format_meetings(best)} at {best_t}), so the peak "
                "is 1."
            )
        elif min_rooms:
            witness = f"At {best_t}, the meetings {format_meetings(best)} are all running at once."
        else:
            witness = f"At {best_t}, the meetings {format_meetings(best)} are all running, so the peak is {peak}."
        if min_rooms:
            rule = "Next time I will list the meetings running at each start time and answer with the largest count."
        else:
            rule = (
                "Next time I will list the meetings running at each start time, take the largest count as the peak, "
                "and compare it with the number of rooms."
            )
        return [f"{mistake} {witness} {rule}", f"{mistake} {rule}"]

    def plausible_mistakes(self, example: Example) -> list[str]:
        """The mistakes the generator is designed to punish: touching meetings counted as clashing
        (``closed_overlap``), a chain of neighbours counted as the peak (``naive_adjacent_peak``), then an
        off-by-one peak, each carried through to the answer."""
        meetings = parse_meetings(example.get("meetings"))
        if isinstance(meetings, str):
            return []
        peak = max_overlap(meetings)
        wrong = [closed_overlap(meetings), naive_adjacent_peak(meetings), peak + 1, peak - 1]
        out = []
        for p in wrong:
            if p == peak or p < 1:
                continue
            if self.variant == "min_rooms":
                out.append(f"peak: {p}, so {p} rooms are needed.\n<answer>{p}</answer>")
                continue
            rooms = parse_rooms(example.get("rooms"))
            if isinstance(rooms, str):
                return []
            if p <= rooms:
                out.append(f"peak: {p} <= {rooms} rooms, so all meetings fit.\n<answer>YES</answer>")
            else:
                out.append(f"peak: {p} > {rooms} rooms, so they do not all fit.\n<answer>NO</answer>")
        return out

    def bench_reasoning(self, example: Example) -> tuple[str, ...]:
        meetings = ", ".join(f"{s}-{e}" for s, e in example["meetings"])
        return (
            f"Meetings: {meetings}. I sort them by start and sweep through the day, adding one at each start and "
            "removing one at each end; one ending at 10 frees its room for one starting at 10.",
            "Let me count how many meetings run at the same time. Going hour by hour from the earliest start, I "
            "keep a running count of meetings in progress; its maximum is the number of rooms needed.",
            "I check every moment where a meeting starts, since the overlap can only grow there. At each start I "
            "count the meetings still running, remembering that touching meetings do not clash.",
        )

    def bench_wrong_answers(self, example: Example, reference: str) -> list[str]:
        """A wrong peak carried into the answer, or (YES/NO) the label flipped, the mistake RRR is prone to."""
        peak = int(reference.split("\n")[0].split(":")[1])
        if self.variant == "min_rooms":
            return [
                f"peak: {peak + 1}\n<answer>{peak + 1}</answer>",
                f"peak: {peak}\n<answer>{peak + 1}</answer>",
                f"peak: {max(peak - 1, 0)}\n<answer>{max(peak - 1, 0)}</answer>",
            ]
        label = last_answer(reference)
        flipped = "NO" if label == "YES" else "YES"
        return [
            f"peak: {peak}\n<answer>{flipped}</answer>",  # the flip RRR is prone to
            f"peak: {peak + 1}\n<answer>{label}</answer>",  # right label, wrong peak: fails in strict mode only
            f"peak: {peak + 1}\n<answer>{flipped}</answer>",
        ]

    def bench_lesson(self, example: Example, reference: str) -> str:
        return (
            "I counted two meetings that only touch as overlapping, which inflated my count. Next time I will free "
            "a room the moment a meeting ends, before starting the next one at the same hour."
        )

    def bench_leak(self, example: Example, reference: str) -> str:
        content = last_answer(reference) or ""
        if self.variant == "min_rooms":
            return f"Counting again, we need {content} rooms for these meetings."
        return f"Counting again, the correct answer is {content}."

    # ------------------------------------------------------------------------------------------------------------
    # Data
    # ------------------------------------------------------------------------------------------------------------
    def generate(self, n: int, seed: int = 0, split: str = "train") -> list[Example]:
        """``n`` examples, deterministic per ``(seed, split)`` (a SHA-256 of both seeds the RNG, never ``hash()``).

        Columns: ``id``, ``meetings`` (``[[start, end], ...]`` sorted by start, hours 8..20, durations 1..4),
        ``rooms``, ``difficulty`` (easy: 3 meetings, medium: 4–5, hard: 6–8; equal thirds, the remainder going to
        easy then medium), ``answer`` (``"YES"``/``"NO"``, or the number of rooms as a string for min-rooms) and
        ``max_overlap``. YES/NO: exactly half of each difficulty is YES (an odd count's extra example alternates YES,
        NO, ...); rooms is ``max_overlap`` (YES) or ``max_overlap - 1`` (NO). Min-rooms: each answer of a difficulty
        (easy 1–2 rooms, medium 1–3, hard 2–4) equally often, ``rooms`` = the answer. At least half of the hard
        examples of each answer fool ``naive_adjacent_peak``; density and the durations carry no information about
        the answer (see the module docstring). ``split="train"`` draws from the training pool, any other split from the
        disjoint held-out pool. Within a split, repeats are avoided but allowed when the space is too small.
        """
        return generate_examples(n, seed=seed, split=split, variant=self.variant)

    def prepare(self, ds):
        """Decode ``meetings`` stored as a JSON string (CSV files) into a list of ``[start, end]`` pairs."""
        feature = ds.features.get("meetings") if hasattr(ds, "features") else None
        if getattr(feature, "dtype", None) not in ("string", "large_string"):
            return ds

        def decode(row: dict, index: int) -> dict:
            try:
                return {"meetings": json.loads(row["meetings"])}
            except (TypeError, ValueError) as exc:
                if self.on_bad_row == "skip":  # left for row_problem to count
                    return {"meetings": None}
                raise TaskDataError(f"row {index}: meetings {_short(row['meetings'])} is not JSON: {exc}") from None

        return ds.map(decode, with_indices=True)


class MinRoomsSchedulingTask(SchedulingTask):
    """Min-rooms variant: answer the minimum number of rooms (``= max_overlap``) as ``<answer>N</answer>``.

    A numeric answer cannot be found by flipping a failed binary answer, so this variant is safe to train on even
    without ``strict``. Only ``meetings`` is required (``rooms``, if present, is ignored).
    """

    name = "scheduling_min_rooms"
    required_columns = ("meetings",)
    initial_strategy = (
        "1. Find which meetings overlap.\n"
        "2. Count the maximum number of meetings happening at the same time.\n"
        "3. That maximum is the minimum number of rooms.\n"
        "4. Meetings that only touch (one ends when the next starts) do not overlap."
    )
    oracle_procedure = (
        "1. For each distinct start time t, list the meetings running at t: those with start <= t < end. A meeting "
        "that ends at t has already left, so meetings that only touch do not clash.\n"
        "2. The peak is the largest of these counts (always reached at some start time). State it as peak: N.\n"
        "3. The minimum number of rooms equals the peak."
    )
    bench_configs: ClassVar[dict[str, dict[str, Any]] | None] = {"scheduling_min_rooms": {}}
    retry_instruction = (
        "Using your reflection, try again. State the peak as peak: N, then give the minimum number of rooms as "
        "<answer>N</answer>."
    )

    def __init__(self, strict: bool = False, variant: str = "min_rooms", **unknown: Any) -> None:
        if variant != "min_rooms":
            raise ValueError(
                f"task {self.name!r} has variant fixed to 'min_rooms' (got {variant!r}); "
                "use get_task('scheduling', variant=...) for the others"
            )
        super().__init__(strict=strict, variant=variant, **unknown)
