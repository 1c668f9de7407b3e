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
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device '{name}' asked for but CUDA is not available here: use --device cpu or auto")
    return dev
