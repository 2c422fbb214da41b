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
prior's component widths, :math:`\eta`, the likelihood's width). A spacing that cannot
resolve it (narrowest scale below 1.5 h) is refused, as is a grid whose arrays would exceed
half the machine's memory; kinks of the likelihood (phase retrieval's :math:`|x|`) are put on
nodes. TVs are taken after trigonometric interpolation onto a grid 8 times finer
(:func:`theory.posterior.grid_base.tv_spectral`), where the kinks of :math:`|p - q|` err by
:math:`8^{-3}` of their error on the grid. :func:`grid_refinement` recomputes every quantity
at 2h and 4h and states the error from the three levels (observed order; widened outside
the asymptotic regime).

Arithmetic (Gaussian blurs as products with one dense Toeplitz matrix
:math:`G_{ij} = e^{-(x_i - z_j)^2/(2\eta^2)}` in linear space, each exponent shifted by its
maximum): :math:`Z = G E` (PCS normaliser on x, :math:`E = e^{\ell - \max\ell}` on z),
:math:`W = G^\top P` (DDS normaliser on z, :math:`P = p/\max p`), a step is
:math:`\nu = E\odot G^\top(\mu/Z)`, :math:`\mu' = P\odot G(\nu/W)`; rows whose normaliser
underflows (below 1e-280) are computed in log space instead. The spectrum comes from the
symmetrised kernel :math:`S = B\,\mathrm{diag}(E/W)\,B^\top`, :math:`B = \mathrm{diag}(\sqrt{P/Z})G`
(similar to :math:`M = PD`, symmetric positive semi-definite; top eigenvector
:math:`\sqrt{\pi_\eta}`) by a symmetric eigensolver. Priors and likelihoods are evaluated
through their torch methods.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from scipy.linalg import eigh
from scipy.special import logsumexp

from ..mixture1d import Mixture1D
from ..priors import GaussianMixture, Prior, ProductPrior
from .chains1d import Axis
from .closed_form import to_mixture1d
from . import grid_base
from .grid_base import (GridResult, check_eta, check_memory, check_resolution, eval_on_points,
                        normalise_log, tv_spectral)
from .inits import init_mass, point_init
from .likelihoods import Likelihood

__all__ = ["Grid1D"]


_TINY = 1e-280          # normalisers below this are recomputed in log space


class _Level(dict):
    """One eta's blur (see :meth:`Grid1D._level`): ``to_x(b)`` is :math:`G b` (z -> x),
    ``to_z(a)`` is :math:`a G` (x -> z), on the last axis of 1-D or 2-D arrays; ``self["G"]``
    the dense matrix, and ``"Pu"``, ``"Du"`` the log-space rows, built on first use and
    kept."""

    _DENSE_ROWS = 8       # from this many rows one product with the dense G is faster,
    _DENSE_BYTES = 2 ** 29    # where G takes at most 512 MiB and an eighth of the memory

    def __init__(self, gv, nz):
        super().__init__()
        self.gv = gv
        self.lazy: dict = {"G": self._dense}
        self._nz = nz
        self._n = gv.size - nz + 1
        self._dense_ok = 8.0 * self._n * nz <= min(self._DENSE_BYTES,
                                                   grid_base._machine_memory() / 8)

    def _dense(self):
        from numpy.lib.stride_tricks import sliding_window_view
        check_memory(3 * 8.0 * self._n * self._nz,      # G and a product of its size, twice
                     f"the dense blur matrix ({self._n} x {self._nz})")
        # row i of G is gv[i - j + nz - 1] over j: a window of the reversed profile
        return np.ascontiguousarray(sliding_window_view(self.gv[::-1], self._nz)[::-1])

    def __missing__(self, key):
        if key not in self.lazy:
            raise KeyError(key)
        self[key] = self.lazy[key]()
        return self[key]

    def _rows(self, a, one):
        a = np.asarray(a, float)
        if a.ndim == 1:
            return one(a)
        flat = a.reshape(-1, a.shape[-1])
        return np.stack([one(r) for r in flat]).reshape(a.shape[:-1] + (-1,))

    def to_x(self, b):
        b = np.asarray(b, float)
        if b.ndim > 1 and b.size // b.shape[-1] >= self._DENSE_ROWS and self._dense_ok:
            return b @ self["G"].T
        return self._rows(b, lambda r: np.convolve(self.gv, r, "valid"))

    def to_z(self, a):
        a = np.asarray(a, float)
        if a.ndim > 1 and a.size // a.shape[-1] >= self._DENSE_ROWS and self._dense_ok:
            return a @ self["G"]
        return self._rows(a, lambda r: np.correlate(self.gv, r, "valid")[::-1])


class Grid1D:
    r"""The 1-D grid engine (module docstring) for a prior with a density on R and any
    likelihood with ``dim == 1``.

    Parameters
    ----------
    prior : Prior (dim 1)
    lik : Likelihood (dim 1)
    h : float
        Grid spacing (default: 1/8 of the narrowest scale: the prior components' standard
        deviations, ``eta_min``, the likelihood's width :math:`(\mathrm{Lip}\,\nabla\ell)^{-1/2}`
        and any ``scales`` given; at 8 points per standard deviation the Riemann sum of a
        Gaussian is exact to :math:`e^{-2\pi^2 64}`, so the error is set by the tails and
        checked by refinement). A spacing above 1/1.5 of the narrowest scale is refused.
    lo, hi : float, optional
        The x grid (default: the prior's means +- 12 sd, widened to [-8.5, 8.5] for inits).
    eta_max, eta_min : float
        Largest and smallest eta that will be used (z-grid margin 12 eta_max; spacing).
    scales : dict, optional
        Further lengths the grid must resolve (name -> length), e.g. a sub-sampler's noise.
    anchor : float, optional
        A point to put on a node (default: the likelihood's kink if it has one, else 0).
    """

    def __init__(self, prior: Prior, lik: Likelihood, *, h: Optional[float] = None,
                 lo: Optional[float] = None, hi: Optional[float] = None, eta_max: float = 1.0,
                 eta_min: Optional[float] = None, scales: Optional[dict] = None,
                 anchor: Optional[float] = None):
        if prior.dim != 1 or lik.dim != 1:
            raise ValueError("Grid1D needs a 1-D prior and likelihood")
        self.prior, self.lik = prior, lik
        mix = self._prior_mix(prior)
        eta_max = float(eta_max)
        eta_min = eta_max if eta_min is None else float(eta_min)
        self.scales = self.problem_scales(prior, lik, eta_max, eta_min, scales)
        self.h = float(h) if h is not None else min(self.scales.values()) / 8
        check_resolution(self.h, self.scales)
        if mix is not None:
            plo, phi = mix.spread(12.0)
        else:
            plo, phi = -10.0, 10.0
        lo = min(plo, -8.5) if lo is None else float(lo)
        hi = max(phi, 8.5) if hi is None else float(hi)
        kinks = lik.kinks_1d()
        self.anchor = float(anchor) if anchor is not None else (kinks[0] if kinks else 0.0)
        if not hi > lo:
            raise ValueError(f"the grid needs lo < hi, got {lo}, {hi}")
        self.axis = Axis.covering(lo, hi, self.h, self.anchor)
        n = self.axis.n
        self.margin = int(math.ceil(12 * eta_max / self.h))
        nz = n + 2 * self.margin
        # what the grid holds for every eta is O(n + nz) (the blurs are convolutions with a
        # profile); the dense matrices (kernels, spectra) check their own size when built
        check_memory(8.0 * 64 * (n + nz),
                     f"the 1-D grid ({n} x nodes, {nz} z nodes at h = {self.h:.3g})")
        self.x = self.axis.nodes
        self.z = self.axis.lo + self.h * np.arange(-self.margin, n + self.margin)
        self.zaxis = Axis(float(self.z[0]), self.h, int(self.z.size))
        self.eta_max = eta_max
        self.log_prior = eval_on_points(prior.log_prob, self.x)
        self.loglik_x = eval_on_points(lik.log_lik, self.x)
        self.loglik_z = eval_on_points(lik.log_lik, self.z)
        self.P = np.exp(self.log_prior - self.log_prior.max())
        self.E = np.exp(self.loglik_z - self.loglik_z.max())
        self._levels: dict = {}
        self._kernels: dict = {}

    @classmethod
    def problem_scales(cls, prior, lik, eta_max, eta_min=None, scales=None) -> dict:
        """The lengths a grid for this problem must resolve (name -> length)."""
        mix = cls._prior_mix(prior)
        sd_min = float(np.sqrt(mix.v[mix.w > 0].min())) if mix is not None else 0.1
        if sd_min <= 0:
            raise ValueError("the prior has a point mass: no density on a grid")
        eta_min = float(eta_max) if eta_min is None else float(eta_min)
        for name, e in (("eta_max", float(eta_max)), ("eta_min", eta_min)):
            if not (math.isfinite(e) and e > 0):
                raise ValueError(f"{name} must be a positive number, got {e}")
        return {"the prior's narrowest component sd": sd_min, "eta_min": eta_min,
                "the likelihood's width": math.sqrt(lik.step_scale()), **(scales or {})}

    @staticmethod
    def _prior_mix(prior):
        if isinstance(prior, ProductPrior):
            w, m, s = prior.coordinate_params(0)
            return Mixture1D(w, m, s ** 2)
        if isinstance(prior, GaussianMixture):
            return to_mixture1d(prior)
        return None

    def _check_eta(self, eta):
        return check_eta(eta, self.eta_max)

    # -- the blurs per eta ---------------------------------------------------------------
    def _level(self, eta):
        r"""The blur of one eta: the Gaussian profile ``gv`` whose Toeplitz matrix is
        :math:`G_{ij} = e^{-(x_i - z_j)^2/2\eta^2} = gv[i - j + n_z - 1]`, the normalisers
        :math:`Z = G e^{\ell}`, :math:`W = G^\top p` and their inverses, and log-space rows
        where a normaliser underflows. The products with G are direct convolutions
        (``numpy.convolve``: a dot product per output, as accurate as the dense product, with
        no n x n_z matrix); G itself is built only for the dense kernels (``lv["G"]``)."""
        eta = self._check_eta(eta)
        if eta not in self._levels:
            n, nz = self.x.size, self.z.size
            k = np.arange(-(nz - 1), n) + self.margin           # (x_i - z_j) / h
            gv = np.exp(-(self.h * k) ** 2 / (2 * eta * eta))
            lv = _Level(gv, nz)
            Z = lv.to_x(self.E)
            W = lv.to_z(self.P)
            uz, uw = np.flatnonzero(Z < _TINY), np.flatnonzero(W < _TINY)
            inv_Z = np.divide(1.0, Z, out=np.zeros_like(Z), where=Z >= _TINY)
            inv_W = np.divide(1.0, W, out=np.zeros_like(W), where=W >= _TINY)
            x, z, lp, lz = self.x, self.z, self.log_prior, self.loglik_z
            # the log-space rows, built on first use: a law with no mass on those nodes
            # (the usual case: far z nodes at small eta) never needs them
            lv.lazy["Pu"] = lambda: (normalise_log(
                lz[None, :] - (x[uz, None] - z[None, :]) ** 2 / (2 * eta * eta))
                if uz.size else None)
            lv.lazy["Du"] = lambda: (normalise_log(
                lp[None, :] - (z[uw, None] - x[None, :]) ** 2 / (2 * eta * eta))
                if uw.size else None)
            lv.update({"Z": Z, "inv_Z": inv_Z, "inv_W": inv_W, "uz": uz, "uw": uw})
            self._levels[eta] = lv
        return self._levels[eta]

    def pcs(self, mu: np.ndarray, eta: float) -> np.ndarray:
        """Masses of :math:`x_{k+1/2}` on the z grid from the masses of :math:`x_k` (rows)."""
        lv = self._level(eta)
        nu = self.E * lv.to_z(mu * lv["inv_Z"])
        if lv["uz"].size and np.any(mu[..., lv["uz"]]):
            nu = nu + mu[..., lv["uz"]] @ lv["Pu"]
        return nu

    def dds(self, nu: np.ndarray, eta: float) -> np.ndarray:
        """Masses of :math:`x_{k+1}` on the x grid from the masses of :math:`x_{k+1/2}` (rows)."""
        lv = self._level(eta)
        mu = self.P * lv.to_x(nu * lv["inv_W"])
        if lv["uw"].size and np.any(nu[..., lv["uw"]]):
            mu = mu + nu[..., lv["uw"]] @ lv["Du"]
        return mu

    # -- targets -------------------------------------------------------------------------
    def posterior(self) -> np.ndarray:
        """Posterior masses on the x grid."""
        return normalise_log(self.log_prior + self.loglik_x)

    def pi_eta(self, eta: float) -> np.ndarray:
        r""":math:`\pi_\eta` masses: :math:`p(x_i)\sum_j e^{\ell(z_j)}N(x_i - z_j; 0, \eta^2)`,
        the grid chain's stationary law (log space where the normaliser underflows)."""
        lv = self._level(eta)
        with np.errstate(divide="ignore"):
            logz = np.log(lv["Z"])
        if lv["uz"].size:
            d2 = (self.x[lv["uz"], None] - self.z[None, :]) ** 2
            logz[lv["uz"]] = logsumexp(self.loglik_z[None, :] - self.loglik_z.max()
                                       - d2 / (2 * eta * eta), axis=1)
        return normalise_log(self.log_prior + logz)

    # -- kernels -------------------------------------------------------------------------
    def pcs_matrix(self, eta: float, src: Optional[np.ndarray] = None) -> np.ndarray:
        """Row-stochastic PCS matrix from source points (default the x grid) to the z grid."""
        eta = self._check_eta(eta)
        if src is not None:
            d2 = (np.asarray(src, float)[:, None] - self.z[None, :]) ** 2
            return normalise_log(self.loglik_z[None, :] - d2 / (2 * eta ** 2))
        lv = self._level(eta)
        Pm = lv["inv_Z"][:, None] * lv["G"] * self.E[None, :]
        if lv["uz"].size:
            Pm[lv["uz"]] = lv["Pu"]
        return Pm

    def dds_matrix(self, eta: float) -> np.ndarray:
        """Row-stochastic DDS matrix from the z grid to the x grid."""
        lv = self._level(eta)
        D = lv["inv_W"][:, None] * lv["G"].T * self.P[None, :]
        if lv["uw"].size:
            D[lv["uw"]] = lv["Du"]
        return D

    def kernel(self, eta: float) -> np.ndarray:
        """The Gibbs x-chain kernel M = P D (row-stochastic), cached per eta."""
        key = self._check_eta(eta)
        if key not in self._kernels:
            n, nz = self.x.size, self.z.size
            check_memory(8.0 * (4 * n * nz + 3 * n * n),
                         f"the dense Gibbs kernel ({n} x nodes, {nz} z nodes at h = "
                         f"{self.h:.3g})")
            self._kernels[key] = self.pcs_matrix(eta) @ self.dds_matrix(eta)
        return self._kernels[key]

    def _symmetric(self, eta):
        lv = self._level(eta)
        B = np.sqrt(self.P * lv["inv_Z"])[:, None] * lv["G"]
        S = (B * (self.E * lv["inv_W"])[None, :]) @ B.T
        return 0.5 * (S + S.T)

    def spectrum(self, eta: float, k: int = 4) -> np.ndarray:
        r"""The ``k`` largest eigenvalues of M (real, in [0, 1]: M is reversible w.r.t.
        :math:`\pi_\eta` and a positive operator), from the symmetrised kernel S."""
        S = self._symmetric(eta)
        n = S.shape[0]
        k = min(int(k), n)
        return eigh(S, eigvals_only=True, subset_by_index=[n - k, n - 1])[::-1]

    def rate(self, eta: float) -> float:
        """Second largest eigenvalue of the kernel: the exact geometric rate."""
        return float(abs(self.spectrum(eta, 2)[1]))

    def stationary(self, eta: float) -> np.ndarray:
        """Stationary vector of the grid kernel: the square of the top eigenvector of S."""
        S = self._symmetric(eta)
        n = S.shape[0]
        _, v = eigh(S, subset_by_index=[n - 1, n - 1])
        v = v[:, 0] ** 2
        return v / v.sum()

    # -- laws of x_k ---------------------------------------------------------------------
    def init_z_mass(self, init: str, eta: float) -> np.ndarray:
        """Law of the first PCS output :math:`x_{1/2}` on the z grid, for an init law."""
        if isinstance(init, str) and init.startswith("point:"):
            x0 = point_init(init, 1)
            return self.pcs_matrix(eta, x0)[0]
        return self.pcs(init_mass(init, self.x, self.prior), eta)

    def laws(self, etas: Sequence[float], init: str = "standard-normal") -> list:
        """Mass vectors of the laws of x_1, ..., x_K for the levels ``etas``."""
        etas = [self._check_eta(e) for e in etas]
        out = [self.dds(self.init_z_mass(init, etas[0]), etas[0])]
        for eta in etas[1:]:
            out.append(self.dds(self.pcs(out[-1], eta), eta))
        return out

    def run(self, etas: Sequence[float], init: str = "standard-normal",
            with_rates: bool = True) -> GridResult:
        """Laws of x_k, TV to pi_eta_k and to the posterior, TV(pi_eta, posterior), rates."""
        laws = self.laws(etas, init)
        post = self.posterior()
        pis = {e: self.pi_eta(e) for e in set(float(e) for e in etas)}
        tv_pi = [tv_spectral(m, pis[float(e)]) for m, e in zip(laws, etas)]
        tv_post = [tv_spectral(m, post) for m in laws]
        rates = {e: self.rate(e) for e in pis} if with_rates else {}
        lost = max(abs(1.0 - float(m.sum())) for m in laws)
        return GridResult(self.x, laws, tv_pi, tv_post, [pis[float(e)] for e in etas], post,
                          [tv_spectral(pis[float(e)], post) for e in etas], rates,
                          {"h": self.h, "n_x": int(self.x.size), "n_z": int(self.z.size),
                           "x_range": [float(self.x[0]), float(self.x[-1])], "lost": lost})
