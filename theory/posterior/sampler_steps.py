r"""The posterior samplers of :mod:`theory.posterior.plug_and_play` and
:mod:`theory.posterior.dps` as chain steps (:mod:`theory.posterior.chain_steps`), so that the
grid engines compute the laws of exactly the chains those samplers run (THEORY.md sections
6-8). Every map calls the same torch function as the sampler it describes:

* :func:`langevin_steps`: DPnP's Langevin PCS at level eta with time step h
  (:func:`~theory.posterior.plug_and_play.langevin_mean`, noise
  :math:`c_b = \eta\sqrt{1 - e^{-2h/\eta^2}}`), as conditional steps (the centre is the outer
  iterate :math:`x_k`): ULA a :class:`ConditionalGaussianStep`, MALA a
  :class:`ConditionalMetropolisStep` with target :math:`\ell(z) - \|z - x_k\|^2/(2\eta^2)`;
* :func:`dds_sde_steps`: the reverse-SDE DDS (:func:`~theory.posterior.plug_and_play.dds_sde`):
  from z, the affine rule's steps t = T..2 with the prior's exact score (the first one from
  :math:`\sqrt{\bar\alpha_T} z`), then Tweedie's map (noise 0);
* :func:`dps_steps`: DPS (:func:`~theory.posterior.dps.run_dps`): the T - 1 guided DDPM steps
  (:func:`~theory.posterior.dps.dps_mean`, noise :math:`c_t`) from :math:`N(0, I)`, then Tweedie.

Maps take and return float64 numpy arrays of shape (n, d) (CPU torch inside).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..priors import Prior
from ..samplers import SAMPLERS, AnalyticScore, sampler_rule
from ..schedules import Schedule
from .chain_steps import (ConditionalGaussianStep, ConditionalMetropolisStep, GaussianStep)
from .dps import dps_mean, dps_schedule
from .likelihoods import Likelihood
from .plug_and_play import dds_schedule, langevin_coefficients, langevin_mean

__all__ = ["langevin_steps", "dds_sde_steps", "dps_steps", "torch_map"]

DTYPE = torch.float64


def torch_map(fn):
    """A numpy (n, d) -> (n, d) map from a torch one (float64, CPU, no autograd)."""
    def f(x):
        with torch.no_grad():
            return fn(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).numpy()
    return f


def langevin_steps(lik: Likelihood, eta: float, step: float, n_steps: int,
                   metropolis: bool) -> list:
    """DPnP's Langevin PCS (module docstring) as ``n_steps`` repetitions of one conditional
    step (ULA, or MALA when ``metropolis``)."""
    c0, cv, cb = langevin_coefficients(float(eta), float(step))

    def mean(z, c):
        with torch.no_grad():
            zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float64))
            ct = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float64))
            return langevin_mean(zt, lik.grad(zt), ct, c0, cv).numpy()

    if not metropolis:
        st = ConditionalGaussianStep(mean, cb, f"ULA (h = {step:.3g}, eta = {eta:.3g})")
        return [st] * int(n_steps)

    def log_target(z, c):
        with torch.no_grad():
            zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float64))
            ll = lik.log_lik(zt).numpy()
        return ll - ((np.asarray(z) - np.asarray(c)) ** 2).sum(1) / (2 * eta * eta)

    st = ConditionalMetropolisStep(mean, cb, log_target, f"MALA (h = {step:.3g}, eta = "
                                                         f"{eta:.3g})")
    return [st] * int(n_steps)


def dds_sde_steps(prior: Prior, eta: float, n_steps: int = 50, rule: str = "ddpm",
                  final_noise: float = 1e-3) -> list:
    """The reverse-SDE DDS at level eta as Gaussian steps from z (module docstring); the
    last step is Tweedie's map :math:`E[X_0 \\mid X_1]`."""
    if rule not in SAMPLERS:
        raise ValueError(f"unknown DDS rule {rule!r}; choose from {', '.join(SAMPLERS)}")
    sched = dds_schedule(eta, n_steps, final_noise)
    ar = sampler_rule(rule, sched)
    if ar.deterministic or ar.multistep:
        raise ValueError(f"rule {rule!r} is not a one-step stochastic rule: the stochastic DDS "
                         "needs ddpm, li-sde, li-yan or accel-sde")
    score = AnalyticScore(prior, sched)
    T = sched.T
    start = math.sqrt(float(sched.alpha_bar[-1]))
    steps = []
    for t in range(T, 1, -1):
        scale = start if t == T else 1.0
        if ar.pre_c[t] > 0:
            steps.append(GaussianStep(torch_map(lambda y, s=scale: s * y), float(ar.pre_c[t]),
                                      f"pre-noise t={t}"))
            scale = 1.0

        def m(y, t=t, s=scale):
            y = s * y
            return float(ar.a[t]) * y + float(ar.b[t]) * score(y, t)

        steps.append(GaussianStep(torch_map(m), float(ar.c[t]), f"{rule} t={t}"))
    a1 = float(sched.alpha_bar[1])
    steps.append(GaussianStep(torch_map(lambda y: prior.denoise(y, a1)), 0.0, "Tweedie"))
    return steps


def dps_steps(prior: Prior, lik: Likelihood, T: int = 1000, zeta: float = 1.0,
              schedule: Optional[Schedule] = None) -> list:
    """DPS (module docstring) as its T - 1 Gaussian steps from N(0, I) and Tweedie's map."""
    sched = dps_schedule(T, schedule)
    rule = sampler_rule("ddpm", sched)
    score = AnalyticScore(prior, sched)
    zeta = float(zeta)
    steps = [GaussianStep(torch_map(lambda x, t=t: dps_mean(score, lik, x, t, rule, zeta)),
                          float(rule.c[t]), f"DPS t={t}") for t in range(sched.T, 1, -1)]
    a1 = float(sched.alpha_bar[1])
    steps.append(GaussianStep(torch_map(lambda y: prior.denoise(y, a1)), 0.0, "Tweedie"))
    return steps
