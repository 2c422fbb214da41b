r"""Exact 1-D output law of any affine sampler by grid propagation.

The step kernel of ``Y_{t-1} = a_t Y_t + b_t s_t(Y_t) + c_t Z_t`` is :math:`N(m_t(y), c_t^2)`
with :math:`m_t(y) = a_t y + b_t s_t(y)`. The density of :math:`Y_t` on a uniform grid is
moved by the map (change of variables: pull-back through the inverse map with an O(h^4)
Newton-corrected preimage, or, where the map folds, push-forward of each monotone run with
cubic interpolation of the log density) and then blurred by the Gaussian exactly in
Fourier space (THEORY.md section 5). The grid error is estimated by refinement
(:mod:`theory.distances.exact`). The run starts from N(0, 1) or q_T and ends at Y_1 or Y_0
(the rule's ``init`` and ``target``, :mod:`theory.laws.ends`).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.integrate import cumulative_simpson
from scipy.interpolate import CubicSpline
from scipy.ndimage import map_coordinates

from ..checks import NoExactLaw
from ..mixture1d import LOG_2PI, Mixture1D
from ..samplers import AffineRule
from .base import QuadratureLaw1D
from .ends import start_mixture, target_mixture

__all__ = ["grid_law_1d", "output_law_1d", "law_on_grid"]

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
    if rule.init == "qT":
        logp = start_mixture(mix, rule).logpdf(x)
    else:
        logp = -0.5 * x * x - 0.5 * LOG_2PI
    step = _grid_two_step if rule.multistep else _grid_one_step
    logp = step(mix, rule, x, logp, h, score_1d)
    return law_on_grid(x, logp, h, {"h": h, "half_width": half_width})


def law_on_grid(x, logp, h, info, method="grid-propagation") -> QuadratureLaw1D:
    """The :class:`QuadratureLaw1D` of a log density on the uniform grid ``x`` (spacing
    ``h``): trapezoid weights, normalised by the represented mass (its deficit is the lost
    mass), CDF by the cumulative Simpson rule."""
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
                           method=method, lost_mass=abs(1 - total), info=info)


def _grid_one_step(mix, rule, x, logp, h, score_1d):
    """Grid propagation of a one-step rule: move the density by each step's map (pull-back,
    or push-forward run by run where the map folds), blur by its noise."""
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    for t in rule.steps:
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
    for t in rule.steps:
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
           rule.target, rule.init, float(level),
           None if perturbation is None else perturbation.key())
    if key in _LAW_CACHE:
        return _LAW_CACHE[key]
    sd_min = math.sqrt(float(np.min(target_mixture(mix, rule).v)))
    h = min(0.01, sd_min / 25) / level
    score_1d = None if perturbation is None else perturbation.score_1d(mix, rule.schedule)
    law = grid_law_1d(mix, rule, h=h, score_1d=score_1d)
    if len(_LAW_CACHE) >= _LAW_CACHE_SIZE:
        _LAW_CACHE.pop(next(iter(_LAW_CACHE)))
    _LAW_CACHE[key] = law
    return law
