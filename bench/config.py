"""bench.toml: data sets, threat models, presets and paths, read with tomllib.

Presets are data. :func:`resolve_preset` returns the fully resolved attack list of a preset, and
:func:`config_hash` hashes any resolved configuration canonically (sorted-key JSON, sha256), so that
results can record exactly what produced them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.errors import BenchError, unknown_name_error

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT_ROOT / "bench.toml"

ATTACK_DEFAULTS: dict[str, Any] = {"rule": "own", "on": "unbroken"}


@lru_cache(maxsize=8)
def _load(path: str) -> dict[str, Any]:
    from bench.config_schema import validate_config

    p = Path(path)
    if not p.is_file():
        raise BenchError(f"config file {p} not found: snnbench reads bench.toml from its project root; "
                         "restore it there (git checkout bench.toml) or reinstall snn-robustbench")
    try:
        with p.open("rb") as f:
            cfg = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"config file {p} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise BenchError(f"config file {p} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    validate_config(cfg, p)
    return cfg


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """Return a deep copy of the parsed bench.toml (default: the project's own)."""
    return copy.deepcopy(_load(str(Path(path or DEFAULT_CONFIG).resolve())))


def project_path(relative: str | Path) -> Path:
    """Resolve a path from bench.toml relative to the project root (absolute paths pass through)."""
    p = Path(relative)
    return p if p.is_absolute() else PROJECT_ROOT / p


def results_dir(cfg: dict[str, Any] | None = None) -> Path:
    cfg = cfg or load_config()
    return project_path(os.environ.get("SNNBENCH_RESULTS_DIR", cfg["paths"]["results_dir"]))


def reports_dir(cfg: dict[str, Any] | None = None) -> Path:
    cfg = cfg or load_config()
    return project_path(os.environ.get("SNNBENCH_REPORTS_DIR", cfg["paths"]["reports_dir"]))


def dataset_config(name: str, cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = cfg or load_config()
    if name not in cfg["datasets"]:
        raise unknown_name_error("dataset", name, cfg["datasets"])
    return dict(cfg["datasets"][name], name=name)


def threat_model_config(name: str, cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = cfg or load_config()
    if name not in cfg["threat_models"]:
        raise unknown_name_error("threat model", name, cfg["threat_models"])
    tm = dict(cfg["threat_models"][name], name=name)
    if tm.get("norm") != "Linf":
        raise BenchError(f"threat model '{name}' has norm {tm.get('norm')!r}: only 'Linf' is implemented")
    return tm


def resolve_preset(name: str, cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return {name, version, description, attacks: [resolved attack dicts]} for a preset.

    Each attack gets the defaults filled in, so that the resolved dict (and its hash) says everything.
    """
    cfg = cfg or load_config()
    presets = cfg.get("presets", {})
    if name not in presets:
        raise unknown_name_error("preset", name, presets)
    raw = presets[name]
    if "version" not in raw or not isinstance(raw["version"], int):
        raise BenchError(f"preset '{name}' in bench.toml has no integer 'version': add version = 1")
    attacks = []
    seen: set[str] = set()
    for i, a in enumerate(raw.get("attacks", [])):
        if "attack" not in a or "name" not in a:
            raise BenchError(f"preset '{name}' attack #{i + 1} needs both 'name' and 'attack' keys")
        if a["name"] in seen:
            raise BenchError(f"preset '{name}' names attack '{a['name']}' twice: attack names must be unique")
        if a.get("on", "unbroken") not in ("all", "unbroken"):
            raise BenchError(f"preset '{name}' attack '{a['name']}': on must be 'all' or 'unbroken'")
        seen.add(a["name"])
        attacks.append({**ATTACK_DEFAULTS, **a})
    if not attacks:
        raise BenchError(f"preset '{name}' lists no attacks")
    fallback, fallback_cfg = fallback_attacks(name, raw, ATTACK_DEFAULTS, seen)
    attacks += fallback
    own = raw.get("own_sg_attack")
    if own is not None:
        match = [a for a in attacks if a["name"] == own]
        if not match or match[0]["on"] != "all" or match[0]["rule"] != "own":
            raise BenchError(
                f"preset '{name}': own_sg_attack '{own}' must name one of its attacks with rule = 'own' and on = 'all'"
            )
    resolved = {
        "name": name,
        "version": raw["version"],
        "description": raw.get("description", ""),
        "own_sg_attack": own,
        "attacks": attacks,
    }
    if fallback_cfg:
        resolved["masking_fallback"] = fallback_cfg
    if "probe" in raw:  # the surrogate-sweep probe (bench/probe.py): which rules run on every point is hashed
        resolved["probe"] = dict(raw["probe"])
    if "batch_size" in raw:  # a preset may fix its attack batch (PDSG and ASSG depend on it); then it is hashed
        b = raw["batch_size"]
        if not isinstance(b, int) or isinstance(b, bool) or b < 1:
            raise BenchError(f"preset '{name}': batch_size must be a positive integer, got {b!r}")
        resolved["batch_size"] = b
    if "threat_model" in raw:  # a preset made for one threat model (paper-luu: spike-Linf); evaluate checks it
        resolved["threat_model"] = str(raw["threat_model"])
    return resolved


def config_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (sorted keys, no whitespace), first 16 hex digits."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# -- the gradient-masking fallback table of a preset (BPDA, Square; run by bench/masking.py) ---------------
#: defaults when a preset has no masking_fallback table
DEFAULT_ZERO_GRAD_SHARE = 0.5
DEFAULT_FULL_STRENGTH_QUERIES = 1000


def fallback_attacks(name: str, raw: dict[str, Any], defaults: dict[str, Any], seen: set[str]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The resolved fallback entries of preset ``name`` (``when = "masked"``, ``on = "unbroken"``) and the
    table's settings, or ``([], None)`` when the preset has no ``masking_fallback``."""
    table = raw.get("masking_fallback")
    if not table:
        return [], None
    share = float(table.get("zero_grad_share", DEFAULT_ZERO_GRAD_SHARE))
    queries = int(table.get("full_strength_queries", DEFAULT_FULL_STRENGTH_QUERIES))
    if not 0 < share < 1:
        raise BenchError(f"preset '{name}': masking_fallback.zero_grad_share must lie in (0, 1), got {share}")
    out = []
    for i, a in enumerate(table.get("attacks", [])):
        if "attack" not in a or "name" not in a:
            raise BenchError(f"preset '{name}' masking_fallback attack #{i + 1} needs both 'name' and 'attack' keys")
        if a["name"] in seen:
            raise BenchError(f"preset '{name}' names attack '{a['name']}' twice: attack names must be unique")
        seen.add(a["name"])
        out.append({**defaults, **a, "on": "unbroken", "when": "masked", "masked_share": share})
    if not out:
        raise BenchError(f"preset '{name}': masking_fallback lists no attacks")
    return out, {"zero_grad_share": share, "full_strength_queries": queries, "attacks": [a["name"] for a in out]}
