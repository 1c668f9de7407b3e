"""The backward-rule base: the Heaviside spike, :class:`BackwardRule`, the per-element surrogate families and
the rule registry. :mod:`attacks.backward_rules` is the full catalogue (these plus the temporal rules).

Every rule changes only the backward pass. The forward spike is always ``S = 1[x >= 0]`` with
``x = H - theta`` (spikingjelly's ``surrogate.heaviside``), so a model's outputs are identical under any
rule. A rule takes over a neuron layer's whole temporal loop (:meth:`BackwardRule.run`), so rules that
reshape the temporal graph (BPTR, RGA, HART, PDSG, ASSG in the full gauntlet) override ``run`` while the
surrogate families only override :meth:`BackwardRule.surrogate_grad`.

Surrogate families (``../shared/spec/gauntlet.md``, table "Surrogate-gradient-aware BPTT"), x = H - theta:

=================  ================================================  =====================
family             g(x)                                              parameter
=================  ================================================  =====================
atan               (alpha/2) / (1 + (pi/2 * alpha * x)^2)            alpha (default 2)
triangle           (1/gamma^2) * max(0, gamma - |x|)                 gamma (default 1)
rectangle          1[|x| < gamma/2] / gamma                          gamma (default 1)
sigmoid            alpha * s(alpha x) * (1 - s(alpha x))             alpha (default 4)
straight-through   scale (the identity's slope)                      scale (default 1)
=================  ================================================  =====================

``atan`` is spikingjelly's ``surrogate.ATan``; ``triangle`` with width gamma equals spikingjelly's
``surrogate.PiecewiseQuadratic(alpha=1/gamma)``; ``sigmoid`` equals ``surrogate.Sigmoid(alpha)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from bench.errors import BenchError, unknown_name_error
from bench.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from bench.neurons import SpikingNeuron


class _HeavisideSurrogate(torch.autograd.Function):
    """Forward: 1[x >= 0]. Backward: grad_output * rule.surrogate_grad(x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rule: "BackwardRule") -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.rule = rule
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * ctx.rule.surrogate_grad(x), None


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """The exact spike function, no gradient: ``1[x >= 0]`` as spikingjelly defines it."""
    return (x >= 0).to(x)


class BackwardRule:
    """Base class: how gradients flow through a spiking neuron layer (forward is never changed).

    Subclasses either implement :meth:`surrogate_grad` (a per-element SG, used by the default BPTT loop)
    or override :meth:`run` to reshape the temporal graph (rate- and time-based rules).
    """

    family: str = "base"
    #: True when the rule keeps state across attack iterations (ASSG's moving averages).
    stateful: bool = False
    #: True when a point's gradient does not depend on the other points of the batch. Attacks may then
    #: drop points they have already broken from later iterations (PDSG's batch statistics forbid it).
    batch_independent: bool = True

    def __init__(self, **params: float) -> None:
        self.params: dict[str, float] = {k: float(v) for k, v in params.items()}

    # -- the per-element surrogate ---------------------------------------------------------------
    def surrogate_grad(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} defines no per-element surrogate gradient")

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        """Heaviside of ``x = H - theta`` with this rule's backward."""
        return _HeavisideSurrogate.apply(x, self)

    # -- the temporal loop -----------------------------------------------------------------------
    def run(self, node: "SpikingNeuron", x_seq: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a neuron layer over ``x_seq`` [T, ...] from state ``v``; return (spikes [T, ...], v_last).

        Default: exact BPTT through charge, fire and reset, spiking with :meth:`spike`. The node records
        the pre-spike potential ``H - theta`` when asked (:meth:`SpikingNeuron.record`). Where it is
        exact, the neuron runs the loop fused instead, with a hand-written backward (:mod:`bench.fused_neuron`,
        chosen in :meth:`bench.neurons.SpikingNeuron._run`).
        """
        spikes = []
        for t, x_t in enumerate(x_seq.unbind(0)):  # unbind: one backward cat, not T zero-filled selects
            h = node.charge(x_t, v, t)
            x = h - node.v_threshold
            node.observe(x)
            s = self.spike(x)
            v = node.reset_potential(h, s)
            spikes.append(s)
        return torch.stack(spikes), v

    def begin_attack(self) -> None:
        """Called once before an attack starts using this rule (stateful rules reset here)."""

    # -- identity --------------------------------------------------------------------------------
    def spec(self) -> str:
        """The canonical string form, e.g. ``atan:alpha=2``; :func:`parse_rule` inverts it."""
        if not self.params:
            return self.family
        return self.family + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in sorted(self.params.items()))

    def __repr__(self) -> str:
        return f"BackwardRule({self.spec()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BackwardRule) and other.spec() == self.spec()

    def __hash__(self) -> int:
        return hash(self.spec())


def _fmt(v: float) -> str:
    return f"{v:g}"


class SurrogateRule(BackwardRule):
    """A surrogate-gradient family with its parameters (see the module docstring's table)."""

    def __init__(self, family: str, fn: Callable[[torch.Tensor, dict[str, float]], torch.Tensor], **params: float):
        super().__init__(**params)
        self.family = family
        self._fn = fn

    def surrogate_grad(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x, self.params)


def _atan(x: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    a = p["alpha"]
    return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)


def _triangle(x: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    g = p["gamma"]
    return torch.clamp(g - x.abs(), min=0) / (g * g)


def _rectangle(x: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    g = p["gamma"]
    return (x.abs() < g / 2).to(x) / g


def _sigmoid(x: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    a = p["alpha"]
    s = torch.sigmoid(a * x)
    return a * s * (1 - s)


def _straight_through(x: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    return torch.full_like(x, p["scale"])


#: family name -> (gradient function, default parameters, the parameter that sets the width/sharpness)
SURROGATE_FAMILIES: dict[str, tuple[Callable, dict[str, float], str]] = {
    "atan": (_atan, {"alpha": 2.0}, "alpha"),
    "triangle": (_triangle, {"gamma": 1.0}, "gamma"),
    "rectangle": (_rectangle, {"gamma": 1.0}, "gamma"),
    "sigmoid": (_sigmoid, {"alpha": 4.0}, "alpha"),
    "straight-through": (_straight_through, {"scale": 1.0}, "scale"),
}

#: Rules that are not per-element surrogates register a factory here (the full gauntlet adds
#: bptr, rga, hart, pdsg, assg). Factories take the parsed keyword parameters.
RULE_FACTORIES: Registry[Callable[..., BackwardRule]] = Registry("backward rule")


def register_rule(name: str) -> Callable[[Callable[..., BackwardRule]], Callable[..., BackwardRule]]:
    """Decorator: register a non-surrogate backward rule factory under ``name``."""
    if name in SURROGATE_FAMILIES:
        raise ValueError(f"backward rule '{name}' is already registered")
    return RULE_FACTORIES.register(name)


def known_rules() -> list[str]:
    return sorted([*SURROGATE_FAMILIES, *RULE_FACTORIES])


def make_rule(family: str, **params: Any) -> BackwardRule:
    """Build a rule by family name and parameters, e.g. ``make_rule("triangle", gamma=0.5)``."""
    if family in SURROGATE_FAMILIES:
        fn, defaults, _ = SURROGATE_FAMILIES[family]
        unknown = set(params) - set(defaults)
        if unknown:
            raise BenchError(
                f"backward rule '{family}' takes {sorted(defaults)}, not {sorted(unknown)}: e.g. "
                f"'{family}:{next(iter(defaults))}={_fmt(next(iter(defaults.values())))}'"
            )
        merged = {**defaults, **{k: float(v) for k, v in params.items()}}
        for k, v in merged.items():
            if not math.isfinite(v) or (k != "scale" and v <= 0):
                raise BenchError(f"backward rule '{family}': {k} must be a positive finite number, got {v}")
        return SurrogateRule(family, fn, **merged)
    if family in RULE_FACTORIES:
        return RULE_FACTORIES[family](**params)
    raise unknown_name_error("backward rule", family, known_rules())


def parse_rule(spec: "str | dict[str, Any] | BackwardRule") -> BackwardRule:
    """Parse ``"atan:alpha=2"`` / ``"triangle"`` / ``{"family": "atan", "alpha": 2}`` into a rule."""
    if isinstance(spec, BackwardRule):
        return spec
    if isinstance(spec, dict):
        d = dict(spec)
        family = d.pop("family", None)
        if family is None:
            raise BenchError(f"backward rule {spec!r} has no 'family' key")
        return make_rule(str(family), **d)
    if not isinstance(spec, str) or not spec.strip():
        raise BenchError(f"backward rule must be a string like 'atan:alpha=2', got {spec!r}")
    family, _, rest = spec.strip().partition(":")
    params: dict[str, float] = {}
    if rest:
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if not eq:
                raise BenchError(f"backward rule '{spec}': parameter '{part}' must look like name=value")
            try:
                params[key.strip()] = float(value)
            except ValueError:
                raise BenchError(f"backward rule '{spec}': '{value}' is not a number") from None
    return make_rule(family.strip(), **params)


def training_rule(family: str, width: float) -> BackwardRule:
    """The rule a model card's ``training_surrogate`` (family, width) describes.

    ``width`` is the family's width/sharpness parameter: gamma for triangle and rectangle, alpha for
    atan and sigmoid, scale for straight-through.
    """
    if family not in SURROGATE_FAMILIES:
        raise unknown_name_error("training surrogate family", family, SURROGATE_FAMILIES)
    key = SURROGATE_FAMILIES[family][2]
    return make_rule(family, **{key: width})


def support_halfwidth(rule: BackwardRule) -> float:
    """Half-width of the window where the rule's SG is non-zero (or, for unbounded SGs, where it stays
    above 5% of its peak): the "gradient-available window" of membrane-distribution plots and MPD-SGR.
    """
    p = rule.params
    if rule.family == "triangle":
        return p["gamma"]
    if rule.family == "rectangle":
        return p["gamma"] / 2
    if rule.family == "atan":  # g(x)/g(0) = 1/(1+(pi/2 a x)^2) = 0.05  ->  x = sqrt(19) * 2/(pi a)
        return math.sqrt(19.0) * 2 / (math.pi * p["alpha"])
    if rule.family == "sigmoid":  # 4 s(1-s) = 0.05 -> s ~ 0.01266 -> |a x| = ln((1-s)/s)
        s = (1 - math.sqrt(1 - 0.05)) / 2
        return math.log((1 - s) / s) / p["alpha"]
    return math.inf
