"""reports/index.html in a real headless browser (Debian's chromium driven by playwright).

Marked ``browser``; skipped when playwright (``pip install -e '.[browser]'``) or a chromium binary
(``apt-get install chromium``) is missing. playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil

import pytest

import bench.leaderboard as lb
from bench.html import render_html

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SNNBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def _result(model, robust, clean, family, flags=()):
    return {
        "model_id": model, "family": family, "dataset": "mnist5k", "threat_model": "Linf", "eps": 0.2, "preset": "quick",
        "preset_version": 1, "config_hash": model, "n_points": 1000, "n_available": 1000, "clean_acc": clean,
        "robust_acc": robust, "own_sg_robust_acc": robust + 5, "flags": [{"id": i, "key": "k", "message": "m"} for i in flags],
    }


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    results = [_result("alpha", 10.0, 97.0, "baseline"), _result("bravo", 30.0, 95.0, "mpd-sgr", flags=(8,)),
               _result("charlie", 20.0, 99.0, "sr"), _result("delta", 25.0, 93.5, "mpd-sgr")]
    path = tmp_path_factory.mktemp("html") / "index.html"
    path.write_text(render_html(lb.build_table(results)))
    return path


@pytest.fixture(scope="module")
def chromium_browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[browser]'")
    if not CHROMIUM:
        pytest.skip("no chromium binary: apt-get install chromium (or set SNNBENCH_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _column(page, header):
    idx = page.eval_on_selector_all("table.lb thead th", f"ths => ths.findIndex(th => th.textContent === {header!r})")
    return page.eval_on_selector_all("table.lb tbody tr", f"rows => rows.map(r => r.cells[{idx}].textContent)")


def test_page_loads_without_errors_and_sorts_and_filters(chromium_browser, page_file):
    page = chromium_browser.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    assert page.title() == "snn-robustbench leaderboard"
    assert _column(page, "model") == ["bravo", "delta", "charlie", "alpha"]  # ranked by worst-case robust
    assert page.inner_text("#count") == "4 row(s) shown"

    page.click("th:text-is('clean')")
    assert _column(page, "clean") == ["93.50", "95.00", "97.00", "99.00"]
    assert page.get_attribute("th:text-is('clean')", "aria-sort") == "ascending"
    page.click("th:text-is('clean')")
    assert _column(page, "clean") == ["99.00", "97.00", "95.00", "93.50"]
    page.click("th:text-is('model')")
    assert _column(page, "model") == ["alpha", "bravo", "charlie", "delta"]
    assert page.get_attribute("th:text-is('clean')", "aria-sort") == "none"

    page.select_option("#f-family", "mpd-sgr")
    visible = page.eval_on_selector_all("table.lb tbody tr", "rows => rows.filter(r => r.offsetParent !== null).map(r => r.dataset.model)")
    assert visible == ["bravo", "delta"] and page.inner_text("#count") == "2 row(s) shown"
    page.select_option("#f-family", "")
    page.fill("#f-search", "char")
    assert page.inner_text("#count") == "1 row(s) shown"
    assert page.get_attribute("a.badge.flag", "href") == "../docs/flags.md"
    assert problems == []
    page.close()
