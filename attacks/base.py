"""The attack contract every algorithm shares: :class:`Attack` (the eps = 0 and empty-batch guards, EOT,
best-iterate bookkeeping, statistics), projection onto the eps-ball and the box, the attack losses, and the
registry that resolves a preset entry into an attack (:func:`make_attack`).

Threat model: L-infinity on the static image in [0, 1] before any encoder. Every algorithm

* runs its gradients under ``rule`` (``"own"`` = the model's training SG) via
  :meth:`bench.adapter.SNNAdapter.backward_rule`, which restores the neurons' rules afterwards;
* keeps the best iterate: a point misclassified at *any* iterate is returned at that iterate
  ("no silent success");
* averages input gradients over ``eot_draws`` forwards when the model is stochastic (EOT,
  Athalye et al. 2018);
* reports statistics (e.g. how many points had a zero or non-finite input gradient).

The engine (:mod:`bench.engine`) re-scores every returned example with a fresh forward and checks the
eps-ball and the box; the algorithms also project onto both after every step. The algorithms register
into :data:`ATTACKS` from their own modules; :mod:`attacks.algorithms` imports them all.
"""


from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bench.adapter import SNNAdapter
from bench.errors import BenchError, unknown_name_error
from bench.registry import Registry


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
    #: BPDA (Athalye et al. 2018, Sec. 4.1): bypass gradient-blocking parts of the forward in the backward
    #: (:mod:`attacks.bpda`); the forward, and so every score, is unchanged
    bpda: bool = False
    stats: AttackStats = field(default_factory=AttackStats)

    name: str = "attack"

    #: ``whitebox`` (gradients through the attacker's backward rule), ``blackbox`` (scores only),
    #: ``transfer`` (gradients of another model), ``noise`` (random perturbations) or ``reference``
    #: (a packaged mix, e.g. AutoAttack): sanity flags 9 and 12 compare categories.
    category: ClassVar[str] = "whitebox"

    def perturb(self, model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        """Return adversarial images for ``(x, y)`` within the eps-ball and the box."""
        if eps < 0:
            raise BenchError(f"eps must be >= 0, got {eps}")
        if x.shape[0] == 0:  # an empty batch (every point already broken): nothing to attack, no forward
            return x.detach().clone()
        if not hasattr(self, "info"):
            self.info: dict[str, Any] = {}
        if not hasattr(self, "context"):
            self.context: dict[str, Any] = {}
        with model.backward_rule(self.rule) as rule, _maybe_bpda(self, model, x):
            self._active_rule = rule
            try:
                return self._perturb(model, x, y, float(eps), generator).detach()
            finally:
                self._active_rule = None

    def _perturb(self, model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # -- shared pieces -----------------------------------------------------------------------
    def loss_and_grad(
        self, model: SNNAdapter, x_adv: torch.Tensor, y: torch.Tensor, loss: str = "ce"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits averaged over the EOT draws [N, K], input gradient of the summed loss, averaged likewise).

        ``loss``: ``ce`` (cross-entropy), ``margin`` (``max_{i!=y} z_i - z_y``) or ``dlr`` (Croce & Hein's
        difference of logits ratio); every loss increases as the point moves towards misclassification.
        A stateful rule (ASSG) updates its statistics on the first draw only (its ``frozen`` flag).
        """
        draws = self.eot_draws if model.is_stochastic else 1
        rule = getattr(self, "_active_rule", None)
        grad = torch.zeros_like(x_adv)
        first_logits = None
        for d in range(draws):
            if rule is not None and hasattr(rule, "frozen"):
                rule.frozen = d > 0
            xa = x_adv.detach().requires_grad_(True)
            logits = model(xa)
            total = loss_values(logits, y, loss).sum()
            if total.requires_grad:  # a forward that detaches its input gives no graph: a zero gradient
                (g,) = torch.autograd.grad(total, xa, allow_unused=True)
                if g is not None:
                    grad += g
            # EOT: the logits averaged over the draws (one draw for a deterministic model)
            first_logits = logits.detach() if first_logits is None else first_logits + logits.detach()
        if draws > 1:
            first_logits = first_logits / draws
        if rule is not None and hasattr(rule, "frozen"):
            rule.frozen = False
        self.stats.forwards += draws * x_adv.shape[0]
        grad /= draws
        flat = grad.flatten(1)
        finite = torch.isfinite(flat).all(1)
        self.stats.nonfinite_grad += int((~finite).sum())
        self.stats.zero_grad += int(((flat == 0).all(1) & finite).sum())
        self.stats.gradient_points += int(flat.shape[0])
        return first_logits, torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)

    def describe(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k not in ("stats", "context", "info") and not k.startswith("_")}
        d["rule"] = self.rule if isinstance(self.rule, str) else getattr(self.rule, "spec", lambda: str(self.rule))()
        return d


@contextmanager
def _maybe_bpda(attack: Attack, model: SNNAdapter, x: torch.Tensor) -> Iterator[None]:
    if not attack.bpda or len(x) == 0:
        yield
        return
    from attacks.bpda import bpda

    with bpda(model, x, attack.info):
        yield


def loss_values(logits: torch.Tensor, y: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """Per-point attack loss [N] (higher = closer to misclassification): ``ce``, ``margin`` or ``dlr``."""
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    if loss == "margin":
        return others.amax(1) - z_y
    if loss == "dlr":  # Croce & Hein 2020, Eq. (6): -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12)
        srt = logits.sort(1, descending=True).values
        return -(z_y - others.amax(1)) / (srt[:, 0] - srt[:, 2] + 1e-12)
    raise BenchError(f"unknown attack loss '{loss}': use ce, margin or dlr")


#: every attack algorithm by its preset name (``attack = "pgd"``); filled by the modules that define them
ATTACKS: Registry[Callable[..., Attack]] = Registry("attack")

#: keys of a preset entry that belong to the engine, not to the attack's constructor:
#: ``on`` / ``unbroken_by`` (which points), ``subset_every`` (every k-th point of a chunk), ``family``
#: (reporting group), ``tune`` (per-model tuning of a rule parameter, :mod:`attacks.tuning`)
#: ``when`` / ``masked_share`` (run only in a chunk whose own-SG gradients are dead: :mod:`bench.masking`)
ENGINE_KEYS = {"name", "attack", "on", "description", "unbroken_by", "subset_every", "family", "tune", "when", "masked_share"}


def register_attack(name: str) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator: register an attack algorithm under ``name`` (the ``attack`` key of a preset)."""

    return ATTACKS.register(name)


def attack_category(kind: str) -> str:
    """The category (whitebox, blackbox, transfer, noise, reference) of a registered attack kind."""
    if kind not in ATTACKS:
        raise unknown_name_error("attack", kind, ATTACKS)
    return getattr(ATTACKS[kind], "category", "whitebox")


def make_attack(spec: dict[str, Any], context: dict[str, Any] | None = None) -> Attack:
    """Instantiate an attack from a resolved preset entry (``{"attack": "pgd", "steps": 20, ...}``).

    ``context`` tells attacks about the evaluation (``model_id``, ``dataset``): transfer attacks use it to
    choose a source model other than the one under attack.
    """
    kind = spec["attack"]
    if kind not in ATTACKS:
        raise unknown_name_error("attack", kind, ATTACKS)
    params = {k: v for k, v in spec.items() if k not in ENGINE_KEYS}
    try:
        attack = ATTACKS[kind](**params)
    except TypeError as e:
        raise BenchError(f"attack '{spec.get('name', kind)}' ({kind}): bad parameters: {e}") from None
    attack.name = spec.get("name", kind)
    attack.context = dict(context or {})
    attack.info = {}
    return attack
