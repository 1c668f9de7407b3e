"""The gauntlet engine: per-point worst case over a preset's attacks (AutoAttack's cascade).

For one chunk of points:

1. a clean pass (no gradient, model's own rule): a point misclassified when clean counts as broken;
2. each attack in preset order runs on the points it is asked for (``on = "all"``: every clean-correct
   point, giving a standalone number; ``on = "unbroken"``: only points no earlier attack broke);
3. every adversarial example is re-scored by a fresh forward (state reset, own rule, no gradient) and
   checked against the eps-ball (``||x_adv - x||_inf <= eps + 1e-6``) and the box [0, 1]; an example
   that violates either is *not* counted as a success and is reported (flag 1);
4. a point is robust only if every attack failed on it. Accuracies are never averaged over attacks.

The model's mode, parameters' ``requires_grad`` and every neuron's rule are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attacks.algorithms import AttackStats, make_attack
from bench.adapter import SNNAdapter

BALL_TOL = 1e-6
NOT_RUN, SURVIVED, BROKE = -1, 0, 1


@contextmanager
def evaluation_mode(model: SNNAdapter) -> Iterator[SNNAdapter]:
    """Eval mode and frozen parameters for the duration of an evaluation; both restored on exit."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


@torch.no_grad()
def predict(model: SNNAdapter, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions [N], logits [N, K]) from fresh forwards under the model's own rule."""
    dev = next(model.parameters()).device
    logits = []
    with model.backward_rule("own"):
        for i in range(0, len(x), batch_size):
            logits.append(model(x[i : i + batch_size].to(dev)).float().cpu())
    out = torch.cat(logits) if logits else torch.empty(0)
    return out.argmax(1), out


@dataclass
class ChunkOutcome:
    """Per-point outcomes of one chunk (numpy arrays aligned with the chunk's points)."""

    clean_pred: np.ndarray
    clean_correct: np.ndarray
    robust: np.ndarray
    broken_by: np.ndarray  # "" robust, "clean", or the first attack (in preset order) that broke it
    per_attack: dict[str, np.ndarray]  # NOT_RUN / SURVIVED / BROKE
    violations: dict[str, int] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    nonfinite_logits: int = 0
    max_linf: dict[str, float] = field(default_factory=dict)


def _generator(seed: int, chunk: int, attack_index: int) -> torch.Generator:
    # A chunk's draws depend only on (seed, chunk index, attack index): resuming reproduces them.
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + chunk * 1_009 + attack_index)


def run_chunk(
    model: SNNAdapter,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    attacks: list[dict[str, Any]],
    batch_size: int,
    seed: int,
    chunk: int,
    eot_draws: int = 10,
    on_attack_done: Any = None,
) -> ChunkOutcome:
    """Run the whole cascade on one chunk of points; ``x`` on CPU, the model on any device."""
    dev = next(model.parameters()).device
    n = len(y)
    with evaluation_mode(model):
        clean_pred, clean_logits = predict(model, x, batch_size)
        nonfinite = int((~torch.isfinite(clean_logits).all(1)).sum())
        correct = (clean_pred == y).numpy()
        robust = correct.copy()
        broken_by = np.where(correct, "", "clean").astype(object)
        per_attack: dict[str, np.ndarray] = {}
        violations: dict[str, int] = {}
        stats: dict[str, dict[str, int]] = {}
        max_linf: dict[str, float] = {}
        for ai, spec in enumerate(attacks):
            attack = make_attack(spec)
            if model.is_stochastic:
                attack.eot_draws = max(attack.eot_draws, eot_draws)
            name = spec["name"]
            status = np.full(n, NOT_RUN, dtype=np.int8)
            targets = np.flatnonzero(correct if spec.get("on") == "all" else robust)
            gen = _generator(seed, chunk, ai)
            n_viol, worst = 0, 0.0
            for b in range(0, len(targets), batch_size):
                idx = torch.as_tensor(targets[b : b + batch_size])
                xb, yb = x[idx].to(dev), y[idx].to(dev)
                x_adv = attack.perturb(model, xb, yb, eps, gen)
                linf = (x_adv - xb).abs().flatten(1).amax(1)
                inside = (linf <= eps + BALL_TOL) & (x_adv.flatten(1).amin(1) >= 0) & (x_adv.flatten(1).amax(1) <= 1)
                n_viol += int((~inside).sum())
                worst = max(worst, float(linf.max()) if len(linf) else 0.0)
                pred, _ = predict(model, x_adv, batch_size)
                broke = ((pred.to(dev) != yb) & inside).cpu().numpy()
                status[targets[b : b + batch_size]] = np.where(broke, BROKE, SURVIVED)
            newly = (status == BROKE) & robust
            broken_by[newly] = name
            robust &= ~(status == BROKE)
            per_attack[name] = status
            violations[name] = n_viol
            max_linf[name] = worst
            stats[name] = {k: int(v) for k, v in vars(attack.stats).items()}
            if on_attack_done is not None:
                on_attack_done(name)
    return ChunkOutcome(
        clean_pred=clean_pred.numpy(),
        clean_correct=correct,
        robust=robust,
        broken_by=broken_by,
        per_attack=per_attack,
        violations=violations,
        stats=stats,
        nonfinite_logits=nonfinite,
        max_linf=max_linf,
    )
