"""The leaderboard per budget: one section per (data set, threat model, eps), from stored results only.

A threat model is part of the section key, so spike-domain results (e.g. ``spike-Linf``, a perturbation
of the encoded spike tensor) are never ranked together with pixel-space ones (``Linf``).

Within a section every model with a result there is a row; each *protocol* (preset, version, number of
points and configuration apart from the model: :func:`bench.matched.protocol_key`) is a column of
worst-case robust accuracies. The ranking column is the worst case under the **strongest protocol that
every row has** (strength: ``full`` > ``standard`` > ``quick`` > any other preset, e.g. a paper protocol;
then more points; then the newer version), so rows are ranked on the same attacks and the same points.
When no protocol covers every row, the one covering the most rows ranks them (the same strength order
breaks ties) and the rows without it are listed unranked below. Ties: clean accuracy, then model id.
The Δ column is the ranking protocol's paired difference to the row's matched baseline
(:mod:`bench.matched`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.stats import wilson_interval
from bench.matched import MatchedCell, Stored
from bench.report_tables import Table

#: gauntlet presets from the strongest to the weakest; other presets rank after them, by name
STRENGTH = ("full", "standard", "quick")
#: budgets the leaderboard always lists for bench.toml's default data set (issue 13: MNIST-5k at three eps),
#: shown as "no results yet" until results exist; any other stored budget gets its section too
BUDGETS: dict[str, tuple[float, ...]] = {"Linf": (0.05, 0.1, 0.2)}

EXPLANATION = [
    "One section per data set, threat model and eps (a spike-domain threat model is its own section, never ranked "
    "with pixel-space results). Ranking column (**bold**): the per-point worst-case robust accuracy under the strongest "
    "protocol that every model of the section was evaluated with (full > standard > quick > other presets; then more "
    "points, then the newer version), so every rank compares the same attacks on the same points; models without that "
    "protocol are listed unranked (`-`) below. The other columns are the worst cases under the section's other protocols. "
    "Δ: the ranking protocol's difference to the model's matched baseline on the same points, with base-only / "
    "defense-only correct points and the exact McNemar p.",
]


def empty_hint(sec: "Section") -> str:
    return f"snnbench eval MODEL --preset quick --eps {sec.eps:g}"


def _strength(proto: tuple) -> tuple:
    preset, version, n = proto[3], proto[4], proto[5]
    rank = STRENGTH.index(preset) if preset in STRENGTH else len(STRENGTH)
    return (rank, preset, -n, -version, proto[6])


def protocol_label(proto: tuple) -> str:
    return f"{proto[3]} v{proto[4]} ({proto[5]} pts)"


@dataclass
class Section:
    dataset: str
    threat_model: str
    eps: float
    protocols: list[tuple]
    key: tuple
    rows: list[dict[str, Any]]

    @property
    def title(self) -> str:
        return f"{self.dataset} · {self.threat_model} · eps={self.eps:g}"


def build_sections(stored: list[Stored], families: dict[str, str] | None = None,
                   default_dataset: str | None = None) -> list[Section]:
    """Every (data set, threat model, eps) section with its ranking (see the module docstring), plus an
    empty section for each of :data:`BUDGETS` of ``default_dataset`` that has no result yet."""
    families = families or {}
    by_section: dict[tuple, dict[tuple, dict[str, Stored]]] = {}
    if default_dataset:
        for tm, eps_list in BUDGETS.items():
            for eps in eps_list:
                by_section[(default_dataset, tm, float(eps))] = {}
    for s in stored:
        r = s.result
        sec = (r["dataset"], r["threat_model"], float(r["eps"]))
        by_section.setdefault(sec, {}).setdefault(s.key, {})[s.model_id] = s
    out = []
    for sec in sorted(by_section):
        protos = by_section[sec]
        if not protos:
            out.append(Section(sec[0], sec[1], sec[2], [], (), []))
            continue
        models = sorted({m for ms in protos.values() for m in ms})
        order = sorted(protos, key=_strength)
        full_cover = [p for p in order if len(protos[p]) == len(models)]
        key = full_cover[0] if full_cover else max(order, key=lambda p: (len(protos[p]), -order.index(p)))
        rows = []
        for m in models:
            kr = protos[key].get(m)
            any_r = kr or next(protos[p][m] for p in order if m in protos[p])
            rows.append({
                "model_id": m,
                "family": families.get(m) or any_r.result.get("family", ""),
                "ranked": kr is not None,
                "clean": any_r.result["clean_acc"],
                "clean_protocol": any_r.key,
                "robust": None if kr is None else float(kr.result["robust_acc"]),
                "n": None if kr is None else int(kr.result["n_points"]),
                "by_protocol": {p: float(protos[p][m].result["robust_acc"]) for p in order if m in protos[p]},
            })
        ranked = sorted((r for r in rows if r["ranked"]), key=lambda r: (-r["robust"], -r["clean"], r["model_id"]))
        unranked = sorted((r for r in rows if not r["ranked"]), key=lambda r: r["model_id"])
        for i, r in enumerate(ranked, 1):
            r["rank"] = i
        for r in unranked:
            r["rank"] = None
        out.append(Section(sec[0], sec[1], sec[2], order, key, ranked + unranked))
    return out


def section_table(sec: Section, matched: dict[tuple, MatchedCell]) -> Table:
    others = [p for p in sec.protocols if p != sec.key]
    headers = ["#", "model", "family", "clean", f"worst case: {protocol_label(sec.key)}", "95% CI", "Δ vs matched baseline"]
    headers += [f"worst case: {protocol_label(p)}" for p in others]
    t = Table(headers, ["num", "str", "str", "num", "num", "num", "str"] + ["num"] * len(others))
    k = sec.key
    for r in sec.rows:
        if r["ranked"]:
            lo, hi = wilson_interval(round(r["robust"] * r["n"] / 100), r["n"])
            ci = (f"[{lo:.1f}, {hi:.1f}]", lo)
            cell = matched.get((r["model_id"], k[0], k[1], k[2], k[3], k[4], k[5]))
            delta = ("-", None) if cell is None else (cell.markdown(), None if cell.paired is None else cell.paired.delta)
            robust = (f"**{r['robust']:.2f}**", r["robust"])
        else:
            ci, delta, robust = ("-", None), ("-", None), ("-", None)
        cells = [("-" if r["rank"] is None else str(r["rank"]), r["rank"]), r["model_id"], r["family"] or "-",
                 (f"{r['clean']:.2f}", r["clean"]), robust, ci, delta]
        for p in others:
            v = r["by_protocol"].get(p)
            cells.append(("-", None) if v is None else (f"{v:.2f}", v))
        t.add(*cells)
    return t


def render_markdown(sections: list[Section], matched: dict[tuple, MatchedCell], heading: str = "##") -> list[str]:
    lines = [f"{heading} Every budget: one section per eps and threat model", "", *EXPLANATION, ""]
    if not sections:
        return lines + ["_No results yet._", ""]
    for sec in sections:
        body = section_table(sec, matched).markdown() if sec.rows else [f"_No results at this budget yet: run `{empty_hint(sec)}`._"]
        lines += [f"{heading}# {sec.title}", "", *body, ""]
    return lines


def render_html(sections: list[Section], matched: dict[tuple, MatchedCell]) -> str:
    import html as _h

    parts = ['<section class="budgets" id="budgets">\n<h2>Every budget: one section per eps and threat model</h2>\n',
             f'<p class="legend">{_h.escape(" ".join(EXPLANATION).replace("**", "").replace("`", ""))}</p>\n']
    for sec in sections:
        parts.append(f"<h3>{_h.escape(sec.title)}</h3>\n")
        if sec.rows:
            parts.append(section_table(sec, matched).html())
        else:
            parts.append(f'<p class="empty">No results at this budget yet: run <code>{_h.escape(empty_hint(sec))}</code>.</p>\n')
    parts.append("</section>\n")
    return "".join(parts)
