"""Device selection: ``auto`` means CUDA when present, else CPU. Nothing is CPU-only by construction."""

from __future__ import annotations

import torch

from bench.errors import BenchError


def resolve_device(name: str | None = "auto") -> torch.device:
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise BenchError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise BenchError(f"device '{name}' is not supported (snnbench runs on cpu or cuda): use --device auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device '{name}' asked for but CUDA is not available here: use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BenchError(f"device '{name}': this machine has {torch.cuda.device_count()} CUDA device(s) (cuda:0..): pick one of those")
    return dev
