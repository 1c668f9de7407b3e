"""The leaderboard's artefacts: a pure function of stored results, analyses and model cards (no model is run).

What a table holds and how it is ranked is :mod:`bench.leaderboard_table`'s docstring.

Artefacts: ``reports/leaderboard.md``, ``reports/leaderboard.csv``, ``reports/index.html`` (static page,
see :mod:`bench.html`) and the block between ``<!-- leaderboard:start -->`` and ``<!-- leaderboard:end -->``
in README.md. The output is deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

from bench.config import load_config, reports_dir
from bench.errors import BenchError
from bench.io import atomic_write_text
from bench.leaderboard_table import (  # noqa: F401  (re-exported: the table's API under its old path)
    COLUMNS,
    FLAGS_DOC,
    GROUP_KEYS,
    LEGEND,
    PLOTS_END,
    PLOTS_START,
    README_END,
    README_START,
    RESULT_KEYS,
    SEED_GROUP_KEYS,
    build_table,
    default_readme,
    find_card,
    flag_markdown,
    group_title,
    load_results,
    markdown_tables,
    render_csv,
    render_markdown,
    render_readme_block,
    replace_block,
    seeds_cell,
    short_paper,
    wilson_interval,
)


def render_all(results_root: Path | None = None, include_subsets: bool = False) -> dict[str, str]:
    """File name -> content for every leaderboard artefact (``README.md`` is the marker block only)."""
    from bench import claims as cl
    from bench import eps_sections as es
    from bench.store import load_analyses
    from bench.gauntlet_table import render_gauntlet
    from bench.html import render_html
    from bench.matched import partition_all, is_stale_order, matched_cells, zoo_cards
    from bench.retired import retired_html, retired_ids, retired_section

    stored, stale, retired = partition_all(results_root)
    results = [s.result for s in stored]
    cards = zoo_cards()
    claims = cl.load_claims()
    matched = matched_cells(stored, cards, claims.recipe_baselines())
    df = build_table(results, include_subsets=include_subsets, analyses=load_analyses(results_root), matched=matched)
    families = {cid: c.data["family"] for cid, c in cards.items()}
    sections = es.build_sections(stored, families, load_config()["defaults"]["dataset"])
    _, audits = cl.audit(stored, cards, claims)
    return {
        "gauntlet.md": render_gauntlet(results),
        "claims.md": cl.render_markdown(claims, audits),
        "leaderboard.md": render_markdown(df, es.render_markdown(sections, matched) + stale_section(stale)
                                         + retired_section(retired, retired_ids(cards), {s.path for s in retired if is_stale_order(s)})),
        "leaderboard.csv": render_csv(df),
        "index.html": render_html(df, es.render_html(sections, matched) + cl.render_html_section(claims, audits)
                                   + retired_html(retired, retired_ids(cards))),
        "README.md": render_readme_block(df),
    }


def stale_section(stale: list) -> list[str]:
    """Markdown lines listing the stored results left out as stale (:func:`bench.matched.partition_stored`)."""
    from bench.matched import stale_rerun_commands

    if not stale:
        return []
    lines = ["", "## Stale results, left out", "",
             f"{len(stale)} stored result(s) were attacked in the class-sorted order of before the full-split fix "
             "(docs/presets.md, \"Full-split order\"): single-class batches weaken some attacks, so they are not "
             "ranked or paired. Re-run them (an eval recomputes each, no `--force` needed):", "", "```"]
    lines += sorted(stale_rerun_commands(stale))
    return lines + ["```", ""]


def write_leaderboard(results_root: Path | None = None, out_dir: Path | None = None, include_subsets: bool = False,
                      readme: Path | None = None) -> list[Path]:
    """Write md, csv and html to ``out_dir`` and update the README block (the project README by default)."""
    readme = readme or default_readme(out_dir)
    out_dir = out_dir or reports_dir()
    written = []
    for name, content in render_all(results_root, include_subsets).items():
        if name == "README.md":
            if readme is not None and readme.is_file():
                old = readme.read_text()
                new = replace_block(old, README_START, README_END, content)
                if new != old:
                    atomic_write_text(readme, new)
                written.append(readme)
            continue
        atomic_write_text(out_dir / name, content)
        written.append(out_dir / name)
    return written


def stale_files(results_root: Path | None = None, out_dir: Path | None = None, include_subsets: bool = False,
                readme: Path | None = None) -> list[str]:
    """Names of leaderboard files whose committed content differs from a fresh render."""
    readme = readme or default_readme(out_dir)
    out_dir = out_dir or reports_dir()
    stale = []
    for name, content in render_all(results_root, include_subsets).items():
        if name == "README.md":
            if readme is not None and readme.is_file():
                text = readme.read_text()
                try:
                    fresh = replace_block(text, README_START, README_END, content)
                except BenchError:
                    fresh = None
                if fresh != text:
                    stale.append(name)
            continue
        p = out_dir / name
        if not p.is_file() or p.read_text() != content:
            stale.append(name)
    return stale
