"""`snnbench zoo validate`: schema, hash, weights load, the input contract and state-leak check that
`eval` runs before attacking (:meth:`bench.adapter.SNNAdapter.check_contract`), clean accuracy within 0.5
points of the claim."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.data import load_dataset
from bench.errors import BenchError
from models_zoo.cards import ModelCard
from models_zoo.training import accuracy
from models_zoo.zoo import load_model

CLAIM_TOLERANCE = 0.5


@dataclass
class Validation:
    model_id: str
    ok: bool
    message: str
    clean_acc: float | None = None


def validate_card(card: ModelCard, device: str = "cpu", check_accuracy: bool = True) -> Validation:
    """Run every check on one (already schema-validated) card; never raises for a failing model."""
    mb = card.data.get("matched_baseline")
    if mb is not None:
        from models_zoo.zoo import cards_dir, list_cards

        known = {c.id for c in list_cards()}
        if card.path is not None and card.path.parent != cards_dir():  # a card outside the zoo (a sweep point)
            known |= {c.id for c in list_cards(card.path.parent)}
        if mb not in known:
            return Validation(card.id, False, f"matched_baseline '{mb}' is not a zoo id: train it (snnbench train) or fix the card")
    try:
        model = load_model(card, device)
    except BenchError as e:
        return Validation(card.id, False, str(e))
    ds = load_dataset(card.dataset)
    probe = ds.test.x[:16].to(next(model.parameters()).device)
    try:
        contract = model.check_contract(probe)
    except BenchError as e:
        return Validation(card.id, False, f"input contract: {e}")
    if not check_accuracy:
        return Validation(card.id, True, f"schema, hash, weights and {contract} input contract ok")
    tol = CLAIM_TOLERANCE
    if model.declared_stochastic or model.detect_stochastic(probe):
        # a randomised model: the mean over fresh passes, tolerance 0.5 + twice the per-pass std (bench/flags.py)
        from bench.engine import STOCHASTIC_PASSES
        from bench.flags import claim_tolerance

        per_pass = []
        for r in range(STOCHASTIC_PASSES):
            model.reseed(r)
            torch.manual_seed(r)
            per_pass.append(accuracy(model, ds.test.x, ds.test.y))
        model.reseed(0)
        acc, tol = sum(per_pass) / len(per_pass), claim_tolerance(per_pass)
    else:
        acc = accuracy(model, ds.test.x, ds.test.y)
    gap = acc - float(card.claimed_clean_acc)
    if abs(gap) > tol:
        return Validation(card.id, False, f"clean accuracy {acc:.2f} vs claimed {card.claimed_clean_acc:.2f} ({gap:+.2f} points, tolerance {tol:.2f})", acc)
    return Validation(card.id, True, f"clean accuracy {acc:.2f} (claimed {card.claimed_clean_acc:.2f})", acc)
