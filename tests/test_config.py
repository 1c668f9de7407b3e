"""bench.toml: presets resolve with defaults, names are checked, hashes are canonical."""

from __future__ import annotations

import pytest

from bench.config import config_hash, load_config, resolve_preset, threat_model_config
from bench.errors import BenchError


def test_quick_preset_resolves_with_defaults_and_version():
    p = resolve_preset("quick")
    assert p["version"] >= 1 and p["own_sg_attack"] == "pgd20-own"
    names = [a["name"] for a in p["attacks"]]
    assert names[:2] == ["fgsm-own", "pgd20-own"]
    assert all({"rule", "on", "attack"} <= set(a) for a in p["attacks"])
    others = [a["rule"] for a in p["attacks"] if a["rule"] != "own"]
    assert len({r.split(":")[0] for r in others}) == 2, "quick needs PGD with two other SG families"


def test_threat_model_defaults():
    tm = threat_model_config("Linf")
    assert tm["eps"] == 0.2 and tm["eps_sweep"] == [0.05, 0.1, 0.15, 0.2, 0.3]


def test_config_hash_is_canonical():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_bad_presets_are_refused(tmp_path):
    cfg = load_config()
    cfg["presets"]["broken"] = {"attacks": [{"name": "x", "attack": "pgd"}]}
    with pytest.raises(BenchError, match="version"):
        resolve_preset("broken", cfg)
    cfg["presets"]["dup"] = {"version": 1, "attacks": [{"name": "x", "attack": "pgd"}, {"name": "x", "attack": "fgsm"}]}
    with pytest.raises(BenchError, match="twice"):
        resolve_preset("dup", cfg)
    cfg["presets"]["own"] = {"version": 1, "own_sg_attack": "x", "attacks": [{"name": "x", "attack": "pgd", "rule": "atan"}]}
    with pytest.raises(BenchError, match="own_sg_attack"):
        resolve_preset("own", cfg)
    with pytest.raises(BenchError, match="unknown preset"):
        resolve_preset("nope")


def test_a_preset_may_fix_its_batch_size_and_bad_values_are_refused():
    assert resolve_preset("standard")["batch_size"] == 100
    assert resolve_preset("autoattack-standard")["batch_size"] == resolve_preset("standard")["batch_size"]
    assert "batch_size" not in resolve_preset("quick"), "quick's stored results were computed at the default batch"
    cfg = load_config()
    for bad in (0, -5, "100", 2.5, True):
        cfg["presets"]["b"] = {"version": 1, "batch_size": bad, "attacks": [{"name": "x", "attack": "pgd"}]}
        with pytest.raises(BenchError, match="batch_size must be a positive integer"):
            resolve_preset("b", cfg)
