"""Randomised models scored as the field scores them: one committed adversarial example per point.

The threat model for a randomised defense (Athalye, Carlini, Wagner 2018, Sec. 4.2 on EOT; AutoAttack's
``rand`` version, Croce & Hein 2020): the attacker commits ONE adversarial example per point, chosen by the
loss averaged over the model's randomness, and that example is scored over many fresh passes (mean and
worst pass). Taking, per pass, the union over every attack's examples would let the attacker choose after
seeing the noise, which understates robustness.

* :func:`score_margin` scores a batch over ``passes`` seeded passes and returns, besides the per-pass
  correctness bitmask, the per-point margin ``z_y - max_{i!=y} z_i`` averaged over the passes (the EOT
  margin; lower = more adversarial).
* :func:`commit` picks, per point, the candidate (the clean image or an attack's in-ball example) with the
  lowest EOT margin; the engine then scores the committed examples over :data:`FRESH_OFFSET`-shifted
  fresh passes (draws not used to choose them).
* :func:`spread_tolerance` is the tolerance of flags 2 and 3 on a stochastic model: twice the standard
  error of the difference of two means over ``R`` passes each.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bench.scoring import _pass_seed, predict

#: seed offset of the fresh passes that score the committed examples (never used to choose them)
FRESH_OFFSET = 500_009


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{i!=y} z_i`` per point (negative = misclassified)."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    return z_y - logits.scatter(1, y[:, None], float("-inf")).amax(1)


def score_margin(model: Any, x: torch.Tensor, y: torch.Tensor, batch_size: int, passes: int, seed: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """(bitmask of correct passes [N], EOT-averaged margin [N], logits of the first pass [N, K])."""
    mask = np.zeros(len(y), dtype=np.int64)
    total = torch.zeros(len(y))
    first = None
    for r in range(passes):
        with _pass_seed(model, int(seed) * 7_919 + r):
            pred, logits = predict(model, x, batch_size)
        mask |= (pred == y.cpu()).numpy().astype(np.int64) << r
        total += margins(logits, y.cpu())
        first = logits if first is None else first
    return mask, (total / passes).numpy(), first


def commit(clean_margin: np.ndarray, candidates: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per point, the name of the candidate with the lowest EOT margin ("" = the clean image itself).

    ``candidates[name] = (margin [N], usable [N])``: an example outside the ball / box, or of an attack that
    did not run on the point, is not usable. Ties keep the earlier attack (preset order)."""
    best = clean_margin.astype(float).copy()
    chosen = np.full(len(best), "", dtype=object)
    for name, (m, usable) in candidates.items():
        better = usable & (m < best)
        best = np.where(better, m, best)
        chosen[better] = name
    return chosen


def pass_accuracies(mask: np.ndarray, passes: int) -> list[float]:
    """Accuracy in percent of each pass of a per-point bitmask."""
    n = max(1, len(mask))
    return [100.0 * float(((mask >> r) & 1).sum()) / n for r in range(passes)]


def spread_tolerance(a: list[float], b: list[float] | None = None, floor: float = 0.0) -> float:
    """``floor + 3 * sqrt(var(a)/R_a + var(b)/R_b)`` (sample variances of the per-pass accuracies): three
    standard errors of the difference of two means over passes (a false alarm about 0.3% of the time; two
    would raise a flag on one honest model in twenty); with ``b = None`` only ``a``'s term."""
    def term(v: list[float]) -> float:
        return float(np.var(v, ddof=1)) / len(v) if len(v) > 1 else 0.0

    return floor + 3.0 * math.sqrt(term(a) + (term(b) if b else 0.0))
