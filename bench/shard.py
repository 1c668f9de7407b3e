"""Scale out: run models x presets as sharded jobs (model x preset x point range) on an existing engine.

An evaluation is already split into chunks of points whose random draws depend only on (seed, chunk
index, attack index) (:mod:`bench.engine`), and every finished chunk is stored under
``results/.partial/<config hash>/``. Sharding reuses exactly that: workers compute disjoint sets of
chunks into the shared partial folder, then the driver runs the ordinary :func:`bench.evaluate.evaluate`,
which finds every chunk done and only merges, checks and writes. The merged result is therefore the
single-process result by construction (same chunks, same seeds), apart from timing fields.

Backends:

* ``local``: in this process, one shard after the other (the default; no dependency);
* ``process``: a pool of local worker processes (``concurrent.futures``, spawn context);
* ``ray``: Ray tasks (``pip install -e '.[scale]'``); with ``ray.init(address=...)`` done by the
  caller (or ``RAY_ADDRESS`` set) they run on a cluster whose nodes see the same results folder.

Steps per (model, preset, eps): *prepare* in the driver (per-model rule tuning, cached in the partial
folder, so no two workers tune the same thing), *shard* the chunk indices over the workers, *merge*.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.config import load_config
from bench.errors import BenchError

BACKENDS = ("local", "process", "ray")


@dataclass(frozen=True)
class Job:
    """One shard: a model, a preset, an eps and the chunk indices it computes."""

    model: str
    preset: str
    eps: float | None
    chunks: tuple[int, ...]
    limit: int | None = None
    device: str = "cpu"
    batch_size: int | None = None
    seed: int | None = None
    chunk_size: int | None = None
    results_root: str | None = None


def _eval_kwargs(job: Job) -> dict[str, Any]:
    return dict(
        preset=job.preset, eps=job.eps, limit=job.limit, device=job.device, batch_size=job.batch_size,
        seed=job.seed, chunk_size=job.chunk_size, results_root=job.results_root, progress=False,
    )


def run_job(job: Job | dict[str, Any]) -> dict[str, Any]:
    """Compute one shard's chunks (runs in a worker). Returns what it did."""
    from bench.evaluate import evaluate

    if isinstance(job, dict):
        job = Job(**{**job, "chunks": tuple(job["chunks"])})
    if job.results_root:
        os.environ["SNNBENCH_RESULTS_DIR"] = job.results_root
    info, _, reused = evaluate(job.model, chunks=list(job.chunks), **_eval_kwargs(job))
    return {"model": job.model, "preset": job.preset, "chunks": list(job.chunks), "reused": reused,
            "seconds": info.get("seconds", 0.0)}


def n_chunks(model: str, limit: int | None, chunk_size: int | None) -> int:
    from bench.data import load_dataset
    from models_zoo.lookup import find_card

    card = find_card(model)
    n = len(load_dataset(card.dataset).test.head(limit))
    return math.ceil(n / int(chunk_size or load_config()["defaults"]["chunk_size"]))


def plan(models: Sequence[str], presets: Sequence[str], eps: float | None = None, shards_per_eval: int = 2,
         **common: Any) -> list[Job]:
    """Split every (model, preset) evaluation's chunks into ``shards_per_eval`` contiguous point ranges."""
    if shards_per_eval < 1:
        raise BenchError(f"--shards must be >= 1, got {shards_per_eval}")
    jobs = []
    for m in models:
        total = n_chunks(m, common.get("limit"), common.get("chunk_size"))
        per = math.ceil(total / shards_per_eval)
        for p in presets:
            for s in range(0, total, per):
                jobs.append(Job(model=m, preset=p, eps=eps, chunks=tuple(range(s, min(total, s + per))), **common))
    return jobs


def _map_local(fn: Callable, jobs: list[dict[str, Any]], workers: int) -> list[Any]:
    return [fn(j) for j in jobs]


def _map_process(fn: Callable, jobs: list[dict[str, Any]], workers: int) -> list[Any]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(fn, jobs))


def _map_ray(fn: Callable, jobs: list[dict[str, Any]], workers: int) -> list[Any]:
    try:
        import ray
    except ImportError:
        raise BenchError("backend 'ray' needs Ray: pip install -e '.[scale]' (or use --backend process)") from None
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(fn)
        return ray.get([remote.remote(j) for j in jobs])
    finally:
        if started:
            ray.shutdown()


def run_sharded(jobs: list[Job], backend: str = "local", workers: int = 2) -> list[tuple[dict[str, Any], Path]]:
    """Prepare, shard and merge every evaluation in ``jobs``; returns the merged (result, path) pairs."""
    from bench.evaluate import evaluate

    if backend not in BACKENDS:
        raise BenchError(f"unknown backend '{backend}': use one of {', '.join(BACKENDS)}")
    if workers < 1:
        raise BenchError(f"--workers must be >= 1, got {workers}")
    evals = sorted({(j.model, j.preset, j.eps): j for j in jobs}.items(), key=lambda kv: str(kv[0]))
    for _, j in evals:  # prepare: tuning once, in the driver (cached in the partial folder)
        evaluate(j.model, chunks=[], **_eval_kwargs(j))
    mapper = {"local": _map_local, "process": _map_process, "ray": _map_ray}[backend]
    mapper(run_job, [asdict(j) for j in jobs], workers)
    merged = []
    for _, j in evals:  # merge: every chunk is stored, so this only assembles, checks and writes
        result, path, _ = evaluate(j.model, **_eval_kwargs(j))
        merged.append((result, path))
    return merged
