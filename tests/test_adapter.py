"""The adapter: state reset, encoders, stochasticity, rule swapping and potential recording."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import layer, neuron

from attacks.backward_rules import make_rule
from bench.adapter import SNNAdapter
from bench.errors import BenchError


def tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        layer.Flatten(step_mode="m"),
        layer.Linear(16, 12, step_mode="m"),
        neuron.LIFNode(tau=2.0, step_mode="m"),
        layer.Linear(12, 3, step_mode="m"),
    )


def test_same_input_twice_gives_same_logits_and_matches_manual_reset():
    model = SNNAdapter(tiny_net(), time_steps=4)
    x = torch.rand(5, 1, 4, 4) * 3
    a, b = model(x), model(x)
    assert torch.equal(a, b)
    # without the adapter's reset, the raw network would carry state: the adapter must differ from that
    raw = model.net
    seq = x.unsqueeze(0).expand(4, *x.shape)
    raw(seq)
    carried = raw(seq).mean(0)
    assert not torch.equal(carried, a)


def test_output_shape_and_time_average():
    model = SNNAdapter(tiny_net(), time_steps=3)
    x = torch.rand(7, 1, 4, 4)
    out = model(x)
    assert out.shape == (7, 3)


def test_single_step_network_gives_the_same_logits():
    net_m = tiny_net()
    net_s = tiny_net()
    for m in net_s.modules():
        if hasattr(m, "step_mode"):
            m.step_mode = "s"
    x = torch.rand(4, 1, 4, 4) * 2
    assert torch.allclose(SNNAdapter(net_m, 4)(x), SNNAdapter(net_s, 4, step_mode="s")(x), atol=1e-6)


def firing_net() -> torch.nn.Module:
    net = tiny_net()
    with torch.no_grad():
        net[1].weight.mul_(8.0)  # binary Poisson inputs must drive the neurons over threshold
    return net


def test_poisson_encoder_is_seeded_and_detected_stochastic():
    x = torch.rand(6, 1, 4, 4)
    m1 = SNNAdapter(firing_net(), 8, encoder="poisson", seed=3)
    m2 = SNNAdapter(firing_net(), 8, encoder="poisson", seed=3)
    assert torch.equal(m1(x), m2(x))  # same seed, same draws
    assert m1.detect_stochastic(x) and m1.is_stochastic
    direct = SNNAdapter(firing_net(), 8)
    assert not direct.detect_stochastic(x) and not direct.is_stochastic


def test_backward_rule_swaps_and_restores():
    model = SNNAdapter(tiny_net(), 4, own_rule="triangle:gamma=1")
    assert model.own_rule == make_rule("triangle", gamma=1.0)
    x = torch.rand(3, 1, 4, 4).requires_grad_(True)
    with model.backward_rule("rectangle:gamma=0.5") as r:
        assert all(n.rule == r for n in model.neurons)
        assert r == make_rule("rectangle", gamma=0.5)
    assert all(n.rule == model.own_rule for n in model.neurons)
    with pytest.raises(RuntimeError):
        with model.backward_rule("atan:alpha=8"):
            raise RuntimeError("attack failed")
    assert all(n.rule == model.own_rule for n in model.neurons)


def test_recording_gives_pre_spike_potentials():
    model = SNNAdapter(tiny_net(), 4)
    x = torch.rand(5, 1, 4, 4) * 2
    with model.recording() as rec:
        model(x)
        model(x)  # only the last forward is kept
    (name, h), = rec.items()
    assert h.shape == (4, 5, 12)
    # at t=0 from rest, LIF with tau 2: H = I/2, so H - theta = linear(x)/2 - 1
    lin = model.net[1](x.flatten(1).unsqueeze(0))[0]
    assert torch.allclose(h[0], lin / 2 - 1.0, atol=1e-6)


def test_bad_inputs_are_refused():
    with pytest.raises(BenchError, match="encoder"):
        SNNAdapter(tiny_net(), 4, encoder="rate")
    with pytest.raises(BenchError, match="no spiking neurons"):
        SNNAdapter(torch.nn.Linear(3, 3), 4)
    with pytest.raises(BenchError, match=r"\[N, C, H, W\]"):
        SNNAdapter(tiny_net(), 4)(torch.rand(16))
