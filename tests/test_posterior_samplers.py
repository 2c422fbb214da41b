"""Posterior samplers against cases whose answer is known (issue 9).

* moment matching on a Gaussian prior with a linear-Gaussian likelihood has the exact
  posterior score: its exact output law (a Gaussian, propagated through the affine chain
  steps) tends to the closed-form posterior like 1/T; PiGDM does on an N(0, I) prior (and the
  paper's guidance weighting does not);
* the chain steps of every single-chain sampler reproduce the sampler's own numbers;
* DPS stays biased as its NFE grows where the posterior is Gaussian;
* TDS and MCGdiff get closer to the posterior as their particle number grows;
* RED-diff and DMPlug return points near the MAP, and the metrics say they are not
  posterior samples;
* ES-WMV stops where the windowed variance is smallest.
"""
import numpy as np
import pytest
import torch

from theory.distances.gaussian import gaussian_w2
from theory.posterior.closed_form import posterior_closed_form
from theory.posterior.interface import gaussian_chain_law, run_chain
from theory.posterior.likelihoods import LinearGaussian, make_operator
from theory.posterior.methods import METHODS, make_method
from theory.posterior.metrics import exact_posterior, posterior_metrics
from theory.posterior.variational import ESWMV
from theory.priors import Gaussian, make_prior
from theory.rates import fit_exponent

pytestmark = pytest.mark.usefixtures("one_thread")


def _gaussian_problem(cov, seed=1):
    prior = Gaussian(torch.zeros(2), torch.as_tensor(cov, dtype=torch.float64))
    A = make_operator("random", 2, m=1, generator=torch.Generator().manual_seed(seed))
    lik = LinearGaussian(A, [0.7], 0.3)
    post = posterior_closed_form(prior, lik)
    return prior, lik, post.means[0].numpy(), post.covs[0].numpy()


def _w2_curve(method, prior, lik, pm, pc, Ts):
    return [gaussian_w2(*gaussian_chain_law(method.chain(prior, lik, T)), pm, pc) for T in Ts]


def test_moment_matching_tends_to_the_gaussian_posterior_like_1_over_T():
    prior, lik, pm, pc = _gaussian_problem([[2.0, 0.5], [0.5, 1.0]])
    Ts = [25, 50, 100, 200]
    w2 = _w2_curve(make_method("moment-matching"), prior, lik, pm, pc, Ts)
    fit = fit_exponent(Ts, w2)
    assert -1.15 < fit.exponent < -0.85, (w2, fit)
    assert w2[-1] < 0.03, w2


def test_pigdm_tends_to_the_posterior_on_a_standard_normal_prior_only_with_score_weighting():
    prior, lik, pm, pc = _gaussian_problem(np.eye(2))
    Ts = [25, 50, 100, 200]
    w2 = _w2_curve(make_method("pigdm"), prior, lik, pm, pc, Ts)
    assert -1.15 < fit_exponent(Ts, w2).exponent < -0.85, w2
    paper = _w2_curve(make_method("pigdm", weighting="paper"), prior, lik, pm, pc, Ts)
    assert min(paper) > 0.15 and paper[-1] > paper[1], paper      # O(1) guidance per step
    # r_t^2 = 1 - abar is exact only for N(0, I): on a correlated prior PiGDM's error is
    # well above that of moment matching (the exact covariance) at the same T
    prior2, lik2, pm2, pc2 = _gaussian_problem([[2.0, 0.5], [0.5, 1.0]])
    pg = _w2_curve(make_method("pigdm"), prior2, lik2, pm2, pc2, [200])[0]
    mm = _w2_curve(make_method("moment-matching"), prior2, lik2, pm2, pc2, [200])[0]
    assert pg > 1.5 * mm, (pg, mm)


@pytest.mark.parametrize("name", ["dps", "pigdm", "moment-matching", "diffpir", "score-ald"])
def test_chain_steps_reproduce_the_sampler_numbers(name):
    method = make_method(name)
    for prior, lik in [(make_prior("bimodal", 1), LinearGaussian([[1.0]], [0.5], 1.0)),
                       (make_prior("bimodal", 2), LinearGaussian(
                           make_operator("random", 2, cond=3, generator=torch.Generator().manual_seed(0)),
                           [0.3, -1.0], 0.5))]:
        x = method.sample(prior, lik, 30, 64, seed=3).samples.numpy()
        y = run_chain(method.chain(prior, lik, 30), 64, torch.Generator().manual_seed(3))
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-12)


def test_non_chain_samplers_say_so():
    prior, lik = make_prior("bimodal", 1), LinearGaussian([[1.0]], [0.5], 1.0)
    chains = {n for n, c in METHODS.items() if c(**{}).is_chain}
    assert chains == {"dps", "pigdm", "moment-matching", "diffpir", "score-ald"}
    with pytest.raises(ValueError, match="not a single Markov chain"):
        make_method("tds").chain(prior, lik, 20)


def test_dps_stays_biased_as_its_budget_grows_where_the_posterior_is_gaussian():
    """N(0, 1) prior, y = 0.7, sigma = 0.5: posterior N(0.56, 0.2). DPS's guidance is the
    likelihood gradient at Tweedie's mean normalised by the residual, not the posterior
    score. With its step zeta' = c / T (so that the limit T -> inf exists) its error does not
    shrink with T for any c of a grid, while moment matching converges on the same problem.
    In 1-D, W2^2 >= (m - m')^2 + (s - s')^2 (the quantile functions, centred, in L2), so the
    moment error is a lower bound on W2 (up to sampling error ~0.01 at n = 2000)."""
    prior = Gaussian(torch.zeros(1), torch.eye(1))
    lik = LinearGaussian([[1.0]], [0.7], 0.5)
    best = {}
    for T in (100, 400):
        errs = []
        for c in (0.4, 1.6, 6.4):
            x = make_method("dps", zeta=c / T).sample(prior, lik, T, 2000, seed=0).samples[:, 0]
            m, v = float(x.mean()), float(x.var())
            errs.append(np.hypot(m - 0.56, np.sqrt(v) - np.sqrt(0.2)))
        best[T] = min(errs)
    assert best[100] > 0.12 and best[400] > 0.8 * best[100], best
    m, c = gaussian_chain_law(make_method("moment-matching").chain(prior, lik, 400))
    assert gaussian_w2(m, c, [0.56], [[0.2]]) < 0.02


def _mode_weight_error(name, K, seeds=(0, 1)):
    """Mean over seeds of the mode-weight error (TV between the mean responsibilities of the
    4096 outputs and the exact posterior weights) on a 2-D bimodal prior observed through
    one row, A = (1, 0.6), y = 0.5, sigma = 0.5: the unobserved direction's modes are weighted
    only through the prior, which a single particle (no reweighting) gets wrong."""
    prior = make_prior("bimodal", 2)
    lik = LinearGaussian([[1.0, 0.6]], [0.5], 0.5)
    post = exact_posterior(prior, lik)
    return float(np.mean([
        posterior_metrics(make_method(name, particles=K).sample(prior, lik, 50, 4096, seed=s)
                          .samples, post, n_boot=10, seed=s,
                          metrics=("mode_weight_error",))["mode_weight_error"]["value"]
        for s in seeds]))


@pytest.mark.parametrize("name", ["tds", "mcgdiff"])
def test_smc_samplers_get_closer_as_particles_grow(name):
    few, many = _mode_weight_error(name, 1), _mode_weight_error(name, 64)
    assert few > 0.3 and many < few / 3, (few, many)


def test_point_estimates_land_near_the_map_and_the_metrics_say_they_are_not_samples():
    prior, lik = make_prior("bimodal", 1), LinearGaussian([[1.0]], [1.8], 0.3)
    post = exact_posterior(prior, lik)
    xs, mass = post.grid()
    x_map = xs[0][np.argmax(mass)]
    for name, nfe in (("red-diff", 200), ("dmplug-fixed", 300)):
        res = make_method(name, **({"lr": 0.1} if name == "dmplug-fixed" else {})).sample(
            prior, lik, nfe, 500, seed=0)
        assert res.point_estimate and any("point estimate" in n for n in res.notes)
        x = res.samples[:, 0].numpy()
        assert np.quantile(np.abs(x - x_map), 0.9) < 0.15, (name, x_map, np.quantile(x, [0.05, 0.95]))
        m = posterior_metrics(res.samples, post, n_boot=20, ot_boot=10, seed=0,
                              metrics=("tv", "coverage_error"))
        assert m["coverage_error"]["lower"] > 0.4 and not m["coverage_error"]["below_floor"]
        assert m["tv"]["lower"] > 0.3, m["tv"]


def test_eswmv_returns_the_iterate_at_the_smallest_window_variance():
    """Iterates x_e = (-1)^e c_e u oscillate with an amplitude c_e that falls, then rises
    (early learning, then overfitting): the window variance is smallest around the smallest
    amplitude; ES-WMV keeps the iterate pushed at that minimum and stops `patience` pushes
    later."""
    u = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    amp = torch.cat([torch.linspace(2, 0.1, 30), torch.linspace(0.15, 3, 30)]).double()
    xs = [(-1) ** e * amp[e] * u for e in range(60)]
    st = ESWMV(1, 3, window=4, patience=6)
    for x in xs:
        if not st.push(x).any():
            break
    W = torch.stack(xs)                                                   # (60, 1, 3)
    var = [float(((W[e - 3:e + 1] - W[e - 3:e + 1].mean(0)) ** 2).sum(-1).mean() / 3)
           for e in range(3, 60)]
    e_min = 3 + int(np.argmin(var))
    assert 27 <= e_min <= 32
    assert torch.equal(st.best, xs[e_min])
    assert int(st.stopped_at[0]) == e_min + 1 + 6
