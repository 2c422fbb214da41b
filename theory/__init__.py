"""diffrates.theory: the importable library.

Data flow, one module per arrow (THEORY.md):

    priors (closed-form scores) -> schedules -> samplers (affine rules)
    -> output_laws (exact laws of Y_1) -> distances (value + error + method)

Quick use::

    from theory import make_prior, li_schedule, sampler_rule, exact_distance
    rule = sampler_rule("li-sde", li_schedule(1000))
    est = exact_distance(make_prior("bimodal", 100), rule, "tv")
    print(est.value, est.lower, est.upper, est.method)
"""
from .schedules import Schedule, li_schedule, linear_schedule, cosine_schedule, make_schedule
from .priors import (Prior, GaussianMixture, Gaussian, ProductPrior, SubspaceMixture,
                     make_prior, PRESETS)
from .samplers import AffineRule, StepSampler, sampler_rule, SAMPLERS, AnalyticScore, run_sampler
from .output_laws import exact_factors, NoExactLaw
from .distances import DistanceEstimate, exact_distance, METRICS

__all__ = ["Schedule", "li_schedule", "linear_schedule", "cosine_schedule", "make_schedule",
           "Prior", "GaussianMixture", "Gaussian", "ProductPrior", "SubspaceMixture",
           "make_prior", "PRESETS", "AffineRule", "StepSampler", "sampler_rule", "SAMPLERS", "AnalyticScore",
           "run_sampler", "exact_factors", "NoExactLaw", "DistanceEstimate", "exact_distance",
           "METRICS"]
