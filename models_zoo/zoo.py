"""The zoo registry: cards under models_zoo/cards/*.toml, looked up by id, loaded into an adapter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attacks.backward_rules import BackwardRule, training_rule
from attacks.transfer import SourceZoo, set_source_zoo
from bench.adapter import SNNAdapter
from bench.config import dataset_config, load_config, project_path
from bench.errors import BenchError, unknown_name_error
from models_zoo.architectures import build_architecture
from models_zoo.cards import ModelCard, load_card, verify_checkpoint
from models_zoo.checkpoints import load_state_dict, load_weights_into


def zoo_dir() -> Path:
    """The zoo folder (cards/, checkpoints/): bench.toml's ``paths.zoo_dir``, or ``$SNNBENCH_ZOO_DIR``."""
    return project_path(os.environ.get("SNNBENCH_ZOO_DIR") or load_config()["paths"]["zoo_dir"])


def cards_dir() -> Path:
    return zoo_dir() / "cards"


def list_cards(directory: Path | None = None) -> list[ModelCard]:
    """Every card of the zoo, sorted by id (each one schema-validated)."""
    d = directory or cards_dir()
    cards = [load_card(p) for p in sorted(d.glob("*.toml"))]
    ids = [c.id for c in cards]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise BenchError(f"zoo cards reuse the id(s) {dupes}: every card needs a unique id")
    return sorted(cards, key=lambda c: c.id)


def get_card(model_id_or_path: str) -> ModelCard:
    """A zoo card by id, or any card by its .toml path."""
    if model_id_or_path.endswith(".toml"):
        return load_card(model_id_or_path)
    from bench.limits import check_id

    check_id(model_id_or_path)
    cards = {c.id: c for c in list_cards()}
    if model_id_or_path not in cards:
        raise unknown_name_error("model", model_id_or_path, cards)
    return cards[model_id_or_path]


def card_rule(card: ModelCard) -> BackwardRule:
    sg = card.training_surrogate
    return training_rule(sg["family"], float(sg["width"]))


def neuron_spec(card: ModelCard) -> dict[str, Any]:
    spec = dict(card.neuron)
    spec["v_reset"] = card.v_reset
    spec.setdefault("time_steps", int(card.time_steps))  # DLIF's per-step input gains need T
    return spec


def build_net(card: ModelCard) -> nn.Module:
    """The card's architecture, freshly initialised (no weights loaded)."""
    if ".py:" in card.architecture:  # `file.py:factory`: runs the submitter's code (see bench/custom_arch.py)
        from bench.custom_arch import build_custom_from_card

        return build_custom_from_card(card)
    from bench.limits import check_parameter_budget

    shape = tuple(dataset_config(card.dataset)["shape"])

    def build() -> nn.Module:
        return build_architecture(
            card.architecture,
            neuron=neuron_spec(card),
            surrogate=card_rule(card),
            num_classes=int(card.num_classes),
            in_shape=shape,
            **dict(card.data.get("architecture_args", {})),
        )

    check_parameter_budget(build, card.id)  # on the meta device: architecture_args cannot make it allocate
    return build()


def wrap(net: nn.Module, card: ModelCard, seed: int = 0) -> SNNAdapter:
    return SNNAdapter(
        net,
        time_steps=int(card.time_steps),
        encoder=card.encoder,
        own_rule=card_rule(card),
        step_mode=card.data.get("step_mode", "m"),
        seed=seed,
        io_contract=card.data.get("io_contract"),
    )


def load_model(card: ModelCard | str, device: str | torch.device = "cpu", seed: int = 0) -> SNNAdapter:
    """Verify the checkpoint's hash, load its weights (weights only) and wrap it in an adapter (eval mode)."""
    if isinstance(card, str):
        card = get_card(card)
    ckpt = verify_checkpoint(card)
    net = build_net(card)
    load_weights_into(net, load_state_dict(ckpt), card.id)  # refuses NaN/inf parameters and buffers
    return wrap(net, card, seed=seed).to(device).eval()


# Transfer attacks (attacks/transfer.py, a lower layer) draw their source models from this zoo.
set_source_zoo(SourceZoo(list_cards=lambda: list_cards(), load_model=lambda model_id, device: load_model(model_id, device)))
