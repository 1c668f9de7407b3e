"""`bench.benchmark(net, ...)`: the Python API runs what `snnbench eval` runs and returns a typed result."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

import bench
from bench.errors import BenchError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small models on a shared CPU
    yield
    torch.set_num_threads(before)


def _digits_net(card):
    from models_zoo.checkpoints import load_state_dict, load_weights_into
    from models_zoo.zoo import build_net

    net = build_net(card)
    load_weights_into(net, load_state_dict(card.checkpoint_path), card.id)
    return net.eval()


def test_in_memory_module_gives_the_numbers_of_its_card(digits_card, isolated_outputs, one_thread):
    """The same weights as a card (what `snnbench eval` loads) and as a module in memory: the same evaluation."""
    from bench.evaluate import evaluate
    from bench.neurons import SpikingNeuron

    ref, _, _ = evaluate(digits_card, eps=0.1, limit=40, device="cpu", progress=False)
    net = _digits_net(digits_card)
    sg = digits_card.training_surrogate
    res = bench.benchmark(net, dataset="digits", eps=0.1, time_steps=digits_card.time_steps, encoder=digits_card.encoder,
                          surrogate=f"{sg['family']}:gamma={sg['width']:g}", limit=40, device="cpu")
    assert isinstance(res, bench.Result) and res.io_contract == "time-major"
    for key in ("clean_acc", "robust_acc", "own_sg_robust_acc", "n_points", "broken_by_counts", "eps0_check", "tuning"):
        assert res.raw[key] == ref[key], key
    assert [f["id"] for f in ref["flags"]] == res.flag_ids
    assert (res.clean_acc, res.robust_acc, res.own_sg_robust_acc) == (ref["clean_acc"], ref["robust_acc"], ref["own_sg_robust_acc"])
    assert res.raw["eps0_check"]["points"] > 0 and "git_commit" in res.raw["provenance"]
    assert list(res.per_attack.index) == list(ref["per_attack"])
    assert res.per_attack["cumulative_robust_acc"].iloc[-1] == ref["robust_acc"]
    assert len(res.points) == 40 and int(res.points["robust"].sum()) == round(ref["robust_acc"] * 40 / 100)
    assert not any(isinstance(m, SpikingNeuron) for m in net.modules())  # the caller's module is left alone
    assert res.path is None and not (isolated_outputs / "results" / "digits" / res.model_id).exists()


def test_results_are_written_only_where_asked_and_then_reused(digits_card, tmp_path, one_thread):
    net = _digits_net(digits_card)
    kw = dict(dataset="digits", eps=0.1, time_steps=digits_card.time_steps, surrogate="triangle:gamma=1", limit=16,
              device="cpu", model_id="my-net")
    first = bench.benchmark(net, results_dir=tmp_path, **kw)
    assert first.path == tmp_path / "digits" / "my-net" / first.path.name and first.path.is_file() and not first.reused
    assert first.path.with_suffix(".points.csv").is_file()
    again = bench.benchmark(net, results_dir=tmp_path, **kw)
    assert again.reused and again.robust_acc == first.robust_acc
    with torch.no_grad():  # other weights: another configuration hash, recomputed
        next(net.parameters()).mul_(0.5)
    assert not bench.benchmark(net, results_dir=tmp_path, **kw).reused


def test_bad_input_is_one_clear_line(digits_card):
    with pytest.raises(BenchError, match="takes a torch.nn.Module"):
        bench.benchmark(42)  # type: ignore[arg-type]
    with pytest.raises(BenchError, match="time_steps is required for a time-major model"):
        bench.benchmark(_digits_net(digits_card), dataset="digits", io_contract="time-major")
    with pytest.raises(BenchError, match="unknown dataset"):
        bench.benchmark(_digits_net(digits_card), dataset="nope", time_steps=4)


def _readme_python_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_readme_notebook_example_runs(isolated_outputs, one_thread, capsys):
    """README's Python API example, executed as written, on a tiny limit."""
    code = _readme_python_block()
    assert "limit=100" in code and "bench.benchmark(" in code
    ns: dict = {"__name__": "__readme__"}
    exec(compile(code.replace("limit=100", "limit=8"), "README.md", "exec"), ns)
    res = ns["result"]
    assert isinstance(res, bench.Result) and res.n_points == 8 and res.io_contract == "image"
    assert res.preset == "quick" and isinstance(res.points, pd.DataFrame) and len(res.points) == 8
    assert 0 <= res.robust_acc <= res.clean_acc <= 100
    out = capsys.readouterr().out
    assert "worst-case" in out and "cumulative_robust_acc" in out
    assert not (isolated_outputs / "results").exists() or not list((isolated_outputs / "results").rglob("*.json"))
