"""Training recipes (defenses), selectable by name: ``snnbench train RECIPE``.

A recipe fixes the model (architecture, neuron, training surrogate, T, encoder) and the loss. Every
hyper-parameter is a field of :attr:`Recipe.defaults` and is written into the trained model's card.
"""

from __future__ import annotations

from models_zoo.recipe_base import (  # noqa: F401  (re-exported: the catalogue's API)
    AT_DEFAULTS,
    COMMON_DEFAULTS,
    MPD_DEFAULTS,
    RECIPES,
    RSSNN_DEFAULTS,
    RSSNN_NEURON,
    SPARSE_NEURON,
    SR_DEFAULTS,
    ZOO_DATASET,
    ZOO_SEEDS,
    Recipe,
    _scnn,
    ce_loss,
    get_recipe,
    register_recipe,
)

register_recipe(
    Recipe(
        name="baseline",
        family="baseline",
        paper="BPTT with a surrogate gradient (Neftci et al. 2019; Wu et al. 2018): the common baseline",
        loss=ce_loss,
        doc="LIF neurons (tau 2, theta 1, hard reset), triangle SG width 1, T=4, direct encoding, CE on time-averaged logits.",
    )
)


# -------------------------------------------------------------------------------------------------------
# Defense recipes (issue 3). Formulas and settings: shared/spec/defenses.md; losses: models_zoo/defenses.py.
# Every recipe's family is its own name, so that `snnbench run` (one seed per family) evaluates each one.
# Loss-only defenses (SR, MPD-SGR) keep the zoo's common model (scnn28, LIF tau 2, triangle SG, T=4), so
# that the comparison with `baseline` isolates the loss; where the neuron is part of the method (RSSNN's
# DLIF, the sparse-gradient trail's IF + atan) the recipe changes it. The papers' own CIFAR models and
# schedules are the `*-cifar-*` presets (models_zoo/paper_presets.py).
# Epochs (the CPU budget: 30 models on 2 shared CPU cores): baseline 12 (the existing entry), sparse-arch 8,
# MPD-SGR 10 (one forward/backward per step), RSSNN 8 (two), SR, PGD-AT, PGD-AT + RSSNN / MPD-SGR 6 (three),
# PGD-AT + SR 4 (five: two attack gradients, the SR gradient and two forwards). The cosine schedule anneals
# fully in every case; the cost is a point or so of clean accuracy against longer training.
# -------------------------------------------------------------------------------------------------------
from models_zoo import defenses as _d  # noqa: E402  (defenses imports bench/attacks only, never this module)

register_recipe(
    Recipe(
        name="sr",
        family="sr",
        paper="Liu, Bu, Ding, Hao, Huang, Yu: Enhancing Adversarial Robustness in SNNs with Sparse Gradients (ICML 2024)",
        loss=_d.sr_loss,
        defaults={**SR_DEFAULTS, "epochs": 6},
        doc=(
            "SR: CE + lambda * mean(((f2 - f1)/h)^2), f = exp(z_y)/(exp(z_y)+exp(z_m)) (true vs runner-up), "
            "f2 at x + h*sign(df1/dx), h = 0.01 (authors' code utils.py::train_reg); lambda from the sweep in "
            "models_zoo/SWEEPS.md. Model: the zoo's LIF scnn28 (T=4, triangle SG 1), not the paper's IF VGG-11 "
            "T=8 (see the sr-cifar-* presets), so that only the loss differs from baseline."
        ),
    )
)

register_recipe(
    Recipe(
        name="mpd-sgr",
        family="mpd-sgr",
        paper="Jiang, Jiang, Yan, Tang: MPD-SGR, membrane potential distribution based surrogate gradient regularisation (arXiv 2511.12199, AAAI 2026)",
        loss=_d.mpd_sgr_loss,
        defaults={**MPD_DEFAULTS, "epochs": 10},
        doc=(
            "MPD-SGR: CE + eta * mean over layers, channels and steps of Omega = Phi((mu+gamma)/sigma) - "
            "Phi((mu-gamma)/sigma), mu/sigma batch statistics of the recorded pre-spike potentials H - theta, "
            "gamma = the training SG's support (triangle: 1); all three spiking layers (the readout is "
            "non-spiking); eta from the sweep in models_zoo/SWEEPS.md."
        ),
    )
)

register_recipe(
    Recipe(
        name="rssnn",
        family="rssnn",
        paper="Ding, Pan, Liu, Yu, Huang: Robust Stable Spiking Neural Networks (ICML 2024)",
        loss=_d.rssnn_loss,
        defaults={**RSSNN_DEFAULTS, "epochs": 8},
        doc=(
            "RSSNN: DLIF neurons u[t] = 0.99 u[t-1] + p[t] I[t] (learnable per-step gain p, hard reset), loss "
            "0.5 CE(clean) + 0.5 CE(x + 8/255 N(0,1)) + 1.0 * mean(Y^2), Y[t] = 0.99 Y[t-1] + I_clean[t] - "
            "I_pert[t] at the last spiking layer (MS-MPPD; I before the gain, I_clean detached, as in the "
            "authors' main_train-v2.py); weight decay 5e-4 (the code's beta). NB: the card's tau is the DLIF "
            "leak factor, not a time constant."
        ),
    )
)

for _pool_kind in ("max", "avg"):
    register_recipe(
        Recipe(
            name=f"sparse-arch-{_pool_kind}",
            family=f"sparse-arch-{_pool_kind}",
            paper="Luu: Input gradient dense-sparse trade off is the adversarial robustness-generalization trade off in SNN optimization (arXiv 2509.23762)",
            loss=ce_loss,
            defaults={"neuron": SPARSE_NEURON, "surrogate": {"family": "atan", "width": 2.0}, "architecture_args": _scnn(_pool_kind), "epochs": 8},
            doc=(
                f"Gradient sparsity through architecture, {_pool_kind}-pooling variant: IF neurons (no leak, hard "
                "reset, detach_reset as in the paper's code), atan SG alpha 2, plain CE (no extra loss); "
                "sparse-arch-max and sparse-arch-avg differ only in the pooling layers. Direct encoding and "
                "the zoo's scnn28 instead of the paper's phase-encoded SEW-ResNet."
            ),
        )
    )

register_recipe(
    Recipe(
        name="pgd-at",
        family="pgd-at",
        paper="Madry, Makelov, Schmidt, Tsipras, Vladu: Towards Deep Learning Models Resistant to Adversarial Attacks (ICLR 2018)",
        loss=_d.pgd_at_loss,
        defaults={**AT_DEFAULTS, "epochs": 6},
        doc=(
            "PGD-AT: CE on PGD-2 examples (eps 0.2, step eps/2, uniform random start, own SG, crafted in eval "
            "mode with the benchmark's PGD, which keeps the first misclassified iterate) on the zoo's LIF scnn28."
        ),
    )
)

register_recipe(
    Recipe(
        name="pgd-at+sr",
        family="pgd-at+sr",
        paper="Liu et al. (ICML 2024) SR combined with PGD adversarial training (Madry et al. 2018), as in the SR code's --attack pgd",
        loss=_d.pgd_at_sr_loss,
        defaults={**AT_DEFAULTS, **SR_DEFAULTS, "epochs": 4},
        doc="PGD-AT + SR: the SR loss (CE + lambda * penalty) computed on the PGD-2 batch (eps 0.2), as the SR code does with its attack.",
    )
)

register_recipe(
    Recipe(
        name="pgd-at+mpd-sgr",
        family="pgd-at+mpd-sgr",
        paper="Jiang et al. (arXiv 2511.12199) MPD-SGR combined with PGD adversarial training (the paper's AT variant, PGD k=2)",
        loss=_d.pgd_at_mpd_sgr_loss,
        defaults={**AT_DEFAULTS, **MPD_DEFAULTS, "epochs": 6},
        doc="PGD-AT + MPD-SGR: CE + eta * Omega, both from the forward on the PGD-2 batch (eps 0.2, step eps/2).",
    )
)

register_recipe(
    Recipe(
        name="pgd-at+rssnn",
        family="pgd-at+rssnn",
        paper="Ding et al. (ICML 2024) RSSNN in its adversarial-training mode (RFGSM perturbation)",
        loss=_d.rssnn_loss,
        defaults={**RSSNN_DEFAULTS, **AT_DEFAULTS, "rssnn_perturbation": "rfgsm", "epochs": 6},
        doc=(
            "RSSNN, AT mode (the paper's RAT/AT_FGSM training): the perturbed batch is RFGSM (x + 0.001 N(0,1), "
            "one FGSM step of eps 0.2, own SG, eval mode) instead of Gaussian noise; 0.5 CE(clean) + 0.5 "
            "CE(perturbed) + 1.0 * MS-MPPD. Set rssnn_perturbation = 'pgd' for the PGD-2 examples of pgd-at."
        ),
    )
)


# The matched baselines and paper-faithful recipes (issue 13) and the *-cifar-* paper presets register
# into the same registry; they import models_zoo.recipe_base, never this module.
from models_zoo import paper_presets as _paper_presets  # noqa: E402,F401
from models_zoo import recipes_matched as _recipes_matched  # noqa: E402,F401
