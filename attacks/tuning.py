"""Per-model tuning of a backward rule's free parameter: HART's width grid and ASSG's ternary search over A.

A preset attack may carry ``tune = {...}``; before the chunks run, :func:`tune_attack` tries candidate
values of one rule parameter with the same attack (optionally with fewer ``steps``) on a fixed set of
tuning points (the first ``points`` clean-correct points of the evaluation, in test-set order) and keeps
the value that leaves the fewest points correctly classified, ties broken by the lower mean margin
``z_y - max_{i!=y} z_i`` (a continuous score, so that the search is not flat where counts tie). Every
candidate uses the same random draws (common random numbers), so the comparison is between values, not
seeds. The papers tune on test points too: HART's ``finetune_attack`` scans its grid on the test loader
(hzc1208/HART_Attack ``utils.py``); the ASSG paper reports A in about 0.425-0.435 after a search.

``tune`` keys: ``param`` (the rule parameter), either ``grid = [...]`` (every value tried) or
``range = [lo, hi]`` with ``iterations`` (ternary search: each iteration evaluates the two inner thirds and
drops the worse outer third; the best value evaluated wins), ``points`` (default 64), ``steps`` (the
attack's ``steps`` during tuning; default: the attack's own).
"""

from __future__ import annotations

from typing import Any

import torch

from attacks.algorithms import ENGINE_KEYS, loss_values, make_attack
from attacks.backward_rules import make_rule, parse_rule
from bench.adapter import SNNAdapter
from bench.errors import BenchError

TUNE_KEYS = {"param", "grid", "range", "iterations", "points", "steps"}


def check_tune(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate an attack's ``tune`` table; return it with defaults filled in."""
    t = dict(spec.get("tune") or {})
    name = spec.get("name", spec.get("attack"))
    unknown = set(t) - TUNE_KEYS
    if unknown:
        raise BenchError(f"attack '{name}': tune takes {sorted(TUNE_KEYS)}, not {sorted(unknown)}")
    if "param" not in t:
        raise BenchError(f"attack '{name}': tune needs 'param' (the rule parameter to tune)")
    if ("grid" in t) == ("range" in t):
        raise BenchError(f"attack '{name}': tune needs exactly one of 'grid' (values) or 'range' ([lo, hi] with iterations)")
    if "grid" in t and (not isinstance(t["grid"], list) or not t["grid"]):
        raise BenchError(f"attack '{name}': tune.grid must be a non-empty list of numbers")
    if "range" in t:
        r = t["range"]
        if not isinstance(r, list) or len(r) != 2 or not float(r[0]) < float(r[1]):
            raise BenchError(f"attack '{name}': tune.range must be [lo, hi] with lo < hi")
        t.setdefault("iterations", 3)
    t.setdefault("points", 64)
    return t


def rule_with(rule: Any, param: str, value: float) -> str:
    """The canonical spec of ``rule`` with ``param`` set to ``value`` (e.g. ``hart:gamma=0.5``)."""
    base = parse_rule(rule)
    return make_rule(base.family, **{**base.params, param: float(value)}).spec()


def _score(model: SNNAdapter, x_adv: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[int, float]:
    correct, margin = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            logits = model(x_adv[i : i + batch_size])
            yy = y[i : i + batch_size]
            correct += int((logits.argmax(1) == yy).sum())
            margin += float(-loss_values(logits, yy, "margin").sum())
    return correct, margin / max(1, len(y))


def tune_attack(
    model: SNNAdapter,
    spec: dict[str, Any],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    batch_size: int,
    seed: int,
    eot_draws: int = 10,
) -> dict[str, Any]:
    """Tune ``spec``'s rule parameter on the tuning points ``(x, y)``; return the record stored in results."""
    t = check_tune(spec)
    param = t["param"]
    attack_spec = {k: v for k, v in spec.items() if k not in ENGINE_KEYS}
    attack_spec["attack"] = spec["attack"]
    attack_spec["name"] = spec.get("name", spec["attack"])
    if "steps" in t:
        attack_spec["steps"] = int(t["steps"])
    rule_with(spec.get("rule", "own"), param, t["grid"][0] if "grid" in t else t["range"][0])  # validates param early
    scores: dict[float, tuple[int, float]] = {}

    def objective(v: float) -> tuple[int, float]:
        v = round(float(v), 4)
        if v not in scores:
            a = make_attack({**attack_spec, "rule": rule_with(spec.get("rule", "own"), param, v)})
            if model.is_stochastic:
                a.eot_draws = max(a.eot_draws, eot_draws)
            gen = torch.Generator().manual_seed(int(seed) * 7919 + 17)
            advs = [a.perturb(model, x[i : i + batch_size], y[i : i + batch_size], eps, gen) for i in range(0, len(y), batch_size)]
            scores[v] = _score(model, torch.cat(advs) if advs else x, y, batch_size)
        return scores[v]

    if "grid" in t:
        method = "grid"
        for v in t["grid"]:
            objective(v)
    else:
        method = "ternary"
        lo, hi = float(t["range"][0]), float(t["range"][1])
        for _ in range(int(t["iterations"])):
            m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
            if objective(m1) <= objective(m2):
                hi = m2
            else:
                lo = m1
        objective((lo + hi) / 2)
    best = min(scores, key=lambda v: (scores[v], v))
    return {
        "param": param,
        "value": best,
        "rule": rule_with(spec.get("rule", "own"), param, best),
        "method": method,
        "points": int(len(y)),
        "steps": attack_spec.get("steps"),
        "scores": {f"{v:g}": {"correct": c, "mean_margin": round(m, 6)} for v, (c, m) in sorted(scores.items())},
    }
