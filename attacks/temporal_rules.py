"""Rate- and time-based backward rules: BPTR, RGA, HART, PDSG and ASSG.

Every rule here changes only the backward pass: the forward spikes are the exact Heaviside
``1[H - theta >= 0]`` of the neuron's own charge and reset equations, so the model's outputs are identical
under any rule (tested). Each rule overrides :meth:`BackwardRule.run` (the whole temporal loop of one
neuron layer) and is registered under its name, so ``parse_rule("hart:gamma=0.5")`` works.

Notation. A layer receives ``X_t`` (its input at step t) and charges ``H_t = charge(X_t, V_{t-1})``.
The papers' code writes every neuron as ``u_t = lam * u_{t-1} + x_t`` with threshold 1; for our neurons
the *input current* ``x_t`` and the *leak* ``lam`` are (V_r = v_reset, 0 for soft reset):

=================================  =====================================  ===========================
neuron                             x_t (input current)                    lam (leak per step)
=================================  =====================================  ===========================
IF                                 X_t                                    1
LIF, decay_input (spikingjelly)    X_t / tau  (H = V + (X - (V - V_r))/tau)  1 - 1/tau
LIF, no decay_input                X_t                                    1 - 1/tau
PLIF                               as LIF with 1/tau = sigmoid(w)         1 - sigmoid(w)
DLIF (RSSNN)                       p[t] * X_t                             tau (the DLIF leak factor)
=================================  =====================================  ===========================

``x_t`` is computed generically as ``charge(X_t, V_r) - V_r`` (the potential one step of input adds to a
neuron at rest), so every neuron kind, including subclasses such as DLIF, gets its exact input gain, and
the gradient reaching ``X_t`` is the papers' gradient w.r.t. ``x_t`` times that gain (chain rule).

In single-step mode (``step_mode='s'``) a layer is run one step per call, so the rules that look at the
whole sequence see one step at a time: BPTR's rate and RGA's mean input become per-step quantities and
HART's averaging over T is the identity. PDSG keeps its per-layer history across the calls of one forward,
and ASSG keys its statistics by absolute time step, so both behave as in multi-step mode.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from attacks.surrogates import BackwardRule, heaviside, make_rule, register_rule
from bench.errors import BenchError

if TYPE_CHECKING:  # pragma: no cover
    from bench.neurons import SpikingNeuron


# ---------------------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------------------
class _SpikeWithGrad(torch.autograd.Function):
    """Forward ``1[x >= 0]``; backward ``grad_output * g`` with a precomputed surrogate derivative ``g``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(g)
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (g,) = ctx.saved_tensors
        return grad_output * g, None


def spike_with_grad(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The exact spike with the element-wise surrogate derivative ``g`` (detached) in its backward."""
    return _SpikeWithGrad.apply(x, g.detach())


class _GradAvg(torch.autograd.Function):
    """Identity forward; backward replaces each step's gradient by the mean over the time axis (dim 0).

    HART's ``GradAvg`` (hzc1208/HART_Attack, ``models/layers.py``).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        return grad_output.mean(0, keepdim=True).expand_as(grad_output)


def leak(node: "SpikingNeuron") -> float:
    """Multiplicative leak ``lam`` of ``u_t = lam * u_{t-1} + x_t`` for a neuron layer (table above)."""
    own = getattr(node, "leak", None)  # DLIF exposes its leak factor
    if own is not None and not callable(own):
        return float(own)
    kind = getattr(node, "kind", "LIF")
    if kind == "IF":
        return 1.0
    if kind == "LIF":
        return 1.0 - 1.0 / float(node.tau)
    if kind == "PLIF":
        return float(1.0 - node.w.detach().sigmoid())
    raise BenchError(f"no leak factor known for neuron kind '{kind}': give the neuron a `leak` attribute")


def _rest(node: "SpikingNeuron") -> float:
    return 0.0 if node.v_reset is None else float(node.v_reset)


def input_current(node: "SpikingNeuron", x_seq: torch.Tensor) -> torch.Tensor:
    """``x_t = charge(X_t, V_r) - V_r`` for every step: the input current with the neuron's own gain."""
    vr = _rest(node)
    base = torch.full_like(x_seq[0], vr)
    return torch.stack([node.charge(x_t, base, t) - vr for t, x_t in enumerate(x_seq.unbind(0))])


@torch.no_grad()
def exact_forward(node: "SpikingNeuron", x_seq: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The neuron's exact forward (charge, fire, reset) without a graph; records ``H - theta``."""
    spikes = []
    v = v.detach()
    for t, x_t in enumerate(x_seq.unbind(0)):
        h = node.charge(x_t, v, t)
        x = h - node.v_threshold
        node.observe(x)
        s = heaviside(x)
        v = node.reset_potential(h, s)
        spikes.append(s)
    return torch.stack(spikes), v


def _with_input_grad(spikes: torch.Tensor, current: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``spikes`` in the forward; ``d s_t / d x_t = slope`` (same step only) in the backward.

    ``current * slope - (current * slope).detach()`` is exactly zero in the forward (a - a = 0 for every
    finite a), so the output equals the exact spikes bit for bit.
    """
    lin = current * slope.detach()
    return spikes + (lin - lin.detach())


def _check_positive(name: str, **params: float) -> dict[str, float]:
    out = {}
    for k, v in params.items():
        v = float(v)
        if not math.isfinite(v) or v <= 0:
            raise BenchError(f"backward rule '{name}': {k} must be a positive finite number, got {v}")
        out[k] = v
    return out


def _no_params(name: str, params: dict[str, Any]) -> None:
    if params:
        raise BenchError(f"backward rule '{name}' takes no parameters, got {sorted(params)}")


# ---------------------------------------------------------------------------------------------------------
# BPTR (Ding et al., NeurIPS 2022, SNN-RAT)
# ---------------------------------------------------------------------------------------------------------
class BPTR(BackwardRule):
    """Backpropagation through rate (Ding, Bu, Yu, Huang; "SNN-RAT", NeurIPS 2022).

    Forward exact. Backward: the firing rate is treated as a ReLU of the input, so
    ``dL/dx_t = dL/ds_t * 1[rate > 0]`` with ``rate = mean_t s_t`` of the same neuron, and no gradient
    flows through the membrane across time (spec: "dL/dI_t = dL/ds_t * 1[rate > 0]").

    Code followed: ``RateBp2`` in hzc1208/HART_Attack ``models/layers.py`` (the repository that ships
    BPTR, RGA and HART side by side; its attack mode ``bptr2`` is BPTR). ``x_t`` there is the layer input
    of a neuron ``u = lam*u + x``; here the gradient reaching ``X_t`` is multiplied by the neuron's input
    gain (module docstring), which is the chain rule for our charge equations.
    """

    family = "bptr"

    def __init__(self, **params: float) -> None:
        _no_params("bptr", params)
        super().__init__()

    def run(self, node, x_seq, v):
        spikes, v_last = exact_forward(node, x_seq, v)
        rate_pos = (spikes.mean(0, keepdim=True) > 0).to(x_seq.dtype)
        return _with_input_grad(spikes, input_current(node, x_seq), rate_pos.expand_as(spikes)), v_last


# ---------------------------------------------------------------------------------------------------------
# RGA (Bu et al., CVPR 2023)
# ---------------------------------------------------------------------------------------------------------
def rga_slope(m: torch.Tensor, lam: float, theta: float = 1.0, gamma0: float = 0.2) -> torch.Tensor:
    """RGA's slope of firing rate vs mean input current ``m`` for ``u = lam*u + x`` (threshold theta).

    Bu et al. (CVPR 2023) and ``RateBp.backward`` in hzc1208/HART_Attack (``gamma = 0.2, ext = 1, des = 1``):
    ``g = 1[1-lam <= m <= 2] * (1 - gamma0 + gamma0*lam)/(lam + 1) + 1[0 <= m <= 1-lam] * gamma0``
    for theta = 1 (both terms add at the single point m = 1 - lam, as in the code). For theta != 1 the
    rate of ``u = lam*u + x`` with threshold theta is the theta = 1 rate at ``m/theta``, so the intervals
    are scaled by theta and the slope divided by theta (chain rule). IF (lam = 1): 0.5 on [0, 2].
    """
    mt = m / theta
    upper = ((mt >= 1 - lam) & (mt <= 2)).to(m.dtype) * ((1 - gamma0 + gamma0 * lam) / (lam + 1))
    lower = ((mt <= 1 - lam) & (mt >= 0)).to(m.dtype) * gamma0
    return (upper + lower) / theta


class RGA(BackwardRule):
    """Rate gradient approximation (Bu, Ding, Hao, Yu, Huang; CVPR 2023).

    Forward exact. Backward: ``dL/dx_t = dL/ds_t * slope(m)`` with ``m = mean_t x_t`` the neuron's mean
    input current and :func:`rga_slope` (the same slope for every t, no gradient through the membrane
    across time). The leak ``lam`` is mapped from each neuron kind as in the module docstring: for the
    zoo's spikingjelly LIF (tau 2, decay_input) ``u <- (1 - 1/tau) u + X/tau``, i.e. lam = 0.5 and the
    current is X/2. Code followed: ``RateBp`` in hzc1208/HART_Attack (attack mode ``bptr``).
    """

    family = "rga"

    def __init__(self, gamma0: float = 0.2, **params: float) -> None:
        if params:
            raise BenchError(f"backward rule 'rga' takes only gamma0, got {sorted(params)}")
        super().__init__(**_check_positive("rga", gamma0=gamma0))

    def run(self, node, x_seq, v):
        spikes, v_last = exact_forward(node, x_seq, v)
        current = input_current(node, x_seq)
        slope = rga_slope(current.detach().mean(0, keepdim=True), leak(node), float(node.v_threshold), self.params["gamma0"])
        return _with_input_grad(spikes, current, slope.expand_as(spikes)), v_last


# ---------------------------------------------------------------------------------------------------------
# HART (Hao et al., ICLR 2024)
# ---------------------------------------------------------------------------------------------------------
#: HART's width grid: the paper's code scans gamma = 0.10, 0.15, ..., 2.45 (``range(10, 250, 5)/100`` in
#: main_test.py); the gauntlet uses this coarser grid over the same interval (tuning cost).
HART_GRID = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5)


class HART(BackwardRule):
    """Hybrid adversarial attack based on rate and temporal information (Hao, Bu, Shi, Huang, Yu, Huang; ICLR 2024).

    Backward: (1) the membrane's path back through time is cut (``u[t-1]`` detached when charging step t),
    (2) the gradient reaching the layer input is averaged over the T steps (``GradAvg``), (3) the spike
    uses the triangle SG ``(1/gamma^2) max(0, gamma - |x|)``. The width gamma is chosen per model by a
    grid over [0.1, 2.5] (:data:`HART_GRID`, tuned by :mod:`attacks.tuning`). Code followed: attack mode
    ``avg`` of ``LIFSpike`` in hzc1208/HART_Attack ``models/layers.py`` (``ZIF`` is the triangle).
    """

    family = "hart"

    def __init__(self, gamma: float = 1.0, **params: float) -> None:
        if params:
            raise BenchError(f"backward rule 'hart' takes only gamma, got {sorted(params)}")
        super().__init__(**_check_positive("hart", gamma=gamma))
        self._sg = make_rule("triangle", gamma=self.params["gamma"])

    def run(self, node, x_seq, v):
        x_seq = _GradAvg.apply(x_seq)
        spikes = []
        for t, x_t in enumerate(x_seq.unbind(0)):
            h = node.charge(x_t, v.detach(), t)
            x = h - node.v_threshold
            node.observe(x)
            s = self._sg.spike(x)
            v = node.reset_potential(h, s)
            spikes.append(s)
        return torch.stack(spikes), v


# ---------------------------------------------------------------------------------------------------------
# PDSG (Lun et al., CVPR 2025)
# ---------------------------------------------------------------------------------------------------------
def pdsg_grad(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian SG centred at sigma/2 with standard deviation sigma: ``N(x; sigma/2, sigma^2)``."""
    return torch.exp(-(((x - 0.5 * sigma) / (math.sqrt(2.0) * sigma)) ** 2)) / (math.sqrt(2.0 * math.pi) * sigma)


def pdsg_sigma(history: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation of the recorded potentials ``history`` [t+1, N, C, ...].

    Reduced over time, batch and every axis after the channel (C is axis 2 of ``history``, axis 1 of a
    step's tensor; for a linear layer the "channel" is the feature). ``torch.std`` with Bessel's
    correction as in the authors' code; 0 or non-finite values (a single sample) become 1. Returns a tensor
    broadcastable to one step ``[N, C, ...]``.
    """
    dims = tuple(d for d in range(history.dim()) if d != 2)
    if history.numel() <= history.shape[2]:  # one value per channel: the std is undefined
        return torch.ones_like(history.mean(dim=dims, keepdim=True).squeeze(0))
    sigma = history.std(dim=dims, keepdim=True).squeeze(0)
    return torch.where(torch.isfinite(sigma) & (sigma != 0), sigma, torch.ones_like(sigma))


class PDSG(BackwardRule):
    """Potential-dependent surrogate gradient (Lun, Li, Liu, Zhang, ... ; CVPR 2025, "Towards Effective and
    Sparse Adversarial Attack on Spiking Neural Networks via Breaking Invisible Surrogate Gradients").

    BPTT with a Gaussian SG centred at sigma/2 with std sigma (:func:`pdsg_grad`), sigma = the standard
    deviation of the membrane potential per channel. No free parameter.

    Code followed where it is more specific than the spec (ryime/PDSG-SDA ``utils/attack.py``, ``PDSG`` and
    ``PDSG_LIFNode``): at step t sigma is computed over the potentials recorded at steps 0..t (the code
    stacks ``mem_pot`` so far, "following Time-Accumulated Batch Normalization"), not over all T steps; the
    potentials are the pre-spike H (std is shift-invariant, so H and H - theta give the same sigma).
    """

    batch_independent = False  # sigma is a statistic over the batch

    family = "pdsg"

    def __init__(self, **params: float) -> None:
        _no_params("pdsg", params)
        super().__init__()

    def run(self, node, x_seq, v):
        # single-step mode: keep the history of this forward on the node (a new forward starts at t = 0)
        t0 = int(getattr(node, "_t0", 0))
        hist: list[torch.Tensor] = [] if t0 == 0 else list(getattr(node, "_pdsg_history", []))
        spikes = []
        for t, x_t in enumerate(x_seq.unbind(0)):
            h = node.charge(x_t, v, t)
            x = h - node.v_threshold
            node.observe(x)
            hist.append(h.detach())
            sigma = pdsg_sigma(torch.stack(hist))
            s = spike_with_grad(x, pdsg_grad(x.detach(), sigma))
            v = node.reset_potential(h, s)
            spikes.append(s)
        node._pdsg_history = hist if node.step_mode == "s" else []
        return torch.stack(spikes), v


# ---------------------------------------------------------------------------------------------------------
# ASSG (Wang et al., arXiv 2512.22522)
# ---------------------------------------------------------------------------------------------------------
#: ASSG's interval for A and the paper's typical value (README / attack.py default a = 0.425)
ASSG_RANGE = (0.35, 0.49)
ASSG_DEFAULT_A = 0.425


class ASSG(BackwardRule):
    """Adaptive sharpness surrogate gradient (Wang, Zhao, Chen, Zhang, Zeng; arXiv 2512.22522, CVPR 2026).

    atan SG ``(alpha/2) / (1 + (pi/2 alpha x)^2)`` whose sharpness is set per neuron, time step and sample:
    ``alpha = a / (M + relax*D + 1e-4)``, ``a = 2 tan(pi A)/pi``, with M and D exponential moving averages
    (beta 0.9) over attack iterations of ``|x|`` and of ``||x| - M|`` (initial M = 1, D = 0).

    Code followed (craree/Towards-Reliable-Evaluation-...; ``my_node.py::ASSGrad``): ``a = 2*tan(A*pi)/pi``
    (its comment says ``tan(pi*A/2)``; the code and the spec use ``tan(pi*A)``); M is updated first and D
    uses the *updated* M; the statistics are updated once per attack iteration (only the first EOT draw:
    the code's ``eot_flag``; here :attr:`frozen`) and only by forwards that build a graph (scoring forwards
    under ``torch.no_grad`` leave them alone); alpha uses the statistics including the current iteration.
    Statistics are reset by :meth:`begin_attack` and when a layer sees a batch of another shape.
    A in [0.35, 0.49] is chosen per model by a short ternary search (:mod:`attacks.tuning`).
    """

    family = "assg"
    stateful = True
    batch_independent = False  # moving averages are kept per batch position

    def __init__(self, A: float = ASSG_DEFAULT_A, relax: float = 1.5, beta: float = 0.9, **params: float) -> None:
        if params:
            raise BenchError(f"backward rule 'assg' takes A, relax, beta; got {sorted(params)}")
        p = _check_positive("assg", A=A, relax=relax, beta=beta)
        if not 0 < p["A"] < 0.5:
            raise BenchError(f"backward rule 'assg': A must lie in (0, 0.5) (tan(pi*A) > 0), got {p['A']}")
        if not p["beta"] < 1:
            raise BenchError(f"backward rule 'assg': beta must lie in (0, 1), got {p['beta']}")
        super().__init__(**p)
        self.a = 2.0 * math.tan(math.pi * p["A"]) / math.pi
        self.frozen = False
        self._stats: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def begin_attack(self) -> None:
        self._stats = {}
        self.frozen = False

    def alpha(self, node: "SpikingNeuron", t: int, x: torch.Tensor) -> torch.Tensor:
        """Update (when allowed) and return the per-element sharpness for layer ``node`` at step ``t``."""
        key = (id(node), int(node.time_index(t)))
        m, d = self._stats.get(key, (None, None))
        if m is None or m.shape != x.shape:
            m, d = torch.ones_like(x), torch.zeros_like(x)
        if torch.is_grad_enabled() and not self.frozen:
            b = self.params["beta"]
            ax = x.detach().abs()
            m = b * m + (1 - b) * ax
            d = b * d + (1 - b) * (ax - m).abs()
            self._stats[key] = (m, d)
        return self.a / (m + self.params["relax"] * d + 1e-4)

    def run(self, node, x_seq, v):
        spikes = []
        for t, x_t in enumerate(x_seq.unbind(0)):
            h = node.charge(x_t, v, t)
            x = h - node.v_threshold
            node.observe(x)
            a = self.alpha(node, t, x)
            xd = x.detach()
            g = (a / 2) / (1 + (math.pi / 2 * a * xd) ** 2)
            s = spike_with_grad(x, g)
            v = node.reset_potential(h, s)
            spikes.append(s)
        return torch.stack(spikes), v


@register_rule("bptr")
def _bptr(**params: float) -> BackwardRule:
    return BPTR(**params)


@register_rule("rga")
def _rga(**params: float) -> BackwardRule:
    return RGA(**params)


@register_rule("hart")
def _hart(**params: float) -> BackwardRule:
    return HART(**params)


@register_rule("pdsg")
def _pdsg(**params: float) -> BackwardRule:
    return PDSG(**params)


@register_rule("assg")
def _assg(**params: float) -> BackwardRule:
    return ASSG(**params)
