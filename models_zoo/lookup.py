"""Card lookup for every command: a zoo id, an accepted submission's id, or a path to a ``.toml`` card.

Zoo cards live under ``models_zoo/cards/``; accepted submissions under ``submissions/<id>/card.toml``
(``$SNNBENCH_SUBMISSIONS_DIR`` overrides the folder). An id never resolves outside those two places, and a
card given by path may not take the id of a zoo entry or an accepted submission (its results would
overwrite theirs). Reading a card never imports submitter code (:mod:`bench.custom_arch` does that, and only
with ``--trust-code``).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.config import PROJECT_ROOT
from bench.errors import BenchError, unknown_name_error
from models_zoo.cards import _ID_RE, ModelCard, load_card

#: where accepted submissions live (overridden by the SNNBENCH_SUBMISSIONS_DIR environment variable)
SUBMISSIONS_ENV = "SNNBENCH_SUBMISSIONS_DIR"
CARD_NAME = "card.toml"


def submissions_dir() -> Path:
    """``submissions/`` in the project root, or ``$SNNBENCH_SUBMISSIONS_DIR``."""
    env = os.environ.get(SUBMISSIONS_ENV)
    return Path(env) if env else PROJECT_ROOT / "submissions"


def submission_cards(directory: Path | None = None) -> list[ModelCard]:
    """The cards of every accepted submission (``submissions/<id>/card.toml``), sorted by id."""
    d = directory or submissions_dir()
    return sorted((load_card(p) for p in sorted(d.glob(f"*/{CARD_NAME}"))), key=lambda c: c.id)


def all_cards() -> dict[str, ModelCard]:
    """Zoo cards and accepted submissions by id (an invalid card is a BenchError: `snnbench zoo validate`)."""
    from models_zoo.zoo import list_cards

    cards: dict[str, ModelCard] = {c.id: c for c in list_cards()}
    cards.update({c.id: c for c in submission_cards()})
    return cards


def find_card(model: str) -> ModelCard:
    """A card by zoo id, accepted-submission id, or path to a ``.toml`` card.

    An id resolves only inside the zoo and the submissions folder: it must be a plain id (no ``/``, no
    ``..``), and the card found must carry that id. A card given by path may not reuse the id of a zoo
    entry or an accepted submission (its results would overwrite theirs).
    """
    from bench.limits import check_id
    from models_zoo.zoo import list_cards

    zoo = {c.id: c for c in list_cards()}
    if model.endswith(".toml"):
        card = load_card(model)
        check_not_shadowing(card, zoo)
        return card
    check_id(model)
    if model in zoo:
        return zoo[model]
    if not _ID_RE.match(model):
        raise BenchError(f"model '{model}' is neither a zoo id nor a submission id (ids are lowercase letters, digits and . _ + -, "
                         "no folders): pass a card as a path ending in .toml")
    root = submissions_dir().resolve()
    p = (root / model / CARD_NAME).resolve()
    if p.is_file() and p.parent.parent == root:
        card = load_card(p)
        if card.id != model:
            raise BenchError(f"submission folder {p.parent} holds a card with id '{card.id}', not '{model}': fix the folder name")
        return card
    subs = [c.id for c in submission_cards()] if submissions_dir().is_dir() else []
    raise unknown_name_error("model", model, [*zoo, *subs])


def check_not_shadowing(card: ModelCard, zoo: dict[str, ModelCard] | None = None) -> None:
    """A card path whose id is a zoo entry's or an accepted submission's (other than that very card) is refused."""
    if zoo is None:
        from models_zoo.zoo import list_cards

        zoo = {c.id: c for c in list_cards()}
    owner = zoo.get(card.id)
    if owner is None:
        sub = submissions_dir() / card.id / CARD_NAME
        owner = load_card(sub) if sub.is_file() else None
        kind = "an accepted submission"
    else:
        kind = "a zoo entry"
    if owner is not None and owner.path is not None and card.path is not None and owner.path.resolve() != card.path.resolve():
        raise BenchError(f"card {card.path} has id '{card.id}', which is {kind}'s ({owner.path}): give the card its own id "
                         "(its results would overwrite that model's stored results)")
