"""Reflection DPO with TRL's ``DPOTrainer`` (the ReflectEvo D± setting) on pairs from ``reflection_data``."""

from __future__ import annotations

import os
import time


def train_reflection_dpo(dpo_args, model_args, pairs: list[dict]) -> dict:
    """Train on ``pairs`` (prompt/chosen/rejected, conversational) and save model + tokenizer to ``output_dir``."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import DPOTrainer, get_peft_config

    from rrr.models.loading import load_tokenizer
    from rrr.utils.io import atomic_write_json

    tokenizer = load_tokenizer(model_args.model_name_or_path)
    model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path)
    trainer = DPOTrainer(
        model=model,
        args=dpo_args,
        train_dataset=datasets.Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    start = time.time()
    result = trainer.train()
    model = trainer.model
    if get_peft_config(model_args) is not None:
        model = model.merge_and_unload()
    model.save_pretrained(dpo_args.output_dir)
    tokenizer.save_pretrained(dpo_args.output_dir)
    summary = {
        "global_step": trainer.state.global_step,
        "train_seconds": round(time.time() - start, 2),
        "pairs": len(pairs),
        "metrics": result.metrics,
    }
    atomic_write_json(os.path.join(dpo_args.output_dir, "dpo_summary.json"), summary)
    return summary
