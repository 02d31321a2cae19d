"""``transformers`` generate on a local model: the backend that runs everywhere (and the one CI tests)."""

from __future__ import annotations

import contextlib

from rrr.generation.base import Generation, SamplingParams
from rrr.tasks.base import Messages


def render_chat(tokenizer, conversation: Messages, **chat_template_kwargs) -> list[int]:
    """Token ids of ``conversation`` with the generation prompt appended."""
    ids = tokenizer.apply_chat_template(
        conversation, tokenize=True, add_generation_prompt=True, return_dict=False, **chat_template_kwargs
    )
    return list(ids)


def eos_ids_of(tokenizer, model=None) -> set[int]:
    """End-of-turn ids: the tokenizer's EOS plus the model's generation-config EOS (which may be a list)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos:
        ids.update(gen_eos)
    return ids


def sampling_generation_config(params: SamplingParams, eos_ids, pad_id):
    """A ``GenerationConfig`` that states every decoding choice of ``params``, with neutral values for the rest.

    transformers fills each ``None`` field of a passed config from ``model.generation_config``, so a field we leave
    unset is silently the checkpoint's (top-k 20, repetition penalty 1.05, even beam search). Every field that shapes
    the next-token distribution is therefore set here; :func:`clean_generation_config` removes the remainder.
    """
    from transformers import GenerationConfig

    kwargs = dict(
        max_new_tokens=params.max_new_tokens,
        min_new_tokens=0,
        do_sample=not params.greedy,
        num_beams=1,
        num_beam_groups=1,
        pad_token_id=pad_id,
        eos_token_id=sorted(eos_ids),
        repetition_penalty=params.filters()["repetition_penalty"],
        no_repeat_ngram_size=0,
        disable_compile=True,
        use_cache=True,
    )
    if not params.greedy:  # greedy sets no filter at all (transformers warns about filters it will not apply)
        filters = params.filters()
        kwargs.update(
            temperature=params.temperature,
            top_p=filters["top_p"],
            top_k=filters["top_k"],  # 0 disables the filter (None would inherit the checkpoint's top_k)
            min_p=filters["min_p"] or None,
        )
    return GenerationConfig(**kwargs)


@contextlib.contextmanager
def clean_generation_config(model):
    """Swap ``model.generation_config`` for a default one while generating, so nothing of the checkpoint's leaks.

    Only the token ids the model needs (bos/eos/pad, decoder start) are kept; ``min_p``, ``typical_p``,
    ``suppress_tokens``, ``bad_words_ids``, ``sequence_bias`` and every field added in a later transformers release
    fall back to the library defaults instead of the checkpoint's choice.
    """
    from transformers import GenerationConfig

    saved = getattr(model, "generation_config", None)
    if saved is None:
        yield
        return
    keep = {k: getattr(saved, k, None) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    model.generation_config = GenerationConfig(**{k: v for k, v in keep.items() if v is not None})
    try:
        yield
    finally:
        model.generation_config = saved


def hf_generate_ids(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    params: SamplingParams,
    batch_size: int = 64,
    eos_ids=None,
    shared_prefix: bool = False,
    stats: dict | None = None,
    carry=None,
    cascade: bool = False,
) -> list[tuple[list[int], bool]]:
    """Sample one completion per prompt with ``model.generate``; returns ``(token_ids, truncated)`` per prompt.

    Prompts are left-padded in chunks of ``batch_size``; each completion is cut after its first end-of-turn token.
    Sampling follows ``params`` exactly (see :func:`sampling_generation_config`), never the checkpoint's defaults.
    ``shared_prefix`` prefills prompt prefixes shared by several rows once (same outputs, see
    :mod:`rrr.generation.prefix`; ``stats`` then counts the prompt tokens it saved) on models that support it, and
    with ``carry`` (a ``KVCarry``) also reuses the cache the previous call on the same weights left behind;
    ``cascade`` keeps one copy of each group's prefix and attends to it once per group (:mod:`rrr.generation.cascade`;
    CPU models only, others copy).
    """
    import torch

    if not prompt_ids:
        return []
    if shared_prefix:
        from rrr.generation.prefix import shared_prefix_generate_ids, supports_shared_prefix

        if supports_shared_prefix(model):
            return shared_prefix_generate_ids(
                model, tokenizer, prompt_ids, params, batch_size, eos_ids, stats=stats, carry=carry, cascade=cascade
            )
    eos_ids = eos_ids or eos_ids_of(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_ids))
    gen_config = sampling_generation_config(params, eos_ids, pad_id)
    device = next(model.parameters()).device
    # sort by length so chunks pad little; restore the order at the end
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
    by_index: dict[int, tuple[list[int], bool]] = {}
    with torch.no_grad(), clean_generation_config(model):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            input_ids, attention = left_padded([prompt_ids[i] for i in idx], pad_id)
            out = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device), generation_config=gen_config
            )
            width = input_ids.shape[1]
            for row, i in enumerate(idx):
                by_index[i] = cut_at_eos(out[row, width:].tolist(), eos_ids)
    return [by_index[i] for i in range(len(prompt_ids))]


def left_padded(prompts: list[list[int]], pad_id: int):
    """``(input_ids, attention_mask)`` of ``prompts`` left-padded to the longest (the layout ``generate`` expects)."""
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids) :] = 1
    return input_ids, attention


def cut_at_eos(seq: list[int], eos_ids) -> tuple[list[int], bool]:
    """``(completion, truncated)``: ``seq`` up to and including its first end-of-turn id, or all of it (truncated)."""
    cut = next((k + 1 for k, t in enumerate(seq) if t in eos_ids), None)
    return (seq[:cut], False) if cut is not None else (seq, True)


class HFGenerator:
    """Generate with a local ``transformers`` model (evaluation, failure mining, tests)."""

    def __init__(
        self,
        model,
        tokenizer,
        batch_size: int = 64,
        chat_template_kwargs: dict | None = None,
        shared_prefix: bool = True,
        cascade: bool = True,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        #: prefill prompt prefixes shared by several rows once (same outputs; ``rrr.generation.prefix``)
        self.shared_prefix = shared_prefix
        #: with ``shared_prefix``: attend to a group's shared prefix once instead of copying it to every row (CPU)
        self.cascade = cascade
        #: prompt tokens fed / saved by shared prefixes over this generator's life (``hf_generate_ids``' ``stats``)
        self.prefix_stats: dict = {}
        #: the previous call's KV cache, reused where the next call's prompts extend it (the model's weights must not
        #: change between calls: call ``kv_carry.clear()`` after updating them)
        self.kv_carry = None
        if shared_prefix:
            from rrr.generation.prefix import KVCarry

            self.kv_carry = KVCarry()
        self.chat_template_kwargs = chat_template_kwargs or {}
        self.eos_ids = eos_ids_of(tokenizer, model)

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        import torch

        if params.seed is not None:
            torch.manual_seed(params.seed)
        prompts = [render_chat(self.tokenizer, c, **self.chat_template_kwargs) for c in conversations]
        outputs = hf_generate_ids(
            self.model,
            self.tokenizer,
            prompts,
            params,
            self.batch_size,
            self.eos_ids,
            shared_prefix=self.shared_prefix,
            stats=self.prefix_stats,
            carry=self.kv_carry,
            cascade=self.cascade,
        )
        texts = self.tokenizer.batch_decode([ids for ids, _ in outputs], skip_special_tokens=True)
        return [
            Generation(text=text, token_ids=ids, prompt_ids=p, truncated=trunc)
            for p, (ids, trunc), text in zip(prompts, outputs, texts)
        ]
