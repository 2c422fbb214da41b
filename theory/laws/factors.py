r"""The exact output law of an affine sampler on a structured prior, as independent factors.

For ``Y_{t-1} = a_t Y_t + b_t s_t(Y_t) + c_t Z_t`` with the exact score of a structured
prior (THEORY.md section 4), the law of :math:`Y_1` factorises into one-dimensional laws:

* **Gaussian prior**: a Gaussian per eigen-coordinate (:mod:`theory.laws.gaussian`);
* **product prior**: coordinates evolve independently; a single-Gaussian coordinate has its
  closed form, a mixture coordinate its 1-D law by grid propagation
  (:mod:`theory.laws.grid1d`); coordinates with the same parameters share one factor;
* **subspace prior**: the inner k-dimensional prior (product or Gaussian) and ``d - k``
  identical Gaussian coordinates off the subspace (prior variance ``perp_var``).

The target is :math:`q_1`, the law of one forward step, recomputed for each schedule, or the
data law (``rule.target == "data"``); the start N(0, I) or q_T (``rule.init``).
:func:`exact_factors` returns the list of factors (output law, target law, multiplicity)
that :mod:`theory.distances.exact` turns into distances. Multi-stage and multistep rules
(:class:`~theory.stages.StageRule`) use the engines of :mod:`theory.laws.stages`; a
:class:`~theory.samplers.StepSampler` has no coefficients and is refused (read them first
with :func:`theory.probe.read_step_sampler`).
"""
from __future__ import annotations

import numpy as np

from ..checks import NoExactLaw
from ..mixture1d import Mixture1D
from ..priors import Gaussian, GaussianMixture, Prior, ProductPrior, SubspaceMixture
from ..samplers import AffineRule, StepSampler
from ..stages import StageRule
from .base import GaussianFactor, QuadratureFactor
from .ends import target_mixture
from .gaussian import gaussian_output, gaussian_target
from .grid1d import output_law_1d
from .stages import stage_law_1d

__all__ = ["exact_factors"]


def exact_factors(prior: Prior, rule: AffineRule, level: int = 1, perturbation=None) -> list:
    """Factors of (law of Y_1, q_1) for a structured prior; raises :class:`NoExactLaw`.

    ``perturbation`` (a :class:`theory.score_errors.ScorePerturbation`) makes the sampler use
    a perturbed score while the target stays the true q_1; coordinate-wise perturbations of
    product priors keep the law exact.
    """
    if isinstance(rule, StepSampler):
        raise NoExactLaw(f"{rule.name!r} is a step function: it has no coefficients to run an "
                         "exact engine on; read them with theory.probe.read_step_sampler "
                         "(affine steps) or use theory.distances.samples")
    if not isinstance(rule, (AffineRule, StageRule)):
        raise NoExactLaw(f"no exact law for a rule of type {type(rule).__name__}; give an "
                         "AffineRule or a StageRule")
    if perturbation is not None and isinstance(rule, StageRule):
        raise NoExactLaw("score perturbations are implemented for one-stage affine rules")
    if perturbation is not None:
        rule = perturbation.adjust_rule(rule)
        if perturbation.affine:
            perturbation = None
        elif not isinstance(prior, ProductPrior):
            raise NoExactLaw("exact laws under a score perturbation need a product prior")
    if isinstance(prior, Gaussian):
        lam, Q = prior.eig()
        mu = (Q.T @ prior.mean).cpu().numpy()
        lam = lam.clamp_min(0).cpu().numpy()
        return [_gaussian_factor(mu, lam, np.ones(mu.size, dtype=np.int64), rule)]
    if isinstance(prior, ProductPrior):
        factors = []
        g_mean, g_var, g_mult = [], [], []
        for i, mult in prior.coordinate_groups():
            w, m, sd = prior.coordinate_params(i)
            keep = w > 0
            mix = Mixture1D(w[keep], m[keep], sd[keep] ** 2)
            if mix.w.size == 1 and perturbation is None:  # Gaussian: closed form, vectorised
                g_mean.append(mix.m[0]), g_var.append(mix.v[0]), g_mult.append(mult)
            else:
                law = stage_law_1d(mix, rule, level) if isinstance(rule, StageRule) else \
                    output_law_1d(mix, rule, level, perturbation)
                factors.append(QuadratureFactor(law, target_mixture(mix, rule), mult))
        if g_mean:
            factors.append(_gaussian_factor(np.array(g_mean), np.array(g_var),
                                            np.array(g_mult), rule))
        return factors
    if isinstance(prior, SubspaceMixture):
        factors = exact_factors(prior.inner, rule, level)
        m = prior.dim - prior.k
        if m > 0:
            factors.append(_gaussian_factor(np.zeros(1), np.array([prior.perp_var]),
                                            np.array([m]), rule))
        return factors
    if isinstance(prior, GaussianMixture):
        raise NoExactLaw("no exact output law for a general Gaussian mixture (only Gaussian, "
                         "product and subspace priors); use a sample-based method")
    raise NoExactLaw(f"no exact output law for prior {type(prior).__name__}")


def _gaussian_factor(mu, lam, mult, rule):
    mp, vp = gaussian_output(mu, lam, rule)
    mq, vq = gaussian_target(mu, lam, rule)
    return GaussianFactor(mp, vp, mq, vq, np.asarray(mult, dtype=np.int64))
