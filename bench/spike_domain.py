"""The spike-domain threat model of Luu (arXiv 2509.23762): attacks on the ENCODED spike tensor.

Luu's code (luutn2002/grad-obf-snn, ``train.py::adv_test_step`` and ``source/attacks.py``) encodes each
test batch first (``img = encoder(img)``: the binary phase-coded tensor ``[T, N, C, H, W]``), then runs
FGSM and PGD-7 (step 0.01, uniform random start, eps 6/255, clamp to [0, 1]) on that tensor with the model
in **train mode** (``model.train()``: BatchNorm uses the attacked batch's statistics, batch 16) and scores
the result in **eval mode** (running statistics). Pixel-space results are never comparable with these:
the perturbation lives on the spikes, after the (detaching) encoder.

This module turns a loaded :class:`~bench.adapter.SNNAdapter` and a test split into their spike-domain
counterparts, so that the engine's cascade, scoring and sanity flags run unchanged:

* :func:`encode_split`: every test image encoded once by the model's own encoder, laid out as an "image"
  ``[N, T*C, H, W]`` in {0, 1} (step-major channels), so that the engine's L-inf ball, box check and
  attacks apply to the spike tensor as they do to pixels;
* :class:`SpikeDomainModel`: maps that tensor back to ``[T, N, C, H, W]``, resets the state and runs the
  network (no encoder); a forward whose input requires a gradient (an attack's crafting forward) runs
  BatchNorm with batch statistics when ``craft_bn = "train"`` (the paper's code), any other forward
  (scoring, the engine's ``torch.no_grad`` passes) uses eval mode.

Deviation from the code, stated in results: the paper's crafting forwards in train mode also *update*
BatchNorm's running statistics (momentum 0.1), so its eval-mode score depends on the order of the test
batches; here running statistics are frozen during crafting (momentum 0 and the counters restored), so
the evaluated model is exactly the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from spikingjelly.activation_based import functional
from torch import nn

from bench.adapter import SNNAdapter
from bench.data import Split
from bench.errors import BenchError

#: BatchNorm mode of crafting forwards: "train" (batch statistics, the paper's code) or "eval"
CRAFT_BN_MODES = ("train", "eval")


def spike_domain_config(tm: dict[str, Any]) -> dict[str, Any] | None:
    """The spike-domain settings of a threat model (None for a pixel-space one); part of the result config."""
    if tm.get("domain", "pixel") != "spike":
        return None
    mode = tm.get("craft_bn", "train")
    if mode not in CRAFT_BN_MODES:
        raise BenchError(f"threat model '{tm.get('name')}': craft_bn must be one of {CRAFT_BN_MODES}, got {mode!r}")
    return {"domain": "spike", "craft_bn": mode, "running_stats": "frozen"}


def check_preset_threat_model(resolved: dict[str, Any], threat_model: str) -> None:
    """A preset made for one threat model (``threat_model`` key, e.g. paper-luu -> spike-Linf) runs only there."""
    want = resolved.get("threat_model")
    if want is not None and want != threat_model:
        raise BenchError(f"preset '{resolved['name']}' runs in threat model '{want}', not '{threat_model}': pass --threat-model {want}")


@contextmanager
def batchnorm_batch_stats(net: nn.Module, enabled: bool = True) -> Iterator[None]:
    """BatchNorm layers in train mode (batch statistics) with running statistics left untouched."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not enabled or not bns:
        yield
        return
    saved = [(m.training, m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.train()
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for m, (was, mom, nbt) in zip(bns, saved):
            m.train(was)
            m.momentum = mom
            if nbt is not None:
                m.num_batches_tracked.copy_(nbt)


class SpikeDomainModel(nn.Module):
    """An adapter's network fed with encoded spike tensors ``[N, T*C, H, W]`` instead of images.

    Everything the engine and the attacks use (``neurons``, ``backward_rule``, ``own_rule``, ``seed``,
    ``reseed``, ...) is the wrapped adapter's; only the input domain and BatchNorm's crafting mode differ.
    """

    def __init__(self, adapter: nn.Module, in_shape: tuple[int, int, int], craft_bn: str = "train") -> None:
        super().__init__()
        if craft_bn not in CRAFT_BN_MODES:
            raise BenchError(f"craft_bn must be one of {CRAFT_BN_MODES}, got {craft_bn!r}")
        self.adapter = adapter
        self.in_shape = tuple(int(s) for s in in_shape)
        self.craft_bn = craft_bn
        self._stochastic_detected: bool | None = None

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "adapter":
                raise
            return getattr(self.adapter, name)

    def to_sequence(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, T*C, H, W]`` -> ``[T, N, C, H, W]``."""
        t = int(self.adapter.time_steps)
        c, h, w = self.in_shape
        if z.dim() != 4 or z.shape[1] != t * c or tuple(z.shape[2:]) != (h, w):
            raise BenchError(f"spike-domain input must be [N, T*C={t * c}, {h}, {w}], got {tuple(z.shape)}")
        return z.view(z.shape[0], t, c, h, w).transpose(0, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        crafting = torch.is_grad_enabled() and z.requires_grad
        functional.reset_net(self.adapter.net)
        seq = self.to_sequence(z)
        with batchnorm_batch_stats(self.adapter.net, enabled=crafting and self.craft_bn == "train"):
            out = self.adapter.net(seq)
        return out.mean(0)

    @torch.no_grad()
    def state_diff(self, z: torch.Tensor, other: torch.Tensor) -> float:
        """Flag 6's state-leak measurement in the spike domain: :meth:`bench.adapter.SNNAdapter.state_diff`
        run through this wrapper's forward (the wrapped adapter's own would be fed spike tensors as images)."""
        return SNNAdapter.state_diff(self, z, other)  # type: ignore[arg-type]

    @property
    def declared_stochastic(self) -> bool:
        return False  # the encoding is done once, outside the attacked function

    @property
    def is_stochastic(self) -> bool:
        return bool(self._stochastic_detected)

    @torch.no_grad()
    def detect_stochastic(self, z: torch.Tensor, repeats: int = 5) -> bool:
        ref = self(z)
        self._stochastic_detected = any(not torch.equal(ref, self(z)) for _ in range(repeats - 1))
        return self._stochastic_detected


@torch.no_grad()
def encode_split(adapter: nn.Module, split: Split, batch_size: int = 500) -> Split:
    """The split with every image replaced by its encoded spike tensor, ``[N, T*C, H, W]`` (step-major)."""
    if getattr(adapter, "declared_stochastic", False):
        raise BenchError("the spike-domain threat model needs a deterministic encoder (phase or direct), not a stochastic one")
    dev = next(adapter.parameters()).device
    parts = []
    for i in range(0, len(split), batch_size):
        seq = adapter.encode(split.x[i : i + batch_size].to(dev)).detach()  # [T, n, C, H, W]
        parts.append(seq.transpose(0, 1).reshape(seq.shape[1], -1, *seq.shape[3:]).cpu())
    x = torch.cat(parts) if parts else split.x.new_zeros((0, adapter.time_steps * split.x.shape[1], *split.x.shape[2:]))
    return Split(x.contiguous(), split.y, split.indices, split.name)


def to_spike_domain(adapter: nn.Module, split: Split, settings: dict[str, Any]) -> tuple[SpikeDomainModel, Split]:
    """(model on spike tensors, encoded split) for a threat model whose ``domain`` is ``spike``."""
    model = SpikeDomainModel(adapter, tuple(split.x.shape[1:]), craft_bn=settings["craft_bn"])
    return model, encode_split(adapter, split)
