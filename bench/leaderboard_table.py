"""The leaderboard table: ranking rows built from stored results, analyses and model cards, and its
Markdown / CSV renderings (no model is run). :mod:`bench.leaderboard` assembles every artefact from it.

Only comparable results share a table: same data set, threat model, eps, preset and preset version, and
number of points (by default only full test sets are ranked). Within a table rows are sorted by the
per-point worst-case robust accuracy (the ranking key), then clean accuracy, then model id.

Each row carries the card's fields, the 95% Wilson interval of the worst-case accuracy, the masking gap
(own-SG minus worst-case robust accuracy), mean +- std over seeds (rows of the same table whose cards
differ only in seed), and the model-derived metrics stored by ``snnbench analyze`` (Omega, firing rate,
input-gradient sparsity; see :mod:`bench.analysis`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import PROJECT_ROOT, load_config, project_path, reports_dir
from bench.errors import BenchError
from bench.matched import RESULT_KEYS  # noqa: F401  (re-exported)
from bench.stats import wilson_interval  # noqa: F401  (re-exported)

GROUP_KEYS = ["dataset", "threat_model", "eps", "preset", "preset_version", "n_points"]
COLUMNS = [
    "rank", "model_id", "family", "paper", "T", "neuron", "training_sg", "seed", "clean_acc", "own_sg_robust_acc",
    "robust_acc", "masking_gap", "robust_ci_low", "robust_ci_high", "matched_baseline", "matched_delta", "matched_base_only",
    "matched_head_only", "matched_p", "n_seeds", "robust_mean", "robust_std",
    "clean_mean", "clean_std", "omega", "omega_adv", "omega_gauss", "firing_rate", "grad_zero_share", "grad_l1",
    "custom_code", "flags",
]
#: card fields that must agree for rows to count as seeds of one recipe
SEED_GROUP_KEYS = ["family", "recipe", "architecture", "T", "encoder", "neuron", "training_sg"]
FLAGS_DOC = "docs/flags.md"
README_START = "<!-- leaderboard:start -->"
README_END = "<!-- leaderboard:end -->"
PLOTS_START = "<!-- plots:start -->"
PLOTS_END = "<!-- plots:end -->"




def load_results(root: Path | None = None) -> list[dict[str, Any]]:
    """Every result JSON under ``root`` (skipping unfinished chunks and analyses), sorted by path."""
    from bench.matched import load_stored

    return [s.result for s in load_stored(root)]


def find_card(model_id: str) -> Any:
    """A card by zoo id, accepted-submission id or .toml path (BenchError when unknown)."""
    try:
        from models_zoo.lookup import find_card as _find
    except ImportError:  # pragma: no cover - submissions module absent
        from models_zoo.zoo import get_card as _find
    return _find(model_id)


def _card_fields(model_id: str) -> dict[str, Any]:
    try:
        return find_card(model_id).summary()
    except BenchError:
        return {}


def short_paper(paper: str) -> str:
    """A short citation for tables: ``"Liu, Bu, ...: Title (ICML 2024)"`` -> ``"Liu et al. (ICML 2024)"``."""
    head, sep, _ = paper.partition(":")
    if not sep:
        return paper
    if "(" in head:  # "BPTT with a surrogate gradient (Neftci et al. 2019; ...)": already a citation
        return head.strip()
    authors = [a.strip() for a in head.split(",") if a.strip()]
    first = authors[0] if authors else head.strip()
    venue = re.findall(r"\(([^()]*)\)\s*$", paper)
    cite = first + (" et al." if len(authors) > 1 or "et al" in head else "")
    return f"{cite} ({venue[0]})" if venue else cite


def _round(v: Any, digits: int = 4) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return round(float(v), digits)


def build_table(results: list[dict[str, Any]], include_subsets: bool = False,
                analyses: dict[tuple[str, str], dict[str, Any]] | None = None,
                matched: dict[tuple, Any] | None = None) -> pd.DataFrame:
    """One row per result, with card fields, Wilson interval, masking gap, seed statistics, analysis
    metrics and rank within its comparable group. ``analyses`` maps (dataset, model_id) to a stored
    analysis (:func:`bench.analysis.load_analyses`); ``matched`` maps (model_id, dataset, threat model, eps,
    preset, version, points) to the row's comparison with its matched baseline
    (:func:`bench.matched.matched_cells`)."""
    analyses = analyses or {}
    matched = matched or {}
    rows = []
    for r in results:
        if not include_subsets and r["n_points"] != r.get("n_available", r["n_points"]):
            continue
        card = _card_fields(r["model_id"])
        robust_count = round(r["robust_acc"] * r["n_points"] / 100)
        lo, hi = wilson_interval(robust_count, r["n_points"])
        own = r.get("own_sg_robust_acc")
        summ = analyses.get((r["dataset"], r["model_id"]), {}).get("summary", {})
        flags = sorted(r.get("flags", []), key=lambda f: f["id"])
        mc = matched.get((r["model_id"], r["dataset"], r["threat_model"], r["eps"], r["preset"], r["preset_version"], r["n_points"]))
        mp = None if mc is None else mc.paired
        rows.append(
            {
                "dataset": r["dataset"],
                "threat_model": r["threat_model"],
                "eps": r["eps"],
                "preset": r["preset"],
                "preset_version": r["preset_version"],
                "n_points": r["n_points"],
                "model_id": r["model_id"],
                "family": card.get("family", r.get("family", "")),
                "paper": card.get("paper", ""),
                "T": card.get("T"),
                "neuron": card.get("neuron", ""),
                "training_sg": card.get("training_sg", ""),
                "seed": card.get("seed"),
                "recipe": card.get("recipe", ""),
                "architecture": card.get("architecture", ""),
                "encoder": card.get("encoder", ""),
                "clean_acc": r["clean_acc"],
                "own_sg_robust_acc": own,
                "robust_acc": r["robust_acc"],
                "masking_gap": None if own is None else round(own - r["robust_acc"], 4),
                "robust_ci_low": round(lo, 2),
                "robust_ci_high": round(hi, 2),
                "matched_baseline": "" if mc is None else mc.baseline,
                "matched_delta": None if mp is None else round(mp.delta, 4),
                "matched_base_only": None if mp is None else mp.base_only,
                "matched_head_only": None if mp is None else mp.head_only,
                "matched_p": None if mp is None else f"{mp.p_value:.4g}",  # text: the CSV's %.4f would print 0.0000
                "matched_text": "-" if mc is None else mc.markdown(),
                "omega": _round(summ.get("omega_clean")),
                "omega_adv": _round(summ.get("omega_adv")),
                "omega_gauss": _round(summ.get("omega_gauss_clean")),
                "firing_rate": _round(summ.get("firing_rate_clean")),
                "grad_zero_share": _round(summ.get("grad_zero_share")),
                "grad_l1": _round(summ.get("grad_l1_mean")),
                "custom_code": bool(card.get("custom_code", False)),
                # RobustBench's rule (bench/masking.py): dead gradients and no gradient-free attack at full
                # strength -> shown, not ranked by its number
                "unreliable": bool(r.get("reliability", {}).get("unreliable", False)),
                "flags": " ".join(f"F{f['id']}" for f in flags),
                "flag_details": json.dumps([{"id": f["id"], "key": f.get("key", ""), "message": f.get("message", "")} for f in flags]),
            }
        )
    if not rows:
        return pd.DataFrame(columns=GROUP_KEYS + COLUMNS + ["matched_text", "flag_details"])
    df = pd.DataFrame(rows)
    for col in ("matched_base_only", "matched_head_only"):  # counts, blank where there is no comparison
        df[col] = df[col].astype("Int64")
    df = df.sort_values(GROUP_KEYS + ["unreliable", "robust_acc", "clean_acc", "model_id"], ascending=[True] * 7 + [False, False, True])
    ranks = df.groupby(GROUP_KEYS + ["unreliable"], sort=False).cumcount() + 1
    df["rank"] = [("-" if u else int(k)) for u, k in zip(df["unreliable"], ranks)] if df["unreliable"].any() else ranks
    df = _seed_statistics(df)
    return df[GROUP_KEYS + COLUMNS + ["matched_text", "flag_details", "unreliable"]].reset_index(drop=True)


def _seed_statistics(df: pd.DataFrame) -> pd.DataFrame:
    """n_seeds, mean and sample std of robust and clean accuracy over rows that differ only in seed."""
    keys = GROUP_KEYS + SEED_GROUP_KEYS
    # without a card (no recipe) a row cannot be matched to other seeds: it is its own group
    own = [m if not rec else "" for m, rec in zip(df["model_id"], df["recipe"])]
    gid = ["\x1f".join(map(str, vals)) for vals in zip(*(df[k].tolist() for k in keys), own)]
    df = df.assign(_gid=gid)
    stats = {}
    for g, sub in df.groupby("_gid", sort=True):
        n = len(sub)
        stats[g] = {
            "n_seeds": n,
            "robust_mean": round(float(sub.robust_acc.mean()), 4) if n > 1 else None,
            "robust_std": round(float(sub.robust_acc.std(ddof=1)), 4) if n > 1 else None,
            "clean_mean": round(float(sub.clean_acc.mean()), 4) if n > 1 else None,
            "clean_std": round(float(sub.clean_acc.std(ddof=1)), 4) if n > 1 else None,
        }
    for col in ("n_seeds", "robust_mean", "robust_std", "clean_mean", "clean_std"):
        df[col] = [stats[g][col] for g in df["_gid"]]
    return df.drop(columns="_gid")


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def group_title(key: tuple) -> str:
    ds, tm, eps, preset, ver, n = key
    return f"{ds} · {tm} eps={eps:g} · preset {preset} v{ver} · {n} points"


def seeds_cell(r: Any) -> str:
    """``"12.30 ± 1.05 (3)"`` when several seeds exist, else ``"-"``."""
    if not r["n_seeds"] or int(r["n_seeds"]) < 2 or r["robust_mean"] is None or pd.isna(r["robust_mean"]):
        return "-"
    return f"{r['robust_mean']:.2f} ± {r['robust_std']:.2f} ({int(r['n_seeds'])})"


def flag_markdown(r: Any, doc_link: str) -> str:
    parts = [f"[F{f['id']}]({doc_link})" for f in json.loads(r["flag_details"] or "[]")]
    if r.get("unreliable", False):
        parts.insert(0, f"[**unreliable, not ranked**]({doc_link})")
    if r["custom_code"]:
        parts.append("custom-code")
    return " ".join(parts) or "-"


def _group_order(key: tuple) -> tuple:
    """Tables in reading order: the benchmark's own gauntlet presets before the papers' protocols
    (``paper-*``), then by data set, threat model, eps, preset, version and points."""
    preset = str(key[GROUP_KEYS.index("preset")])
    return (preset.startswith("paper-"), *key)


def markdown_tables(df: pd.DataFrame, heading: str = "##", doc_link: str = "../" + FLAGS_DOC) -> list[str]:
    """The ranked tables as Markdown lines, one table per comparable group."""
    lines: list[str] = []
    groups = sorted(df.groupby(GROUP_KEYS, sort=True), key=lambda kg: _group_order(kg[0]))
    for key, g in groups:
        lines += [f"{heading} {group_title(key)}", ""]
        lines.append(
            "| # | model | family | paper | T | neuron | train SG | clean | own-SG robust | worst-case robust | gap | 95% CI "
            "| Δ vs matched baseline | seeds: mean ± std (n) | Omega | firing rate | grad zero | flags |"
        )
        lines.append("|---:|---|---|---|---:|---|---|---:|---:|---:|---:|---|---|---|---:|---:|---:|---|")
        for _, r in g.iterrows():
            lines.append(
                f"| {r['rank']} | {r['model_id']} | {r['family']} | {short_paper(r['paper']) or '-'} | {_fmt(r['T'])} | "
                f"{r['neuron'] or '-'} | {r['training_sg'] or '-'} | {_fmt(r['clean_acc'])} | {_fmt(r['own_sg_robust_acc'])} | "
                f"**{_fmt(r['robust_acc'])}** | {_fmt(r['masking_gap'])} | [{_fmt(r['robust_ci_low'], 1)}, {_fmt(r['robust_ci_high'], 1)}] | "
                f"{r['matched_text']} | {seeds_cell(r)} | {_fmt(r['omega'], 3)} | {_fmt(r['firing_rate'], 3)} | {_fmt(r['grad_zero_share'], 3)} | "
                f"{flag_markdown(r, doc_link)} |"
            )
        lines.append("")
    return lines


LEGEND = [
    "Ranking key: per-point worst-case robust accuracy over every attack of the preset (%).",
    "Own-SG: standalone robust accuracy under the preset's PGD with the model's training surrogate;",
    "gap = own-SG minus worst case (a large gap means a fixed-surrogate attack overestimates robustness).",
    "95% CI: Wilson interval of the worst case. Seeds: mean ± sample std of the worst case over the seeds of",
    "the same recipe in the same table. Omega: share of pre-spike potentials H - theta inside the training SG's",
    "gradient-available window (MPD-SGR), clean inputs, mean over spiking layers; firing rate: mean spike rate;",
    "grad zero: share of exactly-zero input-gradient entries under the own SG (`snnbench analyze`; '-' = not analysed).",
    "Δ vs matched baseline: worst-case robust accuracy minus that of the baseline the card is matched to (same model",
    "and budget, only the defense's knob differs), on the same points under the same protocol, with base-only /",
    "defense-only correct points and the exact McNemar p (`snnbench compare`'s test); '-' = no matched baseline.",
    "Claims audit: [claims.md](claims.md).",
]


def render_markdown(df: pd.DataFrame, extra: list[str] | None = None) -> str:
    lines = [
        "# snn-robustbench leaderboard",
        "",
        "Generated by `snnbench leaderboard` from reports/results/ and the model cards; do not edit by hand.",
        *LEGEND,
        f"Flags: see [{FLAGS_DOC}](../{FLAGS_DOC}); `custom-code`: the architecture is submitted Python code.",
        "Interactive, sortable version: [index.html](index.html). Plots: [plots/](plots/).",
        "",
    ]
    if df.empty:
        lines.append("_No results yet: run `snnbench run`._")
        return "\n".join(lines + [""] + (extra or [])) + "\n"
    lines += markdown_tables(df)
    lines += extra or []
    return "\n".join(lines)


def render_readme_block(df: pd.DataFrame) -> str:
    """What goes between the README's leaderboard markers (links relative to the project root)."""
    if df.empty:
        return "_No results yet: run `snnbench run`._\n"
    lines = markdown_tables(df, heading="###", doc_link=FLAGS_DOC)
    lines.append("Columns are explained in [reports/leaderboard.md](reports/leaderboard.md), which also ranks every "
                 "budget (eps 0.05, 0.1, 0.2; spike-domain threat models apart); the sortable, filterable page is "
                 "[reports/index.html](reports/index.html); the claims audit, paper by paper: [reports/claims.md](reports/claims.md).")
    return "\n".join(lines) + "\n"


def render_csv(df: pd.DataFrame) -> str:
    out = df.drop(columns=["flag_details", "matched_text"], errors="ignore")
    if "unreliable" in out and not out["unreliable"].any():  # the column appears once a result is unreliable
        out = out.drop(columns=["unreliable"])
    return out.to_csv(index=False, float_format="%.4f", lineterminator="\n")


# -- README blocks -----------------------------------------------------------------------------------
def default_readme(out_dir: Path | None) -> Path | None:
    """The project README when reports go to the project's own reports folder, else None (tests, tmp dirs)."""
    target = (out_dir or reports_dir()).resolve()
    return PROJECT_ROOT / "README.md" if target == project_path(load_config()["paths"]["reports_dir"]).resolve() else None


def replace_block(text: str, start: str, end: str, content: str) -> str:
    """``text`` with everything between the ``start`` and ``end`` marker lines replaced by ``content``."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0 or j < i:
        raise BenchError(f"README.md lacks the markers {start} ... {end}: add them where the block belongs")
    return text[: i + len(start)] + "\n" + content + text[j:]
