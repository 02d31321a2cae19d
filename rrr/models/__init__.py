"""Model and tokenizer loading: hub ids, local directories, LoRA adapters, and the tiny offline model."""

from rrr.models.loading import load_model_and_tokenizer, load_tokenizer
from rrr.models.tiny import build_tiny_model, build_tiny_tokenizer, save_tiny_model

__all__ = ["build_tiny_model", "build_tiny_tokenizer", "load_model_and_tokenizer", "load_tokenizer", "save_tiny_model"]
