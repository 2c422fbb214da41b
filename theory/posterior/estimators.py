r"""Sample-based TV between chains of a posterior sampler and an exact grid law (1-D and 2-D),
with a bootstrap interval, the estimator's noise floor and (1-D) a rigorous lower bound.

Fields of a :class:`BinnedTV` (and of its ``to_dict``):

* ``value``: the **bias-corrected** estimate the interval is built around,
  :math:`\max(0, 2\hat t - \mathrm{median}(t^*))` (:math:`\hat t` the binned statistic,
  :math:`t^*` its multinomial bootstrap replicates): the basic bootstrap removes the
  statistic's upward bias once (:math:`|c_b/n - P_b|` is biased up), and this value lies in
  the basic-bootstrap interval by construction;
* ``statistic``: the raw binned statistic :math:`\hat t` (biased upward; what the floor is
  the null distribution of);
* ``lower``, ``upper``: a 95% interval of the true binned TV :math:`\tau` (the binned TV
  between the sampler's law and the reference): the basic-bootstrap interval
  :math:`[2\hat t - t^*_{0.975},\ 2\hat t - t^*_{0.025}]`, widened where it is known to
  miss. The basic bootstrap assumes that :math:`t^* - \hat t` is distributed like
  :math:`\hat t - \tau`; near the floor the replicates are biased more than the statistic,
  so it over-corrects: at :math:`\tau = 0` its lower end never reaches 0, and at
  :math:`\tau` of one to two floors the truth lies above its upper end in 6-9% of runs.
  Lower end: :math:`\min(\text{basic}, \hat t - f\sqrt{f/\hat t})`, with f the 97.5%
  quantile of the floor. By the triangle inequality :math:`\hat t - \tau` is at most the
  empirical law's binned TV to the sampler's own law, whose distribution the floor
  approximates, so :math:`\hat t - f` is a lower bound at about 97.5%; the factor
  :math:`\sqrt{f/\hat t}` relaxes it as the signal outgrows the noise, where |.| is no longer
  biased and the basic bootstrap is right. Upper end: :math:`\max(\text{basic},\ \hat t +
  1.96\,\mathrm{sd}(t^*))`; the raw statistic is biased upward
  (:math:`E\hat t \ge \tau` bin by bin), so its own spread bounds :math:`\tau` from above.
  Calibrated by simulation (binned shifted normals, 80 bins with n = 2000 and 200 bins with
  n = 20000, :math:`\tau` from 0 to 0.55, 400 runs each): each end misses in at most 3.5%
  of runs (basic interval: the lower end in 97-100% of runs at :math:`\tau = 0`, the upper in
  up to 9%); the interval is 1.3-2.5 times the basic one's width within two floors and
  1.1-1.3 times beyond (``tests/test_estimators.py``);
* ``floor``, ``floor_q95``: mean and 95% quantile of the raw statistic for n exact draws of
  the reference; ``below_floor``: the raw statistic does not exceed ``floor_q95``;
* ``ks_lower`` (1-D): a rigorous 95% lower bound on the true TV (DKW).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

__all__ = ["BinnedTV", "binned_tv", "binned_tv_2d"]


def _np(a):
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)


@dataclass
class BinnedTV:
    """Binned TV between samples and a grid law, with its CI and its noise floor.

    ``statistic``: :math:`\\tfrac12\\sum_b |c_b/n - P_b|` (+ half the mass outside the bins);
    ``value``: the bias-corrected estimate :math:`\\max(0, 2\\,\\mathrm{statistic} -
    \\mathrm{median}(\\text{bootstrap}))`, inside ``[lower, upper]``;
    ``lower``/``upper``: 95% basic-bootstrap interval (multinomial resampling);
    ``floor``/``floor_q95``: mean and 95% quantile of the same statistic for n exact draws
    from the reference (what the estimator returns when the true TV is 0);
    ``ks_lower``: a rigorous 95% lower bound on the true TV, :math:`\\max(0, \\mathrm{KS}_n -
    \\sqrt{\\log(2/0.05)/(2n)})` (DKW) with KS over the bin edges (TV >= KS).
    Binning can only lower the TV of the laws (data processing), so ``value`` estimates a
    lower bound of the true TV plus the sampling bias measured by ``floor``.
    """

    value: float
    lower: float
    upper: float
    floor: float
    floor_q95: float
    ks_lower: float
    n: int
    bin_width: float
    method: str
    statistic: float = float("nan")

    @property
    def below_floor(self) -> bool:
        """The raw statistic is within the null distribution's 95% quantile."""
        return self.statistic <= self.floor_q95

    def to_dict(self) -> dict:
        return {"value": self.value, "statistic": self.statistic, "lower": self.lower,
                "upper": self.upper,
                "floor": self.floor, "floor_q95": self.floor_q95, "ks_lower": self.ks_lower,
                "n": self.n, "bin_width": self.bin_width, "below_floor": self.below_floor,
                "method": self.method}


def _group_counts(groups, flat_idx, inside, nbins):
    """(G, nbins + 1) counts per group (last column: samples outside the bins)."""
    g = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    cols = np.where(inside, flat_idx, nbins)
    out = np.zeros((g.max() + 1, nbins + 1))
    np.add.at(out, (g, cols), 1.0)
    return out


def binned_tv(samples, x: np.ndarray, mass: np.ndarray, *, bin_width: Optional[float] = None,
              n_boot: int = 200, seed: int = 0, groups=None) -> BinnedTV:
    """Binned TV between 1-D ``samples`` and the grid law ``(x, mass)`` (uniform grid ``x``,
    cell i = [x_i - h/2, x_i + h/2)); bins are unions of whole cells (``BinnedTV``).
    ``groups`` (n,): labels of correlated samples (cluster bootstrap)."""
    s = np.asarray(samples.detach().cpu().numpy() if torch.is_tensor(samples) else samples,
                   float).reshape(-1)
    n = s.size
    if n < 2:
        raise ValueError("binned TV needs at least 2 samples")
    x = np.asarray(x, float)
    h = float(x[1] - x[0])
    g = max(1, int(round((bin_width if bin_width is not None else 4 * h) / h)))
    nb = int(math.ceil(x.size / g))
    pad = nb * g - x.size
    P = np.concatenate([np.asarray(mass, float), np.zeros(pad)]).reshape(nb, g).sum(1)
    edges0 = x[0] - h / 2
    idx = np.floor((s - edges0) / (h * g)).astype(np.int64)
    inside = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[inside], minlength=nb).astype(float)
    out = n - counts.sum()
    gc = None if groups is None else _group_counts(_np(groups), idx, inside, nb)
    stat, val, lo, hi, fl_mean, fl_q95 = _binned_statistic(counts, out, P, n, n_boot, seed, gc)
    # KS over the bin edges (the outside mass counted below the first edge)
    Fn = np.cumsum(counts) / n
    F = np.cumsum(P)
    below = np.sum(idx < 0) / n
    ks = float(np.max(np.abs(Fn + below - F)))
    eps = math.sqrt(math.log(2 / 0.05) / (2 * n))
    return BinnedTV(val, lo, hi, fl_mean, fl_q95, max(0.0, ks - eps), n,
                    h * g, f"binned TV ({nb} bins of width {h * g:.4g}), bias-corrected, 95% "
                    f"basic-bootstrap CI ({n_boot} resamples) widened near the floor, floor "
                    f"from {n_boot} exact multinomial draws", stat)


def _binned_statistic(counts, out, P, n, n_boot, seed, group_counts=None):
    r"""Raw statistic, bias-corrected value, 95% basic-bootstrap interval and floor (mean, 95%
    quantile) of the binned TV :math:`\tfrac12\sum_b |c_b/n - P_b| + \tfrac12 o/n` for bin
    counts ``c`` (flat), ``o`` samples outside the bins and reference bin masses ``P``.
    ``group_counts`` (G, bins + 1): counts per group of correlated samples (last column:
    outside), resampled as whole groups (cluster bootstrap) instead of the multinomial
    bootstrap."""
    def stat(c, o, m=n):
        return 0.5 * np.abs(c / m - P).sum(-1) + 0.5 * o / m

    val = float(stat(counts, out))
    rng = np.random.default_rng(seed)
    if group_counts is None:
        probs = np.concatenate([counts, [out]]) / n
        boot = rng.multinomial(n, probs, size=n_boot)
        bs = stat(boot[:, :-1], boot[:, -1])
    else:
        G = group_counts.shape[0]
        pick = rng.integers(0, G, (n_boot, G))
        boot = group_counts[pick].sum(1)                               # (n_boot, bins + 1)
        m = boot.sum(1, keepdims=True)
        bs = (0.5 * np.abs(boot[:, :-1] / m - P).sum(-1) + 0.5 * boot[:, -1] / m[:, 0])
    # grid laws may hold rounding-level negative masses: the exact draws use the clipped law
    Pn = np.maximum(np.concatenate([P, [max(0.0, 1 - P.sum())]]), 0.0)
    Pn = Pn / Pn.sum()
    ex = rng.multinomial(n, Pn, size=n_boot)
    fl = stat(ex[:, :-1], ex[:, -1])
    # basic (reverse-percentile) bootstrap: corrects the upward bias of |.| once; the value
    # it stands behind is the statistic corrected the same way (2 t - median t*), which lies
    # between its ends. Near the floor the basic interval misses (module docstring,
    # "interval"): it is widened by the triangle-inequality bound below and by the raw
    # statistic's own spread above.
    q_lo, q_mid, q_hi = (float(q) for q in np.quantile(bs, [0.025, 0.5, 0.975]))
    f = float(np.quantile(fl, 0.975))
    lo = max(0.0, 2 * val - q_hi)
    if val > 0:
        lo = min(lo, max(0.0, val - f * math.sqrt(f / val)))
    hi = max(lo, 2 * val - q_lo, val + 1.96 * float(np.std(bs)))
    corrected = min(max(0.0, 2 * val - q_mid), hi)
    return val, corrected, lo, hi, float(fl.mean()), float(np.quantile(fl, 0.95))


def binned_tv_2d(samples, axes, mass: np.ndarray, *, bin_cells: int = 8, n_boot: int = 200,
                 seed: int = 0, groups=None) -> BinnedTV:
    """Binned TV between 2-D ``samples`` (n, 2) and a law given by masses on the grid
    ``axes`` (two uniform axes of spacing h; cell (i, j) centred on the nodes); bins are
    blocks of ``bin_cells`` x ``bin_cells`` cells. As :func:`binned_tv` (value, basic
    bootstrap CI, floor from exact multinomial draws), without the KS lower bound
    (``ks_lower`` = 0: no distribution-free bound of that form in 2-D)."""
    s = np.asarray(samples.detach().cpu().numpy() if torch.is_tensor(samples) else samples,
                   float)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape[0] < 2:
        raise ValueError(f"binned_tv_2d needs samples of shape (n, 2), got {s.shape}")
    n = s.shape[0]
    mass = np.asarray(mass, float)
    h = float(axes[0][1] - axes[0][0])
    if not np.isclose(float(axes[1][1] - axes[1][0]), h, rtol=1e-9):
        raise ValueError("binned_tv_2d needs the same spacing on both axes")
    g = int(bin_cells)
    if g < 1:
        raise ValueError(f"bin_cells must be a positive integer, got {bin_cells}")
    nb = [int(math.ceil(a.size / g)) for a in axes]
    padded = np.zeros((nb[0] * g, nb[1] * g))
    padded[:mass.shape[0], :mass.shape[1]] = mass
    P = padded.reshape(nb[0], g, nb[1], g).sum((1, 3)).ravel()
    idx = [np.floor((s[:, i] - (axes[i][0] - h / 2)) / (h * g)).astype(np.int64)
           for i in range(2)]
    inside = (idx[0] >= 0) & (idx[0] < nb[0]) & (idx[1] >= 0) & (idx[1] < nb[1])
    flat = idx[0][inside] * nb[1] + idx[1][inside]
    counts = np.bincount(flat, minlength=nb[0] * nb[1]).astype(float)
    out = n - counts.sum()
    gc = None
    if groups is not None:
        full = np.where(inside, idx[0] * nb[1] + idx[1], 0)
        gc = _group_counts(_np(groups), full, inside, nb[0] * nb[1])
    stat, val, lo, hi, fl_mean, fl_q95 = _binned_statistic(counts, out, P, n, n_boot, seed, gc)
    return BinnedTV(val, lo, hi, fl_mean, fl_q95, 0.0, n, h * g,
                    f"binned TV in 2-D ({nb[0]} x {nb[1]} bins of side {h * g:.4g}), "
                    f"bias-corrected, 95% basic-bootstrap CI ({n_boot} resamples) widened near the floor, floor from "
                    f"{n_boot} exact multinomial draws", stat)
