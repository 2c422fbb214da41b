r"""Push-forward densities of deterministic samplers, and Monte Carlo TV / KL from them:
THEORY.md section 5 (deterministic sampler, general GMM in moderate d).

A deterministic affine rule (:class:`theory.samplers.AffineRule` with ``c_t = 0``) is a map

.. math::
    \Phi = \phi_2 \circ \cdots \circ \phi_T, \qquad
    \phi_t(y) = a_t\, y + b_t\, s_t(y), \qquad Y_1 = \Phi(Y_T),\; Y_T = z \sim N(0, I_d).

Each step has the symmetric Jacobian :math:`M_t(y) = a_t I + b_t \nabla s_t(y)`
(:math:`\nabla s_t = \nabla^2 \log q_t` is the analytic score Jacobian of THEORY.md
section 4). If every :math:`M_t` is positive definite, :math:`\phi_t` is the gradient of the
strictly convex function :math:`\tfrac{a_t}{2}|y|^2 + b_t \log q_t(y)`, hence injective, and
the change of variables gives the law p of :math:`Y_1` exactly:

.. math::
    \log p(\Phi(z)) = \log N(z; 0, I_d) - \sum_{t=2}^{T} \log\det M_t(y_t).

The log determinants are accumulated along each trajectory in float64 by a Cholesky
factorisation of :math:`M_t` (:func:`torch.linalg.cholesky_ex`), which *is* the positive
definiteness test: a failed factorisation at a visited point means the step folds there
(the map may not be injective and the formula may not hold) and raises :class:`FoldError`
(or is reported, ``on_fold="report"``). Checking visited points is a necessary condition
only. Structured priors are handled without dense d x d matrices:

* :class:`~theory.priors.ProductPrior`: :math:`M_t` is diagonal (``score_jacobian_diag``);
* :class:`~theory.priors.SubspaceMixture`: :math:`M_t = U(a I_k + b \nabla s^{in}_t)U^\top
  + (a - b/v_\perp) P_\perp`, so :math:`\log\det M_t = \log\det(a I_k + b\nabla s^{in}_t)
  + (d-k)\log(a - b/v_\perp)`;
* any other prior (:class:`~theory.priors.GaussianMixture` with full covariances, or a
  user score with a ``jacobian(x, t)`` method): dense (n, d, d) batches.

**Inverse map.** :math:`\phi_t^{-1}(x)` is found by Newton's method on
:math:`a y + b s_t(y) = x` (the Jacobian is the same :math:`M_t`, so every iteration reuses the
Cholesky factor that gives the log determinant); converged to a residual of
``tol * (1 + |x|_2)``. This gives :math:`\log p` at *any* point, in particular at exact
samples of the target :math:`q = q_1` (``prior.marginal(alpha_bar_1)``, exact log density).

**TV estimators** (L = log p - log q, both exact at every sample):

* ``one-sided``: :math:`\mathrm{TV} = \int (p - q)_+ = E_p[(1 - e^{-L})_+]`; samples from p
  only (no inversion). The integrand lies in [0, 1]; as TV -> 0 with L nearly Gaussian its
  coefficient of variation tends to about 1.46 (THEORY.md section 5).
* ``tanh``: with :math:`m = (p+q)/2`, :math:`|p - q|/(p + q) = |\tanh(L/2)|`, so
  :math:`\mathrm{TV} = E_m|\tanh(L/2)| = \tfrac12 E_p|\tanh(L/2)| + \tfrac12 E_q|\tanh(L/2)|`,
  estimated by stratification: half the samples from p (sampler), half from q (exact draws,
  log p by inversion). Unbiased, integrand in [0, 1), coefficient of variation about 0.76 as
  TV -> 0 with L nearly symmetric (then about four times fewer samples for the same
  precision; each q-sample costs a few forward steps for the Newton inversion). The gain
  depends on the law of L: measured standard-error ratios (tanh / one-sided, equal n) were
  0.51-0.58 for li-ode on gauss and bimodal priors but 0.94 for ddim on gauss(2) at T = 100.

  Note: the tanh form can NOT be rewritten as an expectation under p alone with a bounded
  integrand: :math:`E_m[f] = E_p[f\,(1 + e^{-L})/2]` and
  :math:`|\tanh(L/2)|(1 + e^{-L})/2 = |1 - e^{-L}|/2`, i.e.
  :math:`\tfrac12(E_p[(1-e^{-L})_+] + E_p[(e^{-L}-1)_+])` - valid (q << p here) but with the
  unbounded weight :math:`e^{-L}`, whose variance can be infinite. That form is not offered.

**KL**: :math:`\mathrm{KL}(p\|q) = E_p[L]` (metric ``"kl_pq"``, from p-samples) and
:math:`\mathrm{KL}(q\|p) = E_q[-L]` (metric ``"kl"``, the convention of
:mod:`theory.distances`; from exact q-samples with log p by inversion).

Confidence intervals: CLT (sample standard deviation; for the stratified estimator
:math:`\mathrm{Var} = \tfrac14(s_p^2/n_p + s_q^2/n_q)`) or a percentile bootstrap (resampling
within each stratum). Randomness: all of z (n_p x d) is drawn first, then the q-samples, from
one torch generator, so results do not depend on ``batch_size`` and the same seed gives the
same numbers.

References:
    Li, Wei, Chen, Chi, ICLR 2024, arXiv:2306.09251 (the deterministic sampler, and the
    change-of-variables argument behind its TV bound).
    Chen, Daras, Dimakis, "Restoration-degradation beyond linear diffusions: a non-asymptotic
    analysis for DDIM-type samplers", ICML 2023, arXiv:2303.03384.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from scipy.stats import norm

from .distances import DistanceEstimate
from .priors import Prior, ProductPrior, SubspaceMixture
from .samplers import AffineRule, AnalyticScore

__all__ = ["FoldError", "FlowResult", "flow_forward", "flow_inverse", "sample_with_log_density",
           "log_density", "pushforward_tv", "pushforward_kl", "TV_ESTIMATORS"]

LOG_2PI = math.log(2 * math.pi)
F64 = torch.float64
TV_ESTIMATORS = ("one-sided", "tanh")


class FoldError(ValueError):
    """A sampler step is not positive definite at a visited point: the map may fold, and the
    change-of-variables density is not valid there."""


@dataclass
class FlowResult:
    """Points mapped through the deterministic sampler, with their log densities.

    Attributes
    ----------
    z : tensor, shape (n, d)
        Start points :math:`Y_T`.
    x : tensor, shape (n, d)
        End points :math:`Y_1 = \\Phi(z)`.
    log_det : tensor, shape (n,)
        :math:`\\log\\det d\\Phi/dz` (NaN where a step folded).
    log_p : tensor, shape (n,)
        :math:`\\log p(x) = \\log N(z) - \\log\\det d\\Phi/dz`.
    folded : tensor of bool, shape (n,)
        Points where some step matrix was not positive definite.
    info : dict
        Diagnostics (Newton iterations, largest residual, ...).
    """

    z: torch.Tensor
    x: torch.Tensor
    log_det: torch.Tensor
    log_p: torch.Tensor
    folded: torch.Tensor
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# One step: image, log det and solves with M = a I + b ds/dy
# --------------------------------------------------------------------------------------

@dataclass
class _Lin:
    image: torch.Tensor                     # a y + b s(y), (n, d)
    logdet: torch.Tensor                    # log det M, (n,), NaN where not PD
    ok: torch.Tensor                        # M positive definite, (n,)
    solve: Callable[[torch.Tensor], torch.Tensor]


def _lin_diag(y, s, jdiag, a, b):
    diag = a + b * jdiag
    ok = (diag > 0).all(1)
    logdet = torch.log(diag.clamp_min(1e-300)).sum(1)
    logdet = torch.where(ok, logdet, torch.full_like(logdet, float("nan")))
    return _Lin(a * y + b * s, logdet, ok, lambda r: r / diag)


def _lin_dense(y, s, J, a, b):
    M = b * J                                 # J is symmetric; Cholesky reads one triangle
    M.diagonal(dim1=-2, dim2=-1).add_(a)
    L, info = torch.linalg.cholesky_ex(M)
    ok = info == 0
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1).clamp_min(1e-300)).sum(1)
    if not bool(ok.all()):                   # keep the solve defined on failed rows
        logdet = torch.where(ok, logdet, torch.full_like(logdet, float("nan")))
        eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
        L = torch.where(ok[:, None, None], L, eye.expand_as(L))

    def solve(r):
        return torch.cholesky_solve(r[:, :, None], L)[:, :, 0]

    return _Lin(a * y + b * s, logdet, ok, solve)


def _linearize_prior(m: Prior, y, a, b) -> _Lin:
    """Step linearisation for the exact score of the prior ``m`` (a forward marginal)."""
    if isinstance(m, ProductPrior):
        return _lin_diag(y, m.score(y), m.score_jacobian_diag(y), a, b)
    if isinstance(m, SubspaceMixture):
        U = m.basis
        zc = y @ U
        inner = _linearize_prior(m.inner, zc, a, b)
        extra = m.dim - m.k
        if extra == 0:
            return _Lin(inner.image @ U.T, inner.logdet, inner.ok,
                        lambda r: inner.solve(r @ U) @ U.T)
        if m.perp_var == 0:
            raise ValueError("the score does not exist off the subspace at alpha_bar = 1")
        g = a - b / m.perp_var                 # eigenvalue of M off the subspace
        perp = y - zc @ U.T
        image = inner.image @ U.T + g * perp
        if g <= 0:
            ok = torch.zeros_like(inner.ok)
            logdet = torch.full_like(inner.logdet, float("nan"))
            g_safe = 1.0
        else:
            ok, logdet, g_safe = inner.ok, inner.logdet + extra * math.log(g), g

        def solve(r):
            rz = r @ U
            return inner.solve(rz) @ U.T + (r - rz @ U.T) / g_safe

        return _Lin(image, logdet, ok, solve)
    return _lin_dense(y, m.score(y), m.score_jacobian(y), a, b)


class _Stepper:
    """Linearisations of the steps ``t = T..2`` for the exact score or a user score."""

    def __init__(self, prior: Prior, rule: AffineRule, score):
        if not rule.deterministic:
            raise ValueError(f"the push-forward density needs a deterministic rule (c_t = 0); "
                             f"{rule.name!r} has noise")
        if rule.multistep:
            raise ValueError(f"the push-forward density needs a one-step rule; {rule.name!r} "
                             "uses the previous step's score (its log det would need the "
                             "Jacobian of the two-step map)")
        self.prior, self.rule = prior, rule
        self.abar = rule.schedule.alpha_bar
        if score is None:
            self.score = None
        else:
            if not (callable(score) and callable(getattr(score, "jacobian", None))):
                raise ValueError("score must be callable as score(x, t) and have a "
                                 "jacobian(x, t) method returning (n, d, d)")
            self.score = score
        self._t, self._m = None, None

    def marginal(self, t):
        if self._t != t:
            self._t, self._m = t, self.prior.marginal(float(self.abar[t]))
        return self._m

    def lin(self, t, y) -> _Lin:
        a, b = float(self.rule.a[t]), float(self.rule.b[t])
        if self.score is None:
            return _linearize_prior(self.marginal(t), y, a, b)
        J = self.score.jacobian(y, t)
        if J.shape != (y.shape[0], y.shape[1], y.shape[1]):
            raise ValueError(f"score.jacobian returned shape {tuple(J.shape)}, expected "
                             f"{(y.shape[0], y.shape[1], y.shape[1])}")
        asym = float((J - J.transpose(-1, -2)).abs().amax()) if J.numel() else 0.0
        if asym > 1e-8 * max(float(J.abs().amax()), 1.0):
            raise ValueError(f"score.jacobian is not symmetric (max asymmetry {asym:.3g}): the "
                             f"step is then not a gradient map and the Cholesky log det is wrong")
        return _lin_dense(y, self.score(y, t), J, a, b)


# --------------------------------------------------------------------------------------
# Forward and inverse maps
# --------------------------------------------------------------------------------------

def _auto_batch(d, batch_size):
    if batch_size is None:
        return int(max(256, min(65536, 4_000_000 // max(d * d, 1))))
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    return batch_size


def _check_points(prior, pts, name):
    pts = torch.as_tensor(pts, dtype=F64, device=prior.device)
    if pts.ndim == 1 and prior.dim == 1:
        pts = pts[:, None]
    if pts.ndim != 2 or pts.shape[1] != prior.dim:
        raise ValueError(f"{name} must have shape (n, {prior.dim}), got {tuple(pts.shape)}")
    if not torch.isfinite(pts).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return pts


def _log_normal(z):
    return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * LOG_2PI


def _fold_check(folded, on_fold, what):
    nf = int(folded.sum())
    if nf and on_fold == "raise":
        raise FoldError(f"{nf} of {folded.numel()} {what} met a step whose Jacobian "
                        f"a_t I + b_t ds_t/dy is not positive definite: the sampler map may "
                        f"fold and the change-of-variables density is invalid")
    return nf


def _check_on_fold(on_fold):
    if on_fold not in ("raise", "report"):
        raise ValueError(f"on_fold must be 'raise' or 'report', got {on_fold!r}")


def flow_forward(prior: Prior, rule: AffineRule, z, *, score=None,
                 batch_size: Optional[int] = None, on_fold: str = "raise") -> FlowResult:
    r"""Map start points :math:`z = Y_T` through the deterministic sampler, accumulating
    :math:`\log\det d\Phi/dz = \sum_t \log\det(a_t I + b_t \nabla s_t(y_t))`.

    Parameters
    ----------
    prior : Prior
        Its forward marginals give the exact score (unless ``score`` is given).
    rule : AffineRule
        A deterministic rule (``rule.deterministic``).
    z : array-like, shape (n, d)
    score : callable ``(x, t)`` with a ``jacobian(x, t)`` method, optional
        A (possibly perturbed) score; its Jacobian must be symmetric (checked, else
        ValueError). Default: the exact score of ``prior``.
    batch_size : int, optional
        Rows per batch of (batch, d, d) matrices (default: about 4e6 / d^2).
    on_fold : {"raise", "report"}
        What to do when a step matrix is not positive definite at a visited point.
    """
    _check_on_fold(on_fold)
    st = _Stepper(prior, rule, score)
    z = _check_points(prior, z, "z")
    n, d = z.shape
    bs = _auto_batch(d, batch_size)
    y = z.clone()
    logdet = torch.zeros(n, dtype=F64, device=z.device)
    for t in range(rule.T, 1, -1):
        for i in range(0, n, bs):
            sl = slice(i, min(i + bs, n))
            lin = st.lin(t, y[sl])
            logdet[sl] += lin.logdet
            y[sl] = lin.image
    folded = torch.isnan(logdet)
    nf = _fold_check(folded, on_fold, "trajectories")
    return FlowResult(z=z, x=y, log_det=logdet, log_p=_log_normal(z) - logdet, folded=folded,
                      info={"n_folded": nf, "batch_size": bs})


def flow_inverse(prior: Prior, rule: AffineRule, x, *, score=None,
                 batch_size: Optional[int] = None, tol: float = 1e-12, max_iter: int = 50,
                 on_fold: str = "raise") -> FlowResult:
    r"""Invert the deterministic sampler map: find :math:`z = \Phi^{-1}(x)` step by step
    (Newton on :math:`a_t y + b_t s_t(y) = y_{t-1}`, for t = 2..T), with the log determinant
    at the solution, so that ``log_p`` is the push-forward log density at ``x``.

    Newton steps are damped (halved up to 30 times) until the residual does not grow; a row
    converges once :math:`|a y + b s(y) - x|_2 \le` ``tol`` :math:`(1 + |x|_2)`.
    Raises :class:`RuntimeError` if some row does not converge in ``max_iter`` iterations.
    Other parameters as in :func:`flow_forward`.
    """
    _check_on_fold(on_fold)
    if not (tol > 0):
        raise ValueError(f"tol must be positive, got {tol}")
    st = _Stepper(prior, rule, score)
    x = _check_points(prior, x, "x")
    n, d = x.shape
    bs = _auto_batch(d, batch_size)
    y = x.clone()
    logdet = torch.zeros(n, dtype=F64, device=x.device)
    max_iters_used, worst = 0, 0.0
    for t in range(2, rule.T + 1):
        for i in range(0, n, bs):
            sl = slice(i, min(i + bs, n))
            target = y[sl]
            sol, ld, iters, res = _newton_step(st, t, target, tol, max_iter)
            y[sl] = sol
            logdet[sl] += ld
            max_iters_used, worst = max(max_iters_used, iters), max(worst, res)
    folded = torch.isnan(logdet)
    nf = _fold_check(folded, on_fold, "inverted points")
    return FlowResult(z=y, x=x, log_det=logdet, log_p=_log_normal(y) - logdet, folded=folded,
                      info={"n_folded": nf, "batch_size": bs, "newton_max_iter": max_iters_used,
                            "newton_max_rel_residual": worst})


def _newton_step(st: _Stepper, t, target, tol, max_iter):
    """Solve ``a y + b s_t(y) = target`` row-wise by damped Newton.

    Returns ``(y, log det M(y), iterations, largest relative residual)``; ``log det`` is NaN
    for rows where M is not positive definite at the solution.
    """
    scale = 1 + target.norm(dim=1)
    y = target.clone()
    ld = torch.full((y.shape[0],), float("nan"), dtype=F64, device=y.device)
    active = torch.arange(y.shape[0], device=y.device)   # rows of y that ``lin`` describes
    lin = st.lin(t, y)
    res = (lin.image - target).norm(dim=1) / scale
    worst = 0.0
    for it in range(max_iter + 1):
        done = (res <= tol) | ~lin.ok
        if bool(done.any()):
            ld[active[done]] = lin.logdet[done]
            conv = done & lin.ok
            if bool(conv.any()):
                worst = max(worst, float(res[conv].max()))
        keep = ~done
        if not bool(keep.any()):
            return y, ld, it, worst
        if it == max_iter:
            break
        step = _solve_rows(lin, keep, lin.image[keep] - target[active[keep]])
        old = res[keep]
        active = active[keep]
        ya, tg, sc = y[active], target[active], scale[active]
        lam = torch.ones(ya.shape[0], dtype=F64, device=y.device)
        for _ in range(30):      # damping: halve while the residual grows or M is not PD
            cand = ya - lam[:, None] * step
            new_lin = st.lin(t, cand)
            new_res = (new_lin.image - tg).norm(dim=1) / sc
            bad = ((new_res > old) & (new_res > tol)) | ~new_lin.ok
            if not bool(bad.any()):
                break
            lam = torch.where(bad, 0.5 * lam, lam)
        y[active] = cand
        lin, res = new_lin, new_res
    raise RuntimeError(f"Newton inversion of step t={t} did not converge for "
                       f"{int(active.numel())} points in {max_iter} iterations "
                       f"(largest relative residual {float(res.max()):.3g})")


def _solve_rows(lin: _Lin, keep, r):
    """Solve M x = r for the rows ``keep`` of a linearisation (all rows share lin.solve)."""
    full = torch.zeros_like(lin.image)
    full[keep] = r
    return lin.solve(full)[keep]


# --------------------------------------------------------------------------------------
# Sampling with log densities
# --------------------------------------------------------------------------------------

def _generator(seed, generator, device):
    if generator is not None:
        if seed is not None:
            raise ValueError("give either seed or generator, not both")
        if torch.device(generator.device).type != torch.device(device).type:
            raise ValueError(f"the generator lives on {generator.device}, the prior on {device}")
        return generator, int(generator.initial_seed()), True
    g = torch.Generator(device=device)
    if seed is None:
        seed = int(g.seed())
    else:
        if isinstance(seed, bool) or not float(seed).is_integer():
            raise ValueError(f"seed must be an integer, got {seed!r}")
        g.manual_seed(int(seed))
    return g, int(seed), False


def _check_device(prior, device):
    if device is None:
        return prior.device
    device = torch.device(device)
    if device.type != prior.device.type:
        raise ValueError(f"device {device} differs from the prior's device {prior.device}: "
                         f"build the prior on the device you want to compute on")
    return prior.device


def _check_n(n, name="n"):
    if isinstance(n, bool) or not float(n).is_integer() or int(n) < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {n}")
    return int(n)


def sample_with_log_density(prior: Prior, rule: AffineRule, n: int, *, seed=None,
                            generator: Optional[torch.Generator] = None, device=None,
                            score=None, batch_size=None, on_fold="raise") -> FlowResult:
    """``n`` sampler outputs :math:`Y_1` with the exact push-forward log density at each.

    ``z`` is drawn in one call ``torch.randn(n, d)`` (independent of ``batch_size``).
    """
    device = _check_device(prior, device)
    n = _check_n(n)
    g, _, _ = _generator(seed, generator, device)
    z = torch.randn(n, prior.dim, generator=g, dtype=F64, device=device)
    return flow_forward(prior, rule, z, score=score, batch_size=batch_size, on_fold=on_fold)


def log_density(prior: Prior, rule: AffineRule, x, *, score=None, batch_size=None,
                tol=1e-12, on_fold="raise") -> torch.Tensor:
    """Push-forward log density of the sampler output at arbitrary points ``x`` (n, d)."""
    return flow_inverse(prior, rule, x, score=score, batch_size=batch_size, tol=tol,
                        on_fold=on_fold).log_p


def _target(prior, rule):
    return prior.marginal(float(rule.schedule.alpha_bar[1]))


# --------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------

def _ci(strata, weights, level, ci, n_boot, rng):
    """Value, lower, upper, std error of sum_j weights_j * mean(strata_j)."""
    if any(f.size < 2 for f in strata):          # everything folded (on_fold="report")
        nan = float("nan")
        return nan, nan, nan, nan, {"note": "fewer than 2 valid samples in a stratum"}
    value = sum(w * float(f.mean()) for w, f in zip(weights, strata))
    se = math.sqrt(sum(w * w * float(f.var(ddof=1)) / f.size for w, f in zip(weights, strata)))
    if ci == "clt":
        zq = float(norm.ppf(0.5 + level / 2))
        return value, value - zq * se, value + zq * se, se, {}
    # percentile bootstrap, resampling within each stratum (in chunks to bound memory)
    stats = np.zeros(n_boot)
    for w, f in zip(weights, strata):
        chunk = max(1, 2_000_000 // f.size)
        for b0 in range(0, n_boot, chunk):
            b1 = min(n_boot, b0 + chunk)
            idx = rng.integers(0, f.size, size=(b1 - b0, f.size))
            stats[b0:b1] += w * f[idx].mean(1)
    lo, hi = np.quantile(stats, [0.5 - level / 2, 0.5 + level / 2])
    return value, float(lo), float(hi), se, {"bootstrap_sd": float(stats.std(ddof=1))}


def _check_common(estimator_kind, level, ci, n_boot):
    if not (0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if ci not in ("clt", "bootstrap"):
        raise ValueError(f"ci must be 'clt' or 'bootstrap', got {ci!r}")
    if ci == "bootstrap" and (isinstance(n_boot, bool) or int(n_boot) < 10):
        raise ValueError(f"n_boot must be an integer >= 10, got {n_boot}")


def pushforward_tv(prior: Prior, rule: AffineRule, n: int, *, estimator: str = "one-sided",
                   level: float = 0.95, ci: str = "clt", n_boot: int = 2000, seed=None,
                   generator: Optional[torch.Generator] = None, device=None, score=None,
                   batch_size: Optional[int] = None, tol: float = 1e-12,
                   on_fold: str = "raise") -> DistanceEstimate:
    r"""Monte Carlo TV(law of Y_1, q_1) from exact push-forward log densities.

    Parameters
    ----------
    prior, rule
        The prior (exact score, target :math:`q_1` = ``prior.marginal(alpha_bar_1)``) and a
        deterministic affine rule.
    n : int
        Total number of samples: all from p (``one-sided``) or ``ceil(n/2)`` from p and
        ``floor(n/2)`` from q (``tanh``).
    estimator : {"one-sided", "tanh"}
        :math:`E_p[(1 - e^{-L})_+]` or the stratified
        :math:`\tfrac12 E_p|\tanh(L/2)| + \tfrac12 E_q|\tanh(L/2)|` (module docstring).
        ``tanh`` also reports the one-sided estimate from its p-half in
        ``details["one_sided"]``.
    level : float
        Confidence level of the interval.
    ci : {"clt", "bootstrap"}
        CLT interval with the sample standard deviation, or percentile bootstrap with
        ``n_boot`` resamples (within strata).
    seed, generator
        Source of all randomness (z first, then the q-samples, then the bootstrap seed).
    device
        Must match the prior's device (build the prior there).
    score
        Optional user score with a ``jacobian`` method (default: the exact score).
    on_fold : {"raise", "report"}
        ``report`` keeps going and flags ``details["valid"] = False`` (folded samples are
        dropped from the average, which is then NOT an unbiased estimate).

    Returns
    -------
    DistanceEstimate
        ``metric="tv"``; ``lower, upper``: the confidence interval (clipped to [0, 1]);
        ``error``: half-width; ``details``: n_p, n_q, seed, std error, level, ci, timing-free
        diagnostics.
    """
    if estimator not in TV_ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose from {TV_ESTIMATORS}")
    _check_common(estimator, level, ci, n_boot)
    device = _check_device(prior, device)
    n = _check_n(n)
    g, seed_used, supplied = _generator(seed, generator, device)
    n_p = n if estimator == "one-sided" else (n + 1) // 2
    n_q = n - n_p
    z = torch.randn(n_p, prior.dim, generator=g, dtype=F64, device=device)
    q1 = _target(prior, rule)
    xq = q1.sample(n_q, generator=g) if n_q > 0 else None
    boot_seed = int(torch.randint(0, 2 ** 62, (1,), generator=g, device=device).item())
    rng = np.random.default_rng(boot_seed)

    fwd = flow_forward(prior, rule, z, score=score, batch_size=batch_size, on_fold=on_fold)
    L_p = (fwd.log_p - q1.log_prob(fwd.x)).cpu().numpy()
    valid = not bool(fwd.folded.any())
    L_p = L_p[np.isfinite(L_p)]
    one = np.maximum(-np.expm1(-L_p), 0.0)
    details = {"n": n, "n_p": n_p, "n_q": n_q, "seed": seed_used, "generator_supplied": supplied,
               "level": level, "ci": ci if ci == "clt" else f"percentile bootstrap (B={n_boot})",
               "n_folded": fwd.info["n_folded"], "valid": valid, "estimator": estimator,
               "sampler": rule.name, "T": rule.T, "d": prior.dim}
    if estimator == "one-sided":
        v, lo, hi, se, extra = _ci([one], [1.0], level, ci, n_boot, rng)
        method = f"push-forward Monte Carlo, E_p[(1 - e^-L)_+], n={n}"
        cv = float(one.std(ddof=1) / max(one.mean(), 1e-300)) if one.size > 1 else float("nan")
        details.update(extra, std_error=se, cv=cv)
    else:
        inv = flow_inverse(prior, rule, xq, score=score, batch_size=batch_size, tol=tol,
                           on_fold=on_fold)
        L_q = (inv.log_p - q1.log_prob(xq)).cpu().numpy()
        valid = valid and not bool(inv.folded.any())
        L_q = L_q[np.isfinite(L_q)]
        fp, fq = np.abs(np.tanh(0.5 * L_p)), np.abs(np.tanh(0.5 * L_q))
        v, lo, hi, se, extra = _ci([fp, fq], [0.5, 0.5], level, ci, n_boot, rng)
        o_se = float(one.std(ddof=1) / math.sqrt(one.size)) if one.size > 1 else float("nan")
        method = (f"push-forward Monte Carlo, 1/2 E_p|tanh(L/2)| + 1/2 E_q|tanh(L/2)| "
                  f"(stratified, log p at q-samples by Newton inversion), n={n}")
        details.update(extra, std_error=se, valid=valid, n_folded_q=inv.info["n_folded"],
                       newton_max_iter=inv.info["newton_max_iter"],
                       newton_max_rel_residual=inv.info["newton_max_rel_residual"],
                       one_sided={"value": float(one.mean()) if one.size else float("nan"),
                                  "std_error": o_se, "n": int(one.size)})
    if math.isnan(v):
        lo, hi = 0.0, 1.0
    lo, hi = max(lo, 0.0), min(hi, 1.0)
    if not details["valid"]:
        method += " [INVALID: some steps not positive definite, folded samples dropped]"
    return DistanceEstimate("tv", v, lo, hi, method, 0.5 * (hi - lo), details)


def pushforward_kl(prior: Prior, rule: AffineRule, n: int, *, direction: str = "pq",
                   level: float = 0.95, ci: str = "clt", n_boot: int = 2000, seed=None,
                   generator: Optional[torch.Generator] = None, device=None, score=None,
                   batch_size: Optional[int] = None, tol: float = 1e-12,
                   on_fold: str = "raise") -> DistanceEstimate:
    r"""Monte Carlo KL between the sampler output p and the target q = q_1.

    ``direction="pq"``: :math:`\mathrm{KL}(p\|q) = E_p[L]` from sampler outputs
    (``metric="kl_pq"``). ``direction="qp"``: :math:`\mathrm{KL}(q\|p) = E_q[-L]` from exact
    q-samples, log p by Newton inversion (``metric="kl"``, the convention of
    :mod:`theory.distances`). Other parameters as in :func:`pushforward_tv`.
    """
    if direction not in ("pq", "qp"):
        raise ValueError(f"direction must be 'pq' (KL(p||q)) or 'qp' (KL(q||p)), "
                         f"got {direction!r}")
    _check_common(direction, level, ci, n_boot)
    device = _check_device(prior, device)
    n = _check_n(n)
    g, seed_used, supplied = _generator(seed, generator, device)
    q1 = _target(prior, rule)
    if direction == "pq":
        z = torch.randn(n, prior.dim, generator=g, dtype=F64, device=device)
        res = flow_forward(prior, rule, z, score=score, batch_size=batch_size, on_fold=on_fold)
        f = (res.log_p - q1.log_prob(res.x)).cpu().numpy()
        metric, method = "kl_pq", f"push-forward Monte Carlo, KL(p||q) = E_p[log p/q], n={n}"
    else:
        xq = q1.sample(n, generator=g)
        res = flow_inverse(prior, rule, xq, score=score, batch_size=batch_size, tol=tol,
                           on_fold=on_fold)
        f = (q1.log_prob(xq) - res.log_p).cpu().numpy()
        metric = "kl"
        method = (f"push-forward Monte Carlo, KL(q||p) = E_q[log q/p] (log p by Newton "
                  f"inversion), n={n}")
    boot_seed = int(torch.randint(0, 2 ** 62, (1,), generator=g, device=device).item())
    f = f[np.isfinite(f)]
    v, lo, hi, se, extra = _ci([f], [1.0], level, ci, n_boot, np.random.default_rng(boot_seed))
    details = {"n": n, "seed": seed_used, "generator_supplied": supplied, "level": level,
               "ci": ci if ci == "clt" else f"percentile bootstrap (B={n_boot})",
               "std_error": se, "n_folded": res.info["n_folded"],
               "valid": not bool(res.folded.any()), "direction": direction,
               "sampler": rule.name, "T": rule.T, "d": prior.dim, **extra}
    return DistanceEstimate(metric, v, max(lo, 0.0), hi, method, 0.5 * (hi - max(lo, 0.0)),
                            details)
