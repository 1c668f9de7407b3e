"""A defense against its matched baseline, on the same test points, from stored results only.

A defense's card names its matched baseline (top-level ``matched_baseline = "<zoo id>"``: the same
architecture, neuron, T, encoder, training SG, optimiser and budget, differing only in the defense's own
knob). A card without the key falls back to models_zoo/claims.toml, which names a matched baseline
*recipe* per defense recipe: the zoo entry of that recipe with the same data set and training seed.

Two results are paired only when they were produced under the same protocol: same data set, threat
model, eps, preset, preset version, number of points and the same resolved configuration apart from the
model's identity (:func:`protocol_hash`; it covers the split hash, i.e. the same point set, the attack
seed, the chunking and the resolved preset). Their per-point outcomes (``*.points.csv``) are aligned on
the test-set index and compared with the paired exact McNemar test of :func:`bench.compare.mcnemar_exact`
(not reimplemented here). The 95% interval of the paired difference is Newcombe's hybrid score interval
for paired proportions (Newcombe 1998, Statistics in Medicine 17:2635, method 10), built from the Wilson
intervals of both accuracies and the (continuity-corrected) phi correlation of the paired table.

Outcomes of several seed pairs (defense seed k vs its matched baseline) are pooled: each pair of a point
and a seed pair is one paired observation. Under the null hypothesis every discordant observation is
equally likely to favour either side in every stratum, so the exact McNemar test on the pooled
discordant counts is the exact stratified test.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.stats import mcnemar_exact
from bench.store import read_points
from bench.config import config_hash, results_dir
from bench.data import is_class_sorted
from bench.errors import BenchError
from bench.stats import wilson_interval

#: configuration keys that name the model rather than the protocol
IDENTITY_KEYS = ("model_id", "model_sha256", "code_sha256")


#: keys every result must have to be ranked (a hand-edited file lacking one is one clear line, not a KeyError)
RESULT_KEYS = ("model_id", "dataset", "threat_model", "eps", "preset", "preset_version", "n_points", "clean_acc", "robust_acc")


@dataclass(frozen=True)
class Stored:
    """A result JSON and where it lies (its per-point file is beside it)."""

    result: dict[str, Any]
    path: Path

    @property
    def model_id(self) -> str:
        return str(self.result["model_id"])

    @property
    def key(self) -> tuple:
        return protocol_key(self.result)

    def points(self) -> pd.DataFrame | None:
        """The per-point outcomes (index, clean_correct, robust), or None when missing or incomplete."""
        return read_points(self.result, self.path)


def load_stored(root: Path | None = None) -> list[Stored]:
    """Every current result under ``root`` with its path (stale ones left out: :func:`partition_stored`)."""
    return partition_stored(root)[0]


def partition_stored(root: Path | None = None) -> tuple[list[Stored], list[Stored]]:
    """(current, stale) results under ``root`` (the same files as :func:`bench.leaderboard.load_results`).

    A result is stale when its points were attacked in the class-sorted order of before the full-split
    fix (:func:`is_stale_order`): its numbers are from weaker attack batches, so reports leave it out and
    list it for a re-run instead of ranking it. Results of retired zoo entries (a card's ``retired``) are in
    neither list: :func:`retired_stored` returns them.
    """
    return partition_all(root)[:2]


def retired_stored(root: Path | None = None) -> list[Stored]:
    """The stored results of retired zoo entries (:mod:`bench.retired`), sorted by path."""
    return partition_all(root)[2]


def partition_all(root: Path | None = None) -> tuple[list[Stored], list[Stored], list[Stored]]:
    """(current, stale, retired) results under ``root``; see :func:`partition_stored`."""
    from bench.retired import retired_ids

    root = root or results_dir()
    retired_models = retired_ids(zoo_cards())
    current: list[Stored] = []
    stale: list[Stored] = []
    retired: list[Stored] = []
    for p in sorted(root.rglob("*.json")):
        if ".partial" in p.parts:
            continue
        try:
            r = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BenchError(f"result file {p} is not valid UTF-8 JSON ({e}): delete it and re-run the evaluation") from None
        if isinstance(r, dict) and "config_hash" in r and "robust_acc" in r:
            missing = [k for k in RESULT_KEYS if k not in r]
            if missing:
                raise BenchError(f"result file {p} lacks the key(s) {', '.join(missing)}: delete it and re-run the evaluation")
            s = Stored(r, p)
            if s.model_id in retired_models:
                retired.append(s)
            else:
                (stale if is_stale_order(s) else current).append(s)
    return current, stale, retired


def is_stale_order(stored: Stored) -> bool:
    """True when the result's per-point file lists its points class by class (:func:`bench.data.is_class_sorted`).

    The evaluation order is the points file's row order; files without a ``label`` column (none written by
    ``snnbench eval`` lacks it) are never judged stale.
    """
    name = stored.result.get("points_file")
    p = stored.path.parent / str(name) if name else None
    if p is None or not p.is_file():
        return False
    try:
        if "label" not in pd.read_csv(p, nrows=0).columns:
            return False
        labels = pd.read_csv(p, usecols=["label"])["label"].to_numpy()
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return False  # read_points gives the clear error when the file is used
    return is_class_sorted(labels)


def stale_rerun_commands(stale: list[Stored]) -> list[str]:
    """One ``snnbench eval`` line per stale result (an eval recomputes it: its configuration hash changed)."""
    lines = []
    for s in stale:
        r = s.result
        seed = r.get("config", {}).get("seed")
        lines.append(f"snnbench eval {r['model_id']} --preset {r['preset']} --eps {r['eps']} --threat-model {r['threat_model']}"
                     + ("" if seed is None else f" --seed {seed}"))
    return lines


def protocol_hash(result: dict[str, Any]) -> str:
    """The result's configuration hash without the model's identity: equal for two models evaluated
    with the same preset, eps, threat model, points, seed and chunking. Falls back to the result's own
    ``config_hash`` when no configuration is stored."""
    cfg = result.get("config")
    if not isinstance(cfg, dict):
        return str(result.get("config_hash", ""))
    return config_hash({k: v for k, v in cfg.items() if k not in IDENTITY_KEYS})


def protocol_key(result: dict[str, Any]) -> tuple:
    """(data set, threat model, eps, preset, version, points, protocol hash)."""
    return (result["dataset"], result["threat_model"], float(result["eps"]), result["preset"],
            int(result["preset_version"]), int(result["n_points"]), protocol_hash(result))


# -- statistics --------------------------------------------------------------------------------------
def newcombe_paired_ci(base_correct: np.ndarray, head_correct: np.ndarray, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% interval (in points) of acc(head) - acc(base) for paired outcomes: Newcombe (1998) method 10,
    in the form of Newcombe & Altman (Statistics with Confidence, 2nd ed. 2000, ch. 6).

    With Wilson limits (l1, u1) of acc(head) = p1 and (l2, u2) of acc(base) = p2, ``d = p1 - p2``:
    ``L = d - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)``,
    ``U = d + sqrt((u1 - p1)^2 - 2 phi (u1 - p1)(p2 - l2) + (p2 - l2)^2)``, where phi is the correlation
    of the paired table with its numerator B = n11 n00 - n10 n01 replaced by B - n/2 when B > n/2, by 0 when
    0 <= B <= n/2 (and kept when B < 0); phi = 0 when a margin is empty.
    """
    a = np.asarray(base_correct, dtype=bool)
    b = np.asarray(head_correct, dtype=bool)
    if a.shape != b.shape:
        raise BenchError(f"paired outcomes must have the same length, got {a.shape} and {b.shape}")
    n = a.size
    if n == 0:
        return (-100.0, 100.0)
    n11 = int((a & b).sum())  # both right
    n10 = int((~a & b).sum())  # head only
    n01 = int((a & ~b).sum())  # base only
    n00 = n - n11 - n10 - n01
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = (v / 100 for v in wilson_interval(n11 + n10, n, z))
    l2, u2 = (v / 100 for v in wilson_interval(n11 + n01, n, z))
    denom = math.sqrt(float(n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00))
    b = n11 * n00 - n10 * n01
    b = b - n / 2 if b > n / 2 else (b if b < 0 else 0.0)
    phi = 0.0 if denom == 0 else b / denom
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (100 * max(-1.0, lo), 100 * min(1.0, hi))


@dataclass(frozen=True)
class Paired:
    """Paired comparison of a defense (head) and its matched baseline (base), accuracies in %."""

    n: int
    n_pairs: int
    head_acc: float
    base_acc: float
    base_only: int
    head_only: int
    p_value: float
    ci_low: float
    ci_high: float
    head_clean: float | None = None
    base_clean: float | None = None

    @property
    def delta(self) -> float:
        return self.head_acc - self.base_acc

    @property
    def clean_delta(self) -> float | None:
        return None if self.head_clean is None or self.base_clean is None else self.head_clean - self.base_clean

    def significant_gain(self, alpha: float) -> bool:
        return self.delta > 0 and self.p_value < alpha


def paired_stats(base_correct: np.ndarray, head_correct: np.ndarray, n_pairs: int = 1,
                 base_clean: np.ndarray | None = None, head_clean: np.ndarray | None = None) -> Paired:
    """Accuracies, discordant counts, exact McNemar p (:func:`bench.compare.mcnemar_exact`) and the
    Newcombe interval of the difference, for already aligned boolean outcomes."""
    a = np.asarray(base_correct, dtype=bool)
    b = np.asarray(head_correct, dtype=bool)
    base_only, head_only, p = mcnemar_exact(a, b)
    lo, hi = newcombe_paired_ci(a, b)
    n = int(a.size)
    pct = lambda x: 100.0 * float(np.mean(x)) if n else 0.0  # noqa: E731
    return Paired(n, n_pairs, pct(b), pct(a), base_only, head_only, p, lo, hi,
                  None if head_clean is None else pct(head_clean), None if base_clean is None else pct(base_clean))


def align(head: Stored, base: Stored) -> tuple[np.ndarray, ...] | str:
    """(base robust, head robust, base clean, head clean) aligned on the test index, or why they cannot be."""
    if head.key != base.key:
        return "evaluated under another protocol"
    hp, bp = head.points(), base.points()
    if hp is None or bp is None:
        return f"no per-point outcomes for {base.model_id if bp is None else head.model_id}"
    m = hp.merge(bp, on="index", suffixes=("_head", "_base"), validate="one_to_one")
    if len(m) != len(hp) or len(m) != len(bp):
        return "the two results do not cover the same test points"
    col = lambda c: m[c].to_numpy().astype(bool)  # noqa: E731
    return col("robust_base"), col("robust_head"), col("clean_correct_base"), col("clean_correct_head")


def pooled(pairs: list[tuple[Stored, Stored]]) -> Paired:
    """Pooled paired statistics over seed pairs (head, base) that :func:`align` accepts."""
    parts = [align(h, b) for h, b in pairs]
    bad = [p for p in parts if isinstance(p, str)]
    if bad:
        raise BenchError(f"cannot pool unpaired results: {bad[0]}")
    cat = [np.concatenate([p[i] for p in parts]) for i in range(4)]
    return paired_stats(cat[0], cat[1], n_pairs=len(parts), base_clean=cat[2], head_clean=cat[3])


# -- matched baselines ----------------------------------------------------------------------------
def zoo_cards() -> dict[str, Any]:
    """Zoo cards and accepted submissions by id (an invalid card is a BenchError: `snnbench zoo validate`)."""
    from models_zoo.lookup import all_cards

    return dict(all_cards())


def matched_baseline_id(card: Any, cards: dict[str, Any], recipe_baselines: dict[str, str] | None = None) -> str | None:
    """The card's ``matched_baseline``, else the zoo entry of the claims file's matched-baseline recipe
    with the same data set and seed (None when there is neither)."""
    mb = card.data.get("matched_baseline")
    if mb:
        return str(mb)
    recipe = card.data["training"]["recipe"]
    base_recipe = (recipe_baselines or {}).get(recipe)
    if not base_recipe:
        return None
    seed, ds = card.data["training"]["seed"], card.data["dataset"]
    for cid in sorted(cards):
        c = cards[cid]
        if c.data["training"]["recipe"] == base_recipe and c.data["training"]["seed"] == seed and c.data["dataset"] == ds:
            return cid
    return None


@dataclass(frozen=True)
class MatchedCell:
    """One leaderboard row's comparison: the baseline id and either the statistics or why there are none."""

    baseline: str
    paired: Paired | None
    note: str = ""

    def markdown(self) -> str:
        if self.paired is None:
            return f"{self.note} ({self.baseline})"
        p = self.paired
        return f"{p.delta:+.2f} vs {self.baseline} ({p.base_only}/{p.head_only}, p={format_p(p.p_value)})"


def format_p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def matched_cells(stored: list[Stored], cards: dict[str, Any] | None = None,
                  recipe_baselines: dict[str, str] | None = None) -> dict[tuple, MatchedCell]:
    """(model id, data set, threat model, eps, preset, version, points) -> its matched comparison, for
    every result whose model has a matched baseline."""
    cards = zoo_cards() if cards is None else cards
    by_key: dict[tuple, dict[str, Stored]] = {}
    for s in stored:
        by_key.setdefault(s.key, {})[s.model_id] = s
    out: dict[tuple, MatchedCell] = {}
    for s in stored:
        card = cards.get(s.model_id)
        if card is None:
            continue
        base = matched_baseline_id(card, cards, recipe_baselines)
        if base is None or base == s.model_id:
            continue
        r = s.result
        row_key = (s.model_id, r["dataset"], r["threat_model"], r["eps"], r["preset"], r["preset_version"], r["n_points"])
        other = by_key[s.key].get(base)
        if other is None:
            out[row_key] = MatchedCell(base, None, "no baseline result under this protocol")
            continue
        parts = align(s, other)
        if isinstance(parts, str):
            out[row_key] = MatchedCell(base, None, parts)
        else:
            out[row_key] = MatchedCell(base, paired_stats(parts[0], parts[1], 1, parts[2], parts[3]))
    return out
