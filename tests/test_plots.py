"""Analysis (Omega, firing rate, histograms) and plots: known values, determinism, graceful skips, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from bench.analysis import analyze, firing_rate, histogram, load_analyses, omega_gaussian, omega_share
from bench.cli import main
from bench.leaderboard import load_results
from bench.plots import (
    attack_cell,
    eps_curves,
    pareto_front,
    plot_mpd,
    plot_robust_vs_eps,
    plot_sg_sensitivity,
    render_plots,
    rule_sharpness,
    sg_points,
)


def test_omega_share_on_a_hand_made_array():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0])
    assert omega_share(x, 1.0) == pytest.approx(5 / 8)  # |x| <= 1: -1, -0.5, 0, 0.5, 1
    assert omega_share(x, 0.25) == pytest.approx(1 / 8)
    assert firing_rate(x) == pytest.approx(5 / 8)  # x >= 0 spikes
    h = histogram(x, lo=-1.0, hi=1.0, bins=4)
    assert h["underflow"] == 1 and h["overflow"] == 2 and h["total"] == 8 and sum(h["counts"]) == 5


def test_omega_gaussian_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    mu, sigma, gamma = torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.5]), 1.0
    # [T=1, N=20000, C=2]: channel c ~ N(mu_c, sigma_c^2)
    x = (torch.randn(1, 20000, 2, generator=g, dtype=torch.float64) * sigma + mu)
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    expected = sum(phi((m + gamma) / s) - phi((m - gamma) / s) for m, s in zip(mu.tolist(), sigma.tolist())) / 2
    assert omega_gaussian(x, gamma) == pytest.approx(expected, abs=5e-3)
    assert omega_share(x, gamma) == pytest.approx(expected, abs=1e-2)  # Gaussian data: both agree
    const = torch.zeros(2, 10, 3)  # zero spread: all inside the window
    assert omega_gaussian(const, 1.0) == 1.0 and omega_gaussian(const - 5, 1.0) == 0.0


def test_pareto_front_of_known_points():
    pts = [(90, 10), (80, 20), (85, 5), (70, 20), (95, 1), (80, 20)]
    # (85,5) is dominated by (90,10), (70,20) by (80,20); equal points do not dominate each other
    assert pareto_front(pts) == [1, 5, 0, 4]
    assert pareto_front([]) == []


def test_rule_sharpness():
    assert rule_sharpness("atan:alpha=4") == ("atan", "alpha", 4.0)
    assert rule_sharpness("triangle") == ("triangle", "gamma", 1.0)
    assert rule_sharpness("bptr") is None and rule_sharpness("own") is None


def _result(model, eps, robust, clean=95.0, per_attack=None, family="baseline"):
    return {
        "model_id": model, "family": family, "dataset": "digits", "threat_model": "Linf", "eps": eps, "preset": "standard",
        "preset_version": 1, "config_hash": f"{model}{eps}", "n_points": 100, "n_available": 100, "clean_acc": clean,
        "robust_acc": robust, "own_sg_robust_acc": None, "flags": [], "per_attack": per_attack or {},
    }


def _pa(rule, acc, on="all"):
    """A per-attack entry as bench.evaluate.summarise writes it."""
    return {"attack": "pgd", "rule": rule, "on": on, "robust_acc": acc if on == "all" else None, "cumulative_robust_acc": acc - 1,
            "given": ["pgd-own"] if on == "unbroken_by" else [], "robust_acc_given": acc}


def _fake_analysis(model, family, omega):
    hist = {"counts": [1, 2, 3, 4], "underflow": 0, "overflow": 0, "total": 10}
    layer = lambda i: {"index": i, "name": str(i), "shape": [8], "clean": {  # noqa: E731
        "omega": omega, "omega_gauss": omega, "firing_rate": 0.1, "mean": 0, "std": 1, "hist": hist},
        "adversarial": {"omega": omega + 0.05, "omega_gauss": omega, "firing_rate": 0.1, "mean": 0, "std": 1, "hist": hist}}
    return {"kind": "analysis", "model_id": model, "family": family, "dataset": "digits", "rule": "triangle:gamma=1",
            "halfwidth": 1.0, "eps": 0.1, "n_points": 4, "layers": [layer(1), layer(2)],
            "summary": {"omega_clean": omega, "omega_adv": omega + 0.05}, "config": {"hist_range": [-2.0, 2.0], "hist_bins": 4}}


def _write(root, results, analyses=()):
    for r in results:
        d = root / r["dataset"] / r["model_id"]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"standard_{r['eps']}.json").write_text(json.dumps(r))
    for a in analyses:
        (root / a["dataset"] / a["model_id"]).mkdir(parents=True, exist_ok=True)
        (root / a["dataset"] / a["model_id"] / "analysis.json").write_text(json.dumps(a))


def test_plots_skip_missing_sweeps_then_draw_them_deterministically(tmp_path):
    res, out = tmp_path / "results", tmp_path / "plots"
    no_sweep = [_result("m1", 0.1, 40.0, per_attack={"pgd-own": _pa("own", 45.0), "pgd-sig": _pa("sigmoid:alpha=4", 40.0, on="unbroken")})]
    assert plot_robust_vs_eps(no_sweep, out) == [] and plot_sg_sensitivity(no_sweep, out) == []  # no sweep yet: skipped

    # the standard preset's SG sweep: every rule on the points the own-SG attack left (unbroken_by)
    sweep = {"pgd-own": _pa("own", 45.0), "pgd-sig": _pa("sigmoid:alpha=4", 19.0, on="unbroken"),
             **{f"pgd-atan{a}": _pa(f"atan:alpha={a}", acc, on="unbroken_by") for a, acc in ((2, 30.0), (4, 20.0), (8, 25.0))}}
    m2 = _result("m2", 0.1, 35.0, clean=90.0, family="mpd-sgr", per_attack={"pgd-atan2": _pa("atan:alpha=2", 35.0)})
    m2["eps_sweep"] = {"attacks": ["pgd-own"], "points": 50, "clean_acc": 90.0, "robust_acc": {"0.05": 60.0, "0.1": 35.0, "0.5": 8.0}}
    _write(res, [_result("m1", 0.05, 70.0), _result("m1", 0.1, 20.0, per_attack=sweep), m2],
           [_fake_analysis("m1", "baseline", 0.5), _fake_analysis("m2", "mpd-sgr", 0.3)])
    results = load_results(res)
    pts = sg_points(results)[("digits", "Linf", 0.1, "standard", 1, 100)]
    assert pts["atan"]["m1"] == [(2.0, 30.0, False), (4.0, 20.0, False), (8.0, 25.0, False)]  # same-base numbers only
    assert "sigmoid" not in pts and pts["atan"]["m2"] == [(2.0, 35.0, False)]  # cascade numbers are never used
    curves = eps_curves(results)
    assert curves[("digits", "Linf", "standard", 1, "sweep-n50")]["m2"] == [(0.0, 90.0), (0.05, 60.0), (0.1, 35.0), (0.5, 8.0)]
    assert curves[("digits", "Linf", "standard", 1, "n100")]["m1"] == [(0.0, 95.0), (0.05, 70.0), (0.1, 20.0)]
    assert attack_cell(sweep["pgd-sig"]) == (18.0, False) and attack_cell(sweep["pgd-atan2"]) == (30.0, False)
    assert attack_cell(sweep["pgd-own"]) == (45.0, True)
    (out / "stale_old.png").parent.mkdir(parents=True, exist_ok=True)
    (out / "stale_old.png").write_bytes(b"x")
    first = {p: p.read_bytes() for p in render_plots(res, out)}
    assert not (out / "stale_old.png").exists()  # the folder mirrors the data
    names = {p.name for p in first}
    stems = ["m1", "m2", "omega_by_family_digits", "attack_heatmap_digits_Linf_eps0.1_standard-v1_n100",
             "pareto_digits_Linf_eps0.1_standard-v1_n100", "pareto_digits_Linf_eps0.05_standard-v1_n100",
             "robust_vs_eps_digits_Linf_standard-v1_n100", "robust_vs_eps_digits_Linf_standard-v1_sweep-n50",
             "eps_by_family_digits_Linf_standard-v1_n100", "sg_sensitivity_digits_Linf_eps0.1_standard-v1_n100"]
    assert names == {stem + suffix for stem in stems for suffix in (".png", ".svg")}
    assert all(len(b) > 1000 for b in first.values())
    again = plot_sg_sensitivity(results, out) + plot_mpd(_fake_analysis("m1", "baseline", 0.5), out)
    assert {p: p.read_bytes() for p in again} == {p: first[p] for p in again}  # byte-identical PNG and SVG
    svg = next(b for p, b in first.items() if p.suffix == ".svg").decode()
    assert "<dc:date>" not in svg


def test_analyze_a_real_model_then_plot_it(digits_card, isolated_outputs, capsys):
    root = isolated_outputs / "results"
    a, path, reused = analyze(str(digits_card.path), n_points=24, device="cpu")
    assert not reused and path == root / "digits" / digits_card.id / "analysis.json"
    assert load_results(root) == []  # an analysis is not a result
    assert list(load_analyses(root)) == [("digits", digits_card.id)]
    assert a["rule"] == "triangle:gamma=1" and a["halfwidth"] == 1.0 and len(a["layers"]) >= 1
    for lay in a["layers"]:
        for which in ("clean", "adversarial"):
            s = lay[which]
            assert 0.0 <= s["omega"] <= 1.0 and 0.0 <= s["omega_gauss"] <= 1.0 and 0.0 <= s["firing_rate"] <= 1.0
            h = s["hist"]
            assert sum(h["counts"]) + h["underflow"] + h["overflow"] == h["total"] == 4 * 24 * math.prod(lay["shape"])
    assert 0.0 <= a["summary"]["grad_zero_share"] <= 1.0 and a["summary"]["grad_l1_mean"] > 0
    assert a["summary"]["adv_acc_subset"] <= a["summary"]["clean_acc_subset"]
    assert analyze(str(digits_card.path), n_points=24, device="cpu")[2]  # identical config: reused

    assert main(["plot", "mpd", str(digits_card.path)]) == 0
    png = isolated_outputs / "reports" / "plots" / "mpd" / f"{digits_card.id}.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    before = png.read_bytes()
    plot_mpd(json.loads(path.read_text()), isolated_outputs / "reports" / "plots")
    assert png.read_bytes() == before  # redrawn from analysis.json alone, identically
    capsys.readouterr()
    assert main(["plot", "mpd", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'no-such-model'" in err[0]
    assert main(["analyze"]) == 2 and "--all" in capsys.readouterr().err
    assert main(["plot", "all", "x"]) == 2 and "plot mpd x" in capsys.readouterr().err


def test_readme_plots_block_picks_the_key_figures(tmp_path):
    from bench.plots import readme_plots_block

    plots = tmp_path / "reports" / "plots"
    names = ["mpd/baseline-mnist5k-s0", "mpd/baseline-mnist5k-s1", "mpd/mpd-sgr-mnist5k-s0", "mpd/sr-mnist5k-s0",
             "omega_by_family_mnist5k", "attack_heatmap_mnist5k_Linf_eps0.2_quick-v1_n1000",
             "attack_heatmap_mnist5k_Linf_eps0.2_standard-v1_n1000", "attack_heatmap_mnist5k_Linf_eps0.1_standard-v1_n1000",
             "pareto_digits_Linf_eps0.2_standard-v1_n360"]
    written = [plots / (n + s) for n in names for s in (".png", ".svg")]
    analyses = [{"model_id": m, "dataset": "mnist5k", "family": m.rsplit("-mnist5k", 1)[0]}
                for m in ("baseline-mnist5k-s1", "baseline-mnist5k-s0", "mpd-sgr-mnist5k-s0", "sr-mnist5k-s0")]
    block = readme_plots_block(written, tmp_path, analyses)
    images = [line.split("](")[1][:-1] for line in block.splitlines() if line.startswith("![")]
    assert images == ["reports/plots/mpd/baseline-mnist5k-s0.png", "reports/plots/mpd/mpd-sgr-mnist5k-s0.png",
                      "reports/plots/omega_by_family_mnist5k.png",
                      "reports/plots/attack_heatmap_mnist5k_Linf_eps0.2_standard-v1_n1000.png"]
    assert "No plots yet" in readme_plots_block([], tmp_path, [])


def test_mpd_figures_are_redrawn_only_when_their_analysis_changes(tmp_path):
    a = _fake_analysis("m1", "baseline", 0.5)
    first = plot_mpd(a, tmp_path)
    stamps = [p.stat().st_mtime_ns for p in first]
    blobs = [p.read_bytes() for p in first]
    again = plot_mpd(a, tmp_path)  # same data: the files are kept as they are
    assert again == first and [p.stat().st_mtime_ns for p in again] == stamps
    changed = _fake_analysis("m1", "baseline", 0.3)
    redrawn = plot_mpd(changed, tmp_path)
    assert redrawn == first and [p.read_bytes() for p in redrawn] != blobs
    first[1].write_text("<svg/>")  # a file that lost its digest is redrawn
    assert b"snnbench:" in plot_mpd(changed, tmp_path)[1].read_bytes()


def test_subset_groups_are_plotted_only_without_a_full_split_group_of_the_same_preset_version():
    from bench.plots import _comparable_groups

    def r(preset: str, version: int, n: int) -> dict:
        return {"dataset": "mnist5k", "threat_model": "Linf", "eps": 0.2, "preset": preset, "preset_version": version,
                "n_points": n, "n_available": 1000}

    groups = _comparable_groups([r("quick", 1, 1000), r("quick", 1, 200), r("standard", 3, 500), r("standard", 3, 500)])
    assert sorted((k[3], k[5], len(v)) for k, v in groups.items()) == [("quick", 1000, 1), ("standard", 500, 2)]
