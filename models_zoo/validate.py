"""`snnbench zoo validate`: schema, hash, weights load, clean accuracy within 0.5 points of the claim."""

from __future__ import annotations

from dataclasses import dataclass

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
    if not check_accuracy:
        return Validation(card.id, True, "schema, hash and weights ok")
    ds = load_dataset(card.dataset)
    acc = accuracy(model, ds.test.x, ds.test.y)
    gap = acc - float(card.claimed_clean_acc)
    if abs(gap) > CLAIM_TOLERANCE:
        return Validation(card.id, False, f"clean accuracy {acc:.2f} vs claimed {card.claimed_clean_acc:.2f} ({gap:+.2f} points, tolerance {CLAIM_TOLERANCE})", acc)
    return Validation(card.id, True, f"clean accuracy {acc:.2f} (claimed {card.claimed_clean_acc:.2f})", acc)
