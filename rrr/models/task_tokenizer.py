"""A compact byte-level BPE tokenizer trained offline, in a second, on a task's own text.

Why: a tiny model learns a task far faster when a sequence is ~1 token per word than when it is one token per
character (``rrr.models.tiny``'s tokenizer makes scheduling prompts ~5x longer). A tokenizer trained on the prompts,
answers and instructions the task itself generates gets there without any download, and stays:

* **lossless** — byte-level: any text (model output included) encodes and decodes back to itself; there is no
  ``<unk>``, so a T=1 sample that wanders off the task still round-trips when the next phase re-renders it;
* **general** — nothing here knows about scheduling: pass any texts (``task_corpus`` renders any ``Task``'s
  conversations). The pre-tokenizer keeps a number together with a trailing hyphen (``" 9-"``, ``"11"``) so hour
  ranges like ``9-11`` are two tokens whose pieces carry meaning, and words with their leading space (``" rooms"``);
* **chat-ready** — ChatML special tokens and the project's chat template (``rrr.models.tiny.CHAT_TEMPLATE``, with
  ``{% generation %}`` markers), EOS ``<|im_end|>``, pad ``<|endoftext|>``, left padding.

Save it with ``save_task_tokenizer`` and load it with ``rrr.models.load_tokenizer`` (it is a plain
``PreTrainedTokenizerFast``; ``AutoTokenizer`` would pick the model's tokenizer class and replace the pre-tokenizer).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

from rrr.models.tiny import MARKER, SPECIAL_TOKENS, chat_tokenizer

#: Pieces the BPE may merge within (never across): a number with an optional trailing hyphen, a word, a run of
#: punctuation (each with an optional leading space), or whitespace. Every character belongs to exactly one piece,
#: so splitting loses nothing.
PRE_TOKENIZE_PATTERN = r" ?\d+-?| ?[A-Za-z_]+| ?[^\sA-Za-z\d]+|\s+(?!\S)|\s+"
#: Strings that are always one token (normal, not special: they survive ``skip_special_tokens``).
WORD_TOKENS = ["<answer>", "</answer>", "user\n", "assistant\n", "system\n"]
#: Written beside the tokenizer files: how it was built (``load_tokenizer`` also recognises the directory by it).
TOKENIZER_INFO = "rrr_task_tokenizer.json"


def task_corpus(task, examples: Iterable[dict], extra_texts: Sequence[str] = ()) -> list[str]:
    """Texts a tokenizer for ``task`` should compress: prompts, instructions, worked solutions and ``extra_texts``.

    Uses only the public ``Task`` interface (``attempt_prompt``, the two instructions, ``worked_solution`` /
    ``reference_answer``), so it works for any task with a generator or a dataset.
    """
    texts = list(extra_texts)
    for example in examples:
        # the instructions occur once per episode in real transcripts: weight them the same way
        texts += [task.reflection_instruction, task.retry_instruction, task.attempt_prompt(example)]
        if task.system_prompt:
            texts.append(task.system_prompt)
        solution = task.worked_solution(example) or task.reference_answer(example)
        if solution:
            texts.append(solution)
    return texts


def train_task_tokenizer(texts: Iterable[str], vocab_size: int = 512, min_frequency: int = 2):
    """Train a byte-level BPE ``PreTrainedTokenizerFast`` on ``texts`` (see the module docstring).

    ``vocab_size`` counts the 256 byte symbols, the merges and the special/word tokens; a task with a small
    vocabulary stops merging early (every frequent word already being one token), so the result may be smaller.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZE_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    backend.add_tokens(WORD_TOKENS)
    return chat_tokenizer(backend)


def save_task_tokenizer(tokenizer, output_dir: str, info: dict | None = None) -> str:
    """Save ``tokenizer`` so that ``rrr.models.load_tokenizer(output_dir)`` loads it unchanged.

    Writes the marker file ``load_tokenizer`` recognises plain fast tokenizers by (``rrr.models.tiny.MARKER``) and
    ``rrr_task_tokenizer.json`` with ``info`` (how it was trained). Written in place: call it on a directory that is
    itself made atomically (``rrr.utils.io.atomic_directory``) when completeness matters.
    """
    os.makedirs(output_dir, exist_ok=True)
    tokenizer.save_pretrained(output_dir)
    meta = {"kind": "task_bpe", "vocab_size": len(tokenizer), **(info or {})}
    for name in (MARKER, TOKENIZER_INFO):
        with open(os.path.join(output_dir, name), "w") as f:
            json.dump(meta, f, indent=2)
    return output_dir
