"""Evaluate one model under one preset, threat model and eps: resumable, reusable, with provenance.

``evaluate(model, preset, eps)`` writes one JSON per (model, preset, threat model, eps, n_points) under
``reports/results/<dataset>/<model_id>/`` and the per-point outcomes beside it (CSV). Points run in
chunks; each finished chunk is saved atomically under ``results/.partial/<config_hash>/``, so a killed
evaluation resumes from its last finished chunk and ends with the same result. Rerunning an evaluation
whose resolved configuration hash matches a stored result reuses it (``force=True`` recomputes).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from attacks.algorithms import attack_category, make_attack
from attacks.tuning import check_tune, tune_attack
from bench import flags as F
from bench.config import config_hash, load_config, resolve_preset, results_dir, threat_model_config
from bench.data import load_dataset
from bench.device import resolve_device
from bench.engine import (
    BROKE,
    NOT_RUN,
    STOCHASTIC_PASSES,
    ChunkOutcome,
    evaluation_mode,
    mask_accuracy,
    popcount,
    predict,
    run_chunk,
)
from bench.errors import BenchError
from bench.io import atomic_write_json
from bench.masking import own_gradient_attacks, reliability
from bench.stochastic import pass_accuracies, spread_tolerance
from bench.probe import check_probe, probe_for_run
from bench.provenance import provenance
from bench.spike_domain import check_preset_threat_model, spike_domain_config, to_spike_domain
from models_zoo.cards import ModelCard
from models_zoo.zoo import load_model

ENGINE_VERSION = 2
#: points of the eps = 0 check (sanity flag 2)
EPS0_POINTS = 32
RESULT_SCHEMA = 1


#: the chunk size every stored result so far used; a result at another one carries ``_c<size>`` in its name
NAMING_CHUNK_SIZE = 250
#: the configuration fields a result's file name encodes: two results that differ in one never share a file
SLOT_KEYS = ("model_id", "dataset", "n_points", "threat_model", "eps", "seed", "chunk_size", "batch_size")


def eps_token(eps: float) -> str:
    """``%g`` when it gives back exactly ``eps`` (``0.2``), else the shortest exact repr (``0.2000001``)."""
    short = f"{eps:g}"
    return short if float(short) == eps else repr(float(eps))


def result_stem(card: ModelCard, preset: dict[str, Any], tm: str, eps: float, n: int, seed: int = 0,
                chunk_size: int = NAMING_CHUNK_SIZE, batch_size: int | None = None) -> str:
    """``<preset>-v<version>_<tm>_eps<eps>_n<n>`` plus ``_s<seed>`` (seed != 0), ``_c<chunk>`` (chunk size
    != 250) and ``_b<batch>`` (a batch other than the one the preset fixes): names stay those of the stored
    results for the configurations they hold, and no two configurations share one."""
    stem = f"{preset['name']}-v{preset['version']}_{tm}_eps{eps_token(eps)}_n{n}"
    if seed != 0:
        stem += f"_s{seed}"
    if chunk_size != NAMING_CHUNK_SIZE:
        stem += f"_c{chunk_size}"
    if batch_size is not None and batch_size != preset.get("batch_size"):
        stem += f"_b{batch_size}"
    return stem


def result_path(root: Path, card: ModelCard, preset: dict[str, Any], tm: str, eps: float, n: int, seed: int = 0,
                chunk_size: int = NAMING_CHUNK_SIZE, batch_size: int | None = None) -> Path:
    return root / card.dataset / card.id / (result_stem(card, preset, tm, eps, n, seed, chunk_size, batch_size) + ".json")


def _slot(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config.get(k) for k in SLOT_KEYS} | {"preset": (config.get("preset") or {}).get("name"),
                                                   "preset_version": (config.get("preset") or {}).get("version")}


def _existing_result(out: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result at ``out`` when it is readable (None when absent or unreadable: it is recomputed).

    A readable file that holds another configuration slot (another seed, eps, chunking...) is never
    overwritten: that is one clear line.
    """
    from bench.store import read_json

    if not out.is_file():
        return None
    try:
        existing = read_json(out, "result file", "delete it and rerun", required=REUSE_KEYS)
    except BenchError:
        return None
    old = existing["config"] if isinstance(existing["config"], dict) else {}
    diff = [k for k, v in _slot(config).items() if _slot(old).get(k) != v]
    if diff:
        raise BenchError(f"result file {out} holds another configuration ({', '.join(f'{k}={_slot(old).get(k)!r}' for k in diff)}; "
                         f"this run has {', '.join(f'{k}={_slot(config)[k]!r}' for k in diff)}): move or delete it, then rerun")
    return existing


#: keys a stored result needs to be reused (and printed); one lacking any is recomputed
REUSE_KEYS = ("config_hash", "config", "model_id", "preset", "preset_version", "eps", "n_points", "clean_acc",
              "robust_acc", "own_sg_robust_acc", "flags", "provenance")
_CHUNK_ARRAYS = ("clean_pred", "clean_correct", "robust", "broken_by", "clean_mask")


def _read_chunk(f: Path, n_points: int, names: list[str]) -> tuple[ChunkOutcome, float]:
    """A stored chunk, its seal and shapes checked (one clear line when it is damaged or edited)."""
    from bench.store import read_sealed

    fix = f"delete the folder {f.parent} and rerun the same command"
    d = read_sealed(f, fix)
    try:
        bad = [k for k in _CHUNK_ARRAYS if len(d[k]) != n_points]
        bad += [f"per_attack.{k}" for k in names if len(d["per_attack"][k]) != n_points]
        if bad:
            raise BenchError(f"partial chunk {f} has arrays of the wrong length ({', '.join(bad[:3])}; expected {n_points}): {fix}")
        return _chunk_from_json(d)
    except (KeyError, TypeError, ValueError) as e:
        raise BenchError(f"partial chunk {f} is incomplete ({type(e).__name__}: {e}): {fix}") from None


def _chunk_to_json(o: ChunkOutcome, seconds: float) -> dict[str, Any]:
    return {
        "clean_pred": o.clean_pred.tolist(),
        "clean_correct": o.clean_correct.astype(int).tolist(),
        "robust": o.robust.astype(int).tolist(),
        "broken_by": [str(b) for b in o.broken_by],
        "per_attack": {k: v.astype(int).tolist() for k, v in o.per_attack.items()},
        "violations": o.violations,
        "stats": o.stats,
        "nonfinite_logits": o.nonfinite_logits,
        "max_linf": o.max_linf,
        "passes": o.passes,
        "clean_mask": o.clean_mask.astype(int).tolist(),
        "attack_masks": {k: v.astype(int).tolist() for k, v in o.attack_masks.items()},
        "info": o.info,
        "alive": {k: v.astype(int).tolist() for k, v in o.alive.items()},
        "committed_mask": None if o.committed_mask is None else o.committed_mask.astype(int).tolist(),
        "committed_by": None if o.committed_by is None else [str(b) for b in o.committed_by],
        "seconds": seconds,
    }


def _chunk_from_json(d: dict[str, Any]) -> tuple[ChunkOutcome, float]:
    return (
        ChunkOutcome(
            clean_pred=np.asarray(d["clean_pred"], dtype=np.int64),
            clean_correct=np.asarray(d["clean_correct"], dtype=bool),
            robust=np.asarray(d["robust"], dtype=bool),
            broken_by=np.asarray(d["broken_by"], dtype=object),
            per_attack={k: np.asarray(v, dtype=np.int8) for k, v in d["per_attack"].items()},
            violations=d["violations"],
            stats=d["stats"],
            nonfinite_logits=d["nonfinite_logits"],
            max_linf=d["max_linf"],
            passes=int(d.get("passes", 1)),
            clean_mask=np.asarray(d["clean_mask"], dtype=np.int64) if "clean_mask" in d else None,
            attack_masks={k: np.asarray(v, dtype=np.int64) for k, v in d.get("attack_masks", {}).items()},
            info=d.get("info", {}),
            alive={k: np.asarray(v, dtype=bool) for k, v in d.get("alive", {}).items()},
            committed_mask=None if d.get("committed_mask") is None else np.asarray(d["committed_mask"], dtype=np.int64),
            committed_by=None if d.get("committed_by") is None else np.asarray(d["committed_by"], dtype=object),
        ),
        float(d["seconds"]),
    )


def _merge_info(chunks: list[ChunkOutcome], name: str) -> dict[str, Any]:
    """Attack info over chunks: one value where all chunks agree, else the distinct values joined."""
    out: dict[str, Any] = {}
    for c in chunks:
        for k, v in c.info.get(name, {}).items():
            if k not in out:
                out[k] = v
            elif str(v) not in str(out[k]).split(" | "):
                out[k] = f"{out[k]} | {v}"
    return out


def _merge(chunks: list[ChunkOutcome], names: list[str]) -> ChunkOutcome:
    """Concatenate chunks; attack columns in preset order (stored chunks come back key-sorted)."""
    stats: dict[str, dict[str, int]] = {n: {} for n in names}
    for c in chunks:
        for n in names:
            for k, v in c.stats[n].items():
                stats[n][k] = stats[n].get(k, 0) + v
    passes = {c.passes for c in chunks}
    if len(passes) > 1:
        raise BenchError(f"stored chunks were scored with different numbers of passes {sorted(passes)}: rerun with --force")
    return ChunkOutcome(
        clean_pred=np.concatenate([c.clean_pred for c in chunks]),
        clean_correct=np.concatenate([c.clean_correct for c in chunks]),
        robust=np.concatenate([c.robust for c in chunks]),
        broken_by=np.concatenate([c.broken_by for c in chunks]),
        per_attack={n: np.concatenate([c.per_attack[n] for c in chunks]) for n in names},
        violations={n: sum(c.violations[n] for c in chunks) for n in names},
        stats=stats,
        nonfinite_logits=sum(c.nonfinite_logits for c in chunks),
        max_linf={n: max(c.max_linf[n] for c in chunks) for n in names},
        passes=passes.pop() if passes else 1,
        clean_mask=np.concatenate([c.clean_mask for c in chunks]),
        attack_masks={n: np.concatenate([c.attack_masks[n] for c in chunks]) for n in names},
        info={n: _merge_info(chunks, n) for n in names},
        alive={n: np.concatenate([c.alive.get(n, np.zeros(len(c.clean_pred), dtype=bool)) for c in chunks])
               for n in names if any(n in c.alive for c in chunks)},
        committed_mask=None if any(c.committed_mask is None for c in chunks) else np.concatenate([c.committed_mask for c in chunks]),
        committed_by=None if any(c.committed_by is None for c in chunks) else np.concatenate([c.committed_by for c in chunks]),
    )


def prior_attacks(preset: dict[str, Any], index: int) -> list[str]:
    """The attacks whose survivors attack ``index`` ran on: none (``on = all``), its ``unbroken_by`` list,
    or every earlier attack (``on = unbroken``, the cascade)."""
    spec = preset["attacks"][index]
    if spec.get("unbroken_by"):
        return list(spec["unbroken_by"])
    if spec.get("on") == "all":
        return []
    return [a["name"] for a in preset["attacks"][:index]]


def summarise(o: ChunkOutcome, preset: dict[str, Any]) -> dict[str, Any]:
    """Accuracies in percent: clean, per-point worst case, per attack and per attack family.

    ``per_attack[name]``: ``robust_acc`` (standalone, only for ``on = all``), ``cumulative_robust_acc`` (the
    worst case over this and every earlier attack), ``robust_acc_given`` (against this attack together with
    the attacks whose survivors it ran on, listed in ``given``). ``families``: the same for each ``family``
    group of attacks (an attack without one is its own family). For a stochastic model every accuracy is the
    mean over the scoring passes, and ``*_worst_pass`` keys give the worst pass.
    """
    n = len(o.robust)
    R = o.passes
    acc = lambda names: mask_accuracy(o.mask_of(names), R)  # noqa: E731
    per_attack: dict[str, Any] = {}
    families: dict[str, Any] = {}
    names_so_far: list[str] = []
    for i, spec in enumerate(preset["attacks"]):
        name = spec["name"]
        status = o.per_attack[name]
        names_so_far.append(name)
        standalone = spec["on"] == "all" and not spec.get("unbroken_by")
        given = prior_attacks(preset, i)
        entry = {
            "attack": spec["attack"],
            "rule": spec["rule"] if isinstance(spec["rule"], str) else json.dumps(spec["rule"], sort_keys=True),
            "on": "unbroken_by" if spec.get("unbroken_by") else spec["on"],
            "category": attack_category(spec["attack"]),
            "family": spec.get("family", name),
            "n_attacked": int((status != NOT_RUN).sum()),
            "n_broken": int((status == BROKE).sum()),
            "robust_acc": acc([name])[0] if standalone else None,
            "cumulative_robust_acc": acc(names_so_far)[0],
            "given": given,
            "robust_acc_given": acc([*given, name])[0],
            "stats": o.stats[name],
        }
        if o.info.get(name):
            entry["info"] = o.info[name]
        if R > 1:
            entry["robust_acc_worst_pass"] = acc([name])[1] if standalone else None
            entry["cumulative_robust_acc_worst_pass"] = acc(names_so_far)[1]
        per_attack[name] = entry
        fam = families.setdefault(entry["family"], {"attacks": [], "given": []})
        fam["attacks"].append(name)
        fam["given"] += [g for g in given if g not in fam["given"]]
    for fname, fam in families.items():
        members = fam["attacks"]
        fam["given"] = [g for g in fam["given"] if g not in members]
        broken = np.zeros(n, dtype=bool)
        for m in members:
            broken |= o.per_attack[m] == BROKE
        fam["n_broken"] = int(broken.sum())
        fam["robust_acc_given"] = acc([*fam["given"], *members])[0]
        fam["seconds"] = round(sum(o.stats[m].get("ms", 0) for m in members) / 1000, 1)
    counts = pd.Series(o.broken_by).replace("", "robust").value_counts().sort_index()
    by_attack = {str(k): int(v) for k, v in counts.items() if k not in ("robust", "clean")}
    own = preset.get("own_sg_attack")
    clean_mean, clean_worst = mask_accuracy(o.clean_mask, R)
    robust_mean, robust_worst = mask_accuracy(o.robust_mask, R)
    out = {
        "n_points": n,
        "clean_acc": clean_mean,
        "robust_acc": robust_mean,
        "own_sg_robust_acc": per_attack[own]["robust_acc"] if own else None,
        "per_attack": per_attack,
        "families": families,
        "broken_by_counts": {str(k): int(v) for k, v in counts.items()},
        "top_attack": max(by_attack, key=lambda k: (by_attack[k], k)) if by_attack else None,
        "scoring_passes": R,
    }
    if R > 1:
        out["clean_acc_worst_pass"] = clean_worst
        out["robust_acc_worst_pass"] = robust_worst
        out["clean_acc_per_pass"] = [round(a, 4) for a in pass_accuracies(o.clean_mask, R)]
        if o.committed_by is not None:  # one committed example per point (bench/stochastic.py)
            out["robust_scoring"] = "committed example per point (lowest EOT margin), fresh passes"
            out["committed_by_counts"] = {str(k): int(v) for k, v in pd.Series(o.committed_by).replace("", "clean").value_counts().sort_index().items()}
    return out


def points_frame(o: ChunkOutcome, indices: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "index": indices.astype(np.int64),
            "label": labels.astype(np.int64),
            "clean_pred": o.clean_pred,
            "clean_correct": o.clean_correct.astype(int),
            "robust": o.robust.astype(int),
            "broken_by": o.broken_by.astype(str),
        }
    )
    if o.passes > 1:
        df["clean_passes_correct"] = popcount(o.clean_mask)
        df["robust_passes"] = popcount(o.robust_mask)
        if o.committed_by is not None:
            df["committed_by"] = o.committed_by.astype(str)
    for name, status in o.per_attack.items():
        df[f"attack:{name}"] = status.astype(int)
    return df


def validate_attacks(resolved: dict[str, Any]) -> None:
    """Fail early, with one clear line, on a preset entry the engine cannot run."""
    seen: list[str] = []
    for spec in resolved["attacks"]:
        make_attack(spec)  # unknown attack kind or bad parameters -> BenchError
        for b in spec.get("unbroken_by") or []:
            if b not in seen:
                raise BenchError(f"preset '{resolved['name']}' attack '{spec['name']}': unbroken_by names '{b}', which is not an earlier attack")
        if spec.get("tune"):
            check_tune(spec)
        seen.append(spec["name"])
    check_probe(resolved)


def eps_sweep_config(cfg: dict[str, Any], preset: str, tm: dict[str, Any], resolved: dict[str, Any]) -> dict[str, Any] | None:
    """The preset's ``[presets.<name>.eps_sweep]`` table resolved (None when the preset runs no sweep).

    Keys: ``attacks`` (names of preset attacks, run as a cascade at every eps), ``points`` (the first N test
    points), ``extra_eps`` (added to the threat model's ``eps_sweep``; a large eps such as 0.5 checks that
    accuracy goes to chance, flag 10).
    """
    raw = cfg["presets"][preset].get("eps_sweep")
    if not raw:
        return None
    names = [a["name"] for a in resolved["attacks"]]
    attacks = list(raw.get("attacks") or [])
    unknown = [x for x in attacks if x not in names]
    if not attacks or unknown:
        raise BenchError(f"preset '{preset}' eps_sweep.attacks must name attacks of the preset; unknown: {unknown or '(none given)'}")
    eps_list = sorted({float(e) for e in [*tm.get("eps_sweep", []), *raw.get("extra_eps", [])]})
    if not eps_list:
        raise BenchError(f"preset '{preset}' asks for an eps sweep but threat model '{tm['name']}' lists no eps_sweep")
    return {"attacks": attacks, "points": int(raw.get("points", 200)), "eps": eps_list}


def _tune_all(adapter, resolved, test, eps, batch_size, seed, partial: Path, progress: bool) -> tuple[dict[str, Any], float]:
    """Tune every attack that declares ``tune`` (stored in the partial folder, so a resumed run reuses it).

    Returns the tuning records and the seconds an earlier process spent on the records read back."""
    specs = [a for a in resolved["attacks"] if a.get("tune")]
    if not specs or eps == 0:
        return {}, 0.0
    from bench.store import read_sealed, write_sealed

    f = partial / "tuning.json"
    done: dict[str, Any] = read_sealed(f, f"delete the folder {partial} and rerun") if f.is_file() else {}
    earlier = sum(float(r["seconds"]) for r in done.values())
    todo = [a for a in specs if a["name"] not in done]
    if todo:
        pred, _ = predict(adapter, test.x, batch_size)
        ok = np.flatnonzero((pred == test.y).numpy())
        dev = next(adapter.parameters()).device
        for spec in todo:
            pts = ok[: int(check_tune(spec)["points"])]
            idx = torch.as_tensor(pts)
            t0 = time.time()
            with evaluation_mode(adapter):
                rec = tune_attack(adapter, spec, test.x[idx].to(dev), test.y[idx].to(dev), eps, batch_size, seed)
            rec["seconds"] = round(time.time() - t0, 1)
            done[spec["name"]] = rec
            write_sealed(f, done)
            if progress:
                print(f"  tuned {spec['name']}: {rec['param']} = {rec['value']:g} ({rec['seconds']} s)")
    return done, earlier


def _run_specs(resolved: dict[str, Any], tuned: dict[str, Any]) -> list[dict[str, Any]]:
    """The preset's attacks with tuned rules filled in (the preset itself, and its hash, stay as written)."""
    return [dict(a, rule=tuned[a["name"]]["rule"]) if a["name"] in tuned else a for a in resolved["attacks"]]


def _eps_sweep(adapter, sweep: dict[str, Any], specs, test, batch_size, seed, context, partial: Path, progress: bool) -> dict[str, Any]:
    """Robust accuracy of the sweep's attacks (a cascade) at every sweep eps, on the first ``points`` points."""
    chosen = [dict({k: v for k, v in s.items() if k not in ("unbroken_by", "subset_every")}, on="unbroken") for s in specs if s["name"] in sweep["attacks"]]
    k = min(int(sweep["points"]), len(test.y))
    x, y = test.x[:k], test.y[:k]
    acc: dict[str, float] = {}
    clean = None
    from bench.store import read_sealed, write_sealed

    for e in sweep["eps"]:
        f = partial / f"sweep_eps{eps_token(e)}.json"
        if f.is_file():
            d = read_sealed(f, f"delete the folder {partial} and rerun")
        else:
            t0 = time.time()
            o = run_chunk(adapter, x, y, e, chosen, batch_size, seed, 10_000, context=context)
            d = {"robust": mask_accuracy(o.robust_mask, o.passes)[0], "clean": mask_accuracy(o.clean_mask, o.passes)[0], "seconds": round(time.time() - t0, 1)}
            write_sealed(f, d)
            if progress:
                print(f"  eps sweep {e:g}: {d['robust']:.1f}% ({d['seconds']} s)")
        acc[f"{e:g}"] = d["robust"]
        clean = d["clean"]
    counts = np.bincount(y.numpy().astype(np.int64))
    return {
        "attacks": sweep["attacks"],
        "points": k,
        "clean_acc": clean,
        "robust_acc": acc,
        "majority_class_pct": round(100.0 * float(counts.max()) / max(1, k), 4),
    }


def _eps0_check(adapter, specs, test, batch_size, seed, context) -> dict[str, Any]:
    """Sanity flag 2's numbers: every attack at eps = 0 on a probe of the first points."""
    k = min(EPS0_POINTS, len(test.y))
    o = run_chunk(adapter, test.x[:k], test.y[:k], 0.0, specs, batch_size, seed, 20_000, context=context)
    # a point's outcome changed when some pass it was correct in (clean) is lost against the attack's
    # example: with common random numbers an eps = 0 example reproduces the clean passes exactly
    changed = {}
    for name, st in o.per_attack.items():
        lost = (st != NOT_RUN) & ((o.attack_masks[name] & o.clean_mask) != o.clean_mask)
        if lost.any():
            changed[name] = int(lost.sum())
    out = {
        "points": k,
        "clean_acc": mask_accuracy(o.clean_mask, o.passes)[0],
        "robust_acc": mask_accuracy(o.robust_mask, o.passes)[0],
        "changed_by": changed,
    }
    if o.passes > 1:  # the committed examples are scored on fresh passes: compare means within their spread
        out["tolerance"] = round(spread_tolerance(pass_accuracies(o.clean_mask, o.passes), pass_accuracies(o.robust_mask, o.passes)), 4)
    return out


# -- the pipeline ------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """One evaluation, resolved and validated before any model is built: what decides its result (``config``
    and its hash) and where the result lives. Defaults come from bench.toml ``[defaults]``."""

    card: ModelCard
    preset: dict[str, Any]  # the resolved preset
    threat_model: str
    eps: float
    seed: int
    batch_size: int
    chunk_size: int
    dataset: Any  # bench.data.Dataset
    test: Any  # bench.data.Split: the evaluated points
    sweep: dict[str, Any] | None
    spike: dict[str, Any] | None
    config: dict[str, Any]
    config_hash: str
    device: torch.device
    root: Path
    out: Path

    @property
    def n(self) -> int:
        return len(self.test)

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n / self.chunk_size)

    @property
    def attack_names(self) -> list[str]:
        return [a["name"] for a in self.preset["attacks"]]

    @property
    def partial(self) -> Path:
        """Where finished chunks, tuning and probe records wait until the result is written (resume)."""
        return self.root / ".partial" / self.config_hash


@dataclass
class Prepared:
    """The model built and checked, and the per-model choices made before the cascade (tuning, probe)."""

    adapter: Any  # bench.adapter.SNNAdapter (or the spike-domain wrapper)
    test: Any  # the points as attacked (the encoded spike tensor in the spike-domain threat model)
    stochastic: bool
    context: dict[str, Any]
    tuned: dict[str, Any]
    specs: list[dict[str, Any]]  # the attacks as run (tuned and probed rules filled in)
    probed: Any
    earlier_seconds: float  # tuning / probe work an earlier, interrupted process already did


@dataclass
class ChunkRun:
    outcomes: list[ChunkOutcome]
    seconds: float  # spent by this process
    earlier_seconds: float  # chunks read back from the partial folder
    resumed: int


def _card(model: str | ModelCard) -> ModelCard:
    if isinstance(model, ModelCard):
        if model.path is not None:
            from models_zoo.lookup import check_not_shadowing

            check_not_shadowing(model)
        return model
    from models_zoo.lookup import find_card  # zoo id, accepted-submission id, or card path

    return find_card(model)


def plan_evaluation(model: str | ModelCard, preset: str | None = None, eps: float | None = None, threat_model: str | None = None,
                    limit: int | None = None, device: str = "auto", batch_size: int | None = None, seed: int | None = None,
                    results_root: str | Path | None = None, chunk_size: int | None = None) -> Plan:
    """Resolve and check every input (one clear line for a bad one) and hash the configuration."""
    from bench.limits import check_positive, check_seed

    cfg = load_config()
    defaults = cfg["defaults"]
    card = _card(model)
    preset = preset or defaults["preset"]
    threat_model = threat_model or defaults["threat_model"]
    tm = threat_model_config(threat_model, cfg)
    eps = float(tm["eps"] if eps is None else eps)
    if not math.isfinite(eps) or eps < 0 or eps > 1:
        raise BenchError(f"--eps must be in [0, 1] (images live in [0, 1]), got {eps}")
    resolved = resolve_preset(preset, cfg)
    validate_attacks(resolved)
    sweep = eps_sweep_config(cfg, preset, tm, resolved)
    seed = check_seed(defaults["seed"] if seed is None else seed)
    batch_size = check_positive(batch_size, "--batch-size") or int(resolved.get("batch_size") or defaults["batch_size"])
    chunk_size = check_positive(chunk_size, "--chunk-size") or int(defaults["chunk_size"])
    check_positive(limit, "--limit")
    ds = load_dataset(card.dataset)
    test = ds.test.head(limit)
    config = {
        "engine_version": ENGINE_VERSION,
        "model_id": card.id,
        "model_sha256": card.sha256,
        "dataset": card.dataset,
        "split_hash": test.index_hash,
        "n_points": len(test),
        "threat_model": threat_model,
        "eps": eps,
        "preset": resolved,
        "seed": seed,
        "chunk_size": chunk_size,
        "stochastic_passes": STOCHASTIC_PASSES,
    }
    if "batch_size" in resolved:  # the preset fixes its batch: a result at another --batch-size is another result
        config["batch_size"] = batch_size
    if sweep:
        config["eps_sweep"] = sweep
    check_preset_threat_model(resolved, threat_model)
    spike = spike_domain_config(tm)  # paper-luu's spike-domain threat model (bench/spike_domain.py)
    if spike:
        config["spike_domain"] = spike
    if ".py:" in card.architecture:  # submitter code (bench/custom_arch.py): a stored result is valid only for this code
        from bench.custom_arch import code_path, code_sha256

        cp = code_path(card.architecture, card.path)
        config["code_sha256"] = code_sha256(cp) if cp.is_file() else None
    dev = resolve_device(device)  # validate every input before a stored result can be reused
    root = Path(results_root) if results_root else results_dir(cfg)
    out = result_path(root, card, resolved, threat_model, eps, len(test), seed, chunk_size, config.get("batch_size"))
    return Plan(card, resolved, threat_model, eps, seed, batch_size, chunk_size, ds, test, sweep, spike, config,
                config_hash(config), dev, root, out)


def stored_result(plan: Plan, force: bool = False) -> dict[str, Any] | None:
    """The stored result of exactly this configuration, with its per-point CSV checked (None when absent, or
    with ``force``). A stored file of another configuration at the same path is refused either way."""
    existing = _existing_result(plan.out, plan.config)  # refuses to overwrite another configuration's file
    if force or existing is None or existing.get("config_hash") != plan.config_hash:
        return None
    from bench.store import read_points

    read_points(existing, plan.out)  # the per-point CSV must be this result's (one clear line otherwise)
    return existing


def prepare(plan: Plan, build: Callable[[torch.device, int], Any] | None, progress: bool) -> Prepared:
    """Build the model, check its contract and state, and make the per-model choices (tuning, probe)."""
    adapter = build(plan.device, plan.seed) if build is not None else load_model(plan.card, plan.device, seed=plan.seed)
    try:  # before any attack: a wrong contract or a state leak would be misread as robustness or noise
        adapter.check_contract(plan.dataset.test.x[:16].to(plan.device))
    except BenchError as e:
        raise BenchError(f"model '{plan.card.id}': {e}") from None
    test = plan.test
    if plan.spike:  # attacks perturb the encoded spike tensor: swap in the spike-domain model and test split
        adapter, test = to_spike_domain(adapter, test, plan.spike)
    stochastic = adapter.detect_stochastic(test.x[: min(16, plan.n)].to(plan.device))
    from bench.io import ensure_dir

    partial = ensure_dir(plan.partial)
    tuned, earlier = _tune_all(adapter, plan.preset, test, plan.eps, plan.batch_size, plan.seed, partial, progress)
    specs, probed, probe_earlier = probe_for_run(adapter, plan.preset, _run_specs(plan.preset, tuned), test, plan.eps,
                                                 plan.batch_size, plan.seed, partial, progress)
    context = {"model_id": plan.card.id, "dataset": plan.card.dataset}
    return Prepared(adapter, test, stochastic, context, tuned, specs, probed, earlier + probe_earlier)


def run_chunks(plan: Plan, prep: Prepared, wanted: Sequence[int], progress: bool) -> ChunkRun:
    """The preset's cascade chunk by chunk; a finished chunk is sealed in the partial folder (resume)."""
    from bench.store import write_sealed

    names = plan.attack_names
    run = ChunkRun([], 0.0, 0.0, 0)
    bar = tqdm(total=len(wanted) * len(names), desc=f"{plan.card.id} {plan.preset['name']} eps={plan.eps:g}", disable=not progress, unit="attack")
    for ci in wanted:
        f = plan.partial / f"chunk_{ci:05d}.json"
        sl = slice(ci * plan.chunk_size, (ci + 1) * plan.chunk_size)
        if f.is_file():
            outcome, secs = _read_chunk(f, len(range(plan.n)[sl]), names)
            bar.update(len(names))
            run.earlier_seconds += secs
            run.resumed += 1
        else:
            t0 = time.time()
            outcome = run_chunk(prep.adapter, prep.test.x[sl], prep.test.y[sl], plan.eps, prep.specs, plan.batch_size, plan.seed, ci,
                                on_attack_done=lambda _name: bar.update(1), context=prep.context)
            secs = time.time() - t0
            write_sealed(f, _chunk_to_json(outcome, secs))
        run.outcomes.append(outcome)
        run.seconds += secs
    bar.close()
    return run


def sanity_flags(plan: Plan, prep: Prepared, merged: ChunkOutcome, summary: dict[str, Any], sweep: dict[str, Any] | None,
                 eps0: dict[str, Any]) -> list[dict[str, Any]]:
    """The twelve sanity flags (docs/flags.md), each with the numbers that raised it."""
    adapter, test, card, resolved = prep.adapter, prep.test, plan.card, plan.preset
    probe = test.x[: min(64, plan.n)].to(plan.device)
    _, probe_logits = predict(adapter, probe, plan.batch_size)
    kinds = {a["name"]: a["attack"] for a in resolved["attacks"]}
    standalone = {k: v["robust_acc"] for k, v in summary["per_attack"].items() if v["robust_acc"] is not None}
    own_attacks = own_gradient_attacks(resolved["attacks"])  # the evaluated model's own SG only (flag 7)
    eot = {a["name"]: (max(int(a.get("eot_draws", 1)), 10) if prep.stochastic else int(a.get("eot_draws", 1))) for a in resolved["attacks"]}
    raised = [
        F.eps_ball_violation(merged.violations, merged.max_linf, plan.eps),
        F.eps0_mismatch(eps0),
        F.clean_vs_claim(summary["clean_acc"], None if card.claimed_clean_acc is None else float(card.claimed_clean_acc),
                         plan.n == len(plan.dataset.test), summary.get("clean_acc_per_pass")),
        F.probability_outputs(probe_logits),
        F.stochastic_without_eot(prep.stochastic, eot),
        F.state_leak(adapter, probe[:8], probe[8:16] if len(probe) >= 16 else probe[:8].flip(0)),
        F.zero_gradients(merged.stats, own_attacks),
        F.single_step_beats_iterative(standalone, kinds, {k: pass_accuracies(merged.mask_of([k]), merged.passes) for k in standalone}
                                      if merged.passes > 1 else None),
        F.blackbox_beats_whitebox(merged, resolved),
        F.eps_monotonicity(sweep, plan.eps, summary["robust_acc"]),
        F.sg_sensitivity(merged, resolved),
        F.noise_as_strong(merged, resolved),
    ]
    return [f.to_dict() for f in raised if f is not None]


def write_result(plan: Plan, prep: Prepared, run: ChunkRun, t_start: float, progress: bool = True) -> dict[str, Any]:
    """Merge the chunks, run the eps sweep, the eps = 0 check and the flags, and write the result atomically
    (the per-point CSV first, the JSON that names its hash last); the partial folder is removed."""
    merged = _merge(run.outcomes, plan.attack_names)
    if merged.nonfinite_logits:
        raise BenchError(f"model '{plan.card.id}' produced NaN/inf logits on {merged.nonfinite_logits} clean points: fix the model")
    summary = summarise(merged, plan.preset)
    for name, rec in prep.tuned.items():
        summary["per_attack"][name]["rule_used"] = rec["rule"]
    sweep = (_eps_sweep(prep.adapter, plan.sweep, prep.specs, prep.test, plan.batch_size, plan.seed, prep.context, plan.partial, progress)
             if plan.sweep else None)
    eps0 = _eps0_check(prep.adapter, prep.specs, prep.test, plan.batch_size, plan.seed, prep.context)
    flags = sanity_flags(plan, prep, merged, summary, sweep, eps0)
    robust_count = int(round(summary["robust_acc"] * plan.n / 100))
    reliable = reliability(plan.preset["attacks"], merged.stats, {k: v.get("attacked", 0) for k, v in merged.stats.items()},
                           plan.preset.get("masking_fallback"), {a: robust_count for a in plan.attack_names})
    from bench.io import atomic_write_bytes
    from bench.store import points_csv_bytes, sha256_bytes

    wall = time.time() - t_start
    points_file = plan.out.with_suffix(".points.csv")
    points_bytes = points_csv_bytes(points_frame(merged, prep.test.indices, prep.test.y.numpy()))
    result = {
        "schema": RESULT_SCHEMA,
        "model_id": plan.card.id,
        "family": plan.card.family,
        "dataset": plan.card.dataset,
        "threat_model": plan.threat_model,
        "eps": plan.eps,
        "preset": plan.preset["name"],
        "preset_version": plan.preset["version"],
        "config_hash": plan.config_hash,
        "n_available": len(plan.dataset.test),
        "stochastic": prep.stochastic,
        **summary,
        "tuning": prep.tuned,
        "probe": prep.probed,
        "eps_sweep": sweep,
        "eps0_check": eps0,
        "flags": flags,
        "reliability": reliable,
        "points_file": points_file.name,
        "points_sha256": sha256_bytes(points_bytes),  # the CSV is written first, this JSON last; readers check the pair
        # wall_seconds: this process; total_seconds adds what earlier processes (an interrupted run, or the
        # workers of a sharded one) spent on the chunks and tuning read back from the partial folder
        "provenance": provenance(plan.device, plan.seed, plan.batch_size, plan.chunk_size, wall) | {
            "attack_seconds": round(run.seconds, 2),
            "total_seconds": round(wall + prep.earlier_seconds + run.earlier_seconds, 2),
            "resumed_chunks": run.resumed,
        },
        "config": plan.config,
    }
    atomic_write_bytes(points_file, points_bytes)
    atomic_write_json(plan.out, result)
    shutil.rmtree(plan.partial, ignore_errors=True)
    return result


def evaluate(
    model: str | ModelCard,
    preset: str | None = None,
    eps: float | None = None,
    threat_model: str | None = None,
    limit: int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    seed: int | None = None,
    results_root: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    chunks: Sequence[int] | None = None,
    chunk_size: int | None = None,
    build: Callable[[torch.device, int], Any] | None = None,
) -> tuple[dict[str, Any], Path, bool]:
    """Run (or reuse) one evaluation; return (result, path of its JSON, whether it was reused).

    The pipeline: :func:`plan_evaluation` (inputs checked, configuration hashed; ``None`` means bench.toml
    ``[defaults]``) -> :func:`stored_result` (reuse) -> :func:`prepare` (the input-contract and state-leak check
    of :meth:`bench.adapter.SNNAdapter.check_contract`, per-model tuning, the surrogate probe) ->
    :func:`run_chunks` (the cascade, resumable) -> :func:`write_result` (eps sweep, eps = 0 check, the twelve
    sanity flags, atomic write). ``chunks`` computes only those chunks into the partial folder and writes no
    result (a shard, :func:`compute_shard`); ``build(device, seed)``, when given, returns the model's adapter
    instead of loading the card's checkpoint (an in-memory model, :mod:`bench.api`).
    """
    plan = plan_evaluation(model, preset, eps, threat_model, limit, device, batch_size, seed, results_root, chunk_size)
    stored = stored_result(plan, force)
    if stored is not None:
        return stored, plan.out, True
    if chunks is not None:
        return compute_shard(plan, chunks, build, progress), plan.partial, False
    t_start = time.time()
    prep = prepare(plan, build, progress)
    run = run_chunks(plan, prep, range(plan.n_chunks), progress)
    return write_result(plan, prep, run, t_start, progress), plan.out, False


def compute_shard(plan: Plan, chunks: Sequence[int], build: Callable[[torch.device, int], Any] | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Compute ``chunks`` of the evaluation into its partial folder (``[]``: only the tuning and the probe);
    the worker that merges writes the result (:mod:`bench.shard`)."""
    bad = [c for c in chunks if not 0 <= c < plan.n_chunks]
    if bad:
        raise BenchError(f"chunk indices {bad} out of range: this evaluation has {plan.n_chunks} chunks")
    wanted = sorted(set(chunks))
    prep = prepare(plan, build, progress)
    run = run_chunks(plan, prep, wanted, progress)
    return {"shard": True, "config_hash": plan.config_hash, "chunks": wanted, "n_chunks": plan.n_chunks, "seconds": run.seconds}
