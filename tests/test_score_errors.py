"""Score perturbations: the exact law under a perturbed score against Monte Carlo of the
sampler driven by that score, and the injected eps against direct Monte Carlo."""
import math

import numpy as np
import pytest
import torch

from theory import (
    AnalyticScore,
    exact_distance,
    li_schedule,
    make_prior,
    run_sampler,
    sampler_rule,
)
from theory.laws.factors import exact_factors
from theory.laws.gaussian import gaussian_output
from theory.score_errors import AdditiveField, StepNoise, WrongVariances, WrongWeights

N = 100_000
# DKW: P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2); false alarm 1e-6
DKW = math.sqrt(math.log(2 / 1e-6) / (2 * N))


def _ks(law, y):
    ys = np.sort(y)
    emp = np.arange(1, ys.size + 1) / ys.size
    return np.max(np.abs(emp - np.interp(ys, law.x, law.cdf)))


@pytest.mark.parametrize("pert", [AdditiveField(0.3), WrongWeights(0.4, [0.2, 0.8]),
                                  WrongVariances(0.5), StepNoise(3.0)], ids=lambda p: p.name)
@pytest.mark.parametrize("name", ["li-ode", "li-sde"])
def test_perturbed_law_matches_monte_carlo(pert, name):
    prior, sched = make_prior("bimodal", 1), li_schedule(60)
    rule = sampler_rule(name, sched)
    law = exact_factors(prior, rule, 1.0, pert)[0].law
    score = pert.torch_score(prior, sched, generator=torch.Generator().manual_seed(5))
    y = run_sampler(rule, score, N, 1, generator=torch.Generator().manual_seed(4)).numpy().ravel()
    assert _ks(law, y) < DKW
    # and the perturbation matters: the unperturbed law is far from these samples
    law0 = exact_factors(prior, rule, 1.0)[0].law
    assert _ks(law0, y) > DKW


def test_injected_eps_score_vs_monte_carlo():
    prior, sched = make_prior("bimodal", 2), li_schedule(40)
    pert = AdditiveField(0.2, freq=1.5)
    inj = pert.injected(prior, sched)
    g = torch.Generator().manual_seed(0)
    exact = AnalyticScore(prior, sched)
    perturbed = pert.torch_score(prior, sched)
    sq, jac = 0.0, 0.0
    ab = sched.alpha_bar
    for t in range(2, sched.T + 1):
        x = prior.marginal(float(ab[t])).sample(40_000, generator=g)
        d = perturbed(x, t) - exact(x, t)
        sq += float((d ** 2).sum(1).mean())
        jac += float((0.2 * 1.5 * torch.cos(1.5 * x)).abs().amax(1).mean())
    mc_score = math.sqrt(sq / sched.T)
    assert inj["eps_score"] == pytest.approx(mc_score, rel=5e-3)
    assert inj["eps_jacobi"] == pytest.approx(jac / sched.T, rel=5e-3)


def test_step_noise_is_affine_and_closed_form():
    prior, sched = make_prior("gauss", 3), li_schedule(50)
    pert = StepNoise(0.3)
    rule = sampler_rule("li-ode", sched)
    adj = pert.adjust_rule(rule)
    assert np.allclose(adj.c[2:], 0.3 * rule.b[2:])
    # Gaussian prior: the variance recursion with the extra noise, by hand
    lam = np.array([1.0])
    M, V = gaussian_output(np.zeros(1), lam, adj)
    v = 1.0
    ab, om = sched.alpha_bar, sched.one_minus_alpha_bar
    for t in range(sched.T, 1, -1):
        C = ab[t] * lam[0] + om[t]
        v = (rule.a[t] - rule.b[t] / C) ** 2 * v + (0.3 * rule.b[t]) ** 2
    assert V[0] == pytest.approx(v, rel=1e-13)
    inj = pert.injected(prior, sched)
    assert inj["eps_score"] == pytest.approx(0.3 * math.sqrt(3 * 49 / 50), rel=1e-14)
    assert inj["eps_jacobi"] == 0.0


def test_zero_perturbation_is_the_exact_score():
    prior, rule = make_prior("bimodal", 3), sampler_rule("li-sde", li_schedule(80))
    a = exact_distance(prior, rule, "tv").value
    b = exact_distance(prior, rule, "tv", perturbation=AdditiveField(0.0)).value
    assert b == pytest.approx(a, rel=1e-9)


def test_bad_perturbations():
    with pytest.raises(ValueError):
        AdditiveField(-1.0)
    with pytest.raises(ValueError):
        AdditiveField(float("nan"))
    with pytest.raises(ValueError):
        AdditiveField(0.1).injected(make_prior("subspace", 3), li_schedule(20))


@pytest.mark.parametrize("pert", [AdditiveField(0.3, freq=2.0), WrongWeights(0.4, [0.2, 0.8]),
                                  WrongVariances(0.5), StepNoise(3.0)], ids=lambda p: p.name)
def test_batched_perturbed_rows_equal_the_per_step_score(pert):
    """The grid engine's batched rows (one noise level per row, one call for a block of steps)
    against the per-step perturbed score s* + delta, which builds each marginal on its own;
    on a shared abscissa (the step maps' first call) and on one row per step."""
    from theory.mixture1d import Mixture1D
    prior, sched = make_prior("bimodal", 1), li_schedule(200)
    w, m, sd = prior.coordinate_params(0)
    mix = Mixture1D(w, m, sd ** 2)
    score = pert.score_1d(mix, sched)
    ts = np.array([200, 120, 40, 3, 2])
    x = np.linspace(-6, 6, 1201)
    Y = np.stack([x * (1 + 0.1 * r) for r in range(ts.size)])
    rows = score.rows(ts)
    for y_in, per_row in ((x, lambda r: x), (Y, lambda r: Y[r])):
        S, D = rows(y_in)
        assert S.shape == D.shape == (ts.size, x.size)
        for r, t in enumerate(ts):
            s_ref, d_ref = score(int(t), per_row(r))
            np.testing.assert_allclose(S[r], s_ref, rtol=1e-12, atol=1e-12 * np.abs(s_ref).max())
            np.testing.assert_allclose(D[r], d_ref, rtol=1e-11, atol=1e-11 * np.abs(d_ref).max())
