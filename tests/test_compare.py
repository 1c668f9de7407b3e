"""`snnbench compare`: paired per-point comparison with an exact McNemar test, a CI rule and exit codes 0/1/2."""

from __future__ import annotations

import json
import tomllib

import pytest
import torch
from safetensors.torch import save_file

from bench.cli import main
from bench.compare import compare, mcnemar_exact
from models_zoo.cards import card_to_toml, sha256_file
from models_zoo.checkpoints import load_state_dict

ARGS = ["--eps", "0.1", "--limit", "120", "--device", "cpu"]


@pytest.fixture(scope="module")
def weak_card(digits_card, tmp_path_factory):
    """The digits model with Gaussian noise (1 std) on its weight matrices: less accurate and less robust."""
    out = tmp_path_factory.mktemp("weak")
    g = torch.Generator().manual_seed(0)
    state = load_state_dict(digits_card.checkpoint_path)
    noisy = {k: v + v.std() * torch.randn(v.shape, generator=g) if v.dim() > 1 else v for k, v in state.items()}
    ckpt = out / "weak.safetensors"
    save_file(noisy, str(ckpt))
    data = tomllib.loads(digits_card.path.read_text())
    data.update(id="weak-digits", checkpoint="weak.safetensors", sha256=sha256_file(ckpt), size_bytes=ckpt.stat().st_size)
    card = out / "weak.toml"
    card.write_text(card_to_toml(data))
    return card


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory):
    return tmp_path_factory.mktemp("compare_outputs")


@pytest.fixture()
def outputs(shared_results, monkeypatch):
    """Results and reports in one temporary folder for the whole module (later tests reuse stored results)."""
    monkeypatch.setenv("SNNBENCH_RESULTS_DIR", str(shared_results / "results"))
    monkeypatch.setenv("SNNBENCH_REPORTS_DIR", str(shared_results / "reports"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return shared_results


def test_mcnemar_exact_values():
    a = torch.tensor([1] * 10 + [0] * 5, dtype=torch.bool).numpy()
    b = torch.tensor([1] * 10 + [1] * 5, dtype=torch.bool).numpy()
    assert mcnemar_exact(a, b) == (0, 5, pytest.approx(2 * 0.5**5))  # 5 discordant, all for head
    assert mcnemar_exact(b, a)[:2] == (5, 0)
    assert mcnemar_exact(a, a) == (0, 0, 1.0)  # no discordant pair: no evidence
    # concordant points do not matter: 3 vs 3 discordant is p = 1 whatever the rest
    x = [1, 1, 1, 0, 0, 0] + [1] * 50
    y = [0, 0, 0, 1, 1, 1] + [1] * 50
    assert mcnemar_exact(torch.tensor(x).bool().numpy(), torch.tensor(y).bool().numpy())[2] == pytest.approx(1.0)


def test_compare_pass_and_fail_exit_codes_and_step_summary(digits_card, weak_card, outputs, monkeypatch, capsys):
    summary = outputs / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    good = str(digits_card.path)
    # weak -> good: a real robustness gain, significant, no clean drop: passes
    assert main(["compare", str(weak_card), good, *ARGS, "--require-gain", "5", "--max-clean-drop", "0", "--alpha", "0.05"]) == 0
    cap = capsys.readouterr()
    assert "**PASS**" in cap.out and "| worst-case robust accuracy |" in cap.out and "McNemar p" in cap.out
    assert "reused" not in cap.err
    # good -> weak: robustness drops: fails with exit 1, both reasons named; results are reused, not recomputed
    assert main(["compare", good, str(weak_card), *ARGS, "--max-clean-drop", "1"]) == 1
    cap = capsys.readouterr()
    assert "**FAIL**" in cap.out and "robust gain -" in cap.out and "clean drop" in cap.out and "> allowed 1.00" in cap.out
    assert cap.err.count("reused stored result") == 2
    text = summary.read_text()
    assert text.count("### snnbench compare") == 2 and "**PASS**" in text and "**FAIL**" in text
    # a tolerated drop passes
    assert main(["compare", good, str(weak_card), *ARGS, "--require-gain", "-100"]) == 0
    capsys.readouterr()


def test_compare_numbers_match_the_per_point_files(digits_card, weak_card, outputs):
    c = compare(weak_card.as_posix(), str(digits_card.path), eps=0.1, limit=120, device="cpu")
    assert c.base.reused and c.head.reused  # stored by the previous test
    assert c.n_points == 120
    assert c.clean.base == pytest.approx(c.base.result["clean_acc"], abs=1e-3) and c.clean.head == pytest.approx(c.head.result["clean_acc"], abs=1e-3)
    assert c.robust.base == pytest.approx(c.base.result["robust_acc"], abs=1e-3) and c.robust.head == pytest.approx(c.head.result["robust_acc"], abs=1e-3)
    # the discordant counts explain the delta exactly: delta = (head_only - base_only) / n
    assert c.robust.delta == pytest.approx(100.0 * (c.robust.head_only - c.robust.base_only) / 120)
    assert c.robust.delta > 0 and c.passed
    # a stored result whose per-point file is gone is recomputed, not trusted
    pts = c.head.path.with_suffix(".points.csv")
    pts.unlink()
    c2 = compare(weak_card.as_posix(), str(digits_card.path), eps=0.1, limit=120, device="cpu")
    assert pts.is_file() and not c2.head.reused and c2.base.reused
    assert json.loads(c2.head.path.read_text())["robust_acc"] == c.head.result["robust_acc"]


def test_compare_bad_input_exits_2(digits_card, outputs, capsys):
    for argv, expected in [
        (["compare", "no-such-model", "baseline-mnist5k-s0"], "unknown model 'no-such-model'"),
        (["compare", "baseline-mnist5k-s0", "baseline-mnist5k-s9"], "unknown model 'baseline-mnist5k-s9': did you mean 'baseline-mnist5k-s"),
        (["compare", "baseline-mnist5k-s0", str(digits_card.path)], "same data set"),
        (["compare", "baseline-mnist5k-s0", "baseline-mnist5k-s0", "--max-clean-drop", "-1"], "--max-clean-drop"),
        (["compare", "baseline-mnist5k-s0", "baseline-mnist5k-s0", "--alpha", "2"], "--alpha"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("snnbench: error: ") and err.strip().count("\n") == 0, err
        assert expected in err, (argv, err)
