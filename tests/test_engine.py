"""Evaluation semantics: per-point worst case, cascade, re-scoring, reuse, resume, provenance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.engine import BROKE, NOT_RUN, run_chunk
from bench.evaluate import evaluate

PRESET = [
    {"name": "fgsm", "attack": "fgsm", "rule": "own", "on": "all"},
    {"name": "pgd-own", "attack": "pgd", "rule": "own", "on": "all", "steps": 5},
    {"name": "pgd-atan", "attack": "pgd", "rule": "atan:alpha=2", "on": "unbroken", "steps": 5},
]


def test_worst_case_is_never_above_any_attack_and_cascade_skips_broken(digits_model, digits_data):
    x, y = digits_data.test.x[:120], digits_data.test.y[:120]
    o = run_chunk(digits_model, x, y, 0.1, PRESET, batch_size=50, seed=0, chunk=0)
    worst = o.robust.mean()
    assert worst <= o.clean_correct.mean()
    for name, status in o.per_attack.items():
        survived = o.clean_correct & (status != BROKE)
        assert worst <= survived.mean() + 1e-12, name
    # a point is robust iff clean-correct and no attack broke it
    any_broke = np.any([s == BROKE for s in o.per_attack.values()], axis=0)
    assert np.array_equal(o.robust, o.clean_correct & ~any_broke)
    # "on = all" attacks ran on every clean-correct point; cascade attacks only on unbroken ones
    assert np.array_equal(o.per_attack["fgsm"] != NOT_RUN, o.clean_correct)
    earlier = (o.per_attack["fgsm"] == BROKE) | (o.per_attack["pgd-own"] == BROKE)
    assert np.all(o.per_attack["pgd-atan"][earlier | ~o.clean_correct] == NOT_RUN)
    # broken_by names the first attack (in preset order) that broke the point
    assert set(o.broken_by[~o.clean_correct]) <= {"clean"}
    assert np.all(o.broken_by[o.per_attack["fgsm"] == BROKE] == "fgsm")


def _evaluate(card, tmp_path, **kw):
    return evaluate(card, preset="quick", eps=0.15, limit=kw.pop("limit", 90), results_root=tmp_path, progress=False, **kw)


def test_result_file_has_required_fields_and_is_reused(digits_card, tmp_path):
    result, path, reused = _evaluate(digits_card, tmp_path)
    assert not reused and path.is_file()
    stored = json.loads(path.read_text())
    for key in ["model_id", "preset", "preset_version", "config_hash", "eps", "n_points", "clean_acc", "robust_acc",
                "per_attack", "flags", "provenance"]:
        assert key in stored, key
    for key in ["package_version", "git_commit", "torch", "spikingjelly", "device", "seed", "wall_seconds"]:
        assert key in stored["provenance"], key
    assert stored["robust_acc"] <= stored["clean_acc"]
    assert stored["robust_acc"] <= min(v["robust_acc"] for v in stored["per_attack"].values() if v["robust_acc"] is not None)
    points = pd.read_csv(path.with_suffix(".points.csv"))
    assert len(points) == 90 and points["robust"].mean() * 100 == pytest.approx(stored["robust_acc"], abs=1e-3)
    again, _, reused = _evaluate(digits_card, tmp_path)
    assert reused and again["config_hash"] == stored["config_hash"]
    # a different eps is a different evaluation
    _, other, reused = evaluate(digits_card, eps=0.05, limit=90, results_root=tmp_path, progress=False)
    assert not reused and other != path


def test_interrupted_evaluation_resumes_to_the_same_result(digits_card, tmp_path, monkeypatch):
    import bench.evaluate as ev

    calls = {"n": 0}
    real = ev.run_chunk

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            return real(*args, **kwargs)
        raise KeyboardInterrupt  # killed after the first chunk was saved

    monkeypatch.setattr(ev, "run_chunk", dying)
    orig_cfg = ev.load_config

    def small_chunks(*a, **k):
        cfg = orig_cfg(*a, **k)
        cfg["defaults"]["chunk_size"] = 40
        return cfg

    monkeypatch.setattr(ev, "load_config", small_chunks)
    with pytest.raises(KeyboardInterrupt):
        _evaluate(digits_card, tmp_path / "b", limit=100)
    partial = list((tmp_path / "b" / ".partial").rglob("chunk_*.json"))
    assert len(partial) == 1
    monkeypatch.setattr(ev, "run_chunk", real)
    resumed, _, _ = _evaluate(digits_card, tmp_path / "b", limit=100)
    uninterrupted, _, _ = _evaluate(digits_card, tmp_path / "c", limit=100)
    assert resumed["config_hash"] == uninterrupted["config_hash"]
    for key in ["clean_acc", "robust_acc", "broken_by_counts"]:
        assert resumed[key] == uninterrupted[key], key
    strip = lambda pa: {k: {kk: vv for kk, vv in v.items() if kk != "stats"} for k, v in pa.items()}  # noqa: E731
    assert strip(resumed["per_attack"]) == strip(uninterrupted["per_attack"])
    rb = (tmp_path / "b" / "digits").rglob("*.points.csv")
    rc = (tmp_path / "c" / "digits").rglob("*.points.csv")
    assert next(rb).read_text() == next(rc).read_text(), "per-point outcomes differ after resuming"
    # the resumed result states the whole cost: this process plus the chunk the killed one finished
    pr, pu = resumed["provenance"], uninterrupted["provenance"]
    assert pr["resumed_chunks"] == 1 and pu["resumed_chunks"] == 0
    assert pr["total_seconds"] > pr["wall_seconds"] and pu["total_seconds"] == pu["wall_seconds"]
    assert not (tmp_path / "b" / ".partial" / resumed["config_hash"]).exists()


def test_a_preset_batch_size_is_used_and_hashed(digits_card, tmp_path, monkeypatch):
    """A preset that declares ``batch_size`` runs at it, and a run at another --batch-size is another result
    (PDSG and ASSG use batch statistics); presets without one keep the old, batch-free hash."""
    import bench.evaluate as ev
    from bench.config import load_config

    cfg = load_config()
    cfg["presets"]["quick-b30"] = dict(cfg["presets"]["quick"], batch_size=30)
    monkeypatch.setattr(ev, "load_config", lambda *a, **k: cfg)
    run = lambda **kw: evaluate(digits_card, eps=0.15, limit=60, results_root=tmp_path, progress=False, **kw)  # noqa: E731
    fixed, _, _ = run(preset="quick-b30")
    assert fixed["provenance"]["batch_size"] == 30 and fixed["config"]["batch_size"] == 30
    again, _, reused = run(preset="quick-b30")
    assert reused and again["config_hash"] == fixed["config_hash"]
    other, _, reused = run(preset="quick-b30", batch_size=20)
    assert not reused and other["config_hash"] != fixed["config_hash"] and other["provenance"]["batch_size"] == 20
    plain, _, _ = run(preset="quick")
    assert plain["provenance"]["batch_size"] == cfg["defaults"]["batch_size"] and "batch_size" not in plain["config"]
