"""The demo's configuration, loaded from ``recipes/demo/config.yaml`` by the one config loader (``rrr.utils.config``).

Every number that decides whether the demo shows learning lives here (and in the YAML, with a comment saying why),
not in the pipeline code. Budgets are **steps, not seconds**: on a shared 2-core machine the same 60 s gave 287 or
201 SFT steps in the feasibility study (first try 92.8% vs 84.1%), so a wall-clock budget would make the demo's
outcome depend on the machine's load.

The stages that run a library component are configured with that component's own config, under its own field
names: ``rrr`` is a training recipe (``RRRConfig`` and ``ModelConfig`` fields — the same file the tiny ablation's RRR
arm uses, ``recipes/demo/rrr.yaml``), ``sft`` is ``CurriculumSFTConfig`` fields over the demo's defaults
(``SFT_DEFAULTS``), ``eval`` is an ``EvalConfig``, ``paired`` a ``FrozenConfig``. Only what is the
demo's own (the tiny student, problem counts, the two mining passes, the control) has a class here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rrr.evaluation.evaluate import EvalConfig
from rrr.evaluation.frozen import FrozenConfig
from rrr.utils.cli import ConfigError
from rrr.utils.config import build, check_fields, documented, load_yaml, resolve_includes, to_dict

#: The task every stage runs (a registry name, so ``get_task`` and RRRConfig.task accept it).
DEMO_TASK = "scheduling_demo"

#: Fields of the ``rrr`` recipe that the pipeline sets itself (where the stage reads and writes, what it trains on,
#: the seeds derived from the run's ``seed``): a recipe that states them is refused rather than silently overridden.
RRR_SET_BY_PIPELINE = (
    "output_dir",
    "task",
    "task_kwargs",
    "dataset_source",
    "dataset_split",
    "model_name_or_path",
    "seed",
    "data_seed",
)
#: The SFT warm start on the oracle curriculum (``rrr.curriculum``: ``build_curriculum`` + ``train_sft``), as
#: ``CurriculumSFTConfig`` fields: the ``sft`` section's defaults, which the recipe's ``sft:`` keys override.
#:
#: * By steps (see the module docstring): 300 steps x 64 rows lands the first try at 88-91% (3 seeds), enough failures
#:   to learn from. Answer rows alone learn slower: 500 steps gave 78%; the witness rows help counting.
#: * Rows are batched at random. Length-grouped batches (``train_sampling_strategy="group_by_length"``) halve the time
#:   but left the student at the majority baseline (36% first try vs 84% at the same steps): batches of only answer
#:   rows or only retry rows.
#: * A tiny CPU run: 256 tokens hold every row, nothing is saved but the final model, nothing is reported.
SFT_DEFAULTS: dict[str, Any] = {
    "max_steps": 300,
    "per_device_train_batch_size": 64,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 10,
    "max_length": 256,
    "use_cpu": True,
    "bf16": False,
    "report_to": "none",
    "save_strategy": "no",
}
#: ``sft`` fields the pipeline sets itself (what the stage reads and writes, the task, the seeds derived from the
#: run's ``seed``; ``merge`` is the pipeline class's): a recipe that states them is refused.
SFT_SET_BY_PIPELINE = (
    "output_dir",
    "dataset_path",
    "reflection_dataset_path",
    "task",
    "task_kwargs",
    "merge",
    "seed",
    "data_seed",
)
#: Keys of the ``sft`` section before it held ``CurriculumSFTConfig`` fields, with what to write instead.
SFT_RENAMED = {
    "batch_size": "per_device_train_batch_size",
    "include_reflections": "the top-level `sft_include_reflections`",
}

#: ``eval`` fields fixed by the demo (its task and held-out split); ``n`` and ``seed`` are ``data.test_problems`` and
#: ``data.test_seed``.
EVAL_FIXED = {"task": DEMO_TASK, "task_kwargs": {}, "split": "test", "source": None}


@documented
@dataclass
class ModelSpec:
    r"""The tiny student, built from nothing: a byte-level BPE tokenizer trained on the task's text + a Qwen2.

    hidden_size (`int`, defaults to `128`):
        Qwen2 hidden size (MLP = 4 x hidden, tied embeddings). 128 hidden, 4 layers, 4 heads = 1.03M parameters.
    num_layers (`int`, defaults to `4`):
        Number of transformer blocks.
    num_heads (`int`, defaults to `4`):
        Attention heads per block.
    vocab_size (`int`, defaults to `512`):
        BPE vocabulary budget (bytes + merges + special tokens); the task's text needs about 340.
    tokenizer_problems (`int`, defaults to `1500`):
        Training-split problems whose prompts, answers and witnesses the tokenizer is trained on.
    """

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    vocab_size: int = 512
    tokenizer_problems: int = 1500


@documented
@dataclass
class DataSpec:
    r"""Problem counts per use. Training problems come from the training pool, test problems from the held-out pool
    (``SchedulingTask`` assigns every meeting set to one pool by a hash of its canonical form: never both).

    sft_problems (`int`, defaults to `8000`):
        Problems whose direct answers are SFT rows (task -> correct first attempt).
    reflection_problems (`int`, defaults to `4000`):
        Problems with a synthetic wrong attempt -> oracle witness reflection (+ a retry row each).
    mining_problems (`int`, defaults to `6000`):
        Fresh training problems the SFT student attempts; its failures are RRR's training set.
    test_problems (`int`, defaults to `3000`):
        Held-out problems for evaluation (first try, after reflection); its failures are the frozen paired set.
    test_seed (`int`, defaults to `0`):
        Seed of the held-out test set: fixed across run seeds, so every seed is measured on the same problems.
    """

    sft_problems: int = 8000
    reflection_problems: int = 4000
    mining_problems: int = 6000
    test_problems: int = 3000
    test_seed: int = 0


@documented
@dataclass
class MiningSpec:
    r"""Failure mining on ``mining_problems`` (``rrr.evaluation.mine_failures``): one greedy pass (the failures the
    student really makes) plus ``sampled_k`` samples at ``temperature`` (more, and more varied, failures).

    greedy (`bool`, defaults to `True`):
        Run the greedy pass.
    sampled_k (`int`, defaults to `1`):
        Sampled attempts per problem in the sampled pass (0: no sampled pass).
    temperature (`float`, defaults to `1.0`):
        Temperature of the sampled pass.
    max_tokens (`int`, defaults to `8`):
        Token budget of each mined attempt.
    """

    greedy: bool = True
    sampled_k: int = 1
    temperature: float = 1.0
    max_tokens: int = 8


@documented
@dataclass
class ControlSpec:
    r"""Shuffled-reward control: the same RRR run with rewards permuted within each group (no credit signal).

    enabled (`bool`, defaults to `False`):
        Train and evaluate the control too (costs another RRR run).
    """

    enabled: bool = False


def _demo_eval() -> EvalConfig:
    return EvalConfig(
        task=DEMO_TASK, attempt_max_tokens=8, reflection_max_tokens=24, retry_max_tokens=8, batch_size=256
    )


def _demo_paired() -> FrozenConfig:
    return FrozenConfig(reflection_max_tokens=24, retry_max_tokens=8, samples=4, temperature=1.0)


@documented
@dataclass
class DemoConfig:
    r"""The whole demo. ``seed`` drives model init, training data, SFT, mining, RRR and sampling; the test set is
    fixed by ``data.test_seed`` so that seeds are compared on the same problems.

    output_dir (`str`, defaults to `"runs/demo"`):
        Where every stage's directory, `config.json` and `results.{md,json}` go.
    seed (`int`, defaults to `0`):
        The run's seed; each stage derives its own from it.
    model (`ModelSpec`):
        The tiny student.
    data (`DataSpec`):
        Problem counts.
    sft (`dict`):
        The SFT warm start on the oracle curriculum: `CurriculumSFTConfig` fields (`rrr.curriculum.sft`, TRL's
        `SFTConfig` names: `max_steps`, `per_device_train_batch_size`, `learning_rate`, ...) over the demo's
        defaults (`SFT_DEFAULTS`: 300 steps of 64 rows at 1e-3, cosine, 10 warm-up steps, on the CPU). The pipeline
        sets `output_dir`, `dataset_path`, `reflection_dataset_path`, `task`, `task_kwargs`, `merge`, `seed` and
        `data_seed` (the recipe may not) and prints progress every tenth of `max_steps` (`logging_steps`,
        `disable_tqdm`, `log_level`).
    sft_include_reflections (`bool`, defaults to `True`):
        Train the SFT student on the curriculum's reflection and retry rows too (the student must know the formats
        before RRR can reward them).
    mining (`MiningSpec`):
        Failure mining.
    rrr (`dict`):
        The RRR stage's training recipe: `RRRConfig` and `ModelConfig` fields, exactly as in a `recipes/*/rrr/`
        recipe (`include: rrr.yaml` shares `recipes/demo/rrr.yaml` with the tiny ablation). The pipeline sets
        `output_dir`, `task`, `task_kwargs`, `dataset_source`/`dataset_split` (the mined failures),
        `model_name_or_path` (the SFT student), `seed` and `data_seed`, and prints progress every tenth of
        `max_steps` (`logging_steps`, `log_level`); the recipe may not set the first six.
    freeze_embeddings (`bool`, defaults to `False`):
        Keep the (tied) token embeddings fixed during RRR: the first attempt shares them with the reflection.
    eval (`EvalConfig`):
        Evaluation of each student (`rrr.evaluation.evaluate`): greedy first try, reflection and retry by default.
        Its `task`, `split` and `source` are the demo's; `n` and `seed` are always `data.test_problems` and
        `data.test_seed`.
    paired (`FrozenConfig`):
        The headline: every student reflects on the SFT student's frozen held-out failures, greedily and with
        `samples` reflections at `temperature`. Its token budgets are always `eval`'s (one stated budget) and its
        `seed` is derived from the run's.
    control (`ControlSpec`):
        The shuffled-reward control.
    """

    output_dir: str = "runs/demo"
    seed: int = 0
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    sft: dict = field(default_factory=lambda: dict(SFT_DEFAULTS))
    sft_include_reflections: bool = True
    mining: MiningSpec = field(default_factory=MiningSpec)
    rrr: dict = field(default_factory=dict)
    freeze_embeddings: bool = False
    eval: EvalConfig = field(default_factory=_demo_eval)
    paired: FrozenConfig = field(default_factory=_demo_paired)
    control: ControlSpec = field(default_factory=ControlSpec)

    def __post_init__(self):
        from trl import ModelConfig

        from rrr.curriculum.sft import CurriculumSFTConfig
        from rrr.training.config import RRRConfig

        renamed = [f"sft.{key} is now {SFT_RENAMED[key]}" for key in self.sft if key in SFT_RENAMED]
        if renamed:
            raise ConfigError(f"{'; '.join(renamed)} (the section holds CurriculumSFTConfig fields)")
        self.sft = {**SFT_DEFAULTS, **check_fields(self.sft, (CurriculumSFTConfig,), "sft")}
        fixed = [key for key in SFT_SET_BY_PIPELINE if key in self.sft]
        if fixed:
            raise ConfigError(f"sft: {', '.join(fixed)} are set by the demo pipeline; remove them from the recipe")
        self.rrr = check_fields(self.rrr, (RRRConfig, ModelConfig), "rrr")
        fixed = [key for key in RRR_SET_BY_PIPELINE if key in self.rrr]
        if fixed:
            raise ConfigError(f"rrr: {', '.join(fixed)} are set by the demo pipeline; remove them from the recipe")
        for key, value in EVAL_FIXED.items():
            if getattr(self.eval, key) != value:
                raise ConfigError(f"eval.{key} is the demo's ({value!r}), got {getattr(self.eval, key)!r}")
        self.eval = dataclasses.replace(self.eval, n=self.data.test_problems, seed=self.data.test_seed)
        self.paired = dataclasses.replace(
            self.paired,
            reflection_max_tokens=self.eval.reflection_max_tokens,
            retry_max_tokens=self.eval.retry_max_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str = ".") -> DemoConfig:
        """Build from a nested mapping (``include:`` paths relative to ``base_dir``); unknown keys are an error
        naming the valid ones."""
        return build(cls, resolve_includes(data or {}, base_dir), "demo config")

    @classmethod
    def from_yaml(cls, path: str, overrides: dict[str, Any] | None = None) -> DemoConfig:
        """The recipe at ``path`` with dotted ``overrides`` (``{"rrr.max_steps": 100}``), as ``--set`` gives them."""
        from rrr.utils.config import apply_overrides

        return build(cls, apply_overrides(load_yaml(path), overrides or {}), path)
