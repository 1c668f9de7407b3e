"""What every figure shares: matplotlib's Agg backend and style, deterministic PNG + SVG output, and the
data digest that lets an unchanged figure be skipped. Used by :mod:`bench.plots` and :mod:`bench.eps_plots`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


RC = {
    "svg.hashsalt": "snn-robustbench",
    "svg.fonttype": "path",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
}
PNG_DPI = 110
PLOT_SUFFIXES = (".png", ".svg")


# -- helpers -----------------------------------------------------------------------------------------
#: bump when a figure's drawing code changes, so figures cached by their data digest are redrawn
PLOT_CODE_VERSION = 1


def plot_paths(stem: Path) -> list[Path]:
    return [stem.parent / (stem.name + suffix) for suffix in PLOT_SUFFIXES]  # names may contain dots


def source_digest(data: Any) -> str:
    """A digest of the data a figure is drawn from (and of the drawing code's version)."""
    import hashlib
    import json

    blob = json.dumps([PLOT_CODE_VERSION, data], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def is_fresh(stem: Path, digest: str) -> bool:
    """True when ``stem.png`` and ``stem.svg`` exist and were drawn from data with this digest.

    The digest is stored in each file's metadata (PNG tEXt chunk, SVG ``dc:description``), so a figure
    whose data did not change is not redrawn (``snnbench run`` redraws 30 MPD figures otherwise).
    """
    marker = f"snnbench:{digest}".encode()
    return all(p.is_file() and marker in p.read_bytes() for p in plot_paths(stem))


def save(fig: Any, stem: Path, digest: str | None = None) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` deterministically and close the figure."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = plot_paths(stem)
    note = {"Description": f"snnbench:{digest}"} if digest else {}
    with matplotlib.rc_context(RC):
        fig.savefig(paths[0], dpi=PNG_DPI, metadata={"Software": None, **note}, bbox_inches="tight")
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None, **note}, bbox_inches="tight")
    plt.close(fig)
    return paths


def group_slug(dataset: str, threat_model: str, preset: str, version: Any, n_points: Any, eps: float | None = None) -> str:
    """File-name part naming a comparable group, e.g. ``mnist5k_Linf_eps0.2_quick-v1_n1000``."""
    e = "" if eps is None else f"_eps{eps:g}"
    return f"{dataset}_{threat_model}{e}_{preset}-v{version}_n{n_points}"


def _is_full(r: dict[str, Any]) -> bool:
    return r["n_points"] == r.get("n_available", r["n_points"])


def _colors(keys: Iterable[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {k: cmap(i % 10) for i, k in enumerate(sorted(set(keys)))}
