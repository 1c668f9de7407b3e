"""Results attacked in the pre-fix class-sorted full-split order are left out of the reports and listed for a re-run."""

from __future__ import annotations

import numpy as np
from report_fixtures import setup_dirs, write_card, write_result

from bench import leaderboard as lb
from bench.data import class_balanced_order, is_class_sorted
from bench.matched import load_stored, partition_stored

SORTED = np.repeat(np.arange(10), 20)  # 200 points stored class by class, as MNIST-5k's split is


def test_class_sorted_detection():
    assert is_class_sorted(SORTED)
    assert not is_class_sorted(SORTED[class_balanced_order(SORTED)])
    assert not is_class_sorted(np.arange(10))  # one point per class: both orders agree, nothing to flag
    assert not is_class_sorted(np.zeros(50, dtype=int))  # a single class has no order
    assert not is_class_sorted(SORTED[::-1])


def test_stale_result_is_left_out_and_listed(tmp_path, monkeypatch):
    zoo, results = setup_dirs(tmp_path, monkeypatch)
    robust = np.arange(200) % 3 == 0
    for mid in ("old-s0", "new-s0", "nolabel-s0"):
        write_card(zoo, mid, recipe=mid[:-3])
    write_result(results, "old-s0", robust, labels=SORTED)
    write_result(results, "new-s0", robust, labels=SORTED[class_balanced_order(SORTED)])
    write_result(results, "nolabel-s0", robust)  # no label column: order unknown, never judged stale

    current, stale = partition_stored(results)
    assert sorted(s.model_id for s in current) == ["new-s0", "nolabel-s0"]
    assert [s.model_id for s in stale] == ["old-s0"]
    assert sorted(s.model_id for s in load_stored(results)) == ["new-s0", "nolabel-s0"]

    md = lb.render_all(results)["leaderboard.md"]
    table, listed = md.split("## Stale results, left out")
    assert "old-s0" not in table and "new-s0" in table
    assert "snnbench eval old-s0 --preset standard --eps 0.2 --threat-model Linf --seed 0" in listed
    assert "new-s0" not in listed
