"""Shared-prompt scoring (``RRRConfig.shared_prompt_scoring``): TRL's log-probs, entropies and gradients, cheaper.

Each check runs :meth:`RRRGRPOTrainer._get_per_token_logps_and_entropies` on a batch laid out as TRL lays it out
(left-padded prompts, right-padded completions, groups of identical prompts of different lengths) with the flag on
and off, and compares what comes out and the gradient of a loss built from it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from synthetic import KeyTask
from trl import ModelConfig

from rrr.models import build_tiny_model, build_tiny_tokenizer
from rrr.tasks.base import Verdict
from rrr.training import RRRConfig, build_trainer
from rrr.training.config import QUIET_CPU_RUN


class ParityTask(KeyTask):
    """A retry passes when its text has even length: a random model earns mixed rewards, so gradients flow."""

    def verify(self, example, completion):
        return Verdict(isinstance(completion, str) and len(completion) % 2 == 0, "parity")


SMOLLM2 = Path(__file__).resolve().parents[1] / "runs" / "smollm2-135m-instruct"


def _args(tmp_path, **overrides) -> RRRConfig:
    base = dict(
        output_dir=str(tmp_path / "run"),
        task="synthetic:KeyTask",
        dataset_source="generated",
        dataset_size=64,
        first_attempt_source="column",
        max_completion_length=3,
        retry_max_tokens=3,
        num_generations=4,
        per_device_train_batch_size=16,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        max_steps=2,
        no_signal_groups="keep",
        log_episodes=False,
        **QUIET_CPU_RUN,
        seed=0,
    )
    base.update(overrides)
    return RRRConfig(**base)


def _trainer(tmp_path, model, tok, model_args=None):
    trainer, _ = build_trainer(_args(tmp_path), model_args or ModelConfig(), model=model, tokenizer=tok)
    trainer.model.train()
    return trainer


def _batch(vocab: int, prompt_lengths: list[int], group: int, completion_width: int, seed: int = 0):
    """TRL's layout: ``[left pad, prompt | completion, right pad]``; ``group`` rows per prompt, completions differ."""
    gen = torch.Generator().manual_seed(seed)
    width = max(prompt_lengths)
    rows, masks = [], []
    for length in prompt_lengths:
        prompt = torch.randint(3, vocab, (length,), generator=gen)
        for _ in range(group):
            n = int(torch.randint(1, completion_width + 1, (1,), generator=gen))
            ids = torch.zeros(width + completion_width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            ids[width - length : width] = prompt
            mask[width - length : width] = 1
            ids[width : width + n] = torch.randint(3, vocab, (n,), generator=gen)
            mask[width : width + n] = 1
            rows.append(ids)
            masks.append(mask)
    return torch.stack(rows), torch.stack(masks)


def _score(trainer, flag: bool, ids, mask, keep: int, batch_size=None, model=None):
    """Log-probs, entropies and parameter gradients of a loss built from both (flag on or off)."""
    trainer.args.shared_prompt_scoring = flag
    model = model if model is not None else trainer.model
    model.zero_grad()
    logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
        model, ids, mask, keep, batch_size=batch_size, compute_entropy=True
    )
    weights = torch.linspace(-1.0, 1.0, logps.numel()).view_as(logps) * mask[:, -keep:]
    ((logps * weights).sum() + 0.1 * (entropies * mask[:, -keep:]).sum()).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return logps.detach(), entropies.detach(), grads


def _assert_same(trainer, ids, mask, keep, batch_size=None, atol=1e-5):
    """Log-probs and entropies within ``atol``; each gradient within float rounding of its own scale."""
    want = _score(trainer, False, ids, mask, keep, batch_size)
    got = _score(trainer, True, ids, mask, keep, batch_size)
    completion = mask[:, -keep:].bool()
    assert completion.sum() > 0 and want[0][completion].abs().min() > 0  # real log-probs to compare
    torch.testing.assert_close(got[0], want[0], atol=atol, rtol=0)
    torch.testing.assert_close(got[1], want[1], atol=atol, rtol=0)
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert got[2].keys() == want[2].keys() and len(want[2]) == len(trainable)
    for name, grad in want[2].items():
        assert grad.abs().max() > 0, name
        error = got[2][name] - grad  # float32 sums in another order: ~1e-6 of the gradient's scale
        assert error.norm() <= 1e-4 * grad.norm() and error.abs().max() <= 1e-4 * grad.abs().max(), name


def _spy(trainer, monkeypatch) -> list[int]:
    """Count the chunks that took the shared-prompt path."""
    calls = []
    original = type(trainer)._score_shared_prompts

    def counted(self, *a, **kw):
        calls.append(1)
        return original(self, *a, **kw)

    monkeypatch.setattr(type(trainer), "_score_shared_prompts", counted)
    return calls


def test_same_logps_entropies_and_gradients_on_the_tiny_model(tmp_path, monkeypatch):
    tok = build_tiny_tokenizer()
    trainer = _trainer(tmp_path, build_tiny_model(tok), tok)
    calls = _spy(trainer, monkeypatch)
    ids, mask = _batch(len(tok), prompt_lengths=[9, 5, 12, 7], group=3, completion_width=6)
    _assert_same(trainer, ids, mask, keep=6)
    assert len(calls) == 1
    # TRL's chunking kept: 12 rows in chunks of 5 (a chunk may split a group, or hold one row of it)
    calls.clear()
    _assert_same(trainer, ids, mask, keep=6, batch_size=5)
    assert len(calls) == 3


def test_no_shared_prompt_takes_trls_path(tmp_path, monkeypatch):
    tok = build_tiny_tokenizer()
    trainer = _trainer(tmp_path, build_tiny_model(tok), tok)
    calls = _spy(trainer, monkeypatch)
    ids, mask = _batch(len(tok), prompt_lengths=[9, 5, 12, 7], group=1, completion_width=6)
    _assert_same(trainer, ids, mask, keep=6)
    assert calls == []
    # same prompt tokens, different padding (a different mask): not the same prompt
    ids, mask = _batch(len(tok), prompt_lengths=[6], group=2, completion_width=4)
    ids, mask = (torch.cat([torch.zeros_like(t[:, :1]), t], dim=1) for t in (ids, mask))  # one pad column
    mask[1, 0] = 1  # row 1 attends to it: same prompt ids as row 0, not the same prompt
    _assert_same(trainer, ids, mask, keep=4)
    assert calls == []


def test_ineligible_cases_take_trls_path(tmp_path, monkeypatch):
    tok = build_tiny_tokenizer()
    trainer = _trainer(tmp_path, build_tiny_model(tok), tok)
    trainer.args.shared_prompt_scoring = True
    calls = _spy(trainer, monkeypatch)
    ids, mask = _batch(len(tok), prompt_lengths=[5, 8], group=2, completion_width=3)
    model = trainer.model
    trainer._get_per_token_logps_and_entropies(model, ids, mask, 3, token_type_ids=torch.zeros_like(ids))
    model.gradient_checkpointing_enable()
    trainer._get_per_token_logps_and_entropies(model, ids, mask, 3)
    model.gradient_checkpointing_disable()
    model.config.use_sliding_window = True  # read as a sliding-window model (its layers were built full)
    trainer._get_per_token_logps_and_entropies(model, ids, mask, 3)
    model.config.use_sliding_window = False
    assert calls == []
    trainer._get_per_token_logps_and_entropies(model, ids, mask, 3)
    assert calls == [1]


@pytest.mark.real_model
@pytest.mark.skipif(not (SMOLLM2 / "config.json").exists(), reason="runs/smollm2-135m-instruct not downloaded")
def test_same_logps_entropies_and_gradients_on_smollm2(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(SMOLLM2)
    torch.manual_seed(0)
    trainer = _trainer(tmp_path, AutoModelForCausalLM.from_pretrained(SMOLLM2), tok)
    calls = _spy(trainer, monkeypatch)
    ids, mask = _batch(len(tok), prompt_lengths=[20, 13], group=2, completion_width=4)
    _assert_same(trainer, ids, mask, keep=4)
    assert len(calls) == 1


def test_same_logps_and_gradients_with_a_lora_adapter(tmp_path, monkeypatch):
    """PEFT (LoRA, no dropout so both passes see the same weights): the adapter's gradients match TRL's."""
    tok = build_tiny_tokenizer()
    lora = ModelConfig(
        use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_target_modules=["q_proj", "v_proj"]
    )
    trainer = _trainer(tmp_path, build_tiny_model(tok), tok, lora)
    assert type(trainer.model).__name__.startswith("Peft")
    torch.manual_seed(0)
    with torch.no_grad():  # LoRA's B starts at zero (A would get no gradient): a trained adapter instead
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.1)
    calls = _spy(trainer, monkeypatch)
    ids, mask = _batch(len(tok), prompt_lengths=[9, 5, 12], group=3, completion_width=6)
    _assert_same(trainer, ids, mask, keep=6)
    assert len(calls) == 1


def test_training_steps_match_with_the_flag_off(tmp_path, monkeypatch):
    """Two real RRR steps (rollout, scoring, optimizer) with the flag on and off: same loss and grad norm."""
    from transformers.trainer_callback import PrinterCallback

    logs = {}
    sampled_retry = dict(retry_temperature=1.0, retry_max_tokens=6)  # greedy retries of a random model all tie
    for flag in (False, True):
        tok = build_tiny_tokenizer()
        args = _args(
            tmp_path / str(flag),
            task="test_shared_prompt_scoring:ParityTask",
            shared_prompt_scoring=flag,
            **sampled_retry,
        )
        trainer, _ = build_trainer(args, ModelConfig(), model=build_tiny_model(tok), tokenizer=tok)
        trainer.remove_callback(PrinterCallback)
        calls = _spy(trainer, monkeypatch)
        trainer.train()
        assert bool(calls) == flag  # the shared path ran exactly when asked for
        logs[flag] = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs[False]) == len(logs[True]) == 2
    for off, on in zip(logs[False], logs[True]):
        assert off["grad_norm"] > 0 and math.isfinite(off["loss"]) and off["reward_std"] > 0
        assert on["loss"] == pytest.approx(off["loss"], rel=1e-4, abs=1e-6)
        assert on["grad_norm"] == pytest.approx(off["grad_norm"], rel=1e-4)


@pytest.mark.slow
def test_two_processes_ddp_same_gradients(tmp_path):
    """Under DDP (2 gloo processes) the reducer sees the shared path's whole graph: all-reduced gradients equal TRL's.

    Each rank scores its own batch through the DDP wrapper, flag off then on (this file's ``__main__``). The two
    ranks' gradients are equal only if every parameter's gradient went through the all-reduce.
    """
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:  # a free port (``--master_port 0`` hangs)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    cmd += [__file__, str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [r["shared_chunks"] for r in ranks] == [1, 1]
    assert not torch.equal(ranks[0]["logps"][False], ranks[1]["logps"][False])  # different batches per rank
    for r in ranks:
        torch.testing.assert_close(r["logps"][True], r["logps"][False], atol=1e-5, rtol=0)
    want = ranks[0]["grads"][False]
    assert len(want) == len(list(build_tiny_model(build_tiny_tokenizer()).parameters()))
    for got in (ranks[0]["grads"][True], ranks[1]["grads"][False], ranks[1]["grads"][True]):
        for name, grad in want.items():
            assert grad.abs().max() > 0, name
            error = got[name] - grad
            assert error.norm() <= 1e-4 * grad.norm() and error.abs().max() <= 1e-4 * grad.abs().max(), name


def _ddp_rank(out: Path) -> None:
    """One rank of :func:`test_two_processes_ddp_same_gradients` (run by ``torch.distributed.run``)."""
    from torch.nn.parallel import DistributedDataParallel

    from rrr.training.trl_adapter import RRRGRPOTrainer

    tok = build_tiny_tokenizer()
    trainer = _trainer(out, build_tiny_model(tok), tok)
    wrapped = trainer.accelerator.prepare_model(trainer.model)
    assert isinstance(wrapped, DistributedDataParallel)
    rank = trainer.accelerator.process_index
    shared = []
    original = RRRGRPOTrainer._score_shared_prompts
    RRRGRPOTrainer._score_shared_prompts = lambda self, *a: shared.append(1) or original(self, *a)
    ids, mask = _batch(len(tok), prompt_lengths=[9, 5, 12], group=3, completion_width=6, seed=rank)
    logps, grads = {}, {}
    for flag in (False, True):
        logps[flag], _, grads[flag] = _score(trainer, flag, ids, mask, 6, model=wrapped)
    torch.save({"logps": logps, "grads": grads, "shared_chunks": len(shared)}, out / f"rank{rank}.pt")


if __name__ == "__main__":
    import sys

    _ddp_rank(Path(sys.argv[1]))
