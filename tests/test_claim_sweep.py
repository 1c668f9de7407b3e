"""The claims sweep (models_zoo/claim_sweep.py): sweep ids never shadow a zoo id, and each stored sweep result is
paired with its matched baseline on the same points (delta, McNemar p, clean-accuracy rule)."""

from __future__ import annotations

import numpy as np
from report_fixtures import outcomes, setup_dirs, write_card, write_result

from models_zoo import claim_sweep as cs
from models_zoo.zoo import list_cards


def test_sweep_ids_are_not_zoo_ids():
    zoo_ids = {c.id for c in list_cards()}
    for spec in cs.SWEEPS.values():
        for overrides in spec["grid"]:
            sid = cs.tag(spec["recipe"], overrides)
            assert sid not in zoo_ids and sid.endswith("-mnist5k-s0")
    assert cs.tag("rssnn", {"rssnn_sigma": 16 / 255}) == "rssnn-rssnnsigma0.06275-mnist5k-s0"


def test_summary_pairs_sweep_point_with_matched_baseline(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    monkeypatch.setattr(cs, "SWEEP_DIR", tmp_path / "sweeps")
    spec = cs.SWEEPS["mpd-sgr"]
    write_card(zoo, spec["baseline"], recipe="baseline-e10")
    base, head = outcomes(200, both=100, head_only=30, base_only=5)
    clean_head = np.ones(200, dtype=bool)
    clean_head[150:160] = False  # 95% clean vs the baseline's 100%: outside the 3-point rule
    write_result(results, spec["baseline"], base, preset="paper-mpd-sgr", eps=0.1)
    sid = cs.tag("mpd-sgr", spec["grid"][0])
    write_result(tmp_path / "sweeps" / "results", sid, head, clean=clean_head, preset="paper-mpd-sgr", eps=0.1)

    (row,) = cs.summarise("mpd-sgr")
    assert row["id"] == sid and row["n"] == 200
    assert row["robust"] == 65.0 and row["base_robust"] == 52.5 and row["delta"] == 12.5
    assert row["p"] < 1e-4 and row["ci"][0] < 12.5 < row["ci"][1]
    md = cs.table([row])
    assert f"| {sid} | paper-mpd-sgr | 0.1 | 200 | 95.0 / 100.0 | 65.0 / 52.5 | +12.5 |" in md and md.endswith("| no |")


def test_unknown_sweep_is_one_clear_error(capsys):
    assert cs.main(["nope"]) == 2
    assert "unknown sweep 'nope'" in capsys.readouterr().err


def test_table_on_a_fresh_clone_keeps_the_committed_rows(tmp_path, monkeypatch):
    """Regression: ``--table`` without models_zoo/sweeps/ (never committed) used to overwrite the summary with []."""
    import json

    setup_dirs(tmp_path, monkeypatch)
    monkeypatch.setattr(cs, "SWEEP_DIR", tmp_path / "sweeps")  # absent, as on a fresh clone
    summary = tmp_path / "claim_sweeps.json"
    stored = [dict(sweep="sr-if", id="sr-if-srlambda0.01-mnist5k-s0", overrides={"sr_lambda": 0.01}, preset="paper-sr",
                   eps=0.1, n=500, clean=94.2, robust=80.0, baseline="b", base_clean=95.2, base_robust=46.2,
                   delta=33.8, p=1e-9, ci=[29.0, 38.0])]
    summary.write_text(json.dumps(stored))
    monkeypatch.setattr(cs, "SUMMARY", summary)
    assert cs.main(["--table"]) == 0
    assert json.loads(summary.read_text()) == stored
    # a fresh result for the same key replaces the stored row; a new key is added
    newer = dict(stored[0], robust=81.0)
    other = dict(stored[0], eps=0.05)
    merged = cs.merge_rows(stored, [newer, other])
    assert len(merged) == 2 and newer in merged and other in merged
