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
    assert set(res["per_attack"]) == {"fgsm-own", "pgd20-own", "pgd20-sigmoid4", "pgd20-rect1", "pgd20-own-twin", "pgd20-bpda-own", "square1000"}

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


def test_run_with_two_workers_matches_one_worker(digits_card, isolated_outputs, monkeypatch, capsys):
    """The main job's parallel workers give the same results as evaluating the models one by one."""
    import json
    import shutil

    from bench.cli import main as cli_main
    from models_zoo.cards import card_to_toml, load_card

    zoo = isolated_outputs / "zoo"
    (zoo / "cards").mkdir(parents=True)
    (zoo / "checkpoints").mkdir()
    for family in ("baseline", "other"):  # two families -> two models in the default one-seed-per-family run
        data = dict(load_card(digits_card.path).data)
        data["id"], data["family"] = f"{family}-digits-s0", family
        ckpt = zoo / "checkpoints" / f"{data['id']}.safetensors"
        shutil.copy(digits_card.checkpoint_path, ckpt)
        data["checkpoint"] = f"../checkpoints/{ckpt.name}"
        (zoo / "cards" / f"{data['id']}.toml").write_text(card_to_toml(data))
    monkeypatch.setenv("SNNBENCH_ZOO_DIR", str(zoo))
    outcomes = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("SNNBENCH_RESULTS_DIR", str(isolated_outputs / f"results{workers}"))
        assert cli_main(["run", "--dataset", "digits", "--limit", "30", "--workers", workers, "--device", "cpu"]) == 0
        out = capsys.readouterr().out
        assert f"({workers} worker(s))" in out and "baseline-digits-s0: preset quick" in out and "other-digits-s0" in out
        files = sorted((isolated_outputs / f"results{workers}" / "digits").glob("*/quick-*.json"))
        assert len(files) == 2
        outcomes[workers] = [(f.parent.name, json.loads(f.read_text())) for f in files]
    for (m1, r1), (m2, r2) in zip(outcomes["1"], outcomes["2"]):
        assert m1 == m2 and r1["config_hash"] == r2["config_hash"]
        outcome = lambda r: (r["robust_acc"], {k: (v["robust_acc"], v["n_broken"]) for k, v in r["per_attack"].items()})  # noqa: E731
        assert outcome(r1) == outcome(r2)


def test_run_schedules_adversarially_trained_models_first(digits_card, isolated_outputs):
    import json

    from bench.run_zoo import slowest_first
    from models_zoo.cards import ModelCard

    def card(model_id: str, recipe: str) -> ModelCard:
        data = dict(digits_card.data)
        data["id"], data["family"], data["training"] = model_id, recipe, {**digits_card.training, "recipe": recipe}
        return ModelCard(data=data, path=None)

    cards = [card("a-s0", "baseline"), card("b-s0", "pgd-at+sr"), card("c-s0", "sr"), card("d-s0", "pgd-at")]
    assert [c.id for c in slowest_first(cards)] == ["b-s0", "d-s0", "a-s0", "c-s0"]
    # stored attack times win over the heuristic: longest first, models never timed before them
    for model_id, secs in (("a-s0", 5.0), ("c-s0", 50.0), ("d-s0", 20.0)):
        folder = isolated_outputs / "results" / digits_card.dataset / model_id
        folder.mkdir(parents=True)
        (folder / "quick-v1_Linf_eps0.2_n60.json").write_text(json.dumps({"provenance": {"attack_seconds": secs}}))
    assert [c.id for c in slowest_first(cards, "quick")] == ["b-s0", "c-s0", "d-s0", "a-s0"]
    # a seed never timed under the preset takes its recipe's mean time (c-s1 is recipe "sr", as c-s0)
    cards.append(card("c-s1", "sr"))
    assert [c.id for c in slowest_first(cards, "quick")] == ["b-s0", "c-s0", "c-s1", "d-s0", "a-s0"]


def test_run_rejects_a_bad_worker_count(capsys):
    from bench.cli import main as cli_main

    assert cli_main(["run", "--workers", "0"]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err
