"""Multi-stage and multistep rules (theory.stages) and their exact engines (theory.laws.stages,
theory.laws.stage_pushforward), each against a computation written independently here:

* Gaussian priors: the methods' own update formulas (Heun in DDIM's variables, the classical
  RK4, DPM-Solver++ 2M/3M from the data prediction), evaluated as affine maps of the state and
  propagated by a mean/covariance recursion of this file, not through the tableaux;
* every one-stage rule converted to a StageRule gives the built-in engines' laws;
* bimodal: the grid engine against the change-of-variables engine and against push-forward
  Monte Carlo (95% CI); run_sampler against the exact Gaussian law (moments, z-scores);
* the orders: on uniform steps in lambda, Heun/2M give slope -2, RK4 -4, and DPM-Solver++'s
  third-order multistep update as the reference code writes it (dpm++3m-ref) only -2.

Cost: about 40 s on one core.
"""
import math

import numpy as np
import pytest
import torch

from theory import Schedule, exact_distance, li_schedule, linear_schedule, make_prior, sampler_rule
from theory.checks import NoExactLaw
from theory.distances.pushforward import pushforward_tv
from theory.laws.gaussian import gaussian_output
from theory.laws.stages import stage_flow_law_1d, stage_gaussian_output, stage_grid_law_1d
from theory.mixture1d import Mixture1D
from theory.priors import ProductPrior
from theory.samplers import AFFINE_SAMPLERS, AnalyticScore, run_sampler
from theory.stages import StageRule, Tableau, as_stage_rule, stage_rule

pytestmark = pytest.mark.usefixtures("one_thread")

BIMODAL = Mixture1D(np.array([0.5, 0.5]), np.array([-2.0, 2.0]), np.array([0.0625, 0.0625]))


# --- an independent Gaussian recursion ---------------------------------------------------

def _gaussian_reference(name, sched, mu, lam, init, target):
    """Mean and variance of the output of ``name`` on N(mu, lam) per coordinate, from the
    methods' update formulas applied to the affine scores (m - x)/C (no tableaux)."""
    ab, om = sched.alpha_bar, sched.one_minus_alpha_bar
    T = sched.T
    stop = 1 if target == "q1" else 0

    def score(x, a):            # exact score of N(mu, lam) at level a, as an affine map
        C = a * lam + 1 - a
        return (math.sqrt(a) * mu - x) / C

    def heun_step(y, t):
        sig = lambda u: math.sqrt(om[u] / ab[u])               # noqa: E731
        d = sig(t - 1) - sig(t)
        yb = y / math.sqrt(ab[t])
        e1 = -math.sqrt(om[t]) * score(y, ab[t])
        if t == 1:                                              # EDM: Euler into sigma = 0
            return yb + d * e1
        e2 = -math.sqrt(om[t - 1]) * score(math.sqrt(ab[t - 1]) * (yb + d * e1), ab[t - 1])
        return math.sqrt(ab[t - 1]) * (yb + d * (e1 + e2) / 2)

    def rk4_step(y, t):
        s_t, s_p = math.sqrt(om[t] / ab[t]), math.sqrt(om[t - 1] / ab[t - 1])
        d = s_p - s_t

        def eps(yb, sg):
            a = 1 / (1 + sg * sg)
            return -math.sqrt(1 - a) * score(math.sqrt(a) * yb, a)
        yb = y / math.sqrt(ab[t])
        k1 = eps(yb, s_t)
        k2 = eps(yb + d / 2 * k1, s_t + d / 2)
        k3 = eps(yb + d / 2 * k2, s_t + d / 2)
        k4 = eps(yb + d * k3, s_p)
        return math.sqrt(ab[t - 1]) * (yb + d / 6 * (k1 + 2 * k2 + 2 * k3 + k4))

    lamb = np.full(T + 1, np.inf)
    lamb[1:] = 0.5 * np.log(ab[1:] / om[1:])

    def dpm_step(state, t, order, k3=2.0):
        """state = (y, D_{t+1}, D_{t+2}); Lu et al. 2022 (2M: Algorithm 2)."""
        y, m1, m2 = state
        D = (y + om[t] * score(y, ab[t])) / math.sqrt(ab[t])
        if t == 1:
            return (D, D, m1)
        h = lamb[t - 1] - lamb[t]
        a_p = math.sqrt(ab[t - 1])
        base = math.sqrt(om[t - 1] / om[t]) * y - a_p * math.expm1(-h) * D
        k = min(T - t + 1, order)
        if k == 1:
            new = base
        elif k == 2:
            r0 = (lamb[t] - lamb[t + 1]) / h
            new = base - 0.5 * a_p * math.expm1(-h) * (D - m1) / r0
        else:
            r0, r1 = (lamb[t] - lamb[t + 1]) / h, (lamb[t + 1] - lamb[t + 2]) / h
            d10, d11 = (D - m1) / r0, (m1 - m2) / r1
            D1 = d10 + r0 / (r0 + r1) * (d10 - d11)
            D2 = (d10 - d11) / (r0 + r1)
            phi2 = math.expm1(-h) / h + 1
            phi3 = (math.expm1(-h) + h) / h ** 2 - 0.5
            new = base + a_p * phi2 * D1 - k3 * a_p * phi3 * D2
        return (new, D, m1)

    # the start and the affine map of each step (evaluated on basis inputs), m = 3
    if init == "qT":
        M = np.stack([math.sqrt(ab[T]) * mu, 0 * mu, 0 * mu], 1)
        V0 = ab[T] * lam + om[T]
    else:
        M, V0 = np.zeros((mu.size, 3)), np.ones_like(mu)
    V = np.zeros((mu.size, 3, 3))
    V[:, 0, 0] = V0
    for t in range(T, stop, -1):
        if name == "heun":
            f = lambda st, t=t: (heun_step(st[0], t), 0 * st[0], 0 * st[0])   # noqa: E731
        elif name == "rk4":
            f = lambda st, t=t: (rk4_step(st[0], t), 0 * st[0], 0 * st[0])    # noqa: E731
        else:
            order = 2 if name == "dpm++2m" else 3
            k3 = 1.0 if name == "dpm++3m-ref" else 2.0
            f = lambda st, t=t, o=order, k3=k3: dpm_step(st, t, o, k3)       # noqa: E731
        zero = [np.zeros_like(mu)] * 3
        off = np.stack(f(zero), 1)
        F = np.zeros((mu.size, 3, 3))
        for j in range(3):
            e = [np.zeros_like(mu)] * 3
            e[j] = np.ones_like(mu)
            F[:, :, j] = np.stack(f(e), 1) - off
        M = np.einsum("nij,nj->ni", F, M) + off
        V = np.einsum("nij,njk,nlk->nil", F, V, F)
    return M[:, 0], V[:, 0, 0]


@pytest.mark.parametrize("name", ["heun", "rk4", "dpm++2m", "dpm++3m", "dpm++3m-ref"])
@pytest.mark.parametrize("init,target", [("standard-normal", "q1"), ("qT", "data")])
def test_gaussian_law_equals_independent_recursion(name, init, target):
    """Exact mean and variance of the StageRule engine = the methods' own formulas, 1e-10."""
    mu = np.array([0.0, 0.7, -1.5, 0.2])
    lam = np.array([1.0, 0.1, 4.0, 0.02])
    for sched in (li_schedule(60), linear_schedule(40)):
        rule = stage_rule(name, sched, init=init, target=target)
        m, v = stage_gaussian_output(mu, lam, rule)
        mr, vr = _gaussian_reference(name, sched, mu, lam, init, target)
        np.testing.assert_allclose(m, mr, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(v, vr, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", AFFINE_SAMPLERS)
def test_affine_rules_as_stage_rules_give_the_same_gaussian_law(name):
    """Every one-stage rule (and the two-step accel-ode) through the stage engine: the same law
    as gaussian_output (1e-12), for both targets and inits."""
    mu, lam = np.array([0.3, -1.0, 0.0]), np.array([0.5, 2.0, 1e-3])
    for target in ("q1", "data"):
        for init in ("standard-normal", "qT"):
            r = sampler_rule(name, li_schedule(50), target=target, init=init)
            a = gaussian_output(mu, lam, r)
            b = stage_gaussian_output(mu, lam, as_stage_rule(r))
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_stage_grid_engine_matches_grid1d_on_one_stage_rules():
    """li-sde (noise) and accel-sde (noise before the score) as StageRules on the bimodal
    prior: the same TV as the built-in grid engine within both error bounds."""
    prior = make_prior("bimodal", 1)
    for name in ("li-sde", "accel-sde"):
        r = sampler_rule(name, li_schedule(80))
        a = exact_distance(prior, r, "tv")
        b = exact_distance(prior, as_stage_rule(r), "tv")
        assert abs(a.value - b.value) <= a.error + b.error + 1e-9, (name, a, b)


@pytest.mark.parametrize("name", ["heun", "dpm++2m", "dpm++3m"])
def test_grid_engine_matches_change_of_variables(name):
    """Bimodal, T = 40: the grid law's CDF at the flow nodes (200001 nodes) to 2e-5, and the
    TV of both laws against q_1 to 1e-5."""
    rule = stage_rule(name, li_schedule(40))
    grid = stage_grid_law_1d(BIMODAL, rule, h=0.005)
    flow = stage_flow_law_1d(BIMODAL, rule, n_nodes=200001)
    assert flow is not None
    assert np.max(np.abs(np.interp(flow.x, grid.x, grid.cdf) - flow.cdf)) < 2e-5
    q = BIMODAL.marginal(rule.schedule.alpha_bar[1], rule.schedule.one_minus_alpha_bar[1])
    tv = [0.5 * np.sum(law.dx * np.abs(np.exp(law.logp) - np.exp(q.logpdf(law.x))))
          for law in (grid, flow)]
    assert abs(tv[0] - tv[1]) < 1e-5, tv


@pytest.mark.parametrize("name", ["heun", "dpm++2m"])
def test_bimodal_exact_tv_inside_pushforward_ci(name):
    """Exact TV (grid engine) inside the 95% CI of the push-forward Monte Carlo estimate
    (forward densities through the stages, diagonal Jacobians), d = 1 and 2."""
    for d in (1, 2):
        prior = make_prior("bimodal", d)
        rule = stage_rule(name, li_schedule(40))
        ex = exact_distance(prior, rule, "tv")
        mc = pushforward_tv(prior, rule, 20000, seed=3)
        assert mc.lower <= ex.value <= mc.upper, (name, d, ex, mc)


def test_dense_pushforward_equals_diagonal_on_a_product_mixture():
    """The same four-component law as a ProductPrior (diagonal Jacobians) and as a
    GaussianMixture (dense Jacobians, LU log determinant): equal log densities (1e-10)."""
    from theory.laws.stage_pushforward import stage_flow_forward
    from theory.priors import GaussianMixture
    prod = make_prior("bimodal", 2)
    mu = torch.tensor([[-2.0, -2], [-2, 2], [2, -2], [2, 2]], dtype=torch.float64)
    gm = GaussianMixture(torch.full((4,), 0.25), mu, 0.0625 * torch.eye(2).repeat(4, 1, 1))
    rule = stage_rule("dpm++2m", li_schedule(30))
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = stage_flow_forward(prod, rule, z), stage_flow_forward(gm, rule, z)
    assert torch.allclose(a.x, b.x, atol=1e-11) and torch.allclose(a.log_p, b.log_p, atol=1e-10)


def test_run_sampler_moments_match_the_exact_gaussian_law(generator):
    """Heun and DPM-Solver++(3M) run by run_sampler on N(0.7, 2.5): sample mean and variance
    (n = 40000) within 4 standard errors of the exact law."""
    prior = ProductPrior([[1.0]], [[0.7]], [[math.sqrt(2.5)]])
    for name in ("heun", "dpm++3m"):
        rule = stage_rule(name, li_schedule(20))
        m, v = stage_gaussian_output(np.array([0.7]), np.array([2.5]), rule)
        y = run_sampler(rule, AnalyticScore(prior, rule.schedule), 40000, 1,
                        generator=generator)[:, 0].numpy()
        n = y.size
        assert abs(y.mean() - m[0]) < 4 * math.sqrt(v[0] / n), name
        assert abs(y.var() - v[0]) < 4 * v[0] * math.sqrt(2 / n), name


def _uniform_lambda(T, lmin=-6.0, lmax=6.0):
    lam = np.linspace(lmax, lmin, T + 1)
    la = np.concatenate([[0.0], np.log(1 / (1 + np.exp(-2 * lam[1:])))])
    return Schedule(-np.expm1(np.diff(la)), name="uniform-lambda")


def test_orders_on_uniform_lambda_steps():
    """TV from q_T on N(0.3, 4), T = 100..800, steps uniform in lambda: slopes of log TV
    against log T: Heun and 2M -2, RK4 -4 (within 0.1); dpm++3m-ref -2 (the reference code's
    third-order update is second order), dpm++3m below -3."""
    prior = ProductPrior([[1.0]], [[0.3]], [[2.0]])
    Ts = [100, 200, 400, 800]
    slope = {}
    for name in ("heun", "dpm++2m", "rk4", "dpm++3m-ref", "dpm++3m"):
        tv = [exact_distance(prior, stage_rule(name, _uniform_lambda(T), init="qT"), "tv").value
              for T in Ts]
        slope[name] = np.polyfit(np.log(Ts), np.log(tv), 1)[0]
    for name, p in (("heun", -2), ("dpm++2m", -2), ("rk4", -4), ("dpm++3m-ref", -2)):
        assert abs(slope[name] - p) < 0.1, slope
    assert slope["dpm++3m"] < -3.0, slope


def test_refusals():
    """A multistep rule with noise has no 1-D law; a stage rule cannot take score
    perturbations; a rule missing the step into the data cannot target it."""
    s = li_schedule(10)
    tabs = [None] + [Tableau([s.alpha_bar[t]], [[1.0, 0.0]], [[0.0]], [[1.0, 0.1], [0, 0]],
                             [[0.1], [1.0]], c=0.1) for t in range(1, 11)]
    noisy = StageRule("noisy-multistep", tuple(tabs), s)
    with pytest.raises(NoExactLaw, match="noise"):
        exact_distance(make_prior("bimodal", 1), noisy, "tv")
    from theory.score_errors import make_perturbation
    with pytest.raises(NoExactLaw, match="one-stage"):
        exact_distance(make_prior("bimodal", 1), stage_rule("heun", s), "tv",
                       perturbation=make_perturbation("additive-field", 0.1))
    with pytest.raises(ValueError, match="t = 1"):
        StageRule("short", tuple([None, None] + list(tabs[2:])), s, target="data")
