"""The RRR trainer: TRL's GRPOTrainer with an RRR rollout, reward and config.

``train(args, model_args)`` is what ``scripts/train_grpo.py`` calls; ``RRRConfig`` documents every knob.
"""

from rrr.training.config import RRRConfig
from rrr.training.run import build_trainer, parse_train_args, train

__all__ = ["RRRConfig", "build_trainer", "parse_train_args", "train"]
