r"""Exact output laws of affine samplers on structured priors: THEORY.md sections 4-5.

For ``Y_{t-1} = a_t Y_t + b_t s_t(Y_t) + c_t Z_t`` (:class:`theory.samplers.AffineRule`)
with the exact score of a structured prior, the law of :math:`Y_1` factorises into
independent one-dimensional laws:

* **Gaussian prior** :math:`N(\mu, \Sigma)`: in the eigenbasis of :math:`\Sigma` the score
  is affine per coordinate, :math:`s_t(y) = (m_t - y)/C_t` with
  :math:`m_t = \sqrt{\bar\alpha_t}\mu_i`, :math:`C_t = \bar\alpha_t\lambda_i + 1 - \bar\alpha_t`,
  so :math:`Y_1` is Gaussian with mean and variance from the scalar recursion
  :math:`M \leftarrow (a - b/C) M + b m/C`, :math:`V \leftarrow (a - b/C)^2 V + c^2`.
* **Product prior**: coordinates evolve independently; each follows a 1-D law computed by

  - *deterministic rules* (c = 0, monotone map): change of variables. With
    :math:`z \sim N(0,1)` and :math:`\Phi` the composed map,
    :math:`p(\Phi(z)) = \varphi(z)/\Phi'(z)`, :math:`\Phi'` accumulated along the trajectory
    as :math:`\prod_t (a_t + b_t s_t'(y_t))`. Integrals against :math:`p` become
    trapezoidal sums in :math:`z`. This engine is kept as an independent check: where the
    map is steep (between well-separated modes) uniform z-nodes converge only
    algebraically, so the exact engine uses grid propagation for every rule.
  - *stochastic rules* (and deterministic maps that fold): grid propagation. The step
    kernel is :math:`N(m_t(y), c_t^2)` with :math:`m_t(y) = a_t y + b_t s_t(y)`; the density
    is moved by the map (change of variables, cubic interpolation of the log density over
    each monotone run of :math:`m_t`) and then blurred by the Gaussian exactly in Fourier
    space. The grid error is estimated by refinement.
* **Subspace prior**: the inner k-dimensional prior (product or Gaussian) and ``d - k``
  identical Gaussian coordinates off the subspace (prior variance ``perp_var``).

The target is :math:`q_1`, the law of one forward step, recomputed for each schedule.
:func:`exact_factors` returns the list of factors (output law, target law, multiplicity)
that :mod:`theory.distances` turns into distances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.integrate import cumulative_simpson
from scipy.interpolate import CubicSpline
from scipy.ndimage import map_coordinates
from scipy.special import ndtr

from .mixture1d import LOG_2PI, Mixture1D
from .priors import Gaussian, GaussianMixture, Prior, ProductPrior, SubspaceMixture
from .samplers import AffineRule

__all__ = ["QuadratureLaw1D", "GaussianFactor", "QuadratureFactor", "NoExactLaw",
           "gaussian_output", "gaussian_output_law", "flow_law_1d", "grid_law_1d", "output_law_1d", "exact_factors"]


class NoExactLaw(ValueError):
    """The configuration has no exact output law in this engine."""


@dataclass
class QuadratureLaw1D:
    r"""A 1-D law known through quadrature nodes.

    :math:`\int f(x) p(x)\,dx \approx \sum_j \mathrm{dx}_j f(x_j) e^{\mathrm{logp}_j}`.
    ``cdf``/``sf`` are :math:`P(X \le x_j)` and :math:`P(X > x_j)`; ``lost_mass`` is the
    mass the representation does not hold (an error term).
    """

    x: np.ndarray
    dx: np.ndarray
    logp: np.ndarray
    cdf: np.ndarray
    sf: np.ndarray
    method: str
    lost_mass: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def mass(self) -> np.ndarray:
        return self.dx * np.exp(self.logp)


@dataclass
class GaussianFactor:
    """Independent 1-D Gaussian output/target pairs, vectorised over distinct coordinates."""

    mean_p: np.ndarray
    var_p: np.ndarray
    mean_q: np.ndarray
    var_q: np.ndarray
    mult: np.ndarray


@dataclass
class QuadratureFactor:
    """An output law on quadrature nodes and its 1-D mixture target, repeated ``mult`` times."""

    law: QuadratureLaw1D
    target: Mixture1D
    mult: int


Factor = Union[GaussianFactor, QuadratureFactor]


# --------------------------------------------------------------------------------------
# Gaussian recursion
# --------------------------------------------------------------------------------------

def gaussian_output(prior_mean, prior_var, rule: AffineRule):
    """Exact mean and variance of Y_1 per coordinate for a diagonal Gaussian prior.

    ``prior_mean``, ``prior_var``: arrays (n,) in the eigenbasis. Returns ``(mean, var)``.
    """
    mu = np.asarray(prior_mean, float)
    lam = np.asarray(prior_var, float)
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    M = np.zeros_like(mu)
    V = np.ones_like(mu)
    if rule.multistep:
        return _gaussian_output_two_step(mu, lam, rule)
    for t in range(s.T, 1, -1):
        C = ab[t] * lam + omab[t]
        m = math.sqrt(ab[t]) * mu
        gain = rule.a[t] - rule.b[t] / C
        M = gain * M + rule.b[t] * m / C
        V = gain * gain * (V + rule.pre_c[t] ** 2) + rule.c[t] ** 2
    return M, V


def _gaussian_output_two_step(mu, lam, rule):
    """The recursion of :func:`gaussian_output` for a rule with ``b_prev`` (the previous
    step's score): the pair (Y_t, Y_{t+1}) is jointly Gaussian; with the affine scores
    ``s_t(y) = (m_t - y)/C_t``, ``Y_{t-1} = g Y_t + r Y_{t+1} + k + c Z``,
    ``g = a - b/C_t``, ``r = -b_prev/C_{t+1}``, ``k = b m_t/C_t + b_prev m_{t+1}/C_{t+1}``,
    and means, variances and the lag-one covariance follow."""
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    M, V = np.zeros_like(mu), np.ones_like(mu)          # Y_T
    M1 = V1 = K = np.zeros_like(mu)                      # Y_{T+1} (unused: b_prev[T] = 0)
    for t in range(s.T, 1, -1):
        C = ab[t] * lam + omab[t]
        g = rule.a[t] - rule.b[t] / C
        k = rule.b[t] * math.sqrt(ab[t]) * mu / C
        r = np.zeros_like(mu)
        if rule.b_prev[t] != 0:
            C1 = ab[t + 1] * lam + omab[t + 1]
            r = -rule.b_prev[t] / C1
            k = k + rule.b_prev[t] * math.sqrt(ab[t + 1]) * mu / C1
        M_new = g * M + r * M1 + k
        V_new = g * g * V + 2 * g * r * K + r * r * V1 + rule.c[t] ** 2
        K_new = g * V + r * K                            # Cov(Y_{t-1}, Y_t)
        M1, V1, K = M, V, K_new
        M, V = M_new, V_new
    return M, V


def gaussian_output_law(prior: Prior, rule: AffineRule):
    r"""Mean and covariance of :math:`Y_1` and of :math:`q_1` in the original basis, for a
    Gaussian prior (:class:`~theory.priors.Gaussian`, or a :class:`~theory.priors.ProductPrior`
    whose coordinates are all single Gaussians, such as the ``gauss`` preset).

    Returns ``(mean_p, cov_p, mean_q, cov_q)`` as float64 numpy arrays, shapes (d,) and
    (d, d): the scalar recursion of :func:`gaussian_output` in the eigenbasis, rotated back.
    """
    if isinstance(prior, Gaussian):
        lam, Q = prior.eig()
        Q = Q.cpu().numpy().astype(np.float64)
        mu = Q.T @ prior.mean.cpu().numpy().astype(np.float64)
        lam = np.maximum(lam.cpu().numpy().astype(np.float64), 0.0)
    elif isinstance(prior, ProductPrior) and prior.weights.shape[1] == 1:
        Q = np.eye(prior.dim)
        mu = prior.means[:, 0].cpu().numpy().astype(np.float64)
        lam = (prior.stds[:, 0] ** 2).cpu().numpy().astype(np.float64)
    else:
        raise NoExactLaw("gaussian_output_law needs a Gaussian prior")
    mp, vp = gaussian_output(mu, lam, rule)
    mq, vq = _gaussian_target(mu, lam, rule)
    return Q @ mp, (Q * vp) @ Q.T, Q @ mq, (Q * vq) @ Q.T


def _gaussian_target(prior_mean, prior_var, rule):
    s = rule.schedule
    ab1, om1 = s.alpha_bar[1], s.one_minus_alpha_bar[1]
    return math.sqrt(ab1) * np.asarray(prior_mean, float), ab1 * np.asarray(prior_var, float) + om1


# --------------------------------------------------------------------------------------
# 1-D mixture prior: deterministic flow (change of variables)
# --------------------------------------------------------------------------------------

def flow_law_1d(mix: Mixture1D, rule: AffineRule, n_nodes: int = 2001, z_max: float = 9.0):
    """Output law of a deterministic rule by change of variables; ``None`` if the map folds."""
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    z = np.linspace(-z_max, z_max, int(n_nodes))
    hz = z[1] - z[0]
    y = z.copy()
    logJ = np.zeros_like(z)
    if rule.multistep:          # chain rule through (Y_t, Y_{t+1}): dY/dz tracked directly
        dy, s_prev, ds_prev, dy_prev = np.ones_like(z), None, None, None
        for t in range(s.T, 1, -1):
            sc, dsc = mix.marginal(ab[t], omab[t]).score_and_derivative(y)
            y_new = rule.a[t] * y + rule.b[t] * sc
            dy_new = (rule.a[t] + rule.b[t] * dsc) * dy
            if rule.b_prev[t] != 0:
                y_new = y_new + rule.b_prev[t] * s_prev
                dy_new = dy_new + rule.b_prev[t] * ds_prev * dy_prev
            if np.any(dy_new <= 0):
                return None
            s_prev, ds_prev, dy_prev = sc, dsc, dy
            y, dy = y_new, dy_new
        logJ = np.log(dy)
    else:
        for t in range(s.T, 1, -1):
            sc, dsc = mix.marginal(ab[t], omab[t]).score_and_derivative(y)
            J = rule.a[t] + rule.b[t] * dsc
            if np.any(J <= 0):
                return None
            logJ += np.log(J)
            y = rule.a[t] * y + rule.b[t] * sc
    wz = np.full_like(z, hz)
    wz[0] = wz[-1] = hz / 2
    logphi = -0.5 * z * z - 0.5 * LOG_2PI
    return QuadratureLaw1D(
        x=y, dx=wz * np.exp(logJ), logp=logphi - logJ, cdf=ndtr(z), sf=ndtr(-z),
        method="change-of-variables", lost_mass=float(2 * ndtr(-z_max)),
        info={"n_nodes": int(n_nodes), "z_max": z_max})


# --------------------------------------------------------------------------------------
# 1-D mixture prior: grid propagation (stochastic rules, folding maps)
# --------------------------------------------------------------------------------------

_LOG_FLOOR = -35.0  # densities below exp(-35) of the maximum are held at that floor


def _pushforward(u, lq, J, x):
    """Log density on grid ``x`` of the image of density ``exp(lq)`` at nodes mapped to ``u``.

    ``lq`` already includes ``-log|J|``. Each monotone run of the map is interpolated
    separately (cubic spline in log density) and the runs' densities are added.
    """
    sign = np.sign(J)
    if np.all(sign > 0):
        runs = [slice(0, u.size)]
    else:
        cuts = np.flatnonzero(np.diff(sign) != 0) + 1
        edges = np.concatenate([[0], cuts, [u.size]])
        runs = [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b - a >= 4]
    out = np.full_like(x, -np.inf)
    for r in runs:
        uu, ll = u[r], lq[r]
        if uu[0] > uu[-1]:
            uu, ll = uu[::-1], ll[::-1]
        keep = np.concatenate([[True], np.diff(uu) > 0])
        uu, ll = uu[keep], ll[keep]
        if uu.size < 4:
            continue
        i0, i1 = np.searchsorted(x, [uu[0], uu[-1]])
        if i1 <= i0:
            continue
        vals = CubicSpline(uu, ll, extrapolate=False)(x[i0:i1])
        out[i0:i1] = np.logaddexp(out[i0:i1], vals)
    return out


def _blur(logp, c, h):
    """Convolve the density ``exp(logp)`` on a uniform grid with N(0, c^2), in Fourier space."""
    top = logp.max()
    p = np.exp(logp - top)
    pad = int(math.ceil(12 * c / h)) + 8
    n = next_fast_len(p.size + 2 * pad)
    buf = np.zeros(n)
    buf[pad:pad + p.size] = p
    k = 2 * np.pi * np.fft.rfftfreq(n, d=h)
    out = irfft(rfft(buf) * np.exp(-0.5 * (c * k) ** 2), n)[pad:pad + p.size]
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(out, 0)) + top


def _pull_back(x, logp, score, a, b, h):
    """Log density on grid ``x`` of the image of ``exp(logp)`` under ``y -> a y + b s_t(y)``.

    Monotone maps only (returns ``None`` otherwise). For each grid point the preimage
    ``y = m^{-1}(x)`` is found by inverse interpolation plus one Newton step (error O(h^4));
    then ``p_new(x) = p(y) / m'(y)``, with ``log p(y)`` from a cubic B-spline on the grid.
    """
    sc, dsc = score(x)
    J = a + b * dsc
    if np.any(J <= 0):
        return None
    u = a * x + b * sc
    y = np.interp(x, u, x)
    sc, dsc = score(y)
    Jy = a + b * dsc
    y = y - (a * y + b * sc - x) / Jy
    lp = map_coordinates(logp, [(y - x[0]) / h], order=3, mode="nearest")
    outside = (x < u[0]) | (x > u[-1])
    lp = lp - np.log(Jy)
    lp[outside] = -np.inf
    return lp


def _pull_back_two_step(x, logp, score, score_prev, prev, a, b, e, h):
    """:func:`_pull_back` for the two-step map ``y -> a y + b s_t(y) + e s_{t+1}(prev(y))``,
    where ``prev`` (values on the grid ``x``) is the previous state as a function of the
    current one (a monotone map, interpolated by a cubic spline). Returns ``(log density on
    x, preimages on x)``: the preimages are the next step's ``prev``; ``None`` if the map is not
    monotone."""
    spline = CubicSpline(x, prev, extrapolate=True)

    def step_map(y):
        sc, dsc = score(y)
        py, dpy = spline(y), spline(y, 1)
        sp, dsp = score_prev(py)
        return a * y + b * sc + e * sp, a + b * dsc + e * dsp * dpy

    u, J = step_map(x)
    if np.any(J <= 0):
        return None
    y = np.interp(x, u, x)
    for _ in range(2):                       # Newton steps from the inverse interpolation
        uy, Jy = step_map(y)
        y = y - (uy - x) / Jy
    _, Jy = step_map(y)
    lp = map_coordinates(logp, [(y - x[0]) / h], order=3, mode="nearest") - np.log(Jy)
    lp[(x < u[0]) | (x > u[-1])] = -np.inf
    return lp, y


def grid_law_1d(mix: Mixture1D, rule: AffineRule, h: float = 0.01, half_width=None,
                score_1d=None):
    """Output law of any affine rule by grid propagation with spacing ``h``.

    ``score_1d(t, x) -> (s, s')`` replaces the exact score of ``mix``'s marginals (for
    perturbed scores, :mod:`theory.score_errors`); by default the exact score is used.
    """
    if half_width is None:
        lo, hi = mix.spread(11.0)
        half_width = max(10.0, abs(lo), abs(hi))
    n = int(math.ceil(half_width / h))
    x = np.arange(-n, n + 1) * h
    logp = -0.5 * x * x - 0.5 * LOG_2PI
    step = _grid_two_step if rule.multistep else _grid_one_step
    logp = step(mix, rule, x, logp, h, score_1d)
    p = np.exp(logp)
    dx = np.full_like(x, h)
    dx[0] = dx[-1] = h / 2
    total = float((dx * p).sum())
    # cumulative Simpson rule for the CDF, normalised by the represented mass
    cum = cumulative_simpson(p, dx=h, initial=0.0)
    cum = np.maximum.accumulate(np.maximum(cum, 0.0))
    cdf = cum / cum[-1]
    sf = (cum[-1] - cum) / cum[-1]
    return QuadratureLaw1D(x=x, dx=dx, logp=logp - math.log(total), cdf=cdf, sf=sf,
                           method="grid-propagation", lost_mass=abs(1 - total),
                           info={"h": h, "half_width": half_width})


def _grid_one_step(mix, rule, x, logp, h, score_1d):
    """Grid propagation of a one-step rule: move the density by each step's map (pull-back,
    or push-forward run by run where the map folds), blur by its noise."""
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    for t in range(s.T, 1, -1):
        if rule.pre_c[t] > 0:          # noise before the score (accelerated sampler)
            logp = _blur(logp, rule.pre_c[t], h)
            logp = np.maximum(logp, logp.max() + _LOG_FLOOR)
        if score_1d is None:
            score = mix.marginal(ab[t], omab[t]).score_and_derivative
        else:
            score = lambda y, t=t: score_1d(t, y)  # noqa: E731
        new = _pull_back(x, logp, score, rule.a[t], rule.b[t], h)
        if new is None:  # the step folds: push forward run by run
            sc, dsc = score(x)
            J = rule.a[t] + rule.b[t] * dsc
            u = rule.a[t] * x + rule.b[t] * sc
            with np.errstate(divide="ignore"):
                new = _pushforward(u, logp - np.log(np.abs(J)), J, x)
        logp = new
        if rule.c[t] > 0:
            logp = _blur(logp, rule.c[t], h)
        logp = np.maximum(logp, logp.max() + _LOG_FLOOR)
    return logp


def _grid_two_step(mix, rule, x, logp, h, score_1d):
    """Grid propagation of a deterministic two-step rule (``b_prev``): the density of Y_t
    and the map Y_t -> Y_{t+1} are carried on the grid (:func:`_pull_back_two_step`)."""
    if not rule.deterministic:
        raise NoExactLaw("a two-step rule with noise has no exact 1-D law here")
    if score_1d is not None:
        raise NoExactLaw("score perturbations are not supported for two-step rules")
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    prev = None
    for t in range(s.T, 1, -1):
        score = mix.marginal(ab[t], omab[t]).score_and_derivative
        if rule.b_prev[t] == 0 or prev is None:
            prev_score = mix.marginal(ab[t], omab[t]).score_and_derivative
            res = _pull_back_two_step(x, logp, score, prev_score, np.zeros_like(x),
                                      rule.a[t], rule.b[t], 0.0, h)
        else:
            prev_score = mix.marginal(ab[t + 1], omab[t + 1]).score_and_derivative
            res = _pull_back_two_step(x, logp, score, prev_score, prev, rule.a[t], rule.b[t],
                                      rule.b_prev[t], h)
        if res is None:
            raise NoExactLaw(f"the two-step map of {rule.name} is not monotone at step {t}")
        logp, prev = res
        logp = np.maximum(logp, logp.max() + _LOG_FLOOR)
    return logp


_LAW_CACHE: dict = {}
_LAW_CACHE_SIZE = 64


def output_law_1d(mix: Mixture1D, rule: AffineRule, level: float = 1,
                  perturbation=None) -> QuadratureLaw1D:
    """The 1-D output law at resolution ``level`` (1: default; 2: twice as fine, ...).

    Grid spacing ``h = min(0.01, sd_min / 25) / level`` with ``sd_min`` the smallest
    component standard deviation of the target q_1. Results are memoised per process (a sweep
    over d reuses the 1-D law).
    """
    key = (mix.w.tobytes(), mix.m.tobytes(), mix.v.tobytes(), rule.name, rule.a.tobytes(),
           rule.b.tobytes(), rule.c.tobytes(), rule.pre_c.tobytes(), rule.b_prev.tobytes(),
           float(level),
           None if perturbation is None else perturbation.key())
    if key in _LAW_CACHE:
        return _LAW_CACHE[key]
    sd_min = math.sqrt(float(np.min(_target_mixture(mix, rule).v)))
    h = min(0.01, sd_min / 25) / level
    score_1d = None if perturbation is None else perturbation.score_1d(mix, rule.schedule)
    law = grid_law_1d(mix, rule, h=h, score_1d=score_1d)
    if len(_LAW_CACHE) >= _LAW_CACHE_SIZE:
        _LAW_CACHE.pop(next(iter(_LAW_CACHE)))
    _LAW_CACHE[key] = law
    return law


# --------------------------------------------------------------------------------------
# Factorisation of the output law of a structured prior
# --------------------------------------------------------------------------------------

def _target_mixture(mix: Mixture1D, rule: AffineRule) -> Mixture1D:
    s = rule.schedule
    return mix.marginal(s.alpha_bar[1], s.one_minus_alpha_bar[1])


def exact_factors(prior: Prior, rule: AffineRule, level: int = 1, perturbation=None) -> list:
    """Factors of (law of Y_1, q_1) for a structured prior; raises :class:`NoExactLaw`.

    ``perturbation`` (a :class:`theory.score_errors.ScorePerturbation`) makes the sampler use
    a perturbed score while the target stays the true q_1; coordinate-wise perturbations of
    product priors keep the law exact.
    """
    if perturbation is not None:
        rule = perturbation.adjust_rule(rule)
        if perturbation.affine:
            perturbation = None
        elif not isinstance(prior, ProductPrior):
            raise NoExactLaw("exact laws under a score perturbation need a product prior")
    if isinstance(prior, Gaussian):
        lam, Q = prior.eig()
        mu = (Q.T @ prior.mean).cpu().numpy()
        lam = lam.clamp_min(0).cpu().numpy()
        return [_gaussian_factor(mu, lam, np.ones(mu.size, dtype=np.int64), rule)]
    if isinstance(prior, ProductPrior):
        factors = []
        g_mean, g_var, g_mult = [], [], []
        for i, mult in prior.coordinate_groups():
            w, m, sd = prior.coordinate_params(i)
            keep = w > 0
            mix = Mixture1D(w[keep], m[keep], sd[keep] ** 2)
            if mix.w.size == 1 and perturbation is None:  # Gaussian: closed form, vectorised
                g_mean.append(mix.m[0]), g_var.append(mix.v[0]), g_mult.append(mult)
            else:
                factors.append(QuadratureFactor(output_law_1d(mix, rule, level, perturbation),
                                                _target_mixture(mix, rule), mult))
        if g_mean:
            factors.append(_gaussian_factor(np.array(g_mean), np.array(g_var),
                                            np.array(g_mult), rule))
        return factors
    if isinstance(prior, SubspaceMixture):
        factors = exact_factors(prior.inner, rule, level)
        m = prior.dim - prior.k
        if m > 0:
            factors.append(_gaussian_factor(np.zeros(1), np.array([prior.perp_var]),
                                            np.array([m]), rule))
        return factors
    if isinstance(prior, GaussianMixture):
        raise NoExactLaw("no exact output law for a general Gaussian mixture (only Gaussian, "
                         "product and subspace priors); use a sample-based method")
    raise NoExactLaw(f"no exact output law for prior {type(prior).__name__}")


def _gaussian_factor(mu, lam, mult, rule):
    mp, vp = gaussian_output(mu, lam, rule)
    mq, vq = _gaussian_target(mu, lam, rule)
    return GaussianFactor(mp, vp, mq, vq, np.asarray(mult, dtype=np.int64))
