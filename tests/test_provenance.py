"""Provenance's git commit: the code's state, taken once at the start of a run, not dirtied by the run's own writes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bench import provenance as P


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A clean git repository with a code file and a tracked result under reports/."""
    root = tmp_path / "clone"
    (root / "reports" / "results").mkdir(parents=True)
    (root / "code.py").write_text("x = 1\n")
    (root / "reports" / "results" / "old.json").write_text("{}\n")
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    return root


def test_reports_do_not_dirty_the_code_but_code_does(repo):
    head = _git(repo, "rev-parse", "HEAD")
    assert P.read_git_commit(repo) == head
    (repo / "reports" / "results" / "old.json").write_text('{"changed": 1}\n')  # a run rewrote a tracked result
    (repo / "reports" / "leaderboard.md").write_text("new\n")
    assert P.read_git_commit(repo) == head
    (repo / "code.py").write_text("x = 2\n")
    assert P.read_git_commit(repo) == head + "-dirty"


def test_commit_is_taken_once_and_shared_through_the_environment(repo, monkeypatch):
    monkeypatch.delenv(P.COMMIT_ENV, raising=False)
    monkeypatch.setattr(P, "PROJECT_ROOT", repo)
    head = _git(repo, "rev-parse", "HEAD")
    assert P.git_commit() == head
    (repo / "code.py").write_text("x = 3\n")  # changed mid-run: the run's snapshot stays what it started with
    assert P.git_commit() == head and P.read_git_commit(repo) == head + "-dirty"
    assert os.environ[P.COMMIT_ENV] == head  # what spawned worker processes inherit


def test_a_run_writing_several_results_in_a_clean_clone_records_a_clean_commit(repo, digits_card, monkeypatch):
    """A fresh clone's main job: results are tracked, the run rewrites them one after another."""
    from bench.evaluate import evaluate

    monkeypatch.setattr(P, "PROJECT_ROOT", repo)
    results = repo / "reports" / "results"
    monkeypatch.setenv("SNNBENCH_RESULTS_DIR", str(results))
    monkeypatch.delenv(P.COMMIT_ENV, raising=False)
    first, path, _ = evaluate(digits_card, eps=0.1, limit=8, device="cpu", results_root=results, progress=False)
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")  # the results are committed, as in the repo
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "results")
    head = _git(repo, "rev-parse", "HEAD")
    monkeypatch.delenv(P.COMMIT_ENV, raising=False)  # a new run in the clean clone
    recorded = []
    for eps in (0.1, 0.05, 0.02):  # the first rewrites a tracked result before the others are written
        result, p, reused = evaluate(digits_card, eps=eps, limit=8, device="cpu", results_root=results, force=True, progress=False)
        assert not reused
        recorded.append(json.loads(p.read_text())["provenance"]["git_commit"])
    assert _git(repo, "status", "--porcelain", "--untracked-files=no")  # the run did change tracked files
    assert recorded == [head, head, head]
