"""Issue 13: the spike-domain threat model (paper-luu) and the papers' last-iterate PGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional

from attacks.backward_rules import training_rule
from attacks.paper_attacks import LastIteratePGD
from attacks.algorithms import FGSM
from bench.adapter import SNNAdapter
from bench.config import resolve_preset
from bench.data import Split
from bench.errors import BenchError
from bench.spike_domain import (
    SpikeDomainModel,
    batchnorm_batch_stats,
    check_preset_threat_model,
    encode_split,
    spike_domain_config,
)
from models_zoo.architectures import build_architecture

IF_SPEC = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0, "detach_reset": True}


def _model() -> SNNAdapter:
    torch.manual_seed(0)
    net = build_architecture("sew_small", neuron=IF_SPEC, surrogate=training_rule("atan", 2.0), in_shape=(1, 12, 12),
                             stem_channels=4, stage_channels=(4, 8), blocks=(1, 1), stem_pool="max")
    model = SNNAdapter(net, time_steps=10, encoder="phase", own_rule=training_rule("atan", 2.0))
    # non-trivial running statistics, so that batch and running statistics differ
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 1, 12, 12))
    return model.eval()


def _split(n: int = 8) -> Split:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 1, 12, 12), generator=g).float() / 255
    return Split(x, torch.randint(0, 10, (n,), generator=g), np.arange(n), "test")


def test_encoded_split_is_the_model_encoding_step_major():
    model, split = _model(), _split()
    enc = encode_split(model, split)
    assert enc.x.shape == (8, 10, 12, 12) and set(enc.x.unique().tolist()) <= {0.0, 1.0}
    seq = model.encode(split.x)
    assert torch.equal(enc.x[:, 3], seq[3, :, 0])
    sd = SpikeDomainModel(model, (1, 12, 12))
    with torch.no_grad():  # scoring forward = the adapter's eval-mode forward on the same spikes
        assert torch.allclose(sd(enc.x), model(split.x), atol=1e-6)


@pytest.mark.parametrize("attack", [FGSM(rule="own"), LastIteratePGD(steps=3, step_size_ratio=0.425, rule="own")])
def test_spike_attack_stays_in_box_and_ball_of_the_encoded_tensor(attack):
    model, split = _model(), _split()
    enc = encode_split(model, split)
    sd = SpikeDomainModel(model, (1, 12, 12)).eval()
    eps = 6 / 255
    z_adv = attack.perturb(sd, enc.x, enc.y, eps, torch.Generator().manual_seed(0))
    assert z_adv.min() >= 0 and z_adv.max() <= 1
    assert (z_adv - enc.x).abs().max() <= eps + 1e-6
    assert (z_adv != enc.x).any()  # the attack did move the spike tensor


def test_crafting_uses_batch_statistics_and_leaves_running_stats_untouched():
    model, split = _model(), _split()
    enc = encode_split(model, split)
    sd = SpikeDomainModel(model, (1, 12, 12), craft_bn="train").eval()
    bn = model.net[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    z = enc.x.clone().requires_grad_(True)
    crafted = sd(z)  # a crafting forward (input requires grad): batch statistics
    with torch.no_grad():
        scored = sd(enc.x)  # scoring: eval mode
        functional.reset_net(model.net)
        with batchnorm_batch_stats(model.net):
            manual = sd.adapter.net(sd.to_sequence(enc.x)).mean(0)
    assert torch.allclose(crafted.detach(), manual, atol=1e-6)
    assert not torch.allclose(crafted.detach(), scored, atol=1e-4)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert torch.equal(bn.num_batches_tracked, before[2]) and not bn.training
    eval_sd = SpikeDomainModel(model, (1, 12, 12), craft_bn="eval")
    assert torch.allclose(eval_sd(enc.x.clone().requires_grad_(True)).detach(), scored, atol=1e-6)


def test_last_iterate_pgd_without_random_start_is_bim():
    model, split = _model(), _split()
    sd = SpikeDomainModel(model, (1, 12, 12), craft_bn="eval").eval()
    enc = encode_split(model, split)
    a = LastIteratePGD(steps=1, step_size_ratio=1.0, random_start=False, rule="own")
    b = FGSM(rule="own")
    g = torch.Generator().manual_seed(0)
    assert torch.equal(a.perturb(sd, enc.x, enc.y, 0.05, g), b.perturb(sd, enc.x, enc.y, 0.05, g))


def test_threat_model_and_preset_checks():
    assert spike_domain_config({"name": "Linf", "norm": "Linf"}) is None
    assert spike_domain_config({"name": "s", "domain": "spike"})["craft_bn"] == "train"
    with pytest.raises(BenchError, match="craft_bn"):
        spike_domain_config({"name": "s", "domain": "spike", "craft_bn": "sometimes"})
    luu = resolve_preset("paper-luu")
    assert luu["threat_model"] == "spike-Linf" and luu["batch_size"] == 16
    check_preset_threat_model(luu, "spike-Linf")
    with pytest.raises(BenchError, match="--threat-model spike-Linf"):
        check_preset_threat_model(luu, "Linf")
    check_preset_threat_model(resolve_preset("paper-mpd-sgr"), "Linf")


def test_state_leak_flag_runs_in_the_spike_domain():
    """Flag 6 measures the wrapper's own forward on spike tensors (it used to feed them to the image adapter and
    crash after every chunk of a full-split paper-luu run was computed)."""
    from bench.flags import state_leak

    model, split = _model(), _split(16)
    enc = encode_split(model, split)
    sd = SpikeDomainModel(model, (1, 12, 12)).eval()
    assert sd.state_diff(enc.x[:8], enc.x[8:]) == 0.0  # every forward resets the network
    assert state_leak(sd, enc.x[:8], enc.x[8:]) is None
    with pytest.raises(BenchError, match="spike-domain input"):  # an image is refused with the expected shape
        sd.state_diff(split.x[:8], split.x[8:])
