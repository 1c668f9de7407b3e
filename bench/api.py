"""The Python API: ``bench.benchmark(net, ...)``, one evaluation of an in-memory model from a notebook.

Modelled on RobustBench's ``benchmark(model, dataset=..., threat_model=..., eps=...)`` (Croce et al.,
"RobustBench: a standardized adversarial robustness benchmark", NeurIPS 2021 Datasets and Benchmarks).
It runs exactly what ``snnbench eval`` runs (:func:`bench.evaluate.evaluate`: the input-contract and
state-leak check, per-model tuning, the preset's cascade, the eps = 0 check, the twelve sanity flags,
provenance) on a deep copy of ``net`` (the caller's module is left as it was: the adapter swaps its
neurons for instrumented twins) and returns a typed :class:`Result`. Results are written only when
``results_dir`` is given; otherwise the evaluation runs in a temporary folder that is removed afterwards.

This module sits above the engine: it imports :mod:`bench.evaluate` and :mod:`bench.adapter`; nothing in
the engine imports it.
"""

from __future__ import annotations

import copy
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bench.adapter import IO_CONTRACTS, SNNAdapter
from bench.config import dataset_config, load_config
from bench.errors import BenchError
from models_zoo.cards import ModelCard


@dataclass(frozen=True)
class Result:
    """One evaluation. Accuracies are percentages over ``n_points`` test points.

    ``robust_acc`` is the per-point worst case over every attack of the preset; ``per_attack`` has one row
    per attack (its kind, backward rule, standalone and cumulative robust accuracy, points attacked and
    broken); ``points`` has one row per test point (``index``, ``label``, ``clean_pred``, ``clean_correct``,
    ``robust``, ``broken_by`` and one ``attack:<name>`` status column per attack); ``raw`` is the full
    result record, the JSON that ``snnbench eval`` writes.
    """

    model_id: str
    dataset: str
    preset: str
    preset_version: int
    threat_model: str
    eps: float
    n_points: int
    clean_acc: float
    robust_acc: float
    own_sg_robust_acc: float | None
    stochastic: bool
    io_contract: str | None
    per_attack: pd.DataFrame
    points: pd.DataFrame
    flags: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)
    path: Path | None = None
    reused: bool = False

    @property
    def flag_ids(self) -> list[int]:
        """The ids of the sanity flags raised (docs/flags.md)."""
        return [int(f["id"]) for f in self.flags]

    def __str__(self) -> str:
        own = "-" if self.own_sg_robust_acc is None else f"{self.own_sg_robust_acc:.2f}"
        flags = " ".join(f"F{i}" for i in self.flag_ids) or "-"
        return (
            f"{self.model_id}: {self.dataset} {self.threat_model} eps={self.eps:g} preset {self.preset} v{self.preset_version} "
            f"n={self.n_points}: clean {self.clean_acc:.2f}, own-SG {own}, worst-case {self.robust_acc:.2f}, flags {flags}"
        )


def per_attack_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The result's ``per_attack`` table as a DataFrame, one row per attack in preset order."""
    cols = ["attack", "rule", "on", "family", "n_attacked", "n_broken", "robust_acc", "cumulative_robust_acc", "robust_acc_given"]
    rows = [{"name": name, **{c: entry.get(c) for c in cols}} for name, entry in result["per_attack"].items()]
    return pd.DataFrame(rows, columns=["name", *cols]).set_index("name")


def module_sha256(net: nn.Module, settings: dict[str, Any]) -> str:
    """A fingerprint of an in-memory model: its class, every state-dict tensor (name, dtype, shape, bytes)
    and the adapter settings (T, encoder, surrogate, contract). It stands in for a checkpoint's sha256 in
    the configuration hash, so a stored result is reused only for the same weights and settings."""
    h = hashlib.sha256()
    h.update(f"{type(net).__module__}.{type(net).__qualname__}|{sorted(settings.items())}".encode())
    for name, t in net.state_dict().items():
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _default_id(net: nn.Module, sha: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", type(net).__name__.lower()).strip("-") or "model"
    return f"{stem}-{sha[:8]}"


def _adapter(
    net: nn.Module, dataset: str, time_steps: int | None, encoder: str, surrogate: str | None, step_mode: str,
    io_contract: str | None, seed: int,
) -> SNNAdapter:
    """Wrap a deep copy of ``net``; detect its contract and, when not given, an image model's T."""
    from bench.data import load_dataset

    probe = load_dataset(dataset).test.x[:16]
    adapter = SNNAdapter(copy.deepcopy(net).cpu(), time_steps, encoder, own_rule=surrogate, step_mode=step_mode,
                         seed=seed, io_contract=io_contract)
    adapter.check_contract(probe, leak=False)  # detects the contract (and an image model's T); evaluate checks again, leak included
    return adapter


def benchmark(
    net: nn.Module | str | ModelCard,
    dataset: str | None = None,
    preset: str | None = None,
    eps: float | None = None,
    threat_model: str | None = None,
    time_steps: int | None = None,
    surrogate: str | None = "atan:alpha=2",
    encoder: str = "direct",
    io_contract: str | None = None,
    step_mode: str = "m",
    limit: int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    seed: int | None = None,
    model_id: str | None = None,
    claimed_clean_acc: float | None = None,
    results_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> Result:
    """Evaluate a spiking network in memory (or a zoo id / card) exactly as ``snnbench eval`` would.

    Args:
        net: a spikingjelly network (its IF / LIF / ParametricLIF neurons are instrumented on a deep copy),
            or a zoo id, submission id or card path (then the card's own settings are used and the model
            arguments below are ignored).
        dataset: a data set of bench.toml (default: ``[defaults] dataset``, mnist5k).
        preset, eps, threat_model: as ``snnbench eval`` (defaults: bench.toml ``[defaults]`` and the threat
            model's primary eps).
        time_steps: T. Optional for a model that owns its time loop (``io_contract="image"``): then the
            number of steps its neurons run per forward.
        surrogate: the model's training surrogate, its "own SG" (``atan:alpha=2`` is spikingjelly's
            ``surrogate.ATan()`` default); None keeps the rule equal to each neuron's spikingjelly surrogate.
        encoder: ``direct`` or ``poisson`` (time-major models; an image model encodes by itself).
        io_contract: ``time-major`` (``[T, N, C, H, W] -> [T, N, K]``), ``image`` (``[N, C, H, W] -> [N, K]``,
            the model owns its loop) or None (detected and checked).
        step_mode: ``m`` or ``s``, how a time-major model consumes time.
        limit, device, batch_size, seed, force, progress: as ``snnbench eval``.
        model_id: the id under which results are stored (default: class name + weight hash).
        claimed_clean_acc: the accuracy the model is claimed to reach (flag 3 compares on the full split).
        results_dir: write the result JSON and per-point CSV there (``reports/results`` to join the
            project's results); None writes nothing.
    """
    from bench.evaluate import evaluate

    cfg = load_config()
    d = cfg["defaults"]
    common = dict(preset=preset or d["preset"], eps=eps, threat_model=threat_model or d["threat_model"], limit=limit,
                  device=device, batch_size=batch_size, seed=seed, force=force, progress=progress)
    if isinstance(net, (str, ModelCard)):
        from models_zoo.lookup import find_card  # zoo id, accepted-submission id, or card path

        card = net if isinstance(net, ModelCard) else find_card(net)
        build = None
        contract = card.data.get("io_contract") or (None if ".py:" in card.architecture else "time-major")
    else:
        if isinstance(net, SNNAdapter):
            raise BenchError("bench.benchmark takes the network itself, not an SNNAdapter: pass adapter.net and its settings")
        if not isinstance(net, nn.Module):
            raise BenchError(f"bench.benchmark takes a torch.nn.Module, a zoo id or a card path, got {type(net).__name__}")
        if io_contract is not None and io_contract not in IO_CONTRACTS:
            raise BenchError(f"io_contract must be one of {', '.join(IO_CONTRACTS)} or None (detected), got {io_contract!r}")
        ds_name = dataset or d["dataset"]
        ds_cfg = dataset_config(ds_name, cfg)
        run_seed = int(d["seed"] if seed is None else seed)
        adapter = _adapter(net, ds_name, time_steps, encoder, surrogate, step_mode, io_contract, run_seed)
        settings = {"time_steps": adapter.time_steps, "encoder": encoder, "surrogate": surrogate, "step_mode": step_mode,
                    "io_contract": adapter.io_contract}
        sha = module_sha256(net, settings)
        card = ModelCard(data={
            "id": model_id or _default_id(net, sha), "family": "in-memory", "paper": "", "dataset": ds_name,
            "architecture": f"in-memory:{type(net).__module__}.{type(net).__qualname__}", "num_classes": int(ds_cfg["num_classes"]),
            "checkpoint": "", "sha256": sha, "size_bytes": 0, "time_steps": adapter.time_steps, "encoder": encoder,
            "step_mode": step_mode, "io_contract": adapter.io_contract, "claimed_clean_acc": claimed_clean_acc,
            "training_surrogate": {"spec": surrogate}, "neuron": {}, "training": {},
        })

        contract = adapter.io_contract

        def build(dev: torch.device, s: int) -> SNNAdapter:
            adapter.reseed(s)
            return adapter.to(dev).eval()

    with tempfile.TemporaryDirectory(prefix="snnbench-api-") as tmp:
        root = Path(results_dir) if results_dir is not None else Path(tmp)
        result, path, reused = evaluate(card, results_root=root, build=build, **common)
        points = pd.read_csv(path.with_name(result["points_file"]))
    return Result(
        model_id=result["model_id"], dataset=result["dataset"], preset=result["preset"], preset_version=int(result["preset_version"]),
        threat_model=result["threat_model"], eps=float(result["eps"]), n_points=int(result["n_points"]),
        clean_acc=float(result["clean_acc"]), robust_acc=float(result["robust_acc"]),
        own_sg_robust_acc=None if result["own_sg_robust_acc"] is None else float(result["own_sg_robust_acc"]),
        stochastic=bool(result["stochastic"]),
        io_contract=contract,
        per_attack=per_attack_frame(result), points=points, flags=list(result["flags"]), raw=result,
        path=path if results_dir is not None else None, reused=reused,
    )
