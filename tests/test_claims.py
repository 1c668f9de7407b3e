"""Matched-baseline deltas and the claims audit, on fixture cards, claims.toml and results (no model runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from report_fixtures import outcomes, setup_dirs, write_card, write_result
from scipy.stats import binomtest

import bench.leaderboard as lb
from bench import claims as cl
from bench.compare import mcnemar_exact
from bench.errors import BenchError
from bench.matched import load_stored, matched_cells, newcombe_paired_ci, paired_stats, zoo_cards

CLAIMS = """
reference_preset = "standard"
alpha = 0.05

[[claim]]
recipe = "def"
paper = "Doe, Roe: A Defense (ICML 2099)"
claim = "The defense is more robust than its matched baseline."
paper_preset = "paper-x"
matched_baseline = "base"
"""


def test_pvalue_and_counts_are_compare_mcnemar_on_hand_made_outcomes():
    base, head = outcomes(100, both=50, head_only=10, base_only=2)
    p = paired_stats(base, head)
    bo, ho, pv = mcnemar_exact(base, head)
    assert (p.base_only, p.head_only, p.p_value) == (bo, ho, pv) == (2, 10, pv)
    # exact two-sided binomial: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert p.p_value == pytest.approx(2 * 79 / 4096, rel=1e-12)
    assert p.delta == pytest.approx(60.0 - 52.0)
    assert p.ci_low < p.delta < p.ci_high


def test_newcombe_interval_on_altman_table_6_2():
    # Statistics with Confidence (Altman et al. 2000) Table 6.2: both 14, first only 5, second only 0, neither 22.
    # By hand: Wilson 19/41 = [0.3192, 0.6141], 14/41 = [0.2163, 0.4941]; B = 308 > n/2, phi = 287.5 / sqrt(19*22*14*27)
    base = np.array([1] * 14 + [0] * 5 + [0] * 22, bool)
    head = np.array([1] * 14 + [1] * 5 + [0] * 22, bool)
    lo, hi = newcombe_paired_ci(base, head)
    assert lo == pytest.approx(1.15, abs=0.01) and hi == pytest.approx(22.65, abs=0.01)


def test_newcombe_interval_contains_the_difference_and_covers_about_95_percent():
    rng = np.random.default_rng(0)
    n, trials, hits = 300, 400, 0
    # a correlated pair: P(both) .5, P(head only) .15, P(base only) .05, P(neither) .3: true Δ = +10 points
    for _ in range(trials):
        u = rng.random(n)
        head = u < 0.65
        base = (u < 0.5) | ((u >= 0.65) & (u < 0.70))
        lo, hi = newcombe_paired_ci(base, head)
        d = 100 * (head.mean() - base.mean())
        assert -100 <= lo <= d <= hi <= 100
        hits += lo <= 10.0 <= hi
    assert 0.91 <= hits / trials <= 0.99
    # positively correlated pairs: narrower than the same margins paired the other way round (negative phi)
    base, head = outcomes(400, both=300, head_only=20, base_only=5)
    lo, hi = newcombe_paired_ci(base, head)
    lo_ind, hi_ind = newcombe_paired_ci(np.sort(base)[::-1], np.sort(head))
    assert hi - lo < hi_ind - lo_ind
    assert newcombe_paired_ci(np.ones(10, bool), np.ones(10, bool))[1] >= 0 >= newcombe_paired_ci(np.ones(10, bool), np.ones(10, bool))[0]


def _paired(delta_sign: int, p: float) -> cl.Paired:
    head, base = (60.0, 50.0) if delta_sign > 0 else (50.0, 60.0) if delta_sign < 0 else (50.0, 50.0)
    return cl.Paired(1000, 1, head, base, 10, 20, p, -1.0, 1.0)


@pytest.mark.parametrize("paper,ref,expected", [
    (None, _paired(+1, 0.001), "holds"),
    (_paired(+1, 0.001), _paired(+1, 0.01), "holds"),
    (_paired(-1, 0.5), _paired(+1, 0.049), "holds"),  # the reference preset decides "holds"
    (_paired(+1, 0.001), _paired(+1, 0.2), "holds only under the paper's protocol"),
    (_paired(+1, 0.001), _paired(-1, 0.001), "holds only under the paper's protocol"),
    (_paired(+1, 0.2), _paired(+1, 0.2), "does not hold"),
    (_paired(-1, 0.001), _paired(-1, 0.001), "does not hold"),  # significant, but a loss
    (_paired(0, 1.0), _paired(-1, 0.3), "does not hold"),
    (_paired(+1, 0.05), _paired(+1, 0.05), "does not hold"),  # p must be below alpha
    (None, _paired(+1, 0.3), "not measured"),
    (None, _paired(-1, 0.001), "not measured"),
    (_paired(+1, 0.001), None, "not measured"),
    (None, None, "not measured"),
])
def test_verdict_rule(paper, ref, expected):
    assert cl.verdict(paper, ref, 0.05)[0] == expected


def _zoo(tmp_path, monkeypatch, claims=CLAIMS):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    (zoo / "claims.toml").write_text(claims)
    for s in (0, 1):
        write_card(zoo, f"base-s{s}", "base", seed=s)
        write_card(zoo, f"def-s{s}", "def", seed=s, matched_baseline=f"base-s{s}")
    return zoo, results


def test_matched_delta_on_the_same_points_and_missing_baseline_says_so(tmp_path, monkeypatch):
    _, results = _zoo(tmp_path, monkeypatch)
    base, head = outcomes(200, both=80, head_only=30, base_only=10)
    write_result(results, "base-s0", base, preset="quick", version=1, n_available=200)
    write_result(results, "def-s0", head, preset="quick", version=1, n_available=200)
    write_result(results, "def-s1", head, preset="quick", version=1, n_available=200)  # base-s1 never evaluated
    cells = matched_cells(load_stored(results), zoo_cards(), {})
    c0 = cells[("def-s0", "mnist5k", "Linf", 0.2, "quick", 1, 200)]
    assert c0.baseline == "base-s0" and c0.paired is not None
    assert c0.paired.delta == pytest.approx(10.0) and (c0.paired.base_only, c0.paired.head_only) == (10, 30)
    assert c0.paired.p_value == pytest.approx(binomtest(30, 40, 0.5).pvalue)
    c1 = cells[("def-s1", "mnist5k", "Linf", 0.2, "quick", 1, 200)]
    assert c1.paired is None and "no baseline result" in c1.markdown() and not any(ch.isdigit() for ch in c1.markdown().split("(")[0])
    assert not any(k[0].startswith("base") for k in cells)  # baselines have no matched baseline
    md = lb.render_all(results)["leaderboard.md"]
    assert "+10.00 vs base-s0 (10/30, p=" in md
    assert "no baseline result under this protocol (base-s1)" in md


def test_other_points_or_protocol_are_never_paired(tmp_path, monkeypatch):
    _, results = _zoo(tmp_path, monkeypatch)
    base, head = outcomes(100, both=40, head_only=20, base_only=0)
    write_result(results, "base-s0", base, preset="quick", version=1, split_hash="split-a")
    write_result(results, "def-s0", head, preset="quick", version=1, split_hash="split-b")  # another point set
    write_result(results, "base-s1", base, preset="quick", version=1, index=np.arange(100) + 1)
    write_result(results, "def-s1", head, preset="quick", version=1)  # same hash, but the indices differ
    cells = matched_cells(load_stored(results), zoo_cards(), {})
    assert cells[("def-s0", "mnist5k", "Linf", 0.2, "quick", 1, 100)].paired is None
    c1 = cells[("def-s1", "mnist5k", "Linf", 0.2, "quick", 1, 100)]
    assert c1.paired is None and "same test points" in c1.note


def test_claims_audit_pools_seed_pairs_and_gives_each_verdict(tmp_path, monkeypatch):
    _, results = _zoo(tmp_path, monkeypatch)
    # standard: no significant gain in either seed pair; paper protocol: a clear gain
    for s in (0, 1):
        b, h = outcomes(100, both=40, head_only=3 + s, base_only=2)
        write_result(results, f"base-s{s}", b)
        write_result(results, f"def-s{s}", h)
        b, h = outcomes(100, both=40, head_only=20, base_only=1)
        write_result(results, f"base-s{s}", b, preset="paper-x", version=1)
        write_result(results, f"def-s{s}", h, preset="paper-x", version=1)
    claims, audits = cl.audit(load_stored(results))
    (a,) = audits
    assert a.pairs == [("def-s0", "base-s0"), ("def-s1", "base-s1")]
    (row,) = a.rows
    ref, pap = row.reference.paired, row.paper.paired
    pooled_b = np.concatenate([outcomes(100, 40, 3, 2)[0], outcomes(100, 40, 4, 2)[0]])
    pooled_h = np.concatenate([outcomes(100, 40, 3, 2)[1], outcomes(100, 40, 4, 2)[1]])
    assert (ref.base_only, ref.head_only, ref.p_value) == mcnemar_exact(pooled_b, pooled_h)
    assert ref.n == 200 and ref.n_pairs == 2 and ref.delta == pytest.approx(1.5)
    assert (pap.base_only, pap.head_only) == (2, 40) and pap.delta == pytest.approx(19.0)
    assert row.verdict == "holds only under the paper's protocol"
    assert row.overstatement == pytest.approx((pap.head_acc - ref.head_acc, pap.base_acc - ref.base_acc))
    md = cl.render_markdown(claims, audits)
    assert "holds only under the paper's protocol" in md and "+19.00 [" in md and "Newcombe" in md
    assert "| def | Doe et al. (ICML 2099) | 0.2 |" in md


def test_missing_results_give_not_measured_never_a_number(tmp_path, monkeypatch):
    zoo, results = _zoo(tmp_path, monkeypatch)
    b, h = outcomes(100, both=40, head_only=3, base_only=2)
    write_result(results, "base-s0", b)
    write_result(results, "def-s0", h)  # standard only: no significant gain, no paper result
    write_result(results, "def-s1", h, preset="paper-x", version=1)  # a defense alone: nothing to pair
    _, audits = cl.audit(load_stored(results))
    (a,) = audits
    assert [r.verdict for r in a.rows] == ["not measured"]
    md = cl.render_markdown(*cl.audit(load_stored(results)))
    assert "**not measured**" in md and "no paired result under the paper preset" in md
    summary = next(ln for ln in md.splitlines() if ln.startswith("| def |"))
    assert "not measured (no baseline result on the same points)" in summary  # the paper cell: words, not a number
    # a recipe with no zoo entry, and a claim with no matched baseline at all
    (zoo / "claims.toml").write_text(CLAIMS + CLAIMS.split("\n", 4)[-1].replace('"def"', '"gone"')
                                     + '\n[[claim]]\nrecipe = "base"\npaper = "P: Q (X 1)"\nclaim = "c"\npaper_preset = "p"\n')
    _, audits = cl.audit(load_stored(results))
    by = {a.claim.recipe: a for a in audits}
    assert by["gone"].rows == [] and "no zoo entry of recipe 'gone'" in by["gone"].problem
    assert by["base"].rows == [] and "no matched baseline" in by["base"].problem
    md = cl.render_markdown(*cl.audit(load_stored(results)))
    assert md.count("not measured (no zoo entry") == 1


def test_card_and_claims_file_must_agree_and_claims_file_is_validated(tmp_path, monkeypatch):
    zoo, results = _zoo(tmp_path, monkeypatch, CLAIMS.replace('matched_baseline = "base"', 'matched_baseline = "other"'))
    with pytest.raises(BenchError, match="make them agree"):
        cl.audit(load_stored(results))
    (zoo / "claims.toml").write_text(CLAIMS + 'colour = "red"\n')  # lands in the last [[claim]]
    with pytest.raises(BenchError, match="unknown key"):
        cl.load_claims()
    (zoo / "claims.toml").write_text(CLAIMS.replace("alpha = 0.05", "alpha = 5"))
    with pytest.raises(BenchError, match="alpha"):
        cl.load_claims()
    (zoo / "claims.toml").write_text(CLAIMS + CLAIMS.split("\n", 4)[-1])
    with pytest.raises(BenchError, match="two claims"):
        cl.load_claims()


def test_claims_toml_fallback_pairs_by_recipe_and_seed(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    (zoo / "claims.toml").write_text(CLAIMS)
    write_card(zoo, "base-s0", "base", seed=0)
    write_card(zoo, "base-s1", "base", seed=1)
    write_card(zoo, "def-s1", "def", seed=1)  # no matched_baseline key: claims.toml's recipe, same seed
    _, audits = cl.audit(load_stored(results))
    assert audits[0].pairs == [("def-s1", "base-s1")]


def test_leaderboard_writes_claims_and_check_covers_it(tmp_path, monkeypatch):
    _, results = _zoo(tmp_path, monkeypatch)
    b, h = outcomes(100, both=40, head_only=30, base_only=0)
    write_result(results, "base-s0", b)
    write_result(results, "def-s0", h)
    out = tmp_path / "reports"
    lb.write_leaderboard(results, out)
    assert lb.stale_files(results, out) == []
    text = (out / "claims.md").read_text()
    assert "**holds**" in text
    assert 'id="claims"' in (out / "index.html").read_text()
    (out / "claims.md").write_text(text + "edited\n")
    assert lb.stale_files(results, out) == ["claims.md"]
    assert math.isclose(cl.audit(load_stored(results))[1][0].rows[0].reference.paired.delta, 30.0)


def test_a_matched_baseline_not_in_the_zoo_yet_is_not_measured(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    (zoo / "claims.toml").write_text(CLAIMS)
    write_card(zoo, "def-s0", "def", matched_baseline="base-s0")  # base-s0 not trained yet
    write_result(results, "def-s0", np.ones(10, bool))
    _, (a,) = cl.audit(load_stored(results))
    assert a.rows == [] and "base-s0 is no zoo entry yet" in a.problem
    cell = matched_cells(load_stored(results), zoo_cards(), {})[("def-s0", "mnist5k", "Linf", 0.2, "standard", 3, 10)]
    assert cell.paired is None and "no baseline result" in cell.markdown()


def test_a_paper_result_at_another_eps_is_never_shown_as_this_budgets(tmp_path, monkeypatch):
    """The paper protocol run at eps 0.1 only; standard at 0.1 and 0.2: the 0.2 row has no paper evidence."""
    _, results = _zoo(tmp_path, monkeypatch)
    b, h = outcomes(100, both=40, head_only=20, base_only=1)
    for eps in (0.1, 0.2):
        write_result(results, "base-s0", b, eps=eps)
        write_result(results, "def-s0", h, eps=eps)
    write_result(results, "base-s0", b, preset="paper-x", version=1, eps=0.1)
    write_result(results, "def-s0", h, preset="paper-x", version=1, eps=0.1)
    _, (a,) = cl.audit(load_stored(results))
    by_eps = {r.eps: r for r in a.rows}
    assert sorted(by_eps) == [0.1, 0.2]
    assert by_eps[0.1].paper is not None and by_eps[0.1].paper.eps == pytest.approx(0.1)
    assert by_eps[0.2].paper is None and by_eps[0.2].verdict == "holds"  # standard decides alone


def test_summary_marks_a_defense_more_than_three_clean_points_below_its_baseline(tmp_path, monkeypatch):
    _, results = _zoo(tmp_path, monkeypatch)
    b, h = outcomes(100, both=40, head_only=20, base_only=1)
    clean_b = np.ones(100, dtype=bool)
    clean_h = clean_b.copy()
    lose = np.flatnonzero(h == 0)[:8]
    clean_h[lose] = False  # 8 points lower clean accuracy, robust outcomes unchanged
    write_result(results, "base-s0", b, clean=clean_b)
    write_result(results, "def-s0", h, clean=clean_h)
    claims, audits = cl.audit(load_stored(results))
    (row,) = audits[0].rows
    assert row.reference.paired.clean_delta == pytest.approx(-8.0)
    assert cl.clean_cell(row) == ("-8.00 (outside -3)", pytest.approx(-8.0))
    md = cl.render_markdown(claims, audits)
    assert "| -8.00 (outside -3) |" in md and "within 3 points" in md
    # within the rule: the number alone
    write_result(results, "def-s0", h, clean=np.ones(100, dtype=bool))
    (row,) = cl.audit(load_stored(results))[1][0].rows
    assert cl.clean_cell(row)[0] == "+0.00"
