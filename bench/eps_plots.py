"""Robustness vs eps per defense family (``reports/plots/eps_by_family_<group>.png|svg``), from stored results.

One figure per (data set, threat model, preset, version, number of points): a spike-domain threat model
gets its own figures, never mixed with pixel-space ones. Per family (the card's ``family``): the mean over
its seeds of the per-point worst-case robust accuracy at each eps the family was evaluated at, with the
min-max range over seeds shaded, and the mean clean accuracy at eps = 0. Drawn only when some family has
results at two or more eps under that protocol.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from bench.plot_style import RC, _colors, is_fresh, plot_paths, save, source_digest

PREFIX = "eps_by_family_"


def family_curves(results: list[dict[str, Any]], families: dict[str, str] | None = None) -> dict[tuple, dict[str, dict[float, list[float]]]]:
    """(data set, threat model, preset, version, points) -> family -> eps -> robust accuracy per seed,
    with eps 0 holding the clean accuracies (one per model, from its results at the smallest eps)."""
    families = families or {}
    raw: dict[tuple, dict[str, dict[str, dict[float, dict[str, Any]]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for r in results:
        key = (r["dataset"], r["threat_model"], r["preset"], int(r["preset_version"]), int(r["n_points"]))
        fam = families.get(r["model_id"]) or r.get("family") or r["model_id"]
        raw[key][fam][r["model_id"]][float(r["eps"])] = r
    out: dict[tuple, dict[str, dict[float, list[float]]]] = {}
    for key, fams in raw.items():
        if max(len({e for by_eps in models.values() for e in by_eps}) for models in fams.values()) < 2:
            continue  # no family was evaluated at two eps under this protocol
        curves: dict[str, dict[float, list[float]]] = {}
        for fam, models in sorted(fams.items()):
            pts: dict[float, list[float]] = defaultdict(list)
            for mid in sorted(models):
                by_eps = models[mid]
                pts[0.0].append(float(by_eps[min(by_eps)]["clean_acc"]))
                for e in sorted(by_eps):
                    pts[e].append(float(by_eps[e]["robust_acc"]))
            curves[fam] = dict(sorted(pts.items()))
        out[key] = curves
    return out


def plot_eps_by_family(results: list[dict[str, Any]], out_dir: Path, families: dict[str, str] | None = None) -> list[Path]:
    """One figure per protocol group (see the module docstring); returns the written paths."""
    written: list[Path] = []
    for key, curves in sorted(family_curves(results, families).items()):
        ds, tm, preset, ver, n = key
        stem = out_dir / f"{PREFIX}{ds}_{tm}_{preset}-v{ver}_n{n}"
        digest = source_digest([key, curves])
        if is_fresh(stem, digest):
            written += plot_paths(stem)
            continue
        colors = _colors(curves)
        with matplotlib_rc():
            fig, ax = plt.subplots(figsize=(5.4, 3.5))
            for fam, pts in curves.items():
                xs = list(pts)
                mean = [float(np.mean(pts[e])) for e in xs]
                ax.plot(xs, mean, marker="o", markersize=3, color=colors[fam], label=f"{fam} (n={max(len(v) for v in pts.values())})")
                if any(len(v) > 1 for v in pts.values()):
                    ax.fill_between(xs, [min(pts[e]) for e in xs], [max(pts[e]) for e in xs], color=colors[fam], alpha=0.15, linewidth=0)
            ax.set_xlabel(f"eps ({tm})")
            ax.set_ylabel("worst-case robust accuracy (%)")
            ax.set_ylim(-2, 102)
            ax.set_title(f"robustness vs eps per family: {ds}, {tm}, preset {preset} v{ver}, {n} points\n"
                         "mean over seeds, min-max shaded; eps 0 = clean accuracy")
            ax.legend(fontsize=6, loc="upper right")
            fig.tight_layout()
            written += save(fig, stem, digest)
    return written


def matplotlib_rc() -> Any:
    import matplotlib

    return matplotlib.rc_context(RC)
