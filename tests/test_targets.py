"""Targets (q_1 or the data law) and starts (N(0, I) or q_T): theory.laws.ends and every engine.

* Pierret & Galerne (ICML 2025, arXiv:2405.14250; their notebook Gaussian_diffusion_W2): the
  W2 to the data law of the Euler-Maruyama (EM), exponential-integrator (EI), DDPM, Euler and
  Heun schemes on their time grid (VP-SDE, beta(t) = 0.05 + 9.95 t, T = 1, N grid points,
  truncation eps), started from q_T or N(0, I), in d = 3072 (a log-spaced spectrum), computed
  by exact_distance from AffineRules/StageRules built from the schemes' coefficients, against
  the eigenvalue recursions written here (equations (11), (13), (16), (17) of the notebook and
  Ho's step): 1e-10.
* the step t = 1 of the built-in rules (target data) and the q_T start against a scalar
  recursion; refusals for point-mass data; run_sampler's q_T start; push-forward and
  sample-based estimates with target data and q_T start against the exact values.

Cost: about 40 s on one core (the full d = 3072 table is marked slow).
"""
import math

import numpy as np
import pytest

from theory import (AffineRule, Schedule, exact_distance, li_schedule, linear_schedule,
                    make_prior, sampler_rule)
from theory.checks import NoExactLaw
from theory.distances.pushforward import pushforward_tv
from theory.distances.samples import sampler_distance
from theory.priors import Gaussian, ProductPrior
from theory.samplers import AnalyticScore, run_sampler
from theory.stages import StageRule, Tableau

pytestmark = pytest.mark.usefixtures("one_thread")

# -- Pierret & Galerne's setting ------------------------------------------------------------
T_END, B_MIN, B_MAX = 1.0, 0.05, 10.0


def _beta(t):
    return B_MIN + t * (B_MAX - B_MIN)


def _B(t):
    return B_MIN * t + (B_MAX - B_MIN) * t * t / 2


def _grid(N, eps):
    """Forward times of the grid, ascending: eps = tau_0 < ... < tau_{N-1} = T."""
    tk = np.array([(T_END - eps) * k / (N - 1) for k in range(N)])
    return (T_END - tk)[::-1], tk[1] - tk[0]


def _pg_rule(scheme, N, eps, init):
    """The scheme on PG's grid as a rule with target 'data'. Schedule: index 0 = the data,
    then the grid's levels alpha_bar = exp(-2 B(tau)); with eps > 0 the step into the data is
    the identity (PG compare the output at eps with p_0)."""
    taus, dt = _grid(N, eps)
    levels = np.exp(-2 * _B(taus))
    la = np.log(np.concatenate([[1.0], levels] if eps > 0 else [levels]))
    sched = Schedule(-np.expm1(np.diff(la)), name="pierret-galerne")
    T = sched.T
    off = 1 if eps > 0 else 0             # schedule index of taus[0]

    def tau(t):
        return taus[t - off]

    if scheme == "heun":
        tabs = [None] * (T + 1)
        for t in range(T, off, -1):
            b, bp = _beta(tau(t)), _beta(tau(t - 1))
            A = 1 + dt * b / 2 + dt * bp / 2 * (1 + dt * b)
            tabs[t] = Tableau([sched.alpha_bar[t], sched.alpha_bar[t - 1]],
                              [[1.0], [1 + dt * b]], [[0, 0], [dt * b, 0]], [[A]],
                              [[dt * b / 2 + dt * bp / 2 * dt * b, dt * bp / 2]])
        if off:
            tabs[1] = Tableau([1.0], [[1.0]], [[0.0]], [[1.0]], [[0.0]])
        return StageRule("pg-heun", tuple(tabs), sched, target="data", init=init)
    a, b, c = np.ones(T + 1), np.zeros(T + 1), np.zeros(T + 1)
    if scheme == "ddpm":
        ho = sampler_rule("ddpm", sched)
        a[:], b[:], c[:] = ho.a, ho.b, ho.c
    for t in range(T, off, -1):
        bt = _beta(tau(t))
        if scheme == "em":
            a[t], b[t], c[t] = 1 + dt * bt, 2 * dt * bt, math.sqrt(2 * dt * bt)
        elif scheme == "ei":
            g1 = math.exp(_B(tau(t)) - _B(tau(t - 1))) - 1
            g2 = (math.exp(2 * (_B(tau(t)) - _B(tau(t - 1)))) - 1) / 2
            a[t], b[t], c[t] = 1 + g1, 2 * g1, math.sqrt(2 * g2)
        elif scheme == "euler":
            a[t], b[t] = 1 + dt * bt, dt * bt
    if off:
        a[1], b[1], c[1] = 1.0, 0.0, 0.0
    return AffineRule(f"pg-{scheme}", a, b, c, sched, target="data", init=init)


def _pg_reference(scheme, N, eps, init, lam):
    """The eigenvalue recursion of each scheme (PG's notebook), written here."""
    taus, dt = _grid(N, eps)

    def lam_at(tau):
        e = math.exp(-2 * _B(tau))
        return e * lam + 1 - e
    v = lam_at(T_END) if init == "qT" else np.ones_like(lam)
    for k in range(N - 1, 0, -1):                 # from taus[N-1] = T down to taus[0]
        tc, tn = taus[k], taus[k - 1]
        b, lc = _beta(tc), lam_at(tc)
        if scheme == "em":
            v = (1 + dt * b * (1 - 2 / lc)) ** 2 * v + 2 * dt * b
        elif scheme == "ei":
            g1 = math.exp(_B(tc) - _B(tn)) - 1
            g2 = (math.exp(2 * (_B(tc) - _B(tn))) - 1) / 2
            v = (1 + g1 * (1 - 2 / lc)) ** 2 * v + 2 * g2
        elif scheme == "euler":
            v = (1 + dt * b * (1 - 1 / lc)) ** 2 * v
        elif scheme == "heun":
            bn, ln = _beta(tn), lam_at(tn)
            f = 1 + dt * b * (1 - 1 / lc)
            v = (1 + dt / 2 * b * (1 - 1 / lc) + dt / 2 * bn * (1 - 1 / ln) * f) ** 2 * v
        else:                                      # Ho's ancestral step, posterior variance
            al = math.exp(-2 * (_B(tc) - _B(tn)))
            om_c, om_n = 1 - math.exp(-2 * _B(tc)), 1 - math.exp(-2 * _B(tn))
            g = (1 - (1 - al) / lc) / math.sqrt(al)
            v = g * g * v + om_n / om_c * (1 - al)
    return math.sqrt(float(np.sum((np.sqrt(v) - np.sqrt(lam)) ** 2)))


def _spectrum_prior(d):
    lam = np.geomspace(1e-4, 50.0, d)          # a CIFAR-like range of eigenvalues
    return lam, ProductPrior(np.ones((d, 1)), np.zeros((d, 1)), np.sqrt(lam)[:, None])


def _check_rows(scheme, d, configs):
    lam, prior = _spectrum_prior(d)
    for init, N, eps in configs:
        est = exact_distance(prior, _pg_rule(scheme, N, eps, init), "w2")
        ref = _pg_reference(scheme, N, eps, init, lam)
        assert abs(est.value - ref) <= 1e-10 * ref, (scheme, init, N, eps, est, ref)
        assert est.lower <= ref <= est.upper


ROWS = [(init, N, eps) for init in ("qT", "standard-normal") for N in (50, 250)
        for eps in (0.0, 1e-3)]


@pytest.mark.parametrize("scheme", ["em", "ei", "ddpm", "euler", "heun"])
def test_pierret_galerne_rows(scheme):
    """W2(law of the output, p_0) of each scheme, init q_T and N(0, I), N = 50 and 250,
    eps = 0 and 1e-3, d = 256, and the q_T / N = 250 / eps = 1e-3 row in d = 3072:
    exact_distance against the recursion (relative 1e-10)."""
    _check_rows(scheme, 256, ROWS)
    _check_rows(scheme, 3072, [("qT", 250, 1e-3)])


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["em", "ei", "ddpm", "euler", "heun"])
def test_pierret_galerne_rows_d3072(scheme):
    """Every row of the table above in d = 3072."""
    _check_rows(scheme, 3072, ROWS)


def test_step_into_the_data_and_q_T_start_against_a_scalar_recursion():
    """ddim and ddpm with target data (the step t = 1 is the Tweedie denoiser x0_hat) and the
    q_T start, on N(0.4, 2): the output moments from the written-out update, W2 and KL to the
    prior itself (1e-12)."""
    sched = linear_schedule(30)
    ab, om = sched.alpha_bar, sched.one_minus_alpha_bar
    mu, lam = 0.4, 2.0
    prior = ProductPrior([[1.0]], [[mu]], [[math.sqrt(lam)]])
    for name in ("ddim", "ddpm"):
        rule = sampler_rule(name, sched, target="data", init="qT")
        M, V = math.sqrt(ab[30]) * mu, ab[30] * lam + om[30]
        for t in range(30, 0, -1):
            C = ab[t] * lam + om[t]               # x0_hat = (x + om s)/sqrt(ab), s = (m - x)/C
            g0, k0 = (1 - om[t] / C) / math.sqrt(ab[t]), om[t] * math.sqrt(ab[t]) * mu / C / math.sqrt(ab[t])
            ge, ke = math.sqrt(om[t]) / C, -math.sqrt(om[t]) * math.sqrt(ab[t]) * mu / C
            sig2 = 0.0 if name == "ddim" else om[t - 1] / om[t] * (1 - ab[t] / ab[t - 1])
            d = math.sqrt(om[t - 1] - sig2)
            g, k = math.sqrt(ab[t - 1]) * g0 + d * ge, math.sqrt(ab[t - 1]) * k0 + d * ke
            M, V = g * M + k, g * g * V + sig2
        w2 = math.sqrt((M - mu) ** 2 + (math.sqrt(V) - math.sqrt(lam)) ** 2)
        kl = 0.5 * (lam / V - 1 - math.log(lam / V) + (M - mu) ** 2 / V)
        assert abs(exact_distance(prior, rule, "w2").value - w2) <= 1e-12 * w2 + 1e-15
        assert abs(exact_distance(prior, rule, "kl").value - kl) <= 1e-11 * kl + 1e-15


def test_point_mass_data_is_refused_for_tv():
    """The data law must have a density for TV/KL: the subspace prior (degenerate off its
    plane) and a product prior with a zero standard deviation are refused with target data."""
    rule = sampler_rule("ddim", li_schedule(20), target="data")
    with pytest.raises(NoExactLaw, match="density"):
        exact_distance(make_prior("subspace", 3), rule, "tv")
    with pytest.raises(NoExactLaw, match="point mass"):
        exact_distance(ProductPrior([[0.5, 0.5]], [[-1.0, 1.0]], [[0.0, 0.3]]), rule, "tv")


def test_run_sampler_starts_from_q_T(generator):
    """init qT: Y_T has the moments of q_T (z-scores < 4), for the bimodal prior."""
    prior = make_prior("bimodal", 1)
    rule = sampler_rule("li-ode", li_schedule(8, c1=1.5), init="qT")
    seen = {}
    run_sampler(rule, AnalyticScore(prior, rule.schedule), 40000, 1, generator=generator,
                callback=lambda t, y: seen.setdefault(t, y.clone()))
    ab = rule.schedule.alpha_bar[8]
    y = seen[8][:, 0].numpy()
    mean_sq = ab * (4 + 0.0625) + 1 - ab                  # E[Y_T^2] under q_T
    assert abs(y.mean()) < 4 * math.sqrt(mean_sq / y.size)
    assert abs((y ** 2).mean() - mean_sq) < 4 * np.std(y ** 2) / math.sqrt(y.size)


def test_pushforward_and_samples_with_data_target_match_exact():
    """A correlated 2-D Gaussian, target data, q_T start: push-forward TV (tanh, affine rule;
    one-sided, Heun) and sample-based W2 intervals contain the exact values."""
    prior = Gaussian([0.3, -0.5], [[1.0, 0.4], [0.4, 0.6]])
    for rule, est in ((sampler_rule("ddim", li_schedule(12), target="data", init="qT"), "tanh"),
                      (sampler_rule("heun", li_schedule(12), target="data", init="qT"),
                       "one-sided")):
        ex = exact_distance(prior, rule, "tv")
        mc = pushforward_tv(prior, rule, 6000, estimator=est, seed=5)
        assert mc.lower <= ex.value <= mc.upper, (rule.name, ex, mc)
    rule = sampler_rule("ddim", li_schedule(12), target="data", init="qT")
    ex = exact_distance(prior, rule, "w2")
    s = sampler_distance(prior, rule, 400, metric="w2", seed=2, n_boot=20)
    assert s.lower <= ex.value <= s.upper, (ex, s)


def test_measure_command_takes_target_and_init(capsys):
    from experiments.cli.main import main
    assert main(["measure", "--prior", "gauss", "--sampler", "heun", "--T", "40",
                 "--target", "data", "--init", "qT", "--metric", "w2", "--json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    rule = sampler_rule("heun", li_schedule(40), target="data", init="qT")
    assert abs(out["value"] - exact_distance(make_prior("gauss", 1), rule, "w2").value) < 1e-14
    assert out["config"]["target"] == "data" and out["config"]["init"] == "qT"
    assert main(["measure", "--init", "uniform"]) == 2
    assert "unknown init" in capsys.readouterr().err
