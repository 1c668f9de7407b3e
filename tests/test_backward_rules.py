"""Each surrogate family's backward equals its formula on a single neuron; the forward never changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attacks.backward_rules import make_rule, parse_rule, support_halfwidth, training_rule
from bench.errors import BenchError
from bench.neurons import SpikingNeuron


def formula(family: str, x: np.ndarray, p: dict) -> np.ndarray:
    """The gauntlet spec's table, written independently with numpy."""
    if family == "atan":
        a = p["alpha"]
        return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)
    if family == "triangle":
        g = p["gamma"]
        return np.maximum(0.0, g - np.abs(x)) / g**2
    if family == "rectangle":
        g = p["gamma"]
        return (np.abs(x) < g / 2).astype(float) / g
    if family == "sigmoid":
        a = p["alpha"]
        s = 1 / (1 + np.exp(-a * x))
        return a * s * (1 - s)
    if family == "straight-through":
        return np.full_like(x, p["scale"])
    raise AssertionError(family)


CASES = [
    ("atan", {"alpha": 2.0}), ("atan", {"alpha": 16.0}),
    ("triangle", {"gamma": 1.0}), ("triangle", {"gamma": 0.25}),
    ("rectangle", {"gamma": 0.5}), ("rectangle", {"gamma": 2.0}),
    ("sigmoid", {"alpha": 4.0}),
    ("straight-through", {"scale": 1.0}), ("straight-through", {"scale": 0.3}),
]


@pytest.mark.parametrize("family,params", CASES)
def test_single_neuron_gradient_equals_formula(family, params):
    theta = 1.0
    # a single IF neuron, one time step, from rest: H = input, spike = 1[H - theta >= 0]
    node = SpikingNeuron("IF", rule=make_rule(family, **params), v_threshold=theta, step_mode="m")
    inputs = np.linspace(-1.5, 3.5, 41)
    x = torch.tensor(inputs, dtype=torch.float64).view(1, -1).requires_grad_(True)
    spikes = node(x)
    assert torch.equal(spikes[0], (x[0] >= theta).to(x.dtype))
    (grad,) = torch.autograd.grad(spikes.sum(), x)
    np.testing.assert_allclose(grad[0].numpy(), formula(family, inputs - theta, params), rtol=1e-6, atol=1e-9)


def test_forward_is_identical_under_every_rule():
    torch.manual_seed(0)
    x = torch.randn(5, 64, 10) + 0.5
    outs = []
    for family, params in CASES:
        node = SpikingNeuron("LIF", rule=make_rule(family, **params), tau=2.0, step_mode="m")
        outs.append(node(x))
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_parse_rule_round_trip_and_errors():
    r = parse_rule("atan:alpha=4")
    assert r.family == "atan" and r.params == {"alpha": 4.0}
    assert parse_rule(r.spec()) == r
    assert parse_rule({"family": "triangle", "gamma": 0.5}) == make_rule("triangle", gamma=0.5)
    assert parse_rule("triangle") == make_rule("triangle", gamma=1.0)
    with pytest.raises(BenchError, match="did you mean 'atan'"):
        parse_rule("atann:alpha=2")
    with pytest.raises(BenchError, match="takes"):
        parse_rule("atan:gamma=2")
    with pytest.raises(BenchError, match="positive"):
        parse_rule("triangle:gamma=-1")
    with pytest.raises(BenchError, match="name=value"):
        parse_rule("atan:alpha")


def test_training_rule_width_and_support():
    assert training_rule("triangle", 1.0) == make_rule("triangle", gamma=1.0)
    assert training_rule("atan", 2.0) == make_rule("atan", alpha=2.0)
    assert support_halfwidth(make_rule("triangle", gamma=0.5)) == 0.5
    assert support_halfwidth(make_rule("rectangle", gamma=1.0)) == 0.5
    # at the atan window's edge the SG is 5% of its peak
    r = make_rule("atan", alpha=2.0)
    edge = support_halfwidth(r)
    g = r.surrogate_grad(torch.tensor([0.0, edge]))
    assert abs(float(g[1] / g[0]) - 0.05) < 1e-6
