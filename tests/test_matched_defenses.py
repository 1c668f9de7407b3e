"""Issue 13: matched baselines, Luu's phase encoder and SEW net, the DLIF baseline, matched_baseline cards."""

from __future__ import annotations

import copy

import pytest
import torch

from bench.adapter import SNNAdapter
from bench.errors import BenchError
from bench.phase_encoder import PhaseEncoder
from models_zoo.architectures import build_architecture
from models_zoo.cards import validate_card_data
from models_zoo.recipes import RECIPES, get_recipe
from models_zoo.sew import SEWBasicBlock
from attacks.backward_rules import training_rule


# -- phase encoder --------------------------------------------------------------------------------------
def test_phase_encoder_bit_planes_are_exact():
    q = torch.arange(256, dtype=torch.float32)
    x = (q / 255).view(1, 1, 16, 16)  # every raw level once, as the data set stores them (q / 255)
    enc = PhaseEncoder(time_steps=10)
    planes = enc.bit_planes(x)
    assert planes.shape == (8, 1, 1, 16, 16)
    assert set(planes.unique().tolist()) <= {0.0, 1.0}
    # phase k carries bit k of q / 256 (MSB first): sum_k b_k 2^(8-k) == q
    weights = torch.tensor([2.0 ** (8 - k) for k in range(1, 9)]).view(8, 1, 1, 1, 1)
    assert torch.equal((planes * weights).sum(0).flatten(), q)
    # the paper's table (Kim et al. 2018): 192/256 -> 11000000, 1/256 -> 00000001, 128/256 -> 10000000
    for level, bits in ((192, [1, 1, 0, 0, 0, 0, 0, 0]), (1, [0] * 7 + [1]), (128, [1] + [0] * 7), (255, [1] * 8)):
        assert planes[:, 0, 0].flatten(1)[:, level].tolist() == bits


def test_phase_encoder_cycles_phases_and_detaches():
    x = torch.rand(3, 1, 5, 5, requires_grad=True)
    enc = PhaseEncoder(time_steps=10)
    out = enc(x)
    assert out.shape == (10, 3, 1, 5, 5)
    assert [enc.phase_of_step(t) for t in range(10)] == [1, 2, 3, 4, 5, 6, 7, 8, 1, 2]
    assert torch.equal(out[8], out[0]) and torch.equal(out[9], out[1])
    assert not out.requires_grad and out.grad_fn is None  # the authors' clone().detach(): no pixel gradient
    assert enc.detaches_input


def test_adapter_phase_encoder_is_exposed_and_deterministic():
    net = build_architecture("smlp", neuron={"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0},
                             surrogate=training_rule("atan", 2.0), in_shape=(1, 4, 4), hidden=(8,))
    model = SNNAdapter(net, time_steps=10, encoder="phase")
    assert isinstance(model.input_encoder, PhaseEncoder)
    x = torch.rand(2, 1, 4, 4)
    assert torch.equal(model.encode(x), model.input_encoder(x))
    assert not model.declared_stochastic


# -- SEW net --------------------------------------------------------------------------------------------
IF_SPEC = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0, "detach_reset": True}


def test_sew_block_shapes_and_add_connect():
    rule = training_rule("atan", 2.0)
    down = SEWBasicBlock(16, 32, 2, IF_SPEC, rule)
    assert down(torch.rand(3, 2, 16, 7, 7)).shape == (3, 2, 32, 4, 4)
    same = SEWBasicBlock(8, 8, 1, IF_SPEC, rule)
    assert same.downsample is None
    x = (torch.rand(2, 1, 8, 5, 5) < 0.3).float()
    with torch.no_grad():
        torch.nn.init.zeros_(same.bn2.weight)
        torch.nn.init.constant_(same.bn2.bias, -5.0)  # the branch never fires: ADD returns the identity
        assert torch.equal(same(x), x)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_sew_small_pools_after_the_stem_neuron(pool):
    from spikingjelly.activation_based import layer

    net = build_architecture("sew_small", neuron=IF_SPEC, surrogate=training_rule("atan", 2.0), stem_pool=pool)
    kinds = [type(m).__name__ for m in list(net)[:4]]
    assert kinds[:2] == ["Conv2d", "BatchNorm2d"] and isinstance(net[3], layer.MaxPool2d if pool == "max" else layer.AvgPool2d)
    assert "Node" in kinds[2] or "Neuron" in kinds[2]
    assert net(torch.rand(10, 2, 1, 28, 28)).shape == (10, 2, 10)


# -- matched baselines --------------------------------------------------------------------------------------
#: the config keys a defense may change against its matched baseline (its own knob)
KNOBS = {"sr_lambda", "sr_h", "mpd_eta", "mpd_gamma", "rssnn_perturbation", "rssnn_sigma", "rssnn_kappa", "rssnn_rho",
         "at_eps", "at_steps", "at_step_ratio"}


def _diff(a: dict, b: dict) -> set[str]:
    keys = set(a) | set(b)
    out = {k for k in keys if k not in ("architecture_args",) and a.get(k) != b.get(k)}
    aa, ba = a.get("architecture_args", {}), b.get("architecture_args", {})
    out |= {f"architecture_args.{k}" for k in set(aa) | set(ba) if aa.get(k) != ba.get(k)}
    return out


@pytest.mark.parametrize("name", sorted(n for n, r in RECIPES.items() if r.matched_baseline))
def test_defense_differs_from_its_matched_baseline_only_in_its_knob(name):
    defense = get_recipe(name)
    base = get_recipe(defense.matched_baseline)
    diff = _diff(defense.config(), base.config())
    allowed = KNOBS | {"architecture_args.pooling", "architecture_args.stem_pool"}
    assert diff, f"{name} is identical to its baseline {base.name}"
    assert diff <= allowed, f"{name} vs {base.name} also differ in {sorted(diff - allowed)}"


def test_dlif_baseline_equals_rssnn_loss_with_rho0_kappa1():
    from models_zoo import defenses as d

    spec = {"type": "DLIF", "tau": 0.99, "v_threshold": 1.0, "v_reset": 0.0, "time_steps": 4}
    torch.manual_seed(0)
    net = build_architecture("smlp", neuron=spec, surrogate=training_rule("triangle", 1.0), in_shape=(1, 8, 8), hidden=(16,))
    model = SNNAdapter(net, time_steps=4, encoder="direct")
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    base = get_recipe("baseline-dlif")
    cfg = {**get_recipe("rssnn").config(), "rssnn_rho": 0.0, "rssnn_kappa": 1.0}
    l_base, _ = base.loss(model, x, y, base.config())
    g_base = torch.autograd.grad(l_base, list(model.parameters()))
    l_rs, _ = d.rssnn_loss(model, x, y, cfg)
    g_rs = torch.autograd.grad(l_rs, list(model.parameters()), allow_unused=True)
    assert torch.allclose(l_base, l_rs)
    for a, b in zip(g_base, g_rs):
        assert torch.allclose(a, torch.zeros_like(a) if b is None else b, atol=1e-6)
    assert base.config()["neuron"] == get_recipe("rssnn").config()["neuron"]


# -- matched_baseline on cards ---------------------------------------------------------------------------
def _card(**kw):
    data = {
        "id": "x-mnist5k-s0", "family": "x", "paper": "p", "dataset": "mnist5k", "architecture": "scnn28",
        "num_classes": 10, "checkpoint": "../checkpoints/x.safetensors", "sha256": "0" * 64, "size_bytes": 1,
        "time_steps": 4, "encoder": "direct", "claimed_clean_acc": 50.0,
        "neuron": {"type": "LIF", "tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0},
        "training_surrogate": {"family": "triangle", "width": 1.0}, "training": {"recipe": "x", "seed": 0},
    }
    data.update(kw)
    return data


def test_card_schema_matched_baseline():
    validate_card_data(_card(matched_baseline="baseline-e6-mnist5k-s0"))
    validate_card_data(_card(encoder="phase"))
    with pytest.raises(BenchError, match="matched_baseline"):
        validate_card_data(_card(matched_baseline="x-mnist5k-s0"))
    with pytest.raises(BenchError, match="matched_baseline"):
        validate_card_data(_card(matched_baseline="Not An Id"))


def test_zoo_validate_rejects_unknown_matched_baseline(tmp_path):
    from models_zoo.cards import card_to_toml, load_card
    from models_zoo.validate import validate_card

    p = tmp_path / "x-mnist5k-s0.toml"
    p.write_text(card_to_toml(_card(matched_baseline="no-such-model-mnist5k-s0")))
    v = validate_card(load_card(p), check_accuracy=False)
    assert not v.ok and "no-such-model-mnist5k-s0" in v.message and "not a zoo id" in v.message


def test_training_card_records_the_matched_baseline_of_the_same_seed():
    from models_zoo.training import card_data

    cfg = get_recipe("sr-if").config()
    data = card_data("sr-if", "mnist5k", 2, cfg, 10)
    assert data["matched_baseline"] == "baseline-if-mnist5k-s2"
    validate_card_data(copy.deepcopy(data))
    assert "matched_baseline" not in card_data("baseline-if", "mnist5k", 2, get_recipe("baseline-if").config(), 10)
