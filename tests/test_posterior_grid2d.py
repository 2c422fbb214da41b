"""The 2-D grid engine of the DPnP Gibbs chain (theory.posterior.grid2d), checked against
independent computations:

* a separable problem (product prior, likelihood with A = I) is two independent 1-D chains:
  the 2-D laws are outer products of the 1-D engine's laws (dense matrices, log space) and
  the rate is the larger 1-D rate;
* a Gaussian prior with a non-diagonal linear-Gaussian likelihood: the chain is a Gaussian
  autoregression x_{k+1} = B x_k + c + noise (THEORY.md section 6 with Gaussian PCS/DDS), so
  every law is Gaussian with a known mean and covariance, pi_eta and the posterior are the
  closed forms of theory.posterior, and the rate is the spectral radius of B;
* a nonlinear likelihood (1-bit logistic): chains of the real sampler (MALA PCS, exact DDS)
  against the grid law, within the estimator's floor.
"""
import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from experiments.cli.main import main
from theory.posterior.annealing import make_annealing
from theory.posterior.closed_form import pi_eta_closed_form, posterior_closed_form
from theory.posterior.estimators import binned_tv_2d
from theory.posterior.grid1d import Grid1D
from theory.posterior.grid2d import Grid2D
from theory.posterior.grid_base import tv_masses_2d
from theory.posterior.inits import init_samples
from theory.posterior.likelihoods import LinearGaussian, make_likelihood
from theory.posterior.plug_and_play import DDSConfig, PCSConfig, run_dpnp
from theory.posterior.refinement import grid_refinement
from theory.priors import Gaussian, bimodal

pytestmark = pytest.mark.usefixtures("one_thread")


def test_separable_problem_is_two_1d_chains():
    prior = bimodal(2)
    lik = make_likelihood("gaussian", torch.eye(2), [0.7, -0.4], sigma=0.5)
    eta, K = 0.5, 8
    g = Grid2D(prior, lik, eta_max=eta)
    laws = g.laws([eta] * K)
    ones = []
    for yv in (0.7, -0.4):
        l1 = make_likelihood("gaussian", torch.eye(1), [yv], sigma=0.5)
        g1 = Grid1D(bimodal(1), l1, h=g.h, lo=g.axes[0][0], hi=g.axes[0][-1], eta_max=eta)
        assert g1.x.size == g.axes[0].size
        ones.append((g1.laws([eta] * K), g1.rate(eta), g1.pi_eta(eta), g1.posterior()))
    for k in (0, K // 2, K - 1):
        assert np.abs(np.outer(ones[0][0][k], ones[1][0][k]) - laws[k]).sum() < 1e-12
    assert np.abs(np.outer(ones[0][2], ones[1][2]) - g.pi_eta(eta)).sum() < 1e-12
    assert np.abs(np.outer(ones[0][3], ones[1][3]) - g.posterior()).sum() < 1e-12
    assert g.rate(eta) == pytest.approx(max(ones[0][1], ones[1][1]), abs=1e-10)


MU0 = np.array([0.3, -0.5])
SIGMA = np.array([[1.0, 0.6], [0.6, 0.7]])
A = np.array([[1.0, 0.4], [-0.3, 0.8]])
Y = np.array([0.5, 1.0])
SIG = 0.6


def _gaussian_problem():
    return Gaussian(MU0, SIGMA), LinearGaussian(A, Y, SIG)


def _ar_recursion(eta):
    """x_{k+1} = B x_k + c + xi, xi ~ N(0, Q): PCS z ~ N(C_z (A^T y / s^2 + x / eta^2), C_z),
    DDS x' ~ N(C_x (Sigma^{-1} mu0 + z / eta^2), C_x)."""
    Cz = np.linalg.inv(A.T @ A / SIG ** 2 + np.eye(2) / eta ** 2)
    Cx = np.linalg.inv(np.linalg.inv(SIGMA) + np.eye(2) / eta ** 2)
    Bz, cz = Cz / eta ** 2, Cz @ A.T @ Y / SIG ** 2
    Bx, cx = Cx / eta ** 2, Cx @ np.linalg.solve(SIGMA, MU0)
    return Bx @ Bz, Bx @ cz + cx, Cx + Bx @ Cz @ Bx.T


def _grid_masses(g, mean, cov):
    X1, X2 = np.meshgrid(*g.axes, indexing="ij")
    d = multivariate_normal(mean, cov).pdf(np.stack([X1, X2], -1))
    return d / d.sum()


@pytest.mark.parametrize("eta", [0.3, 0.8])
def test_gaussian_chain_laws_targets_and_rate(eta):
    prior, lik = _gaussian_problem()
    g = Grid2D(prior, lik, eta_max=eta)
    post, pie = posterior_closed_form(prior, lik), pi_eta_closed_form(prior, lik, eta)
    assert tv_masses_2d(g.posterior(), _grid_masses(g, post.means[0].numpy(),
                                                    post.covs[0].numpy())) < 1e-12
    assert tv_masses_2d(g.pi_eta(eta), _grid_masses(g, pie.means[0].numpy(),
                                                    pie.covs[0].numpy())) < 1e-12
    B, c, Q = _ar_recursion(eta)
    m, C = np.zeros(2), np.eye(2)                        # init N(0, I)
    for k, law in enumerate(g.laws([eta] * 6)):
        m, C = B @ m + c, B @ C @ B.T + Q
        assert tv_masses_2d(law, _grid_masses(g, m, C)) < 1e-12, k
    assert g.rate(eta) == pytest.approx(float(np.max(np.abs(np.linalg.eigvals(B)))), abs=1e-10)


def test_refinement_error_bounds_the_grid_error_and_annealed_levels():
    """The stated error |TV_h - TV_2h| bounds the distance of TV_h to the value on a grid 4
    times finer (the kink of |p - q| along the crossing curve errs by O(h^2)); changing eta
    between steps (annealing) goes through the per-level caches, and the laws still follow
    the Gaussian recursion."""
    prior, lik = _gaussian_problem()
    etas = [0.8, 0.6, 0.45, 0.3]
    fine, coarse, err = grid_refinement(prior, lik, etas, with_rates=False)
    finer = Grid2D(prior, lik, h=fine.info["h"] / 4, eta_max=0.8, eta_min=0.3).run(
        etas, with_rates=False)
    for which in ("tv_pi", "tv_post"):
        for k in range(len(etas)):
            gap = abs(getattr(fine, which)[k] - getattr(finer, which)[k])
            assert gap <= err[which][k], (which, k, gap, err[which][k])
            assert err[which][k] < 1e-3 * getattr(fine, which)[k] + 1e-5
    assert fine.info["lost"] < 1e-12
    g = Grid2D(prior, lik, eta_max=0.8, eta_min=0.3)
    m, C = np.zeros(2), np.eye(2)
    for k, eta in enumerate(etas):
        B, c, Q = _ar_recursion(eta)
        m, C = B @ m + c, B @ C @ B.T + Q
        assert tv_masses_2d(fine.laws[k], _grid_masses(g, m, C)) < 1e-10


def test_point_init_and_bad_input():
    prior, lik = _gaussian_problem()
    g = Grid2D(prior, lik, eta_max=0.5)
    # from a point: the first law is the DDS of the PCS law of that point (Gaussian)
    Cz = np.linalg.inv(A.T @ A / SIG ** 2 + np.eye(2) / 0.25)
    Cx = np.linalg.inv(np.linalg.inv(SIGMA) + np.eye(2) / 0.25)
    x0 = np.array([1.0, -1.0])
    mz = Cz @ (A.T @ Y / SIG ** 2 + x0 / 0.25)
    m = Cx @ (np.linalg.solve(SIGMA, MU0) + mz / 0.25)
    C = Cx + (Cx / 0.25) @ Cz @ (Cx / 0.25).T
    assert tv_masses_2d(g.laws([0.5], "point:1,-1")[0], _grid_masses(g, m, C)) < 1e-12
    with pytest.raises(ValueError, match="eta_max"):
        g.laws([0.7])
    with pytest.raises(ValueError, match="2-D"):
        Grid2D(bimodal(1), make_likelihood("gaussian", torch.eye(1), [0.0]))
    with pytest.raises(ValueError, match="too large"):
        Grid2D(prior, lik, h=1e-3)


def test_nonlinear_likelihood_grid_law_matches_the_sampler():
    """1-bit logistic likelihood in 2-D (A mixes the coordinates): chains of the real DPnP
    sampler (MALA PCS with many steps, exact DDS) against the grid law of x_K. The binned TV
    must be within the estimator's floor (95% quantile of its value on exact draws)."""
    prior = bimodal(2)
    Am = torch.tensor([[1.0, 0.5], [-0.5, 1.0]], dtype=torch.float64)
    lik = make_likelihood("logistic", Am, [1.0, -1.0], lam=0.4)
    eta, K, n = 0.8, 4, 20000
    g = Grid2D(prior, lik, eta_max=eta)
    law = g.laws([eta] * K)[-1]
    gen = torch.Generator().manual_seed(3)
    x0 = init_samples("standard-normal", prior, n, gen)
    res = run_dpnp(prior, lik, make_annealing("constant", K, eta=eta), x0,
                   pcs=PCSConfig("mala", 300), dds=DDSConfig("exact"), generator=gen,
                   keep=False)
    est = binned_tv_2d(res.final, g.axes, law, seed=0)
    assert est.value <= est.floor_q95, est
    # and the test has power: against the law one step earlier it sees a difference
    before = binned_tv_2d(res.final, g.axes, g.laws([eta] * (K - 1))[-1], seed=0)
    assert before.lower > est.floor_q95, before


def test_cli_2d_grid_route_json(capsys):
    import json
    rc = main(["dpnp", "--prior", "bimodal", "--d", "2", "--operator", "random", "--cond", "3",
               "--y", "0.7", "--eta", "1.0", "--K", "6", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert "2-D grid" in out["per_k"][0]["to_pi_eta"]["method"]
    from experiments.points.dpnp import build, normalise_config
    cfg = normalise_config({"prior": "bimodal", "d": 2, "operator": "random", "cond": 3,
                            "y": "0.7", "eta": 1.0, "K": 6})
    prior, lik, _ = build(cfg)
    g = Grid2D(prior, lik, eta_max=1.0)
    tv = [tv_masses_2d(m, g.pi_eta(1.0)) for m in g.laws([1.0] * 6)]
    assert [r["to_pi_eta"]["value"] for r in out["per_k"]] == pytest.approx(tv, abs=1e-12)
    assert out["exact_rate"][0]["value"] == pytest.approx(g.rate(1.0), abs=1e-9)
    assert math.isfinite(out["tv_pi_eta_posterior"][0]["value"])


def test_tv_of_disjoint_laws_is_one_even_where_the_kink_term_would_exceed_it():
    """Two laws on disjoint nodes have TV exactly 1. With masses (0.95, 0.05, 0) against
    (0, 0, 1) the crossing between 0.05 and -1 has a kink term of
    0.05/1.05 - 1.05/6 < 0, so the corrected sum would be 1.064: the estimate is held at 1,
    the nearest value a TV can take (1-D and 2-D)."""
    from theory.posterior.grid_base import kink_correction, tv_masses
    p, q = np.array([0.95, 0.05, 0.0]), np.array([0.0, 0.0, 1.0])
    raw = 0.5 * (np.abs(p - q).sum() - kink_correction(p - q, 0))
    assert raw == pytest.approx(1.0 + 0.5 * (1.05 / 6 - 0.05 / 1.05), rel=1e-12)
    assert raw > 1.05
    assert tv_masses(p, q) == 1.0
    assert tv_masses_2d(np.tile(p, (3, 1)) / 3, np.tile(q, (3, 1)) / 3) == 1.0
    assert tv_masses(p, p) == 0.0
