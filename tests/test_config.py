"""The one config system (``rrr.utils.config``): every field of every config documented once, one loader for YAML
recipes (``include:``), one ``--set key=value`` syntax, one-line errors, and TRL's flags still working on top."""

from __future__ import annotations

import dataclasses
import os

import pytest
from trl import ModelConfig

from rrr.ablation.runner import AblationConfig
from rrr.curriculum.dataset import CurriculumConfig
from rrr.curriculum.pipeline import CurriculumRunConfig, SFTOptions
from rrr.curriculum.sft import CurriculumSFTConfig
from rrr.demo.config import ControlSpec, DataSpec, DemoConfig, MiningSpec, ModelSpec
from rrr.evaluation.evaluate import EvalConfig, EvalRunConfig
from rrr.evaluation.frozen import FrozenConfig
from rrr.evaluation.mining import MiningConfig, MiningRunConfig
from rrr.training import RRRConfig, parse_train_args
from rrr.utils.cli import ConfigError
from rrr.utils.config import apply_overrides, build, docstring_fields, field_docs, load_yaml, parse_set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "recipes", "smoke", "rrr", "config_countdown.yaml")
#: Every config a driver reads (the TRL-based ones are checked for the fields rrr adds; TRL documents its own).
CONFIGS = [
    RRRConfig,
    CurriculumSFTConfig,
    EvalConfig,
    EvalRunConfig,
    MiningConfig,
    MiningRunConfig,
    CurriculumRunConfig,
    CurriculumConfig,
    SFTOptions,
    FrozenConfig,
    AblationConfig,
    DemoConfig,
    ModelSpec,
    DataSpec,
    MiningSpec,
    ControlSpec,
]


def _own_fields(cls) -> list[str]:
    inherited = set()
    for base in cls.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            inherited |= {f.name for f in dataclasses.fields(base)}
    return [f.name for f in dataclasses.fields(cls) if f.name not in inherited]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_is_documented_once(cls):
    docs = docstring_fields(cls.__doc__)
    own = _own_fields(cls)
    assert own, cls
    missing = [name for name in own if not docs.get(name)]
    assert not missing, f"{cls.__name__}: fields without an entry in the docstring: {missing}"
    stray = sorted(set(docs) - {f.name for f in dataclasses.fields(cls)})
    assert not stray, f"{cls.__name__}: docstring entries for no field: {stray}"
    # --help prints the docstring's text: one source, so the two cannot disagree
    helps = field_docs(cls)
    assert all(helps[name] == docs[name] for name in own)


def test_help_is_the_docstring(capsys):
    with pytest.raises(SystemExit):
        parse_train_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join(docstring_fields(RRRConfig.__doc__)["retries_per_reflection"].split()) in out


def test_set_values_are_yaml_and_keys_dotted():
    sets = parse_set(["rrr.max_steps=100", "control.enabled=true", "lr=1e-4", "kw={strict: true}", "s=x=y"])
    assert sets == {"rrr.max_steps": 100, "control.enabled": True, "lr": "1e-4", "kw": {"strict": True}, "s": "x=y"}
    assert apply_overrides({"rrr": {"a": 1}}, {"rrr.b": 2, "c.d": 3}) == {"rrr": {"a": 1, "b": 2}, "c": {"d": 3}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["rrr.max_steps"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"seed": 0}, {"seed.x": 1})


def test_build_names_unknown_keys_and_wrong_types():
    with pytest.raises(
        ConfigError, match=r"eval: unknown key\(s\) 'atempt_max_tokens' \(did you mean 'attempt_max_tokens'"
    ):
        build(EvalConfig, {"atempt_max_tokens": 8}, "eval")
    with pytest.raises(ConfigError, match=r"eval\.n must be an integer or null"):
        build(EvalConfig, {"n": "many"}, "eval")
    with pytest.raises(ConfigError, match="num_samples must be 0"):  # the class's own check, one line
        build(EvalConfig, {"num_samples": 1}, "eval")
    assert build(EvalConfig, {"sample_temperature": "1e-1"}).sample_temperature == 0.1  # YAML 1.1's "1e-1"


def test_nested_sections_are_the_real_configs_and_start_from_their_defaults():
    config = DemoConfig.from_yaml(os.path.join(ROOT, "recipes", "demo", "config.yaml"), {"eval.batch_size": 32})
    assert isinstance(config.eval, EvalConfig) and isinstance(config.paired, FrozenConfig)
    assert config.eval.batch_size == 32 and config.eval.attempt_max_tokens == 8  # the rest from the recipe
    assert config.eval.n == config.data.test_problems
    # one stated budget: the paired comparison reflects and retries with eval's
    assert (config.paired.reflection_max_tokens, config.paired.retry_max_tokens) == (24, 8)
    with pytest.raises(ConfigError, match="rrr: unknown key"):
        DemoConfig.from_dict({"rrr": {"reflection_max_tokens": 24}})  # the old RRRSpec name: the field is gone
    with pytest.raises(ConfigError, match=r"rrr\.learning_rate must be a number"):
        DemoConfig.from_dict({"rrr": {"learning_rate": [1]}})
    with pytest.raises(ConfigError, match="set by the demo pipeline"):
        DemoConfig.from_dict({"rrr": {"output_dir": "x"}})
    assert set(ModelConfig.__dataclass_fields__) & set(RRRConfig.__dataclass_fields__) == set()
    # the SFT section is CurriculumSFTConfig fields over the demo's defaults (no SFTSpec copy with its own names)
    sft = DemoConfig.from_dict({"sft": {"max_steps": 7}}).sft
    assert sft["max_steps"] == 7 and sft["per_device_train_batch_size"] == 64 and sft["use_cpu"] is True
    assert set(sft) <= set(CurriculumSFTConfig.__dataclass_fields__)
    with pytest.raises(ConfigError, match=r"sft\.batch_size is now per_device_train_batch_size"):
        DemoConfig.from_dict({"sft": {"batch_size": 8}})
    with pytest.raises(ConfigError, match=r"sft\.max_steps must be an integer"):
        DemoConfig.from_dict({"sft": {"max_steps": "many"}})
    with pytest.raises(ConfigError, match="sft: dataset_path are set by the demo pipeline"):
        DemoConfig.from_dict({"sft": {"dataset_path": "x"}})


def test_ablation_arms_share_one_budget():
    config = AblationConfig.from_yaml(os.path.join(ROOT, "recipes", "ablation", "tiny.yaml"), {"frozen.samples": 2})
    ev, frozen = config.eval_config(), config.frozen_config()
    assert (ev.attempt_max_tokens, ev.reflection_max_tokens, ev.retry_max_tokens) == (8, 24, 8)
    assert (frozen.reflection_max_tokens, frozen.retry_max_tokens, frozen.samples) == (24, 8, 2)
    assert ev.n == config.n_test and ev.task == config.task and ev.split == "test"
    # with no budgets stated, every use gets EvalConfig's (512/256/512), not three different defaults
    bare = AblationConfig(model="m", task="countdown")
    assert (bare.frozen_config().reflection_max_tokens, bare.frozen_config().retry_max_tokens) == (256, 512)


def test_include_merges_and_refuses_cycles(tmp_path):
    (tmp_path / "base.yaml").write_text("a: 1\nsection: {x: 1, y: 2}\n")
    (tmp_path / "top.yaml").write_text("include: base.yaml\nsection: {y: 3}\n")
    assert load_yaml(str(tmp_path / "top.yaml")) == {"a": 1, "section": {"x": 1, "y": 3}}
    (tmp_path / "loop.yaml").write_text("include: loop.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_yaml(str(tmp_path / "loop.yaml"))
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(str(tmp_path / "bad.yaml"))


def test_trl_flags_and_set_both_override_the_recipe():
    args, model_args = parse_train_args(["--config", SMOKE, "--learning_rate", "1e-6", "--set", "max_steps=3"])
    assert args.learning_rate == 1e-6 and args.max_steps == 3 and model_args.model_name_or_path == "runs/tiny-model"
    args, _ = parse_train_args(["--config", SMOKE, "--set", "max_steps=3", "--max_steps", "4"])
    assert args.max_steps == 4  # a flag wins over --set, as over the recipe
    with pytest.raises(ConfigError, match="max_step' \\(did you mean 'max_steps'"):
        parse_train_args(["--config", SMOKE, "--set", "max_step=3"])


# ----------------------------------------------------------------------------------------------------------------------
# The plain-argparse drivers (eval, mine, curriculum): --config, --set and their flags, through the same loader
# ----------------------------------------------------------------------------------------------------------------------
def _driver(name):
    import importlib

    module = importlib.import_module(f"rrr.cli.{name}")
    return module, module.build_parser()


def _load(name, cls, argv):
    from rrr.utils.config import load_driver_config

    _, parser = _driver(name)
    return load_driver_config(cls, parser, parser.parse_args(argv))


def test_driver_recipe_then_set_then_flag(tmp_path):
    recipe = tmp_path / "eval.yaml"
    recipe.write_text("model: runs/m\nn: 4\nseed: 1\nattempt_max_tokens: 16\n")
    run = _load("eval", EvalRunConfig, ["--config", str(recipe), "--set", "n=5", "--set", "seed=2", "--seed", "3"])
    assert (run.model, run.n, run.seed, run.attempt_max_tokens) == (["runs/m"], 5, 3, 16)
    assert run.eval_config() == EvalConfig(n=5, seed=3, attempt_max_tokens=16)  # what results.json records
    # the flags alone still work, with the old defaults (README commands)
    run = _load("eval", EvalRunConfig, ["--model", "a", "b", "--task-kwargs", '{"strict": true}', "--no-progress"])
    assert run.model == ["a", "b"] and run.task_kwargs == {"strict": True} and run.progress is False
    assert run.eval_config() == EvalConfig(task_kwargs={"strict": True})

    mine = _load("mine", MiningRunConfig, ["--config", os.path.join(ROOT, "recipes/smoke/mine/scheduling.yaml")])
    assert (mine.task, mine.k, mine.max_tokens, mine.mining_config().k) == ("scheduling", 8, 64, 8)
    mine = _load("mine", MiningRunConfig, ["--model", "m", "--output-dir", "o", "--k", "2", "--overwrite"])
    assert mine.mining_config() == MiningConfig(k=2) and mine.overwrite and mine.split == "train"

    argv = ["--config", os.path.join(ROOT, "recipes/smoke/curriculum/scheduling.yaml"), "--set", "sft.max_steps=2"]
    run = _load("curriculum", CurriculumRunConfig, [*argv, "--skip-sft", "--no-balance", "--seed", "7"])
    assert run.sft.max_steps == 2 and run.sft.enabled is False and run.sft.lora_r == 16
    assert run.curriculum.balance is False and run.curriculum.seed == 7 and run.curriculum.reflections
    # a flag without the recipe: the driver's old defaults
    run = _load("curriculum", CurriculumRunConfig, ["--task", "t", "--output-dir", "o", "--sft-batch-size", "8"])
    assert run.sft == SFTOptions(per_device_train_batch_size=8) and run.curriculum == CurriculumConfig()


@pytest.mark.parametrize(
    ("name", "cls", "flag", "field"),
    [
        ("eval", EvalConfig, "--max-verifier-error-rate", "max_verifier_error_rate"),
        ("mine", MiningConfig, "--rule", "rule"),
        ("curriculum", SFTOptions, "--epochs", "num_train_epochs"),
    ],
)
def test_driver_help_is_the_docstring(name, cls, flag, field, capsys):
    module, _ = _driver(name)
    with pytest.raises(SystemExit):
        module.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"{flag} " in out and " ".join(docstring_fields(cls.__doc__)[field].split()) in out


@pytest.mark.parametrize(
    ("name", "argv", "message"),
    [
        ("eval", ["--model", "m", "--set", "atempt_max_tokens=8"], "did you mean 'attempt_max_tokens'"),
        ("eval", ["--model", "m", "--set", "n=many"], "n must be an integer or null"),
        ("eval", ["--task", "countdown"], "give --model"),
        ("mine", ["--model", "m"], "needs a model and an output_dir"),
        ("mine", ["--model", "m", "--output-dir", "o", "--task-kwargs", "{"], "--task-kwargs is not JSON"),
        ("curriculum", ["--output-dir", "o"], "task required"),
        ("curriculum", ["--task", "t", "--output-dir", "o", "--set", "sft.lora=8"], "did you mean 'lora_r'"),
    ],
)
def test_driver_errors_are_one_line(name, argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module, _ = _driver(name)
    assert module.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_curriculum_driver_runs_from_its_recipe(tmp_path, capsys):
    """``rrr curriculum --config`` end to end (the oracle teacher, stages 1-2): the recipe's settings reach the run."""
    from rrr.cli import curriculum

    recipe = os.path.join(ROOT, "recipes", "smoke", "curriculum", "scheduling.yaml")
    out = tmp_path / "run"
    sets = ["student=null", "num_train=4", "num_test=4", "curriculum.reflections=false", "task_kwargs={strict: true}"]
    argv = ["--config", recipe, *[a for s in sets for a in ("--set", s)], "--batch-size", "2", "--distill-every", "1"]
    assert curriculum.main([*argv, "--no-teacher-eval", "--quiet", "--output-dir", str(out)]) == 0
    summary = json_load(out / "summary.json")
    assert summary["curriculum"]["reflection_path"] is None and summary["curriculum"]["sft_rows"] > 0
    assert "summary:" in capsys.readouterr().out


def json_load(path):
    import json

    with open(path) as f:
        return json.load(f)
