"""Every committed result of a current preset version is reused as is (issue 16: no stored result may be
invalidated by a refactor). Opt-in (``-m slow``): it plans one evaluation per stored result (no model runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.config import load_config, resolve_preset, results_dir
from bench.evaluate import plan_evaluation, stored_result
from bench.matched import Stored, is_stale_order


def _stored() -> list[Path]:
    return sorted(p for p in results_dir(load_config()).glob("*/*/*.json") if p.name != "analysis.json")


@pytest.mark.slow
def test_every_current_stored_result_is_reused():
    cfg = load_config()
    current = 0
    for f in _stored():
        r = json.loads(f.read_text())
        if int(resolve_preset(r["preset"], cfg)["version"]) != int(r["preset_version"]):
            continue  # a retired preset version: it cannot be requested any more, only read
        if is_stale_order(Stored(r, f)):
            continue  # attacked in the pre-fix class-sorted order: replanned on purpose (its split hash changed)
        c = r["config"]
        limit = c["n_points"] if c["n_points"] < r["n_available"] else None
        plan = plan_evaluation(r["model_id"], preset=r["preset"], eps=r["eps"], threat_model=r["threat_model"], limit=limit,
                               seed=c["seed"], chunk_size=c["chunk_size"], batch_size=c.get("batch_size"), device="cpu")
        assert plan.out.resolve() == f.resolve(), f
        assert plan.config_hash == r["config_hash"], f"{f}: stored {r['config_hash']}, planned today {plan.config_hash}"
        assert stored_result(plan) is not None, f
        current += 1
    assert current > 0
