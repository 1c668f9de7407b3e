"""Instrumented twins of spikingjelly's IF, LIF and ParametricLIF neurons.

:func:`instrument` swaps every ``IFNode`` / ``LIFNode`` / ``ParametricLIFNode`` of a network for a
:class:`SpikingNeuron` whose forward output is identical (same charge equation, Heaviside
``1[H - theta >= 0]``, hard or soft reset, ``detach_reset``; checked against spikingjelly in the tests)
and which additionally

* records the pre-spike potential ``H - theta`` per layer and time step on demand (membrane potential
  distribution plots, MPD-SGR's Omega), with or without the autograd graph;
* takes its backward pass from a :class:`attacks.backward_rules.BackwardRule` that the attacker chooses.

Charge equations (spikingjelly 2.0 ``_ops/*/reference.py``), with V_r = v_reset (0 for soft reset):
IF: ``H = V + X``; LIF, decay_input: ``H = V + (X - (V - V_r)) / tau``; LIF, no decay_input:
``H = V - (V - V_r) / tau + X``; ParametricLIF: the LIF forms with ``1/tau = sigmoid(w)``.
Reset: hard ``V = S * V_r + (1 - S) * H``; soft ``V = H - S * theta``.
"""

from __future__ import annotations

from typing import Literal

import torch
from spikingjelly.activation_based import base, functional, neuron, surrogate
from torch import nn

from attacks.backward_rules import BackwardRule, make_rule
from bench.errors import BenchError
from bench.fused_neuron import fusable, fused_run

RecordMode = Literal["detach", "graph"] | None


class SpikingNeuron(base.MemoryModule):
    """A spiking neuron layer whose backward rule is pluggable and whose potentials can be recorded.

    ``kind`` is one of ``IF``, ``LIF``, ``PLIF``. For ``PLIF`` the learnable ``w`` parameter keeps
    spikingjelly's name, so state dicts are interchangeable with the original network.
    """

    KINDS = ("IF", "LIF", "PLIF")

    def __init__(
        self,
        kind: str = "LIF",
        rule: BackwardRule | None = None,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        tau: float = 2.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        step_mode: str = "m",
        w: nn.Parameter | None = None,
    ) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise BenchError(f"neuron kind '{kind}' is not supported: use one of {', '.join(self.KINDS)}")
        self.kind = kind
        self.rule = rule if rule is not None else make_rule("triangle", gamma=1.0)
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.tau = float(tau)
        self.decay_input = bool(decay_input)
        self.detach_reset = bool(detach_reset)
        self.step_mode = step_mode
        if kind == "PLIF":
            if w is None:
                import math

                w = nn.Parameter(torch.as_tensor(-math.log(self.tau - 1.0)))
            self.w = w
        self.register_memory("v", 0.0 if self.v_reset is None else self.v_reset)
        self.register_memory("t", 0)
        self._record_mode: RecordMode = None
        self._records: list[torch.Tensor] = []

    # -- dynamics ----------------------------------------------------------------------------
    def charge(self, x: torch.Tensor, v: torch.Tensor, t: int) -> torch.Tensor:
        """Membrane potential H after integrating input ``x`` at time step ``t`` from potential ``v``."""
        if self.kind == "IF":
            return v + x
        vr = 0.0 if self.v_reset is None else self.v_reset
        if self.kind == "LIF":
            if self.decay_input:
                return v + (x - (v - vr)) / self.tau
            return v - (v - vr) / self.tau + x
        q = self.w.sigmoid()
        if self.decay_input:
            return v + (x - (v - vr)) * q
        return v - (v - vr) * q + x

    def reset_potential(self, h: torch.Tensor, spike: torch.Tensor) -> torch.Tensor:
        """Potential after firing: hard reset to v_reset, or soft reset by subtracting theta."""
        s = spike.detach() if self.detach_reset else spike
        if self.v_reset is None:
            return h - s * self.v_threshold
        return s * self.v_reset + (1.0 - s) * h

    def _initial_v(self, like: torch.Tensor) -> torch.Tensor:
        v = self.v
        if isinstance(v, torch.Tensor) and v.shape == like.shape:
            return v
        fill = 0.0 if self.v_reset is None else self.v_reset
        return torch.full_like(like, fill)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        t0 = int(self.t)
        spikes, v = self._run(x.unsqueeze(0), self._initial_v(x), t0)
        self.v = v
        self.t = t0 + 1
        return spikes[0]

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        spikes, v = self._run(x_seq, self._initial_v(x_seq[0]), int(self.t))
        self.v = v
        self.t = int(self.t) + x_seq.shape[0]
        return spikes

    def _run(self, x_seq: torch.Tensor, v: torch.Tensor, t0: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._t0 = t0
        if fusable(self, self.rule):  # exact: the fused loop with its hand-written backward
            return fused_run(self, self.rule, x_seq, v)
        return self.rule.run(self, x_seq, v)

    def time_index(self, t: int) -> int:
        """Absolute time step of local step ``t`` (single-step mode runs one step at a time)."""
        return self._t0 + t

    def reset(self) -> None:
        """Reset state (spikingjelly's ``reset_net`` calls this) and drop records of earlier forwards."""
        super().reset()
        self._records = []

    # -- recording ---------------------------------------------------------------------------
    def observe(self, x: torch.Tensor) -> None:
        """Called by the backward rule with ``x = H - theta`` at every time step."""
        if self._record_mode == "detach":
            self._records.append(x.detach())
        elif self._record_mode == "graph":
            self._records.append(x)

    def start_recording(self, mode: RecordMode = "detach") -> None:
        self._record_mode = mode
        self._records = []

    def stop_recording(self) -> torch.Tensor | None:
        """Stop and return the recorded ``H - theta`` as [T, N, ...] (None when nothing was recorded)."""
        self._record_mode = None
        recs, self._records = self._records, []
        return torch.stack(recs) if recs else None

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind}, rule={self.rule.spec()}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
            f"tau={self.tau}, decay_input={self.decay_input}, detach_reset={self.detach_reset}, step_mode={self.step_mode}"
        )


def rule_from_spikingjelly(sg: object) -> BackwardRule | None:
    """The backward rule equal to a spikingjelly surrogate instance, when there is one."""
    alpha = float(getattr(sg, "alpha", 0.0) or 0.0)
    if isinstance(sg, surrogate.ATan):
        return make_rule("atan", alpha=alpha)
    if isinstance(sg, surrogate.Sigmoid):
        return make_rule("sigmoid", alpha=alpha)
    if isinstance(sg, surrogate.PiecewiseQuadratic):
        return make_rule("triangle", gamma=1.0 / alpha)
    return None


def _twin_of(node: nn.Module, rule: BackwardRule | None) -> SpikingNeuron:
    own = rule or rule_from_spikingjelly(node.surrogate_function) or make_rule("triangle", gamma=1.0)
    common = dict(
        rule=own,
        v_threshold=node.v_threshold,
        v_reset=node.v_reset,
        detach_reset=node.detach_reset,
        step_mode=node.step_mode,
    )
    if type(node) is neuron.IFNode:
        return SpikingNeuron("IF", **common)
    if type(node) is neuron.LIFNode:
        return SpikingNeuron("LIF", tau=node.tau, decay_input=node.decay_input, **common)
    if type(node) is neuron.ParametricLIFNode:
        return SpikingNeuron("PLIF", decay_input=node.decay_input, w=node.w, **common)
    raise BenchError(
        f"neuron type {type(node).__name__} is not supported by the adapter: build the model with "
        f"spikingjelly IFNode, LIFNode or ParametricLIFNode (or bench.neurons.SpikingNeuron)"
    )


def instrument(net: nn.Module, rule: BackwardRule | None = None) -> list[SpikingNeuron]:
    """Swap every spikingjelly spiking neuron of ``net`` for an instrumented twin, in place.

    Returns the list of :class:`SpikingNeuron` layers in forward-registration order (twins already in
    the network are kept). ``rule`` sets every twin's backward rule; by default each twin keeps the
    rule equal to its original surrogate function.
    """
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, SpikingNeuron):
                continue
            if isinstance(child, neuron.BaseNode) or isinstance(child, neuron.SimpleBaseNode):
                setattr(module, child_name, _twin_of(child, rule))
    functional.invalidate_reset_cache(net)
    layers = [m for m in net.modules() if isinstance(m, SpikingNeuron)]
    if rule is not None:
        for m in layers:
            m.rule = rule
    return layers
