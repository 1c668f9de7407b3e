"""Registered SNN architectures, built from spikingjelly layers in multi-step mode.

Every factory takes ``neuron`` (a card's ``[neuron]`` table: type, tau, v_threshold, v_reset),
``surrogate`` (the training SG as a :class:`~attacks.backward_rules.BackwardRule`), ``num_classes`` and
``in_shape`` plus its own keyword arguments (a card's ``[architecture_args]``), and returns a network
mapping ``[T, N, C, H, W] -> [T, N, K]``. The readout is a non-spiking linear layer whose outputs the
adapter averages over time. Spiking neurons are spikingjelly nodes; the adapter instruments them.
"""

from __future__ import annotations

from typing import Any

import torch
from spikingjelly.activation_based import layer
from torch import nn

from attacks.backward_rules import BackwardRule
from bench.errors import BenchError, unknown_name_error
from models_zoo import sew as _sew  # noqa: F401  (registers sew_small: Luu's SEW net, issue 13)
from models_zoo.arch_base import ARCHITECTURES, make_neuron, register_architecture, spikingjelly_surrogate  # noqa: F401  (re-exported)

def _pool(kind: str) -> nn.Module:
    if kind == "avg":
        return layer.AvgPool2d(2, step_mode="m")
    if kind == "max":
        return layer.MaxPool2d(2, step_mode="m")
    raise BenchError(f"pooling must be 'avg' or 'max', got {kind!r}")


@register_architecture("scnn28")
def scnn28(
    neuron: dict[str, Any],
    surrogate: BackwardRule,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    channels: tuple[int, int] = (16, 32),
    hidden: int = 128,
    pooling: str = "avg",
) -> nn.Module:
    """Spiking CNN for 28x28 inputs: [conv3x3-BN-spike-pool2] x 2, linear-spike, linear readout.

    With the defaults (16, 32 channels, 128 hidden) it has 207k parameters.
    """
    c0, h, w = in_shape
    c1, c2 = channels
    flat = c2 * (h // 4) * (w // 4)
    return nn.Sequential(
        layer.Conv2d(c0, c1, 3, padding=1, bias=False, step_mode="m"),
        layer.BatchNorm2d(c1, step_mode="m"),
        make_neuron(neuron, surrogate),
        _pool(pooling),
        layer.Conv2d(c1, c2, 3, padding=1, bias=False, step_mode="m"),
        layer.BatchNorm2d(c2, step_mode="m"),
        make_neuron(neuron, surrogate),
        _pool(pooling),
        layer.Flatten(step_mode="m"),
        layer.Linear(flat, hidden, step_mode="m"),
        make_neuron(neuron, surrogate),
        layer.Linear(hidden, num_classes, step_mode="m"),
    )


@register_architecture("smlp")
def smlp(
    neuron: dict[str, Any],
    surrogate: BackwardRule,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (1, 8, 8),
    hidden: tuple[int, ...] = (64,),
) -> nn.Module:
    """Spiking MLP (flatten, [linear-spike] per hidden size, linear readout): for fast tests on digits."""
    dims = [in_shape[0] * in_shape[1] * in_shape[2], *hidden]
    mods: list[nn.Module] = [layer.Flatten(step_mode="m")]
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [layer.Linear(a, b, step_mode="m"), make_neuron(neuron, surrogate)]
    mods.append(layer.Linear(dims[-1], num_classes, step_mode="m"))
    return nn.Sequential(*mods)


# -- paper presets for CIFAR (spiking VGG-11 and WRN-16) ------------------------------------------------

#: per-channel (mean, std) of the data sets whose presets normalise inside the model (inputs stay in [0, 1];
#: the values of the SR and RSSNN code bases' ``data_loaders.py``)
NORM_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


class InputNorm(nn.Module):
    """``(x - mean) / std`` per channel on ``[T, N, C, H, W]``: normalisation inside the model."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _input_norm(normalize: str | None, channels: int) -> list[nn.Module]:
    if normalize in (None, "none"):
        return []
    if normalize not in NORM_STATS:
        raise BenchError(f"normalize must be 'none' or one of {sorted(NORM_STATS)}, got {normalize!r}")
    mean, std = NORM_STATS[normalize]
    if len(mean) != channels:
        raise BenchError(f"normalize='{normalize}' has {len(mean)} channels but the input has {channels}")
    return [InputNorm(mean, std)]


def _init_like_papers(net: nn.Module) -> None:
    """Kaiming-normal (fan_out) convolutions, BN weight 1 / bias 0, zero linear biases (SR / RSSNN code)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


#: VGG-11 of the SR code base (``snn_models/VGG.py``, cfg 'vgg11'): channels, "P" = 2x2 pooling
VGG11_LAYOUT: tuple[int | str, ...] = (64, "P", 128, 256, "P", 512, 512, 512, "P", 512, 512)


@register_architecture("svgg11")
def svgg11(
    neuron: dict[str, Any],
    surrogate: BackwardRule,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (3, 32, 32),
    width: float = 1.0,
    hidden: int = 4096,
    pooling: str = "avg",
    normalize: str = "none",
) -> nn.Module:
    """Spiking VGG-11 of Liu et al. (ICML 2024, SR) and Ding et al. (ICML 2024, RSSNN) code bases.

    [conv3x3(bias)-BN-spike] with 2x2 pooling after conv 1, 3 and 6 (64, P, 128, 256, P, 512x3, P, 512x2),
    then flatten, linear-spike (4096), linear-spike (4096), linear readout; 61M parameters on 32x32 inputs.
    ``width`` scales every channel count and the hidden size (1 = the papers'; tests use less);
    ``pooling`` avg (the papers') or max (Luu 2025's sparse-gradient variant); ``normalize`` a
    :data:`NORM_STATS` key (normalisation inside the model) or 'none'.
    """
    c, h, w = in_shape
    mods: list[nn.Module] = list(_input_norm(normalize, c))
    pools = 0
    for item in VGG11_LAYOUT:
        if item == "P":
            mods.append(_pool(pooling))
            pools += 1
            continue
        out = max(1, int(round(int(item) * width)))
        mods += [
            layer.Conv2d(c, out, 3, padding=1, bias=True, step_mode="m"),
            layer.BatchNorm2d(out, step_mode="m"),
            make_neuron(neuron, surrogate),
        ]
        c = out
    hid = max(1, int(round(hidden * width)))
    flat = c * (h >> pools) * (w >> pools)
    mods += [
        layer.Flatten(step_mode="m"),
        layer.Linear(flat, hid, step_mode="m"),
        make_neuron(neuron, surrogate),
        layer.Linear(hid, hid, step_mode="m"),
        make_neuron(neuron, surrogate),
        layer.Linear(hid, num_classes, step_mode="m"),
    ]
    net = nn.Sequential(*mods)
    _init_like_papers(net)
    return net


class WRNBlock(nn.Module):
    """Pre-activation wide-ResNet block (BN-spike-conv x 2) with a learnable convex-combination residual
    ``comb[0] * shortcut + comb[1] * branch`` (SNN-RAT / SR code, ``snn_models/WideResNet.py``)."""

    def __init__(self, cin: int, cout: int, stride: int, neuron: dict[str, Any], surrogate: BackwardRule) -> None:
        super().__init__()
        self.equal = cin == cout
        self.bn1 = layer.BatchNorm2d(cin, step_mode="m")
        self.act1 = make_neuron(neuron, surrogate)
        self.conv1 = layer.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, step_mode="m")
        self.bn2 = layer.BatchNorm2d(cout, step_mode="m")
        self.act2 = make_neuron(neuron, surrogate)
        self.conv2 = layer.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False, step_mode="m")
        self.shortcut = None if self.equal else layer.Conv2d(cin, cout, 1, stride=stride, bias=False, step_mode="m")
        self.comb = nn.Parameter(torch.full((2,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.equal:
            out = self.act1(self.bn1(x))
            res = x
        else:
            x = self.act1(self.bn1(x))
            out = x
            res = self.shortcut(x)
        out = self.conv2(self.act2(self.bn2(self.conv1(out))))
        return self.comb[0] * res + self.comb[1] * out


@register_architecture("swrn16")
def swrn16(
    neuron: dict[str, Any],
    surrogate: BackwardRule,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (3, 32, 32),
    widen_factor: int = 4,
    base: int = 16,
    normalize: str = "none",
) -> nn.Module:
    """Spiking WRN-16-4 of the SR and RSSNN code bases (depth 16: 3 groups of 2 pre-activation blocks).

    conv3x3 (16) -> groups of widths 16k, 32k, 64k (strides 1, 2, 2) -> BN-spike -> global average pool ->
    linear readout; k = ``widen_factor`` (4 in the papers, 2.7M parameters); ``base`` the stem width.
    """
    c = in_shape[0]
    widths = [base, base * widen_factor, 2 * base * widen_factor, 4 * base * widen_factor]
    mods: list[nn.Module] = list(_input_norm(normalize, c))
    mods.append(layer.Conv2d(c, widths[0], 3, padding=1, bias=False, step_mode="m"))
    cin = widths[0]
    for cout, stride in zip(widths[1:], (1, 2, 2)):
        for i in range(2):  # (16 - 4) / 6 = 2 blocks per group
            mods.append(WRNBlock(cin, cout, stride if i == 0 else 1, neuron, surrogate))
            cin = cout
    mods += [
        layer.BatchNorm2d(cin, step_mode="m"),
        make_neuron(neuron, surrogate),
        layer.AdaptiveAvgPool2d((1, 1), step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(cin, num_classes, step_mode="m"),
    ]
    net = nn.Sequential(*mods)
    _init_like_papers(net)
    return net


def build_architecture(name: str, **kwargs: Any) -> nn.Module:
    if name not in ARCHITECTURES:
        raise unknown_name_error("architecture", name, ARCHITECTURES)
    try:
        return ARCHITECTURES[name](**kwargs)
    except TypeError as e:
        raise BenchError(f"architecture '{name}' does not accept these arguments: {e}") from None
