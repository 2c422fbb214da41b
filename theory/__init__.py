"""diffrates.theory: the importable library.

The data flow of THEORY.md, one module per arrow, in wings by concern:

    priors (closed-form scores) -> schedules -> samplers (affine rules, step functions)
    -> laws/       exact output laws: Gaussian recursion, 1-D grid and flow engines,
                   push-forward densities
    -> distances/  exact (factors, FFT), Gaussian closed forms, sample-based (POT),
                   push-forward Monte Carlo; every value with its interval and method
    -> rates (exponent fits) -> figures

    posterior/     likelihoods, closed-form posteriors, DPnP and DPS, the 1-D and 2-D grid
                   chains, sample-based estimators against grid laws

``checks`` (argument checks, shared with the command line) and ``rng`` (seeds, generators,
devices) serve every module. Imports run one way: top-level modules -> laws -> distances
-> posterior.

Quick use::

    from theory import make_prior, li_schedule, sampler_rule, exact_distance
    rule = sampler_rule("li-sde", li_schedule(1000))
    est = exact_distance(make_prior("bimodal", 100), rule, "tv")
    print(est.value, est.lower, est.upper, est.method)
"""
from .checks import NoExactLaw
from .schedules import Schedule, li_schedule, linear_schedule, cosine_schedule, make_schedule
from .priors import (Prior, GaussianMixture, Gaussian, ProductPrior, SubspaceMixture,
                     make_prior, PRESETS)
from .samplers import AffineRule, StepSampler, sampler_rule, SAMPLERS, AnalyticScore, run_sampler
from .laws.factors import exact_factors
from .distances.estimate import DistanceEstimate
from .distances.exact import exact_distance, METRICS

__all__ = ["Schedule", "li_schedule", "linear_schedule", "cosine_schedule", "make_schedule",
           "Prior", "GaussianMixture", "Gaussian", "ProductPrior", "SubspaceMixture",
           "make_prior", "PRESETS", "AffineRule", "StepSampler", "sampler_rule", "SAMPLERS",
           "AnalyticScore", "run_sampler", "exact_factors", "NoExactLaw", "DistanceEstimate",
           "exact_distance", "METRICS"]
