"""Exact output laws (THEORY.md sections 4-5): the grid engine against the closed-form
Gaussian recursion and against Monte Carlo of run_sampler, and the change-of-variables
engine against the grid engine."""
import math

import numpy as np
import pytest
import torch
from scipy.interpolate import CubicSpline
from scipy.special import ndtr

from theory.checks import NoExactLaw
from theory.laws.base import GaussianFactor, QuadratureFactor
from theory.laws.factors import exact_factors
from theory.laws.flow1d import flow_law_1d
from theory.laws.gaussian import gaussian_output
from theory.laws.grid1d import grid_law_1d
from theory.mixture1d import Mixture1D
from theory.priors import Gaussian, ProductPrior, make_prior
from theory.samplers import (
    AffineRule,
    AnalyticScore,
    run_sampler,
    sampler_rule,
)
from theory.schedules import li_schedule

BIMODAL = Mixture1D(np.array([0.5, 0.5]), np.array([-2.0, 2.0]), np.array([0.0625, 0.0625]))


def _quadrature_moments(law):
    p = law.mass
    mass = p.sum()
    mean = np.sum(p * law.x) / mass
    return mass, mean, np.sum(p * (law.x - mean) ** 2) / mass


def _ks_to_grid_cdf(samples, law):
    """sup_x |F_n(x) - F(x)| with F the law's CDF (cubic interpolation between nodes)."""
    y = np.sort(samples)
    n = y.size
    F = CubicSpline(law.x, law.cdf)(y)
    e = np.arange(1, n + 1) / n
    return max(np.max(e - F), np.max(F - (e - 1 / n)))


class _MixtureScore:
    """Exact score of a 1-D mixture's forward marginals through Mixture1D (fast on long
    vectors); checked against AnalyticScore of the matching ProductPrior below."""

    def __init__(self, mix, sched):
        self.mix, self.sched = mix, sched

    def __call__(self, x, t):
        mt = self.mix.marginal(self.sched.alpha_bar[t], self.sched.one_minus_alpha_bar[t])
        return torch.from_numpy(mt.score_and_derivative(x.numpy())[0])


def test_mixture_score_is_the_analytic_score():
    sched = li_schedule(100)
    w, m, sd = [0.3, 0.7], [-2.0, 1.5], [0.25, 0.4]
    mine = _MixtureScore(Mixture1D(np.array(w), np.array(m), np.array(sd) ** 2), sched)
    lib = AnalyticScore(ProductPrior([w], [m], [sd]), sched)
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)[:, None]
    for t in (1, 2, 30, 100):
        torch.testing.assert_close(mine(x, t), lib(x, t), rtol=1e-11, atol=1e-12)
        jac = torch.from_numpy(mine.mix.marginal(sched.alpha_bar[t], sched.one_minus_alpha_bar[t])
                               .score_and_derivative(x.numpy())[1])
        torch.testing.assert_close(jac, lib.jacobian(x, t)[:, :, 0], rtol=1e-10, atol=1e-11)


def _dkw_bound(n, alpha=1e-6):
    """Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2) = alpha."""
    return math.sqrt(math.log(2 / alpha) / (2 * n))


# --------------------------------------------------------------------------------------
# grid engine vs the Gaussian recursion
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,T", [("li-ode", 50), ("li-ode", 300), ("li-sde", 50),
                                    ("li-sde", 300), ("li-yan", 50), ("ddim", 50)])
@pytest.mark.parametrize("mu,lam", [(0.7, 0.5), (-1.3, 2.0)])
def test_grid_law_reproduces_gaussian_output(name, T, mu, lam):
    """A one-component 'mixture' is Gaussian: the grid law's moments (by quadrature) must
    equal the exact recursion to 1e-6 relative, and its CDF the Gaussian CDF to 1e-7."""
    rule = sampler_rule(name, li_schedule(T))
    law = grid_law_1d(Mixture1D(np.array([1.0]), np.array([mu]), np.array([lam])), rule)
    M, V = gaussian_output([mu], [lam], rule)
    mass, mean, var = _quadrature_moments(law)
    assert mass == pytest.approx(1.0, abs=1e-10)
    assert law.lost_mass < 1e-9
    assert mean == pytest.approx(M[0], rel=1e-6, abs=0)
    assert var == pytest.approx(V[0], rel=1e-6, abs=0)
    np.testing.assert_allclose(law.cdf, ndtr((law.x - M[0]) / math.sqrt(V[0])), rtol=0, atol=1e-7)
    # and the recursion has not collapsed to the target: the comparison has content
    ab1 = rule.schedule.alpha_bar[1]
    assert abs(V[0] / (ab1 * lam + 1 - ab1) - 1) > 1e-4


def test_gaussian_output_hand_recursion_standard_normal():
    """gauss prior at d = 1 (lambda = 1): q_t = N(0, 1) for all t, the score is -y and li-sde is
    Y <- sqrt(alpha) Y + sqrt((1-alpha)/alpha) Z, so V <- alpha V + (1-alpha)/alpha."""
    rule = sampler_rule("li-sde", li_schedule(200))
    M, V = gaussian_output([0.0], [1.0], rule)
    v = 1.0
    for t in range(200, 1, -1):
        al = 1 - float(rule.schedule.beta_steps[t - 1])
        v = al * v + (1 - al) / al
    assert M[0] == 0.0
    assert V[0] == pytest.approx(v, rel=1e-13, abs=0)


def test_flow_law_of_gaussian_is_affine():
    """For a Gaussian prior the deterministic flow is affine: node z goes to M + sqrt(V) z."""
    rule = sampler_rule("li-ode", li_schedule(80))
    law = flow_law_1d(Mixture1D(np.array([1.0]), np.array([0.4]), np.array([3.0])), rule,
                      n_nodes=401, z_max=8.0)
    M, V = gaussian_output([0.4], [3.0], rule)
    z = np.linspace(-8, 8, 401)
    np.testing.assert_allclose(law.x, M[0] + math.sqrt(V[0]) * z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(law.logp, -0.5 * z * z - 0.5 * math.log(2 * math.pi * V[0]),
                               rtol=1e-12)
    assert law.mass.sum() == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------------------
# grid engine vs Monte Carlo of the sampler (bimodal prior)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["li-ode", "li-sde"])
def test_grid_law_cdf_vs_run_sampler_bimodal(name):
    """Bimodal 1-D prior, T = 100, n = 2e5 samples of run_sampler with the exact score: the
    sup distance between the empirical CDF and the grid law's CDF must be below the DKW bound
    at false-alarm rate 1e-6 (0.0060). The same statistic against the target q_1 exceeds the
    bound, so the test separates the output law from its target."""
    rule = sampler_rule(name, li_schedule(100))
    n = 200_000
    y = run_sampler(rule, _MixtureScore(BIMODAL, rule.schedule), n, 1,
                    generator=torch.Generator().manual_seed(0))[:, 0].numpy()
    law = grid_law_1d(BIMODAL, rule)
    assert _ks_to_grid_cdf(y, law) < _dkw_bound(n)
    s = rule.schedule
    target = BIMODAL.marginal(s.alpha_bar[1], s.one_minus_alpha_bar[1])
    ys = np.sort(y)
    e = np.arange(1, n + 1) / n
    assert np.max(np.abs(target.cdf(ys) - e)) > _dkw_bound(n)


def test_grid_law_folding_custom_rule_vs_run_sampler():
    """A user-defined rule that overshoots the score step (b_t = 1.6 (1 - abar_t)) folds the
    line: flow_law_1d refuses it, the grid engine takes its push-forward branch. Its CDF
    against Monte Carlo (DKW bound at 1e-6) on an asymmetric 1-D mixture."""
    sched = li_schedule(20)
    om = sched.one_minus_alpha_bar
    rule = AffineRule("overshoot", np.ones(21), 1.6 * om, np.full(21, 0.2), sched)
    w, m, sd = [0.3, 0.7], [-2.0, 1.5], [0.25, 0.4]
    mix = Mixture1D(np.array(w), np.array(m), np.array(sd) ** 2)
    assert flow_law_1d(mix, AffineRule("fold-ode", rule.a, rule.b, 0 * rule.c, sched)) is None
    n = 200_000
    y = run_sampler(rule, _MixtureScore(mix, sched), n, 1,
                    generator=torch.Generator().manual_seed(1))[:, 0].numpy()
    law = grid_law_1d(mix, rule)
    assert _ks_to_grid_cdf(y, law) < _dkw_bound(n)


# --------------------------------------------------------------------------------------
# change-of-variables engine vs grid engine
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,T", [("li-ode", 50), ("li-ode", 100), ("ddim", 100)])
def test_flow_law_cdf_vs_grid_law(name, T):
    """The flow engine's CDF at its nodes is exact (Phi is monotone: F(Phi(z)) = Phi_N(z)).
    The grid engine's CDF (cubic interpolation between nodes) must agree to 1e-5 at the
    default h = 0.01, and converge: to 1e-6 at h = 0.0025 (the error is O(h^2))."""
    rule = sampler_rule(name, li_schedule(T))
    flow = flow_law_1d(BIMODAL, rule)
    assert flow is not None
    assert np.all(np.diff(flow.x) > 0)
    assert flow.mass.sum() == pytest.approx(1.0, abs=1e-9)
    errs = []
    for h in (0.01, 0.0025):
        grid = grid_law_1d(BIMODAL, rule, h=h)
        inside = (flow.x > grid.x[0]) & (flow.x < grid.x[-1])
        errs.append(np.max(np.abs(CubicSpline(grid.x, grid.cdf)(flow.x[inside])
                                  - flow.cdf[inside])))
    assert errs[0] < 1e-5
    assert errs[1] < 1e-6
    assert errs[1] < errs[0] / 4


@pytest.mark.parametrize("name", ["li-ode", "ddim"])
def test_flow_law_quadrature_moments_vs_grid(name):
    """Second moment of the output by both engines' quadratures. The flow map jumps from one
    mode to the other over a z-interval far narrower than the node spacing, so the
    trapezoid in z converges slowly (relative error ~1e-3 at the default 2001 nodes, ~1e-6
    at 200001); the grid's is O(h^2). Compared at 200001 nodes and h = 0.005: 1e-5."""
    rule = sampler_rule(name, li_schedule(60))
    flow, grid = flow_law_1d(BIMODAL, rule, n_nodes=200_001), grid_law_1d(BIMODAL, rule, h=0.005)
    mf, mg = _quadrature_moments(flow), _quadrature_moments(grid)
    assert mf[0] == pytest.approx(1.0, abs=1e-9)
    assert mf[1] == pytest.approx(0.0, abs=1e-9) and mg[1] == pytest.approx(0.0, abs=1e-9)
    assert mf[2] == pytest.approx(mg[2], rel=1e-5, abs=0)
    # the variance differs from the target's (4 + 0.0625 at t = 1, slightly noised)
    s = rule.schedule
    target_var = s.alpha_bar[1] * (4 + 0.0625) + s.one_minus_alpha_bar[1]
    assert abs(mf[2] - target_var) > 1e-3


# --------------------------------------------------------------------------------------
# factorisation of structured priors
# --------------------------------------------------------------------------------------

def test_exact_factors_gaussian_prior_uses_eigenbasis():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    cov = A @ A.T / 4 + 0.1 * np.eye(4)
    mu = np.array([1.0, -0.5, 0.0, 2.0])
    rule = sampler_rule("li-sde", li_schedule(40))
    (f,) = exact_factors(Gaussian(mu, cov), rule)
    lam, Q = np.linalg.eigh(cov)
    M, V = gaussian_output(Q.T @ mu, lam, rule)
    # eigenvectors have a sign ambiguity: compare |mean|, variances
    order = np.argsort(f.var_q)
    ab1, om1 = rule.schedule.alpha_bar[1], rule.schedule.one_minus_alpha_bar[1]
    np.testing.assert_allclose(f.var_q[order], np.sort(ab1 * lam + om1), rtol=1e-10)
    o2 = np.argsort(ab1 * lam + om1)
    np.testing.assert_allclose(f.var_p[order], V[o2], rtol=1e-10)
    np.testing.assert_allclose(np.abs(f.mean_p[order]), np.abs(M[o2]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.abs(f.mean_q[order]), np.abs(math.sqrt(ab1) * (Q.T @ mu)[o2]),
                               rtol=1e-10, atol=1e-12)
    assert np.all(f.mult == 1)


def test_exact_factors_subspace_and_product():
    rule = sampler_rule("li-ode", li_schedule(30))
    ab1, om1 = rule.schedule.alpha_bar[1], rule.schedule.one_minus_alpha_bar[1]
    facs = exact_factors(make_prior("subspace", 7), rule)
    assert sum(int(np.sum(f.mult)) for f in facs) == 7
    quad = [f for f in facs if isinstance(f, QuadratureFactor)]
    gauss = [f for f in facs if isinstance(f, GaussianFactor)]
    assert len(quad) == 1 and quad[0].mult == 2           # the two in-plane coordinates
    np.testing.assert_allclose(quad[0].target.v, ab1 * 0.0625 + om1, rtol=1e-14)
    np.testing.assert_allclose(np.sort(np.abs(quad[0].target.m)), [2 * math.sqrt(ab1)] * 2,
                               rtol=1e-14)
    (g,) = gauss                                           # 5 coordinates off the plane
    assert int(np.sum(g.mult)) == 5
    np.testing.assert_allclose(g.var_q, om1, rtol=1e-12)   # perp_var = 0: q_1 = N(0, 1 - abar_1)
    np.testing.assert_allclose(g.var_p, gaussian_output([0.0], [0.0], rule)[1], rtol=1e-12)
    # a product prior with a Gaussian coordinate and two distinct mixture coordinates
    prior = ProductPrior([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.2, 0.8]],
                         [[0.3, 0.0], [-2.0, 2.0], [-2.0, 2.0], [-1.0, 1.0]],
                         [[0.7, 1.0], [0.25, 0.25], [0.25, 0.25], [0.3, 0.5]])
    facs = exact_factors(prior, rule)
    assert sum(int(np.sum(f.mult)) for f in facs) == 4
    assert sorted(f.mult for f in facs if isinstance(f, QuadratureFactor)) == [1, 2]
    (g,) = [f for f in facs if isinstance(f, GaussianFactor)]
    M, V = gaussian_output([0.3], [0.49], rule)
    np.testing.assert_allclose([g.mean_p[0], g.var_p[0]], [M[0], V[0]], rtol=1e-12)
    with pytest.raises(NoExactLaw):
        exact_factors(make_prior("gmm", 3), rule)


def test_grid_blur_is_the_public_fft_product_and_the_gaussian_convolution():
    """_blur_linear (pocketfft's kernels called directly where they match) equals the product
    with exp(-c^2 k^2 / 2) written with scipy.fft's public functions, bit for bit, and blurs
    N(0.3, 0.2^2) on a grid into N(0.3, 0.2^2 + c^2) to 1e-12."""
    import math
    from scipy.fft import irfft, next_fast_len, rfft
    from theory.laws.grid1d import _blur_linear
    h, c = 0.01, 0.15
    x = np.arange(-800, 801) * h
    p = np.exp(-0.5 * ((x - 0.3) / 0.2) ** 2) / (0.2 * math.sqrt(2 * math.pi))
    pad = int(math.ceil(12 * c / h)) + 8
    n = next_fast_len(p.size + 2 * pad)
    k = 2 * np.pi * np.fft.rfftfreq(n, d=h)
    F = rfft(p, n)
    m = min(k.size, int(math.ceil(10.0 / (c * k[1]))) + 1)
    F[:m] *= np.exp((-0.5 * c * c) * k[:m] * k[:m])
    F[m:] = 0
    ours = _blur_linear(p, c, h)
    assert np.array_equal(ours, irfft(F, n)[:p.size])
    s = math.sqrt(0.2 ** 2 + c ** 2)
    exact = np.exp(-0.5 * ((x - 0.3) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    assert np.abs(ours - exact).max() < 1e-12


def test_grid_spline_coefficients_are_map_coordinates_own():
    """_spline_coefficients (scipy.ndimage's compiled filter called directly where it
    matches) evaluated at the nodes and between them gives map_coordinates(order=3,
    mode='nearest') to 1e-12, and away from the edges (whose 'nearest' padding is flat)
    interpolates a smooth log density to O(h^4) (h = 0.05: 4.6e-9; h = 0.1: 7.8e-8)."""
    from scipy.ndimage import map_coordinates
    from theory.laws.grid1d import _spline_coefficients, _spline_eval
    h = 0.05
    x = np.arange(-100, 101) * h
    logp = -0.5 * x ** 2 + 0.3 * np.sin(x)
    pos = np.linspace(3.0, x.size - 4.0, 977)
    ours = _spline_eval(_spline_coefficients(logp), pos)
    ref = map_coordinates(logp, [pos], order=3, mode="nearest")
    assert np.abs(ours - ref).max() < 1e-12
    xp = x[0] + pos * h
    inner = (pos > 20) & (pos < x.size - 21)
    assert np.abs(ours - (-0.5 * xp ** 2 + 0.3 * np.sin(xp)))[inner].max() < 1e-8
