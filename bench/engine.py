"""The gauntlet engine: per-point worst case over a preset's attacks (AutoAttack's cascade).

For one chunk of points:

1. a clean pass (no gradient, model's own rule): a point misclassified when clean counts as broken;
2. each attack in preset order runs on the points it is asked for (``on = "all"``: every clean-correct
   point, giving a standalone number; ``on = "unbroken"``: only points no earlier attack broke;
   ``unbroken_by = [names]``: only points none of the named earlier attacks broke, so that each member of
   an attack family is measured against the same base; ``subset_every = k``: every k-th point only);
3. every adversarial example is re-scored by a fresh forward (state reset, own rule, no gradient) and
   checked against the eps-ball (``||x_adv - x||_inf <= eps + 1e-6``) and the box [0, 1]; an example
   that violates either is *not* counted as a success and is reported (flag 1);
4. a point is robust only if every attack failed on it. Accuracies are never averaged over attacks.

Stochastic models (Poisson encoding, noisy neurons): every scoring is :data:`STOCHASTIC_PASSES` fresh
passes with common random numbers (pass r of every scoring reseeds every random stream identically), and
accuracies are reported as the mean over the passes and the worst pass. Per-attack numbers are per pass;
attacks keep trying a point until it is broken in every pass. The worst case commits ONE example per point
(the clean image or an attack's example with the lowest EOT-averaged margin) and scores it over fresh
passes (:mod:`bench.stochastic`). Gradients are averaged over >= 10 EOT draws.

Entries with ``when = "masked"`` (a preset's ``masking_fallback``: BPDA, Square) run only in a chunk whose
own-SG gradients were mostly dead (:mod:`bench.masking`); for white-box attacks on survivors the engine
records which broken points had a live gradient under the attack's rule (``alive``, for flag 11).

The model's mode, parameters' ``requires_grad`` and every neuron's rule are restored afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attacks.algorithms import attack_category, make_attack
from bench.adapter import SNNAdapter
from bench.errors import BenchError
from bench.masking import chunk_masked, gradient_alive
from bench.scoring import _pass_seed, evaluation_mode, predict  # noqa: F401  (re-exported: the engine's API)
from bench.stochastic import FRESH_OFFSET, commit, score_margin

BALL_TOL = 1e-6
NOT_RUN, SURVIVED, BROKE = -1, 0, 1


#: fresh passes per scoring for a stochastic model (the spec: accuracy over >= 10 fresh passes)
STOCHASTIC_PASSES = 10


@dataclass
class ChunkOutcome:
    """Per-point outcomes of one chunk (numpy arrays aligned with the chunk's points).

    Every scoring (the clean pass and each attack's re-score) is ``passes`` fresh forwards (1 for a
    deterministic model); ``*_mask`` arrays hold one bit per pass (bit r set = classified correctly in pass
    r). The boolean arrays are the cascade's view: ``clean_correct`` = correct in at least one pass (the
    point is attacked), ``robust`` = not broken in every pass by the worst case (later attacks still try).
    With one pass both are the plain per-point outcomes.
    """

    clean_pred: np.ndarray
    clean_correct: np.ndarray
    robust: np.ndarray
    broken_by: np.ndarray  # "" robust, "clean", or the first attack (in preset order) that broke it
    per_attack: dict[str, np.ndarray]  # NOT_RUN / SURVIVED / BROKE (BROKE = misclassified in some pass)
    violations: dict[str, int] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    nonfinite_logits: int = 0
    max_linf: dict[str, float] = field(default_factory=dict)
    passes: int = 1
    clean_mask: np.ndarray | None = None
    attack_masks: dict[str, np.ndarray] = field(default_factory=dict)  # all ones where the attack did not run
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per white-box attack run on survivors: True where it broke the point through a non-zero gradient
    alive: dict[str, np.ndarray] = field(default_factory=dict)
    #: stochastic model: pass bitmask of the ONE committed example per point over fresh passes (0 for a point
    #: misclassified in every clean pass): the robust accuracy (:mod:`bench.stochastic`); None if deterministic
    committed_mask: np.ndarray | None = None
    committed_by: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.clean_mask is None:
            self.clean_mask = self.clean_correct.astype(np.int64)
        for name, status in self.per_attack.items():
            if name not in self.attack_masks:
                self.attack_masks[name] = np.where(status == BROKE, 0, 1).astype(np.int64)

    @property
    def full(self) -> int:
        return (1 << self.passes) - 1

    def mask_of(self, names: Any = ()) -> np.ndarray:
        """Bits of the passes in which each point is clean-correct and survives every attack in ``names``."""
        m = self.clean_mask.copy()
        for n in names:
            m &= self.attack_masks[n]
        return m

    @property
    def robust_mask(self) -> np.ndarray:
        if self.committed_mask is not None:
            return self.committed_mask
        return self.mask_of(self.attack_masks)


def popcount(mask: np.ndarray) -> np.ndarray:
    """Number of set bits per entry of an int64 array (passes <= 62)."""
    m = mask.astype(np.int64).copy()
    out = np.zeros(m.shape, dtype=np.int64)
    while np.any(m):
        out += m & 1
        m >>= 1
    return out


def mask_accuracy(mask: np.ndarray, passes: int) -> tuple[float, float]:
    """(mean over passes, worst pass) accuracy in percent of a per-point pass bitmask."""
    n = len(mask)
    if n == 0:
        return 0.0, 0.0
    mean = 100.0 * float(popcount(mask).sum()) / (n * passes)
    worst = min(100.0 * float(((mask >> r) & 1).sum()) / n for r in range(passes))
    return round(mean, 4), round(worst, 4)


def _generator(seed: int, chunk: int, attack_index: int) -> torch.Generator:
    # A chunk's draws depend only on (seed, chunk index, attack index): resuming reproduces them.
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + chunk * 1_009 + attack_index)


def score(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, batch_size: int, passes: int, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """(per-point correct-pass bitmask [N], logits of the first pass [N, K]) from fresh forwards.

    With ``passes > 1`` pass r reseeds every random stream with ``seed + r`` and the batches always have the
    same layout, so the same point gets the same draws in every scoring of its chunk: a zero perturbation
    reproduces the clean pass exactly (sanity flag 2), and attacks are compared on equal draws.
    """
    if passes <= 1:
        pred, logits = predict(model, x, batch_size)
        return (pred == y).numpy().astype(np.int64), logits
    mask = np.zeros(len(y), dtype=np.int64)
    first = None
    for r in range(passes):
        with _pass_seed(model, int(seed) * 7_919 + r):
            pred, logits = predict(model, x, batch_size)
        mask |= (pred == y).numpy().astype(np.int64) << r
        first = logits if first is None else first
    return mask, first


def attack_targets(spec: dict[str, Any], clean_any: np.ndarray, robust_any: np.ndarray, broken_all: dict[str, np.ndarray]) -> np.ndarray:
    """Indices of the points an attack runs on: ``on = all`` (clean-correct), ``unbroken`` (no earlier attack
    broke it), or ``unbroken_by = [names]`` (none of those attacks broke it); ``subset_every = k`` keeps
    every k-th point of the chunk."""
    by = spec.get("unbroken_by")
    if by:
        missing = [b for b in by if b not in broken_all]
        if missing:
            raise BenchError(f"attack '{spec['name']}': unbroken_by names {missing}, which are not earlier attacks of the preset")
        keep = clean_any.copy()
        for b in by:
            keep &= ~broken_all[b]
    else:
        keep = clean_any if spec.get("on") == "all" else robust_any
    targets = np.flatnonzero(keep)
    k = int(spec.get("subset_every", 1) or 1)
    if k < 1:
        raise BenchError(f"attack '{spec['name']}': subset_every must be >= 1, got {k}")
    return targets[targets % k == 0] if k > 1 else targets


def run_chunk(
    model: SNNAdapter,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    attacks: list[dict[str, Any]],
    batch_size: int,
    seed: int,
    chunk: int,
    eot_draws: int = 10,
    on_attack_done: Any = None,
    context: dict[str, Any] | None = None,
    passes: int | None = None,
) -> ChunkOutcome:
    """Run the whole cascade on one chunk of points; ``x`` on CPU, the model on any device.

    ``passes``: fresh forwards per scoring (default: :data:`STOCHASTIC_PASSES` for a stochastic model, else 1).
    ``context`` is handed to the attacks (``model_id``, ``dataset``: transfer attacks choose their source).
    """
    dev = next(model.parameters()).device
    n = len(y)
    passes = int(passes or (STOCHASTIC_PASSES if model.is_stochastic else 1))
    if not 1 <= passes <= 62:
        raise BenchError(f"passes must be in [1, 62], got {passes}")
    full = (1 << passes) - 1
    pass_seed = int(seed) * 1_000_003 + chunk
    with evaluation_mode(model):
        clean_mask, clean_logits = score(model, x.to(dev), y, batch_size, passes, pass_seed)
        clean_pred = clean_logits.argmax(1)
        nonfinite = int((~torch.isfinite(clean_logits).all(1)).sum())
        clean_any = clean_mask != 0
        robust_mask = clean_mask.copy()
        broken_by = np.where(clean_any, "", "clean").astype(object)
        per_attack: dict[str, np.ndarray] = {}
        masks: dict[str, np.ndarray] = {}
        broken_all: dict[str, np.ndarray] = {}
        violations: dict[str, int] = {}
        stats: dict[str, dict[str, int]] = {}
        max_linf: dict[str, float] = {}
        info: dict[str, dict[str, Any]] = {}
        alive: dict[str, np.ndarray] = {}
        candidates: dict[str, tuple[np.ndarray, np.ndarray, torch.Tensor]] = {}
        clean_margin = score_margin(model, x.to(dev), y, batch_size, passes, pass_seed)[1] if passes > 1 else None
        for ai, spec in enumerate(attacks):
            t0 = time.perf_counter()
            if spec.get("when") == "masked" and not chunk_masked(spec, attacks[:ai], stats):
                # gradient-masking fallback (bench/masking.py): this chunk's own-SG gradients were alive
                per_attack[spec["name"]] = np.full(n, NOT_RUN, dtype=np.int8)
                masks[spec["name"]] = np.full(n, full, dtype=np.int64)
                broken_all[spec["name"]] = np.zeros(n, dtype=bool)
                violations[spec["name"]], max_linf[spec["name"]] = 0, 0.0
                stats[spec["name"]] = {"ms": 0, "attacked": 0, "skipped_gradients_alive": 1}
                info[spec["name"]] = {}
                if on_attack_done is not None:
                    on_attack_done(spec["name"])
                continue
            attack = make_attack(spec, context)
            if model.is_stochastic:
                attack.eot_draws = max(attack.eot_draws, eot_draws)
            name = spec["name"]
            status = np.full(n, NOT_RUN, dtype=np.int8)
            amask = np.full(n, full, dtype=np.int64)
            targets = attack_targets(spec, clean_any, robust_mask != 0, broken_all)
            gen = _generator(seed, chunk, ai)
            n_viol, worst = 0, 0.0
            x_att = x.clone()
            inside_all = np.ones(n, dtype=bool)
            for b in range(0, len(targets), batch_size):
                sel = targets[b : b + batch_size]
                idx = torch.as_tensor(sel)
                xb, yb = x[idx].to(dev), y[idx].to(dev)
                x_adv = attack.perturb(model, xb, yb, eps, gen)
                linf = (x_adv - xb).abs().flatten(1).amax(1)
                inside = (linf <= eps + BALL_TOL) & (x_adv.flatten(1).amin(1) >= 0) & (x_adv.flatten(1).amax(1) <= 1)
                n_viol += int((~inside).sum())
                worst = max(worst, float(linf.max()) if len(linf) else 0.0)
                x_att[idx] = x_adv.detach().to(x_att)
                inside_all[sel] = inside.cpu().numpy()
            if len(targets):
                if passes == 1:
                    m, _ = score(model, x_att[torch.as_tensor(targets)].to(dev), y[torch.as_tensor(targets)], batch_size, 1, pass_seed)
                else:  # the whole chunk, same layout as the clean pass: same draws per point
                    m_all, margin, _ = score_margin(model, x_att.to(dev), y, batch_size, passes, pass_seed)
                    m = m_all[targets]
                    usable = np.zeros(n, dtype=bool)
                    usable[targets] = inside_all[targets]
                    candidates[name] = (margin, usable, x_att)
                # an example outside the ball or the box never counts as a success
                m = np.where(inside_all[targets], m, full)
                amask[targets] = m
                status[targets] = np.where(m == full, SURVIVED, BROKE)
            if spec.get("on") != "all" and attack_category(spec["attack"]) == "whitebox" and (status == BROKE).any():
                hit = np.flatnonzero(status == BROKE)
                ok = np.zeros(n, dtype=bool)
                ih = torch.as_tensor(hit)
                ok[hit] = gradient_alive(model, x[ih].to(dev), x_att[ih].to(dev), y[ih].to(dev), spec.get("rule", "own"), batch_size)
                alive[name] = ok
            broke_now = (status == BROKE) & (robust_mask != 0)
            robust_mask &= amask
            newly = broke_now & (robust_mask == 0) & (broken_by == "")
            broken_by[newly] = name
            per_attack[name] = status
            masks[name] = amask
            broken_all[name] = (status != NOT_RUN) & (amask == 0)
            violations[name] = n_viol
            max_linf[name] = worst
            stats[name] = {k: int(v) for k, v in vars(attack.stats).items()}
            stats[name]["ms"] = int(1000 * (time.perf_counter() - t0))
            stats[name]["attacked"] = int(len(targets))
            info[name] = {k: v for k, v in getattr(attack, "info", {}).items()}
            if on_attack_done is not None:
                on_attack_done(name)
        committed_mask = committed_by = None
        if passes > 1:  # one committed example per point, scored over fresh passes (bench/stochastic.py)
            committed_by = commit(clean_margin, {k: (v[0], v[1]) for k, v in candidates.items()})
            x_commit = x.clone()
            for k, (_, _, xa) in candidates.items():
                sel = torch.as_tensor(np.flatnonzero(committed_by == k))
                if len(sel):
                    x_commit[sel] = xa[sel]
            fresh = score(model, x_commit.to(dev), y, batch_size, passes, pass_seed + FRESH_OFFSET)[0]
            # a point misclassified in every clean pass counts as broken; otherwise the fresh passes decide
            committed_mask = np.where(clean_mask != 0, fresh, 0).astype(np.int64)
    return ChunkOutcome(
        clean_pred=clean_pred.numpy(),
        clean_correct=clean_any,
        robust=(committed_mask if committed_mask is not None else robust_mask) != 0,
        broken_by=broken_by,
        per_attack=per_attack,
        violations=violations,
        stats=stats,
        nonfinite_logits=nonfinite,
        max_linf=max_linf,
        passes=passes,
        clean_mask=clean_mask,
        attack_masks=masks,
        info=info,
        alive=alive,
        committed_mask=committed_mask,
        committed_by=committed_by,
    )
