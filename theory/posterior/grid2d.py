r"""The DPnP Gibbs chain on a 2-D grid, for any prior density and any likelihood in d = 2
(THEORY.md section 6; Xu & Chi, arXiv:2403.17042).

The 1-D engine (:class:`theory.posterior.grid1d.Grid1D`) forms the PCS and DDS kernels as
dense matrices. In 2-D a grid of n x n nodes has :math:`N = n^2` points and a dense
:math:`N \times N` kernel is out of reach, but both kernels are a Gaussian blur between
pointwise weights, and the 2-D Gaussian kernel factorises over the axes. With
:math:`g(u) = e^{-u^2/(2\eta^2)}` on each axis, ``G`` the (x nodes) x (z nodes) matrix
:math:`G_{ij} = g(x_i - z_j)`, :math:`E = e^{\ell - \max\ell}` on the z grid and
:math:`P = p/\max p` on the x grid,

* blur x -> z: :math:`(\mathcal B F)(z) = \sum_x g(z_1 - x_1)g(z_2 - x_2)F(x) = G^\top F G`;
  blur z -> x: :math:`\mathcal B^\top F = G F G^\top`;
* PCS normaliser :math:`Z(x) = \mathcal B^\top E`, DDS normaliser :math:`W(z) = \mathcal B P`;
* one outer step on the masses :math:`\mu` of :math:`x_k`:
  :math:`\nu = E \odot \mathcal B(\mu / Z)` (law of :math:`x_{k+1/2}`), then
  :math:`\mu' = P \odot \mathcal B^\top(\nu / W)`;
* the stationary law of the grid chain is :math:`\pi_\eta \propto P \odot Z` (exactly: the
  chain is reversible with respect to it), the discretisation of
  :math:`p(x)\,(e^{\ell} * N(0, \eta^2 I))(x)`; the posterior is :math:`\propto P e^{\ell}`;
* the symmetrised kernel :math:`S = D_\pi^{1/2} M D_\pi^{-1/2}`,
  :math:`S v = a \odot \mathcal B^\top\big((E/W) \odot \mathcal B(a \odot v)\big)`,
  :math:`a = \sqrt{P/Z}`, is symmetric positive semi-definite with top eigenvector
  :math:`\sqrt{\pi_\eta}` (eigenvalue 1); its second eigenvalue :math:`\lambda_2`, the exact
  geometric rate of the grid chain, is the top eigenvalue of
  :math:`S - \sqrt{\pi}\sqrt{\pi}^\top`, found by Lanczos (:func:`scipy.sparse.linalg.eigsh`)
  with the operator applied matrix-free (four products with ``G`` per application).

Each outer step costs :math:`O(n\,m^2)` flops (m z nodes per axis) and the memory is a few
:math:`m^2` arrays. The grid (x range, spacing) follows :class:`Grid1D`'s rules per axis,
at 4 nodes per narrowest standard deviation (the Riemann sum of a Gaussian of standard
deviation s at spacing h errs by about :math:`2e^{-2\pi^2 s^2/h^2}`, 1e-137 at s/h = 4); the
error of every quantity is estimated by refinement
(:func:`theory.posterior.refinement.grid_refinement`, h vs 2h).
Arithmetic is float64 numpy in linear space, each exponent shifted by its maximum: blurs
sum positive terms, so tails keep their relative accuracy down to the float64 range;
cells whose normaliser underflows carry no mass, and the mass lost is ``info["lost"]``.

TV between two grid laws is half the l1 distance of their masses, with the kink of
:math:`|p - q|` along the curve where the densities cross corrected row by row and column by
column as in the 1-D engine (:func:`tv_masses_2d`; the plain sum errs by O(h^2), irregularly
in h, and the corrected one is not always of higher order). The stated error is the
refinement difference :math:`|TV_h - TV_{2h}|` plus the size of the kink correction (the
tests check that it bounds the distance to a grid 4 times finer).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from ..priors import GaussianMixture, Prior, ProductPrior, SubspaceMixture
from .chains1d import Axis
from .grid_base import GridResult, check_eta, check_memory, check_resolution, eval_on_points, tv_and_kink
from .inits import point_init
from .likelihoods import Likelihood

__all__ = ["Grid2D"]

_TINY = 1e-290          # normalisers below this count as underflowed (1/x stays finite)


def _axis_ranges(prior: Prior, pad: float = 12.0):
    """Per-axis (lo, hi) covering every component's mean +- ``pad`` sd and [-8.5, 8.5]
    (inits), and the narrowest per-axis component sd."""
    if isinstance(prior, ProductPrior):
        w = prior.weights.cpu().numpy()
        m = prior.means.cpu().numpy()
        s = prior.stds.cpu().numpy()
        keep = w > 0
        lo = np.array([(m[i][keep[i]] - pad * s[i][keep[i]]).min() for i in range(2)])
        hi = np.array([(m[i][keep[i]] + pad * s[i][keep[i]]).max() for i in range(2)])
        sd = float(s[keep].min())
    elif isinstance(prior, GaussianMixture):
        m = prior.means.cpu().numpy()
        s = np.sqrt(np.stack([prior.covs[:, i, i].cpu().numpy() for i in range(2)], 1))
        lo, hi = (m - pad * s).min(0), (m + pad * s).max(0)
        # the narrowest direction of any component (not only the axes)
        ev = np.linalg.eigvalsh(prior.covs.cpu().numpy())
        sd = float(np.sqrt(ev.min()))
    else:
        raise ValueError(f"Grid2D needs a product or Gaussian-mixture prior, not "
                         f"{type(prior).__name__}")
    if sd <= 0:
        raise ValueError("the prior has a point mass or a singular component: no density on "
                         "a grid")
    return np.minimum(lo, -8.5), np.maximum(hi, 8.5), sd


class Grid2D:
    r"""The 2-D grid engine (module docstring) for a prior with a density on :math:`\mathbb
    R^2` and any likelihood with ``dim == 2``.

    Parameters
    ----------
    prior : ProductPrior or GaussianMixture (dim 2)
    lik : Likelihood (dim 2)
    h : float, optional
        Grid spacing (both axes). Default: 1/4 of the narrowest scale (the prior
        components' smallest standard deviation, ``eta_min``, the likelihood's width
        :math:`(\mathrm{Lip}\,\nabla\ell)^{-1/2}`).
    eta_max, eta_min : float
        Largest and smallest eta that will be used (z-grid margin 12 eta_max; spacing).
    """

    def __init__(self, prior: Prior, lik: Likelihood, *, h: Optional[float] = None,
                 eta_max: float = 1.0, eta_min: Optional[float] = None):
        if prior.dim != 2 or lik.dim != 2:
            raise ValueError("Grid2D needs a 2-D prior and likelihood")
        if isinstance(prior, SubspaceMixture):
            raise ValueError("Grid2D needs a prior with a density (the subspace prior has none)")
        self.prior, self.lik = prior, lik
        lo, hi, sd_min = _axis_ranges(prior)
        eta_max = float(eta_max)
        eta_min = eta_max if eta_min is None else float(eta_min)
        for name, e in (("eta_max", eta_max), ("eta_min", eta_min)):
            if not (math.isfinite(e) and e > 0):
                raise ValueError(f"{name} must be a positive number, got {e}")
        self.scales = self.problem_scales(prior, lik, eta_max, eta_min)
        self.h = float(h) if h is not None else min(self.scales.values()) / 4
        check_resolution(self.h, self.scales)
        # nodes on multiples of h: the origin, where the kinks of |a x| cross, is a node
        ax = [Axis.covering(lo[i], hi[i], self.h, 0.0) for i in range(2)]
        n = [a.n for a in ax]
        lo = [a.lo for a in ax]
        self.axes = [a.nodes for a in ax]
        margin = int(math.ceil(12 * eta_max / self.h))
        self.zaxes = [lo[i] + self.h * np.arange(-margin, n[i] + margin) for i in range(2)]
        size = max(a.size for a in self.zaxes)
        nz = self.zaxes[0].size * self.zaxes[1].size
        check_memory(8.0 * (6 * nz + 8 * n[0] * n[1]), f"the 2-D grid ({n[0]} x {n[1]} x nodes, "
                     f"{self.zaxes[0].size} x {self.zaxes[1].size} z nodes at h = {self.h:.3g})")
        if n[0] * n[1] > 4_000_000 or size > 6000:
            raise ValueError(f"the 2-D grid would have {n[0]} x {n[1]} nodes (z grid "
                             f"{self.zaxes[0].size} x {self.zaxes[1].size}) at h = {self.h:.3g}: "
                             "too large; pass a larger h")
        self.eta_max = eta_max
        self.log_prior = self._eval(prior.log_prob, self.axes)
        self.loglik_x = self._eval(lik.log_lik, self.axes)
        self.loglik_z = self._eval(lik.log_lik, self.zaxes)
        self.P = np.exp(self.log_prior - self.log_prior.max())
        self.E = np.exp(self.loglik_z - self.loglik_z.max())
        self._levels: dict = {}

    @staticmethod
    def problem_scales(prior, lik, eta_max, eta_min=None, scales=None) -> dict:
        """The lengths a grid for this problem must resolve (name -> length)."""
        sd_min = _axis_ranges(prior)[2]
        eta_min = float(eta_max) if eta_min is None else float(eta_min)
        return {"the prior's narrowest component sd": sd_min, "eta_min": eta_min,
                "the likelihood's width": math.sqrt(lik.step_scale()), **(scales or {})}

    @staticmethod
    def _eval(fn, axes):
        X1, X2 = np.meshgrid(axes[0], axes[1], indexing="ij")
        return eval_on_points(fn, np.stack([X1.ravel(), X2.ravel()], 1)).reshape(X1.shape)

    @property
    def shape(self):
        return (self.axes[0].size, self.axes[1].size)

    def _check_eta(self, eta):
        return check_eta(eta, self.eta_max)

    # -- blurs and normalisers per eta ----------------------------------------------------
    def _level(self, eta):
        """Per-axis Gaussian matrices G_i (x nodes, z nodes) and the normalisers Z, W."""
        eta = self._check_eta(eta)
        if eta not in self._levels:
            G = [np.exp(-(x[:, None] - z[None, :]) ** 2 / (2 * eta * eta))
                 for x, z in zip(self.axes, self.zaxes)]
            Z = G[0] @ self.E @ G[1].T                     # PCS normaliser on the x grid
            W = G[0].T @ self.P @ G[1]                     # DDS normaliser on the z grid
            # a normaliser below _TINY has underflowed (its cell's weights are lost): the mass
            # sent to such a cell is dropped (and shows in info["lost"]) instead of an inf
            inv_Z = np.divide(1.0, Z, out=np.zeros_like(Z), where=Z > _TINY)
            inv_W = np.divide(1.0, W, out=np.zeros_like(W), where=W > _TINY)
            self._levels[eta] = (G, Z, inv_Z, inv_W)
        return self._levels[eta]

    def pcs(self, mu: np.ndarray, eta: float) -> np.ndarray:
        """Masses of :math:`x_{k+1/2}` on the z grid from the masses of :math:`x_k`."""
        G, _, inv_Z, _ = self._level(eta)
        return self.E * (G[0].T @ (mu * inv_Z) @ G[1])

    def dds(self, nu: np.ndarray, eta: float) -> np.ndarray:
        """Masses of :math:`x_{k+1}` on the x grid from the masses of :math:`x_{k+1/2}`."""
        G, _, _, inv_W = self._level(eta)
        return self.P * (G[0] @ (nu * inv_W) @ G[1].T)

    # -- targets --------------------------------------------------------------------------
    def posterior(self) -> np.ndarray:
        """Posterior masses on the x grid."""
        lp = self.log_prior + self.loglik_x
        m = np.exp(lp - lp.max())
        return m / m.sum()

    def pi_eta(self, eta: float) -> np.ndarray:
        r""":math:`\pi_\eta` masses, :math:`\propto P \odot Z` (the grid chain's stationary law)."""
        _, Z, _, _ = self._level(eta)
        m = self.P * Z
        return m / m.sum()

    # -- the chain ------------------------------------------------------------------------
    def init_mass(self, init: str) -> np.ndarray:
        """Masses of an init law on the x grid: ``standard-normal`` or ``prior``."""
        X1, X2 = np.meshgrid(*self.axes, indexing="ij")
        if init == "standard-normal":
            m = np.exp(-0.5 * (X1 ** 2 + X2 ** 2))
        elif init == "prior":
            m = self.P.copy()
        else:
            raise ValueError(f"unknown init {init!r}; use standard-normal, prior or point:V")
        return m / m.sum()

    def _first_half_step(self, init: str, eta: float) -> np.ndarray:
        if isinstance(init, str) and init.startswith("point:"):
            x0 = point_init(init, 2)
            g = [np.exp(-(z - c) ** 2 / (2 * eta * eta)) for z, c in zip(self.zaxes, x0)]
            nu = self.E * np.outer(g[0], g[1])
            total = nu.sum()
            if total <= 0:
                raise ValueError(f"the point init {tuple(x0)} lies where the likelihood "
                                 "underflows on the grid")
            return nu / total
        return self.pcs(self.init_mass(init), eta)

    def laws(self, etas: Sequence[float], init: str = "standard-normal") -> list:
        """Mass arrays of the laws of x_1, ..., x_K for the levels ``etas``."""
        etas = [self._check_eta(e) for e in etas]
        out = [self.dds(self._first_half_step(init, etas[0]), etas[0])]
        for eta in etas[1:]:
            out.append(self.dds(self.pcs(out[-1], eta), eta))
        return out

    def rate(self, eta: float, tol: float = 1e-12) -> float:
        r"""Second eigenvalue :math:`\lambda_2` of the grid Gibbs kernel (module docstring),
        by Lanczos on the deflated symmetric operator."""
        G, Z, inv_Z, inv_W = self._level(eta)
        a = np.sqrt(self.P * inv_Z)
        ew = self.E * inv_W
        u = np.sqrt(self.pi_eta(eta)).ravel()
        shape = self.shape

        def matvec(v):
            v = np.asarray(v, float).reshape(-1)
            f = (a * v.reshape(shape))
            s = a * (G[0] @ (ew * (G[0].T @ f @ G[1])) @ G[1].T)
            return s.ravel() - u * (u @ v)

        op = LinearOperator((u.size, u.size), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(0).standard_normal(u.size)     # fixed start: reproducible
        val = eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False,
                    maxiter=20000)
        return float(val[0])

    def run(self, etas: Sequence[float], init: str = "standard-normal",
            with_rates: bool = True) -> GridResult:
        """Laws of x_k, TV to pi_eta_k and to the posterior, TV(pi_eta, posterior), rates."""
        laws = self.laws(etas, init)
        post = self.posterior()
        pis = {float(e): self.pi_eta(e) for e in set(float(e) for e in etas)}
        tv_pi = [tv_and_kink(m, pis[float(e)]) for m, e in zip(laws, etas)]
        tv_post = [tv_and_kink(m, post) for m in laws]
        tv_pp = [tv_and_kink(pis[float(e)], post) for e in etas]
        rates = {e: self.rate(e) for e in pis} if with_rates else {}
        lost = max(abs(1.0 - float(m.sum())) for m in laws)
        return GridResult(self.axes, laws, [t[0] for t in tv_pi], [t[0] for t in tv_post],
                          [pis[float(e)] for e in etas], post, [t[0] for t in tv_pp], rates,
                          {"h": self.h, "n_x": [int(a.size) for a in self.axes],
                           "n_z": [int(z.size) for z in self.zaxes],
                           "x_range": [[float(a[0]), float(a[-1])] for a in self.axes],
                           "lost": lost,
                           "kink": {"tv_pi": [t[1] for t in tv_pi],
                                    "tv_post": [t[1] for t in tv_post],
                                    "tv_pi_post": [t[1] for t in tv_pp]}})
