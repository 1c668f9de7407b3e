"""Measure what each defense claims to change, on the committed zoo: ``python -m models_zoo.measure_defenses``.

For every zoo card (MNIST-5k, the 1000 test points, model in eval mode, gradients under the model's own
training SG) it computes

* ``clean``: clean accuracy (%);
* ``omega_share``: MPD-SGR's quantity, the share of pre-spike potentials ``H - theta`` inside the SG window
  ``|H - theta| <= gamma`` (gamma = the support half-width of the model's own SG: 1 for the triangle,
  1.39 for atan(2)), counted over every spiking layer, neuron and time step (mean of the per-layer shares);
  ``omega_gauss`` is the same share from the Gaussian closed form (the training penalty, batch statistics
  over each batch of 250 points);
* ``grad_l1``: SR's quantity, the mean over points of ``||d f/dx||_1`` with f the two-class probability
  (true class vs runner-up, Liu et al. 2024);
* ``zero_grad``: the gradient-sparsity trail's quantity (Luu 2025), the share of exactly-zero entries of
  the input gradient of the cross-entropy (``near_zero_grad``: entries at most 1e-3 of the image's largest);
* ``mppd``: RSSNN's quantity, the last spiking layer's perturbation energy ``mean(Y^2)``,
  ``Y[t] = lambda Y[t-1] + I_clean[t] - I_noisy[t]`` (lambda = the layer's own leak), for Gaussian noise
  ``8/255 * N(0,1)`` (one fixed draw); ``mppd_rel`` = ``||I_clean - I_noisy||^2 / ||I_clean||^2``, a
  scale-free version (models with different leaks or input scales are compared on it too);
  ``mppd_common`` is ``mean(Y^2)`` with the same leak 0.99 (RSSNN's) for every model: ``mppd`` with each
  model's own leak is not comparable across neuron types (a LIF with tau 2 forgets half of ``Y`` every
  step, RSSNN's DLIF keeps 99%, so the same current perturbation gives a several times larger ``mppd``);
* ``hoyer``: the Hoyer sparsity ``(sqrt(n) - ||g||_1/||g||_2) / (sqrt(n) - 1)`` of each point's CE input
  gradient, averaged over points (0 = all entries equal, 1 = one non-zero entry): a scale-free measure of
  how concentrated the gradient is, for architectures whose surrogate (atan) is never exactly zero.

It writes ``models_zoo/defenses_measured.json`` (per model) and ``models_zoo/DEFENSES.md`` (mean +- std over
the seeds of each recipe).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attacks.backward_rules import support_halfwidth
from bench.adapter import SNNAdapter
from bench.data import load_dataset
from models_zoo import defenses as d
from models_zoo.neurons_dlif import leak_factor

NOISE_SIGMA = 8 / 255
#: the leak at which ``mppd_common`` compares every model: RSSNN's DLIF leak (Ding et al. 2024)
COMMON_LEAK = 0.99
BATCH = 250


def hoyer_sparsity(g: torch.Tensor) -> torch.Tensor:
    """Hoyer (2004) sparsity per row of ``g`` [N, ...]: ``(sqrt(n) - ||g||_1/||g||_2) / (sqrt(n) - 1)``.

    1 for a single non-zero entry, 0 when every entry has the same magnitude; an all-zero row counts as 1.
    """
    flat = g.flatten(1).abs()
    root_n = flat.shape[1] ** 0.5
    norm = flat.norm(dim=1)
    ratio = torch.where(norm > 0, flat.sum(1) / norm.clamp_min(1e-30), torch.ones_like(norm))
    return (root_n - ratio) / (root_n - 1)


def quick_result(model_id: str, dataset: str = "mnist5k") -> dict[str, Any] | None:
    """The model's stored ``quick`` result at the primary eps on 1000 points, if there is one."""
    from bench.config import results_dir

    hits = sorted((results_dir() / dataset / model_id).glob("quick-v*_Linf_eps0.2_n1000.json"))
    return json.loads(hits[-1].read_text()) if hits else None


def measure_model(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH, noise_seed: int = 0) -> dict[str, float]:
    """Every quantity of the module docstring for one model on (x, y)."""
    model.eval()
    gamma = support_halfwidth(model.own_rule)
    leak = leak_factor(model.neurons[-1])
    gen = torch.Generator().manual_seed(noise_seed)
    n = len(y)
    correct = 0
    inside = {}  # layer -> [count inside, total]
    omega_gauss, l1_sum, zero, near, entries = [], 0.0, 0, 0, 0
    mppd_num, mppd_rel_num, mppd_rel_den, mppd_count, mppd_common_num = 0.0, 0.0, 0.0, 0, 0.0
    hoyer_sum = 0.0
    for i in range(0, n, batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        with torch.no_grad(), model.recording("detach") as rec:
            logits = model(xb)
        correct += int((logits.argmax(1) == yb).sum())
        for name, h in rec.items():
            c = inside.setdefault(name, [0, 0])
            c[0] += int((h.abs() <= gamma).sum())
            c[1] += h.numel()
        with torch.no_grad():
            omega_gauss.append(float(d.mpd_sgr_penalty(rec, gamma)))
        # SR: l1 norm of the input gradient of the two-class probability; zero share of the CE gradient
        with model.backward_rule("own"):
            xg = xb.clone().requires_grad_(True)
            out = model(xg)
            f1, _ = d.two_class_probability(out, yb)
            (g_f,) = torch.autograd.grad(f1.sum(), xg, retain_graph=True)
            (g_ce,) = torch.autograd.grad(F.cross_entropy(out, yb, reduction="sum"), xg)
        l1_sum += float(g_f.flatten(1).abs().sum(1).sum())
        zero += int((g_ce == 0).sum())
        flat = g_ce.flatten(1).abs()
        near += int((flat <= 1e-3 * flat.amax(1, keepdim=True)).sum())
        hoyer_sum += float(hoyer_sparsity(g_ce).sum())
        entries += g_ce.numel()
        # RSSNN: perturbation energy at the last spiking layer under Gaussian noise
        noise = torch.randn(xb.shape, generator=gen) * NOISE_SIGMA
        with torch.no_grad():
            _, i_clean = d.last_layer_input(model, xb)
            _, i_noisy = d.last_layer_input(model, xb + noise)
            delta = i_clean - i_noisy
            mppd_num += float(d.ms_mppd_penalty(delta, leak)) * delta.numel()
            mppd_count += delta.numel()
            mppd_common_num += float(d.ms_mppd_penalty(delta, COMMON_LEAK)) * delta.numel()
            mppd_rel_num += float((delta ** 2).sum())
            mppd_rel_den += float((i_clean ** 2).sum())
    shares = [c[0] / c[1] for c in inside.values()]
    return {
        "clean": 100.0 * correct / n,
        "omega_share": sum(shares) / len(shares),
        "omega_gauss": sum(omega_gauss) / len(omega_gauss),
        "omega_layers": shares,
        "grad_l1": l1_sum / n,
        "zero_grad": zero / entries,
        "near_zero_grad": near / entries,
        "mppd": mppd_num / mppd_count,
        "mppd_rel": mppd_rel_num / max(mppd_rel_den, 1e-30),
        "mppd_common": mppd_common_num / mppd_count,
        "hoyer": hoyer_sum / n,
        "gamma": gamma,
        "leak": leak,
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    if len(values) == 1:
        return values[0], 0.0
    return statistics.mean(values), statistics.stdev(values)


def _fmt(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    m, s = _mean_std([v * scale for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"


#: (recipe, the quantity its paper claims to change, the direction, the reference recipe)
CLAIMS: list[tuple[str, str, str, str]] = [
    ("mpd-sgr", "omega_share", "lower", "baseline"),
    ("sr", "grad_l1", "lower", "baseline"),
    ("rssnn", "mppd", "lower", "baseline"),
    ("rssnn", "mppd_rel", "lower", "baseline"),
    ("rssnn", "mppd_common", "lower", "baseline"),
    ("sparse-arch-max", "zero_grad", "higher", "sparse-arch-avg"),
    ("sparse-arch-max", "near_zero_grad", "higher", "sparse-arch-avg"),
    ("sparse-arch-max", "hoyer", "higher", "sparse-arch-avg"),
    ("pgd-at+mpd-sgr", "omega_share", "lower", "pgd-at"),
    ("pgd-at+sr", "grad_l1", "lower", "pgd-at"),
    ("pgd-at+rssnn", "mppd", "lower", "pgd-at"),
    ("pgd-at+rssnn", "mppd_rel", "lower", "pgd-at"),
    ("pgd-at+rssnn", "mppd_common", "lower", "pgd-at"),
]


def write_report(rows: dict[str, dict[str, Any]], path: Path, command: str) -> str:
    by_recipe: dict[str, list[dict[str, Any]]] = {}
    for r in rows.values():
        by_recipe.setdefault(r["recipe"], []).append(r)
    order = ["baseline", "sr", "mpd-sgr", "rssnn", "sparse-arch-max", "sparse-arch-avg", "pgd-at", "pgd-at+sr", "pgd-at+mpd-sgr", "pgd-at+rssnn"]
    recipes = [r for r in order if r in by_recipe] + sorted(set(by_recipe) - set(order))
    lines = [
        "# What the defenses change: measured on the MNIST-5k zoo",
        "",
        f"Generated by `{command}` from the committed checkpoints (models_zoo/cards/*.toml). Mean ± std over the "
        "seeds of each recipe (n = number of seeds), on the 1000 test points, model in eval mode, gradients under "
        "each model's own training SG. Definitions: models_zoo/measure_defenses.py. The quick columns come from "
        "the stored `quick` results at eps 0.2 on the same 1000 points (`snnbench run --all-seeds`), n = seeds evaluated.",
        "",
        "| recipe | n | clean acc % | quick own-SG PGD-20 % | quick worst case % | Omega share in SG window % | Omega (Gaussian) % | mean ‖∇f‖₁ | zero input-grad entries % | near-zero entries % | Hoyer sparsity of ∇x CE | last-layer MPPD mean(Y²), own leak | same, leak 0.99 | rel. perturbation energy % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in recipes:
        rs = by_recipe[rec]
        col = lambda k, dg=2, sc=1.0: _fmt([r[k] for r in rs], dg, sc)  # noqa: E731
        quick = [q for q in (quick_result(r["id"]) for r in rs) if q]
        own = _fmt([q["own_sg_robust_acc"] for q in quick], 2) + f" (n={len(quick)})" if quick else "-"
        worst = _fmt([q["robust_acc"] for q in quick], 2) if quick else "-"
        lines.append(
            f"| {rec} | {len(rs)} | {col('clean')} | {own} | {worst} | {col('omega_share', 1, 100)} | {col('omega_gauss', 1, 100)} | "
            f"{col('grad_l1', 3)} | {col('zero_grad', 2, 100)} | {col('near_zero_grad', 2, 100)} | {col('hoyer', 3)} | {col('mppd', 4)} | {col('mppd_common', 4)} | {col('mppd_rel', 2, 100)} |"
        )
    lines += ["", "## The claims, checked", ""]
    names = {
        "omega_share": "Omega share", "grad_l1": "‖∇f‖₁", "mppd": "last-layer MPPD energy mean(Y²)",
        "mppd_rel": "relative last-layer perturbation energy", "zero_grad": "share of exactly-zero input-gradient entries",
        "near_zero_grad": "share of near-zero input-gradient entries (≤ 1e-3 of the image's largest)",
        "hoyer": "Hoyer sparsity of the CE input gradient", "mppd_common": "last-layer MPPD energy at the common leak 0.99",
    }
    for rec, key, direction, ref in CLAIMS:
        if rec not in by_recipe or ref not in by_recipe:
            continue
        a = [r[key] for r in by_recipe[rec]]
        b = [r[key] for r in by_recipe[ref]]
        ma, sa = _mean_std(a)
        mb, sb = _mean_std(b)
        holds = ma < mb if direction == "lower" else ma > mb
        separated = (ma + sa < mb - sb) if direction == "lower" else (ma - sa > mb + sb)
        verdict = "holds" if holds and separated else ("holds weakly (within one std)" if holds else "does NOT hold")
        lines.append(f"- **{rec}** vs {ref}: {names[key]} {ma:.4g} ± {sa:.2g} vs {mb:.4g} ± {sb:.2g} ({direction} claimed): {verdict}.")
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    from models_zoo.recipes import ZOO_DATASET
    from models_zoo.zoo import list_cards, load_model, zoo_dir

    p = argparse.ArgumentParser(prog="python -m models_zoo.measure_defenses", description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=None, help="only the first N test points")
    p.add_argument("--only", nargs="*", default=None, help="only these recipes")
    p.add_argument("--out", default=None, help="markdown report (default models_zoo/DEFENSES.md)")
    p.add_argument("--force", action="store_true", help="re-measure models already in defenses_measured.json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    ds = load_dataset(ZOO_DATASET)
    x, y = ds.test.x, ds.test.y
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    json_path = zoo_dir() / "defenses_measured.json"
    rows: dict[str, dict[str, Any]] = json.loads(json_path.read_text()) if json_path.is_file() else {}
    for card in list_cards():
        recipe = card.training["recipe"]
        if card.dataset != ZOO_DATASET or (args.only and recipe not in args.only):
            continue
        old = rows.get(card.id)
        if not args.force and old and old.get("sha256") == card.sha256 and old.get("n_points") == len(y):
            continue  # measured already, same checkpoint
        t0 = time.time()
        m = measure_model(load_model(card), x, y)
        m.update(id=card.id, recipe=recipe, seed=card.training["seed"], sha256=card.sha256, n_points=len(y))
        rows[card.id] = m
        print(f"{card.id}: clean {m['clean']:.2f} omega {100 * m['omega_share']:.1f}% l1 {m['grad_l1']:.3f} "
              f"zero {100 * m['zero_grad']:.2f}% mppd {m['mppd']:.4f} rel {100 * m['mppd_rel']:.2f}% ({time.time() - t0:.0f}s)", flush=True)
    # drop stale rows (a retrained checkpoint has a new hash)
    cards = {c.id: c for c in list_cards()}
    rows = {k: v for k, v in rows.items() if k in cards and cards[k].sha256 == v.get("sha256")}
    for k, v in rows.items():
        v.setdefault("id", k)
    json_path.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    out = Path(args.out) if args.out else zoo_dir() / "DEFENSES.md"
    print(write_report(rows, out, "python -m models_zoo.measure_defenses"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
