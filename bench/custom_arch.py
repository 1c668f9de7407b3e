"""Custom architectures: a card whose ``architecture`` is ``path/to/file.py:factory``.

TRUST BOUNDARY. Building such a model imports the submitter's Python file and calls its factory: that
code runs with the permissions of whoever runs snnbench (it can read and write files, open sockets...).
Weights are still loaded weights-only, but the *architecture* is code. Read the file before you build
it; ``snnbench submit`` refuses such a card unless ``--trust-code`` is given, and every card that uses
custom code is marked (``ModelCard.summary()["custom_code"]``, shown on the leaderboard).

Contract for the file: ``factory(**architecture_args)`` returns an ``nn.Module`` that maps a
``[T, N, C, H, W]`` input sequence to ``[T, N, K]`` logits (``io_contract = "time-major"``, ``step_mode = "m"``;
with ``step_mode = "s"`` in the card it maps ``[N, C, H, W]`` to ``[N, K]`` per time step), or that owns its
time loop and encoding and maps images ``[N, C, H, W]`` to ``[N, K]`` (``io_contract = "image"``, as
spikingjelly's tutorial models do; absent from the card, the contract is detected, see
:mod:`bench.adapter`), and whose spiking neurons are
spikingjelly ``IFNode`` / ``LIFNode`` / ``ParametricLIFNode`` (the adapter instruments those to let the
attacker choose the backward rule). The path is relative to the card file; the file must be a single
self-contained module (it may import torch, spikingjelly and the standard library).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from torch import nn

from bench.errors import BenchError

SEPARATOR = ".py:"


def is_custom(architecture: str) -> bool:
    """True when a card's architecture names a Python file and a factory (``file.py:factory``)."""
    return SEPARATOR in architecture


def split_spec(architecture: str) -> tuple[str, str]:
    """``"dir/model.py:build"`` -> (``"dir/model.py"``, ``"build"``)."""
    path, _, factory = architecture.rpartition(":")
    if not path.endswith(".py") or not factory.isidentifier():
        raise BenchError(
            f"custom architecture '{architecture}' must be 'path/to/file.py:factory' "
            "(a .py file relative to the card, then a function name)"
        )
    return path, factory


def code_path(architecture: str, card_path: Path | None) -> Path:
    """The Python file of a custom architecture, resolved relative to the card file."""
    rel, _ = split_spec(architecture)
    p = Path(rel)
    if not p.is_absolute() and card_path is not None:
        p = card_path.parent / p
    return p.resolve()


def code_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_custom(architecture: str, card_path: Path | None, architecture_args: dict[str, Any], model_id: str = "model") -> nn.Module:
    """Import the card's Python file (this RUNS its code) and return ``factory(**architecture_args)``."""
    rel, factory_name = split_spec(architecture)
    path = code_path(architecture, card_path)
    if not path.is_file():
        raise BenchError(f"model '{model_id}': custom architecture file {path} not found: 'architecture' is relative to the card file")
    mod_name = f"snnbench_custom_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"model '{model_id}': cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and typing need the module registered while it executes
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the submitter's code: any failure is reported as one line
        sys.modules.pop(mod_name, None)
        raise BenchError(f"model '{model_id}': importing {path.name} failed: {type(e).__name__}: {e}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise BenchError(f"model '{model_id}': {path.name} has no function '{factory_name}': fix the part after ':' in 'architecture'")
    try:
        net = factory(**architecture_args)
    except Exception as e:
        raise BenchError(
            f"model '{model_id}': {path.name}:{factory_name}(**architecture_args) failed: {type(e).__name__}: {e}"
        ) from None
    if not isinstance(net, nn.Module):
        raise BenchError(f"model '{model_id}': {path.name}:{factory_name} must return a torch.nn.Module, got {type(net).__name__}")
    return net


def build_custom_from_card(card: Any) -> nn.Module:
    """:func:`build_custom` for a :class:`~models_zoo.cards.ModelCard` (what ``zoo.build_net`` dispatches to)."""
    return build_custom(card.architecture, card.path, dict(card.data.get("architecture_args", {})), card.id)
