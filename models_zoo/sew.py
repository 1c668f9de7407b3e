"""A small SEW-ResNet (Fang et al., NeurIPS 2021) with the stem of Luu's code, for 28x28 inputs.

Luu (arXiv 2509.23762; luutn2002/grad-obf-snn ``source/sew_resnet.py``) uses SEW-ResNet-18/34/50 with the
ImageNet stem: conv 7x7 stride 2 -> BN -> IF -> 3x3 stride-2 pooling (padding 1) placed **after** the stem's
spiking neuron, so the pool acts on binary spikes (max: a sparse backward, one winner per window; avg: a
dense one); then SEW BasicBlocks with the ADD connect function, adaptive average pooling and a linear
readout (logits averaged over T by the adapter). The pooling mode of the stem is the paper's one knob.

:func:`sew_small` keeps that structure at MNIST scale: ``len(stage_channels)`` stages of ``blocks[i]``
BasicBlocks (the first of a stage after the first has stride 2), instead of 4 stages of 2 blocks.
BasicBlock (the code's): ``out = SN(BN(conv3x3(SN(BN(conv3x3_s(x))))))``; ``identity = x`` or, when the
shape changes, ``SN(BN(conv1x1_s(x)))``; result ``identity + out`` (ADD). Initialisation as the code:
Kaiming-normal fan_out convolutions, BN weight 1 and bias 0.
"""

from __future__ import annotations

from typing import Any

from spikingjelly.activation_based import layer
from torch import nn

from attacks.backward_rules import BackwardRule
from bench.errors import BenchError
from models_zoo.arch_base import make_neuron, register_architecture


class SEWBasicBlock(nn.Module):
    """SEW BasicBlock with the ADD connect function (multi-step ``[T, N, C, H, W]``)."""

    def __init__(self, cin: int, cout: int, stride: int, neuron: dict[str, Any], surrogate: BackwardRule) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(cout, step_mode="m")
        self.sn1 = make_neuron(neuron, surrogate)
        self.conv2 = layer.Conv2d(cout, cout, 3, padding=1, bias=False, step_mode="m")
        self.bn2 = layer.BatchNorm2d(cout, step_mode="m")
        self.sn2 = make_neuron(neuron, surrogate)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                layer.Conv2d(cin, cout, 1, stride=stride, bias=False, step_mode="m"),
                layer.BatchNorm2d(cout, step_mode="m"),
                make_neuron(neuron, surrogate),
            )

    def forward(self, x):  # type: ignore[no-untyped-def]
        out = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return identity + out


def _stem_pool(kind: str) -> nn.Module:
    if kind == "max":
        return layer.MaxPool2d(3, stride=2, padding=1, step_mode="m")
    if kind == "avg":
        return layer.AvgPool2d(3, stride=2, padding=1, step_mode="m")
    raise BenchError(f"stem_pool must be 'max' or 'avg', got {kind!r}")


@register_architecture("sew_small")
def sew_small(
    neuron: dict[str, Any],
    surrogate: BackwardRule,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    stem_channels: int = 32,
    stage_channels: tuple[int, ...] = (32, 64),
    blocks: tuple[int, ...] = (1, 1),
    stem_kernel: int = 7,
    stem_stride: int = 2,
    stem_pool: str = "max",
) -> nn.Module:
    """Stem conv -> BN -> spike -> 3x3 s2 pool (on spikes) -> SEW stages (ADD) -> adaptive avg pool -> fc.

    With the defaults on 28x28: 14x14 after the stem, 7x7 after the pool, 4x4 after stage 2; 80k parameters.
    """
    if len(stage_channels) != len(blocks) or not stage_channels:
        raise BenchError(f"sew_small: stage_channels {list(stage_channels)} and blocks {list(blocks)} need the same non-zero length")
    mods: list[nn.Module] = [
        layer.Conv2d(in_shape[0], stem_channels, stem_kernel, stride=stem_stride, padding=stem_kernel // 2, bias=False, step_mode="m"),
        layer.BatchNorm2d(stem_channels, step_mode="m"),
        make_neuron(neuron, surrogate),
        _stem_pool(stem_pool),
    ]
    cin = stem_channels
    for i, (cout, n) in enumerate(zip(stage_channels, blocks)):
        for j in range(int(n)):
            mods.append(SEWBasicBlock(cin, int(cout), 2 if (i > 0 and j == 0) else 1, neuron, surrogate))
            cin = int(cout)
    mods += [
        layer.AdaptiveAvgPool2d((1, 1), step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(cin, num_classes, step_mode="m"),
    ]
    net = nn.Sequential(*mods)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net
