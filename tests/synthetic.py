"""A synthetic task on which the *right reflection* makes the retry succeed — for trainer tests.

``KeyTask``: the prompt is ``key K`` (K in 0..3); the answer is the symbol ``SYMBOLS[(K + 1) % 4]``. First attempts
come from a column and always fail. ``warm_start`` teaches a tiny model two habits by supervised learning:

* after a failed attempt, reflect with a *uniformly random* symbol (so before RRR a reflection is right 25% of the
  time, whatever the key: chance);
* on the retry, copy the symbol the reflection named.

RRR can then only raise retry success by learning which symbol to reflect with for each key — exactly the credit
assignment the trainer must get right (reward on the retry, gradient on the reflection).
"""

from __future__ import annotations

import random

import torch

from rrr.tasks.base import Task, Verdict

SYMBOLS = "wxyz"
FAILED = "?"


class KeyTask(Task):
    name = "key"
    required_columns = ("key",)
    reflection_instruction = "reflect"
    retry_instruction = "retry"

    def attempt_prompt(self, example):
        return f"key {example['key']}"

    def reflection_messages(self, example, attempt):
        # the key is restated next to the reflection, so a 2-layer model can condition on it cheaply
        messages = super().reflection_messages(example, attempt)
        messages[-1] = {"role": "user", "content": f"reflect {example['key']}"}
        return messages

    def target(self, example) -> str:
        return SYMBOLS[2]

    def verify(self, example, completion):
        if not isinstance(completion, str):
            return Verdict(False, "not a string")
        got = completion.strip()
        return Verdict(got == self.target(example), f"got {got[:10]!r}")

    def leaks_answer(self, example, reflection):
        return False  # in this toy task the reflection *is* the hint

    def generate(self, n, seed=0, split="train"):
        rng = random.Random(seed)
        return [{"id": f"{split}-{i}", "key": rng.randrange(4), "failed_attempt": FAILED} for i in range(n)]


def _encode(tokenizer, messages, completion):
    prompt = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
    target = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return list(prompt), target


def _batch(tokenizer, seqs):
    pad = tokenizer.pad_token_id
    width = max(len(p) + len(t) for p, t in seqs)
    ids = torch.full((len(seqs), width), pad)
    labels = torch.full((len(seqs), width), -100)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (p, t) in enumerate(seqs):
        row = p + t
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, len(p) : len(row)] = torch.tensor(t)
        attn[i, : len(row)] = 1
    return ids, attn, labels


def copy_rate(model, tokenizer, n: int = 64, seed: int = 123) -> float:
    """Fraction of greedy retries that repeat the reflection's symbol."""
    from rrr.generation import HFGenerator, SamplingParams

    task, rng = KeyTask(), random.Random(seed)
    cases = [({"key": rng.randrange(4)}, rng.choice(SYMBOLS)) for _ in range(n)]
    gens = HFGenerator(model, tokenizer).generate(
        [task.retry_messages(ex, FAILED, sym) for ex, sym in cases], SamplingParams(3, temperature=0.0)
    )
    return sum(g.text.strip() == sym for g, (_, sym) in zip(gens, cases)) / n


def warm_start(model, tokenizer, max_steps: int = 800, batch: int = 32, lr: float = 3e-3, seed: int = 0) -> int:
    """Supervised warm start: random-symbol reflections, retries that copy the reflection (loss on completions).

    Trains in rounds of 50 steps until greedy retries copy the reflection >= 95% of the time; returns the steps.
    """
    task = KeyTask()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    step = 0
    while step < max_steps:
        model.train()
        for _ in range(50):
            seqs = []
            for _ in range(batch):
                ex = {"key": rng.randrange(4)}
                sym = rng.choice(SYMBOLS)
                if rng.random() < 0.3:
                    seqs.append(_encode(tokenizer, task.reflection_messages(ex, FAILED), sym))
                else:
                    seqs.append(_encode(tokenizer, task.retry_messages(ex, FAILED, sym), sym))
            ids, attn, labels = _batch(tokenizer, seqs)
            model(input_ids=ids, attention_mask=attn, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
        step += 50
        model.eval()
        if copy_rate(model, tokenizer) >= 0.95:
            break
    return step


class LockstepTask(Task):
    """Pass/fail decided by the example alone, so each rank's number of failures and of first-attempt rounds is
    set by its data: an ``easy`` item passes every attempt (and is resampled up to ``first_attempt_tries`` times), a
    hard one fails every attempt and every retry. For tests of several processes whose data differ."""

    name = "lockstep"
    required_columns = ("easy",)

    def attempt_prompt(self, example):
        return f"item {example['id']}"

    def verify(self, example, completion):
        return Verdict(bool(example["easy"]), "easy" if example["easy"] else "hard")

    def leaks_answer(self, example, reflection):
        return False

    def generate(self, n, seed=0, split="train"):
        rng = random.Random(seed)
        return [{"id": f"{split}-{i}", "easy": rng.random() < 0.5} for i in range(n)]
