"""Fixture zoo cards, claims.toml and stored results (with per-point files) in temporary folders, for the
claims-audit and per-budget leaderboard tests. Nothing here runs a model."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from bench.config import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "models_zoo" / "cards" / "baseline-mnist5k-s0.toml"


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def write_card(zoo: Path, model_id: str, recipe: str, seed: int = 0, matched_baseline: str | None = None,
               dataset: str = "mnist5k") -> Path:
    """A schema-valid card (the zoo baseline's fields) with this id, recipe, seed and matched baseline."""
    data = tomllib.loads(TEMPLATE.read_text())
    data.update(id=model_id, family=recipe, dataset=dataset)
    data["training"] = {"recipe": recipe, "seed": seed}
    if matched_baseline:
        data["matched_baseline"] = matched_baseline
    top = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + "\n".join(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()) for k, v in data.items() if isinstance(v, dict)]
    p = zoo / "cards" / f"{model_id}.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(top) + "\n" + "\n".join(tables) + "\n")
    return p


def write_result(root: Path, model_id: str, robust, clean=None, preset: str = "standard", eps: float = 0.2,
                 threat_model: str = "Linf", version: int = 3, index=None, n_available: int = 1000,
                 split_hash: str = "split-a", dataset: str = "mnist5k", points: bool = True, labels=None) -> Path:
    """A result JSON and its ``*.points.csv`` (columns index, clean_correct, robust; and label, in row order,
    when ``labels`` is given, as ``snnbench eval`` writes it)."""
    robust = np.asarray(robust, dtype=bool)
    clean = np.ones_like(robust) if clean is None else np.asarray(clean, dtype=bool)
    n = robust.size
    index = np.arange(n) if index is None else np.asarray(index)
    stem = f"{preset}-v{version}_{threat_model}_eps{eps:g}_n{n}"
    d = root / dataset / model_id
    d.mkdir(parents=True, exist_ok=True)
    cfg = {"model_id": model_id, "model_sha256": "0" * 64, "dataset": dataset, "split_hash": split_hash, "n_points": n,
           "threat_model": threat_model, "eps": eps, "preset": {"name": preset, "version": version}, "seed": 0}
    result = {
        "model_id": model_id, "family": model_id.rsplit("-s", 1)[0], "dataset": dataset, "threat_model": threat_model,
        "eps": eps, "preset": preset, "preset_version": version, "config_hash": f"{model_id}-{stem}", "n_points": n,
        "n_available": n_available, "clean_acc": 100.0 * float(clean.mean()), "robust_acc": 100.0 * float(robust.mean()),
        "own_sg_robust_acc": None, "flags": [], "config": cfg,
        "points_file": stem + ".points.csv" if points else None,
    }
    (d / f"{stem}.json").write_text(json.dumps(result))
    if points:
        rows = ["index,clean_correct,robust"] + [f"{i},{int(c)},{int(r)}" for i, c, r in zip(index, clean, robust)]
        if labels is not None:
            rows = [f"{row},{lab}" for row, lab in zip(rows, ["label", *np.asarray(labels).tolist()])]
        (d / f"{stem}.points.csv").write_text("\n".join(rows) + "\n")
    return d / f"{stem}.json"


def outcomes(n: int, both: int, head_only: int, base_only: int) -> tuple[np.ndarray, np.ndarray]:
    """(base robust, head robust) with the given counts of both-right, head-only and base-only points."""
    base = np.zeros(n, dtype=bool)
    head = np.zeros(n, dtype=bool)
    base[:both] = head[:both] = True
    head[both:both + head_only] = True
    base[both + head_only:both + head_only + base_only] = True
    return base, head


def setup_dirs(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """(zoo dir, results dir), routed through SNNBENCH_ZOO_DIR / SNNBENCH_RESULTS_DIR (no submissions)."""
    zoo, results = tmp_path / "zoo", tmp_path / "results"
    (zoo / "cards").mkdir(parents=True)
    results.mkdir()
    (tmp_path / "subs").mkdir()
    monkeypatch.setenv("SNNBENCH_ZOO_DIR", str(zoo))
    monkeypatch.setenv("SNNBENCH_RESULTS_DIR", str(results))
    monkeypatch.setenv("SNNBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("SNNBENCH_SUBMISSIONS_DIR", str(tmp_path / "subs"))
    return zoo, results
