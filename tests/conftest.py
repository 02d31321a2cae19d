"""Test-wide settings: offline hub, quiet TRL, deterministic seeds."""

import os

# Tiny models gain nothing from intra-op threads, and two threads fighting other processes on a 2-core machine run
# ~10x slower (measured in scripts/bench_rollout.py). Must be set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")
