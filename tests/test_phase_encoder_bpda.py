"""Luu's phase-encoded zoo model under the pixel-space gauntlet: the encoder detaches its input, so the
own-SG gradients are dead; the masking fallback must run BPDA through the encoder (not crash on a loss
without a graph) and record it (issue 13 x issue 15 integration)."""

from __future__ import annotations

import torch

from bench.analysis import _input_gradients
from bench.evaluate import evaluate
from models_zoo.zoo import get_card, load_model

MODEL = "luu-sew-max-mnist5k-s0"


def test_quick_on_a_phase_encoded_model_runs_bpda_through_the_encoder(tmp_path):
    torch.set_num_threads(1)
    res, _, _ = evaluate(MODEL, preset="quick", limit=10, results_root=tmp_path, device="cpu", progress=False)
    rel = res["reliability"]
    assert rel["gradients_dead"] and rel["own_sg_dead_share"] > 0.9
    assert res["per_attack"]["pgd20-bpda-own"]["info"]["bpda"] == "<encoder>"
    assert res["per_attack"]["pgd20-bpda-own"]["n_attacked"] > 0
    assert res["robust_acc"] <= res["per_attack"]["pgd20-own"]["cumulative_robust_acc"]


def test_input_gradients_of_a_detaching_encoder_are_zero_not_an_error():
    adapter = load_model(get_card(MODEL), torch.device("cpu"))
    x = torch.rand(4, 1, 28, 28)
    g = _input_gradients(adapter, x, torch.zeros(4, dtype=torch.long), 4)
    assert g.shape == x.shape and bool((g == 0).all())
