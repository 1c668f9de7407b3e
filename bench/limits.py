"""Bounds on what hostile or careless input can make snnbench allocate or accept, each with its limit in the message.

A submitted card and checkpoint are untrusted data. Numbers on a card drive allocations (``time_steps``
repeats every input T times, ``num_classes`` sizes the logits), and a ``.pt`` checkpoint is a zip archive
whose entries may be deflated: a 2 MB file can inflate to gigabytes inside ``torch.load``. Everything here
is checked *before* the allocation it guards, and fails with one line (:class:`BenchError`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError

#: card numbers (the zoo uses T = 4, 10 classes; neuromorphic SNNs rarely exceed a few hundred steps)
MAX_TIME_STEPS = 256
MAX_NUM_CLASSES = 1000
#: ids become folder and file names (255 bytes on most file systems, with room for the result suffix)
MAX_ID_LENGTH = 128
#: attack seeds feed numpy (< 2**32) and torch generators
MAX_SEED = 2**32 - 1
#: what a checkpoint may hold once unpacked (bytes of tensor data)
MAX_CHECKPOINT_BYTES = 2 * 1024**3
#: parameters of a registered architecture built from a card's ``architecture_args``
MAX_PARAMETERS = 200_000_000


def check_seed(seed: Any, flag: str = "--seed") -> int:
    """An attack/training seed: an integer in [0, 2**32 - 1]."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise BenchError(f"{flag} must be an integer in [0, {MAX_SEED}] (2**32 - 1), got {seed}")
    return seed


def check_positive(value: Any, flag: str) -> int | None:
    """``None`` (use the default) or an integer >= 1; 0 and negatives are refused, never read as 'default'."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchError(f"{flag} must be a positive integer (omit it for the default), got {value}")
    return value


def check_id(model_id: str, what: str = "model id") -> None:
    if len(model_id) > MAX_ID_LENGTH:
        raise BenchError(f"{what} is {len(model_id)} characters long: at most {MAX_ID_LENGTH} are allowed ('{model_id[:40]}...')")


def check_card_numbers(data: dict[str, Any], where: str) -> None:
    """Bounds on the card numbers that size allocations."""
    t = data["time_steps"]
    if t > MAX_TIME_STEPS:
        raise BenchError(f"{where}: time_steps = {t} exceeds the limit of {MAX_TIME_STEPS} (every input is repeated T times)")
    k = data["num_classes"]
    if not 2 <= k <= MAX_NUM_CLASSES:
        raise BenchError(f"{where}: num_classes = {k} must be in [2, {MAX_NUM_CLASSES}]")
    if data["size_bytes"] > MAX_CHECKPOINT_BYTES:
        raise BenchError(f"{where}: size_bytes = {data['size_bytes']} exceeds the checkpoint limit of {MAX_CHECKPOINT_BYTES} bytes")


def check_torch_archive(path: Path) -> None:
    """Refuse a ``.pt`` whose zip entries would inflate past :data:`MAX_CHECKPOINT_BYTES` (or any compressed one).

    ``torch.save`` writes its entries stored (uncompressed), so the unpacked size equals the file size; a
    deflated entry can only come from a crafted archive (a zip bomb). Checked from the zip's central
    directory, before ``torch.load`` allocates anything. Legacy (pre-zip) torch files are refused: their
    storages are sized by the pickle, not by the file.
    """
    if not zipfile.is_zipfile(path):
        raise BenchError(f"checkpoint {path.name} is not a zip-format torch file (legacy or unknown format): "
                         "save `model.state_dict()` with safetensors.torch.save_file")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise BenchError(f"checkpoint {path.name} is a damaged zip archive ({e}): save it again") from None
    total = sum(i.file_size for i in infos)
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise BenchError(f"checkpoint {path.name} refused: entry {packed[0]} is compressed (a torch.save file never is; "
                         f"it would inflate to {total} bytes): save the state_dict with safetensors.torch.save_file")
    if total > MAX_CHECKPOINT_BYTES:
        raise BenchError(f"checkpoint {path.name} unpacks to {total} bytes, over the limit of {MAX_CHECKPOINT_BYTES} bytes")


def check_parameter_budget(build: Any, model_id: str) -> None:
    """Build a registered architecture on the meta device (no memory) and bound its parameter count."""
    with torch.device("meta"):
        net = build()
    n = sum(p.numel() for p in net.parameters())
    if n > MAX_PARAMETERS:
        raise BenchError(f"model '{model_id}': architecture_args give {n} parameters, over the limit of {MAX_PARAMETERS}")


def nonfinite_tensors(net: nn.Module) -> list[str]:
    """Names of parameters and buffers (persistent or not) holding NaN or inf."""
    named = [*net.named_parameters(), *net.named_buffers()]
    return [k for k, v in named if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def check_finite_weights(net: nn.Module, model_id: str) -> None:
    bad = nonfinite_tensors(net)
    if bad:
        more = f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""
        raise BenchError(f"model '{model_id}': weights hold NaN/inf in {', '.join(bad[:4])}{more}: "
                         "a checkpoint must have finite parameters and buffers")
