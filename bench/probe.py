"""Surrogate-sweep probe: every attacker backward rule on a few points, the strongest few on all of them.

A preset may declare ``probe = {attacks = [...], keep = k, points = n, others_subset_every = m}``. Before
the chunks run (after the per-model tuning of :mod:`attacks.tuning`, so HART and ASSG probe with their tuned
parameter), :func:`probe_attacks` runs every listed attack, with its own budget, on the first ``n``
clean-correct points of the evaluation (the tuning points) and ranks them by the points left correctly
classified, ties broken by the lower mean margin ``z_y - max_{i!=y} z_i`` (the score of
:func:`attacks.tuning._score`). Every attack uses the same random draws (common random numbers).
:func:`apply_probe` keeps the ``k`` best at their preset entry (every point their base leaves) and runs the
others on every ``m``-th point of each chunk only (``subset_every``), so each rule still has a number (flag
11, the per-family columns) at 1/m of its cost.

Why it may: on the 30 entries of the ``standard`` v3 zoo run (500 points each), of the 17 attacker rules
only atan 4, triangle 0.5, HART and (once or twice) rectangle 0.5 / atan 8 / triangle 0.25 ever broke a
point no other attack broke; BPTR, RGA, PDSG and nine sweep rules never did (docs/presets.md, v4).

The probe's record (chosen attacks, every score, seconds) is stored in the partial folder beside the tuning
(a resumed run reuses it) and in the result under ``probe``; the probe's table is part of the preset and so
of the configuration hash.
"""

from __future__ import annotations

from typing import Any

import torch

from attacks.algorithms import make_attack
from attacks.tuning import _score
from bench.adapter import SNNAdapter
from bench.errors import BenchError

PROBE_KEYS = {"attacks", "keep", "points", "others_subset_every"}


def check_probe(preset: dict[str, Any]) -> dict[str, Any] | None:
    """The preset's ``probe`` table validated against its attacks, defaults filled in (None without one)."""
    p = preset.get("probe")
    if not p:
        return None
    name = preset.get("name", "?")
    unknown = set(p) - PROBE_KEYS
    if unknown:
        raise BenchError(f"preset '{name}': probe takes {sorted(PROBE_KEYS)}, not {sorted(unknown)}")
    names = [a["name"] for a in preset["attacks"]]
    group = list(p.get("attacks") or [])
    missing = [g for g in group if g not in names]
    if not group or missing:
        raise BenchError(f"preset '{name}': probe.attacks must list attacks of the preset; unknown: {missing or '(none given)'}")
    out = {"attacks": group, "keep": int(p.get("keep", 2)), "points": int(p.get("points", 32)),
           "others_subset_every": int(p.get("others_subset_every", 10))}
    if not 1 <= out["keep"] <= len(group):
        raise BenchError(f"preset '{name}': probe.keep must be in [1, {len(group)}], got {out['keep']}")
    if out["points"] < 1 or out["others_subset_every"] < 1:
        raise BenchError(f"preset '{name}': probe.points and probe.others_subset_every must be >= 1")
    return out


def probe_attacks(model: SNNAdapter, specs: list[dict[str, Any]], probe: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
                  eps: float, batch_size: int, seed: int, eot_draws: int = 10) -> dict[str, Any]:
    """Run each probed attack on ``(x, y)`` (on the model's device); return the record (``keep``, ``scores``)."""
    by_name = {s["name"]: s for s in specs}
    scores: dict[str, tuple[int, float]] = {}
    for name in probe["attacks"]:
        a = make_attack(by_name[name])
        if model.is_stochastic:
            a.eot_draws = max(a.eot_draws, eot_draws)
        gen = torch.Generator().manual_seed(int(seed) * 7919 + 29)
        advs = [a.perturb(model, x[i : i + batch_size], y[i : i + batch_size], eps, gen) for i in range(0, len(y), batch_size)]
        scores[name] = _score(model, torch.cat(advs) if advs else x, y, batch_size)
    order = sorted(probe["attacks"], key=lambda n: (scores[n], probe["attacks"].index(n)))
    return {
        "points": int(len(y)),
        "keep": order[: probe["keep"]],
        "order": order,
        "scores": {n: {"correct": c, "mean_margin": round(m, 6)} for n, (c, m) in scores.items()},
    }


def apply_probe(specs: list[dict[str, Any]], probe: dict[str, Any] | None, record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The run's attack specs: probed attacks not kept run on every ``others_subset_every``-th point only."""
    if not probe or not record:
        return specs
    drop = set(probe["attacks"]) - set(record["keep"])
    k = probe["others_subset_every"]
    return [dict(s, subset_every=k) if s["name"] in drop else s for s in specs]


def probe_for_run(adapter: SNNAdapter, resolved: dict[str, Any], specs: list[dict[str, Any]], test: Any, eps: float,
                  batch_size: int, seed: int, partial: Any, progress: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None, float]:
    """The evaluation's call site: (specs to run, probe record or None, seconds an earlier process spent on it).

    The record is stored as ``probe.json`` in the partial folder, so a resumed run reuses the same choice."""
    import json
    import time

    import numpy as np

    from bench.engine import evaluation_mode, predict
    from bench.io import atomic_write_json

    probe = check_probe(resolved)
    if probe is None or eps == 0:
        return specs, None, 0.0
    f = partial / "probe.json"
    if f.is_file():
        rec = json.loads(f.read_text())
        return apply_probe(specs, probe, rec), rec, float(rec["seconds"])
    pred, _ = predict(adapter, test.x, batch_size)
    ok = np.flatnonzero((pred == test.y).numpy())[: probe["points"]]
    idx = torch.as_tensor(ok)
    dev = next(adapter.parameters()).device
    t0 = time.time()
    with evaluation_mode(adapter):
        rec = probe_attacks(adapter, specs, probe, test.x[idx].to(dev), test.y[idx].to(dev), eps, batch_size, seed)
    rec["seconds"] = round(time.time() - t0, 1)
    atomic_write_json(f, rec)
    if progress:
        print(f"  probe: kept {', '.join(rec['keep'])} of {len(probe['attacks'])} ({rec['seconds']} s)")
    return apply_probe(specs, probe, rec), rec, 0.0
