"""White-box attack algorithms on the adapter, under an attacker-chosen backward rule.

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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from bench.adapter import SNNAdapter
from bench.errors import BenchError, unknown_name_error


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip to the L-inf ball of radius ``eps`` around ``x`` and to the box [0, 1]."""
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


@dataclass
class AttackStats:
    """Diagnostics an attack reports back to the engine (summed over batches)."""

    zero_grad: int = 0
    nonfinite_grad: int = 0
    gradient_points: int = 0
    forwards: int = 0

    def add(self, other: "AttackStats") -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass
class Attack:
    """Base class. Subclasses implement :meth:`_perturb`; :meth:`perturb` wraps rule and mode handling."""

    rule: Any = "own"
    eot_draws: int = 1
    stats: AttackStats = field(default_factory=AttackStats)

    name: str = "attack"

    def perturb(self, model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        """Return adversarial images for ``(x, y)`` within the eps-ball and the box."""
        if eps < 0:
            raise BenchError(f"eps must be >= 0, got {eps}")
        with model.backward_rule(self.rule):
            return self._perturb(model, x, y, float(eps), generator).detach()

    def _perturb(self, model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # -- shared pieces -----------------------------------------------------------------------
    def loss_and_grad(self, model: SNNAdapter, x_adv: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits of the first draw [N, K], input gradient of the summed CE, averaged over EOT draws)."""
        draws = self.eot_draws if model.is_stochastic else 1
        grad = torch.zeros_like(x_adv)
        first_logits = None
        for _ in range(draws):
            xa = x_adv.detach().requires_grad_(True)
            logits = model(xa)
            loss = F.cross_entropy(logits, y, reduction="sum")
            (g,) = torch.autograd.grad(loss, xa)
            grad += g
            if first_logits is None:
                first_logits = logits.detach()
        self.stats.forwards += draws * x_adv.shape[0]
        grad /= draws
        flat = grad.flatten(1)
        finite = torch.isfinite(flat).all(1)
        self.stats.nonfinite_grad += int((~finite).sum())
        self.stats.zero_grad += int(((flat == 0).all(1) & finite).sum())
        self.stats.gradient_points += int(flat.shape[0])
        return first_logits, torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)

    def describe(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k not in ("stats",)}
        d["rule"] = self.rule if isinstance(self.rule, str) else getattr(self.rule, "spec", lambda: str(self.rule))()
        return d


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
    name: str = "pgd"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0:
            return x.clone()
        step = self.step_size_ratio * eps
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
            for _ in range(self.steps):
                logits, grad = self.loss_and_grad(model, x_adv, ys)
                wrong = (logits.argmax(1) != ys) & ~local_found
                local_best[wrong] = x_adv[wrong]
                local_found |= wrong
                x_adv = project(x_adv + step * grad.sign(), xs, eps)
            if r < self.restarts - 1:  # the engine re-scores the final iterate of the last restart
                with torch.no_grad():
                    wrong = (model(x_adv).argmax(1) != ys) & ~local_found
                local_best[wrong] = x_adv[wrong]
                local_found |= wrong
            final = torch.where(local_found.view(-1, *[1] * (x.dim() - 1)), local_best, x_adv)
            best[todo] = final
            found[todo] = local_found
        return best


ATTACKS: dict[str, Callable[..., Attack]] = {"fgsm": FGSM, "pgd": PGD}

#: keys of a preset entry that belong to the engine, not to the attack's constructor
ENGINE_KEYS = {"name", "attack", "on", "description"}


def make_attack(spec: dict[str, Any]) -> Attack:
    """Instantiate an attack from a resolved preset entry (``{"attack": "pgd", "steps": 20, ...}``)."""
    kind = spec["attack"]
    if kind not in ATTACKS:
        raise unknown_name_error("attack", kind, ATTACKS)
    params = {k: v for k, v in spec.items() if k not in ENGINE_KEYS}
    try:
        attack = ATTACKS[kind](**params)
    except TypeError as e:
        raise BenchError(f"attack '{spec.get('name', kind)}' ({kind}): bad parameters: {e}") from None
    attack.name = spec.get("name", kind)
    return attack
