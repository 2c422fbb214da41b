r"""The DPnP Gibbs chain on a 1-D grid, for any prior density and any likelihood in d = 1
(THEORY.md section 6; Xu & Chi, arXiv:2403.17042).

**Grids** (1-D, any likelihood): on a uniform grid :math:`x_i` (spacing h) and a wider grid
:math:`z_j` (the PCS outputs, extended by 12 :math:`\eta_{max}` on each side), with
:math:`\ell = \log p(y \mid \cdot)`,

* posterior masses :math:`\propto p(x_i) e^{\ell(x_i)}`;
* :math:`\pi_\eta` masses :math:`\propto p(x_i) \sum_j e^{\ell(z_j)} N(x_i - z_j; 0, \eta^2)`;
* PCS matrix :math:`P_{ij} \propto e^{\ell(z_j)} N(z_j; x_i, \eta^2)` (rows sum to 1),
  DDS matrix :math:`D_{jl} \propto p(x_l) N(z_j; x_l, \eta^2)`; the Gibbs x-chain kernel is
  :math:`M = P D`, the law of :math:`x_k` is :math:`\mu_0 M_1 \cdots M_k`;
* the x-chain is reversible with respect to :math:`\pi_\eta` and :math:`M` is a positive
  operator (a data-augmentation chain), so its spectrum is real in [0, 1]; the second
  largest eigenvalue :math:`\lambda_2` is the exact geometric rate:
  :math:`\mathrm{TV}(\mathrm{law}\,x_k, \pi_\eta) \asymp C\lambda_2^k`.

Grid error: every integrand is smooth and decays like a Gaussian, so Riemann sums on a
uniform grid converge faster than any power of h once h resolves the narrowest scale (the
prior's component widths, :math:`\eta`, the likelihood's width). :func:`grid_refinement`
recomputes a quantity with h doubled and reports the difference as the error; the tests
check that it is below 1e-8 at the default resolution.

All grid arithmetic is float64 numpy (log-space where it matters); priors and likelihoods
are evaluated through their torch methods.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from scipy.special import logsumexp

from ..mixture1d import Mixture1D
from ..priors import GaussianMixture, Prior, ProductPrior
from .closed_form import to_mixture1d
from .grid_base import GridResult, eval_on_points, normalise_log, tv_masses
from .inits import init_mass, point_init
from .likelihoods import Likelihood

__all__ = ["Grid1D"]


class Grid1D:
    r"""The 1-D grid engine (module docstring) for a prior with a density on R and any
    likelihood with ``dim == 1``.

    Parameters
    ----------
    prior : Prior (dim 1)
    lik : Likelihood (dim 1)
    h : float
        Grid spacing (default: 1/8 of the narrowest scale: the prior components' standard
        deviations, ``eta_min`` and the likelihood's width :math:`(\mathrm{Lip}\,\nabla\ell)^{-1/2}`;
        at 8 points per standard deviation the Riemann sum of a Gaussian is exact to
        :math:`e^{-2\pi^2 64}`, so the error is set by the tails and checked by refinement).
    lo, hi : float, optional
        The x grid (default: the prior's means +- 12 sd, widened to [-8.5, 8.5] for inits).
    eta_max, eta_min : float
        Largest and smallest eta that will be used (z-grid margin 12 eta_max; spacing).
    """

    def __init__(self, prior: Prior, lik: Likelihood, *, h: Optional[float] = None,
                 lo: Optional[float] = None, hi: Optional[float] = None, eta_max: float = 1.0,
                 eta_min: Optional[float] = None):
        if prior.dim != 1 or lik.dim != 1:
            raise ValueError("Grid1D needs a 1-D prior and likelihood")
        self.prior, self.lik = prior, lik
        mix = self._prior_mix(prior)
        sd_min = float(np.sqrt(mix.v[mix.w > 0].min())) if mix is not None else 0.1
        if sd_min <= 0:
            raise ValueError("the prior has a point mass: no density on a grid")
        eta_min = float(eta_max) if eta_min is None else float(eta_min)
        scale = min(sd_min, eta_min, math.sqrt(lik.step_scale()))
        self.h = float(h) if h is not None else scale / 8
        if mix is not None:
            plo, phi = mix.spread(12.0)
        else:
            plo, phi = -10.0, 10.0
        lo = min(plo, -8.5) if lo is None else float(lo)
        hi = max(phi, 8.5) if hi is None else float(hi)
        n = int(math.ceil((hi - lo) / self.h)) + 1
        self.x = lo + self.h * np.arange(n)
        margin = int(math.ceil(12 * float(eta_max) / self.h))
        self.z = lo + self.h * np.arange(-margin, n + margin)
        self.eta_max = float(eta_max)
        self.log_prior = eval_on_points(prior.log_prob, self.x)
        self.loglik_x = eval_on_points(lik.log_lik, self.x)
        self.loglik_z = eval_on_points(lik.log_lik, self.z)
        self._kernels: dict = {}

    @staticmethod
    def _prior_mix(prior):
        if isinstance(prior, ProductPrior):
            w, m, s = prior.coordinate_params(0)
            return Mixture1D(w, m, s ** 2)
        if isinstance(prior, GaussianMixture):
            return to_mixture1d(prior)
        return None

    # -- targets -------------------------------------------------------------------------
    def posterior(self) -> np.ndarray:
        """Posterior masses on the x grid."""
        return normalise_log(self.log_prior + self.loglik_x)

    def pi_eta(self, eta: float) -> np.ndarray:
        r""":math:`\pi_\eta` masses: :math:`p(x_i)\sum_j e^{\ell(z_j)}N(x_i - z_j; 0, \eta^2)`
        (in row blocks, so fine grids fit in memory)."""
        self._check_eta(eta)
        conv = np.empty(self.x.size)
        step = max(1, int(4e6 // self.z.size))
        for i in range(0, self.x.size, step):
            d2 = (self.x[i:i + step, None] - self.z[None, :]) ** 2
            conv[i:i + step] = logsumexp(self.loglik_z[None, :] - d2 / (2 * eta ** 2), axis=1)
        return normalise_log(self.log_prior + conv)

    def _check_eta(self, eta):
        if not (math.isfinite(eta) and eta > 0):
            raise ValueError(f"eta must be positive, got {eta}")
        if eta > self.eta_max * (1 + 1e-12):
            raise ValueError(f"eta {eta} exceeds the grid's eta_max {self.eta_max}")

    # -- kernels -------------------------------------------------------------------------
    def pcs_matrix(self, eta: float, src: Optional[np.ndarray] = None) -> np.ndarray:
        """Row-stochastic PCS matrix from source points (default the x grid) to the z grid."""
        self._check_eta(eta)
        src = self.x if src is None else np.asarray(src, float)
        d2 = (src[:, None] - self.z[None, :]) ** 2
        return normalise_log(self.loglik_z[None, :] - d2 / (2 * eta ** 2))

    def dds_matrix(self, eta: float) -> np.ndarray:
        """Row-stochastic DDS matrix from the z grid to the x grid."""
        self._check_eta(eta)
        d2 = (self.z[:, None] - self.x[None, :]) ** 2
        return normalise_log(self.log_prior[None, :] - d2 / (2 * eta ** 2))

    def kernel(self, eta: float) -> np.ndarray:
        """The Gibbs x-chain kernel M = P D (row-stochastic), cached per eta."""
        key = float(eta)
        if key not in self._kernels:
            self._kernels[key] = self.pcs_matrix(eta) @ self.dds_matrix(eta)
        return self._kernels[key]

    def spectrum(self, eta: float, k: int = 4) -> np.ndarray:
        r"""The ``k`` largest eigenvalues of M in modulus (real up to rounding: M is
        reversible w.r.t. :math:`\pi_\eta` and a positive operator)."""
        ev = np.linalg.eigvals(self.kernel(eta))
        ev = ev[np.argsort(-np.abs(ev))]
        return ev[:k]

    def rate(self, eta: float) -> float:
        """Second largest eigenvalue modulus of the kernel: the exact geometric rate."""
        return float(abs(self.spectrum(eta, 2)[1]))

    def stationary(self, eta: float) -> np.ndarray:
        """Stationary vector of the grid kernel (left eigenvector for eigenvalue 1)."""
        M = self.kernel(eta)
        ev, V = np.linalg.eig(M.T)
        i = int(np.argmin(np.abs(ev - 1)))
        v = np.abs(np.real(V[:, i]))
        return v / v.sum()

    # -- laws of x_k ---------------------------------------------------------------------
    def init_z_mass(self, init: str, eta: float) -> np.ndarray:
        """Law of the first PCS output :math:`x_{1/2}` on the z grid, for an init law."""
        if isinstance(init, str) and init.startswith("point:"):
            x0 = point_init(init, 1)
            return self.pcs_matrix(eta, x0)[0]
        return init_mass(init, self.x, self.prior) @ self.pcs_matrix(eta)

    def laws(self, etas: Sequence[float], init: str = "standard-normal") -> list:
        """Mass vectors of the laws of x_1, ..., x_K for the levels ``etas``."""
        etas = [float(e) for e in etas]
        zm = self.init_z_mass(init, etas[0])
        out = [zm @ self.dds_matrix(etas[0])]
        for eta in etas[1:]:
            if eta in self._kernels:
                out.append(out[-1] @ self._kernels[eta])
            else:   # two vector-matrix products: no N x N kernel is formed
                out.append((out[-1] @ self.pcs_matrix(eta)) @ self.dds_matrix(eta))
        return out

    def run(self, etas: Sequence[float], init: str = "standard-normal",
            with_rates: bool = True) -> GridResult:
        """Laws of x_k, TV to pi_eta_k and to the posterior, TV(pi_eta, posterior), rates."""
        laws = self.laws(etas, init)
        post = self.posterior()
        pis = {}
        for e in set(float(e) for e in etas):
            pis[e] = self.pi_eta(e)
        tv_pi = [tv_masses(m, pis[float(e)]) for m, e in zip(laws, etas)]
        tv_post = [tv_masses(m, post) for m in laws]
        rates = {e: self.rate(e) for e in pis} if with_rates else {}
        return GridResult(self.x, laws, tv_pi, tv_post, [pis[float(e)] for e in etas], post,
                          [tv_masses(pis[float(e)], post) for e in etas], rates,
                          {"h": self.h, "n_x": int(self.x.size), "n_z": int(self.z.size),
                           "x_range": [float(self.x[0]), float(self.x[-1])]})
