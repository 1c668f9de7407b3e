"""The fused neuron loop equals autograd through the plain BPTT loop: same forward bits, same gradients."""

from __future__ import annotations

import itertools

import pytest
import torch

from attacks.backward_rules import make_rule, parse_rule
from bench.fused_neuron import fusable
from bench.neurons import SpikingNeuron

RULES = ["atan:alpha=2", "triangle:gamma=1", "rectangle:gamma=0.5", "sigmoid:alpha=4", "straight-through"]
CONFIGS = [
    dict(kind=k, decay_input=d, v_reset=r, detach_reset=dr)
    for k, d, r, dr in itertools.product(["IF", "LIF", "PLIF"], [True, False], [0.0, None, -0.3], [False, True])
    if not (k == "IF" and not d)
]


def _make(cfg: dict, rule: str, step_mode: str = "m") -> SpikingNeuron:
    node = SpikingNeuron(rule=parse_rule(rule), tau=2.5, v_threshold=0.8, step_mode=step_mode, **cfg)
    if cfg["kind"] == "PLIF":
        node.w.requires_grad_(False)
    return node


def _run(node: SpikingNeuron, x: torch.Tensor, fused: bool, weights: torch.Tensor):
    node.fused = fused
    node.reset()
    xx = x.clone().requires_grad_(True)
    if node.step_mode == "m":
        out = node(xx)
    else:
        out = torch.stack([node(xx[t]) for t in range(xx.shape[0])])
    loss = (out * weights).sum() + (node.v * weights[-1]).sum()  # gradient also reaches the last potential
    (g,) = torch.autograd.grad(loss, xx)
    return out.detach(), g


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{v}" for v in c.values()))
@pytest.mark.parametrize("rule", RULES)
def test_fused_forward_is_bit_identical_and_gradient_matches_autograd(cfg, rule):
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5, 7) * 1.5
    weights = torch.randn(6, 3, 5, 7)
    node = _make(cfg, rule)
    assert fusable(node, node.rule)
    out_plain, g_plain = _run(node, x, False, weights)
    out_fused, g_fused = _run(node, x, True, weights)
    assert torch.equal(out_plain, out_fused)
    assert out_plain.sum() > 0  # the test input makes the layer fire, so reset paths are exercised
    torch.testing.assert_close(g_fused, g_plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rule", ["triangle:gamma=1", "atan:alpha=4"])
def test_fused_single_step_mode_chains_gradients_through_the_state(rule):
    torch.manual_seed(1)
    x = torch.randn(5, 4, 9) * 2
    weights = torch.randn(5, 4, 9)
    node = _make(dict(kind="LIF", decay_input=True, v_reset=0.0, detach_reset=False), rule, step_mode="s")
    out_plain, g_plain = _run(node, x, False, weights)
    out_fused, g_fused = _run(node, x, True, weights)
    assert torch.equal(out_plain, out_fused)
    torch.testing.assert_close(g_fused, g_plain, rtol=1e-5, atol=1e-5)


def test_fused_records_the_same_potentials():
    x = torch.randn(4, 2, 8)
    node = _make(dict(kind="LIF", decay_input=True, v_reset=0.0, detach_reset=False), "triangle:gamma=1")
    recs = []
    for fused in (False, True):
        node.fused = fused
        node.reset()
        node.start_recording("detach")
        node(x)
        recs.append(node.stop_recording())
    assert torch.equal(recs[0], recs[1])


def test_fused_path_is_not_used_where_it_would_not_be_exact():
    node = _make(dict(kind="PLIF", decay_input=True, v_reset=0.0, detach_reset=False), "triangle:gamma=1")
    node.w.requires_grad_(True)  # training a PLIF needs d/dw, which the fused loop does not compute
    assert not fusable(node, node.rule)
    lif = _make(dict(kind="LIF", decay_input=True, v_reset=0.0, detach_reset=False), "triangle:gamma=1")
    lif.start_recording("graph")  # MPD-SGR differentiates through the recorded potentials
    assert not fusable(lif, lif.rule)
    lif.stop_recording()
    assert fusable(lif, lif.rule)
    for temporal in ("bptr", "rga", "hart", "pdsg", "assg"):
        assert not fusable(lif, make_rule(temporal))
