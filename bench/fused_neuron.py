"""A fused temporal loop for IF / LIF layers whose backward rule is a per-element surrogate.

Autograd through the plain BPTT loop (:meth:`attacks.backward_rules.BackwardRule.run`) stores about ten
intermediate tensors per time step and runs one backward kernel per forward operation. This module runs
the same loop once without a graph, saves only the pre-spike potentials ``u_t = H_t - theta``, and
back-propagates through time by hand. The forward uses the very same expressions in the same order as
:meth:`bench.neurons.SpikingNeuron.charge` and :meth:`~bench.neurons.SpikingNeuron.reset_potential`, so
its outputs are bit-identical; its gradient equals autograd's through the plain loop up to float rounding
(``tests/test_fused_neuron.py``).

Dynamics (spikingjelly 2.0 ``_ops/*/reference.py``), with V_r the reset potential (0 under soft reset):

* charge ``H_t = a V_{t-1} + b X_t + c``: IF ``a = 1, b = 1``; LIF with ``decay_input``
  ``a = 1 - 1/tau, b = 1/tau``; LIF without it ``a = 1 - 1/tau, b = 1``;
* fire ``S_t = 1[u_t >= 0]``, backward ``dS_t/du_t = g(u_t)`` (the rule's surrogate);
* reset, hard: ``V_t = H_t - S_t (H_t - V_r)``; soft: ``V_t = H_t - S_t theta``. With ``detach_reset``
  the ``S_t`` of the reset carries no gradient.

Backward through time, from ``dL/dV_T`` (the gradient reaching the returned last potential):
``gS = dL/dS_t + gV * dV_t/dS_t``, ``gH = gS * g(u_t) + gV * dV_t/dH_t``, ``dL/dX_t = b gH``,
``gV <- a gH``; with ``dV_t/dS_t = -(H_t - V_r)`` (hard) or ``-theta`` (soft), and
``dV_t/dH_t = 1 - S_t`` (hard) or ``1`` (soft).

Used only where it is exact: IF and LIF layers (a ParametricLIF layer only when its ``w`` takes no
gradient), a rule that keeps the default loop and spike, and no graph-mode recording (MPD-SGR training
needs the potentials inside the graph). Training runs inside :func:`plain_bptt`: the zoo's checkpoints
were trained through the plain loop, and float rounding differs between the two, so ``snnbench train``
keeps reproducing them exactly.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from attacks.surrogates import BackwardRule
    from bench.neurons import SpikingNeuron


_PLAIN_ONLY = contextvars.ContextVar("snnbench_plain_bptt", default=False)


@contextlib.contextmanager
def plain_bptt() -> Iterator[None]:
    """Within the block every neuron layer runs the plain autograd loop (used by training)."""
    token = _PLAIN_ONLY.set(True)
    try:
        yield
    finally:
        _PLAIN_ONLY.reset(token)


def fusable(node: "SpikingNeuron", rule: "BackwardRule") -> bool:
    """True when :func:`fused_run` computes exactly what the plain BPTT loop would."""
    from attacks.surrogates import BackwardRule

    if _PLAIN_ONLY.get() or not getattr(node, "fused", True) or node._record_mode == "graph":
        return False
    if type(rule).run is not BackwardRule.run or type(rule).spike is not BackwardRule.spike:
        return False
    if type(rule).surrogate_grad is BackwardRule.surrogate_grad:
        return False
    if node.kind == "PLIF":
        return not node.w.requires_grad
    return node.kind in ("IF", "LIF")


def _coefficients(node: "SpikingNeuron") -> tuple[float, float]:
    """(a, b) of the charge equation ``H = a V + b X + c`` (c carries no gradient); ``a`` is the layer's
    leak (:func:`attacks.temporal_rules.leak`), ``b = 1 - a`` when the input decays, else 1."""
    from attacks.temporal_rules import leak

    a = leak(node)
    return a, (1.0 - a if node.kind != "IF" and node.decay_input else 1.0)


class _FusedNeuronLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, v: torch.Tensor, node: "SpikingNeuron", rule: "BackwardRule"):  # type: ignore[override]
        theta = node.v_threshold
        spikes = torch.empty_like(x_seq)
        u_seq = torch.empty_like(x_seq)
        hard = node.v_reset is not None
        for t in range(x_seq.shape[0]):
            h = node.charge(x_seq[t], v, t)
            u = torch.sub(h, theta, out=u_seq[t])
            node.observe(u)
            fired = u >= 0
            spikes[t].copy_(fired)  # 1[u >= 0] as a float, as spikingjelly's heaviside
            # hard reset S V_r + (1 - S) H is exactly V_r where S = 1 and H where S = 0
            v = torch.where(fired, node.v_reset, h) if hard else node.reset_potential(h, spikes[t])
        ctx.node, ctx.rule = node, rule
        ctx.save_for_backward(u_seq)
        return spikes, v

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None):  # type: ignore[override]
        (u_seq,) = ctx.saved_tensors
        node, rule = ctx.node, ctx.rule
        a, b = _coefficients(node)
        theta = node.v_threshold
        hard = node.v_reset is not None
        vr = node.v_reset if hard else 0.0
        grad_x = torch.empty_like(u_seq)
        g_v = grad_v if grad_v is not None else torch.zeros_like(u_seq[0])
        zeros = None
        for t in range(u_seq.shape[0] - 1, -1, -1):
            u = u_seq[t]
            if grad_spikes is not None:
                g_s = grad_spikes[t]
            else:
                zeros = torch.zeros_like(u) if zeros is None else zeros
                g_s = zeros
            # gradient reaching S_t: from the output, and (unless detach_reset) through the reset,
            # dV/dS = -(H - V_r) = -(u + theta - V_r) under hard reset, -theta under soft reset
            if node.detach_reset:
                g_h = g_s * rule.surrogate_grad(u)
            elif hard:
                g_h = torch.addcmul(g_s, g_v, u + (theta - vr), value=-1.0).mul_(rule.surrogate_grad(u))
            else:
                g_h = torch.add(g_s, g_v, alpha=-theta).mul_(rule.surrogate_grad(u))
            # gradient reaching H_t through V_t with S held: 1 - S (hard), 1 (soft)
            g_h.add_(torch.where(u >= 0, 0.0, g_v) if hard else g_v)
            torch.mul(g_h, b, out=grad_x[t])
            g_v = g_h.mul_(a)
        return grad_x, g_v, None, None


def fused_run(
    node: "SpikingNeuron", rule: "BackwardRule", x_seq: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the layer over ``x_seq`` [T, ...] from ``v`` (a tensor shaped like one step); return
    (spikes [T, ...], v_last)."""
    return _FusedNeuronLoop.apply(x_seq, v, node, rule)
