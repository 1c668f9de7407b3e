"""Evaluate one model under one preset, threat model and eps: resumable, reusable, with provenance.

``evaluate(model, preset, eps)`` writes one JSON per (model, preset, threat model, eps, n_points) under
``reports/results/<dataset>/<model_id>/`` and the per-point outcomes beside it (CSV). Points run in
chunks; each finished chunk is saved atomically under ``results/.partial/<config_hash>/``, so a killed
evaluation resumes from its last finished chunk and ends with the same result. Rerunning an evaluation
whose resolved configuration hash matches a stored result reuses it (``force=True`` recomputes).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from bench import flags as F
from bench.config import config_hash, load_config, resolve_preset, results_dir, threat_model_config
from bench.data import load_dataset
from bench.device import resolve_device
from bench.engine import BROKE, NOT_RUN, ChunkOutcome, predict, run_chunk
from bench.errors import BenchError
from bench.io import atomic_write_json, atomic_write_text
from bench.provenance import provenance
from models_zoo.cards import ModelCard
from models_zoo.zoo import get_card, load_model

ENGINE_VERSION = 1
RESULT_SCHEMA = 1


def result_stem(card: ModelCard, preset: dict[str, Any], tm: str, eps: float, n: int) -> str:
    return f"{preset['name']}-v{preset['version']}_{tm}_eps{eps:g}_n{n}"


def result_path(root: Path, card: ModelCard, preset: dict[str, Any], tm: str, eps: float, n: int) -> Path:
    return root / card.dataset / card.id / (result_stem(card, preset, tm, eps, n) + ".json")


def _chunk_to_json(o: ChunkOutcome, seconds: float) -> dict[str, Any]:
    return {
        "clean_pred": o.clean_pred.tolist(),
        "clean_correct": o.clean_correct.astype(int).tolist(),
        "robust": o.robust.astype(int).tolist(),
        "broken_by": [str(b) for b in o.broken_by],
        "per_attack": {k: v.astype(int).tolist() for k, v in o.per_attack.items()},
        "violations": o.violations,
        "stats": o.stats,
        "nonfinite_logits": o.nonfinite_logits,
        "max_linf": o.max_linf,
        "seconds": seconds,
    }


def _chunk_from_json(d: dict[str, Any]) -> tuple[ChunkOutcome, float]:
    return (
        ChunkOutcome(
            clean_pred=np.asarray(d["clean_pred"], dtype=np.int64),
            clean_correct=np.asarray(d["clean_correct"], dtype=bool),
            robust=np.asarray(d["robust"], dtype=bool),
            broken_by=np.asarray(d["broken_by"], dtype=object),
            per_attack={k: np.asarray(v, dtype=np.int8) for k, v in d["per_attack"].items()},
            violations=d["violations"],
            stats=d["stats"],
            nonfinite_logits=d["nonfinite_logits"],
            max_linf=d["max_linf"],
        ),
        float(d["seconds"]),
    )


def _merge(chunks: list[ChunkOutcome], names: list[str]) -> ChunkOutcome:
    """Concatenate chunks; attack columns in preset order (stored chunks come back key-sorted)."""
    stats: dict[str, dict[str, int]] = {n: {} for n in names}
    for c in chunks:
        for n in names:
            for k, v in c.stats[n].items():
                stats[n][k] = stats[n].get(k, 0) + v
    return ChunkOutcome(
        clean_pred=np.concatenate([c.clean_pred for c in chunks]),
        clean_correct=np.concatenate([c.clean_correct for c in chunks]),
        robust=np.concatenate([c.robust for c in chunks]),
        broken_by=np.concatenate([c.broken_by for c in chunks]),
        per_attack={n: np.concatenate([c.per_attack[n] for c in chunks]) for n in names},
        violations={n: sum(c.violations[n] for c in chunks) for n in names},
        stats=stats,
        nonfinite_logits=sum(c.nonfinite_logits for c in chunks),
        max_linf={n: max(c.max_linf[n] for c in chunks) for n in names},
    )


def summarise(o: ChunkOutcome, preset: dict[str, Any]) -> dict[str, Any]:
    """Accuracies in percent: clean, per-point worst case, and per attack (standalone and cumulative)."""
    n = len(o.robust)
    pct = lambda mask: round(100.0 * float(np.mean(mask)), 4) if n else 0.0  # noqa: E731
    per_attack: dict[str, Any] = {}
    cumulative = o.clean_correct.copy()
    for spec in preset["attacks"]:
        name = spec["name"]
        status = o.per_attack[name]
        cumulative = cumulative & (status != BROKE)
        standalone = spec["on"] == "all"
        per_attack[name] = {
            "attack": spec["attack"],
            "rule": spec["rule"] if isinstance(spec["rule"], str) else json.dumps(spec["rule"], sort_keys=True),
            "on": spec["on"],
            "n_attacked": int((status != NOT_RUN).sum()),
            "n_broken": int((status == BROKE).sum()),
            "robust_acc": pct(o.clean_correct & (status != BROKE)) if standalone else None,
            "cumulative_robust_acc": pct(cumulative),
            "stats": o.stats[name],
        }
    counts = pd.Series(o.broken_by).replace("", "robust").value_counts().sort_index()
    own = preset.get("own_sg_attack")
    return {
        "n_points": n,
        "clean_acc": pct(o.clean_correct),
        "robust_acc": pct(o.robust),
        "own_sg_robust_acc": per_attack[own]["robust_acc"] if own else None,
        "per_attack": per_attack,
        "broken_by_counts": {str(k): int(v) for k, v in counts.items()},
    }


def points_frame(o: ChunkOutcome, indices: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "index": indices.astype(np.int64),
            "label": labels.astype(np.int64),
            "clean_pred": o.clean_pred,
            "clean_correct": o.clean_correct.astype(int),
            "robust": o.robust.astype(int),
            "broken_by": o.broken_by.astype(str),
        }
    )
    for name, status in o.per_attack.items():
        df[f"attack:{name}"] = status.astype(int)
    return df


def evaluate(
    model: str | ModelCard,
    preset: str = "quick",
    eps: float | None = None,
    threat_model: str = "Linf",
    limit: int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    seed: int | None = None,
    results_root: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> tuple[dict[str, Any], Path, bool]:
    """Run (or reuse) one evaluation; return (result, path of its JSON, whether it was reused)."""
    cfg = load_config()
    card = model if isinstance(model, ModelCard) else get_card(model)
    tm = threat_model_config(threat_model, cfg)
    eps = float(tm["eps"] if eps is None else eps)
    if not math.isfinite(eps) or eps < 0 or eps > 1:
        raise BenchError(f"--eps must be in [0, 1] (images live in [0, 1]), got {eps}")
    resolved = resolve_preset(preset, cfg)
    seed = int(cfg["defaults"]["seed"] if seed is None else seed)
    batch_size = int(batch_size or cfg["defaults"]["batch_size"])
    if batch_size < 1:
        raise BenchError(f"--batch-size must be >= 1, got {batch_size}")
    chunk_size = int(cfg["defaults"]["chunk_size"])
    ds = load_dataset(card.dataset)
    test = ds.test.head(limit)
    n = len(test)
    config = {
        "engine_version": ENGINE_VERSION,
        "model_id": card.id,
        "model_sha256": card.sha256,
        "dataset": card.dataset,
        "split_hash": test.index_hash,
        "n_points": n,
        "threat_model": threat_model,
        "eps": eps,
        "preset": resolved,
        "seed": seed,
        "chunk_size": chunk_size,
    }
    h = config_hash(config)
    root = Path(results_root) if results_root else results_dir(cfg)
    out = result_path(root, card, resolved, threat_model, eps, n)
    if out.is_file() and not force:
        try:
            existing = json.loads(out.read_text())
        except json.JSONDecodeError:
            existing = {}
        if existing.get("config_hash") == h:
            return existing, out, True

    dev = resolve_device(device)
    t_start = time.time()
    adapter = load_model(card, dev, seed=seed)
    stochastic = adapter.detect_stochastic(test.x[: min(16, n)].to(dev))

    partial = root / ".partial" / h
    partial.mkdir(parents=True, exist_ok=True)
    n_chunks = math.ceil(n / chunk_size)
    chunks: list[ChunkOutcome] = []
    seconds = 0.0
    bar = tqdm(total=n_chunks * len(resolved["attacks"]), desc=f"{card.id} {preset} eps={eps:g}", disable=not progress, unit="attack")
    for ci in range(n_chunks):
        f = partial / f"chunk_{ci:05d}.json"
        if f.is_file():
            outcome, secs = _chunk_from_json(json.loads(f.read_text()))
            bar.update(len(resolved["attacks"]))
        else:
            t0 = time.time()
            sl = slice(ci * chunk_size, (ci + 1) * chunk_size)
            outcome = run_chunk(
                adapter, test.x[sl], test.y[sl], eps, resolved["attacks"], batch_size, seed, ci,
                on_attack_done=lambda _name: bar.update(1),
            )
            secs = time.time() - t0
            atomic_write_json(f, _chunk_to_json(outcome, secs))
        chunks.append(outcome)
        seconds += secs
    bar.close()
    merged = _merge(chunks, [a["name"] for a in resolved["attacks"]])
    summary = summarise(merged, resolved)

    # -- flags ------------------------------------------------------------------------------
    probe = test.x[: min(64, n)].to(dev)
    _, probe_logits = predict(adapter, probe, batch_size)
    kinds = {a["name"]: a["attack"] for a in resolved["attacks"]}
    standalone = {k: v["robust_acc"] for k, v in summary["per_attack"].items() if v["robust_acc"] is not None}
    own_attacks = [a["name"] for a in resolved["attacks"] if a["rule"] == "own"]
    eot = {a["name"]: (max(int(a.get("eot_draws", 1)), 10) if stochastic else int(a.get("eot_draws", 1))) for a in resolved["attacks"]}
    raised = [
        F.eps_ball_violation(merged.violations, merged.max_linf, eps),
        F.clean_vs_claim(summary["clean_acc"], float(card.claimed_clean_acc), n == len(ds.test)),
        F.probability_outputs(probe_logits),
        F.stochastic_without_eot(stochastic, eot),
        F.state_leak(adapter, probe[:8], probe[8:16] if len(probe) >= 16 else probe[:8].flip(0)),
        F.zero_gradients(merged.stats, own_attacks),
        F.single_step_beats_iterative(standalone, kinds),
    ]
    if merged.nonfinite_logits:
        raise BenchError(f"model '{card.id}' produced NaN/inf logits on {merged.nonfinite_logits} clean points: fix the model")
    flags = [f.to_dict() for f in raised if f is not None]

    wall = time.time() - t_start
    points_file = out.with_suffix(".points.csv")
    result = {
        "schema": RESULT_SCHEMA,
        "model_id": card.id,
        "family": card.family,
        "dataset": card.dataset,
        "threat_model": threat_model,
        "eps": eps,
        "preset": resolved["name"],
        "preset_version": resolved["version"],
        "config_hash": h,
        "n_available": len(ds.test),
        "stochastic": stochastic,
        **summary,
        "flags": flags,
        "points_file": points_file.name,
        "provenance": provenance(dev, seed, batch_size, chunk_size, wall) | {"attack_seconds": round(seconds, 2)},
        "config": config,
    }
    atomic_write_text(points_file, points_frame(merged, test.indices, test.y.numpy()).to_csv(index=False))
    atomic_write_json(out, result)
    shutil.rmtree(partial, ignore_errors=True)
    return result, out, False
