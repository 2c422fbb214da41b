r"""One-dimensional Gaussian mixtures in float64 numpy: the scalar building block of the
exact-law engines.

A 1-D mixture is ``(w, m, v)``: weights, means and *variances*, arrays of shape (K,).
Functions are vectorised over the evaluation points. The forward marginal at noise level
:math:`\bar\alpha` is ``(w, sqrt(abar) m, abar v + 1 - abar)`` (THEORY.md section 4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr, logsumexp

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Mixture1D:
    """``sum_k w[k] N(m[k], v[k])`` with variances ``v`` (not standard deviations)."""

    w: np.ndarray
    m: np.ndarray
    v: np.ndarray

    @classmethod
    def from_std(cls, w, m, sd):
        return cls(np.asarray(w, float), np.asarray(m, float), np.asarray(sd, float) ** 2)

    def marginal(self, abar: float, one_minus_abar: float | None = None) -> "Mixture1D":
        """Law of ``sqrt(abar) X + sqrt(1 - abar) eps``."""
        om = 1 - abar if one_minus_abar is None else one_minus_abar
        return Mixture1D(self.w, math.sqrt(abar) * self.m, abar * self.v + om)

    # --- evaluations -----------------------------------------------------------------
    def _log_comp(self, x):
        x = np.asarray(x, float)[..., None]
        with np.errstate(divide="ignore"):
            lw = np.log(self.w)
        return lw - 0.5 * ((x - self.m) ** 2 / self.v + np.log(self.v) + LOG_2PI)

    def logpdf(self, x):
        return logsumexp(self._log_comp(x), axis=-1)

    def score_and_derivative(self, x):
        """Score s(x) and its derivative s'(x) (THEORY.md section 4, in 1-D).

        Loops over the (few) components with flat arrays: much faster than reducing a
        (n, K) array along a short last axis.
        """
        x = np.asarray(x, float)
        K = self.w.size
        lc = []
        for k in range(K):
            d = x - self.m[k]
            lc.append(math.log(self.w[k]) - 0.5 * math.log(self.v[k]) - (0.5 / self.v[k]) * d * d)
        top = lc[0] if K == 1 else np.maximum.reduce(lc)
        z = np.zeros_like(x)
        s = np.zeros_like(x)
        s2 = np.zeros_like(x)
        for k in range(K):
            r = np.exp(lc[k] - top)
            u = (self.m[k] - x) / self.v[k]
            z += r
            ru = r * u
            s += ru
            s2 += ru * u - r / self.v[k]
        s /= z
        return s, s2 / z - s * s
    def cdf(self, x):
        x = np.asarray(x, float)[..., None]
        return (self.w * ndtr((x - self.m) / np.sqrt(self.v))).sum(-1)

    def sf(self, x):
        x = np.asarray(x, float)[..., None]
        return (self.w * ndtr((self.m - x) / np.sqrt(self.v))).sum(-1)

    def log_cdf(self, x):
        x = np.asarray(x, float)[..., None]
        with np.errstate(divide="ignore"):
            return logsumexp(np.log(self.w) + log_ndtr((x - self.m) / np.sqrt(self.v)), axis=-1)

    def quantile(self, u, tol=1e-14):
        """Inverse CDF by safeguarded Newton iteration (vectorised)."""
        u = np.asarray(u, float)
        sd = np.sqrt(self.v)
        lo = np.full_like(u, (self.m - 40 * sd).min())
        hi = np.full_like(u, (self.m + 40 * sd).max())
        x = np.clip((self.w * self.m).sum() + 0 * u, lo, hi)
        for _ in range(200):
            F = self.cdf(x)
            lo = np.where(F < u, x, lo)
            hi = np.where(F >= u, x, hi)
            f = np.exp(self.logpdf(x))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                xn = x - (F - u) / f
            bad = ~np.isfinite(xn) | (xn <= lo) | (xn >= hi)
            xn = np.where(bad, 0.5 * (lo + hi), xn)
            if np.all(np.abs(xn - x) <= tol * (1 + np.abs(x))):
                return xn
            x = xn
        return x

    def spread(self, n_sd: float = 10.0):
        """An interval holding all but a negligible mass: means +- n_sd standard deviations."""
        sd = np.sqrt(self.v)
        return float((self.m - n_sd * sd).min()), float((self.m + n_sd * sd).max())
