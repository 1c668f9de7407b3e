"""snn-robustbench: the engine, CLI, configuration, data, results and leaderboard.

The pipeline has three stages (HELM / lm-evaluation-harness style):
evaluate (writes results with provenance) -> build tables (pure functions of results and model cards)
-> render (Markdown, CSV, HTML, plots). Rendering never runs a model.

``bench.benchmark(net, ...)`` (:mod:`bench.api`) evaluates an in-memory model from Python; it is imported
on first use, so ``import bench`` stays light and the engine never imports the API.
"""

from typing import Any

from bench.version import __version__

__all__ = ["Result", "__version__", "benchmark"]


def __getattr__(name: str) -> Any:  # PEP 562: lazy re-export of the Python API
    if name in ("benchmark", "Result"):
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
