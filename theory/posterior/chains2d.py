r"""Exact laws of 2-D Markov chains on a uniform grid (THEORY.md section 8).

A law is an array of point masses :math:`M_{ij} \approx h^2 p(x_i, y_j)` on two uniform axes
(:class:`theory.posterior.chains1d.Axis`, one spacing h); no dense :math:`(n^2 \times n^2)`
matrix is formed. Steps of :mod:`theory.posterior.chain_steps`:

* **Gaussian step** :math:`x' = m(x) + \mathrm{diag}(c) Z`: the map moves the density by
  *pull-back*, :math:`p'(y) = p(m^{-1}(y))/|\det Dm(m^{-1}(y))|`, with the preimage of every
  destination node found by Newton steps on the map itself (Jacobian by central differences)
  and :math:`p` interpolated by cubic B-splines (error :math:`O(h^4)` where the law is smooth);
  destination nodes without a converged preimage (outside the map's image, e.g. the hole a
  guidance term with a point singularity opens) get no mass; a map that folds (its Jacobian
  changes sign on the grid) raises :class:`NoExactLaw`. Then the Gaussian blur is the exact
  Fourier multiplier :math:`e^{-\frac12 k^\top \Sigma k}` on a zero-padded grid (diagonal
  :math:`\Sigma = \mathrm{diag}(c^2)`, or a full covariance for the closed-form kernels of
  :mod:`theory.posterior.dpnp_grid2d`). The pull-back does not conserve mass exactly: the law
  is renormalised and the defect is reported (``lost``), an error term of the law.
* **Metropolis step**: for every node l, the proposal :math:`N(m(x_l), \mathrm{diag}(c^2))`
  cut to the nodes within the ellipse of radius :math:`R = 6.5` (in noise units) around its
  mean, times the acceptance probability, as a sparse matrix (``nnz`` = nodes x patch); the
  rejected mass (the cut-off proposal mass included) stays on the diagonal. The truncation
  changes each transition by at most :math:`e^{-R^2/2} = 6.7\times10^{-10}` in TV, counted per
  step in ``truncation``; like the 1-D kernel it is exactly reversible with respect to the
  target's point masses. Requires :math:`c \ge 1.5h` (and :math:`c \ge 1.5h|Dm|`).

:func:`chain_laws_2d` runs a chain; errors come from refinement plus ``lost`` and
``truncation``, as in 1-D.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.fft import irfft2, next_fast_len, rfft2
from scipy.ndimage import map_coordinates, spline_filter

from ..checks import NoExactLaw
from .chain_steps import GaussianStep, MetropolisStep, noise_vector
from .chains1d import RESOLVED, ChainLaws

__all__ = ["chain_laws_2d", "gaussian_blur_2d", "pull_back_2d", "metropolis_matrix_2d",
           "grid_points"]

_RADIUS = 6.5


def grid_points(axes) -> np.ndarray:
    """The nodes of two axes as (n1 * n2, 2) points (first axis slowest)."""
    X1, X2 = np.meshgrid(axes[0].nodes, axes[1].nodes, indexing="ij")
    return np.stack([X1.ravel(), X2.ravel()], 1)


def gaussian_blur_2d(M: np.ndarray, cov, h: float) -> np.ndarray:
    r"""``M`` convolved with :math:`N(0, \Sigma)`: ``cov`` a (2,) vector of standard
    deviations or a (2, 2) covariance (exact Fourier multiplier, zero padding of 10 sd)."""
    cov = np.asarray(cov, float)
    S = np.diag(cov ** 2) if cov.shape == (2,) else cov
    if not np.any(S):
        return M
    sd = np.sqrt(np.diag(S))
    pads = [int(math.ceil(10 * s / h)) + 4 for s in sd]
    L = [next_fast_len(M.shape[i] + 2 * pads[i], real=(i == 1)) for i in range(2)]
    buf = np.zeros(L)
    buf[pads[0]:pads[0] + M.shape[0], pads[1]:pads[1] + M.shape[1]] = M
    k0 = 2 * np.pi * np.fft.fftfreq(L[0], d=h)[:, None]
    k1 = 2 * np.pi * np.fft.rfftfreq(L[1], d=h)[None, :]
    mult = np.exp(-0.5 * (S[0, 0] * k0 ** 2 + 2 * S[0, 1] * k0 * k1 + S[1, 1] * k1 ** 2))
    out = irfft2(rfft2(buf) * mult, L)
    return out[pads[0]:pads[0] + M.shape[0], pads[1]:pads[1] + M.shape[1]]


def _jacobian(fn, u, d):
    J = np.empty(u.shape + (2,))
    for k in range(2):
        e = np.zeros(2)
        e[k] = d
        J[:, :, k] = (fn(u + e) - fn(u - e)) / (2 * d)
    return J


def pull_back_2d(fn, M: np.ndarray, src, dst, iters: int = 8):
    """Point masses on ``dst`` of the image of the law ``M`` on ``src`` under the map ``fn``
    ((n, 2) -> (n, 2)), by pull-back (module docstring). Returns (masses, mass defect)."""
    h = src[0].h
    d = 1e-4 * h
    x = grid_points(src)
    J = _jacobian(fn, x, d)
    det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
    w = M.ravel() > 1e-300 * max(float(np.abs(M).max()), 1e-300)
    if np.any(det[w] <= 0) and np.any(det[w] > 0):
        raise NoExactLaw("the 2-D map folds (its Jacobian changes sign on the grid): no "
                         "pull-back")
    y = grid_points(dst)
    # preimages: a fixed-point start (near-identity maps), one Newton step, then chord steps
    # with that Jacobian (one map evaluation each), a second Newton step, chord steps again
    u = y.copy()
    for _ in range(2):
        u = u - (fn(u) - y)
    for _ in range(2):
        Ju = _jacobian(fn, u, d)
        dj = Ju[:, 0, 0] * Ju[:, 1, 1] - Ju[:, 0, 1] * Ju[:, 1, 0]
        dj = np.where(np.abs(dj) > 1e-300, dj, 1e-300)
        for _ in range(iters // 2):
            r = fn(u) - y
            du0 = (Ju[:, 1, 1] * r[:, 0] - Ju[:, 0, 1] * r[:, 1]) / dj
            du1 = (-Ju[:, 1, 0] * r[:, 0] + Ju[:, 0, 0] * r[:, 1]) / dj
            u = u - np.stack([du0, du1], 1)
    res = np.abs(fn(u) - y).max(1)
    Ju = _jacobian(fn, u, d)
    dj = np.abs(Ju[:, 0, 0] * Ju[:, 1, 1] - Ju[:, 0, 1] * Ju[:, 1, 0])
    ok = (res < 1e-9 * max(1.0, float(np.abs(y).max()))) & (dj > 0)
    coords = [(u[:, k] - src[k].lo) / h for k in range(2)]
    coef = spline_filter(M, order=3, mode="constant")
    val = map_coordinates(coef, coords, order=3, mode="constant", cval=0.0, prefilter=False)
    out = np.where(ok, val / np.where(ok, dj, 1.0), 0.0).reshape(dst[0].n, dst[1].n)
    out *= (dst[0].h * dst[1].h) / (h * h)
    total = float(M.sum())
    got = float(out.sum())
    if got > 0:
        out *= total / got
    return out, abs(got - total)


def metropolis_matrix_2d(step: MetropolisStep, axes):
    """Sparse (N, N) kernel of a Gaussian-proposal Metropolis step on the 2-D grid (module
    docstring; N = n1 n2, rows = from)."""
    h = axes[0].h
    c = noise_vector(step.noise_std, 2)
    if np.any(c < RESOLVED * h):
        raise NoExactLaw(f"the proposal noise {c} of {step.name!r} is not resolved by the grid "
                         f"(h = {h:.3g})")
    x = grid_points(axes)
    N = x.shape[0]
    mu = np.asarray(step.proposal_map(x), float)
    lt = np.asarray(step.log_target(x), float).reshape(-1)
    r = [int(math.ceil(_RADIUS * ck / h)) + 1 for ck in c]
    o0, o1 = np.meshgrid(np.arange(-r[0], r[0] + 1), np.arange(-r[1], r[1] + 1), indexing="ij")
    o0, o1 = o0.ravel(), o1.ravel()
    rows, cols, vals = [], [], []
    logK = math.log(h * h / (2 * math.pi * c[0] * c[1]))
    n1, n2 = axes[0].n, axes[1].n
    for start in range(0, N, 2048):
        sl = slice(start, min(N, start + 2048))
        m = mu[sl]
        i0 = np.rint((m[:, 0] - axes[0].lo) / h).astype(np.int64)
        i1 = np.rint((m[:, 1] - axes[1].lo) / h).astype(np.int64)
        j0 = i0[:, None] + o0[None, :]
        j1 = i1[:, None] + o1[None, :]
        u0 = (axes[0].lo + h * j0 - m[:, :1]) / c[0]
        u1 = (axes[1].lo + h * j1 - m[:, 1:]) / c[1]
        inside = ((u0 * u0 + u1 * u1) <= _RADIUS ** 2) & (j0 >= 0) & (j0 < n1) & (j1 >= 0) \
            & (j1 < n2)
        src = np.broadcast_to(np.arange(sl.start, sl.stop)[:, None], j0.shape)[inside]
        dj = (j0 * n2 + j1)[inside]
        lq = -0.5 * (u0 * u0 + u1 * u1)[inside]
        # back proposal from the destination: q(x_l | x_j)
        back = (x[src] - mu[dj]) / c
        lb = -0.5 * (back ** 2).sum(1)
        la = np.minimum(lq, lt[dj] - lt[src] + lb)
        rows.append(src)
        cols.append(dj)
        vals.append(np.exp(la + logK))
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(N, N))
    stay = 1.0 - np.asarray(A.sum(1)).ravel()
    return (A + sp.diags(stay)).tocsr()


class _Op2:
    def __init__(self, step, src, dst):
        self.step, self.src, self.dst = step, src, dst
        self.matrix = None
        if isinstance(step, MetropolisStep):
            if src != dst:
                raise ValueError("a Metropolis step stays on its grid")
            self.matrix = metropolis_matrix_2d(step, src).T.tocsr()
            self.trunc = math.exp(-0.5 * _RADIUS ** 2)
            self.path = "Metropolis kernel (proposal patches x acceptance, sparse)"
        elif isinstance(step, GaussianStep):
            self.c = noise_vector(step.noise_std, 2)
            self.trunc = 0.0
            self.path = "pull-back + Fourier blur"
        else:
            raise ValueError(f"unknown step type {type(step).__name__}")

    def apply(self, M):
        if self.matrix is not None:
            return (self.matrix @ M.ravel()).reshape(M.shape), 0.0, self.trunc
        out, defect = pull_back_2d(lambda p: np.asarray(self.step.map(p), float), M, self.src,
                                   self.dst)
        return gaussian_blur_2d(out, self.c, self.dst[0].h), defect, 0.0


def chain_laws_2d(steps: Sequence, axes, init_mass, *, out_axes=None,
                  keep: Optional[Sequence[int]] = None) -> ChainLaws:
    """Laws of a chain on the 2-D grid ``axes`` (two :class:`Axis` of one spacing; module
    docstring). ``init_mass`` (n1, n2) point masses; ``out_axes`` the grid of the last
    step's output; ``keep`` the step counts after which to keep the law (default all).
    ``lost`` accumulates the pull-backs' mass defects and the mass leaving the grid,
    ``truncation`` the Metropolis proposal cut-offs (both error terms in TV)."""
    steps = list(steps)
    axes = list(axes)
    if abs(axes[0].h - axes[1].h) > 1e-12 * axes[0].h:
        raise ValueError("the 2-D engine needs one spacing on both axes")
    M = np.asarray(init_mass, float)
    if M.shape != (axes[0].n, axes[1].n):
        raise ValueError(f"init_mass has shape {M.shape}, the grid {(axes[0].n, axes[1].n)}")
    keep = set(range(1, len(steps) + 1)) if keep is None else set(int(k) for k in keep)
    cache = {}
    out = ChainLaws([], [], [], [])
    lost = trunc = 0.0
    total = float(M.sum())
    for i, step in enumerate(steps, start=1):
        dst = list(out_axes) if (out_axes is not None and i == len(steps)) else axes
        key = (id(step), tuple(dst))
        if key not in cache:
            cache[key] = _Op2(step, axes, dst)
            out.paths[step.name or type(step).__name__] = cache[key].path
        M, defect, t = cache[key].apply(M)
        lost += defect
        trunc += t
        if i in keep:
            out.laws.append(M.copy())
            out.steps.append(i)
            out.lost.append(lost + abs(total - float(M.sum())))
            out.truncation.append(trunc)
    return out

