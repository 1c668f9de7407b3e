"""`snnbench submit`: every bad input is refused with one clear line before any attack; good ones are accepted."""

from __future__ import annotations

import json
import shutil
import textwrap
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bench.cli import main
from bench.submit import find_card, validate_submission
from models_zoo.cards import card_to_toml, load_card, sha256_file
from models_zoo.checkpoints import load_state_dict

# A custom spikingjelly model (`file.py:factory`), with switches that make it misbehave.
CUSTOM_MODEL = textwrap.dedent(
    """
    from pathlib import Path

    import torch
    from spikingjelly.activation_based import layer, neuron
    from torch import nn

    # importing this file RUNS code: the marker proves whether it was imported
    Path(__file__).with_name("imported.marker").write_text("imported")


    class Net(nn.Module):
        def __init__(self, hidden=32, leak=False, noise=0.0):
            super().__init__()
            self.body = nn.Sequential(
                layer.Flatten(step_mode="m"), layer.Linear(64, hidden, step_mode="m"),
                neuron.LIFNode(step_mode="m"), layer.Linear(hidden, 10, step_mode="m"),
            )
            self.leak, self.noise, self.calls = leak, noise, 0

        def forward(self, x):
            out = self.body(x)
            if self.leak:  # a plain attribute: functional.reset_net does not reset it
                self.calls += 1
                out = out + 0.1 * self.calls
            if self.noise:
                out = out + self.noise * torch.randn_like(out)
            return out


    def build(**kwargs):
        return Net(**kwargs)
    """
)


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


@pytest.fixture()
def sub_env(isolated_outputs, monkeypatch):
    monkeypatch.setenv("SNNBENCH_SUBMISSIONS_DIR", str(isolated_outputs / "submissions"))
    return isolated_outputs


def make_submission(digits_card, where: Path, *, weights=None, name="mine.safetensors", mutate=None, claim=None) -> Path:
    """A submission folder: card.toml + checkpoint (the digits model's weights unless given), hashes filled in."""
    where.mkdir(parents=True, exist_ok=True)
    ckpt = where / name
    if weights is None:
        shutil.copy(digits_card.checkpoint_path, ckpt)
    elif name.endswith(".safetensors"):
        save_file(weights, str(ckpt))
    else:
        torch.save(weights, ckpt)
    data = tomllib.loads(digits_card.path.read_text())
    data.update(id="my-snn-digits", checkpoint=name, sha256=sha256_file(ckpt), size_bytes=ckpt.stat().st_size,
                claimed_clean_acc=digits_card.claimed_clean_acc if claim is None else claim)
    if mutate:
        mutate(data)
    card = where / "card.toml"
    card.write_text(card_to_toml(data))
    return card


def custom_submission(digits_card, where: Path, **arch_args) -> Path:
    """A submission whose architecture is custom code (model.py:build) with random weights."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "model.py").write_text(CUSTOM_MODEL)
    torch.manual_seed(0)
    ns: dict = {}
    exec(compile(CUSTOM_MODEL.replace('Path(__file__).with_name("imported.marker").write_text("imported")', ""), "m", "exec"), ns)
    weights = {k: v.contiguous() for k, v in ns["build"](**arch_args).state_dict().items()}

    def mutate(d):
        d["architecture"] = "model.py:build"
        d["architecture_args"] = dict(arch_args)

    return make_submission(digits_card, where, weights=weights, mutate=mutate, claim=10.0)


def refused(capsys, argv) -> str:
    """Run the CLI, expect exit 2 and exactly one error line; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnbench: error: submission refused [") and err.strip().count("\n") == 0, err
    return err.strip()


def test_submit_accepts_runs_the_gauntlet_and_regenerates_the_leaderboard(digits_card, sub_env, capsys):
    card = make_submission(digits_card, sub_env / "incoming")
    assert main(["submit", str(card), "--limit", "30", "--eps", "0.05", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for step in ("ok   schema", "ok   checkpoint", "ok   weights", "ok   state", "ok   stochastic: no", "ok   clean accuracy"):
        assert step in out, out
    dest = sub_env / "submissions" / "my-snn-digits"
    accepted = load_card(dest / "card.toml")
    assert accepted.checkpoint_path == (dest / "mine.safetensors").resolve()
    record = json.loads((dest / "submission.json").read_text())
    assert record["status"] == "evaluated" and record["stochastic"] is False and record["custom_code"] is False
    assert record["clean_acc"] == pytest.approx(digits_card.claimed_clean_acc, abs=0.01) and record["flags"] == []
    res = json.loads(next((sub_env / "results" / "digits" / "my-snn-digits").glob("*_n30.json")).read_text())
    assert res["model_id"] == "my-snn-digits" and res["n_points"] == 30 and res["robust_acc"] <= res["clean_acc"]
    assert (sub_env / "reports" / "leaderboard.md").is_file()
    assert find_card("my-snn-digits").path == accepted.path  # compare/leaderboard can resolve it by id
    assert accepted.summary()["custom_code"] is False
    # the same id again is refused unless --replace
    assert main(["submit", str(card), "--limit", "30", "--device", "cpu"]) == 2
    assert "--replace" in capsys.readouterr().err


def test_pt_state_dict_is_accepted_and_claim_gap_is_flagged(digits_card, sub_env):
    weights = load_state_dict(digits_card.checkpoint_path)
    card = make_submission(digits_card, sub_env / "pt", weights=weights, name="w.pt", claim=digits_card.claimed_clean_acc - 3.0)
    check, _ = validate_submission(card, "cpu")
    assert check.checkpoint_format == "pt"
    assert [f["id"] for f in check.flags] == [3]  # accepted, but flagged
    assert check.clean_acc - check.claimed_clean_acc == pytest.approx(3.0, abs=0.01)


def test_missing_file(digits_card, sub_env, capsys):
    card = make_submission(digits_card, sub_env / "a")
    (sub_env / "a" / "mine.safetensors").unlink()
    err = refused(capsys, ["submit", str(card), "--device", "cpu"])
    assert "[checkpoint]" in err and "not found" in err


def test_hash_mismatch(digits_card, sub_env, capsys):
    card = make_submission(digits_card, sub_env / "b", mutate=lambda d: d.update(sha256="ab" * 32))
    err = refused(capsys, ["submit", str(card), "--device", "cpu"])
    assert "[checkpoint]" in err and "sha256 mismatch" in err


def test_wrong_architecture_lists_keys(digits_card, sub_env, capsys):
    def mutate(d):
        d.update(architecture="scnn28", architecture_args={"channels": [4, 8], "hidden": 16})

    card = make_submission(digits_card, sub_env / "c", mutate=mutate)
    err = refused(capsys, ["submit", str(card), "--device", "cpu"])
    assert "[weights]" in err and "missing keys [0.weight" in err and "unexpected keys [3.bias, 3.weight]" in err


def test_nan_output(digits_card, sub_env, capsys):
    weights = load_state_dict(digits_card.checkpoint_path)
    weights = {k: (torch.full_like(v, float("nan")) if k.endswith("weight") and v.dim() == 2 and v.shape[0] == 10 else v)
               for k, v in weights.items()}
    card = make_submission(digits_card, sub_env / "d", weights=weights)
    err = refused(capsys, ["submit", str(card), "--device", "cpu"])
    assert "[weights]" in err and "NaN/inf in" in err  # refused at validation, before any forward (issue 12 item 8)


def test_state_leak(digits_card, sub_env, capsys):
    card = custom_submission(digits_card, sub_env / "e", leak=True)
    err = refused(capsys, ["submit", str(card), "--trust-code", "--device", "cpu"])
    assert "[state]" in err and "state carries over" in err


def test_pickle_payload_is_refused_and_does_not_run(digits_card, sub_env, capsys):
    marker = sub_env / "pwned"
    weights = dict(load_state_dict(digits_card.checkpoint_path))
    weights["evil"] = _Payload(str(marker))
    card = make_submission(digits_card, sub_env / "f", weights=weights, name="evil.pt")
    assert not marker.exists()
    err = refused(capsys, ["submit", str(card), "--device", "cpu"])
    assert "[weights]" in err and "refused" in err and "would call GLOBAL" in err and "safetensors" in err
    assert not marker.exists(), "the pickle payload ran"


def test_custom_code_needs_trust_and_is_marked(digits_card, sub_env, capsys):
    card = custom_submission(digits_card, sub_env / "g")
    marker = sub_env / "g" / "imported.marker"
    err = refused(capsys, ["submit", str(card), "--device", "cpu"])
    assert "[architecture]" in err and "--trust-code" in err
    assert not marker.exists(), "the submitter's code ran without --trust-code"
    assert main(["submit", str(card), "--trust-code", "--validate-only", "--device", "cpu"]) == 0
    assert marker.exists() and "valid:" in capsys.readouterr().out
    assert load_card(card).summary()["custom_code"] is True


def test_stochastic_forward_is_detected_and_recorded(digits_card, sub_env):
    card = custom_submission(digits_card, sub_env / "h", noise=0.5)
    check, _ = validate_submission(card, "cpu", trust_code=True)
    assert check.stochastic is True and check.custom_code is True and len(check.code_sha256) == 64
    card = custom_submission(digits_card, sub_env / "i")
    check, _ = validate_submission(card, "cpu", trust_code=True)
    assert check.stochastic is False


def test_zoo_id_is_refused(digits_card, sub_env, capsys):
    card = make_submission(digits_card, sub_env / "j", mutate=lambda d: d.update(id="baseline-mnist5k-s0"))
    err = refused(capsys, ["submit", str(card), "--device", "cpu"])
    assert "[schema]" in err and "zoo entry" in err


def test_custom_code_submission_is_copied_with_its_code(digits_card, sub_env, capsys):
    card = custom_submission(digits_card, sub_env / "k")
    assert main(["submit", str(card), "--trust-code", "--limit", "20", "--eps", "0.05", "--device", "cpu"]) == 0
    capsys.readouterr()
    dest = sub_env / "submissions" / "my-snn-digits"
    accepted = load_card(dest / "card.toml")
    assert accepted.architecture == "model.py:build" and (dest / "model.py").read_text() == CUSTOM_MODEL
    record = json.loads((dest / "submission.json").read_text())
    assert record["custom_code"] is True and record["code_sha256"] == sha256_file(dest / "model.py")
    res = json.loads((sub_env / "results" / "digits" / "my-snn-digits" / Path(record["results"][0]).name).read_text())
    assert res["config"]["code_sha256"] == record["code_sha256"]  # a stored result is tied to this exact code
    assert accepted.summary()["custom_code"] is True


def test_readme_example_submission_card_is_valid():
    """README's `snnbench submit examples/submission/card.toml` needs a card whose hash matches its checkpoint."""
    from models_zoo.zoo import list_cards, load_model

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert "snnbench submit examples/submission/card.toml --validate-only" in readme
    card = load_card(root / "examples" / "submission" / "card.toml")
    model = load_model(card, "cpu")  # schema, sha256, size, weights-only load, strict keys
    assert card.id not in {c.id for c in list_cards()}
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
