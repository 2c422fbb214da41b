"""How a measured number is printed with its uncertainty: exponents with their 95%
intervals (``format_exponent``), values with theirs (``format_estimate``) and two numbers
to the digit where they differ (``distinct_digits``). One module, no plotting imports, so
that the command line and the tightness report print the same text as the figures and the
notebook without importing matplotlib.
"""
from __future__ import annotations

import math

__all__ = ["format_exponent", "format_estimate", "distinct_digits"]


def _num(v, decimals):
    r = round(float(v), decimals) + 0.0          # + 0.0: no "-0.00"
    return f"{r:+.{decimals}f}"


def format_exponent(exponent, ci) -> str:
    """``+0.55 [+0.51, +0.59]``; with the fewest decimals (two, up to four) at which the
    interval spans at least two units of the last digit and the rounded exponent lies
    strictly between its rounded ends (when it lies strictly inside the interval), so that
    no printed point sits on its own interval's end (``-1.04 [-1.04, -1.03]`` is printed
    ``-1.038 [-1.043, -1.033]``). An interval narrower than that (half-width under 1e-4) is
    printed as the exponent ``± w``: the exponent to the decimal of its distance to the
    nearer end (five to ten decimals: rounding keeps it inside), w the larger distance of
    the printed value to an end, rounded up to one significant digit, so that the printed
    ``k ± w`` covers the interval: ``+0.95891 ± 2e-05``, ``+0.000000 ± 6e-06``,
    ``+0.979727404 ± 8e-09``; one style for every value resolved past four decimals."""
    lo, hi = float(ci[0]), float(ci[1])
    k = float(exponent)
    half = max(hi - lo, 0.0) / 2
    if half < 1e-4:
        dec = _plus_minus_decimals(k, lo, hi)
        shown = _num(k, dec)
        r = float(shown)              # w covers the interval around the value as printed
        return f"{shown} ± {_round_up_1sig(max(hi - r, r - lo, 0.0))}"
    for dec in (2, 3, 4):
        if half < 10 ** (-dec):
            continue
        r_lo, r_k, r_hi = (round(v, dec) for v in (lo, k, hi))
        if lo < k < hi and not r_lo < r_k < r_hi:
            continue
        break
    return f"{_num(k, dec)} [{_num(lo, dec)}, {_num(hi, dec)}]"


def _round_up_1sig(w: float) -> str:
    """``w`` rounded up to one significant digit, in e-notation (``5.3e-06`` -> ``6e-06``);
    ``0`` for a zero width."""
    if not w > 0:
        return "0"
    e = math.floor(math.log10(w))
    m = math.ceil(w / 10.0 ** e - 1e-9)
    if m >= 10:
        m, e = 1, e + 1
    return f"{m}e{e:+03d}"


def _plus_minus_decimals(k, lo, hi) -> int:
    """Decimals of ``k ± w``: enough that rounding k moves it by at most half its distance
    to the nearer end (so the printed k stays inside), between five and ten; by the
    farther end's distance when k sits on an end."""
    near, far = sorted((max(hi - k, 0.0), max(k - lo, 0.0)))
    d = near if near > 0 else far
    if not d > 0:
        return 10
    return int(min(10, max(5, math.ceil(-math.log10(d)))))


def format_estimate(value, lower, upper, min_digits: int = 3, max_digits: int = 8) -> str:
    """A value with its interval, ``0.2074 [0.1991, 0.2156]``, with the fewest significant
    digits (``min_digits`` up to ``max_digits``) at which the interval spans at least two
    units of the last digit and the rounded value lies strictly between its rounded ends
    when it lies strictly inside: never ``0.0229 [0.0229, 0.0229]`` (printed
    ``0.022905 [0.022903, 0.022907]``). An interval narrower than ``max_digits`` resolve is
    printed ``value ± w`` (w the largest distance to an end, rounded up). Values below 1e-3
    in e-notation."""
    v, lo, hi = float(value), float(lower), float(upper)
    top = max(abs(v), abs(lo), abs(hi))
    mag = math.floor(math.log10(top)) if top > 0 else 0
    half = max(hi - lo, 0.0) / 2

    def fmt(x, sig):
        return f"{x:.{sig - 1}e}" if mag < -3 else f"{x:.{max(sig - 1 - mag, 0)}f}"

    for sig in range(min_digits, max_digits + 1):
        unit = 10.0 ** (mag - sig + 1) if mag < -3 else 10.0 ** -max(sig - 1 - mag, 0)
        if half < unit:
            continue
        r_lo, r_v, r_hi = (float(fmt(x, sig)) for x in (lo, v, hi))
        if lo < v < hi and not r_lo < r_v < r_hi:
            continue
        return f"{fmt(v, sig)} [{fmt(lo, sig)}, {fmt(hi, sig)}]"
    shown = fmt(v, max_digits)
    r = float(shown)                  # w covers the interval around the value as printed
    return f"{shown} ± {_round_up_1sig(max(hi - r, r - lo, 0.0))}"


def distinct_digits(a: float, b: float, min_digits: int = 3, max_digits: int = 12) -> int:
    """The fewest significant digits (``min_digits`` up to ``max_digits``) at which ``a`` and
    ``b`` print differently (so that "measured 0.8114121, exact 0.8114118" shows the gap
    that "0.811412" hides)."""
    for sig in range(min_digits, max_digits + 1):
        if f"{a:.{sig}g}" != f"{b:.{sig}g}":
            return sig
    return max_digits
