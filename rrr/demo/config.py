"""The demo's configuration: one dataclass per stage, loaded from ``recipes/demo/config.yaml``.

Every number that decides whether the demo shows learning lives here (and in the YAML, with a comment saying why),
not in the pipeline code. Budgets are **steps, not seconds**: on a shared 2-core machine the same 60 s gave 287 or
201 SFT steps in the feasibility study (first try 92.8% vs 84.1%), so a wall-clock budget would make the demo's
outcome depend on the machine's load.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import asdict, dataclass, field
from typing import Any

#: The task every stage runs (a registry name, so ``get_task`` and RRRConfig.task accept it).
DEMO_TASK = "scheduling_demo"


@dataclass
class ModelSpec:
    """The tiny student, built from nothing: a byte-level BPE tokenizer trained on the task's text + a Qwen2."""

    #: Qwen2 hidden size / layers / attention heads (MLP = 4 x hidden, tied embeddings). 128/4/4 = 1.03M params.
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    #: BPE vocabulary budget (bytes + merges + special tokens); the task's text needs ~340.
    vocab_size: int = 512
    #: Training-split problems whose prompts, answers and witnesses the tokenizer is trained on.
    tokenizer_problems: int = 1500


@dataclass
class DataSpec:
    """Problem counts per use. Training problems come from the training pool, test problems from the held-out pool
    (``SchedulingTask`` assigns every meeting set to one pool by a hash of its canonical form: never both)."""

    #: Problems whose direct answers are SFT rows (task -> correct first attempt).
    sft_problems: int = 8000
    #: Problems with a synthetic wrong attempt -> oracle witness reflection (+ a retry row each).
    reflection_problems: int = 4000
    #: Fresh training problems the SFT student attempts; its failures are RRR's training set.
    mining_problems: int = 6000
    #: Held-out problems for evaluation (first try, after reflection); its failures are the frozen paired set.
    test_problems: int = 3000
    #: Seed of the held-out test set: fixed across run seeds, so every seed is measured on the same problems.
    test_seed: int = 0


@dataclass
class SFTSpec:
    """Warm start on the oracle curriculum (``rrr.curriculum``: ``build_curriculum`` + ``train_sft``).

    Rows are batched at random. Length-grouped batches (``train_sampling_strategy="group_by_length"``) halve the time
    but left the student at the majority baseline (36% first try vs 84% at the same steps): batches of only answer
    rows or only retry rows.
    """

    #: By steps (see the module docstring). 300 steps x 64 rows lands the first try at 88-91% (3 seeds): enough
    #: failures to learn from. Answer rows alone learn slower: 500 steps gave 78%; the witness rows help counting.
    max_steps: int = 300
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_scheduler_type: str = "cosine"
    warmup_steps: int = 10
    #: Train on the reflection and retry rows too (the student must know the formats before RRR can reward them).
    include_reflections: bool = True


@dataclass
class MiningSpec:
    """Failure mining on ``mining_problems`` (``rrr.evaluation.mine_failures``): one greedy pass (the failures the
    student really makes) plus ``sampled_k`` samples at ``temperature`` (more, and more varied, failures)."""

    greedy: bool = True
    sampled_k: int = 1
    temperature: float = 1.0
    max_tokens: int = 8


@dataclass
class RRRSpec:
    """RRR GRPO (``rrr.training.train``) on the mined problems (see ``first_attempt_source``)."""

    max_steps: int = 360
    #: ``online``: sample first attempts from the current policy each step (up to ``first_attempt_tries`` at
    #: ``attempt_temperature``) on the mined problems; ``column``: reflect on the mined failed attempts as they were.
    #: Online keeps the failures RRR learns from matched to the student as it changes: with frozen failures the
    #: reflections learned a "count higher" habit that leaked into first attempts (first try -4.9 pp vs -2.0 online,
    #: same paired gain; seed 0).
    first_attempt_source: str = "online"
    first_attempt_tries: int = 4
    attempt_temperature: float = 1.0
    #: Failed tasks per step; x ``num_generations`` reflections per step.
    tasks_per_step: int = 8
    #: G: reflections sampled on the same failed attempt (one GRPO group).
    num_generations: int = 8
    learning_rate: float = 2e-5
    warmup_steps: int = 20
    beta: float = 0.0
    loss_type: str = "dapo"
    temperature: float = 1.0
    reflection_max_tokens: int = 24
    retry_max_tokens: int = 8
    #: Keep the (tied) token embeddings fixed during RRR: the first attempt shares them with the reflection.
    freeze_embeddings: bool = False
    #: LoRA rank for RRR (0 = full fine-tune); adapters on every linear layer of the blocks, alpha = 2 x rank.
    lora_r: int = 0


@dataclass
class EvalSpec:
    """Evaluation (``rrr.evaluation.evaluate``) and the paired comparison on frozen held-out failures."""

    attempt_max_tokens: int = 8
    reflection_max_tokens: int = 24
    retry_max_tokens: int = 8
    #: Reflections sampled (at ``reflection_temperature``) per frozen failure for the headline metric.
    reflection_samples: int = 4
    reflection_temperature: float = 1.0
    batch_size: int = 256


@dataclass
class ControlSpec:
    """Shuffled-reward control: the same RRR run with rewards permuted within each group (no credit signal)."""

    enabled: bool = False


@dataclass
class DemoConfig:
    """The whole demo. ``seed`` drives model init, training data, SFT, mining, RRR and sampling; the test set is
    fixed by ``data.test_seed`` so that seeds are compared on the same problems."""

    output_dir: str = "runs/demo"
    seed: int = 0
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    sft: SFTSpec = field(default_factory=SFTSpec)
    mining: MiningSpec = field(default_factory=MiningSpec)
    rrr: RRRSpec = field(default_factory=RRRSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    control: ControlSpec = field(default_factory=ControlSpec)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoConfig:
        """Build from a nested mapping; unknown keys are an error naming the valid ones."""
        return _build(cls, data or {}, "demo config")

    @classmethod
    def from_yaml(cls, path: str, overrides: dict[str, Any] | None = None) -> DemoConfig:
        import yaml

        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a YAML mapping")
        for key, value in (overrides or {}).items():
            _set_dotted(data, key, value)
        return cls.from_dict(data)


def _build(cls, data: dict[str, Any], where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif types[name] is float and isinstance(value, (str, int)) and not isinstance(value, bool):
            # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                kwargs[name] = float(value)
            except ValueError:
                raise ValueError(f"{where}.{name}: expected a number, got {value!r}") from None
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``_set_dotted(d, "rrr.max_steps", 10)`` sets ``d["rrr"]["max_steps"] = 10``."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
