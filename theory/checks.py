"""Argument checks shared by the library and the command line.

Every check returns the value converted to its canonical type or raises ``ValueError`` with
a one-line message that names the argument and what it must be, so that the command line
can print the message as it is (status 2) and a library caller gets the same words.

    integer("T", "1000", lo=2)          -> 1000
    number("eta", 0.3, positive=True)   -> 0.3
    choice("metric", "tv", METRICS)     -> "tv"
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

__all__ = ["NoExactLaw", "number", "integer", "positive", "nonnegative", "choice"]


class NoExactLaw(ValueError):
    """The request is valid but no exact engine computes it (a sample-based method may)."""


def _as_float(name: str, v) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{name} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return f


def number(name: str, v, *, lo: Optional[float] = None, hi: Optional[float] = None,
           positive: bool = False) -> float:
    """``v`` as a finite float, with optional bounds ``lo <= v <= hi`` and ``v > 0``."""
    f = _as_float(name, v)
    if positive and f <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    if lo is not None and f < lo:
        raise ValueError(f"{name} must be >= {lo:g}, got {v!r}")
    if hi is not None and f > hi:
        raise ValueError(f"{name} must be <= {hi:g}, got {v!r}")
    return f


def integer(name: str, v, *, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """``v`` as an int (``"1e3"`` and ``1000.0`` are accepted, ``2.5`` is not), with bounds."""
    f = _as_float(name, v)
    if not f.is_integer():
        raise ValueError(f"{name} must be an integer, got {v!r}")
    i = int(f)
    if lo is not None and i < lo:
        raise ValueError(f"{name} must be >= {lo}, got {i}")
    if hi is not None and i > hi:
        raise ValueError(f"{name} must be <= {hi}, got {i}")
    return i


def positive(name: str, v) -> float:
    """``v`` as a positive finite float."""
    return number(name, v, positive=True)


def nonnegative(name: str, v) -> float:
    """``v`` as a non-negative finite float."""
    f = _as_float(name, v)
    if f < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {v!r}")
    return f


def choice(name: str, v, options: Iterable[str]) -> str:
    """``v`` if it is one of ``options``; otherwise the message lists them."""
    options = tuple(options)
    if not isinstance(v, str) or v not in options:
        raise ValueError(f"unknown {name} {v!r}; choose from {', '.join(options)}")
    return v
