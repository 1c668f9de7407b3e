"""README's two commands stay true: CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    test_cmd = next(b for b in blocks if "pytest" in b and "\n" not in b)
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_readme_main_command_runs_the_main_job():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    main_cmd = blocks[0]
    assert main_cmd.startswith("python3 -m venv .venv") and main_cmd.endswith("snnbench run")


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    nxt = text.find("\n## ", start + 1)
    return text[start : nxt if nxt != -1 else len(text)]


def test_layout_lists_every_docs_page():
    layout = _section((ROOT / "README.md").read_text(), "Layout")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages and [p for p in pages if p not in layout] == []


def test_readme_says_which_preset_the_leaderboard_shows():
    text = (ROOT / "README.md").read_text()
    board = text[text.index("<!-- leaderboard:start -->") : text.index("<!-- leaderboard:end -->")]
    shown = sorted(set(re.findall(r"· preset (\S+) v\d+ ·", board)))
    assert shown, "the leaderboard block names no preset"
    assert "(the leaderboard's)" not in text
    assert any(f"the leaderboard above shows `{p}`" in text for p in shown), shown


def _numbers(s: str) -> list[str]:
    return re.findall(r"[+-]?\d+\.\d+", s)


@pytest.mark.slow
def test_compare_section_quotes_what_its_command_prints(isolated_outputs, capsys):
    """README's compare figures are the ones `snnbench compare` prints (both with and without --alpha)."""
    from bench.cli import main

    section = _section((ROOT / "README.md").read_text(), "Compare defenses in CI")
    cmd = _bash_blocks(section)[0]
    argv = cmd.split()[1:]
    assert argv[0] == "compare"
    quoted = section[section.index("Run on ") : section.index("[`.github/workflows")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert main([*argv, "--alpha", "0.05"]) == 0
    out_alpha = capsys.readouterr().out
    assert "**PASS**" in out and "**PASS**" in out_alpha and "exit 0" in quoted
    assert "significant (McNemar p = 0.0042 < 0.05)" in out_alpha
    missing = [n for n in _numbers(quoted) if n not in out + out_alpha]
    assert missing == [], f"README quotes {missing}, which the command did not print"
