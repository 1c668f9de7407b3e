"""Defense losses of the zoo's recipes: SR, MPD-SGR, RSSNN (MS-MPPD) and PGD adversarial training.

Every ``*_loss(model, x, y, cfg)`` has the recipe signature (:data:`models_zoo.recipes.LossFn`) and returns
``(loss, metrics)``; the building blocks (penalties, perturbations) are plain functions so that tests and
:mod:`models_zoo.measure_defenses` use exactly the code that trains the zoo. The formulas and the settings
are those of ``shared/spec/defenses.md``; where the spec and an author's public code differ, the code is
followed and the difference is noted next to it.

Adversarial examples for training are crafted with the benchmark's own attacks
(:class:`attacks.algorithms.PGD` / :class:`~attacks.algorithms.FGSM`, under the model's own surrogate) with
the model switched to **eval mode** while crafting (BatchNorm running statistics, no running-stat updates
from attack forwards) and switched back to train mode afterwards: what the SR code does through
torchattacks' ``set_training_mode(model_training=False)`` and what the RSSNN code does with ``model.eval()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from attacks.algorithms import FGSM, PGD
from attacks.backward_rules import support_halfwidth
from bench.adapter import SNNAdapter
from bench.errors import BenchError
from bench.neurons import SpikingNeuron
from models_zoo.neurons_dlif import leak_factor

Metrics = dict[str, float]


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------
def _generator_from_global() -> torch.Generator:
    """A CPU generator seeded from the global RNG: deterministic for a training seed."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run the block with ``model.eval()``; restore the previous train/eval mode afterwards."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def normal_cdf(z: torch.Tensor) -> torch.Tensor:
    """Phi(z), the standard normal CDF (differentiable)."""
    return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))


# ---------------------------------------------------------------------------------------------------------
# SR: explicit sparse-gradient regularisation (Liu, Bu, Ding, Hao, Huang, Yu; ICML 2024)
# ---------------------------------------------------------------------------------------------------------
def two_class_probability(logits: torch.Tensor, y: torch.Tensor, runner_up: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``f = exp(z_y) / (exp(z_y) + exp(z_m))`` with m the largest wrong logit (or the given ``runner_up``).

    Computed as ``sigmoid(z_y - z_m)``, which is the same number without overflow. Returns (f [N], m [N]).
    """
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    if runner_up is None:
        masked = logits.detach().clone()
        masked.scatter_(1, y[:, None], float("-inf"))
        runner_up = masked.argmax(1)
    z_m = logits.gather(1, runner_up[:, None]).squeeze(1)
    return torch.sigmoid(z_y - z_m), runner_up


def sr_penalty(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, h: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """SR's finite-difference penalty; returns ``(penalty, logits at x)``.

    Authors' code (``utils.py::train_reg``), which the spec restates:
    1. f1 = two-class probability (true vs runner-up m) at x;
    2. d = df1/dx by autograd, v = sign(d) detached;
    3. f2 = the same two-class probability at ``x + h*v`` with the same m (no clipping to [0, 1], as in the code);
    4. penalty = mean(((f2 - f1) / h)^2), which approximates ``||grad f1||_1^2`` because
       ``grad f . sign(grad f) = ||grad f||_1`` (the paper's l1 relaxation of the l0 sparsity bound).
    Gradients of the penalty flow through both forward passes.
    """
    x = x.detach().requires_grad_(True)
    logits = forward(x)
    f1, m = two_class_probability(logits, y)
    (d,) = torch.autograd.grad(f1.sum(), x, retain_graph=True)
    v = d.sign().detach()
    f2, _ = two_class_probability(forward(x.detach() + h * v), y, m)
    return (((f2 - f1) / h) ** 2).mean(), logits


def sr_loss(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
    """SR: ``CE(z, y) + lambda * mean(((f2 - f1)/h)^2)`` (Liu et al. ICML 2024, Eq. of the relaxed bound)."""
    penalty, logits = sr_penalty(model, x, y, float(cfg["sr_h"]))
    ce = F.cross_entropy(logits, y)
    loss = ce + float(cfg["sr_lambda"]) * penalty
    return loss, {"ce": float(ce.detach()), "sr": float(penalty.detach())}


# ---------------------------------------------------------------------------------------------------------
# MPD-SGR (Jiang, Jiang, Yan, Tang; arXiv 2511.12199, AAAI 2026)
# ---------------------------------------------------------------------------------------------------------
def mpd_omega(mu: torch.Tensor, sigma: torch.Tensor, gamma: float) -> torch.Tensor:
    """``Omega = Phi((mu + gamma)/sigma) - Phi((mu - gamma)/sigma) = P(|X| <= gamma)``, X ~ N(mu, sigma^2)."""
    return normal_cdf((mu + gamma) / sigma) - normal_cdf((mu - gamma) / sigma)


def mpd_layer_stats(h: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch statistics of a recorded pre-spike potential ``h = H - theta`` [T, N, C, ...] per (t, c).

    mu, sigma have shape [T, C]: the mean and the (population) standard deviation over the batch and the
    spatial positions; ``sigma = sqrt(var + eps)`` keeps Omega finite for constant channels.
    """
    if h.dim() < 3:
        raise BenchError(f"MPD-SGR needs recorded potentials [T, N, C, ...], got shape {tuple(h.shape)}")
    dims = [1, *range(3, h.dim())]
    mu = h.mean(dim=dims)
    var = h.var(dim=dims, unbiased=False)
    return mu, torch.sqrt(var + eps)


def mpd_sgr_penalty(records: dict[str, torch.Tensor], gamma: float) -> torch.Tensor:
    """``(1/L) sum_l (1/(C_l T)) sum_{c,t} Omega(l, c, t)``: the MPD-SGR regulariser.

    ``records`` maps every spiking layer to its ``H - theta`` [T, N, C, ...] (``model.recording("graph")``).
    The spec's ``1/(L*C*T)`` is read as a mean over channels and steps per layer, then over layers (layers
    differ in C). The zoo's readouts are non-spiking linear layers, so "output layer excluded" holds by
    construction: every recorded layer is a hidden spiking layer. mu and sigma are batch statistics of the
    recorded potentials (the spec's default; works for any normalisation).
    """
    if not records:
        raise BenchError("MPD-SGR found no recorded spiking layers: is the model an instrumented SNN?")
    per_layer = [mpd_omega(*mpd_layer_stats(h), gamma).mean() for h in records.values()]
    return torch.stack(per_layer).mean()


def mpd_gamma(model: SNNAdapter, cfg: dict[str, Any]) -> float:
    """gamma: the config's ``mpd_gamma`` or, when it is 'sg', the support half-width of the training SG."""
    g = cfg.get("mpd_gamma", "sg")
    return support_halfwidth(model.own_rule) if g == "sg" else float(g)


def mpd_sgr_loss(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
    """MPD-SGR: ``CE + eta * mean Omega`` from the potentials of the same forward pass."""
    with model.recording("graph") as rec:
        logits = model(x)
    omega = mpd_sgr_penalty(rec, mpd_gamma(model, cfg))
    ce = F.cross_entropy(logits, y)
    loss = ce + float(cfg["mpd_eta"]) * omega
    return loss, {"ce": float(ce.detach()), "omega": float(omega.detach())}


# ---------------------------------------------------------------------------------------------------------
# RSSNN: MS-MPPD (Ding, Pan, Liu, Yu, Huang; ICML 2024)
# ---------------------------------------------------------------------------------------------------------
@contextmanager
def capture_input(node: SpikingNeuron) -> Iterator[list[torch.Tensor]]:
    """Collect the input current that ``node`` receives during the block (one entry per call)."""
    store: list[torch.Tensor] = []
    handle = node.register_forward_pre_hook(lambda _m, args: store.append(args[0]))
    try:
        yield store
    finally:
        handle.remove()


def input_sequence(store: list[torch.Tensor], node: SpikingNeuron) -> torch.Tensor:
    """The captured input of one forward as [T, N, ...] (multi-step: one call; single-step: one per t)."""
    if not store:
        raise BenchError("no input was captured at the last spiking layer: did the forward run?")
    if node.step_mode == "m":
        if len(store) != 1:
            raise BenchError(f"expected one multi-step call of the last spiking layer per forward, got {len(store)}")
        return store[0]
    return torch.stack(store)


def last_layer_input(model: SNNAdapter, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, input current of the last spiking layer [T, N, ...]) of one forward of ``model``."""
    node = model.neurons[-1]
    with capture_input(node) as store:
        logits = model(x)
    return logits, input_sequence(store, node)


def ms_mppd_penalty(delta: torch.Tensor, leak: float) -> torch.Tensor:
    """``mean(Y^2)`` with ``Y[t] = leak * Y[t-1] + Delta[t]``, ``Y[-1] = 0`` (no reset).

    The membrane-potential perturbation dynamics of RSSNN (authors' ``simple_dynamic``: the first state is
    ``Delta[0]``) and its squared Lyapunov function (``LyapunovFunction('square')``: ``(Y**2).mean()``).
    """
    y = torch.zeros_like(delta[0])
    total = delta.new_zeros(())
    for d in delta.unbind(0):
        y = leak * y + d
        total = total + (y * y).sum()
    return total / delta.numel()


def gaussian_perturbation(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x + sigma * N(0, 1)``, not clipped (RSSNN code, training_mode 'gaussian')."""
    return x + sigma * torch.randn(x.shape, dtype=x.dtype).to(x.device)


def rfgsm_perturbation(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, eps: float, start_sigma: float = 0.001) -> torch.Tensor:
    """RSSNN's AT mode: ``x0 = x + 0.001*N(0,1)``, one FGSM step of eps from x0 (own SG, eval mode), clipped to [0, 1]."""
    x0 = x + start_sigma * torch.randn(x.shape, dtype=x.dtype).to(x.device)
    with eval_mode(model):
        return FGSM(rule="own").perturb(model, x0, y, eps, _generator_from_global())


def rssnn_loss(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
    """RSSNN: ``kappa CE(clean) + (1 - kappa) CE(perturbed) + rho * mean(Y^2)`` at the last spiking layer.

    Delta[t] = I_clean[t] - I_pert[t], with I the layer's input current *before* the DLIF gain p[t] (the
    code's ``neuron_input``), and I_clean detached (the code's ``clean_neuron_input = ...detach()``: the
    penalty moves only the perturbed path). Perturbation: ``rssnn_perturbation`` = 'gaussian'
    (x + rssnn_sigma * N(0,1)), 'rfgsm' (the AT mode, eps = ``at_eps``) or 'pgd' (the PGD-AT examples).
    """
    mode = cfg.get("rssnn_perturbation", "gaussian")
    if mode == "gaussian":
        x_pert = gaussian_perturbation(x, float(cfg["rssnn_sigma"]))
    elif mode == "rfgsm":
        x_pert = rfgsm_perturbation(model, x, y, float(cfg["at_eps"]))
    elif mode == "pgd":
        x_pert = pgd_examples(model, x, y, cfg)
    else:
        raise BenchError(f"rssnn_perturbation must be 'gaussian', 'rfgsm' or 'pgd', got {mode!r}")
    logits_c, i_clean = last_layer_input(model, x)
    logits_p, i_pert = last_layer_input(model, x_pert)
    kappa = float(cfg["rssnn_kappa"])
    ce_c, ce_p = F.cross_entropy(logits_c, y), F.cross_entropy(logits_p, y)
    penalty = ms_mppd_penalty(i_clean.detach() - i_pert, leak_factor(model.neurons[-1]))
    loss = kappa * ce_c + (1.0 - kappa) * ce_p + float(cfg["rssnn_rho"]) * penalty
    return loss, {"ce": float(ce_c.detach()), "ce_pert": float(ce_p.detach()), "mppd": float(penalty.detach())}


# ---------------------------------------------------------------------------------------------------------
# PGD adversarial training (Madry et al., ICLR 2018) and its combinations
# ---------------------------------------------------------------------------------------------------------
def pgd_examples(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """PGD-k training examples: ``at_steps`` steps of ``at_step_ratio * at_eps`` from a uniform random
    start, with the benchmark's :class:`~attacks.algorithms.PGD` under the model's own SG, in eval mode.

    The benchmark's PGD keeps, per point, the first iterate that is misclassified (its "best iterate"); for
    the other points it returns the last iterate, i.e. early-stopped PGD for training.
    """
    attack = PGD(steps=int(cfg["at_steps"]), step_size_ratio=float(cfg["at_step_ratio"]), random_start=True, rule="own")
    with eval_mode(model):
        return attack.perturb(model, x, y, float(cfg["at_eps"]), _generator_from_global())


def pgd_at_loss(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
    """PGD-AT (Madry et al. 2018): CE on PGD-k examples only."""
    x_adv = pgd_examples(model, x, y, cfg)
    ce = F.cross_entropy(model(x_adv), y)
    return ce, {"ce_adv": float(ce.detach())}


def with_pgd_at(inner: Callable[..., tuple[torch.Tensor, Metrics]]) -> Callable[..., tuple[torch.Tensor, Metrics]]:
    """A regulariser's loss computed on the PGD-k batch instead of the clean batch (AT + regulariser).

    SR's code applies its whole loss (CE and penalty) to the attacked batch; MPD-SGR's AT variant is read
    the same way (CE and Omega from the forward on the adversarial batch).
    """

    def loss(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
        return inner(model, pgd_examples(model, x, y, cfg), y, cfg)

    loss.__name__ = f"pgd_at_{getattr(inner, '__name__', 'loss')}"
    loss.__doc__ = f"PGD-AT + {getattr(inner, '__name__', 'loss')}: {inner.__doc__ or ''}"
    return loss


pgd_at_sr_loss = with_pgd_at(sr_loss)
pgd_at_mpd_sgr_loss = with_pgd_at(mpd_sgr_loss)
