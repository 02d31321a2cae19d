"""The student's own reflections as training data (ReflectEvo-style), built with the shared episode code.

For failed first attempts on *training* tasks, sample G reflections and one retry each. A reflection whose retry
passed (and that did not simply leak the answer) is an SFT row; a passing and a failing reflection on the *same*
failed attempt make a DPO pair — the only difference between chosen and rejected is the reflection.
"""

from __future__ import annotations

from rrr.episode import Episode, EpisodeConfig, run_episodes
from rrr.generation.base import Generator, SamplingParams
from rrr.tasks import Task


def collect_self_reflections(
    task: Task,
    generator: Generator,
    examples: list[dict],
    group: int = 4,
    attempt_tokens: int = 256,
    reflection_tokens: int = 128,
    retry_tokens: int = 256,
    temperature: float = 1.0,
    batch_size: int = 32,
) -> tuple[list[dict], list[dict], dict]:
    """Returns ``(sft_rows, dpo_rows, stats)`` in TRL's conversational prompt/completion and preference formats."""
    config = EpisodeConfig(
        attempt=SamplingParams(attempt_tokens, temperature),
        reflection=SamplingParams(reflection_tokens, temperature),
        retry=SamplingParams(retry_tokens, 0.0),
        reflections_per_failure=group,
    )
    episodes = []
    for start in range(0, len(examples), batch_size):
        episodes += run_episodes(task, generator, examples[start : start + batch_size], config)
    sft, dpo, stats = reflection_rows(task, episodes)
    stats["examples"] = len(examples)
    return sft, dpo, stats


def reflection_rows(task: Task, episodes: list[Episode]) -> tuple[list[dict], list[dict], dict]:
    """SFT rows and DPO pairs from finished episodes (pure: no model), with counts.

    Leaked reflections are neither chosen nor rejected (a reflection that states the answer teaches nothing about
    reflecting). Pairs zip a failure's passing and failing reflections, so each reflection is used at most once.
    """
    sft, dpo = [], []
    stats = {"failed": 0, "reflections": 0, "passing": 0, "leaked": 0, "generated_tokens": 0}
    for ep in episodes:
        stats["generated_tokens"] += sum(a.generation.num_tokens for a in ep.attempts if a.generation)
        if ep.solved_without_reflection:
            continue
        stats["failed"] += 1
        prompt = task.reflection_messages(ep.example, ep.attempt.text)
        good, bad = [], []
        for outcome in ep.reflections:
            stats["reflections"] += 1
            stats["generated_tokens"] += outcome.reflection.num_tokens + sum(g.num_tokens for g in outcome.retries)
            if outcome.leaked:
                stats["leaked"] += 1
                continue
            (good if outcome.success_rate == 1.0 else bad).append(outcome.text)
        stats["passing"] += len(good)
        for text in good:
            sft.append({"prompt": prompt, "completion": [{"role": "assistant", "content": text}]})
        for chosen, rejected in zip(good, bad):
            dpo.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
    stats["sft_rows"], stats["dpo_pairs"] = len(sft), len(dpo)
    return sft, dpo, stats
