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

from ..checks import NoExactLaw
from ..mixture1d import LOG_2PI, Mixture1D, score_rows
from ..samplers import AffineRule
from .base import QuadratureLaw1D
from .ends import start_mixture, target_mixture

__all__ = ["grid_law_1d", "output_law_1d", "law_on_grid"]

_LOG_FLOOR = -35.0  # densities below exp(-35) of the maximum are held at that floor
_FLOOR = math.exp(_LOG_FLOOR)


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
        from scipy.interpolate import CubicSpline
        vals = CubicSpline(uu, ll, extrapolate=False)(x[i0:i1])
        out[i0:i1] = np.logaddexp(out[i0:i1], vals)
    return out


def _blur(logp, c, h):
    """Convolve the density ``exp(logp)`` on a uniform grid with N(0, c^2), in Fourier space."""
    top = logp.max()
    out = _blur_linear(np.exp(logp - top), c, h)
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(out, 0)) + top


_FREQ_CACHE: dict = {}
_FAST_LEN: dict = {}
_FAST_PATHS: dict = {}


def _checked_fast_path(name, public, build_direct, agrees):
    """The kernel to use for ``name``: ``build_direct()`` (a call of a dependency's compiled
    kernel that skips its public wrapper) if it builds and ``agrees(direct, public)`` (the
    same result bit for bit on a probe), else ``public``; decided on first use, then kept.
    On the few hundred nodes of a refinement level the public wrappers (argument checks,
    backend dispatch, copies) cost about as much as the work; a changed private layout of a
    later scipy falls back to the public path."""
    if name not in _FAST_PATHS:
        chosen = public
        try:
            direct = build_direct()
            if agrees(direct, public):
                chosen = direct
        except Exception:      # noqa: BLE001 -- any change of the private layout: public path
            pass
        _FAST_PATHS[name] = chosen
    return _FAST_PATHS[name]


def _real_fft_pair():
    """``(forward, inverse)``: the real FFT of a 1-D float64 array of length n and its inverse
    (``inverse(F, n)``), as ``scipy.fft.rfft`` / ``irfft`` compute them: pocketfft's kernels
    called directly where they agree (:func:`_checked_fast_path`)."""
    hit = _FAST_PATHS.get("real-fft")        # the hot path: one lookup per blur
    if hit is not None:
        return hit
    from scipy.fft import irfft, rfft

    def build():
        from scipy.fft._pocketfft import pypocketfft as pocket
        return (lambda x: pocket.r2c(x, (0,), True, 0, None, 1),
                lambda F, n: pocket.c2r(F, (0,), n, False, 2, None, 1))

    def agrees(direct, public):
        x = np.random.default_rng(0).random(97)
        return (np.array_equal(direct[0](x), public[0](x))
                and np.array_equal(direct[1](rfft(x), 97), public[1](rfft(x), 97)))
    return _checked_fast_path("real-fft", (rfft, lambda F, n: irfft(F, n)), build, agrees)


def _blur_linear(p, c, h):
    r"""``p`` (a density on a uniform grid, any scale) convolved with N(0, c^2): the product of
    its transform with :math:`e^{-c^2 k^2/2}` on a lattice padded by 12 c + 8 h on each side
    (zero padding at the end: circular convolution is shift-equivariant, so this equals
    centred padding). Frequencies where the multiplier is below :math:`e^{-50}` are set to
    zero (they carry less than the density floor)."""
    forward, inverse = _real_fft_pair()
    pad = int(math.ceil(12 * c / h)) + 8
    need = p.size + 2 * pad
    n = _FAST_LEN.get(need)
    if n is None:
        from scipy.fft import next_fast_len
        n = _FAST_LEN.setdefault(need, next_fast_len(need))
    k = _FREQ_CACHE.get((n, h))
    if k is None:
        k = _FREQ_CACHE.setdefault((n, h), 2 * np.pi * np.fft.rfftfreq(n, d=h))
    buf = np.zeros(n)
    buf[:p.size] = p
    F = forward(buf)
    m = min(k.size, int(math.ceil(10.0 / (c * k[1]))) + 1) if c > 0 else k.size
    F[:m] *= np.exp((-0.5 * c * c) * k[:m] * k[:m])
    F[m:] = 0
    return inverse(F, n)[:p.size]


_SPLINE_PAD = 12   # scipy.ndimage pads by 12 edge values before the 'nearest' spline filter


def _spline_filter_in_place():
    """``f(buf)``: ``scipy.ndimage.spline_filter1d(buf, 3, mode="nearest", output=buf)`` on a
    1-D float64 array: its compiled kernel called directly where it agrees
    (:func:`_checked_fast_path`)."""
    hit = _FAST_PATHS.get("spline-filter")   # the hot path: one lookup per step
    if hit is not None:
        return hit
    from scipy.ndimage import spline_filter1d

    def public(buf):
        return spline_filter1d(buf, 3, mode="nearest", output=buf)

    def build():
        from scipy.ndimage import _nd_image
        from scipy.ndimage._ni_support import _extend_mode_to_code
        code = _extend_mode_to_code("nearest")

        def direct(buf):
            _nd_image.spline_filter1d(buf, 3, 0, buf, code)
            return buf
        return direct

    def agrees(direct, public):
        x = np.random.default_rng(0).random(97)
        return np.array_equal(direct(x.copy()), public(x.copy()))
    return _checked_fast_path("spline-filter", public, build, agrees)


def _spline_coefficients(logp):
    """Cubic B-spline coefficients of ``logp`` exactly as ``scipy.ndimage.map_coordinates(logp,
    order=3, mode='nearest')`` builds them (edge padding by 12 nodes, then the filter)."""
    P = _SPLINE_PAD
    buf = np.empty(logp.size + 2 * P)
    buf[:P] = logp[0]
    buf[P:-P] = logp
    buf[-P:] = logp[-1]
    return _spline_filter_in_place()(buf)


def _spline_eval(coef, pos):
    """Evaluate the cubic B-spline with coefficients ``coef`` (:func:`_spline_coefficients`) at
    grid positions ``pos`` (in units of h from the first node, ``pos > -12``): on the cell
    ``[i, i + 1]`` the spline is ``a0 + a1 t + a2 t^2 + a3 t^3`` with the a's from the four
    coefficients around it."""
    pos = pos + (_SPLINE_PAD - 1)              # index of the first of the four coefficients
    i = pos.astype(np.intp)                     # = floor(pos) where pos >= 0
    t = pos - i
    i.clip(0, coef.size - 4, out=i)
    c0, c1, c2, c3 = coef[:-3], coef[1:-2], coef[2:-1], coef[3:]
    s02 = c0 + c2
    a0 = (s02 + 4.0 * c1).take(i) * (1.0 / 6.0)
    a1 = (c2 - c0).take(i) * 0.5
    a2 = (s02 - 2.0 * c1).take(i) * 0.5
    a3 = (c3 - c0 + 3.0 * (c1 - c2)).take(i) * (1.0 / 6.0)
    out = a3 * t
    out += a2
    out *= t
    out += a1
    out *= t
    out += a0
    return out


def _inverse_map(x, score, a, b):
    """Preimages on the grid of ``m(y) = a y + b s(y)`` (monotone: else ``None``): inverse
    interpolation plus one Newton step (error O(h^4)). Returns ``(y, m'(y), outside)``: the
    slope at the corrected preimage (the density factor, O(h^4) as well; the slope at the
    interpolated start was O(h^2) and lost O(h^2) of mass) and the nodes beyond the image of
    the grid."""
    sc, dsc = score(x)
    J = a + b * dsc
    if not (J > 0).all():
        return None
    u = a * x + b * sc
    y = np.interp(x, u, x)
    sc, dsc = score(y)
    y -= (a * y + b * sc - x) / (a + b * dsc)
    _, dsc = score(y)
    return y, a + b * dsc, (x < u[0]) | (x > u[-1])


def _pull_back(x, logp, score, a, b, h):
    """Log density on grid ``x`` of the image of ``exp(logp)`` under ``y -> a y + b s_t(y)``.

    Monotone maps only (returns ``None`` otherwise). For each grid point the preimage
    ``y = m^{-1}(x)`` is found by inverse interpolation plus one Newton step (error O(h^4));
    then ``p_new(x) = p(y) / m'(y)``, with ``log p(y)`` from a cubic B-spline on the grid.
    """
    inv = _inverse_map(x, score, a, b)
    if inv is None:
        return None
    y, Jy, outside = inv
    lp = _spline_eval(_spline_coefficients(logp), (y - x[0]) / h)
    lp -= np.log(Jy)
    lp[outside] = -np.inf
    return lp


_BLOCK_STEPS = 32          # steps whose maps are computed together, as (steps, nodes) arrays
_BLOCK_ENTRIES = 1 << 21   # ... and at most this many (steps x nodes) entries per array


class _StepMaps:
    r"""The maps of a block of steps, ready to move any density: for step row ``r``, the
    preimages :math:`y = m_t^{-1}(x)` of the grid nodes (:func:`_inverse_map`, computed for
    all rows at once) as spline cell indices and cubic B-spline weights, the slopes
    :math:`m_t'(y)` at the corrected preimages (``jac``; the density factor is their inverse)
    and the nodes outside the image. Rows whose map
    is not monotone are flagged in ``folded`` and moved by the caller.

    The inverse interpolation of all rows is one :func:`numpy.interp` call: row r is shifted
    by ``r * span`` (``span`` wider than every row's range), which keeps the concatenated
    abscissae increasing; the shift costs about 1e-13 in the starting point, which the
    Newton step removes.
    """

    def __init__(self, x, h, a, b, score):
        S, dS = score(x)                              # (B, n)
        a, b = a[:, None], b[:, None]
        J = dS
        J *= b
        J += a
        self.folded = ~(J > 0).all(1)
        U = S
        U *= b
        U += a * x
        B, n = U.shape
        span = 2.0 * max(float(np.abs(U[:, [0, -1]]).max()), float(np.abs(x[[0, -1]]).max())) + 1.0
        shift = span * np.arange(B, dtype=float)[:, None]
        if self.folded.any():                          # keep the shifted abscissae increasing
            U[self.folded] = a[self.folded] * x
        Y = np.interp((x + shift).ravel(), (U + shift).ravel(), np.broadcast_to(x, U.shape).ravel())
        Y = Y.reshape(B, n)
        self.outside = (x < U[:, :1]) | (x > U[:, -1:])
        S, dS = score(Y)
        Jy = dS
        Jy *= b
        Jy += a
        S *= b
        S += a * Y
        S -= x
        S /= Jy
        Y -= S                                        # one Newton step
        _, Jy = score(Y)                              # the slope at the corrected preimage:
        Jy *= b                                       # O(h^4), as the preimage (at the
        Jy += a                                       # start it was O(h^2), mass and all)
        pos = Y
        pos -= x[0]
        pos *= 1.0 / h
        pos += _SPLINE_PAD - 1                        # first of the four coefficients
        i = pos.astype(np.intp)
        t = pos
        t -= i
        i.clip(0, n + 2 * _SPLINE_PAD - 4, out=i)
        self.idx = (i, i + 1, i + 2, i + 3)           # the four coefficients of each cell
        t2 = t * t
        t3 = t2 * t
        omt = 1.0 - t
        w0 = omt * omt * omt * (1.0 / 6.0)
        w3 = t3 * (1.0 / 6.0)
        w1 = (2.0 / 3.0) - t2 + 0.5 * t3
        w2 = 1.0 - w0 - w1 - w3
        self.w = (w0, w1, w2, w3)
        self.jac = Jy

    def spline(self, r, coef):
        """Interpolated log density at the preimages of row ``r`` (coefficients from
        :func:`_spline_coefficients`), -inf outside the image."""
        i0, i1, i2, i3 = self.idx
        w0, w1, w2, w3 = self.w
        out = w0[r] * coef[i0[r]]
        out += w1[r] * coef[i1[r]]
        out += w2[r] * coef[i2[r]]
        out += w3[r] * coef[i3[r]]
        out[self.outside[r]] = -np.inf
        return out


def _mixture_rows(mix, ab, omab):
    """Score rows of the marginals of ``mix`` at noise levels ``ab`` (B,): ``x -> (s, s')``,
    each of shape (B, n)."""
    M = np.sqrt(ab)[:, None] * mix.m
    V = ab[:, None] * mix.v + omab[:, None]
    return lambda y: score_rows(mix.w, M, V, y)


def _perturbed_rows(score_1d, ts):
    """Score rows of a user score ``score_1d(t, x) -> (s, s')``, one call per step."""
    def rows(y):
        out = [score_1d(int(t), y if y.ndim == 1 else y[r]) for r, t in enumerate(ts)]
        return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])
    return rows


def _pull_back_two_step(x, logp, score, score_prev, prev, a, b, e, h):
    """:func:`_pull_back` for the two-step map ``y -> a y + b s_t(y) + e s_{t+1}(prev(y))``,
    where ``prev`` (values on the grid ``x``) is the previous state as a function of the
    current one (a monotone map, interpolated by a cubic spline). Returns ``(log density on
    x, preimages on x)``: the preimages are the next step's ``prev``; ``None`` if the map is not
    monotone."""
    from scipy.interpolate import CubicSpline
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
    lp = _spline_eval(_spline_coefficients(logp), (y - x[0]) / h) - np.log(Jy)
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


def cumulative_simpson(y, dx: float) -> np.ndarray:
    """``scipy.integrate.cumulative_simpson(y, dx=dx, initial=0.0)`` for a 1-D float64 ``y``,
    bit for bit (the same operations in the same order: each interval's Simpson integral from
    the parabola through it and its right neighbours, the last from its left ones, then a
    running sum), without importing ``scipy.integrate`` (a tenth of the start-up of an exact
    measurement). Fewer than 3 points: scipy's own (the trapezoid rule). Checked against scipy
    in tests/test_startup.py."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size < 3:
        from scipy.integrate import cumulative_simpson as scipy_cumulative_simpson
        return scipy_cumulative_simpson(y, dx=dx, initial=0.0)
    d = np.full(y.size - 1, dx, dtype=np.float64)

    def halves(f, dd):       # scipy's _cumulative_simpson_equal_intervals
        return dd[:-1] / 3 * (5 * f[:-2] / 4 + 2 * f[1:-1] - f[2:] / 4)

    h1 = halves(y, d)
    h2 = halves(y[::-1], d[::-1])[::-1]
    sub = np.empty(y.size - 1)
    sub[:-1:2] = h1[::2]
    sub[1::2] = h2[::2]
    sub[-1] = h2[-1]
    res = np.cumsum(sub)
    res += 0.0
    return np.concatenate((np.zeros(1), res))


def law_on_grid(x, logp, h, info, method="grid-propagation") -> QuadratureLaw1D:
    """The :class:`QuadratureLaw1D` of a log density on the uniform grid ``x`` (spacing
    ``h``): trapezoid weights, normalised by the represented mass (its deficit is the lost
    mass), CDF by the cumulative Simpson rule."""
    p = np.exp(logp)
    dx = np.full_like(x, h)
    dx[0] = dx[-1] = h / 2
    total = float((dx * p).sum())
    # cumulative Simpson rule for the CDF, normalised by the represented mass
    cum = cumulative_simpson(p, h)
    cum = np.maximum.accumulate(np.maximum(cum, 0.0))
    cdf = cum / cum[-1]
    sf = (cum[-1] - cum) / cum[-1]
    return QuadratureLaw1D(x=x, dx=dx, logp=logp - math.log(total), cdf=cdf, sf=sf,
                           method=method, lost_mass=abs(1 - total), info=info)


def _grid_one_step(mix, rule, x, logp, h, score_1d):
    """Grid propagation of a one-step rule: move the density by each step's map (pull-back,
    or push-forward run by run where the map folds), blur by its noise.

    The maps do not depend on the density: they are computed a block of steps at a time
    (:class:`_StepMaps`), leaving per step one spline filter, four gathers and, for a noisy
    step, one exponential, one FFT pair and one logarithm (the pulled-back density goes to the
    blur without a logarithm: ``exp(log p(y) - top) / m'(y0)``; the floor is applied before the
    one logarithm)."""
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    steps = np.fromiter(rule.steps, dtype=int)
    block = max(1, min(_BLOCK_STEPS, _BLOCK_ENTRIES // x.size))
    for k0 in range(0, steps.size, block):
        ts = steps[k0:k0 + block]
        rows = (_mixture_rows(mix, ab[ts], omab[ts]) if score_1d is None
                else score_1d.rows(ts) if hasattr(score_1d, "rows")
                else _perturbed_rows(score_1d, ts))
        maps = _StepMaps(x, h, rule.a[ts], rule.b[ts], rows)
        for r, t in enumerate(ts):
            if rule.pre_c[t] > 0:          # noise before the score (accelerated sampler)
                logp = _blur(logp, rule.pre_c[t], h)
                logp = np.maximum(logp, logp.max() + _LOG_FLOOR)
            a, b, c = rule.a[t], rule.b[t], rule.c[t]
            if maps.folded[r]:             # the step folds: push forward run by run
                if score_1d is None:
                    score = mix.marginal(ab[t], omab[t]).score_and_derivative
                else:
                    score = lambda y, t=t: score_1d(t, y)  # noqa: E731
                sc, dsc = score(x)
                J = a + b * dsc
                u = a * x + b * sc
                with np.errstate(divide="ignore"):
                    new = _pushforward(u, logp - np.log(np.abs(J)), J, x)
                if c > 0:
                    new = _blur(new, c, h)
                logp = np.maximum(new, new.max() + _LOG_FLOOR)
                continue
            lp = maps.spline(r, _spline_coefficients(logp))
            if c > 0:
                top = lp.max()
                lp -= top
                p = np.exp(lp, out=lp)
                p /= maps.jac[r]
                out = _blur_linear(p, c, h)
                np.maximum(out, out.max() * _FLOOR, out=out)
                logp = np.log(out, out=out)
                logp += top
            else:
                lp -= np.log(maps.jac[r])
                logp = np.maximum(lp, lp.max() + _LOG_FLOOR, out=lp)
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
