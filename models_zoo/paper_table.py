"""Defense vs matched baseline under each paper's own protocol: ``python -m models_zoo.paper_table``.

Reads the stored results of the paper-protocol presets (bench.toml ``paper-*``; reports/results) for every
zoo card that names a ``matched_baseline`` and prints one markdown row per (defense, preset, threat model,
eps, points): clean and per-attack robust accuracy of the defense and of its baseline, and the difference
of the worst case in points. Only results on the same points (same n) are paired. The claims audit of the
reports side reads the same results; this table is what models_zoo/SWEEPS.md records.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.config import load_config, results_dir
from models_zoo.zoo import list_cards

PAPER_PRESETS = ("paper-sr", "paper-rssnn", "paper-mpd-sgr", "paper-luu")


def stored_results(root: Path, model_id: str) -> list[dict[str, Any]]:
    """Every stored paper-preset result of ``model_id`` (any dataset folder)."""
    out = []
    for f in sorted(root.glob(f"*/{model_id}/paper-*.json")):
        try:
            r = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        if r.get("preset") in PAPER_PRESETS and "per_attack" in r:
            out.append(r)
    return out


def _key(r: dict[str, Any]) -> tuple:
    return (r["preset"], r["preset_version"], r["threat_model"], float(r["eps"]), int(r["n_points"]))


def rows(root: Path | None = None) -> list[dict[str, Any]]:
    root = root or results_dir(load_config())
    out = []
    for card in list_cards():
        mb = card.data.get("matched_baseline")
        if not mb:
            continue
        base = {_key(r): r for r in stored_results(root, mb)}
        for r in stored_results(root, card.id):
            b = base.get(_key(r))
            if b is None:
                continue
            out.append({
                "defense": card.id, "baseline": mb, "preset": r["preset"], "threat_model": r["threat_model"],
                "eps": float(r["eps"]), "n": int(r["n_points"]), "clean": r["clean_acc"], "base_clean": b["clean_acc"],
                "attacks": {k: (v["robust_acc"], b["per_attack"].get(k, {}).get("robust_acc")) for k, v in r["per_attack"].items()},
                "worst": r["robust_acc"], "base_worst": b["robust_acc"],
            })
    return sorted(out, key=lambda d: (d["preset"], d["defense"], d["eps"]))


def markdown(rs: list[dict[str, Any]]) -> str:
    lines = ["| defense | matched baseline | preset | threat model | eps | n | clean (def / base) | per attack robust % (def / base) | worst (def / base) | Δ worst |",
             "|---|---|---|---|---:|---:|---|---|---|---:|"]
    for d in rs:
        att = "; ".join(f"{k} {a:.1f} / {'-' if b is None else f'{b:.1f}'}" for k, (a, b) in d["attacks"].items())
        lines.append(
            f"| {d['defense']} | {d['baseline']} | {d['preset']} | {d['threat_model']} | {d['eps']:.4g} | {d['n']} | "
            f"{d['clean']:.1f} / {d['base_clean']:.1f} | {att} | {d['worst']:.1f} / {d['base_worst']:.1f} | {d['worst'] - d['base_worst']:+.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=None, help="results folder (default: bench.toml's)")
    args = p.parse_args(argv)
    print(markdown(rows(Path(args.results) if args.results else None)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
