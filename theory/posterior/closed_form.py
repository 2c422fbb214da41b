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

All arithmetic is float64 torch on the prior's device.
"""
from __future__ import annotations

import math

import torch

from ..mixture1d import Mixture1D
from ..priors import GaussianMixture, IsotropicMixture, Prior, ProductPrior, SubspaceMixture
from .likelihoods import LinearGaussian

__all__ = ["as_gmm", "gaussian_observation_posterior", "posterior_closed_form", "pi_eta_closed_form", "to_mixture1d"]

DTYPE = torch.float64


def as_gmm(prior: Prior, max_components: int = 4096) -> GaussianMixture:
    """The prior as one :class:`GaussianMixture` (a product of d 1-D mixtures with K
    components becomes K^d components: only for small d)."""
    if isinstance(prior, GaussianMixture):
        return prior
    if isinstance(prior, IsotropicMixture):
        return GaussianMixture(prior.weights, prior.means, prior.covs, device=prior.device)
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
