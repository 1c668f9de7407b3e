"""Small false defenses for the tests of issue 15 (built by the tests as custom architectures).

``build(kind=...)`` returns a spiking MLP on 8x8 digits (``[T, N, 1, 8, 8] -> [T, N, 10]``):

* ``plain``: flatten, linear, LIF, linear readout;
* ``quant``: the same behind a non-differentiable input quantization ``round(x * (levels - 1)) / (levels - 1)``
  (zero input gradient under every surrogate: shattered gradients, Athalye et al. 2018);
* ``detach``: the same behind an input quantization that detaches its output (no graph at all);
* ``noise``: Gaussian noise (std ``sigma``) on the hidden layer's input current, also in eval mode.

Self-contained (torch + spikingjelly only), as bench/custom_arch.py requires.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn


class Quantize(nn.Module):
    def __init__(self, levels: int = 2, detach: bool = False) -> None:
        super().__init__()
        self.levels, self.detach = int(levels), bool(detach)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.round(x * (self.levels - 1)) / (self.levels - 1)
        return q.detach() if self.detach else q


class GaussianNoise(nn.Module):
    def __init__(self, sigma: float = 0.5) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x)


def build(kind: str = "plain", hidden: int = 64, levels: int = 2, sigma: float = 0.5, in_features: int = 64, num_classes: int = 10) -> nn.Module:
    """Every kind has the same parameter names (the transforms sit in fixed slots), so one trained plain
    net's weights load into each of them."""
    front = Quantize(levels, detach=kind == "detach") if kind in ("quant", "detach") else nn.Identity()
    noise = GaussianNoise(sigma) if kind == "noise" else nn.Identity()
    return nn.Sequential(
        front, layer.Flatten(step_mode="m"), layer.Linear(in_features, hidden, step_mode="m"), noise,
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode="m"), layer.Linear(hidden, num_classes, step_mode="m"),
    )
