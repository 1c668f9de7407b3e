"""`snnbench compare BASE HEAD`: is HEAD more robust than BASE on the same test points? (a CI gate)

Both models are evaluated with the same preset, threat model, eps, seed and points (``--limit``); a stored
result whose resolved-configuration hash matches is reused (:func:`bench.evaluate.evaluate`). The per-point
outcomes (the ``*.points.csv`` beside each result) are aligned on the test-set index, so the comparison is
paired: for clean accuracy and for the per-point worst-case robust accuracy, an **exact McNemar test**
counts the discordant points (``base_only``: right for BASE only; ``head_only``: right for HEAD only) and
returns the two-sided binomial p-value of ``head_only`` successes in ``base_only + head_only`` trials with
probability 1/2 (``scipy.stats.binomtest``; p = 1 when there is no discordant point). Concordant points
carry no information about the difference, which is why the paired test is much sharper than comparing
two accuracies with independent intervals.

The rule (exit 0 when it passes, 1 when it fails; bad input exits 2):

* robust gain: ``robust(HEAD) - robust(BASE) >= --require-gain`` (points; default 0, i.e. HEAD must not
  be less robust; a negative value tolerates a bounded drop);
* with ``--alpha A``, the robust gain must also be significant: McNemar p < A and the gain > 0;
* with ``--max-clean-drop D``: ``clean(BASE) - clean(HEAD) <= D`` (points).

Flags of either result are shown, and the flags HEAD raises that BASE does not are named, but they do not
change the verdict.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench.errors import BenchError
from bench.stats import mcnemar_exact  # noqa: F401  (re-exported: compare's test)
from models_zoo.cards import ModelCard

TOL = 1e-9


@dataclass
class Side:
    card: ModelCard
    result: dict[str, Any]
    path: Path
    reused: bool
    points: pd.DataFrame


@dataclass
class Row:
    metric: str
    base: float | None
    head: float | None
    base_only: int | None = None
    head_only: int | None = None
    p_value: float | None = None

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.head is None else self.head - self.base


@dataclass
class Comparison:
    base: Side
    head: Side
    n_points: int
    rows: list[Row]
    passed: bool
    reasons: list[str]
    rule: dict[str, Any]
    new_flags: list[str] = field(default_factory=list)

    @property
    def clean(self) -> Row:
        return self.rows[0]

    @property
    def robust(self) -> Row:
        return self.rows[1]

    def markdown(self) -> str:
        b, h = self.base.result, self.head.result
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        sfmt = lambda v: "-" if v is None else f"{v:+.2f}"  # noqa: E731

        def pfmt(p: float | None) -> str:
            if p is None:
                return "-"
            return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"

        def flags(r: dict[str, Any]) -> str:
            fl = sorted(r.get("flags", []), key=lambda f: f["id"])
            return " ".join(f"F{f['id']}" for f in fl) or "-"

        lines = [
            f"### snnbench compare: `{b['model_id']}` (base) vs `{h['model_id']}` (head)",
            "",
            f"{b['dataset']} · {b['threat_model']} eps={b['eps']:g} · preset {b['preset']} v{b['preset_version']} · "
            f"{self.n_points} test points, paired (same points for both)",
            "",
            f"| metric | base `{b['model_id']}` | head `{h['model_id']}` | Δ (head − base) | base-only / head-only correct | McNemar p |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            disc = "-" if r.base_only is None else f"{r.base_only} / {r.head_only}"
            lines.append(f"| {r.metric} | {fmt(r.base)} | {fmt(r.head)} | {sfmt(r.delta)} | {disc} | {pfmt(r.p_value)} |")
        lines.append(f"| flags | {flags(b)} | {flags(h)} | | | |")
        lines.append("")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"**{verdict}**: " + "; ".join(self.reasons) + ".")
        if self.new_flags:
            lines.append("")
            lines.append(f"Head raises flags that base does not: {', '.join(self.new_flags)} (see docs/flags.md).")
        lines += [
            "",
            "Accuracies in %. McNemar: exact two-sided binomial test on the discordant points "
            "(scipy.stats.binomtest(head_only, base_only + head_only, 0.5)).",
            "",
        ]
        return "\n".join(lines)


def _points(result: dict[str, Any], path: Path) -> pd.DataFrame | None:
    """The result's per-point CSV, verified against it (bench/store.py): None when the result has none."""
    from bench.store import read_points

    return read_points(result, path)


def _evaluate_side(card: ModelCard, log: Callable[[str], None], **kw: Any) -> Side:
    from bench.evaluate import evaluate

    result, path, reused = evaluate(card, force=False, **kw)
    pts = _points(result, path)
    if pts is None:  # a stored result without its per-point outcomes: recompute it
        log(f"{card.id}: stored result {path.name} has no usable per-point file: re-evaluating")
        result, path, reused = evaluate(card, force=True, **kw)
        pts = _points(result, path)
        if pts is None:
            raise BenchError(f"evaluation of '{card.id}' wrote no per-point file beside {path}: cannot compare per point")
    status = "reused stored result" if reused else f"evaluated in {result['provenance']['wall_seconds']:.1f}s"
    log(f"{card.id}: clean {result['clean_acc']:.2f} worst-case {result['robust_acc']:.2f} n={result['n_points']} ({status}) -> {path}")
    return Side(card, result, path, reused, pts)


def compare(
    base: str | ModelCard,
    head: str | ModelCard,
    preset: str | None = None,  # None: bench.toml [defaults]
    eps: float | None = None,
    threat_model: str | None = None,  # None: bench.toml [defaults]
    limit: int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    seed: int | None = None,
    require_gain: float = 0.0,
    max_clean_drop: float | None = None,
    alpha: float | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> Comparison:
    """Evaluate (or reuse) BASE and HEAD on the same points and apply the rule (see the module docstring)."""
    from models_zoo.lookup import find_card

    say = log or (lambda _m: None)
    for name, v in (("--require-gain", require_gain), ("--max-clean-drop", max_clean_drop)):
        if v is not None and not np.isfinite(v):
            raise BenchError(f"{name} must be a finite number of percentage points, got {v}")
    if max_clean_drop is not None and max_clean_drop < 0:
        raise BenchError(f"--max-clean-drop is a drop in points and must be >= 0, got {max_clean_drop}")
    if alpha is not None and not 0 < alpha < 1:
        raise BenchError(f"--alpha is a significance level in (0, 1), got {alpha}")
    bcard = base if isinstance(base, ModelCard) else find_card(base)
    hcard = head if isinstance(head, ModelCard) else find_card(head)
    if bcard.dataset != hcard.dataset:
        raise BenchError(
            f"base '{bcard.id}' is a {bcard.dataset} model and head '{hcard.id}' a {hcard.dataset} model: "
            "compare models of the same data set"
        )
    kw = dict(preset=preset, eps=eps, threat_model=threat_model, limit=limit, device=device, batch_size=batch_size,
              seed=seed, progress=progress)
    b = _evaluate_side(bcard, say, **kw)
    h = _evaluate_side(hcard, say, **kw)
    if b.result["config"]["split_hash"] != h.result["config"]["split_hash"]:
        raise BenchError("base and head were evaluated on different test points (split hashes differ): use the same --limit")
    m = b.points.merge(h.points, on="index", suffixes=("_base", "_head"), validate="one_to_one")
    if len(m) != len(b.points) or len(m) != len(h.points):
        raise BenchError(f"base and head results do not cover the same test points ({len(b.points)} vs {len(h.points)}, {len(m)} shared)")
    n = len(m)
    pct = lambda col: 100.0 * float(m[col].astype(bool).mean()) if n else 0.0  # noqa: E731
    rows = []
    for metric, col in (("clean accuracy", "clean_correct"), ("worst-case robust accuracy", "robust")):
        bo, ho, p = mcnemar_exact(m[f"{col}_base"].to_numpy(bool), m[f"{col}_head"].to_numpy(bool))
        rows.append(Row(metric, pct(f"{col}_base"), pct(f"{col}_head"), bo, ho, p))
    rows.append(Row("own-SG robust accuracy", b.result.get("own_sg_robust_acc"), h.result.get("own_sg_robust_acc")))

    clean, robust = rows[0], rows[1]
    reasons: list[str] = []
    passed = True
    gain = robust.delta or 0.0
    if gain + TOL >= require_gain:
        reasons.append(f"robust gain {gain:+.2f} >= required {require_gain:+.2f} points")
    else:
        passed = False
        reasons.append(f"robust gain {gain:+.2f} < required {require_gain:+.2f} points")
    if alpha is not None:
        if gain > 0 and robust.p_value is not None and robust.p_value < alpha:
            reasons.append(f"significant (McNemar p = {robust.p_value:.2g} < {alpha:g})")
        else:
            passed = False
            reasons.append(f"not a significant gain (McNemar p = {robust.p_value:.2g}, alpha {alpha:g})")
    if max_clean_drop is not None:
        drop = -(clean.delta or 0.0)
        if drop <= TOL:
            reasons.append(f"clean accuracy {clean.delta or 0.0:+.2f} points (no drop; allowed drop {max_clean_drop:.2f})")
        elif drop <= max_clean_drop + TOL:
            reasons.append(f"clean drop {drop:.2f} <= allowed {max_clean_drop:.2f} points")
        else:
            passed = False
            reasons.append(f"clean drop {drop:.2f} > allowed {max_clean_drop:.2f} points")
    base_flags = {f["id"] for f in b.result.get("flags", [])}
    new_flags = [f"F{f['id']} ({f['key']})" for f in sorted(h.result.get("flags", []), key=lambda f: f["id"]) if f["id"] not in base_flags]
    rule = {"require_gain": require_gain, "max_clean_drop": max_clean_drop, "alpha": alpha}
    return Comparison(b, h, n, rows, passed, reasons, rule, new_flags)


def append_step_summary(markdown: str) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` (GitHub Actions' job summary) when that variable is set."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    p = Path(target)
    try:
        with p.open("a", encoding="utf-8") as f:
            f.write(markdown.rstrip("\n") + "\n\n")
    except OSError as e:
        raise BenchError(f"cannot append the summary to GITHUB_STEP_SUMMARY={p}: {e.strerror or e}: "
                         "point it at a writable file in an existing folder (or unset it)") from None
    return p
