r"""Where a run starts and what it is compared with (the ``init`` and ``target`` of a rule).

* start (``rule.init``): :math:`Y_T \sim N(0, I)` (``"standard-normal"``) or the exact forward
  marginal :math:`q_T` (``"qT"``), which removes the initialisation error (Pierret & Galerne,
  arXiv:2405.14250, separate it this way);
* target (``rule.target``): :math:`q_1`, the law of one forward step (``"q1"``, the theorems'
  comparison, THEORY.md section 1), or the data law :math:`p_0` = the prior itself
  (``"data"``: the rule then also runs its step ``t = 1``). The target must have a density for
  TV and KL: a point-mass component (standard deviation 0) is refused.

The level of the output is ``rule.stop`` (1 or 0), so both are the forward marginal at
:math:`\bar\alpha_{\mathrm{stop}}` (:math:`\bar\alpha_0 = 1`).
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import NoExactLaw
from ..mixture1d import Mixture1D

__all__ = ["start_moments", "start_mixture", "target_mixture"]

_STANDARD = Mixture1D(np.array([1.0]), np.array([0.0]), np.array([1.0]))


def start_moments(prior_mean, prior_var, rule):
    """Mean and variance of Y_T per coordinate (arrays like ``prior_mean``)."""
    mu = np.asarray(prior_mean, float)
    if rule.init == "qT":
        s = rule.schedule
        abT, omT = s.alpha_bar[s.T], s.one_minus_alpha_bar[s.T]
        return math.sqrt(abT) * mu, abT * np.asarray(prior_var, float) + omT
    return np.zeros_like(mu), np.ones_like(mu)


def start_mixture(mix: Mixture1D, rule) -> Mixture1D:
    """The 1-D law of Y_T: N(0, 1) or the forward marginal of ``mix`` at T."""
    if rule.init == "qT":
        s = rule.schedule
        return mix.marginal(s.alpha_bar[s.T], s.one_minus_alpha_bar[s.T])
    return _STANDARD


def target_mixture(mix: Mixture1D, rule) -> Mixture1D:
    """The 1-D target: ``mix`` pushed to the output level (q_1, or the data law itself)."""
    s = rule.schedule
    out = mix.marginal(s.alpha_bar[rule.stop], s.one_minus_alpha_bar[rule.stop])
    if np.any(out.v <= 0):
        raise NoExactLaw("the data law has a point mass (a component with standard deviation "
                         "0): no density, so TV and KL to it are trivial; use target q1")
    return out
