"""Scoring forwards shared by the engine and the stochastic-model scoring (:mod:`bench.stochastic`):
fresh forwards under the model's own rule, evaluation mode, and the per-pass reseeding (common random
numbers) that makes pass r of every scoring see the same random draws.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from bench.adapter import SNNAdapter


@contextmanager
def evaluation_mode(model: SNNAdapter) -> Iterator[SNNAdapter]:
    """Eval mode and frozen parameters for the duration of an evaluation; both restored on exit."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


@torch.no_grad()
def predict(model: SNNAdapter, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions [N], logits [N, K]) from fresh forwards under the model's own rule."""
    dev = next(model.parameters()).device
    logits = []
    with model.backward_rule("own"):
        for i in range(0, len(x), batch_size):
            logits.append(model(x[i : i + batch_size].to(dev)).float().cpu())
    out = torch.cat(logits) if logits else torch.empty(0)
    return out.argmax(1), out



@contextmanager
def _pass_seed(model: SNNAdapter, seed: int) -> Iterator[None]:
    """Pass ``r`` of every scoring uses the same random draws (common random numbers): the adapter's
    encoder and the global RNG are reseeded, and both are restored afterwards."""
    old = model.seed
    model.reseed(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        model.reseed(old)
