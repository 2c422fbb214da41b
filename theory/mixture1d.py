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
        r"""Score s(x) and its derivative s'(x) (THEORY.md section 4, in 1-D); see
        :func:`score_rows`."""
        return score_rows(self.w, self.m, self.v, x)

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


def score_rows(w, m, v, x):
    r"""Score :math:`s = \sum_k r_k u_k` and its derivative
    :math:`s' = \sum_k r_k u_k^2 - s^2 - \sum_k r_k / v_k` of 1-D mixtures, with
    :math:`u_k = (m_k - x)/v_k` and responsibilities :math:`r_k(x)`.

    Parameters
    ----------
    w : array, shape (K,)
        Weights (shared by all rows).
    m, v : arrays, shape (K,) or (B, K)
        Means and variances: one mixture, or one per row of ``x``.
    x : array, shape (n,) or (B, n)

    Returns ``(s, s')`` with the broadcast shape of ``x`` and the rows.

    Two components (the bimodal preset): one exponential per point,
    :math:`r_0 = 1/(1 + e^{\Delta})`, :math:`r_1 = e^{\Delta} r_0` with
    :math:`\Delta = \log(r_1/r_0)` a quadratic in x (both relatively accurate; Delta is
    capped at 700, where r_0 < 1e-304), and :math:`s' = r_0 r_1 (u_0 - u_1)^2 - r_0/v_0 -
    r_1/v_1` (the variance of u under r, free of cancellation). Otherwise a loop over the
    (few) components with flat arrays: much faster than reducing along a short last axis.
    """
    x = np.asarray(x, float)
    m, v = np.asarray(m, float), np.asarray(v, float)
    rows = m.ndim == 2
    K = m.shape[-1]
    if rows:     # columns (B, 1) broadcast against (B, n)
        col = [(m[:, k:k + 1], v[:, k:k + 1]) for k in range(K)]
    else:        # Python floats: no array overhead for the scalar parameters
        col = list(zip(m.tolist(), v.tolist()))
    lw = np.log(np.asarray(w, float)).tolist()
    if K == 1:
        mk, vk = col[0]
        s = (mk - x) / vk
        return s, np.zeros_like(s) - 1.0 / vk
    if K == 2:
        (m0, v0), (m1, v1) = col
        p0, p1 = 1.0 / v0, 1.0 / v1
        # Delta = log(w1 N(x; m1, v1)) - log(w0 N(x; m0, v0)) = (A x + B) x + C
        A = 0.5 * (p0 - p1)
        B = m1 * p1 - m0 * p0
        C = (lw[1] - lw[0]) - 0.5 * (np.log(v1) - np.log(v0)) + 0.5 * (m0 * m0 * p0 - m1 * m1 * p1)
        # the same operations in the same order as the formulas above, in place: one
        # allocation per output and two scratch arrays instead of one per operation (the
        # grid engines call this on (32, n) blocks, where allocation dominated)
        if np.all(A == 0):
            delta = B * x
        else:
            delta = A * x
            delta += B
            delta *= x
        delta += C
        np.minimum(delta, 700.0, out=delta)
        q = np.exp(delta, out=delta)
        r0 = np.add(q, 1.0)
        np.divide(1.0, r0, out=r0)
        du = (p0 - p1) * x                            # u_0 - u_1 = (m0 p0 - m1 p1) - (p0 - p1) x
        np.subtract(m0 * p0 - m1 * p1, du, out=du)
        s = p1 * x                                    # s = (m1 p1 - p1 x) + r0 du
        np.subtract(m1 * p1, s, out=s)
        tmp = np.multiply(r0, du)
        s += tmp
        q *= r0                                       # r1 = q r0
        q *= r0                                       # ds = r1 r0 du du - (p1 + (p0 - p1) r0)
        q *= du
        q *= du
        np.multiply(p0 - p1, r0, out=tmp)
        np.add(p1, tmp, out=tmp)
        q -= tmp
        return s, q
    lc = []
    for k, (mk, vk) in enumerate(col):
        d = x - mk
        lc.append((lw[k] - 0.5 * np.log(vk)) - (0.5 / vk) * d * d)
    top = np.maximum.reduce(lc)
    z = np.zeros_like(top)
    s = np.zeros_like(top)
    s2 = np.zeros_like(top)
    for k, (mk, vk) in enumerate(col):
        r = np.exp(lc[k] - top)
        u = (mk - x) / vk
        z += r
        ru = r * u
        s += ru
        s2 += ru * u - r / vk
    s /= z
    return s, s2 / z - s * s
