"""Cross-checks against peer implementations (skipped when the optional peer is not installed).

* our PGD with the model's own SG vs ``torchattacks.PGD`` at the same budget (eps, step eps/4, 20 steps,
  random start): robust accuracy within 2 points;
* our APGD-CE (pyautoattack's ``APGDAttack`` built directly, 100 iterations, one restart) vs
  ``pyautoattack.AutoAttack(version='custom', attacks=['apgd-ce']).run_standard_evaluation`` with the same
  budget and seed: robust accuracy within 2 points (identical in practice: same class, same random start).
"""

from __future__ import annotations

import pytest
import torch

from attacks.algorithms import PGD
from attacks.gauntlet_attacks import APGDCE

EPS = 0.1


def _acc(model, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def _ours(attack, model, x, y, seed=0) -> float:
    adv = torch.cat([attack.perturb(model, x[i : i + 120], y[i : i + 120], EPS, torch.Generator().manual_seed(seed + i)) for i in range(0, len(y), 120)])
    return _acc(model, adv, y)


def test_pgd_agrees_with_torchattacks(digits_model, digits_data):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits_data.test.x, digits_data.test.y
    ours = _ours(PGD(steps=20, step_size_ratio=0.25), digits_model, x, y)
    torch.manual_seed(0)
    atk = torchattacks.PGD(digits_model, eps=EPS, alpha=EPS / 4, steps=20, random_start=True)
    theirs = _acc(digits_model, atk(x, y), y)
    clean = _acc(digits_model, x, y)
    assert ours < clean - 10, "the budget must actually break points, or the comparison says nothing"
    assert abs(ours - theirs) <= 2.0, (ours, theirs)
    assert digits_model.neurons[0].rule == digits_model.own_rule
    print(f"PGD-20: ours {ours:.2f}, torchattacks {theirs:.2f}, clean {clean:.2f}")


def test_apgd_ce_agrees_with_autoattack_apgd_ce(digits_model, digits_data):
    pyautoattack = pytest.importorskip("pyautoattack")
    from attacks.gauntlet_attacks import draw_seed

    x, y = digits_data.test.x[:120], digits_data.test.y[:120]
    ours = _ours(APGDCE(steps=100), digits_model, x, y)  # one batch, generator seeded 0
    seed = draw_seed(torch.Generator().manual_seed(0))  # the seed our wrapper hands to APGDAttack
    aa = pyautoattack.AutoAttack(digits_model, attacks=["apgd-ce"], version="custom", eps=EPS, seed=seed, device="cpu")
    aa.apgd.n_restarts = 1  # 'custom' keeps the constructor's 5 restarts; ours runs one (same budget)
    rng = torch.get_rng_state()
    x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=len(y))
    torch.set_rng_state(rng)
    theirs = _acc(digits_model, x_adv, y)
    clean = _acc(digits_model, x, y)
    assert ours < clean - 10
    assert abs(ours - theirs) <= 2.0, (ours, theirs)
    print(f"APGD-CE: ours {ours:.2f}, pyautoattack {theirs:.2f}, clean {clean:.2f}")
