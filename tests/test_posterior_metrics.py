"""Metrics against exact posteriors, the exact posteriors themselves, the problem suite and
the ``diffrates posterior`` command (issue 9).

* exact posterior draws are below every metric's floor, and each value lies in its interval;
* a known shift of exact draws gives the MMSE gap ||delta||^2 / tr Cov inside its interval;
  a known spread error gives the coverage error computed in closed form;
* the low-rank isotropic-mixture posterior equals the dense closed form;
* the cluster bootstrap widens the interval of duplicated (correlated) samples;
* problems are seeded (same seed, same observation), validation seeds differ from test seeds,
  the MCGdiff recipe has sorted U(0, 1) singular values;
* bad input exits with status 2 and one line; ``--json`` carries every metric.
"""
import json

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from experiments.cli.main import main
from theory.distances.samples import sliced_w2_distance
from theory.posterior.closed_form import posterior_closed_form
from theory.posterior.metrics import (IsotropicPosterior, MixturePosterior, exact_posterior,
                                      posterior_metrics)
from theory.posterior.problems import (FAMILIES, VALIDATION_SEED, make_problem,
                                       validation_problem)
from theory.priors import GaussianMixture, IsotropicMixture

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("problem", ["bimodal-1d-phase:0", "random2d-cond30:0",
                                     "mcgdiff-d8-dy2:0", "inpaint-100:0"])
def test_exact_draws_are_below_every_floor_and_values_lie_in_their_intervals(problem):
    p = make_problem(problem)
    post = exact_posterior(p.prior, p.lik)
    x = post.sample(600, generator=torch.Generator().manual_seed(11))
    m = posterior_metrics(x, post, n_boot=40, ot_boot=10, seed=3, max_w2_points=300)
    for name, e in m.items():
        if e.get("value") is None:
            continue
        assert e["lower"] <= e["value"] <= e["upper"], (name, e)
        assert e["below_floor"], (name, e)


def test_mmse_gap_of_a_known_shift_and_coverage_of_a_known_spread():
    p = make_problem("mcgdiff-d8-dy1:2")
    post = exact_posterior(p.prior, p.lik)
    x = post.sample(4000, generator=torch.Generator().manual_seed(0)).numpy()
    delta = 5 * np.linspace(-1, 1, 8)
    m = posterior_metrics(x + delta, post, n_boot=100, seed=0, metrics=("mmse_gap",))["mmse_gap"]
    exact = float((delta ** 2).sum() / post.total_var())
    assert m["lower"] <= exact <= m["upper"] and not m["below_floor"], (m, exact)
    # a 1-D Gaussian posterior sampled with twice its sd: the central 0.9-interval of the
    # method has exact mass 2 Phi(2 z_0.95) - 1
    g = GaussianMixture([1.0], [[0.3]], [[[0.49]]])
    post1 = MixturePosterior(g)
    wide = 0.3 + 2 * 0.7 * torch.randn(20000, 1, generator=torch.Generator().manual_seed(1),
                                         dtype=torch.float64)
    c = posterior_metrics(wide, post1, n_boot=50, seed=0, metrics=("coverage_error",))
    mass = 2 * ndtr(2 * 1.6448536269514722) - 1
    e = c["coverage_error"]
    assert e["lower"] <= abs(mass - 0.9) <= e["upper"], (e, mass)
    assert abs(e["details"]["mass_of_method_interval_90"] - mass) < 0.005


def test_isotropic_posterior_equals_the_dense_closed_form():
    p = make_problem("mcgdiff-d8-dy4:1")
    iso = IsotropicPosterior(p.prior, p.lik)
    dense = MixturePosterior(posterior_closed_form(p.prior, p.lik), p.prior)
    keep = iso.w > 0                          # the dense form drops underflowed components
    np.testing.assert_allclose(iso.w[keep], dense.w, atol=1e-12)
    np.testing.assert_allclose(iso.mu[keep], dense.mu, atol=1e-10)
    np.testing.assert_allclose(iso.sd[keep], dense.sd, atol=1e-10)
    assert abs(iso.total_var() - dense.total_var()) < 1e-9
    x = iso.sample(50000, generator=torch.Generator().manual_seed(2)).numpy()
    # sample covariance against the dense mixture covariance (sampling error ~ 1/sqrt(n))
    C = sum(w * (S + np.outer(mu, mu)) for w, S, mu in
            zip(dense.w, dense.post.covs.numpy(), dense.mu)) - np.outer(dense.mean(), dense.mean())
    assert np.abs(np.cov(x.T) - C).max() < 0.05 * np.abs(C).max()


def test_isotropic_mixture_is_the_gaussian_mixture_with_scaled_identities():
    g = torch.Generator().manual_seed(0)
    iso = IsotropicMixture(torch.tensor([0.3, 0.7]), torch.randn(2, 3, generator=g,
                                                                  dtype=torch.float64),
                           torch.tensor([0.5, 2.0]))
    full = GaussianMixture(iso.weights, iso.means, iso.covs)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    v = torch.randn(7, 3, generator=g, dtype=torch.float64)
    for a in (1.0, 0.3):
        A, B = iso.marginal(a), full.marginal(a)
        torch.testing.assert_close(A.log_prob(x), B.log_prob(x), rtol=0, atol=1e-12)
        torch.testing.assert_close(A.score(x), B.score(x), rtol=0, atol=1e-12)
        torch.testing.assert_close(A.score_jacobian(x), B.score_jacobian(x), rtol=0, atol=1e-12)
        dense = torch.einsum("nij,nj->ni", B.score_jacobian(x), v)
        torch.testing.assert_close(A.score_jacobian_vector(x, v), dense, rtol=0, atol=1e-12)
        torch.testing.assert_close(B.score_jacobian_vector(x, v), dense, rtol=0, atol=1e-12)


def test_cluster_bootstrap_of_duplicated_samples_is_the_bootstrap_of_the_distinct_ones():
    """125 groups of 16 identical samples are the empirical measure of their 125 distinct
    points: resampling whole groups is the same resampling law as the ordinary bootstrap
    of the 125 points (same value, bootstrap sd equal up to Monte Carlo error), and wider
    than resampling the 2000 rows as if independent."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((125, 2))
    x = np.repeat(base, 16, axis=0)
    y = rng.standard_normal((1000, 2))
    kw = dict(floor=False, n_boot=120, seed=0, n_projections=50)
    rows = sliced_w2_distance(x, y, **kw)
    clu = sliced_w2_distance(x, y, groups=np.repeat(np.arange(125), 16), **kw)
    distinct = sliced_w2_distance(base, y, **kw)
    assert abs(clu.value - distinct.value) < 1e-12
    sd_c, sd_d = clu.details["bootstrap_sd"], distinct.details["bootstrap_sd"]
    assert abs(sd_c / sd_d - 1) < 0.25, (sd_c, sd_d)
    assert sd_c > 1.5 * rows.details["bootstrap_sd"]


def test_problems_are_seeded_and_tuning_seeds_are_not_test_seeds():
    a, b = make_problem("random2d-cond30:4"), make_problem("random2d-cond30:4")
    torch.testing.assert_close(a.lik.y, b.lik.y)
    torch.testing.assert_close(a.lik.A, b.lik.A)
    assert not torch.equal(make_problem("random2d-cond30:5").lik.y, a.lik.y)
    for fam in FAMILIES:
        assert int(validation_problem(fam).split(":")[1]) >= VALIDATION_SEED
    p = make_problem("mcgdiff-d80-dy4:0")
    s = torch.linalg.svdvals(p.lik.A)
    assert torch.all(s[:-1] >= s[1:]) and 0 < float(s.min()) and float(s.max()) < 1
    assert p.lik.sigma <= float(s.max())
    means = p.prior.means
    assert means.shape == (25, 80) and torch.equal(means[:, 0::2], means[:, :1].expand(25, 40))
    assert torch.allclose(p.prior.weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_cli_posterior_bad_input_and_json(capsys):
    assert main(["posterior", "--method", "mcgdiff", "--problem", "bimodal-1d-phase"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "linear-Gaussian" in err[0]
    assert main(["posterior", "--method", "dps", "--problem", "nope"]) == 2
    assert main(["posterior", "--method", "dps", "--problem", "bimodal-1d-gaussian",
                 "--knob", "zeta=-1"]) == 2
    capsys.readouterr()
    assert main(["posterior", "--method", "tds", "--problem", "bimodal-1d-gaussian:1", "--nfe",
                 "20", "--n", "200", "--n-boot", "10", "--knob", "particles=8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sampler"]["particles"] == 8 and out["sampler"]["nfe"] == 20
    for name in ("tv", "w2", "sliced_w2", "mmse_gap", "coverage_error", "mode_weight_error"):
        e = out["metrics"][name]
        assert e["lower"] <= e["value"] <= e["upper"] and "floor" in e and e["method"]


def test_resample_statistics_from_sorted_columns_equal_sorting_each_resample():
    """The bootstrap's KS and quantiles from columns sorted once (multiplicities, cumulative
    sums) against sorting each resample, with ties and resamples of other sizes."""
    from theory.posterior.metrics import _SortedColumns, _mean_ks
    rng = np.random.default_rng(5)
    U = rng.uniform(size=(240, 6)) ** 1.7
    U[:6, 0] = U[6:12, 0]                                              # ties
    cols = _SortedColumns(U)
    for _ in range(60):
        rows = rng.integers(0, 240, int(rng.integers(30, 400)))
        assert cols.mean_ks(rows) == pytest.approx(_mean_ks(U[rows]), abs=1e-14)
        ps = (0.05, 0.25, 0.5, 0.95)
        np.testing.assert_allclose(cols.quantiles(rows, ps), np.quantile(U[rows], ps, axis=0),
                                   rtol=0, atol=1e-15)


def test_mmse_bootstrap_by_counts_equals_the_gap_of_each_resample():
    """The GEMM form of the cluster-bootstrap MMSE gap against its definition evaluated
    resample by resample (group means, variance of the mean from the picked groups)."""
    from theory.posterior.metrics import _mmse_boot

    class Post:
        def mean(self):
            return np.array([0.3, -1.0, 40.0])

        def total_var(self):
            return 2.5

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3)) * [1.0, 2.0, 0.5] + [0.5, -1.0, 41.0]
    members = [np.arange(i, i + 3) for i in range(0, 300, 3)]
    picks = rng.integers(0, 100, (30, 100))
    value, boot = _mmse_boot(Post(), x, members, picks)

    def gap(groups):
        pts = np.concatenate([x[members[g]] for g in groups])
        n, G = pts.shape[0], len(groups)
        mh = pts.mean(0)
        gm = np.stack([x[members[g]].mean(0) for g in groups])
        sizes = np.array([len(members[g]) for g in groups], float)
        var_mean = G / (G - 1) * ((sizes / n) ** 2 * ((gm - mh) ** 2).sum(1)).sum()
        return (((mh - Post().mean()) ** 2).sum() - var_mean) / 2.5

    assert value == pytest.approx(gap(np.arange(100)), rel=1e-10)
    np.testing.assert_allclose(boot, [gap(p) for p in picks], rtol=1e-9)
