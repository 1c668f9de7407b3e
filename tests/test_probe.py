"""bench/probe.py: the surrogate-sweep probe keeps the strongest rules on every point, the rest on a subset."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.evaluate import evaluate
from bench.perf import family_seconds, paired_robust
from bench.probe import apply_probe, check_probe

SWEEP = ["pgd20-sigmoid4", "pgd20-rect1"]


def _probe_cfg(monkeypatch, **probe):
    import bench.evaluate as ev
    from bench.config import load_config

    cfg = load_config()
    q = dict(cfg["presets"]["quick"])
    q["attacks"] = [dict(a, unbroken_by=["fgsm-own", "pgd20-own"]) if a["name"] in SWEEP else a for a in q["attacks"]]
    cfg["presets"]["quick-probe"] = dict(q, probe={"attacks": SWEEP, "keep": 1, "points": 16, "others_subset_every": 3, **probe})
    monkeypatch.setattr(ev, "load_config", lambda *a, **k: cfg)
    return cfg


def test_probe_table_is_validated():
    pre = {"name": "p", "attacks": [{"name": "a"}, {"name": "b"}]}
    assert check_probe(pre) is None
    with pytest.raises(BenchError, match="probe takes"):
        check_probe(dict(pre, probe={"attacks": ["a"], "kep": 1}))
    with pytest.raises(BenchError, match="unknown: \\['c'\\]"):
        check_probe(dict(pre, probe={"attacks": ["a", "c"]}))
    with pytest.raises(BenchError, match="keep must be in \\[1, 2\\]"):
        check_probe(dict(pre, probe={"attacks": ["a", "b"], "keep": 3}))
    probe = check_probe(dict(pre, probe={"attacks": ["a", "b"], "keep": 1, "others_subset_every": 4}))
    specs = apply_probe(pre["attacks"], probe, {"keep": ["b"]})
    assert specs[0]["subset_every"] == 4 and "subset_every" not in specs[1]


def test_probe_keeps_the_best_scored_rule_on_every_point_and_is_hashed(digits_card, tmp_path, monkeypatch):
    _probe_cfg(monkeypatch)
    res, _, _ = evaluate(digits_card, preset="quick-probe", eps=0.15, limit=60, results_root=tmp_path, progress=False)
    rec = res["probe"]
    assert rec["points"] == 16 and set(rec["scores"]) == set(SWEEP) and len(rec["keep"]) == 1
    sc = {n: (v["correct"], v["mean_margin"]) for n, v in rec["scores"].items()}
    assert rec["order"] == sorted(SWEEP, key=lambda n: (sc[n], SWEEP.index(n)))  # fewest correct, then lowest margin
    kept, dropped = rec["keep"][0], next(n for n in SWEEP if n not in rec["keep"])
    pa = res["per_attack"]
    base_left = pa[kept]["n_attacked"]
    assert base_left > 0 and pa[dropped]["n_attacked"] <= -(-base_left // 3) + 1  # every 3rd point only
    pts = pd.read_csv(tmp_path / res["dataset"] / res["model_id"] / res["points_file"])
    assert (pts.index[pts[f"attack:{dropped}"] != -1] % 3 == 0).all()
    # the probe table is part of the preset, so of the hash: another `keep` is another result
    _probe_cfg(monkeypatch, keep=2)
    both, _, reused = evaluate(digits_card, preset="quick-probe", eps=0.15, limit=60, results_root=tmp_path, progress=False)
    assert not reused and both["config_hash"] != res["config_hash"]
    assert all(both["per_attack"][n]["n_attacked"] == base_left for n in SWEEP)


def test_paired_robust_and_family_seconds(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"index": [1, 2, 3, 4, 5], "robust": [1, 1, 0, 0, 1]}).to_csv(a, index=False)
    pd.DataFrame({"index": [5, 4, 3, 2, 1], "robust": [1, 1, 0, 0, 0]}).to_csv(b, index=False)  # joined on index
    got = paired_robust(a, b)
    assert got["points"] == 5 and got["robust_only_first"] == 2 and got["robust_only_second"] == 1
    assert got["mcnemar_p"] == pytest.approx(1.0)  # 2 vs 1 discordant: binomial two-sided p = 1
    result = {"families": {"f": {"attacks": ["x", "y"], "seconds": 3.5, "n_broken": 2}},
              "per_attack": {"x": {"stats": {"attacked": 10}}, "y": {"stats": {"attacked": 4}}}}
    assert family_seconds(result) == {"f": {"seconds": 3.5, "attacked": 14, "n_broken": 2}}
