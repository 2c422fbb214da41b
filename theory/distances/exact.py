r"""Distances between an exact output law and its target: THEORY.md section 5.

Every function returns a :class:`DistanceEstimate`: the value, an interval that holds the
true value up to the stated numerical error, and the name of the method.

Conventions (p = law of the sampler output Y_1, q = the target q_1):

* ``tv``: :math:`\frac12\int|p-q|`.
* ``kl``: :math:`\mathrm{KL}(q\,\|\,p) = \int q \log(q/p)` (target first, the direction of
  the theorems' proofs).
* ``hellinger``: :math:`H = \sqrt{1 - \int\sqrt{pq}}` (so :math:`H^2 = \frac12\int(\sqrt p-\sqrt q)^2`).
* ``w2``: the 2-Wasserstein distance.

Products of independent factors (the output laws of :mod:`theory.laws.factors`):
KL adds, :math:`1 - H^2` multiplies, :math:`W_2^2` adds. TV does not tensorise: with
:math:`L = \log(p/q) = \sum_i L_i` (independent under p),
:math:`\mathrm{TV} = E_p[(1 - e^{-L})_+]`, and the law of L is the convolution of the
factors' laws. We compute it on a lattice :math:`\delta\mathbb Z` by FFT: each quadrature
factor's law of :math:`L_i` is deposited on the lattice (linear, mass- and
mean-preserving), Gaussian factors enter through their characteristic function in closed
form (:math:`L_i` is a quadratic form of a Gaussian), the transforms are multiplied
(powers for repeated factors) and inverted.
"""
from __future__ import annotations

import math

import numpy as np

from ..laws.base import GaussianFactor, QuadratureFactor
from ..priors import ProductPrior
from ..samplers import AffineRule
from ..laws.factors import exact_factors
from ..mixture1d import Mixture1D
from .estimate import DistanceEstimate
from .gaussian import gaussian_hellinger_sq, gaussian_kl, gaussian_tv_1d, gaussian_w2_sq

__all__ = ["METRICS", "factor_distance", "combine_levels", "exact_distance"]

METRICS = ("tv", "kl", "hellinger", "w2")


def _gaussian_llr_coeffs(f: GaussianFactor):
    """Coefficients of L = log p/q = A x^2 + B x + C for each Gaussian pair."""
    mp, vp, mq, vq = f.mean_p, f.var_p, f.mean_q, f.var_q
    A = 0.5 * (vp - vq) / (vp * vq)
    B = mp / vp - mq / vq
    C = 0.5 * (mq * mq / vq - mp * mp / vp) + 0.5 * np.log(vq / vp)
    return A, B, C


def _gaussian_llr_quadratic(f: GaussianFactor):
    """L under p as alpha z^2 + beta z + gamma with z ~ N(0, 1)."""
    A, B, C = _gaussian_llr_coeffs(f)
    m, s = f.mean_p, np.sqrt(f.var_p)
    return A * s * s, (2 * A * m + B) * s, A * m * m + B * m + C


def _gaussian_log_cf(f: GaussianFactor, omega):
    """log E_p[exp(i omega L)] per factor, shape (n_factors, n_omega)."""
    al, be, ga = (a[:, None] for a in _gaussian_llr_quadratic(f))
    w = np.asarray(omega, float)[None, :]
    den = 1 - 2j * w * al
    return 1j * w * ga - 0.5 * np.log(den) - (w * be) ** 2 / (2 * den)


def _quad_arrays(f: QuadratureFactor):
    law = f.law
    logq = f.target.logpdf(law.x)
    p, q = np.exp(law.logp), np.exp(logq)
    return law, p, q, logq


def _abs_integral(d, h: float) -> float:
    r""":math:`\int |d|` over a uniform grid (spacing ``h``) from the node values ``d``, to
    O(h^4) whatever the sign changes: on each cell the cubic through the four nearest nodes
    (linear extrapolation past the ends) is integrated; in a cell where ``d`` changes sign
    its root is found (Newton from the linear crossing) and the two pieces are integrated
    separately. (The trapezoid rule of ``|d|`` is O(h^2) at each crossing, with a sign that
    depends on where the crossing falls between nodes.)"""
    d = np.asarray(d, dtype=float)
    if d.size < 2:
        return 0.0
    d0, d1 = d[:-1], d[1:]
    dm = np.empty_like(d0)
    d2 = np.empty_like(d0)
    dm[1:], dm[0] = d[:-2], 2 * d[0] - d[1]
    d2[:-1], d2[-1] = d[2:], 2 * d[-1] - d[-2]
    cell = (13.0 / 24.0) * (d0 + d1) - (dm + d2) * (1.0 / 24.0)   # integral of the cubic / h
    out = np.abs(cell)
    cr = np.flatnonzero((d0 > 0) != (d1 > 0))
    if cr.size:
        a0, am, a1, a2 = d0[cr], dm[cr], d1[cr], d2[cr]
        # the cubic through t = -1, 0, 1, 2: a0 + c1 t + c2 t^2 + c3 t^3
        c1 = a1 - am / 3 - a0 / 2 - a2 / 6
        c2 = 0.5 * (am + a1) - a0
        c3 = (a2 - am) / 6 + 0.5 * (a0 - a1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(a0 == a1, 0.5, a0 / (a0 - a1))
            for _ in range(4):
                f = a0 + r * (c1 + r * (c2 + r * c3))
                fp = c1 + r * (2 * c2 + 3 * c3 * r)
                r = np.clip(np.where(fp != 0, r - f / fp, r), 0.0, 1.0)
        left = r * (a0 + r * (c1 / 2 + r * (c2 / 3 + r * (c3 / 4))))
        out[cr] = np.abs(left) + np.abs(cell[cr] - left)
    return h * float(out.sum())


def _quad_tv(f):
    law, p, q, _ = _quad_arrays(f)
    q_out = float(f.target.cdf(law.x[0]) + f.target.sf(law.x[-1]))
    h = float(law.x[1] - law.x[0]) if law.x.size > 1 else 0.0
    uniform = law.x.size > 2 and np.allclose(np.diff(law.x), h, rtol=1e-9, atol=0)
    if uniform:         # a grid law: crossings located, O(h^4)
        val = 0.5 * _abs_integral(p - q, h) + 0.5 * q_out
    else:
        val = 0.5 * float(np.sum(law.dx * np.abs(p - q))) + 0.5 * q_out
    return val, 0.5 * (q_out + law.lost_mass)


def _quad_kl(f):
    law, p, q, logq = _quad_arrays(f)
    val = float(np.sum(law.dx * q * (logq - law.logp)))
    return val, 0.0


def _quad_hellinger_sq(f):
    law, p, q, _ = _quad_arrays(f)
    return 0.5 * float(np.sum(law.dx * (np.sqrt(p) - np.sqrt(q)) ** 2)), law.lost_mass


def _quad_w2_sq(f):
    """W2^2 through the monotone transport map x -> F_q^{-1}(F_p(x))."""
    law, p, q, _ = _quad_arrays(f)
    lower = law.cdf <= 0.5
    target_x = np.empty_like(law.x)
    target_x[lower] = f.target.quantile(law.cdf[lower])
    # upper half through the survival function: F^{-1}(1 - s) = -G^{-1}(s) for G the law of -X
    neg = Mixture1D(f.target.w, -f.target.m, f.target.v)
    target_x[~lower] = -neg.quantile(law.sf[~lower])
    return float(np.sum(law.dx * p * (law.x - target_x) ** 2)), 0.0


def _llr_moments(factors):
    mean = var = 0.0
    for f in factors:
        if isinstance(f, GaussianFactor):
            al, be, ga = _gaussian_llr_quadratic(f)
            mean += float(np.sum(f.mult * (al + ga)))
            var += float(np.sum(f.mult * (2 * al * al + be * be)))
        else:
            law, p, q, logq = _quad_arrays(f)
            L = law.logp - logq
            w = law.dx * p
            m1 = float(np.sum(w * L))
            mean += f.mult * m1
            var += f.mult * float(np.sum(w * (L - m1) ** 2))
    return mean, var


def _gaussian_log_cf_sum(f: GaussianFactor, omega, n):
    r"""sum_i mult_i log phi_i(-omega) over the FFT frequencies, stopping once negligible.

    :math:`|\phi_i|` decreases in :math:`|\omega|` (each factor's modulus
    :math:`|1 - 2i\omega\alpha|^{-1/2} e^{-\omega^2\beta^2/(2(1 + 4\omega^2\alpha^2))}` does),
    so the frequencies are taken in blocks from 0 up, 64 at first and doubling (up to 2e6
    entries per block), until a block's largest log modulus is below -80: the work follows the
    few hundred frequencies that matter, not the lattice size."""
    out = np.full(n, -np.inf + 0j)
    half = n // 2 + 1                       # k = 0..n/2 (non-negative frequencies)
    cap = max(64, int(2e6 // max(f.mult.size, 1)))   # (factors x block) of at most 2e6 entries
    k0, step = 0, 64
    while k0 < half:
        sl = slice(k0, min(k0 + step, half))
        block = (f.mult[:, None] * _gaussian_log_cf(f, -omega[sl])).sum(0)
        out[sl] = block
        if block.real.max() < -80:
            break
        k0, step = sl.stop, min(2 * step, cap)
    # negative frequencies: phi(omega) = conj(phi(-omega)) for a real variable
    neg = np.arange(half, n)
    out[neg] = np.conj(out[n - neg])
    return out


def _product_tv_fft(factors, resolution: float = 1.0):
    """TV of a product law by lattice convolution of the log-likelihood ratio."""
    mean, var = _llr_moments(factors)
    sd = math.sqrt(max(var, 1e-300))
    # lattice spacing: fine against the spread of the total and of every quadrature factor
    deltas = [sd / 4000]
    for f in factors:
        if isinstance(f, QuadratureFactor):
            law, p, q, logq = _quad_arrays(f)
            L = law.logp - logq
            w = law.dx * p
            m1 = np.sum(w * L)
            deltas.append(math.sqrt(float(np.sum(w * (L - m1) ** 2))) / 60)
    delta = min(deltas) / resolution
    half = 40 * sd + 1e-12
    from scipy.fft import fft, ifft, next_fast_len
    n = next_fast_len(int(2 * half / delta) + 1)
    n = min(n, 1 << 23)
    delta = max(delta, 2 * half / n)
    j_lo = int(math.floor((mean - half) / delta))
    # Convention: F[k] = sum_j P_j exp(-i omega_k delta (j - j_lo)) = phi(-omega_k) e^{i omega_k delta j_lo}
    # so that the inverse FFT returns P at lattice points j_lo, j_lo + 1, ...
    omega = 2 * np.pi * np.fft.fftfreq(n, d=delta)
    log_cf = np.zeros(n, dtype=complex)
    for f in factors:
        if isinstance(f, QuadratureFactor):
            law, p, q, logq = _quad_arrays(f)
            L = law.logp - logq
            w = law.dx * p
            w = w / w.sum()
            pos = L / delta
            i0 = np.floor(pos)
            frac = pos - i0
            idx = i0.astype(np.int64) % n
            hist = np.bincount(idx, weights=w * (1 - frac), minlength=n)
            hist += np.bincount((idx + 1) % n, weights=w * frac, minlength=n)
            with np.errstate(divide="ignore"):
                log_cf += f.mult * np.log(fft(hist))          # phi(-omega), lattice-exact
        else:
            log_cf += _gaussian_log_cf_sum(f, omega, n)
    log_cf += 1j * omega * delta * j_lo
    prob = ifft(np.exp(log_cf)).real
    l = (j_lo + np.arange(n)) * delta
    gain = -np.expm1(-np.clip(l, 0, None))
    tv = float(np.sum(prob * gain))
    edge = max(1, n // 50)
    alias_mass = float(np.abs(prob[:edge]).sum() + np.abs(prob[-edge:]).sum())
    return tv, {"lattice_delta": delta, "lattice_size": n, "llr_mean": mean, "llr_sd": sd,
                "edge_mass": alias_mass, "mass": float(prob.sum())}


def _total_mult(factors):
    tot = 0
    for f in factors:
        tot += int(np.sum(f.mult))
    return tot


def factor_distance(factors, metric: str, resolution: float = 1.0):
    """Distance between the product output law and the product target.

    Returns ``(value, numerical_error, method, details)``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    gauss = [f for f in factors if isinstance(f, GaussianFactor)]
    quad = [f for f in factors if isinstance(f, QuadratureFactor)]
    err = 0.0
    # KL and W2^2 add over independent factors
    additive = {"kl": (lambda f: gaussian_kl(f.mean_q, f.var_q, f.mean_p, f.var_p), _quad_kl,
                       lambda v: v, "closed form / quadrature (tensorised)"),
                "w2": (lambda f: gaussian_w2_sq(f.mean_p, f.var_p, f.mean_q, f.var_q),
                       _quad_w2_sq, math.sqrt, "closed form / quantile coupling (W2^2 summed)")}
    if metric in additive:
        gaussian_term, quadrature_term, finish, method = additive[metric]
        total = sum(float(np.sum(f.mult * gaussian_term(f))) for f in gauss)
        total += sum(f.mult * quadrature_term(f)[0] for f in quad)
        return finish(total), err, method, {}
    if metric == "hellinger":
        log_aff = sum(float(np.sum(f.mult * np.log1p(-gaussian_hellinger_sq(
            f.mean_p, f.var_p, f.mean_q, f.var_q)))) for f in gauss)
        for f in quad:
            h2, e = _quad_hellinger_sq(f)
            log_aff += f.mult * math.log1p(-h2)
            err += f.mult * e
        return math.sqrt(max(-math.expm1(log_aff), 0.0)), err, \
            "closed form / quadrature (affinity tensorised)", {}
    # tv
    if _total_mult(factors) == 1:
        if gauss:
            f = gauss[0]
            return gaussian_tv_1d(f.mean_p[0], f.var_p[0], f.mean_q[0], f.var_q[0]), 1e-15, \
                "closed form (density crossings)", {}
        v, e = _quad_tv(quad[0])
        return v, e, "quadrature of |p - q|", {}
    tv, info = _product_tv_fft(factors, resolution)
    return tv, info["edge_mass"] + abs(1 - info["mass"]), "FFT law of the log-likelihood ratio", info


def combine_levels(metric: str, coarse, fine) -> DistanceEstimate:
    """Value from the finer resolution, error = |fine - coarse| + both numerical errors."""
    v0, e0, method, _ = coarse
    v1, e1, method1, info = fine
    # refinement difference + stated errors + a roundoff floor (the grid engine's relative
    # accuracy is ~1e-11 however fine the grid, which refinement cannot see)
    err = abs(v1 - v0) + e1 + 1e-9 * abs(v1)
    lower = max(v1 - err, 0.0)
    upper = v1 + err
    if metric in ("tv", "hellinger"):
        upper = min(upper, 1.0)
    return DistanceEstimate(metric, v1, lower, upper,
                            method1 + "; error by refinement", err,
                            {k: v for k, v in info.items()})


def exact_distance(prior, rule, metric: str = "tv", *, fine_level: float = 1.0,
                   perturbation=None) -> DistanceEstimate:
    """Exact distance between the law of Y_1 (``rule`` driven by ``prior``'s exact score) and
    q_1, with the numerical error estimated by refinement (grids halved, lattice halved).
    ``perturbation``: drive the sampler with a perturbed score (:mod:`theory.score_errors`).

    Raises :class:`theory.checks.NoExactLaw` where no exact engine applies.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    lo, hi = _refinement_levels(prior, rule, metric, perturbation)
    coarse = factor_distance(exact_factors(prior, rule, lo * fine_level, perturbation),
                             metric, 0.5)
    fine = factor_distance(exact_factors(prior, rule, hi * fine_level, perturbation), metric, 1.0)
    return combine_levels(metric, coarse, fine)


# Grid levels (multiples of the default resolution, :func:`theory.laws.grid1d.output_law_1d`)
# of the two refinement levels of the 1-D TV of a one-step affine rule. Its grid law is O(h^4)
# (the spline, the Newton-corrected preimage and its slope; the blur is spectral) and so is
# the quadrature of |p - q| (:func:`_abs_integral`), so grids 4 and 8/3 times coarser than the
# default give a refinement error below the one the default pair (levels 1/2 and 1, then O(h^2)
# from the slope at the uncorrected preimage and the trapezoid rule at the crossings) gave:
# bimodal, li-sde, T = 1000: 2.0e-7 against 1.9e-6, for a fifth of the nodes.
_TV_1D_LEVELS = (0.25, 0.375)


def _refinement_levels(prior, rule, metric, perturbation):
    """``(coarse, fine)`` levels of the refinement: :data:`_TV_1D_LEVELS` for the TV of a 1-D
    product prior under an unperturbed one-step affine rule (one grid law, the quadrature of
    |p - q|), else half and full resolution (products, whose lattice FFT follows the nodes;
    the other metrics; stage, multistep and perturbed rules)."""
    if (metric == "tv" and perturbation is None and isinstance(prior, ProductPrior)
            and int(prior.dim) == 1 and isinstance(rule, AffineRule) and not rule.multistep):
        return _TV_1D_LEVELS
    return 0.5, 1.0
