"""Automatic sanity flags, stored in each result with the numbers that raised them.

Numbering follows ../shared/spec/gauntlet.md ("Automatic sanity flags") and docs/flags.md, which
explains each one. A flag is a warning that a number may not mean what it seems; it never changes the
number itself. Flags 1-8 need only the evaluation itself; 9, 11 and 12 need black-box/transfer attacks,
attacker backward rules and the noise attack (the standard and full presets); 10 needs an eps sweep (full).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bench.adapter import SNNAdapter

#: tolerance (percentage points) for comparisons between attacks
ATTACK_TOL = 0.2
#: share of points with zero / non-finite own-SG input gradients that raises flag 7
ZERO_GRAD_SHARE = 0.10
#: allowed gap between measured and claimed clean accuracy (percentage points)
CLAIM_TOL = 0.5


@dataclass(frozen=True)
class Flag:
    id: int
    key: str
    message: str
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def eps_ball_violation(violations: dict[str, int], max_linf: dict[str, float], eps: float) -> Flag | None:
    """Flag 1: an attack returned points outside the eps-ball or the box (they were not counted)."""
    bad = {k: v for k, v in violations.items() if v}
    if not bad:
        return None
    return Flag(1, "eps_ball_violation", f"{sum(bad.values())} adversarial examples outside the eps-ball or [0,1] (not counted)",
                {"violations": bad, "max_linf": max_linf, "eps": eps})


def claim_tolerance(per_pass: list[float] | None) -> float:
    """Flag 3's tolerance: 0.5 points, plus, for a stochastic model, twice the per-pass standard deviation
    of the clean accuracy (the claim is itself one random pass; the measurement is the mean over passes)."""
    import numpy as np

    if not per_pass or len(per_pass) < 2:
        return CLAIM_TOL
    return CLAIM_TOL + 2.0 * float(np.std(per_pass, ddof=1))


def clean_vs_claim(clean_acc: float, claimed: float | None, full_test_set: bool, per_pass: list[float] | None = None) -> Flag | None:
    """Flag 3: measured clean accuracy (the mean over passes for a stochastic model) differs from the card's
    claim by more than :func:`claim_tolerance`."""
    if claimed is None or not full_test_set:
        return None
    gap = clean_acc - claimed
    tol = claim_tolerance(per_pass)
    if abs(gap) <= tol:
        return None
    return Flag(3, "clean_vs_claim", f"clean accuracy {clean_acc:.2f} differs from the claimed {claimed:.2f} by {gap:+.2f} points "
                f"(tolerance {tol:.2f})", {"clean_acc": clean_acc, "claimed_clean_acc": claimed, "tolerance": round(tol, 4)})


def probability_outputs(logits: torch.Tensor) -> Flag | None:
    """Flag 4: outputs look like probabilities (all in [0,1], rows sum to 1), not logits."""
    if logits.numel() == 0 or not torch.isfinite(logits).all():
        return None
    in_unit = bool(((logits >= 0) & (logits <= 1)).all())
    sums_to_one = bool(torch.allclose(logits.sum(1), torch.ones(len(logits)), atol=1e-3))
    if not (in_unit and sums_to_one):
        return None
    return Flag(4, "probability_outputs", "model outputs lie in [0,1] and sum to 1: they look like probabilities, not logits "
                "(cross-entropy attacks on probabilities are weak)", {"row_sum_mean": float(logits.sum(1).mean())})


def stochastic_without_eot(stochastic: bool, eot_draws: dict[str, int]) -> Flag | None:
    """Flag 5: a stochastic forward attacked without EOT (fewer than 10 gradient draws)."""
    weak = {k: v for k, v in eot_draws.items() if v < 10}
    if not stochastic or not weak:
        return None
    return Flag(5, "stochastic_without_eot", "stochastic model attacked with fewer than 10 EOT draws", {"eot_draws": weak})


@torch.no_grad()
def state_leak(model: SNNAdapter, x: torch.Tensor, other: torch.Tensor) -> Flag | None:
    """Flag 6: the same input gives different logits after another input, although every random
    stream is reseeded (so the difference is carried state, not noise)."""
    diff = model.state_diff(x, other)  # the same measurement the pre-attack contract check makes
    if diff == 0.0:
        return None
    return Flag(6, "state_leak", f"the same input gave logits differing by {diff:.3g} after another input: state carries over "
                "between forwards", {"max_abs_diff": diff})


def zero_gradients(stats: dict[str, dict[str, int]], own_attacks: list[str]) -> Flag | None:
    """Flag 7: zero or NaN input gradients under the model's own SG for many points. ``own_attacks`` are the
    white-box attacks on the evaluated model's own SG (:func:`bench.masking.own_gradient_attacks`: no
    transfer source's, no BPDA's gradients)."""
    pts = sum(stats[a]["gradient_points"] for a in own_attacks if a in stats)
    bad = sum(stats[a]["zero_grad"] + stats[a]["nonfinite_grad"] for a in own_attacks if a in stats)
    if pts == 0 or bad / pts <= ZERO_GRAD_SHARE:
        return None
    return Flag(7, "zero_or_nan_gradients", f"{100 * bad / pts:.1f}% of own-SG input gradients were zero or non-finite "
                "(gradient masking or dead neurons)", {"share": bad / pts, "points": pts})


def single_step_beats_iterative(standalone: dict[str, float], kinds: dict[str, str],
                                per_pass: dict[str, list[float]] | None = None) -> Flag | None:
    """Flag 8: a single-step attack (FGSM) leaves lower accuracy than an iterative one run standalone.

    For a stochastic model both numbers are means over the scoring passes (EOT-averaged) and the margin is
    ``max(0.2, spread_tolerance(per-pass accuracies of both))`` (:func:`bench.stochastic.spread_tolerance`)."""
    single = {k: v for k, v in standalone.items() if kinds.get(k) == "fgsm"}
    iterative = {k: v for k, v in standalone.items() if kinds.get(k) not in ("fgsm", None)}
    if not single or not iterative:
        return None
    s_name, s_acc = min(single.items(), key=lambda kv: kv[1])
    i_name, i_acc = min(iterative.items(), key=lambda kv: kv[1])
    tol = ATTACK_TOL
    if per_pass and s_name in per_pass and i_name in per_pass:
        from bench.stochastic import spread_tolerance

        tol = max(tol, spread_tolerance(per_pass[s_name], per_pass[i_name]))
    if s_acc >= i_acc - tol:
        return None
    return Flag(8, "single_step_beats_iterative", f"{s_name} ({s_acc:.2f}) beats {i_name} ({i_acc:.2f}): the iterative attack is "
                "failing (masked or too small step)", {s_name: s_acc, i_name: i_acc})


# -- flags that need the standard / full presets' attacks ------------------------------------------------
#: flag 2: share of probe points whose outcome may change at eps = 0 (0: any change raises the flag)
EPS0_TOL = 0.0
#: flag 10: allowed rise of accuracy from one sweep eps to the next (percentage points)
MONOTONE_TOL = 1.0
#: flag 11: the best attacker SG may beat the model's own SG by at most this many points
SG_TOL = 2.0
#: flag 12: noise "nearly as strong" = noise achieves at least this share of the attacks' accuracy drop
NOISE_SHARE = 0.9


def _category(kind: str) -> str:
    from attacks.algorithms import attack_category

    return attack_category(kind)


def _acc(o: Any, names: list[str]) -> float:
    from bench.engine import mask_accuracy

    return mask_accuracy(o.mask_of(names), o.passes)[0]


def eps0_mismatch(check: dict[str, Any] | None) -> Flag | None:
    """Flag 2: running every attack at eps = 0 (on a probe of points) does not reproduce clean accuracy."""
    if not check:
        return None
    tol = float(check.get("tolerance", 0.0))  # stochastic model: the spread of the per-pass means
    if "tolerance" in check:
        if abs(check["robust_acc"] - check["clean_acc"]) <= tol:
            return None
    elif not check["changed_by"] and check["robust_acc"] == check["clean_acc"]:
        return None
    return Flag(2, "eps0_mismatch", f"at eps = 0 the attacks changed the outcome of {sum(check['changed_by'].values())} "
                f"probe point(s): accuracy {check['robust_acc']:.2f} vs clean {check['clean_acc']:.2f}", dict(check))


def blackbox_beats_whitebox(o: Any, preset: dict[str, Any]) -> Flag | None:
    """Flag 9: black-box or transfer attacks break more than 0.2 points' worth of accuracy that the
    white-box ensemble left standing (AutoAttack's own check on Square, generalised).

    ``acc(white-box ensemble) - acc(white-box ensemble + black-box/transfer) > 0.2``. Exact when the
    black-box and transfer attacks ran on every point the white-box attacks left (the presets run them
    after the white-box attacks, or on every point).
    """
    kinds = {a["name"]: a["attack"] for a in preset["attacks"]}
    wb = [n for n, k in kinds.items() if _category(k) == "whitebox"]
    bb = [n for n, k in kinds.items() if _category(k) in ("blackbox", "transfer")]
    if not wb or not bb:
        return None
    base = _acc(o, wb)
    both = _acc(o, wb + bb)
    if base - both <= ATTACK_TOL:
        return None
    per = {n: round(base - _acc(o, wb + [n]), 4) for n in bb}
    best = max(per, key=per.get)
    return Flag(9, "blackbox_beats_whitebox", f"black-box/transfer attacks lower the white-box ensemble's {base:.2f} to {both:.2f} "
                f"({best}: -{per[best]:.2f}): white-box gradients are masked somewhere",
                {"whitebox_acc": base, "with_blackbox_acc": both, "drop_by_attack": per})


def eps_monotonicity(sweep: dict[str, Any] | None, eps: float, robust_acc: float) -> Flag | None:
    """Flag 10: the eps sweep's accuracy rises with eps (by > 1 point), or stays above chance (the
    majority-class share of the sweep's points) at the largest eps. At eps >= 0.5 every image can be moved
    to the same grey image, so any accuracy above the majority-class share proves the attacks fail there.
    """
    if not sweep:
        return None
    accs = sorted(((float(e), a) for e, a in sweep["robust_acc"].items()), key=lambda t: t[0])
    rises = [(e0, a0, e1, a1) for (e0, a0), (e1, a1) in zip(accs, accs[1:]) if a1 > a0 + MONOTONE_TOL]
    e_max, a_max = accs[-1]
    chance = float(sweep["majority_class_pct"])
    not_zero = a_max > chance
    if not rises and not not_zero:
        return None
    parts = []
    if rises:
        parts.append("accuracy rises with eps: " + ", ".join(f"{a0:.1f}% at {e0:g} -> {a1:.1f}% at {e1:g}" for e0, a0, e1, a1 in rises))
    if not_zero:
        parts.append(f"{a_max:.1f}% at eps {e_max:g}, above the majority-class share {chance:.1f}%")
    return Flag(10, "eps_monotonicity", "; ".join(parts) + ": attacks fail at large budgets",
                {"robust_acc_by_eps": dict(sweep["robust_acc"]), "majority_class_pct": chance, "points": sweep["points"]})


#: flag 11: significance level of the paired exact McNemar test, Bonferroni-corrected over the rules compared
SG_ALPHA = 0.05
#: keys that must agree for an own-SG attack to be a rule attack's twin (same algorithm and budget)
TWIN_KEYS = ("attack", "steps", "restarts", "step_size_ratio", "loss", "queries", "targets")


def _prior(specs: list[dict[str, Any]], i: int) -> set[str]:
    """The attacks whose breaks removed points from attack ``i``'s targets (its cascade base)."""
    a = specs[i]
    if a.get("unbroken_by"):
        return set(a["unbroken_by"])
    if a.get("on") == "all":
        return set()
    return {b["name"] for b in specs[:i]}


def own_sg_twin(spec: dict[str, Any], specs: list[dict[str, Any]]) -> str | None:
    """The own-SG attack with the same algorithm and budget as ``spec`` (:data:`TWIN_KEYS`) whose targets
    were chosen independently of it: neither attack's breaks removed points from the other's targets (an
    own-SG attack that chose ``spec``'s survivors would count zero breaks on them by construction)."""
    idx = {a["name"]: i for i, a in enumerate(specs)}
    me = idx[spec["name"]]
    for i, a in enumerate(specs):
        if a is spec or a.get("rule", "own") != "own" or a.get("bpda") or a.get("when"):
            continue
        if spec["name"] in _prior(specs, i) or a["name"] in _prior(specs, me):
            continue
        if all(a.get(k) == spec.get(k) for k in TWIN_KEYS):
            return a["name"]
    return None


def sg_sensitivity(o: Any, preset: dict[str, Any]) -> Flag | None:
    """Flag 11: an attacker backward rule beats the model's own SG at the same algorithm and budget.

    Like with like: each white-box attack with a rule other than ``own`` is paired with its own-SG twin
    (:func:`own_sg_twin`: same algorithm, steps, restarts, step size) on the points both ran on. A point
    counts as broken by an attack only when it was broken through a non-zero gradient
    (``ChunkOutcome.alive``: the input gradient under the attack's rule was non-zero at the clean point or
    at the example), so points that fell to the random start with every gradient zero count for nobody.
    The flag fires when ``gain = (rule-only breaks - twin-only breaks) / n_points > 2`` points **and** the
    paired exact McNemar test (:func:`bench.compare.mcnemar_exact`) gives ``p < 0.05 / (rules compared)``.
    Rules without a twin in the preset are not compared.
    """
    from bench.stats import mcnemar_exact
    from bench.engine import BROKE, NOT_RUN

    specs = preset["attacks"]
    n = len(o.robust)
    pairs = []
    for a in specs:
        if a.get("rule", "own") == "own" or a.get("bpda") or _category(a["attack"]) != "whitebox" or a["name"] not in o.per_attack:
            continue
        twin = own_sg_twin(a, specs)
        if twin is not None and twin in o.per_attack:
            pairs.append((a, twin))
    if not pairs or n == 0:
        return None
    alpha = SG_ALPHA / len(pairs)
    rows: dict[str, dict[str, Any]] = {}
    for a, twin in pairs:
        sr, st = o.per_attack[a["name"]], o.per_attack[twin]
        both = (sr != NOT_RUN) & (st != NOT_RUN)
        if not both.any():
            continue
        zeros = np.zeros(n, dtype=bool)
        r_broke = (sr == BROKE) & o.alive.get(a["name"], zeros)
        t_broke = (st == BROKE) & o.alive.get(twin, zeros)
        rule_only, twin_only, p = mcnemar_exact(~t_broke[both], ~r_broke[both])
        gain = 100.0 * (rule_only - twin_only) / n
        rows[a["name"]] = {"twin": twin, "rule": a["rule"], "points": int(both.sum()), "rule_only": rule_only,
                           "twin_only": twin_only, "gain": round(gain, 4), "p": p}
    hits = {k: v for k, v in rows.items() if v["gain"] > SG_TOL and v["p"] < alpha}
    if not hits:
        return None
    best = max(hits, key=lambda k: hits[k]["gain"])
    h = hits[best]
    return Flag(11, "sg_sensitivity", f"{best} (rule {h['rule']}) breaks {h['gain']:.2f} points more than its own-SG twin {h['twin']} "
                f"on the same {h['points']} points (McNemar p = {h['p']:.2g} < {alpha:.2g}): a fixed-surrogate evaluation "
                "overestimates robustness", {"best_attack": best, "alpha": alpha, "pairs": rows})


def noise_as_strong(o: Any, preset: dict[str, Any]) -> Flag | None:
    """Flag 12: uniform random noise at eps achieves at least 90% of the accuracy drop of the attacks."""
    kinds = {a["name"]: a["attack"] for a in preset["attacks"]}
    noise = [n for n, k in kinds.items() if _category(k) == "noise"]
    attacks = [n for n, k in kinds.items() if _category(k) != "noise"]
    if not noise or not attacks:
        return None
    clean = _acc(o, [])
    noise_acc = _acc(o, noise)
    attack_acc = _acc(o, attacks)
    drop_noise, drop_attack = clean - noise_acc, clean - attack_acc
    if drop_noise < NOISE_SHARE * drop_attack:
        return None
    return Flag(12, "noise_as_strong", f"uniform noise lowers accuracy by {drop_noise:.2f} points, the attacks by {drop_attack:.2f}: "
                "the attacks are barely stronger than chance",
                {"clean_acc": clean, "noise_acc": noise_acc, "attacks_acc": attack_acc})
