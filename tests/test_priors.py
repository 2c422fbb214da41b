"""Priors (THEORY.md section 4): scores against autograd, marginals against Monte Carlo of
the forward process, Tweedie against closed-form / importance-sampled conditional means,
presets against the exact parameters of the spec, and input validation."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from theory.priors import (
    Gaussian,
    GaussianMixture,
    ProductPrior,
    SubspaceMixture,
    make_prior,
)

F64 = torch.float64


# --------------------------------------------------------------------------------------
# test families and an explicit GMM form of each (numpy), used as the second opinion
# --------------------------------------------------------------------------------------

def _spd(rng, d, scale):
    A = rng.standard_normal((d, d))
    return scale * (A @ A.T / d + 0.3 * np.eye(d))


def _orthonormal(rng, d, k):
    Q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return Q


def build(name, device="cpu"):
    """(prior, explicit GMM (w, means, covs) in numpy) for each tested family."""
    rng = np.random.default_rng(1)
    if name == "gmm":
        w = np.array([0.2, 0.5, 0.3])
        mu = rng.standard_normal((3, 3)) * 1.5
        cov = np.stack([_spd(rng, 3, s) for s in (0.3, 0.8, 0.5)])
        return GaussianMixture(w, mu, cov, device=device), (w, mu, cov)
    if name == "gaussian":
        mu = np.array([0.5, -1.0, 2.0])
        cov = _spd(rng, 3, 1.0)
        return Gaussian(mu, cov, device=device), (np.ones(1), mu[None], cov[None])
    if name == "product":
        w = np.array([[0.2, 0.5, 0.3], [0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
        mu = np.array([[-3.0, 0.5, 2.0], [-1.0, 1.0, 0.0], [0.0, 4.0, -4.0]])
        sd = np.array([[0.3, 1.0, 0.1], [0.5, 0.2, 2.0], [1.0, 0.4, 0.6]])
        return ProductPrior(w, mu, sd, device=device), _product_as_gmm(w, mu, sd)
    if name == "subspace":
        w = np.array([0.3, 0.7])
        mu = np.array([[1.5, -1.0], [-1.0, 2.0]])
        cov = np.stack([_spd(rng, 2, 0.2), _spd(rng, 2, 0.5)])
        U = _orthonormal(rng, 4, 2)
        inner = GaussianMixture(w, mu, cov, device=device)
        prior = SubspaceMixture(inner, basis=U, perp_var=0.3)
        P = np.eye(4) - U @ U.T
        return prior, (w, mu @ U.T, np.stack([U @ c @ U.T + 0.3 * P for c in cov]))
    if name == "subspace-preset-marginal":
        # the subspace preset (perp_var = 0, singular) through its marginal at abar = 0.5
        prior = make_prior("subspace", 4, device=device)
        w, mu, cov = _subspace_preset_gmm(4)
        return prior.marginal(0.5), _gmm_marginal((w, mu, cov), 0.5)
    raise KeyError(name)


def _product_as_gmm(w, mu, sd):
    d, K = w.shape
    ws, ms, cs = [], [], []
    for ks in itertools.product(range(K), repeat=d):
        idx = np.arange(d), np.array(ks)
        ws.append(np.prod(w[idx]))
        ms.append(mu[idx])
        cs.append(np.diag(sd[idx] ** 2))
    return np.array(ws), np.array(ms), np.array(cs)


def _subspace_preset_gmm(d):
    """The spec: 4 equal weights, means (+-2, +-2, 0, ..., 0), covs diag(0.25^2, 0.25^2, 0...)."""
    means = np.zeros((4, d))
    for j, (s1, s2) in enumerate(itertools.product((-2.0, 2.0), repeat=2)):
        means[j, :2] = s1, s2
    cov = np.zeros((d, d))
    cov[0, 0] = cov[1, 1] = 0.25 ** 2
    return np.full(4, 0.25), means, np.repeat(cov[None], 4, axis=0)


def _gmm_marginal(gmm, abar):
    w, mu, cov = gmm
    d = mu.shape[1]
    return w, math.sqrt(abar) * mu, abar * cov + (1 - abar) * np.eye(d)


def _gmm_logpdf(gmm, x):
    w, mu, cov = gmm
    comps = [np.log(wk) + multivariate_normal(mk, ck).logpdf(x) for wk, mk, ck in zip(w, mu, cov)
             if wk > 0]
    return logsumexp(np.stack(comps, axis=-1), axis=-1)


def _gmm_posterior_mean(gmm, x, abar):
    """E[X0 | sqrt(abar) X0 + sqrt(1-abar) eps = x] for a GMM, by per-component conditioning."""
    w, mu, cov = gmm
    d = mu.shape[1]
    sa = math.sqrt(abar)
    logr, cond = [], []
    for wk, mk, ck in zip(w, mu, cov):
        C = abar * ck + (1 - abar) * np.eye(d)
        logr.append(np.log(wk) + multivariate_normal(sa * mk, C).logpdf(x))
        gain = sa * ck @ np.linalg.inv(C)                 # Cov(X0, Xt) Var(Xt)^-1
        cond.append(mk + (x - sa * mk) @ gain.T)
    logr = np.stack(logr, -1)
    r = np.exp(logr - logsumexp(logr, axis=-1, keepdims=True))
    return np.einsum("nk,knd->nd", r, np.stack(cond))


FAMILIES = ["gmm", "gaussian", "product", "subspace", "subspace-preset-marginal"]


def _points(prior, n=12, seed=3):
    """Test points spread over the prior's region: samples of a wider law, jittered (drawn on
    the prior's device, whose generator must live there)."""
    g = torch.Generator(device=prior.device).manual_seed(seed)
    x = prior.marginal(0.6).sample(n, generator=g) if not isinstance(prior, SubspaceMixture) \
        else prior.sample(n, generator=g)
    return x + 0.3 * torch.randn(x.shape, generator=g, dtype=F64, device=prior.device)


# --------------------------------------------------------------------------------------
# score, Jacobian and log_prob consistency
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("abar", [1.0, 0.3])
def test_score_is_gradient_of_log_prob(family, abar, device):
    prior, _ = build(family, device)
    if abar < 1:
        prior = prior.marginal(abar)
    x = _points(prior).requires_grad_(True)
    (grad,) = torch.autograd.grad(prior.log_prob(x).sum(), x)
    s = prior.score(x.detach())
    assert s.dtype == F64 and s.device.type == torch.device(device).type
    torch.testing.assert_close(s, grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("abar", [1.0, 0.3])
def test_score_jacobian_is_hessian_of_log_prob(family, abar, device):
    prior, _ = build(family, device)
    if abar < 1:
        prior = prior.marginal(abar)
    x = _points(prior, n=5)
    J = prior.score_jacobian(x)
    for i in range(x.shape[0]):
        H = torch.autograd.functional.hessian(lambda y: prior.log_prob(y[None])[0], x[i])
        Js = torch.autograd.functional.jacobian(lambda y: prior.score(y[None])[0], x[i])
        torch.testing.assert_close(J[i], H, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(J[i], Js, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(J, J.transpose(1, 2), rtol=0, atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_log_prob_matches_explicit_gmm(family):
    prior, gmm = build(family)
    for abar in (1.0, 0.45):
        p = prior.marginal(abar) if abar < 1 else prior
        ref = gmm if abar == 1 else _gmm_marginal(gmm, abar)
        x = _points(p, n=50)
        np.testing.assert_allclose(p.log_prob(x).numpy(), _gmm_logpdf(ref, x.numpy()),
                                   rtol=1e-11, atol=1e-11)


def test_product_score_jacobian_diag():
    prior, _ = build("product")
    x = _points(prior, n=20)
    J = prior.score_jacobian(x)
    torch.testing.assert_close(torch.diagonal(J, dim1=1, dim2=2), prior.score_jacobian_diag(x),
                               rtol=0, atol=0)
    off = J - torch.diag_embed(torch.diagonal(J, dim1=1, dim2=2))
    assert off.abs().max() == 0


# --------------------------------------------------------------------------------------
# marginals against Monte Carlo of the forward process
# --------------------------------------------------------------------------------------

def _noised(prior, abar, n, seed):
    g = torch.Generator().manual_seed(seed)
    x0 = prior.sample(n, generator=g)
    eps = torch.randn(x0.shape, generator=g, dtype=F64)
    return math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps


def test_marginal_1d_cdf_vs_forward_noising():
    """1-D: the CDF of marginal(abar) (integrated from exp(log_prob)) vs the empirical CDF of
    sqrt(abar) X0 + sqrt(1-abar) eps. Tolerance: the DKW bound at false-alarm rate 1e-6,
    sup |F_n - F| <= sqrt(log(2 / 1e-6) / (2 n))."""
    prior = ProductPrior([[0.2, 0.5, 0.3]], [[-3.0, 0.5, 2.0]], [[0.3, 1.0, 0.1]])
    abar, n = 0.4, 100_000
    q = prior.marginal(abar)
    grid = np.linspace(-12, 12, 240_001)
    dens = np.exp(q.log_prob(torch.from_numpy(grid)[:, None]).numpy())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    assert cdf[-1] == pytest.approx(1.0, abs=1e-9)            # normalised density
    xs = np.sort(_noised(prior, abar, n, seed=11)[:, 0].numpy())
    F = np.interp(xs, grid, cdf)
    ecdf_hi = np.arange(1, n + 1) / n
    ks = max(np.max(ecdf_hi - F), np.max(F - (ecdf_hi - 1 / n)))
    assert ks < math.sqrt(math.log(2 / 1e-6) / (2 * n))
    # the same check detects a wrong marginal: the law with abar in place of sqrt(abar)
    wrong = ProductPrior([[0.2, 0.5, 0.3]], abar * torch.tensor([[-3.0, 0.5, 2.0]]),
                         torch.sqrt(abar * torch.tensor([[0.3, 1.0, 0.1]]) ** 2 + 1 - abar))
    dw = np.exp(wrong.log_prob(torch.from_numpy(grid)[:, None]).numpy())
    cw = np.concatenate([[0.0], np.cumsum(0.5 * (dw[1:] + dw[:-1]) * np.diff(grid))])
    assert np.max(np.abs(np.interp(xs, grid, cw) - ecdf_hi)) > 0.05


def _mean_and_se(v):
    """Column means of v (n, m) and their standard errors."""
    return v.mean(0), v.std(0, ddof=1) / math.sqrt(v.shape[0])


@pytest.mark.parametrize("family", ["gmm", "gaussian", "product", "subspace", "subspace-preset"])
def test_marginal_stein_identity_on_noised_samples(family):
    """For X ~ q = marginal(abar): E[s(X)] = 0 and E[s(X) X^T] = -I (integration by parts).
    X is drawn by noising prior samples; every entry must be within 5 standard errors."""
    if family == "subspace-preset":
        prior = make_prior("subspace", 4)
    else:
        prior, _ = build(family)
    abar, n = 0.5, 200_000
    x = _noised(prior, abar, n, seed=5)
    s = prior.marginal(abar).score(x)
    d = x.shape[1]
    stats = torch.cat([s, (s[:, :, None] * x[:, None, :]).reshape(n, d * d)], 1).numpy()
    mean, se = _mean_and_se(stats)
    target = np.concatenate([np.zeros(d), -np.eye(d).ravel()])
    assert np.all(np.abs(mean - target) < 5 * se + 1e-12), np.abs(mean - target) / se


@pytest.mark.parametrize("family", ["gmm", "gaussian", "product", "subspace", "subspace-preset"])
def test_marginal_log_prob_importance_weighted_moments(family):
    """E_q[1], E_q[X], E_q[X X^T] by importance sampling from N(0, 3^2 I) with the weights
    exp(log q - log g) of marginal(abar).log_prob, against the same moments of the noised
    prior samples. Tolerance: 5 combined standard errors per entry."""
    if family == "subspace-preset":
        prior = make_prior("subspace", 4)
    else:
        prior, _ = build(family)
    abar, n = 0.5, 200_000
    q = prior.marginal(abar)
    d = q.dim
    g = torch.Generator().manual_seed(7)
    y = 3.0 * torch.randn(n, d, generator=g, dtype=F64)
    log_g = -0.5 * (y ** 2).sum(1) / 9.0 - d * (math.log(3.0) + 0.5 * math.log(2 * math.pi))
    w = torch.exp(q.log_prob(y) - log_g)

    def feats(z):
        return torch.cat([torch.ones(z.shape[0], 1, dtype=F64), z,
                          (z[:, :, None] * z[:, None, :]).reshape(-1, d * d)], 1)

    m_is, se_is = _mean_and_se((w[:, None] * feats(y)).numpy())
    m_mc, se_mc = _mean_and_se(feats(_noised(prior, abar, n, seed=8)).numpy())
    se = np.sqrt(se_is ** 2 + se_mc ** 2)
    assert abs(m_is[0] - 1) < 5 * se_is[0]                  # log_prob is normalised
    assert np.all(np.abs(m_is[1:] - m_mc[1:]) < 5 * se[1:]), np.abs(m_is - m_mc) / se


def test_gmm_marginal_parameters_vs_noised_moments():
    prior, (w, mu, cov) = build("gmm")
    abar, n = 0.3, 200_000
    x = _noised(prior, abar, n, seed=9).numpy()
    q = prior.marginal(abar)
    np.testing.assert_allclose(q.means.numpy(), math.sqrt(abar) * mu, rtol=1e-14)
    np.testing.assert_allclose(q.covs.numpy(), abar * cov + (1 - abar) * np.eye(3), rtol=1e-14)
    mean = (w[:, None] * math.sqrt(abar) * mu).sum(0)
    second = sum(wk * (abar * ck + (1 - abar) * np.eye(3) + abar * np.outer(mk, mk))
                 for wk, mk, ck in zip(w, mu, cov))
    m_mc, se_m = _mean_and_se(x)
    s_mc, se_s = _mean_and_se((x[:, :, None] * x[:, None, :]).reshape(n, 9))
    assert np.all(np.abs(m_mc - mean) < 5 * se_m)
    assert np.all(np.abs(s_mc - second.ravel()) < 5 * se_s)


# --------------------------------------------------------------------------------------
# Tweedie denoiser
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("abar", [0.9, 0.3, 0.02])
def test_denoise_equals_closed_form_conditional_mean(family, abar):
    prior, gmm = build(family)
    x = _points(prior.marginal(abar), n=40, seed=4)
    ref = _gmm_posterior_mean(gmm, x.numpy(), abar)
    np.testing.assert_allclose(prior.denoise(x, abar).numpy(), ref, rtol=1e-9, atol=1e-10)


def test_denoise_gaussian_formula():
    prior, (_, mu, cov) = build("gaussian")
    abar = 0.4
    x = _points(prior.marginal(abar), n=10).numpy()
    C = abar * cov[0] + (1 - abar) * np.eye(3)
    ref = mu[0] + math.sqrt(abar) * (x - math.sqrt(abar) * mu[0]) @ np.linalg.solve(C, cov[0])
    np.testing.assert_allclose(prior.denoise(torch.from_numpy(x), abar).numpy(), ref,
                               rtol=1e-11, atol=1e-12)


def test_denoise_bimodal_vs_importance_sampling():
    """E[X0 | X_t = x] = E[X0 N(x; sqrt(abar) X0, 1-abar)] / E[N(...)] with X0 ~ prior:
    a self-normalised Monte Carlo estimate; tolerance 5 delta-method standard errors."""
    prior = make_prior("bimodal", 1)
    abar, n = 0.35, 400_000
    x0 = prior.sample(n, generator=torch.Generator().manual_seed(2))[:, 0].numpy()
    xs = np.array([-2.5, -1.0, -0.2, 0.0, 0.15, 0.7, 1.9])
    den = prior.denoise(torch.from_numpy(xs)[:, None], abar)[:, 0].numpy()
    for xi, di in zip(xs, den):
        k = np.exp(-0.5 * (xi - math.sqrt(abar) * x0) ** 2 / (1 - abar))
        est = np.sum(k * x0) / np.sum(k)
        se = math.sqrt(np.mean(k ** 2 * (x0 - est) ** 2)) / np.mean(k) / math.sqrt(n)
        assert abs(est - di) < 5 * se, (xi, est, di, se)


# --------------------------------------------------------------------------------------
# presets: the exact parameters of the spec
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 3, 10])
def test_bimodal_preset_parameters(d):
    p = make_prior("bimodal", d)
    assert isinstance(p, ProductPrior) and p.dim == d
    torch.testing.assert_close(p.weights, torch.full((d, 2), 0.5, dtype=F64), rtol=0, atol=0)
    torch.testing.assert_close(p.means, torch.tensor([[-2.0, 2.0]] * d, dtype=F64), rtol=0, atol=0)
    torch.testing.assert_close(p.stds, torch.full((d, 2), 0.25, dtype=F64), rtol=0, atol=0)
    x = np.linspace(-3, 3, 13)
    ref = np.log(0.5 * np.exp(-0.5 * ((x + 2) / 0.25) ** 2) + 0.5 * np.exp(-0.5 * ((x - 2) / 0.25) ** 2)) \
        - math.log(0.25 * math.sqrt(2 * math.pi))
    pts = torch.from_numpy(np.repeat(x[:, None], d, axis=1))
    np.testing.assert_allclose(p.log_prob(pts).numpy(), d * ref, rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5, 16])
def test_gauss_preset_parameters(d):
    """N(0, diag(lambda)), lambda log-spaced from 0.1 to 10 (lambda = 1 at d = 1). Checked
    through the law (log density, score, second moments), whatever class stores it."""
    p = make_prior("gauss", d)
    assert p.dim == d
    lam = np.array([1.0]) if d == 1 else 10.0 ** np.linspace(-1, 1, d)
    if d > 1:
        assert lam[0] == pytest.approx(0.1) and lam[-1] == pytest.approx(10.0)
    rng = np.random.default_rng(d)
    x = rng.normal(0, 2, (50, d))
    ref = multivariate_normal(np.zeros(d), np.diag(lam)).logpdf(x).reshape(-1)
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(p.log_prob(xt).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(p.score(xt).numpy(), -x / lam, rtol=1e-12)
    np.testing.assert_allclose(p.score_jacobian(xt).numpy(),
                               np.broadcast_to(-np.diag(1 / lam), (50, d, d)), rtol=1e-12, atol=0)
    if isinstance(p, Gaussian):
        np.testing.assert_allclose(p.cov.numpy(), np.diag(lam), rtol=1e-13, atol=0)
    else:
        assert isinstance(p, ProductPrior) and p.weights.shape[1] == 1
        np.testing.assert_allclose(p.stds[:, 0].numpy() ** 2, lam, rtol=1e-13)
        assert torch.all(p.means == 0)


@pytest.mark.parametrize("d", [2, 3, 6])
def test_subspace_preset_is_the_explicit_4_component_gmm(d):
    p = make_prior("subspace", d)
    assert p.dim == d and p.k == 2 and p.perp_var == 0
    w, mu, cov = _subspace_preset_gmm(d)
    explicit = GaussianMixture(w, mu, cov)         # singular covariances (d > 2)
    rng = np.random.default_rng(d)
    x = torch.from_numpy(rng.normal(0, 2, (200, d)))
    for abar in (0.5, 0.9):
        a, b = p.marginal(abar), explicit.marginal(abar)
        torch.testing.assert_close(a.log_prob(x), b.log_prob(x), rtol=1e-11, atol=1e-11)
        torch.testing.assert_close(a.score(x), b.score(x), rtol=1e-10, atol=1e-11)
        torch.testing.assert_close(a.score_jacobian(x), b.score_jacobian(x), rtol=1e-9,
                                   atol=1e-10)
    np.testing.assert_allclose(p.marginal(0.5).log_prob(x).numpy(),
                               _gmm_logpdf(_gmm_marginal((w, mu, cov), 0.5), x.numpy()),
                               rtol=1e-11)
    # samples lie on the plane, with the four modes at (+-2, +-2) equally likely
    s = p.sample(40_000, generator=torch.Generator().manual_seed(0)).numpy()
    assert np.all(s[:, 2:] == 0)
    quad = (s[:, 0] > 0) * 2 + (s[:, 1] > 0)
    frac = np.bincount(quad, minlength=4) / s.shape[0]
    assert np.all(np.abs(frac - 0.25) < 5 * math.sqrt(0.25 * 0.75 / s.shape[0]))


def test_gmm_preset_recipe_and_reproducibility():
    d = 4
    a, b = make_prior("gmm", d, seed=3), make_prior("gmm", d, seed=3)
    for key in ("weights", "means", "covs"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key), rtol=0, atol=0)
    c = make_prior("gmm", d, seed=4)
    assert not torch.allclose(a.means, c.means)
    # the documented recipe, redrawn here
    g = torch.Generator().manual_seed(3)
    means = 2.0 * torch.randn(8, d, generator=g, dtype=F64)
    A = torch.randn(8, d, d, generator=g, dtype=F64)
    covs = 0.01 * torch.eye(d, dtype=F64) + 0.04 * A @ A.transpose(-1, -2) / d
    torch.testing.assert_close(a.weights, torch.full((8,), 0.125, dtype=F64), rtol=0, atol=0)
    torch.testing.assert_close(a.means, means, rtol=0, atol=0)
    torch.testing.assert_close(a.covs, covs, rtol=1e-15, atol=1e-15)
    assert torch.linalg.eigvalsh(a.covs).min() >= 0.01 - 1e-12


def test_make_prior_rejects_unknown_and_bad_dims():
    with pytest.raises(ValueError):
        make_prior("laplace", 3)
    for d in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            make_prior("bimodal", d)
    with pytest.raises(ValueError):
        make_prior("subspace", 1)


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------

I2 = np.eye(2)


@pytest.mark.parametrize("w,mu,cov", [
    ([-0.2, 1.2], [[0, 0], [1, 1]], [I2, I2]),                 # negative weight
    ([0.3, 0.6], [[0, 0], [1, 1]], [I2, I2]),                  # weights do not sum to 1
    ([0.5, 0.5], [[0, 0], [1, 1]], [I2, [[1, 2], [2, 1]]]),    # not PSD
    ([0.5, 0.5], [[0, 0], [1, 1]], [I2, [[1, 0.5], [0, 1]]]),  # not symmetric
    ([0.5, 0.5], [[0, 0, 0], [1, 1, 1]], [I2, I2]),            # cov / mean dimension mismatch
    ([0.5, 0.5], [[0, 0]], [I2, I2]),                          # means for one component only
    ([0.5, 0.5], [[0, float("nan")], [1, 1]], [I2, I2]),       # NaN
    ([0.5, float("nan")], [[0, 0], [1, 1]], [I2, I2]),         # NaN weight
    ([[0.5, 0.5]], [[0, 0], [1, 1]], [I2, I2]),                # weights of the wrong rank
    ([0.5, 0.5], [[0, 0], [1, 1]], [I2, np.full((2, 2), np.inf)]),
])
def test_gaussian_mixture_rejects_bad_parameters(w, mu, cov):
    with pytest.raises(ValueError):
        GaussianMixture(w, mu, np.array(cov, dtype=float))


def test_other_families_reject_bad_parameters():
    with pytest.raises(ValueError):
        Gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError):
        Gaussian([[0.0, 0.0]], I2)
    with pytest.raises(ValueError):
        Gaussian([0.0, 0.0, 0.0], I2)
    ok = dict(weights=[[0.5, 0.5]], means=[[-1.0, 1.0]], stds=[[0.5, 0.5]])
    for key, bad in [("weights", [[0.7, 0.7]]), ("weights", [[-0.5, 1.5]]),
                     ("stds", [[-0.5, 0.5]]), ("means", [[-1.0, 1.0, 0.0]]),
                     ("means", [[float("nan"), 1.0]]), ("stds", [0.5, 0.5])]:
        with pytest.raises(ValueError):
            ProductPrior(**{**ok, key: bad})
    inner = make_prior("bimodal", 2)
    with pytest.raises(ValueError):
        SubspaceMixture(inner, basis=np.array([[1.0, 1.0], [0, 1.0], [0, 0]]))   # not orthonormal
    with pytest.raises(ValueError):
        SubspaceMixture(inner, dim=3, perp_var=-0.1)
    with pytest.raises(ValueError):
        SubspaceMixture(inner, dim=3, perp_var=float("nan"))
    with pytest.raises(ValueError):
        SubspaceMixture(inner, dim=1)
    with pytest.raises(ValueError):
        SubspaceMixture(inner)
    with pytest.raises(ValueError):
        SubspaceMixture(inner, basis=np.eye(3)[:, :1])         # wrong number of columns


@pytest.mark.parametrize("abar", [0.0, -0.1, 1.5, float("nan")])
def test_marginal_rejects_bad_noise_level(abar):
    for name in ("bimodal", "gauss", "subspace", "gmm"):
        with pytest.raises(ValueError):
            make_prior(name, 3).marginal(abar)
        with pytest.raises(ValueError):
            make_prior(name, 3).denoise(torch.zeros(1, 3, dtype=F64), abar)


def test_densities_that_do_not_exist_raise():
    sub = make_prior("subspace", 3)
    x = torch.zeros(2, 3, dtype=F64)
    with pytest.raises(ValueError):
        sub.log_prob(x)
    with pytest.raises(ValueError):
        sub.score(x)
    w, mu, cov = _subspace_preset_gmm(3)
    with pytest.raises(ValueError):
        GaussianMixture(w, mu, cov).log_prob(x)
    point = ProductPrior([[0.5, 0.5]], [[-1.0, 1.0]], [[0.0, 0.5]])
    with pytest.raises(ValueError):
        point.log_prob(torch.zeros(2, 1, dtype=F64))
    # ... while the marginals exist
    assert torch.isfinite(point.marginal(0.5).log_prob(torch.zeros(2, 1, dtype=F64))).all()
    with pytest.raises(ValueError):                              # wrong point dimension
        make_prior("gauss", 3).log_prob(torch.zeros(2, 4, dtype=F64))


# --------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES + ["gmm-preset"])
def test_same_seed_same_samples(family, device, device_generator):
    prior = make_prior("gmm", 3, device=device) if family == "gmm-preset" else build(family, device)[0]
    a = prior.sample(500, generator=device_generator)
    b = prior.sample(500, generator=torch.Generator(device=device).manual_seed(0))
    c = prior.sample(500, generator=torch.Generator(device=device).manual_seed(1))
    assert a.shape == (500, prior.dim) and a.dtype == F64 and a.device.type == device
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("family", ["gmm", "gaussian", "product", "subspace"])
def test_sample_moments_match_parameters(family, generator):
    prior, (w, mu, cov) = build(family)
    n = 200_000
    x = prior.sample(n, generator=generator).numpy()
    mean = (w[:, None] * mu).sum(0)
    second = sum(wk * (ck + np.outer(mk, mk)) for wk, mk, ck in zip(w, mu, cov))
    m_mc, se_m = _mean_and_se(x)
    d = x.shape[1]
    s_mc, se_s = _mean_and_se((x[:, :, None] * x[:, None, :]).reshape(n, d * d))
    assert np.all(np.abs(m_mc - mean) < 5 * se_m)
    assert np.all(np.abs(s_mc - second.ravel()) < 5 * se_s + 1e-12)
