r"""Exact laws of 1-D Markov chains on a uniform grid (THEORY.md sections 5 and 8).

A law is a vector of *point masses* :math:`M_i \approx h\,p(x_i)` on the nodes
:math:`x_i = \mathrm{lo} + i h` of an :class:`Axis` (rows of a 2-D array are independent
laws). Each step of :mod:`theory.posterior.chain_steps` becomes a linear operator on such
vectors:

* **Gaussian step, resolved noise** (:math:`c \ge 1.5h` and :math:`c \ge 1.5h\,|m'|` on the
  grid, no jump in the map): the banded kernel :math:`T_{ij} = h\,\varphi_c(x_j - m(x_i))`
  (cut at :math:`9.5c`). The law after the step is the Riemann sum of
  :math:`\int p(x)\varphi_c(\cdot - m(x))\,dx`, whose integrand is smooth on the scale
  :math:`c/|m'| \ge 1.5h`: the error is spectral, about :math:`2e^{-2\pi^2 (1.5)^2} \approx 10^{-19}`
  per step beside the law's own resolution.
* **Gaussian step, small or zero noise, or a map with jumps**: a *conservative transport*
  followed by an exact Gaussian blur. The source density is reconstructed cell by cell from
  the point masses (the quadratic through :math:`M_{i-1}, M_i, M_{i+1}`; its cell integral is
  :math:`M_i + \Delta^2 M_i/24`), its distribution function F is mapped: the mass of a
  destination cell :math:`[E_j, E_{j+1}]` is :math:`\sum_{\text{runs}} |F(u_{j+1}) - F(u_j)|`,
  :math:`u = m^{-1}(E)` on each monotone run of the map (runs split where the map folds, and at
  jumps located by bisection), preimages by bracketed Newton steps on the map itself. The
  cell masses are turned back into point masses (:math:`C_j - \Delta^2 C_j/24`). Mass is
  conserved exactly (telescoping sums) apart from what leaves the grid, for folding and
  jumping maps too; the error is :math:`O(h^4)` where the law is smooth. Then the Gaussian
  blur is the exact Fourier multiplier :math:`e^{-c^2\omega^2/2}` on a zero-padded grid.
* **Metropolis step**: :math:`T_{ij} = h\,q(x_j \mid x_i)\,\alpha(x_i, x_j)` with the Gaussian
  proposal cut at :math:`9.5c`, and the rejected mass :math:`1 - \sum_j T_{ij}` on the
  diagonal (proposals off the grid count as rejected: the bound of that truncation, the
  proposal mass leaving the grid, is added to ``truncation``). The grid chain satisfies
  detailed balance with respect to the target's point masses *exactly*
  (:math:`\pi_i T_{ij} = h\min(\pi_i q_{ij}, \pi_j q_{ji})`), so its stationary law is the target
  on the grid; the acceptance's kink makes the law at finite k converge as :math:`h^2`.
  Requires :math:`c \ge 1.5h|m'|` and :math:`c \ge 1.5h` (else :class:`NoExactLaw`).

:func:`chain_laws_1d` runs a chain (steps repeated as the same object are built once);
:func:`chain_kernel_1d` builds, for conditional steps, the kernel from a centre to the state
after n steps, one row per centre, each row a chain on its own window of the axis started at
the centre (mass leaving a window is counted in ``lost``). Errors of the grid laws come from
refinement (:mod:`theory.posterior.refinement`), plus ``lost`` and ``truncation``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtr

from ..checks import NoExactLaw
from .chain_steps import (ConditionalGaussianStep, ConditionalMetropolisStep, GaussianStep,
                          MetropolisStep)

__all__ = ["Axis", "ChainLaws", "chain_laws_1d", "chain_kernel_1d", "step_operator_1d",
           "build_chain_1d", "iter_chain_1d", "run_ops_1d", "gaussian_blur", "transport_matrix", "RESOLVED"]

RESOLVED = 1.5          # noise resolved when c >= RESOLVED * h (and c/|m'| >= RESOLVED * h)
_CUT = 9.5              # Gaussian kernels cut at 9.5 sd (tail 2e-21)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class Axis:
    """Uniform grid ``lo + h * arange(n)``; cell i is ``[x_i - h/2, x_i + h/2]``."""

    lo: float
    h: float
    n: int

    def __post_init__(self):
        if not (math.isfinite(self.lo) and math.isfinite(self.h) and self.h > 0):
            raise ValueError(f"an axis needs a finite lo and a positive spacing, got "
                             f"{self.lo}, {self.h}")
        if int(self.n) < 2:
            raise ValueError("an axis needs at least 2 nodes")

    @classmethod
    def covering(cls, lo: float, hi: float, h: float, anchor: float = 0.0) -> "Axis":
        """Nodes ``anchor + k h`` covering [lo, hi] (``anchor`` is a node if inside)."""
        k0 = math.floor((lo - anchor) / h + 1e-9)
        k1 = math.ceil((hi - anchor) / h - 1e-9)
        return cls(anchor + k0 * h, float(h), int(k1 - k0 + 1))

    @property
    def nodes(self) -> np.ndarray:
        return self.lo + self.h * np.arange(self.n)

    @property
    def hi(self) -> float:
        return self.lo + self.h * (self.n - 1)

    def index(self, x) -> np.ndarray:
        """Index of the nearest node (clipped)."""
        return np.clip(np.rint((np.asarray(x, float) - self.lo) / self.h), 0,
                       self.n - 1).astype(np.int64)


@dataclass
class ChainLaws:
    """Point masses of the kept laws (``laws[i]`` after step ``steps[i]``, 1-based counts),
    the mass lost off the grid by then, the bound of the Metropolis proposal truncation, and
    the operator used for each kind of step."""

    laws: list
    steps: list
    lost: list
    truncation: list
    paths: dict = field(default_factory=dict)


def _apply_map(fn, x: np.ndarray) -> np.ndarray:
    out = np.asarray(fn(np.asarray(x, float).reshape(-1, 1)), dtype=np.float64)
    return out.reshape(np.shape(x))


def gaussian_blur(M: np.ndarray, c: float, h: float) -> np.ndarray:
    r"""Rows of ``M`` convolved with :math:`N(0, c^2)` (exact Fourier multiplier on a grid
    zero-padded by 10c; what falls outside the rows' range is dropped)."""
    if c <= 0:
        return M
    M = np.atleast_2d(M)
    n = M.shape[-1]
    pad = int(math.ceil(10 * c / h)) + 4
    L = next_fast_len(n + 2 * pad, real=True)
    buf = np.zeros(M.shape[:-1] + (L,))
    buf[..., pad:pad + n] = M
    w = 2 * np.pi * np.fft.rfftfreq(L, d=h)
    out = irfft(rfft(buf, axis=-1) * np.exp(-0.5 * (c * w) ** 2), L, axis=-1)
    return out[..., pad:pad + n]


def _gauss_band(centres, c, dst: Axis):
    """Sparse (len(centres), dst.n) CSR matrix h * phi_c(x_j - centre_i), cut at 9.5 c
    (built directly: a fixed band per row, entries off the grid set to 0), and the band's
    validity mask and values."""
    h = dst.h
    B = int(math.ceil(2 * _CUT * c / h)) + 2
    j0 = np.floor((centres - _CUT * c - dst.lo) / h).astype(np.int64)
    cols = j0[:, None] + np.arange(B)[None, :]
    ok = (cols >= 0) & (cols < dst.n)
    u = (dst.lo + h * cols - centres[:, None]) * (1.0 / c)
    u *= u
    u *= -0.5
    vals = np.exp(u)
    vals *= h / c / math.sqrt(2 * math.pi)
    vals[~ok] = 0.0
    n = centres.size
    T = sp.csr_matrix((vals.ravel(), np.clip(cols, 0, dst.n - 1).ravel(),
                       np.arange(0, n * B + 1, B)), shape=(n, dst.n))
    return T, ok, vals


# -- conservative transport ------------------------------------------------------------------

def _bisect_jumps(fn, a, b, va, vb, iters=34, ways=16):
    """Search on the half-cells [a, b] (arrays) toward the larger change of the map: each
    round evaluates ``ways - 1`` interior points of every bracket in one call and keeps the
    sub-interval with the largest change (the first of equals), until the bracket is at most
    2^-iters of its start (as many bisection steps would leave it; the map's cost is per
    call, not per point, so 9 rounds of 15 points cost about a quarter of 34 halvings);
    returns (location, left value, right value, is_jump)."""
    a, b, va, vb = (np.array(v, dtype=float).ravel() for v in (a, b, va, vb))
    total = np.abs(vb - va)
    rows = np.arange(a.size)
    t = np.arange(1, ways) / ways
    for _ in range(int(math.ceil(iters / math.log2(ways)))):
        X = np.empty((a.size, ways + 1))
        X[:, 0], X[:, -1] = a, b
        X[:, 1:-1] = a[:, None] + (b - a)[:, None] * t
        V = np.empty_like(X)
        V[:, 0], V[:, -1] = va, vb
        V[:, 1:-1] = _apply_map(fn, X[:, 1:-1])
        j = np.argmax(np.abs(np.diff(V, axis=1)), axis=1)
        a, b, va, vb = X[rows, j], X[rows, j + 1], V[rows, j], V[rows, j + 1]
    # the values on either side are read just outside the final bracket: a map can take a
    # value of its own at the jump (DPS's guidance is 0 where the residual is exactly 0, so
    # the map there is the midpoint of its two sides), and a bracket that ends on that point
    # would report it as a side (half the jump: the transport then moved the mass between
    # the sides onto the wrong branch)
    loc = 0.5 * (a + b)
    d = np.maximum(b - a, 64 * np.finfo(float).eps * np.maximum(1.0, np.abs(loc)))
    side = _apply_map(fn, np.concatenate([a - d, b + d]))
    va, vb = side[:a.size], side[a.size:]
    return loc, va, vb, np.abs(vb - va) > 0.5 * total


def _extrema(fn, a, b, maximum, iters=30, ways=16):
    """The extremum of the map on the brackets [a, b] (arrays), for a map unimodal there:
    each round evaluates ``ways - 1`` interior points of every bracket in one call and keeps
    the two cells around the best one, until the bracket is at most what ``iters``
    golden-section steps would leave (0.618^30 = 5e-7 of its start: 7 rounds of 15 points
    instead of 30 calls of 2; the map's cost is per call, not per point)."""
    a, b = np.array(a, float).ravel(), np.array(b, float).ravel()
    g = (math.sqrt(5) - 1) / 2
    sgn = -1.0 if maximum else 1.0
    rows = np.arange(a.size)
    t = np.arange(ways + 1) / ways
    for _ in range(int(math.ceil(iters * math.log(g) / math.log(2.0 / ways)))):
        X = a[:, None] + (b - a)[:, None] * t
        j = np.argmin(sgn * _apply_map(fn, X[:, 1:-1]), axis=1) + 1
        a, b = X[rows, j - 1], X[rows, j + 1]
    x = 0.5 * (a + b)
    return x, _apply_map(fn, x)


def _confirmed_jumps(fn, s, v):
    """Jumps of the map inside half-cells (s_q, s_{q+1}): suspected where the change dwarfs
    both neighbours' (3x) or reverses the trend of both, confirmed by bisection. Returns
    {q: (location, left value, right value)}."""
    dv = np.diff(v)
    adv = np.abs(dv)
    nb = np.maximum(np.concatenate([[0.0], adv[:-1]]), np.concatenate([adv[1:], [0.0]]))
    sg = np.sign(dv)
    prev = np.concatenate([[0.0], sg[:-1]])
    nxt = np.concatenate([sg[1:], [0.0]])
    rev = (sg != 0) & (prev == -sg) & (nxt == -sg)
    sus = np.flatnonzero(((adv > 3 * nb) | rev) & (adv > 1e-9 * max(float(adv.max()), 1e-300)))
    if sus.size == 0:
        return {}
    loc, vl, vr, is_jump = _bisect_jumps(fn, s[sus], s[sus + 1], v[sus], v[sus + 1])
    return {int(q): (float(x0), float(a0), float(b0))
            for q, x0, a0, b0, j in zip(sus, loc, vl, vr, is_jump) if j}


def _runs(fn, s, v, jumps=None):
    """Monotone pieces of the map tabulated at half points ``s`` (values ``v``): a list of
    (source points, values), split at jumps (located by bisection) and where the map folds
    (at the extremum, located by a golden-section search)."""
    dv = np.diff(v)
    jumps = _confirmed_jumps(fn, s, v) if jumps is None else jumps
    sign = np.sign(dv)
    for q in jumps:                           # a jump's half-cell follows its neighbours
        sign[q] = 0
    nz = np.flatnonzero(sign)
    if nz.size == 0:
        return [(s, v)]
    fill = nz[np.clip(np.searchsorted(nz, np.arange(sign.size), side="right") - 1, 0, None)]
    sign = sign[np.where(np.arange(sign.size) < nz[0], nz[0], fill)]
    folds = np.flatnonzero(sign[1:] != sign[:-1]) + 1          # half-point index of a turn
    folds = np.array([f for f in folds if (f - 1) not in jumps and f not in jumps], int)
    if folds.size == 0 and not jumps:
        return [(s, v)]
    turn = {}
    if folds.size:
        lo = s[np.maximum(folds - 1, 0)]
        hi = s[np.minimum(folds + 1, s.size - 1)]
        up = sign[folds - 1] > 0                              # rising then falling: a maximum
        xm, vm = np.empty(folds.size), np.empty(folds.size)
        for flag in (True, False):
            sel = up == flag
            if sel.any():
                xm[sel], vm[sel] = _extrema(fn, lo[sel], hi[sel], flag)
        turn = {int(q): (float(a), float(b)) for q, a, b in zip(folds, xm, vm)}
    pieces, cs, cv = [], [s[0]], [v[0]]
    for q in range(dv.size):                       # half-cell q runs from s[q] to s[q + 1]
        if q in jumps:
            x0, vl, vr = jumps[q]
            pieces.append((np.array(cs + [x0]), np.array(cv + [vl])))
            cs, cv = [x0], [vr]
        if q + 1 in turn:
            x0, v0 = turn[q + 1]
            if x0 < s[q + 1]:                      # the turn lies in this half-cell
                pieces.append((np.array(cs + [x0]), np.array(cv + [v0])))
                cs, cv = [x0, s[q + 1]], [v0, v[q + 1]]
            else:
                cs.append(s[q + 1])
                cv.append(v[q + 1])
                pieces.append((np.array(cs + [x0]), np.array(cv + [v0])))
                cs, cv = [x0], [v0]
            continue
        cs.append(s[q + 1])
        cv.append(v[q + 1])
    pieces.append((np.array(cs), np.array(cv)))
    return [(a, b) for a, b in pieces if a.size >= 2 and a[-1] > a[0]]


def _preimages(fn, ss, vv, E, h):
    """Clamped preimages of the points E on one monotone piece (ss, vv): cubic inverse
    interpolation through the four tabulated values around each crossing (kept in the
    bracketing half-cell), then one Newton step on the map itself (numerical slope)."""
    inc = vv[-1] >= vv[0]
    vs = vv if inc else vv[::-1]
    xs = ss if inc else ss[::-1]
    vs = np.maximum.accumulate(vs)              # flat or rounding-level reversals
    n = vs.size
    q = np.clip(np.searchsorted(vs, E) - 1, 0, n - 2)
    lo_x, hi_x, lo_v, hi_v = xs[q], xs[q + 1], vs[q], vs[q + 1]
    dv = hi_v - lo_v
    t = np.where(dv > 0, (E - lo_v) / np.where(dv > 0, dv, 1.0), 0.5)
    u = lo_x + np.clip(t, 0, 1) * (hi_x - lo_x)
    a, b = np.minimum(lo_x, hi_x), np.maximum(lo_x, hi_x)
    inside = (E > vs[0]) & (E < vs[-1])
    idx = np.flatnonzero(inside & (dv > 0))
    if idx.size and n >= 4:
        i0 = np.clip(q[idx] - 1, 0, n - 4)
        st = i0[:, None] + np.arange(4)
        V, X = vs[st], xs[st]
        ee = E[idx]
        distinct = np.all(np.diff(V, axis=1) > 0, axis=1)
        cub = np.zeros(idx.size)
        for i in range(4):
            w = np.ones(idx.size)
            for j in range(4):
                if j != i:
                    w = w * (ee - V[:, j]) / np.where(distinct, V[:, i] - V[:, j], 1.0)
            cub = cub + w * X[:, i]
        u[idx] = np.where(distinct, np.clip(cub, a[idx], b[idx]), u[idx])
    if idx.size:
        uu, aa, bb, ee = u[idx], a[idx], b[idx], E[idx]
        d = 1e-5 * h
        f = _apply_map(fn, np.concatenate([uu, uu + d, uu - d]))
        k = uu.size
        g = (f[k:2 * k] - f[2 * k:]) / (2 * d)
        step = np.where(np.abs(g) > 0, (f[:k] - ee) / np.where(g != 0, g, 1.0), 0.0)
        u[idx] = np.clip(uu - step, aa, bb)
    u = np.where(E <= vs[0], xs[0], np.where(E >= vs[-1], xs[-1], u))
    return u


def _cdf_coefficients(src: Axis, u):
    """F(u) = S_k + c_{k-1} M_{k-1} + c_k M_k + c_{k+1} M_{k+1} (S_k = sum_{l<k} M_l, the
    common -M_0/24 dropped): returns k and the three coefficients."""
    k = np.clip(np.floor((u - (src.lo - src.h / 2)) / src.h), 0, src.n - 1).astype(np.int64)
    tau = np.clip((u - (src.lo + src.h * k)) / src.h, -0.5, 0.5)
    a = (tau * tau - 0.25) / 4
    b = (tau ** 3 + 0.125) / 6
    return k, -1 / 24 - a + b, 1 / 24 + tau + 0.5 - 2 * b, a + b


def transport_matrix(fn, src: Axis, dst: Axis, vals_half: Optional[np.ndarray] = None,
                     jumps: Optional[dict] = None):
    """Sparse (src.n, dst.n) operator of the deterministic map ``fn`` on point masses
    (module docstring: conservative remap of the reconstructed distribution function,
    run by run, then cell masses to point masses)."""
    s = src.lo - src.h / 2 + (src.h / 2) * np.arange(2 * src.n + 1)
    v = _apply_map(fn, s) if vals_half is None else vals_half
    if not np.all(np.isfinite(v)):
        raise NoExactLaw("the map returned non-finite values on the grid")
    E = dst.lo - dst.h / 2 + dst.h * np.arange(dst.n + 1)
    rows, cols, data = [], [], []
    for ss, vv in _runs(fn, s, v, jumps):
        u = _preimages(fn, ss, vv, E, src.h)
        if vv[-1] < vv[0]:
            u = u[::-1].copy()
            Erev = True
        else:
            Erev = False
        # contribution to dst cell j: F(u[j+1]) - F(u[j]) (u in source order along the run)
        k, c0, c1, c2 = _cdf_coefficients(src, u)
        nj = dst.n
        j = np.arange(nj)
        if Erev:     # u reversed: u[j] belongs to edge nj - j; cell of pair (j, j+1) is nj-1-j
            cell = nj - 1 - j
        else:
            cell = j
        ka, kb = k[:-1], k[1:]
        # full cells S_kb - S_ka
        lens = np.maximum(kb - ka, 0)
        if lens.sum():
            r = np.repeat(cell, lens)
            start = np.repeat(ka, lens)
            off = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
            rows.append(start + off)
            cols.append(r)
            data.append(np.ones(r.size))
        for sgn, kk, cc in ((1.0, kb, (c0[1:], c1[1:], c2[1:])),
                            (-1.0, ka, (c0[:-1], c1[:-1], c2[:-1]))):
            for off, coef in zip((-1, 0, 1), cc):
                idx = kk + off
                ok = (idx >= 0) & (idx < src.n)
                rows.append(idx[ok])
                cols.append(cell[ok])
                data.append(sgn * coef[ok])
    C = sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(src.n, dst.n))
    # cell masses -> point masses: P_j = C_j - (C_{j+1} - 2 C_j + C_{j-1}) / 24
    n = dst.n
    tri = sp.diags([np.full(n - 1, -1 / 24), np.full(n, 1 + 2 / 24), np.full(n - 1, -1 / 24)],
                   [-1, 0, 1], format="csr")
    return (C @ tri).tocsr()


# -- operators --------------------------------------------------------------------------------

class _Op:
    """A built step: ``apply(M)`` on point masses (rows), returning (M', truncation bound)."""

    def __init__(self, matrix=None, blur=0.0, h=1.0, escape=None, path=""):
        self.matrix, self.blur, self.h, self.escape, self.path = matrix, blur, h, escape, path
        self.name = path
        self._mt = None

    def apply(self, M):
        M = np.atleast_2d(M)
        trunc = np.zeros(M.shape[0])
        if self.escape is not None:
            trunc = M @ self.escape
        if self._mt is None:
            # the CSR matrix's transpose is a CSC view of the same arrays: its product with
            # the masses sums over the source nodes in the same order as the CSR of the
            # transpose would, without building that copy (most operators apply once)
            self._mt = self.matrix.T
        out = np.asarray(self._mt @ M.T).T
        if self.blur > 0:
            out = gaussian_blur(out, self.blur, self.h)
        return out, trunc


def step_operator_1d(step, src: Axis, dst: Optional[Axis] = None) -> _Op:
    """The operator of one step from ``src`` to ``dst`` (module docstring)."""
    dst = src if dst is None else dst
    x = src.nodes
    if isinstance(step, MetropolisStep):
        if dst != src:
            raise ValueError("a Metropolis step stays on its grid (dst must equal src)")
        return _metropolis_op(step, src)
    if not isinstance(step, GaussianStep):
        raise ValueError(f"unknown step type {type(step).__name__}")
    c = float(np.max(step.noise_std))
    s = src.lo - src.h / 2 + (src.h / 2) * np.arange(2 * src.n + 1)
    vh = _apply_map(step.map, s)
    if not np.all(np.isfinite(vh)):
        raise NoExactLaw(f"the map of step {step.name!r} is not finite on the grid")
    mv = vh[1::2]
    if step.derivative is not None:
        slope = np.abs(_apply_map(step.derivative, x))
    else:
        slope = np.abs(np.diff(vh)) / (src.h / 2)
    jumps = _confirmed_jumps(step.map, s, vh)
    if c >= RESOLVED * dst.h and c >= RESOLVED * src.h * float(slope.max()) and not jumps:
        T, _, _ = _gauss_band(mv, c, dst)
        return _Op(T, 0.0, dst.h, path="banded Gaussian kernel")
    T = transport_matrix(step.map, src, dst, vals_half=vh, jumps=jumps)
    return _Op(T, c, dst.h, path="conservative transport + Fourier blur")


def _metropolis_op(step: MetropolisStep, ax: Axis) -> _Op:
    x = ax.nodes
    c = float(np.max(step.noise_std))
    mu = _apply_map(step.proposal_map, x)
    lt = np.asarray(step.log_target(x[:, None]), dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(mu))):
        raise NoExactLaw(f"the proposal map of {step.name!r} is not finite on the grid")
    slope = float(np.max(np.abs(np.gradient(mu, ax.h))))
    if c < RESOLVED * ax.h or c < RESOLVED * ax.h * slope:
        raise NoExactLaw(f"the proposal noise {c:.3g} of {step.name!r} is not resolved by the "
                         f"grid (h = {ax.h:.3g}, |m'| up to {slope:.3g}): refine the grid")
    T, ok, q = _gauss_band(mu, c, ax)
    B = q.shape[1]
    j0 = np.floor((mu - _CUT * c - ax.lo) / ax.h).astype(np.int64)
    cols = np.clip(j0[:, None] + np.arange(B)[None, :], 0, ax.n - 1)
    xl = x[:, None]
    xj = x[cols]
    # log acceptance ratio: pi(x_j) q(x_l | x_j) / (pi(x_l) q(x_j | x_l))
    with np.errstate(invalid="ignore", over="ignore"):
        la = (lt[cols] - lt[:, None] - (xl - mu[cols]) ** 2 / (2 * c * c)
              + (xj - mu[:, None]) ** 2 / (2 * c * c))
    la = np.where(np.isnan(la), -np.inf, la)
    acc = np.where(ok, q * np.exp(np.minimum(la, 0.0)), 0.0)
    rows = np.repeat(np.arange(ax.n), B)
    A = sp.csr_matrix((acc.ravel(), (rows, cols.ravel())), shape=(ax.n, ax.n))
    stay = 1.0 - np.asarray(A.sum(1)).ravel()
    A = (A + sp.diags(stay)).tocsr()
    escape = np.maximum(1.0 - q.sum(1), 0.0)      # proposal mass off the grid (bound)
    return _Op(A, 0.0, ax.h, escape=escape, path="Metropolis kernel (banded proposal x "
                                                  "acceptance, rejection on the diagonal)")


def _resolved_on(step, ax: Axis) -> bool:
    """True when a Gaussian step's noise is resolved on ``ax`` (banded-kernel regime)."""
    if isinstance(step, MetropolisStep):
        return True
    c = float(np.max(step.noise_std))
    if c < RESOLVED * ax.h:
        return False
    v = _apply_map(step.map, ax.nodes)
    return c >= RESOLVED * ax.h * float(np.max(np.abs(np.diff(v)))) / ax.h


def build_chain_1d(steps: Sequence, axis: Axis, out_axis: Optional[Axis] = None,
                   in_axis: Optional[Axis] = None, fine_axis: Optional[Axis] = None) -> list:
    """The operators of a chain's steps (:func:`step_operator_1d`; a step object repeated
    gives the same operator), on ``axis``: the first one from ``in_axis`` and the last one
    onto ``out_axis`` if given. With ``fine_axis`` (a finer grid over the same range), every
    step whose successor is not resolved on ``axis`` (small noise, a deterministic map) writes
    its output onto ``fine_axis``, so that the conservative transport of that successor
    reconstructs a finely sampled law; resolved steps stay on ``axis``."""
    return list(iter_chain_1d(steps, axis, out_axis, in_axis, fine_axis, keep_all=True))


def iter_chain_1d(steps: Sequence, axis: Axis, out_axis: Optional[Axis] = None,
                  in_axis: Optional[Axis] = None, fine_axis: Optional[Axis] = None, *,
                  keep_all: bool = False):
    """:func:`build_chain_1d` one operator at a time, for :func:`run_ops_1d` to apply as it
    goes: only the operators of steps that occur more than once are kept (``keep_all``: every
    one, as a list needs), so a chain of distinct steps (DPS: one per t) holds one operator in
    memory, not T (12 GB at T = 2048 on dpnp-annealing's full-mode grids)."""
    steps = list(steps)
    if not steps:
        raise ValueError("a chain needs at least one step")
    fine_next = [False] * len(steps)
    if fine_axis is not None:
        res = {}
        for st in steps:
            if id(st) not in res:
                res[id(st)] = _resolved_on(st, axis)
        fine_next = [not res[id(st)] for st in steps[1:]] + [False]
    counts: dict = {}
    for st in steps:
        counts[id(st)] = counts.get(id(st), 0) + 1
    cache: dict = {}
    src = in_axis if in_axis is not None else axis
    for i, step in enumerate(steps, start=1):
        if out_axis is not None and i == len(steps):
            dst = out_axis
        else:
            dst = fine_axis if fine_next[i - 1] else axis
        key = (id(step), src, dst)
        op = cache.get(key)
        if op is None:
            op = step_operator_1d(step, src, dst)
            op.name = step.name or type(step).__name__
            if keep_all or counts[id(step)] > 1:
                cache[key] = op
        yield op
        src = dst


def run_ops_1d(ops: Sequence, init_mass, keep: Optional[Sequence[int]] = None) -> ChainLaws:
    """Apply built operators (:func:`build_chain_1d`) to point masses (module docstring of
    :func:`chain_laws_1d`)."""
    M = np.asarray(init_mass, dtype=np.float64)
    squeeze = M.ndim == 1
    M = np.atleast_2d(M)
    keep = None if keep is None else set(int(k) for k in keep)     # None: every step
    total0 = M.sum(1)
    trunc = np.zeros(M.shape[0])
    out = ChainLaws([], [], [], [], {})
    for i, op in enumerate(ops, start=1):      # a list, or iter_chain_1d's operators
        out.paths[op.name] = op.path
        M, t = op.apply(M)
        trunc = trunc + t
        if keep is None or i in keep:
            out.laws.append(M[0].copy() if squeeze else M.copy())
            out.steps.append(i)
            out.lost.append(float(np.max(np.abs(total0 - M.sum(1)))))
            out.truncation.append(float(np.max(trunc)))
    return out


def chain_laws_1d(steps: Sequence, axis: Axis, init_mass, *, out_axis: Optional[Axis] = None,
                  keep: Optional[Sequence[int]] = None) -> ChainLaws:
    """Laws of a chain on the grid ``axis`` (module docstring).

    Parameters
    ----------
    steps : list of GaussianStep / MetropolisStep
        Applied in order; a step object repeated is built once.
    axis : Axis
    init_mass : array (axis.n,) or (R, axis.n)
        Point masses of the initial law (rows: independent initial laws).
    out_axis : Axis, optional
        Grid of the last step's output (a final map onto another grid).
    keep : list of int, optional
        Step counts (1..len(steps)) after which to keep the law (default: every step).

    Returns
    -------
    ChainLaws (laws have the shape of ``init_mass``): ``lost`` is the mass that left the grid
    by then (an error term of the law in TV), ``truncation`` the bound of the Metropolis
    proposals cut off at the grid's ends.
    """
    M = np.asarray(init_mass, dtype=np.float64)
    if M.shape[-1] != axis.n:
        raise ValueError(f"init_mass has {M.shape[-1]} nodes, the axis {axis.n}")
    return run_ops_1d(build_chain_1d(steps, axis, out_axis), M, keep)


# -- conditional chains: a kernel from the centre ------------------------------------------

def chain_kernel_1d(steps: Sequence, centres: np.ndarray, axis: Axis, windows: np.ndarray,
                    keep: Sequence[int], max_bytes: float = 4e6):
    r"""Kernel from a centre to the state of a conditional chain after n steps.

    Row r is the chain of ``steps`` (ConditionalGaussianStep / ConditionalMetropolisStep,
    whose callables see ``centres[r]``) started at the node ``centres[r]`` of ``axis`` and run
    on the nodes of ``axis`` inside ``windows[r] = [lo, hi]`` (per-row dense kernels; mass
    proposed outside a window is lost for a Gaussian step and rejected for a Metropolis one,
    both counted). The noise must be resolved (:math:`c \ge 1.5h`, :math:`c \ge 1.5h|m'|`),
    else :class:`NoExactLaw`.

    Returns
    -------
    kernels : dict n -> array (R, axis.n), point masses of the state after n steps
    lost : dict n -> array (R,), mass lost off the windows (or truncated) by then
    """
    centres = np.asarray(centres, float).reshape(-1)
    keep = sorted(set(int(k) for k in keep))
    if keep[0] < 1 or keep[-1] > len(steps):
        raise ValueError(f"keep must lie in 1..{len(steps)}")
    idx_c = axis.index(centres)
    if np.max(np.abs(axis.lo + axis.h * idx_c - centres)) > 1e-7 * axis.h:
        raise ValueError("the centres of a conditional chain must be nodes of its axis")
    lo_i = axis.index(np.minimum(windows[:, 0], centres))
    hi_i = axis.index(np.maximum(windows[:, 1], centres))
    W = int(np.max(hi_i - lo_i + 1))
    lo_i = np.clip(np.minimum(lo_i, axis.n - W), 0, None)
    R = centres.size
    kernels = {k: np.zeros((R, axis.n)) for k in keep}
    lost = {k: np.zeros(R) for k in keep}
    chunk = max(1, int(max_bytes // (8 * W * W)))
    x = axis.nodes
    for r0 in range(0, R, chunk):
        rr = np.arange(r0, min(R, r0 + chunk))
        off = lo_i[rr]
        zw = x[off[:, None] + np.arange(W)[None, :]]                     # (r, W)
        cw = np.broadcast_to(centres[rr][:, None], zw.shape)
        L = np.zeros((rr.size, W))
        L[np.arange(rr.size), idx_c[rr] - off] = 1.0
        built: dict = {}
        gone = np.zeros(rr.size)
        for i, step in enumerate(steps, start=1):
            if id(step) not in built:
                built[id(step)] = _conditional_matrices(step, zw, cw, axis.h)
            T, esc = built[id(step)]
            gone = gone + (L * esc).sum(1)
            L = np.matmul(L[:, None, :], T)[:, 0, :]
            if i in kernels:
                kernels[i][rr[:, None], off[:, None] + np.arange(W)[None, :]] = L
                lost[i][rr] = gone
    return kernels, lost


def _conditional_matrices(step, zw, cw, h):
    r"""Per-row dense (W x W) kernels of a conditional step on the windows ``zw`` (r, W), and
    the proposal mass leaving each window from each node (r, W). For a Metropolis step
    :math:`\log T_{lj} = \log(h/c\sqrt{2\pi}) + \min(F_{lj}, F_{jl}) - \log\pi_l` with
    :math:`F_{lj} = \log\pi_l - (z_j - m_l)^2/(2c^2)`, which is the proposal density times
    the acceptance probability (and shows the detailed balance)."""
    r, W = zw.shape
    flat_z, flat_c = zw.reshape(-1, 1), cw.reshape(-1, 1)
    c = float(np.max(step.noise_std))
    if isinstance(step, ConditionalGaussianStep):
        mu = np.asarray(step.map(flat_z, flat_c), float).reshape(r, W)
    elif isinstance(step, ConditionalMetropolisStep):
        mu = np.asarray(step.proposal_map(flat_z, flat_c), float).reshape(r, W)
    else:
        raise ValueError(f"chain_kernel_1d needs conditional steps, got {type(step).__name__}")
    slope = float(np.max(np.abs(np.diff(mu, axis=1)))) / h
    if c < RESOLVED * h or c < RESOLVED * h * slope:
        raise NoExactLaw(f"the noise {c:.3g} of step {step.name!r} is not resolved by the grid "
                         f"(h = {h:.3g}, |m'| up to {slope:.3g}): refine the grid")
    # proposal mass off the window from each node (the window's cells, Gaussian integral)
    inside = (ndtr((zw[:, -1:] + h / 2 - mu) / c) - ndtr((zw[:, :1] - h / 2 - mu) / c))
    full = np.maximum(1.0 - inside, 0.0)
    logK = math.log(h / c) - _LOG_SQRT_2PI
    F = zw[:, None, :] - mu[:, :, None]                                  # (r, from, to)
    F *= F
    F *= -0.5 / (c * c)
    if isinstance(step, ConditionalGaussianStep):
        F += logK
        np.exp(F, out=F)
        return F, full
    lt = np.asarray(step.log_target(flat_z, flat_c), float).reshape(r, W)
    F += lt[:, :, None]
    T = np.minimum(F, F.transpose(0, 2, 1))
    T -= lt[:, :, None]
    T += logK
    np.exp(T, out=T)
    d = np.arange(W)
    T[:, d, d] += 1.0 - T.sum(2)
    # off-window proposals are rejected: the error is at most the proposal mass off the window
    return T, full
