"""Gradient masking that no surrogate fixes: detection, the preset's fallback attacks, and reliability.

Athalye, Carlini, Wagner (ICML 2018) and AutoAttack (Croce & Hein 2020): when the input gradients are zero
or non-finite for most points, gradient attacks cannot succeed whatever their surrogate, and the advice is
BPDA (:mod:`attacks.bpda`) or a score-based attack (Square). RobustBench does not rank such models.

* A preset's ``[presets.<name>.masking_fallback]`` table (bench.toml) names ``zero_grad_share`` (the
  share of own-SG input gradients, zero or non-finite, above which a chunk counts as masked),
  ``full_strength_queries`` (the Square budget that counts as a gradient-free attack at full strength)
  and ``attacks`` (preset entries, e.g. BPDA PGD and Square). :func:`fallback_attacks` appends them to the
  resolved preset with ``when = "masked"``: the engine runs them, on the points still unbroken, only in a
  chunk whose own-SG gradients were dead (:func:`chunk_masked`); elsewhere they are recorded as not run.
* :func:`reliability` says, for a finished result, whether its white-box gradients were dead and whether
  a gradient-free attack ran at full strength; a result with dead gradients and no such attack is
  ``unreliable``: stored in the result, shown on the leaderboard, and not ranked by its number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench.config import DEFAULT_FULL_STRENGTH_QUERIES, DEFAULT_ZERO_GRAD_SHARE, fallback_attacks  # noqa: F401  (re-exported)
from bench.errors import BenchError


def own_gradient_attacks(attacks: list[dict[str, Any]]) -> list[str]:
    """Names of the white-box attacks that take the *evaluated model's own SG* gradients: rule ``own``, no
    BPDA, not a transfer / black-box / noise attack (their gradients, if any, are another model's)."""
    from attacks.algorithms import attack_category

    return [a["name"] for a in attacks if a.get("rule", "own") == "own" and not a.get("bpda") and attack_category(a["attack"]) == "whitebox"]


def dead_share(stats: dict[str, dict[str, int]], names: list[str]) -> tuple[float, int]:
    """(share of gradient evaluations that were zero or non-finite, evaluations counted) over ``names``."""
    pts = sum(stats[a].get("gradient_points", 0) for a in names if a in stats)
    bad = sum(stats[a].get("zero_grad", 0) + stats[a].get("nonfinite_grad", 0) for a in names if a in stats)
    return (bad / pts if pts else 0.0), pts


def chunk_masked(spec: dict[str, Any], done: list[dict[str, Any]], stats: dict[str, dict[str, int]]) -> bool:
    """True when a ``when = "masked"`` attack must run: the own-SG gradients of the attacks run so far in
    this chunk were zero or non-finite for more than ``masked_share`` of the evaluations."""
    share, pts = dead_share(stats, own_gradient_attacks(done))
    return pts > 0 and share > float(spec.get("masked_share", DEFAULT_ZERO_GRAD_SHARE))


def gradient_alive(model: Any, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, rule: Any, batch_size: int) -> np.ndarray:
    """Per point: the input gradient of the cross-entropy under ``rule`` is non-zero and finite at the clean
    point or at the returned example (one backward each). A point broken while both are dead fell to the
    random start or to luck, not to the backward rule (flag 11 does not count it)."""
    import torch.nn.functional as F

    out = np.zeros(len(y), dtype=bool)
    with model.backward_rule(rule):
        for i in range(0, len(y), batch_size):
            sl = slice(i, i + batch_size)
            both = torch.cat([x[sl], x_adv[sl]]).detach().requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(model(both), torch.cat([y[sl], y[sl]]), reduction="sum")
                # a forward that detaches its input (a phase encoder, a quantizer) has no graph: zero gradient
                g = torch.autograd.grad(loss, both, allow_unused=True)[0] if loss.requires_grad else None
            flat = (torch.zeros_like(both) if g is None else g).flatten(1)
            alive = torch.isfinite(flat).all(1) & (flat != 0).any(1)
            k = len(y[sl])
            out[sl] = (alive[:k] | alive[k:]).cpu().numpy()
    return out


def reliability(attacks: list[dict[str, Any]], stats: dict[str, dict[str, int]], attacked: dict[str, int],
                table: dict[str, Any] | None, points_left: dict[str, int]) -> dict[str, Any]:
    """The result's reliability record (RobustBench's rule: zero gradients -> not ranked).

    ``gradients_dead``: the own-SG gradient attacks saw more than ``zero_grad_share`` zero / non-finite
    gradients over the whole result. ``gradient_free_full_strength``: a Square attack with at least
    ``full_strength_queries`` queries (or AutoAttack, whose last stage is Square-5000) ran on every point
    it was asked for (it attacked at least one point, or none was left). ``unreliable`` = dead and not tested.
    """
    share_limit = float((table or {}).get("zero_grad_share", DEFAULT_ZERO_GRAD_SHARE))
    q_min = int((table or {}).get("full_strength_queries", DEFAULT_FULL_STRENGTH_QUERIES))
    share, pts = dead_share(stats, own_gradient_attacks(attacks))
    dead = pts > 0 and share > share_limit
    tested = []
    for a in attacks:
        strong = (a["attack"] == "square" and int(a.get("queries", 5000)) >= q_min) or a["attack"] == "autoattack"
        if strong and (attacked.get(a["name"], 0) > 0 or points_left.get(a["name"], 1) == 0):
            tested.append(a["name"])
    rec = {
        "own_sg_dead_share": round(share, 4),
        "zero_grad_share_limit": share_limit,
        "gradients_dead": bool(dead),
        "gradient_free_full_strength": tested,
        "unreliable": bool(dead and not tested),
    }
    if rec["unreliable"]:
        rec["reason"] = (f"{100 * share:.0f}% of own-SG input gradients were zero or non-finite and no gradient-free attack "
                         f"(Square >= {q_min} queries) tested the model: its number is not ranked")
    return rec
