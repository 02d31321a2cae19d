"""Tag finding never mixes indices of a case-mapped string with the original.

``"İ".lower()`` is two code points long: with indices taken from ``text.lower()`` every later slice of ``text`` was
shifted, so ``İ<ANSWER>46 * 10 - 51</ANSWER>`` was read as ``6 * 10 - 51<``. The tests below put every character
whose lower- or upper-case mapping changes its length before, between and inside tags.
"""

from __future__ import annotations

import pytest

from rrr.tasks import get_task, last_answer
from rrr.tasks.parsing import iter_answer_tags, same_length_lower

LENGTH_CHANGING = [c for c in map(chr, range(0x110000)) if len(c.lower()) != 1 or len(c.upper()) != 1]
LOWER_CHANGING = [c for c in LENGTH_CHANGING if len(c.lower()) != 1]


def test_the_characters_exist():
    assert "İ" in LOWER_CHANGING and "ß" in LENGTH_CHANGING and "ﬁ" in LENGTH_CHANGING
    assert len(LENGTH_CHANGING) > 100


def test_same_length_lower_keeps_every_index():
    text = "".join(LENGTH_CHANGING) + "<ANSWER>x</ANSWER>" + "İ" * 3
    lowered = same_length_lower(text)
    assert len(lowered) == len(text)
    assert lowered.find("<answer>") == text.find("<ANSWER>")
    assert all(lowered[i] == text[i].lower() for i, c in enumerate(text) if len(c.lower()) == 1)


@pytest.mark.parametrize("case", ["upper", "mixed", "lower-open"])
def test_last_answer_with_every_length_changing_character(case):
    open_tag, close_tag = {
        "upper": ("<ANSWER>", "</ANSWER>"),
        "mixed": ("<Answer>", "</ANSWER>"),
        "lower-open": ("<answer>", "</ANSWER>"),
    }[case]
    for c in LENGTH_CHANGING:
        assert last_answer(f"{c}{open_tag}46 * 10 - 51{close_tag}") == "46 * 10 - 51", repr(c)
        assert last_answer(f"{c * 5} {open_tag} {c}1{c} {close_tag}{c * 5}") == f"{c}1{c}", repr(c)
        # a wrong answer in tags must never be read as a correct expression elsewhere in the text
        text = f"{c * 3}{open_tag}2{close_tag} 46 * 10 - 51"
        assert last_answer(text) == "2", repr(c)
    assert last_answer("<answer>a<ANSWER>b</ANSWER>") == "b"  # the last opening tag before the closing one


def test_iter_answer_tags_with_every_length_changing_character():
    for c in LENGTH_CHANGING:
        text = f"{c}<ANSWER>{c}2</ANSWER>{c * 2}<answer>3</Answer>{c}"
        assert list(iter_answer_tags(text)) == [f"{c}2", "3"], repr(c)


def test_verifiers_read_the_right_answer_after_dotted_capital_i():
    countdown = get_task("countdown")
    example = {"nums": [46, 10, 51], "target": 409}
    assert countdown.verify(example, "İ<ANSWER>46 * 10 - 51</ANSWER>").passed
    assert not countdown.verify(example, "İİİ<ANSWER>4</ANSWER>46 * 10 - 51").passed
    scheduling = get_task("scheduling_min_rooms")
    meetings = {"meetings": [[9, 11], [10, 12], [11, 13]]}
    assert scheduling.verify(meetings, "İ" * 7 + "<ANSWER>2</ANSWER>").passed
    # the leak check finds the tag content exactly (it used to slice 1 to the right per İ)
    assert scheduling.leaks_answer(meetings, "İİ<ANSWER>2</ANSWER>")
    assert not scheduling.leaks_answer(meetings, "İİ<ANSWER>3</ANSWER>, 2 is what I wrote before")
    yes_no = get_task("scheduling")
    example = {"meetings": [[9, 11], [11, 13]], "rooms": 1}  # touching: YES
    assert yes_no.verify(example, "İ<ANSWER>YES</ANSWER>").passed
    assert not yes_no.verify(example, "<answer>yeſ</answer>").passed  # "ſ".upper() == "S": not an ASCII YES
