"""The TRL internals rrr relies on (all used from rrr/training/trl_adapter.py). Fails loudly on a TRL upgrade."""

import importlib.metadata as md
import inspect

import trl
from trl import GRPOConfig, GRPOTrainer


def test_pinned_stack():
    assert trl.__version__ == "1.16.0"
    assert md.version("transformers") == "5.17.0"
    assert md.version("torch").startswith("2.13.0")


def test_rollout_func_and_private_hooks_exist():
    params = inspect.signature(GRPOTrainer.__init__).parameters
    assert "rollout_func" in params and "peft_config" in params
    # wrapped by RRRGRPOTrainer to expose the batch rows and to read the advantages
    assert "inputs" in inspect.signature(GRPOTrainer._generate_and_score_completions).parameters
    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert "self.rollout_func(prompts, self)" in inspect.getsource(GRPOTrainer) or "rollout_func" in source
    assert '"advantages"' in source


def test_generation_seams():
    from trl.generation.vllm_generation import VLLMGeneration
    from trl.models import unwrap_model_for_generation

    gen_params = inspect.signature(VLLMGeneration.generate).parameters
    assert list(gen_params)[1:4] == ["prompts", "images", "num_generations"]
    unwrap_params = inspect.signature(unwrap_model_for_generation).parameters
    assert {"gather_deepspeed3_params", "generation_kwargs", "gradient_checkpointing_kwargs"} <= set(unwrap_params)


def test_env_mask_is_the_tool_mask():
    source = inspect.getsource(GRPOTrainer)
    assert '"env_mask"' in source and "tool_mask" in source


def test_config_fields_rrr_reads():
    fields = GRPOConfig.__dataclass_fields__
    for name in (
        "num_generations",
        "max_completion_length",
        "temperature",
        "top_p",
        "top_k",
        "use_vllm",
        "vllm_mode",
        "vllm_enable_sleep_mode",
        "steps_per_generation",
        "generation_batch_size",
        "ds3_gather_for_generation",
        "chat_template_kwargs",
        "log_completions",
    ):
        assert name in fields, name


def test_none_reward_warning_is_silenced_for_skipped_rows_only():
    """TRL's per-row "all rewards None" warning: its wording and logger are what the adapter filters on."""
    import logging

    import trl.trainer.grpo_trainer as grpo_module

    from rrr.training import trl_adapter

    assert trl_adapter._NONE_REWARD_WARNING in inspect.getsource(grpo_module)
    logger = logging.getLogger("trl.trainer.grpo_trainer")
    assert any(isinstance(f, trl_adapter._SkippedRowWarnings) for f in logger.filters)

    def record(message):
        return logging.LogRecord(logger.name, logging.WARNING, __file__, 1, message, None, None)

    skipped = (
        f"[RANK 0] {trl_adapter._NONE_REWARD_WARNING} for the following kwargs:\n{{'rrr_skipped': True, 'id': 'x'}}"
    )
    other = (
        f"[RANK 1] {trl_adapter._NONE_REWARD_WARNING} for the following kwargs:\n{{'rrr_skipped': False, 'id': 'x'}}"
    )
    assert not all(f.filter(record(skipped)) for f in logger.filters)
    assert all(f.filter(record(other)) for f in logger.filters)
    assert all(f.filter(record("some other TRL warning")) for f in logger.filters)


def test_scoring_seam_for_shared_prompts():
    """``RRRGRPOTrainer._get_per_token_logps_and_entropies`` (shared-prompt scoring) mirrors TRL's scoring."""
    from transformers.modeling_layers import GradientCheckpointingLayer
    from trl.trainer import utils as trl_utils

    params = list(inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies).parameters)
    assert params[:8] == [
        "self",
        "model",
        "input_ids",
        "attention_mask",
        "logits_to_keep",
        "batch_size",
        "compute_entropy",
        "compute_aux_loss",
    ]
    source = inspect.getsource(GRPOTrainer._get_per_token_logps_and_entropies)
    # the labels, the fused call and the slice the override reproduces (with no position_ids passed)
    assert "labels = input_ids_batch.masked_fill(attention_mask_batch == 0, -100)" in source
    assert "labels[:, :-logits_to_keep] = -100" in source
    assert "model(**model_inputs, labels=labels, fused_lm_head=True)" in source
    assert "outputs.log_probs[:, -logits_to_keep:]" in source and 'model_inputs["position_ids"]' not in source
    assert "return logps, entropies, aux_loss" in source
    # the fused forward: one shift of labels against hidden states; the cache is passed on to the backbone
    fused = inspect.getsource(trl_utils)
    assert (
        'kwargs["use_cache"] = False' in fused and "hidden_states = backbone_outputs.last_hidden_state[:, :-1]" in fused
    )
    # checkpointed layers drop past_key_values: why the override falls back under gradient checkpointing
    assert 'kwargs["past_key_values"] = None' in inspect.getsource(GradientCheckpointingLayer.__call__)
