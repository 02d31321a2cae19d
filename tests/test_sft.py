"""Stage 3: a tiny student fine-tuned on the oracle curriculum — loss on completions only, a loadable adapter, a merged
model for GRPO, the whole pipeline end to end with a student, and the SFT config/recipes."""

from __future__ import annotations

import glob
import json
import os

import pytest
from trl import ModelConfig

from rrr.curriculum.dataset import CurriculumConfig, build_curriculum
from rrr.curriculum.sft import CurriculumSFTConfig, build_sft_trainer, check_sft_recipe, parse_sft_args, train_sft
from rrr.curriculum.teachers import OracleTeacher
from rrr.models import load_model_and_tokenizer, load_tokenizer, save_tiny_model
from rrr.tasks import get_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("tiny") / "tiny-model"))  # hidden 64, 2 layers


@pytest.fixture(scope="module")
def curriculum(tmp_path_factory):
    task = get_task("scheduling", strict=True)
    out = tmp_path_factory.mktemp("curriculum")
    examples = task.generate(6, seed=5)
    return build_curriculum(
        task,
        OracleTeacher(task),
        examples,
        "strategy",
        str(out),
        CurriculumConfig(progress=False, synthetic_failures=2),
    )


def sft_args(tmp_path, curriculum, **overrides) -> CurriculumSFTConfig:
    base = dict(
        output_dir=str(tmp_path / "sft"),
        dataset_path=curriculum.sft_path,
        reflection_dataset_path=curriculum.reflection_path,
        task="scheduling",
        task_kwargs={"strict": True},
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        max_length=2048,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        log_level="warning",
        seed=0,
    )
    base.update(overrides)
    return CurriculumSFTConfig(**base)


def lora(tiny_dir, **overrides) -> ModelConfig:
    options = dict(model_name_or_path=tiny_dir, dtype="float32", use_peft=True, lora_r=4, lora_alpha=8)
    options.update(lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], **overrides)
    return ModelConfig(**options)


def test_labels_cover_only_the_completion(tmp_path, tiny_dir, curriculum):
    trainer = build_sft_trainer(sft_args(tmp_path, curriculum), lora(tiny_dir))
    tokenizer = trainer.processing_class
    rows = trainer.train_dataset
    assert len(rows) == curriculum.stats["sft_rows"] + curriculum.stats["reflection_rows"] == 8
    saw_reflection = False
    for row in rows:
        prompt_ids = tokenizer.apply_chat_template(
            row["prompt"], tokenize=True, add_generation_prompt=True, return_dict=False
        )
        n = len(prompt_ids)
        ids, labels = row["input_ids"], row["labels"]
        assert ids[:n] == list(prompt_ids)
        assert all(label == -100 for label in labels[:n])  # task prompt (and any failed attempt) never trained
        assert labels[n:] == ids[n:] and len(ids) > n  # every completion token is trained
        completion = row["completion"][0]["content"]
        assert tokenizer.decode(ids[n:]).startswith(completion + "<|im_end|>")
        saw_reflection |= any(m["role"] == "assistant" for m in row["prompt"])
    assert saw_reflection


def test_tiny_student_sft_saves_a_loadable_adapter(tmp_path, tiny_dir, curriculum):
    summary = train_sft(sft_args(tmp_path, curriculum), lora(tiny_dir))
    out = tmp_path / "sft"
    assert summary["kind"] == "adapter" and summary["global_step"] == 2 and len(summary["losses"]) == 2
    assert json.loads((out / "sft_summary.json").read_text())["train_rows"] == 8
    base = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert os.path.isabs(base) and base == os.path.abspath(tiny_dir)  # resolves from any working directory

    from peft import PeftModel

    model, tokenizer = load_model_and_tokenizer(str(out))
    assert isinstance(model, PeftModel)
    text = "peak: 3 <= 3 rooms\n<answer>YES</answer>"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text  # the char tokenizer

    from rrr.generation import HFGenerator, SamplingParams

    task = get_task("scheduling")
    generation = HFGenerator(model, tokenizer).generate(
        [task.attempt_messages(task.generate(1)[0])], SamplingParams(max_new_tokens=4, temperature=0.0)
    )
    assert len(generation[0].token_ids) <= 4


def test_merged_output_is_a_plain_trainable_model(tmp_path, tiny_dir, curriculum):
    from transformers import AutoModelForCausalLM

    summary = train_sft(sft_args(tmp_path, curriculum, max_steps=1, merge=True), lora(tiny_dir))
    out = str(tmp_path / "sft")
    assert summary["kind"] == "merged" and not os.path.exists(os.path.join(out, "adapter_config.json"))
    model = AutoModelForCausalLM.from_pretrained(out)  # what train_grpo.py does with model_name_or_path
    assert all(p.requires_grad for p in model.parameters())
    assert load_tokenizer(out).decode(load_tokenizer(out)("a b")["input_ids"]) == "a b"


def test_pipeline_end_to_end_with_a_tiny_student(tmp_path, tiny_dir):
    from rrr.curriculum import run_knowledge_transfer

    summary = run_knowledge_transfer(
        "scheduling",
        "oracle",
        tiny_dir,
        str(tmp_path / "run"),
        task_kwargs={"strict": True},
        num_train=4,
        num_test=4,
        batch_size=2,
        distill_every=1,
        sft={"max_steps": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 1e-3},
        eval_max_new_tokens=8,
        progress=False,
    )
    acc = summary["accuracy"]
    assert set(acc) == {"teacher_baseline", "teacher_after", "student_baseline", "student_after"}
    assert acc["student_baseline"]["n"] == acc["student_after"]["n"] == 4
    assert acc["student_after"]["evaluator"] == "rrr.evaluation.evaluate_model"
    assert summary["sft"]["kind"] == "adapter" and summary["sft"]["global_step"] == 2
    assert os.path.exists(os.path.join(summary["student_sft_dir"], "adapter_config.json"))
    with open(os.path.join(summary["output_dir"], "summary.md")) as f:
        markdown = f.read()
    assert "| student after SFT |" in markdown and "| student baseline |" in markdown


def test_sft_config_errors(tmp_path, curriculum):
    with pytest.raises(ValueError, match="dataset_path is required"):
        CurriculumSFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False)
    with pytest.raises(ValueError, match="bf16"):
        sft_args(tmp_path, curriculum, bf16=True)
    with pytest.raises(ValueError, match="task_kwargs must be a JSON object"):
        sft_args(tmp_path, curriculum, task_kwargs="{strict")
    assert sft_args(tmp_path, curriculum, task_kwargs='{"strict": true}').task_kwargs == {"strict": True}


def test_missing_or_wrong_dataset_is_a_clear_error(tmp_path, tiny_dir, curriculum):
    from rrr.curriculum.dataset import CurriculumError

    with pytest.raises(CurriculumError, match="does not exist"):
        build_sft_trainer(sft_args(tmp_path, curriculum, dataset_path=str(tmp_path / "nope")), lora(tiny_dir))
    with pytest.raises(CurriculumError, match="passes the 'countdown' verifier"):
        build_sft_trainer(sft_args(tmp_path, curriculum, task="countdown", task_kwargs=None), lora(tiny_dir))


def test_sft_recipes_parse_with_cli_overrides():
    recipes = sorted(glob.glob(os.path.join(ROOT, "recipes", "*", "sft", "config_*.yaml")))
    assert {os.path.relpath(p, ROOT) for p in recipes} >= {
        "recipes/Qwen2.5-1.5B-Instruct/sft/config_scheduling.yaml",
        "recipes/Qwen2.5-3B-Instruct/sft/config_scheduling.yaml",
        "recipes/smoke/sft/config_scheduling.yaml",
    }
    for path in recipes:
        check_sft_recipe(path)
    smoke = os.path.join(ROOT, "recipes", "smoke", "sft", "config_scheduling.yaml")
    args, model_args = parse_sft_args(["--config", smoke, "--max_steps", "3", "--merge", "true"])
    assert args.max_steps == 3 and args.merge and args.task_kwargs == {"strict": True}
    assert model_args.use_peft and model_args.lora_r == 8 and args.use_cpu and not args.bf16
