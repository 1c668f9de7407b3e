"""The short hyper-parameter sweep of the open weights: ``python -m models_zoo.sweep``.

SR's lambda and MPD-SGR's eta are "open" (shared/spec/defenses.md). Each value is trained once (seed 0,
MNIST-5k, ``--epochs`` epochs, everything else the recipe's defaults) next to a baseline with the same
epochs, and measured with :func:`models_zoo.measure_defenses.measure_model` on the 1000 test points. The
table goes to models_zoo/SWEEPS.md; the recipes keep the largest value whose clean accuracy is at most
about 3 points below the baseline's (the choice is made by hand in models_zoo/recipes.py and recorded in
SWEEPS.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.data import load_dataset
from models_zoo.measure_defenses import measure_model
from models_zoo.training import train
from models_zoo.zoo import load_model

GRID: dict[str, tuple[str, list[float]]] = {
    "sr": ("sr_lambda", [0.002, 0.01, 0.05, 0.1]),
    "mpd-sgr": ("mpd_eta", [0.003, 0.01, 0.03, 0.1, 0.3]),
}


def run(epochs: int, out_dir: Path, only: list[str] | None = None, limit: int | None = None) -> dict[str, dict]:
    ds = load_dataset("mnist5k")
    x, y = ds.test.x[:limit] if limit else ds.test.x, ds.test.y[:limit] if limit else ds.test.y
    results_path = out_dir / "sweep_results.json"
    results: dict[str, dict] = json.loads(results_path.read_text()) if results_path.is_file() else {}
    jobs = [("baseline", None, None)]
    for recipe, (key, values) in GRID.items():
        if only and recipe not in only:
            continue
        jobs += [(recipe, key, v) for v in values]
    for recipe, key, value in jobs:
        tag = f"{recipe}" + (f"-{key}={value:g}" if key else "") + f"-e{epochs}"
        if tag in results:
            continue
        t0 = time.time()
        overrides = {"epochs": epochs, **({key: value} if key else {})}
        card = train(recipe, "mnist5k", 0, out_dir=out_dir / tag, overrides=overrides, progress=False)
        m = measure_model(load_model(card), x, y)
        m.update(recipe=recipe, key=key, value=value, epochs=epochs, train_seconds=card.training["train_seconds"])
        results[tag] = m
        results_path.write_text(json.dumps(results, indent=1, sort_keys=True))
        print(f"{tag}: clean {m['clean']:.2f} omega {100 * m['omega_share']:.1f}% l1 {m['grad_l1']:.3f} "
              f"({time.time() - t0:.0f}s)", flush=True)
    return results


def table(results: dict[str, dict]) -> str:
    """The sweep's numbers as a markdown table (clean accuracy and the quantity each weight targets)."""
    base = [r for r in results.values() if r["recipe"] == "baseline"]
    ref = base[0]["clean"] if base else float("nan")
    lines = [
        "| recipe | weight | value | epochs | clean acc % | Δ vs baseline (points) | Omega share % | mean ‖∇f‖₁ | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results.values(), key=lambda r: (r["recipe"] != "baseline", r["recipe"], r["value"] or 0)):
        lines.append(
            f"| {r['recipe']} | {r['key'] or '-'} | {'-' if r['value'] is None else format(r['value'], 'g')} | "
            f"{r['epochs']} | {r['clean']:.2f} | {r['clean'] - ref:+.2f} | {100 * r['omega_share']:.1f} | {r['grad_l1']:.3f} | "
            f"{r['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models_zoo.sweep", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out-dir", default="/tmp/snnbench-sweep")
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--limit", type=int, default=None)
    args = p.parse_args(argv)
    results = run(args.epochs, Path(args.out_dir), args.only, args.limit)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
