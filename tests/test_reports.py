"""Leaderboard reports: seed statistics, analysis metrics, the static HTML page and the README block."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

import bench.leaderboard as lb
from bench.cli import main
from bench.errors import BenchError
from bench.analysis import load_analyses
from bench.html import COLUMNS as HTML_COLUMNS
from bench.html import render_html

CARDS = {
    # three seeds of one recipe, one other recipe, one submission with custom code
    "mpd-s0": {"family": "mpd-sgr", "recipe": "mpd-sgr", "seed": 0},
    "mpd-s1": {"family": "mpd-sgr", "recipe": "mpd-sgr", "seed": 1},
    "mpd-s2": {"family": "mpd-sgr", "recipe": "mpd-sgr", "seed": 2},
    "base-s0": {"family": "baseline", "recipe": "baseline", "seed": 0},
    "sub": {"family": "submission", "recipe": "custom", "seed": 0, "custom_code": True},
}


def card_fields(model_id):
    c = CARDS.get(model_id)
    if c is None:
        return {}
    return {"paper": "Jiang, Jiang, Yan, Tang: MPD-SGR (arXiv 2511.12199, AAAI 2026)", "T": 4, "neuron": "LIF",
            "training_sg": "triangle(1)", "architecture": "scnn28", "encoder": "direct", "custom_code": False, **c}


@pytest.fixture()
def fake_cards(monkeypatch):
    monkeypatch.setattr("bench.leaderboard_table._card_fields", card_fields)  # where build_table reads cards


def result(model, robust, clean=97.0, own=None, flags=(), dataset="mnist5k", preset="quick", eps=0.2):
    return {
        "model_id": model, "family": CARDS.get(model, {}).get("family", "x"), "dataset": dataset, "threat_model": "Linf",
        "eps": eps, "preset": preset, "preset_version": 1, "config_hash": f"{model}-{preset}-{eps}", "n_points": 1000,
        "n_available": 1000, "clean_acc": clean, "robust_acc": robust, "own_sg_robust_acc": own,
        "flags": [{"id": i, "key": f"key{i}", "message": f"message <{i}>", "values": {}} for i in flags],
    }


def analysis(model, omega, dataset="mnist5k"):
    return {"kind": "analysis", "model_id": model, "dataset": dataset, "family": CARDS[model]["family"],
            "summary": {"omega_clean": omega, "omega_adv": omega + 0.1, "omega_gauss_clean": omega, "firing_rate_clean": 0.2,
                        "grad_zero_share": 0.5, "grad_l1_mean": 3.0}}


def write_tree(root, results, analyses=()):
    for r in results:
        d = root / r["dataset"] / r["model_id"]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{r['preset']}_{r['eps']}.json").write_text(json.dumps(r))
    for a in analyses:
        d = root / a["dataset"] / a["model_id"]
        d.mkdir(parents=True, exist_ok=True)
        (d / "analysis.json").write_text(json.dumps(a))


RESULTS = [
    result("mpd-s0", 10.0, clean=96.0), result("mpd-s1", 12.0, clean=95.0), result("mpd-s2", 14.0, clean=97.0, own=30.0),
    result("base-s0", 2.0, own=5.0, flags=(8, 11)), result("sub", 20.0, flags=(3,)),
    result("base-s0", 40.0, eps=0.1),  # another eps: another table, its own seed group
]


def test_seed_mean_std_and_analysis_metrics(fake_cards, tmp_path):
    write_tree(tmp_path, RESULTS, [analysis("mpd-s0", 0.3), analysis("base-s0", 0.6)])
    df = lb.build_table(lb.load_results(tmp_path), analyses=load_analyses(tmp_path))
    assert len(df) == 6  # analysis.json files are not results
    top = df[df.eps == 0.2].set_index("model_id")
    assert list(df[df.eps == 0.2].model_id) == ["sub", "mpd-s2", "mpd-s1", "mpd-s0", "base-s0"]
    assert top.loc["mpd-s0", "n_seeds"] == 3
    assert top.loc["mpd-s1", "robust_mean"] == pytest.approx(12.0)
    assert top.loc["mpd-s2", "robust_std"] == pytest.approx(2.0)  # sample std of 10, 12, 14
    assert top.loc["mpd-s0", "clean_mean"] == pytest.approx(96.0)
    assert top.loc["base-s0", "n_seeds"] == 1 and pd.isna(top.loc["base-s0", "robust_mean"])
    assert top.loc["mpd-s0", "omega"] == pytest.approx(0.3) and top.loc["mpd-s0", "omega_adv"] == pytest.approx(0.4)
    assert top.loc["base-s0", "omega"] == pytest.approx(0.6) and pd.isna(top.loc["mpd-s1", "omega"])
    assert top.loc["mpd-s2", "masking_gap"] == pytest.approx(16.0)
    assert bool(top.loc["sub", "custom_code"]) and top.loc["base-s0", "flags"] == "F8 F11"
    md = lb.render_markdown(df)
    assert "12.00 ± 2.00 (3)" in md and "[F8](../docs/flags.md)" in md and "custom-code" in md
    assert "Jiang et al. (arXiv 2511.12199, AAAI 2026)" in md
    csv = lb.render_csv(df)
    assert csv.splitlines()[0].split(",")[:3] == ["dataset", "threat_model", "eps"] and "flag_details" not in csv
    assert len(csv.strip().splitlines()) == 7


def test_html_has_every_row_badges_filters_and_no_network(fake_cards, tmp_path):
    write_tree(tmp_path, RESULTS)
    df = lb.build_table(lb.load_results(tmp_path))
    page = render_html(df)
    rows = re.findall(r'<tr data-i="(\d+)" data-model="([^"]+)"', page)
    assert sorted(m for _, m in rows) == sorted(r["model_id"] for r in RESULTS)
    assert [int(i) for i, _ in rows] == list(range(len(RESULTS)))
    assert page.count('<section class="group"') == 2  # eps 0.2 and eps 0.1 are different tables
    assert page.count('class="badge flag" href="../docs/flags.md"') == 3
    assert 'title="F3 key3: message &lt;3&gt;"' in page  # messages escaped into the tooltip
    assert page.count('class="badge code"') == 1
    for f in ("family", "dataset", "preset"):
        assert f'id="f-{f}"' in page
    assert '<option value="mpd-sgr">' in page and '<option value="baseline">' in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not load anything from the network"
    assert page.count("<th ") == 2 * len(HTML_COLUMNS)
    assert render_html(lb.build_table(lb.load_results(tmp_path))) == page  # deterministic
    assert "No results yet" in render_html(lb.build_table([]))


def test_readme_block_written_and_checked(fake_cards, tmp_path):
    write_tree(tmp_path / "results", RESULTS[:2])
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nintro\n\n{lb.README_START}\nold\n{lb.README_END}\n\n## after\n")
    out = tmp_path / "reports"
    assert lb.stale_files(tmp_path / "results", out, readme=readme) == ["gauntlet.md", "claims.md", "leaderboard.md", "leaderboard.csv", "index.html", "README.md"]
    lb.write_leaderboard(tmp_path / "results", out, readme=readme)
    text = readme.read_text()
    assert text.startswith("# x\n\nintro\n\n<!-- leaderboard:start -->\n### mnist5k") and text.endswith("<!-- leaderboard:end -->\n\n## after\n")
    assert "| mpd-s1 |" in text and "[F" not in text and "old" not in text
    assert lb.stale_files(tmp_path / "results", out, readme=readme) == []
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    lb.write_leaderboard(tmp_path / "results", out, readme=readme)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first and readme.read_text() == text  # byte-identical
    readme.write_text(text.replace("| mpd-s1 |", "| edited |"))
    assert lb.stale_files(tmp_path / "results", out, readme=readme) == ["README.md"]
    readme.write_text("no markers\n")
    assert lb.stale_files(tmp_path / "results", out, readme=readme) == ["README.md"]
    with pytest.raises(BenchError, match="markers"):
        lb.write_leaderboard(tmp_path / "results", out, readme=readme)


def test_cli_check_covers_the_html_page(isolated_outputs, capsys):
    write_tree(isolated_outputs / "results", [result("base-s0", 2.0)])
    assert main(["leaderboard"]) == 0
    html = isolated_outputs / "reports" / "index.html"
    assert "base-s0" in html.read_text()
    assert main(["leaderboard", "--check"]) == 0
    html.write_text(html.read_text().replace("base-s0", "other"))
    assert main(["leaderboard", "--check"]) == 1
    assert "index.html" in capsys.readouterr().err


def test_short_paper():
    assert lb.short_paper("Liu, Bu, Ding: Sparse Gradients (ICML 2024)") == "Liu et al. (ICML 2024)"
    assert lb.short_paper("BPTT with a surrogate gradient (Neftci et al. 2019): the common baseline") == \
        "BPTT with a surrogate gradient (Neftci et al. 2019)"
    assert lb.short_paper("no colon here") == "no colon here"
