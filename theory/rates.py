r"""Rate fits: exponents of a distance against T, d or eps, with confidence intervals.

A measured curve :math:`D(x)` is fitted by :math:`\log D = \log C + k \log x` (ordinary least
squares on the points with ``x`` in the stated range). With exact distances the scatter
about the line is not sampling noise but curvature (lower-order terms, logarithmic
factors), so the interval reported is the regression's 95% t-interval from the residuals
*widened* by the numerical error bars of the points (propagated through the fit): it says
how well a single power law describes the curve over that range. The range is always
stored with the fit.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["RateFit", "fit_exponent", "fit_points", "scaled_points", "asymptotic_range_start",
           "settled_range_start", "fit_geometric_rate", "geometric_rate_drift",
           "geometric_rate_verdict", "verdict", "LOG_TOLERANCE"]

# An exponent within this of a bound's counts as consistent with it: the theorems ignore
# log factors, whose local slope on a finite range is a few hundredths.
LOG_TOLERANCE = 0.05


@dataclass
class RateFit:
    """``D ~ C x^exponent`` over ``x_range``; ``ci`` is a 95% interval for the exponent."""

    exponent: float
    ci: tuple
    prefactor: float
    x_range: tuple
    n_points: int
    r2: float
    method: str = "OLS on log-log, 95% t-interval + propagated numerical error"

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of :meth:`to_dict`; ``None`` for a failed fit (no ``exponent``)."""
        if "exponent" not in d:
            return None
        return cls(**{**d, "ci": tuple(d["ci"]), "x_range": tuple(d["x_range"])})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        d["x_range"] = list(self.x_range)
        return d

    def __str__(self) -> str:
        return (f"{self.exponent:+.3f} [{self.ci[0]:+.3f}, {self.ci[1]:+.3f}] "
                f"over x in [{self.x_range[0]:g}, {self.x_range[1]:g}] ({self.n_points} points)")


def _power_law_points(x, value, x_min=None, x_max=None):
    """``(x, y, keep)``: float arrays and the mask of the points a power-law fit can use
    (finite, x > 0 and y > 0, inside ``[x_min, x_max]``)."""
    x = np.asarray(x, float)
    y = np.asarray(value, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if x_min is not None:
        keep &= x >= x_min
    if x_max is not None:
        keep &= x <= x_max
    return x, y, keep


def fit_exponent(x, value, lower=None, upper=None, x_min=None, x_max=None) -> RateFit:
    """Fit ``value ~ C x^k`` on points with ``x_min <= x <= x_max`` and positive values.

    ``lower``/``upper`` (optional) are the points' numerical intervals; their effect on the
    slope is added to the half-width of the interval.
    """
    x, y, keep = _power_law_points(x, value, x_min, x_max)
    if keep.sum() < 3:
        raise ValueError(f"need at least 3 positive points in range to fit, got {int(keep.sum())}")
    k, half, c0, r2 = _line_fit(np.log(x[keep]), y[keep],
                                None if lower is None else np.asarray(lower, float)[keep],
                                None if upper is None else np.asarray(upper, float)[keep])
    return RateFit(k, (k - half, k + half), float(math.exp(c0)),
                   (float(x[keep].min()), float(x[keep].max())), int(keep.sum()), r2)


def _line_fit(lx, y, lo=None, hi=None):
    """OLS of log y on ``lx``: (slope, half-width of its 95% interval widened by the points'
    error bars, intercept, R^2)."""
    ly = np.log(y)
    n = lx.size
    A = np.vstack([np.ones(n), lx]).T
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - A @ coef
    dof = n - 2
    sxx = float(((lx - lx.mean()) ** 2).sum())
    s2 = float((resid ** 2).sum() / dof) if dof > 0 else 0.0
    half = float(stats.t.ppf(0.975, dof) * math.sqrt(s2 / sxx)) if dof > 0 else float("inf")
    if lo is not None and hi is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            sig = np.maximum(np.log(np.maximum(hi, y)) - ly,
                             ly - np.log(np.maximum(lo, 1e-300)))
        sig = np.where(np.isfinite(sig), sig, 0.0)
        # worst-case shift of the slope by the error bars: sum |d slope / d y_i| * sig_i
        lever = np.abs(lx - lx.mean()) / sxx
        half += float((lever * sig).sum())
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return float(coef[1]), half, float(coef[0]), r2


def fit_points(x, points, x_min=None, x_max=None) -> dict:
    """:func:`fit_exponent` of result dicts (``value``, ``lower``, ``upper`` each) against
    ``x``, as a dict: the fit's :meth:`RateFit.to_dict`, or ``{"error": reason}`` where no
    power law can be fitted (fewer than 3 points in range)."""
    try:
        return fit_exponent(x, [p["value"] for p in points], [p["lower"] for p in points],
                            [p["upper"] for p in points], x_min=x_min, x_max=x_max).to_dict()
    except ValueError as exc:
        return {"error": str(exc)}


def scaled_points(points, divisors) -> list:
    """The result dicts with value and interval divided by ``divisors`` (one per point), e.g.
    TV / log(T)^k for a fit that ignores log factors."""
    return [{k: p[k] / float(s) for k in ("value", "lower", "upper")}
            for p, s in zip(points, divisors)]


def asymptotic_range_start(x, values, x_min, value_max) -> float:
    """The smallest x from which a decaying curve is in its power-law regime: ``>= x_min``
    and past every point whose value still exceeds ``value_max`` (a saturated distance near
    1 follows no power law)."""
    big = [xi for xi, v in zip(x, values) if v > value_max]
    return max([x_min] + [xi + 1 for xi in big])


def settled_range_start(x, values, x_min=None, x_max=None, tol=LOG_TOLERANCE,
                        min_points=3):
    """The smallest x (``>= x_min``) from which the curve is a settled power law up to
    ``x_max``: every local slope of log ``values`` between neighbouring points from there on
    lies within ``tol`` of the least-squares slope over that range, which holds at least
    ``min_points`` positive points. ``None`` when no such start exists (the local slope still
    drifts by more than ``tol`` over every range of ``min_points`` points or more: no
    exponent can be read off, the curve is not resolved).

    A pre-asymptotic plateau or bend (a local slope far from the later one) is thereby left
    out of the fit, whatever its place: the rule, not a hand-picked range, moves the start.
    """
    x, y, keep = _power_law_points(x, values, x_min, x_max)
    order = np.argsort(x[keep])
    xs = x[keep][order]
    lx, ly = np.log(xs), np.log(y[keep][order])
    for i in range(lx.size - min_points + 1):
        slope = np.polyfit(lx[i:], ly[i:], 1)[0]
        local = np.diff(ly[i:]) / np.diff(lx[i:])
        if np.all(np.abs(local - slope) <= tol):
            return float(xs[i])
    return None


def local_slopes(x, value, k=0, x_range=None) -> list:
    """Slopes of log(value / log(x)^k) between neighbouring points, ``[(x0, x1, slope)]`` in
    the order given; with ``x_range = (lo, hi)`` only the pairs inside it (a fit's range:
    what :func:`verdict` reads to withhold a violation on a range still steepening)."""
    x = np.asarray(x, float)
    q = np.asarray(value, float) / np.log(x) ** k
    out = [(float(x[i]), float(x[i + 1]),
            float(np.log(q[i + 1] / q[i]) / np.log(x[i + 1] / x[i])))
           for i in range(len(x) - 1) if q[i] > 0 and q[i + 1] > 0]
    if x_range is not None:
        out = [sl for sl in out if x_range[0] <= sl[0] and sl[1] <= x_range[1]]
    return out


def fit_geometric_rate(k, value, lower=None, upper=None, k_min=None, k_max=None) -> dict:
    r"""Fit ``value ~ C rho^k`` (geometric decay in an integer step k) by OLS of log value on
    k over ``k_min <= k <= k_max``; the interval is the regression's 95% t-interval widened
    by the points' error bars (as :func:`fit_exponent`), mapped through
    :math:`\rho = e^{\text{slope}}`. Returns ``{"rate", "ci", "k_range", "n_points"}`` or
    ``{"error": reason}`` with fewer than 3 positive points in range."""
    k = np.asarray(k, float)
    y = np.asarray(value, float)
    keep = np.isfinite(k) & np.isfinite(y) & (y > 0)
    if k_min is not None:
        keep &= k >= k_min
    if k_max is not None:
        keep &= k <= k_max
    if keep.sum() < 3:
        return {"error": f"need at least 3 positive points in range to fit, got {int(keep.sum())}"}
    slope, half, _, _ = _line_fit(k[keep], y[keep],
                                  None if lower is None else np.asarray(lower, float)[keep],
                                  None if upper is None else np.asarray(upper, float)[keep])
    return {"rate": math.exp(slope), "ci": [math.exp(slope - half), math.exp(slope + half)],
            "k_range": [int(k[keep].min()), int(k[keep].max())], "n_points": int(keep.sum())}


def geometric_rate_drift(k, value, lower=None, upper=None, k_range=None):
    r"""How far a geometric fit over ``k_range = (k0, k1)`` is from settled: the absolute
    difference of the rates fitted (:func:`fit_geometric_rate`) over its first and its second
    half, ``|rho[k0, m] - rho[m, k1]|`` with ``m = (k0 + k1) // 2``. A curve ``C rho^k (1 +
    c (lambda_3 / rho)^k)`` is still bending over the range and its fitted rate carries a
    bias of about this size; ``None`` when a half has fewer than 3 points."""
    k0, k1 = int(k_range[0]), int(k_range[1])
    mid = (k0 + k1) // 2
    a = fit_geometric_rate(k, value, lower, upper, k_min=k0, k_max=mid)
    b = fit_geometric_rate(k, value, lower, upper, k_min=mid, k_max=k1)
    if "error" in a or "error" in b:
        return None
    return abs(a["rate"] - b["rate"])


def geometric_rate_verdict(ci, exact: float, exact_error: float = 0.0, drift=None) -> str:
    """Compare a measured geometric rate's 95% interval ``ci`` with the exact rate
    ``exact +- exact_error`` (e.g. a kernel's second eigenvalue and its refinement error).

    ``consistent`` when the two intervals meet; ``consistent within the fit's drift`` when
    they meet once the measured interval is widened on each side by ``drift`` (the fit range
    is pre-asymptotic by that much, :func:`geometric_rate_drift`); otherwise ``differs``
    with the relative gap."""
    lo, hi = float(ci[0]), float(ci[1])
    elo, ehi = exact - exact_error, exact + exact_error
    if lo <= ehi and elo <= hi:
        return "consistent"
    w = 0.0 if drift is None else float(drift)
    if lo - w <= ehi and elo <= hi + w:
        return "consistent within the fit's drift"
    gap = (lo - ehi) if lo > ehi else (elo - hi)
    return f"differs: by {gap / exact:.1e} relative beyond the interval" + (
        "" if drift is None else " and the drift")


# what "loose by a factor x^a" in a verdict means, for figure keys
LOOSE_KEY = ("'loose by a factor x^a or more': a = the distance from the bound's exponent to "
             f"the interval's end, less the {LOG_TOLERANCE:g} allowed for log factors")


def verdict(bound: float, ci, larger_is_better: bool = False, var: str = "x",
            tol: float = LOG_TOLERANCE, local=None) -> str:
    """Compare a bound ``D <~ x^bound`` with a measured exponent interval ``ci``.

    ``consistent`` when the bound's exponent lies in the interval widened by ``tol``;
    ``bound loose by a factor x^a or more`` when the whole interval is on the good side
    (smaller exponents are better for a growing x such as T or d; larger ones for a
    vanishing x such as eps, ``larger_is_better``, whose factor is written ``(1/eps)^a``:
    it grows as eps -> 0); otherwise ``violated: worse by ...``.

    A "violated" verdict is only declared on a settled fit range: given ``local`` (the
    local slopes over the fit range, in order of x), when every one of them lies on the
    violated side of the bound and each lies closer to the bound than the one before (the
    curve still steepening toward it), the fit is pre-asymptotic and the verdict is
    ``not resolved (pre-asymptotic: local slope still steepening)``.
    """
    lo, hi = float(ci[0]), float(ci[1])
    if lo - tol <= bound <= hi + tol:
        return "consistent"
    better = hi < bound if not larger_is_better else lo > bound
    gap = (bound - hi - tol) if hi < bound else (lo - bound - tol)
    # the factor grows as the variable does (T, d) or as it vanishes (eps, eta: 1/eps)
    base = f"(1/{var})" if larger_is_better else var
    if better:
        return f"bound loose by a factor {base}^{gap:.2f} or more"
    if local is not None and len(local) >= 2:
        worse = all((sl > bound) if not larger_is_better else (sl < bound) for sl in local)
        gaps = [abs(sl - bound) for sl in local]
        if worse and all(b < a for a, b in zip(gaps, gaps[1:])):
            return "not resolved (pre-asymptotic: local slope still steepening)"
    return f"violated: worse by {base}^{gap:.2f} or more"
