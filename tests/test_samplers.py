"""Samplers (THEORY.md section 2): the coefficient table against formulas written out
here from the update rules, and run_sampler against exact Gaussian output laws."""
import functools
import math
from decimal import Decimal as D
from decimal import localcontext

import numpy as np
import pytest
import torch

from theory.laws.gaussian import gaussian_output
from theory.priors import Gaussian, make_prior
from theory.samplers import (
    AFFINE_SAMPLERS,
    AffineRule,
    AnalyticScore,
    run_sampler,
    sampler_rule,
)
from theory.schedules import cosine_schedule, li_schedule, linear_schedule

F64 = torch.float64
SCHEDULES = [("li", lambda: li_schedule(50)), ("li1000", lambda: li_schedule(1000)),
             ("linear", lambda: linear_schedule(100)), ("cosine", lambda: cosine_schedule(30))]


def _decimal40(fn):
    """Run ``fn`` in a 40-digit decimal context."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with localcontext() as ctx:
            ctx.prec = 40
            return fn(*args, **kwargs)
    return wrapped


@_decimal40
def _abar(sched):
    """alpha_bar_t and 1 - alpha_bar_t for t = 0..T in 40-digit decimal arithmetic (exact for
    the float64 betas up to 1e-40), so the references below carry no rounding error."""
    ab = [D(1)]
    for b in sched.beta_steps:
        ab.append(ab[-1] * (1 - D(float(b))))
    return ab, [1 - v for v in ab]


def _as_coeffs(update):
    """(a, b, c) of an update y' = f(y, s, z) that is affine in (y, s, z)."""
    base = update(D(0), D(0), D(0))
    return tuple(float(update(*e) - base) for e in
                 ((D(1), D(0), D(0)), (D(0), D(1), D(0)), (D(0), D(0), D(1))))


@_decimal40
def reference_coeffs(name, sched):
    """(a, b, c) for t = 2..T from the update rules of THEORY.md section 2 (decimal)."""
    ab, om = _abar(sched)
    out = []
    for t in range(2, sched.T + 1):
        be = D(float(sched.beta_steps[t - 1]))
        al = 1 - be
        if name == "li-ode":     # Y_{t-1} = (Y + (1-alpha)/2 s) / sqrt(alpha)
            f = lambda y, s, z: (y + (1 - al) / 2 * s) / al.sqrt()
        elif name == "li-sde":   # Y_{t-1} = (Y + (1-alpha) s + sqrt(1-alpha) Z) / sqrt(alpha)
            f = lambda y, s, z: (y + (1 - al) * s + (1 - al).sqrt() * z) / al.sqrt()
        elif name == "li-yan":   # eta = 1-alpha, sigma^2 = (1-alpha)(alpha-abar)/(1-abar)
            sig = ((1 - al) * (al - ab[t]) / om[t]).sqrt()
            f = lambda y, s, z: (y + (1 - al) * s + sig * z) / al.sqrt()
        elif name == "ddpm":     # Ho et al.: 1/sqrt(alpha)(x - beta/sqrt(1-abar) eps) + sigma z
            sig = ((1 - al) * om[t - 1] / om[t]).sqrt()

            def f(y, s, z, al=al, t=t, sig=sig):
                eps = -om[t].sqrt() * s
                return (y - (1 - al) / om[t].sqrt() * eps) / al.sqrt() + sig * z
        elif name == "ddim":     # general DDIM with sigma = 0, through x0_hat and eps_hat
            f = lambda y, s, z, t=t: _ddim_general(y, s, z, ab, om, t, D(0))
        else:
            raise KeyError(name)
        out.append(_as_coeffs(f))
    return np.array(out).T


def _ddim_general(x, s, z, ab, om, t, sigma):
    eps = -om[t].sqrt() * s
    x0 = (x - om[t].sqrt() * eps) / ab[t].sqrt()
    return ab[t - 1].sqrt() * x0 + (om[t - 1] - sigma ** 2).sqrt() * eps + sigma * z


@pytest.mark.parametrize("name", [s for s in AFFINE_SAMPLERS if not s.startswith("accel-")])  # own tests
@pytest.mark.parametrize("sched_name,make", SCHEDULES)
def test_coefficients_match_update_rules(name, sched_name, make):
    """Every coefficient to float64 round-off. The tolerance on b (1e-13) allows for the
    cancellation in DDIM's b at small t; li1000 has beta_2 ~ 3e-8, where computing
    1 - alpha_t as 1 - (1 - beta_t) would already cost ~1e-9 relative."""
    sched = make()
    rule = sampler_rule(name, sched)
    a, b, c = reference_coeffs(name, sched)
    np.testing.assert_allclose(rule.a[2:], a, rtol=1e-14, atol=0)
    np.testing.assert_allclose(rule.b[2:], b, rtol=1e-13, atol=0)
    np.testing.assert_allclose(rule.c[2:], c, rtol=1e-14, atol=0)
    assert rule.a.shape == rule.b.shape == rule.c.shape == (sched.T + 1,)
    assert rule.deterministic == (name in ("li-ode", "ddim"))


def test_li_ode_drift_is_half_li_sde_drift():
    # the factor that a sign/scale slip would break: the ODE uses half the SDE score weight
    rule_o, rule_s = (sampler_rule(n, li_schedule(200)) for n in ("li-ode", "li-sde"))
    np.testing.assert_allclose(rule_o.b[2:], 0.5 * rule_s.b[2:], rtol=1e-15)
    np.testing.assert_allclose(rule_o.a, rule_s.a, rtol=0)


@pytest.mark.parametrize("sched_name,make", SCHEDULES)
def test_li_yan_equals_ddpm(sched_name, make):
    sched = make()
    ly, dp = sampler_rule("li-yan", sched), sampler_rule("ddpm", sched)
    for key in "abc":
        np.testing.assert_allclose(getattr(ly, key)[2:], getattr(dp, key)[2:], rtol=1e-14,
                                   atol=0)


@pytest.mark.parametrize("sched_name,make", SCHEDULES)
@_decimal40
def test_ddpm_is_ddim_with_eta_one(sched_name, make):
    """DDIM's general update with sigma_t^2 = (1-abar_{t-1})(1-alpha_t)/(1-abar_t) (eta = 1)
    is Ho's ancestral step: an identity independent of both implementations."""
    sched = make()
    ab, om = _abar(sched)
    dp = sampler_rule("ddpm", sched)
    for t in range(2, sched.T + 1):
        sig = ((1 - ab[t] / ab[t - 1]) * om[t - 1] / om[t]).sqrt()
        a, b, c = _as_coeffs(lambda y, s, z: _ddim_general(y, s, z, ab, om, t, sig))
        assert dp.a[t] == pytest.approx(a, rel=1e-14, abs=0)
        assert dp.b[t] == pytest.approx(b, rel=1e-14, abs=0)
        assert dp.c[t] == pytest.approx(c, rel=1e-14, abs=0)


def test_ddim_is_exact_for_a_point_mass_prior():
    """With a point mass at mu the exact score is (sqrt(abar) mu - x)/(1 - abar); then
    x0_hat = mu, eps_hat is exact, and DDIM (sigma=0) keeps x on the ray
    sqrt(abar_t) mu + sqrt(1-abar_t) eps for a fixed eps (so Y_1 = sqrt(abar_1) mu +
    sqrt(1-abar_1) Y_T exactly)."""
    sched = li_schedule(40)
    rule = sampler_rule("ddim", sched)
    ab, om = sched.alpha_bar, sched.one_minus_alpha_bar
    mu = torch.tensor([1.5, -0.5], dtype=F64)

    def score(x, t):
        return (math.sqrt(ab[t]) * mu - x) / om[t]

    y_T = torch.randn(7, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    y1 = run_sampler(rule, score, 7, 2, y_T=y_T)
    eps = (y_T - math.sqrt(ab[-1]) * mu) / math.sqrt(om[-1])
    torch.testing.assert_close(y1, math.sqrt(ab[1]) * mu + math.sqrt(om[1]) * eps, rtol=1e-10,
                               atol=1e-12)


def test_bad_rules_raise():
    sched = li_schedule(10)
    ok = np.ones(11)
    with pytest.raises(ValueError):
        sampler_rule("euler", sched)
    with pytest.raises(ValueError):
        AffineRule("x", np.ones(10), ok, ok, sched)            # wrong length
    with pytest.raises(ValueError):
        AffineRule("x", ok, ok, -ok, sched)                    # negative noise
    bad = ok.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError):
        AffineRule("x", ok, bad, ok, sched)
    # t = 0, 1 are not used, so may hold anything
    loose = ok.copy()
    loose[:2] = np.nan
    assert AffineRule("x", loose, ok, 0 * ok, sched).deterministic


# --------------------------------------------------------------------------------------
# run_sampler
# --------------------------------------------------------------------------------------

def test_run_sampler_reproducible_and_callback_order():
    prior = make_prior("bimodal", 2)
    rule = sampler_rule("li-sde", li_schedule(25))
    score = AnalyticScore(prior, rule.schedule)
    seen = []

    def cb(t, y):
        seen.append((t, y.clone()))

    a = run_sampler(rule, score, 100, 2, generator=torch.Generator().manual_seed(3), callback=cb)
    b = run_sampler(rule, score, 100, 2, generator=torch.Generator().manual_seed(3))
    c = run_sampler(rule, score, 100, 2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert [t for t, _ in seen] == list(range(25, 0, -1))
    assert torch.equal(seen[-1][1], a)


def test_run_sampler_step_semantics():
    """Y_{t-1} = a_t Y_t + b_t s(Y_t, t) + c_t Z_t for t = T..2, re-run by hand with the same
    stream (Y_T first, then one Z per step) and a score that records its step index."""
    sched = li_schedule(6, c0=2.0, c1=2.0)
    rule = sampler_rule("li-sde", sched)
    calls = []

    def score(x, t):
        calls.append(t)
        return torch.sin(x) * t - 0.3 * x

    y1 = run_sampler(rule, score, 5, 3, generator=torch.Generator().manual_seed(9))
    assert calls == [6, 5, 4, 3, 2]
    g = torch.Generator().manual_seed(9)
    y = torch.randn(5, 3, generator=g, dtype=F64)
    for t in range(6, 1, -1):
        z = torch.randn(5, 3, generator=g, dtype=F64)
        y = rule.a[t] * y + rule.b[t] * (torch.sin(y) * t - 0.3 * y) + rule.c[t] * z
    torch.testing.assert_close(y1, y, rtol=1e-14, atol=1e-14)


def test_analytic_score_uses_marginal_at_step():
    prior = make_prior("gmm", 3)
    sched = li_schedule(30)
    score = AnalyticScore(prior, sched)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    for t in (1, 2, 17, 30):
        torch.testing.assert_close(score(x, t), prior.marginal(float(sched.alpha_bar[t])).score(x),
                                   rtol=1e-14, atol=0)
    with pytest.raises(ValueError):
        score(x, 31)


@pytest.mark.parametrize("name", ["li-ode", "ddim"])
def test_deterministic_rule_on_device_matches_numpy_loop(name, device):
    """Gaussian prior, given Y_T: the deterministic output is an affine map of Y_T; compare
    with the same recursion run in numpy in the eigenbasis."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3))
    cov = A @ A.T / 3 + 0.2 * np.eye(3)
    mu = np.array([1.0, -2.0, 0.5])
    prior = Gaussian(mu, cov, device=device)
    rule = sampler_rule(name, li_schedule(60))
    y_T = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    out = run_sampler(rule, AnalyticScore(prior, rule.schedule), 50, 3, y_T=y_T.to(device),
                      device=device)
    assert out.device.type == device
    y = y_T.numpy().copy()
    ab = rule.schedule.alpha_bar
    for t in range(rule.T, 1, -1):
        C = ab[t] * cov + (1 - ab[t]) * np.eye(3)
        s = np.linalg.solve(C, (math.sqrt(ab[t]) * mu - y).T).T
        y = rule.a[t] * y + rule.b[t] * s
    np.testing.assert_allclose(out.cpu().numpy(), y, rtol=1e-10, atol=1e-10)


class _GaussianScore:
    """Exact score of the forward marginals of N(mu, cov), written out here:
    s_t(x) = C_t^{-1}(sqrt(abar_t) mu - x), C_t = abar_t cov + (1 - abar_t) I (THEORY.md
    section 4). Much cheaper per call than the general mixture code."""

    def __init__(self, mu, cov, sched, device):
        self.mu = torch.as_tensor(mu, dtype=F64, device=device)
        self.cov = torch.as_tensor(cov, dtype=F64, device=device)
        self.ab = sched.alpha_bar
        self.eye = torch.eye(len(mu), dtype=F64, device=device)

    def __call__(self, x, t):
        prec = torch.linalg.inv(self.ab[t] * self.cov + (1 - self.ab[t]) * self.eye)
        return (math.sqrt(self.ab[t]) * self.mu - x) @ prec


def test_explicit_gaussian_score_is_the_analytic_score():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 3))
    cov = A @ A.T / 3 + np.diag([0.05, 0.5, 2.0])
    mu = np.array([1.0, -2.0, 0.5])
    sched = li_schedule(30)
    mine, lib = _GaussianScore(mu, cov, sched, "cpu"), AnalyticScore(Gaussian(mu, cov), sched)
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    for t in (2, 10, 30):
        torch.testing.assert_close(mine(x, t), lib(x, t), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,T", [("li-sde", 50), ("li-ode", 40), ("ddim", 20),
                                    ("li-yan", 30)])
def test_gaussian_output_moments_vs_run_sampler(name, T, device, device_generator):
    """Empirical mean and covariance of run_sampler output (n = 2e5) for a full-covariance
    Gaussian prior against gaussian_output in the eigenbasis: each mean within 5 standard
    errors, each variance within 5 standard errors (from the sample fourth moment),
    off-diagonal covariances within 5 standard errors of 0."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 3))
    cov = A @ A.T / 3 + np.diag([0.05, 0.5, 2.0])
    mu = np.array([1.0, -2.0, 0.5])
    rule = sampler_rule(name, li_schedule(T))
    n = 200_000
    y = run_sampler(rule, _GaussianScore(mu, cov, rule.schedule, device), n, 3,
                    generator=device_generator, device=device).cpu().numpy()
    lam, Q = np.linalg.eigh(cov)
    M, V = gaussian_output(Q.T @ mu, lam, rule)
    z = y @ Q
    m_emp = z.mean(0)
    c = z - m_emp
    v_emp = (c ** 2).mean(0)
    assert np.all(np.abs(m_emp - M) < 5 * np.sqrt(v_emp / n)), (m_emp, M)
    se_v = np.sqrt(((c ** 2 - v_emp) ** 2).mean(0) / n)
    assert np.all(np.abs(v_emp - V) < 5 * se_v), (v_emp, V, se_v)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        prod = c[:, i] * c[:, j]
        assert abs(prod.mean()) < 5 * prod.std() / math.sqrt(n)
    # the checks have power: the output is not the target q_1 at these T
    ab1 = rule.schedule.alpha_bar[1]
    assert np.max(np.abs(V - (ab1 * lam + 1 - ab1)) / se_v) > 5 or \
        np.max(np.abs(M - math.sqrt(ab1) * (Q.T @ mu)) / np.sqrt(v_emp / n)) > 5
