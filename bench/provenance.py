"""Provenance recorded with every result: versions, git commit, device, seed, timing.

The git commit names the *code* that ran, taken once at the start of a run: the first call of
:func:`git_commit` in a process (``snnbench`` takes it before the command starts) reads ``git rev-parse HEAD``
and whether tracked files differ, excluding what runs write (``reports/`` and the configured results and
reports folders), and stores it in ``$SNNBENCH_GIT_COMMIT``, which worker processes inherit. So a clean
clone's main job records a clean commit for every result, although its own result writes change tracked
files under ``reports/`` between one result and the next.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from bench.version import __version__
from bench.config import PROJECT_ROOT

#: the run's commit snapshot, shared with worker processes
COMMIT_ENV = "SNNBENCH_GIT_COMMIT"
#: folders (relative to the checkout) whose changes are run outputs, not code
GENERATED = ("reports",)


def _generated_paths(root: Path) -> list[str]:
    """``GENERATED`` plus the configured results and reports folders, where they lie inside ``root``."""
    from bench.config import reports_dir, results_dir

    out = list(GENERATED)
    for d in (results_dir(), reports_dir()):
        try:
            rel = Path(d).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:  # outside the checkout: never part of git status
            continue
        if rel not in (".", "") and rel not in out:
            out.append(rel)
    return out


def read_git_commit(root: Path = PROJECT_ROOT) -> str:
    """HEAD's commit hash, with ``-dirty`` when tracked code differs from it (run outputs such as
    ``reports/`` excluded); ``unknown`` outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not head:
            return "unknown"
        excluded = [f":(exclude){p}" for p in _generated_paths(root)]
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
            cwd=root, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_commit() -> str:
    """The run's commit snapshot: ``$SNNBENCH_GIT_COMMIT`` when set, else :func:`read_git_commit` now, stored there."""
    value = os.environ.get(COMMIT_ENV)
    if not value:
        value = read_git_commit(PROJECT_ROOT)
        os.environ[COMMIT_ENV] = value
    return value


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
