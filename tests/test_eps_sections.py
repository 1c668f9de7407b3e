"""The leaderboard per budget: a section per eps and threat model, the ranking protocol, and spike-domain
results kept out of every pixel-space ranking (fixture results; no model runs)."""

from __future__ import annotations

import numpy as np
import pytest
from report_fixtures import outcomes, setup_dirs, write_card, write_result

import bench.leaderboard as lb
from bench import claims as cl
from bench import eps_sections as es
from bench.matched import load_stored


def _acc(k: int, n: int = 100) -> np.ndarray:
    a = np.zeros(n, dtype=bool)
    a[:k] = True
    return a


def test_spike_domain_results_never_appear_in_a_pixel_space_ranking(tmp_path):
    root = tmp_path / "results"
    write_result(root, "pix-a", _acc(30), preset="quick", version=1)
    write_result(root, "pix-b", _acc(20), preset="quick", version=1)
    write_result(root, "spk-a", _acc(90), preset="paper-luu", version=1, threat_model="spike-Linf")
    write_result(root, "pix-a", _acc(80), preset="paper-luu", version=1, threat_model="spike-Linf")
    sections = {(s.threat_model, s.eps): s for s in es.build_sections(load_stored(root))}
    linf, spike = sections[("Linf", 0.2)], sections[("spike-Linf", 0.2)]
    assert [r["model_id"] for r in linf.rows] == ["pix-a", "pix-b"]
    assert all(p[1] == "Linf" for p in linf.protocols) and all(p[1] == "spike-Linf" for p in spike.protocols)
    assert [(r["model_id"], r["rank"]) for r in spike.rows] == [("spk-a", 1), ("pix-a", 2)]
    md = "\n".join(es.render_markdown(list(sections.values()), {}))
    linf_block = md.split("### mnist5k · Linf · eps=0.2")[1].split("###")[0]
    assert "spk-a" not in linf_block and "paper-luu" not in linf_block and "90.00" not in linf_block
    # the main ranked tables keep the threat model apart too
    df = lb.build_table([s.result for s in load_stored(root)], include_subsets=True)
    assert set(df[df.threat_model == "Linf"].model_id) == {"pix-a", "pix-b"}
    assert set(df[df.threat_model == "spike-Linf"].model_id) == {"spk-a", "pix-a"}
    assert df.groupby(lb.GROUP_KEYS).threat_model.nunique().max() == 1


def test_ranking_protocol_is_the_strongest_every_row_has(tmp_path):
    root = tmp_path / "results"
    for m, q, s in (("a", 50, 10), ("b", 40, 30), ("c", 60, None)):
        write_result(root, m, _acc(q), preset="quick", version=1, eps=0.1)
        if s is not None:
            write_result(root, m, _acc(s), preset="standard", version=3, eps=0.1)
    (sec,) = es.build_sections(load_stored(root))
    assert sec.key[3] == "quick"  # c has no standard result: quick is the strongest every row has
    assert [r["model_id"] for r in sec.rows] == ["c", "a", "b"]
    write_result(root, "c", _acc(5), preset="standard", version=3, eps=0.1)
    (sec,) = es.build_sections(load_stored(root))
    assert sec.key[3] == "standard" and [r["model_id"] for r in sec.rows] == ["b", "a", "c"]
    write_result(root, "d", _acc(99), preset="paper-x", version=1, eps=0.1)  # a row none of the others' protocols cover
    (sec,) = es.build_sections(load_stored(root))
    assert sec.key[3] == "standard" and [(r["model_id"], r["rank"]) for r in sec.rows][-1] == ("d", None)
    table = "\n".join(es.section_table(sec, {}).markdown())
    assert "| - | d |" in table and "worst case: paper-x v1 (100 pts)" in table


def test_empty_budgets_are_listed_for_the_default_dataset(tmp_path):
    root = tmp_path / "results"
    write_result(root, "a", _acc(10), preset="quick", version=1, eps=0.2)
    secs = es.build_sections(load_stored(root), default_dataset="mnist5k")
    assert [(s.eps, bool(s.rows)) for s in secs] == [(0.05, False), (0.1, False), (0.2, True)]
    md = "\n".join(es.render_markdown(secs, {}))
    assert "_No results at this budget yet: run `snnbench eval MODEL --preset quick --eps 0.05`._" in md


def test_paper_protocol_in_the_spike_domain_is_audited_beside_the_pixel_gauntlet(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    (zoo / "claims.toml").write_text(
        'reference_preset = "standard"\n[[claim]]\nrecipe = "max"\npaper = "Luu: Pooling (arXiv 2509.23762)"\n'
        'claim = "max beats avg"\npaper_preset = "paper-luu"\nmatched_baseline = "avg"\n')
    write_card(zoo, "avg-s0", "avg")
    write_card(zoo, "max-s0", "max", matched_baseline="avg-s0")
    for eps in (0.1, 0.2):  # pixel space: no gain
        b, h = outcomes(100, both=10, head_only=1, base_only=1)
        write_result(results, "avg-s0", b, eps=eps)
        write_result(results, "max-s0", h, eps=eps)
    b, h = outcomes(100, both=30, head_only=40, base_only=0)  # the paper's own protocol, spike domain, 6/255
    write_result(results, "avg-s0", b, preset="paper-luu", version=1, threat_model="spike-Linf", eps=6 / 255)
    write_result(results, "max-s0", h, preset="paper-luu", version=1, threat_model="spike-Linf", eps=6 / 255)
    _, (a,) = cl.audit(load_stored(results))
    assert [(r.threat_model, r.eps, r.verdict) for r in a.rows] == [
        ("Linf", 0.1, "holds only under the paper's protocol"), ("Linf", 0.2, "holds only under the paper's protocol")]
    r = a.rows[0]
    assert r.paper.threat_model == "spike-Linf" and r.paper.eps == pytest.approx(6 / 255)
    assert r.overstatement == pytest.approx((70.0 - 11.0, 30.0 - 11.0))
    # and the spike-domain numbers have their own leaderboard section, never the pixel one
    md = lb.render_all(results)["leaderboard.md"]
    assert "### mnist5k · spike-Linf · eps=0.0235294" in md
    pixel = md.split("### mnist5k · Linf · eps=0.2")[1].split("###")[0]
    assert "paper-luu" not in pixel and "70.00" not in pixel


def test_robustness_vs_eps_per_family_plot(tmp_path):
    from bench.eps_plots import family_curves, plot_eps_by_family
    from bench.plots import readme_plots_block

    root = tmp_path / "results"
    for fam, accs in (("base", (60, 30, 5)), ("def", (80, 70, 40))):
        for seed, shift in ((0, 0), (1, 4)):
            for eps, k in zip((0.05, 0.1, 0.2), accs):
                write_result(root, f"{fam}-s{seed}", _acc(k + shift), clean=_acc(95 + shift), preset="quick", version=1, eps=eps)
    write_result(root, "def-s0", _acc(99), preset="paper-luu", version=1, threat_model="spike-Linf", eps=0.02)
    results = [s.result for s in load_stored(root)]
    curves = family_curves(results)
    assert set(curves) == {("mnist5k", "Linf", "quick", 1, 100)}  # one spike eps only: no curve to draw
    c = curves[("mnist5k", "Linf", "quick", 1, 100)]
    assert c["def"][0.0] == [95.0, 99.0] and c["def"][0.1] == [70.0, 74.0] and list(c["base"]) == [0.0, 0.05, 0.1, 0.2]
    out = tmp_path / "plots"
    paths = plot_eps_by_family(results, out)
    assert sorted(p.name for p in paths) == ["eps_by_family_mnist5k_Linf_quick-v1_n100.png", "eps_by_family_mnist5k_Linf_quick-v1_n100.svg"]
    first = paths[0].read_bytes()
    assert plot_eps_by_family(results, out) == paths and paths[0].read_bytes() == first  # fresh: not redrawn
    block = readme_plots_block(paths, tmp_path)
    assert "Robustness vs eps per defense family" in block and "plots/eps_by_family_mnist5k_Linf_quick-v1_n100.png" in block


def test_paper_budget_named_in_claims_toml_and_other_spike_budgets_shown_without_verdict(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    (zoo / "claims.toml").write_text(
        'reference_preset = "standard"\n[[claim]]\nrecipe = "max"\npaper = "Luu: Pooling (arXiv 2509.23762)"\n'
        'claim = "max beats avg"\npaper_preset = "paper-luu"\nmatched_baseline = "avg"\n'
        'paper_threat_model = "spike-Linf"\npaper_eps = 0.023529411764705882\n')
    write_card(zoo, "avg-s0", "avg")
    write_card(zoo, "max-s0", "max", matched_baseline="avg-s0")
    b, h = outcomes(100, both=10, head_only=1, base_only=1)
    write_result(results, "avg-s0", b, eps=0.1)
    write_result(results, "max-s0", h, eps=0.1)
    for eps, gain in ((6 / 255, 40), (0.1, 2)):  # the paper's budget shows a gain; a larger spike eps does not
        b, h = outcomes(100, both=30, head_only=gain, base_only=1)
        write_result(results, "avg-s0", b, preset="paper-luu", version=1, threat_model="spike-Linf", eps=eps)
        write_result(results, "max-s0", h, preset="paper-luu", version=1, threat_model="spike-Linf", eps=eps)
    claims, (a,) = cl.audit(load_stored(results))
    assert [(r.threat_model, r.eps, r.verdict) for r in a.rows] == [("Linf", 0.1, "holds only under the paper's protocol")]
    assert a.rows[0].paper.eps == pytest.approx(6 / 255)
    assert [(e.threat_model, e.eps) for e in a.extra] == [("spike-Linf", 0.1)]
    md = cl.render_markdown(claims, [a])
    assert "paper-luu v1 spike-Linf eps=0.1, 100 pts x 1" in md  # shown in the details, with no verdict line
    assert md.count("- Linf eps=0.1: **") == 1 and "spike-Linf eps=0.1: **" not in md
