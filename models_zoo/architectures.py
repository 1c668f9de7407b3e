"""Registered SNN architectures, built from spikingjelly layers in multi-step mode.

Every factory takes ``neuron`` (a card's ``[neuron]`` table: type, tau, v_threshold, v_reset),
``surrogate`` (the training SG as a :class:`~attacks.backward_rules.BackwardRule`), ``num_classes`` and
``in_shape`` plus its own keyword arguments (a card's ``[architecture_args]``), and returns a network
mapping ``[T, N, C, H, W] -> [T, N, K]``. The readout is a non-spiking linear layer whose outputs the
adapter averages over time. Spiking neurons are spikingjelly nodes; the adapter instruments them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn

from attacks.backward_rules import BackwardRule
from bench.errors import BenchError, unknown_name_error

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture '{name}' is already registered")
        ARCHITECTURES[name] = fn
        return fn

    return deco


def spikingjelly_surrogate(rule: BackwardRule) -> surrogate.SurrogateFunctionBase:
    """The spikingjelly surrogate equal to ``rule`` (used only when the net runs outside the adapter)."""
    p = rule.params
    if rule.family == "atan":
        return surrogate.ATan(alpha=p["alpha"])
    if rule.family == "sigmoid":
        return surrogate.Sigmoid(alpha=p["alpha"])
    if rule.family == "triangle":
        return surrogate.PiecewiseQuadratic(alpha=1.0 / p["gamma"])
    return surrogate.ATan()  # no spikingjelly twin: the adapter installs the exact rule anyway


def make_neuron(spec: dict[str, Any], rule: BackwardRule) -> nn.Module:
    """A spikingjelly neuron node (multi-step) from a card's ``[neuron]`` table."""
    kind = spec.get("type", "LIF")
    v_reset = spec.get("v_reset", 0.0)
    common = dict(
        v_threshold=float(spec.get("v_threshold", 1.0)),
        v_reset=None if v_reset is None or v_reset == "soft" else float(v_reset),
        surrogate_function=spikingjelly_surrogate(rule),
        detach_reset=bool(spec.get("detach_reset", False)),
        step_mode="m",
    )
    if kind == "LIF":
        return neuron.LIFNode(tau=float(spec.get("tau", 2.0)), decay_input=bool(spec.get("decay_input", True)), **common)
    if kind == "IF":
        return neuron.IFNode(**common)
    if kind == "PLIF":
        return neuron.ParametricLIFNode(init_tau=float(spec.get("tau", 2.0)), decay_input=bool(spec.get("decay_input", True)), **common)
    raise BenchError(f"neuron type '{kind}' is not known to the zoo's architectures: use LIF, IF or PLIF")


def _pool(kind: str) -> nn.Module:
    if kind == "avg":
        return layer.AvgPool2d(2, step_mode="m")
    if kind == "max":
        return layer.MaxPool2d(2, step_mode="m")
    raise BenchError(f"pooling must be 'avg' or 'max', got {kind!r}")


@register_architecture("scnn28")
def scnn28(
    neuron: dict[str, Any],
    surrogate: BackwardRule,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    channels: tuple[int, int] = (16, 32),
    hidden: int = 128,
    pooling: str = "avg",
) -> nn.Module:
    """Spiking CNN for 28x28 inputs: [conv3x3-BN-spike-pool2] x 2, linear-spike, linear readout.

    With the defaults (16, 32 channels, 128 hidden) it has 207k parameters.
    """
    c0, h, w = in_shape
    c1, c2 = channels
    flat = c2 * (h // 4) * (w // 4)
    return nn.Sequential(
        layer.Conv2d(c0, c1, 3, padding=1, bias=False, step_mode="m"),
        layer.BatchNorm2d(c1, step_mode="m"),
        make_neuron(neuron, surrogate),
        _pool(pooling),
        layer.Conv2d(c1, c2, 3, padding=1, bias=False, step_mode="m"),
        layer.BatchNorm2d(c2, step_mode="m"),
        make_neuron(neuron, surrogate),
        _pool(pooling),
        layer.Flatten(step_mode="m"),
        layer.Linear(flat, hidden, step_mode="m"),
        make_neuron(neuron, surrogate),
        layer.Linear(hidden, num_classes, step_mode="m"),
    )


@register_architecture("smlp")
def smlp(
    neuron: dict[str, Any],
    surrogate: BackwardRule,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (1, 8, 8),
    hidden: tuple[int, ...] = (64,),
) -> nn.Module:
    """Spiking MLP (flatten, [linear-spike] per hidden size, linear readout): for fast tests on digits."""
    dims = [in_shape[0] * in_shape[1] * in_shape[2], *hidden]
    mods: list[nn.Module] = [layer.Flatten(step_mode="m")]
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [layer.Linear(a, b, step_mode="m"), make_neuron(neuron, surrogate)]
    mods.append(layer.Linear(dims[-1], num_classes, step_mode="m"))
    return nn.Sequential(*mods)


def build_architecture(name: str, **kwargs: Any) -> nn.Module:
    if name not in ARCHITECTURES:
        raise unknown_name_error("architecture", name, ARCHITECTURES)
    try:
        return ARCHITECTURES[name](**kwargs)
    except TypeError as e:
        raise BenchError(f"architecture '{name}' does not accept these arguments: {e}") from None
