r"""DPS (Chung et al. 2023, THEORY.md section 7): the DDPM step then
:math:`x_{t-1} \mathrel{-}= \zeta_t \nabla_{x_t}\,\mathcal L(\hat x_0(x_t))`,
:math:`\zeta_t = \zeta'/\sqrt{\mathcal L(\hat x_0)}`, :math:`\mathcal L` the likelihood's DPS
loss (:math:`\|y - A\hat x_0\|^2` for the Gaussian model, so :math:`\zeta_t = \zeta'/\|y - A\hat x_0\|`),
:math:`\hat x_0(x) = (x + (1-\bar\alpha_t)s_t(x))/\sqrt{\bar\alpha_t}`; the gradient through
:math:`\hat x_0` uses the analytic score Jacobian (no autograd).

Every random function takes a ``torch.Generator`` (same seed, same numbers) and works on the
device of its inputs, in float64.

References:
    Chung, Kim, Mccann, Klasky, Ye, "Diffusion posterior sampling for general noisy inverse
    problems", ICLR 2023 (DPS).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..checks import integer
from ..priors import Prior
from ..samplers import AnalyticScore, sampler_rule
from ..schedules import Schedule, linear_schedule
from .likelihoods import Likelihood

__all__ = ["run_dps", "dps_guidance", "DPSResult", "dps_mean", "dps_schedule"]

DTYPE = torch.float64


@dataclass
class DPSResult:
    samples: torch.Tensor
    score_calls: int
    config: dict


def dps_guidance(marg: Prior, lik: Likelihood, x: torch.Tensor, s: torch.Tensor, abar: float,
                 omab: float) -> torch.Tensor:
    r""":math:`\nabla_{x_t}\mathcal L(\hat x_0(x_t)) / \sqrt{\mathcal L(\hat x_0(x_t))}`, shape (n, d):
    the DPS guidance direction at the marginal ``marg`` (score ``s`` at ``x``), through the
    score's Jacobian-vector product :math:`(I + (1-\bar\alpha)\nabla s)\,g/\sqrt{\bar\alpha}`
    (the Jacobian of Tweedie's :math:`\hat x_0` is symmetric)."""
    x0 = (x + omab * s) / math.sqrt(abar)
    loss = lik.dps_loss(x0).clamp_min(1e-300)
    g = lik.dps_loss_grad(x0)                                           # dL/dx0
    jac_t_g = (g + omab * marg.score_jacobian_vector(x, g)) / math.sqrt(abar)
    return jac_t_g / loss.sqrt()[:, None]


def dps_schedule(T: int = 1000, schedule: Optional[Schedule] = None) -> Schedule:
    """The DPS schedule: Ho et al.'s linear schedule rescaled to T steps unless given."""
    return schedule if schedule is not None else linear_schedule(integer("T", T, lo=2))


def dps_mean(score: AnalyticScore, lik: Likelihood, x: torch.Tensor, t: int, rule,
             zeta: float) -> torch.Tensor:
    r"""The deterministic part of the DPS step at step index t: the DDPM mean
    :math:`a_t x + b_t s_t(x)` minus :math:`\zeta'\,\nabla_x\mathcal L(\hat x_0(x))/\sqrt{\mathcal L}`
    (:func:`dps_guidance`; the loss clamped at 1e-300); the step adds :math:`c_t Z` to it."""
    sched = score.schedule
    marg = score.marginal(t)
    s = marg.score(x)
    guide = dps_guidance(marg, lik, x, s, float(sched.alpha_bar[t]),
                         float(sched.one_minus_alpha_bar[t]))
    return rule.a[t] * x + rule.b[t] * s - zeta * guide


def run_dps(prior: Prior, lik: Likelihood, n: int, *, T: int = 1000, zeta: float = 1.0,
            schedule: Optional[Schedule] = None, generator: Optional[torch.Generator] = None,
            device=None) -> DPSResult:
    r"""DPS (Chung et al. 2023; THEORY.md section 7) with the analytic prior score.

    From :math:`x_T \sim N(0, I)`, for t = T..2: the DDPM step (:mod:`theory.samplers` rule
    ``ddpm``) then :math:`x_{t-1} \mathrel{-}= \zeta'\,\nabla_{x_t}\mathcal L(\hat x_0(x_t)) /
    \sqrt{\mathcal L(\hat x_0(x_t))}`; output Tweedie's :math:`\hat x_0(x_1)`.
    Schedule: Ho et al.'s linear schedule rescaled to T steps (the DPS paper's), unless given.
    ``T`` score calls (each with the score Jacobian).
    """
    if prior.dim != lik.dim:
        raise ValueError(f"prior dimension {prior.dim} differs from the likelihood's {lik.dim}")
    zeta = float(zeta)
    if not (math.isfinite(zeta) and zeta >= 0):
        raise ValueError(f"zeta must be a non-negative number, got {zeta}")
    sched = dps_schedule(T, schedule)
    rule = sampler_rule("ddpm", sched)
    score = AnalyticScore(prior, sched)
    device = torch.device(device) if device is not None else prior.device
    n, d = integer("n", n, lo=1), prior.dim
    x = torch.randn(n, d, generator=generator, dtype=DTYPE, device=device)
    for t in range(sched.T, 1, -1):
        x_new = dps_mean(score, lik, x, t, rule, zeta)
        if rule.c[t] > 0:
            x_new = x_new + rule.c[t] * torch.randn(x.shape, generator=generator, dtype=DTYPE,
                                                    device=device)
        x = x_new
    out = prior.denoise(x, float(sched.alpha_bar[1]))
    return DPSResult(out, sched.T, {"method": "dps", "T": sched.T, "zeta": zeta,
                                    "schedule": sched.describe()})
