r"""Exact laws of DPnP with inexact sub-samplers on a 2-D grid (THEORY.md sections 6 and 8;
Xu & Chi, arXiv:2403.17042), on the grids of :class:`theory.posterior.grid2d.Grid2D`.

* PCS ``exact``: :meth:`Grid2D.pcs`. PCS ``ula`` with a linear-Gaussian likelihood: the
  Langevin mean is affine, :math:`m(z) = Rz + c_0 x_k + g` with
  :math:`R = (1 - c_0)I - c_v A^\top A/\sigma^2`, :math:`g = c_v A^\top y/\sigma^2`, so n steps
  from :math:`z_0 = x_k` give exactly :math:`z_n \sim N(B x_k + b, \Sigma_n)`,
  :math:`B = R^n + c_0 S_n`, :math:`b = S_n g`, :math:`S_n = \sum_{j<n} R^j`,
  :math:`\Sigma_n = c_b^2\sum_{j<n} R^j R^{j\top}`: the law of :math:`x_{k+1/2}` is the
  pull-back of the law of :math:`x_k` by the affine map, blurred by :math:`\Sigma_n` in Fourier
  space (:mod:`theory.posterior.chains2d`). PCS ``mala`` (and ``ula`` with another likelihood)
  has a kernel per centre on a 2-D grid, a 4-D array: :class:`NoExactLaw` (the sample-based
  route remains).
* DDS ``exact``: :meth:`Grid2D.dds`. For a product prior the reverse SDE and the
  probability-flow DDS act on each coordinate separately (the prior's score, the rule, the
  noise and Tweedie's map all factorise), so their kernel is the product of the 1-D kernels
  of :mod:`theory.posterior.dpnp_grid`, applied along each axis. For another prior density the
  reverse SDE runs on the 2-D grid (:func:`theory.posterior.chains2d.chain_laws_2d`); the
  deterministic DDS would need a 2-D map per z node (:class:`NoExactLaw`).

Errors by :func:`dpnp_grid2d_refinement` (levels h, 1.5h, 2.25h, as for Grid2D; widened to the
raw difference of the coarser levels where the observed order is above 4) plus the mass the
pull-backs lose.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..checks import NoExactLaw
from ..priors import Prior, ProductPrior
from .chains1d import Axis, build_chain_1d, run_ops_1d
from .chains2d import chain_laws_2d, gaussian_blur_2d, pull_back_2d
from .dpnp_grid import SUB, ode_kernel_rows
from .grid2d import Grid2D
from .grid_base import tv_masses_2d
from .likelihoods import Likelihood
from .plug_and_play import DDSConfig, PCSConfig, default_pcs_step, langevin_coefficients
from .refinement import check_refinable, refine
from .sampler_steps import dds_sde_steps

__all__ = ["DPnPGrid2D", "dpnp_grid2d_refinement", "ula_gaussian_kernel", "TRUSTED_ORDER"]

TRUSTED_ORDER = 4.0      # observed orders above this: error = max(d1, d2) (refine)


def ula_gaussian_kernel(lik: Likelihood, eta: float, step: float, n: int):
    """``(B, b, Sigma)`` of the n-step Langevin PCS for a linear-Gaussian likelihood (module
    docstring): :math:`z_n \\mid x \\sim N(Bx + b, \\Sigma)`."""
    A = lik.A.cpu().numpy().astype(float)
    y = lik.y.cpu().numpy().astype(float)
    d = A.shape[1]
    c0, cv, cb = langevin_coefficients(float(eta), float(step))
    R = (1 - c0) * np.eye(d) - cv * A.T @ A / lik.sigma ** 2
    g = cv * A.T @ y / lik.sigma ** 2
    S, P, C = np.zeros((d, d)), np.eye(d), np.zeros((d, d))
    for _ in range(int(n)):
        S += P
        C += P @ P.T
        P = R @ P
    return P + c0 * S, S @ g, cb * cb * C


def _axis(nodes):
    return Axis(float(nodes[0]), float(nodes[1] - nodes[0]), int(nodes.size))


class DPnPGrid2D:
    """Laws of DPnP's iterates on a 2-D grid (module docstring)."""

    def __init__(self, prior: Prior, lik: Likelihood, etas: Sequence[float],
                 pcs: PCSConfig = PCSConfig(), dds: DDSConfig = DDSConfig(), *,
                 h: Optional[float] = None):
        if pcs.method == "mala" or (pcs.method == "ula" and not lik.linear_gaussian):
            raise NoExactLaw(f"PCS {pcs.method} with the {lik.name} likelihood in 2-D has a "
                             "kernel per centre on a 2-D grid (a 4-D array): no exact grid law")
        self.product = isinstance(prior, ProductPrior)
        if dds.method == "ode" and not self.product:
            raise NoExactLaw("the deterministic DDS in 2-D has an exact grid law for product "
                             "priors only (a 2-D map per z node otherwise)")
        self.prior, self.lik, self.pcs_cfg, self.dds_cfg = prior, lik, pcs, dds
        etas = [float(e) for e in etas]
        self.grid = Grid2D(prior, lik, h=h, eta_max=max(etas), eta_min=min(etas))
        self.h = self.grid.h
        self.xaxes = [_axis(a) for a in self.grid.axes]
        self.zaxes = [_axis(a) for a in self.grid.zaxes]
        self._dds: dict = {}

    def _coordinate_prior(self, i):
        w, m, s = self.prior.coordinate_params(i)
        return ProductPrior([list(w)], [list(m)], [list(s)])

    def pcs(self, mu, eta, first=False):
        """Law of x_{k+1/2} (z grid) from the law of x_k (x grid), and the mass lost."""
        if self.pcs_cfg.method == "exact":
            return self.grid.pcs(mu, eta), 0.0
        c = self.pcs_cfg
        step = c.step if c.step is not None else default_pcs_step(self.lik, eta, c.step_factor)
        B, b, S = ula_gaussian_kernel(self.lik, eta, step, c.n_steps)
        moved, lost = pull_back_2d(lambda x: x @ B.T + b, mu, self.xaxes, self.zaxes)
        return gaussian_blur_2d(moved, S, self.h), lost

    def dds(self, nu, eta):
        """Law of x_{k+1} (x grid) from the law of x_{k+1/2} (z grid), and the mass lost."""
        eta = float(eta)
        m = self.dds_cfg.method
        if m == "exact":
            return self.grid.dds(nu, eta), 0.0
        c = self.dds_cfg
        if not self.product:                       # reverse SDE on the 2-D grid
            steps = dds_sde_steps(self.prior, eta, c.n_steps, c.rule_name, c.final_noise)
            res = chain_laws_2d(steps, self.zaxes, nu, out_axes=self.xaxes,
                                keep=[len(steps)])
            return res.laws[0], res.lost[0]
        if eta not in self._dds:
            ops = []
            for i in range(2):
                p1 = self._coordinate_prior(i)
                z, x = self.zaxes[i], self.xaxes[i]
                if m == "sde":
                    steps = dds_sde_steps(p1, eta, c.n_steps, c.rule_name, c.final_noise)
                    work = Axis(z.lo, z.h / SUB, SUB * (z.n - 1) + 1)
                    ops.append(("ops", build_chain_1d(steps, z, x, fine_axis=work)))
                else:
                    K, unres = ode_kernel_rows(p1, c, eta, z.nodes, x)
                    ops.append(("matrix", (K, unres)))
            self._dds[eta] = ops
        out, lost = nu, 0.0
        for i, (kind, op) in enumerate(self._dds[eta]):
            # apply along axis i: move it last, rows = the other axis
            arr = np.moveaxis(out, i, 1)
            if kind == "ops":
                res = run_ops_1d(op, arr, keep=[len(op)])
                new, l = res.laws[0], res.lost[0]
            else:
                K, unres = op
                new = arr @ K
                l = float(np.abs(arr).sum(0) @ unres)
            lost += l
            out = np.moveaxis(new, 1, i)
        return out, lost

    def run(self, etas: Sequence[float], init: str = "standard-normal") -> dict:
        """TVs of law x_k to pi_eta and the posterior (every k), TV(pi_eta, posterior)."""
        etas = [float(e) for e in etas]
        g = self.grid
        if isinstance(init, str) and init.startswith("point:"):
            if self.pcs_cfg.method != "exact":
                raise NoExactLaw("a point init with the Langevin PCS in 2-D: use the "
                                 "sample-based route")
            nu, lost = g._first_half_step(init, etas[0]), 0.0
        else:
            nu, lost = self.pcs(g.init_mass(init), etas[0])
        laws, losts = [], []
        mu, l1 = self.dds(nu, etas[0])
        lost += l1
        laws.append(mu)
        losts.append(lost + abs(1.0 - float(mu.sum())))
        for eta in etas[1:]:
            nu, l0 = self.pcs(laws[-1], eta)
            mu, l1 = self.dds(nu, eta)
            lost += l0 + l1
            laws.append(mu)
            losts.append(lost + abs(1.0 - float(mu.sum())))
        post = g.posterior()
        pis = {e: g.pi_eta(e) for e in set(etas)}
        return {"tv_pi": [tv_masses_2d(m, pis[e]) for m, e in zip(laws, etas)],
                "tv_post": [tv_masses_2d(m, post) for m in laws],
                "tv_pi_post": [tv_masses_2d(pis[e], post) for e in etas],
                "lost": losts, "laws": laws,
                "info": {"h": self.h, "n_x": [a.n for a in self.xaxes],
                         "n_z": [a.n for a in self.zaxes]}}


def dpnp_grid2d_refinement(prior: Prior, lik: Likelihood, etas: Sequence[float],
                           pcs: PCSConfig = PCSConfig(), dds: DDSConfig = DDSConfig(), *,
                           init: str = "standard-normal", h: Optional[float] = None):
    r"""The 2-D DPnP laws at h, 1.5h and 2.25h; returns ``(fine, errors)``
    (:func:`theory.posterior.refinement.refine`), every error the three-level estimate plus
    the mass lost. Where the observed order :math:`\log_{1.5}(d_2/d_1)` exceeds
    ``TRUSTED_ORDER`` (4) the estimate is not in its asymptotic regime and the error is the
    raw difference :math:`\max(d_1, d_2)` (``trusted_order`` of ``refine``): the TVs of this
    engine show orders of 8 to 19 at the default spacing (the kink correction of
    :math:`|p - q|` is irregular in h), where the Richardson-type :math:`d_1` was up to 8
    times below the difference to an h/2 grid (2-D bimodal problem, eta = 0.3, K = 6)."""
    base = DPnPGrid2D(prior, lik, etas, pcs, dds, h=h)
    check_refinable(base.h, base.grid.scales, 1.5)

    def run_at(hh):
        lv = base if hh == base.h else DPnPGrid2D(prior, lik, etas, pcs, dds, h=hh)
        out = lv.run(etas, init)
        out["lost"] = max(out["lost"])
        return out

    return refine(run_at, base.h, ["tv_pi", "tv_post", "tv_pi_post"], ratio=1.5,
                  trusted_order=TRUSTED_ORDER)
