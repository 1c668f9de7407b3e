"""Plots (matplotlib, Agg): pure functions of stored results, analyses and model cards.

Every figure is written as PNG and SVG under ``reports/plots/``; the same inputs give byte-identical
files (fixed SVG hash salt, no dates or software versions in the metadata). A plot whose inputs do not
exist yet (an eps sweep, an SG sweep, a second family) is skipped, not drawn empty.

Figures:

* ``mpd/<model_id>``: histogram of ``H - theta`` per spiking layer on clean and adversarial inputs, the
  training SG's gradient-available window shaded, Omega printed (from ``analysis.json``).
* ``omega_by_family_<dataset>``: Omega per layer per defense family, clean and adversarial (MPD-SGR's
  central picture), mean over seeds with the min-max range.
* ``robust_vs_eps_<group>``: worst-case robust accuracy vs eps per model, with the clean point at eps = 0.
* ``attack_heatmap_<group>``: attack x model robust accuracy.
* ``sg_sensitivity_<group>``: robust accuracy vs the attacker's SG sharpness, one panel per SG family.
* ``pareto_<group>``: clean vs worst-case robust accuracy, one point per seed, with the Pareto front.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from bench.errors import BenchError
from bench.plot_style import (  # noqa: F401  (re-exported: the helpers' old import path)
    PLOT_CODE_VERSION,
    PLOT_SUFFIXES,
    PNG_DPI,
    RC,
    _colors,
    _is_full,
    group_slug,
    is_fresh,
    plot_paths,
    save,
    source_digest,
)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (both coordinates maximised), sorted by x.

    A point is dominated when another is >= in both coordinates and > in at least one. Ties keep both.
    """
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1], i))


def _own_rule_spec(model_id: str) -> str | None:
    """The model's training surrogate as a rule spec (None when no card is found)."""
    from models_zoo.lookup import find_card
    from models_zoo.zoo import card_rule

    try:
        return card_rule(find_card(model_id)).spec()
    except BenchError:
        return None


# -- membrane potential distributions ------------------------------------------------------------------
def plot_mpd(analysis: dict[str, Any], out_dir: Path) -> list[Path]:
    """Per-layer histograms of ``H - theta`` (clean and adversarial) with the SG window and Omega."""
    layers = analysis["layers"]
    if not layers:
        raise BenchError(f"analysis of '{analysis['model_id']}' has no spiking layers: re-run `snnbench analyze`")
    stem = out_dir / "mpd" / analysis["model_id"]
    digest = source_digest(analysis)
    if is_fresh(stem, digest):
        return plot_paths(stem)
    lo, hi = analysis["config"]["hist_range"]
    bins = int(analysis["config"]["hist_bins"])
    edges = np.linspace(lo, hi, bins + 1)
    width = edges[1] - edges[0]
    hw = analysis.get("halfwidth")
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(1, len(layers), figsize=(3.1 * len(layers), 2.7), squeeze=False)
        for ax, lay in zip(axes[0], layers):
            for which, color, label in (("clean", "tab:blue", "clean"), ("adversarial", "tab:red", f"PGD own SG, eps={analysis['eps']:g}")):
                h = lay[which]["hist"]
                dens = np.asarray(h["counts"], dtype=float) / max(h["total"], 1) / width
                ax.stairs(dens, edges, color=color, label=label, fill=which == "clean", alpha=0.35 if which == "clean" else 1.0,
                          linewidth=1.0)
            if hw is not None:
                ax.axvspan(max(-hw, lo), min(hw, hi), color="tab:green", alpha=0.12, label=f"SG window |x| <= {hw:.3g}")
            ax.axvline(0.0, color="k", linewidth=0.6)
            h = lay["clean"]["hist"]
            outside = (h["underflow"] + h["overflow"]) / max(h["total"], 1)
            ax.text(0.99, 0.97, f"{100 * outside:.1f}% of clean values\noutside [{lo:g}, {hi:g}]", transform=ax.transAxes,
                    ha="right", va="top", fontsize=5.5)
            c, a = lay["clean"], lay["adversarial"]
            ax.set_title(f"layer {lay['index']} ({lay['name']}): Omega {c['omega']:.3f} clean, {a['omega']:.3f} adv\n"
                         f"Gaussian fit {c['omega_gauss']:.3f} / {a['omega_gauss']:.3f}; rate {c['firing_rate']:.3f}")
            ax.set_xlabel("H - theta")
        axes[0][0].set_ylabel("density")
        axes[0][0].legend(loc="upper left", fontsize=6)
        s = analysis["summary"]
        fig.suptitle(f"{analysis['model_id']} ({analysis['family']}, train SG {analysis['rule']}): "
                     f"Omega {s['omega_clean']:.3f} clean / {s['omega_adv']:.3f} adversarial "
                     f"({analysis['n_points']} test points)", fontsize=9)
        fig.tight_layout()
        return save(fig, stem, digest)


def plot_omega_by_family(analyses: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Omega per layer per defense family, one figure per data set (mean over seeds, min-max bars)."""
    written: list[Path] = []
    by_ds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in analyses:
        by_ds[a["dataset"]].append(a)
    for ds, items in sorted(by_ds.items()):
        fams: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for a in items:
            fams[a["family"]].append(a)
        colors = _colors(fams)
        with matplotlib.rc_context(RC):
            fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0), sharey=True)
            for ax, which in zip(axes, ("clean", "adversarial")):
                n_fam = len(fams)
                for k, (fam, group) in enumerate(sorted(fams.items())):
                    n_layers = min(len(a["layers"]) for a in group)
                    vals = np.array([[a["layers"][i][which]["omega"] for i in range(n_layers)] for a in group])
                    x = np.arange(1, n_layers + 1) + (k - (n_fam - 1) / 2) * 0.06
                    mean = vals.mean(0)
                    yerr = np.vstack([mean - vals.min(0), vals.max(0) - mean])
                    ax.errorbar(x, mean, yerr=yerr if len(group) > 1 else None, marker="o", markersize=3.5, capsize=2,
                                color=colors[fam], label=f"{fam} (n={len(group)})")
                ax.set_title(f"{which} inputs")
                ax.set_xlabel("spiking layer")
                ax.set_xticks(range(1, max(len(a["layers"]) for a in items) + 1))
            axes[0].set_ylabel("Omega: share of H - theta in the SG window")
            axes[1].legend(fontsize=6, loc="best")
            fig.suptitle(f"Omega per layer per defense family ({ds})", fontsize=9)
            fig.tight_layout()
            written += save(fig, out_dir / f"omega_by_family_{ds}")
    return written


# -- results ---------------------------------------------------------------------------------------
def eps_curves(results: list[dict[str, Any]]) -> dict[tuple, dict[str, list[tuple[float, float]]]]:
    """(data set, threat model, preset, version, point set) -> model -> [(eps, accuracy)], eps 0 = clean.

    Two sources: a result's own ``eps_sweep`` (the preset's sweep attacks at every sweep eps on its first
    ``points`` test points; point set ``sweep-n<points>``), and, across result files, a model evaluated at
    two or more eps with the same preset and points (point set ``n<points>``; worst-case accuracy).
    """
    curves: dict[tuple, dict[str, list[tuple[float, float]]]] = defaultdict(dict)
    files: dict[tuple, dict[str, dict[float, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for r in results:
        base = (r["dataset"], r["threat_model"], r["preset"], r["preset_version"])
        sw = r.get("eps_sweep")
        if isinstance(sw, dict) and sw.get("robust_acc"):
            pts = sorted((float(e), float(a)) for e, a in sw["robust_acc"].items())
            if sw.get("clean_acc") is not None:
                pts = [(0.0, float(sw["clean_acc"])), *pts]
            curves[(*base, f"sweep-n{sw.get('points', '?')}")][r["model_id"]] = pts
        files[(*base, f"n{r['n_points']}")][r["model_id"]][float(r["eps"])] = r
    for key, models in files.items():
        if max(len(v) for v in models.values()) < 2:
            continue
        for mid, by_eps in models.items():
            clean = float(np.mean([x["clean_acc"] for x in by_eps.values()]))
            curves[key][mid] = [(0.0, clean), *[(e, float(by_eps[e]["robust_acc"])) for e in sorted(by_eps)]]
    return dict(curves)


def plot_robust_vs_eps(results: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Robust accuracy vs eps per model, with the clean point at eps = 0 (see :func:`eps_curves`).

    Skipped when no result has an eps sweep and no model was evaluated at two or more eps.
    """
    written: list[Path] = []
    for key, models in sorted(eps_curves(results).items()):
        colors = _colors(models)
        ds, tm, preset, ver, pointset = key
        with matplotlib.rc_context(RC):
            fig, ax = plt.subplots(figsize=(5.2, 3.4))
            for mid, pts in sorted(models.items()):
                ax.plot([e for e, _ in pts], [a for _, a in pts], marker="o", markersize=3, color=colors[mid], label=mid)
            ax.set_xlabel("eps (L-inf)")
            ax.set_ylabel("robust accuracy (%)")
            ax.set_ylim(-2, 102)
            what = f"the preset's eps-sweep attacks, first {pointset[len('sweep-n'):]} points" if pointset.startswith("sweep") \
                else f"worst case, {pointset[1:]} points"
            ax.set_title(f"robust accuracy vs eps: {ds}, {tm}, preset {preset} v{ver}\n({what}; eps 0 = clean)")
            ax.legend(fontsize=6, loc="upper right")
            fig.tight_layout()
            written += save(fig, out_dir / f"robust_vs_eps_{ds}_{tm}_{preset}-v{ver}_{pointset}")
    return written


def _comparable_groups(results: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Results grouped by (data set, threat model, eps, preset, version, points): every full-split group,
    and a subset group (``--limit``) only where the same preset version has no full-split results (the
    `standard` runs on a class-balanced subset of MNIST-5k, so the leaderboard table leaves it out)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["dataset"], r["threat_model"], float(r["eps"]), r["preset"], r["preset_version"], r["n_points"])].append(r)
    is_full = {k: all(_is_full(r) for r in rs) for k, rs in groups.items()}
    full_versions = {k[:5] for k, f in is_full.items() if f}
    return {k: rs for k, rs in groups.items() if is_full[k] or k[:5] not in full_versions}


def _ranked(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rs, key=lambda r: (-r["robust_acc"], -r["clean_acc"], r["model_id"]))


def plot_attack_heatmap(results: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Attack x model robust accuracy per comparable group.

    Standalone attacks (``on = "all"``) show their own robust accuracy; the others, in italics, show the
    accuracy against the attack together with the attacks whose survivors it ran on (``unbroken_by``) or the
    cumulative accuracy after it (the cascade): see :func:`attack_cell`.
    """
    written: list[Path] = []
    for key, rs in sorted(_comparable_groups(results).items()):
        rs = _ranked(rs)
        attacks: list[str] = []
        for r in rs:  # the preset's own order (per_attack is stored with sorted keys)
            order = [a["name"] for a in r.get("config", {}).get("preset", {}).get("attacks", [])]
            for name in [*order, *sorted(r.get("per_attack", {}))]:
                if name not in attacks:
                    attacks.append(name)
        if not attacks:
            continue
        cols = ["clean", *attacks, "worst case"]
        vals = np.full((len(rs), len(cols)), np.nan)
        cumulative = np.zeros_like(vals, dtype=bool)
        for i, r in enumerate(rs):
            vals[i, 0] = r["clean_acc"]
            vals[i, -1] = r["robust_acc"]
            for j, name in enumerate(attacks, start=1):
                pa = r.get("per_attack", {}).get(name)
                if pa is None:
                    continue
                value, standalone = attack_cell(pa)
                if value is not None:
                    vals[i, j] = value
                    cumulative[i, j] = not standalone
        with matplotlib.rc_context(RC):
            fig, ax = plt.subplots(figsize=(2.0 + 0.62 * len(cols), 2.4 + 0.3 * len(rs)))
            ax.grid(False)
            im = ax.imshow(np.ma.masked_invalid(vals), cmap="viridis", vmin=0, vmax=100, aspect="auto")
            for i in range(len(rs)):
                for j in range(len(cols)):
                    if not np.isnan(vals[i, j]):
                        ax.text(j, i, f"{vals[i, j]:.1f}", ha="center", va="center", fontsize=6 if len(cols) < 12 else 5,
                                color="white" if vals[i, j] < 55 else "black", style="italic" if cumulative[i, j] else "normal")
            ax.set_xticks(range(len(cols)), cols, rotation=40 if len(cols) < 12 else 70, ha="right")
            ax.set_yticks(range(len(rs)), [r["model_id"] for r in rs])
            ds, tm, eps, preset, ver, n = key
            ax.set_title(f"robust accuracy (%) per attack: {ds}, {tm} eps={eps:g}, {preset} v{ver}, {n} points\n"
                         "italic: no standalone number (cascade: cumulative after it; unbroken_by: with its base attacks)")
            fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
            fig.tight_layout()
            written += save(fig, out_dir / f"attack_heatmap_{group_slug(ds, tm, preset, ver, n, eps)}")
    return written


_RULE_RE = re.compile(r"^(?P<family>[a-z-]+)(?::(?P<params>.*))?$")


def rule_sharpness(spec: str) -> tuple[str, str, float] | None:
    """``"atan:alpha=4"`` -> ("atan", "alpha", 4.0): the family's width/sharpness parameter, if any."""
    from attacks.surrogates import SURROGATE_FAMILIES

    m = _RULE_RE.match(spec.strip())
    if not m or m["family"] not in SURROGATE_FAMILIES:
        return None
    fam = m["family"]
    _, defaults, key = SURROGATE_FAMILIES[fam]
    params = dict(defaults)
    for part in (m["params"] or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            try:
                params[k.strip()] = float(v)
            except ValueError:
                return None
    return fam, key, float(params[key])


def attack_cell(pa: dict[str, Any]) -> tuple[float | None, bool]:
    """(number to show for one per-attack entry, whether it is standalone).

    ``on = "all"``: the standalone robust accuracy. ``unbroken_by``: ``robust_acc_given``, the accuracy
    against the attack together with its listed base attacks (every rule of an SG sweep shares the base,
    so these numbers are comparable). Cascade (``on = "unbroken"``): the cumulative accuracy after it.
    """
    if pa.get("robust_acc") is not None:
        return float(pa["robust_acc"]), True
    if pa.get("on") == "unbroken_by" and pa.get("robust_acc_given") is not None:
        return float(pa["robust_acc_given"]), False
    if pa.get("cumulative_robust_acc") is not None:
        return float(pa["cumulative_robust_acc"]), False
    return None, False


def sg_points(results: list[dict[str, Any]]) -> dict[tuple, dict[str, dict[str, list[tuple[float, float, bool]]]]]:
    """group -> SG family -> model -> [(parameter value, robust accuracy, is the model's own SG)].

    Numbers are comparable across rules: ``robust_acc_given`` of ``unbroken_by`` attacks (the SG sweep of
    the ``standard``/``full`` presets: every rule against the same own-SG base) when a model has them, else
    standalone numbers (``on = "all"``). Cascade attacks are never used: their number depends on position.
    """
    out: dict[tuple, dict[str, dict[str, list[tuple[float, float, bool]]]]] = {}
    for key, rs in _comparable_groups(results).items():
        fams: dict[str, dict[str, list[tuple[float, float, bool]]]] = defaultdict(lambda: defaultdict(list))
        for r in rs:
            own_spec = _own_rule_spec(r["model_id"])
            own = rule_sharpness(own_spec) if own_spec else None
            entries = list(r.get("per_attack", {}).values())
            given = [pa for pa in entries if pa.get("on") == "unbroken_by" and pa.get("robust_acc_given") is not None]
            chosen = [(pa, float(pa["robust_acc_given"])) for pa in given] if given else \
                [(pa, float(pa["robust_acc"])) for pa in entries if pa.get("robust_acc") is not None]
            for pa, acc in chosen:
                rule = own_spec if pa.get("rule") == "own" else pa.get("rule")
                parsed = rule_sharpness(rule) if rule else None
                if parsed is None:
                    continue
                fam, _, value = parsed
                is_own = own is not None and (fam, value) == (own[0], own[2])
                fams[fam][r["model_id"]].append((value, acc, is_own))
        out[key] = {f: {m: sorted(set(v)) for m, v in ms.items()} for f, ms in fams.items()}
    return out


def plot_sg_sensitivity(results: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Robust accuracy vs the attacker's SG sharpness, a panel per SG family, a line per model.

    Drawn only for families where some model was attacked with two or more sharpness values (the
    ``standard`` / ``full`` presets' SG sweep); the model's own SG is marked with a star.
    """
    from attacks.surrogates import SURROGATE_FAMILIES

    written: list[Path] = []
    for key, fams in sorted(sg_points(results).items()):
        swept = {f: ms for f, ms in fams.items() if any(len({v for v, _, _ in pts}) >= 2 for pts in ms.values())}
        if not swept:
            continue
        models = sorted({m for ms in swept.values() for m in ms})
        colors = _colors(models)
        with matplotlib.rc_context(RC):
            fig, axes = plt.subplots(1, len(swept), figsize=(3.3 * len(swept), 3.0), squeeze=False, sharey=True)
            for ax, (fam, ms) in zip(axes[0], sorted(swept.items())):
                for mid, pts in sorted(ms.items()):
                    by_v: dict[float, list[float]] = defaultdict(list)
                    for v, acc, _ in pts:
                        by_v[v].append(acc)
                    xs = sorted(by_v)
                    ax.plot(xs, [min(by_v[v]) for v in xs], marker="o", markersize=3, color=colors[mid], label=mid)
                    for v, acc, own in pts:
                        if own:
                            ax.plot([v], [acc], marker="*", markersize=9, color=colors[mid], linestyle="none")
                key_name = SURROGATE_FAMILIES[fam][2]
                ax.set_xscale("log", base=2)
                ticks = sorted({v for pts in ms.values() for v, _, _ in pts})
                ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
                ax.minorticks_off()
                hint = "sharper ->" if key_name == "alpha" else "wider ->"
                ax.set_xlabel(f"attacker SG {fam}: {key_name} ({hint})")
                ax.set_title(f"{fam}")
            axes[0][0].set_ylabel("robust accuracy (%)\n(own-SG base + this rule, or standalone)")
            axes[0][-1].legend(fontsize=6, loc="best")
            ds, tm, eps, preset, ver, n = key
            fig.suptitle(f"SG sensitivity: {ds}, {tm} eps={eps:g}, {preset} v{ver}, {n} points (star = the model's own SG)", fontsize=9)
            fig.tight_layout()
            written += save(fig, out_dir / f"sg_sensitivity_{group_slug(ds, tm, preset, ver, n, eps)}")
    return written


def plot_pareto(results: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Clean vs worst-case robust accuracy per comparable group: one point per model (seed), Pareto front."""
    written: list[Path] = []
    for key, rs in sorted(_comparable_groups(results).items()):
        rs = sorted(rs, key=lambda r: r["model_id"])
        fams = [r.get("family", "") for r in rs]
        colors = _colors(fams)
        pts = [(float(r["clean_acc"]), float(r["robust_acc"])) for r in rs]
        front = pareto_front(pts)
        with matplotlib.rc_context(RC):
            fig, ax = plt.subplots(figsize=(5.2, 3.6))
            seen = set()
            for r, (x, y), fam in zip(rs, pts, fams):
                ax.scatter([x], [y], color=colors[fam], s=22, label=None if fam in seen else fam, zorder=3)
                seen.add(fam)
            fx = [pts[i][0] for i in front]
            fy = [pts[i][1] for i in front]
            ax.step(fx, fy, where="pre", color="k", linewidth=0.8, linestyle="--", label="Pareto front", zorder=2)
            for i in front:
                ax.annotate(rs[i]["model_id"], pts[i], fontsize=5.5, xytext=(3, 3), textcoords="offset points")
            ax.set_ylim(0, min(100.0, max(y for _, y in pts) + 5))
            ax.set_xlabel("clean accuracy (%)")
            ax.set_ylabel("worst-case robust accuracy (%)")
            ds, tm, eps, preset, ver, n = key
            ax.set_title(f"accuracy vs robustness: {ds}, {tm} eps={eps:g}, {preset} v{ver}, {n} points")
            ax.legend(fontsize=6, loc="best")
            fig.tight_layout()
            written += save(fig, out_dir / f"pareto_{group_slug(ds, tm, preset, ver, n, eps)}")
    return written


# -- everything ------------------------------------------------------------------------------------
def _card_families() -> dict[str, str]:
    """model id -> the card's defense family (zoo and accepted submissions)."""
    from bench.matched import zoo_cards

    return {cid: c.data["family"] for cid, c in zoo_cards().items()}


def plots_dir() -> Path:
    from bench.config import reports_dir

    return reports_dir() / "plots"


def render_plots(results_root: Path | None = None, out_dir: Path | None = None, prune: bool = True) -> list[Path]:
    """Draw every figure from the stored results and analyses; return the written paths.

    With ``prune``, PNG/SVG files under ``out_dir`` that this render did not write (a model or group that
    no longer exists) are removed, so the folder mirrors the data.
    """
    from bench.store import load_analyses
    from bench.leaderboard_table import load_results

    out_dir = out_dir or plots_dir()
    results = load_results(results_root)
    analyses = [a for _, a in sorted(load_analyses(results_root).items())]
    written: list[Path] = []
    for a in analyses:
        written += plot_mpd(a, out_dir)
    if analyses:
        written += plot_omega_by_family(analyses, out_dir)
    written += plot_robust_vs_eps(results, out_dir)
    from bench.eps_plots import plot_eps_by_family

    written += plot_eps_by_family(results, out_dir, _card_families())
    written += plot_attack_heatmap(results, out_dir)
    written += plot_sg_sensitivity(results, out_dir)
    written += plot_pareto(results, out_dir)
    if prune and out_dir.is_dir():
        keep = {p.resolve() for p in written}
        for p in sorted(out_dir.rglob("*")):
            if p.is_file() and p.suffix in PLOT_SUFFIXES and p.resolve() not in keep:
                p.unlink()
    return written


# -- README ---------------------------------------------------------------------------------------------
def readme_plots_block(written: list[Path], root: Path, analyses: list[dict[str, Any]] | None = None) -> str:
    """Markdown for the README's plots block: the key figures (PNG) among ``written``, linked from ``root``.

    Shows, for bench.toml's default data set: the MPD of the first seed of the baseline and MPD-SGR
    families, Omega per family, the attack heatmap and the Pareto scatter at the primary eps, and the eps
    and SG-sensitivity curves when they exist.
    """
    from bench.config import load_config, threat_model_config

    cfg = load_config()
    ds = cfg["defaults"]["dataset"]
    eps = threat_model_config(cfg["defaults"]["threat_model"], cfg)["eps"]
    pngs = sorted(p for p in written if p.suffix == ".png")
    rel = {p: p.resolve().relative_to(root.resolve()).as_posix() for p in pngs}
    by_name = {p.name: p for p in pngs}

    def img(p: Path, alt: str) -> str:
        return f"![{alt}]({rel[p]})"

    lines: list[str] = []
    mpd = []
    for fam in ("baseline", "mpd-sgr"):
        ids = sorted(a["model_id"] for a in (analyses or []) if a["dataset"] == ds and a["family"] == fam)
        if ids and f"{ids[0]}.png" in by_name and by_name[f"{ids[0]}.png"].parent.name == "mpd":
            mpd.append(img(by_name[f"{ids[0]}.png"], f"membrane potential distribution of {ids[0]}"))
    if mpd:
        lines += ["**Membrane potential distributions** (`H - theta` per spiking layer on clean and adversarial inputs; "
                  "shaded: the training SG's gradient-available window; Omega = share inside it):", "", *mpd, ""]
    sections = [
        (f"omega_by_family_{ds}.png", "**Omega per layer per defense family** (MPD-SGR's central picture):"),
    ]
    preference = ["full", "standard", cfg["defaults"]["preset"]]  # the most thorough preset present
    for title, prefix in (("**Attack x model robust accuracy**", "attack_heatmap_"), ("**Accuracy vs robustness, one point per seed, with the Pareto front**", "pareto_"),
                          ("**Robust accuracy vs eps**", "robust_vs_eps_"),
                          ("**Robustness vs eps per defense family** (mean over seeds, min-max shaded)", "eps_by_family_"),
                          ("**SG sensitivity** (robust accuracy vs the attacker's SG sharpness)", "sg_sensitivity_")):
        names = [n for n in sorted(by_name) if n.startswith(prefix + ds + "_") and (prefix in ("robust_vs_eps_", "eps_by_family_") or f"_eps{eps:g}_" in n)]
        ranked = sorted(names, key=lambda n: next((i for i, p in enumerate(preference) if f"_{p}-v" in n), len(preference)))
        if ranked:
            m = re.search(r"_([^_]+)-v(\d+)_", ranked[0])
            sections.append((ranked[0], f"{title}, preset {m[1]} v{m[2]}:" if m else f"{title}:"))
    for name, title in sections:
        if name in by_name:
            lines += [title, "", img(by_name[name], name[:-4]), ""]
    if not lines:
        return "_No plots yet: run `snnbench run` (or `snnbench analyze --all && snnbench plot`)._\n"
    lines.append("Every figure, as PNG and SVG: [reports/plots/](reports/plots/) (`snnbench plot`; "
                 "`snnbench plot mpd MODEL_ID` for any model).")
    return "\n".join(lines) + "\n"


def write_plots(results_root: Path | None = None, out_dir: Path | None = None, readme: Path | None = None) -> list[Path]:
    """Render every plot and refresh the README's plots block (the project README when ``out_dir`` is the
    project's own ``reports/plots``)."""
    from bench.store import load_analyses
    from bench.io import atomic_write_text
    from bench.leaderboard_table import PLOTS_END, PLOTS_START, default_readme, replace_block

    written = render_plots(results_root, out_dir)
    if readme is None and out_dir is None:
        readme = default_readme(None)
    if readme is not None and readme.is_file():
        block = readme_plots_block(written, readme.parent, [a for _, a in sorted(load_analyses(results_root).items())])
        old = readme.read_text()
        if PLOTS_START in old:
            new = replace_block(old, PLOTS_START, PLOTS_END, block)
            if new != old:
                atomic_write_text(readme, new)
    return written
