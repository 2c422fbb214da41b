r"""Exact laws of DPnP with *any* sub-samplers on a 1-D grid (THEORY.md sections 6 and 8;
Xu & Chi, arXiv:2403.17042).

The outer step of DPnP is :math:`\mu_{k+1} = (\mu_k P_{\eta_k}) D_{\eta_k}`: the PCS kernel from
:math:`x_k` (x grid) to :math:`x_{k+1/2}` (z grid) and the DDS kernel back. On the grids of
:class:`theory.posterior.grid1d.Grid1D`:

* PCS ``exact``: :meth:`Grid1D.pcs`. PCS ``ula`` / ``mala`` (n Langevin steps of time step h
  started at :math:`x_k`): the chain's state is (centre, z), so the kernel is built once per
  (eta, n) by :func:`theory.posterior.chains1d.chain_kernel_1d`: one row per x node, each a
  chain on the z nodes of a window holding the PCS target's mass (log target within 37 of its
  maximum) and the centre, widened by 6 noise sd for ULA and 1.5 for MALA (whose proposals
  beyond are rejected anyway); mass leaving a window (ULA) and the proposal mass sent off it
  (MALA, a bound) are counted as lost.
  All step counts n of a sweep come from one propagation.
* DDS ``exact``: :meth:`Grid1D.dds`. DDS ``sde``: the reverse SDE's Gaussian steps
  (:func:`theory.posterior.sampler_steps.dds_sde_steps`) applied to the law of
  :math:`x_{k+1/2}` by :func:`theory.posterior.chains1d.run_ops_1d` (operators built once per
  eta); the steps whose noise the z grid does not resolve (the last ones, near the final noise
  level, and Tweedie's map back onto x) read their input from a grid 4 times finer (their
  :math:`O(h^4)` transport runs many times per outer step). DDS ``ode``: a deterministic map :math:`\Phi_z` of fresh N(0, 1) noise
  (:func:`theory.posterior.plug_and_play.dds_ode_map`) for each z node: :math:`\Phi_z` is
  tabulated on a noise grid by running the sampler itself (halving every noise interval whose
  image is wider than h/2, where the flow separates the modes), inverted at the x cells' edges
  by cubic inverse interpolation, and the kernel row is :math:`\Phi(u_{j+1}) - \Phi(u_j)` (the
  normal CDF at the preimages; cell masses, then point masses). Rows are computed for the z
  nodes that carry mass (above 1e-17 of the largest; the rest is counted as lost) and cached.

Distances to :math:`\pi_\eta` and the posterior are grid TVs on a grid 8 times finer
(trigonometric interpolation of the laws, :func:`theory.posterior.grid_base.tv_spectral`:
the kinks of :math:`|p - q|` then no longer dominate the refinement differences); the error
of every number comes from :func:`dpnp_grid_refinement` (three levels, plus the lost mass).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from scipy.signal import resample
from scipy.sparse import csr_matrix
from scipy.special import ndtr

from ..checks import NoExactLaw
from ..priors import Prior
from .chains1d import Axis, build_chain_1d, chain_kernel_1d, run_ops_1d
from .grid1d import Grid1D
from .grid_base import tv_spectral_and_kink
from .inits import init_mass, point_init
from .likelihoods import Likelihood
from .plug_and_play import (DDSConfig, PCSConfig, dds_ode_map, default_pcs_step,
                            langevin_coefficients)
from .refinement import check_refinable, refine
from .sampler_steps import dds_sde_steps, langevin_steps

__all__ = ["DPnPGrid1D", "dpnp_grid_refinement", "ode_kernel_rows"]

_WINDOW_LOG = 37.0           # window: log target within 37 of its maximum (1e-16)
_ROW_TOL = 1e-17             # DDS-ode rows computed where the law carries this much
_SPLIT_MASS = 1e-14          # DDS-ode noise intervals lighter than this are not split
SUB = 4                      # the reverse-SDE DDS runs on a grid SUB times finer than z


class DPnPGrid1D:
    """Laws of DPnP's iterates on a 1-D grid for any PCS (exact, ula, mala) and DDS (exact,
    sde, ode) (module docstring).

    Parameters
    ----------
    prior, lik : 1-D prior and likelihood
    etas : the levels that will be used (grid margins and spacing)
    pcs, dds : PCSConfig, DDSConfig
    h : grid spacing (default: 1/6 of the narrowest scale, the Langevin noise among the
        scales: the coarsest refinement level 4h then resolves it at 1.5 points per sd)
    init : the init law (a point init is put on a node)
    level_grids : run each outer step on a grid of its own level (:meth:`level_factors`):
        ``True`` computes the factors from ``h``, a dict ``eta -> (m, stride)`` uses those
        (the refinement passes its finest level's factors to the coarser ones, so that every
        level grid scales with h)
    centre_stride, pcs_lattice : Langevin PCS rows computed from every ``centre_stride``-th
        centre only, by chains on every ``pcs_lattice``-th z node, and interpolated in
        between (:meth:`_strided_kernels`)
    lo, hi, anchor : the x grid's range and a node (default: :class:`Grid1D`'s)
    """

    def __init__(self, prior: Prior, lik: Likelihood, etas: Sequence[float],
                 pcs: PCSConfig = PCSConfig(), dds: DDSConfig = DDSConfig(), *,
                 h: Optional[float] = None, init: str = "standard-normal",
                 level_grids=False, centre_stride: int = 1, lo: Optional[float] = None,
                 hi: Optional[float] = None, anchor: Optional[float] = None,
                 pcs_lattice: int = 1):
        self.prior, self.lik, self.pcs_cfg, self.dds_cfg = prior, lik, pcs, dds
        etas = [float(e) for e in etas]
        self.centre_stride, self.pcs_lattice = int(centre_stride), int(pcs_lattice)
        if self.centre_stride % self.pcs_lattice:
            raise ValueError("the PCS centre stride must be a multiple of its lattice factor")
        scales = {}
        if pcs.method != "exact":
            cb = min(langevin_coefficients(e, self._pcs_step(e))[2] for e in etas)
            scales["the PCS Langevin noise"] = cb
        if isinstance(init, str) and init.startswith("point:"):
            anchor = float(point_init(init, 1)[0])
            kinks = lik.kinks_1d()
            if kinks and h is not None and abs(((anchor - kinks[0]) / h) % 1) > 1e-9:
                raise NoExactLaw("the point init and the likelihood's kink cannot both be nodes")
        if h is None:
            h = min(Grid1D.problem_scales(prior, lik, max(etas), min(etas), scales).values()) / 6
        self.grid = Grid1D(prior, lik, h=h, eta_max=max(etas), eta_min=min(etas),
                           scales=scales, anchor=anchor, lo=lo, hi=hi)
        if anchor is not None and lik.kinks_1d():
            k = lik.kinks_1d()[0]
            if abs(((anchor - k) / self.grid.h) % 1) > 1e-9 and \
                    abs(((anchor - k) / self.grid.h) % 1 - 1) > 1e-9:
                raise NoExactLaw("the point init and the likelihood's kink cannot both be nodes")
        self.h = self.grid.h
        self.zaxis = self.grid.zaxis
        self.xaxis = self.grid.axis
        self._pcs_k: dict = {}
        self._dds_ops: dict = {}
        self._ode_rows: dict = {}
        self._subs: dict = {}
        if level_grids is True:
            self.level_factors = self.compute_level_factors(etas)
        elif level_grids:
            self.level_factors = {float(e): tuple(v) for e, v in dict(level_grids).items()}
        else:
            self.level_factors = None
        if self.level_factors is not None and isinstance(init, str) and \
                init.startswith("point:"):
            raise NoExactLaw("level grids start from a law on the x grid, not a point init")

    def compute_level_factors(self, etas: Sequence[float]) -> dict:
        r"""Per level eta: the spacing factor m and the PCS centre stride of its grid.

        Level eta's grid has spacing :math:`m h`, m the largest integer with
        :math:`m h \le s_\eta / 6`, :math:`s_\eta` the narrowest scale *of that level*
        (:meth:`Grid1D.problem_scales` with eta_min = eta_max = eta, and the PCS Langevin
        noise at eta), so that every level is resolved as finely as the common grid
        resolves the narrowest level (6 points per scale; the refinement's 4h level at
        1.5). Its Langevin PCS chains run on every q-th node, q the largest integer with
        :math:`q m h \le` 1/6 of the PCS's own scales (its noise, eta, the likelihood's
        width: the prior's, which may set m, does not enter the PCS), and its rows are
        computed from every ``stride``-th centre, ``stride`` the largest multiple of q with
        :math:`\mathrm{stride}\cdot m h \le w/16`, w the likelihood's width
        (:meth:`pcs_kernels`). All are integers fixed for every refinement level, so that
        every length of the computation scales with h. Returns eta -> (m, stride, q)."""
        out = {}
        for e in sorted(set(float(v) for v in etas)):
            sc = {}
            if self.pcs_cfg.method != "exact":
                sc["the PCS Langevin noise"] = langevin_coefficients(e, self._pcs_step(e))[2]
            scales = Grid1D.problem_scales(self.prior, self.lik, e, e, sc)
            m = max(1, int(np.floor(min(scales.values()) / (6 * self.h) + 1e-9)))
            q = 1
            if self.pcs_cfg.method != "exact":
                pcs_scales = [sc["the PCS Langevin noise"], e,
                              scales.get("the likelihood's width", e)]
                q = max(1, int(np.floor(min(pcs_scales) / (6 * m * self.h) + 1e-9)))
            w = scales.get("the likelihood's width", min(scales.values()))
            stride = max(1, int(np.floor(w / (16 * q * m * self.h) + 1e-9))) * q
            out[e] = (m, stride, q)
        return out

    def _sub(self, eta):
        """The grid of level eta (:meth:`compute_level_factors`): its x nodes are every m-th
        node of the common x grid (the anchor among them); returns (grid, m, first index)."""
        if eta not in self._subs:
            m, stride, q = self.level_factors[eta]
            ax = self.xaxis
            ia = int(round((self.grid.anchor - ax.lo) / self.h))
            i0 = ia % m
            i1 = i0 + m * ((ax.n - 1 - i0) // m)
            sub = DPnPGrid1D(self.prior, self.lik, [eta], self.pcs_cfg, self.dds_cfg,
                             h=m * self.h, lo=ax.lo + i0 * self.h, hi=ax.lo + i1 * self.h,
                             anchor=self.grid.anchor, centre_stride=stride, pcs_lattice=q)
            if sub.xaxis.n != (i1 - i0) // m + 1 or abs(sub.xaxis.lo - (ax.lo + i0 * self.h)) \
                    > 1e-9 * self.h:
                raise RuntimeError("the level grid is not nested in the common grid")
            self._subs[eta] = (sub, m, i0)
        return self._subs[eta]

    def _to_level(self, mu, eta):
        """Point masses on the common x grid -> on level eta's x grid (the density sampled at
        every m-th node), and the mass of the common nodes left outside."""
        sub, m, i0 = self._sub(eta)
        n = sub.xaxis.n
        out = m * mu[i0:i0 + m * (n - 1) + 1:m]
        left = float(np.abs(mu[:i0]).sum() + np.abs(mu[i0 + m * (n - 1) + 1:]).sum())
        return out, left

    def _from_level(self, mu_l, eta):
        """Point masses on level eta's x grid -> on the common x grid: the density's
        trigonometric interpolation (zero-padded spectrum; the laws vanish at the grid's ends,
        so the periodic extension is smooth), sampled at the common nodes."""
        sub, m, i0 = self._sub(eta)
        if m == 1:
            out = np.zeros(self.xaxis.n)
            out[i0:i0 + mu_l.size] = mu_l
            return out
        fine = resample(mu_l, m * mu_l.size) / m
        out = np.zeros(self.xaxis.n)
        k = min(fine.size, self.xaxis.n - i0)
        out[i0:i0 + k] = fine[:k]
        return out

    def _pcs_step(self, eta):
        c = self.pcs_cfg
        return c.step if c.step is not None else default_pcs_step(self.lik, eta, c.step_factor)

    # -- PCS --------------------------------------------------------------------------------
    def _windows(self, centres, eta, cb):
        g = self.grid
        lt = g.loglik_z[None, :] - (g.z[None, :] - centres[:, None]) ** 2 / (2 * eta * eta)
        ok = lt >= lt.max(1, keepdims=True) - _WINDOW_LOG
        zlo = np.where(ok, g.z[None, :], np.inf).min(1)
        zhi = np.where(ok, g.z[None, :], -np.inf).max(1)
        pad = (1.5 if self.pcs_cfg.method == "mala" else 6.0) * cb
        return np.stack([np.minimum(zlo, centres) - pad, np.maximum(zhi, centres) + pad], 1)

    def pcs_kernels(self, eta: float, ns: Sequence[int], centres=None):
        """Langevin PCS kernels from the x nodes (or ``centres``) to the z grid after each n in
        ``ns`` (dict n -> (kernel (R, n_z) as a sparse CSR matrix, lost (R,))), one
        propagation for all n; cached."""
        eta = float(eta)
        ns = sorted(set(int(n) for n in ns))
        key_c = None if centres is None else tuple(np.round(np.asarray(centres) / self.h))
        need = [n for n in ns if (eta, n, key_c) not in self._pcs_k]
        if need:
            c = self.pcs_cfg
            step = self._pcs_step(eta)
            cb = langevin_coefficients(eta, step)[2]
            steps = langevin_steps(self.lik, eta, step, max(need), c.method == "mala")
            if centres is None and (self.centre_stride > 1 or self.pcs_lattice > 1):
                K, lost = self._strided_kernels(steps, eta, cb, need)
                for n in need:
                    self._pcs_k[(eta, n, key_c)] = (K.pop(n), lost[n])
                return {n: self._pcs_k[(eta, n, key_c)] for n in ns}
            cen = self.grid.x if centres is None else np.asarray(centres, float)
            K, lost = chain_kernel_1d(steps, cen, self.zaxis, self._windows(cen, eta, cb), need)
            for n in need:      # sparse: a row is non-zero only on its window
                self._pcs_k[(eta, n, key_c)] = (csr_matrix(K.pop(n)), lost[n])
        return {n: self._pcs_k[(eta, n, key_c)] for n in ns}

    def _strided_kernels(self, steps, eta, cb, need):
        r"""Langevin PCS rows from every ``s``-th x node (s = ``centre_stride``, three more
        beyond each end), the rows of the other centres by 6-point Lagrange interpolation in
        the centre at fixed *offset* :math:`z - x`: in the offset u the PCS target is
        :math:`\ell(x + u) - u^2/(2\eta^2)` and every chain starts at u = 0, so the row is a
        smooth function of the centre on the likelihood's scale (not eta's); the offsets of
        every row are nodes (the centres are). The interpolation error
        (:math:`O((s h / w)^6)`, plus the grid chain's own kinks interpolated) scales with h
        and is part of what the refinement measures. The lost mass of a row is bounded by
        the weights' absolute sum times its stencil's largest."""
        st, q, h, x, z = self.centre_stride, self.pcs_lattice, self.h, self.grid.x, self.zaxis
        R, mg = x.size, self.grid.margin
        a = np.arange(-3, (R - 1) // st + 4)
        ci = a * st                                       # x-node index of coarse centres
        if ci[0] + mg < 0 or ci[-1] + mg > z.n - 1:
            raise NoExactLaw("the PCS centre stride reaches beyond the z grid")
        cen = x[0] + h * ci
        r0 = mg % q                                        # the chains' lattice: z nodes r0 + q j
        zl = Axis(z.lo + r0 * h, q * h, (z.n - 1 - r0) // q + 1)
        K, lost = chain_kernel_1d(steps, cen, zl, self._windows(cen, eta, cb), need)
        if q > 1:                                          # point masses at q h -> at h
            K = {n: _lagrange_refine(v, q)[:, :z.n - r0] for n, v in K.items()}
            K = {n: np.pad(v, ((0, 0), (r0, z.n - r0 - v.shape[1]))) for n, v in K.items()}
        cz = ci + mg                                      # z index of each coarse centre
        # Lagrange weights of the stencil a0-2..a0+3 at the fraction t of the fine centres
        i = np.arange(R)
        a0, t = i // st, (i % st) / st
        nodes = np.arange(-2, 4)
        wts = np.ones((R, 6))
        for p in range(6):
            for q in range(6):
                if q != p:
                    wts[:, p] *= (t - nodes[q]) / (nodes[p] - nodes[q])
        rows_c = a0[:, None] + nodes[None, :] + 3          # index into the coarse list
        outK, outL = {}, {}
        for n in need:
            Kc = K.pop(n)
            nzr = Kc != 0
            first = np.argmax(nzr, 1) - cz
            last = Kc.shape[1] - 1 - np.argmax(nzr[:, ::-1], 1) - cz
            jlo, jhi = int(first.min()), int(last.max())
            J = np.arange(jlo, jhi + 1)
            cols = cz[:, None] + J[None, :]
            ok = (cols >= 0) & (cols < z.n)
            O = np.where(ok, Kc[np.arange(Kc.shape[0])[:, None], np.clip(cols, 0, z.n - 1)],
                         0.0)
            del Kc
            Of = np.einsum("rs,rsj->rj", wts, O[rows_c])
            colf = (i + mg)[:, None] + J[None, :]
            okf = (colf >= 0) & (colf < z.n)
            Of[~okf] = 0.0
            M = csr_matrix((Of.ravel(), np.clip(colf, 0, z.n - 1).ravel(),
                            np.arange(0, R * J.size + 1, J.size)), shape=(R, z.n))
            M.sum_duplicates()
            outK[n] = M
            outL[n] = (np.abs(wts) * lost[n][rows_c]).sum(1)
        return outK, outL

    def pcs(self, mu, eta, n: Optional[int] = None):
        """Law of x_{k+1/2} on the z grid from the law of x_k, and the mass lost."""
        if self.pcs_cfg.method == "exact":
            return self.grid.pcs(mu, eta), 0.0
        n = self.pcs_cfg.n_steps if n is None else int(n)
        K, lost = self.pcs_kernels(eta, [n])[n]
        return np.asarray(K.T @ mu).ravel(), float(mu @ lost)

    # -- DDS --------------------------------------------------------------------------------
    def _ode_kernel_rows(self, eta, rows):
        return ode_kernel_rows(self.prior, self.dds_cfg, eta, self.grid.z[rows], self.xaxis)

    def dds(self, nu, eta):
        """Law of x_{k+1} on the x grid from the law of x_{k+1/2}, and the mass lost."""
        eta = float(eta)
        m = self.dds_cfg.method
        if m == "exact":
            return self.grid.dds(nu, eta), 0.0
        if m == "sde":
            if eta not in self._dds_ops:
                c = self.dds_cfg
                steps = dds_sde_steps(self.prior, eta, c.n_steps, c.rule_name, c.final_noise)
                z = self.zaxis
                work = Axis(z.lo, z.h / SUB, SUB * (z.n - 1) + 1)
                # one eta's operators kept: a schedule repeats an eta in consecutive outer
                # steps (constant, the reference code's) or not at all (geometric), and the
                # operators of every eta at once took 12 GB at 127 DDS steps on full-mode grids
                self._dds_ops.clear()
                self._dds_ops[eta] = build_chain_1d(steps, z, self.xaxis, fine_axis=work)
            res = run_ops_1d(self._dds_ops[eta], nu, keep=[len(self._dds_ops[eta])])
            return res.laws[0], res.lost[0] + res.truncation[0]
        # ode: rows for the z nodes carrying mass, cached per eta
        cache = self._ode_rows.setdefault(eta, {})
        active = np.flatnonzero(np.abs(nu) > _ROW_TOL * np.abs(nu).max())
        new = [int(r) for r in active if int(r) not in cache]
        if new:
            rows, unres = self._ode_kernel_rows(eta, np.asarray(new))
            for r, row, u in zip(new, rows, unres):
                cache[r] = (row, u)
        K = np.stack([cache[int(r)][0] for r in active])
        unres = np.array([cache[int(r)][1] for r in active])
        out = nu[active] @ K
        return out, float(np.abs(nu).sum() - np.abs(nu[active]).sum() + np.abs(nu[active]) @ unres)

    # -- the chain --------------------------------------------------------------------------
    def laws(self, etas: Sequence[float], init: str = "standard-normal",
             pcs_steps: Optional[int] = None):
        """Laws of x_1..x_K and the cumulated lost mass after each."""
        etas = [float(e) for e in etas]
        g = self.grid
        lost = 0.0
        if self.level_factors is not None:
            return self._level_laws(etas, init, pcs_steps)
        if isinstance(init, str) and init.startswith("point:"):
            x0 = float(point_init(init, 1)[0])
            if self.pcs_cfg.method == "exact":
                nu, l0 = g.pcs_matrix(etas[0], np.array([x0]))[0], 0.0
            else:
                n = self.pcs_cfg.n_steps if pcs_steps is None else pcs_steps
                K, lo = self.pcs_kernels(etas[0], [n], centres=[x0])[n]
                nu, l0 = K[[0]].toarray()[0], float(lo[0])
        else:
            nu, l0 = self.pcs(init_mass(init, g.x, self.prior), etas[0], pcs_steps)
        mu, l1 = self.dds(nu, etas[0])
        lost += l0 + l1
        out, losts = [mu], [lost]
        for eta in etas[1:]:
            nu, l0 = self.pcs(out[-1], eta, pcs_steps)
            mu, l1 = self.dds(nu, eta)
            lost += l0 + l1
            out.append(mu)
            losts.append(lost)
        return out, losts

    def _level_laws(self, etas, init, pcs_steps):
        r"""The laws with level grids: outer step k samples the law of :math:`x_k` onto level
        :math:`\eta_k`'s grid, runs the PCS and the DDS there, and interpolates the law of
        :math:`x_{k+1}` back onto the common grid (:meth:`_from_level`)."""
        mu = init_mass(init, self.grid.x, self.prior)
        lost, out, losts = 0.0, [], []
        for k, eta in enumerate(etas):
            sub = self._sub(eta)[0]
            ml, left = self._to_level(mu, eta)
            nu, l0 = sub.pcs(ml, eta, pcs_steps)
            mx, l1 = sub.dds(nu, eta)
            if eta not in etas[k + 1:]:
                # each level keeps its own DDS operators: kept for every level of a schedule
                # whose etas all differ they took 12 GB (127 DDS steps, full-mode grids of
                # dpnp-annealing); an eta that does not come again frees them here
                sub._dds_ops.clear()
            mu = self._from_level(mx, eta)
            lost += left + l0 + l1
            out.append(mu)
            losts.append(lost)
        return out, losts

    def run(self, etas: Sequence[float], init: str = "standard-normal",
            pcs_steps: Optional[int] = None) -> dict:
        """TV(law x_k, pi_eta_k), TV(law x_k, posterior), TV(pi_eta, posterior), lost mass."""
        laws, lost = self.laws(etas, init, pcs_steps)
        post = self.grid.posterior()
        if self.level_factors is not None:   # pi_eta on its level's grid (the common one
            pis = {float(e): self._from_level(self._sub(float(e))[0].grid.pi_eta(float(e)),
                                              float(e)) for e in set(float(e) for e in etas)}
        else:                                 # would need margins of 12 eta_max at h_min)
            pis = {float(e): self.grid.pi_eta(e) for e in set(float(e) for e in etas)}
        tv = {"tv_pi": [tv_spectral_and_kink(m, pis[float(e)]) for m, e in zip(laws, etas)],
              "tv_post": [tv_spectral_and_kink(m, post) for m in laws],
              "tv_pi_post": [tv_spectral_and_kink(pis[float(e)], post) for e in etas]}
        return {**{k: [t[0] for t in v] for k, v in tv.items()},
                "kink": {k: [t[1] for t in v] for k, v in tv.items()},
                "lost": lost, "laws": laws, "x": self.grid.x,
                "info": {"h": self.h, "n_x": int(self.grid.x.size),
                         "n_z": int(self.grid.z.size), "level_factors": self.level_factors}}


def _lagrange_refine(M, q: int):
    """Rows of point masses at spacing q h (zero beyond their ends) -> point masses at spacing
    h on the same range (length q (n - 1) + 1): the density by 6-point Lagrange
    interpolation (stencil -2..3 around each interval), times 1/q."""
    R, n = M.shape
    P = np.pad(M, ((0, 0), (2, 3)))
    out = np.zeros((R, q * (n - 1) + 1))
    nodes = np.arange(-2, 4)
    for t in range(q):
        w = np.ones(6)
        for p in range(6):
            for r in range(6):
                if r != p:
                    w[p] *= (t / q - nodes[r]) / (nodes[p] - nodes[r])
        acc = sum(w[p] * P[:, p:p + n] for p in range(6))       # intervals j -> j + 1
        out[:, t::q] = acc[:, :out[:, t::q].shape[1]]
    return out / q


def _ode_map(prior, c, eta, z, eps):
    zt = torch.as_tensor(np.asarray(z, float)[:, None], dtype=torch.float64)
    et = torch.as_tensor(np.asarray(eps, float)[:, None], dtype=torch.float64)
    with torch.no_grad():
        return dds_ode_map(prior, zt, et, eta, n_steps=c.n_steps, rule=c.rule_name,
                           final_noise=c.final_noise).numpy()[:, 0]


def ode_kernel_rows(prior: Prior, dds: DDSConfig, eta: float, z: np.ndarray, xaxis: Axis):
    """DDS-ode kernel rows (point masses on ``xaxis``) for the points ``z`` (1-D prior), and the
    mass of noise intervals whose image stayed wider than a cell (an error bound).

    The map of each row is tabulated on a noise grid of spacing h, then every interval
    whose image is wider than h/2 and whose noise mass exceeds 1e-14 is halved (all rows
    batched in one call of the sampler per pass, up to 16 passes), so that the cubic
    inverse interpolation sees several samples per x cell even where the flow separates
    the modes steeply; the mass of intervals still wider than h is the error bound."""
    h = xaxis.h
    eps0 = Axis.covering(-9.5, 9.5, h, 0.0).nodes
    v0 = _ode_map(prior, dds, eta, np.repeat(z, eps0.size), np.tile(eps0, z.size))
    tab = [(eps0.copy(), row) for row in v0.reshape(z.size, eps0.size)]
    for _ in range(16):
        new_r, new_e = [], []
        for r, (e, v) in enumerate(tab):
            wide = np.flatnonzero((np.diff(v) > h / 2)
                                  & (ndtr(e[1:]) - ndtr(e[:-1]) > _SPLIT_MASS))
            if wide.size:
                new_r.append(np.full(wide.size, r))
                new_e.append(0.5 * (e[wide] + e[wide + 1]))
        if not new_r:
            break
        rr, ee = np.concatenate(new_r), np.concatenate(new_e)
        vv = _ode_map(prior, dds, eta, z[rr], ee)
        for r in np.unique(rr):
            sel = rr == r
            e = np.concatenate([tab[r][0], ee[sel]])
            v = np.concatenate([tab[r][1], vv[sel]])
            o = np.argsort(e)
            tab[r] = (e[o], v[o])
    x = xaxis
    E = x.lo - h / 2 + h * np.arange(x.n + 1)
    out = np.empty((z.size, x.n))
    unresolved = np.zeros(z.size)
    for r, (e, v) in enumerate(tab):
        if not np.all(np.diff(v) > 0):
            raise NoExactLaw("the deterministic DDS map is not increasing on the noise grid")
        wide = np.flatnonzero(np.diff(v) > h)
        unresolved[r] = float(np.sum(ndtr(e[wide + 1]) - ndtr(e[wide])))
        u = _inverse_monotone(e, v[None, :], E)[0]
        cells = np.diff(ndtr(u))
        out[r] = cells * (1 + 2 / 24)
        out[r, 1:] -= cells[:-1] / 24
        out[r, :-1] -= cells[1:] / 24
    return out, unresolved


def _inverse_monotone(xs, v, E):
    """For increasing rows ``v`` (R, n) sampled at ``xs`` (n,), the points u (R, m) with
    v(u) = E (m,), by cubic Lagrange inverse interpolation through the 4 samples around each
    crossing (-inf / +inf below / above the tabulated range)."""
    R, n = v.shape
    # per-row searchsorted via an offset that keeps rows apart
    span = float(v.max() - v.min()) + float(abs(E).max()) + 1.0
    off = np.arange(R)[:, None] * 4 * span
    q = np.searchsorted((v + off).ravel(), (E[None, :] + off).ravel()).reshape(R, E.size)
    q = q - np.arange(R)[:, None] * n                      # index of the first sample > E
    below, above = q <= 0, q >= n
    i0 = np.clip(q - 2, 0, n - 4)
    idx = i0[..., None] + np.arange(4)
    rows = np.arange(R)[:, None, None]
    vv = v[rows, idx]
    xx = xs[idx]
    u = np.zeros(q.shape)
    Ee = E[None, :]
    for a in range(4):
        w = np.ones(q.shape)
        for b in range(4):
            if b != a:
                w = w * (Ee - vv[..., b]) / (vv[..., a] - vv[..., b])
        u = u + w * xx[..., a]
    # keep within the bracketing samples (cubic overshoot near strong curvature)
    j = np.clip(q, 1, n - 1)
    lo_x, hi_x = xs[j - 1], xs[j]
    u = np.clip(u, lo_x, hi_x)
    return np.where(below, -np.inf, np.where(above, np.inf, u))


def dpnp_grid_refinement(prior: Prior, lik: Likelihood, etas: Sequence[float],
                         pcs: PCSConfig = PCSConfig(), dds: DDSConfig = DDSConfig(), *,
                         init: str = "standard-normal", h: Optional[float] = None,
                         pcs_steps: Optional[Sequence[int]] = None,
                         target: Optional[float] = None, max_halvings: int = 0,
                         trusted_order: Optional[float] = None, level_grids: bool = False):
    """The DPnP laws at h, 2h and 4h (:class:`DPnPGrid1D`); returns ``(fine, errors)`` with
    the three-level error (:func:`theory.posterior.refinement.three_level`) of every TV plus
    the lost mass and the size of the fine level's kink term
    (:func:`theory.posterior.grid_base.tv_spectral_and_kink`; up to 7e-7 for the ULA PCS at
    the CLI's defaults, where without it the difference to an h/2 grid was up to 8 times
    the refinement estimate, at the 1e-9 level: the laws converge spectrally, the kinks do
    not). With ``target``, h is halved (up to ``max_halvings`` times; each halving
    computes one finer level, the previous two becoming the coarser ones) until every stated
    error is below it. With an sde or ode DDS (conservative transport, order at most 4) every
    error is at least the coarser difference over 2^4 (``max_order`` of
    :func:`theory.posterior.refinement.refine`). With ``pcs_steps`` (a list of Langevin step counts) ``fine`` and
    ``errors`` are dicts over those counts (one kernel propagation per level).
    ``errors["levels"]`` lists the spacings used. With ``level_grids`` every outer step runs
    on its level's grid (:meth:`DPnPGrid1D.compute_level_factors`, factors fixed by the
    finest first level and passed to every other, so that each level grid scales with h)."""
    etas = [float(e) for e in etas]
    base = DPnPGrid1D(prior, lik, etas, pcs, dds, h=h, init=init, level_grids=level_grids)
    check_refinable(base.h, base.grid.scales)
    counts = [None] if pcs_steps is None else [int(n) for n in pcs_steps]
    factors = base.level_factors

    def run_at(hh):
        lv = base if hh == base.h else DPnPGrid1D(prior, lik, etas, pcs, dds, h=hh, init=init,
                                                  level_grids=factors or False)
        if pcs_steps is not None and pcs.method != "exact":
            for e in set(etas):
                if factors is not None:
                    lv._sub(e)[0].pcs_kernels(e, counts)
                else:
                    lv.pcs_kernels(e, counts)
            if isinstance(init, str) and init.startswith("point:"):
                lv.pcs_kernels(etas[0], counts, centres=[float(point_init(init, 1)[0])])
        return {n: lv.run(etas, init, n) for n in counts}

    def flat(hh):       # all counts in one dict: key (n, name)
        out = run_at(hh)
        d = {(n, k): out[n][k] for n in counts for k in ("tv_pi", "tv_post", "tv_pi_post")}
        d["lost"] = max(np.max(out[n]["lost"]) for n in counts)
        d["runs"] = out
        return d

    keys = [(n, k) for n in counts for k in ("tv_pi", "tv_post", "tv_pi_post")]
    # the DDS sde / ode run through the conservative transport (order <= 4): a ratio of
    # differences far above 2^4 is a sign change between levels, not convergence
    order = 4.0 if dds.method in ("sde", "ode") else None
    fine, e = refine(flat, base.h, keys, target=target, max_halvings=max_halvings,
                     max_order=order, trusted_order=trusted_order)
    errs = {n: {k: [v + c for v, c in zip(e[(n, k)], fine["runs"][n]["kink"][k])]
                for k in ("tv_pi", "tv_post", "tv_pi_post")} for n in counts}
    for n in counts:
        errs[n]["levels"] = e["levels"]
        errs[n]["asymptotic"] = e["asymptotic"]
    runs = [fine["runs"]]
    fines = {n: runs[-1][n] for n in counts}
    if pcs_steps is None:
        return fines[None], errs[None]
    return fines, errs
