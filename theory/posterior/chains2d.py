r"""Exact laws of 2-D Markov chains on a uniform grid (THEORY.md section 8).

A law is an array of point masses :math:`M_{ij} \approx h^2 p(x_i, y_j)` on two uniform axes
(:class:`theory.posterior.chains1d.Axis`, one spacing h); no dense :math:`(n^2 \times n^2)`
matrix is formed. Steps of :mod:`theory.posterior.chain_steps`:

* **Gaussian step** :math:`x' = m(x) + \mathrm{diag}(c) Z` **with resolved noise**
  (:math:`c_k \ge 1.5h` on both axes): the *push* (scatter) route, which needs no inverse of m
  and so holds for maps that fold. The new law is
  :math:`p'(y) = \int p(x)\,N(y; m(x), \mathrm{diag}(c^2))\,dx`, on the grid

  .. math:: M'_j = \sum_q M_q\,K_{qj}, \qquad
            K_{qj} = \frac{N(y_j; m(x_q), \mathrm{diag}(s^2))}{\sum_{j'} N(y_{j'}; m(x_q),
            \mathrm{diag}(s^2))},

  the sum over the source points q (the nodes, those with mass), j over the destination
  lattice points within :math:`R = 6.5` spreading sds per axis of :math:`m(x_q)` (a separable
  window, :class:`PushKernel2D`, never a dense matrix). Each row sums to 1 over the lattice,
  so mass is conserved exactly except what lands off the grid (it leaves the sum and is
  counted in ``lost``); the window's cut changes each row by at most
  :math:`2\,\mathrm{erfc}(R/\sqrt2) = 1.6\times10^{-10}` in TV, counted per step in
  ``truncation``. Where :math:`c_k \le 3h`, :math:`s_k = c_k`; a wider noise is deposited
  with :math:`s_k = 1.5h` and the rest, :math:`\sqrt{c_k^2 - s_k^2}`, applied as the exact
  Fourier blur below (the Gaussians compose; the intermediate sum over the lattice is a
  trapezoid rule on a Gaussian of sd :math:`s_k\sqrt{c_k^2 - s_k^2}/c_k \ge 1.3h`, error
  :math:`\le 2e^{-2\pi^2 1.3^2} = 7\times10^{-15}`). The error is that of the trapezoid rule in
  x of :math:`p(x) N(y; m(x), c^2)`, which varies along axis a on the scale
  :math:`\rho_a h` with :math:`\rho_a = 1/(h\,|\mathrm{diag}(c)^{-1}\partial_a m|)`; for
  :math:`\rho_a \ge 1.5` (and c >= 1.5h on the destination side, where the normalisation
  differs from 1 by :math:`\le 2e^{-2\pi^2 1.5^2} = 10^{-19}`) it is spectral,
  :math:`\approx 2e^{-2\pi^2\rho^2} \le 10^{-19}` per step beside the law's own resolution.
  A node where the map stretches more (:math:`\rho_a < 1.5`, e.g. between the modes of a
  mixture, where DPS's guidance runs through the steep Tweedie map) is split into a
  :math:`k_0 \times k_1` sub-grid of its cell, :math:`k_a = \lceil 1.5/\rho_a\rceil \le 24`,
  the node's mass shared in proportion to the cubic B-spline interpolant of the law there
  (interpolation error :math:`O(h^4)` inside the cell, mass exactly the node's); the mass of
  nodes still unresolved at :math:`k_a = 24` is added to ``lost`` (a bound of the TV the step
  can have misplaced: each row moves only its own mass). Sources below :math:`10^{-16}` of
  the largest mass (rounding level) are skipped and their mass is counted in ``lost`` too.
* **Gaussian step with unresolved noise** (:math:`c_k < 1.5h`, e.g. Tweedie's map, c = 0):
  *pull-back*, :math:`p'(y) = p(m^{-1}(y))/|\det Dm(m^{-1}(y))|`, with the preimage of every
  destination node found by Newton steps on the map itself (Jacobian by central differences)
  and :math:`p` interpolated by cubic B-splines (error :math:`O(h^4)` where the law is smooth);
  destination nodes without a converged preimage (outside the map's image, e.g. the hole a
  guidance term with a point singularity opens) get no mass; a map that folds (its Jacobian
  changes sign where the law has mass) has no pull-back and raises :class:`NoExactLaw` (refine
  the grid until the noise is resolved). Then the Gaussian blur is the exact
  Fourier multiplier :math:`e^{-\frac12 k^\top \Sigma k}` on a zero-padded grid (diagonal
  :math:`\Sigma = \mathrm{diag}(c^2)`, or a full covariance for the closed-form kernels of
  :mod:`theory.posterior.dpnp_grid2d`). The pull-back does not conserve mass exactly: the law
  is renormalised and the defect is reported (``lost``), an error term of the law.
* **Choice of route** (``route="auto"``): push whenever the noise is resolved, folding or
  not; pull-back otherwise. Measured on DPS (T = 16, zeta = 0.03, Gaussian prior, logistic
  likelihood, h = 0.05, 341 x 341 nodes; see tests/test_chains2d.py): the push route gives
  the same TV to the posterior to 6 digits, loses ~1e-8 of the mass where the pull-backs
  lose 0.6% (nodes without a converged preimage), and is faster (one DPS law, T = 16:
  push 54 s, pull-back 103 s, both on a loaded 2-core machine; push alone 26 s).
  ``route="pull"`` forces the pull-back (the former behaviour, for comparisons).
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
           "grid_points", "PushKernel2D"]

_RADIUS = 6.5
_DIRECT = 3.0        # push: axes with c <= 3h deposit with c itself
_SPREAD = 1.5        # otherwise deposit with 1.5h and blur by the rest in Fourier space
_CHUNK = 4096
_MAX_SPLIT = 24      # push: a node is split into at most 24 x 24 sub-points
_SKIP = 1e-16        # push: sources below 1e-16 of the largest mass are skipped (counted)


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


class PushKernel2D:
    r"""The push (scatter) kernel of a Gaussian step :math:`x' = m(x) + \mathrm{diag}(c) Z`
    from the nodes of ``src`` to those of ``dst`` (module docstring), kept in factored form.
    Its source points are the nodes :math:`x_i`, except that a node whose stretching is not
    resolved (:math:`\rho_i < 1.5`, below) is split into the :math:`k_i^2` centres of a
    :math:`k_i \times k_i` sub-grid of its cell, :math:`k_i = \lceil 1.5/\rho_i\rceil \le 8`,
    which share its mass in proportion to the cubic B-spline interpolant of the law there.
    Per source point q, the nearest destination node of :math:`m(x_q)` and, per axis k, the
    weights :math:`w^k_{qa} \propto \exp(-\tfrac12 (y^k_{j_k + a} - m_k(x_q))^2/s_k^2)`,
    :math:`|a| \le r_k = \lceil R s_k/h\rceil + 1`, normalised to sum 1 (every row of the
    kernel sums to 1 over the lattice; what lands off the grid is lost). :math:`s_k = c_k`
    when :math:`c_k \le 3h`; otherwise :math:`s_k = 1.5h` and the rest of the noise,
    :math:`\sqrt{c_k^2 - s_k^2}`, is an exact Fourier blur afterwards (``blur``). No (N x N)
    matrix is formed: the kernel takes 2 (2r + 1) numbers per source point.

    Attributes: ``folds`` (the Jacobian of m changes sign on the source nodes),
    ``resolution`` per source node :math:`\rho_i = 1/(h_{src}\,\sigma_{\max}(\mathrm{diag}(c)^{-1}
    Dm(x_i)))` (the width, in source spacings, on which :math:`p(x) N(y; m(x), c^2)` varies
    in x), ``split`` the number of split nodes, ``truncation`` (TV per application:
    :math:`2\,\mathrm{erfc}(R/\sqrt2)` of the cut windows)."""

    def __init__(self, fn, src, dst, c, radius: float = _RADIUS):
        self.src, self.dst = list(src), list(dst)
        c = np.asarray(c, float)
        h = self.dst[0].h
        if np.any(c < RESOLVED * h):
            raise NoExactLaw(f"the noise {c} is not resolved by the grid (h = {h:.3g}): no push")
        hs = self.src[0].h
        x = grid_points(self.src)
        m = np.asarray(fn(x), float)
        J = _jacobian(fn, x, 1e-4 * hs)
        det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
        self.folds = bool(np.any(det < 0) and np.any(det > 0))
        col = np.sqrt(((J / c[:, None]) ** 2).sum(1))     # |diag(c)^-1 dm/dx_a|, (N, 2)
        self.resolution = 1.0 / (hs * np.maximum(col, 1e-300))
        k = np.ceil(RESOLVED / self.resolution - 1e-12)
        k = np.where(np.isfinite(k), np.clip(k, 1, _MAX_SPLIT), _MAX_SPLIT).astype(np.int64)
        self.still_unresolved = np.any(k * self.resolution < RESOLVED, axis=1)
        self.spread = np.where(c <= _DIRECT * h, c, _SPREAD * h)
        self.blur = np.sqrt(np.maximum(c * c - self.spread ** 2, 0.0))
        self.r = [int(math.ceil(radius * s / h)) + 1 for s in self.spread]
        self.truncation = 2.0 * math.erfc(radius / math.sqrt(2.0))
        # source points: whole nodes (k = (1, 1)) first, then the sub-grids of split nodes
        code = k[:, 0] * (_MAX_SPLIT + 1) + k[:, 1]
        whole = np.flatnonzero(code == _MAX_SPLIT + 2)
        parents, coords, means = [whole], [np.zeros((whole.size, 2))], [m[whole]]
        for cc in np.unique(code[code != _MAX_SPLIT + 2]):
            k0, k1 = divmod(int(cc), _MAX_SPLIT + 1)
            nodes = np.flatnonzero(code == cc)
            o0 = (np.arange(k0) + 0.5) / k0 - 0.5
            o1 = (np.arange(k1) + 0.5) / k1 - 0.5
            off = np.stack(np.meshgrid(o0, o1, indexing="ij"), -1).reshape(-1, 2)  # cell units
            parents.append(np.repeat(nodes, k0 * k1))
            co = np.tile(off, (nodes.size, 1))
            coords.append(co)
            means.append(np.asarray(fn(x[parents[-1]] + hs * co), float))
        k = k.max(1)
        self.split = int((k > 1).sum())
        self.parent = np.concatenate(parents)
        self.offset = np.concatenate(coords)        # sub-point minus its node, in src spacings
        self.n_whole = whole.size
        self._windows(np.concatenate(means))

    def _windows(self, m):
        self.centre, self.weights = [], []
        inside = np.isfinite(m).all(1)
        for k in range(2):
            ax, r = self.dst[k], self.r[k]
            t = (np.where(inside, m[:, k], 0.0) - ax.lo) / ax.h
            t = np.clip(t, -4.0 * r - ax.n, 5.0 * r + 2 * ax.n)       # far points: off grid
            j = np.rint(t).astype(np.int64)
            inside &= (j >= -r) & (j <= ax.n - 1 + r)
            a = np.arange(-r, r + 1)
            u = (j[:, None] + a[None, :] - t[:, None]) * (ax.h / self.spread[k])
            w = np.exp(-0.5 * u * u)
            w /= w.sum(1, keepdims=True)
            self.centre.append(j)
            self.weights.append(w)
        self.on_grid = inside                     # windows that reach the grid at all

    def point_masses(self, M: np.ndarray) -> np.ndarray:
        """The mass of every source point: a node's own, or its share of a split node's
        (spline interpolant of the law at the sub-points, clipped at 0, normalised to the
        node's mass; equal shares where the interpolant vanishes)."""
        Mf = np.asarray(M, float).ravel()
        q = Mf[self.parent]
        if self.parent.size > self.n_whole:
            sub = slice(self.n_whole, None)
            par = self.parent[sub]
            n2 = self.src[1].n
            pos = [par // n2 + self.offset[sub, 0], par % n2 + self.offset[sub, 1]]
            coef = spline_filter(np.asarray(M, float), order=3, mode="constant")
            v = np.maximum(map_coordinates(coef, pos, order=3, mode="constant", cval=0.0,
                                           prefilter=False), 0.0)
            tot = np.bincount(par, v, minlength=Mf.size)[par]
            cnt = np.bincount(par, minlength=Mf.size)[par]
            share = np.where(tot > 0, v / np.where(tot > 0, tot, 1.0), 1.0 / cnt)
            q[sub] = Mf[par] * share
        return q

    def apply(self, M: np.ndarray):
        """Push the point masses ``M`` (src shape) through the kernel. Returns (masses on
        dst, mass of the skipped rounding-level sources, mass at sources whose stretching
        stays unresolved after splitting)."""
        Mf = np.asarray(M, float).ravel()
        scale = max(float(np.abs(Mf).max()), 1e-300)
        q = self.point_masses(M)
        big = np.abs(q) > _SKIP * scale
        skipped = float(np.abs(q[~big]).sum())
        use = np.flatnonzero(big & self.on_grid)
        heavy = np.abs(Mf) > _SKIP * scale
        unresolved = float(np.abs(Mf[heavy & self.still_unresolved]).sum())
        n1, n2 = self.dst[0].n, self.dst[1].n
        r0, r1 = self.r
        L1 = n2 + 4 * r1
        size = (n1 + 4 * r0) * L1
        out = np.zeros(size)
        j0 = self.centre[0][use] + 2 * r0
        j1 = self.centre[1][use] + 2 * r1
        w1 = self.weights[1][use]
        mw = q[use][:, None] * self.weights[0][use]
        offs = (np.arange(2 * r0 + 1)[:, None] * L1 + np.arange(2 * r1 + 1)[None, :]).ravel()
        for start in range(0, use.size, _CHUNK):
            sl = slice(start, start + _CHUNK)
            base = (j0[sl] - r0) * L1 + j1[sl] - r1
            idx = base[:, None] + offs[None, :]
            val = (mw[sl, :, None] * w1[sl, None, :]).reshape(idx.shape)
            out += np.bincount(idx.ravel(), val.ravel(), minlength=size)
        core = out.reshape(n1 + 4 * r0, L1)[2 * r0:2 * r0 + n1, 2 * r1:2 * r1 + n2]
        core = np.ascontiguousarray(core)
        if np.any(self.blur > 0):
            core = gaussian_blur_2d(core, self.blur, self.dst[0].h)
        return core, skipped, unresolved


def _largest_singular_value(J: np.ndarray) -> np.ndarray:
    """sigma_max of each 2 x 2 matrix of ``J`` (n, 2, 2), in closed form."""
    a, b, c, d = J[:, 0, 0], J[:, 0, 1], J[:, 1, 0], J[:, 1, 1]
    s = 0.5 * (a * a + b * b + c * c + d * d)
    det = a * d - b * c
    return np.sqrt(s + np.sqrt(np.maximum(s * s - det * det, 0.0)))


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
    def __init__(self, step, src, dst, route="auto"):
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
            fn = self.map_fn
            self.push = None
            self.trunc = 0.0
            resolved = bool(np.all(self.c >= RESOLVED * dst[0].h))
            if route not in ("auto", "pull"):
                raise ValueError(f"route must be 'auto' or 'pull', got {route!r}")
            if resolved and route != "pull":
                self.push = PushKernel2D(fn, src, dst, self.c)
                self.trunc = self.push.truncation
                self.path = ("push (Gaussian patches from the source nodes"
                             + (", two-stage with a Fourier blur" if np.any(self.push.blur > 0)
                                else "") + ")" + (" of a folding map" if self.push.folds else ""))
            else:
                self.path = "pull-back + Fourier blur"
        else:
            raise ValueError(f"unknown step type {type(step).__name__}")

    def map_fn(self, p):
        return np.asarray(self.step.map(p), float)

    def apply(self, M):
        if self.matrix is not None:
            return (self.matrix @ M.ravel()).reshape(M.shape), 0.0, self.trunc
        if self.push is not None:
            out, skipped, unresolved = self.push.apply(M)
            return out, skipped + unresolved, self.trunc
        try:
            out, defect = pull_back_2d(self.map_fn, M, self.src, self.dst)
        except NoExactLaw as exc:
            raise NoExactLaw(f"{self.step.name!r}: {exc}, and its noise {self.c} is below the "
                             f"push route's resolution {RESOLVED}h (h = {self.dst[0].h:.3g}): "
                             "refine the grid") from None
        return gaussian_blur_2d(out, self.c, self.dst[0].h), defect, 0.0


def chain_laws_2d(steps: Sequence, axes, init_mass, *, out_axes=None,
                  keep: Optional[Sequence[int]] = None, route: str = "auto") -> ChainLaws:
    """Laws of a chain on the 2-D grid ``axes`` (two :class:`Axis` of one spacing; module
    docstring). ``init_mass`` (n1, n2) point masses; ``out_axes`` the grid of the last
    step's output; ``keep`` the step counts after which to keep the law (default all).
    ``lost`` accumulates the pull-backs' mass defects, the push route's skipped and
    unresolved mass and the mass leaving the grid, ``truncation`` the Metropolis proposal and
    push window cut-offs (all error terms in TV). ``route``: ``"auto"`` (push where the noise
    is resolved, else pull-back) or ``"pull"`` (pull-back for every Gaussian step)."""
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
            cache[key] = _Op2(step, axes, dst, route)
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

