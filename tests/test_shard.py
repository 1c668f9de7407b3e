"""Scale-out and robustness to interruption: sharded runs merge to the single-process result, and an
evaluation killed with SIGKILL resumes from its last finished chunk to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.evaluate import evaluate
from bench.shard import plan, run_sharded

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"provenance"}


def _comparable(result: dict) -> dict:
    """The result without its timing fields (provenance, per-attack seconds and milliseconds)."""
    out = {k: v for k, v in result.items() if k not in TIMING_KEYS}
    out["per_attack"] = {
        k: {**v, "stats": {kk: vv for kk, vv in v.get("stats", {}).items() if kk != "ms"}} for k, v in result["per_attack"].items()
    }
    out["families"] = {k: {kk: vv for kk, vv in v.items() if kk != "seconds"} for k, v in result.get("families", {}).items()}
    return out


def _single(card_path: str, root: Path, limit: int, chunk_size: int) -> tuple[dict, Path]:
    result, path, _ = evaluate(card_path, preset="quick", eps=0.15, limit=limit, device="cpu", chunk_size=chunk_size,
                               results_root=root, progress=False)
    return result, path


def _check_same(sharded: tuple[dict, Path], single: tuple[dict, Path]) -> None:
    (a, pa), (b, pb) = sharded, single
    assert _comparable(a) == _comparable(b)
    assert pa.with_suffix(".points.csv").read_text() == pb.with_suffix(".points.csv").read_text()


@pytest.mark.parametrize("backend", ["local", "process"])
def test_sharded_run_merges_to_the_single_process_result(digits_card, tmp_path, backend):
    card = str(digits_card.path)
    jobs = plan([card], ["quick"], eps=0.15, shards_per_eval=2, limit=90, device="cpu", chunk_size=30,
                results_root=str(tmp_path / "sharded"))
    assert [j.chunks for j in jobs] == [(0, 1), (2,)]
    (merged,) = run_sharded(jobs, backend=backend, workers=2)
    _check_same(merged, _single(card, tmp_path / "single", 90, 30))


def test_ray_backend_with_two_local_workers(digits_card, tmp_path):
    pytest.importorskip("ray")
    card = str(digits_card.path)
    jobs = plan([card], ["quick"], eps=0.15, shards_per_eval=2, limit=60, device="cpu", chunk_size=30,
                results_root=str(tmp_path / "ray"))
    (merged,) = run_sharded(jobs, backend="ray", workers=2)
    _check_same(merged, _single(card, tmp_path / "single", 60, 30))


def test_sigkill_halfway_then_resume_gives_the_uninterrupted_result(digits_card, tmp_path):
    card = str(digits_card.path)
    killed_root = tmp_path / "killed"
    env = {**os.environ, "SNNBENCH_RESULTS_DIR": str(killed_root), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "bench", "eval", card, "--preset", "quick", "--eps", "0.15", "--limit", "240",
           "--chunk-size", "30", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list(killed_root.glob(".partial/*/chunk_*.json"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the evaluation finished before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(killed_root.glob(".partial/*/chunk_*.json")))
    assert 2 <= done_before < 8 and not list(killed_root.rglob("*_n240_c30.json"))

    resumed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    (path,) = killed_root.rglob("*_n240_c30.json")
    result = json.loads(path.read_text())
    _check_same((result, path), _single(card, tmp_path / "clean", 240, 30))
    assert not list(killed_root.glob(".partial/*"))
