"""Matched baselines and the defenses as their papers' code builds them (issue 13), MNIST-5k scale.

A defense's *matched baseline* has the same architecture, neuron (type, leak, reset), T, encoder, training
SG, optimiser and budget (epochs, batch, schedule) and differs only in the defense's own knob: its loss
term, its pooling, its adversarial training. Each defense recipe names its matched baseline's recipe in
:attr:`Recipe.matched_baseline`; the card records the zoo id of the same seed (``matched_baseline``), so
that the reports pair them (delta and exact McNemar on the same points).

Existing recipes keep their names and meanings (models_zoo/recipes.py); they gain a matched baseline
here (``mpd-sgr`` -> ``baseline-e10``, ``sr`` and ``pgd-at`` -> ``baseline-e6``, ``pgd-at+mpd-sgr`` ->
``pgd-at``, ``rssnn`` -> ``baseline-dlif``, ``sparse-arch-max`` -> ``sparse-arch-avg``). New recipes:

* ``baseline-e6``, ``baseline-e10``: the zoo's LIF baseline (scnn28, LIF tau 2, triangle SG 1, T 4,
  Adam 2e-3, batch 64, cosine) at the epochs of the defenses it is matched to (``baseline`` has 12).
* ``baseline-if`` / ``sr-if``: SR as its authors' code builds it (putshua/gradient_reg_defense: IF neuron =
  the code's LIFSpike with tau 1, theta 1, hard reset, triangle SG gamma 1) and its IF baseline (lambda 0,
  the code's default). Deviations: T = 4 instead of the code's 8 (CPU budget), scnn28 instead of VGG-11,
  Adam 2e-3 / 6 epochs instead of SGD 0.1 / 200 epochs, no crop-flip augmentation (MNIST).
* ``baseline-dlif``: RSSNN's DLIF network (tau 0.99, learnable gains, weight decay 5e-4, 8 epochs) trained
  with plain CE: the RSSNN loss with rho = 0 and kappa = 1 (no perturbation term), matched to ``rssnn``.
* ``pgd-at-dlif`` / ``pgd-at+rssnn-pgd``: RSSNN's AT mode with multi-step PGD instead of RFGSM (the old
  ``pgd-at+rssnn``, single-step RFGSM at eps 0.2, overfits catastrophically: models_zoo/SWEEPS.md). Both
  use the RSSNN code's AT loss 0.5 CE(clean) + 0.5 CE(adv) on PGD-3 examples (eps 0.2, step eps/2, random
  start, own SG, eval mode), 3 epochs (CPU budget); ``pgd-at+rssnn-pgd`` adds rho * MS-MPPD (rho 1), ``pgd-at-dlif``
  has rho = 0. ``pgd-at+rssnn-pgd-rho0.1`` is the same with rho 0.1, the strength of the issue-13 sweep whose clean
  accuracy stays within 3 points of ``pgd-at-dlif`` (rho 1 costs 15; models_zoo/SWEEPS.md, "Strength sweeps").
* ``luu-sew-max`` / ``luu-sew-avg``: Luu (arXiv 2509.23762) as the code builds it (luutn2002/grad-obf-snn):
  weighted phase encoder (K = 8 bit planes of pixel/256, T = 10, detached input), a small SEW-ResNet
  (:func:`models_zoo.sew.sew_small`), IF + atan alpha 2, detach_reset, stem pooling after the stem's neuron;
  max vs avg stem pooling (the only difference); Adam 1e-3, weight decay 1e-3 (the code's). Deviations:
  2 stages of 1 SEW block (32 / 64 channels, ``LUU_ARCH``) instead of SEW-ResNet-18, batch 64 instead
  of 16, 10 epochs with a cosine schedule instead of 100 epochs and best-val selection, no horizontal flip.
"""

from __future__ import annotations

import copy
from typing import Any

from models_zoo import defenses as _d
from models_zoo.recipe_base import (
    AT_DEFAULTS,
    RECIPES,
    RSSNN_DEFAULTS,
    SR_DEFAULTS,
    Recipe,
    ce_loss,
    register_recipe,
)

BPTT = "BPTT with a surrogate gradient (Neftci et al. 2019; Wu et al. 2018)"

#: SR code's neuron: LIFSpike with tau = 1 is an IF neuron; theta 1, hard reset to 0, triangle SG gamma 1
SR_IF_NEURON: dict[str, Any] = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0, "decay_input": True, "detach_reset": False}
SR_IF_DEFAULTS: dict[str, Any] = {"neuron": SR_IF_NEURON, "surrogate": {"family": "triangle", "width": 1.0}, "epochs": 6}

#: DLIF network of RSSNN without its loss: the RSSNN defaults with rho = 0 and no perturbation term
DLIF_DEFAULTS: dict[str, Any] = {"neuron": RSSNN_DEFAULTS["neuron"], "weight_decay": RSSNN_DEFAULTS["weight_decay"], "epochs": 8}

#: multi-step PGD-AT for the DLIF pair: PGD-3 at the benchmark's eps 0.2, step eps/2, random start
AT3_DEFAULTS: dict[str, Any] = {**AT_DEFAULTS, "at_steps": 3, "at_step_ratio": 0.5}

#: Luu's code settings (luutn2002/grad-obf-snn, configs/*.phase): IF, atan 2, detach_reset, T 10, Adam 1e-3, wd 1e-3
LUU_NEURON: dict[str, Any] = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0, "decay_input": True, "detach_reset": True}
LUU_ARCH: dict[str, Any] = {"stem_channels": 32, "stage_channels": [32, 64], "blocks": [1, 1], "stem_kernel": 7, "stem_stride": 2}
LUU_DEFAULTS: dict[str, Any] = {
    "architecture": "sew_small",
    "neuron": LUU_NEURON,
    "surrogate": {"family": "atan", "width": 2.0},
    "time_steps": 10,
    "encoder": "phase",
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 1e-3,
    "epochs": 10,
}


def _reg(name: str, family: str, paper: str, loss: Any, defaults: dict[str, Any], doc: str, matched: str | None) -> None:
    register_recipe(Recipe(name=name, family=family, paper=paper, loss=loss, defaults=copy.deepcopy(defaults), doc=doc,
                           matched_baseline=matched))


def dlif_ce_loss(model, x, y, cfg):  # type: ignore[no-untyped-def]
    """CE on the clean batch: the RSSNN loss with kappa = 1 and rho = 0 (no perturbed forward)."""
    return ce_loss(model, x, y, cfg)


# -- matched baselines of the LIF zoo ---------------------------------------------------------------------
for _e in (6, 10):
    _reg(f"baseline-e{_e}", f"baseline-e{_e}", BPTT, ce_loss, {"epochs": _e},
         f"Matched LIF baseline: the zoo's baseline (scnn28, LIF tau 2, triangle SG 1, T 4, Adam 2e-3) with {_e} "
         "epochs, the budget of the defenses matched to it.", None)

# -- SR as the authors' code builds it --------------------------------------------------------------------
_reg("baseline-if", "baseline-if", BPTT + ", IF neurons of the SR code base", ce_loss, SR_IF_DEFAULTS,
     "Matched IF baseline of sr-if: IF neurons (SR code's LIFSpike tau 1), theta 1, hard reset, triangle SG 1, T 4 "
     "(code: 8; CPU budget), scnn28, Adam 2e-3, 6 epochs; lambda = 0 (the SR code's default).", None)
_reg("sr-if", "sr-if", RECIPES["sr"].paper, _d.sr_loss, {**SR_IF_DEFAULTS, **SR_DEFAULTS},
     "SR on the authors' IF neuron (putshua/gradient_reg_defense: LIFSpike tau 1, triangle SG gamma 1): CE + lambda * "
     "mean(((f2 - f1)/h)^2), h 0.01, lambda 0.1. Deviations from the code: T 4 (code 8), scnn28 (code VGG-11), "
     "Adam 2e-3 for 6 epochs (code SGD 0.1, 200 epochs), no crop-flip.", "baseline-if")

# -- RSSNN: the DLIF baseline and the multi-step AT pair -------------------------------------------------
_reg("baseline-dlif", "baseline-dlif", BPTT + ", DLIF neurons of RSSNN", dlif_ce_loss, DLIF_DEFAULTS,
     "Matched DLIF baseline of rssnn: DLIF tau 0.99 with learnable per-step gains, hard reset, triangle SG 1, T 4, "
     "weight decay 5e-4, 8 epochs; plain CE = the RSSNN loss with rho = 0 and kappa = 1 (no perturbation term).", None)
_reg("pgd-at-dlif", "pgd-at-dlif", "Madry et al. (ICLR 2018) PGD-AT in the RSSNN code's AT form (alpha = rho = 0)",
     _d.rssnn_loss, {**RSSNN_DEFAULTS, **AT3_DEFAULTS, "rssnn_perturbation": "pgd", "rssnn_rho": 0.0, "epochs": 3},
     "Matched AT baseline of pgd-at+rssnn-pgd: 0.5 CE(clean) + 0.5 CE(PGD-3, eps 0.2, step eps/2, random start, own "
     "SG, eval mode) on the DLIF network, rho = 0; 3 epochs (CPU budget).", None)
_reg("pgd-at+rssnn-pgd", "pgd-at+rssnn-pgd", "Ding et al. (ICML 2024) RSSNN in its AT mode, with multi-step PGD examples",
     _d.rssnn_loss, {**RSSNN_DEFAULTS, **AT3_DEFAULTS, "rssnn_perturbation": "pgd", "epochs": 3},
     "RSSNN AT mode with PGD-3 (eps 0.2, step eps/2, random start) instead of the code's RFGSM (single-step RFGSM at "
     "eps 0.2 overfits catastrophically on MNIST: the old pgd-at+rssnn): 0.5 CE(clean) + 0.5 CE(adv) + 1.0 MS-MPPD; "
     "3 epochs (CPU budget).",
     "pgd-at-dlif")
_reg("pgd-at+rssnn-pgd-rho0.1", "pgd-at+rssnn-pgd-rho0.1",
     "Ding et al. (ICML 2024) RSSNN in its AT mode, with multi-step PGD examples, rho 0.1",
     _d.rssnn_loss, {**RSSNN_DEFAULTS, **AT3_DEFAULTS, "rssnn_perturbation": "pgd", "rssnn_rho": 0.1, "epochs": 3},
     "pgd-at+rssnn-pgd at the admissible strength of the issue-13 sweep (models_zoo/claim_sweep.py, rssnn-at): rho = 1 "
     "(the paper's) costs 15 points of clean accuracy against pgd-at-dlif, rho = 0.1 costs 1.4 (500 points) and is "
     "the sweep's strongest point under paper-rssnn. Otherwise pgd-at+rssnn-pgd: 0.5 CE(clean) + 0.5 CE(PGD-3 adv) + "
     "0.1 MS-MPPD; 3 epochs (CPU budget).",
     "pgd-at-dlif")

# -- Luu: phase encoder + SEW net, max vs avg stem pooling -------------------------------------------------
_LUU_PAPER = RECIPES["sparse-arch-max"].paper
for _pool in ("max", "avg"):
    _reg(f"luu-sew-{_pool}", f"luu-sew-{_pool}", _LUU_PAPER, ce_loss,
         {**LUU_DEFAULTS, "architecture_args": {**LUU_ARCH, "stem_pool": _pool}},
         f"Luu's setup as the code builds it, {_pool} stem pooling: weighted phase encoder (K 8 bit planes of pixel/256, "
         "T 10 = phases 1..8 then 1..2, detached input), stem conv 7x7 s2 -> BN -> IF (atan 2, detach_reset) -> 3x3 s2 "
         f"{_pool}-pool on the stem's spikes, SEW blocks (ADD) 32 / 64 channels, adaptive avg pool, fc; plain CE, Adam "
         "1e-3, weight decay 1e-3. Deviations: 2 SEW blocks instead of SEW-ResNet-18, batch 64 (code 16), 10 epochs "
         "cosine (code 100, best-val), no horizontal flip (MNIST digits).",
         "luu-sew-avg" if _pool == "max" else None)

# -- PGD-AT at pgd-at+sr's budget --------------------------------------------------------------------------
_reg("pgd-at-e4", "pgd-at-e4", RECIPES["pgd-at"].paper, _d.pgd_at_loss, {**AT_DEFAULTS, "epochs": 4},
     "Matched AT baseline of pgd-at+sr: PGD-AT (CE on PGD-2 examples, eps 0.2, step eps/2, random start, own SG, eval "
     "mode) for 4 epochs, pgd-at+sr's budget; the pair differs only in SR's penalty (lambda 0.1, h 0.01).", None)

# -- matched baselines of the existing recipes (their definitions are unchanged) ---------------------------
for _name, _mb in {"mpd-sgr": "baseline-e10", "sr": "baseline-e6", "pgd-at": "baseline-e6",
                   "pgd-at+mpd-sgr": "pgd-at", "rssnn": "baseline-dlif", "sparse-arch-max": "sparse-arch-avg",
                   "pgd-at+sr": "pgd-at-e4"}.items():
    RECIPES[_name].matched_baseline = _mb
