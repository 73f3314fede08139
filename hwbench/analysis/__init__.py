"""Reading finished runs to decide things: compare, qualify, report, history, repeats.

Nothing here times a backend: every figure comes from result documents and the files beside them.
"""
from __future__ import annotations

from hwbench.analysis.frame import runs_frame

__all__ = ["runs_frame"]
