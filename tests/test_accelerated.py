"""The accelerated samplers of Li et al. (ICML 2024): the stochastic one (noise before the
score) and the deterministic two-step one, exact laws against independent computations."""
import math

import numpy as np
import pytest
import torch

from theory import AnalyticScore, li_schedule, make_prior, run_sampler, sampler_rule
from theory.laws.factors import exact_factors
from theory.laws.gaussian import gaussian_output


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


# --------------------------------------------------------------------------------------
# The accelerated deterministic sampler (two-step rule)
# --------------------------------------------------------------------------------------

def test_accel_ode_coefficients_vs_quadrature():
    """k2_t = sqrt(abar_{t-1}) / (abar_t - abar_{t+1}) * int_{abar_t}^{abar_{t-1}} (a - abar_t)
    (-dsigma/da) da, with sigma(a) = sqrt((1 - a)/a): the closed form (cancellation-free)
    against mpmath quadrature at 30 digits, and b, b_prev against their definitions."""
    import mpmath as mp
    mp.mp.dps = 30
    s = li_schedule(40)
    r = sampler_rule("accel-ode", s)
    beta = [mp.mpf(0)] + [mp.mpf(float(b)) for b in s.beta_steps]
    ab = [mp.mpf(1)]
    for b in beta[1:]:
        ab.append(ab[-1] * (1 - b))
    for t in (2, 3, 10, 25, 39):
        integrand = lambda a: (a - ab[t]) / (2 * a ** 1.5 * mp.sqrt(1 - a))  # noqa: E731
        k2 = mp.sqrt(ab[t - 1]) / (ab[t] - ab[t + 1]) * mp.quad(integrand, [ab[t], ab[t - 1]])
        k1 = mp.sqrt(1 - ab[t - 1]) - mp.sqrt(1 - ab[t]) / mp.sqrt(1 - beta[t])
        b = -mp.sqrt(1 - ab[t]) * (k1 - k2)
        b_prev = -mp.sqrt(1 - ab[t + 1]) * k2
        assert float(r.b[t]) == pytest.approx(float(b), rel=1e-9), t
        assert float(r.b_prev[t]) == pytest.approx(float(b_prev), rel=1e-9), t
    assert r.b_prev[40] == 0 and r.multistep and r.deterministic
    # the first step is DDIM's
    ddim = sampler_rule("ddim", s)
    assert r.b[40] == pytest.approx(ddim.b[40], rel=1e-12)


def test_accel_ode_run_sampler_reuses_the_previous_score():
    """run_sampler against a hand-written loop of the two-step update."""
    s = li_schedule(30)
    r = sampler_rule("accel-ode", s)
    prior = make_prior("bimodal", 2)
    score = AnalyticScore(prior, s)
    y0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = run_sampler(r, score, 50, 2, y_T=y0)
    y, prev = y0.clone(), None
    ab, om = s.alpha_bar, s.one_minus_alpha_bar
    for t in range(30, 1, -1):
        eps = -math.sqrt(om[t]) * score(y, t)
        nxt = y / math.sqrt(s.alpha[t]) + (math.sqrt(om[t - 1]) - math.sqrt(om[t] / s.alpha[t])) * eps
        if prev is not None:
            sig = lambda a: math.sqrt((1 - a) / a)  # noqa: E731
            dF = ab[t] * (sig(ab[t - 1]) - sig(ab[t])) + math.asin(math.sqrt(ab[t - 1])) \
                - math.asin(math.sqrt(ab[t]))
            nxt = nxt + math.sqrt(ab[t - 1]) / (ab[t] - ab[t + 1]) * dF * (prev - eps)
        prev, y = eps, nxt
    assert torch.allclose(out, y, rtol=1e-9, atol=1e-9)


def test_accel_ode_exact_laws_three_ways():
    """Gaussian prior: the joint (Y_t, Y_{t+1}) recursion against the 1-D grid engine (which
    carries the map Y_t -> Y_{t+1} on the grid) and against Monte Carlo; bimodal prior: the
    grid engine against the change-of-variables flow engine (chain rule through both states)."""
    from theory.laws.flow1d import flow_law_1d
    from theory.laws.grid1d import grid_law_1d
    from theory.mixture1d import Mixture1D
    s = li_schedule(80)
    r = sampler_rule("accel-ode", s)
    g = Mixture1D(np.array([1.0]), np.array([0.3]), np.array([1.0]))
    M, V = gaussian_output(np.array([0.3]), np.ones(1), r)
    law = grid_law_1d(g, r, h=0.01)
    p = np.exp(law.logp)
    mean = np.sum(law.dx * p * law.x)
    assert mean == pytest.approx(M[0], abs=1e-9)
    assert np.sum(law.dx * p * (law.x - mean) ** 2) == pytest.approx(V[0], rel=1e-8)
    y = run_sampler(r, AnalyticScore(make_prior("gauss", 1), s), 200_000, 1,
                    generator=torch.Generator().manual_seed(5)).numpy().ravel()
    M0, V0 = gaussian_output(np.zeros(1), np.ones(1), r)
    assert abs(y.mean() - M0[0]) < 5 * math.sqrt(V0[0] / y.size)
    assert abs(y.var() - V0[0]) < 5 * V0[0] * math.sqrt(2 / y.size)
    mix = Mixture1D(np.array([0.5, 0.5]), np.array([-2.0, 2.0]), np.array([0.0625, 0.0625]))
    grid = grid_law_1d(mix, r, h=0.0025)
    flow = flow_law_1d(mix, r, n_nodes=200001)
    for xq in (-2.3, -2.0, -1.7, 1.8, 2.0, 2.2):          # inside the modes
        assert np.interp(xq, grid.x, grid.cdf) == pytest.approx(
            np.interp(xq, flow.x, flow.cdf), abs=1e-8)


def test_accel_ode_converges_faster_than_ddim():
    """Exact TV on the bimodal prior: accel-ode beats DDIM (the plain first-order step it
    corrects) by an order of magnitude at T = 200, and its log-log slope over T in
    [200, 800] is steeper than -1.5 (DDIM: about -0.9)."""
    from theory import exact_distance
    prior = make_prior("bimodal", 1)
    Ts = [200, 400, 800]
    acc = [exact_distance(prior, sampler_rule("accel-ode", li_schedule(T))).value for T in Ts]
    ddim = [exact_distance(prior, sampler_rule("ddim", li_schedule(T))).value for T in Ts]
    assert acc[0] < 0.2 * ddim[0]
    slope = np.polyfit(np.log(Ts), np.log(acc), 1)[0]
    assert slope < -1.5, slope
    assert np.polyfit(np.log(Ts), np.log(ddim), 1)[0] > -1.0


def test_two_step_rule_validation():
    s = li_schedule(20)
    r = sampler_rule("accel-ode", s)
    from theory import AffineRule
    bad = r.b_prev.copy()
    bad[20] = 1.0
    with pytest.raises(ValueError, match="b_prev\\[T\\]"):
        AffineRule("x", r.a, r.b, r.c, s, None, bad)
    with pytest.raises(ValueError, match="both"):
        AffineRule("x", r.a, r.b, r.c, s, np.full(21, 0.1), r.b_prev)
    from theory import exact_distance
    from theory.checks import NoExactLaw
    from theory.score_errors import make_perturbation
    with pytest.raises(NoExactLaw):
        exact_distance(make_prior("bimodal", 1), r, perturbation=make_perturbation("step-noise", 0.1))
