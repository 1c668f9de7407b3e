"""End to end through the installed CLI on a small slice of MNIST-5k with the committed baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def snnbench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=600)


def test_eval_then_leaderboard_on_a_small_slice(tmp_path, monkeypatch, capsys):
    env = {"SNNBENCH_RESULTS_DIR": str(tmp_path / "results"), "SNNBENCH_REPORTS_DIR": str(tmp_path / "reports")}
    r = snnbench("eval", "baseline-mnist5k-s0", "--preset", "quick", "--limit", "40", "--device", "cpu", env=env)
    assert r.returncode == 0, r.stderr
    assert "worst-case" in r.stdout
    files = list((tmp_path / "results").rglob("*_n40.json"))
    assert len(files) == 1
    res = json.loads(files[0].read_text())
    assert res["n_points"] == 40 and res["preset"] == "quick" and res["robust_acc"] <= res["clean_acc"]
    assert set(res["per_attack"]) == {"fgsm-own", "pgd20-own", "pgd20-sigmoid4", "pgd20-rect1"}

    for k, v in env.items():  # the rest runs in-process (same code path, no interpreter start-up)
        monkeypatch.setenv(k, v)
    assert main(["eval", "baseline-mnist5k-s0", "--limit", "40", "--device", "cpu"]) == 0
    assert "reused" in capsys.readouterr().out

    assert main(["leaderboard", "--include-subsets"]) == 0
    md = (tmp_path / "reports" / "leaderboard.md").read_text()
    assert "baseline-mnist5k-s0" in md and "40 points" in md
    assert main(["leaderboard", "--include-subsets", "--check"]) == 0
    (tmp_path / "reports" / "leaderboard.md").write_text("stale\n")
    assert main(["leaderboard", "--include-subsets", "--check"]) == 1


def test_bad_input_gives_one_clear_line_and_exit_2(capsys):
    for argv, expected in [
        (["eval", "baseline-mnist5k-s9"], "unknown model 'baseline-mnist5k-s9': did you mean 'baseline-mnist5k-s"),
        (["eval", "baseline-mnist5k-s0", "--preset", "quik"], "did you mean 'quick'"),
        (["eval", "baseline-mnist5k-s0", "--eps", "3"], "--eps must be in [0, 1]"),
        (["eval", "baseline-mnist5k-s0", "--device", "cuda:7"] if not __import__("torch").cuda.is_available()
         else ["eval", "baseline-mnist5k-s0", "--device", "tpu"], "device"),
        (["train", "sgd-magic"], "unknown recipe"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("snnbench: error: ") and err.strip().count("\n") == 0, err
        assert expected in err, (argv, err)


def test_zoo_list_and_show(capsys):
    assert main(["zoo", "list"]) == 0
    assert "baseline-mnist5k-s0" in capsys.readouterr().out
    assert main(["zoo", "show", "baseline-mnist5k-s0"]) == 0
    assert 'family = "baseline"' in capsys.readouterr().out
