"""DPnP with inexact sub-samplers on the 2-D grid (theory.posterior.dpnp_grid2d): with A = I,
a diagonal Gaussian likelihood and a product prior the chain factorises over coordinates, so
the marginals of the 2-D grid law (affine pull-back + Fourier blur for the ULA PCS, per-axis
1-D chains for the DDS) must equal the 1-D grid laws of dpnp_grid (per-centre Langevin
kernels, 1-D chains), two different computations."""
import numpy as np
import pytest
import torch

from theory.posterior.dpnp_grid import DPnPGrid1D
from theory.posterior.dpnp_grid2d import DPnPGrid2D
from theory.posterior.likelihoods import make_likelihood
from theory.posterior.plug_and_play import DDSConfig, PCSConfig
from theory.priors import make_prior

Y = (0.7, -0.4)


@pytest.mark.parametrize("pcs,dds", [
    (PCSConfig("ula", 10, 0.1), DDSConfig("exact")),                   # 5 s
    pytest.param(PCSConfig("exact"), DDSConfig("sde", 5), marks=pytest.mark.slow),   # 12 s
])
def test_2d_marginals_equal_the_1d_laws(pcs, dds):
    """Mean and second moment of each marginal of law x_3 (eta = 0.7, h = 0.05) agree with
    the 1-D engine's to 1e-7, and the mass the 2-D steps lose is below 1e-6."""
    prior = make_prior("bimodal", 2)
    lik = make_likelihood("gaussian", torch.eye(2), list(Y), sigma=0.5)
    etas = [0.7] * 3
    g = DPnPGrid2D(prior, lik, etas, pcs, dds, h=0.05)
    out = g.run(etas)
    assert out["lost"][-1] < 1e-6
    law = out["laws"][-1]
    for i, y in enumerate(Y):
        lik1 = make_likelihood("gaussian", torch.eye(1), [y], sigma=0.5)
        r1 = DPnPGrid1D(g._coordinate_prior(i), lik1, etas, pcs, dds, h=0.05).run(etas)
        m, x = law.sum(1 - i), np.asarray(g.grid.axes[i])
        x1, l1 = r1["x"], r1["laws"][-1]
        assert abs(float(m @ x) - float(l1 @ x1)) < 1e-7
        assert abs(float(m @ x ** 2) - float(l1 @ x1 ** 2)) < 1e-7


def _cli_problem(**over):
    """The CLI's default 2-D problem (bimodal product prior, A = I, y = 0.7, sigma = 0.5,
    eta = 0.3) with ``over`` (experiments.points.dpnp)."""
    from experiments.points.dpnp import build, normalise_config
    cfg = normalise_config({"d": 2, **over})
    prior, lik, sched = build(cfg)
    return (prior, lik, [float(e) for e in sched.etas],
            PCSConfig(cfg["pcs"], cfg["pcs_steps"], cfg["pcs_step"]),
            DDSConfig(cfg["dds"], cfg["dds_steps"], cfg["dds_rule"]))


def _assert_contains(fine, err, ref):
    for key in ("tv_pi", "tv_post"):
        d = np.abs(np.asarray(fine[key]) - np.asarray(ref[key]))
        assert np.all(d <= np.asarray(err[key])), (key, d, err[key])


def test_2d_errors_contain_an_h_over_2_reference():
    """At the CLI's settings (default h = 0.0625; ODE DDS, 50 steps, K = 4) every stated error
    of dpnp_grid2d_refinement contains the difference to the same TVs on an h/2 grid. The
    plain three-level estimate failed here (k = 2: 1.18e-5 stated, 1.61e-5 to h/2; observed
    order 7.9 between h, 1.5h and 2.25h), hence the raw difference where the order is above
    4; some orders are above 4, so the test exercises that branch. ~5 s."""
    from theory.posterior.dpnp_grid2d import TRUSTED_ORDER, dpnp_grid2d_refinement
    prior, lik, etas, pcs, dds = _cli_problem(dds="ode", K=4)
    fine, err = dpnp_grid2d_refinement(prior, lik, etas, pcs, dds)
    h = err["levels"][0]
    assert h == pytest.approx(0.0625)
    assert max(err["orders"]["tv_pi"]) > TRUSTED_ORDER
    ref = DPnPGrid2D(prior, lik, etas, pcs, dds, h=h / 2).run(etas)
    _assert_contains(fine, err, ref)
    assert max(err["tv_pi"] + err["tv_post"]) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("pcs,dds", [("ula", "exact"), ("exact", "sde")])
def test_2d_errors_contain_an_h_over_4_reference(pcs, dds):
    """The same against an h/4 grid (16 times the nodes), for the ULA PCS (100 steps) and the
    reverse-SDE DDS (50 steps), K = 3."""
    from theory.posterior.dpnp_grid2d import dpnp_grid2d_refinement
    prior, lik, etas, P, D = _cli_problem(pcs=pcs, dds=dds, K=3)
    fine, err = dpnp_grid2d_refinement(prior, lik, etas, P, D)
    ref = DPnPGrid2D(prior, lik, etas, P, D, h=err["levels"][0] / 4).run(etas)
    _assert_contains(fine, err, ref)


A_MIX = [[1.0, 0.5], [-0.5, 1.0]]


def _two_component_prior():
    """A non-product 2-D prior (two correlated Gaussian components): the reverse-SDE DDS then
    runs on the 2-D grid (chains2d pull-backs and Fourier blurs), not per axis."""
    from theory.priors import GaussianMixture
    return GaussianMixture(np.array([0.4, 0.6]), np.array([[-1.0, -0.5], [1.0, 0.8]]),
                           np.array([[[0.3, 0.1], [0.1, 0.2]], [[0.25, -0.08], [-0.08, 0.35]]]))


def _against_a_million_chains(prior, lik, pcs, dds, h, bin_cells, seed):
    """Grid law of x_3 (K = 3, eta = 0.7) against 10^6 real chains of run_dpnp on the same
    bins: the bias-corrected TV below the floor's 95% quantile, and (power) the same chains
    against the law of x_2 with an interval lower end above it."""
    from theory.posterior.annealing import make_annealing
    from theory.posterior.estimators import binned_tv_2d
    from theory.posterior.inits import init_samples
    from theory.posterior.plug_and_play import run_dpnp
    etas = [0.7] * 3
    eng = DPnPGrid2D(prior, lik, etas, pcs, dds, h=h)
    out = eng.run(etas)
    assert out["lost"][-1] < 1e-4
    g = torch.Generator().manual_seed(seed)
    x0 = init_samples("standard-normal", prior, 1000000, g)
    res = run_dpnp(prior, lik, make_annealing("constant", 3, eta=0.7), x0, pcs=pcs, dds=dds,
                   generator=g, keep=False)
    est = binned_tv_2d(res.final, eng.grid.axes, out["laws"][-1], bin_cells=bin_cells,
                       seed=seed)
    print(est)
    assert est.value <= est.floor_q95, est
    before = binned_tv_2d(res.final, eng.grid.axes, out["laws"][-2], bin_cells=bin_cells,
                          seed=seed)
    assert before.lower > est.floor_q95, before


@pytest.mark.slow
def test_2d_ula_law_matches_a_million_real_chains():
    """The ULA PCS (10 steps of 0.1; affine pull-back + Fourier blur) with the exact DDS on
    the bimodal product prior, Gaussian likelihood with a mixing A (not separable), at
    h = 0.03125 (bins of 16 cells, side 0.5). At the default h = 0.0625 the node masses summed
    over a bin differ from the bin's integral by O(h^2) (midpoint rule), enough to put the
    statistic of 10^6 chains at 1.1-1.5 times its floor even for the exact Gibbs chain;
    at h/2 it is back at 0.8-1.1. Measured: 7 s."""
    lik = make_likelihood("gaussian", torch.tensor(A_MIX, dtype=torch.float64), list(Y),
                          sigma=0.5)
    _against_a_million_chains(make_prior("bimodal", 2), lik, PCSConfig("ula", 10, 0.1),
                              DDSConfig("exact"), 0.03125, 16, seed=17)


@pytest.mark.slow
def test_2d_sde_dds_law_matches_a_million_real_chains():
    """The reverse-SDE DDS (5 steps) with the exact PCS on a non-product prior (two
    correlated components; the DDS runs on the 2-D grid), Gaussian likelihood with a mixing
    A, at h = 0.05 (bins of 10 cells, side 0.5). Measured: 100 s (mostly the grid law)."""
    lik = make_likelihood("gaussian", torch.tensor(A_MIX, dtype=torch.float64), list(Y),
                          sigma=0.5)
    _against_a_million_chains(_two_component_prior(), lik, PCSConfig("exact"),
                              DDSConfig("sde", 5), 0.05, 10, seed=19)
