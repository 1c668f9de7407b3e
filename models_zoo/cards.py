"""Model cards: one TOML per zoo entry, validated by a schema; the single source of truth for a model.

A card says what the model is (family, paper, architecture, neuron, training surrogate, T, encoder,
and optionally ``io_contract``: ``"time-major"`` when the network maps ``[T, N, C, H, W]`` to ``[T, N, K]`` and
the adapter encodes the image over T steps, ``"image"`` when it maps ``[N, C, H, W]`` to ``[N, K]`` and owns
its time loop and encoding, like spikingjelly's tutorial models; absent: detected and checked, see
:mod:`bench.adapter`),
where its weights are (checkpoint path relative to the card, sha256, size) and what it claims (clean
accuracy in percent on the data set's test split). Numbers are numbers; every card has the same keys.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

# field -> (python types accepted, required)
_TOP_LEVEL: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), True),
    "family": ((str,), True),
    "paper": ((str,), True),
    "dataset": ((str,), True),
    "threat_model": ((str,), False),
    "architecture": ((str,), True),
    "architecture_args": ((dict,), False),
    "num_classes": ((int,), True),
    "checkpoint": ((str,), True),
    "sha256": ((str,), True),
    "size_bytes": ((int,), True),
    "time_steps": ((int,), True),
    "encoder": ((str,), True),
    "step_mode": ((str,), False),
    "io_contract": ((str,), False),
    "claimed_clean_acc": ((int, float), True),
    "neuron": ((dict,), True),
    "training_surrogate": ((dict,), True),
    "training": ((dict,), True),
    "notes": ((str,), False),
    # zoo id of the matched baseline (same seed, differing only in the defense's knob; issue 13)
    "matched_baseline": ((str,), False),
    # why the entry no longer ranks, naming what replaces it (issue 13: "retire results that the new recipes
    # replace"); its stored results stay, listed under "Retired entries" (bench.retired), never ranked or paired
    "retired": ((str,), False),
}
_NEURON: dict[str, tuple[tuple[type, ...], bool]] = {
    "type": ((str,), True),
    "tau": ((int, float), True),
    "v_threshold": ((int, float), True),
    "v_reset": ((int, float, str), True),
    "decay_input": ((bool,), False),
    "detach_reset": ((bool,), False),
}
_SURROGATE: dict[str, tuple[tuple[type, ...], bool]] = {
    "family": ((str,), True),
    "width": ((int, float), True),
}
_TRAINING_REQUIRED: dict[str, tuple[tuple[type, ...], bool]] = {
    "recipe": ((str,), True),
    "seed": ((int,), True),
}


@dataclass
class ModelCard:
    """A validated model card. ``path`` is the TOML file it came from (None when built in memory)."""

    data: dict[str, Any]
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data", {})
        if name in data:
            return data[name]
        raise AttributeError(name)

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint, resolved (symlinks included) and confined to the card's folder.

        A card in a folder named ``cards`` may also use the sibling ``checkpoints`` folder (the zoo's and
        ``snnbench train --out-dir``'s layout). Anything else (``../../etc/passwd``, an absolute path, a
        symlink out of the folder) is refused before the file is opened.
        """
        raw = self.data["checkpoint"]
        if self.path is None:
            return Path(raw)
        base = self.path.parent.resolve()
        p = (base / raw).resolve()
        allowed = [base] + ([base.parent / "checkpoints"] if base.name == "cards" else [])
        if not any(p.is_relative_to(a) for a in allowed):
            raise BenchError(
                f"model '{self.data['id']}': checkpoint '{raw}' resolves to {p}, outside the card's folder {base}: "
                "put the checkpoint beside the card (no absolute paths, '..' or symlinks out of the folder)"
            )
        return p

    @property
    def v_reset(self) -> float | None:
        v = self.data["neuron"]["v_reset"]
        return None if isinstance(v, str) else float(v)

    def summary(self) -> dict[str, Any]:
        """Flat dict of the fields the leaderboard shows."""
        n, sg = self.data["neuron"], self.data["training_surrogate"]
        return {
            "model_id": self.data["id"],
            "family": self.data["family"],
            "paper": self.data["paper"],
            "dataset": self.data["dataset"],
            "architecture": self.data["architecture"],
            "T": self.data["time_steps"],
            "encoder": self.data["encoder"],
            "neuron": n["type"],
            "training_sg": f"{sg['family']}({sg['width']:g})",
            "claimed_clean_acc": float(self.data["claimed_clean_acc"]),
            "seed": self.data["training"]["seed"],
            "recipe": self.data["training"]["recipe"],
            # True when the architecture is submitter code (`file.py:factory`): the leaderboard marks it
            "custom_code": ".py:" in self.data["architecture"],
        }


def retired_reason(card: Any) -> str | None:
    """The card's ``retired`` text (why it was retired and what replaces it), or None for an active entry.

    A retired card still loads and evaluates; its results are listed, never ranked (:mod:`bench.retired`).
    """
    reason = card.data.get("retired")
    return str(reason) if reason else None


def _check_table(where: str, table: dict[str, Any], schema: dict[str, tuple[tuple[type, ...], bool]]) -> None:
    for key, (types, required) in schema.items():
        if key not in table:
            if required:
                raise BenchError(f"{where}: missing field '{key}' ({'/'.join(t.__name__ for t in types)}): add it to the card")
            continue
        value = table[key]
        # bool is an int in Python: refuse True where a number is expected, and vice versa.
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            raise BenchError(
                f"{where}: field '{key}' must be {'/'.join(t.__name__ for t in types)}, got {type(value).__name__} {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise BenchError(f"{where}: field '{key}' must be finite, got {value}")


def validate_card_data(data: dict[str, Any], where: str = "card") -> None:
    """Raise :class:`BenchError` (one line) on the first schema violation."""
    unknown = set(data) - set(_TOP_LEVEL)
    if unknown:
        raise BenchError(f"{where}: unknown field(s) {sorted(unknown)}: allowed fields are {sorted(_TOP_LEVEL)}")
    _check_table(where, data, _TOP_LEVEL)
    _check_table(f"{where} [neuron]", data["neuron"], _NEURON)
    _check_table(f"{where} [training_surrogate]", data["training_surrogate"], _SURROGATE)
    _check_table(f"{where} [training]", data["training"], _TRAINING_REQUIRED)
    from bench.limits import check_card_numbers, check_id

    check_id(data["id"], f"{where}: id")
    if not _ID_RE.match(data["id"]):
        raise BenchError(f"{where}: id '{data['id']}' must be lowercase letters, digits and . _ + - only")
    if not _SHA_RE.match(data["sha256"]):
        raise BenchError(f"{where}: sha256 must be 64 lowercase hex digits (sha256sum of the checkpoint)")
    if data["size_bytes"] <= 0:
        raise BenchError(f"{where}: size_bytes must be positive")
    if data["time_steps"] < 1:
        raise BenchError(f"{where}: time_steps must be >= 1")
    check_card_numbers(data, where)
    if data.get("threat_model", "Linf") != "Linf":
        raise BenchError(f"{where}: threat_model = '{data['threat_model']}' is not implemented: only 'Linf' is (remove the field or set it to 'Linf')")
    if data["encoder"] not in ("direct", "poisson", "phase"):
        raise BenchError(f"{where}: encoder must be 'direct', 'poisson' or 'phase', got '{data['encoder']}'")
    mb = data.get("matched_baseline")
    if mb is not None and (not _ID_RE.match(mb) or mb == data["id"]):
        raise BenchError(f"{where}: matched_baseline '{mb}' must be the zoo id of another model (lowercase id, not the card's own)")
    if data.get("step_mode", "m") not in ("m", "s"):
        raise BenchError(f"{where}: step_mode must be 'm' or 's'")
    if data.get("io_contract", "time-major") not in ("time-major", "image"):
        raise BenchError(
            f"{where}: io_contract must be 'time-major' (forward maps [T, N, C, H, W] to [T, N, K]) or 'image' "
            f"(forward maps [N, C, H, W] to [N, K] and owns its time loop), got {data['io_contract']!r}"
        )
    if not 0.0 <= float(data["claimed_clean_acc"]) <= 100.0:
        raise BenchError(f"{where}: claimed_clean_acc is a percentage in [0, 100], got {data['claimed_clean_acc']}")
    vr = data["neuron"]["v_reset"]
    if isinstance(vr, str) and vr != "soft":
        raise BenchError(f"{where} [neuron]: v_reset must be a number or the string 'soft', got '{vr}'")
    if data["neuron"]["type"] not in ("IF", "LIF", "PLIF", "DLIF"):
        raise BenchError(f"{where} [neuron]: type must be IF, LIF, PLIF or DLIF, got '{data['neuron']['type']}'")
    tau = float(data["neuron"]["tau"])
    if data["neuron"]["type"] in ("LIF", "PLIF") and not tau > 1.0:
        raise BenchError(f"{where} [neuron]: tau must be > 1 for {data['neuron']['type']} (its time constant: the leak per step is 1/tau), got {tau:g}")
    if data["neuron"]["type"] == "DLIF" and not 0.0 <= tau <= 1.0:
        raise BenchError(f"{where} [neuron]: DLIF's tau is a leak factor in [0, 1] (the paper uses 0.99), got {tau:g}")
    if not isinstance(vr, str) and not float(data["neuron"]["v_threshold"]) > float(vr):
        raise BenchError(f"{where} [neuron]: v_threshold ({data['neuron']['v_threshold']}) must be above v_reset ({vr})")
    from attacks.backward_rules import training_rule

    try:
        training_rule(data["training_surrogate"]["family"], float(data["training_surrogate"]["width"]))
    except BenchError as e:
        raise BenchError(f"{where} [training_surrogate]: {e}") from None


def load_card(path: str | Path) -> ModelCard:
    """Read and schema-validate a card TOML file."""
    p = Path(path)
    if not p.is_file():
        raise BenchError(f"model card {p} not found: check the path")
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"model card {p} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise BenchError(f"model card {p} is not UTF-8 text (byte {e.start}): save it as UTF-8 TOML") from None
    except OSError as e:
        raise BenchError(f"model card {p} cannot be read: {e.strerror or e}") from None
    validate_card_data(data, where=f"model card {p.name}")
    return ModelCard(data=data, path=p.resolve())


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checkpoint(card: ModelCard) -> Path:
    """Check the checkpoint exists and matches the card's sha256 and size; return its path."""
    ckpt = card.checkpoint_path
    if not ckpt.is_file():
        raise BenchError(f"model '{card.id}': checkpoint {ckpt} not found: fix 'checkpoint' in the card (relative to the card file)")
    digest = sha256_file(ckpt)
    if digest != card.sha256:
        raise BenchError(
            f"model '{card.id}': checkpoint sha256 mismatch: card says {card.sha256[:12]}..., file has {digest[:12]}...: "
            f"the file changed or the card is stale (re-run `sha256sum {ckpt.name}`)"
        )
    size = ckpt.stat().st_size
    if size != card.size_bytes:
        raise BenchError(f"model '{card.id}': checkpoint is {size} bytes, card says {card.size_bytes}")
    return ckpt


def card_to_toml(data: dict[str, Any]) -> str:
    """Serialise a card dict to TOML (scalars first, then tables), deterministically."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    lines = [f"{k} = {scalar(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append("")
            lines.append(f"[{k}]")
            lines.extend(f"{kk} = {scalar(vv)}" for kk, vv in v.items())
    return "\n".join(lines) + "\n"
