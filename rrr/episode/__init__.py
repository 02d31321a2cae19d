"""The RRR episode — attempt -> reflection -> retry -> verify — written once for every driver.

Training (``rrr.training``), evaluation, failure mining and the ablations all call ``run_episodes``; they differ only
in the ``Generator`` they pass and in the ``EpisodeConfig`` (group size, temperatures, budgets).
"""

from rrr.episode.episode import (
    Attempt,
    Episode,
    EpisodeConfig,
    ReflectionOutcome,
    run_episodes,
)

__all__ = ["Attempt", "Episode", "EpisodeConfig", "ReflectionOutcome", "run_episodes"]
