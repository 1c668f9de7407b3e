"""snn-robustbench: the engine, CLI, configuration, data, results and leaderboard.

The pipeline has three stages (HELM / lm-evaluation-harness style):
evaluate (writes results with provenance) -> build tables (pure functions of results and model cards)
-> render (Markdown, CSV, HTML, plots). Rendering never runs a model.
"""

__version__ = "0.1.0"
