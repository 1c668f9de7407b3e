"""What every zoo architecture is built from: the architecture registry and the neuron factory
(a card's ``[neuron]`` table -> a spikingjelly node). :mod:`models_zoo.architectures` is the catalogue
(it imports every module that registers an architecture, so imports point one way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spikingjelly.activation_based import neuron, surrogate
from torch import nn

from attacks.backward_rules import BackwardRule
from bench.errors import BenchError
from bench.registry import Registry

#: every architecture by the name a card's ``architecture`` gives; filled by the modules that define them
ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry("architecture")


def register_architecture(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register an architecture factory under ``name``."""
    return ARCHITECTURES.register(name)


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
    if kind == "DLIF":
        from models_zoo.neurons_dlif import DLIFNeuron

        if spec.get("time_steps") is None:
            raise BenchError("a DLIF neuron needs 'time_steps' in its neuron spec (build it from a card, which supplies T)")
        return DLIFNeuron(
            int(spec["time_steps"]), rule=rule, v_threshold=common["v_threshold"], v_reset=common["v_reset"],
            tau=float(spec.get("tau", 0.99)), detach_reset=common["detach_reset"], step_mode="m",
        )
    raise BenchError(f"neuron type '{kind}' is not known to the zoo's architectures: use LIF, IF, PLIF or DLIF")
