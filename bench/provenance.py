"""Provenance recorded with every result: versions, git commit, device, seed, timing."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from typing import Any

import torch

from bench import __version__
from bench.config import PROJECT_ROOT


def git_commit() -> str:
    """HEAD's commit hash, with ``-dirty`` when tracked files differ; ``unknown`` outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not head:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def provenance(device: torch.device, seed: int, batch_size: int, chunk_size: int, wall_seconds: float) -> dict[str, Any]:
    import spikingjelly

    try:
        from importlib.metadata import version

        sj = version("spikingjelly")
    except Exception:  # pragma: no cover - metadata missing
        sj = getattr(spikingjelly, "__version__", "unknown")
    return {
        "package": "snn-robustbench",
        "package_version": __version__,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "spikingjelly": sj,
        "python": platform.python_version(),
        "device": device_name(device),
        "seed": seed,
        "batch_size": batch_size,
        "chunk_size": chunk_size,
        "wall_seconds": round(wall_seconds, 2),
        "finished_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
