"""One small table type rendered both as Markdown and as sortable HTML (for the claims audit and the
per-budget leaderboard sections), so the two reports cannot disagree.

A cell is ``(text, sort value)``: the text is shown (Markdown as is, HTML escaped), the sort value goes to
``data-v`` for :mod:`bench.html`'s column sorting (numbers numerically, ``None`` last).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

Cell = tuple[str, Any]


def _e(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


@dataclass
class Table:
    """Headers, per-column type (``"num"`` right-aligned and numerically sorted, else ``"str"``), rows."""

    headers: list[str]
    types: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    tips: list[str] | None = None

    def add(self, *cells: Cell | str) -> None:
        row = [c if isinstance(c, tuple) else (c, c) for c in cells]
        if len(row) != len(self.headers):
            raise ValueError(f"row has {len(row)} cells, table has {len(self.headers)} columns")
        self.rows.append(row)

    def markdown(self) -> list[str]:
        lines = ["| " + " | ".join(self.headers) + " |",
                 "|" + "|".join("---:" if t == "num" else "---" for t in self.types) + "|"]
        for row in self.rows:
            lines.append("| " + " | ".join(text.replace("|", "\\|") for text, _ in row) + " |")
        return lines

    def html(self) -> str:
        parts = ['<table class="lb">\n<thead><tr>']
        for i, (name, typ) in enumerate(zip(self.headers, self.types)):
            cls = ' class="num"' if typ == "num" else ""
            tip = f' title="{_e(self.tips[i])}"' if self.tips and self.tips[i] else ""
            parts.append(f'<th{cls} data-type="{typ}"{tip} tabindex="0" aria-sort="none">{_e(name)}</th>')
        parts.append("</tr></thead>\n<tbody>\n")
        for i, row in enumerate(self.rows):
            parts.append(f'<tr data-i="{i}">')
            for (text, sort), typ in zip(row, self.types):
                if sort is None or (typ == "num" and not isinstance(sort, (int, float))):
                    sv = ""
                else:
                    sv = repr(float(sort)) if typ == "num" else _e(sort)
                cls = ' class="num"' if typ == "num" else ""
                parts.append(f'<td{cls} data-v="{sv}">{_e(text.replace("**", ""))}</td>')
            parts.append("</tr>\n")
        parts.append("</tbody>\n</table>\n")
        return "".join(parts)
