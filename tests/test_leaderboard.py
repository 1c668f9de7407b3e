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
    tables = ["leaderboard.md", "leaderboard.csv", "index.html"]
    assert stale_files(tmp_path / "results", out) == ["gauntlet.md", "claims.md", *tables]
    write_leaderboard(tmp_path / "results", out)
    assert stale_files(tmp_path / "results", out) == []
    (root / "c.json").write_text(json.dumps(fake_result("c", 30.0)))
    assert stale_files(tmp_path / "results", out) == tables  # a result without attack families: gauntlet.md unchanged


def test_gauntlet_page_lists_families_and_never_shows_a_family_below_the_worst_case():
    from bench.gauntlet_table import render_gauntlet

    def result(model_id: str, preset: str, worst: float, fams: dict[str, float]) -> dict:
        attacks = [{"name": f"{f}-attack"} for f in fams]
        return {
            "model_id": model_id, "dataset": "mnist5k", "threat_model": "Linf", "eps": 0.2, "preset": preset,
            "preset_version": 2, "n_points": 1000, "n_available": 1000, "clean_acc": 97.0, "own_sg_robust_acc": 5.0,
            "robust_acc": worst, "top_attack": "pgd20-own", "flags": [{"id": 11}],
            "families": {f: {"attacks": [f"{f}-attack"], "robust_acc_given": v} for f, v in fams.items()},
            "config": {"preset": {"attacks": attacks}},
        }

    page = render_gauntlet([
        result("m-a", "standard", 0.5, {"own-sg": 3.0, "sg-sweep": 1.0, "noise": 90.0}),
        result("m-b", "standard", 2.5, {"own-sg": 4.0, "sg-sweep": 2.5, "noise": 95.0}),
        result("m-q", "quick", 9.0, {"own-sg": 9.0}),
    ])
    assert "preset standard v2" in page and "preset quick" not in page and "m-q" not in page
    rows = [ln for ln in page.splitlines() if ln.startswith("| m-")]
    assert [r.split(" | ")[0] for r in rows] == ["| m-b", "| m-a"]  # ranked by worst case
    header = next(ln for ln in page.splitlines() if ln.startswith("| model"))
    assert "own-sg | sg-sweep" in header and "noise" not in header
    assert "| **0.50** | pgd20-own | F11 |" in rows[1]
    assert "Per training recipe" not in page  # one seed per recipe: no summary


def test_gauntlet_page_summarises_seeds_per_recipe_with_mean_and_sample_std():
    from bench.gauntlet_table import render_gauntlet

    def result(model_id: str, recipe: str, worst: float, sweep: float, flags: list[int]) -> dict:
        return {
            "model_id": model_id, "family": recipe, "dataset": "mnist5k", "threat_model": "Linf", "eps": 0.2,
            "preset": "standard", "preset_version": 3, "n_points": 500, "n_available": 1000, "clean_acc": 96.0,
            "own_sg_robust_acc": 10.0, "robust_acc": worst, "top_attack": "pgd20-own", "flags": [{"id": i} for i in flags],
            "families": {"sg-sweep": {"attacks": ["s"], "robust_acc_given": sweep}}, "config": {"preset": {"attacks": [{"name": "s"}]}},
        }

    page = render_gauntlet([
        result("a-s0", "a", 1.0, 2.0, [11]), result("a-s1", "a", 3.0, 4.0, [11, 7]), result("a-s2", "a", 5.0, 6.0, []),
        result("b-s0", "b", 0.0, 0.5, []),
    ])
    assert "(subset: `--limit`, class-balanced)" in page
    summary = page[page.index("Per training recipe"):].splitlines()
    rows = {ln.split(" | ")[0][2:]: ln for ln in summary if ln.startswith("| a ") or ln.startswith("| b ")}
    # worst case 1, 3, 5: mean 3, sample std 2; sweep 2, 4, 6: mean 4, std 2
    assert "| a | 3 | 96.00 ± 0.00 | 10.00 ± 0.00 | 4.00 ± 2.00 | **3.00 ± 2.00** | F7 x1 F11 x2 |" == rows["a"]
    assert rows["b"].startswith("| b | 1 | 96.00 | 10.00 | 0.50 | **0.00** | - |")


def test_committed_results_never_put_the_worst_case_above_any_attack():
    """Every stored result: the per-point worst case is at most every standalone attack and every family."""
    from bench.leaderboard import load_results

    results = load_results()
    assert results
    for r in results:
        for name, a in r["per_attack"].items():
            for key in ("robust_acc", "cumulative_robust_acc"):
                if a.get(key) is not None:
                    assert r["robust_acc"] <= a[key] + 1e-9, (r["model_id"], r["preset"], name, key)
        for fam in (r.get("families") or {}).values():
            assert r["robust_acc"] <= fam["robust_acc_given"] + 1e-9, r["model_id"]
        assert r["robust_acc"] <= r["clean_acc"]


def test_gauntlet_preset_tables_come_before_paper_protocol_tables():
    """README's block opens with the benchmark's own presets; the papers' protocols follow (issue 13)."""
    from bench.leaderboard_table import _group_order

    keys = [("mnist5k", "Linf", 0.05, "paper-mpd-sgr", 1, 1000), ("mnist5k", "Linf", 0.2, "quick", 2, 1000),
            ("mnist5k", "Linf", 0.1, "standard", 5, 100)]
    ordered = sorted(keys, key=_group_order)
    assert [k[3] for k in ordered] == ["standard", "quick", "paper-mpd-sgr"]
