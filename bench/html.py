"""``reports/index.html``: the leaderboard as one static page (inline CSS and JS, no network, works from file://).

Every column sorts on a click on its header (numbers numerically, missing values last; a second click
reverses); selects filter the rows by defense family, data set and preset, and a text box by model id.
Flags are badges linking to docs/flags.md with the flag's message as tooltip. The page is a pure,
deterministic function of the leaderboard table (no timestamps).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from bench.leaderboard_table import FLAGS_DOC, GROUP_KEYS, LEGEND, group_title, seeds_cell, short_paper


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _fmt(v: Any, digits: int = 2) -> str:
    f = _num(v)
    return "-" if f is None else f"{f:.{digits}f}"


def _e(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _flags_html(r: Any) -> tuple[str, str]:
    flags = json.loads(r["flag_details"] or "[]")
    badges = []
    for f in flags:
        tip = _e("F%s %s: %s" % (f["id"], f["key"], f["message"]))
        badges.append(f'<a class="badge flag" href="../{FLAGS_DOC}" title="{tip}">F{f["id"]}</a>')
    if r["custom_code"]:
        badges.append('<span class="badge code" title="the architecture is submitted Python code (see the card)">custom code</span>')
    sort = " ".join("F%02d" % f["id"] for f in flags) + (" code" if r["custom_code"] else "")
    return (" ".join(badges) or "-"), sort


#: (header, tooltip, type, cell builder returning (html, sort value))
Column = tuple[str, str, str, Callable[[Any], tuple[str, Any]]]


def _numcell(key: str, digits: int = 2, bold: bool = False) -> Callable[[Any], tuple[str, Any]]:
    def cell(r: Any) -> tuple[str, Any]:
        text = _fmt(r[key], digits)
        return (f"<strong>{text}</strong>" if bold else text), _num(r[key])

    return cell


COLUMNS: list[Column] = [
    ("#", "rank within this table (worst-case robust accuracy, then clean accuracy)", "num", lambda r: (str(r["rank"]), _num(r["rank"]))),
    ("model", "model id (zoo card or accepted submission)", "str", lambda r: (_e(r["model_id"]), r["model_id"])),
    ("family", "defense family", "str", lambda r: (_e(r["family"]), r["family"])),
    ("paper", "the paper the recipe implements", "str",
     lambda r: (f'<span title="{_e(r["paper"])}">{_e(short_paper(r["paper"]) or "-")}</span>', r["paper"])),
    ("T", "time steps", "num", lambda r: (_fmt(r["T"], 0), _num(r["T"]))),
    ("neuron", "neuron model", "str", lambda r: (_e(r["neuron"] or "-"), r["neuron"])),
    ("train SG", "training surrogate gradient (family and width)", "str", lambda r: (_e(r["training_sg"] or "-"), r["training_sg"])),
    ("seed", "training seed", "num", lambda r: (_fmt(r["seed"], 0), _num(r["seed"]))),
    ("clean", "clean accuracy (%)", "num", _numcell("clean_acc")),
    ("own-SG robust", "standalone robust accuracy of the preset's PGD with the model's own surrogate (%)", "num", _numcell("own_sg_robust_acc")),
    ("worst-case robust", "per-point worst case over every attack of the preset (%): the ranking key", "num", _numcell("robust_acc", bold=True)),
    ("gap", "own-SG minus worst-case robust accuracy: a masking signal", "num", _numcell("masking_gap")),
    ("95% CI", "Wilson interval of the worst-case robust accuracy", "num",
     lambda r: (f"[{_fmt(r['robust_ci_low'], 1)}, {_fmt(r['robust_ci_high'], 1)}]", _num(r["robust_ci_low"]))),
    ("Δ vs matched", "worst-case robust accuracy minus the matched baseline's, same points and protocol "
     "(base-only / defense-only correct points, exact McNemar p); '-' = no matched baseline", "num",
     lambda r: (_e(r["matched_text"]), _num(r["matched_delta"]))),
    ("seeds mean ± std", "worst-case robust accuracy over the seeds of the same recipe in this table: mean ± sample std (n)", "num",
     lambda r: (_e(seeds_cell(r)), _num(r["robust_mean"]))),
    ("Omega", "share of clean pre-spike potentials inside the training SG's window (mean over layers)", "num", _numcell("omega", 3)),
    ("Omega adv", "the same on adversarial inputs (PGD, own SG, primary eps)", "num", _numcell("omega_adv", 3)),
    ("firing rate", "mean spike rate over spiking layers, clean inputs", "num", _numcell("firing_rate", 3)),
    ("grad zero", "share of exactly-zero input-gradient entries under the own SG", "num", _numcell("grad_zero_share", 3)),
    ("flags", "sanity flags (docs/flags.md) and badges", "str", _flags_html),
]

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.6em 0 .4em}
p.legend{color:#555;max-width:70em;font-size:.9em}
.filters{display:flex;gap:1em;flex-wrap:wrap;align-items:center;margin:1em 0;padding:.6em;background:#f4f5f7;border-radius:6px}
.filters label{font-size:.9em}select,input{font:inherit;padding:2px 4px}
table.lb{border-collapse:collapse;font-size:.85em;margin-bottom:.5em}
table.lb th,table.lb td{border-bottom:1px solid #e3e3e3;padding:4px 8px;text-align:left;white-space:nowrap}
table.lb td.num,table.lb th.num{text-align:right}
table.lb th{cursor:pointer;user-select:none;background:#fafafa;position:sticky;top:0}
table.lb th:hover{background:#eef}
table.lb th[aria-sort=ascending]::after{content:" \\25B2";font-size:.7em}
table.lb th[aria-sort=descending]::after{content:" \\25BC";font-size:.7em}
table.lb tbody tr:hover{background:#f7f9ff}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:.8em;font-weight:600;text-decoration:none;margin-right:2px}
.badge.flag{background:#fde8c8;color:#8a4b00}.badge.code{background:#e6e0ff;color:#3b2a8a}
#count{color:#555;font-size:.9em}.empty{color:#777}
"""

JS = """
(function () {
  "use strict";
  function cellValue(td, type) {
    var v = td.getAttribute("data-v");
    if (v === null || v === "") { return null; }
    return type === "num" ? parseFloat(v) : v.toLowerCase();
  }
  function sortBy(table, index, th) {
    var type = th.getAttribute("data-type");
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    var ths = table.querySelectorAll("thead th");
    for (var k = 0; k < ths.length; k++) { ths[k].setAttribute("aria-sort", "none"); }
    th.setAttribute("aria-sort", dir);
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var sign = dir === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      var x = cellValue(a.cells[index], type), y = cellValue(b.cells[index], type);
      if (x === null && y === null) { return a.getAttribute("data-i") - b.getAttribute("data-i"); }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      if (x < y) { return -sign; }
      if (x > y) { return sign; }
      return a.getAttribute("data-i") - b.getAttribute("data-i");
    });
    for (var i = 0; i < rows.length; i++) { tbody.appendChild(rows[i]); }
  }
  var tables = document.querySelectorAll("table.lb");
  for (var t = 0; t < tables.length; t++) {
    (function (table) {
      var ths = table.querySelectorAll("thead th");
      for (var i = 0; i < ths.length; i++) {
        (function (th, index) {
          th.addEventListener("click", function () { sortBy(table, index, th); });
          th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, index, th); } });
        })(ths[i], i);
      }
    })(tables[t]);
  }
  var selects = { family: document.getElementById("f-family"), dataset: document.getElementById("f-dataset"), preset: document.getElementById("f-preset") };
  var search = document.getElementById("f-search");
  function apply() {
    var shown = 0;
    var q = search.value.trim().toLowerCase();
    var sections = document.querySelectorAll("section.group");
    for (var s = 0; s < sections.length; s++) {
      var rows = sections[s].querySelectorAll("tbody tr");
      var visible = 0;
      for (var r = 0; r < rows.length; r++) {
        var row = rows[r], ok = true;
        for (var key in selects) {
          var want = selects[key].value;
          if (want && row.getAttribute("data-" + key) !== want) { ok = false; }
        }
        if (q && row.getAttribute("data-model").toLowerCase().indexOf(q) < 0) { ok = false; }
        row.style.display = ok ? "" : "none";
        if (ok) { visible++; }
      }
      sections[s].style.display = visible ? "" : "none";
      shown += visible;
    }
    document.getElementById("count").textContent = shown + " row(s) shown";
  }
  for (var key in selects) { selects[key].addEventListener("change", apply); }
  search.addEventListener("input", apply);
  apply();
})();
"""


def _options(values: list[str], name: str, label: str) -> str:
    opts = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in sorted(set(values)))
    return f'<label>{label} <select id="f-{name}"><option value="">all</option>{opts}</select></label>'


def render_html(df: pd.DataFrame, extra_sections: str = "") -> str:
    """The whole page as one string (deterministic); ``extra_sections`` (HTML: the per-budget sections and
    the claims audit) goes after the ranked tables."""
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n<title>snn-robustbench leaderboard</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n"
        "<h1>snn-robustbench leaderboard</h1>\n"
        '<p class="legend">Generated by <code>snnbench leaderboard</code> from reports/results/ and the model cards; '
        "do not edit by hand. " + " ".join(_e(x.replace("`", "")) for x in LEGEND) + f' Flags: <a href="../{FLAGS_DOC}">{FLAGS_DOC}</a>. '
        'Click a column header to sort; Markdown: <a href="leaderboard.md">leaderboard.md</a>, CSV: '
        '<a href="leaderboard.csv">leaderboard.csv</a>, plots: <a href="plots/">plots/</a>.</p>\n'
    )
    if df.empty:
        families = datasets = presets = []
    else:
        families, datasets, presets = list(df.family.astype(str)), list(df.dataset.astype(str)), list(df.preset.astype(str))
    parts = [
        head,
        '<div class="filters">',
        _options(families, "family", "family"),
        _options(datasets, "dataset", "data set"),
        _options(presets, "preset", "preset"),
        '<label>model <input id="f-search" type="search" placeholder="filter by id"></label>',
        '<span id="count"></span></div>\n',
    ]
    if df.empty:
        parts.append('<p class="empty">No results yet: run <code>snnbench run</code>.</p>\n')
    i = 0
    for key, g in df.groupby(GROUP_KEYS, sort=True):
        ds, _, _, preset = key[0], key[1], key[2], key[3]
        parts.append(f'<section class="group" data-dataset="{_e(ds)}" data-preset="{_e(preset)}">\n<h2>{_e(group_title(key))}</h2>\n')
        parts.append('<table class="lb">\n<thead><tr>')
        for name, tip, typ, _ in COLUMNS:
            cls = ' class="num"' if typ == "num" else ""
            parts.append(f'<th{cls} data-type="{typ}" title="{_e(tip)}" tabindex="0" aria-sort="none">{_e(name)}</th>')
        parts.append("</tr></thead>\n<tbody>\n")
        for _, r in g.iterrows():
            parts.append(
                f'<tr data-i="{i}" data-model="{_e(r["model_id"])}" data-family="{_e(r["family"])}" '
                f'data-dataset="{_e(r["dataset"])}" data-preset="{_e(r["preset"])}">'
            )
            for _, _, typ, build in COLUMNS:
                text, sort = build(r)
                sv = "" if sort is None else (repr(float(sort)) if typ == "num" else _e(sort))
                cls = ' class="num"' if typ == "num" else ""
                parts.append(f'<td{cls} data-v="{sv}">{text}</td>')
            parts.append("</tr>\n")
            i += 1
        parts.append("</tbody>\n</table>\n</section>\n")
    parts.append(extra_sections)
    parts.append(f"<script>{JS}</script>\n</body>\n</html>\n")
    return "".join(parts)
