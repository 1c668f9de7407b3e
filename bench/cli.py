"""`snnbench` (also `python -m bench`): run, eval, train, zoo, leaderboard.

Exit status: 0 success, 1 a check failed (invalid card, stale leaderboard), 2 bad input (one line on
stderr saying what is wrong and how to fix it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.errors import BenchError


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda when present, else cpu), cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=None, help="points per attack batch (default from bench.toml)")


def _add_trust_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-code", action="store_true",
                   help="allow a card's custom architecture ('file.py:factory'): this RUNS its Python code; read it first")


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="gauntlet preset from bench.toml (default: bench.toml [defaults] preset)")
    p.add_argument("--eps", type=float, default=None, help="L-inf budget in [0,1] (default: the threat model's primary eps)")
    p.add_argument("--threat-model", default=None, help="threat model from bench.toml (default: bench.toml [defaults] threat_model)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N test points")
    p.add_argument("--seed", type=int, default=None, help="attack seed (default from bench.toml)")
    _add_runtime_args(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnbench", description="Adversarial robustness benchmark for spiking neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="main job: evaluate the zoo (one seed per family) and regenerate the leaderboard")
    _add_eval_args(p)
    p.add_argument("--all-seeds", action="store_true", help="evaluate every zoo entry, not one seed per family")
    p.add_argument("--reuse", action="store_true", help="reuse stored results with the same configuration hash")
    p.add_argument("--dataset", default=None, help="only zoo entries of this data set (default: bench.toml's default)")
    p.add_argument("--workers", type=int, default=None,
                   help="models evaluated in parallel processes (default: one per CPU core, at most 4; 1 on CUDA)")

    p = sub.add_parser("eval", help="evaluate one model (zoo id or card path) under a preset")
    p.add_argument("model", help="zoo model id (see `snnbench zoo list`) or path to a card .toml")
    _add_eval_args(p)
    p.add_argument("--force", action="store_true", help="recompute even when an identical result is stored")
    p.add_argument("--chunk-size", type=int, default=None, help="points per saved chunk (resume granularity; default from bench.toml)")
    _add_trust_arg(p)

    p = sub.add_parser("shard", help="run models x presets as sharded jobs (model x preset x point range), then merge")
    p.add_argument("models", nargs="+", help="zoo ids, submission ids or card paths")
    p.add_argument("--presets", nargs="+", default=["quick"])
    p.add_argument("--eps", type=float, default=None)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--shards", type=int, default=2, help="point ranges per evaluation")
    p.add_argument("--backend", default="local", help="local (in-process), process (local worker pool) or ray")
    p.add_argument("--workers", type=int, default=2)
    _add_runtime_args(p)
    _add_trust_arg(p)

    p = sub.add_parser("train", help="train a zoo recipe and register its card and checkpoint")
    p.add_argument("recipe", nargs="?", default=None, help="recipe name (e.g. baseline); omit with --all")
    p.add_argument("--all", action="store_true", help="train the whole zoo: every zoo recipe, seeds 0 1 2, on mnist5k (seed-major)")
    p.add_argument("--force", action="store_true", help="with --all: retrain entries whose card and checkpoint exist")
    p.add_argument("--dataset", default=None, help="data set (default: the recipe's, mnist5k for zoo recipes)")
    p.add_argument("--data-root", default=None, help="torchvision root for cifar10/cifar100 (default: $SNNBENCH_DATA_ROOT or bench.toml)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's number of epochs")
    p.add_argument("--out-dir", default=None, help="write cards/ and checkpoints/ here instead of models_zoo/")
    _add_runtime_args(p)

    p = sub.add_parser("zoo", help="list, show or validate zoo entries")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    zsub.add_parser("list", help="one line per zoo entry")
    zs = zsub.add_parser("show", help="print one card")
    zs.add_argument("model")
    zv = zsub.add_parser("validate", help="schema, hash, loads, clean accuracy within 0.5 points of the claim")
    zv.add_argument("models", nargs="*", help="ids to validate (default: all)")
    zv.add_argument("--no-accuracy", action="store_true", help="skip the clean-accuracy check")
    zv.add_argument("--device", default="auto")
    _add_trust_arg(zv)

    p = sub.add_parser("perf", help="benchmark: gauntlet cost vs the forward+backward floor and vs peers (writes reports/perf.json)")
    p.add_argument("--model", default="baseline-mnist5k-s0")
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20, help="PGD iterations (k)")
    p.add_argument("--eps", type=float, default=None)
    p.add_argument("--out", default=None, help="JSON output (default reports/perf.json)")
    p.add_argument("--skip-presets", action="store_true",
                   help="skip (d): quick, standard and AutoAttack standard evaluated from scratch on the same points (minutes)")
    p.add_argument("--robust-model", default="pgd-at-mnist5k-s0",
                   help="(d) also on this robust zoo model: standard vs AutoAttack standard ('none' skips it)")
    p.add_argument("--robust-points", type=int, default=100,
                   help="points for the robust model's (d) (AutoAttack is the long part: every robust point gets its full budget)")
    _add_runtime_args(p)
    _add_trust_arg(p)

    p = sub.add_parser("leaderboard", help="rebuild reports/leaderboard.{md,csv,html} and README's table from stored results (runs no model)")
    p.add_argument("--check", action="store_true", help="exit 1 when the committed reports are stale")
    p.add_argument("--include-subsets", action="store_true", help="also rank results on a --limit subset of the test set")

    p = sub.add_parser("analyze", help="membrane potentials, Omega, firing rates, gradient sparsity -> results/<dataset>/<model>/analysis.json")
    p.add_argument("models", nargs="*", help="zoo ids, accepted-submission ids or card paths (default with --all: every zoo card)")
    p.add_argument("--all", action="store_true", help="analyse every zoo card")
    p.add_argument("--points", type=int, default=None, help="test points to record (default 64)")
    p.add_argument("--eps", type=float, default=None, help="eps of the adversarial inputs (default: the threat model's primary eps)")
    p.add_argument("--force", action="store_true", help="recompute even when an identical analysis is stored")
    _add_runtime_args(p)
    _add_trust_arg(p)

    p = sub.add_parser("plot", help="draw reports/plots/ (PNG + SVG) from stored results and analyses (runs no attack)")
    p.add_argument("what", nargs="?", default="all", choices=["all", "mpd"], help="all (default) or mpd MODEL_ID")
    p.add_argument("model", nargs="?", default=None, help="with mpd: a zoo id, accepted-submission id or card path")
    p.add_argument("--recompute", action="store_true", help="with mpd: re-run the analysis even when analysis.json exists")
    _add_runtime_args(p)
    _add_trust_arg(p)
    p = sub.add_parser("submit", help="validate a submitted card + checkpoint, accept it, run the gauntlet, rebuild the leaderboard")
    p.add_argument("card", help="path to the submission's card .toml (the zoo's schema; checkpoint path relative to the card)")
    _add_eval_args(p)
    p.add_argument("--trust-code", action="store_true",
                   help="allow a custom architecture ('file.py:factory'): this RUNS the submitter's Python code; read it first")
    p.add_argument("--validate-only", action="store_true", help="run the checks only: copy nothing, run no attack")
    p.add_argument("--replace", action="store_true", help="overwrite an already accepted submission with the same id")

    p = sub.add_parser("compare", help="CI gate: is HEAD more robust than BASE on the same points? (paired exact McNemar)")
    p.add_argument("base", help="BASE model: zoo id, accepted submission id, or card .toml path")
    p.add_argument("head", help="HEAD model: zoo id, accepted submission id, or card .toml path")
    _add_eval_args(p)
    p.add_argument("--require-gain", type=float, default=0.0,
                   help="pass only if robust(HEAD) - robust(BASE) >= G points (default 0; negative tolerates a drop)")
    p.add_argument("--max-clean-drop", type=float, default=None, help="fail if clean(BASE) - clean(HEAD) > D points (default: not checked)")
    p.add_argument("--alpha", type=float, default=None, help="also require the robust gain to be significant: McNemar p < ALPHA")
    _add_trust_arg(p)

    return parser


def _format_result(result: dict, path, reused: bool) -> str:
    from bench.evaluate import eps_token

    status = "reused" if reused else f"{result['provenance']['wall_seconds']:.1f}s"
    return (
        f"{result['model_id']}: preset {result['preset']} v{result['preset_version']} eps={eps_token(result['eps'])} n={result['n_points']} "
        f"clean {result['clean_acc']:.2f}  own-SG {result['own_sg_robust_acc'] if result['own_sg_robust_acc'] is not None else '-'}  "
        f"worst-case {result['robust_acc']:.2f}  flags [{' '.join('F%d' % f['id'] for f in result['flags'])}]  ({status})"
        f"\n  -> {path}"
    )


def _print_result(result: dict, path, reused: bool) -> None:
    print(_format_result(result, path, reused))


def cmd_eval(args: argparse.Namespace) -> int:
    from bench.evaluate import evaluate

    result, path, reused = evaluate(
        args.model, preset=args.preset, eps=args.eps, threat_model=args.threat_model,
        limit=args.limit, device=args.device, batch_size=args.batch_size, seed=args.seed, force=args.force,
        chunk_size=args.chunk_size,
    )
    _print_result(result, path, reused)
    return 0


def cmd_shard(args: argparse.Namespace) -> int:
    from bench.shard import plan, run_sharded

    jobs = plan(args.models, args.presets, eps=args.eps, shards_per_eval=args.shards, limit=args.limit,
                device=args.device, batch_size=args.batch_size, seed=args.seed, chunk_size=args.chunk_size)
    print(f"{len(jobs)} shard(s) on backend {args.backend} with {args.workers} worker(s)")
    for result, path in run_sharded(jobs, backend=args.backend, workers=args.workers):
        _print_result(result, path, False)
    return 0


def main_job_cards(cards: list, dataset: str, all_seeds: bool = False) -> list:
    """The zoo entries `snnbench run` evaluates: those of ``dataset``, retired ones left out (bench.retired),
    one seed per family (the lowest) unless ``all_seeds``; sorted by id."""
    from bench.retired import retired_reason

    cards = [c for c in cards if c.dataset == dataset and not retired_reason(c)]
    if not all_seeds:
        first: dict[str, object] = {}
        for c in sorted(cards, key=lambda c: (c.family, c.training["seed"], c.id)):
            first.setdefault(c.family, c)
        cards = list(first.values())
    return sorted(cards, key=lambda c: c.id)


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from bench.config import load_config
    from bench.device import resolve_device
    from bench.leaderboard import write_leaderboard
    from bench.plots import plots_dir, write_plots
    from bench.run_zoo import default_workers, evaluate_models
    from models_zoo.zoo import list_cards

    cfg = load_config()
    dataset = args.dataset or cfg["defaults"]["dataset"]
    preset = args.preset or cfg["defaults"]["preset"]
    cards = main_job_cards(list_cards(), dataset, args.all_seeds)
    if not cards:
        raise BenchError(f"no zoo entries for data set '{dataset}': train one with `snnbench train baseline --dataset {dataset}`")
    t0 = time.time()
    if args.workers is not None and args.workers < 1:
        raise BenchError(f"--workers must be at least 1, got {args.workers}")
    workers = args.workers or default_workers(str(resolve_device(args.device)))
    print(f"evaluating {len(cards)} zoo model(s) on {dataset} with preset {preset} ({workers} worker(s)): {', '.join(c.id for c in cards)}")
    kwargs = dict(
        preset=preset, eps=args.eps, threat_model=args.threat_model or cfg["defaults"]["threat_model"],
        limit=args.limit, device=args.device, batch_size=args.batch_size, seed=args.seed, force=not args.reuse,
    )
    bar = tqdm(total=len(cards), desc="zoo", unit="model", disable=workers <= 1)
    for result, path, reused, analysis, apath, areused in evaluate_models(cards, workers, kwargs):
        bar.write(_format_result(result, path, reused))
        bar.write(_format_analysis(analysis, apath, areused))
        bar.update(1)
    bar.close()
    for p in write_leaderboard():
        print(f"wrote {p}")
    print(f"wrote {len(write_plots())} plot files under {plots_dir()}")
    print(f"done in {time.time() - t0:.1f}s")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from models_zoo.recipes import get_recipe
    from models_zoo.training import train, train_all

    overrides = {"epochs": args.epochs, "batch_size": args.batch_size}
    if args.all:
        if args.recipe or args.dataset not in (None, "mnist5k"):
            raise BenchError("--all trains every zoo recipe on mnist5k with the recorded seeds: drop the recipe name and --dataset")
        t0 = time.time()
        cards = train_all(force=args.force, out_dir=args.out_dir, device=args.device, overrides=overrides)
        print(f"zoo: {len(cards)} model(s) trained in {time.time() - t0:.0f}s")
        return 0
    if not args.recipe:
        raise BenchError("name a recipe to train (see models_zoo/recipes.py), or pass --all for the whole zoo")
    dataset = args.dataset or get_recipe(args.recipe).default_dataset
    card = train(args.recipe, dataset, args.seed, out_dir=args.out_dir, device=args.device,
                 overrides=overrides, data_root=args.data_root)
    print(f"{card.id}: clean accuracy {card.claimed_clean_acc:.2f}% in {card.training['train_seconds']}s")
    print(f"  card {card.path}\n  checkpoint {card.checkpoint_path} (sha256 {card.sha256[:12]}...)")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from bench.retired import retired_reason
    from models_zoo.zoo import get_card, list_cards

    if args.zoo_command == "list":
        cards = list_cards()
        print(f"{'id':<34} {'family':<18} {'dataset':<9} {'arch':<8} {'T':>2} {'neuron':<6} {'train SG':<14} {'clean':>6}")
        for c in cards:
            s = c.summary()
            print(f"{c.id:<34} {c.family:<18} {c.dataset:<9} {c.architecture:<8} {c.time_steps:>2} {s['neuron']:<6} {s['training_sg']:<14} {c.claimed_clean_acc:>6.2f}"
                  + ("  (retired)" if retired_reason(c) else ""))
        return 0
    if args.zoo_command == "show":
        card = get_card(args.model)
        print(f"# {card.path}")
        print(card.path.read_text() if card.path else card.data)
        return 0
    from bench.device import resolve_device
    from models_zoo.validate import validate_card

    dev = resolve_device(args.device)
    cards = [get_card(m) for m in args.models] if args.models else list_cards()
    failed = 0
    for card in cards:
        v = validate_card(card, str(dev), check_accuracy=not args.no_accuracy)
        failed += not v.ok
        print(f"{'ok  ' if v.ok else 'FAIL'} {card.id}: {v.message}")
    print(f"{len(cards) - failed}/{len(cards)} cards valid")
    return 1 if failed else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.leaderboard import stale_files, write_leaderboard

    if args.check:
        stale = stale_files(include_subsets=args.include_subsets)
        if stale:
            print(f"stale: {', '.join(stale)}: run `snnbench leaderboard` and commit reports/", file=sys.stderr)
            return 1
        print("leaderboard up to date")
        return 0
    for p in write_leaderboard(include_subsets=args.include_subsets):
        print(f"wrote {p}")
    return 0


def _format_analysis(a: dict, path, reused: bool) -> str:
    s = a["summary"]
    status = "reused" if reused else f"{a['provenance']['wall_seconds']:.1f}s"
    return (f"{a['model_id']}: analysis on {a['n_points']} points: Omega {s['omega_clean']:.3f} clean / {s['omega_adv']:.3f} adversarial "
          f"(eps {a['eps']:g}, window |H - theta| <= {a['halfwidth'] if a['halfwidth'] is not None else 'inf'}), firing rate "
          f"{s['firing_rate_clean']:.3f}, zero input-gradient entries {s['grad_zero_share']:.3f}  ({status})"
          f"\n  -> {path}")


def _print_analysis(a: dict, path, reused: bool) -> None:
    print(_format_analysis(a, path, reused))


def cmd_analyze(args: argparse.Namespace) -> int:
    from bench.analysis import DEFAULT_POINTS, analyze
    from models_zoo.zoo import list_cards

    models = list(args.models) + ([c.id for c in list_cards()] if args.all else [])
    if args.points is not None and args.points < 1:
        raise BenchError(f"--points must be a positive number of test points, got {args.points}")
    if not models:
        raise BenchError("name the model(s) to analyse (zoo id, submission id or card path), or pass --all")
    for m in models:
        a, path, reused = analyze(m, n_points=args.points or DEFAULT_POINTS, eps=args.eps, device=args.device,
                                  batch_size=args.batch_size, force=args.force)
        _print_analysis(a, path, reused)
    return 0


def plot_model_mpd(model_id: str, out_dir: Path | None = None, recompute: bool = False, **analyze_kwargs: Any) -> list[Path]:
    """``snnbench plot mpd MODEL``: the MPD figure of any zoo model, accepted submission or card path.

    Uses the stored ``analysis.json``; computes it first (runs the model: see :mod:`bench.analysis`) when
    it is missing or ``recompute`` is set. It lives here, not in :mod:`bench.plots`: rendering never runs a model.
    """
    import json

    from bench.analysis import analyze
    from bench.plots import plot_mpd, plots_dir
    from bench.store import analysis_path
    from models_zoo.lookup import find_card

    card = find_card(model_id)  # one-line BenchError for an unknown id
    path = analysis_path(card, analyze_kwargs.get("results_root"))
    if recompute or not path.is_file():
        analysis, _, _ = analyze(model_id, force=recompute, **analyze_kwargs)
    else:
        analysis = json.loads(path.read_text())
    return plot_mpd(analysis, out_dir or plots_dir())


def cmd_plot(args: argparse.Namespace) -> int:
    from bench.plots import write_plots

    if args.what == "mpd":
        if not args.model:
            raise BenchError("`snnbench plot mpd` needs a model: `snnbench plot mpd MODEL_ID` (see `snnbench zoo list`)")
        paths = plot_model_mpd(args.model, recompute=args.recompute, device=args.device, batch_size=args.batch_size)
    else:
        if args.model:
            raise BenchError(f"`snnbench plot all` takes no model (got '{args.model}'): use `snnbench plot mpd {args.model}`")
        paths = write_plots()
    for p in paths:
        print(f"wrote {p}")
    return 0


def _preset_rows(pr: dict, model_id: str, points: int) -> list[tuple[str, str]]:
    """(d)'s table rows for one model: each preset's wall time and accuracies, standard's time per attack
    family (seconds from the stored per-attack stats), and AutoAttack vs standard (ratio, paired counts)."""
    rows = []
    for name, r in pr.items():
        if isinstance(r, dict) and "wall_s" in r:
            rows.append((f"(d) {model_id}, {points} points: `{name}` v{r['preset_version']} (batch {r['batch_size']}): wall, clean, robust",
                         f"{r['wall_s']:.1f} s, {r['clean_acc']:.2f}, {r['robust_acc']:.2f}"))
    fam = pr.get("standard", {}).get("family_seconds")
    if fam:
        top = sorted(fam.items(), key=lambda kv: -kv[1]["seconds"])
        rows.append((f"(d) {model_id}: `standard` seconds per attack family (points attacked)",
                     ", ".join(f"{k} {v['seconds']:.0f} ({v['attacked']})" for k, v in top)))
    if "autoattack_over_standard_wall" in pr:
        rows.append((f"(d) {model_id}: AutoAttack standard / our standard, wall time", f"{pr['autoattack_over_standard_wall']:.2f}x"))
        pair = pr.get("standard_vs_autoattack", {})
        rows.append((f"(d) {model_id}: robust acc ours minus AutoAttack (must be <= 0); robust only under ours / only under AutoAttack, McNemar p",
                     f"{pr['standard_minus_autoattack_robust']:+.2f}; {pair.get('robust_only_first', '-')} / {pair.get('robust_only_second', '-')}, p = {pair.get('mcnemar_p', float('nan')):.2g}"))
    return rows


def cmd_perf(args: argparse.Namespace) -> int:
    from bench.config import load_config, reports_dir, resolve_preset, threat_model_config
    from bench.data import load_dataset
    from bench.device import resolve_device
    from bench.io import atomic_write_json
    from bench.perf import plain_loop_ratio, run_perf, run_preset_comparison
    from models_zoo.zoo import get_card, load_model

    cfg = load_config()
    if args.points < 1:
        raise BenchError(f"--points must be a positive number of test points, got {args.points}")
    card = get_card(args.model)
    dev = resolve_device(args.device)
    test = load_dataset(card.dataset).test.head(args.points)
    eps = args.eps if args.eps is not None else threat_model_config(cfg["defaults"]["threat_model"], cfg)["eps"]
    # (a)-(c) at the leaderboard preset's attack batch (standard declares one), else the default batch
    batch = args.batch_size or int(resolve_preset("standard", cfg).get("batch_size") or cfg["defaults"]["batch_size"])
    model = load_model(card, dev)
    fig = run_perf(model, test.x, test.y, eps, args.steps, batch)
    fig["model_id"] = card.id
    fig["plain_over_fused_floor"] = plain_loop_ratio(model, test.x, test.y, args.steps, batch)
    if not args.skip_presets:
        fig["presets"] = run_preset_comparison(card, args.points, str(dev), args.batch_size)
        if args.robust_model.lower() != "none":
            rcard = get_card(args.robust_model)
            fig["robust_model"] = {
                "model_id": rcard.id, "points": min(args.robust_points, len(load_dataset(rcard.dataset).test)),
                "presets": run_preset_comparison(rcard, args.robust_points, str(dev), args.batch_size, presets=("standard", "autoattack-standard")),
            }
    rows = [
        ("(a) floor: fwd+bwd per point-iteration", f"{1e3 * fig['floor_s_per_point_iter']:.3f} ms"),
        (f"(b) our PGD-{args.steps}, every point every iteration (early stop off)", f"{1e3 * fig['pgd_full_s_per_point_iter']:.3f} ms"),
        ("(b)/(a) total time (median over batches)", f"{fig['pgd_full_over_floor']:.3f} ({fig['pgd_full_over_floor_median_batch']:.3f})"),
        (f"(b') our PGD-{args.steps} as the presets run it (stops on broken points)", f"{1e3 * fig['pgd_s_per_point_iter']:.3f} ms, {fig['pgd_over_floor']:.3f} of (a)"),
        ("(c) torchattacks PGD per point-iteration",
         "not installed (pip install -e '.[peers]')" if fig["torchattacks_s_per_point_iter"] is None
         else f"{1e3 * fig['torchattacks_s_per_point_iter']:.3f} ms (ours {fig['speedup_vs_torchattacks']:.2f}x faster)"),
        ("PGD robust acc: ours (early stop on / off) / torchattacks",
         f"{fig['pgd_robust_acc']:.2f} / {fig['pgd_full_robust_acc']:.2f} / {fig['torchattacks_robust_acc'] if fig['torchattacks_robust_acc'] is not None else '-'}"),
        ("(e) peak memory", f"{fig['peak_memory_mb']:.0f} MiB"),
        ("floor, plain autograd loop / fused loop", f"{fig['plain_over_fused_floor']:.2f}"),
    ]
    rows += _preset_rows(fig.get("presets", {}), card.id, fig["points"])
    if "robust_model" in fig:
        rm = fig["robust_model"]
        rows += _preset_rows(rm["presets"], rm["model_id"], rm["points"])
    print(f"| {card.id}, {fig['points']} points, batch {batch}, {fig['device']}, {fig['threads']} threads | |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    out = args.out or str(reports_dir(cfg) / "perf.json")
    atomic_write_json(out, fig)
    print(f"wrote {out}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from bench.submit import submit

    out = submit(
        args.card, preset=args.preset, eps=args.eps, threat_model=args.threat_model, limit=args.limit,
        device=args.device, batch_size=args.batch_size, seed=args.seed, trust_code=args.trust_code, replace=args.replace,
        validate_only=args.validate_only, report=print, progress=sys.stderr.isatty(),
    )
    if out.result is not None:
        _print_result(out.result, out.result_path, False)
        for p in out.leaderboard:
            print(f"wrote {p}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import append_step_summary, compare

    c = compare(
        args.base, args.head, preset=args.preset, eps=args.eps, threat_model=args.threat_model,
        limit=args.limit, device=args.device, batch_size=args.batch_size, seed=args.seed, require_gain=args.require_gain,
        max_clean_drop=args.max_clean_drop, alpha=args.alpha, progress=sys.stderr.isatty(),
        log=lambda m: print(m, file=sys.stderr),
    )
    md = c.markdown()
    print(md, end="")
    try:
        summary = append_step_summary(md)
    except BenchError as e:  # the verdict stands; the summary file is a convenience
        print(f"snnbench: warning: {e}", file=sys.stderr)
        summary = None
    if summary:
        print(f"appended to {summary}", file=sys.stderr)
    return 0 if c.passed else 1


COMMANDS = {"shard": cmd_shard, "submit": cmd_submit, "compare": cmd_compare, "perf": cmd_perf, "run": cmd_run, "eval": cmd_eval, "train": cmd_train, "zoo": cmd_zoo, "leaderboard": cmd_leaderboard, "analyze": cmd_analyze, "plot": cmd_plot}


#: integer options that must be >= 1 when given (0 and negatives are refused, never read as "default")
POSITIVE_OPTIONS = {"batch_size": "--batch-size", "chunk_size": "--chunk-size", "limit": "--limit", "points": "--points",
                    "epochs": "--epochs", "steps": "--steps"}  # --workers and --shards are checked by their commands


class Terminated(Exception):
    """SIGTERM arrived (raised by the handler so finally blocks and atomic writes unwind)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _check_args(args: argparse.Namespace) -> None:
    from bench.limits import check_positive, check_seed

    for attr, flag in POSITIVE_OPTIONS.items():
        check_positive(getattr(args, attr, None), flag)
    if getattr(args, "seed", None) is not None:
        check_seed(args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    from bench.custom_arch import set_trust

    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    from bench.provenance import git_commit

    git_commit()  # the code's commit, taken once at the start of the run (bench/provenance.py)
    try:
        _check_args(args)
        if getattr(args, "trust_code", False):
            set_trust(True)
        return COMMANDS[args.command](args)
    except BenchError as e:
        print(f"snnbench: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file system failure not caught closer to its cause
        where = f" {e.filename}" if e.filename else ""
        print(f"snnbench: error: cannot access{where}: {e.strerror or e}: check the path, free disk space or permissions", file=sys.stderr)
        return 2
    except SystemExit as e:  # only a model's code (trusted custom architecture) exits from inside a command
        print(f"snnbench: error: the model's code called sys.exit({e.code!r}) during `{args.command}`: custom code must not exit", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("snnbench: interrupted; rerun the same command to resume from the last finished chunk", file=sys.stderr)
        return 130
    except Terminated:
        print("snnbench: terminated (SIGTERM); rerun the same command to resume from the last finished chunk", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if getattr(args, "trust_code", False):
            set_trust(False)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    raise SystemExit(main())
