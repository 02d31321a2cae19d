"""Integration tests on a real pretrained instruct checkpoint: SmolLM2-135M-Instruct (``make real-model``).

The tiny random model cannot show what a real checkpoint brings: a chat template with its own default system prompt,
a shipped ``generation_config``, an EOS that must be the end of turn, BPE tokenisation of reflections, llama layer
names for LoRA. Every test here asserts one of those on the HF generate path, with tiny problem counts and budgets
(the whole module takes about three minutes on one CPU thread). Skipped, with the reason, when the model is not
installed; ``make test`` installs it first.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from trl import ModelConfig

from rrr.evaluation import EvalConfig, MiningConfig, evaluate, evaluate_model, mine_failures
from rrr.generation import HFGenerator, SamplingParams
from rrr.generation.hf import render_chat
from rrr.models import load_model_and_tokenizer, load_tokenizer
from rrr.models.real import DEFAULT_DIR, installed
from rrr.tasks import get_task
from rrr.training import RRRConfig, build_trainer, train
from rrr.training.config import QUIET_CPU_RUN
from rrr.utils.io import read_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: RRR_REAL_MODEL_DIR points the tests at another conversion (e.g. a deliberately broken copy, to see them fail)
MODEL_DIR = os.environ.get("RRR_REAL_MODEL_DIR") or os.path.join(ROOT, DEFAULT_DIR)
SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(
        installed(MODEL_DIR) is None,
        reason=f"SmolLM2-135M-Instruct is not installed in {DEFAULT_DIR}: run `make real-model`",
    ),
]


@pytest.fixture(scope="module")
def real():
    """The converted checkpoint, loaded once (read-only: tests that train load their own copy)."""
    return load_model_and_tokenizer(MODEL_DIR, dtype="float32", device="cpu")


class Recorder:
    """An ``HFGenerator`` that keeps every generation it makes (with the conversations), for the checks below."""

    def __init__(self, model, tokenizer):
        self.inner = HFGenerator(model, tokenizer, batch_size=16)
        self.calls: list[tuple[list, list]] = []

    def generate(self, conversations, params):
        gens = self.inner.generate(conversations, params)
        self.calls.append((list(conversations), gens))
        return gens


def eot_id(tok) -> int:
    return tok.convert_tokens_to_ids("<|im_end|>")


def as_ids(value) -> set:
    return set(value) if isinstance(value, list) else {value}


def assert_one_chat_template(text: str) -> None:
    """The template ran once over the whole conversation: one system block, first, and the generation prompt last."""
    assert text.count("<|im_start|>system\n") == 1, text[:300]
    assert text.startswith("<|im_start|>system\n"), text[:100]
    assert text.endswith("<|im_start|>assistant\n"), text[-100:]


def assert_clean_generation(tok, gen) -> None:
    """Stops at the model's own end of turn (once, last), and its text is the decoded tokens without specials."""
    eot = eot_id(tok)
    if not gen.truncated:
        assert gen.token_ids[-1] == eot, tok.decode(gen.token_ids[-5:])
    assert eot not in gen.token_ids[:-1]
    assert not any(s in gen.text for s in SPECIAL), gen.text
    assert gen.text == tok.decode(gen.token_ids, skip_special_tokens=True)


# ------------------------------------------------------------------------------------------------------------------
# The checkpoint itself
# ------------------------------------------------------------------------------------------------------------------
def test_converted_checkpoint_keeps_template_eos_and_generation_config(real):
    model, tok = real
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == eot_id(tok) == 2
    assert tok.pad_token_id is not None
    with open(os.path.join(MODEL_DIR, "generation_config.json")) as f:
        shipped = json.load(f)
    # as shipped: the generation config is not rewritten by loading (what HF generate and TRL read their ids from)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(model.generation_config, key) == shipped[key]
    assert shipped["eos_token_id"] == tok.eos_token_id
    task = get_task("countdown")
    example = dict(task.load(split="test", n=1, seed=0, source="generated")[0])
    ids = render_chat(tok, task.attempt_messages(example))
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") and ids[1] != ids[0]  # no BOS in front of the template
    assert_one_chat_template(tok.decode(ids))
    # the model's default system prompt replaces none of the task's: a conversation with a system message has one
    with_system = [{"role": "system", "content": "Be brief."}, *task.attempt_messages(example)]
    text = tok.decode(render_chat(tok, with_system))
    assert_one_chat_template(text)
    assert "<|im_start|>system\nBe brief.<|im_end|>" in text and "SmolLM" not in text
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(LLAMA_LINEAR) <= names, names


def test_gguf_file_loads_directly_as_the_converted_model(real, tmp_path):
    from rrr.models.real import smollm2_gguf_path

    model, tok = real
    gguf = smollm2_gguf_path()
    gguf_tok = load_tokenizer(gguf)
    assert gguf_tok.eos_token == "<|im_end|>"  # the file itself says <|im_start|>
    conversation = get_task("scheduling").attempt_messages(
        dict(get_task("scheduling").load(split="test", n=1, seed=0, source="generated")[0])
    )
    assert render_chat(gguf_tok, conversation) == render_chat(tok, conversation)
    gguf_model, _ = load_model_and_tokenizer(gguf)
    assert gguf_model.generation_config.eos_token_id == gguf_tok.eos_token_id
    ids = torch.tensor([render_chat(tok, conversation)])
    with torch.no_grad():
        torch.testing.assert_close(gguf_model(ids).logits, model(ids).logits, rtol=0, atol=1e-5)
    gguf_model.save_pretrained(tmp_path / "saved")  # an ordinary model: transformers refuses a GGUF-loaded one
    assert (tmp_path / "saved" / "model.safetensors").exists()


# ------------------------------------------------------------------------------------------------------------------
# Evaluation and mining
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task_name", ["countdown", "scheduling"])
def test_evaluation_and_mining_on_the_real_model(real, task_name, tmp_path):
    model, tok = real
    gen = Recorder(model, tok)
    config = EvalConfig(
        task=task_name,
        n=3,
        source="generated",
        attempt_max_tokens=48,
        reflection_max_tokens=32,
        retry_max_tokens=48,
        batch_size=8,
    )
    results = evaluate(gen, config, output_dir=str(tmp_path / "eval"), progress=False)
    assert results["metrics"]["n"] == 3 and (tmp_path / "eval" / "results.json").exists()
    task = get_task(task_name)
    for conversations, gens in gen.calls:
        for conversation, g in zip(conversations, gens):
            assert_one_chat_template(tok.decode(g.prompt_ids))
            assert_clean_generation(tok, g)
            if conversation[-1]["content"] == task.reflection_instruction:
                # the failed attempt is context exactly once, as the assistant's own closed turn
                attempt = conversation[-2]["content"]
                assert tok.decode(g.prompt_ids).count(f"<|im_start|>assistant\n{attempt}<|im_end|>") == 1
    assert any(not g.truncated for _, gs in gen.calls for g in gs), "no generation ended within its budget"
    for row in read_jsonl(tmp_path / "eval" / "samples.jsonl"):
        for key in ("attempt", "reflection", "retry"):
            assert row[key] is None or not any(s in row[key] for s in SPECIAL)

    examples = [dict(ex) for ex in task.load(split="train", n=3, seed=1, source="generated")]
    gen.calls.clear()
    kept, report = mine_failures(
        task, gen, examples, MiningConfig(k=2, max_tokens=48, temperature=1.0, batch_size=8), progress=False
    )
    assert report["n"] == 3 and report["kept"] == len(kept)
    for row in kept:
        assert not task.verify(row, row["failed_attempt"]).passed
        assert not any(s in a for a in row["failed_attempts"] for s in SPECIAL)
    for _, gens in gen.calls:
        for g in gens:
            assert_clean_generation(tok, g)


# ------------------------------------------------------------------------------------------------------------------
# RRR training (HF generate)
# ------------------------------------------------------------------------------------------------------------------
def rrr_args(tmp_path, **overrides) -> RRRConfig:
    base = dict(
        output_dir=str(tmp_path / "run"),
        task="countdown",
        dataset_source="generated",
        dataset_size=8,
        first_attempt_source="online",
        attempt_max_tokens=24,
        max_completion_length=12,
        retry_max_tokens=24,
        num_generations=2,
        per_device_train_batch_size=4,
        learning_rate=1e-4,
        max_steps=2,
        beta=0.0,
        no_signal_groups="keep",
        **QUIET_CPU_RUN,
        seed=0,
    )
    base.update(overrides)
    return RRRConfig(**base)


def lora_args(r: int = 8) -> ModelConfig:
    return ModelConfig(
        model_name_or_path=MODEL_DIR,
        dtype="float32",
        use_peft=True,
        lora_r=r,
        lora_alpha=2 * r,
        lora_target_modules=list(LLAMA_LINEAR),
    )


def test_rrr_lora_trains_exactly_the_sampled_reflection_tokens(tmp_path):
    trainer, task = build_trainer(rrr_args(tmp_path), lora_args())
    tok = trainer.processing_class
    assert tok.eos_token == "<|im_end|>" and set(trainer.eos_token_ids) == {eot_id(tok)}
    lora_layers = [n for n, _ in trainer.model.named_modules() if n.endswith("lora_A")]
    assert {n.split(".")[-2] for n in lora_layers} == set(LLAMA_LINEAR) and len(lora_layers) == 30 * 7

    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train's loop
    ds, g = trainer.train_dataset, trainer.num_generations
    rows = [dict(ds[i]) for i in range(trainer.args.per_device_train_batch_size // g) for _ in range(g)]
    inputs = trainer._generate_and_score_completions(rows)
    records = trainer._rrr_last_records_for_tests
    mask = inputs["completion_mask"] * inputs.get("tool_mask", torch.ones_like(inputs["completion_mask"]))
    checked = 0
    for i, rec in enumerate(records):
        if rec is None:  # solved at the first try: a masked placeholder row
            continue
        trained = inputs["completion_ids"][i][mask[i].bool()].tolist()
        assert len(trained) == rec["reflection_tokens"] > 0
        assert tok.decode(trained, skip_special_tokens=True) == rec["reflection"]
        assert not any(s in rec["reflection"] for s in SPECIAL)
        assert eot_id(tok) not in trained[:-1]  # a reflection ends at its end of turn, and the stop token is trained
        if len(trained) < trainer.args.max_completion_length:
            assert trained[-1] == eot_id(tok)
        prompt = tok.decode(inputs["prompt_ids"][i][inputs["prompt_mask"][i].bool()].tolist())
        assert_one_chat_template(prompt)
        assert prompt.count(f"<|im_start|>assistant\n{rec['first_attempt']}<|im_end|>") == 1
        assert task.reflection_instruction in prompt and task.retry_instruction not in prompt
        checked += 1
    assert checked > 0

    trainer.train()
    assert trainer.state.global_step == 2
    trainer.save_model(str(tmp_path / "run"))
    with open(tmp_path / "run" / "adapter_config.json") as f:
        assert set(json.load(f)["target_modules"]) == set(LLAMA_LINEAR)
    episodes = read_jsonl(tmp_path / "run" / "episodes.jsonl")
    assert {e["step"] for e in episodes} == {0, 1}  # the batch checked above (step 0), then the two trained steps
    assert all(0.0 <= e["reward"] <= 1.0 for e in episodes if e.get("reward") is not None)
    reloaded, rtok = load_model_and_tokenizer(str(tmp_path / "run"))  # the adapter directory, base from its config
    out = HFGenerator(reloaded, rtok).generate([task.attempt_messages(rows[0])], SamplingParams(24, 0.0))[0]
    assert_clean_generation(rtok, out)


def test_rrr_full_fine_tune_saves_a_checkpoint_that_reloads(tmp_path):
    args = rrr_args(tmp_path, task="scheduling", learning_rate=1e-5)
    summary = train(args, ModelConfig(model_name_or_path=MODEL_DIR, dtype="float32"))
    assert summary["global_step"] == 2 and summary["generated_tokens"] > 0
    out = tmp_path / "run"
    episodes = read_jsonl(out / "episodes.jsonl")
    assert episodes and all(not any(s in e["reflection"] for s in SPECIAL) for e in episodes)
    with open(out / "generation_config.json") as f, open(os.path.join(MODEL_DIR, "generation_config.json")) as g:
        saved, shipped = json.load(f), json.load(g)
    # the shipped ids survive training and saving (TRL writes EOS as a list of one: the same stop set)
    assert {k: as_ids(saved.get(k)) for k in ("bos_token_id", "eos_token_id", "pad_token_id")} == {
        k: as_ids(shipped[k]) for k in ("bos_token_id", "eos_token_id", "pad_token_id")
    }
    model, tok = load_model_and_tokenizer(str(out))
    assert tok.eos_token == "<|im_end|>"
    task = get_task("scheduling")
    example = dict(task.load(split="test", n=1, seed=0, source="generated")[0])
    gen = HFGenerator(model, tok).generate([task.attempt_messages(example)], SamplingParams(24, 0.0))[0]
    assert_one_chat_template(tok.decode(gen.prompt_ids))
    assert_clean_generation(tok, gen)


# ------------------------------------------------------------------------------------------------------------------
# Teacher curriculum -> LoRA SFT -> evaluation of the adapter -> merge and reload
# ------------------------------------------------------------------------------------------------------------------
def test_curriculum_sft_lora_then_evaluate_merge_and_reload(real, tmp_path):
    from rrr.curriculum import CurriculumSFTConfig, SFTOptions, run_knowledge_transfer
    from rrr.curriculum.sft import build_sft_trainer

    base_model, tok = real
    summary = run_knowledge_transfer(
        "scheduling",
        teacher="oracle",
        student=MODEL_DIR,
        output_dir=str(tmp_path / "kt"),
        num_train=4,
        num_curriculum=6,
        num_test=4,
        batch_size=4,
        evaluate_teacher=False,
        evaluate_student=False,
        sft=SFTOptions(
            max_steps=2,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=1,
            max_length=512,
            lora_target_modules=["q_proj", "v_proj"],
        ),
        progress=False,
    )
    sft_dir = summary["student_sft_dir"]
    assert summary["sft"]["kind"] == "adapter" and summary["sft"]["global_step"] == 2
    with open(os.path.join(sft_dir, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    assert set(adapter_config["target_modules"]) == {"q_proj", "v_proj"}
    assert os.path.abspath(adapter_config["base_model_name_or_path"]) == os.path.abspath(MODEL_DIR)

    # what SFT trained on: the template once per row, and each completion closed by exactly one end of turn
    cur = summary["curriculum"]
    sft_args = CurriculumSFTConfig(
        output_dir=str(tmp_path / "inspect"),
        dataset_path=cur["sft_path"],
        reflection_dataset_path=cur["reflection_path"],
        max_length=512,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
    )
    inspect = build_sft_trainer(sft_args, ModelConfig(model_name_or_path=MODEL_DIR, dtype="float32"))
    for row in inspect.train_dataset.select(range(min(4, len(inspect.train_dataset)))):
        text = tok.decode(row["input_ids"])
        assert text.count("<|im_start|>system\n") == 1 and text.startswith("<|im_start|>system\n"), text[:200]
        completion = [t for t in row["labels"] if t != -100]  # the tokens SFT's loss sees
        decoded = tok.decode(completion)
        assert decoded.count("<|im_end|>") == 1 and decoded.rstrip("\n").endswith("<|im_end|>"), decoded[-80:]
        assert "<|im_start|>" not in decoded
    del inspect

    results = evaluate_model(
        sft_dir,
        "scheduling",
        backend="hf",
        output_dir=str(tmp_path / "eval"),
        progress=False,
        n=2,
        source="generated",
        attempt_max_tokens=48,
        reflection_max_tokens=32,
        retry_max_tokens=48,
    )
    assert results["metrics"]["n"] == 2 and results["backend"] == "hf"
    for row in read_jsonl(tmp_path / "eval" / "samples.jsonl"):
        assert not any(s in (row["attempt"] or "") for s in SPECIAL)

    adapted, _ = load_model_and_tokenizer(sft_dir)
    merged, mtok = load_model_and_tokenizer(sft_dir, merge_adapter=True)
    merged.save_pretrained(tmp_path / "merged")
    mtok.save_pretrained(tmp_path / "merged")
    reloaded, rtok = load_model_and_tokenizer(str(tmp_path / "merged"))
    assert rtok.eos_token == "<|im_end|>" and reloaded.generation_config.eos_token_id == eot_id(rtok)
    task = get_task("scheduling")
    example = dict(task.load(split="test", n=1, seed=0, source="generated")[0])
    ids = torch.tensor([render_chat(tok, task.attempt_messages(example))])
    with torch.no_grad():
        a, r, b = adapted(ids).logits, reloaded(ids).logits, base_model(ids).logits
    torch.testing.assert_close(r, a, rtol=0, atol=1e-4)  # merging changed nothing the adapter computed
    assert (r - b).abs().max() > 1e-4  # and two SFT steps did change the model
