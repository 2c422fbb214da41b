"""Distances (THEORY.md section 5): closed forms against quadrature, exact product TV
against direct 2-D quadrature and Monte Carlo, tensorisation of KL / Hellinger / W2."""
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from theory import exact_distance
from theory.distances.exact import factor_distance
from theory.distances.gaussian import (
    gaussian_hellinger_sq,
    gaussian_kl,
    gaussian_tv_1d,
    gaussian_w2_sq,
)
from theory.laws.factors import exact_factors
from theory.priors import ProductPrior, make_prior
from theory.samplers import sampler_rule
from theory.schedules import li_schedule

Z999 = 3.2905  # two-sided 99.9% normal quantile


def _logpdf(x, m, v):
    return -0.5 * (x - m) ** 2 / v - 0.5 * np.log(2 * math.pi * v)


def _crossings(m1, v1, m2, v2):
    """Points where two 1-D Gaussian densities cross: sign changes of log p - log q on a dense
    scan, refined by bisection (independent of any closed form)."""
    s = math.sqrt(max(v1, v2))
    lo, hi = min(m1, m2) - 60 * s, max(m1, m2) + 60 * s
    x = np.linspace(lo, hi, 200_001)
    f = _logpdf(x, m1, v1) - _logpdf(x, m2, v2)
    idx = np.flatnonzero(np.sign(f[1:]) != np.sign(f[:-1]))
    g = lambda t: _logpdf(t, m1, v1) - _logpdf(t, m2, v2)
    return [brentq(g, x[i], x[i + 1], xtol=1e-15, rtol=1e-15) for i in idx]


def _quad(f, m1, v1, m2, v2):
    """int f over R, split at the crossings and at +-40 sd around both means."""
    s = math.sqrt(max(v1, v2))
    lo, hi = min(m1, m2) - 40 * s, max(m1, m2) + 40 * s
    pts = sorted([lo] + [c for c in _crossings(m1, v1, m2, v2) if lo < c < hi] + [hi])
    return sum(quad(f, a, b, epsabs=1e-17, epsrel=1e-12, limit=500)[0]
               for a, b in zip(pts[:-1], pts[1:]))


PAIRS = [
    (0.0, 1.0, 1.0, 1.0),            # equal variances
    (0.0, 1.0, 0.0, 2.0),            # equal means
    (0.3, 0.5, -1.0, 3.0),
    (2.0, 1e-4, 2.01, 1.2e-4),
    (0.0, 1.0, 1e-6, 1.0),           # nearly equal: TV ~ 4e-7
    (0.0, 1.0, 0.0, 1.0 + 1e-6),
    (0.0, 1.0, 1e-5, 1.0 + 1e-7),
    (0.5, 2.0, 0.5 + 1e-3, 2.0 * (1 + 1e-12)),   # variances just above the 'equal' cut
    (0.0, 1.0, 8.0, 1.0),            # far apart: TV ~ 1
]


@pytest.mark.parametrize("m1,v1,m2,v2", PAIRS)
def test_gaussian_tv_1d_vs_quadrature(m1, v1, m2, v2):
    """Against quadrature of (p - q)_+ = p (1 - q/p)_+ (no cancellation), to 1e-8 relative
    (the quadrature's own accuracy; TV -> 0 is checked against mpmath below)."""
    def pos(x):
        l = _logpdf(x, m2, v2) - _logpdf(x, m1, v1)
        return 0.0 if l >= 0 else math.exp(_logpdf(x, m1, v1)) * -math.expm1(l)

    ref = _quad(pos, m1, v1, m2, v2)
    tv = gaussian_tv_1d(m1, v1, m2, v2)
    assert tv == pytest.approx(ref, rel=1e-8, abs=0)
    assert gaussian_tv_1d(m2, v2, m1, v1) == pytest.approx(ref, rel=1e-8, abs=0)


def test_gaussian_tv_1d_tiny_tv_relative():
    """Relative accuracy as TV -> 0, against 50-digit mpmath on the crossings (floating-point
    quadrature cannot resolve TV ~ 1e-12 to 1e-6 relative)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    for m1, v1, m2, v2 in [(0.0, 1.0, 0.0, 1.0 + 1e-11), (0.3, 1.0, 0.3 + 1e-9, 1.0 + 1e-8),
                           (0.0, 1.0, 1e-7, 1.0), (0.0, 1.0, 0.0, 1.0 + 1e-4)]:
        M1, V1, M2, V2 = (mp.mpf(x) for x in (m1, v1, m2, v2))
        A = (1 / V2 - 1 / V1) / 2
        B = M1 / V1 - M2 / V2
        C = (M2 ** 2 / V2 - M1 ** 2 / V1) / 2 + mp.log(mp.sqrt(V2 / V1))
        if A == 0:
            roots = [-C / B]
        else:
            D = mp.sqrt(B * B - 4 * A * C)
            roots = sorted([(-B - D) / (2 * A), (-B + D) / (2 * A)])
        edges = [-mp.inf] + roots + [mp.inf]
        ref = sum(abs(mp.ncdf(b, M1, mp.sqrt(V1)) - mp.ncdf(a, M1, mp.sqrt(V1))
                      - mp.ncdf(b, M2, mp.sqrt(V2)) + mp.ncdf(a, M2, mp.sqrt(V2)))
                  for a, b in zip(edges[:-1], edges[1:])) / 2
        assert gaussian_tv_1d(m1, v1, m2, v2) == pytest.approx(float(ref), rel=1e-7, abs=0)


def _kl_integrand(m1, v1, m2, v2):
    """q (r - 1 - log r), r = p/q, q = N(m1, v1), p = N(m2, v2): nonnegative."""
    def f(x):
        lq, lp = _logpdf(x, m1, v1), _logpdf(x, m2, v2)
        l = lp - lq
        if abs(l) < 0.5:
            u = math.expm1(l)
            return math.exp(lq) * (u - math.log1p(u))
        return math.exp(lp) - math.exp(lq) - math.exp(lq) * l
    return f


def _h_integrand(m1, v1, m2, v2):
    """1/2 (sqrt p - sqrt q)^2."""
    def f(x):
        lq, lp = _logpdf(x, m1, v1), _logpdf(x, m2, v2)
        if abs(lp - lq) < 0.5:
            e = math.expm1(0.5 * (lp - lq))
            return 0.5 * math.exp(lq) * e * e
        return 0.5 * (math.exp(0.5 * lp) - math.exp(0.5 * lq)) ** 2
    return f


@pytest.mark.parametrize("m1,v1,m2,v2", PAIRS)
def test_kl_hellinger_w2_closed_forms_vs_quadrature(m1, v1, m2, v2):
    kl_ref = _quad(_kl_integrand(m1, v1, m2, v2), m1, v1, m2, v2)
    h_ref = _quad(_h_integrand(m1, v1, m2, v2), m1, v1, m2, v2)
    # W2^2 = int_0^1 (F1^-1(u) - F2^-1(u))^2 du, quantile functions of each Gaussian
    s1, s2 = math.sqrt(v1), math.sqrt(v2)
    w2_ref = quad(lambda u: ((m1 + s1 * ndtri(u)) - (m2 + s2 * ndtri(u))) ** 2, 0, 1,
                  epsabs=1e-22, epsrel=1e-11, limit=500, points=[0.5])[0]
    assert gaussian_kl(m1, v1, m2, v2) == pytest.approx(kl_ref, rel=1e-7, abs=1e-22)
    assert gaussian_hellinger_sq(m1, v1, m2, v2) == pytest.approx(h_ref, rel=1e-7, abs=1e-22)
    assert gaussian_w2_sq(m1, v1, m2, v2) == pytest.approx(w2_ref, rel=1e-7, abs=1e-22)


def test_gaussian_kl_direction():
    """kl(m_q, v_q, m_p, v_p) is KL(N(m_q, v_q) || N(m_p, v_p)): asymmetric, by hand."""
    assert gaussian_kl(0.0, 1.0, 0.0, 4.0) == pytest.approx(0.5 * (0.25 - 1 + math.log(4)))
    assert gaussian_kl(0.0, 4.0, 0.0, 1.0) == pytest.approx(0.5 * (4 - 1 - math.log(4)))


# --------------------------------------------------------------------------------------
# exact distances of the gauss preset
# --------------------------------------------------------------------------------------

def _gauss_output_by_hand(lam, sched, name):
    """Output variance of li-sde / li-ode for N(0, lam), from the update rules of THEORY.md
    section 2 with s_t(y) = -y / C_t, C_t = abar_t lam + 1 - abar_t (a hand recursion)."""
    ab, om = sched.alpha_bar, sched.one_minus_alpha_bar
    V = np.ones_like(np.asarray(lam, float))
    for t in range(sched.T, 1, -1):
        be = sched.beta_steps[t - 1]
        al = 1 - be
        C = ab[t] * lam + om[t]
        if name == "li-sde":      # (Y + (1-alpha) s + sqrt(1-alpha) Z) / sqrt(alpha)
            V = ((1 - be / C) ** 2 * V + be) / al
        elif name == "li-ode":    # (Y + (1-alpha)/2 s) / sqrt(alpha)
            V = (1 - be / (2 * C)) ** 2 * V / al
        else:
            raise KeyError(name)
    return V, ab[1] * np.asarray(lam, float) + om[1]


def test_exact_distance_gauss_d1():
    sched = li_schedule(200)
    rule = sampler_rule("li-sde", sched)
    (vp,), (vq,) = _gauss_output_by_hand(np.array([1.0]), sched, "li-sde")
    assert vq == pytest.approx(1.0, rel=1e-14, abs=0)       # lambda = 1: q_t = N(0, 1) for every t
    prior = make_prior("gauss", 1)
    tv = exact_distance(prior, rule, "tv")
    assert tv.value == pytest.approx(gaussian_tv_1d(0.0, vp, 0.0, vq), rel=1e-10, abs=0)
    # and by quadrature of (p - q)_+, independent of the crossing formula
    pos = lambda x: max(math.exp(_logpdf(x, 0, vp)) - math.exp(_logpdf(x, 0, vq)), 0.0)
    assert tv.value == pytest.approx(_quad(pos, 0, vp, 0, vq), rel=1e-8, abs=0)
    assert tv.lower <= tv.value <= tv.upper
    kl = exact_distance(prior, rule, "kl").value
    assert kl == pytest.approx(0.5 * (vq / vp - 1 - math.log(vq / vp)), rel=1e-10, abs=0)
    h = exact_distance(prior, rule, "hellinger").value
    assert h ** 2 == pytest.approx(1 - math.sqrt(2 * math.sqrt(vp * vq) / (vp + vq)), rel=1e-9, abs=0)
    w2 = exact_distance(prior, rule, "w2").value
    assert w2 == pytest.approx(abs(math.sqrt(vp) - math.sqrt(vq)), rel=1e-10, abs=0)


def _tv_2d_gaussian_product(p, q):
    """TV between N(m_p, diag v_p) and N(m_q, diag v_q) in 2-D: for fixed x1 the inner integral
    int (a p2 - b q2)_+ dx2 is a set probability (quadratic inequality), then quad over x1."""
    (mp1, mp2), (vp1, vp2) = p
    (mq1, mq2), (vq1, vq2) = q
    A = 0.5 * (1 / vq2 - 1 / vp2)
    B = mp2 / vp2 - mq2 / vq2
    C0 = 0.5 * (mq2 ** 2 / vq2 - mp2 ** 2 / vp2) + 0.5 * math.log(vq2 / vp2)
    sp, sq = math.sqrt(vp2), math.sqrt(vq2)

    def mass(lo, hi, m, s):
        return ndtr((hi - m) / s) - ndtr((lo - m) / s)

    def inner(x1):
        la, lb = _logpdf(x1, mp1, vp1), _logpdf(x1, mq1, vq1)
        C = C0 - (lb - la)          # {x2 : A x2^2 + B x2 + C > 0}
        if abs(A) < 1e-300:
            if B == 0:
                sets = [(-np.inf, np.inf)] if C > 0 else []
            else:
                r = -C / B
                sets = [(r, np.inf)] if B > 0 else [(-np.inf, r)]
        else:
            disc = B * B - 4 * A * C
            if disc <= 0:
                sets = [(-np.inf, np.inf)] if A > 0 else []
            else:
                qq = -0.5 * (B + math.copysign(math.sqrt(disc), B))
                r1, r2 = sorted([qq / A, C / qq])
                sets = [(r1, r2)] if A < 0 else [(-np.inf, r1), (r2, np.inf)]
        P = sum(mass(lo, hi, mp2, sp) for lo, hi in sets)
        Q = sum(mass(lo, hi, mq2, sq) for lo, hi in sets)
        return max(math.exp(la) * P - math.exp(lb) * Q, 0.0)

    s = math.sqrt(max(vp1, vq1))
    lo, hi = min(mp1, mq1) - 30 * s, max(mp1, mq1) + 30 * s
    pts = np.linspace(lo, hi, 61)
    return sum(quad(inner, a, b, epsabs=1e-14, epsrel=1e-11, limit=200)[0]
               for a, b in zip(pts[:-1], pts[1:]))


@pytest.mark.parametrize("name,T", [("li-sde", 50), ("li-ode", 20)])
def test_product_tv_gauss_d2_vs_nested_quadrature(name, T):
    sched = li_schedule(T)
    lam = np.logspace(-1, 1, 2)
    vp, vq = _gauss_output_by_hand(lam, sched, name)
    ref = _tv_2d_gaussian_product(((0, 0), vp), ((0, 0), vq))
    est = exact_distance(make_prior("gauss", 2), sampler_rule(name, sched), "tv")
    assert est.value == pytest.approx(ref, rel=1e-6, abs=0)
    assert est.lower - 1e-12 <= ref <= est.upper + 1e-12


def test_product_tv_gaussian_coordinates_with_means_vs_nested_quadrature():
    """A product prior of two Gaussians with nonzero means (output means differ from the
    target's: the linear term of L matters)."""
    prior = ProductPrior([[1.0], [1.0]], [[1.5], [-0.7]], [[0.4], [1.8]])
    rule = sampler_rule("li-ode", li_schedule(25))
    from theory.laws.gaussian import gaussian_output
    M, V = gaussian_output([1.5, -0.7], [0.16, 3.24], rule)
    ab1, om1 = rule.schedule.alpha_bar[1], rule.schedule.one_minus_alpha_bar[1]
    mq = math.sqrt(ab1) * np.array([1.5, -0.7])
    vq = ab1 * np.array([0.16, 3.24]) + om1
    ref = _tv_2d_gaussian_product((M, V), (mq, vq))
    est = exact_distance(prior, rule, "tv")
    assert est.value == pytest.approx(ref, rel=1e-6, abs=0)
    assert est.lower - 1e-12 <= ref <= est.upper + 1e-12


def _mc_tv(sample_L, n_batches, rng):
    """Monte Carlo of TV = E_p[(1 - exp(-L))_+] with its standard error."""
    vals = np.concatenate([-np.expm1(-np.clip(sample_L(rng), 0, None)) for _ in range(n_batches)])
    return vals.mean(), vals.std(ddof=1) / math.sqrt(vals.size)


@pytest.mark.parametrize("d", [2, 5])
def test_product_tv_gauss_vs_monte_carlo(d):
    """The FFT product TV for gauss at d = 2, 5 (li-sde, T = 50) must lie inside the 99.9%
    CI of E_p[(1 - e^-L)_+] with x ~ the exact output Gaussian (2e6 draws), L = log p - log q
    in closed form; the reported interval must meet that CI."""
    sched = li_schedule(50)
    lam = np.logspace(-1, 1, d)
    vp, vq = _gauss_output_by_hand(lam, sched, "li-sde")

    def sample_L(rng):
        x = rng.standard_normal((250_000, d)) * np.sqrt(vp)
        return (_logpdf(x, 0, vp) - _logpdf(x, 0, vq)).sum(1)

    mc, se = _mc_tv(sample_L, 8, np.random.default_rng(d))
    est = exact_distance(make_prior("gauss", d), sampler_rule("li-sde", sched), "tv")
    assert abs(est.value - mc) < Z999 * se, (est.value, mc, se)
    assert est.lower <= mc + Z999 * se and est.upper >= mc - Z999 * se


# --------------------------------------------------------------------------------------
# bimodal product TV
# --------------------------------------------------------------------------------------

def _bimodal_factor(rule, level=1):
    (f,) = exact_factors(make_prior("bimodal", 2), rule, level)
    assert f.mult == 2
    return f


@pytest.mark.parametrize("name,T", [("li-sde", 50), ("li-ode", 50), ("li-sde", 200)])
def test_bimodal_d2_tv_vs_2d_quadrature(name, T):
    """0.5 sum_ij |p_i p_j - q_i q_j| dx_i dx_j on the outer product of the 1-D grid law (at
    the default and the doubled resolution) vs the FFT engine and its interval."""
    rule = sampler_rule(name, li_schedule(T))
    prior = make_prior("bimodal", 2)
    vals = []
    for level in (1, 2):
        f = _bimodal_factor(rule, level)
        law = f.law
        p = law.mass
        q = law.dx * np.exp(f.target.logpdf(law.x))
        vals.append(0.5 * np.abs(np.outer(p, p) - np.outer(q, q)).sum())
    fft_same_law = factor_distance(exact_factors(prior, rule, 1), "tv")[0]
    assert fft_same_law == pytest.approx(vals[0], rel=1e-7, abs=0)
    est = exact_distance(prior, rule, "tv")
    assert est.lower <= vals[1] <= est.upper
    assert est.upper - est.lower < 1e-3 * est.value


@pytest.mark.parametrize("name,T", [("li-sde", 50), ("li-ode", 100)])
def test_bimodal_d10_tv_vs_monte_carlo(name, T):
    """d = 10: L = sum of 10 iid L_i, each drawn from the 1-D law on its nodes (weights
    dx_j p_j). The FFT value must lie in the 99.9% CI of the Monte Carlo mean (1e6 draws) and
    the reported interval must meet that CI."""
    rule = sampler_rule(name, li_schedule(T))
    f = _bimodal_factor(rule)
    law = f.law
    L1 = law.logp - f.target.logpdf(law.x)
    w = law.mass / law.mass.sum()

    def sample_L(rng):
        return L1[rng.choice(w.size, size=(250_000, 10), p=w)].sum(1)

    mc, se = _mc_tv(sample_L, 4, np.random.default_rng(10))
    est = exact_distance(make_prior("bimodal", 10), rule, "tv")
    assert abs(est.value - mc) < Z999 * se, (est.value, mc, se)
    assert est.lower <= mc + Z999 * se and est.upper >= mc - Z999 * se


# --------------------------------------------------------------------------------------
# the quadrature path against closed forms, and tensorisation
# --------------------------------------------------------------------------------------

def _fake_gaussian_product(d, m=0.3, s=0.7):
    """A product prior whose coordinates are 2-component mixtures of identical Gaussians:
    the law is Gaussian, but the engine takes the grid / quadrature path."""
    return ProductPrior([[0.5, 0.5]] * d, [[m, m]] * d, [[s, s]] * d), \
        ProductPrior([[1.0]] * d, [[m]] * d, [[s]] * d)


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("metric", ["tv", "kl", "hellinger", "w2"])
def test_quadrature_path_matches_gaussian_closed_form(d, metric):
    rule = sampler_rule("li-ode", li_schedule(50))
    quad_prior, gauss_prior = _fake_gaussian_product(d)
    a = exact_distance(quad_prior, rule, metric)
    b = exact_distance(gauss_prior, rule, metric)
    assert "quadrature" in a.method or "FFT" in a.method or "quantile" in a.method
    assert a.value == pytest.approx(b.value, rel=1e-5 if metric == "tv" else 1e-9, abs=0)
    if metric == "tv":
        assert a.lower <= b.value <= a.upper


@pytest.mark.parametrize("metric", ["kl", "hellinger", "w2"])
def test_quadrature_path_interval_contains_closed_form(metric):
    rule = sampler_rule("li-ode", li_schedule(50))
    quad_prior, gauss_prior = _fake_gaussian_product(1)
    a = exact_distance(quad_prior, rule, metric)
    b = exact_distance(gauss_prior, rule, metric)
    assert a.lower <= b.value <= a.upper


@pytest.mark.parametrize("name", ["li-sde", "li-ode"])
def test_tensorisation_d3(name):
    """Bimodal d = 3 against d = 1: KL triples, 1 - H^2 cubes, W2^2 triples; and a product of
    three distinct coordinates against its three 1-D priors."""
    rule = sampler_rule(name, li_schedule(40))
    one = {m: exact_distance(make_prior("bimodal", 1), rule, m).value
           for m in ("kl", "hellinger", "w2")}
    three = {m: exact_distance(make_prior("bimodal", 3), rule, m).value
             for m in ("kl", "hellinger", "w2")}
    assert three["kl"] == pytest.approx(3 * one["kl"], rel=1e-12, abs=0)
    assert 1 - three["hellinger"] ** 2 == pytest.approx((1 - one["hellinger"] ** 2) ** 3, rel=1e-12, abs=0)
    assert three["w2"] ** 2 == pytest.approx(3 * one["w2"] ** 2, rel=1e-12, abs=0)
    # distinct coordinates
    w = [[0.5, 0.5], [0.3, 0.7], [1.0, 0.0]]
    m = [[-2.0, 2.0], [-1.0, 1.5], [0.4, 0.0]]
    s = [[0.25, 0.25], [0.3, 0.5], [0.8, 1.0]]
    prod = ProductPrior(w, m, s)
    singles = [ProductPrior([w[i]], [m[i]], [s[i]]) for i in range(3)]
    kl = [exact_distance(p, rule, "kl").value for p in singles]
    h = [exact_distance(p, rule, "hellinger").value for p in singles]
    w2 = [exact_distance(p, rule, "w2").value for p in singles]
    assert exact_distance(prod, rule, "kl").value == pytest.approx(sum(kl), rel=1e-12, abs=0)
    assert 1 - exact_distance(prod, rule, "hellinger").value ** 2 == \
        pytest.approx(np.prod([1 - v ** 2 for v in h]), rel=1e-12, abs=0)
    assert exact_distance(prod, rule, "w2").value ** 2 == pytest.approx(
        sum(v ** 2 for v in w2), rel=1e-12, abs=0)
    # TV does not tensorise, but lies between max_i TV_i and 1 - prod_i (1 - TV_i)
    tv = [exact_distance(p, rule, "tv").value for p in singles]
    tv_prod = exact_distance(prod, rule, "tv").value
    assert max(tv) <= tv_prod <= 1 - np.prod([1 - v for v in tv])


def test_unknown_metric_raises():
    rule = sampler_rule("li-sde", li_schedule(20))
    with pytest.raises(ValueError):
        exact_distance(make_prior("bimodal", 1), rule, "tv2")
