"""Does the order of the evaluated points change a result? (docs/presets.md, "Full-split order")

MNIST-5k's test split is stored class by class. Evaluations deal their points out class-balanced
(``bench.data.Split.head``); before 3 December a full-split evaluation (no ``--limit``) attacked them in the
stored order, so every attack batch held one or two classes. Attacks whose gradient rule uses batch statistics
(ASSG's adaptive surrogate, PDSG's sigma, paper-luu's train-mode BatchNorm) and the surrogate probe (its first
32 clean-correct points) then see other inputs. This script evaluates the same points in the split's stored
(class-sorted) order into a scratch folder and pairs it with the stored (class-balanced) result.

    OMP_NUM_THREADS=1 .venv/bin/python examples/batch_order_check.py rssnn-mnist5k-s0 standard 0.1
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from bench.data import Split
from bench.evaluate import plan_evaluation, prepare, run_chunks, write_result
from bench.stats import mcnemar_exact


def main(model: str, preset: str, eps: float, threat_model: str = "Linf") -> None:
    stored = plan_evaluation(model, preset=preset, eps=eps, threat_model=threat_model, device="cpu").out
    with tempfile.TemporaryDirectory(prefix="snnbench-order-") as tmp:
        plan = plan_evaluation(model, preset=preset, eps=eps, threat_model=threat_model, results_root=tmp, device="cpu")
        t = plan.test
        idx = torch.as_tensor(np.argsort(t.indices, kind="stable"))  # the split's stored, class-sorted order
        plan.test = Split(t.x[idx], t.y[idx], t.indices[idx.numpy()], t.name)
        t0 = time.time()
        prep = prepare(plan, None, True)
        write_result(plan, prep, run_chunks(plan, prep, range(plan.n_chunks), True), t0, True)
        a, b = pd.read_csv(stored.with_suffix(".points.csv")), pd.read_csv(plan.out.with_suffix(".points.csv"))
    m = a.merge(b, on="index", suffixes=("_stored", "_sorted"))
    only_stored, only_sorted, p = mcnemar_exact(m.robust_stored.astype(bool).to_numpy(), m.robust_sorted.astype(bool).to_numpy())
    print(f"{model} {preset} eps {eps:g}, {len(m)} points: robust {100 * m.robust_stored.mean():.1f} (stored result, "
          f"class-balanced order) vs {100 * m.robust_sorted.mean():.1f} (class-sorted order); robust only in the stored "
          f"result {only_stored}, only in class-sorted order {only_sorted}, McNemar p = {p:.3g}")
    for col in (c for c in a.columns if c.startswith("attack:")):  # per attack: points run (>= 0) and broken (1)
        s, bal = m[f"{col}_stored"], m[f"{col}_sorted"]
        if (s >= 0).sum() != (bal >= 0).sum() or (s == 1).sum() != (bal == 1).sum():
            print(f"  {col[7:]:24s} run {int((s >= 0).sum()):4d} / {int((bal >= 0).sum()):4d}   broke {int((s == 1).sum()):4d} / {int((bal == 1).sum()):4d}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), *(sys.argv[4:5]))
