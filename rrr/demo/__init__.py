"""``make demo``: the whole RRR idea offline on a CPU, from nothing, in ~10 minutes.

``DemoPipeline(DemoConfig.from_yaml("recipes/demo/config.yaml")).run()`` builds a ~1M-parameter student and its
tokenizer, warm-starts it on the oracle curriculum, evaluates it, mines its failures, trains it with RRR, evaluates
it again and prints the before/after table. Modules: ``task`` (the compact scheduling task, whose
``witness_reflection`` the oracle teacher uses), ``config``, ``pipeline`` (the stages), ``report`` (paired statistics
and tables), ``cli``.
"""

from rrr.demo.config import DemoConfig
from rrr.demo.pipeline import DemoError, DemoPipeline

__all__ = ["DemoConfig", "DemoError", "DemoPipeline"]
