"""Model cards: schema validation, hash checking, weights-only loading of untrusted checkpoints."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
import torch

from bench.errors import BenchError
from models_zoo.cards import card_to_toml, load_card, verify_checkpoint
from models_zoo.checkpoints import load_state_dict
from models_zoo.zoo import list_cards, load_model


def _copy_card(card, tmp_path: Path, mutate=None) -> Path:
    (tmp_path / "cards").mkdir(exist_ok=True)
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    shutil.copy(card.checkpoint_path, tmp_path / "checkpoints" / card.checkpoint_path.name)
    data = tomllib.loads(card.path.read_text())
    if mutate:
        mutate(data)
    p = tmp_path / "cards" / "c.toml"
    p.write_text(card_to_toml(data))
    return p


def test_every_zoo_card_validates_schema_and_hash():
    cards = list_cards()
    assert cards, "the zoo must have at least one card"
    for card in cards:
        verify_checkpoint(card)
        assert card.checkpoint_path.stat().st_size <= 1.5 * 2**20


def test_wrong_hash_is_caught(digits_card, tmp_path):
    p = _copy_card(digits_card, tmp_path, lambda d: d.update(sha256="ab" * 32))
    with pytest.raises(BenchError, match="sha256 mismatch"):
        load_model(load_card(p))


def test_tampered_checkpoint_is_caught(digits_card, tmp_path):
    p = _copy_card(digits_card, tmp_path)
    ckpt = tmp_path / "checkpoints" / digits_card.checkpoint_path.name
    blob = bytearray(ckpt.read_bytes())
    blob[-1] ^= 0xFF
    ckpt.write_bytes(bytes(blob))
    with pytest.raises(BenchError, match="sha256 mismatch"):
        verify_checkpoint(load_card(p))


@pytest.mark.parametrize("field", ["sha256", "time_steps", "claimed_clean_acc", "architecture"])
def test_missing_field_is_caught(digits_card, tmp_path, field):
    p = _copy_card(digits_card, tmp_path, lambda d: d.pop(field))
    with pytest.raises(BenchError, match=f"missing field '{field}'"):
        load_card(p)


def test_missing_nested_field_and_wrong_types(digits_card, tmp_path):
    p = _copy_card(digits_card, tmp_path, lambda d: d["neuron"].pop("v_threshold"))
    with pytest.raises(BenchError, match=r"\[neuron\]: missing field 'v_threshold'"):
        load_card(p)
    p = _copy_card(digits_card, tmp_path, lambda d: d.update(time_steps="4"))
    with pytest.raises(BenchError, match="time_steps' must be int"):
        load_card(p)
    p = _copy_card(digits_card, tmp_path, lambda d: d.update(claimed_clean_acc=0.97 * 200))
    with pytest.raises(BenchError, match="percentage"):
        load_card(p)
    p = _copy_card(digits_card, tmp_path, lambda d: d.update(colour="red"))
    with pytest.raises(BenchError, match="unknown field"):
        load_card(p)


def test_missing_checkpoint_file(digits_card, tmp_path):
    p = _copy_card(digits_card, tmp_path, lambda d: d.update(checkpoint="../checkpoints/nope.safetensors"))
    with pytest.raises(BenchError, match="not found"):
        load_model(load_card(p))


def test_wrong_architecture_lists_keys(digits_card, tmp_path):
    p = _copy_card(digits_card, tmp_path, lambda d: d["architecture_args"].update(hidden=[32, 32]))
    with pytest.raises(BenchError, match="missing keys"):
        load_model(load_card(p))


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_pickle_payload_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "x": _Payload(str(marker))}, evil)
    assert not marker.exists()
    with pytest.raises(BenchError, match="refused"):
        load_state_dict(evil)
    assert not marker.exists(), "the payload ran"


def test_plain_pt_state_dict_is_accepted(tmp_path):
    p = tmp_path / "ok.pt"
    torch.save({"a": torch.ones(3)}, p)
    assert torch.equal(load_state_dict(p)["a"], torch.ones(3))
