"""DPnP (Xu & Chi, arXiv:2403.17042) and DPS (Chung et al. 2023) against exact answers.

Tolerances: Monte Carlo checks use n independent chains and either a KS test (p > 1e-3, a
false alarm once in a thousand runs; the seeds are fixed, so a pass is reproducible) or a
moment bound of 5 standard errors. Grid checks use the refinement error of
theory.posterior (quadrature of smooth Gaussian-tailed integrands: the kernel, pi_eta
and the posterior agree with closed forms to ~1e-12; TVs, integrals of |p - q| with kinks,
converge as h^2).
"""
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from experiments.cli.main import main
from theory.posterior.annealing import make_annealing, parse_annealing
from theory.posterior.closed_form import (
    as_gmm,
    pi_eta_closed_form,
    posterior_closed_form,
    to_mixture1d,
)
from theory.posterior.dps import run_dps
from theory.posterior.estimators import binned_tv
from theory.posterior.grid1d import Grid1D
from theory.posterior.grid_base import tv_masses
from theory.posterior.inits import init_samples
from theory.posterior.likelihoods import (
    LinearGaussian,
    LogisticQuantisation,
    PhaseRetrieval,
    make_likelihood,
    make_operator,
)
from theory.posterior.plug_and_play import (
    DDSConfig,
    PCSConfig,
    dds_exact,
    dds_ode,
    dds_sde,
    pcs_exact,
    pcs_langevin,
    run_dpnp,
)
from theory.posterior.refinement import grid_refinement
from theory.priors import make_prior

pytestmark = pytest.mark.usefixtures("one_thread")


def bimodal_gauss(y=0.7, sigma=0.5):
    return make_prior("bimodal", 1), LinearGaussian(torch.eye(1), [y], sigma)


def grid_cdf(grid, mass):
    """CDF of a grid law (mass of cell i spread uniformly over [x_i - h/2, x_i + h/2])."""
    edges = np.concatenate([[grid.x[0] - grid.h / 2], grid.x + grid.h / 2])
    F = np.concatenate([[0.0], np.cumsum(mass)])
    return lambda t: np.interp(t, edges, F)


# --------------------------------------------------------------------------------------
# Likelihoods
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,y", [(LinearGaussian, [0.3, -1.0, 2.0]),
                                   (PhaseRetrieval, [0.3, 1.0, 2.0]),
                                   (LogisticQuantisation, [1.0, -1.0, 1.0])])
def test_likelihood_gradients_match_autograd(cls, y, generator):
    A = make_operator("random", 2, m=3, cond=5.0, generator=generator)
    lik = cls(A, y, 0.4)
    x = torch.randn(7, 2, dtype=torch.float64, generator=generator, requires_grad=True)
    g, = torch.autograd.grad(lik.log_lik(x).sum(), x)
    torch.testing.assert_close(lik.grad(x.detach()), g, rtol=1e-12, atol=1e-12)
    g, = torch.autograd.grad(lik.dps_loss(x).sum(), x)
    torch.testing.assert_close(lik.dps_loss_grad(x.detach()), g, rtol=1e-12, atol=1e-12)


def test_operators(generator):
    A = make_operator("random", 4, m=6, cond=30.0, generator=generator)
    s = torch.linalg.svdvals(A)
    assert s.shape == (4,) and math.isclose(float(s[0] / s[-1]), 30.0, rel_tol=1e-10)
    M = make_operator("mask", 5, keep=[0, 3])
    assert M.shape == (2, 5) and LinearGaussian(M, [0.0, 1.0], 1.0).diagonal
    with pytest.raises(ValueError):
        make_operator("blur", 3)
    with pytest.raises(ValueError):
        LogisticQuantisation(torch.eye(1), [0.5], 0.4)


def test_gaussian_log_lik_is_normalised():
    lik = LinearGaussian(torch.eye(1), [0.7], 0.5)
    y = np.linspace(-6, 6, 4001)
    dens = [math.exp(float(lik.with_y([v]).log_lik(torch.tensor([[0.2]])))) for v in y]
    assert abs(np.trapezoid(dens, y) - 1) < 1e-9


# --------------------------------------------------------------------------------------
# Closed forms vs grids
# --------------------------------------------------------------------------------------

def test_closed_form_posterior_and_pi_eta_match_grid():
    prior, lik = bimodal_gauss()
    eta = 0.3
    g = Grid1D(prior, lik, eta_max=eta)
    post = to_mixture1d(posterior_closed_form(prior, lik))
    pie = to_mixture1d(pi_eta_closed_form(prior, lik, eta))
    assert tv_masses(g.posterior(), np.exp(post.logpdf(g.x)) * g.h) < 1e-12
    assert tv_masses(g.pi_eta(eta), np.exp(pie.logpdf(g.x)) * g.h) < 1e-12
    # direct check of the closed form: posterior weight of the + mode
    v = 0.25 ** 2 + 0.5 ** 2
    wp = stats.norm.pdf(0.7, 2, math.sqrt(v)) / (stats.norm.pdf(0.7, 2, math.sqrt(v))
                                                 + stats.norm.pdf(0.7, -2, math.sqrt(v)))
    assert math.isclose(post.w[np.argmax(post.m)], wp, rel_tol=1e-12)
    # pi_eta = posterior with sigma^2 -> sigma^2 + eta^2 (A = I)
    lik2 = LinearGaussian(torch.eye(1), [0.7], math.sqrt(0.25 + eta ** 2))
    alt = to_mixture1d(posterior_closed_form(prior, lik2))
    np.testing.assert_allclose(np.sort(alt.m), np.sort(pie.m), rtol=1e-12)


def test_closed_form_2d_random_operator_matches_bayes(generator):
    prior = make_prior("gmm", 2, seed=3)
    A = make_operator("random", 2, m=2, cond=4.0, generator=generator)
    lik = LinearGaussian(A, [0.5, -0.3], 0.3)
    post = posterior_closed_form(prior, lik)
    x = torch.randn(20, 2, dtype=torch.float64, generator=generator)
    # log posterior - log prior - log lik must be a constant (the evidence)
    diff = post.log_prob(x) - prior.log_prob(x) - lik.log_lik(x)
    assert float(diff.max() - diff.min()) < 1e-10
    eta = 0.4
    pie = pi_eta_closed_form(prior, lik, eta)
    R = 0.09 * torch.eye(2, dtype=torch.float64) + eta ** 2 * A @ A.T
    r = torch.as_tensor([0.5, -0.3], dtype=torch.float64) - x @ A.T
    logN = -0.5 * (r * torch.linalg.solve(R, r.T).T).sum(1)
    diff = pie.log_prob(x) - prior.log_prob(x) - logN
    assert float(diff.max() - diff.min()) < 1e-10


def test_product_prior_as_gmm():
    p = make_prior("bimodal", 2)
    g = as_gmm(p)
    x = torch.randn(10, 2, dtype=torch.float64)
    torch.testing.assert_close(g.log_prob(x), p.log_prob(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("likname", ["gaussian", "phase", "logistic"])
def test_grid_kernel_stationary_law_is_pi_eta(likname):
    prior = make_prior("bimodal", 1)
    lik = {"gaussian": LinearGaussian(torch.eye(1), [0.7], 0.5),
           "phase": PhaseRetrieval(torch.eye(1), [1.5], 0.5),
           "logistic": LogisticQuantisation(torch.eye(1), [1.0], 0.4)}[likname]
    eta = 0.8
    g = Grid1D(prior, lik, eta_max=eta)
    assert tv_masses(g.stationary(eta), g.pi_eta(eta)) < 1e-10
    ev = g.spectrum(eta, 3)
    assert abs(ev[0] - 1) < 1e-12 and np.all(np.abs(ev.imag) < 1e-10)
    assert 0 < ev[1].real < 1


def test_grid_refinement_error_shrinks():
    prior, lik = bimodal_gauss()
    etas = [0.5] * 4
    fine, coarse, err = grid_refinement(prior, lik, etas, h=0.025)
    _, _, err2 = grid_refinement(prior, lik, etas, h=0.0125)
    for k in range(4):
        assert err["tv_pi"][k] < 1e-4 and err["tv_post"][k] < 1e-4
        assert err2["tv_pi"][k] < err["tv_pi"][k] / 4 + 1e-12
    assert all(e < 1e-10 for e in err["rates"].values())


# --------------------------------------------------------------------------------------
# Sub-samplers
# --------------------------------------------------------------------------------------

def test_pcs_exact_moments(generator):
    lik = LinearGaussian(make_operator("random", 2, cond=3.0, generator=generator), [0.4, -0.2], 0.5)
    x = torch.tensor([[1.0, -1.0]], dtype=torch.float64).repeat(40000, 1)
    eta = 0.3
    z = pcs_exact(lik, x, eta, generator)
    P = lik.A.T @ lik.A / 0.25 + torch.eye(2, dtype=torch.float64) / eta ** 2
    C = torch.linalg.inv(P)
    m = C @ (lik.A.T @ lik.y / 0.25 + x[0] / eta ** 2)
    se = (torch.diagonal(C) / 40000).sqrt()
    assert torch.all((z.mean(0) - m).abs() < 5 * se)
    emp = torch.cov(z.T)
    assert torch.allclose(emp, C, atol=5 * float(C.abs().max()) * math.sqrt(2 / 40000))


def test_dds_exact_matches_closed_form(generator):
    prior = make_prior("bimodal", 1)
    eta = 0.5
    z0 = 0.3
    x = dds_exact(prior, torch.full((20000, 1), z0, dtype=torch.float64), eta, generator)
    # denoising posterior = posterior for A = I, sigma = eta
    law = to_mixture1d(posterior_closed_form(prior, LinearGaussian(torch.eye(1), [z0], eta)))
    assert stats.kstest(x[:, 0].numpy(), law.cdf).pvalue > 1e-3


def test_dds_exact_gmm_2d(generator):
    prior = make_prior("gmm", 2, seed=1)
    eta, z0 = 0.4, torch.tensor([0.5, -1.0], dtype=torch.float64)
    x = dds_exact(prior, z0.repeat(40000, 1), eta, generator)
    law = posterior_closed_form(prior, LinearGaussian(torch.eye(2), z0, eta))
    mean = (law.weights[:, None] * law.means).sum(0)
    cov = (law.weights[:, None, None] * (law.covs + law.means[:, :, None] * law.means[:, None, :])).sum(0) \
        - mean[:, None] * mean[None, :]
    se = (torch.diagonal(cov) / 40000).sqrt()
    assert torch.all((x.mean(0) - mean).abs() < 5 * se)


def test_mala_converges_to_pcs_target(generator):
    prior, lik = bimodal_gauss()
    eta = 0.3
    x = torch.full((20000, 1), 1.5, dtype=torch.float64)
    z, info = pcs_langevin(lik, x, eta, n_steps=200, metropolis=True, generator=generator,
                           return_info=True)
    P = 1 / 0.25 + 1 / eta ** 2
    m, sd = (0.7 / 0.25 + 1.5 / eta ** 2) / P, math.sqrt(1 / P)
    assert stats.kstest(z[:, 0].numpy(), stats.norm(m, sd).cdf).pvalue > 1e-3
    assert 0.5 < info["acceptance"] <= 1


def test_mala_nonlinear_matches_grid_pcs(generator):
    prior = make_prior("bimodal", 1)
    lik = LogisticQuantisation(torch.eye(1), [1.0], 0.4)
    eta, x0 = 0.5, -0.4
    g = Grid1D(prior, lik, eta_max=eta)
    row = g.pcs_matrix(eta, np.array([x0]))[0]
    edges = np.concatenate([[g.z[0] - g.h / 2], g.z + g.h / 2])
    F = np.concatenate([[0.0], np.cumsum(row)])
    z = pcs_langevin(lik, torch.full((20000, 1), x0, dtype=torch.float64), eta, n_steps=200,
                     metropolis=True, generator=generator)
    assert stats.kstest(z[:, 0].numpy(), lambda t: np.interp(t, edges, F)).pvalue > 1e-3


def test_ula_is_biased_and_mala_is_not(generator):
    """A large step: ULA leaves a visible bias in the variance, MALA none."""
    lik = LinearGaussian(torch.eye(1), [0.0], 0.1)
    eta = 1.0
    x = torch.zeros(40000, 1, dtype=torch.float64)
    v_true = 1 / (1 / 0.01 + 1)
    zu = pcs_langevin(lik, x, eta, step=0.015, n_steps=100, metropolis=False, generator=generator)
    zm = pcs_langevin(lik, x, eta, step=0.015, n_steps=100, metropolis=True, generator=generator)
    se = v_true * math.sqrt(2 / 40000)
    assert abs(float(zm.var()) - v_true) < 5 * se
    assert abs(float(zu.var()) - v_true) > 20 * se


@pytest.mark.parametrize("which", ["sde", "ode"])
def test_dds_diffusion_converges_to_exact(which, generator):
    prior = make_prior("bimodal", 1)
    eta, z0 = 0.4, 0.2
    law = to_mixture1d(posterior_closed_form(prior, LinearGaussian(torch.eye(1), [z0], eta)))
    z = torch.full((20000, 1), z0, dtype=torch.float64)
    fn = dds_sde if which == "sde" else dds_ode
    errs = []
    for n_steps in (10, 200):
        x = fn(prior, z, eta, n_steps=n_steps, generator=generator)[:, 0].numpy()
        errs.append(stats.kstest(x, law.cdf).statistic)
    assert errs[1] < errs[0] / 2
    assert errs[1] < 0.02
    # the weight of the + mode: Monte Carlo sd 0.0011, discretisation at 200 steps ~0.003
    wp = law.w[np.argmax(law.m)]
    assert abs((x > 0).mean() - wp) < 0.01


def test_dds_ode_is_deterministic_given_its_noise():
    prior = make_prior("bimodal", 1)
    z = torch.full((5, 1), 0.1, dtype=torch.float64)
    a = dds_ode(prior, z, 0.4, n_steps=20, generator=torch.Generator().manual_seed(3))
    b = dds_ode(prior, z, 0.4, n_steps=20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.std() > 0


# --------------------------------------------------------------------------------------
# DPnP: kernel laws vs the actual sampler; rates
# --------------------------------------------------------------------------------------

def test_law_of_xk_matches_monte_carlo(generator):
    prior, lik = bimodal_gauss(y=0.3, sigma=0.5)
    eta = 1.0
    sched = make_annealing("constant", 4, eta=eta)
    g = Grid1D(prior, lik, eta_max=eta)
    laws = g.laws(sched.etas, "standard-normal")
    x0 = init_samples("standard-normal", prior, 20000, generator)
    res = run_dpnp(prior, lik, sched, x0, generator=generator)
    for k in range(4):
        p = stats.kstest(res.samples[k][:, 0].numpy(), grid_cdf(g, laws[k])).pvalue
        assert p > 1e-3, (k, p)


def test_law_of_xk_annealed_nonlinear_matches_monte_carlo(generator):
    """Annealed schedule, 1-bit likelihood, MALA with many steps (exact up to MCMC error)."""
    prior = make_prior("bimodal", 1)
    lik = LogisticQuantisation(torch.eye(1), [1.0], 0.4)
    sched = make_annealing("list", etas=[1.0, 0.7, 0.5])
    g = Grid1D(prior, lik, eta_max=1.0, eta_min=0.5)
    laws = g.laws(sched.etas, "point:-1.0")
    x0 = init_samples("point:-1.0", prior, 10000, generator)
    res = run_dpnp(prior, lik, sched, x0, pcs=PCSConfig("mala", 100), generator=generator)
    for k in range(3):
        assert stats.kstest(res.samples[k][:, 0].numpy(), grid_cdf(g, laws[k])).pvalue > 1e-3


def test_geometric_decay_matches_second_eigenvalue():
    prior, lik = bimodal_gauss()
    eta = 0.8
    g = Grid1D(prior, lik, eta_max=eta)
    r = g.run([eta] * 20)
    lam2 = r.rates[eta]
    tv = np.asarray(r.tv_pi)
    assert tv[-1] > 1e-9                           # well above rounding
    ratio = tv[-1] / tv[-2]
    assert abs(ratio - lam2) < 1e-3 * lam2
    # over 10 steps the decay is lambda_2^10 to 1%
    assert abs(tv[-1] / tv[-11] / lam2 ** 10 - 1) < 1e-2


def test_same_seed_same_numbers():
    prior, lik = bimodal_gauss()
    sched = make_annealing("reference")
    out = []
    for _ in range(2):
        g = torch.Generator().manual_seed(11)
        x0 = init_samples("standard-normal", prior, 50, g)
        out.append(run_dpnp(prior, lik, sched, x0, pcs=PCSConfig("ula", 5),
                            dds=DDSConfig("sde", 5), generator=g).final)
    assert torch.equal(out[0], out[1])


# --------------------------------------------------------------------------------------
# Annealing schedules
# --------------------------------------------------------------------------------------

def test_annealing_schedules():
    ref = make_annealing("reference")
    assert ref.K == 16 and np.all(ref.etas[:5] == 0.4) and math.isclose(ref.etas[-1], 0.16)
    assert np.allclose(np.diff(np.log(ref.etas[4:])), math.log(0.4 / 0.16) / -11)
    geo = parse_annealing("geometric:1,0.1", 5)
    np.testing.assert_allclose(geo.etas, [1, 10 ** -0.25, 10 ** -0.5, 10 ** -0.75, 0.1])
    pol = parse_annealing("polynomial:1,0.3,1", 5)
    np.testing.assert_allclose(pol.etas, [1, 0.5, 1 / 3, 0.3, 0.3])
    assert parse_annealing("list:0.5,0.2").K == 2
    assert parse_annealing("constant:0.3", 4).constant
    for bad in ["bogus", "constant:-1", "list:", "reference:0.4,0.1,4,12,5"]:
        with pytest.raises(ValueError):
            parse_annealing(bad, 3)
    with pytest.raises(ValueError):
        make_annealing("reference", 10)


# --------------------------------------------------------------------------------------
# DPS
# --------------------------------------------------------------------------------------

def test_dps_without_guidance_samples_the_prior(generator):
    prior, lik = bimodal_gauss()
    x = run_dps(prior, lik, 20000, T=200, zeta=0.0, generator=generator).samples[:, 0].numpy()
    mix = to_mixture1d(as_gmm(prior))
    assert stats.kstest(x, mix.cdf).statistic < 0.02


def test_dps_is_biased_against_the_exact_posterior(generator):
    """DPS concentrates on the likelier mode far more than the posterior does."""
    prior, lik = bimodal_gauss(y=0.0, sigma=1.0)      # symmetric: posterior weights 1/2
    lik = LinearGaussian(torch.eye(1), [0.3], 1.0)
    post = to_mixture1d(posterior_closed_form(prior, lik))
    x = run_dps(prior, lik, 20000, T=200, zeta=1.0, generator=generator).samples[:, 0].numpy()
    g = Grid1D(prior, lik, eta_max=0.5)
    tv = binned_tv(x, g.x, g.posterior())
    assert tv.lower > tv.floor_q95       # a bias well above the estimator's floor
    assert stats.kstest(x, post.cdf).pvalue < 1e-6


# --------------------------------------------------------------------------------------
# Sample-based estimator
# --------------------------------------------------------------------------------------

def test_binned_tv_floor_and_ci():
    x = np.arange(-6, 6, 0.03)
    m = np.exp(-x ** 2 / 2)
    m /= m.sum()
    rng = np.random.default_rng(1)
    exact = binned_tv(rng.standard_normal(50000), x, m)
    assert exact.value < 2 * exact.floor_q95
    shifted = binned_tv(rng.standard_normal(50000) + 0.2, x, m)
    true = math.erf(0.2 / (2 * math.sqrt(2)))
    assert shifted.lower <= true + 0.005 and shifted.upper >= true - 0.01
    assert shifted.ks_lower <= true


# --------------------------------------------------------------------------------------
# The CLI: agreement with an independent computation
# --------------------------------------------------------------------------------------

def independent_tv_curves(y, sigma, eta, K):
    """Law of x_k for bimodal / gaussian identity likelihood, from closed-form PCS (Gaussian)
    and DDS (two-component posterior) densities, trapezoid rule on its own grid."""
    s2, e2 = 0.25 ** 2, eta ** 2
    x = np.linspace(-7, 7, 4201)
    dx = x[1] - x[0]
    # PCS: z | x ~ N((y/sigma^2 + x/eta^2)/P, 1/P)
    P = 1 / sigma ** 2 + 1 / e2
    pcs = stats.norm.pdf(x[None, :], (y / sigma ** 2 + x[:, None] / e2) / P, math.sqrt(1 / P))
    # DDS: x' | z: mixture over the two modes of the denoising posterior
    dds = np.zeros((x.size, x.size))
    wts = []
    for mu in (-2.0, 2.0):
        wts.append(0.5 * stats.norm.pdf(x, mu, math.sqrt(s2 + e2)))
    tot = wts[0] + wts[1]
    for mu, w in zip((-2.0, 2.0), wts):
        mean = mu + s2 / (s2 + e2) * (x - mu)
        sd = math.sqrt(s2 * e2 / (s2 + e2))
        dds += (w / tot)[:, None] * stats.norm.pdf(x[None, :], mean[:, None], sd)
    trap = np.full(x.size, dx)
    trap[[0, -1]] = dx / 2
    f = stats.norm.pdf(x)                               # x_0 ~ N(0, 1)
    post = to_mixture1d(posterior_closed_form(make_prior("bimodal", 1),
                                              LinearGaussian(torch.eye(1), [y], sigma)))
    pie = to_mixture1d(pi_eta_closed_form(make_prior("bimodal", 1),
                                          LinearGaussian(torch.eye(1), [y], sigma), eta))
    fp, fpi = np.exp(post.logpdf(x)), np.exp(pie.logpdf(x))
    out_pi, out_post = [], []
    for _ in range(K):
        zdens = (f * trap) @ pcs
        f = (zdens * trap) @ dds
        out_pi.append(0.5 * np.sum(trap * np.abs(f - fpi)))
        out_post.append(0.5 * np.sum(trap * np.abs(f - fp)))
    return np.array(out_pi), np.array(out_post)


@pytest.mark.parametrize("eta,K", [(0.3, 30), (1.0, 12)])
def test_cli_json_agrees_with_independent_computation(capsys, eta, K):
    rc = main(["dpnp", "--prior", "bimodal", "--d", "1", "--likelihood", "gaussian", "--sigma",
               "0.5", "--y", "0.7", "--eta", str(eta), "--K", str(K), "--pcs", "exact", "--dds",
               "exact", "--init", "standard-normal", "--metric", "tv", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    ind_pi, ind_post = independent_tv_curves(0.7, 0.5, eta, K)
    got_pi = np.array([r["to_pi_eta"]["value"] for r in out["per_k"]])
    got_post = np.array([r["to_posterior"]["value"] for r in out["per_k"]])
    tol = lambda v: np.maximum(0.01 * np.abs(v), 1e-6)  # noqa: E731
    assert np.all(np.abs(got_pi - ind_pi) <= tol(ind_pi)), np.abs(got_pi - ind_pi) / ind_pi
    assert np.all(np.abs(got_post - ind_post) <= tol(ind_post))
    assert out["config"]["eta"] == eta and "provenance" in out
    rate = out["exact_rate"][0]["value"]
    md = out["measured_decay"]["rate"]
    assert abs(md - rate) < 1e-3 * rate
    r = out["tv_pi_eta_posterior"][0]["value"]
    post = to_mixture1d(posterior_closed_form(*bimodal_gauss()))
    pie = to_mixture1d(pi_eta_closed_form(*bimodal_gauss(), eta))
    xs = np.linspace(-7, 7, 20001)
    ref = 0.5 * np.trapezoid(np.abs(np.exp(post.logpdf(xs)) - np.exp(pie.logpdf(xs))), xs)
    assert abs(r - ref) < 1e-4


def test_cli_product_denoising_d10(capsys):
    rc = main(["dpnp", "--d", "10", "--y", "0.7", "--eta", "1.0", "--K", "3", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    # 10 identical coordinates: TV >= the 1-D TV and <= 10 x the 1-D TV
    rc = main(["dpnp", "--d", "1", "--y", "0.7", "--eta", "1.0", "--K", "3", "--json"])
    one = json.loads(capsys.readouterr().out)
    for a, b in zip(out["per_k"], one["per_k"]):
        v10, v1 = a["to_pi_eta"]["value"], b["to_pi_eta"]["value"]
        assert v1 - 1e-6 <= v10 <= min(1.0, 10 * v1) + 1e-6


def test_cli_sample_based_reports_floor(capsys):
    rc = main(["dpnp", "--likelihood", "logistic", "--y", "1", "--lam", "0.4", "--eta", "0.8",
               "--K", "2", "--pcs", "mala", "--pcs-steps", "20", "--dds", "sde",
               "--dds-steps", "10", "--method", "samples", "--n", "2000", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    r = out["per_k"][-1]["to_pi_eta"]
    assert {"value", "lower", "upper", "floor", "method", "below_floor"} <= set(r)
    assert out["cost_per_chain"]["score_calls"] == 2 * 11


@pytest.mark.parametrize("args", [
    ["--prior", "nope"], ["--eta", "-1"], ["--K", "0"], ["--pcs", "exact", "--likelihood", "phase"],
    ["--dds", "magic"], ["--metric", "w1"], ["--y", "abc"], ["--schedule", "bogus"],
    ["--init", "uniform"], ["--d", "3", "--operator", "random"], ["--y", "1,2"],
    ["--metric", "w2", "--likelihood", "phase", "--pcs", "mala"],
    ["--metric", "w2", "--d", "4", "--n", "20000"],
    ["--likelihood", "logistic", "--y", "0.5", "--pcs", "mala"],
    ["--method", "nope"], ["--method", "grid", "--metric", "w2"],
    ["--method", "grid", "--pcs", "ula", "--n", "1000"],
    ["--method", "grid", "--d", "2", "--pcs", "mala", "--K", "1"],
    ["--method", "samples", "--d", "3"]])
def test_cli_bad_input_exits_2(capsys, args):
    assert main(["dpnp", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("diffrates: error:") and "\n" not in err


def _binned(p, q, g):
    """TV of two grid laws after summing blocks of g cells per axis (the bins of binned_tv
    and binned_tv_2d on the same grid): what the sample route's interval estimates."""
    p, q = np.atleast_2d(p), np.atleast_2d(q)
    gs = (1, g) if p.shape[0] == 1 else (g, g)
    nb = [-(-n // k) for n, k in zip(p.shape, gs)]

    def blocks(m):
        pad = np.zeros((nb[0] * gs[0], nb[1] * gs[1]))
        pad[:m.shape[0], :m.shape[1]] = m
        return pad.reshape(nb[0], gs[0], nb[1], gs[1]).sum((1, 3))

    return 0.5 * float(np.abs(blocks(p) - blocks(q)).sum())


@pytest.mark.parametrize("d,extra,g", [
    (1, ["--pcs", "ula", "--pcs-steps", "10", "--pcs-step", "0.1", "--h", "0.04"], 4),   # 3 s
    (2, ["--pcs", "ula", "--pcs-steps", "5", "--h", "0.0625"], 8),                        # 5 s
])
def test_cli_grid_route_agrees_with_the_chains(capsys, d, extra, g):
    """diffrates dpnp with an inexact PCS: the grid route (the default) gives every x_k's TV
    with a refinement error below 1e-3, and --method samples (20000 real chains, binned TV)
    contains in its 95% interval the grid law binned on the same bins (binning lowers a TV,
    so the comparison is like with like), at k = K for both targets; the grid route's values
    are those of the library's law at the same h."""
    from theory.posterior.dpnp_grid import DPnPGrid1D
    from theory.posterior.dpnp_grid2d import DPnPGrid2D
    args = ["dpnp", "--d", str(d), "--eta", "0.7", "--K", "3", *extra, "--json"]
    assert main(args) == 0
    grid = json.loads(capsys.readouterr().out)
    assert grid["route"] == {"name": "grid", "reason": None}
    for r in grid["per_k"]:
        for key in ("to_pi_eta", "to_posterior"):
            e = r[key]
            assert e["lower"] <= e["value"] <= e["upper"] and 0 < e["error"] < 1e-3
            assert "DPnP grid law" in e["method"] and "refinement" in e["method"]
    assert main(args + ["--method", "samples", "--n", "20000"]) == 0
    mc = json.loads(capsys.readouterr().out)
    assert mc["route"]["name"] == "samples" and "cross-check" in mc["route"]["reason"]
    from experiments.points.dpnp import build, normalise_config
    cfg = normalise_config({"d": d, "eta": 0.7, "K": 3, "pcs": "ula",
                            "pcs_steps": 10 if d == 1 else 5,
                            "pcs_step": 0.1 if d == 1 else None})
    prior, lik, sched = build(cfg)
    etas, h = [0.7] * 3, grid["grid"]["h"]
    pcs, dds = PCSConfig(cfg["pcs"], cfg["pcs_steps"], cfg["pcs_step"]), DDSConfig("exact")
    eng = (DPnPGrid1D if d == 1 else DPnPGrid2D)(prior, lik, etas, pcs, dds, h=h)
    out = eng.run(etas)
    assert [r["to_pi_eta"]["value"] for r in grid["per_k"]] == pytest.approx(out["tv_pi"],
                                                                             abs=1e-12)
    law, pi, post = out["laws"][-1], eng.grid.pi_eta(0.7), eng.grid.posterior()
    for key, q in (("to_pi_eta", pi), ("to_posterior", post)):
        s = mc["per_k"][-1][key]
        assert s["lower"] <= _binned(law, q, g) <= s["upper"], (key, s, _binned(law, q, g))


def test_cli_falls_back_to_chains_with_the_reason(capsys):
    """MALA in 2-D has no grid law: --method auto runs the chains and says why."""
    assert main(["dpnp", "--d", "2", "--pcs", "mala", "--pcs-steps", "3", "--eta", "0.7",
                 "--K", "1", "--n", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["route"]["name"] == "samples"
    assert out["route"]["reason"].startswith("no grid law: PCS mala")
    assert "binned TV" in out["per_k"][0]["to_pi_eta"]["method"]


@pytest.mark.parametrize("eta", [1.0, 0.3, 0.05])
def test_grid_blur_by_convolution_equals_the_dense_gaussian_matrix(eta):
    """Grid1D's PCS and DDS steps convolve with the Gaussian profile instead of multiplying
    by the n x n_z matrix G_ij = exp(-(x_i - z_j)^2 / 2 eta^2). The matrix is built here by
    indexing (G_ij = profile[i - j + n_z - 1], an int array of every pair) and checked against
    the nodes (to 1e-11 relative where G > 1e-30: the differences x_i - z_j round
    differently, and exp(-u) carries u's rounding); the normalisers Z = G e^l, W = G^T p and the steps (one row, three rows, and
    nine, the dense route) agree with the dense products to 1e-13 relative."""
    prior = make_prior("bimodal", 1)
    lik = make_likelihood("logistic", torch.ones(1, 1, dtype=torch.float64), [1.0], lam=0.4)
    g = Grid1D(prior, lik, h=0.03, eta_max=1.0, eta_min=0.05)
    lv = g._level(eta)
    n, nz = g.x.size, g.z.size
    G = lv.gv[(np.arange(n)[:, None] - np.arange(nz)[None, :]) + nz - 1]
    direct = np.exp(-(g.x[:, None] - g.z[None, :]) ** 2 / (2 * eta * eta))
    big = direct > 1e-30
    assert np.allclose(G[big], direct[big], rtol=1e-11, atol=0)
    assert np.array_equal(lv["G"], G)
    Z, W = G @ g.E, G.T @ g.P
    ok_z, ok_w = Z >= 1e-280, W >= 1e-280
    assert np.allclose(lv["Z"][ok_z], Z[ok_z], rtol=1e-13, atol=0)
    assert np.allclose(lv.to_z(g.P)[ok_w], W[ok_w], rtol=1e-13, atol=0)
    rng = np.random.default_rng(0)
    for rows in (1, 3, 9):
        mu = rng.random((rows, n))
        mu /= mu.sum(1, keepdims=True)
        nu = g.pcs(mu, eta)
        ref = g.E * ((mu * lv["inv_Z"]) @ G)
        if lv["uz"].size:
            ref = ref + mu[:, lv["uz"]] @ lv["Pu"]
        assert np.allclose(nu, ref, rtol=1e-13, atol=1e-300)
        back = g.dds(nu, eta)
        ref = g.P * ((nu * lv["inv_W"]) @ G.T)
        if lv["uw"].size:
            ref = ref + nu[:, lv["uw"]] @ lv["Du"]
        assert np.allclose(back, ref, rtol=1e-13, atol=1e-300)
        assert np.allclose(back.sum(1), 1.0, atol=1e-12)


def test_fine_1d_grid_blurs_row_by_row_and_refuses_only_its_dense_kernel(monkeypatch):
    """A grid whose dense matrices would not fit is built and stepped (the blurs are
    convolutions, O(n + n_z) memory: the full-mode dpnp-annealing grid at h = 0.0012 was
    refused for 19 GiB it never allocated); many rows then go row by row instead of through the
    dense G, with the same numbers as the dense product; the dense kernel is refused in one
    line. The machine's memory is set to 1 GiB here so the test means the same everywhere."""
    import theory.posterior.grid_base as gb
    prior = make_prior("bimodal", 1)
    lik = make_likelihood("logistic", torch.ones(1, 1, dtype=torch.float64), [1.0], lam=0.4)
    g = Grid1D(prior, lik, h=0.01, eta_max=1.0, eta_min=0.05)
    lv = g._level(0.3)
    rng = np.random.default_rng(1)
    mu = rng.random((9, g.x.size))
    mu /= mu.sum(1, keepdims=True)
    dense = g.pcs(mu, 0.3)                     # 9 rows: the dense route (G fits)
    assert "G" in lv
    monkeypatch.setattr(lv, "_dense_ok", False)
    rows = g.pcs(mu, 0.3)                      # the same rows, one convolution each
    assert np.allclose(rows, dense, rtol=1e-12, atol=1e-300)
    assert np.allclose(g.dds(rows, 0.3), g.dds(dense, 0.3), rtol=1e-12, atol=1e-300)
    monkeypatch.setattr(gb, "_machine_memory", lambda: 2.0 ** 30)
    fine = Grid1D(prior, lik, h=0.004, eta_max=1.0, eta_min=0.05)   # n ~ 5e3, n_z ~ 1.1e4
    flv = fine._level(0.3)
    assert not flv._dense_ok
    m0 = np.exp(-0.5 * fine.x ** 2)
    m0 /= m0.sum()
    out = fine.dds(fine.pcs(np.stack([m0] * 8), 0.3), 0.3)   # 8 rows, no dense G
    assert "G" not in flv and np.allclose(out.sum(1), 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="too large"):
        fine.kernel(0.3)
