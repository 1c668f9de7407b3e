"""One exception type for every user-facing failure.

Every bad input (missing file, wrong hash, wrong shapes, NaN logits, unknown names...) raises
:class:`BenchError` with a single line that says what is wrong and how to fix it; the CLI prints that
line and exits with status 2, without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A user-facing error: its message is one line saying what is wrong and how to fix it."""


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> BenchError:
    """Build the error for an unknown registry name, with a "did you mean" suggestion."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" did you mean '{close[0]}'?" if close else ""
    return BenchError(f"unknown {kind} '{name}':{hint} known: {', '.join(known)}")
