"""Training recipes (defenses), selectable by name: ``snnbench train RECIPE``.

A recipe fixes the model (architecture, neuron, training surrogate, T, encoder) and the loss. Every
hyper-parameter is a field of :attr:`Recipe.defaults` and is written into the trained model's card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from bench.adapter import SNNAdapter
from bench.errors import unknown_name_error

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

    def config(self, **overrides: Any) -> dict[str, Any]:
        cfg = {**COMMON_DEFAULTS, **self.defaults}
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        return cfg


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    if recipe.name in RECIPES:
        raise ValueError(f"recipe '{recipe.name}' is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise unknown_name_error("recipe", name, RECIPES)
    return RECIPES[name]


def ce_loss(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """Plain BPTT: cross-entropy on time-averaged logits."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    return loss, {"ce": float(loss.detach())}


register_recipe(
    Recipe(
        name="baseline",
        family="baseline",
        paper="BPTT with a surrogate gradient (Neftci et al. 2019; Wu et al. 2018): the common baseline",
        loss=ce_loss,
        doc="LIF neurons (tau 2, theta 1, hard reset), triangle SG width 1, T=4, direct encoding, CE on time-averaged logits.",
    )
)
