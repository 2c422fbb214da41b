r"""Tweedie's denoiser, its Jacobian, noise levels in both parametrisations, and the Gaussian
approximations of :math:`p(y \mid x_t)` that the guided posterior samplers are built on
(THEORY.md sections 4 and 7).

* VP: :math:`x_t = \sqrt{\bar\alpha}\,x_0 + \sqrt{1-\bar\alpha}\,\varepsilon`,
  :math:`\hat x_0 = (x_t + (1-\bar\alpha)s_t(x_t))/\sqrt{\bar\alpha}`, and
  :math:`J = \partial\hat x_0/\partial x_t = (I + (1-\bar\alpha)\nabla s_t)/\sqrt{\bar\alpha}`
  (symmetric), so :math:`J^\top v = J v` is one score Jacobian-vector product
  (:meth:`theory.priors.Prior.score_jacobian_vector`).
* VE: :math:`x = x_0 + \sigma\varepsilon` is the VP state :math:`\sqrt{\bar\alpha}\,x` at
  :math:`\bar\alpha = 1/(1+\sigma^2)`, so the VE score is
  :math:`s^{VE}_\sigma(x) = \sqrt{\bar\alpha}\,s^{VP}(\sqrt{\bar\alpha}\,x)` and the VE Tweedie
  mean is :math:`x + \sigma^2 s^{VE}_\sigma(x)`.
* Gaussian approximation of the likelihood through :math:`x_0 \approx N(\hat x_0, C)`:
  :math:`\log p(y \mid x_t) \approx \log\int p(y \mid u) N(u; \hat x_0, C)\,du`. Linear-Gaussian
  likelihood: exactly :math:`N(y; A\hat x_0, \sigma^2 I + A C A^\top)`; phase retrieval: the
  same after linearising :math:`|Ax|` at :math:`\hat x_0` (:math:`D = \mathrm{diag\,sign}(A\hat x_0)`,
  :math:`S = \sigma^2 I + D A C A^\top D`); 1-bit logistic: the probit-type moderation
  :math:`\mathrm{sigmoid}(y_i a_i^\top\hat x_0/\lambda_i)`,
  :math:`\lambda_i^2 = \lambda^2 + 3 (ACA^\top)_{ii}/\pi^2` (a logistic of scale lambda has
  variance :math:`\pi^2\lambda^2/3`). :func:`surrogate_grad` returns the gradient of that
  approximation in :math:`\hat x_0` with S (or the moderation) held fixed, which is how
  PiGDM, TMPD and MMPS use it.

All torch float64, batched over rows.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ..priors import GaussianMixture, IsotropicMixture, Prior, ProductPrior
from .likelihoods import Likelihood, LinearGaussian, LogisticQuantisation, PhaseRetrieval

__all__ = ["tweedie", "jac_t", "ve_abar", "ve_score", "ve_tweedie", "surrogate_grad",
           "surrogate_loglik", "inflated", "posterior_cov_times", "prior_extent"]

DTYPE = torch.float64


def tweedie(x: torch.Tensor, s: torch.Tensor, abar: float) -> torch.Tensor:
    r""":math:`\hat x_0 = (x + (1-\bar\alpha)s)/\sqrt{\bar\alpha}`."""
    return (x + (1 - abar) * s) / math.sqrt(abar)


def jac_t(marg: Prior, x: torch.Tensor, v: torch.Tensor, abar: float) -> torch.Tensor:
    r""":math:`J^\top v = (v + (1-\bar\alpha)\nabla s(x) v)/\sqrt{\bar\alpha}` at the marginal
    ``marg`` (:math:`J = \partial\hat x_0/\partial x_t`, symmetric)."""
    return (v + (1 - abar) * marg.score_jacobian_vector(x, v)) / math.sqrt(abar)


def ve_abar(sigma: float) -> float:
    r""":math:`\bar\alpha = 1/(1+\sigma^2)`: the VP level of the VE noise :math:`\sigma`."""
    return 1.0 / (1.0 + float(sigma) ** 2)


def ve_score(prior: Prior, x: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Score of :math:`p * N(0, \sigma^2 I)` at ``x``:
    :math:`\sqrt{\bar\alpha}\,s^{VP}_{\bar\alpha}(\sqrt{\bar\alpha}\,x)`."""
    a = ve_abar(sigma)
    return math.sqrt(a) * prior.marginal(a).score(math.sqrt(a) * x)


def ve_tweedie(prior: Prior, x: torch.Tensor, sigma: float) -> torch.Tensor:
    r""":math:`E[X_0 \mid X_0 + \sigma W = x] = x + \sigma^2 s^{VE}_\sigma(x)`."""
    return x + float(sigma) ** 2 * ve_score(prior, x, sigma)


def posterior_cov_times(marg: Prior, x: torch.Tensor, V: torch.Tensor, abar: float) -> torch.Tensor:
    r""":math:`\mathrm{Cov}[x_0 \mid x_t]\,V` for each row of ``x``, with
    :math:`\mathrm{Cov}[x_0 \mid x_t] = \frac{1-\bar\alpha}{\bar\alpha}(I + (1-\bar\alpha)\nabla s_t)`
    (second-order Tweedie); ``V`` of shape (d, m); returns (n, d, m) (m Jacobian-vector
    products)."""
    c = (1 - abar) / abar
    cols = []
    for j in range(V.shape[1]):
        v = V[:, j].expand_as(x)
        cols.append(c * (v + (1 - abar) * marg.score_jacobian_vector(x, v)))
    return torch.stack(cols, -1)


def _scalar_cov(cov, n, device):
    c = torch.as_tensor(cov, dtype=DTYPE, device=device)
    return c.reshape(-1, 1) if c.ndim else c.reshape(1, 1).expand(n, 1)


def _linear_part(lik: Likelihood, x0: torch.Tensor):
    """Residual of the (linearised) measurement at x0 and, for phase retrieval, the signs
    of :math:`A x_0` (None otherwise)."""
    Ax = x0 @ lik.A.T
    if isinstance(lik, PhaseRetrieval):
        sgn = torch.sign(Ax)
        return lik.y - Ax.abs(), sgn
    return lik.y - Ax, None


def surrogate_grad(lik: Likelihood, x0: torch.Tensor, cov=None, *,
                   cov_times: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                   cov_diag: Optional[torch.Tensor] = None) -> torch.Tensor:
    r"""Gradient in :math:`\hat x_0` of the Gaussian approximation of
    :math:`\log p(y \mid x_t)` (module docstring), shape (n, d).

    The covariance of :math:`x_0 \mid x_t` is given as one of: ``cov`` a number or (n,)
    vector (isotropic :math:`cI`), ``cov_diag`` (n, d) (diagonal), ``cov_times`` a function
    ``V (d, m) -> C V (n, d, m)``.
    """
    n, d = x0.shape
    A = lik.A
    m = A.shape[0]
    if isinstance(lik, LogisticQuantisation):
        if cov_diag is not None:
            v = (cov_diag[:, None, :] * A[None] ** 2).sum(-1)               # (n, m)
        elif cov_times is not None:
            v = torch.einsum("md,ndm->nm", A, cov_times(A.T))
        else:
            v = _scalar_cov(cov, n, x0.device) * (A * A).sum(1)[None]
        lam = torch.sqrt(lik.lam ** 2 + 3.0 * v / math.pi ** 2)             # (n, m)
        u = lik.y * (x0 @ A.T) / lam
        return (lik.y * torch.sigmoid(-u) / lam) @ A
    if not isinstance(lik, (LinearGaussian, PhaseRetrieval)):
        raise ValueError(f"no Gaussian approximation for likelihood {lik.name!r}")
    r, sgn = _linear_part(lik, x0)
    s2 = lik.sigma ** 2
    if cov_diag is None and cov_times is None and lik.diagonal and sgn is None:
        cov_diag = _scalar_cov(cov, n, x0.device).expand(n, d)
    if cov_diag is not None and lik.diagonal and sgn is None:
        # rows of A are scaled unit vectors: S is diagonal
        col = (A != 0).float().argmax(1)
        a = A[torch.arange(m), col]
        S = s2 + a[None] ** 2 * cov_diag[:, col]
        return torch.zeros_like(x0).index_add_(1, col, r * a[None] / S)
    if cov_diag is not None:
        ACA = torch.einsum("md,nd,kd->nmk", A, cov_diag, A)
    elif cov_times is not None:
        ACA = torch.einsum("md,ndk->nmk", A, cov_times(A.T))
    else:
        ACA = _scalar_cov(cov, n, x0.device)[:, :, None] * (A @ A.T)[None]
    if sgn is not None:
        ACA = sgn[:, :, None] * ACA * sgn[:, None, :]
    S = ACA + s2 * torch.eye(m, dtype=DTYPE, device=x0.device)
    S = 0.5 * (S + S.transpose(-1, -2))
    w = torch.linalg.solve(S, r[..., None])[..., 0]                       # (n, m)
    if sgn is not None:
        w = w * sgn
    return w @ A


def surrogate_loglik(lik: Likelihood, x0: torch.Tensor, cov) -> torch.Tensor:
    r"""The isotropic-covariance approximation :math:`\log\int p(y \mid u)N(u; \hat x_0, cI)du`
    itself (shape (n,)), used as the twisting potential of TDS: linear-Gaussian exactly
    :math:`\log N(y; A\hat x_0, \sigma^2 I + c AA^\top)`; phase retrieval and 1-bit logistic
    as in :func:`surrogate_grad` (linearised / moderated at :math:`\hat x_0`)."""
    n, d = x0.shape
    A = lik.A
    m = A.shape[0]
    c = _scalar_cov(cov, n, x0.device)
    if isinstance(lik, LogisticQuantisation):
        lam = torch.sqrt(lik.lam ** 2 + 3.0 * c * (A * A).sum(1)[None] / math.pi ** 2)
        return torch.nn.functional.logsigmoid(lik.y * (x0 @ A.T) / lam).sum(1)
    r, sgn = _linear_part(lik, x0)
    ACA = c[:, :, None] * (A @ A.T)[None]
    if sgn is not None:
        ACA = sgn[:, :, None] * ACA * sgn[:, None, :]
    S = ACA + lik.sigma ** 2 * torch.eye(m, dtype=DTYPE, device=x0.device)
    L = torch.linalg.cholesky(0.5 * (S + S.transpose(-1, -2)))
    z = torch.linalg.solve_triangular(L, r[..., None], upper=False)[..., 0]
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * ((z * z).sum(1) + logdet + m * math.log(2 * math.pi))


def inflated(lik: Likelihood, extra_var: float) -> Likelihood:
    r"""The same measurement model with the noise variance inflated by ``extra_var``:
    :math:`\sigma^2 \to \sigma^2 + \gamma^2` (linear-Gaussian, phase retrieval); for the 1-bit
    model :math:`\lambda^2 \to \lambda^2 + 3\gamma^2/\pi^2` (moderation). Score-ALD's
    :math:`A^\top(y - Ax)/(\sigma_y^2 + \gamma^2)` is the gradient of the inflated Gaussian
    likelihood."""
    e = float(extra_var)
    if isinstance(lik, LogisticQuantisation):
        return LogisticQuantisation(lik.A, lik.y, math.sqrt(lik.lam ** 2 + 3 * e / math.pi ** 2),
                                    device=lik.device)
    if isinstance(lik, (LinearGaussian, PhaseRetrieval)):
        return type(lik)(lik.A, lik.y, math.sqrt(lik.sigma ** 2 + e), device=lik.device)
    raise ValueError(f"cannot inflate likelihood {lik.name!r}")


def prior_extent(prior: Prior) -> float:
    r"""A length covering the prior: the largest distance between two component means plus
    six times the largest component standard deviation (NCSNv2's rule for the largest noise
    level of annealed Langevin: about the diameter of the data). Product priors: the same
    per coordinate, combined in quadrature."""
    if isinstance(prior, ProductPrior):
        mu, sd = prior.means, prior.stds
        span = (mu.max(1).values - mu.min(1).values) + 6 * sd.max(1).values
        return float(torch.sqrt((span ** 2).sum()))
    if isinstance(prior, IsotropicMixture):
        mu, sd = prior.means, float(prior.variances.max().sqrt())
    elif isinstance(prior, GaussianMixture):
        mu = prior.means
        sd = float(torch.linalg.eigvalsh(prior.covs).max().clamp_min(0).sqrt())
    else:
        raise ValueError(f"no extent for prior {type(prior).__name__}")
    return float(torch.cdist(mu, mu).max()) + 6 * sd
