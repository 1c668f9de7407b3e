"""models_zoo.measure_defenses: matched-baseline references, spike-domain gradient sparsity, the report."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attacks.backward_rules import training_rule
from bench.adapter import SNNAdapter
from bench.data import Split
from models_zoo import measure_defenses as md
from models_zoo.architectures import build_architecture

IF_SPEC = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0, "detach_reset": True}


def _card(cid: str, recipe: str, matched: str | None = None) -> SimpleNamespace:
    data = {"id": cid, "training": {"recipe": recipe}}
    if matched:
        data["matched_baseline"] = matched
    return SimpleNamespace(id=cid, data=data, training=data["training"])


def test_matched_recipes_come_from_the_cards_and_seeds_must_agree():
    cards = [_card("b-s0", "b"), _card("b2-s0", "b2"), _card("d-s0", "d", "b-s0"), _card("d-s1", "d"),
             _card("e-s0", "e", "not-a-card")]
    assert md.matched_recipes(cards) == {"d": "b"}  # a seed without the key, an unknown id: skipped
    with pytest.raises(ValueError, match="two recipes"):
        md.matched_recipes(cards + [_card("d-s2", "d", "b2-s0")])


def test_a_defense_without_a_paper_quantity_is_an_error_not_a_silent_gap():
    with pytest.raises(ValueError, match="no-such-defense"):
        md.claim_checks({"no-such-defense": "baseline"})
    checks = md.claim_checks({"sr": "baseline-e6", "pgd-at": "baseline-e6"})
    assert checks == [("sr", "grad_l1", "lower", "baseline-e6")]  # AT has no mechanism quantity


def test_every_active_zoo_defense_is_checked_against_its_matched_baseline():
    from models_zoo.cards import retired_reason
    from models_zoo.zoo import list_cards

    active = [c for c in list_cards() if not retired_reason(c)]
    matched = md.matched_recipes(active)
    assert matched["sr"] == "baseline-e6" and matched["rssnn"] == "baseline-dlif" and matched["luu-sew-max"] == "luu-sew-avg"
    refs = {ref for _, _, _, ref in md.claim_checks(matched)}
    assert "baseline" not in refs  # the plain LIF baseline is no defense's matched baseline
    assert "sparse-arch-avg" not in refs  # retired


def test_report_lists_each_matched_baseline_before_its_defense_and_compares_with_it(tmp_path):
    matched = {"sr": "baseline-e6", "rssnn": "baseline-dlif"}
    rows = {}
    for cid, recipe, l1, mppd in [("baseline-e6-s0", "baseline-e6", 1.0, 0.1), ("sr-s0", "sr", 0.5, 0.1),
                                  ("sr-s1", "sr", 0.6, 0.1), ("baseline-dlif-s0", "baseline-dlif", 1.0, 0.2),
                                  ("rssnn-s0", "rssnn", 1.0, 0.3), ("baseline-s0", "baseline", 0.1, 0.0)]:
        rows[cid] = {"id": cid, "recipe": recipe, "clean": 95.0, "omega_share": 0.5, "omega_gauss": 0.5, "grad_l1": l1,
                     "zero_grad": 0.0, "near_zero_grad": 0.0, "hoyer": 0.4, "mppd": mppd, "mppd_common": mppd, "mppd_rel": mppd}
    text = md.write_report(rows, tmp_path / "D.md", "cmd", matched)
    table = [line.split(" | ")[0].strip("| ") for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert table.index("baseline-e6") < table.index("sr") and table.index("baseline-dlif") < table.index("rssnn")
    assert "**sr** vs baseline-e6 (n = 2 / 1 seeds): ‖∇f‖₁ 0.55" in text and "holds" in text
    assert "**rssnn** vs baseline-dlif (n = 1 / 1 seeds): last-layer MPPD energy mean(Y²) 0.3 ± 0 vs 0.2" in text
    assert "does NOT hold" in text and "vs baseline (" not in text
    spike_cols = [line for line in text.splitlines() if line.startswith("| sr |")][0].split(" | ")
    assert spike_cols[12:15] == ["-", "-", "-"]  # no spike-tensor quantity for a direct-encoded model


def test_spike_domain_sparsity_is_that_of_the_gradient_on_the_encoded_tensor():
    torch.manual_seed(0)
    net = build_architecture("sew_small", neuron=IF_SPEC, surrogate=training_rule("atan", 2.0), in_shape=(1, 12, 12),
                             stem_channels=4, stage_channels=(4, 8), blocks=(1, 1), stem_pool="max")
    model = SNNAdapter(net, time_steps=10, encoder="phase", own_rule=training_rule("atan", 2.0)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (6, 1, 12, 12), generator=g).float() / 255
    y = torch.randint(0, 10, (6,), generator=g)
    got = md.measure_spike_domain(model, x, y, batch_size=4)
    # the reference: the CE gradient with respect to the phase-coded spikes, through the network alone
    seq = model.encode(x).detach().requires_grad_(True)  # [T, N, C, H, W]
    from spikingjelly.activation_based import functional

    functional.reset_net(model.net)
    with model.backward_rule("own"):
        (grad,) = torch.autograd.grad(F.cross_entropy(model.net(seq).mean(0), y, reduction="sum"), seq)
    grad = grad.transpose(0, 1).reshape(6, -1)
    assert (grad != 0).any()
    zero = float((grad == 0).sum()) / grad.numel()
    hoyer = float(md.hoyer_sparsity(grad).mean())
    assert got["zero_grad_spike"] == pytest.approx(zero)
    assert got["hoyer_spike"] == pytest.approx(hoyer, rel=1e-5)
    assert 0.0 <= got["near_zero_grad_spike"] <= 1.0 and got["near_zero_grad_spike"] >= got["zero_grad_spike"]
    np.testing.assert_array_equal(model.encode(x).unique().numpy(), [0.0, 1.0])


def test_phase_encoded_models_have_no_pixel_gradient_quantities():
    # Luu's phase encoder detaches the pixels: the pixel-gradient columns are "no value", not a 100% zero share
    torch.manual_seed(0)
    net = build_architecture("sew_small", neuron=IF_SPEC, surrogate=training_rule("atan", 2.0), in_shape=(1, 12, 12),
                             stem_channels=4, stage_channels=(4, 8), blocks=(1, 1), stem_pool="avg")
    model = SNNAdapter(net, time_steps=10, encoder="phase", own_rule=training_rule("atan", 2.0)).eval()
    x = torch.rand(4, 1, 12, 12)
    m = md.measure_model(model, x, torch.arange(4), batch_size=2)
    assert m["grad_l1"] is None and m["zero_grad"] is None and m["hoyer"] is None
    assert 0.0 <= m["omega_share"] <= 1.0 and m["mppd"] >= 0.0
