"""Attack invariants on a trained tiny SNN: eps-ball, box, eps=0, robust <= clean, determinism, restoration."""

from __future__ import annotations

import pytest
import torch

from attacks.algorithms import FGSM, PGD, make_attack
from bench.errors import BenchError

ATTACKS = [
    lambda: FGSM(),
    lambda: FGSM(rule="atan:alpha=4"),
    lambda: PGD(steps=5),
    lambda: PGD(steps=4, restarts=2, rule="sigmoid:alpha=4"),
    lambda: PGD(steps=3, rule="straight-through"),
]


@pytest.fixture()
def batch(digits_data):
    return digits_data.test.x[:64], digits_data.test.y[:64]


@pytest.mark.parametrize("make", ATTACKS)
def test_eps_ball_box_and_robust_not_above_clean(make, digits_model, batch):
    x, y = batch
    eps = 0.1
    attack = make()
    before = digits_model.state_snapshot()
    x_adv = attack.perturb(digits_model, x, y, eps, torch.Generator().manual_seed(0))
    assert digits_model.state_snapshot() == before, "model mode or neuron rules not restored"
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        clean = digits_model(x).argmax(1) == y
        adv = digits_model(x_adv).argmax(1) == y
    # the per-point worst case (clean-wrong counts as broken) can never exceed clean accuracy
    assert (clean & adv).float().mean() <= clean.float().mean()


@pytest.mark.parametrize("make", ATTACKS)
def test_eps_zero_gives_clean_accuracy(make, digits_model, batch):
    x, y = batch
    x_adv = make().perturb(digits_model, x, y, 0.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(digits_model(x_adv).argmax(1), digits_model(x).argmax(1))
    assert torch.equal(x_adv, x)


def test_same_seed_same_result_and_different_seed_differs(digits_model, batch):
    x, y = batch
    a = PGD(steps=3).perturb(digits_model, x, y, 0.1, torch.Generator().manual_seed(1))
    b = PGD(steps=3).perturb(digits_model, x, y, 0.1, torch.Generator().manual_seed(1))
    c = PGD(steps=3).perturb(digits_model, x, y, 0.1, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pgd_is_stronger_than_nothing_and_keeps_the_best_iterate(digits_model, batch):
    x, y = batch
    with torch.no_grad():
        clean_acc = (digits_model(x).argmax(1) == y).float().mean()
    x_adv = PGD(steps=10).perturb(digits_model, x, y, 0.3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        adv_acc = (digits_model(x_adv).argmax(1) == y).float().mean()
    assert adv_acc < clean_acc - 0.3, "PGD at eps 0.3 should break many digits points"


def test_model_mode_restored_after_attack_in_train_mode(digits_model, batch):
    x, y = batch
    digits_model.train()
    PGD(steps=2).perturb(digits_model, x, y, 0.1, torch.Generator().manual_seed(0))
    assert digits_model.training
    digits_model.eval()


def test_make_attack_errors():
    with pytest.raises(BenchError, match="did you mean 'pgd'"):
        make_attack({"name": "x", "attack": "pdg"})
    with pytest.raises(BenchError, match="bad parameters"):
        make_attack({"name": "x", "attack": "pgd", "stepz": 3})
    assert make_attack({"name": "p", "attack": "pgd", "steps": 7, "on": "all"}).steps == 7


@pytest.mark.parametrize("rule", ["own", "atan:alpha=2"])
def test_pgd_early_stop_changes_cost_not_outcome(digits_model, batch, rule):
    """Dropping broken points from later iterations must leave every point's outcome unchanged."""
    x, y = batch
    runs = {}
    for early in (True, False):
        attack = PGD(steps=8, restarts=2, rule=rule, early_stop=early)
        x_adv = attack.perturb(digits_model, x, y, 0.08, torch.Generator().manual_seed(3))
        with torch.no_grad():
            runs[early] = (x_adv, digits_model(x_adv).argmax(1) != y, attack.stats.gradient_points)
    (xa, broke_a, cost_a), (xb, broke_b, cost_b) = runs[True], runs[False]
    assert torch.equal(broke_a, broke_b)
    assert torch.equal(xa[~broke_a], xb[~broke_b]), "unbroken points must follow the same trajectory"
    assert 0 < broke_a.sum() < len(y), "the test needs both broken and unbroken points"
    assert cost_a < cost_b


def test_every_registered_attack_returns_an_empty_batch_unchanged():
    """The attack contract (attacks/base.py): an empty batch comes back as is, without a forward."""
    import torch

    import attacks.algorithms  # noqa: F401  (the catalogue: importing it registers every attack)
    from attacks.base import ATTACKS

    class NoForward(torch.nn.Module):
        def forward(self, x):  # pragma: no cover - must not run
            raise AssertionError("an empty batch must not reach the model")

    x = torch.zeros(0, 1, 28, 28)
    tried = 0
    for name, cls in ATTACKS.items():
        try:
            attack = cls()
        except TypeError:  # attacks that need arguments (sources, ...) are covered by their own tests
            continue
        out = attack.perturb(NoForward(), x, torch.zeros(0, dtype=torch.long), 0.1, torch.Generator().manual_seed(0))
        assert out.shape == x.shape, name
        tried += 1
    assert tried >= 8, f"only {tried} of {len(ATTACKS)} attacks could be built without arguments"
