"""Issue 12: hostile or careless input. Trust boundaries (code that must not run, files that must not be read),
memory bombs refused before allocation, and one clear line (exit 2) for every bad input seen."""

from __future__ import annotations

import os
import shutil
import signal
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bench.cli import main
from bench.errors import BenchError
from models_zoo.cards import card_to_toml, load_card, sha256_file

# importing this file writes a marker: if the marker exists, the code ran
CUSTOM = textwrap.dedent(
    """
    from pathlib import Path
    import sys
    from spikingjelly.activation_based import layer, neuron
    from torch import nn

    Path(__file__).with_name("imported.marker").write_text("imported")
    if Path(__file__).with_name("exit.switch").exists():
        sys.exit(0)


    def build(hidden=16):
        return nn.Sequential(layer.Flatten(step_mode="m"), layer.Linear(64, hidden, step_mode="m"),
                             neuron.LIFNode(step_mode="m"), layer.Linear(hidden, 10, step_mode="m"))
    """
)


@pytest.fixture()
def env(isolated_outputs, monkeypatch):
    monkeypatch.setenv("SNNBENCH_SUBMISSIONS_DIR", str(isolated_outputs / "submissions"))
    monkeypatch.delenv("SNNBENCH_TRUST_CODE", raising=False)
    return isolated_outputs


def one_line(capsys, argv, status=2) -> str:
    """Run the CLI, expect ``status`` and exactly one stderr line; return it."""
    assert main(argv) == status
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def write_card(digits_card, where: Path, *, ckpt: Path | None = None, checkpoint: str | None = None, **changes) -> Path:
    """A card in ``where`` (a copy of the digits model's, checkpoint copied beside it unless told otherwise)."""
    where.mkdir(parents=True, exist_ok=True)
    if ckpt is None:
        ckpt = where / "w.safetensors"
        if not ckpt.exists():
            shutil.copy(digits_card.checkpoint_path, ckpt)
    data = tomllib.loads(digits_card.path.read_text())
    data.update(id="hostile-digits", checkpoint=checkpoint or ckpt.name, sha256=sha256_file(ckpt), size_bytes=ckpt.stat().st_size)
    for k, v in changes.items():
        data[k] = v
    card = where / "card.toml"
    card.write_text(card_to_toml(data))
    return card


def custom_card(digits_card, where: Path, arch: str = "model.py:build") -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "model.py").write_text(CUSTOM)
    torch.manual_seed(0)
    from spikingjelly.activation_based import layer, neuron
    from torch import nn

    net = nn.Sequential(layer.Flatten(step_mode="m"), layer.Linear(64, 16, step_mode="m"), neuron.LIFNode(step_mode="m"),
                        layer.Linear(16, 10, step_mode="m"))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(where / "w.safetensors"))
    return write_card(digits_card, where, ckpt=where / "w.safetensors", architecture=arch, architecture_args={"hidden": 16},
                      claimed_clean_acc=10.0)


# -- 1. trust boundary: every command that can import a card's code asks for --trust-code --------------------

def test_custom_code_needs_trust_code_on_every_command(digits_card, env, capsys):
    card = custom_card(digits_card, env / "sub")
    marker = env / "sub" / "imported.marker"
    for argv in (["eval", str(card), "--limit", "5", "--device", "cpu"],
                 ["compare", str(card), str(card), "--limit", "5", "--device", "cpu"],
                 ["analyze", str(card), "--points", "4", "--device", "cpu"],
                 ["submit", str(card), "--validate-only", "--device", "cpu"]):
        err = one_line(capsys, argv)
        assert "--trust-code" in err and str((env / "sub" / "model.py").resolve()) in err, err
        assert not marker.exists(), f"{argv[0]} imported the card's code without --trust-code"
    assert main(["zoo", "validate", str(card), "--no-accuracy", "--device", "cpu"]) == 1
    assert "--trust-code" in capsys.readouterr().out and not marker.exists()
    # with --trust-code it is imported (and the flag does not leak into the next command)
    assert main(["zoo", "validate", str(card), "--no-accuracy", "--device", "cpu", "--trust-code"]) == 0
    assert marker.exists()
    marker.unlink()
    assert main(["zoo", "validate", str(card), "--no-accuracy", "--device", "cpu"]) == 1 and not marker.exists()


def test_ids_resolve_only_inside_the_zoo_and_submissions(digits_card, env, capsys):
    folder = env / "elsewhere" / "x"
    custom_card(digits_card, folder)
    (env / "submissions").mkdir()
    for model in ("../elsewhere/x", str(folder), "../../" + folder.name):
        err = one_line(capsys, ["eval", model, "--limit", "5", "--device", "cpu", "--trust-code"])
        assert "no folders" in err or "unknown model" in err, err
    assert not (folder / "imported.marker").exists()


# -- 2. checkpoint and code paths are confined to the card's folder ------------------------------------------

def test_checkpoint_path_is_confined_to_the_card_folder(digits_card, env, capsys, tmp_path):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"secret" * 10)
    link_dir = env / "link"
    link_dir.mkdir()
    (link_dir / "w.safetensors").symlink_to(outside)
    cases = {
        "dotdot": write_card(digits_card, env / "a" / "b", ckpt=outside, checkpoint="../../secret.bin"),
        "absolute": write_card(digits_card, env / "c", ckpt=outside, checkpoint=str(outside)),
        "symlink": write_card(digits_card, link_dir, ckpt=link_dir / "w.safetensors"),
        "zoo checkpoint": write_card(digits_card, env / "d", ckpt=digits_card.checkpoint_path,
                                     checkpoint=os.path.relpath(digits_card.checkpoint_path, env / "d")),
    }
    digest = sha256_file(outside)[:12]
    for name, card in cases.items():
        for argv in (["submit", str(card), "--validate-only", "--device", "cpu"], ["eval", str(card), "--limit", "5", "--device", "cpu"]):
            err = one_line(capsys, argv)
            assert "outside the card's folder" in err, (name, err)
            resolved = digits_card.checkpoint_path if name == "zoo checkpoint" else outside.resolve()
            assert str(resolved) in err and digest not in err, (name, err)
    assert not (env / "submissions").exists()


def test_code_path_is_confined_and_named_in_full(digits_card, env, capsys, tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "x.py").write_text(CUSTOM)
    for arch in ("../evil/x.py:build", f"{evil / 'x.py'}:build"):
        card = custom_card(digits_card, env / "sub", arch=arch)
        (env / "sub" / "model.py").write_text("# a decoy beside the card\n")
        err = one_line(capsys, ["submit", str(card), "--validate-only", "--trust-code", "--device", "cpu"])
        assert "outside the card's folder" in err and str((evil / "x.py").resolve()) in err, err
        assert not (evil / "imported.marker").exists()


# -- 3. memory bombs: refused from the archive's directory and the card's numbers, before any allocation -------

def test_deflated_pt_is_refused_before_torch_load(digits_card, env, capsys, monkeypatch, tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(4 * 1024 * 1024)}, plain)  # 16 MiB of zeros
    bomb = env / "bomb" / "w.pt"
    bomb.parent.mkdir()
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    assert bomb.stat().st_size < 200_000
    card = write_card(digits_card, bomb.parent, ckpt=bomb)

    def no_load(*a, **k):
        raise AssertionError("torch.load was called on a zip bomb")

    monkeypatch.setattr(torch, "load", no_load)
    err = one_line(capsys, ["submit", str(card), "--validate-only", "--device", "cpu"])
    assert "[weights]" in err and "compressed" in err and "16777" in err, err


def test_card_numbers_that_drive_allocations_are_bounded(digits_card, env):
    with pytest.raises(BenchError, match=r"time_steps = 100000 exceeds the limit of 256"):
        load_card(write_card(digits_card, env / "t", time_steps=100000))
    with pytest.raises(BenchError, match=r"num_classes = 100000 must be in \[2, 1000\]"):
        load_card(write_card(digits_card, env / "k", num_classes=100000))
    from models_zoo.zoo import build_net

    huge = load_card(write_card(digits_card, env / "h", architecture_args={"hidden": [200_000, 200_000]}))
    with pytest.raises(BenchError, match=r"parameters, over the limit of 200000000"):
        build_net(huge)  # counted on the meta device: nothing of the 40e9 parameters is allocated


# -- 8. non-finite weights ------------------------------------------------------------------------------------

def test_nonfinite_parameters_and_buffers_are_refused(digits_card, env, capsys):
    from models_zoo.checkpoints import load_state_dict

    w = load_state_dict(digits_card.checkpoint_path)
    key = sorted(k for k, v in w.items() if v.is_floating_point())[0]
    w[key] = w[key].clone()
    w[key].view(-1)[0] = float("inf")
    where = env / "nan"
    where.mkdir()
    save_file(w, str(where / "w.safetensors"))
    card = write_card(digits_card, where, ckpt=where / "w.safetensors")
    err = one_line(capsys, ["submit", str(card), "--validate-only", "--device", "cpu"])
    assert "[weights]" in err and f"NaN/inf in {key}" in err, err
    assert main(["zoo", "validate", str(card), "--no-accuracy", "--device", "cpu"]) == 1
    assert f"NaN/inf in {key}" in capsys.readouterr().out


# -- one clear line instead of a traceback ----------------------------------------------------------------------

def test_non_utf8_card_and_long_ids_and_devices_and_seeds(digits_card, env, capsys):
    bad = env / "bad.toml"
    bad.write_bytes(b'id = "\xff\xfe"\n')
    assert "not UTF-8" in one_line(capsys, ["eval", str(bad), "--device", "cpu"])
    assert "at most 128 are allowed" in one_line(capsys, ["eval", "a" * 300, "--device", "cpu"])
    long_card = write_card(digits_card, env / "long", id="b" * 300)
    assert "at most 128 are allowed" in one_line(capsys, ["eval", str(long_card), "--device", "cpu"])
    card = str(digits_card.path)
    for dev in ("meta", "mps"):
        assert f"device '{dev}'" in one_line(capsys, ["eval", card, "--limit", "5", "--device", dev])
    assert "--seed must be an integer in [0, 4294967295]" in one_line(capsys, ["eval", card, "--seed", str(10**20)])
    assert "--seed must be an integer" in one_line(capsys, ["train", "baseline", "--seed", "-1"])


def test_zero_or_negative_sizes_are_refused_not_read_as_default(digits_card, env, capsys):
    card = str(digits_card.path)
    for argv, flag in ((["eval", card, "--batch-size", "0"], "--batch-size"), (["eval", card, "--chunk-size", "0"], "--chunk-size"),
                       (["eval", card, "--limit", "0"], "--limit"), (["analyze", card, "--points", "0"], "--points"),
                       (["perf", "--points", "0"], "--points"), (["train", "baseline", "--epochs", "0"], "--epochs"),
                       (["train", "baseline", "--epochs", "-1", "--out-dir", str(env / "t")], "--epochs")):
        err = one_line(capsys, argv)
        assert f"{flag} must be a positive integer" in err, err
    assert not (env / "t").exists(), "train --epochs -1 wrote a card"


def test_bench_toml_type_errors_are_one_line(tmp_path):
    from bench.config import DEFAULT_CONFIG, _load

    base = DEFAULT_CONFIG.read_text()
    cases = {
        "steps = 20": ('steps = "20"', "steps must be an integer >= 1, got str '20'"),
        "steps = 100": ("steps = 2.5", "steps must be an integer >= 1, got float 2.5"),
        "chunk_size = 250": ('chunk_size = "abc"', "chunk_size must be an integer >= 1, got str 'abc'"),
        "n_test = 1000": ("n_test = 0", "n_test must be an integer >= 1, got int 0"),
        "[paths]": ("[nopaths]", "has no [paths] table"),
        "restarts = 1": ("restarts = 0", "restarts must be an integer >= 1, got int 0"),
        "step_size_ratio = 0.25": ("step_size_ratio = -1", "step_size_ratio must be a positive number, got int -1"),
        "[[presets.quick.attacks]]": ("[[presets.quick.atacks]]", "unknown key 'atacks' (did you mean 'attacks'?)"),
    }
    for i, (old, (new, msg)) in enumerate(cases.items()):
        p = tmp_path / f"bench{i}.toml"
        text = base.replace(old, new, 1)
        if old == "steps = 20":  # -5 too
            p2 = tmp_path / f"neg{i}.toml"
            p2.write_text(base.replace(old, "steps = -5", 1))
            with pytest.raises(BenchError, match="steps must be an integer >= 1, got int -5"):
                _load(str(p2))
        assert text != base, old
        p.write_text(text)
        with pytest.raises(BenchError) as e:
            _load(str(p))
        assert msg in str(e.value) and "\n" not in str(e.value), (old, str(e.value))
    with pytest.raises(BenchError) as e:
        _load(str(tmp_path / "missing.toml"))
    assert "--config" not in str(e.value) and "project root" in str(e.value)


def test_card_semantics_threat_model_tau_and_sys_exit(digits_card, env, capsys):
    with pytest.raises(BenchError, match=r"threat_model = 'L2' is not implemented: only 'Linf'"):
        load_card(write_card(digits_card, env / "l2", threat_model="L2"))
    data = tomllib.loads(digits_card.path.read_text())
    neuron = dict(data["neuron"], type="LIF", tau=0.0)
    with pytest.raises(BenchError, match=r"tau must be > 1 for LIF .* got 0"):
        load_card(write_card(digits_card, env / "tau", neuron=neuron))
    card = custom_card(digits_card, env / "exit")
    (env / "exit" / "exit.switch").write_text("")
    err = one_line(capsys, ["submit", str(card), "--validate-only", "--trust-code", "--device", "cpu"])
    assert "sys.exit(0)" in err and "must not exit" in err, err


def test_results_folder_that_is_a_file_or_a_full_disk(digits_card, env, capsys, monkeypatch):
    blocker = env / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SNNBENCH_RESULTS_DIR", str(blocker))
    err = one_line(capsys, ["eval", str(digits_card.path), "--limit", "5", "--eps", "0.05", "--device", "cpu"])
    assert "cannot create folder" in err and str(blocker) in err, err
    monkeypatch.setenv("SNNBENCH_REPORTS_DIR", str(blocker / "reports"))
    err = one_line(capsys, ["leaderboard"])
    assert "cannot create folder" in err, err
    import bench.io as bio

    def full(p, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setenv("SNNBENCH_RESULTS_DIR", str(env / "results"))
    monkeypatch.setenv("SNNBENCH_REPORTS_DIR", str(env / "reports"))
    monkeypatch.setattr(bio, "_atomic_write", full)
    err = one_line(capsys, ["leaderboard"])
    assert "No space left on device" in err and "cannot write" in err, err


def test_step_summary_into_a_missing_folder_keeps_the_verdict(env, capsys, monkeypatch):
    import bench.compare as bc

    class Verdict:
        passed = False

        def markdown(self) -> str:
            return "### table\n"

    monkeypatch.setattr(bc, "compare", lambda *a, **k: Verdict())
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(env / "no" / "such" / "summary.md"))
    assert main(["compare", "a", "b"]) == 1  # the verdict (fail), not a crash and not exit 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnbench: warning: cannot append the summary to GITHUB_STEP_SUMMARY") and "\n" not in err, err


def test_sigterm_gives_a_resume_message(monkeypatch, capsys):
    import bench.cli as cli

    def slow(args):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setitem(cli.COMMANDS, "leaderboard", slow)
    assert main(["leaderboard"]) == 143
    assert "terminated (SIGTERM); rerun the same command to resume" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is not cli._on_sigterm
