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
  how concentrated the gradient is, for architectures whose surrogate (atan) is never exactly zero;
* ``zero_grad_spike``, ``near_zero_grad_spike``, ``hoyer_spike``: the same three gradient-sparsity
  quantities for the gradient of the CE with respect to the ENCODED spike tensor, for models with the phase
  encoder (Luu et al. 2025, arXiv 2509.23762: their encoder detaches its input, so the pixel gradient is
  zero by construction, and the paper's claim and attack live on the spike tensor; bench/spike_domain.py).
  Model in eval mode here too (the paper crafts its attacks in train mode; the quantity is the model's).

Each defense is compared with its **matched baseline** (the card's ``matched_baseline``: same architecture,
neuron, T, encoder, SG, optimiser and budget, only the defense's knob differs), never with the plain
``baseline`` recipe, whose neuron or budget can differ. Retired cards (:func:`models_zoo.cards.retired_reason`)
are left out, as they are of every report.

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
from bench.data import Split
from bench.spike_domain import to_spike_domain
from models_zoo import defenses as d
from models_zoo.cards import retired_reason
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


def _gradient_sparsity(g: torch.Tensor) -> tuple[int, int, float]:
    """(exactly-zero entries, entries at most 1e-3 of the row's largest, summed Hoyer sparsity) of ``g``."""
    flat = g.flatten(1).abs()
    near = int((flat <= 1e-3 * flat.amax(1, keepdim=True)).sum())
    return int((g == 0).sum()), near, float(hoyer_sparsity(g).sum())


def quick_result(model_id: str, dataset: str = "mnist5k") -> dict[str, Any] | None:
    """The model's stored ``quick`` result at the primary eps on 1000 points, if there is one."""
    from bench.config import results_dir

    hits = sorted((results_dir() / dataset / model_id).glob("quick-v*_Linf_eps0.2_n1000.json"))
    return json.loads(hits[-1].read_text()) if hits else None


def measure_model(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH, noise_seed: int = 0) -> dict[str, float | None]:
    """Every pixel-space quantity of the module docstring for one model on (x, y).

    The input-gradient quantities are None for the phase encoder: it detaches the pixels (Luu's code), so
    there is no pixel gradient to measure; :func:`measure_spike_domain` measures it on the spike tensor.
    """
    model.eval()
    gamma = support_halfwidth(model.own_rule)
    leak = leak_factor(model.neurons[-1])
    gen = torch.Generator().manual_seed(noise_seed)
    pixel_grad = getattr(model, "encoder", "direct") != "phase"
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
        # (none for the phase encoder, which detaches the pixels: see measure_spike_domain)
        if pixel_grad:
            with model.backward_rule("own"):
                xg = xb.clone().requires_grad_(True)
                out = model(xg)
                f1, _ = d.two_class_probability(out, yb)
                (g_f,) = torch.autograd.grad(f1.sum(), xg, retain_graph=True)
                (g_ce,) = torch.autograd.grad(F.cross_entropy(out, yb, reduction="sum"), xg)
                l1_sum += float(g_f.flatten(1).abs().sum(1).sum())
                z_, n_, h_ = _gradient_sparsity(g_ce)
                zero, near, hoyer_sum, entries = zero + z_, near + n_, hoyer_sum + h_, entries + g_ce.numel()
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
        "grad_l1": l1_sum / n if pixel_grad else None,
        "zero_grad": zero / entries if pixel_grad else None,
        "near_zero_grad": near / entries if pixel_grad else None,
        "mppd": mppd_num / mppd_count,
        "mppd_rel": mppd_rel_num / max(mppd_rel_den, 1e-30),
        "mppd_common": mppd_common_num / mppd_count,
        "hoyer": hoyer_sum / n if pixel_grad else None,
        "gamma": gamma,
        "leak": leak,
    }


def measure_spike_domain(model: SNNAdapter, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH) -> dict[str, float]:
    """Gradient sparsity of the CE w.r.t. the encoded spike tensor (phase-encoded models; Luu et al. 2025).

    The gradient is the one the paper's spike-domain attack follows (:class:`bench.spike_domain.SpikeDomainModel`
    under the model's own SG), with BatchNorm in eval mode like every other quantity of this module.
    """
    model.eval()
    spiking, encoded = to_spike_domain(model, Split(x, y, torch.arange(len(y)).numpy(), "test"), {"craft_bn": "eval"})
    zero = near = entries = 0
    hoyer_sum = 0.0
    for i in range(0, len(y), batch_size):
        zb = encoded.x[i : i + batch_size].clone().requires_grad_(True)
        with model.backward_rule("own"):
            loss = F.cross_entropy(spiking(zb), y[i : i + batch_size], reduction="sum")
            (g,) = torch.autograd.grad(loss, zb)
        z_, n_, h_ = _gradient_sparsity(g)
        zero, near, hoyer_sum, entries = zero + z_, near + n_, hoyer_sum + h_, entries + g.numel()
    return {"zero_grad_spike": zero / entries, "near_zero_grad_spike": near / entries, "hoyer_spike": hoyer_sum / len(y)}


def _mean_std(values: list[float]) -> tuple[float, float]:
    if len(values) == 1:
        return values[0], 0.0
    return statistics.mean(values), statistics.stdev(values)


def _fmt(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    m, s = _mean_std([v * scale for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"


#: the quantities each defense's paper claims it changes, with the claimed direction; the reference is the
#: recipe's matched baseline (:func:`matched_recipes`). A defense recipe missing here is an error of the
#: report (tests/test_defenses.py checks every active card that names a matched baseline).
_SR = [("grad_l1", "lower")]
_MPD = [("omega_share", "lower")]
_RSSNN = [("mppd", "lower"), ("mppd_rel", "lower"), ("mppd_common", "lower")]
_LUU = [("zero_grad_spike", "higher"), ("near_zero_grad_spike", "higher"), ("hoyer_spike", "higher")]
PAPER_QUANTITIES: dict[str, list[tuple[str, str]]] = {
    "sr": _SR, "sr-if": _SR, "pgd-at+sr": _SR,
    "mpd-sgr": _MPD, "pgd-at+mpd-sgr": _MPD,
    "rssnn": _RSSNN, "pgd-at+rssnn-pgd": _RSSNN, "pgd-at+rssnn-pgd-rho0.1": _RSSNN,
    "luu-sew-max": _LUU,
    # adversarial training itself (matched to baseline-e6): AT claims robustness, not a mechanism quantity
    "pgd-at": [],
}


def matched_recipes(cards: list[Any]) -> dict[str, str]:
    """Defense recipe -> its matched baseline's recipe, from the cards' ``matched_baseline`` (zoo ids).

    Seeds of one recipe must agree; a matched baseline that is not a card is skipped (card validation
    reports it).
    """
    by_id = {c.id: c for c in cards}
    out: dict[str, str] = {}
    for c in cards:
        mb = c.data.get("matched_baseline")
        if not mb or mb not in by_id:
            continue
        recipe, ref = c.training["recipe"], by_id[mb].training["recipe"]
        if out.setdefault(recipe, ref) != ref:
            raise ValueError(f"recipe '{recipe}': its cards name matched baselines of two recipes ({out[recipe]}, {ref})")
    return out


def claim_checks(matched: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(recipe, quantity, direction, matched baseline recipe) for every paper quantity of every defense."""
    missing = sorted(set(matched) - set(PAPER_QUANTITIES))
    if missing:
        raise ValueError(f"defense recipe(s) {missing} have a matched baseline but no paper quantity in PAPER_QUANTITIES")
    return [(rec, key, direction, ref) for rec, ref in matched.items() for key, direction in PAPER_QUANTITIES[rec]]


def report_order(recipes: set[str], matched: dict[str, str]) -> list[str]:
    """Each matched baseline first, then its defenses (the order of PAPER_QUANTITIES), then the rest."""
    order: list[str] = []
    for rec in PAPER_QUANTITIES:
        for r in (matched.get(rec), rec):
            if r and r in recipes and r not in order:
                order.append(r)
    return order + sorted(recipes - set(order))


def _col(rs: list[dict[str, Any]], key: str, digits: int = 2, scale: float = 1.0) -> str:
    """Mean +- std of ``key`` over the seeds that have it ("-" when none has: e.g. spike-domain quantities)."""
    vals = [r[key] for r in rs if r.get(key) is not None]
    return _fmt(vals, digits, scale) if vals else "-"


def write_report(rows: dict[str, dict[str, Any]], path: Path, command: str, matched: dict[str, str]) -> str:
    by_recipe: dict[str, list[dict[str, Any]]] = {}
    for r in rows.values():
        by_recipe.setdefault(r["recipe"], []).append(r)
    recipes = report_order(set(by_recipe), matched)
    lines = [
        "# What the defenses change: measured on the MNIST-5k zoo",
        "",
        f"Generated by `{command}` from the committed checkpoints (models_zoo/cards/*.toml). Mean ± std over the "
        "seeds of each recipe (n = number of seeds), on the 1000 test points, model in eval mode, gradients under "
        "each model's own training SG. Definitions: models_zoo/measure_defenses.py. The quick columns come from "
        "the stored `quick` results at eps 0.2 on the same 1000 points (`snnbench run --all-seeds`), n = seeds evaluated. "
        "Each defense follows its matched baseline (the card's `matched_baseline`); retired cards are left out. "
        "The spike-tensor columns are for phase-encoded models (Luu), whose encoder detaches the pixel gradient.",
        "",
        "| recipe | matched baseline | n | clean acc % | quick own-SG PGD-20 % | quick worst case % | Omega share in SG window % | Omega (Gaussian) % | mean ‖∇f‖₁ | zero input-grad entries % | near-zero entries % | Hoyer sparsity of ∇x CE | zero spike-grad entries % | near-zero spike-grad % | Hoyer of ∇spikes CE | last-layer MPPD mean(Y²), own leak | same, leak 0.99 | rel. perturbation energy % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in recipes:
        rs = by_recipe[rec]
        col = lambda k, dg=2, sc=1.0: _col(rs, k, dg, sc)  # noqa: E731
        quick = [q for q in (quick_result(r["id"]) for r in rs) if q]
        own = _fmt([q["own_sg_robust_acc"] for q in quick], 2) + f" (n={len(quick)})" if quick else "-"
        worst = _fmt([q["robust_acc"] for q in quick], 2) if quick else "-"
        lines.append(
            f"| {rec} | {matched.get(rec, '-')} | {len(rs)} | {col('clean')} | {own} | {worst} | {col('omega_share', 1, 100)} | {col('omega_gauss', 1, 100)} | "
            f"{col('grad_l1', 3)} | {col('zero_grad', 2, 100)} | {col('near_zero_grad', 2, 100)} | {col('hoyer', 3)} | "
            f"{col('zero_grad_spike', 2, 100)} | {col('near_zero_grad_spike', 2, 100)} | {col('hoyer_spike', 3)} | {col('mppd', 4)} | {col('mppd_common', 4)} | {col('mppd_rel', 2, 100)} |"
        )
    lines += ["", "## The claims, checked", ""]
    names = {
        "omega_share": "Omega share", "grad_l1": "‖∇f‖₁", "mppd": "last-layer MPPD energy mean(Y²)",
        "mppd_rel": "relative last-layer perturbation energy", "zero_grad": "share of exactly-zero input-gradient entries",
        "near_zero_grad": "share of near-zero input-gradient entries (≤ 1e-3 of the image's largest)",
        "hoyer": "Hoyer sparsity of the CE input gradient", "mppd_common": "last-layer MPPD energy at the common leak 0.99",
        "zero_grad_spike": "share of exactly-zero spike-tensor gradient entries",
        "near_zero_grad_spike": "share of near-zero spike-tensor gradient entries (≤ 1e-3 of the largest)",
        "hoyer_spike": "Hoyer sparsity of the CE gradient w.r.t. the spike tensor",
    }
    for rec, key, direction, ref in claim_checks(matched):
        a = [r[key] for r in by_recipe.get(rec, []) if r.get(key) is not None]
        b = [r[key] for r in by_recipe.get(ref, []) if r.get(key) is not None]
        if not a or not b:
            continue
        ma, sa = _mean_std(a)
        mb, sb = _mean_std(b)
        holds = ma < mb if direction == "lower" else ma > mb
        separated = (ma + sa < mb - sb) if direction == "lower" else (ma - sa > mb + sb)
        if holds and len(a) == 1 and len(b) == 1:
            verdict = "holds (one seed each: no spread to compare the gap with)"
        else:
            verdict = "holds" if holds and separated else ("holds weakly (within one std)" if holds else "does NOT hold")
        lines.append(f"- **{rec}** vs {ref} (n = {len(a)} / {len(b)} seeds): {names[key]} {ma:.4g} ± {sa:.2g} vs {mb:.4g} ± {sb:.2g} ({direction} claimed): {verdict}.")
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def _write_json_atomic(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


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
    active = [c for c in list_cards() if c.dataset == ZOO_DATASET and not retired_reason(c)]
    for card in active:
        recipe = card.training["recipe"]
        if args.only and recipe not in args.only:
            continue
        old = rows.get(card.id)
        fresh = not args.force and old and old.get("sha256") == card.sha256 and old.get("n_points") == len(y)
        phase = card.encoder == "phase"
        if fresh and (not phase or "zero_grad_spike" in old):
            continue  # measured already, same checkpoint
        t0 = time.time()
        model = load_model(card)
        m = dict(old) if fresh else measure_model(model, x, y)
        if phase:
            m.update(measure_spike_domain(model, x, y))
        m.update(id=card.id, recipe=recipe, seed=card.training["seed"], sha256=card.sha256, n_points=len(y))
        rows[card.id] = m
        shown = {k: "-" if m.get(k) is None else f"{m[k]:.4g}" for k in ("clean", "omega_share", "grad_l1", "zero_grad", "zero_grad_spike", "mppd")}
        print(f"{card.id}: " + " ".join(f"{k} {v}" for k, v in shown.items()) + f" ({time.time() - t0:.0f}s)", flush=True)
        _write_json_atomic(json_path, rows)  # an interrupted run keeps what it measured
    # drop stale rows (a retrained checkpoint has a new hash) and retired entries
    cards = {c.id: c for c in active}
    rows = {k: v for k, v in rows.items() if k in cards and cards[k].sha256 == v.get("sha256")}
    for k, v in rows.items():
        v.setdefault("id", k)
    _write_json_atomic(json_path, rows)
    out = Path(args.out) if args.out else zoo_dir() / "DEFENSES.md"
    print(write_report(rows, out, "python -m models_zoo.measure_defenses", matched_recipes(active)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
