"""BPTR, RGA, HART, PDSG, ASSG: the forward never changes, and each backward equals its formula on a
single neuron (written independently with numpy from the papers' code)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attacks.backward_rules import make_rule, parse_rule
from attacks.temporal_rules import ASSG, HART_GRID, rga_slope
from attacks.transfer import ann_twin
from bench.errors import BenchError
from bench.neurons import SpikingNeuron

RULES = ["bptr", "rga", "hart:gamma=0.5", "hart:gamma=2", "pdsg", "assg", "assg:A=0.35"]
NEURONS = [
    dict(kind="LIF", tau=2.0, decay_input=True, v_reset=0.0),
    dict(kind="LIF", tau=3.0, decay_input=False, v_reset=None),
    dict(kind="IF", v_reset=0.0),
    dict(kind="PLIF", tau=2.0, decay_input=True, v_reset=0.0),
]


def _node(rule, **kw):
    return SpikingNeuron(rule=parse_rule(rule), v_threshold=1.0, step_mode="m", **kw)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("neuron", NEURONS)
def test_forward_identical_to_exact_bptt(rule, neuron):
    torch.manual_seed(0)
    x = torch.randn(6, 32, 5) + 0.6
    ref = _node("triangle:gamma=1", **neuron)(x)
    node = _node(rule, **neuron)
    out = node(x.clone().requires_grad_(True))
    assert torch.equal(out.detach(), ref)
    assert out.requires_grad, "the rule must provide a gradient path"


def test_model_logits_identical_under_every_rule(digits_model, digits_data):
    x = digits_data.test.x[:40]
    with torch.no_grad():
        ref = digits_model(x)
    for rule in RULES:
        with digits_model.backward_rule(rule):
            xa = x.clone().requires_grad_(True)
            out = digits_model(xa)
            (g,) = torch.autograd.grad(out[:, 0].sum(), xa)
        assert torch.equal(out.detach(), ref), rule
        assert torch.isfinite(g).all() and g.abs().sum() > 0, rule
    assert digits_model.neurons[0].rule == digits_model.own_rule


# -- single-neuron formulas ---------------------------------------------------------------------------------
T, N = 4, 64
TAU = 2.0


def _inputs(seed=0, scale=1.5, shift=0.8):
    rng = np.random.default_rng(seed)
    return rng.normal(shift, scale, size=(T, N))


def _lif_numpy(X, tau=TAU, theta=1.0, decay_input=True):
    """Exact LIF (spikingjelly charge, hard reset to 0): pre-spike x = H - theta and spikes, [T, N]."""
    v = np.zeros(X.shape[1])
    xs, ss = [], []
    for t in range(X.shape[0]):
        h = v + (X[t] - v) / tau if decay_input else v - v / tau + X[t]
        s = (h - theta >= 0).astype(float)
        xs.append(h - theta)
        ss.append(s)
        v = (1 - s) * h
    return np.array(xs), np.array(ss)


def _grad(rule, X, W, **neuron):
    node = _node(rule, **(neuron or dict(kind="LIF", tau=TAU, decay_input=True, v_reset=0.0)))
    x = torch.tensor(X, dtype=torch.float64).requires_grad_(True)
    out = node(x)
    (g,) = torch.autograd.grad((out * torch.tensor(W)).sum(), x)
    return g.numpy(), out.detach().numpy()


def test_bptr_gradient_formula():
    X, W = _inputs(1), _inputs(2, 1.0, 0.0)
    g, _ = _grad("bptr", X, W)
    _, s = _lif_numpy(X)
    # dL/dX_t = dL/ds_t * 1[rate > 0] * (input gain 1/tau of the decay_input LIF)
    expected = W * (s.mean(0, keepdims=True) > 0) / TAU
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12)
    assert (s.mean(0) == 0).any() and (s.mean(0) > 0).any(), "test inputs must cover both cases"


def _rga_numpy(m, lam, theta=1.0, g0=0.2):
    mt = m / theta
    up = ((mt >= 1 - lam) & (mt <= 2)) * (1 - g0 + g0 * lam) / (lam + 1)
    lo = ((mt <= 1 - lam) & (mt >= 0)) * g0
    return (up + lo) / theta


def test_rga_gradient_formula_lif_and_if():
    X, W = _inputs(3, 2.0, 1.0), _inputs(4, 1.0, 0.0)
    g, _ = _grad("rga", X, W)
    # spikingjelly LIF, decay_input: u <- (1 - 1/tau) u + X/tau  ->  lam = 0.5, current x = X/2
    m = (X / TAU).mean(0, keepdims=True)
    expected = W * _rga_numpy(m, 1 - 1 / TAU) / TAU
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12)
    assert len(np.unique(np.round(expected / np.where(W == 0, 1, W), 6))) >= 3, "inputs must hit several slopes"
    # IF: 0.5 on [0, 2], 0 elsewhere (the code's extra 0.2 at exactly m = 0 aside)
    g_if, _ = _grad("rga", X, W, kind="IF", v_reset=0.0)
    m_if = X.mean(0, keepdims=True)
    np.testing.assert_allclose(g_if, W * np.where((m_if >= 0) & (m_if <= 2), 0.5, 0.0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rga_slope(torch.tensor([0.5, 1.0, 3.0]), 1.0, theta=2.0).numpy(), [0.25, 0.25, 0.25])


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.5])
def test_hart_gradient_formula(gamma):
    X, W = _inputs(5), _inputs(6, 1.0, 0.0)
    g, _ = _grad(f"hart:gamma={gamma}", X, W)
    xs, _ = _lif_numpy(X)
    tri = np.maximum(0.0, gamma - np.abs(xs)) / gamma**2
    # membrane path cut: d s_t / d X_t = tri(x_t) / tau only; then the gradient is averaged over T
    per_step = W * tri / TAU
    expected = np.broadcast_to(per_step.mean(0, keepdims=True), per_step.shape)
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12)
    assert HART_GRID[0] == 0.1 and HART_GRID[-1] == 2.5


def test_pdsg_gradient_formula():
    # one step, a layer of one feature and N samples: sigma = std of H over the batch (Bessel-corrected)
    X, W = _inputs(7)[:1], _inputs(8, 1.0, 0.0)[:1]
    node = _node("pdsg", kind="LIF", tau=TAU, decay_input=True, v_reset=0.0)
    x = torch.tensor(X[..., None], dtype=torch.float64).requires_grad_(True)  # [T=1, N, F=1]
    out = node(x)
    (g,) = torch.autograd.grad((out * torch.tensor(W[..., None])).sum(), x)
    H = X / TAU
    sigma = H.std(ddof=1)
    xx = H - 1.0
    gauss = np.exp(-(((xx - sigma / 2) / (math.sqrt(2) * sigma)) ** 2)) / (math.sqrt(2 * math.pi) * sigma)
    np.testing.assert_allclose(g.numpy()[..., 0], W * gauss / TAU, rtol=1e-10, atol=1e-12)


def test_pdsg_sigma_uses_the_time_prefix_per_channel():
    # two channels with very different spreads: each gets its own sigma; step 1 uses steps 0..1
    torch.manual_seed(0)
    x = torch.randn(2, 50, 2, 3, 3, dtype=torch.float64) * torch.tensor([0.1, 3.0], dtype=torch.float64).view(1, 1, 2, 1, 1)
    x.requires_grad_(True)
    node = _node("pdsg", kind="IF", v_reset=None)
    out = node(x)
    (g,) = torch.autograd.grad(out[1].sum(), x)
    h0 = x.detach()[0]
    h1 = h0 - (h0 >= 1).to(h0) + x.detach()[1]  # soft reset, IF
    hist = torch.stack([h0, h1])
    sigma = hist.std(dim=(0, 1, 3, 4), keepdim=True).squeeze(0)
    xx = h1 - 1.0
    gauss = torch.exp(-(((xx - sigma / 2) / (math.sqrt(2) * sigma)) ** 2)) / (math.sqrt(2 * math.pi) * sigma)
    torch.testing.assert_close(g[1], gauss, rtol=1e-10, atol=1e-12)


def test_assg_gradient_formula_and_moving_averages():
    X, W = _inputs(9)[:1], _inputs(10, 1.0, 0.0)[:1]
    rule = parse_rule("assg:A=0.43")
    assert isinstance(rule, ASSG)
    a = 2 * math.tan(math.pi * 0.43) / math.pi
    node = SpikingNeuron("LIF", rule=rule, tau=TAU, v_threshold=1.0, v_reset=0.0, step_mode="m")
    xx = X / TAU - 1.0
    M, D = np.ones_like(xx), np.zeros_like(xx)
    rule.begin_attack()
    for it in range(3):  # the statistics move with every attack iteration
        inp = X + 0.3 * it
        xx = inp / TAU - 1.0
        M = 0.9 * M + 0.1 * np.abs(xx)
        D = 0.9 * D + 0.1 * np.abs(np.abs(xx) - M)  # D uses the updated M (authors' code)
        alpha = a / (M + 1.5 * D + 1e-4)
        expected = W * (alpha / 2) / (1 + (math.pi / 2 * alpha * xx) ** 2) / TAU
        x = torch.tensor(inp, dtype=torch.float64).requires_grad_(True)
        (g,) = torch.autograd.grad((node(x) * torch.tensor(W)).sum(), x)
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-10, atol=1e-12)
        node.reset()
    # frozen (later EOT draws) and no-grad forwards leave the statistics alone; begin_attack resets them
    stats = {k: (m.clone(), d.clone()) for k, (m, d) in rule._stats.items()}
    rule.frozen = True
    node(torch.tensor(X + 5.0))
    rule.frozen = False
    with torch.no_grad():
        node.reset()
        node(torch.tensor(X + 5.0))
    assert all(torch.equal(rule._stats[k][0], v[0]) for k, v in stats.items())
    rule.begin_attack()
    assert rule._stats == {}


def test_rule_parameters_are_checked():
    with pytest.raises(BenchError, match="takes no parameters"):
        parse_rule("bptr:gamma=1")
    with pytest.raises(BenchError, match="A must lie"):
        parse_rule("assg:A=0.6")
    with pytest.raises(BenchError, match="positive"):
        make_rule("hart", gamma=0)
    assert parse_rule("hart:gamma=0.5").spec() == "hart:gamma=0.5"


def test_ann_twin_is_a_clamped_rate_and_restores_rules(digits_model, digits_data):
    x = digits_data.test.x[:8]
    before = digits_model.state_snapshot()
    with ann_twin(digits_model):
        node = digits_model.neurons[0]
        inp = torch.randn(3, 5, node_width(digits_model)) * 3
        out, _ = node.rule.run(node, inp, torch.zeros_like(inp[0]))
        gain = 1 / node.tau if node.kind == "LIF" and node.decay_input else 1.0
        torch.testing.assert_close(out, (inp * gain / node.v_threshold).clamp(0, 1))
        with torch.no_grad():
            twin = digits_model(x)
    assert digits_model.state_snapshot() == before
    with torch.no_grad():
        assert not torch.equal(twin, digits_model(x))


def node_width(model) -> int:
    lin = [m for m in model.net.modules() if isinstance(m, torch.nn.Linear)][0]
    return lin.out_features
