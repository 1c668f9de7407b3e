"""Custom architectures: a card whose ``architecture`` is ``path/to/file.py:factory``.

TRUST BOUNDARY. Building such a model imports the submitter's Python file and calls its factory: that
code runs with the permissions of whoever runs snnbench (it can read and write files, open sockets...).
Weights are still loaded weights-only, but the *architecture* is code. Read the file before you build
it. Every command that can build such a model (``eval``, ``compare``, ``zoo validate``, ``analyze``,
``submit``, ``shard``, ``plot mpd``, ``perf``) refuses unless ``--trust-code`` is given: the import itself is
gated here (:func:`build_custom` raises unless :func:`trust_code` enabled it, or the environment variable
``SNNBENCH_TRUST_CODE=1`` is set, which is how ``--trust-code`` reaches worker processes). Every card that
uses custom code is marked (``ModelCard.summary()["custom_code"]``, shown on the leaderboard). The file
must resolve (symlinks included) inside the card's folder.

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

import contextlib
import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from bench.errors import BenchError

SEPARATOR = ".py:"
TRUST_ENV = "SNNBENCH_TRUST_CODE"
_trusted = False


def code_trusted() -> bool:
    return _trusted or os.environ.get(TRUST_ENV) == "1"


def set_trust(enabled: bool) -> None:
    """Allow (or forbid) importing custom architecture code in this process and the workers it spawns."""
    global _trusted
    _trusted = bool(enabled)
    if enabled:
        os.environ[TRUST_ENV] = "1"
    else:
        os.environ.pop(TRUST_ENV, None)


@contextlib.contextmanager
def trust_code(enabled: bool = True) -> Iterator[None]:
    """Context in which custom code may be imported (what ``--trust-code`` turns on)."""
    before, env = _trusted, os.environ.get(TRUST_ENV)
    set_trust(enabled)
    try:
        yield
    finally:
        set_trust(before)
        if env is not None:
            os.environ[TRUST_ENV] = env


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
    """The Python file of a custom architecture, resolved (symlinks included) inside the card's folder."""
    rel, _ = split_spec(architecture)
    if card_path is None:
        return Path(rel).resolve()
    base = card_path.parent.resolve()
    p = (base / rel).resolve()
    if not p.is_relative_to(base):
        raise BenchError(f"custom architecture file '{rel}' resolves to {p}, outside the card's folder {base}: "
                         "put the .py file beside the card (no absolute paths, '..' or symlinks out of the folder)")
    return p


def code_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_custom(architecture: str, card_path: Path | None, architecture_args: dict[str, Any], model_id: str = "model") -> nn.Module:
    """Import the card's Python file (this RUNS its code) and return ``factory(**architecture_args)``."""
    rel, factory_name = split_spec(architecture)
    path = code_path(architecture, card_path)
    if not path.is_file():
        raise BenchError(f"model '{model_id}': custom architecture file {path} not found: 'architecture' is relative to the card file")
    if not code_trusted():
        raise BenchError(f"model '{model_id}': architecture '{architecture}' is Python code that snnbench would import and run "
                         f"with your permissions: read {path} first, then rerun with --trust-code")
    mod_name = f"snnbench_custom_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"model '{model_id}': cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and typing need the module registered while it executes
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:  # sys.exit() in the submitter's code must not end snnbench silently
        sys.modules.pop(mod_name, None)
        raise BenchError(f"model '{model_id}': importing {path} called sys.exit({e.code!r}): custom code must not exit") from None
    except Exception as e:  # the submitter's code: any failure is reported as one line
        sys.modules.pop(mod_name, None)
        raise BenchError(f"model '{model_id}': importing {path} failed: {type(e).__name__}: {e}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise BenchError(f"model '{model_id}': {path.name} has no function '{factory_name}': fix the part after ':' in 'architecture'")
    try:
        net = factory(**architecture_args)
    except SystemExit as e:
        raise BenchError(f"model '{model_id}': {path.name}:{factory_name} called sys.exit({e.code!r}): custom code must not exit") from None
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
