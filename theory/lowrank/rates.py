r"""Measured rates of low-rank runs: linear contraction rates, iterations to a tolerance,
intervals over seeded problems, and exponents in kappa.

* **Linear rate of one run.** Over the *linear phase*, the iterations t with
  ``lower <= e_t / scale <= upper`` (from the first t at or below ``upper`` to the last
  following t at or above ``lower``; defaults 1e-12 and 1e-4: past the initial transient,
  above the float64 floor), fit :math:`\log e_t = c + t\log\rho` by least squares. The
  fit reports :math:`\rho`, the window ``(t0, t1)``, and a 95% interval for :math:`\rho` from
  the regression's t-interval on the slope; for a deterministic run the residuals are
  curvature, not noise, so the interval says how far one geometric rate describes the
  window. ScaledGD's theorem bounds the factor distance by :math:`(1 - 0.6\eta)^t` times a
  constant (arXiv:2005.08898), so the measured :math:`\rho` is set beside :math:`1 - 0.6\eta`.
* **Iterations to a tolerance**: the first t with :math:`e_t \le` tol.
* **Intervals over seeds**: mean and 95% t-interval over independent seeded problems
  (:func:`seed_interval`; for counts, of their logarithm: a geometric mean).
* **Exponent in kappa**: iterations :math:`\sim C\kappa^k` fitted by
  :func:`theory.rates.fit_exponent` on the geometric means over seeds, with the seeds'
  intervals as the points' error bars (so the exponent's interval is the regression's
  t-interval widened by the propagated seed spread). GD's theory predicts k = 1
  (O(kappa log 1/eps)); ScaledGD's, k = 0.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats

from ..rates import RateFit, fit_exponent

__all__ = ["LinearRate", "Interval", "fit_linear_rate", "iterations_to", "seed_interval",
           "kappa_exponent"]


@dataclass
class LinearRate:
    """``e_t ~ C rho^t`` over iterations ``window = (t0, t1)``; ``ci`` a 95% interval for rho.

    ``rate`` is NaN (and ``window`` None) when fewer than ``min_points`` iterations lie in the
    linear phase; ``note`` says why.
    """

    rate: float
    ci: tuple
    window: Optional[tuple]
    n_points: int
    r2: float
    lower: float
    upper: float
    note: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = [float(v) for v in self.ci]
        d["window"] = None if self.window is None else [int(v) for v in self.window]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LinearRate":
        return cls(**{**d, "ci": tuple(d["ci"]),
                      "window": None if d["window"] is None else tuple(d["window"])})

    def __str__(self) -> str:
        if self.window is None:
            return f"no linear phase ({self.note})"
        return (f"rho = {self.rate:.4f} [{self.ci[0]:.4f}, {self.ci[1]:.4f}] over t in "
                f"[{self.window[0]}, {self.window[1]}] ({self.n_points} points)")


def _check_series(series) -> np.ndarray:
    e = np.asarray(series, dtype=float)
    if e.ndim != 1:
        raise ValueError(f"series must be one-dimensional, got shape {e.shape}")
    return e


def fit_linear_rate(series: Sequence[float], lower: float = 1e-12, upper: float = 1e-4, *,
                    scale: float = 1.0, min_points: int = 5) -> LinearRate:
    r"""Geometric rate of ``series`` over its linear phase (see module docstring).

    Parameters
    ----------
    series : array-like, shape (T+1,)
        Errors :math:`e_0, e_1, \dots` (relative error, factor distance, ...).
    lower, upper : float, 0 < lower < upper
        The phase is where ``lower <= e_t / scale <= upper``.
    scale : float > 0
        Normalisation of the thresholds (e.g. ``||X*||_F`` for the factor distance).
    min_points : int >= 3
        Fewest iterations for a fit.

    Returns
    -------
    LinearRate
    """
    e = _check_series(series)
    lower, upper, scale = float(lower), float(upper), float(scale)
    if not (0 < lower < upper):
        raise ValueError(f"need 0 < lower < upper, got {lower!r}, {upper!r}")
    if not (scale > 0) or not math.isfinite(scale):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if int(min_points) < 3:
        raise ValueError(f"min_points must be at least 3, got {min_points!r}")
    v = e / scale
    nan = LinearRate(float("nan"), (float("nan"), float("nan")), None, 0, float("nan"),
                     lower, upper)
    below = np.flatnonzero(np.isfinite(v) & (v <= upper))
    if below.size == 0:
        nan.note = f"never at or below upper = {upper:g}"
        return nan
    t0 = int(below[0])
    after = v[t0:]
    ok = np.isfinite(after) & (after >= lower)
    # the phase ends at the last iterate at or above `lower` before the first drop below it
    stop = np.flatnonzero(~ok)
    t1 = t0 + (int(stop[0]) - 1 if stop.size else after.size - 1)
    n = t1 - t0 + 1
    if n < int(min_points):
        nan.note = f"only {max(n, 0)} iterations in [{lower:g}, {upper:g}]"
        return nan
    t = np.arange(t0, t1 + 1, dtype=float)
    ly = np.log(v[t0:t1 + 1])
    A = np.vstack([np.ones(n), t]).T
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - A @ coef
    sxx = float(((t - t.mean()) ** 2).sum())
    dof = n - 2
    s2 = float((resid ** 2).sum() / dof)
    half = float(stats.t.ppf(0.975, dof) * math.sqrt(s2 / sxx))
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    k = float(coef[1])
    return LinearRate(math.exp(k), (math.exp(k - half), math.exp(k + half)), (t0, t1), n, r2,
                      lower, upper)


def iterations_to(series: Sequence[float], tol: float = 1e-10) -> Optional[int]:
    """First index t with ``series[t] <= tol``; None if the run never gets there."""
    e = _check_series(series)
    tol = float(tol)
    if not (tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    hit = np.flatnonzero(np.isfinite(e) & (e <= tol))
    return int(hit[0]) if hit.size else None


@dataclass
class Interval:
    """Mean of ``n`` values with a 95% t-interval ``(lo, hi)`` (NaN bounds when n < 2)."""

    mean: float
    lo: float
    hi: float
    n: int
    log: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def seed_interval(values: Sequence[float], *, log: bool = False,
                  level: float = 0.95) -> Interval:
    """Mean and t-interval over seeds; ``log=True`` works on log values (geometric mean,
    interval exponentiated: for iteration counts and rates).

    Parameters
    ----------
    values : array-like, shape (n,)
        One finite value per seed (positive when ``log``).
    level : float in (0, 1)
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("need at least one value")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite (a run that never reached the tolerance has no count)")
    if log and np.any(x <= 0):
        raise ValueError("log=True needs positive values")
    if not (0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    z = np.log(x) if log else x
    m = float(z.mean())
    if x.size < 2:
        lo = hi = float("nan")
    else:
        half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * z.std(ddof=1) / math.sqrt(x.size))
        lo, hi = m - half, m + half
    if log:
        return Interval(math.exp(m), math.exp(lo) if math.isfinite(lo) else lo,
                        math.exp(hi) if math.isfinite(hi) else hi, int(x.size), True)
    return Interval(m, lo, hi, int(x.size), False)


def kappa_exponent(kappas: Sequence[float], counts, *, x_min=None, x_max=None) -> RateFit:
    r"""Exponent k of ``counts ~ C kappa^k``.

    Parameters
    ----------
    kappas : array-like, shape (K,)
        Condition numbers (>= 1).
    counts : array-like, shape (K, S)
        Per kappa, one value per seeded problem (e.g. iterations to 1e-10). With S >= 2 the
        fit is on the geometric means with the seeds' 95% intervals as error bars; with
        S = 1 on the values alone.
    x_min, x_max : float, optional
        Fit range in kappa.

    Returns
    -------
    theory.rates.RateFit
        ``exponent`` with its 95% interval ``ci``.
    """
    k = np.asarray(kappas, dtype=float).ravel()
    c = np.asarray(counts, dtype=float)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2 or c.shape[0] != k.size:
        raise ValueError(f"counts must have shape (len(kappas), seeds) = ({k.size}, S), got {c.shape}")
    if np.any(~np.isfinite(k)) or np.any(k < 1):
        raise ValueError("every kappa must be a finite number >= 1")
    if np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise ValueError("counts must be positive and finite (drop runs that never reached the tolerance)")
    if c.shape[1] == 1:
        return fit_exponent(k, c[:, 0], x_min=x_min, x_max=x_max)
    ivs = [seed_interval(row, log=True) for row in c]
    return fit_exponent(k, [iv.mean for iv in ivs], lower=[iv.lo for iv in ivs],
                        upper=[iv.hi for iv in ivs], x_min=x_min, x_max=x_max)
