"""The leaderboard is a deterministic pure function of results: grouping, ranking, Wilson intervals."""

from __future__ import annotations

import json

import pytest

from bench.leaderboard import build_table, render_all, stale_files, wilson_interval, write_leaderboard


def fake_result(model, robust, clean=99.0, eps=0.2, preset="quick", n=1000, own=None):
    return {
        "model_id": model, "family": "x", "dataset": "mnist5k", "threat_model": "Linf", "eps": eps,
        "preset": preset, "preset_version": 1, "config_hash": model + preset + str(eps), "n_points": n,
        "n_available": 1000, "clean_acc": clean, "robust_acc": robust, "own_sg_robust_acc": own,
        "flags": [{"id": 8, "key": "k", "message": "m", "values": {}}] if model == "b" else [],
    }


def test_wilson_interval_known_values():
    # Wilson (1927) score interval, z = 1.96: 5/10 -> [23.66, 76.34]; 0/10 -> [0, 27.75]
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(23.659, abs=1e-2) and hi == pytest.approx(76.341, abs=1e-2)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(27.753, abs=1e-2)


def test_ranking_grouping_and_masking_gap():
    results = [fake_result("a", 10.0, own=30.0), fake_result("b", 20.0), fake_result("c", 20.0, clean=99.5),
               fake_result("a", 50.0, eps=0.1), fake_result("d", 90.0, n=100)]
    df = build_table(results)
    assert len(df) == 4  # the 100-point subset is excluded by default
    main = df[df.eps == 0.2]
    assert list(main.model_id) == ["c", "b", "a"]  # robust desc, then clean desc
    assert list(main["rank"]) == [1, 2, 3]
    assert float(main[main.model_id == "a"].masking_gap.iloc[0]) == pytest.approx(20.0)
    assert df[df.eps == 0.1]["rank"].tolist() == [1]  # a different eps is a different table
    assert len(build_table(results, include_subsets=True)) == 5


def test_render_is_deterministic_and_check_detects_staleness(tmp_path):
    root = tmp_path / "results" / "mnist5k"
    root.mkdir(parents=True)
    for r in [fake_result("a", 10.0), fake_result("b", 20.0)]:
        (root / f"{r['model_id']}.json").write_text(json.dumps(r))
    first = render_all(tmp_path / "results")
    assert first == render_all(tmp_path / "results")
    assert "| 1 | b |" in first["leaderboard.md"] and "F8" in first["leaderboard.md"]
    out = tmp_path / "reports"
    everything = ["leaderboard.md", "leaderboard.csv", "index.html"]
    assert stale_files(tmp_path / "results", out) == everything
    write_leaderboard(tmp_path / "results", out)
    assert stale_files(tmp_path / "results", out) == []
    (root / "c.json").write_text(json.dumps(fake_result("c", 30.0)))
    assert stale_files(tmp_path / "results", out) == everything
