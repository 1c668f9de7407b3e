"""`snnbench perf`: the figures it reports are consistent (no timing is asserted: the machine is noisy)."""

from __future__ import annotations

import json

from bench.cli import main
from bench.perf import plain_loop_ratio, run_preset_comparison


def test_perf_cli_writes_consistent_figures(digits_card, tmp_path, isolated_outputs, capsys):
    out = tmp_path / "perf.json"
    rc = main(["perf", "--model", str(digits_card.path), "--points", "24", "--steps", "3", "--batch-size", "12",
               "--out", str(out), "--skip-presets"])
    assert rc == 0
    fig = json.loads(out.read_text())
    assert fig["points"] == 24 and fig["steps"] == 3
    assert fig["floor_s_per_point_iter"] > 0 and fig["pgd_over_floor"] > 0 and fig["pgd_full_over_floor"] > 0
    assert fig["pgd_full_robust_acc"] == fig["pgd_robust_acc"]  # early stop never changes an outcome
    assert 0 <= fig["pgd_robust_acc"] <= 100
    assert fig["plain_over_fused_floor"] > 0 and "presets" not in fig
    assert "(b)/(a)" in capsys.readouterr().out


def test_preset_comparison_runs_each_preset_from_scratch(digits_card, digits_model, digits_data, isolated_outputs):
    got = run_preset_comparison(digits_card, 20, "cpu", 10, presets=("quick", "autoattack-standard"))
    for name in ("quick", "autoattack-standard"):
        assert got[name]["wall_s"] > 0 and got[name]["robust_acc"] <= got[name]["clean_acc"]
    assert "autoattack_over_standard_wall" not in got  # only with both standard presets
    x, y = digits_data.test.x, digits_data.test.y
    assert plain_loop_ratio(digits_model, x[:16], y[:16], 2, 8) > 0
    assert all(n.fused for n in digits_model.neurons)
