"""Paired statistics on per-point outcomes, shared by the engine's flags, ``compare`` and the reports.

:func:`mcnemar_exact` is the exact McNemar test (McNemar, Psychometrika 1947): on paired boolean
outcomes, only the discordant points carry information about the difference; under H0 the ``head_only``
count is Binomial(``base_only + head_only``, 1/2), and the two-sided p-value is scipy's exact binomial test
(p = 1 when no point is discordant).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest

from bench.errors import BenchError


def mcnemar_exact(base_correct: np.ndarray, head_correct: np.ndarray) -> tuple[int, int, float]:
    """(base_only, head_only, two-sided exact McNemar p-value) for paired boolean outcomes."""
    a = np.asarray(base_correct, dtype=bool)
    b = np.asarray(head_correct, dtype=bool)
    if a.shape != b.shape:
        raise BenchError(f"paired outcomes must have the same length, got {a.shape} and {b.shape}")
    base_only = int((a & ~b).sum())
    head_only = int((~a & b).sum())
    n = base_only + head_only
    p = 1.0 if n == 0 else float(binomtest(head_only, n, 0.5, alternative="two-sided").pvalue)
    return base_only, head_only, min(1.0, p)


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion, in percent (Wilson 1927)."""
    if n == 0:
        return (0.0, 100.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))
