"""The accelerated stochastic sampler (noise before the score): exact laws vs Monte Carlo."""
import math

import numpy as np
import pytest
import torch

from theory import AnalyticScore, li_schedule, make_prior, run_sampler, sampler_rule
from theory.output_laws import exact_factors, gaussian_output


def test_accel_coefficients_follow_theory():
    s = li_schedule(30)
    r = sampler_rule("accel-sde", s)
    t = np.arange(2, 31)
    be = s.beta[t]
    assert np.allclose(r.pre_c[t], np.sqrt(be / 2), rtol=1e-15)
    assert np.allclose(r.c[t], np.sqrt(be / 2), rtol=1e-15)
    assert np.allclose(r.b[t], be / np.sqrt(1 - be), rtol=1e-14)
    assert not r.deterministic


def test_accel_gaussian_moments_vs_monte_carlo():
    s = li_schedule(40)
    r = sampler_rule("accel-sde", s)
    prior = make_prior("gauss", 1)
    n = 200_000
    y = run_sampler(r, AnalyticScore(prior, s), n, 1,
                    generator=torch.Generator().manual_seed(2)).numpy().ravel()
    M, V = gaussian_output(np.zeros(1), np.ones(1), r)
    assert abs(y.mean() - M[0]) < 5 * math.sqrt(V[0] / n)
    assert abs(y.var() - V[0]) < 5 * V[0] * math.sqrt(2 / n)


def test_accel_bimodal_law_vs_monte_carlo():
    s = li_schedule(60)
    r = sampler_rule("accel-sde", s)
    prior = make_prior("bimodal", 1)
    n = 200_000
    law = exact_factors(prior, r, 1.0)[0].law
    y = np.sort(run_sampler(r, AnalyticScore(prior, s), n, 1,
                            generator=torch.Generator().manual_seed(3)).numpy().ravel())
    ks = np.max(np.abs(np.arange(1, n + 1) / n - np.interp(y, law.x, law.cdf)))
    assert ks < math.sqrt(math.log(2 / 1e-6) / (2 * n))
