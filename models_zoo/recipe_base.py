"""What every training recipe is made of: :class:`Recipe`, the recipe registry, the plain CE loss and the
settings the zoo's recipes share (seeds, data set, AT / SR / MPD-SGR / RSSNN defaults, neurons).
:mod:`models_zoo.recipes` is the catalogue: it imports every module that registers recipes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from bench.adapter import SNNAdapter
from bench.registry import Registry

#: defaults shared by every MNIST-5k recipe (a recipe overrides what it changes)
COMMON_DEFAULTS: dict[str, Any] = {
    "architecture": "scnn28",
    "architecture_args": {"channels": [16, 32], "hidden": 128, "pooling": "avg"},
    "neuron": {"type": "LIF", "tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0, "decay_input": True, "detach_reset": False},
    "surrogate": {"family": "triangle", "width": 1.0},
    "time_steps": 4,
    "encoder": "direct",
    "epochs": 12,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 2e-3,
    "weight_decay": 0.0,
    "schedule": "cosine",
}


LossFn = Callable[[SNNAdapter, torch.Tensor, torch.Tensor, dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Recipe:
    """A named training recipe: the paper it implements, its family, its loss and its settings."""

    name: str
    family: str
    paper: str
    loss: LossFn
    defaults: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    #: data sets the recipe is made for (None: any); the first is the default of `snnbench train`
    datasets: tuple[str, ...] | None = None
    #: part of the committed MNIST-5k zoo (`snnbench train --all`); paper presets are not
    zoo: bool = True
    #: optional hook ``adapt(cfg, dataset) -> cfg`` for settings that depend on the data set (normalisation)
    adapt: Callable[[dict[str, Any], str], dict[str, Any]] | None = None
    #: the recipe of the matched baseline (same model and budget, without the defense's knob; issue 13):
    #: the card records its zoo id of the same seed as ``matched_baseline``
    matched_baseline: str | None = None

    def config(self, **overrides: Any) -> dict[str, Any]:
        cfg = {**COMMON_DEFAULTS, **self.defaults}
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        return cfg

    def config_for(self, dataset: str, **overrides: Any) -> dict[str, Any]:
        """:meth:`config` for ``dataset``: checks that the recipe is made for it and applies :attr:`adapt`."""
        if self.datasets is not None and dataset not in self.datasets:
            from bench.errors import BenchError

            raise BenchError(
                f"recipe '{self.name}' is made for {', '.join(self.datasets)}, not '{dataset}': "
                f"pass --dataset {self.datasets[0]} (or pick a recipe for {dataset})"
            )
        cfg = self.config(**overrides)
        return self.adapt(cfg, dataset) if self.adapt else cfg

    @property
    def default_dataset(self) -> str:
        return self.datasets[0] if self.datasets else "mnist5k"


#: every recipe by name; filled by models_zoo/recipes.py, recipes_matched.py and paper_presets.py
RECIPES: Registry[Recipe] = Registry("recipe")


def register_recipe(recipe: Recipe) -> Recipe:
    return RECIPES.add(recipe.name, recipe)


def get_recipe(name: str) -> Recipe:
    """The recipe ``name`` (a one-line error naming the known ones otherwise)."""
    return RECIPES.lookup(name)


def ce_loss(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """Plain BPTT: cross-entropy on time-averaged logits."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    return loss, {"ce": float(loss.detach())}


#: the seeds and data set of the committed zoo (`snnbench train --all`)
ZOO_SEEDS: tuple[int, ...] = (0, 1, 2)
ZOO_DATASET = "mnist5k"

#: PGD adversarial training on MNIST-5k: eps 0.2 = the benchmark's primary L-inf budget (bench.toml), so the
#: model is trained at the budget it is evaluated at; k = 2 steps of eps/2 from a uniform random start (the
#: MPD-SGR paper's AT uses k = 2; two steps of eps/2 can cross the whole ball), the cheapest PGD that is not
#: FGSM, keeping the 3-seed zoo within the CPU budget.
AT_DEFAULTS: dict[str, Any] = {"at_eps": 0.2, "at_steps": 2, "at_step_ratio": 0.5}

#: SR (Liu et al. ICML 2024): h = 0.01 (authors' code); lambda is open (code default 0): 0.1, the largest
#: value of the sweep {0.002, 0.01, 0.05, 0.1} (models_zoo/SWEEPS.md), which cost 2.4 points of clean
#: accuracy (4-epoch sweep) and halved the l1 norm of the input gradient.
SR_DEFAULTS: dict[str, Any] = {"sr_lambda": 0.1, "sr_h": 0.01}

#: MPD-SGR (Jiang et al. 2025): gamma = the training SG's support ('sg' -> triangle width 1); eta is open:
#: 0.03, the largest value of the sweep {0.003, 0.01, 0.03, 0.1, 0.3} (models_zoo/SWEEPS.md) within 3 points
#: of clean accuracy (-2.0; 0.1 cost 12 points, 0.3 silenced the network); mu, sigma = batch statistics of
#: the recorded potentials.
MPD_DEFAULTS: dict[str, Any] = {"mpd_eta": 0.03, "mpd_gamma": "sg"}

#: RSSNN (Ding et al. ICML 2024): DLIF leak 0.99, theta 1, hard reset, triangle SG 1 (authors' defaults);
#: kappa 0.5, rho 1 (the paper's best of {0, 0.5, 1, 2}), Gaussian sigma 8/255; weight decay 5e-4 (the
#: code's `beta`, applied as the optimiser's weight decay in its Gaussian and AT modes).
RSSNN_NEURON: dict[str, Any] = {"type": "DLIF", "tau": 0.99, "v_threshold": 1.0, "v_reset": 0.0, "detach_reset": False}
RSSNN_DEFAULTS: dict[str, Any] = {
    "neuron": RSSNN_NEURON,
    "rssnn_perturbation": "gaussian",
    "rssnn_sigma": 8 / 255,
    "rssnn_kappa": 0.5,
    "rssnn_rho": 1.0,
    "weight_decay": 5e-4,
}

#: the sparse-gradient trail (Luu 2025, arXiv 2509.23762; code luutn2002/grad-obf-snn): IF neurons (no
#: leak; the card's tau is unused), atan SG alpha 2, detach_reset=True (the code's SEW-ResNet setting).
SPARSE_NEURON: dict[str, Any] = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0, "decay_input": True, "detach_reset": True}


def _scnn(pooling: str) -> dict[str, Any]:
    return {"channels": [16, 32], "hidden": 128, "pooling": pooling}
