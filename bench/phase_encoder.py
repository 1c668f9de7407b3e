"""The weighted phase encoder of Kim et al. (2018), as Luu (arXiv 2509.23762) uses it.

Kim, Kim, Huh, Lee, Choi: "Deep neural networks with weighted spikes", Neurocomputing 311 (2018); the
encoder of luutn2002/grad-obf-snn (``source/encoder.py``: ``encoding.WeightedPhaseEncoder(K=8)`` applied to
``x / 256`` of the raw 0-255 pixels, after ``x.clone().detach()``, stacked over ``T = 10`` steps).

For a pixel with raw value ``q`` in 0..255, ``p = q / 256`` has the binary expansion ``sum_k b_k 2^-k``
(k = 1..K, K = 8); phase k emits the binary spike ``b_k`` (most significant bit first). The phase weights
``2^-k`` are not applied to the spikes (spikingjelly's encoder returns the bits; the network learns what
each step means). The encoder is stateful and cyclic, so T = 10 steps emit phases 1..8, then 1..2.

Inputs of the benchmark live in [0, 1] (``x = q / 255``); the encoder reads ``q = floor(255 x + 1e-3)``
(the tolerance absorbs float error of ``q / 255 * 255``), which is what the 8 bit planes of ``255 x / 256``
resolve anyway. The output is **detached** from ``x`` (the authors' ``clone().detach()``): no gradient
reaches the pixels. A pixel-space attack needs BPDA through this module (a differentiable surrogate of
the encoder); the spike-domain threat model of the paper (:mod:`bench.spike_domain`) perturbs the
encoded tensor instead. The adapter exposes the instance as ``SNNAdapter.input_encoder`` when the card's
encoder is ``phase``.
"""

from __future__ import annotations

import torch
from torch import nn


class PhaseEncoder(nn.Module):
    """``[N, C, H, W]`` in [0, 1] -> binary bit planes ``[T, N, C, H, W]``, phases cycling 1..K; detached."""

    #: the module detaches its input: pixel-space gradient attacks need BPDA (read by the gauntlet)
    detaches_input: bool = True

    def __init__(self, time_steps: int, bits: int = 8) -> None:
        super().__init__()
        if int(time_steps) < 1 or int(bits) < 1:
            raise ValueError(f"PhaseEncoder needs time_steps >= 1 and bits >= 1, got {time_steps}, {bits}")
        self.time_steps = int(time_steps)
        self.bits = int(bits)

    def phase_of_step(self, t: int) -> int:
        """The phase k (1..K) emitted at step t (0-based): ``t mod K + 1``."""
        return t % self.bits + 1

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """Raw integer levels ``q = floor((2^K - 1) x + 1e-3)`` in 0..2^K - 1 of an image in [0, 1]."""
        top = 2**self.bits - 1
        return torch.floor(x.detach().clamp(0.0, 1.0) * top + 1e-3).clamp(0, top)

    def bit_planes(self, x: torch.Tensor) -> torch.Tensor:
        """The K bit planes ``[K, N, C, H, W]`` of ``q / 2^K``, most significant first (binary floats)."""
        q = self.levels(x).to(torch.int64)
        shifts = torch.arange(self.bits - 1, -1, -1, device=x.device).view(-1, *([1] * x.dim()))
        return ((q.unsqueeze(0) >> shifts) & 1).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        planes = self.bit_planes(x)
        idx = torch.tensor([self.phase_of_step(t) - 1 for t in range(self.time_steps)], device=x.device)
        return planes.index_select(0, idx)

    def extra_repr(self) -> str:
        return f"T={self.time_steps}, K={self.bits}, detached"
