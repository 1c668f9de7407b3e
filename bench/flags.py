"""Automatic sanity flags, stored in each result with the numbers that raised them.

Numbering follows ../shared/spec/gauntlet.md ("Automatic sanity flags") and docs/flags.md, which
explains each one. A flag is a warning that a number may not mean what it seems; it never changes the
number itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from bench.adapter import SNNAdapter

#: tolerance (percentage points) for comparisons between attacks
ATTACK_TOL = 0.2
#: share of points with zero / non-finite own-SG input gradients that raises flag 7
ZERO_GRAD_SHARE = 0.10
#: allowed gap between measured and claimed clean accuracy (percentage points)
CLAIM_TOL = 0.5


@dataclass(frozen=True)
class Flag:
    id: int
    key: str
    message: str
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def eps_ball_violation(violations: dict[str, int], max_linf: dict[str, float], eps: float) -> Flag | None:
    """Flag 1: an attack returned points outside the eps-ball or the box (they were not counted)."""
    bad = {k: v for k, v in violations.items() if v}
    if not bad:
        return None
    return Flag(1, "eps_ball_violation", f"{sum(bad.values())} adversarial examples outside the eps-ball or [0,1] (not counted)",
                {"violations": bad, "max_linf": max_linf, "eps": eps})


def clean_vs_claim(clean_acc: float, claimed: float | None, full_test_set: bool) -> Flag | None:
    """Flag 3: measured clean accuracy differs from the card's claim by more than 0.5 points."""
    if claimed is None or not full_test_set:
        return None
    gap = clean_acc - claimed
    if abs(gap) <= CLAIM_TOL:
        return None
    return Flag(3, "clean_vs_claim", f"clean accuracy {clean_acc:.2f} differs from the claimed {claimed:.2f} by {gap:+.2f} points",
                {"clean_acc": clean_acc, "claimed_clean_acc": claimed})


def probability_outputs(logits: torch.Tensor) -> Flag | None:
    """Flag 4: outputs look like probabilities (all in [0,1], rows sum to 1), not logits."""
    if logits.numel() == 0 or not torch.isfinite(logits).all():
        return None
    in_unit = bool(((logits >= 0) & (logits <= 1)).all())
    sums_to_one = bool(torch.allclose(logits.sum(1), torch.ones(len(logits)), atol=1e-3))
    if not (in_unit and sums_to_one):
        return None
    return Flag(4, "probability_outputs", "model outputs lie in [0,1] and sum to 1: they look like probabilities, not logits "
                "(cross-entropy attacks on probabilities are weak)", {"row_sum_mean": float(logits.sum(1).mean())})


def stochastic_without_eot(stochastic: bool, eot_draws: dict[str, int]) -> Flag | None:
    """Flag 5: a stochastic forward attacked without EOT (fewer than 10 gradient draws)."""
    weak = {k: v for k, v in eot_draws.items() if v < 10}
    if not stochastic or not weak:
        return None
    return Flag(5, "stochastic_without_eot", "stochastic model attacked with fewer than 10 EOT draws", {"eot_draws": weak})


@torch.no_grad()
def state_leak(model: SNNAdapter, x: torch.Tensor, other: torch.Tensor) -> Flag | None:
    """Flag 6: the same input gives different logits after another input, although every random
    stream is reseeded (so the difference is carried state, not noise)."""
    def seeded(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(1234)
        model.reseed()
        return model(inp)

    was = model.training
    model.eval()
    try:
        a = seeded(x)
        seeded(other)
        b = seeded(x)
    finally:
        model.train(was)
        model.reseed()
    diff = float((a - b).abs().max())
    if diff == 0.0:
        return None
    return Flag(6, "state_leak", f"the same input gave logits differing by {diff:.3g} after another input: state carries over "
                "between forwards", {"max_abs_diff": diff})


def zero_gradients(stats: dict[str, dict[str, int]], own_attacks: list[str]) -> Flag | None:
    """Flag 7: zero or NaN input gradients under the model's own SG for many points."""
    pts = sum(stats[a]["gradient_points"] for a in own_attacks if a in stats)
    bad = sum(stats[a]["zero_grad"] + stats[a]["nonfinite_grad"] for a in own_attacks if a in stats)
    if pts == 0 or bad / pts <= ZERO_GRAD_SHARE:
        return None
    return Flag(7, "zero_or_nan_gradients", f"{100 * bad / pts:.1f}% of own-SG input gradients were zero or non-finite "
                "(gradient masking or dead neurons)", {"share": bad / pts, "points": pts})


def single_step_beats_iterative(standalone: dict[str, float], kinds: dict[str, str]) -> Flag | None:
    """Flag 8: a single-step attack (FGSM) leaves lower accuracy than an iterative one run standalone."""
    single = {k: v for k, v in standalone.items() if kinds.get(k) == "fgsm"}
    iterative = {k: v for k, v in standalone.items() if kinds.get(k) not in ("fgsm", None)}
    if not single or not iterative:
        return None
    s_name, s_acc = min(single.items(), key=lambda kv: kv[1])
    i_name, i_acc = min(iterative.items(), key=lambda kv: kv[1])
    if s_acc >= i_acc - ATTACK_TOL:
        return None
    return Flag(8, "single_step_beats_iterative", f"{s_name} ({s_acc:.2f}) beats {i_name} ({i_acc:.2f}): the iterative attack is "
                "failing (masked or too small step)", {s_name: s_acc, i_name: i_acc})
