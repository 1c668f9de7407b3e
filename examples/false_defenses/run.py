"""Issue 15's "Done when" check on models the test suite never sees.

Trains three spiking CNNs on MNIST-5k (examples/false_defenses/nets.py, baseline recipe, a few epochs): a net
behind a non-differentiable input quantization, its unmasked twin, and a net with Gaussian membrane noise;
then evaluates each with the ``quick`` and ``standard`` presets on a class-balanced subset at eps 0.2 and
prints clean / worst-case accuracy, reliability and flags. Cards, checkpoints and results go to ``--out``
(not committed). Run with one thread on a shared machine:

    OMP_NUM_THREADS=1 PYTHONPATH=. python examples/false_defenses/run.py --limit 200 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.evaluate import evaluate
from models_zoo.cards import load_card
from models_zoo.training import train

HERE = Path(__file__).resolve().parent
KINDS = {"plain": {}, "quant": {"levels": 4}, "noise": {"sigma": 0.5}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--eps", type=float, default=0.2)
    ap.add_argument("--presets", default="quick,standard")
    ap.add_argument("--kinds", default="plain,quant,noise")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    rows = []
    for kind in args.kinds.split(","):
        card_file = out / kind / "cards" / f"baseline-mnist5k-s0.toml"
        if card_file.is_file():
            card = load_card(card_file)
        else:
            t0 = time.time()
            card = train("baseline", "mnist5k", seed=0, out_dir=out / kind, progress=False, overrides={
                "architecture": f"{HERE / 'nets.py'}:build", "architecture_args": {"kind": kind, **KINDS[kind]},
                "epochs": args.epochs, "lr": args.lr})
            print(f"trained {kind}: clean {card.claimed_clean_acc:.2f}% in {time.time() - t0:.0f} s", flush=True)
        for preset in args.presets.split(","):
            t0 = time.time()
            r, path, _ = evaluate(card, preset, eps=args.eps, limit=args.limit, results_root=out / "results" / kind, progress=False)
            row = {
                "kind": kind, "preset": f"{preset} v{r['preset_version']}", "clean": r["clean_acc"], "worst_case": r["robust_acc"],
                "worst_pass": r.get("robust_acc_worst_pass"), "own_sg": r["own_sg_robust_acc"],
                "unreliable": r["reliability"]["unreliable"], "dead_share": r["reliability"]["own_sg_dead_share"],
                "flags": " ".join(f"F{f['id']}" for f in r["flags"]), "seconds": round(time.time() - t0),
                "fallback_broke": {k: v["n_broken"] for k, v in r["per_attack"].items() if k in (r.get("config", {}).get("preset", {}).get("masking_fallback") or {}).get("attacks", [])},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
