"""Bad data and configs: one readable line and exit 2 before anything is written, or an explicit counted skip.

Every test here failed on the code before these checks (commit 7157e79): there a wrong type in a recipe was a
traceback from the trainer's ``__init__``, an empty file a bare ``StopIteration``, unparseable APIGen rows and
missing first attempts trained silently, a one-row dataset "trained" 0 steps with exit 0, and an over-long prompt
went to the model. Scripts run as subprocesses where the exit status and stderr are the contract.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import yaml
from trl import ModelConfig

from rrr.models import build_tiny_model, build_tiny_tokenizer, save_tiny_model
from rrr.tasks import TaskDataError, get_task
from rrr.training import RRRConfig, build_trainer
from rrr.training.config import QUIET_CPU_RUN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model"))


def nothing_written(path) -> bool:
    """A refused run leaves no output directory (training removes the one it claimed when start-up checks fail)."""
    return not os.path.exists(path)


def recipe(tmp_path, tiny_dir, **overrides) -> str:
    """The countdown smoke recipe on the tiny model, with ``overrides``, as a YAML file."""
    with open(os.path.join(ROOT, "recipes/smoke/rrr/config_countdown.yaml")) as f:
        config = yaml.safe_load(f)
    config.update(model_name_or_path=tiny_dir, output_dir=str(tmp_path / "out"), save_strategy="no", **overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run_script(script: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    # datasets' progress bars are not part of the error contract; without them stderr is exactly what rrr printed
    env = dict(os.environ, HF_DATASETS_DISABLE_PROGRESS_BARS="1", OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    cmd = [sys.executable, os.path.join(SCRIPTS, script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=cwd or ROOT)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# ------------------------------------------------------------------------------------------------------------------
# 1. Config errors: one line naming the field, exit 2, nothing written
# ------------------------------------------------------------------------------------------------------------------
def test_a_list_where_an_int_belongs_is_one_line_naming_the_field(tmp_path, tiny_dir):
    result = run_script("train_grpo.py", "--config", recipe(tmp_path, tiny_dir, max_steps=[6]))
    line = one_error_line(result)
    assert "max_steps" in line and "integer" in line and "[6]" in line
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_steps", [6], "an integer"),
        ("num_generations", 4.5, "an integer"),
        ("learning_rate", [1e-4], "a number"),
        ("logging_steps", True, "a number"),  # YAML `yes` is not a step count
        ("use_cpu", "maybe", "true or false"),
        ("report_to", 5, "a list of strings"),
        ("task_kwargs", [1], "a mapping"),
    ],
)
def test_every_field_type_is_checked_from_its_annotation(tmp_path, field, value, words):
    from rrr.utils.cli import ConfigError

    base = dict(output_dir=str(tmp_path / "out"), **QUIET_CPU_RUN)
    with pytest.raises(ConfigError, match=field) as raised:
        RRRConfig(**{**base, field: value})
    assert words in str(raised.value)


def test_sft_config_and_model_config_are_type_checked_too(tmp_path):
    from rrr.curriculum.sft import CurriculumSFTConfig
    from rrr.utils.cli import ConfigError
    from rrr.utils.config import check_field_types

    with pytest.raises(ConfigError, match="max_steps must be an integer"):
        CurriculumSFTConfig(output_dir=str(tmp_path), dataset_path="x.jsonl", max_steps=[6], **QUIET_CPU_RUN)
    with pytest.raises(ConfigError, match="lora_r must be an integer"):
        check_field_types(ModelConfig(lora_r=[16]))


def test_parser_errors_are_one_line_and_bugs_stay_tracebacks(tmp_path, tiny_dir, capsys):
    """In-process (no interpreter start-up): the runner's contract for errors the parsers raise."""
    from rrr.curriculum.sft import parse_sft_args
    from rrr.training import parse_train_args
    from rrr.utils.cli import run

    unknown = recipe(tmp_path, tiny_dir, max_stpes=6)
    assert run(lambda: parse_train_args(["--config", unknown])) == 2
    assert run(lambda: parse_train_args(["--config", str(tmp_path / "missing.yaml")])) == 2
    (tmp_path / "broken.yaml").write_text("max_steps: [6\n")
    assert run(lambda: parse_train_args(["--config", str(tmp_path / "broken.yaml")])) == 2
    # TRL's own __post_init__ check, raised as a plain ValueError inside the SFT parser
    sft = ["--output_dir", str(tmp_path / "sft"), "--dataset_path", "x.jsonl", "--use_cpu", "true", "--bf16", "false"]
    mismatch = ["--load_best_model_at_end", "true", "--eval_strategy", "steps", "--save_strategy", "epoch"]
    assert run(lambda: parse_sft_args([*sft, *mismatch])) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines), lines
    assert "max_stpes" in lines[0] and "missing.yaml" in lines[1] and "YAML" in lines[2] and "strategy" in lines[3]
    with pytest.raises(ZeroDivisionError):
        run(lambda: 1 / 0)
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "sft")


def test_every_script_runs_through_the_runner():
    scripts = sorted(f for f in os.listdir(SCRIPTS) if f.endswith(".py"))
    assert len(scripts) >= 12
    for name in scripts:
        with open(os.path.join(SCRIPTS, name)) as f:
            tail = f.read().rstrip().splitlines()[-4:]
        assert tail[0] == 'if __name__ == "__main__":' and "run(main)" in tail[-1], (name, tail)


# ------------------------------------------------------------------------------------------------------------------
# 2. Unreadable files and rows: an error at load time naming the file/row, or a counted skip when asked for
# ------------------------------------------------------------------------------------------------------------------
def test_an_empty_dataset_file_is_one_line_not_stop_iteration(tmp_path, tiny_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = run_script("train_grpo.py", "--config", recipe(tmp_path, tiny_dir, dataset_source=str(empty)))
    line = one_error_line(result)
    assert "empty.jsonl" in line and "empty" in line.split("empty.jsonl")[1] and "StopIteration" not in line
    assert nothing_written(tmp_path / "out")


def test_a_json_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"nums": [1, 2, 3], "target": 6}\n{"nums": [1, 2, 3], "target": 6\n')
    with pytest.raises(TaskDataError, match=r"broken\.jsonl.*line 2") as raised:
        get_task("countdown").load(source=str(path))
    assert "\n" not in str(raised.value)


APIGEN_OK = {"query": "Weather in Paris?", "tools": '[{"name": "get_weather"}]', "answers": "[]"}


def apigen_rows():
    good = dict(APIGEN_OK, answers='[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    return [good, dict(good, answers="not json at all"), good, dict(good, answers='{"name": 5}')]


def test_apigen_rows_whose_answers_are_not_json_fail_at_load(tmp_path):
    path = write_jsonl(tmp_path / "api.jsonl", apigen_rows())
    with pytest.raises(TaskDataError) as raised:
        get_task("apigen").load(source=path)
    message = str(raised.value)
    assert "2 of 4 rows" in message and "row 1: answers" in message and "row 3" in message
    assert "on_bad_row" in message  # the way out is named


def test_bad_rows_are_skipped_and_counted_when_asked(tmp_path, caplog):
    path = write_jsonl(tmp_path / "api.jsonl", apigen_rows())
    with caplog.at_level(logging.WARNING):
        ds = get_task("apigen", on_bad_row="skip").load(source=path)
    assert len(ds) == 2 and "not json" not in json.dumps(ds.to_list())
    assert "skipped 2 of 4 rows" in caplog.text and "row 1" in caplog.text
    for task in ("countdown", "scheduling"):  # every task takes the option, whatever its constructor
        assert get_task(task, on_bad_row="skip").on_bad_row == "skip"
    with pytest.raises(ValueError, match="on_bad_row"):
        get_task("countdown", on_bad_row="ignore")


def test_countdown_and_scheduling_rows_are_checked_too(tmp_path):
    countdown = write_jsonl(tmp_path / "cd.jsonl", [{"nums": [1, 2, 3], "target": 6}, {"nums": [1, 2], "target": None}])
    with pytest.raises(TaskDataError, match="row 1: target"):
        get_task("countdown").load(source=countdown)
    meetings = [{"meetings": [[9, 10], [9, 11]], "rooms": 2}, {"meetings": [[11, 10]], "rooms": 1}]
    with pytest.raises(TaskDataError, match="row 1: meeting 0 does not end after it starts"):
        get_task("scheduling").load(source=write_jsonl(tmp_path / "s.jsonl", meetings))


# ------------------------------------------------------------------------------------------------------------------
# 3. A dataset too small for one step
# ------------------------------------------------------------------------------------------------------------------
def test_a_dataset_too_small_for_one_step_is_a_startup_error(tmp_path, tiny_dir):
    # the smoke recipe: 8 reflections per step in groups of 4 -> 2 tasks per step; 1 row used to train 0 steps, exit 0
    result = run_script("train_grpo.py", "--config", recipe(tmp_path, tiny_dir, dataset_size=1, max_steps=1))
    line = one_error_line(result)
    assert "1 usable row(s)" in line and "needs 2 tasks" in line and "per_device_train_batch_size 8" in line
    assert nothing_written(tmp_path / "out")


# ------------------------------------------------------------------------------------------------------------------
# 4 and 5: column-mode first attempts, prompt lengths (in-process: build_trainer with the model passed in)
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_context_model():
    """The tiny model with a 2048-token context, so a few kB of prompt exceed it (rope does not care; the check
    reads the config)."""
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer)
    model.config.max_position_embeddings = 2048
    return model, tokenizer


def grpo_args(tmp_path, **overrides) -> RRRConfig:
    base = dict(
        output_dir=str(tmp_path / "run"),
        task="countdown",
        attempt_max_tokens=24,
        retry_max_tokens=24,
        max_completion_length=16,
        num_generations=4,
        per_device_train_batch_size=8,
        max_steps=1,
        **QUIET_CPU_RUN,
    )
    return RRRConfig(**{**base, **overrides})


def test_missing_or_empty_stored_first_attempts_are_a_startup_error(tmp_path, short_context_model):
    model, tokenizer = short_context_model
    rows = [{"nums": [1, 2, 3], "target": 7, "failed_attempt": "<answer>1+2+3</answer>"} for _ in range(4)]
    rows[1]["failed_attempt"] = None
    rows[3]["failed_attempt"] = "  "
    source = write_jsonl(tmp_path / "mined.jsonl", rows)
    args = grpo_args(tmp_path, dataset_source=source, first_attempt_source="column")
    with pytest.raises(TaskDataError) as raised:
        build_trainer(args, ModelConfig(), model=model, tokenizer=tokenizer)
    message = str(raised.value)
    assert "'failed_attempt'" in message and "row 1 (null)" in message and "row 3 (empty)" in message
    assert nothing_written(args.output_dir)

    from rrr.training.rollout import stored_first_attempts  # the rollout's own guard, for trainers built without it

    with pytest.raises(TaskDataError, match="no stored first attempt"):
        stored_first_attempts(get_task("countdown"), rows[:2], "failed_attempt")


def long_apigen_rows(n: int = 4, long_row: int = 2, chars: int = 6000):
    rows = [dict(apigen_rows()[0]) for _ in range(n)]
    rows[long_row]["query"] = "Weather in Paris? " + "please " * (chars // 7)
    return rows


def test_a_prompt_longer_than_the_context_is_a_startup_error(tmp_path, short_context_model):
    model, tokenizer = short_context_model
    source = write_jsonl(tmp_path / "long.jsonl", long_apigen_rows())
    args = grpo_args(tmp_path, task="apigen", dataset_source=source)
    with pytest.raises(TaskDataError) as raised:
        build_trainer(args, ModelConfig(), model=model, tokenizer=tokenizer)
    message = str(raised.value)
    assert "1 of 4 rows" in message and "context of 2048 tokens" in message and "row 2's retry reaches" in message
    assert "max_position_embeddings" in message
    # opted in: the row is dropped, the run starts with the others
    args = grpo_args(tmp_path, task="apigen", dataset_source=source, task_kwargs={"on_bad_row": "skip"})
    trainer, _ = build_trainer(args, ModelConfig(), model=model, tokenizer=tokenizer)
    assert len(trainer.train_dataset) == 3


def test_the_retry_worst_case_counts_every_phase_budget(tmp_path, short_context_model):
    """A prompt that fits alone but not with attempt + reflection + retry budgets is refused."""
    model, tokenizer = short_context_model
    source = write_jsonl(tmp_path / "mid.jsonl", long_apigen_rows(chars=0))  # every prompt ~500 tokens alone
    small = grpo_args(tmp_path, task="apigen", dataset_source=source)
    build_trainer(small, ModelConfig(), model=model, tokenizer=tokenizer)
    big = grpo_args(tmp_path, task="apigen", dataset_source=source, attempt_max_tokens=700, retry_max_tokens=700)
    with pytest.raises(TaskDataError, match="attempt_max_tokens 700"):
        build_trainer(big, ModelConfig(), model=model, tokenizer=tokenizer)


def test_evaluation_checks_prompt_lengths_before_writing(tmp_path, short_context_model):
    from rrr.evaluation.evaluate import EvalConfig, evaluate
    from rrr.generation import HFGenerator

    model, tokenizer = short_context_model
    source = write_jsonl(tmp_path / "long.jsonl", long_apigen_rows())
    config = EvalConfig(task="apigen", source=source, split="train", attempt_max_tokens=8, retry_max_tokens=8)
    out = tmp_path / "eval"
    with pytest.raises(TaskDataError, match="row 2's retry reaches"):
        evaluate(HFGenerator(model, tokenizer), config, str(out), progress=False)
    assert not out.exists()


def test_the_length_check_is_cheap_on_thousands_of_rows(short_context_model):
    import time

    from rrr.episode import EpisodeConfig
    from rrr.episode.episode import check_context_lengths
    from rrr.generation import SamplingParams

    _, tokenizer = short_context_model
    task = get_task("apigen")
    rows = task.generate(3000, seed=0)
    budgets = EpisodeConfig(SamplingParams(64), SamplingParams(64), SamplingParams(64))
    start = time.perf_counter()
    assert len(check_context_lengths(task, tokenizer, rows, budgets, 1 << 20, "test")) == 3000  # bytes bound: fits
    fits = time.perf_counter() - start
    start = time.perf_counter()
    with pytest.raises(TaskDataError, match="3000 of 3000 rows"):  # every row tokenized exactly
        check_context_lengths(task, tokenizer, rows, budgets, 512, "test")
    exact = time.perf_counter() - start
    assert fits < 5 and exact < 20, (fits, exact)
