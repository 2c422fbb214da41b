"""theory.lowrank: problems, operators, gradients, the factor distance, rate fits, sweeps.

The rate-regression tests of the ScaledGD / ScaledGD(lambda) theorems are in
tests/test_lowrank_rates.py.
"""
import json
import math

import numpy as np
import pytest
import torch
from scipy import optimize

from theory.lowrank import (GaussianSensingOperator, factor_distance, fit_linear_rate, gd,
                            ground_truth, iterations_to, kappa_exponent, make_problem,
                            run_point, scaled_gd, scaled_gd_lambda,
                            seed_interval, sparse_threshold, spectral_init, configs_kappa,
                            configs_noise, configs_stepsize, summarize_kappa, PROBLEMS)

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- ground truth
@pytest.mark.parametrize("kappa", [1.0, 7.0, 100.0])
def test_ground_truth_spectrum_and_factors(kappa, device):
    t = ground_truth(30, 25, 4, kappa, seed=3, device=device)
    assert t.X.dtype == torch.float64 and t.X.device.type == device
    sv = torch.linalg.svdvals(t.X).cpu().numpy()
    np.testing.assert_allclose(sv[:4], np.linspace(1, 1 / kappa, 4), rtol=1e-12, atol=1e-14)
    assert sv[4] < 1e-13
    np.testing.assert_allclose((t.U.T @ t.U).cpu().numpy(), np.eye(4), atol=1e-13)
    np.testing.assert_allclose((t.L @ t.R.T).cpu().numpy(), t.X.cpu().numpy(), atol=1e-14)
    assert t.kappa == kappa and t.sigma_max == 1.0
    assert math.isclose(t.sigma_min, 1 / kappa, rel_tol=1e-12)


def test_ground_truth_seeded_and_psd():
    a = ground_truth(10, 10, 2, 5.0, seed=1)
    b = ground_truth(10, 10, 2, 5.0, seed=1)
    c = ground_truth(10, 10, 2, 5.0, seed=2)
    assert torch.equal(a.X, b.X) and not torch.equal(a.X, c.X)
    # an explicit generator gives the same numbers as the int seed
    g = torch.Generator().manual_seed(1)
    assert torch.equal(ground_truth(10, 10, 2, 5.0, seed=g).X, a.X)
    p = ground_truth(10, None, 2, 5.0, psd=True, seed=0)
    assert p.psd and torch.allclose(p.X, p.X.T, atol=1e-15)
    assert torch.linalg.eigvalsh(p.X).min() > -1e-14
    assert not a.psd  # independent V


@pytest.mark.parametrize("call, match", [
    (lambda: ground_truth(5, 5, 6, 2.0), "rank r = 6 exceeds"),
    (lambda: ground_truth(5, 5, 2, 0.5), "kappa must be"),
    (lambda: ground_truth(5, 5, 2, float("nan")), "kappa must be"),
    (lambda: ground_truth(5, 5, 0, 2.0), "rank r must be"),
    (lambda: ground_truth(5.0, 5, 2, 2.0), "n1 must be an integer"),
    (lambda: ground_truth(5, 4, 2, 2.0, psd=True), "PSD ground truth needs"),
    (lambda: ground_truth(5, 5, 2, 2.0, seed=-1), "seed must be"),
    (lambda: make_problem("completion", n=10, r=2, p=0.0), r"p must lie in \(0, 1\]"),
    (lambda: make_problem("completion", n=10, r=2, p=1.5), r"p must lie in \(0, 1\]"),
    (lambda: make_problem("rpca", n=10, r=2, alpha=1.0), r"alpha must lie in \[0, 1\)"),
    (lambda: make_problem("sensing", n=10, r=2, snr=-3.0), "snr must be"),
    (lambda: make_problem("sensing", n=10, r=2, oversampling=0), "oversampling must be"),
    (lambda: make_problem("tensor", n=10, r=2), "unknown problem"),
    (lambda: make_problem("sensing", n=10, r=11), "exceeds"),
])
def test_bad_problem_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_algorithm_input():
    pr = make_problem("sensing", n=8, r=2, kappa=2.0, oversampling=5, seed=0)
    psd = make_problem("psd-sensing", n=8, r=2, kappa=2.0, oversampling=5, seed=0)
    with pytest.raises(ValueError, match="eta must be a positive"):
        scaled_gd(pr, eta=0.0)
    with pytest.raises(ValueError, match="eta must be a positive"):
        gd(pr, eta=-1.0)
    with pytest.raises(ValueError, match="iterations must be"):
        scaled_gd(pr, iterations=-2)
    with pytest.raises(ValueError, match="rank must be an integer with r = 2 <= rank"):
        scaled_gd_lambda(psd, rank=1)
    with pytest.raises(ValueError, match="rank must be"):
        scaled_gd_lambda(psd, rank=9)
    with pytest.raises(ValueError, match="lambda must be a positive"):
        scaled_gd_lambda(psd, rank=3, lam=0.0)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        scaled_gd_lambda(psd, rank=3, alpha=0.0)
    with pytest.raises(ValueError, match="runs on a psd-sensing problem"):
        scaled_gd_lambda(pr)
    with pytest.raises(ValueError, match="runs on sensing, completion or rpca"):
        scaled_gd(psd)


# ----------------------------------------------------------------------------- operator
def test_matrix_free_operator_equals_dense_and_is_adjoint(device):
    kw = dict(seed=5, device=device, block_rows=7, gram=False)  # 7 rows/block: many blocks
    dense = GaussianSensingOperator(6, 5, 40, dense=True, **kw)
    free = GaussianSensingOperator(6, 5, 40, dense=False, **kw)
    assert dense.dense and not free.dense
    g = torch.Generator(device=device).manual_seed(0)
    X = torch.randn(6, 5, generator=g, device=device, dtype=torch.float64)
    z = torch.randn(40, generator=g, device=device, dtype=torch.float64)
    A = dense.to_dense()
    assert A.shape == (40, 30)
    assert torch.equal(free.to_dense(), A)          # the same numbers, block by block
    np.testing.assert_allclose(free.forward(X).cpu(), (A @ X.reshape(-1)).cpu(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dense.forward(X).cpu(), free.forward(X).cpu(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(free.adjoint(z).cpu(), (A.T @ z).reshape(6, 5).cpu(), rtol=1e-13, atol=1e-14)
    # adjointness <A(X), z> = <X, A*(z)>
    lhs = float(free.forward(X) @ z)
    rhs = float((X * free.adjoint(z)).sum())
    assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + 1)
    # the fused normal operator and the Gram route agree with A^T(A x - y)
    y = free.forward(X) + 0.1 * z
    ref = (A.T @ (A @ X.reshape(-1) - y)).reshape(6, 5)
    gram = GaussianSensingOperator(6, 5, 40, dense=True, **{**kw, "gram": True})
    assert gram.uses_gram
    for op in (dense, free, gram):
        np.testing.assert_allclose(op.normal(X, y).cpu(), ref.cpu(), rtol=1e-12, atol=1e-13)


def test_dense_budget_is_a_third_of_the_memory_share(monkeypatch):
    """The design is kept dense exactly when it fits a third of this worker's share of the
    available memory (never below 256 MiB), and the choice does not change its numbers."""
    import theory.checks
    from theory.lowrank.operators import MIN_DENSE_BYTES, dense_budget
    gib = 2 ** 30
    monkeypatch.setattr(theory.checks, "available_memory", lambda device="cpu": 12 * gib)
    monkeypatch.delenv("DIFFRATES_MEMORY_SHARE", raising=False)
    assert dense_budget() == 4 * gib
    monkeypatch.setenv("DIFFRATES_MEMORY_SHARE", "0.25")
    assert dense_budget() == gib
    monkeypatch.setattr(theory.checks, "available_memory", lambda device="cpu": None)
    assert dense_budget() == MIN_DENSE_BYTES
    # 40 x 30 float64 = 9600 bytes: dense under a budget of 3 * 0.5 * 9600, not of 3 * 0.49 * 9600
    nbytes = 40 * 30 * 8
    monkeypatch.setattr("theory.lowrank.operators.MIN_DENSE_BYTES", 1)
    monkeypatch.setattr(theory.checks, "available_memory", lambda device="cpu": 3 * 2 * nbytes)
    monkeypatch.setenv("DIFFRATES_MEMORY_SHARE", "0.5")
    kw = dict(seed=3, block_rows=7, gram=False)
    on = GaussianSensingOperator(6, 5, 40, **kw)
    monkeypatch.setenv("DIFFRATES_MEMORY_SHARE", "0.49")
    off = GaussianSensingOperator(6, 5, 40, **kw)
    assert on.dense and not off.dense
    assert torch.equal(on.to_dense(), off.to_dense())


def test_operator_entries_and_isometry():
    m = 4000
    op = GaussianSensingOperator(8, 8, m, seed=1)
    A = op.to_dense()
    # entries i.i.d. N(0, 1/m): sample variance within 5 standard errors
    v = float(A.var()) * m
    assert abs(v - 1) < 5 * math.sqrt(2 / A.numel())
    X = torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ratio = float(op.forward(X).pow(2).sum() / X.pow(2).sum())
    assert abs(ratio - 1) < 5 * math.sqrt(2 / m)   # E ||A(X)||^2 = ||X||_F^2


def test_symmetric_design():
    op = GaussianSensingOperator(7, 7, 30, seed=2, symmetric=True, gram=False)
    A = op.to_dense().reshape(30, 7, 7)
    assert torch.allclose(A, A.transpose(1, 2))
    g = torch.Generator().manual_seed(0)
    X = torch.randn(7, 7, dtype=torch.float64, generator=g)
    z = torch.randn(30, dtype=torch.float64, generator=g)
    assert torch.allclose(op.forward(X), A.reshape(30, -1) @ X.reshape(-1), atol=1e-13)
    Z = op.adjoint(z)
    assert torch.allclose(Z, Z.T, atol=1e-15)
    assert abs(float(op.forward(X) @ z) - float((X * Z).sum())) < 1e-12
    with pytest.raises(ValueError, match="symmetric design needs"):
        GaussianSensingOperator(7, 6, 30, symmetric=True)
    with pytest.raises(ValueError, match="expected a matrix of shape"):
        op.forward(torch.zeros(6, 7, dtype=torch.float64))


def test_sparse_threshold_against_brute_force():
    g = torch.Generator().manual_seed(4)
    Z = torch.randn(9, 12, dtype=torch.float64, generator=g)
    alpha = 0.3
    S = sparse_threshold(Z, alpha).numpy()
    z = Z.numpy()
    k_row, k_col = int(alpha * 12), int(alpha * 9)
    ref = np.zeros_like(z)
    for i in range(9):
        for j in range(12):
            row_rank = (np.abs(z[i]) > abs(z[i, j])).sum()
            col_rank = (np.abs(z[:, j]) > abs(z[i, j])).sum()
            if row_rank < k_row and col_rank < k_col:
                ref[i, j] = z[i, j]
    np.testing.assert_array_equal(S, ref)
    assert (S != 0).sum(axis=1).max() <= k_row and (S != 0).sum(axis=0).max() <= k_col
    assert not np.any(sparse_threshold(Z, 0.05).numpy())     # floor(0.05 * 9) = 0


def test_noise_at_snr():
    snr = 100.0
    pr = make_problem("completion", n=200, r=3, kappa=5.0, p=1.0, snr=snr, seed=0)
    noise = pr.Y - pr.truth.X
    # per-entry std ||X*||_F / (n snr), so ||N||_F ~ ||X*||_F / snr
    assert abs(float(noise.norm()) / pr.truth.fro * snr - 1) < 0.02
    assert math.isclose(pr.noise_std, pr.truth.fro / (200 * snr), rel_tol=1e-12)
    s = make_problem("sensing", n=10, r=2, kappa=5.0, oversampling=50, snr=snr, seed=0)
    e = s.y - s.op.forward(s.truth.X)
    assert abs(float(e.std()) / s.noise_std - 1) < 0.1   # 1000 draws
    clean = make_problem("sensing", n=10, r=2, kappa=5.0, oversampling=50, seed=0)
    assert torch.equal(clean.op.to_dense(), s.op.to_dense())  # noise drawn after the design


# ----------------------------------------------------------------------------- gradients
def _factors(pr, g):
    n1, n2, r = pr.truth.n1, pr.truth.n2, pr.truth.r
    L = pr.truth.L + 0.1 * torch.randn(n1, r, dtype=torch.float64, generator=g)
    R = pr.truth.R + 0.1 * torch.randn(n2, r, dtype=torch.float64, generator=g)
    return L, R


@pytest.mark.parametrize("kind", ["sensing", "completion", "rpca"])
def test_gradients_against_autograd(kind):
    kw = {"sensing": dict(oversampling=5), "completion": dict(p=0.3),
          "rpca": dict(alpha=0.1)}[kind]
    pr = make_problem(kind, n=12, r=3, kappa=4.0, snr=1e3, seed=1, **kw)
    L, R = _factors(pr, torch.Generator().manual_seed(0))
    gL, gR = pr.gradients(L, R)
    La, Ra = L.clone().requires_grad_(), R.clone().requires_grad_()
    aL, aR = torch.autograd.grad(pr.loss(La, Ra), (La, Ra))
    np.testing.assert_allclose(gL.numpy(), aL.numpy(), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(gR.numpy(), aR.numpy(), rtol=1e-11, atol=1e-13)
    assert float(gL.norm()) > 1e-3   # a non-trivial point


def test_sensing_gradient_gram_and_matrix_free_agree():
    a = make_problem("sensing", n=6, r=2, kappa=3.0, oversampling=20, seed=2)    # m > n^2
    b = make_problem("sensing", n=6, r=2, kappa=3.0, oversampling=20, seed=2, dense=False,
                     gram=False)
    assert a.op.uses_gram and not b.op.dense and not b.op.uses_gram
    L, R = _factors(a, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(a.gradients(L, R)[0].numpy(), b.gradients(L, R)[0].numpy(),
                               rtol=1e-11, atol=1e-13)


def test_psd_gradient_against_autograd():
    pr = make_problem("psd-sensing", n=10, r=2, kappa=5.0, oversampling=8, snr=1e3, seed=0)
    X = torch.randn(10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    Xa = X.clone().requires_grad_()
    (ref,) = torch.autograd.grad(pr.loss(Xa), Xa)
    np.testing.assert_allclose(pr.gradient(X).numpy(), ref.numpy(), rtol=1e-11, atol=1e-13)


# ----------------------------------------------------------------------------- factor distance
def _objective(L, R, t, Q):
    s = t.sigma.sqrt().numpy()
    Q = np.asarray(Q).reshape(L.shape[1], L.shape[1])
    a = (L.numpy() @ Q - t.L.numpy()) * s
    b = (R.numpy() @ np.linalg.inv(Q).T - t.R.numpy()) * s
    return float((a * a).sum() + (b * b).sum())


def test_factor_distance_zero_invariant_and_minimal():
    t = ground_truth(15, 12, 3, 10.0, seed=0)
    g = torch.Generator().manual_seed(0)
    d0, _ = factor_distance(t.L, t.R, t)
    assert d0 < 1e-14
    # the distance depends on (L, R) only through the GL(r) orbit
    L, R = t.L + 0.05 * torch.randn(15, 3, dtype=torch.float64, generator=g), t.R
    Q = torch.eye(3, dtype=torch.float64) + 0.5 * torch.randn(3, 3, dtype=torch.float64, generator=g)
    d1, Q1 = factor_distance(L, R, t)
    d2, _ = factor_distance(L @ Q, R @ torch.linalg.inv(Q).T, t)
    assert abs(d1 - d2) < 1e-10 * d1
    assert abs(d1 ** 2 - _objective(L, R, t, Q1.numpy())) < 1e-12
    # no start of a general-purpose optimiser beats it
    best = min(optimize.minimize(lambda q: _objective(L, R, t, q),
                                 (np.eye(3) + 0.3 * np.random.default_rng(k).normal(size=(3, 3))).ravel(),
                                 method="BFGS", options={"gtol": 1e-12}).fun for k in range(5))
    assert d1 ** 2 <= best * (1 + 1e-8)
    # and it is below the identity alignment
    assert d1 ** 2 < _objective(L, R, t, np.eye(3))


def test_factor_distance_rank_one_closed_form():
    # r = 1: Q = q scalar; minimise s (||q l - l*||^2 + ||r / q - r*||^2) on q > 0 and q < 0
    t = ground_truth(8, 6, 1, 1.0, seed=1)
    g = torch.Generator().manual_seed(2)
    L = 2.0 * t.L + 0.3 * torch.randn(8, 1, dtype=torch.float64, generator=g)
    R = 0.5 * t.R + 0.3 * torch.randn(6, 1, dtype=torch.float64, generator=g)
    f = lambda q: _objective(L, R, t, [[q]])
    ref = min(optimize.minimize_scalar(f, bounds=(1e-3, 1e3), method="bounded",
                                       options={"xatol": 1e-12}).fun,
              optimize.minimize_scalar(f, bounds=(-1e3, -1e-3), method="bounded",
                                       options={"xatol": 1e-12}).fun)
    d, _ = factor_distance(L, R, t)
    assert abs(d ** 2 - ref) < 1e-9 * ref


# ----------------------------------------------------------------------------- rates
def test_fit_linear_rate_on_a_geometric_sequence():
    t = np.arange(200)
    e = np.where(t < 10, 0.5, 0.5 * 0.7 ** (t - 10))    # a plateau, then rho = 0.7
    e = np.maximum(e, 1e-15)                            # and a floor
    lr = fit_linear_rate(e, lower=1e-12, upper=1e-2)
    assert abs(lr.rate - 0.7) < 1e-12 and lr.ci[1] - lr.ci[0] < 1e-10
    t0 = int(np.ceil(10 + np.log(1e-2 / 0.5) / np.log(0.7)))
    t1 = int(np.floor(10 + np.log(1e-12 / 0.5) / np.log(0.7)))
    assert lr.window == (t0, t1) and lr.n_points == t1 - t0 + 1
    assert iterations_to(e, 1e-10) == int(np.ceil(10 + np.log(1e-10 / 0.5) / np.log(0.7)))
    assert iterations_to(e, 1e-16) is None
    none = fit_linear_rate(np.full(50, 0.3))
    assert none.window is None and math.isnan(none.rate) and "never" in none.note
    # scale: the thresholds apply to e / scale
    assert fit_linear_rate(e * 7.0, 1e-12, 1e-2, scale=7.0).window == (t0, t1)
    with pytest.raises(ValueError, match="need 0 < lower < upper"):
        fit_linear_rate(e, lower=1e-2, upper=1e-4)


def test_seed_interval_and_kappa_exponent():
    iv = seed_interval([1.0, 2.0, 3.0])
    assert iv.mean == 2.0
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n)
    assert abs(iv.hi - 2.0 - half) < 1e-9 and abs(2.0 - iv.lo - half) < 1e-9
    g = seed_interval([10.0, 1000.0], log=True)
    assert abs(g.mean - 100.0) < 1e-9
    with pytest.raises(ValueError, match="finite"):
        seed_interval([1.0, float("nan")])
    kappas = np.array([1, 2, 5, 10, 20, 50, 100.0])
    rng = np.random.default_rng(0)
    counts = 30 * kappas[:, None] ** 0.8 * np.exp(0.02 * rng.normal(size=(7, 4)))
    fit = kappa_exponent(kappas, counts)
    assert fit.ci[0] < 0.8 < fit.ci[1] and fit.ci[1] - fit.ci[0] < 0.1
    with pytest.raises(ValueError, match="positive and finite"):
        kappa_exponent(kappas, np.where(counts > 100, np.nan, counts))
    with pytest.raises(ValueError, match="kappa must be"):
        kappa_exponent(kappas - 1, counts)


# ----------------------------------------------------------------------------- runs
def test_spectral_init_is_top_r_svd():
    pr = make_problem("completion", n=30, r=3, kappa=3.0, p=0.5, seed=0)
    L0, R0 = spectral_init(pr)
    U, S, Vh = torch.linalg.svd(pr.Y / pr.p)
    np.testing.assert_allclose((L0 @ R0.T).numpy(), (U[:, :3] * S[:3] @ Vh[:3]).numpy(), atol=1e-12)
    np.testing.assert_allclose((L0.T @ L0).numpy(), (R0.T @ R0).numpy(), atol=1e-12)  # balanced


def test_one_step_of_each_rule():
    pr = make_problem("sensing", n=10, r=2, kappa=4.0, oversampling=10, seed=0)
    L0, R0 = spectral_init(pr)
    gL, gR = pr.gradients(L0, R0)
    L1 = L0 - 0.3 * gL @ torch.linalg.inv(R0.T @ R0)
    R1 = R0 - 0.3 * gR @ torch.linalg.inv(L0.T @ L0)
    run = scaled_gd(pr, eta=0.3, iterations=1)
    np.testing.assert_allclose(run.final[0].numpy(), L1.numpy(), atol=1e-13)
    np.testing.assert_allclose(run.final[1].numpy(), R1.numpy(), atol=1e-13)
    e1 = float((L1 @ R1.T - pr.truth.X).norm()) / pr.truth.fro
    assert abs(run.rel_error[1] - e1) < 1e-14
    d1, _ = factor_distance(L1, R1, pr.truth)
    assert abs(run.factor_distance[1] - d1) < 1e-9 * d1   # LM stops at rtol 1e-10 on d^2
    run = gd(pr, eta=0.3, iterations=1)
    np.testing.assert_allclose(run.final[0].numpy(), (L0 - 0.3 / pr.truth.sigma_max * gL).numpy(), atol=1e-13)
    psd = make_problem("psd-sensing", n=10, r=2, kappa=4.0, oversampling=10, seed=0)
    X0 = 1e-3 * torch.randn(10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lam = 0.2
    X1 = X0 - 0.5 * psd.gradient(X0) @ torch.linalg.inv(X0.T @ X0 + lam * torch.eye(4, dtype=torch.float64))
    run = scaled_gd_lambda(psd, rank=4, eta=0.5, lam=lam, iterations=1, init=X0)
    np.testing.assert_allclose(run.final[0].numpy(), X1.numpy(), atol=1e-15)
    assert run.factor_distance is None


def test_same_seed_same_run_and_device(device):
    kw = dict(n=12, r=2, kappa=5.0, seed=3, device=device)
    extra = {"sensing": {"oversampling": 20}, "completion": {"p": 0.6}, "rpca": {}}
    for kind in PROBLEMS[:3]:
        a = scaled_gd(make_problem(kind, **kw, **extra[kind]), iterations=30)
        b = scaled_gd(make_problem(kind, **kw, **extra[kind]), iterations=30)
        np.testing.assert_array_equal(a.rel_error, b.rel_error)
        assert a.final[0].device.type == device and a.final[0].dtype == torch.float64
        assert a.rel_error[-1] < a.rel_error[0]
    psd = make_problem("psd-sensing", oversampling=20, **kw)
    a = scaled_gd_lambda(psd, rank=4, iterations=30, seed=1)
    b = scaled_gd_lambda(psd, rank=4, iterations=30, seed=1)
    np.testing.assert_array_equal(a.rel_error, b.rel_error)


@pytest.mark.parametrize("kind", ["completion", "rpca"])
def test_scaledgd_converges_on_completion_and_rpca(kind):
    # the paper's sampling ratios (p = 0.2, alpha = 0.1) at a small size: both converge to
    # 1e-10 at kappa = 20, ScaledGD in fewer iterations than GD needs at kappa = 1
    pr = make_problem(kind, kappa=20.0, fast=True, seed=0)
    s = scaled_gd(pr, iterations=600)
    g1 = gd(make_problem(kind, kappa=1.0, fast=True, seed=0), iterations=600, track_distance=False)
    assert s.iterations_to(1e-10) is not None and g1.iterations_to(1e-10) is not None
    assert s.iterations_to(1e-10) < 3 * g1.iterations_to(1e-10)
    g20 = gd(pr, iterations=600, track_distance=False)
    assert g20.iterations_to(1e-10) is None or g20.iterations_to(1e-10) > 5 * s.iterations_to(1e-10)
    # the factor distance and the relative error fall together
    lr_d = fit_linear_rate(s.factor_distance, scale=pr.truth.fro)
    lr_e = fit_linear_rate(s.rel_error)
    assert abs(lr_d.rate - lr_e.rate) < 0.02


# ----------------------------------------------------------------------------- sweeps
def test_run_point_is_json_and_reproducible():
    cfg = {"problem": "sensing", "algorithm": "scaledgd", "n": 10, "r": 2, "kappa": 5.0,
           "oversampling": 20, "iterations": 200, "seed": 1, "label": "x"}
    a, b = run_point(cfg), run_point(cfg)
    json.dumps(a, allow_nan=False)
    assert a["rel_error"] == b["rel_error"] and a["config"]["label"] == "x"
    assert a["iterations_to_tol"] == iterations_to(a["rel_error"], 1e-10)
    assert a["theorem_rate"] == 0.7 and len(a["factor_distance"]) == len(a["rel_error"])
    assert a["rate_factor_distance"]["rate"] < 1 and a["final_factor_distance"] < 1e-12
    p = run_point({"problem": "psd-sensing", "algorithm": "scaledgd-lambda", "n": 10, "r": 2,
                   "kappa": 5.0, "oversampling": 20, "iterations": 50, "rank": 4})
    json.dumps(p, allow_nan=False)
    assert p["factor_distance"] is None and p["params"]["rank"] == 4
    with pytest.raises(ValueError, match="does not run on problem"):
        run_point({"problem": "sensing", "algorithm": "scaledgd-lambda"})
    with pytest.raises(ValueError, match="unknown algorithm"):
        run_point({"problem": "sensing", "algorithm": "adam"})


def test_grids():
    k = configs_kappa(True)
    panels = [c for c in k if c["part"] == "panel"]
    fits = [c for c in k if c["part"] == "fit"]
    assert len(panels) == 3 * 4 * 2
    assert {c["kappa"] for c in fits} == {1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0}
    assert {c["sampling"] for c in fits} == {"paper", "rip"}
    full = configs_kappa(False)
    assert {(c["n"], c["r"], c["oversampling"]) for c in full
            if c["part"] == "panel" and c["problem"] == "sensing"} == {(200, 10, 5.0)}
    assert {c["p"] for c in full if c["problem"] == "completion"} == {0.2}
    assert len(configs_noise(True)) == 3 * 3 * 2
    assert {c["snr"] for c in configs_noise(False)} == {1e2, 1e3, 1e4}
    s = configs_stepsize(False)
    assert len(s) == 4 * 60 * 2 and {c["iterations"] for c in s} == {80}
    assert min(c["eta"] for c in s) == 0.1 and abs(max(c["eta"] for c in s) - 1.2) < 1e-12
    for c in (panels[0], fits[0], configs_noise(True)[0], configs_stepsize(True)[0]):
        json.dumps(c, allow_nan=False)


def test_summarize_kappa_on_fake_results():
    res = []
    for k in (1, 2, 5, 10, 20, 50, 100):
        for s in range(3):
            for alg, n in (("scaledgd", 40 + s), ("gd", 40 * k + s)):
                res.append({"config": {"part": "fit", "sampling": "paper", "algorithm": alg,
                                       "kappa": float(k), "seed": s},
                            "iterations_to_tol": n})
    out = summarize_kappa(res)
    assert abs(out["paper"]["gd"]["fit"]["exponent"] - 1) < 0.01
    assert abs(out["paper"]["scaledgd"]["fit"]["exponent"]) < 0.01
    res[-1]["iterations_to_tol"] = None
    assert "error" in summarize_kappa(res)["paper"]["gd"]
