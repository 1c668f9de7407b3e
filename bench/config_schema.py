"""Type and range checks on bench.toml, run once when it is read: a bad value is one line naming the key.

TOML gives ``steps = "20"`` a string and ``steps = 2.5`` a float; both used to reach the attacks (or
crash in them), and ``steps = -5`` ran a no-op attack still labelled with the preset's name. Unknown keys
in a preset (a misspelt ``[[presets.x.atacks]]``) used to be ignored, so the preset ran fewer attacks
than it says. Everything is checked here, before any model is built.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

from bench.errors import BenchError

#: keys a ``[presets.<name>]`` table may have (add one here when the engine learns a new preset key)
PRESET_KEYS = {"version", "description", "attacks", "own_sg_attack", "batch_size", "eps_sweep", "masking_fallback", "probe", "threat_model"}
EPS_SWEEP_KEYS = {"attacks", "points", "extra_eps"}
#: keys of ``[presets.<name>.masking_fallback]`` (bench/masking.py)
MASKING_FALLBACK_KEYS = {"zero_grad_share", "full_strength_queries", "attacks"}
#: attack parameters that count something: integers >= 1
COUNT_PARAMS = {"steps", "restarts", "draws", "queries", "samples", "targets", "subset_every", "eot_draws", "n_restarts", "iterations"}
#: attack parameters that are positive real numbers
POSITIVE_PARAMS = {"step_size_ratio", "lr", "delta", "p_init"}
PATH_KEYS = ("results_dir", "reports_dir", "zoo_dir")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _need_int(where: str, key: str, v: Any, lo: int = 1) -> None:
    if not _is_int(v) or v < lo:
        got = f"{type(v).__name__} {v!r}"
        raise BenchError(f"bench.toml {where}: {key} must be an integer >= {lo}, got {got}: write e.g. {key} = {max(lo, 1)}")


def _need_table(where: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise BenchError(f"bench.toml: [{where}] must be a table, got {type(v).__name__}")
    return v


def _unknown(where: str, keys: set[str], known: set[str]) -> None:
    extra = sorted(keys - known)
    if extra:
        close = difflib.get_close_matches(extra[0], sorted(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise BenchError(f"bench.toml [{where}]: unknown key '{extra[0]}'{hint}: known keys are {', '.join(sorted(known))}")


def check_attack_params(where: str, spec: dict[str, Any]) -> None:
    """Counts are integers >= 1, ratios and rates positive finite numbers (``p_init`` at most 1)."""
    for key, v in spec.items():
        if key in COUNT_PARAMS:
            _need_int(where, key, v)
        elif key in POSITIVE_PARAMS:
            if not _is_num(v) or v <= 0:
                raise BenchError(f"bench.toml {where}: {key} must be a positive number, got {type(v).__name__} {v!r}")
            if key == "p_init" and v > 1:
                raise BenchError(f"bench.toml {where}: p_init is a fraction in (0, 1], got {v}")


def validate_config(cfg: dict[str, Any], path: Path) -> None:
    """Raise a one-line BenchError on the first malformed part of a parsed bench.toml."""
    for section in ("paths", "defaults", "datasets", "threat_models", "presets"):
        if section not in cfg:
            raise BenchError(f"config file {path} has no [{section}] table: restore it from the project's bench.toml")
        _need_table(section, cfg[section])
    for key in PATH_KEYS:
        if not isinstance(cfg["paths"].get(key), str) or not cfg["paths"][key]:
            raise BenchError(f"bench.toml [paths]: {key} must be a folder name (a non-empty string), got {cfg['paths'].get(key)!r}")
    d = cfg["defaults"]
    for key in ("dataset", "preset", "threat_model"):
        if not isinstance(d.get(key), str):
            raise BenchError(f"bench.toml [defaults]: {key} must be a string, got {d.get(key)!r}")
    _need_int("[defaults]", "seed", d.get("seed"), lo=0)
    _need_int("[defaults]", "batch_size", d.get("batch_size"))
    _need_int("[defaults]", "chunk_size", d.get("chunk_size"))
    for name, ds in cfg["datasets"].items():
        ds = _need_table(f"datasets.{name}", ds)
        shape = ds.get("shape")
        if not isinstance(shape, list) or len(shape) != 3 or not all(_is_int(s) and s >= 1 for s in shape):
            raise BenchError(f"bench.toml [datasets.{name}]: shape must be [C, H, W] of positive integers, got {shape!r}")
        _need_int(f"[datasets.{name}]", "num_classes", ds.get("num_classes"), lo=2)
        if "n_test" in ds:
            _need_int(f"[datasets.{name}]", "n_test", ds["n_test"])
        if "split_seed" in ds:
            _need_int(f"[datasets.{name}]", "split_seed", ds["split_seed"], lo=0)
    for name, tm in cfg["threat_models"].items():
        tm = _need_table(f"threat_models.{name}", tm)
        if not _is_num(tm.get("eps")) or not 0 <= tm["eps"] <= 1:
            raise BenchError(f"bench.toml [threat_models.{name}]: eps must be a number in [0, 1], got {tm.get('eps')!r}")
        sweep = tm.get("eps_sweep", [])
        if not isinstance(sweep, list) or not all(_is_num(e) and 0 <= e <= 1 for e in sweep):
            raise BenchError(f"bench.toml [threat_models.{name}]: eps_sweep must be a list of numbers in [0, 1], got {sweep!r}")
    for name, p in cfg["presets"].items():
        p = _need_table(f"presets.{name}", p)
        _unknown(f"presets.{name}", set(p), PRESET_KEYS)
        if "attacks" in p and (not isinstance(p["attacks"], list) or not all(isinstance(a, dict) for a in p["attacks"])):
            raise BenchError(f"bench.toml [presets.{name}]: attacks must be an array of tables ([[presets.{name}.attacks]])")
        for i, a in enumerate(p.get("attacks", [])):
            check_attack_params(f"[presets.{name}] attack '{a.get('name', f'#{i + 1}')}'", a)
        fallback = p.get("masking_fallback")
        if fallback is not None:
            fallback = _need_table(f"presets.{name}.masking_fallback", fallback)
            _unknown(f"presets.{name}.masking_fallback", set(fallback), MASKING_FALLBACK_KEYS)
            for i, a in enumerate(fallback.get("attacks", [])):
                check_attack_params(f"[presets.{name}.masking_fallback] attack '{a.get('name', f'#{i + 1}')}'", a)
        sweep = p.get("eps_sweep")
        if sweep is not None:
            sweep = _need_table(f"presets.{name}.eps_sweep", sweep)
            _unknown(f"presets.{name}.eps_sweep", set(sweep), EPS_SWEEP_KEYS)
            if "points" in sweep:
                _need_int(f"[presets.{name}.eps_sweep]", "points", sweep["points"])
            if not all(_is_num(e) and 0 <= e <= 1 for e in sweep.get("extra_eps", [])):
                raise BenchError(f"bench.toml [presets.{name}.eps_sweep]: extra_eps must be numbers in [0, 1]")
