"""White-box attack algorithms on the adapter, under an attacker-chosen backward rule: FGSM and PGD here, and
the catalogue of every algorithm (this module imports the modules that register the others, so
:func:`make_attack` knows them all; the shared contract is :mod:`attacks.base`).

Threat model: L-infinity on the static image in [0, 1] before any encoder. Every algorithm

* runs its gradients under ``rule`` (``"own"`` = the model's training SG) via
  :meth:`bench.adapter.SNNAdapter.backward_rule`, which restores the neurons' rules afterwards;
* keeps the best iterate: a point misclassified at *any* iterate is returned at that iterate
  ("no silent success");
* averages input gradients over ``eot_draws`` forwards when the model is stochastic (EOT,
  Athalye et al. 2018);
* reports statistics (e.g. how many points had a zero or non-finite input gradient).

The engine (:mod:`bench.engine`) re-scores every returned example with a fresh forward and checks the
eps-ball and the box; the algorithms also project onto both after every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# Further algorithms (APGD-CE/T, Square, AutoAttack via pyautoattack; SA-PGD; SPSA; noise; transfer; the
# papers' last-iterate PGD) register themselves into attacks.base.ATTACKS on import.
from attacks import gauntlet_attacks as _gauntlet_attacks  # noqa: F401
from attacks import paper_attacks as _paper_attacks  # noqa: F401
from attacks import transfer as _transfer  # noqa: F401
from attacks.base import (  # noqa: F401  (re-exported: the contract's old import path)
    ATTACKS,
    ENGINE_KEYS,
    Attack,
    AttackStats,
    _maybe_bpda,
    attack_category,
    loss_values,
    make_attack,
    project,
    register_attack,
)
from bench.adapter import SNNAdapter


@register_attack("fgsm")
@dataclass
class FGSM(Attack):
    """Fast Gradient Sign Method (Goodfellow et al., ICLR 2015): ``x + eps * sign(grad CE)``, one step.

    Example: ``FGSM(rule="atan:alpha=2").perturb(model, x, y, eps=0.1, generator=g)``.
    """

    name: str = "fgsm"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0:
            return x.clone()
        _, grad = self.loss_and_grad(model, x, y)
        return project(x + eps * grad.sign(), x, eps)


@register_attack("pgd")
@dataclass
class PGD(Attack):
    """Projected Gradient Descent (Madry et al., ICLR 2018), L-inf, with random start and restarts.

    ``steps`` iterations of ``x <- proj(x + step * sign(grad CE))`` with ``step = step_size_ratio * eps``
    (eps/4 by default, as in the gauntlet spec), starting from a uniform point in the ball. Each restart
    runs only on the points not yet broken. Best iterate: a point misclassified at any iterate is kept there.
    """

    steps: int = 20
    restarts: int = 1
    step_size_ratio: float = 0.25
    random_start: bool = True
    #: stop iterating on points already broken (identical outcome for per-sample rules, much cheaper)
    early_stop: bool = True
    name: str = "pgd"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0:
            return x.clone()
        step = self.step_size_ratio * eps
        rule = model.neurons[0].rule
        # A point broken at some iterate is broken for good (best iterate), so later iterations only
        # run on the points still standing. Each point's trajectory is unchanged when the rule is
        # per-sample; rules with batch statistics or per-batch state keep the whole batch.
        early_stop = self.early_stop and rule.batch_independent and not rule.stateful
        # Randomised model: no stop on a noisy misclassification; the iterate with the highest EOT-averaged
        # margin loss is kept (AutoAttack's 'rand' advice; the engine commits one example per point)
        stochastic = bool(getattr(model, "is_stochastic", False))
        if stochastic:
            return self._perturb_eot(model, x, y, eps, generator)
        best = x.clone()
        found = torch.zeros(len(y), dtype=torch.bool, device=x.device)
        for r in range(self.restarts):
            todo = (~found).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            xs, ys = x[todo], y[todo]
            if self.random_start:
                noise = torch.rand(xs.shape, generator=generator, device="cpu").to(xs.device)
                x_adv = project(xs + (2 * noise - 1) * eps, xs, eps)
            else:
                x_adv = xs.clone()
            local_found = torch.zeros(len(ys), dtype=torch.bool, device=x.device)
            local_best = x_adv.clone()
            active = torch.arange(len(ys), device=x.device)
            for _ in range(self.steps):
                xa = x_adv[active]
                logits, grad = self.loss_and_grad(model, xa, ys[active])
                wrong = logits.argmax(1) != ys[active]
                hit = active[wrong & ~local_found[active]]
                local_best[hit] = x_adv[hit]
                local_found[hit] = True
                x_adv[active] = project(xa + step * grad.sign(), xs[active], eps)
                if early_stop:
                    active = active[~local_found[active]]
                    if active.numel() == 0:
                        break
            if r < self.restarts - 1 and active.numel():  # the engine re-scores the last restart's final iterate
                with torch.no_grad():
                    wrong = model(x_adv[active]).argmax(1) != ys[active]
                hit = active[wrong & ~local_found[active]]
                local_best[hit] = x_adv[hit]
                local_found[hit] = True
            final = torch.where(local_found.view(-1, *[1] * (x.dim() - 1)), local_best, x_adv)
            best[todo] = final
            found[todo] = local_found
        return best


    def _perturb_eot(self, model, x, y, eps, generator):
        """PGD on a randomised model: every step on the EOT-averaged gradient, no early stop, and per point
        the iterate with the highest EOT-averaged margin loss ``max_{i!=y} z_i - z_y`` over every step and
        restart is returned (a single noisy misclassification decides nothing)."""
        step = self.step_size_ratio * eps
        best = x.clone()
        best_margin = torch.full((len(y),), float("-inf"), device=x.device)
        view = (-1, *[1] * (x.dim() - 1))
        for _ in range(self.restarts):
            if self.random_start:
                noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device)
                x_adv = project(x + (2 * noise - 1) * eps, x, eps)
            else:
                x_adv = x.clone()
            for i in range(self.steps + 1):
                logits, grad = self.loss_and_grad(model, x_adv, y)
                margin = loss_values(logits, y, "margin")
                better = margin > best_margin
                best = torch.where(better.view(view), x_adv, best)
                best_margin = torch.where(better, margin, best_margin)
                if i < self.steps:
                    x_adv = project(x_adv + step * grad.sign(), x, eps)
        self.info["eot_selection"] = "highest EOT-averaged margin, no early stop"
        return best
