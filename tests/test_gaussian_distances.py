"""Closed forms between Gaussians (theory.distances.gaussian), each against a second,
independent computation: the eigen-decomposition Bures formula, 1-D reductions, a
discretised entropic OT solved by Sinkhorn on a grid, and exact identities."""
import math

import numpy as np
import ot
import pytest
from scipy.linalg import sqrtm
from scipy.stats import multivariate_normal, norm

from theory.distances.gaussian import (
    gaussian_entropic_ot,
    gaussian_sinkhorn_divergence,
    gaussian_sliced_w2,
    gaussian_w2,
)


def _spd(rng, d, scale=1.0):
    A = rng.normal(size=(d, d))
    return scale * (A @ A.T / d + 0.3 * np.eye(d))


def test_w2_procrustes_form_vs_eigen_form():
    rng = np.random.default_rng(0)
    for d in (1, 2, 5):
        m1, m2 = rng.normal(size=d), rng.normal(size=d)
        S1, S2 = _spd(rng, d), _spd(rng, d, 2.0)
        r = np.real(sqrtm(S2))
        ref = math.sqrt(np.sum((m1 - m2) ** 2)
                        + np.trace(S1 + S2 - 2 * np.real(sqrtm(r @ S1 @ r))))
        assert gaussian_w2(m1, S1, m2, S2) == pytest.approx(ref, rel=1e-10)


def test_w2_tiny_distance_keeps_relative_accuracy():
    """W2 between N(0, S) and N(0, S (1 + 2 delta)) is delta sqrt(tr S) + O(delta^2): the
    Procrustes form keeps its digits where the eigen form cancels."""
    S = np.array([[2.0, 0.3], [0.3, 1.0]])
    for delta in (1e-4, 1e-7):
        S2 = S * (1 + delta) ** 2                   # sd scaled by (1 + delta)
        assert gaussian_w2(np.zeros(2), S, np.zeros(2), S2) == pytest.approx(
            delta * math.sqrt(np.trace(S)), rel=1e-6)


def test_sliced_w2_isotropic_closed_form_and_1d():
    """Isotropic covariances: every projection has the same sds, so
    SW2^2 = |m1 - m2|^2 / d + (s1 - s2)^2 exactly (2-D quadrature, 3-D Monte Carlo)."""
    m1, m2 = np.array([0.4, -0.2, 0.1]), np.zeros(3)
    for d in (2, 3):
        val, se = gaussian_sliced_w2(m1[:d], 1.5 ** 2 * np.ones(d), m2[:d], np.ones(d))
        ref = math.sqrt(np.sum((m1[:d] - m2[:d]) ** 2) / d + 0.25)
        assert val == pytest.approx(ref, abs=max(5 * se, 1e-12) + 5e-4 * (d > 2))
    v1, _ = gaussian_sliced_w2([0.5], [2.25], [0.0], [1.0])
    assert v1 == pytest.approx(math.sqrt(0.25 + 0.25), rel=1e-14)


def test_sliced_w2_2d_quadrature_vs_monte_carlo():
    rng = np.random.default_rng(1)
    S1, S2 = _spd(rng, 2), _spd(rng, 2, 0.5)
    quad, _ = gaussian_sliced_w2([0.3, 0.0], S1, [0.0, 0.1], S2)
    ang = rng.uniform(0, 2 * np.pi, 400000)
    th = np.stack([np.cos(ang), np.sin(ang)], 1)
    sd1 = np.sqrt(np.einsum("ki,ij,kj->k", th, S1, th))
    sd2 = np.sqrt(np.einsum("ki,ij,kj->k", th, S2, th))
    vals = (th @ np.array([0.3, -0.1])) ** 2 + (sd1 - sd2) ** 2
    mc = math.sqrt(vals.mean())
    se = vals.std() / math.sqrt(vals.size) / (2 * mc)
    assert quad == pytest.approx(mc, abs=4 * se)


def _grid_entropic_ot_1d(m1, s1, m2, s2, eps, h=0.03):
    x = np.arange(-10, 10, h)
    a, b = norm.pdf(x, m1, s1), norm.pdf(x, m2, s2)
    a, b = a / a.sum(), b / b.sum()
    return _discrete_eot(a, b, (x[:, None] - x[None, :]) ** 2, eps)


def _discrete_eot(a, b, M, eps):
    G = ot.bregman.sinkhorn_log(a, b, M, eps, numItermax=100000, stopThr=1e-12)
    keep = G > 0
    kl = np.sum(G[keep] * (np.log(G[keep]) - np.log(np.outer(a, b)[keep])))
    return float(np.sum(G * M) + eps * kl)


@pytest.mark.parametrize("m1,s1,m2,s2,eps", [(0.3, 1.5, 0.0, 1.0, 0.5), (0.0, 1.0, 0.0, 1.0, 1.0),
                                             (1.0, 0.7, -0.5, 1.2, 0.2)])
def test_entropic_ot_1d_vs_grid_sinkhorn(m1, s1, m2, s2, eps):
    """The discretised problem (fine grid, densities as weights, KL against the product of
    the grid marginals) converges to the continuous entropic OT."""
    cf = gaussian_entropic_ot([m1], [s1 ** 2], [m2], [s2 ** 2], eps)
    assert cf == pytest.approx(_grid_entropic_ot_1d(m1, s1, m2, s2, eps), abs=2e-6)


def test_entropic_ot_2d_non_commuting_vs_grid_sinkhorn():
    """Correlated covariances that do not commute: the matrix formula against Sinkhorn on a
    2-D grid (44 x 44 nodes)."""
    A = np.array([[1.0, 0.5], [0.5, 0.8]])
    B = np.array([[0.6, -0.2], [-0.2, 1.1]])
    a_mu, b_mu = np.array([0.3, 0.0]), np.array([-0.2, 0.2])
    eps = 1.0
    g = np.linspace(-5.5, 5.5, 44)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    a = multivariate_normal(a_mu, A).pdf(X)
    b = multivariate_normal(b_mu, B).pdf(X)
    M = ot.dist(X, X, metric="sqeuclidean")
    grid = _discrete_eot(a / a.sum(), b / b.sum(), M, eps)
    cf = gaussian_entropic_ot(a_mu, A, b_mu, B, eps)
    assert cf == pytest.approx(grid, abs=2e-4)
    # and it is not the commuting (diagonal) answer: the off-diagonal terms matter
    assert abs(cf - gaussian_entropic_ot(a_mu, np.diag(np.diag(A)), b_mu,
                                         np.diag(np.diag(B)), eps)) > 1e-2


def test_entropic_ot_limits_and_sinkhorn_identities():
    rng = np.random.default_rng(2)
    A, B = _spd(rng, 3), _spd(rng, 3, 1.7)
    a, b = rng.normal(size=3), rng.normal(size=3)
    # eps -> 0: W2^2
    assert gaussian_entropic_ot(a, A, b, B, 1e-9) == pytest.approx(gaussian_w2(a, A, b, B) ** 2,
                                                                   rel=1e-6)
    # a translation: S_eps(alpha, alpha + tau) = |tau|^2 for every eps
    tau = np.array([0.3, -0.1, 0.2])
    for eps in (0.1, 1.0, 10.0):
        assert gaussian_sinkhorn_divergence(a, A, a + tau, A, eps) == pytest.approx(
            float(tau @ tau), rel=1e-9)
    assert gaussian_sinkhorn_divergence(a, A, a, A, 0.5) == pytest.approx(0.0, abs=1e-12)
    # S_eps is positive between different laws, and tends to W2^2 as eps -> 0
    assert gaussian_sinkhorn_divergence(a, A, b, B, 1.0) > 0
    assert gaussian_sinkhorn_divergence(a, A, b, B, 1e-9) == pytest.approx(
        gaussian_w2(a, A, b, B) ** 2, rel=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_w2([0, 0], [[1, 0], [0, -1]], [0, 0], np.eye(2))
    with pytest.raises(ValueError, match="dimension"):
        gaussian_w2([0], [1], [0, 0], np.eye(2))
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_w2([0, 0], [[1, 0.5], [0, 1]], [0, 0], np.eye(2))
    with pytest.raises(ValueError, match="eps"):
        gaussian_entropic_ot([0], [1], [0], [1], 0)
