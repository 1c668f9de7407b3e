"""BPDA: Backward Pass Differentiable Approximation (Athalye, Carlini, Wagner; ICML 2018, Sec. 4.1).

A defense whose forward contains a non-differentiable or gradient-blocking part ``f`` (input quantization,
a JPEG-like transform, an encoder that detaches) gives zero or useless input gradients under every
surrogate of the spiking neurons. BPDA runs the true forward and, in the backward pass only, replaces
``f`` by a differentiable approximation ``g`` with ``g(x) ~ f(x)``; for a transform that approximately
preserves its input (``f(x) ~ x``) the identity (``g(x) = x``: the straight-through estimator) is the
approximation the paper uses (Sec. 4.1.1, "the gradient of f is approximated by the gradient of the
identity"). The forward value of ``x + (f(x) - x).detach()`` is exactly ``f(x)`` and its gradient is the
identity's.

This module finds such parts automatically on a model it has never seen, and routes gradient around them:

* **modules**: a probe forward records the input and output of every module of the network (the root and
  spiking neurons excluded) whose output has the shape of its input; a module is *blocking* when its input
  carries a gradient but its output does not (it detaches) or its local vector-Jacobian product with a
  random direction is zero or non-finite (``round``, ``floor``, ``sign``, thresholding). Each blocking
  module gets a forward hook that returns ``input + (output - input).detach()``. The probe is repeated
  (a module behind a detach shows no input gradient until the detach before it is bypassed), up to
  :data:`MAX_ROUNDS` rounds.
* **the encoder**: when the adapter's encoding of the image ``[N, C, H, W] -> [T, N, C, H, W]`` blocks the
  gradient (a detaching phase / latency / Poisson coder without a pass-through), it is replaced in the
  backward by the direct encoding's (the image repeated T times), i.e. by its expectation for a rate code
  (``E[spike] = x``) and by the identity for any other code. The benchmark's own encoders already have
  explicit differentiable backwards: ``direct`` is the identity repeated over T and ``poisson`` is
  spikingjelly's ``PoissonPass`` (identity backward, the expectation of the Bernoulli draw).

What BPDA cannot reach (documented in docs/flags.md): a gradient-blocking operation written inline in the
network's ``forward`` (not inside its own module), a blocking module whose output shape differs from its
input's (no identity exists; a hand-written approximation is needed), and defenses whose forward is an
optimisation loop or whose gradient is merely *useless* (exploding, noisy) rather than zero. For those the
gradient-free fallback (Square) of every preset is the backstop (:mod:`bench.masking`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from bench.neurons import SpikingNeuron

#: probe rounds (each round can uncover a blocking module hidden behind an earlier one)
MAX_ROUNDS = 4


def _straight_through(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
    """Forward hook: the module's output in the forward, the identity's gradient in the backward."""
    if not inputs or not isinstance(inputs[0], torch.Tensor) or not isinstance(output, torch.Tensor):
        return output
    x = inputs[0]
    if x.shape != output.shape or not x.requires_grad:
        return output
    return x.to(output.dtype) + (output - x.to(output.dtype)).detach()


def _blocks(inp: torch.Tensor, out: torch.Tensor, generator: torch.Generator) -> bool:
    """True when ``out`` passes no usable gradient back to ``inp`` (detached, zero or non-finite VJP)."""
    if not inp.requires_grad:
        return False  # cannot tell: the block lies upstream
    if not out.requires_grad:
        return True
    v = torch.randn(out.shape, generator=generator).to(out)
    (g,) = torch.autograd.grad(out, inp, grad_outputs=v, retain_graph=True, allow_unused=True)
    return g is None or not bool(torch.isfinite(g).all()) or bool((g == 0).all())


def _probe_modules(model: Any, x: torch.Tensor, skip: set[int]) -> list[str]:
    """Names of the shape-preserving modules of ``model.net`` that block the gradient in one probe forward."""
    names = {id(m): n for n, m in model.net.named_modules()}
    records: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    handles = []

    def rec(m: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor) and inputs[0].shape == output.shape:
            records.append((m, inputs[0], output))

    for m in model.net.modules():
        if m is model.net or isinstance(m, SpikingNeuron) or id(m) in skip:
            continue
        handles.append(m.register_forward_hook(rec))
    try:
        with torch.enable_grad():
            xa = x.detach().clone().requires_grad_(True)
            model(xa)
            gen = torch.Generator().manual_seed(0)
            blocking = [m for m, i, o in records if o.dtype.is_floating_point and _blocks(i, o, gen)]
    finally:
        for h in handles:
            h.remove()
    # hook the innermost blocking modules only: a parent that blocks because its child does is fixed with it
    inner = []
    for m in blocking:
        if not any(c is not m and any(c is b for b in blocking) for c in m.modules()):
            if all(m is not b for b in inner):
                inner.append(m)
    return [names[id(m)] for m in inner]


def encoder_blocks(model: Any, x: torch.Tensor) -> bool:
    """True when the adapter's encoding of ``x`` gives no usable gradient back to ``x``."""
    with torch.enable_grad():
        xa = x.detach().clone().requires_grad_(True)
        seq = model.encode(xa)
        return _blocks(xa, seq, torch.Generator().manual_seed(0))


@contextmanager
def bpda(model: Any, x: torch.Tensor, info: dict[str, Any] | None = None) -> Iterator[list[str]]:
    """Inside the block, every gradient-blocking part of ``model`` found on the probe ``x`` is bypassed in the
    backward (identity / expectation), its forward unchanged. Yields the names of the parts bypassed
    (``"<encoder>"`` for the encoder); ``info["bpda"]`` records them. Hooks are removed on exit."""
    bypassed: list[str] = []
    probe = x[: min(len(x), 16)]
    with ExitStack() as stack:
        if hasattr(model, "encode") and encoder_blocks(model, probe):
            original = model.encode

            def encode(inp: torch.Tensor) -> torch.Tensor:
                seq = original(inp)
                direct = inp.unsqueeze(0).expand(model.time_steps, *inp.shape).to(seq.dtype)
                if direct.shape != seq.shape:
                    return seq
                return direct + (seq - direct).detach()

            model.encode = encode
            stack.callback(lambda: delattr(model, "encode"))  # the instance attribute shadowed the method
            bypassed.append("<encoder>")
        hooked: set[int] = set()
        modules = dict(model.net.named_modules())
        for _ in range(MAX_ROUNDS):
            found = _probe_modules(model, probe, hooked)
            if not found:
                break
            for name in found:
                m = modules[name]
                hooked.add(id(m))
                stack.enter_context(_removing(m.register_forward_hook(_straight_through)))
                bypassed.append(name)
        if info is not None:
            info["bpda"] = ",".join(bypassed) if bypassed else "(nothing blocking found)"
        yield bypassed


@contextmanager
def _removing(handle: Any) -> Iterator[None]:
    try:
        yield
    finally:
        handle.remove()
