"""Confidence intervals and pass@k: the numbers beside every accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (well behaved at 0%, 100% and small n)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion(successes: int, n: int) -> dict:
    """``{"acc", "ci", "n", "k"}`` for ``successes`` out of ``n``."""
    lo, hi = wilson_interval(successes, n)
    return {"acc": successes / n if n else float("nan"), "ci": [lo, hi], "n": n, "k": successes}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): ``1 - C(n-c, k) / C(n, k)`` for n samples with c correct."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def mean_interval(values: Sequence[float], z: float = 1.959964) -> dict:
    """Mean with a normal-approximation 95% interval (for per-example estimates such as pass@k)."""
    n = len(values)
    if n == 0:
        return {"acc": float("nan"), "ci": [float("nan"), float("nan")], "n": 0}
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(var / n)
    return {"acc": mean, "ci": [max(0.0, mean - half), min(1.0, mean + half)], "n": n}


def paired_difference(after: Sequence[float], before: Sequence[float], z: float = 1.959964) -> dict:
    """Mean of ``after - before`` per item with a normal-approximation 95% interval (not clipped: can be < 0).

    For two students scored on the *same* items (e.g. the same frozen failed attempts): the per-item differences
    cancel the items' difficulty, so the interval is much narrower than two independent intervals would suggest.
    """
    if len(after) != len(before):
        raise ValueError(f"paired samples differ in length: {len(after)} vs {len(before)}")
    n = len(after)
    if n == 0:
        return {"diff": float("nan"), "ci": [float("nan"), float("nan")], "n": 0, "significant": False}
    diffs = [a - b for a, b in zip(after, before)]
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(var / n)
    lo, hi = mean - half, mean + half
    return {"diff": mean, "ci": [lo, hi], "n": n, "significant": lo > 0 or hi < 0}


def pct(m: dict | None) -> str:
    """``"85.1 [83.8, 86.3]"`` for an ``{"acc", "ci", "n"}`` mapping (``–`` when missing or empty)."""
    if not m or not m.get("n"):
        return "–"
    lo, hi = m["ci"]
    return f"{100 * m['acc']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def pp(d: dict | None) -> str:
    """``"+13.7 [+10.1, +17.3]"`` (percentage points) for a ``paired_difference`` result."""
    if not d or not d.get("n"):
        return "–"
    lo, hi = d["ci"]
    return f"{100 * d['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
