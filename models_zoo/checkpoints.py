"""Loading weights from untrusted files: safetensors, or a ``.pt`` state dict with ``weights_only=True``.

A submitted checkpoint is untrusted. Nothing here unpickles arbitrary objects: ``.pt`` files go through
``torch.load(weights_only=True)``, whose restricted unpickler refuses any global outside plain tensors
and containers, so a payload that would run code on load is rejected before it runs.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bench.errors import BenchError


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict of tensors from ``.safetensors`` or ``.pt``/``.pth`` (weights only)."""
    p = Path(path)
    if not p.is_file():
        raise BenchError(f"checkpoint {p} not found")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(str(p), device="cpu")
        except Exception as e:
            raise BenchError(f"checkpoint {p.name} is not a valid safetensors file: {e}") from None
    if suffix in (".pt", ".pth", ".bin"):
        from bench.limits import check_torch_archive

        check_torch_archive(p)  # entry sizes from the zip directory, before torch.load inflates anything
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            # name the offending global (torch's first lines are generic advice with terminal colour codes)
            found = re.search(r"Unsupported global: (GLOBAL [\w.]+)|Unsupported operand \d+|Unsupported class [\w.]+", str(e))
            first = f"unpickling it would call {found.group(1)}" if found and found.group(1) else (found.group(0) if found else "unsafe content")
            raise BenchError(
                f"checkpoint {p.name} refused: it is not a plain tensor state dict ({first[:160]}); "
                f"save `model.state_dict()` with safetensors.torch.save_file instead"
            ) from None
        except Exception as e:
            raise BenchError(f"checkpoint {p.name} could not be read as a weights-only torch file: {type(e).__name__}: {e}") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            raise BenchError(f"checkpoint {p.name} must hold a dict of name -> tensor (a state_dict), got {type(obj).__name__}")
        return obj
    raise BenchError(f"checkpoint {p.name}: unsupported format '{suffix}': use .safetensors (preferred) or a .pt state_dict")


def load_weights_into(net: nn.Module, state: dict[str, torch.Tensor], model_id: str = "model") -> None:
    """``load_state_dict(strict=True)`` with missing/unexpected keys and shape mismatches in one line."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        def short(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")

        raise BenchError(
            f"model '{model_id}': weights do not fit the architecture: missing keys [{short(missing)}], "
            f"unexpected keys [{short(unexpected)}]: check 'architecture' and 'architecture_args' in the card"
        )
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
    if bad:
        raise BenchError(f"model '{model_id}': weight shapes do not fit the architecture: {'; '.join(bad[:4])}")
    net.load_state_dict(state, strict=True)
    from bench.limits import check_finite_weights

    check_finite_weights(net, model_id)


def save_state_dict(net: nn.Module, path: str | Path) -> None:
    """Write ``net``'s state dict as safetensors (contiguous copies, atomically)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(tmp))
    tmp.replace(p)
