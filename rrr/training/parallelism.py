"""Which engine x process layouts RRR supports, and the start-up check that rejects the others.

RRR makes three generation calls per step (attempt, reflection, retry), each of a data-dependent size. On some
layouts generation is a *collective* — every rank must make the same calls with the same row counts, or completions
are paired with another rank's prompts or the run hangs. ``rrr.training.trl_adapter.TrainerGenerator`` keeps the
ranks in lockstep (a phase runs on every rank or none; every call is padded to the largest rank's rows; completions
are checked against the prompt ids the engine returns). A layout is listed as supported once a test exercises it; the
others are rejected at start-up with the reason, rather than left to fail an hour in.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORT_MATRIX = """\
Supported engine x process layouts (RRR checks this at start-up):

  generation           processes / sharding               status
  -------------------  ---------------------------------  ------------------------------------------------------
  HF generate          1 process                          supported; tested in CI
  HF generate          N processes: DDP, ZeRO-1/2         supported; tested in CI (2 processes, gloo): ranks with
                                                          different failures and first-attempt rounds stay in
                                                          lockstep and train only their own completions
  HF generate          ZeRO-3 or FSDP                     rejected: every generated token is a parameter
                                                          all-gather across ranks; RRR pads its calls for this but
                                                          it has not been run. Use DDP/ZeRO-2, or vLLM.
  vLLM colocate, TP 1  1..N processes, any sharding       supported (each rank has its own engine, generation is
                                                          not a collective; TRL gathers weights for the sync)
  vLLM colocate, TP>1  -                                  rejected: untested; use vllm_mode: server
  vLLM server          N processes, any sharding          supported: TRL gathers every rank's prompts and slices
                                                          results by position; RRR pads each call to the largest
                                                          rank. Tested in CI with TRL's own client and generation
                                                          code against a loopback server (2 processes). The NCCL
                                                          weight transfer needs GPUs and is not run in CI.
"""


@dataclass(frozen=True)
class Layout:
    """The facts the check needs, read off a built trainer by ``trl_adapter.layout_of``."""

    num_processes: int
    use_vllm: bool
    vllm_mode: str
    tensor_parallel_size: int
    deepspeed_zero_stage: int | None
    fsdp: bool


def check_layout(layout: Layout) -> None:
    """Raise ``ValueError`` (with the fix) for a layout RRR does not support; see ``SUPPORT_MATRIX``."""
    if layout.use_vllm:
        if layout.vllm_mode == "colocate" and layout.tensor_parallel_size > 1:
            raise ValueError(
                "vLLM colocate with tensor parallelism is not supported by RRR yet (untested); use vllm_mode: server"
            )
        return
    sharded = layout.fsdp or (layout.deepspeed_zero_stage or 0) >= 3
    if sharded and layout.num_processes > 1:
        what = "FSDP" if layout.fsdp else "DeepSpeed ZeRO-3"
        raise ValueError(
            f"RRR with HF generate under {what} is not supported yet: generation is a collective there (each token "
            "all-gathers the sharded parameters on every rank) and this layout has not been verified. Use DDP or "
            "ZeRO-2 (recipes/accelerate_configs/ddp.yaml, zero2.yaml), or generate with vLLM "
            "(use_vllm: true), which samples outside the sharded model. See `scripts/train_grpo.py --help`."
        )
