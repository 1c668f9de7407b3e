"""Shared fixtures: a tiny spiking MLP trained on scikit-learn's 8x8 digits (seconds on a CPU)."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def digits_card(tmp_path_factory):
    """A trained `smlp` SNN on digits, registered in a temporary zoo folder (card + checkpoint)."""
    from models_zoo.training import train

    out = tmp_path_factory.mktemp("zoo")
    return train(
        "baseline",
        "digits",
        seed=0,
        out_dir=out,
        overrides={"architecture": "smlp", "architecture_args": {"hidden": [64]}, "epochs": 4, "lr": 5e-3},
        progress=False,
    )


@pytest.fixture()
def digits_model(digits_card):
    from models_zoo.zoo import load_model

    return load_model(digits_card, "cpu")


@pytest.fixture(scope="session")
def digits_data():
    from bench.data import load_dataset

    return load_dataset("digits")


@pytest.fixture()
def isolated_outputs(tmp_path, monkeypatch):
    """Route results and reports to a temporary folder."""
    monkeypatch.setenv("SNNBENCH_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("SNNBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path
