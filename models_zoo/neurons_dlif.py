"""The DLIF neuron of RSSNN (Ding, Pan, Liu, Yu, Huang; "Robust Stable Spiking Neural Networks", ICML 2024).

DLIF is a LIF neuron whose input is scaled by a learnable gain per time step (the paper's Eq. for the
"dynamic" LIF; authors' code ``models/layers.py::dlif_forward``)::

    u[t] = tau * u[t-1] + p[t] * I[t]          (charge; tau is the multiplicative leak, 0.99 in the paper)
    s[t] = Heaviside(u[t] - theta)             (fire; the backward pass is the layer's BackwardRule)
    u[t] = s[t] * V_r + (1 - s[t]) * u[t]      (hard reset; the code's ``mem = (1 - spike) * mem``, V_r = 0)

``p`` is one vector of length T per layer, initialised to 1. Note that ``tau`` here is the paper's leak
factor (u decays by ``tau`` per step), *not* spikingjelly's time constant (LIF decays by ``1 - 1/tau``).
With ``v_reset = V_r`` the leak is towards V_r: ``u[t] = V_r + tau*(u[t-1] - V_r) + p[t]*I[t]``, equal to
the paper's form for its V_r = 0.

The class is a :class:`bench.neurons.SpikingNeuron`, so the adapter keeps it as it is (no spikingjelly
twin exists), records its pre-spike potential ``u[t] - theta`` and lets an attacker swap its backward rule.
"""

from __future__ import annotations

import torch
from torch import nn

from attacks.backward_rules import BackwardRule
from bench.errors import BenchError
from bench.neurons import SpikingNeuron


class DLIFNeuron(SpikingNeuron):
    """RSSNN's DLIF neuron: LIF with multiplicative leak ``tau`` and a learnable input gain ``p[t]``."""

    KINDS = ("DLIF",)

    def __init__(
        self,
        time_steps: int,
        rule: BackwardRule | None = None,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        tau: float = 0.99,
        detach_reset: bool = False,
        step_mode: str = "m",
    ) -> None:
        if int(time_steps) < 1:
            raise BenchError(f"DLIF neuron needs time_steps >= 1, got {time_steps}")
        if not 0.0 <= float(tau) <= 1.0:
            raise BenchError(f"DLIF leak tau must lie in [0, 1] (the paper uses 0.99), got {tau}")
        super().__init__(
            "DLIF", rule=rule, v_threshold=v_threshold, v_reset=v_reset, tau=tau, decay_input=False,
            detach_reset=detach_reset, step_mode=step_mode,
        )
        self.p = nn.Parameter(torch.ones(int(time_steps)))

    @property
    def leak(self) -> float:
        """The multiplicative leak per step (``tau``)."""
        return self.tau

    def charge(self, x: torch.Tensor, v: torch.Tensor, t: int) -> torch.Tensor:
        ti = self.time_index(t)
        if ti >= self.p.numel():
            raise BenchError(
                f"DLIF neuron has input gains for {self.p.numel()} time steps but was run for step {ti + 1}: "
                f"run the model with the card's time_steps"
            )
        vr = 0.0 if self.v_reset is None else self.v_reset
        return vr + self.tau * (v - vr) + self.p[ti] * x

    def extra_repr(self) -> str:
        return f"T={self.p.numel()}, " + super().extra_repr()


def leak_factor(node: SpikingNeuron) -> float:
    """Multiplicative leak per step of a neuron layer, lambda in ``u[t] = lambda*u[t-1] + (gain)*I[t]``.

    DLIF: tau. IF: 1. LIF (spikingjelly time constant tau): 1 - 1/tau. PLIF: 1 - sigmoid(w).
    RSSNN's MS-MPPD recursion ``Y[t] = lambda*Y[t-1] + Delta[t]`` uses it.
    """
    if isinstance(node, DLIFNeuron):
        return float(node.tau)
    if node.kind == "IF":
        return 1.0
    if node.kind == "LIF":
        return 1.0 - 1.0 / float(node.tau)
    if node.kind == "PLIF":
        return float(1.0 - node.w.detach().sigmoid())
    raise BenchError(f"no leak factor known for neuron kind '{node.kind}'")
