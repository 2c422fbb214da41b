r"""What the 1-D and 2-D grid engines of the posterior chains share: TV between laws given by
masses on a uniform grid (with the kink correction at density crossings), normalisation
of log masses, evaluation of torch log densities at grid points, and the result container.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.fft import irfft, rfft

__all__ = ["check_eta", "tv_masses", "tv_spectral", "upsample", "tv_masses_2d", "tv_and_kink", "kink_correction", "normalise_log",
           "eval_on_points", "GridResult", "check_memory", "check_resolution", "MIN_RESOLUTION"]

MIN_RESOLUTION = 1.5    # a grid resolves a scale s when s >= 1.5 h (Riemann error ~1e-19)

DTYPE = torch.float64


def _unit(v: float) -> float:
    """A TV estimate held to [0, 1], where every TV between probability laws lies: on an
    under-resolved law (mass lost off the grid, a kink correction larger than the sum it
    corrects) the raw sum can leave it, and the nearest point of [0, 1] is closer to the
    true value than the raw one, so no stated error grows."""
    return min(max(float(v), 0.0), 1.0)


def tv_masses(p: np.ndarray, q: np.ndarray) -> float:
    r"""TV between two laws given by masses on the same uniform grid.

    The trapezoid rule (the plain sum of :math:`|d_i|`, :math:`d = p - q`) is spectrally
    accurate for smooth Gaussian-tailed integrands, but :math:`|d|` has a kink at every
    crossing of the densities, where it errs by O(h^2) (an oscillating function of where the
    crossing falls between nodes). Each sign change between :math:`d_i` and :math:`d_{i+1}` is
    corrected by Euler-Maclaurin for a kink: the cell integral of the linear interpolant
    (:math:`-|d_i||d_{i+1}|/(|d_i|+|d_{i+1}|)` against the trapezoid) and the jump of the
    derivative (:math:`+(|d_i|+|d_{i+1}|)/6`), leaving an O(h^3) error per crossing.
    """
    d = np.asarray(p, float) - np.asarray(q, float)
    return _unit(0.5 * float(np.abs(d).sum() - kink_correction(d, 0)))


def upsample(m: np.ndarray, factor: int) -> np.ndarray:
    """Point masses on a grid ``factor`` times finer, by trigonometric (zero-padded FFT)
    interpolation along the last axis (the law is taken to vanish at the grid's ends)."""
    m = np.asarray(m, float)
    n = m.shape[-1]
    if factor <= 1:
        return m
    F = rfft(m, axis=-1)
    L = n * factor
    G = np.zeros(m.shape[:-1] + (L // 2 + 1,), complex)
    G[..., :F.shape[-1]] = F
    if n % 2 == 0:
        G[..., F.shape[-1] - 1] *= 0.5
    return irfft(G, L, axis=-1)


def tv_spectral(p: np.ndarray, q: np.ndarray, factor: int = 8) -> float:
    """:func:`tv_spectral_and_kink` without the kink term's size."""
    return tv_spectral_and_kink(p, q, factor)[0]


def tv_spectral_and_kink(p: np.ndarray, q: np.ndarray, factor: int = 8):
    r"""TV between two smooth laws given by point masses on one uniform grid: both
    interpolated trigonometrically onto a grid ``factor`` times finer, then
    :func:`tv_masses` there. The kinks of :math:`|p - q|` (an :math:`O(h^3)`, irregular error
    of the sum on the grid itself) shrink by ``factor**3``, so that what refinement measures is
    the error of the laws, which is spectral for the grid chains' smooth laws. A law that the
    grid does not resolve smoothly (its interpolant dips below -1e-9 of its peak: spikes,
    jumps) is compared on the grid itself (:func:`tv_masses`). Returns ``(tv, kink)``, kink
    the size of the kink term in the TV (half the correction), an error term: what is left
    of the kinks after the correction is of higher order, and refinement does not see it
    where the laws themselves converge spectrally."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    up = upsample(np.stack([p, q]), factor)
    peak = np.abs(up).max(1)
    if np.any(up.min(1) < -1e-9 * peak):
        d = p - q
    else:
        d = up[0] - up[1]
    corr = kink_correction(d, 0)
    return _unit(0.5 * float(np.abs(d).sum() - corr)), 0.5 * abs(corr)


def kink_correction(d: np.ndarray, axis: int) -> float:
    """Sum over the sign changes of ``d`` between neighbours along ``axis`` of the
    Euler-Maclaurin kink term of :func:`tv_masses` (subtract it from ``sum |d|``)."""
    d = np.moveaxis(np.asarray(d, float), axis, 0)
    a, b = d[:-1], d[1:]
    cross = a * b < 0
    aa, bb = np.abs(a[cross]), np.abs(b[cross])
    return float((aa * bb / (aa + bb) - (aa + bb) / 6).sum())


def tv_masses_2d(p: np.ndarray, q: np.ndarray) -> float:
    r"""TV between two laws given by masses on the same 2-D grid: half the l1 distance,
    corrected for the kink of :math:`|p - q|` where the densities cross. Each row (and each
    column) is a 1-D sum with crossings, corrected as in
    :func:`theory.posterior.grid_base.tv_masses`; the two orientations are averaged."""
    return tv_and_kink(p, q)[0]


def tv_and_kink(p, q):
    """(corrected TV, size of the kink correction): the second is the O(h^2) error of the
    plain sum, part of the stated error (the corrected sum is not always of higher order in
    2-D: where the crossing curve runs along a grid line the 1-D model of a kink fails)."""
    d = np.asarray(p, float) - np.asarray(q, float)
    corr = 0.25 * (kink_correction(d, 0) + kink_correction(d, 1))
    return _unit(0.5 * float(np.abs(d).sum()) - corr), abs(corr)


def normalise_log(logm: np.ndarray, axis=-1) -> np.ndarray:
    """``exp(logm)`` normalised along ``axis`` (max-shift, then one division)."""
    m = np.exp(logm - np.max(logm, axis=axis, keepdims=True))
    return m / m.sum(axis=axis, keepdims=True)


def _machine_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):      # pragma: no cover - non-POSIX
        return 16e9


def check_memory(n_bytes: float, what: str) -> None:
    """Refuse (one-line ValueError) a grid whose arrays would exceed half the machine's
    physical memory."""
    cap = 0.5 * _machine_memory()
    if not n_bytes <= cap:
        raise ValueError(f"{what} is too large: it would need {n_bytes / 2 ** 30:.3g} GiB, more "
                         f"than half this machine's memory ({cap / 2 ** 30:.3g} GiB); pass a "
                         "larger h")


def check_resolution(h: float, scales: dict, factor: float = MIN_RESOLUTION) -> None:
    """Refuse (one-line ValueError) a spacing ``h`` that cannot resolve the narrowest of the
    problem's ``scales`` (name -> length): every scale must be at least ``factor * h``."""
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"the grid spacing h must be a positive number, got {h}")
    name, s = min(scales.items(), key=lambda kv: kv[1])
    if s < factor * h:
        raise ValueError(f"h = {h:.4g} cannot resolve the problem's narrowest scale ({name} = "
                         f"{s:.4g}): need h <= {s / factor:.4g}")


def eval_on_points(fn, pts) -> np.ndarray:
    """``fn`` (a torch log density or log likelihood on (n, d) float64 rows) at the points
    ``pts`` ((n,) in 1-D or (n, d)), as float64 numpy."""
    pts = torch.as_tensor(np.asarray(pts, float).reshape(len(pts), -1), dtype=DTYPE)
    with torch.no_grad():       # in row blocks: a fine 2-D grid has millions of points
        out = torch.cat([fn(b) for b in pts.split(1 << 18)])
    return out.detach().cpu().numpy().astype(np.float64)


@dataclass
class GridResult:
    """Laws of x_k (k = 1..K) on the grid with their distances to pi_eta and the posterior."""

    x: np.ndarray
    laws: list
    tv_pi: list
    tv_post: list
    pi: list
    posterior: np.ndarray
    tv_pi_post: list
    rates: dict
    info: dict = field(default_factory=dict)


def check_eta(eta, eta_max: float) -> float:
    """``eta`` as a positive float no larger than the grid's ``eta_max`` (ValueError else)."""
    eta = float(eta)
    if not (math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be positive, got {eta}")
    if eta > eta_max * (1 + 1e-12):
        raise ValueError(f"eta {eta} exceeds the grid's eta_max {eta_max}")
    return eta
