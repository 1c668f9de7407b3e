"""Retired zoo entries (a card's `retired`): kept and listed with their numbers, never ranked, paired, audited or run."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from report_fixtures import TEMPLATE, setup_dirs, write_card, write_result

from bench import leaderboard as lb
from bench.cli import main_job_cards
from bench.errors import BenchError
from bench.matched import load_stored, partition_stored, retired_stored
from bench.retired import retired_ids
from models_zoo.cards import validate_card_data
from models_zoo.zoo import list_cards

REASON = "single-step AT overfits here; replaced by new-s0"


def _retire(card_path, reason=REASON):
    text = card_path.read_text()
    i = text.index("\n[")
    card_path.write_text(text[:i] + f'\nretired = "{reason}"' + text[i:])


def test_retired_results_are_listed_not_ranked(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    _retire(write_card(zoo, "old-s0", recipe="old"))
    write_card(zoo, "new-s0", recipe="new")
    write_result(results, "old-s0", np.arange(200) % 2 == 0)
    write_result(results, "new-s0", np.arange(200) % 3 == 0)

    assert retired_ids() == {"old-s0": REASON}
    current, stale = partition_stored(results)
    assert [s.model_id for s in current] == ["new-s0"] and stale == []
    assert [s.model_id for s in load_stored(results)] == ["new-s0"]
    assert [s.model_id for s in retired_stored(results)] == ["old-s0"]

    out = lb.render_all(results)
    ranked, listed = out["leaderboard.md"].split("## Retired entries")
    assert "old-s0" not in ranked and "new-s0" in ranked
    assert REASON in listed and "| old-s0 | standard-v3 | Linf | 0.2 | 200 | 100.00 | 50.00 | - |" in listed
    assert "old-s0" not in out["leaderboard.csv"]
    page, retired_list = out["index.html"].split('<section class="retired"')
    assert "old-s0" not in page and "<strong>old-s0</strong>: " + REASON in retired_list


def test_no_retired_section_without_retired_entries(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    write_card(zoo, "new-s0", recipe="new")
    write_result(results, "new-s0", np.arange(200) % 3 == 0)
    assert "## Retired entries" not in lb.render_all(results)["leaderboard.md"]


def test_main_job_skips_retired_entries(tmp_path, monkeypatch):
    zoo, _ = setup_dirs(tmp_path, monkeypatch)
    _retire(write_card(zoo, "old-s0", recipe="old"))
    write_card(zoo, "new-s0", recipe="new")
    write_card(zoo, "new-s1", recipe="new", seed=1)
    cards = list_cards()
    assert [c.id for c in main_job_cards(cards, "mnist5k")] == ["new-s0"]
    assert [c.id for c in main_job_cards(cards, "mnist5k", all_seeds=True)] == ["new-s0", "new-s1"]


def test_retired_must_be_text():
    data = tomllib.loads(TEMPLATE.read_text())
    data["retired"] = True
    with pytest.raises(BenchError, match="retired"):
        validate_card_data(data)
