"""Model analysis: membrane potential distributions, Omega, firing rates and input-gradient sparsity.

This is the one reporting step that runs a model (forward/backward passes on clean inputs and one PGD with
the model's own surrogate to get adversarial inputs). It stores everything the reports need as data, in
``reports/results/<dataset>/<model_id>/analysis.json``, so that the leaderboard and the plots stay pure
functions of stored files and can be redrawn without the model.

Definitions (x = H - theta, the pre-spike membrane potential recorded by :meth:`SNNAdapter.recording`):

* **Omega (share)**: the fraction of recorded x with ``|x| <= w``, where ``w`` is the half-width of the
  gradient-available window of the model's training surrogate
  (:func:`attacks.backward_rules.support_halfwidth`; gamma for a triangle SG). Averaged per layer over
  time steps, points and neurons; the model's Omega is the mean over its spiking layers.
* **Omega (Gaussian fit)**, MPD-SGR's closed form (Jiang et al., arXiv 2511.12199):
  ``Phi((mu + w)/sigma) - Phi((mu - w)/sigma)`` with mu, sigma the batch statistics of x per channel and
  time step (over points and spatial positions), averaged over channels and time steps.
* **Firing rate**: the fraction of x >= 0 (spikingjelly's Heaviside fires at x >= 0).
* **Input-gradient sparsity**: the share of exactly-zero entries of d CE / d input under the model's own SG on
  clean inputs, the share of points whose whole input gradient is zero, and the mean l1 norm per point.

Every spiking layer the adapter instruments is analysed; the zoo's architectures read out with a
non-spiking linear layer, so MPD-SGR's "output layer excluded" holds without special-casing.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.config import config_hash, load_config, resolve_preset, threat_model_config
from bench.errors import BenchError
from bench.io import atomic_write_json
from bench.store import ANALYSIS_FILE, analysis_path, load_analyses  # noqa: F401  (re-exported: stored analyses are read by the reports)

ANALYSIS_VERSION = 1
#: fixed histogram range for x = H - theta (absolute units), so that models share bins
HIST_RANGE = (-4.0, 4.0)
HIST_BINS = 160
DEFAULT_POINTS = 64


def omega_share(x: torch.Tensor | np.ndarray, halfwidth: float) -> float:
    """Fraction of entries with ``|x| <= halfwidth`` (inside the SG's gradient-available window)."""
    t = torch.as_tensor(x)
    if t.numel() == 0:
        raise BenchError("omega_share: no membrane potentials recorded")
    return float((t.abs() <= halfwidth).double().mean())


def _channel_view(x: torch.Tensor) -> torch.Tensor:
    """[T, N, C, ...] -> [T, C, N * spatial] (a linear layer's features count as channels)."""
    t, n = x.shape[:2]
    c = x.shape[2] if x.dim() > 2 else 1
    return x.reshape(t, n, c, -1).permute(0, 2, 1, 3).reshape(t, c, -1)


def omega_gaussian(x: torch.Tensor, halfwidth: float) -> float:
    """MPD-SGR's Gaussian-fit Omega: mean over (t, c) of ``Phi((mu+w)/s) - Phi((mu-w)/s)``.

    ``x`` is a recorded potential [T, N, C, ...] (or [T, N, F]); mu and sigma are batch statistics per
    time step and channel. A channel with zero spread counts as all-in or all-out of the window.
    """
    v = _channel_view(x.double())
    mu = v.mean(-1)
    sigma = v.std(-1, unbiased=False)
    if not math.isfinite(halfwidth):
        return 1.0
    degenerate = sigma < 1e-12
    s = sigma.clamp_min(1e-12)
    om = torch.special.ndtr((mu + halfwidth) / s) - torch.special.ndtr((mu - halfwidth) / s)
    om = torch.where(degenerate, (mu.abs() <= halfwidth).double(), om)
    return float(om.mean())


def firing_rate(x: torch.Tensor) -> float:
    """Fraction of entries that spike (x >= 0)."""
    return float((x >= 0).double().mean())


def histogram(x: torch.Tensor, lo: float = HIST_RANGE[0], hi: float = HIST_RANGE[1], bins: int = HIST_BINS) -> dict[str, Any]:
    """Bin counts of ``x`` on a fixed grid, with the counts below and above the range."""
    t = x.detach().double().flatten()
    inside = (t >= lo) & (t <= hi)
    counts = torch.histc(t[inside], bins=bins, min=lo, max=hi) if bool(inside.any()) else torch.zeros(bins)
    return {
        "counts": [int(c) for c in counts.round().long().tolist()],
        "underflow": int((t < lo).sum()),
        "overflow": int((t > hi).sum()),
        "total": int(t.numel()),
    }


def layer_stats(x: torch.Tensor, halfwidth: float) -> dict[str, Any]:
    """Every per-layer number the reports show, for one recorded potential [T, N, ...]."""
    xd = x.double()
    return {
        "omega": round(omega_share(xd, halfwidth), 6),
        "omega_gauss": round(omega_gaussian(xd, halfwidth), 6),
        "firing_rate": round(firing_rate(xd), 6),
        "mean": round(float(xd.mean()), 6),
        "std": round(float(xd.std(unbiased=False)), 6),
        "hist": histogram(xd),
    }


def _record(model: Any, x: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """Concatenated ``H - theta`` per layer over batches (dim 1 = points), in the adapter's neuron order."""
    parts: dict[str, list[torch.Tensor]] = {}
    preds = []
    for i in range(0, len(x), batch_size):
        with torch.no_grad(), model.recording() as rec:
            preds.append(model(x[i : i + batch_size]).argmax(1))
        for name, r in rec.items():
            parts.setdefault(name, []).append(r)
    out = {k: torch.cat(v, dim=1) for k, v in parts.items()}
    out["__pred__"] = torch.cat(preds)
    return out


def _input_gradients(model: Any, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    grads = []
    with model.backward_rule("own"):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].clone().requires_grad_(True)
            loss = F.cross_entropy(model(xb), y[i : i + batch_size], reduction="sum")
            # a forward that detaches its input (a phase encoder) has no graph: every input gradient is zero
            g = torch.autograd.grad(loss, xb, allow_unused=True)[0] if loss.requires_grad else None
            grads.append(torch.zeros_like(xb) if g is None else g.detach())
    return torch.cat(grads)


def analyze(
    model_id: str,
    n_points: int = DEFAULT_POINTS,
    eps: float | None = None,
    threat_model: str = "Linf",
    device: str = "auto",
    batch_size: int | None = None,
    seed: int | None = None,
    results_root: Path | None = None,
    force: bool = False,
) -> tuple[dict[str, Any], Path, bool]:
    """Analyse one model (zoo id or card path); return (analysis, its path, whether it was reused).

    Adversarial inputs come from PGD with the model's own SG at ``eps`` (default: the threat model's
    primary eps), with the steps and step size of the ``quick`` preset's own-SG PGD.
    """
    from attacks.algorithms import PGD
    from attacks.backward_rules import support_halfwidth
    from bench.data import load_dataset
    from bench.device import resolve_device
    from models_zoo.lookup import find_card
    from models_zoo.zoo import card_rule, load_model

    cfg = load_config()
    card = find_card(model_id)
    tm = threat_model_config(threat_model, cfg)
    eps = float(tm["eps"] if eps is None else eps)
    if not math.isfinite(eps) or not 0 <= eps <= 1:
        raise BenchError(f"--eps must be in [0, 1], got {eps}")
    if n_points < 1:
        raise BenchError(f"--points must be >= 1, got {n_points}")
    from bench.limits import check_positive, check_seed

    seed = check_seed(cfg["defaults"]["seed"] if seed is None else seed)
    batch_size = check_positive(batch_size, "--batch-size") or int(cfg["defaults"]["batch_size"])
    quick = resolve_preset("quick", cfg)
    own_pgd = next((a for a in quick["attacks"] if a["attack"] == "pgd" and a["rule"] == "own"), {"steps": 20, "step_size_ratio": 0.25, "restarts": 1})
    rule = card_rule(card)
    halfwidth = support_halfwidth(rule)
    test = load_dataset(card.dataset).test.head(n_points)
    config = {
        "analysis_version": ANALYSIS_VERSION,
        "model_id": card.id,
        "model_sha256": card.sha256,
        "dataset": card.dataset,
        "split_hash": test.index_hash,
        "n_points": len(test),
        "threat_model": threat_model,
        "eps": eps,
        "attack": {"attack": "pgd", "rule": "own", "steps": int(own_pgd.get("steps", 20)),
                   "step_size_ratio": float(own_pgd.get("step_size_ratio", 0.25)), "restarts": int(own_pgd.get("restarts", 1))},
        "seed": seed,
        "hist_range": list(HIST_RANGE),
        "hist_bins": HIST_BINS,
    }
    h = config_hash(config)
    out = analysis_path(card, results_root)
    if out.is_file() and not force:
        try:
            existing = json.loads(out.read_bytes().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            existing = {}
        if isinstance(existing, dict) and existing.get("analysis_hash") == h:
            return existing, out, True

    t0 = time.time()
    dev = resolve_device(device)
    model = load_model(card, dev, seed=seed)
    x, y = test.x.to(dev), test.y.to(dev)
    clean = _record(model, x, batch_size)
    gen = torch.Generator().manual_seed(seed)
    attack = PGD(rule="own", steps=config["attack"]["steps"], step_size_ratio=config["attack"]["step_size_ratio"],
                 restarts=config["attack"]["restarts"])
    x_adv = torch.cat([attack.perturb(model, x[i : i + batch_size], y[i : i + batch_size], eps, gen) for i in range(0, len(x), batch_size)])
    adv = _record(model, x_adv, batch_size)
    grads = _input_gradients(model, x, y, batch_size)

    layers = []
    names = [k for k in clean if k != "__pred__"]
    for i, name in enumerate(names):
        layers.append({
            "index": i + 1,
            "name": name,
            "shape": list(clean[name].shape[2:]),
            "clean": layer_stats(clean[name], halfwidth),
            "adversarial": layer_stats(adv[name], halfwidth),
        })
    flat = grads.flatten(1)
    summary = {
        "omega_clean": round(float(np.mean([lay["clean"]["omega"] for lay in layers])), 6),
        "omega_adv": round(float(np.mean([lay["adversarial"]["omega"] for lay in layers])), 6),
        "omega_gauss_clean": round(float(np.mean([lay["clean"]["omega_gauss"] for lay in layers])), 6),
        "omega_gauss_adv": round(float(np.mean([lay["adversarial"]["omega_gauss"] for lay in layers])), 6),
        "firing_rate_clean": round(float(np.mean([lay["clean"]["firing_rate"] for lay in layers])), 6),
        "firing_rate_adv": round(float(np.mean([lay["adversarial"]["firing_rate"] for lay in layers])), 6),
        "grad_zero_share": round(float((flat == 0).double().mean()), 6),
        "grad_zero_points_share": round(float((flat == 0).all(1).double().mean()), 6),
        "grad_l1_mean": round(float(flat.abs().sum(1).double().mean()), 6),
        "clean_acc_subset": round(100 * float((clean["__pred__"] == y).double().mean()), 4),
        "adv_acc_subset": round(100 * float((adv["__pred__"] == y).double().mean()), 4),
    }
    from bench.provenance import provenance

    analysis = {
        "kind": "analysis",
        "analysis_version": ANALYSIS_VERSION,
        "analysis_hash": h,
        "model_id": card.id,
        "family": card.family,
        "dataset": card.dataset,
        "rule": rule.spec(),
        "halfwidth": round(halfwidth, 6) if math.isfinite(halfwidth) else None,
        "eps": eps,
        "threat_model": threat_model,
        "n_points": len(test),
        "layers": layers,
        "summary": summary,
        "config": config,
        "provenance": provenance(dev, seed, batch_size, batch_size, time.time() - t0),
    }
    atomic_write_json(out, analysis)
    return analysis, out, False
