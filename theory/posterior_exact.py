r"""Exact references for posterior sampling: THEORY.md sections 4 and 6.

**Closed forms** (mixture prior :math:`\sum_j \pi_j N(\mu_j, \Sigma_j)`, linear-Gaussian
likelihood :math:`y = Ax + N(0, \sigma^2 I)`). For a Gaussian observation with noise
covariance R the posterior is a mixture with (Kalman form, valid for singular
:math:`\Sigma_j`)

.. math::
    G_j = \Sigma_j A^\top (A\Sigma_j A^\top + R)^{-1},\quad
    \mu'_j = \mu_j + G_j (y - A\mu_j),\quad \Sigma'_j = \Sigma_j - G_j A \Sigma_j,\quad
    \pi'_j \propto \pi_j N(y; A\mu_j, A\Sigma_j A^\top + R).

The posterior :math:`p(x \mid y)` is the case :math:`R = \sigma^2 I`; the stationary law of
DPnP at a fixed :math:`\eta`, :math:`\pi_\eta \propto p(x)\,N(y; Ax, \sigma^2 I + \eta^2 AA^\top)`,
is the case :math:`R = \sigma^2 I + \eta^2 AA^\top` (Xu & Chi, arXiv:2403.17042).

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
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from scipy.special import logsumexp

from .likelihoods import Likelihood, LinearGaussian
from .mixture1d import Mixture1D
from .priors import GaussianMixture, Prior, ProductPrior, SubspaceMixture

__all__ = ["kink_correction", "as_gmm", "gaussian_observation_posterior", "posterior_closed_form",
           "pi_eta_closed_form", "to_mixture1d", "Grid1D", "GridResult", "tv_masses",
           "grid_refinement", "init_mass", "BinnedTV", "binned_tv", "binned_tv_2d"]

DTYPE = torch.float64


# --------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------

def as_gmm(prior: Prior, max_components: int = 4096) -> GaussianMixture:
    """The prior as one :class:`GaussianMixture` (a product of d 1-D mixtures with K
    components becomes K^d components: only for small d)."""
    if isinstance(prior, GaussianMixture):
        return prior
    if isinstance(prior, ProductPrior):
        d, K = prior.weights.shape
        if K ** d > max_components:
            raise ValueError(f"product prior with {K}^{d} components is too large for a "
                             "closed-form mixture")
        idx = torch.cartesian_prod(*[torch.arange(K)] * d).reshape(-1, d)
        ar = torch.arange(d)[None, :]
        w = prior.weights[ar, idx].prod(1)
        mu = prior.means[ar, idx]
        cov = torch.diag_embed(prior.stds[ar, idx] ** 2)
        keep = w > 0
        w = w[keep] / w[keep].sum()
        return GaussianMixture(w, mu[keep], cov[keep], device=prior.device)
    if isinstance(prior, SubspaceMixture):
        inner = as_gmm(prior.inner, max_components)
        U = prior.basis
        P = torch.eye(prior.dim, dtype=DTYPE, device=prior.device) - U @ U.T
        covs = U @ inner.covs @ U.T + prior.perp_var * P
        return GaussianMixture(inner.weights, inner.means @ U.T, covs, device=prior.device)
    raise ValueError(f"no mixture form for prior {type(prior).__name__}")


def gaussian_observation_posterior(prior: Prior, A, y, R) -> GaussianMixture:
    r"""Posterior of a mixture prior given :math:`y = Ax + N(0, R)` (module docstring)."""
    g = as_gmm(prior)
    A = torch.as_tensor(A, dtype=DTYPE, device=g.device)
    y = torch.as_tensor(y, dtype=DTYPE, device=g.device).reshape(-1)
    R = torch.as_tensor(R, dtype=DTYPE, device=g.device)
    S = g.covs                                                     # (K, d, d)
    AS = A @ S                                                     # (K, m, d)
    Cy = AS @ A.T + R                                              # (K, m, m)
    Cy = 0.5 * (Cy + Cy.transpose(-1, -2))
    L = torch.linalg.cholesky(Cy)
    resid = y[None, :] - g.means @ A.T                             # (K, m)
    sol = torch.cholesky_solve(resid[..., None], L)[..., 0]        # Cy^{-1} r
    G_T = torch.cholesky_solve(AS, L)                              # Cy^{-1} A S  (K, m, d)
    mean = g.means + torch.einsum("kmd,km->kd", AS, sol)
    cov = S - AS.transpose(-1, -2) @ G_T
    cov = 0.5 * (cov + cov.transpose(-1, -2))
    m = y.shape[0]
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    logw = torch.log(g.weights) - 0.5 * ((resid * sol).sum(-1) + logdet + m * math.log(2 * math.pi))
    w = torch.softmax(logw, 0)
    keep = w > 0
    return GaussianMixture(w[keep] / w[keep].sum(), mean[keep], cov[keep], device=g.device)


def _check_lg(lik):
    if not isinstance(lik, LinearGaussian):
        raise ValueError(f"closed forms need the linear-Gaussian likelihood, not {lik.name!r} "
                         "(use the grid engine)")


def posterior_closed_form(prior: Prior, lik: LinearGaussian) -> GaussianMixture:
    r""":math:`p(x \mid y)` for a mixture prior and a linear-Gaussian likelihood."""
    _check_lg(lik)
    m = lik.A.shape[0]
    return gaussian_observation_posterior(prior, lik.A, lik.y,
                                          lik.sigma ** 2 * torch.eye(m, dtype=DTYPE, device=lik.device))


def pi_eta_closed_form(prior: Prior, lik: LinearGaussian, eta: float) -> GaussianMixture:
    r""":math:`\pi_\eta \propto p(x) N(y; Ax, \sigma^2 I + \eta^2 AA^\top)`, the stationary law
    of DPnP at fixed :math:`\eta` (exact PCS and DDS)."""
    _check_lg(lik)
    eta = float(eta)
    if not (math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a positive number, got {eta}")
    m = lik.A.shape[0]
    R = lik.sigma ** 2 * torch.eye(m, dtype=DTYPE, device=lik.device) + eta ** 2 * lik.A @ lik.A.T
    return gaussian_observation_posterior(prior, lik.A, lik.y, R)


def to_mixture1d(g: GaussianMixture) -> Mixture1D:
    """A 1-D :class:`GaussianMixture` as a numpy :class:`Mixture1D` (variances)."""
    if g.dim != 1:
        raise ValueError("to_mixture1d needs a 1-D mixture")
    return Mixture1D(g.weights.cpu().numpy().astype(float), g.means[:, 0].cpu().numpy().astype(float),
                     g.covs[:, 0, 0].cpu().numpy().astype(float))


# --------------------------------------------------------------------------------------
# 1-D grid engine
# --------------------------------------------------------------------------------------

def tv_masses(p: np.ndarray, q: np.ndarray) -> float:
    r"""TV between two laws given by masses on the same uniform grid.

    The trapezoid rule (the plain sum of :math:`|d_i|`, :math:`d = p - q`) is spectrally
    accurate for smooth Gaussian-tailed integrands, but :math:`|d|` has a kink at every
    crossing of the densities, where it errs by O(h^2) (an oscillating function of where the
    crossing falls between nodes). Each sign change between :math:`d_i` and :math:`d_{i+1}` is
    corrected by Euler-Maclaurin for a kink: the cell integral of the linear interpolant
    (:math:`-|d_i||d_{i+1}|/(|d_i|+|d_{i+1}|)` against the trapezoid) and the jump of the
    derivative (:math:`+(|d_i|+|d_{i+1}|)/6`), leaving an O(h^3) error per crossing.
    """
    d = np.asarray(p, float) - np.asarray(q, float)
    return 0.5 * float(np.abs(d).sum() - kink_correction(d, 0))


def kink_correction(d: np.ndarray, axis: int) -> float:
    """Sum over the sign changes of ``d`` between neighbours along ``axis`` of the
    Euler-Maclaurin kink term of :func:`tv_masses` (subtract it from ``sum |d|``)."""
    d = np.moveaxis(np.asarray(d, float), axis, 0)
    a, b = d[:-1], d[1:]
    cross = a * b < 0
    aa, bb = np.abs(a[cross]), np.abs(b[cross])
    return float((aa * bb / (aa + bb) - (aa + bb) / 6).sum())


def _normalise_log(logm: np.ndarray, axis=-1) -> np.ndarray:
    return np.exp(logm - logsumexp(logm, axis=axis, keepdims=True))


@dataclass
class GridResult:
    """Laws of x_k (k = 1..K) on the grid with their distances to pi_eta and the posterior."""

    x: np.ndarray
    laws: list
    tv_pi: list
    tv_post: list
    pi: list
    posterior: np.ndarray
    tv_pi_post: list
    rates: dict
    info: dict = field(default_factory=dict)


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
        self.log_prior = self._eval(prior.log_prob, self.x)
        self.loglik_x = self._eval(lik.log_lik, self.x)
        self.loglik_z = self._eval(lik.log_lik, self.z)
        self._kernels: dict = {}

    @staticmethod
    def _prior_mix(prior):
        if isinstance(prior, ProductPrior):
            w, m, s = prior.coordinate_params(0)
            return Mixture1D(w, m, s ** 2)
        if isinstance(prior, GaussianMixture):
            return to_mixture1d(prior)
        return None

    @staticmethod
    def _eval(fn, pts):
        with torch.no_grad():
            out = fn(torch.as_tensor(pts, dtype=DTYPE)[:, None])
        return out.detach().cpu().numpy().astype(np.float64)

    # -- targets -------------------------------------------------------------------------
    def posterior(self) -> np.ndarray:
        """Posterior masses on the x grid."""
        return _normalise_log(self.log_prior + self.loglik_x)

    def pi_eta(self, eta: float) -> np.ndarray:
        r""":math:`\pi_\eta` masses: :math:`p(x_i)\sum_j e^{\ell(z_j)}N(x_i - z_j; 0, \eta^2)`
        (in row blocks, so fine grids fit in memory)."""
        self._check_eta(eta)
        conv = np.empty(self.x.size)
        step = max(1, int(4e6 // self.z.size))
        for i in range(0, self.x.size, step):
            d2 = (self.x[i:i + step, None] - self.z[None, :]) ** 2
            conv[i:i + step] = logsumexp(self.loglik_z[None, :] - d2 / (2 * eta ** 2), axis=1)
        return _normalise_log(self.log_prior + conv)

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
        return _normalise_log(self.loglik_z[None, :] - d2 / (2 * eta ** 2))

    def dds_matrix(self, eta: float) -> np.ndarray:
        """Row-stochastic DDS matrix from the z grid to the x grid."""
        self._check_eta(eta)
        d2 = (self.z[:, None] - self.x[None, :]) ** 2
        return _normalise_log(self.log_prior[None, :] - d2 / (2 * eta ** 2))

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
            from .plug_and_play import point_init
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


def init_mass(init: str, x: np.ndarray, prior: Optional[Prior] = None) -> np.ndarray:
    """Masses of an init law on the grid ``x``: ``standard-normal`` or ``prior``."""
    if init == "standard-normal":
        return _normalise_log(-0.5 * x ** 2)
    if init == "prior":
        if prior is None:
            raise ValueError("the prior init needs the prior")
        return _normalise_log(Grid1D._eval(prior.log_prob, x))
    raise ValueError(f"unknown init {init!r}; use standard-normal, prior or point:V")


def grid_refinement(prior: Prior, lik: Likelihood, etas: Sequence[float],
                    init: str = "standard-normal", h: Optional[float] = None,
                    with_rates: bool = True):
    """Run the grid engine (:class:`Grid1D` for d = 1, :class:`theory.posterior_grid2d.Grid2D`
    for d = 2) at spacing h and 2h; returns ``(fine, coarse, errors)``. The error of each TV
    (tv_pi, tv_post, tv_pi_post, per k) is the refinement difference ``|TV_h - TV_2h|``, plus,
    in 2-D, the size of the fine grid's kink correction and the mass lost to underflow (see
    :mod:`theory.posterior_grid2d`); of the rates, the refinement difference."""
    if prior.dim == 1:
        engine = Grid1D
    else:
        from .posterior_grid2d import Grid2D as engine
    eta_max = max(float(e) for e in etas)
    eta_min = min(float(e) for e in etas)
    fine_grid = engine(prior, lik, h=h, eta_max=eta_max, eta_min=eta_min)
    fine = fine_grid.run(etas, init, with_rates)
    coarse = engine(prior, lik, h=2 * fine_grid.h, eta_max=eta_max,
                    eta_min=eta_min).run(etas, init, with_rates)
    lost = fine.info.get("lost", 0.0)
    err = {}
    for key in ("tv_pi", "tv_post", "tv_pi_post"):
        kink = fine.info.get("kink", {}).get(key, [0.0] * len(etas))
        err[key] = [abs(a - b) + c + lost
                    for a, b, c in zip(getattr(fine, key), getattr(coarse, key), kink)]
    err["rates"] = {e: abs(fine.rates[e] - coarse.rates[e]) for e in fine.rates}
    return fine, coarse, err


# --------------------------------------------------------------------------------------
# Sample-based TV against an exact grid law (1-D)
# --------------------------------------------------------------------------------------

@dataclass
class BinnedTV:
    """Binned TV between samples and a grid law, with its CI and its noise floor.

    ``value``: :math:`\\tfrac12\\sum_b |c_b/n - P_b|` (+ half the mass outside the bins);
    ``lower``/``upper``: 95% basic-bootstrap interval (multinomial resampling);
    ``floor``/``floor_q95``: mean and 95% quantile of the same statistic for n exact draws
    from the reference (what the estimator returns when the true TV is 0);
    ``ks_lower``: a rigorous 95% lower bound on the true TV, :math:`\\max(0, \\mathrm{KS}_n -
    \\sqrt{\\log(2/0.05)/(2n)})` (DKW) with KS over the bin edges (TV >= KS).
    Binning can only lower the TV of the laws (data processing), so ``value`` estimates a
    lower bound of the true TV plus the sampling bias measured by ``floor``.
    """

    value: float
    lower: float
    upper: float
    floor: float
    floor_q95: float
    ks_lower: float
    n: int
    bin_width: float
    method: str

    @property
    def below_floor(self) -> bool:
        return self.value <= self.floor_q95

    def to_dict(self) -> dict:
        return {"value": self.value, "lower": self.lower, "upper": self.upper,
                "floor": self.floor, "floor_q95": self.floor_q95, "ks_lower": self.ks_lower,
                "n": self.n, "bin_width": self.bin_width, "below_floor": self.below_floor,
                "method": self.method}


def binned_tv(samples, x: np.ndarray, mass: np.ndarray, *, bin_width: Optional[float] = None,
              n_boot: int = 200, seed: int = 0) -> BinnedTV:
    """Binned TV between 1-D ``samples`` and the grid law ``(x, mass)`` (uniform grid ``x``,
    cell i = [x_i - h/2, x_i + h/2)); bins are unions of whole cells (``BinnedTV``)."""
    s = np.asarray(samples.detach().cpu().numpy() if torch.is_tensor(samples) else samples,
                   float).reshape(-1)
    n = s.size
    if n < 2:
        raise ValueError("binned TV needs at least 2 samples")
    x = np.asarray(x, float)
    h = float(x[1] - x[0])
    g = max(1, int(round((bin_width if bin_width is not None else 4 * h) / h)))
    nb = int(math.ceil(x.size / g))
    pad = nb * g - x.size
    P = np.concatenate([np.asarray(mass, float), np.zeros(pad)]).reshape(nb, g).sum(1)
    edges0 = x[0] - h / 2
    idx = np.floor((s - edges0) / (h * g)).astype(np.int64)
    inside = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[inside], minlength=nb).astype(float)
    out = n - counts.sum()
    val, lo, hi, fl_mean, fl_q95 = _binned_statistic(counts, out, P, n, n_boot, seed)
    # KS over the bin edges (the outside mass counted below the first edge)
    Fn = np.cumsum(counts) / n
    F = np.cumsum(P)
    below = np.sum(idx < 0) / n
    ks = float(np.max(np.abs(Fn + below - F)))
    eps = math.sqrt(math.log(2 / 0.05) / (2 * n))
    return BinnedTV(val, lo, hi, fl_mean, fl_q95, max(0.0, ks - eps), n,
                    h * g, f"binned TV ({nb} bins of width {h * g:.4g}), 95% bootstrap CI "
                    f"({n_boot} resamples), floor from {n_boot} exact multinomial draws")


def _binned_statistic(counts, out, P, n, n_boot, seed):
    r"""Value, 95% basic-bootstrap interval and floor (mean, 95% quantile) of the binned TV
    :math:`\tfrac12\sum_b |c_b/n - P_b| + \tfrac12 o/n` for bin counts ``c`` (flat), ``o``
    samples outside the bins and reference bin masses ``P``."""
    def stat(c, o):
        return 0.5 * np.abs(c / n - P).sum(-1) + 0.5 * o / n

    val = float(stat(counts, out))
    rng = np.random.default_rng(seed)
    probs = np.concatenate([counts, [out]]) / n
    boot = rng.multinomial(n, probs, size=n_boot)
    bs = stat(boot[:, :-1], boot[:, -1])
    Pn = np.concatenate([P, [max(0.0, 1 - P.sum())]])
    Pn = Pn / Pn.sum()
    ex = rng.multinomial(n, Pn, size=n_boot)
    fl = stat(ex[:, :-1], ex[:, -1])
    # basic (reverse-percentile) bootstrap: corrects the upward bias of |.| once
    lo = max(0.0, 2 * val - float(np.quantile(bs, 0.975)))
    hi = max(lo, 2 * val - float(np.quantile(bs, 0.025)))
    return val, lo, hi, float(fl.mean()), float(np.quantile(fl, 0.95))


def binned_tv_2d(samples, axes, mass: np.ndarray, *, bin_cells: int = 8, n_boot: int = 200,
                 seed: int = 0) -> BinnedTV:
    """Binned TV between 2-D ``samples`` (n, 2) and a law given by masses on the grid
    ``axes`` (two uniform axes of spacing h; cell (i, j) centred on the nodes); bins are
    blocks of ``bin_cells`` x ``bin_cells`` cells. As :func:`binned_tv` (value, basic
    bootstrap CI, floor from exact multinomial draws), without the KS lower bound
    (``ks_lower`` = 0: no distribution-free bound of that form in 2-D)."""
    s = np.asarray(samples.detach().cpu().numpy() if torch.is_tensor(samples) else samples,
                   float)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape[0] < 2:
        raise ValueError(f"binned_tv_2d needs samples of shape (n, 2), got {s.shape}")
    n = s.shape[0]
    mass = np.asarray(mass, float)
    h = float(axes[0][1] - axes[0][0])
    g = int(bin_cells)
    if g < 1:
        raise ValueError(f"bin_cells must be a positive integer, got {bin_cells}")
    nb = [int(math.ceil(a.size / g)) for a in axes]
    padded = np.zeros((nb[0] * g, nb[1] * g))
    padded[:mass.shape[0], :mass.shape[1]] = mass
    P = padded.reshape(nb[0], g, nb[1], g).sum((1, 3)).ravel()
    idx = [np.floor((s[:, i] - (axes[i][0] - h / 2)) / (h * g)).astype(np.int64)
           for i in range(2)]
    inside = (idx[0] >= 0) & (idx[0] < nb[0]) & (idx[1] >= 0) & (idx[1] < nb[1])
    flat = idx[0][inside] * nb[1] + idx[1][inside]
    counts = np.bincount(flat, minlength=nb[0] * nb[1]).astype(float)
    out = n - counts.sum()
    val, lo, hi, fl_mean, fl_q95 = _binned_statistic(counts, out, P, n, n_boot, seed)
    return BinnedTV(val, lo, hi, fl_mean, fl_q95, 0.0, n, h * g,
                    f"binned TV in 2-D ({nb[0]} x {nb[1]} bins of side {h * g:.4g}), 95% "
                    f"bootstrap CI ({n_boot} resamples), floor from {n_boot} exact "
                    f"multinomial draws")
