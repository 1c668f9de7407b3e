"""Evaluate a list of zoo models (the main job, ``snnbench run``), one process per CPU worker.

On a CPU, PyTorch's intra-op threads help these small spiking networks little: two single-threaded
processes, each evaluating its own model, get through the zoo about 1.5-1.8x faster than one process with
two threads (``snnbench run`` prints the total time). Each worker evaluates whole models, writes its
results atomically to their own paths, and returns the result to the parent, which prints it; a model's
result is identical whichever worker computed it (every random draw depends on the seed, chunk and attack
only, see :mod:`bench.shard`). On CUDA, and with ``workers = 1``, models run one after another in this
process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from models_zoo.cards import ModelCard


def default_workers(device: str) -> int:
    """One worker per CPU core, at most 4; one on a GPU (it is shared anyway)."""
    if device.startswith("cuda"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def expected_seconds(card: ModelCard, preset: str) -> float | None:
    """The attack time of a stored result of ``card`` under ``preset`` (any version or eps), if any."""
    import json

    from bench.config import results_dir

    times = []
    for p in sorted((results_dir() / card.dataset / card.id).glob(f"{preset}-v*.json")):
        try:
            prov = json.loads(p.read_text()).get("provenance", {})
        except (OSError, ValueError):
            continue
        secs = prov.get("attack_seconds", prov.get("wall_seconds"))
        if isinstance(secs, (int, float)):
            times.append(float(secs))
    return max(times) if times else None


def slowest_first(cards: list[ModelCard], preset: str = "quick") -> list[ModelCard]:
    """Longest jobs first, so that no worker is left with a long job at the end (LPT scheduling).

    A model's expected time is its stored result's attack time under the same preset when there is one,
    else the mean of the stored times of the other seeds of its recipe (the card's ``family``) under that
    preset: an evaluation's cost is set by the points the attacks cannot break, which a recipe's seeds
    share. Models with neither go first when adversarially trained (``pgd-at`` recipes), then the rest;
    ties are broken by id.
    """
    own = {c.id: expected_seconds(c, preset) for c in cards}
    by_family: dict[str, list[float]] = {}
    for c in cards:
        if own[c.id] is not None:
            by_family.setdefault(c.family, []).append(own[c.id])

    def key(c: ModelCard) -> tuple:
        secs = own[c.id]
        if secs is None and c.family in by_family:
            secs = sum(by_family[c.family]) / len(by_family[c.family])
        adversarial = str(c.training.get("recipe", c.family)).startswith("pgd-at")
        return (secs is not None, -(secs or 0.0), not adversarial, c.id)

    return sorted(cards, key=key)


def _job(card_path: str, kwargs: dict[str, Any], threads: int | None, progress: bool) -> tuple[dict[str, Any], str, bool, dict[str, Any], str, bool]:
    import torch

    from bench.analysis import analyze
    from bench.evaluate import evaluate
    from models_zoo.cards import load_card

    if threads:
        torch.set_num_threads(threads)
    card = load_card(card_path)
    result, path, reused = evaluate(card, progress=progress, **kwargs)
    analysis, apath, areused = analyze(card.id, device=kwargs.get("device", "auto"), batch_size=kwargs.get("batch_size"))
    return result, str(path), reused, analysis, str(apath), areused


def evaluate_models(
    cards: list[ModelCard], workers: int, kwargs: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], str, bool, dict[str, Any], str, bool]]:
    """Yield (result, path, reused, analysis, analysis path, reused) for each card, as they complete."""
    if workers <= 1 or len(cards) <= 1:
        for card in cards:
            yield _job(str(card.path), kwargs, None, True)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_job, str(c.path), kwargs, threads, False) for c in slowest_first(cards, str(kwargs.get("preset", "quick")))]
        for fut in as_completed(futures):
            yield fut.result()

