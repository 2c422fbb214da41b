"""How the command line writes numbers: at full precision (the shortest text that reads back
as the same float), so that a value and its interval ends never print alike when they
differ."""
from __future__ import annotations

__all__ = ["full", "with_interval"]


def full(x) -> str:
    """``repr`` of the float: every digit it holds (``-`` for a missing value)."""
    return "-" if x is None else repr(float(x))


def with_interval(value, lower, upper) -> str:
    """``value in [lower, upper]`` at full precision."""
    return f"{full(value)} in [{full(lower)}, {full(upper)}]"
