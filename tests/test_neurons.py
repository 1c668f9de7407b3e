"""The instrumented twin reproduces spikingjelly's IF / LIF / ParametricLIF exactly, in both step modes."""

from __future__ import annotations

import copy

import pytest
import torch
from spikingjelly.activation_based import functional, neuron, surrogate

from bench.neurons import SpikingNeuron, instrument

T, N, F = 6, 32, 17

CASES = {
    "IF-hard": lambda sm: neuron.IFNode(surrogate_function=surrogate.ATan(), step_mode=sm),
    "IF-soft": lambda sm: neuron.IFNode(v_reset=None, surrogate_function=surrogate.ATan(), step_mode=sm),
    "LIF-decay": lambda sm: neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode=sm),
    "LIF-nodecay-soft": lambda sm: neuron.LIFNode(tau=3.0, decay_input=False, v_reset=None, surrogate_function=surrogate.ATan(), step_mode=sm),
    "LIF-detach-thr": lambda sm: neuron.LIFNode(tau=1.5, v_threshold=0.5, v_reset=-0.1, detach_reset=True, surrogate_function=surrogate.ATan(), step_mode=sm),
    "PLIF": lambda sm: neuron.ParametricLIFNode(init_tau=2.5, surrogate_function=surrogate.ATan(), step_mode=sm),
}


def _run(node: torch.nn.Module, x_seq: torch.Tensor, step_mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    functional.reset_net(node)
    if step_mode == "m":
        out = node(x_seq)
    else:
        out = torch.stack([node(x) for x in x_seq])
    return out, node.v


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_twin_forward_and_backward_match_spikingjelly(case, step_mode):
    torch.manual_seed(0)
    original = CASES[case](step_mode)
    holder = torch.nn.Sequential(copy.deepcopy(original))
    twins = instrument(holder)
    assert len(twins) == 1 and isinstance(holder[0], SpikingNeuron)
    x = (torch.randn(T, N, F) * 1.5 + 0.6).requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)

    s_ref, v_ref = _run(original, x, step_mode)
    s_twin, v_twin = _run(holder[0], x2, step_mode)
    assert torch.equal(s_ref, s_twin), "spike trains differ"
    assert torch.allclose(v_ref, v_twin, atol=1e-6), "final membrane potentials differ"
    assert s_ref.sum() > 0 and (1 - s_ref).sum() > 0, "the test input should make some, not all, neurons fire"

    # the twin keeps the original surrogate (ATan alpha=2) by default, so gradients match too
    w = torch.randn_like(s_ref)
    (g_ref,) = torch.autograd.grad((s_ref * w).sum(), x)
    (g_twin,) = torch.autograd.grad((s_twin * w).sum(), x2)
    assert torch.allclose(g_ref, g_twin, atol=1e-5)


def test_plif_parameter_is_shared_and_state_dict_keys_kept():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), neuron.ParametricLIFNode(init_tau=2.0, step_mode="m"))
    keys_before = set(net.state_dict())
    w = net[1].w
    instrument(net)
    assert set(net.state_dict()) == keys_before
    assert net[1].w is w


def test_unsupported_neuron_type_is_refused():
    from bench.errors import BenchError

    class Odd(neuron.IFNode):  # a subclass may change the dynamics: refuse rather than guess
        pass

    with pytest.raises(BenchError, match="not supported"):
        instrument(torch.nn.Sequential(Odd()))
