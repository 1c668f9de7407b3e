"""Paper presets for users with a GPU: the defenses with the papers' CIFAR models and schedules.

``snnbench train sr-cifar-vgg11 --dataset cifar10 --data-root DIR`` (or ``cifar100``) trains with the
settings below; the presets are recipes (registered here, ``zoo=False``: not part of the MNIST-5k zoo).
Names: ``<method>-cifar-<arch>``, arch ``vgg11`` (spiking VGG-11) or ``wrn16`` (spiking WRN-16-4), both
the SR / RSSNN code bases' models (:func:`models_zoo.architectures.svgg11`, :func:`~.swrn16`).

Settings, per paper (authors' public code where it exists; "open" = not settled by the sources):

* SR code base (putshua/gradient_reg_defense, ``snn_main_train.py``), used by ``baseline``, ``sr`` and
  (open: its paper publishes no optimiser) ``mpd-sgr``: IF neurons (the code's LIFSpike with tau = 1),
  theta 1, hard reset, triangle SG gamma 1, T = 8, SGD lr 0.1 momentum 0.9 (no Nesterov) weight decay 5e-4,
  cosine over 200 epochs, batch 32, RandomCrop(32, 4) + horizontal flip, normalisation inside the model.
  SR: h = 0.01, lambda 0.1 (open: the value of the repository's logged runs; sweep it on your data).
  MPD-SGR: eta 0.03 (open: the MNIST-5k sweep's choice, models_zoo/SWEEPS.md; eta >= 0.1 silenced the
  network there), gamma = the SG's support (1).
* RSSNN (DingJianhao/stable-snn, ``main_train-v2.py``): DLIF tau 0.99, T = 8, SGD lr 0.1 momentum 0.9,
  weight decay 5e-4 (``beta``), cosine over 100 epochs, batch 64, kappa 0.5, rho (``alpha``) 1, Gaussian
  sigma 8/255; AT mode RFGSM with eps 4/255 (the code's default).
* Sparse-gradient trail (luutn2002/grad-obf-snn): IF neurons, atan alpha 2, detach_reset, Adam lr 1e-3
  weight decay 1e-3, batch 16, 100 epochs, T = 10, no input normalisation; VGG-11 with max vs average
  pooling instead of the paper's SEW-ResNet, direct instead of phase encoding (only these two presets).
* PGD-AT and PGD-AT + MPD-SGR: the MPD-SGR paper's AT, PGD k = 2, eps 2/255 (step eps/2: open).
  PGD-AT + SR: the SR code's PGD (eps 8/255, step 2.55/255, 7 steps).
"""

from __future__ import annotations

import copy
from typing import Any

from models_zoo import defenses as _d
from models_zoo.recipe_base import RSSNN_NEURON, Recipe, ce_loss, register_recipe

CIFAR = ("cifar10", "cifar100")

IF_NEURON: dict[str, Any] = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0, "decay_input": True, "detach_reset": False}

ARCH_ARGS: dict[str, dict[str, Any]] = {
    "vgg11": {"architecture": "svgg11", "architecture_args": {"width": 1.0, "hidden": 4096, "pooling": "avg", "normalize": "cifar10"}},
    "wrn16": {"architecture": "swrn16", "architecture_args": {"widen_factor": 4, "base": 16, "normalize": "cifar10"}},
}

SR_CODE: dict[str, Any] = {
    "neuron": IF_NEURON,
    "surrogate": {"family": "triangle", "width": 1.0},
    "time_steps": 8,
    "encoder": "direct",
    "epochs": 200,
    "batch_size": 32,
    "optimizer": "sgd",
    "nesterov": False,
    "lr": 0.1,
    "weight_decay": 5e-4,
    "schedule": "cosine",
    "augment": "crop-flip",
}
RSSNN_CODE: dict[str, Any] = {
    **SR_CODE,
    "neuron": RSSNN_NEURON,
    "epochs": 100,
    "batch_size": 64,
    "rssnn_perturbation": "gaussian",
    "rssnn_sigma": 8 / 255,
    "rssnn_kappa": 0.5,
    "rssnn_rho": 1.0,
}
LUU_CODE: dict[str, Any] = {
    **SR_CODE,
    "neuron": {**IF_NEURON, "detach_reset": True},
    "surrogate": {"family": "atan", "width": 2.0},
    "time_steps": 10,
    "epochs": 100,
    "batch_size": 16,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 1e-3,
}
MPD_AT: dict[str, Any] = {"at_eps": 2 / 255, "at_steps": 2, "at_step_ratio": 0.5}
SR_AT: dict[str, Any] = {"at_eps": 8 / 255, "at_steps": 7, "at_step_ratio": 2.55 / 8}
SR_W: dict[str, Any] = {"sr_lambda": 0.1, "sr_h": 0.01}
MPD_W: dict[str, Any] = {"mpd_eta": 0.03, "mpd_gamma": "sg"}

#: method -> (loss, settings, paper)
METHODS: dict[str, tuple[Any, dict[str, Any], str]] = {
    "baseline": (ce_loss, SR_CODE, "BPTT baseline of the SR code base (Liu et al. ICML 2024, lambda = 0)"),
    "sr": (_d.sr_loss, {**SR_CODE, **SR_W}, "Liu et al.: Enhancing Adversarial Robustness in SNNs with Sparse Gradients (ICML 2024)"),
    "mpd-sgr": (_d.mpd_sgr_loss, {**SR_CODE, **MPD_W}, "Jiang et al.: MPD-SGR (arXiv 2511.12199, AAAI 2026)"),
    "rssnn": (_d.rssnn_loss, RSSNN_CODE, "Ding et al.: Robust Stable Spiking Neural Networks (ICML 2024)"),
    "pgd-at": (_d.pgd_at_loss, {**SR_CODE, **MPD_AT}, "Madry et al. (ICLR 2018) PGD-AT with the MPD-SGR paper's AT settings"),
    "pgd-at+sr": (_d.pgd_at_sr_loss, {**SR_CODE, **SR_W, **SR_AT}, "Liu et al. (ICML 2024) SR + PGD-AT (SR code's attack settings)"),
    "pgd-at+mpd-sgr": (_d.pgd_at_mpd_sgr_loss, {**SR_CODE, **MPD_W, **MPD_AT}, "Jiang et al. (arXiv 2511.12199) MPD-SGR + PGD-AT (k = 2, eps 2/255)"),
    "pgd-at+rssnn": (_d.rssnn_loss, {**RSSNN_CODE, "rssnn_perturbation": "rfgsm", "at_eps": 4 / 255}, "Ding et al. (ICML 2024) RSSNN, AT mode (RFGSM, eps 4/255)"),
}


def _adapt(cfg: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Normalise with the statistics of the data set actually trained on (cifar10 or cifar100)."""
    cfg = copy.deepcopy(cfg)
    args = cfg.get("architecture_args", {})
    if args.get("normalize", "none") != "none":
        args["normalize"] = dataset
    return cfg


def _register(name: str, loss: Any, cfg: dict[str, Any], paper: str, doc: str) -> None:
    register_recipe(
        Recipe(name=name, family=name, paper=paper, loss=loss, defaults=copy.deepcopy(cfg), doc=doc,
               datasets=CIFAR, zoo=False, adapt=_adapt)
    )


for _method, (_loss, _cfg, _paper) in METHODS.items():
    for _arch, _arch_cfg in ARCH_ARGS.items():
        _register(
            f"{_method}-cifar-{_arch}", _loss, {**_cfg, **_arch_cfg}, _paper,
            f"Paper preset: {_method} on CIFAR with the spiking {_arch.upper()} and the paper's settings "
            f"(models_zoo/paper_presets.py).",
        )

for _pool in ("max", "avg"):
    _arch_cfg = copy.deepcopy(ARCH_ARGS["vgg11"])
    _arch_cfg["architecture_args"].update(pooling=_pool, normalize="none")
    _register(
        f"sparse-arch-{_pool}-cifar-vgg11", ce_loss, {**LUU_CODE, **_arch_cfg},
        "Luu: accuracy-robustness trade-off via SNN gradient sparsity trail (arXiv 2509.23762)",
        f"Paper preset: IF + atan(2) VGG-11 with {_pool}-pooling, Adam 1e-3 / wd 1e-3, T=10 (Luu's code settings).",
    )

PRESETS: list[str] = [f"{m}-cifar-{a}" for m in METHODS for a in ARCH_ARGS] + [f"sparse-arch-{p}-cifar-vgg11" for p in ("max", "avg")]
