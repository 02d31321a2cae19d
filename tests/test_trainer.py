"""The RRR trainer on a tiny CPU model: credit assignment, learning, resume, and start-up validation."""

from __future__ import annotations

import json
import os

import pytest
import torch
from synthetic import SYMBOLS, KeyTask, copy_rate, warm_start
from trl import ModelConfig

from rrr.episode import EpisodeConfig, run_episodes
from rrr.generation import HFGenerator, SamplingParams
from rrr.models import build_tiny_model, build_tiny_tokenizer, save_tiny_model
from rrr.training import RRRConfig, build_trainer, train
from rrr.training.config import QUIET_CPU_RUN
from rrr.utils.io import read_jsonl


def key_args(tmp_path, **overrides) -> RRRConfig:
    base = dict(
        output_dir=str(tmp_path / "run"),
        task="synthetic:KeyTask",
        dataset_source="generated",
        dataset_size=256,
        first_attempt_source="column",
        max_completion_length=3,
        retry_max_tokens=3,
        num_generations=8,
        per_device_train_batch_size=32,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        max_steps=2,
        **QUIET_CPU_RUN,
        seed=0,
    )
    base.update(overrides)
    return RRRConfig(**base)


def retry_success(model, tok, n: int = 200) -> float:
    """Mean retry success over sampled (T=1) reflections on held-out keys — the shared episode code."""
    task = KeyTask()
    examples = task.generate(n, seed=99, split="test")
    cfg = EpisodeConfig(
        reflection=SamplingParams(3, temperature=1.0, seed=0),
        retry=SamplingParams(3, temperature=0.0),
        reflections_per_failure=2,
    )
    episodes = run_episodes(task, HFGenerator(model, tok), examples, cfg, [ex["failed_attempt"] for ex in examples])
    outcomes = [o for ep in episodes for o in ep.reflections]
    return sum(o.success_rate for o in outcomes) / len(outcomes)


# ------------------------------------------------------------------------------------------------------------------
# Credit assignment
# ------------------------------------------------------------------------------------------------------------------
def _training_batch(trainer):
    """One generation batch exactly as TRL builds it: G consecutive copies of each row."""
    ds = trainer.train_dataset
    g = trainer.num_generations
    return [dict(ds[i]) for i in range(trainer.args.per_device_train_batch_size // g) for _ in range(g)]


def _loss_and_grads(trainer, inputs):
    model = trainer.model
    model.zero_grad()
    captured = {}

    def keep_hidden(module, args, output):
        output.retain_grad()
        captured["h"] = output

    handle = model.model.norm.register_forward_hook(keep_hidden)
    try:
        loss = trainer.compute_loss(model, inputs)
        loss.backward()
    finally:
        handle.remove()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).clone()
    return captured["h"].grad.detach().clone(), grads


@pytest.fixture
def credit_setup(tmp_path):
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok)
    # "keep": the random model fails every retry, and masked no-signal groups would hide the tokens under test.
    # TRL's own scoring (one pass per row): the positional checks read that pass's final hidden states; shared-prompt
    # scoring gives the same gradients (tests/test_shared_prompt_scoring.py)
    args = key_args(tmp_path, no_signal_groups="keep", shared_prompt_scoring=False)
    trainer, _ = build_trainer(args, ModelConfig(), model=model, tokenizer=tok)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train's loop
    torch.manual_seed(0)
    rows = _training_batch(trainer)
    inputs = trainer._generate_and_score_completions(rows)
    records = trainer._rrr_last_records_for_tests
    # fixed, non-zero advantages so every row carries gradient regardless of what the random model sampled
    inputs["advantages"] = torch.linspace(-1.0, 1.0, inputs["completion_ids"].size(0))
    return trainer, tok, inputs, records


def test_only_reflection_tokens_are_trained(credit_setup):
    _, tok, inputs, records = credit_setup
    mask = inputs["completion_mask"] * inputs.get("tool_mask", torch.ones_like(inputs["completion_mask"]))
    for i, rec in enumerate(records):
        trained = inputs["completion_ids"][i][mask[i].bool()].tolist()
        prompt = tok.decode(inputs["prompt_ids"][i][inputs["prompt_mask"][i].bool()].tolist())
        # the trained tokens are exactly the sampled reflection; the failed attempt is context; the retry is absent
        assert tok.decode(trained, skip_special_tokens=True) == rec["reflection"]
        assert prompt.endswith("<|im_start|>assistant\n") and "\nreflect " in prompt
        assert f"assistant\n{rec['first_attempt']}<|im_end|>" in prompt
        assert "retry" not in prompt


def test_loss_gives_no_credit_to_first_attempt_or_prompt(credit_setup):
    """d loss / d (final hidden state) is exactly zero at every position that predicts a prompt token
    (task, first attempt, reflection request) and non-zero where it predicts a reflection token."""
    trainer, _, inputs, _ = credit_setup
    hidden_grad, _ = _loss_and_grads(trainer, inputs)
    per_pos = hidden_grad.abs().sum(-1)  # (B, T)
    p = inputs["prompt_ids"].size(1)
    mask = inputs["completion_mask"] * inputs.get("tool_mask", torch.ones_like(inputs["completion_mask"]))
    assert torch.all(per_pos[:, : p - 1] == 0), "a prompt (first-attempt) token received credit"
    predicts_completion = per_pos[:, p - 1 : p - 1 + mask.size(1)]
    assert torch.all(predicts_completion[mask.bool()] > 0), "a reflection token received no gradient"
    assert torch.all(predicts_completion[~mask.bool()] == 0), "a padded/masked completion position got credit"


def test_gradient_changes_with_reflection_not_with_retry(credit_setup, monkeypatch):
    from rrr.generation.base import Generation
    from rrr.training import trl_adapter

    trainer, tok, inputs, _ = credit_setup
    _, g0 = _loss_and_grads(trainer, inputs)

    # the same step again, with the same sampled reflections but every retry rewritten: the batch is identical
    original = trl_adapter.TrainerGenerator.generate

    def other_retries(self, conversations, params):
        gens = original(self, conversations, params)
        if conversations and conversations[0][-1]["content"] == KeyTask.retry_instruction:
            ids = tok("zzz totally different retry", add_special_tokens=False)["input_ids"]
            gens = [
                Generation(text="zzz totally different retry", token_ids=ids, prompt_ids=g.prompt_ids) for g in gens
            ]
        return gens

    monkeypatch.setattr(trl_adapter.TrainerGenerator, "generate", other_retries)
    torch.manual_seed(0)
    rows = _training_batch(trainer)
    again = trainer._generate_and_score_completions(rows)
    assert all(r["retries"] == ["zzz totally different retry"] for r in trainer._rrr_last_records_for_tests)
    for key in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask"):
        assert torch.equal(again[key], inputs[key]), key
    again["advantages"] = inputs["advantages"]
    _, g_retry = _loss_and_grads(trainer, again)
    assert torch.equal(g0, g_retry)

    # a different reflection token changes it
    changed = dict(inputs)
    ids = inputs["completion_ids"].clone()
    q, r = tok.convert_tokens_to_ids("q"), tok.convert_tokens_to_ids("r")
    ids[0, 0] = q if ids[0, 0] != q else r
    changed["completion_ids"] = ids
    _, g1 = _loss_and_grads(trainer, changed)
    assert (g1 - g0).norm() / g0.norm() > 1e-3


# ------------------------------------------------------------------------------------------------------------------
# Learning
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_rrr_lifts_retry_success_from_chance_to_majority(tmp_path):
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok)
    warm_start(model, tok)
    assert copy_rate(model, tok) >= 0.9, "warm start must teach the retry to follow the reflection"
    before = retry_success(model, tok)
    assert before < 0.45, f"before RRR the reflection should be near chance (1/{len(SYMBOLS)}), got {before:.2f}"
    args = key_args(tmp_path, max_steps=60, dataset_size=512, logging_steps=10)
    summary = train(args, ModelConfig(), model=model, tokenizer=tok)
    model.eval()
    after = retry_success(model, tok)
    assert after > 0.75, f"RRR should lift retry success from {before:.2f} to a clear majority, got {after:.2f}"
    episodes = read_jsonl(os.path.join(args.output_dir, "episodes.jsonl"))
    assert {"reflection", "retries", "retry_passed", "reward", "advantage", "first_attempt"} <= set(episodes[0])
    assert summary["global_step"] == 60
    assert summary["generated_tokens"] > 0


# ------------------------------------------------------------------------------------------------------------------
# Resume
# ------------------------------------------------------------------------------------------------------------------
def test_stopped_run_resumes_from_its_checkpoint(tmp_path):
    from transformers import TrainerCallback
    from trl import ModelConfig as MC

    model_dir = save_tiny_model(str(tmp_path / "tiny"))
    args = key_args(tmp_path, max_steps=4, save_strategy="steps", save_steps=2, dataset_size=64)
    model_args = MC(model_name_or_path=model_dir)

    class StopAfterThree(TrainerCallback):  # a crash after checkpoint-2: step 2 is logged but not checkpointed
        def on_step_end(self, a, state, control, **kw):
            if state.global_step == 3:
                control.should_training_stop = True

    trainer, _ = build_trainer(args, model_args)
    trainer.add_callback(StopAfterThree())
    trainer.train()
    assert os.path.isdir(os.path.join(args.output_dir, "checkpoint-2"))
    assert not os.path.isdir(os.path.join(args.output_dir, "checkpoint-3"))
    logged = [row["step"] for row in read_jsonl(os.path.join(args.output_dir, "episodes.jsonl"))]
    assert max(logged) == 2

    args2 = key_args(tmp_path, max_steps=4, save_strategy="steps", save_steps=2, dataset_size=64)
    summary = train(args2, model_args)
    assert summary["resumed_from"].endswith("checkpoint-2")
    assert summary["global_step"] == 4
    assert os.path.exists(os.path.join(args.output_dir, "model.safetensors"))
    steps = [row["step"] for row in read_jsonl(os.path.join(args.output_dir, "episodes.jsonl"))]
    assert set(steps) == {0, 1, 2, 3}
    per_step = {s: steps.count(s) for s in set(steps)}
    assert len(set(per_step.values())) == 1, f"episodes of a re-run step were logged twice: {per_step}"
    with open(os.path.join(args.output_dir, "run_summary.json")) as f:
        assert json.load(f)["global_step"] == 4


# ------------------------------------------------------------------------------------------------------------------
# Start-up validation
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(per_device_train_batch_size=12, num_generations=8), "divisible by num_generations"),
        (dict(bf16=True), "bf16"),
        (dict(retries_per_reflection=3, retry_temperature=0.0), "retry_temperature"),
        (dict(first_attempt_source="cache"), "first_attempt_source"),
        (dict(no_signal_groups="drop"), "no_signal_groups"),
        (dict(first_attempt_source="column", first_attempt_tries=4), "first_attempt_tries"),
        (dict(use_vllm=True, vllm_enable_sleep_mode=True), "vllm"),  # impossible with or without vllm installed
        (dict(task_kwargs="{not json"), "task_kwargs"),
        (dict(leak_penalty=-1.0), "leak_penalty"),
    ],
)
def test_impossible_configs_fail_at_startup(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        key_args(tmp_path, **overrides)


def test_missing_first_attempt_column_is_a_clear_error(tmp_path):
    from rrr.tasks import TaskDataError

    rows = tmp_path / "keys.jsonl"
    rows.write_text("\n".join(json.dumps({"key": k}) for k in range(8)))
    args = key_args(tmp_path, dataset_source=str(rows), dataset_size=None)
    tok = build_tiny_tokenizer()
    with pytest.raises(TaskDataError, match="failed_attempt"):
        build_trainer(args, ModelConfig(), model=build_tiny_model(tok), tokenizer=tok)


def test_unknown_task_lists_known_ones(tmp_path):
    tok = build_tiny_tokenizer()
    with pytest.raises(ValueError, match="countdown"):
        build_trainer(key_args(tmp_path, task="nope"), ModelConfig(), model=build_tiny_model(tok), tokenizer=tok)


# ------------------------------------------------------------------------------------------------------------------
# Several processes
# ------------------------------------------------------------------------------------------------------------------
def test_two_processes_keep_groups_whole(tmp_path):
    """DDP on CPU (gloo): every GRPO group lives on one process, and metrics are reduced across processes."""
    import subprocess
    import sys
    from collections import Counter

    model_dir = save_tiny_model(str(tmp_path / "tiny"))
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "scripts/train_grpo.py"]
    cmd += ["--config", "recipes/smoke/rrr/config_countdown.yaml", "--model_name_or_path", model_dir]
    cmd += ["--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no", "--no_signal_groups", "keep"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    group = 4  # num_generations in the smoke recipe
    ids_by_rank = []
    for name in ("episodes.jsonl", "episodes.rank1.jsonl"):
        rows = read_jsonl(str(out / name))
        counts = Counter((r["step"], r["task_id"]) for r in rows)
        assert counts and all(c % group == 0 for c in counts.values()), counts
        ids_by_rank.append({key for key in counts})
    assert not ids_by_rank[0] & ids_by_rank[1], "the two processes reflected on the same task in the same step"
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["global_step"] == 2 and "rrr/retry_success" in summary["last_log"]


# ------------------------------------------------------------------------------------------------------------------
# Outcome GRPO (the ablation baseline)
# ------------------------------------------------------------------------------------------------------------------
def test_outcome_reward_is_the_verifier():
    from rrr.tasks import get_task
    from rrr.training.outcome import make_outcome_reward

    task = get_task("scheduling")
    ex = task.generate(2, seed=0)
    good = [{"role": "assistant", "content": task.reference_answer(ex[0])}]
    bad = [{"role": "assistant", "content": "<answer>MAYBE</answer>"}]
    columns = {k: [ex[0][k], ex[0][k]] for k in ex[0]}
    assert make_outcome_reward(task)(prompts=[None, None], completions=[good, bad], **columns) == [1.0, 0.0]
    assert make_outcome_reward(task).__name__ == "outcome_reward"


def test_outcome_grpo_stops_at_the_token_budget(tmp_path):
    from rrr.training.outcome import train_outcome

    model_dir = save_tiny_model(str(tmp_path / "tiny"))
    args = RRRConfig(
        output_dir=str(tmp_path / "outcome"),
        task="scheduling",
        dataset_source="generated",
        dataset_size=32,
        max_completion_length=8,
        num_generations=4,
        per_device_train_batch_size=8,
        max_steps=50,
        **QUIET_CPU_RUN,
    )
    summary = train_outcome(args, ModelConfig(model_name_or_path=model_dir), token_budget=150)
    assert 150 <= summary["generated_tokens"] <= 150 + 8 * 8  # stops within one step of the budget
    assert summary["global_step"] < 50


def test_grpo_starts_from_an_sft_adapter_directory(tmp_path):
    """An SFT LoRA adapter dir as model_name_or_path is merged into its base and fully trained."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = save_tiny_model(str(tmp_path / "tiny"))
    adapter_dir = str(tmp_path / "adapter")
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj"]))
    peft_model.save_pretrained(adapter_dir)
    build_tiny_tokenizer().save_pretrained(adapter_dir)
    args = key_args(tmp_path, max_steps=1, no_signal_groups="keep", dataset_size=32)
    trainer, _ = build_trainer(args, ModelConfig(model_name_or_path=adapter_dir))
    params = dict(trainer.model.named_parameters())
    assert not any("lora" in n for n in params), "the adapter must be merged, not trained as a frozen base + LoRA"
    assert all(p.requires_grad for p in params.values())
    summary = train(args, ModelConfig(model_name_or_path=adapter_dir))  # a frozen base crashed in backward here
    assert summary["global_step"] == 1
