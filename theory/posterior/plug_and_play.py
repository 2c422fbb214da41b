r"""Diffusion plug-and-play posterior sampling (DPnP): THEORY.md section 6.

Target: the posterior :math:`p(x \mid y) \propto p(x)\,e^{\ell(x)}`,
:math:`\ell = \log p(y \mid \cdot)` (:mod:`theory.posterior.likelihoods`). DPnP alternates, for outer
steps :math:`k = 0, 1, \dots, K-1` with annealing levels :math:`\eta_k`,

1. **PCS** (proximal consistency sampler):
   :math:`x_{k+1/2} \sim \propto \exp\big(\ell(z) - \|z - x_k\|^2/(2\eta_k^2)\big)`;
2. **DDS** (denoising diffusion sampler):
   :math:`x_{k+1} \sim \propto p(x)\exp\big(-\|x - x_{k+1/2}\|^2/(2\eta_k^2)\big)`, the law of
   :math:`X_0` given :math:`X_0 + \eta_k W = x_{k+1/2}`.

For a fixed :math:`\eta` this is a two-block Gibbs sampler on
:math:`p(x)\,N(z; x, \eta^2 I)\,e^{\ell(z)}`, whose x-chain is reversible with stationary law
:math:`\pi_\eta \propto p(x)\,(e^{\ell} * N(0, \eta^2 I))(x)` (:mod:`theory.posterior.closed_form`).

Annealing levels come from :mod:`theory.posterior.annealing`. Sub-samplers provided:

* PCS ``exact``: linear-Gaussian :math:`\ell`, the Gaussian
  :math:`N\big(P^{-1}(A^\top y/\sigma^2 + x_k/\eta^2),\,P^{-1}\big)`,
  :math:`P = A^\top A/\sigma^2 + I/\eta^2`.
* PCS ``ula`` / ``mala``: the Langevin chain of the reference code, an exponential
  integrator that solves the Gaussian part exactly and freezes :math:`\nabla\ell` over a step
  of length h (started at :math:`x_k`):

  .. math::
      z' = z + c_0 (x_k - z) + \eta^2 c_0 \nabla\ell(z) + \eta\sqrt{1 - e^{-2h/\eta^2}}\,\xi,
      \qquad c_0 = 1 - e^{-h/\eta^2}.

  ``ula`` takes every proposal (the reference code, 1000 steps); ``mala`` adds the
  Metropolis-Hastings test with this Gaussian proposal, so the PCS target is exactly invariant.
* DDS ``exact``: the denoising posterior in closed form (a mixture for mixture priors:
  weights :math:`\propto \pi_j N(z; \mu_j, \Sigma_j + \eta^2 I)`, means
  :math:`\mu_j + \Sigma_j(\Sigma_j + \eta^2 I)^{-1}(z - \mu_j)`, covariances
  :math:`\Sigma_j - \Sigma_j(\Sigma_j + \eta^2 I)^{-1}\Sigma_j`).
* DDS ``sde``: the reverse diffusion of the prior started at noise level eta, driven only
  by the prior's score. In the VP parametrisation :math:`X_0 + \eta W = z` is
  :math:`X_t = \sqrt{\bar\alpha}X_0 + \sqrt{1-\bar\alpha}W` at :math:`\bar\alpha = 1/(1+\eta^2)`
  with :math:`X_t = \sqrt{\bar\alpha}\,z` (matched exactly: analytic scores exist at every
  level); from a fixed :math:`X_t` the reverse SDE has law :math:`p(x_0 \mid X_t)`, the DDS
  target. A schedule uniform in the VE noise level runs to a final noise level ``final_noise``, a
  stochastic affine rule (ddpm by default; li-sde, li-yan) is applied
  (:mod:`theory.samplers`), and the last state is mapped to :math:`E[X_0 \mid X_1]` by
  Tweedie's formula. Cost: ``n_steps + 1`` score calls.
* DDS ``ode``: a probability-flow ODE started at z is a deterministic map (one point, not a
  posterior sample), so the deterministic variant is, as in the official code's DDIM
  denoiser, the probability-flow ODE of the VP process applied to the denoising posterior
  itself, started from fresh :math:`N(0, I)` noise. Its score needs only the prior's score at
  a shifted level (:class:`PosteriorFlowScore`). Rule ddim by default (li-ode possible),
  Tweedie at the end, ``n_steps + 1`` score calls.

Every random function takes a ``torch.Generator`` (same seed, same numbers) and works on the
device of its inputs, in float64.

References:
    Xu & Chi, "Provably robust score-based diffusion posterior sampling for plug-and-play
    image reconstruction", arXiv:2403.17042 (DPnP; code github.com/x1xu/diffusion-plug-and-play).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..checks import integer, positive
from ..priors import GaussianMixture, Prior, ProductPrior, SubspaceMixture
from ..samplers import SAMPLERS, AnalyticScore, run_sampler, sampler_rule
from ..schedules import Schedule
from .annealing import AnnealingSchedule
from .likelihoods import Likelihood

__all__ = ["pcs_exact", "pcs_langevin", "langevin_coefficients", "langevin_mean",
           "default_pcs_step", "dds_exact", "dds_schedule", "dds_sde", "dds_ode", "dds_ode_map",
           "PosteriorFlowScore", "dds_diffusion", "PCSConfig", "DDSConfig", "run_dpnp",
           "DPnPResult"]

DTYPE = torch.float64


def pcs_exact(lik: Likelihood, x: torch.Tensor, eta: float,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Exact PCS draw for a linear-Gaussian likelihood: one draw per row of ``x``,
    :math:`N(P^{-1}(A^\top y/\sigma^2 + x/\eta^2), P^{-1})`, :math:`P = A^\top A/\sigma^2 + I/\eta^2`."""
    if not lik.linear_gaussian:
        raise ValueError(f"exact PCS needs a linear-Gaussian likelihood, not {lik.name!r} "
                         "(use mala or ula)")
    eta = positive("eta", eta)
    x = lik._prep(x)
    A, s2 = lik.A, lik.sigma ** 2
    d = lik.dim
    P = A.T @ A / s2 + torch.eye(d, dtype=DTYPE, device=x.device) / eta ** 2
    L = torch.linalg.cholesky(P)
    rhs = (lik.y @ A / s2)[None, :] + x / eta ** 2                      # (n, d)
    mean = torch.cholesky_solve(rhs.T, L).T
    w = torch.randn(x.shape, generator=generator, dtype=DTYPE, device=x.device)
    # covariance P^{-1} = L^{-T} L^{-1}: noise L^{-T} w
    noise = torch.linalg.solve_triangular(L.T, w.T, upper=True).T
    return mean + noise


def langevin_coefficients(eta: float, step: float):
    r"""``(c0, cv, cb)`` of the exponential-integrator Langevin step (module docstring):
    :math:`c_0 = 1 - e^{-h/\eta^2}`, :math:`c_v = \eta^2 c_0`,
    :math:`c_b = \eta\sqrt{1 - e^{-2h/\eta^2}}`."""
    c0 = -math.expm1(-step / eta ** 2)
    return c0, eta ** 2 * c0, eta * math.sqrt(-math.expm1(-2 * step / eta ** 2))


def langevin_mean(z: torch.Tensor, g: torch.Tensor, center: torch.Tensor, c0: float,
                  cv: float) -> torch.Tensor:
    r"""Mean of the Langevin step from ``z`` (gradient ``g`` of the log-likelihood there)
    toward the PCS target centred at ``center``: :math:`z + c_0(x_k - z) + c_v\nabla\ell(z)`."""
    return z + c0 * (center - z) + cv * g


def default_pcs_step(lik: Likelihood, eta: float, factor: float = 0.2) -> float:
    r"""Default Langevin step :math:`h = \text{factor}\cdot\min(\eta^2, 1/\mathrm{Lip}(\nabla\ell))`."""
    return float(factor) * min(float(eta) ** 2, lik.step_scale())


def pcs_langevin(lik: Likelihood, x: torch.Tensor, eta: float, *, step: Optional[float] = None,
                 n_steps: int = 100, metropolis: bool = True,
                 generator: Optional[torch.Generator] = None, return_info: bool = False):
    r"""PCS by the exponential-integrator Langevin chain (module docstring), started at ``x``.

    Parameters
    ----------
    lik : Likelihood
    x : tensor, shape (n, d)
        The current DPnP iterates :math:`x_k` (one independent chain per row).
    eta : float
    step : float, optional
        The time step h (default :func:`default_pcs_step`).
    n_steps : int
        Number of Langevin steps (each one likelihood-gradient call; MALA one more at start).
    metropolis : bool
        True: MALA (Metropolis-Hastings test, exact invariance); False: ULA as in the
        reference code.

    Returns
    -------
    z : tensor (n, d), and with ``return_info`` a dict with the mean acceptance rate.
    """
    eta = positive("eta", eta)
    n_steps = integer("n_steps", n_steps, lo=0)
    h = default_pcs_step(lik, eta) if step is None else positive("step", step)
    x = lik._prep(x)
    center = x
    c0, cv, cb = langevin_coefficients(eta, h)
    z = x.clone()
    g = lik.grad(z)
    ll = lik.log_lik(z) if metropolis else None
    accepted = torch.zeros(z.shape[0], dtype=DTYPE, device=z.device)
    for _ in range(n_steps):
        xi = torch.randn(z.shape, generator=generator, dtype=DTYPE, device=z.device)
        mean = langevin_mean(z, g, center, c0, cv)
        prop = mean + cb * xi
        g_prop = lik.grad(prop)
        if not metropolis:
            z, g = prop, g_prop
            continue
        ll_prop = lik.log_lik(prop)
        log_pi = ll - ((z - center) ** 2).sum(1) / (2 * eta ** 2)
        log_pi_prop = ll_prop - ((prop - center) ** 2).sum(1) / (2 * eta ** 2)
        mean_back = langevin_mean(prop, g_prop, center, c0, cv)
        log_q_fwd = -(xi ** 2).sum(1) / 2
        log_q_back = -((z - mean_back) ** 2).sum(1) / (2 * cb ** 2)
        log_a = log_pi_prop - log_pi + log_q_back - log_q_fwd
        u = torch.rand(z.shape[0], generator=generator, dtype=DTYPE, device=z.device)
        acc = torch.log(u) < log_a
        z = torch.where(acc[:, None], prop, z)
        g = torch.where(acc[:, None], g_prop, g)
        ll = torch.where(acc, ll_prop, ll)
        accepted += acc.to(DTYPE)
    if return_info:
        rate = float(accepted.mean() / n_steps) if (metropolis and n_steps) else 1.0
        return z, {"acceptance": rate, "step": h, "n_steps": n_steps,
                   "lik_grads": n_steps + 1}
    return z


def _prior_prep(prior: Prior, z) -> torch.Tensor:
    return prior._prep(z)


def dds_exact(prior: Prior, z: torch.Tensor, eta: float,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Exact draw from :math:`\propto p(x)\exp(-\|x - z\|^2/(2\eta^2))` for each row of ``z``
    (closed form for :class:`ProductPrior`, :class:`GaussianMixture` and
    :class:`SubspaceMixture`; module docstring)."""
    eta = positive("eta", eta)
    z = _prior_prep(prior, z)
    e2 = eta ** 2
    if isinstance(prior, ProductPrior):
        w, mu, s2 = prior.weights, prior.means, prior.stds ** 2         # (d, K)
        var_c = s2 + e2
        logc = torch.log(w)[None] - 0.5 * ((z[:, :, None] - mu[None]) ** 2 / var_c
                                           + torch.log(var_c))          # (n, d, K)
        n, d, K = logc.shape
        k = torch.multinomial(torch.softmax(logc, -1).reshape(n * d, K), 1,
                              generator=generator).reshape(n, d)
        gain = (s2 / var_c)[None].expand(n, d, K).gather(2, k[..., None])[..., 0]
        mk = mu[None].expand(n, d, K).gather(2, k[..., None])[..., 0]
        vk = (s2 * e2 / var_c)[None].expand(n, d, K).gather(2, k[..., None])[..., 0]
        eps = torch.randn(z.shape, generator=generator, dtype=DTYPE, device=z.device)
        return mk + gain * (z - mk) + vk.sqrt() * eps
    if isinstance(prior, GaussianMixture):
        d = prior.dim
        eye = torch.eye(d, dtype=DTYPE, device=z.device)
        S = prior.covs
        conv = GaussianMixture(prior.weights, prior.means, S + e2 * eye, device=z.device)
        r = conv.responsibilities(z)
        k = torch.multinomial(r, 1, generator=generator)[:, 0]
        G = torch.linalg.solve(S + e2 * eye, S).transpose(-1, -2)       # S (S + e2 I)^{-1}
        Cpost = S - G @ S
        Cpost = 0.5 * (Cpost + Cpost.transpose(-1, -2))
        ev, U = torch.linalg.eigh(Cpost)
        root = U * ev.clamp_min(0).sqrt()[:, None, :]
        mk = prior.means[k]
        mean = mk + torch.einsum("nij,nj->ni", G[k], z - mk)
        eps = torch.randn(z.shape, generator=generator, dtype=DTYPE, device=z.device)
        return mean + torch.einsum("nij,nj->ni", root[k], eps)
    if isinstance(prior, SubspaceMixture):
        U = prior.basis
        zin = z @ U
        out = dds_exact(prior.inner, zin, eta, generator) @ U.T
        if prior.dim > prior.k:
            rperp = z - zin @ U.T
            v = prior.perp_var
            eps = torch.randn(z.shape, generator=generator, dtype=DTYPE, device=z.device)
            eps = eps - (eps @ U) @ U.T
            out = out + v / (v + e2) * rperp + math.sqrt(v * e2 / (v + e2)) * eps
        return out
    raise ValueError(f"no exact denoising posterior for prior {type(prior).__name__}")


def _log_snr_schedule(lam_hi: float, lam_lo: float, T: int, name: str, params: dict,
                      rho: Optional[float] = None) -> Schedule:
    r"""A schedule from log-SNR ``lam_hi`` (t = 1) to ``lam_lo`` (t = T), abar_0 = 1.

    ``rho = None``: uniform in log-SNR. Otherwise the spacing of Karras et al. (EDM): the VE
    noise level :math:`\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha} = e^{-\lambda/2}` is uniform
    in :math:`\sigma^{1/\rho}` (rho = 1: uniform in sigma, which puts the steps of a reverse
    diffusion started at a point where the mixture's modes separate).
    """
    if rho is None:
        lam = np.linspace(lam_hi, lam_lo, T)
    else:
        s_lo, s_hi = math.exp(-lam_hi / 2), math.exp(-lam_lo / 2)      # sigma at t = 1, T
        u = np.linspace(s_lo ** (1 / rho), s_hi ** (1 / rho), T)
        lam = -2 * rho * np.log(u)
        lam[0], lam[-1] = lam_hi, lam_lo                                # exact end points
    log_abar = -np.logaddexp(0.0, -lam)                                 # log sigmoid(lam)
    prev = np.concatenate([[0.0], log_abar[:-1]])
    beta = -np.expm1(log_abar - prev)
    return Schedule(beta, name=name, params=params)


def dds_schedule(eta: float, n_steps: int, final_noise: float = 1e-3,
                 rho: Optional[float] = 1.0) -> Schedule:
    r"""The schedule of the stochastic DDS at level ``eta``: ``T = n_steps + 1`` steps with
    log-SNR :math:`\log(\bar\alpha_t/(1-\bar\alpha_t))` from :math:`-2\log\delta`
    (t = 1, :math:`\delta` = ``final_noise``) to :math:`-2\log\eta` (t = T), uniform in the
    VE noise level :math:`\sigma` by default (``rho``, see ``_log_snr_schedule``), so that
    :math:`\bar\alpha_T = 1/(1+\eta^2)` and :math:`1 - \bar\alpha_1 = \delta^2/(1+\delta^2)`."""
    eta = positive("eta", eta)
    n_steps = integer("n_steps", n_steps, lo=1)
    delta = positive("final_noise", final_noise)
    if delta >= eta:
        raise ValueError(f"final_noise {delta} must be below eta {eta}")
    return _log_snr_schedule(-2 * math.log(delta), -2 * math.log(eta), n_steps + 1, "dds-sde",
                             {"eta": eta, "final_noise": delta, "rho": rho}, rho)


def dds_sde(prior: Prior, z: torch.Tensor, eta: float, *, n_steps: int = 50,
            rule: str = "ddpm", final_noise: float = 1e-3,
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Stochastic DDS: the reverse diffusion of the *prior* started at noise level ``eta``.

    :math:`X_0 + \eta W = z` is the VP state :math:`X_T = \sqrt{\bar\alpha_T} z` at
    :math:`\bar\alpha_T = 1/(1+\eta^2)`; the reverse SDE from a fixed :math:`X_T` has the law
    :math:`p(x_0 \mid X_T)`, the DDS target. A stochastic affine ``rule`` (ddpm, li-sde,
    li-yan) is run with the prior's exact score for t = T..2 on :func:`dds_schedule`, and
    :math:`E[X_0 \mid X_1 = Y_1]` (Tweedie) is returned. ``n_steps + 1`` score calls.
    """
    if rule not in SAMPLERS:
        raise ValueError(f"unknown DDS rule {rule!r}; choose from {', '.join(SAMPLERS)}")
    z = _prior_prep(prior, z)
    sched = dds_schedule(eta, n_steps, final_noise)
    ar = sampler_rule(rule, sched)
    if ar.deterministic:
        raise ValueError(f"rule {rule!r} is deterministic: started from z it returns one point, "
                         "not a posterior sample (use dds_ode for the deterministic DDS)")
    score = AnalyticScore(prior, sched)
    y_T = math.sqrt(float(sched.alpha_bar[-1])) * z
    y1 = run_sampler(ar, score, z.shape[0], z.shape[1], generator=generator, device=z.device,
                     y_T=y_T)
    return prior.denoise(y1, float(sched.alpha_bar[1]))


class PosteriorFlowScore:
    r"""Score of the VP forward process applied to the denoising posterior
    :math:`\pi_z(x_0) \propto p(x_0) N(z; x_0, \eta^2 I)`, from the prior's score alone.

    With :math:`\tau^2 = (1-a)/a`, :math:`c = \eta^2 + \tau^2`,
    :math:`m = (\tau^2 z + \eta^2 x/\sqrt a)/c`, :math:`v = \eta^2\tau^2/c` and
    :math:`a' = 1/(1+v)`,

    .. math::
        \nabla_x \log \pi_{z,a}(x) = \frac{z - x/\sqrt a}{\sqrt a\, c}
            + \frac{\eta^2}{\sqrt a\, c}\sqrt{a'}\, s_{a'}\big(\sqrt{a'}\, m\big),

    :math:`s_{a'}` the prior's score at level :math:`a'` (noise below :math:`\eta`). This is the
    level map of the official code's DDIM denoiser,
    :math:`a = ((1+\eta^2)a' - 1)/(\eta^2 + a' - 1)`.
    Callable as ``score(x, t)`` for a schedule's step ``t``; ``z`` is per row.
    """

    def __init__(self, prior: Prior, z: torch.Tensor, eta: float, schedule: Schedule):
        self.prior, self.z, self.eta, self.schedule = prior, z, float(eta), schedule
        self._abar = schedule.alpha_bar
        self._omab = schedule.one_minus_alpha_bar

    def at_level(self, x: torch.Tensor, a: float, om: float) -> torch.Tensor:
        e2 = self.eta ** 2
        tau2 = om / a
        c = e2 + tau2
        sa = math.sqrt(a)
        m = (tau2 * self.z + e2 * x / sa) / c
        v = e2 * tau2 / c
        ap = 1.0 / (1.0 + v)
        sp = math.sqrt(ap)
        s_prior = self.prior.marginal(ap).score(sp * m)
        return (self.z - x / sa) / (sa * c) + (e2 / (sa * c)) * sp * s_prior

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return self.at_level(x, float(self._abar[t]), float(self._omab[t]))


def _dds_ode_parts(prior, eta, n_steps, rule, final_noise, start_log_snr):
    if rule not in SAMPLERS:
        raise ValueError(f"unknown DDS rule {rule!r}; choose from {', '.join(SAMPLERS)}")
    eta = positive("eta", eta)
    n_steps = integer("n_steps", n_steps, lo=1)
    delta = positive("final_noise", final_noise)
    lam_hi = -2 * math.log(delta)
    if not start_log_snr < lam_hi:
        raise ValueError("start_log_snr must be below the final log-SNR")
    sched = _log_snr_schedule(lam_hi, float(start_log_snr), n_steps + 1, "dds-ode",
                              {"eta": eta, "final_noise": delta, "start_log_snr": start_log_snr})
    ar = sampler_rule(rule, sched)
    if not ar.deterministic:
        raise ValueError(f"rule {rule!r} is stochastic; the deterministic DDS needs ddim or li-ode")
    return eta, sched, ar


def dds_ode_map(prior: Prior, z: torch.Tensor, noise: torch.Tensor, eta: float, *,
                n_steps: int = 50, rule: str = "ddim", final_noise: float = 1e-3,
                start_log_snr: float = -20.0) -> torch.Tensor:
    """The deterministic DDS as a map of its start noise: row i of ``noise`` (n, d) is carried
    by the probability-flow ODE of the denoising posterior of ``z[i]`` (see :func:`dds_ode`),
    then Tweedie. :func:`dds_ode` is this map applied to fresh N(0, I) noise."""
    eta, sched, ar = _dds_ode_parts(prior, eta, n_steps, rule, final_noise, start_log_snr)
    z = _prior_prep(prior, z)
    score = PosteriorFlowScore(prior, z, eta, sched)
    y1 = run_sampler(ar, score, z.shape[0], z.shape[1], device=z.device, y_T=noise)
    a1, om1 = float(sched.alpha_bar[1]), float(sched.one_minus_alpha_bar[1])
    return (y1 + om1 * score.at_level(y1, a1, om1)) / math.sqrt(a1)


def dds_ode(prior: Prior, z: torch.Tensor, eta: float, *, n_steps: int = 50,
            rule: str = "ddim", final_noise: float = 1e-3, start_log_snr: float = -20.0,
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Deterministic DDS: the probability-flow ODE of the denoising posterior, from fresh
    :math:`N(0, I)` noise, driven by the prior's score through :class:`PosteriorFlowScore`.

    (A probability-flow ODE started *at* z would map z to a single point; the randomness of a
    posterior sample must come from the start, as in the official code's DDIM denoiser.)
    Schedule: uniform in log-SNR from ``start_log_snr`` (t = T, start law N(0, I) up to a TV error
    of order :math:`e^{\lambda/2}\,E|X_0|`) to :math:`-2\log\delta`; a deterministic rule
    (ddim, li-ode); Tweedie at the end (:func:`dds_ode_map`). ``n_steps + 1`` score calls.
    """
    _dds_ode_parts(prior, eta, n_steps, rule, final_noise, start_log_snr)
    z = _prior_prep(prior, z)
    noise = torch.randn(z.shape, generator=generator, dtype=DTYPE, device=z.device)
    return dds_ode_map(prior, z, noise, eta, n_steps=n_steps, rule=rule,
                       final_noise=final_noise, start_log_snr=start_log_snr)


def dds_diffusion(prior: Prior, z: torch.Tensor, eta: float, *, method: str = "sde",
                  n_steps: int = 50, rule: Optional[str] = None, final_noise: float = 1e-3,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """:func:`dds_sde` (``method="sde"``, default rule ddpm) or :func:`dds_ode`
    (``method="ode"``, default rule ddim)."""
    if method == "sde":
        return dds_sde(prior, z, eta, n_steps=n_steps, rule=rule or "ddpm",
                       final_noise=final_noise, generator=generator)
    if method == "ode":
        return dds_ode(prior, z, eta, n_steps=n_steps, rule=rule or "ddim",
                       final_noise=final_noise, generator=generator)
    raise ValueError(f"unknown DDS method {method!r}; choose from sde, ode")


@dataclass(frozen=True)
class PCSConfig:
    """PCS choice: ``method`` in exact | mala | ula; ``n_steps``; ``step`` (None: default
    :func:`default_pcs_step` at each level with ``step_factor``)."""

    method: str = "exact"
    n_steps: int = 100
    step: Optional[float] = None
    step_factor: float = 0.2

    def __post_init__(self):
        if self.method not in ("exact", "mala", "ula"):
            raise ValueError(f"unknown PCS {self.method!r}; choose from exact, mala, ula")
        integer("PCS steps", self.n_steps, lo=1)
        if self.step is not None:
            positive("PCS step size", self.step)
        positive("PCS step factor", self.step_factor)

    def describe(self) -> dict:
        return {"method": self.method, **({} if self.method == "exact" else
                {"n_steps": self.n_steps, "step": self.step, "step_factor": self.step_factor})}


@dataclass(frozen=True)
class DDSConfig:
    """DDS choice: ``method`` in exact | sde | ode; ``n_steps`` (score calls minus one);
    ``rule`` (affine rule; default ddpm for sde, ddim for ode); ``final_noise``."""

    method: str = "exact"
    n_steps: int = 50
    rule: Optional[str] = None
    final_noise: float = 1e-3

    def __post_init__(self):
        if self.method not in ("exact", "sde", "ode"):
            raise ValueError(f"unknown DDS {self.method!r}; choose from exact, sde, ode")
        integer("DDS steps", self.n_steps, lo=1)
        if self.rule is not None and self.rule not in SAMPLERS:
            raise ValueError(f"unknown DDS rule {self.rule!r}; choose from {', '.join(SAMPLERS)}")
        positive("final_noise", self.final_noise)

    @property
    def rule_name(self) -> str:
        return self.rule or {"sde": "ddpm", "ode": "ddim"}.get(self.method, "exact")

    @property
    def score_calls(self) -> int:
        return 0 if self.method == "exact" else self.n_steps + 1

    def describe(self) -> dict:
        return {"method": self.method, **({} if self.method == "exact" else
                {"n_steps": self.n_steps, "rule": self.rule_name,
                 "final_noise": self.final_noise})}


@dataclass
class DPnPResult:
    """Samples of :math:`x_k` for k = 1..K (``samples[k-1]``; only the last if not kept),
    the cost in score and likelihood-gradient calls per chain, PCS acceptance rates."""

    samples: list
    score_calls: int
    lik_grad_calls: int
    acceptance: list
    config: dict

    @property
    def final(self) -> torch.Tensor:
        return self.samples[-1]


def run_dpnp(prior: Prior, lik: Likelihood, schedule: AnnealingSchedule, x0: torch.Tensor, *,
             pcs: PCSConfig = PCSConfig(), dds: DDSConfig = DDSConfig(),
             generator: Optional[torch.Generator] = None, keep: bool = True,
             callback: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]] = None
             ) -> DPnPResult:
    r"""Run K = ``schedule.K`` outer DPnP steps from the iterates ``x0`` (n, d).

    ``callback(k, x_half, x_k)`` sees every outer step k = 1..K (``x_half`` the PCS output).
    """
    if prior.dim != lik.dim:
        raise ValueError(f"prior dimension {prior.dim} differs from the likelihood's {lik.dim}")
    x = lik._prep(x0)
    if pcs.method == "exact" and not lik.linear_gaussian:
        raise ValueError(f"exact PCS needs a linear-Gaussian likelihood, not {lik.name!r} "
                         "(use mala or ula)")
    out, acc = [], []
    score_calls = lik_calls = 0
    for k, eta in enumerate(schedule.etas, start=1):
        eta = float(eta)
        if pcs.method == "exact":
            zh = pcs_exact(lik, x, eta, generator)
        else:
            step = pcs.step if pcs.step is not None else default_pcs_step(lik, eta, pcs.step_factor)
            zh, info = pcs_langevin(lik, x, eta, step=step, n_steps=pcs.n_steps,
                                    metropolis=pcs.method == "mala", generator=generator,
                                    return_info=True)
            acc.append(info["acceptance"])
            lik_calls += info["lik_grads"]
        if dds.method == "exact":
            x = dds_exact(prior, zh, eta, generator)
        else:
            x = dds_diffusion(prior, zh, eta, method=dds.method, n_steps=dds.n_steps,
                              rule=dds.rule_name, final_noise=dds.final_noise,
                              generator=generator)
            score_calls += dds.score_calls
        if keep or k == schedule.K:
            out.append(x)
        if callback is not None:
            callback(k, zh, x)
    return DPnPResult(out, score_calls, lik_calls, acc,
                      {"schedule": schedule.describe(), "pcs": pcs.describe(),
                       "dds": dds.describe()})
