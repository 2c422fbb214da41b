"""The fast paths of issue 15, each against an independent (slower, plainer) computation of the
same quantity: the grid engine's batched step maps and spline against scipy's
``map_coordinates`` and a step-by-step pull-back, the two-component score against the
logsumexp formula, the one-GEMM mixture score and Jacobian (and their one-hot shortcut)
against the textbook per-component formulas, the Cholesky helper's row flags, the doubling
characteristic-function blocks against evaluating every frequency, and the CLI's thread
policy. About 5 s in all on an idle machine."""
import math
import os

import numpy as np
import pytest
import torch
from scipy.ndimage import map_coordinates
from scipy.special import logsumexp

import theory.laws.grid1d as g
from theory.distances.exact import _gaussian_log_cf, _gaussian_log_cf_sum
from theory.laws.base import GaussianFactor
from theory.laws.pushforward import _cholesky_in_place, _lin_dense, _lin_mixture
from theory.mixture1d import Mixture1D, score_rows
from theory.priors import GaussianMixture, make_prior
from theory.samplers import sampler_rule
from theory.schedules import li_schedule

F64 = torch.float64


def _score_reference(w, m, v, x):
    """s and s' from the logsumexp responsibilities (K-vectorised, no special cases)."""
    lc = np.log(w) - 0.5 * np.log(v) - 0.5 * (x[:, None] - m) ** 2 / v
    r = np.exp(lc - logsumexp(lc, axis=1, keepdims=True))
    u = (m - x[:, None]) / v
    s = (r * u).sum(1)
    return s, (r * (u - s[:, None]) ** 2).sum(1) - (r / v).sum(1)


@pytest.mark.parametrize("w,m,v", [([0.5, 0.5], [-2.0, 2.0], [0.0625, 0.0625]),
                                   ([0.3, 0.7], [-1.0, 2.5], [0.01, 0.4]),
                                   ([1.0], [0.5], [0.3]),
                                   ([0.2, 0.3, 0.5], [-1.0, 0.0, 2.0], [0.1, 0.2, 0.3])])
def test_score_rows_matches_logsumexp_formula(w, m, v):
    w, m, v = (np.array(a, float) for a in (w, m, v))
    x = np.linspace(-12, 12, 4001)
    s, ds = Mixture1D(w, m, v).score_and_derivative(x)
    s_ref, ds_ref = _score_reference(w, m, v, x)
    np.testing.assert_allclose(s, s_ref, rtol=1e-12, atol=1e-12 * np.abs(s_ref).max())
    np.testing.assert_allclose(ds, ds_ref, rtol=1e-10, atol=1e-12 * np.abs(ds_ref).max())
    # rows: one mixture per row of x (the marginals of a block of steps)
    abar = np.array([0.05, 0.5, 0.999])
    M, V = np.sqrt(abar)[:, None] * m, abar[:, None] * v + (1 - abar)[:, None]
    X = np.stack([x, 0.5 * x, x + 1.0])
    S, D = score_rows(w, M, V, X)
    for i in range(3):
        s_ref, ds_ref = _score_reference(w, M[i], V[i], X[i])
        np.testing.assert_allclose(S[i], s_ref, rtol=1e-12, atol=1e-12 * np.abs(s_ref).max())
        np.testing.assert_allclose(D[i], ds_ref, rtol=1e-10, atol=1e-12 * np.abs(ds_ref).max())


def test_spline_matches_map_coordinates():
    """The 'nearest' cubic B-spline of scipy.ndimage (edge padding, filter, evaluation),
    rebuilt from its coefficients by four gathers, at points inside and just outside."""
    h, x = 0.01, (np.arange(2001) - 1000) * 0.01
    lp = -0.5 * x * x + 0.3 * np.sin(3 * x) + 0.01 * x ** 3
    y = np.sort(np.random.default_rng(0).uniform(x[0] - 0.05, x[-1] + 0.05, 3000))
    ref = map_coordinates(lp, [(y - x[0]) / h], order=3, mode="nearest")
    out = g._spline_eval(g._spline_coefficients(lp), (y - x[0]) / h)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def _pull_back_reference(x, logp, score, a, b, h):
    """One step as the engine did it before the batching: np.interp, one Newton step, the
    density through map_coordinates (the slope taken at the corrected preimage)."""
    sc, dsc = score(x)
    u = a * x + b * sc
    y = np.interp(x, u, x)
    sc, dsc = score(y)
    y = y - (a * y + b * sc - x) / (a + b * dsc)
    Jy = a + b * score(y)[1]            # the slope at the corrected preimage
    lp = map_coordinates(logp, [(y - x[0]) / h], order=3, mode="nearest") - np.log(Jy)
    lp[(x < u[0]) | (x > u[-1])] = -np.inf
    return lp


def test_batched_step_maps_match_step_by_step_pull_back():
    mix = Mixture1D(np.array([0.5, 0.5]), np.array([-2.0, 2.0]), np.array([0.0625, 0.0625]))
    rule = sampler_rule("li-ode", li_schedule(200))
    s = rule.schedule
    h = 0.01
    x = (np.arange(2001) - 1000) * h
    logp = -0.5 * x * x - 0.5 * math.log(2 * math.pi)
    ts = np.array([200, 150, 60, 3, 2])
    maps = g._StepMaps(x, h, rule.a[ts], rule.b[ts],
                       g._mixture_rows(mix, s.alpha_bar[ts], s.one_minus_alpha_bar[ts]))
    assert not maps.folded.any()
    coef = g._spline_coefficients(logp)
    for r, t in enumerate(ts):
        score = mix.marginal(s.alpha_bar[t], s.one_minus_alpha_bar[t]).score_and_derivative
        ref = _pull_back_reference(x, logp, score, rule.a[t], rule.b[t], h)
        new = maps.spline(r, coef) - np.log(maps.jac[r])
        inside = np.isfinite(ref)
        assert np.array_equal(inside, np.isfinite(new))
        np.testing.assert_allclose(new[inside], ref[inside], rtol=0, atol=1e-10)
        np.testing.assert_allclose(g._pull_back(x, logp, score, rule.a[t], rule.b[t], h)[inside],
                                   ref[inside], rtol=0, atol=1e-10)


def test_step_maps_flag_a_folding_step():
    """A map with a_t + b_t s'(y) <= 0 somewhere is flagged (the engine then pushes forward)."""
    mix = Mixture1D(np.array([0.5, 0.5]), np.array([-2.0, 2.0]), np.array([0.0625, 0.0625]))
    h, x = 0.02, (np.arange(1001) - 500) * 0.02
    rows = g._mixture_rows(mix, np.array([0.9, 0.9]), np.array([0.1, 0.1]))
    # s' reaches -1/0.1625 at the modes: b = 0.3 folds there, b = 0.01 does not
    maps = g._StepMaps(x, h, np.array([1.0, 1.0]), np.array([0.3, 0.01]), rows)
    assert maps.folded.tolist() == [True, False]


def test_blur_matches_direct_gaussian_convolution():
    """The rfft blur (end padding, cut frequencies) against the continuous convolution of a
    Gaussian density, which is Gaussian: N(0.3, 0.5^2) * N(0, c^2) = N(0.3, 0.5^2 + c^2)."""
    h, x = 0.01, (np.arange(2001) - 1000) * 0.01
    for c in (0.003, 0.05, 0.4):
        p = np.exp(-0.5 * (x - 0.3) ** 2 / 0.25)
        out = g._blur_linear(p, c, h)
        v = 0.25 + c * c
        ref = math.sqrt(0.25 / v) * np.exp(-0.5 * (x - 0.3) ** 2 / v)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-13)


def _gmm_reference(m: GaussianMixture, x):
    """Score and Jacobian from the textbook formulas, per component by linear solves."""
    K = m.n_components
    covs, means, w = m.covs, m.means, m.weights
    diffs = [torch.linalg.solve(covs[k], (means[k] - x).T).T for k in range(K)]   # C^-1(m - x)
    logc = torch.stack([torch.log(w[k]) - 0.5 * ((means[k] - x) * diffs[k]).sum(1)
                        - 0.5 * torch.logdet(covs[k]) for k in range(K)], 1)
    r = torch.softmax(logc, 1)
    v = torch.stack(diffs, 1)                                          # (n, K, d)
    s = (r[:, :, None] * v).sum(1)
    J = sum(r[:, k, None, None] * (-torch.linalg.inv(covs[k])
                                   + v[:, k, :, None] * v[:, k, None, :]) for k in range(K))
    return s, J - s[:, :, None] * s[:, None, :]


@pytest.mark.parametrize("abar", [0.02, 0.5, 1.0])
def test_mixture_score_and_jacobian_match_textbook_formulas(abar):
    prior = make_prior("gmm", 6, seed=3)
    m = prior.marginal(abar) if abar < 1 else prior
    gen = torch.Generator().manual_seed(1)
    x = m.sample(300, generator=gen) + 0.5 * torch.randn(300, 6, generator=gen, dtype=F64)
    s_ref, J_ref = _gmm_reference(m, x)
    scale = float(J_ref.abs().max())
    torch.testing.assert_close(m.score(x), s_ref, rtol=1e-10, atol=1e-10 * float(s_ref.abs().max()))
    torch.testing.assert_close(m.score_jacobian(x), J_ref, rtol=1e-9, atol=1e-10 * scale)
    s, J = m.score_and_jacobian(x)
    torch.testing.assert_close(s, s_ref, rtol=1e-10, atol=1e-10 * float(s_ref.abs().max()))
    torch.testing.assert_close(J, J_ref, rtol=1e-9, atol=1e-10 * scale)
    s2, J_rest, hot = m.score_and_jacobian(x, skip_one_hot=True)
    torch.testing.assert_close(s2, s_ref, rtol=1e-10, atol=1e-10 * float(s_ref.abs().max()))
    P = torch.linalg.inv(m.covs)
    rest = hot < 0
    torch.testing.assert_close(J_rest, J_ref[rest], rtol=1e-9, atol=1e-10 * scale)
    if bool((~rest).any()):         # exactly one-hot rows: the Jacobian is -P_k
        torch.testing.assert_close(-P[hot[~rest]], J_ref[~rest], rtol=1e-9, atol=1e-10 * scale)
    if abar == 1.0:
        assert bool((~rest).any())  # well separated components: some rows are one-hot


@pytest.mark.parametrize("abar,spread", [(0.5, 1.0), (0.02, 1.0), (0.999, 1.0), (0.5, 40.0)])
def test_fused_mixture_score_matches_per_component_formula(abar, spread):
    """The fused CPU score (one GEMM per block for every component's quadratic form and linear
    term, einsum passes, in-place log-sum-exp) against the per-component textbook formula
    (linear solves, torch.softmax) to 1e-12, at d = 64, K = 8, over several blocks and a
    partial one; spread 40 puts the points far out, where the unshifted exponentials would
    underflow; and against the blockwise torch path it replaces (float32, autograd)."""
    prior = make_prior("gmm", 64, seed=0)
    m = prior.marginal(abar)
    gen = torch.Generator().manual_seed(4)
    n = GaussianMixture._FUSED_BLOCK * 2 + 77
    x = m.sample(n, generator=gen) + spread * 0.1 * torch.randn(n, 64, generator=gen, dtype=F64)
    s_ref, _ = _gmm_reference(m, x)
    s = m.score(x)
    scale = float(s_ref.abs().max())
    torch.testing.assert_close(s, s_ref, rtol=1e-12, atol=1e-12 * scale)
    blockwise = m._per_block(x, lambda logc, xP: m._score_of(m._softmax(logc), xP))
    torch.testing.assert_close(s, blockwise, rtol=1e-12, atol=1e-12 * scale)
    xg = x[:50].clone().requires_grad_(True)                   # autograd: the torch path
    torch.testing.assert_close(m.score(xg).detach(), s[:50], rtol=1e-12, atol=1e-12 * scale)
    m32 = GaussianMixture(m.weights, m.means, m.covs, dtype=torch.float32)
    torch.testing.assert_close(m32.score(x[:50]).double(), s[:50], rtol=1e-3, atol=1e-3 * scale)
    assert m.score(x[:1]).shape == (1, 64)


def test_fused_mixture_score_is_thread_safe():
    """The fused score's scratch arrays are per thread: scores computed in four threads at
    once equal the ones computed alone."""
    from concurrent.futures import ThreadPoolExecutor
    m = make_prior("gmm", 64, seed=0).marginal(0.4)
    gen = torch.Generator().manual_seed(5)
    xs = [m.sample(700 + 13 * i, generator=gen) for i in range(8)]
    alone = [m.score(x) for x in xs]
    with ThreadPoolExecutor(4) as ex:
        together = list(ex.map(m.score, xs))
    for a, b in zip(alone, together):
        assert torch.equal(a, b)


def test_mixture_linearisation_matches_dense_cholesky():
    """The push-forward step of a mixture (one-hot rows through K per-component factors)
    against the dense path (every row's matrix factorised), and its solve against torch."""
    prior = make_prior("gmm", 8, seed=0)
    gen = torch.Generator().manual_seed(2)
    for abar in (0.05, 0.9, 0.999):
        m = prior.marginal(abar)
        y = m.sample(200, generator=gen)
        a, b = 1.01, 0.02 * (1 - abar) + 1e-3
        fast = _lin_mixture(m, y, a, b)
        dense = _lin_dense(y, m.score(y), m.score_jacobian(y), a, b)
        torch.testing.assert_close(fast.image, dense.image, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(fast.logdet, dense.logdet, rtol=1e-12, atol=1e-10)
        assert bool(fast.ok.all()) and bool(dense.ok.all())
        r = torch.randn(200, 8, generator=gen, dtype=F64)
        M = b * m.score_jacobian(y) + a * torch.eye(8, dtype=F64)
        torch.testing.assert_close(fast.solve(r), torch.linalg.solve(M, r[:, :, None])[:, :, 0],
                                   rtol=1e-9, atol=1e-11)


def test_cholesky_in_place_flags_the_matrices_that_are_not_positive_definite():
    """The in-place LAPACK factors (U = L^T in the upper triangles) against M = U^T U, the
    failed rows flagged and replaced by the identity, and the torch path (lower factors)."""
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(5, 4, 4, generator=gen, dtype=F64)
    M0 = A @ A.transpose(1, 2) + 0.1 * torch.eye(4, dtype=F64)
    F, ok, upper = _cholesky_in_place(M0.clone())
    assert upper and bool(ok.all())
    U = torch.triu(F)
    torch.testing.assert_close(U.transpose(1, 2) @ U, M0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.tril(F, -1), torch.tril(M0, -1), rtol=0, atol=0)
    M = M0.clone()
    M[2] = -M[2]
    M32 = M.to(torch.float32)
    F, ok, upper = _cholesky_in_place(M)
    assert ok.tolist() == [True, True, False, True, True]
    U = torch.triu(F)
    torch.testing.assert_close(U[ok].transpose(1, 2) @ U[ok], M0[ok], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(F[2], torch.eye(4, dtype=F64), rtol=0, atol=0)
    L, ok_t, upper_t = _cholesky_in_place(M32)                     # float32: torch, lower
    assert not upper_t and ok_t.tolist() == ok.tolist()
    torch.testing.assert_close(L[ok] @ L[ok].transpose(1, 2), M32[ok], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("b", [0.03, -0.01])
def test_mixture_step_matrices_match_the_textbook_jacobian(b):
    """M = a I + b grad s from the responsibilities-weighted (a I - b P_k) and |b| W^T W (one
    product and one accumulated GEMM) against the textbook Jacobian, with the one-hot rows
    left out as score_and_jacobian leaves them, over several blocks."""
    prior = make_prior("gmm", 16, seed=2)
    gen = torch.Generator().manual_seed(3)
    for abar in (0.3, 1.0):
        m = prior.marginal(abar) if abar < 1 else prior
        x = m.sample(600, generator=gen) + 0.2 * torch.randn(600, 16, generator=gen, dtype=F64)
        s_ref, J_ref = _gmm_reference(m, x)
        a = 1.02
        s, M, hot = m.score_and_step_matrices(x, a, b)
        _, _, hot2 = m.score_and_jacobian(x, skip_one_hot=True)
        assert torch.equal(hot, hot2)
        rest = hot < 0
        M_ref = a * torch.eye(16, dtype=F64) + b * J_ref[rest]
        torch.testing.assert_close(s, s_ref, rtol=1e-10, atol=1e-10 * float(s_ref.abs().max()))
        torch.testing.assert_close(M, M_ref, rtol=1e-10, atol=1e-12 * float(M_ref.abs().max()))


def test_gaussian_cf_blocks_match_every_frequency():
    """The doubling blocks stop where the transform is below e^-80; evaluating every
    frequency gives the same transform there and negligible moduli beyond."""
    gen = np.random.default_rng(0)
    n_f = 100
    f = GaussianFactor(gen.normal(0, 0.1, n_f), 1 + gen.uniform(0, 0.1, n_f),
                       gen.normal(0, 0.1, n_f), 1 + gen.uniform(0, 0.1, n_f),
                       np.ones(n_f, dtype=np.int64))
    n, delta = 1 << 14, 1e-3
    omega = 2 * np.pi * np.fft.fftfreq(n, d=delta)
    out = _gaussian_log_cf_sum(f, omega, n)
    full = (f.mult[:, None] * _gaussian_log_cf(f, -omega)).sum(0)
    done = np.isfinite(out.real)
    assert 64 <= done.sum() < n // 4                 # a few hundred frequencies, not all
    np.testing.assert_allclose(out[done], full[done], rtol=1e-12, atol=1e-12)
    assert np.all(full.real[~done] < -80)


def test_threads_option_sets_the_thread_variables(monkeypatch):
    from experiments.cli.main import THREAD_VARIABLES, apply_thread_policy, main
    for var in THREAD_VARIABLES:
        monkeypatch.setenv(var, "7")
    apply_thread_policy(0)                           # 0: the libraries' own choice
    assert all(os.environ[v] == "7" for v in THREAD_VARIABLES)
    threads = torch.get_num_threads()
    try:
        apply_thread_policy(1)
        assert all(os.environ[v] == "1" for v in THREAD_VARIABLES)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert main(["measure", "--T", "10", "--threads", "-1"]) == 2
