"""Retired zoo entries: cards kept (their checkpoints still evaluate) whose results no longer rank.

Issue 13 asks to "retire results that the new recipes replace": an entry whose recipe was superseded by a
more faithful one (e.g. RSSNN's adversarial training with single-step RFGSM, which overfits catastrophically
here, replaced by the multi-step PGD recipe) carries a top-level ``retired = "<why; what replaces it>"`` in
its card. Its stored results are then left out of every ranked table, matched pair, claims row and plot
(:func:`bench.matched.partition_stored`; :func:`bench.matched.retired_stored` returns them), and listed, with their numbers, under "Retired entries" in
``reports/leaderboard.md``: nothing measured is hidden, and nothing retired is ranked. ``snnbench run``
skips retired entries; ``snnbench eval <id>`` still evaluates one on request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models_zoo.cards import retired_reason

__all__ = ["retired_reason", "retired_ids", "retired_section", "retired_html"]


def retired_ids(cards: dict[str, Any] | None = None) -> dict[str, str]:
    """Zoo id -> retirement reason, for every retired card (zoo and accepted submissions)."""
    from models_zoo.lookup import all_cards

    cards = dict(all_cards()) if cards is None else cards
    return {cid: r for cid, c in cards.items() if (r := retired_reason(c))}


def _by_reason(retired: list, reasons: dict[str, str] | None) -> dict[str, list]:
    """Retired results grouped by their entry's reason (seeds of one recipe share it)."""
    reasons = retired_ids() if reasons is None else reasons
    groups: dict[str, list] = {}
    for s in retired:
        groups.setdefault(reasons.get(s.model_id, "retired"), []).append(s)
    return groups


def retired_section(retired: list, reasons: dict[str, str] | None = None, stale_paths: set[Path] | None = None) -> list[str]:
    """Markdown lines: each retired entry's reason (grouped when several seeds share it) and its stored results,
    not ranked. A result whose path is in ``stale_paths`` (attacked in the pre-fix class-sorted order,
    :func:`bench.matched.is_stale_order`) is marked."""
    stale_paths = stale_paths or set()
    if not retired:
        return []
    by_reason = _by_reason(retired, reasons)
    models = {s.model_id for s in retired}
    lines = ["", "## Retired entries", "",
             f"{len(models)} zoo entr{'y' if len(models) == 1 else 'ies'} replaced by newer recipes (the card's "
             "`retired`, bench/retired.py). Their results are kept and listed here, never ranked, paired or "
             "plotted; `snnbench eval <id>` still evaluates them.", ""]
    for reason, group in sorted(by_reason.items(), key=lambda kv: min(s.model_id for s in kv[1])):
        ids = sorted({s.model_id for s in group})
        lines += [f"- **{', '.join(ids)}**: {reason}", "",
                  "  | model | preset | threat model | eps | points | clean | robust | order |",
                  "  |---|---|---|---:|---:|---:|---:|---|"]
        def key(s):
            r = s.result
            return (s.model_id, str(r["preset"]), int(r["preset_version"]), str(r["threat_model"]), float(r["eps"]), int(r["n_points"]))
        for s in sorted(group, key=key):
            r = s.result
            order = "class-sorted (pre-fix)" if s.path in stale_paths else "-"
            lines.append(f"  | {s.model_id} | {r['preset']}-v{r['preset_version']} | {r['threat_model']} | {float(r['eps']):g} | "
                         f"{int(r['n_points'])} | {float(r['clean_acc']):.2f} | {float(r['robust_acc']):.2f} | {order} |")
        lines.append("")
    return lines


def retired_html(retired: list, reasons: dict[str, str] | None = None) -> str:
    """The HTML page's short list of retired entries and why (their numbers: leaderboard.md)."""
    import html as _h

    if not retired:
        return ""
    groups = sorted(_by_reason(retired, reasons).items(), key=lambda kv: min(x.model_id for x in kv[1]))
    items = "".join(f"<li><strong>{_h.escape(', '.join(sorted({x.model_id for x in group})))}</strong>: {_h.escape(reason)}</li>\n"
                    for reason, group in groups)
    return ('<section class="retired" id="retired">\n<h2>Retired entries</h2>\n'
            '<p class="legend">Replaced by newer recipes; never ranked, paired or plotted. Their stored results: '
            '<a href="leaderboard.md#retired-entries">leaderboard.md</a>.</p>\n'
            f"<ul>\n{items}</ul>\n</section>\n")
