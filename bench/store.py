"""Reading the results store defensively: every stored file is checked before a number is taken from it.

* :func:`read_json` reads a JSON object (not a list, with the keys the reader needs), turning non-UTF-8
  bytes, bad JSON and missing keys into one line that names the file and says to delete it and rerun.
* Partial files (chunks, tuning, sweep points under ``results/.partial/<hash>/``) are written by
  :func:`write_sealed` with the sha256 of their canonical JSON; :func:`read_sealed` verifies it, so a
  hand-edited or damaged chunk is refused instead of being merged into a result.
* A result JSON records the sha256 of its per-point CSV (``points_sha256``) and is written after it;
  :func:`read_points` verifies the pair, so a reader never combines a JSON with another run's CSV.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import results_dir
from bench.errors import BenchError
from bench.io import atomic_write_json

SEAL_KEY = "sha256"
PAYLOAD_KEY = "payload"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def read_json(path: Path, what: str, fix: str, required: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON object from ``path``; any defect is a BenchError naming the file and the fix."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise BenchError(f"{what} {path} is not UTF-8 text (byte {e.start}): {fix}") from None
    except OSError as e:
        raise BenchError(f"{what} {path} cannot be read ({e.strerror or e}): {fix}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise BenchError(f"{what} {path} is not valid JSON ({e.msg} at line {e.lineno}): {fix}") from None
    if not isinstance(obj, dict):
        raise BenchError(f"{what} {path} holds a JSON {type(obj).__name__}, not an object: {fix}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise BenchError(f"{what} {path} lacks the key(s) {', '.join(missing)}: {fix}")
    return obj


def write_sealed(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically together with the sha256 of its canonical JSON."""
    atomic_write_json(path, {SEAL_KEY: sha256_bytes(_canonical(payload)), PAYLOAD_KEY: payload})


def read_sealed(path: Path, fix: str) -> dict[str, Any]:
    """The payload of a file written by :func:`write_sealed`, after checking its hash."""
    what = "partial file"
    obj = read_json(path, what, fix)
    payload, seal = obj.get(PAYLOAD_KEY), obj.get(SEAL_KEY)
    if not isinstance(payload, dict) or not isinstance(seal, str):
        raise BenchError(f"{what} {path} has no sha256 seal (damaged, hand-made or from an older snnbench): {fix}")
    if sha256_bytes(_canonical(payload)) != seal:
        raise BenchError(f"{what} {path} does not match its sha256 (edited or damaged): {fix}")
    return payload


def points_csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def read_points(result: dict[str, Any], path: Path, columns: Iterable[str] = ("index", "clean_correct", "robust")) -> pd.DataFrame | None:
    """The per-point CSV beside result ``path``, verified against the result (None when the result has none).

    A CSV whose sha256 differs from the result's ``points_sha256``, that cannot be parsed, or whose rows or
    columns do not fit the result, is one clear line: delete both files and rerun. Results written before
    ``points_sha256`` existed are checked for shape and for agreement with the result's accuracies.
    """
    name = result.get("points_file")
    if not name:
        return None
    p = path.parent / str(name)
    fix = f"delete {path.name} and {p.name} and rerun the evaluation"
    if Path(str(name)).name != str(name) or not p.is_file():
        return None
    data = p.read_bytes()
    want = result.get("points_sha256")
    if want is not None and sha256_bytes(data) != want:
        raise BenchError(f"points file {p} does not match its result {path.name} (sha256 differs: edited, or from another run): {fix}")
    try:
        df = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise BenchError(f"points file {p} cannot be parsed as CSV ({type(e).__name__}): {fix}") from None
    cols = list(columns)
    missing = [c for c in cols if c not in df.columns]
    if missing or len(df) != result.get("n_points"):
        raise BenchError(f"points file {p} has {len(df)} rows and lacks {missing or 'nothing'} "
                         f"(its result says {result.get('n_points')} points): {fix}")
    for c in cols:
        if not pd.api.types.is_integer_dtype(df[c]):
            raise BenchError(f"points file {p}: column '{c}' is not integer: {fix}")
    if want is None and result.get("scoring_passes", 1) == 1:  # an old result: its accuracies must agree with the CSV
        for col, key in (("clean_correct", "clean_acc"), ("robust", "robust_acc")):
            if col in df.columns and key in result and len(df):
                if abs(100.0 * float(df[col].astype(bool).mean()) - float(result[key])) > 1e-6:
                    raise BenchError(f"points file {p}: '{col}' gives {100.0 * df[col].astype(bool).mean():.2f}%, "
                                     f"its result says {result[key]:.2f}%: {fix}")
    return df


# -- stored model analyses (written by `snnbench analyze`, bench/analysis.py; read by the reports) -----------
ANALYSIS_FILE = "analysis.json"


def analysis_path(card: Any, root: Path | None = None) -> Path:
    """Where a model's analysis lives: beside its results."""
    return (root or results_dir()) / card.dataset / card.id / ANALYSIS_FILE


def load_analyses(root: Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset, model_id) -> analysis, for every analysis.json under ``root``."""
    root = root or results_dir()
    out = {}
    for p in sorted(root.rglob(ANALYSIS_FILE)):
        if ".partial" in p.parts:
            continue
        try:
            a = json.loads(p.read_bytes().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BenchError(f"analysis file {p} is not valid JSON ({e}): delete it and run `snnbench analyze`") from None
        if isinstance(a, dict) and a.get("kind") == "analysis":
            out[(a["dataset"], a["model_id"])] = a
    return out
