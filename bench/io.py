"""Atomic writes: results are written to a temporary file in the same folder, then renamed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def ensure_dir(path: str | Path) -> Path:
    """``mkdir -p``, with a failure (a file in the way, read-only or full disk) as one BenchError line."""
    from bench.errors import BenchError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        where = e.filename or p
        raise BenchError(f"cannot create folder {p}: {e.strerror or e} ({where}): "
                         "point the results/reports folder at a writable directory") from None
    return p


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, rename; an OSError (disk full, read-only) is one line."""
    from bench.errors import BenchError

    p = Path(path)
    ensure_dir(p.parent)
    try:
        _atomic_write(p, data)
    except OSError as e:
        raise BenchError(f"cannot write {p}: {e.strerror or e}: free disk space or make the folder writable, then rerun "
                         "(finished chunks are kept)") from None


def _atomic_write(p: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")
