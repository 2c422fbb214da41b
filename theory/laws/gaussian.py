r"""Exact output law of an affine sampler on a Gaussian prior: the scalar recursion.

For ``Y_{t-1} = a_t Y_t + b_t s_t(Y_t) + c_t Z_t`` (:class:`theory.samplers.AffineRule`) and
a prior :math:`N(\mu, \Sigma)`, in the eigenbasis of :math:`\Sigma` the score is affine per
coordinate, :math:`s_t(y) = (m_t - y)/C_t` with :math:`m_t = \sqrt{\bar\alpha_t}\mu_i`,
:math:`C_t = \bar\alpha_t\lambda_i + 1 - \bar\alpha_t`, so :math:`Y_1` is Gaussian with mean
and variance from :math:`M \leftarrow (a - b/C) M + b m/C`, :math:`V \leftarrow (a - b/C)^2 V
+ c^2` (THEORY.md section 4). The target :math:`q_1` is :math:`N(\sqrt{\bar\alpha_1}\mu,
\bar\alpha_1\Sigma + (1 - \bar\alpha_1) I)` (target ``data``: the prior itself); the start
is :math:`N(0, 1)` or, for ``init="qT"``, :math:`q_T`. Multi-stage rules
(:class:`~theory.stages.StageRule`) go through :func:`theory.laws.stages.stage_gaussian_output`.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import NoExactLaw
from ..priors import Gaussian, Prior, ProductPrior
from ..samplers import AffineRule
from ..stages import StageRule
from .ends import start_moments
from .stages import stage_gaussian_output

__all__ = ["gaussian_output", "gaussian_output_law", "gaussian_target"]


def gaussian_output(prior_mean, prior_var, rule: AffineRule):
    """Exact mean and variance of Y_1 per coordinate for a diagonal Gaussian prior.

    ``prior_mean``, ``prior_var``: arrays (n,) in the eigenbasis. Returns ``(mean, var)``.
    """
    mu = np.asarray(prior_mean, float)
    lam = np.asarray(prior_var, float)
    if isinstance(rule, StageRule):
        return stage_gaussian_output(mu, lam, rule)
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    M, V = start_moments(mu, lam, rule)
    if rule.multistep:
        return _gaussian_output_two_step(mu, lam, rule)
    for t in rule.steps:
        C = ab[t] * lam + omab[t]
        m = math.sqrt(ab[t]) * mu
        gain = rule.a[t] - rule.b[t] / C
        M = gain * M + rule.b[t] * m / C
        V = gain * gain * (V + rule.pre_c[t] ** 2) + rule.c[t] ** 2
    return M, V


def _gaussian_output_two_step(mu, lam, rule):
    """The recursion of :func:`gaussian_output` for a rule with ``b_prev`` (the previous
    step's score): the pair (Y_t, Y_{t+1}) is jointly Gaussian; with the affine scores
    ``s_t(y) = (m_t - y)/C_t``, ``Y_{t-1} = g Y_t + r Y_{t+1} + k + c Z``,
    ``g = a - b/C_t``, ``r = -b_prev/C_{t+1}``, ``k = b m_t/C_t + b_prev m_{t+1}/C_{t+1}``,
    and means, variances and the lag-one covariance follow."""
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    M, V = start_moments(mu, lam, rule)                  # Y_T
    M1 = V1 = K = np.zeros_like(mu)                      # Y_{T+1} (unused: b_prev[T] = 0)
    for t in rule.steps:
        C = ab[t] * lam + omab[t]
        g = rule.a[t] - rule.b[t] / C
        k = rule.b[t] * math.sqrt(ab[t]) * mu / C
        r = np.zeros_like(mu)
        if rule.b_prev[t] != 0:
            C1 = ab[t + 1] * lam + omab[t + 1]
            r = -rule.b_prev[t] / C1
            k = k + rule.b_prev[t] * math.sqrt(ab[t + 1]) * mu / C1
        M_new = g * M + r * M1 + k
        V_new = g * g * V + 2 * g * r * K + r * r * V1 + rule.c[t] ** 2
        K_new = g * V + r * K                            # Cov(Y_{t-1}, Y_t)
        M1, V1, K = M, V, K_new
        M, V = M_new, V_new
    return M, V


def gaussian_output_law(prior: Prior, rule: AffineRule):
    r"""Mean and covariance of :math:`Y_1` and of :math:`q_1` in the original basis, for a
    Gaussian prior (:class:`~theory.priors.Gaussian`, or a :class:`~theory.priors.ProductPrior`
    whose coordinates are all single Gaussians, such as the ``gauss`` preset).

    Returns ``(mean_p, cov_p, mean_q, cov_q)`` as float64 numpy arrays, shapes (d,) and
    (d, d): the scalar recursion of :func:`gaussian_output` in the eigenbasis, rotated back.
    """
    if isinstance(prior, Gaussian):
        lam, Q = prior.eig()
        Q = Q.cpu().numpy().astype(np.float64)
        mu = Q.T @ prior.mean.cpu().numpy().astype(np.float64)
        lam = np.maximum(lam.cpu().numpy().astype(np.float64), 0.0)
    elif isinstance(prior, ProductPrior) and prior.weights.shape[1] == 1:
        Q = np.eye(prior.dim)
        mu = prior.means[:, 0].cpu().numpy().astype(np.float64)
        lam = (prior.stds[:, 0] ** 2).cpu().numpy().astype(np.float64)
    else:
        raise NoExactLaw("gaussian_output_law needs a Gaussian prior")
    mp, vp = gaussian_output(mu, lam, rule)
    mq, vq = gaussian_target(mu, lam, rule)
    return Q @ mp, (Q * vp) @ Q.T, Q @ mq, (Q * vq) @ Q.T


def gaussian_target(prior_mean, prior_var, rule):
    """Mean and variance of the target per coordinate: q_1 (``rule.target == "q1"``) or the
    data law itself (``"data"``: its variances must be positive for a density)."""
    s = rule.schedule
    ab1, om1 = s.alpha_bar[rule.stop], s.one_minus_alpha_bar[rule.stop]
    var = ab1 * np.asarray(prior_var, float) + om1
    if np.any(var <= 0):
        raise NoExactLaw("the data law is degenerate (a zero variance): it has no density, so "
                         "TV and KL to it are trivial; use target q1 (or w2)")
    return math.sqrt(ab1) * np.asarray(prior_mean, float), var
