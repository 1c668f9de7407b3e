"""`snnbench perf`: how close the gauntlet runs to the hardware floor, measured in one run.

All figures are ratios against references measured in the same process on the same points and batch
size, because the machine is shared and noisy; absolute seconds are printed for context only.

(a) floor: seconds per point per iteration of one forward + backward through T steps for the input
    gradient (no attack bookkeeping);
(b) our PGD-k per point per iteration, and (b)/(a): ``pgd_full`` runs every point through every iteration
    (early stop off), so its ratio to (a) is the attack's own overhead per gradient; ``pgd`` is the
    preset's PGD, which stops iterating on points it has broken (same outcomes), and can be below (a);
(c) torchattacks PGD at the same budget (when the optional peer is installed), and our speed ratio;
(d) pyautoattack's AutoAttack standard vs our ``standard`` preset on the same points: wall-time ratio
    and both robust accuracies (ours must not be higher) — when the ``standard`` preset exists;
(e) peak memory (CPU resident set size, or CUDA peak allocation).
"""

from __future__ import annotations

import resource
import time
from typing import Any

import torch
import torch.nn.functional as F

from attacks.algorithms import PGD
from bench.adapter import SNNAdapter


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _floor_batch(model: SNNAdapter, xb: torch.Tensor, yb: torch.Tensor, steps: int) -> None:
    """(a) on one batch: ``steps`` bare forward+backward passes for the input gradient."""
    for _ in range(steps):
        xa = xb.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xa), yb, reduction="sum")
        torch.autograd.grad(loss, xa)


def _pgd_batch(model: SNNAdapter, xb: torch.Tensor, yb: torch.Tensor, eps: float, steps: int, gen: torch.Generator,
               early_stop: bool = True) -> int:
    """(b) on one batch: our PGD-k (own SG, random start, best iterate); returns the robust count."""
    x_adv = PGD(steps=steps, restarts=1, early_stop=early_stop).perturb(model, xb, yb, eps, gen)
    with torch.no_grad():
        return int((model(x_adv).argmax(1) == yb).sum())


def _torchattacks_batch(attack: Any, model: SNNAdapter, xb: torch.Tensor, yb: torch.Tensor) -> int:
    x_adv = attack(xb, yb)
    with torch.no_grad():
        return int((model(x_adv).argmax(1) == yb).sum())


def _timed(fn, dev: torch.device) -> tuple[float, Any]:
    _sync(dev)
    t0 = time.perf_counter()
    out = fn()
    _sync(dev)
    return time.perf_counter() - t0, out


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_perf(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, batch_size: int) -> dict[str, Any]:
    """Measure (a), (b), (c) and (e) in one run.

    The machine is shared: the candidates are interleaved batch by batch in ABBA order (floor, ours,
    [peer], then reversed on the next batch), so load changes hit all of them alike, and each ratio is
    reported both as total-time ratio and as the median of per-batch ratios.
    """
    import statistics

    dev = next(model.parameters()).device
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        import torchattacks  # optional peer

        peer = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=steps, random_start=True)
    except ImportError:
        peer = None
    torch.manual_seed(0)
    _floor_batch(model, x[:batch_size].to(dev), y[:batch_size].to(dev), 1)  # warm-up
    totals = {"floor": 0.0, "ours": 0.0, "ours_full": 0.0, "peer": 0.0}
    robust = {"ours": 0, "ours_full": 0, "peer": 0}
    ratios_ours, ratios_full, ratios_peer = [], [], []
    for bi, i in enumerate(range(0, len(y), batch_size)):
        xb, yb = x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)
        jobs = [
            ("floor", lambda: _floor_batch(model, xb, yb, steps)),
            # the same random start for both PGD runs of a batch: early stop must not change any outcome
            ("ours", lambda: _pgd_batch(model, xb, yb, eps, steps, torch.Generator().manual_seed(bi))),
            ("ours_full", lambda: _pgd_batch(model, xb, yb, eps, steps, torch.Generator().manual_seed(bi), early_stop=False)),
        ]
        if peer is not None:
            jobs.append(("peer", lambda: _torchattacks_batch(peer, model, xb, yb)))
        secs = {}
        for name, fn in (jobs if bi % 2 == 0 else jobs[::-1]):
            secs[name], out = _timed(fn, dev)
            totals[name] += secs[name]
            if name in robust:
                robust[name] += out
        ratios_ours.append(secs["ours"] / secs["floor"])
        ratios_full.append(secs["ours_full"] / secs["floor"])
        if peer is not None:
            ratios_peer.append(secs["peer"] / secs["ours"])
    pi = len(y) * steps
    return {
        "points": len(y),
        "steps": steps,
        "batch_size": batch_size,
        "eps": eps,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "floor_s_per_point_iter": totals["floor"] / pi,
        "pgd_s_per_point_iter": totals["ours"] / pi,
        "pgd_over_floor": totals["ours"] / totals["floor"],
        "pgd_over_floor_median_batch": statistics.median(ratios_ours),
        "pgd_robust_acc": 100.0 * robust["ours"] / len(y),
        "pgd_full_s_per_point_iter": totals["ours_full"] / pi,
        "pgd_full_over_floor": totals["ours_full"] / totals["floor"],
        "pgd_full_over_floor_median_batch": statistics.median(ratios_full),
        "pgd_full_robust_acc": 100.0 * robust["ours_full"] / len(y),
        "torchattacks_s_per_point_iter": None if peer is None else totals["peer"] / pi,
        "speedup_vs_torchattacks": None if peer is None else totals["peer"] / totals["ours"],
        "speedup_vs_torchattacks_median_batch": None if peer is None else statistics.median(ratios_peer),
        "torchattacks_robust_acc": None if peer is None else 100.0 * robust["peer"] / len(y),
        "peak_memory_mb": peak_memory_mb(dev),
    }


def family_seconds(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Where a preset's time went: per attack family, the seconds stored in the result's per-attack stats
    (``ms``, the attack's perturb + re-score time summed over chunks) and the points it attacked."""
    out: dict[str, dict[str, Any]] = {}
    for fam, f in (result.get("families") or {}).items():
        attacked = sum(int(result["per_attack"][m]["stats"].get("attacked", 0)) for m in f["attacks"])
        out[fam] = {"seconds": float(f.get("seconds", 0.0)), "attacked": attacked, "n_broken": int(f.get("n_broken", 0))}
    return out


def paired_robust(points_a: Any, points_b: Any) -> dict[str, Any]:
    """Per-point worst case of two evaluations of the same points (points CSVs, joined on ``index``):
    points robust only under a, only under b, and the exact two-sided McNemar p-value."""
    import pandas as pd

    from bench.compare import mcnemar_exact

    a, b = pd.read_csv(points_a), pd.read_csv(points_b)
    m = a[["index", "robust"]].merge(b[["index", "robust"]], on="index", suffixes=("_a", "_b"))
    only_a, only_b, p = mcnemar_exact(m["robust_a"].to_numpy(bool), m["robust_b"].to_numpy(bool))
    return {"points": int(len(m)), "robust_only_first": int(only_a), "robust_only_second": int(only_b), "mcnemar_p": float(p)}


def run_preset_comparison(card: Any, points: int, device: str, batch_size: int | None, presets: tuple[str, ...] = ("quick", "standard", "autoattack-standard")) -> dict[str, Any]:
    """(d): each preset evaluated from scratch on the same ``points`` (fresh results folder, nothing reused).

    Returns per preset its wall time (tuning, cascade, flags: what ``snnbench eval`` costs), clean and
    robust accuracy and the seconds per attack family (from the stored per-attack stats), and the ratios
    ``autoattack-standard / standard`` (wall time) and the robust-accuracy difference
    ``standard - autoattack`` (must not be positive: our preset must be at least as strong), with the
    paired per-point counts (``standard_vs_autoattack``: robust only under standard / only under
    AutoAttack, McNemar p). ``batch_size=None`` runs every preset at its own batch size (``standard`` and
    ``autoattack-standard`` declare the same one, so their wall times compare like with like).
    """
    import tempfile

    from bench.evaluate import evaluate

    out: dict[str, Any] = {}
    csv: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="snnbench-perf-") as tmp:
        for name in presets:
            t0 = time.perf_counter()
            result, path, _ = evaluate(card, preset=name, limit=points, device=device, batch_size=batch_size, results_root=tmp, force=True)
            out[name] = {
                "wall_s": time.perf_counter() - t0,
                "clean_acc": result["clean_acc"],
                "robust_acc": result["robust_acc"],
                "preset_version": result["preset_version"],
                "batch_size": result["provenance"]["batch_size"],
                "family_seconds": family_seconds(result),
            }
            csv[name] = path.with_suffix(".points.csv")
        if "standard" in out and "autoattack-standard" in out:
            out["standard_vs_autoattack"] = paired_robust(csv["standard"], csv["autoattack-standard"])
    if "standard" in out and "autoattack-standard" in out:
        out["autoattack_over_standard_wall"] = out["autoattack-standard"]["wall_s"] / out["standard"]["wall_s"]
        out["standard_minus_autoattack_robust"] = out["standard"]["robust_acc"] - out["autoattack-standard"]["robust_acc"]
    return out


def plain_loop_ratio(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int, warmup: int = 2) -> float:
    """Floor with the plain autograd loop over the floor with the fused loop (:mod:`bench.fused_neuron`),
    interleaved batch by batch (ABBA); > 1 means the fused loop is faster.

    Both loops first run ``warmup`` untimed batches, so that neither pays a first-use cost inside the
    timed rounds (inside ``perf`` the fused loop is warm from (a)-(c) and the plain loop was cold). The
    ratio is noisy on a shared CPU: per-batch ratios of one process spread over 0.84-1.72 here
    (docs/presets.md, "plain vs fused"), which covers both the 0.84-0.89 of earlier ``perf`` runs and the
    1.16-1.54 measured standalone.
    """
    dev = next(model.parameters()).device
    plain = fused = 0.0
    xw, yw = x[:batch_size].to(dev), y[:batch_size].to(dev)
    for _ in range(max(0, int(warmup))):
        for use_fused in (False, True):
            for n in model.neurons:
                n.fused = use_fused
            _floor_batch(model, xw, yw, steps)
    for bi, i in enumerate(range(0, len(y), batch_size)):
        xb, yb = x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)
        order = [False, True] if bi % 2 == 0 else [True, False]
        for use_fused in order:
            for n in model.neurons:
                n.fused = use_fused
            secs, _ = _timed(lambda: _floor_batch(model, xb, yb, steps), dev)
            if use_fused:
                fused += secs
            else:
                plain += secs
    for n in model.neurons:
        n.fused = True
    return plain / fused
