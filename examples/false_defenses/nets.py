"""False defenses for the issue-15 check (examples/false_defenses/run.py): spiking CNNs on 28x28 MNIST.

``build(kind=...)`` maps ``[T, N, 1, 28, 28]`` to ``[T, N, 10]``: conv(16)-LIF-avgpool, conv(32)-LIF-avgpool,
linear(128)-LIF, linear readout; spikingjelly LIF (tau 2), ATan surrogate.

* ``plain``: the unmasked twin;
* ``quant``: the same behind a non-differentiable input quantization ``round(x * (levels - 1)) / (levels - 1)``
  (zero input gradient under every surrogate);
* ``noise``: Gaussian noise (std ``sigma``) added to the first layer's membrane input, in eval mode too.

Self-contained (torch + spikingjelly), as bench/custom_arch.py requires of a custom architecture.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn


class Quantize(nn.Module):
    def __init__(self, levels: int = 4) -> None:
        super().__init__()
        self.levels = int(levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * (self.levels - 1)) / (self.levels - 1)


class MembraneNoise(nn.Module):
    def __init__(self, sigma: float = 0.5) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x)


def _lif() -> nn.Module:
    return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode="m")


def build(kind: str = "plain", levels: int = 4, sigma: float = 0.5) -> nn.Module:
    mods: list[nn.Module] = [Quantize(levels)] if kind == "quant" else []
    mods += [layer.Conv2d(1, 16, 3, padding=1, step_mode="m")]
    if kind == "noise":
        mods.append(MembraneNoise(sigma))
    mods += [
        _lif(), layer.AvgPool2d(2, step_mode="m"),
        layer.Conv2d(16, 32, 3, padding=1, step_mode="m"), _lif(), layer.AvgPool2d(2, step_mode="m"),
        layer.Flatten(step_mode="m"), layer.Linear(32 * 7 * 7, 128, step_mode="m"), _lif(),
        layer.Linear(128, 10, step_mode="m"),
    ]
    return nn.Sequential(*mods)
