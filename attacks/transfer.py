"""Transfer attacks: adversarial examples crafted on a source model, scored on the model under attack.

Sources:

* ``ann-twin``: the model's ANN twin, i.e. the same weights with every spiking neuron replaced by the
  activation ``clamp(x_t / theta, 0, 1)`` of its input current ``x_t`` (``x_t`` as in
  :mod:`attacks.temporal_rules`: the neuron's own input gain applied). This is the HART code's ANN mode
  (hzc1208/HART_Attack ``models/layers.py``: ``qcfs`` = ``clamp(x, 0, 1)``, used when T = 0) without its
  8-level quantisation, whose straight-through gradient is the identity anyway. The twin is a gradient
  source only: it is built by swapping each neuron's temporal loop for the duration of the gradient
  computation and restoring it, never registered as a backward rule (it changes the forward).
* a zoo model id, a list of ids (the first that exists, differs from the model under attack and shares its
  data set), or ``auto``: the zoo's ``baseline`` family of the same data set (lowest id that is not the
  model itself), else any other model of that data set. The chosen id is recorded in the attack's info.

The attack is PGD on the source (random start, ``steps`` sign steps of ``step_size_ratio * eps``, CE loss,
EOT over the source's randomness); every iterate is scored on the target, and a point misclassified by
the target at any iterate is returned there (best iterate on the target, "no silent success").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from attacks.base import Attack, project, register_attack
from attacks.temporal_rules import input_current
from bench.adapter import SNNAdapter
from bench.errors import BenchError

ANN_TWIN = "ann-twin"


class AnnActivation:
    """The ANN twin's activation in place of a spiking neuron's temporal loop: ``clamp(x_t/theta, 0, 1)``."""

    family = ANN_TWIN
    stateful = False
    params: dict[str, float] = {}

    def run(self, node, x_seq: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (input_current(node, x_seq) / node.v_threshold).clamp(0.0, 1.0), v

    def begin_attack(self) -> None:
        pass

    def spec(self) -> str:
        return ANN_TWIN


@contextmanager
def ann_twin(model: SNNAdapter) -> Iterator[SNNAdapter]:
    """Run ``model`` as its ANN twin inside the block; every neuron's rule is restored on exit."""
    saved = [n.rule for n in model.neurons]
    act = AnnActivation()
    for n in model.neurons:
        n.rule = act
    try:
        yield model
    finally:
        for n, r in zip(model.neurons, saved):
            n.rule = r


_SOURCES: dict[tuple[str, str], SNNAdapter] = {}


@dataclass
class SourceZoo:
    """Where transfer sources come from: the cards that may serve as a source, and how to load one.

    The model zoo (a higher layer) installs itself with :func:`set_source_zoo` when it is imported, so this
    module never imports it (tests/test_layers.py)."""

    list_cards: Callable[[], list[Any]]
    load_model: Callable[[str, torch.device], SNNAdapter]


_SOURCE_ZOO: list[SourceZoo] = []


def set_source_zoo(zoo: SourceZoo) -> None:
    """Install the catalogue transfer attacks draw their sources from (``models_zoo.zoo`` does this)."""
    _SOURCE_ZOO[:] = [zoo]
    _SOURCES.clear()


def _source_zoo() -> SourceZoo:
    if not _SOURCE_ZOO:
        raise BenchError("transfer attacks need the model zoo for their source models: import models_zoo.zoo first")
    return _SOURCE_ZOO[0]


def load_source(model_id: str, device: torch.device) -> SNNAdapter:
    """A zoo model as a frozen, eval-mode transfer source (cached per id and device)."""
    key = (model_id, str(device))
    if key not in _SOURCES:
        src = _source_zoo().load_model(model_id, device)
        for p in src.parameters():
            p.requires_grad_(False)
        _SOURCES[key] = src.eval()
    return _SOURCES[key]


def resolve_source(source: Any, model_id: str | None, dataset: str | None) -> str | None:
    """The source id to use for a target (``None`` when no zoo model qualifies)."""
    if source == ANN_TWIN:
        return ANN_TWIN
    cards = {c.id: c for c in _source_zoo().list_cards()}

    def ok(cid: str) -> bool:
        return cid in cards and cid != model_id and (dataset is None or cards[cid].dataset == dataset)

    if source == "auto":
        cands = sorted((c for c in cards.values() if ok(c.id)), key=lambda c: (c.family != "baseline", c.id))
        return cands[0].id if cands else None
    ids = [source] if isinstance(source, str) else list(source) if isinstance(source, (list, tuple)) else None
    if not ids:
        raise BenchError(f"transfer source must be 'ann-twin', 'auto', a zoo id or a list of zoo ids, got {source!r}")
    unknown = [i for i in ids if i not in cards]
    if len(unknown) == len(ids):
        raise BenchError(f"transfer source(s) {unknown} are not in the zoo: see `snnbench zoo list`")
    return next((i for i in ids if ok(i)), None)


@register_attack("transfer")
@dataclass
class Transfer(Attack):
    """Transfer attack from the ANN twin or another zoo model (module docstring)."""

    source: Any = ANN_TWIN
    steps: int = 20
    step_size_ratio: float = 0.25
    source_rule: Any = "own"
    random_start: bool = True
    name: str = "transfer"
    category = "transfer"

    def _grad(self, model: SNNAdapter, src_id: str, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if src_id == ANN_TWIN:
            with ann_twin(model):
                return self.loss_and_grad(model, x_adv, y)[1]
        src = load_source(src_id, x_adv.device)
        with src.backward_rule(self.source_rule):
            return self.loss_and_grad(src, x_adv, y)[1]

    def _perturb(self, model, x, y, eps, generator):
        ctx = getattr(self, "context", {}) or {}
        src_id = resolve_source(self.source, ctx.get("model_id"), ctx.get("dataset"))
        self.info["source"] = src_id if src_id else "none: no other zoo model of this data set"
        if eps == 0 or len(y) == 0 or src_id is None:
            return x.clone()
        view = (-1, *[1] * (x.dim() - 1))
        if self.random_start:
            noise = torch.rand(x.shape, generator=generator, device="cpu").to(x)
            x_adv = project(x + (2 * noise - 1) * eps, x, eps)
        else:
            x_adv = x.clone()
        best = x_adv.clone()
        found = torch.zeros(len(y), dtype=torch.bool, device=x.device)
        step = self.step_size_ratio * eps
        for _ in range(int(self.steps)):
            g = self._grad(model, src_id, x_adv, y)
            x_adv = project(x_adv + step * g.sign(), x, eps)
            with torch.no_grad():
                wrong = (model(x_adv).argmax(1) != y) & ~found
            self.stats.forwards += len(y)
            best[wrong] = x_adv[wrong]
            found |= wrong
        return torch.where(found.view(view), best, x_adv)
