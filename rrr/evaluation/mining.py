"""Failure mining: the paper's offline failure set (sample up to k attempts per task, keep what the student fails).

The result is a dataset with the task's columns plus ``failed_attempt`` (the first failed attempt, which
``train_grpo.py`` reflects upon with ``first_attempt_source: column``), ``failed_attempts`` (all of them) and
``pass_rate`` (passes / k), saved with ``save_to_disk`` — complete or absent.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from dataclasses import dataclass, field

from rrr.generation.base import Generator, SamplingParams
from rrr.tasks import DEFAULT_TASK, Task, check_verifier_error_rate, safe_verify
from rrr.tasks.base import MIN_VERIFICATIONS
from rrr.utils.config import documented
from rrr.utils.io import append_jsonl, read_jsonl, repair_jsonl

RULES = ("any", "majority", "all")


@documented
@dataclass
class MiningConfig:
    r"""How failures are mined: ``k`` sampled first attempts per task, kept under ``rule``.

    k (`int`, defaults to `8`):
        First attempts sampled per task (the paper: up to 64).
    rule (`str`, defaults to `"any"`):
        Keep a task if it failed at least once (`any`), in most samples (`majority`), or in every one (`all`).
    temperature (`float`, defaults to `1.0`):
        Temperature of the sampled attempts (k > 1 greedy samples would be identical, so 0 needs `k: 1`).
    top_p (`float`, defaults to `1.0`):
        Nucleus sampling of the attempts (1.0 = off).
    max_tokens (`int`, defaults to `512`):
        Token budget of each attempt.
    batch_size (`int`, defaults to `64`):
        Tasks generated per batch (and per appended batch of the samples log); may change between resumed runs.
    seed (`int`, defaults to `0`):
        Seed of the sampled attempts (and, in `rrr mine`, of the data subset).
    max_verifier_error_rate (`float`, defaults to `0.05`):
        Stop once more than this fraction of sampled attempts hit a verifier error (judged after 200 of them); an
        errored attempt is neither a pass nor a failure, so it is never mined as a "failed attempt".
    """

    k: int = 8
    rule: str = "any"
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    batch_size: int = 64
    seed: int = 0
    max_verifier_error_rate: float = 0.05

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.k > 1 and self.temperature == 0:
            raise ValueError("k > 1 greedy samples are identical: set a temperature > 0")


@documented
@dataclass
class MiningRunConfig(MiningConfig):
    r"""One ``rrr mine`` run (``scripts/mine_failures.py``): every ``MiningConfig`` field plus the model, the task's
    data and the dataset directory. A recipe (``--config``, e.g. ``recipes/smoke/mine/scheduling.yaml``) states these
    fields; each flag overrides one.

    model (`str`, *optional*):
        The student whose failures are mined: hub id, local dir, or a served name (required).
    adapter (`str`, *optional*):
        LoRA adapter to put on `model`.
    task (`str`, defaults to `rrr.tasks.DEFAULT_TASK`):
        Task name or `package.module:ClassName`.
    task_kwargs (`dict`):
        Options of the task's constructor, e.g. `{"strict": true}`.
    split (`str`, defaults to `"train"`):
        Split whose tasks are attempted.
    n (`int`, *optional*):
        Number of tasks (the whole split when unset).
    source (`str`, *optional*):
        Hub id, local file, or `generated` (the task's default source when unset).
    backend (`str`, defaults to `"auto"`):
        Generation backend: `auto`, `hf`, `vllm` or `openai` (see `rrr.evaluation.make_generator`).
    base_url (`str`, *optional*):
        OpenAI-compatible endpoint of a served `model`.
    output_dir (`str`, *optional*):
        The dataset directory (required); re-running the same command resumes or rebuilds it.
    overwrite (`bool`, defaults to `False`):
        Delete what `output_dir` holds (another run, other files) and start over.
    push_to_hub (`str`, *optional*):
        Also push the dataset to this hub repo id.
    progress (`bool`, defaults to `True`):
        Progress bars.
    """

    model: str | None = None
    adapter: str | None = None
    task: str = DEFAULT_TASK
    task_kwargs: dict = field(default_factory=dict)
    split: str = "train"
    n: int | None = None
    source: str | None = None
    backend: str = "auto"
    base_url: str | None = None
    output_dir: str | None = None
    overwrite: bool = False
    push_to_hub: str | None = None
    progress: bool = True

    def __post_init__(self):
        from rrr.evaluation.backends import BACKENDS

        super().__post_init__()
        if not self.model or not self.output_dir:
            raise ValueError("mining needs a model and an output_dir (--model, --output-dir, or the recipe's keys)")
        if self.batch_size < 1 or (self.n is not None and self.n < 1):
            raise ValueError(f"batch_size and n must be >= 1, got {self.batch_size} and {self.n}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")

    def mining_config(self) -> MiningConfig:
        """The ``MiningConfig`` part: what ``mine_failures`` runs."""
        return MiningConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(MiningConfig)})


def keep(passes: int, k: int, rule: str) -> bool:
    fails = k - passes
    return {"any": fails >= 1, "majority": fails > k / 2, "all": fails == k}[rule]


def mine_failures(
    task: Task,
    generator: Generator,
    examples: list[dict],
    config: MiningConfig,
    progress: bool = True,
    samples_path: str | None = None,
):
    """Returns ``(kept_rows, report)``; the report has the failure rate overall and per difficulty.

    With ``samples_path``, each batch's outcome is appended to that JSONL log as it finishes, and examples already
    in it are not sampled again: an interrupted run resumes where it stopped, like ``evaluate``. A batch only part
    of which reached the log (a kill mid-append) is sampled again whole and only its missing rows are added, so
    batches are the same as in an uninterrupted run and, with a generator seeded per call (``SamplingParams.seed``),
    so are the attempts and the result. The caller keeps the log to one configuration (``mine_failures.py``
    records it in the output directory's marker); ``rule`` is applied at the end, so it may change between runs.
    """
    from tqdm.auto import tqdm

    params = SamplingParams(config.max_tokens, config.temperature, config.top_p, seed=config.seed)
    done: dict[str, dict] = {}
    if samples_path and os.path.exists(samples_path):
        repair_jsonl(samples_path)
        done = {r["id"]: r for r in read_jsonl(samples_path) if r.get("k") == config.k}
    ids = [task.example_id(ex) for ex in examples]
    errors = verified = 0
    where = f"mining task {task.name!r}"
    bar = tqdm(total=len(examples), desc=f"mining {task.name} (k={config.k})", disable=not progress)
    for i in range(0, len(examples), config.batch_size):
        chunk, chunk_ids = examples[i : i + config.batch_size], ids[i : i + config.batch_size]
        if any(j not in done for j in chunk_ids):
            convs = [task.attempt_messages(ex) for ex in chunk for _ in range(config.k)]
            gens = generator.generate(convs, params)
            new = []
            for j, (ex, ex_id) in enumerate(zip(chunk, chunk_ids)):
                record = _outcome(task, ex, ex_id, [g.text for g in gens[j * config.k : (j + 1) * config.k]], config)
                if ex_id not in done:
                    done[ex_id] = record
                    new.append(record)
            if samples_path:
                append_jsonl(samples_path, new)
        for ex_id in chunk_ids:
            errors += done[ex_id]["errors"]
            verified += done[ex_id]["verified"]
        bar.update(len(chunk))
        check_verifier_error_rate(errors, verified, config.max_verifier_error_rate, where, min_total=MIN_VERIFICATIONS)
    bar.close()

    kept, stats = [], defaultdict(lambda: [0, 0])  # difficulty -> [kept, total]
    for ex, ex_id in zip(examples, ids):
        record = done[ex_id]
        failed = record["failed"]
        stats[record["level"]][1] += 1
        if failed and keep(record["judged"] - len(failed), record["judged"], config.rule):
            stats[record["level"]][0] += 1
            kept.append(
                {**ex, "failed_attempt": failed[0], "failed_attempts": failed, "pass_rate": 1 - len(failed) / config.k}
            )
    total_kept = sum(s[0] for s in stats.values())
    report = {
        "n": len(examples),
        "kept": total_kept,
        "failure_rate": total_kept / len(examples) if examples else float("nan"),
        "per_difficulty": {lvl: {"n": t, "kept": k, "failure_rate": k / t} for lvl, (k, t) in sorted(stats.items())},
        "verifier_errors": errors,
        "config": vars(config),
    }
    return kept, report


def _outcome(task: Task, ex: dict, ex_id: str, texts: list[str], config: MiningConfig) -> dict:
    """One example's mining outcome: its failed attempts and verdict counts (what resume needs, nothing more)."""
    verdicts = [safe_verify(task, ex, t) for t in texts]
    failed = [t for t, v in zip(texts, verdicts) if not v.passed and v.error is None]
    judged = sum(v.error is None for v in verdicts)
    level = str(ex.get(task.difficulty_column, "all")) if task.difficulty_column else "all"
    return {
        "id": ex_id,
        "level": level,
        "k": config.k,
        "failed": failed,
        "judged": judged,
        "errors": len(verdicts) - judged,
        "verified": len(verdicts),
    }
