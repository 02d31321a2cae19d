"""``reverse``: write a short word backwards — the worked example of a task (``docs/tasks.md``).

Small on purpose: it shows every hook a task declares (data, prompts, verification, answer leakage, the oracle
teacher's lessons and mistakes, strategies, benchmark rows) in one module of a hundred-odd lines, and the test suite
runs it end to end (``tests/test_reverse_task.py``). Registered as ``get_task("reverse")`` by one line in
``rrr.tasks.registry``.

* prompt: ``Reverse the word: stone``; answer: ``<answer>enots</answer>``;
* verification: the last ``<answer>`` equals the word backwards, ignoring case and surrounding spaces;
* leakage: a reflection that contains the reversed word as a word hands the retry its answer;
* generator: seeded, words of 3 to 7 lowercase letters, never a palindrome (its reflection could not mention the
  word without stating the answer), ``train`` and every other split drawn from disjoint word pools (by a hash of
  the word) so that no test word is ever trained on.
"""

from __future__ import annotations

import hashlib
import random
import string
from typing import Any, ClassVar

from rrr.tasks.base import GENERATED, Example, Task, Verdict
from rrr.tasks.parsing import last_answer

#: Longest word the generator writes, and the longest answer the verifier compares (longer is wrong, not slow).
MAX_LETTERS = 7
_MAX_ANSWER_CHARS = 64


def _held_out(word: str) -> bool:
    """Whether ``word`` belongs to the held-out pool (a fifth of all words, by a stable hash)."""
    return hashlib.sha256(word.encode()).digest()[0] % 5 == 0


def _words(text: str) -> list[str]:
    """Lower-cased runs of ASCII letters of ``text`` (one pass, no regular expression)."""
    kept = "".join(c if c in string.ascii_letters else " " for c in text.lower())
    return kept.split()


class ReverseTask(Task):
    """Write a word backwards. No options."""

    name: ClassVar[str] = "reverse"
    required_columns: ClassVar[tuple[str, ...]] = ("word",)
    default_source: ClassVar[str] = GENERATED
    reflection_instruction: ClassVar[str] = (
        "Your answer was wrong. Say briefly which letters you put in the wrong place and how to check the order "
        "next time. Do not write the reversed word."
    )
    retry_instruction: ClassVar[str] = "Using your reflection, try again. Give the reversed word in <answer></answer>."
    initial_strategy: ClassVar[str | None] = "1. Read the word.\n2. Write it backwards."
    oracle_procedure: ClassVar[str | None] = (
        "1. Spell the word letter by letter.\n"
        "2. Write the letters from the last to the first.\n"
        "3. Check that the answer has as many letters as the word and that its first letter is the word's last."
    )

    # -- prompts and verification --------------------------------------------------------------------------------
    def attempt_prompt(self, example: Example) -> str:
        return f"Reverse the word: {example.get('word')}\nGive the reversed word in <answer></answer>."

    def verify(self, example: Example, completion: str) -> Verdict:
        word = example.get("word")
        if not isinstance(word, str) or not word:
            return Verdict(False, "example has no word")
        answer = last_answer(completion) if isinstance(completion, str) else None
        if answer is None:
            return Verdict(False, "no <answer> tag")
        answer = answer.strip().lower()
        if len(answer) > _MAX_ANSWER_CHARS:
            return Verdict(False, f"answer is {len(answer)} characters long, the word {len(word)}")
        if answer == word[::-1].lower():
            return Verdict(True, "correct")
        if answer == word.lower():
            return Verdict(False, "the word was not reversed")
        return Verdict(False, f"{len(answer)} letters in a different order, expected {len(word)}")

    def leaks_answer(self, example: Example, reflection: str) -> bool:
        word = example.get("word")
        if not isinstance(word, str) or not isinstance(reflection, str):
            return False
        return word[::-1].lower() in _words(reflection) or self.verify(example, reflection).passed

    def reference_answer(self, example: Example) -> str | None:
        word = example.get("word")
        return f"<answer>{word[::-1]}</answer>" if isinstance(word, str) and word else None

    def worked_solution(self, example: Example) -> str | None:
        word = example.get("word")
        if not isinstance(word, str) or not word:
            return None
        return f"Letters from last to first: {' '.join(reversed(word))}.\n<answer>{word[::-1]}</answer>"

    # -- teaching -------------------------------------------------------------------------------------------------
    def oracle_reflections(self, example: Example, attempt: str, verdict: Verdict) -> list[str]:
        word = str(example.get("word") or "")
        return [
            f"My answer was wrong: {verdict.reason}. The word has {len(word)} letters and the answer must start with "
            f"its last letter, {word[-1:]!r}. Next time I will spell it out and write the letters from last to first."
        ]

    def plausible_mistakes(self, example: Example) -> list[str]:
        """The word unchanged, the reversed word with its first two letters swapped, then with its last dropped."""
        word = str(example.get("word") or "")
        if len(word) < 2:
            return []
        backwards = word[::-1]
        return [f"<answer>{w}</answer>" for w in (word, backwards[1] + backwards[0] + backwards[2:], backwards[:-1])]

    # -- data -----------------------------------------------------------------------------------------------------
    def generate(self, n: int, seed: int = 0, split: str = "train") -> list[Example]:
        """``n`` distinct words where possible, deterministic per ``(seed, split)``; ``train`` and held-out words
        never overlap."""
        rng = random.Random(f"rrr.reverse/{seed}/{split}")
        held_out = split != "train"
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        while len(rows) < n:
            word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, MAX_LETTERS)))
            if word == word[::-1] or _held_out(word) != held_out or (word in seen and len(seen) < 10 * n):
                continue
            seen.add(word)
            rows.append({"id": f"reverse-{split}-{seed}-{len(rows)}", "word": word})
        return rows
