"""One rank of a two-process RRR run, launched by tests/test_lockstep.py with ``torch.distributed.run`` (gloo, CPU).

Each rank records what the lockstep contract is about — every ``any_rank`` agreement and every generate call (local
rows, rows sent to the engine), and every row the rollout handed to TRL (prompt ids, completion ids, skipped) — and
writes it to ``<out>/rank<r>.json`` for the test to compare across ranks.

Modes:

* ``hf`` — the trainer's policy generates with HF ``generate`` (DDP);
* ``server`` — TRL's own ``VLLMGeneration`` in server mode with TRL's own ``VLLMClient``, talking HTTP to the
  loopback fake at ``--server`` (tests/fake_vllm_server.py). Only the NCCL weight transfer, which needs GPUs, is
  replaced (by a no-op): the gather of every rank's prompts, the request, the broadcast and the per-rank slicing are
  TRL's real code.
* ``outcome`` — outcome GRPO stopped at a generated-token budget; records the local and global token counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `synthetic:LockstepTask`


def rrr_args(out: str, **overrides):
    from rrr.training import RRRConfig
    from rrr.training.config import QUIET_CPU_RUN

    base = dict(
        output_dir=out,
        task="synthetic:LockstepTask",
        dataset_source="generated",
        dataset_size=48,
        dataset_seed=3,
        first_attempt_tries=3,
        attempt_max_tokens=5,  # distinct budgets tell the phases apart in the log (tests/test_lockstep.py)
        max_completion_length=4,
        retry_max_tokens=3,
        num_generations=2,
        per_device_train_batch_size=4,
        learning_rate=1e-4,
        max_steps=4,
        **QUIET_CPU_RUN,
        no_signal_groups="keep",
        shuffle_dataset=True,
        seed=0,
    )
    base.update(overrides)
    return RRRConfig(**base)


def instrument(log: list) -> None:
    """Record every agreement, generate call and rollout row of this rank (wrapping the real methods)."""
    from rrr.training import rollout, trl_adapter

    gen_cls = trl_adapter.TrainerGenerator
    real_any, real_generate, real_call = (
        getattr(gen_cls, "any_rank", None),
        gen_cls.generate,
        rollout.RRRRollout.__call__,
    )

    def any_rank(self, flag):
        result = real_any(self, flag)
        log.append({"kind": "agree", "local": bool(flag), "result": bool(result)})
        return result

    def generate(self, conversations, params):
        calls = getattr(self, "calls", None)  # (local, sent) per call; a generator without lockstep sends its own
        before = len(calls) if calls is not None else None
        gens = real_generate(self, conversations, params)
        local, sent = calls[before] if calls is not None else (len(conversations), len(conversations))
        log.append({"kind": "generate", "max_new_tokens": params.max_new_tokens, "local": local, "sent": sent})
        return gens

    def call(self, prompts, trainer):
        out = real_call(self, prompts, trainer)
        log.append(
            {
                "kind": "rollout",
                "step": trainer.state.global_step,
                "prompt_ids": out["prompt_ids"],
                "completion_ids": out["completion_ids"],
                "skipped": out["rrr_skipped"],
                "logprobs": out["logprobs"],
            }
        )
        return out

    if real_any is not None:
        gen_cls.any_rank = any_rank
    gen_cls.generate, rollout.RRRRollout.__call__ = generate, call


def use_trl_server_mode(trainer, base_url: str) -> None:
    """Make ``trainer`` generate through TRL's real server-mode code against ``base_url``."""
    import trl.generation.vllm_client as vllm_client
    import trl.generation.vllm_generation as vllm_generation

    vllm_client.is_vllm_available = vllm_generation.is_vllm_available = lambda: True
    vllm_client.VLLMClient.init_communicator = lambda self, device=0: None  # NCCL weight transfer: GPU only
    vllm_client.VLLMClient.update_named_params = lambda self, metadata, params: None
    args = trainer.args
    trainer.vllm_generation = vllm_generation.VLLMGeneration(
        model=trainer.model,
        accelerator=trainer.accelerator,
        processing_class=trainer.processing_class,
        mode="server",
        server_base_url=base_url,
        server_timeout=30,
        temperature=args.temperature,
        max_completion_length=args.max_completion_length,
        logprobs=0,
    )
    trainer.use_vllm = True
    trainer._last_loaded_step = -1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("hf", "server", "outcome"), required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--server")
    opts = parser.parse_args()

    from trl import ModelConfig

    from rrr.training import build_trainer

    rank = int(os.environ.get("RANK", "0"))
    log: list = []
    record: dict = {"rank": rank, "log": log}
    if opts.mode == "outcome":
        from rrr.training import outcome

        local: list[float] = []
        real_add = outcome.TokenBudget.add

        def add(self, n):
            local.append(float(n))
            real_add(self, n)

        outcome.TokenBudget.add = add
        args = rrr_args(os.path.join(opts.out, "run"), task="scheduling", max_steps=30, max_completion_length=6)
        summary = outcome.train_outcome(args, ModelConfig(model_name_or_path=opts.model), token_budget=200)
        record.update(local_tokens=sum(local), generated=summary["generated_tokens"], steps=summary["global_step"])
    else:
        instrument(log)
        args = rrr_args(os.path.join(opts.out, "run"))
        trainer, _ = build_trainer(args, ModelConfig(model_name_or_path=opts.model))
        if opts.mode == "server":
            use_trl_server_mode(trainer, opts.server)
        trainer.train()
        record["steps"] = trainer.state.global_step
    with open(os.path.join(opts.out, f"rank{rank}.json"), "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main()
