r"""Errors of grid laws by refinement at three levels (THEORY.md section 8).

Every grid quantity :math:`T` is computed at spacings h, :math:`\rho h` and :math:`\rho^2 h`
(:math:`\rho = 2` in 1-D; 1.5 in 2-D, where a 4h grid would not resolve the default
problems). With :math:`d_1 = |T_h - T_{\rho h}|`, :math:`d_2 = |T_{\rho h} - T_{\rho^2 h}|` and
the observed ratio :math:`r = d_2/d_1 = \rho^p` (p the observed order):

* both differences at rounding level (below 1e-13): converged, error :math:`\max(d_1, d_2)`;
* :math:`r \ge 2` (order at least 1, the asymptotic regime of every integrand here:
  spectral for smooth ones, :math:`h^2`-:math:`h^4` with kinks, folds or transport): the error
  is :math:`d_1`, which bounds :math:`|T_h - T^*| = d_1/(\rho^p - 1)` and the distance to any
  finer grid;
* :math:`1.1 < r < 2` (slow but converging): Richardson with the observed order,
  :math:`d_1/(r - 1)`;
* otherwise the differences do not shrink (the error is irregular at that level, as TVs
  with kinks often are on coarse grids, or the grid does not resolve the problem, which the
  spacing guards refuse beforehand): the error is widened to :math:`2\max(d_1, d_2)` and the
  quantity is flagged ``asymptotic = False``.

:func:`grid_refinement` applies this to the exact-sub-sampler engines (:class:`Grid1D`,
:class:`Grid2D`); :func:`three_level` to any sequence of values.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..priors import Prior
from .grid1d import Grid1D
from .grid2d import Grid2D
from .grid_base import MIN_RESOLUTION
from .likelihoods import Likelihood

__all__ = ["grid_refinement", "three_level", "check_refinable", "refine"]

_ROUND = 1e-13


def three_level(fine, mid, coarse, ratio: float = 2.0):
    r"""Errors of ``fine`` (values at h) from the values at rho h (``mid``) and rho^2 h
    (``coarse``), rho = ``ratio``
    (module docstring). Arrays or scalars; returns ``(error, observed_order, asymptotic)``
    of the same shape (order NaN where both differences are at rounding level; the order is
    :math:`\log_\rho(d_2/d_1)`)."""
    f, m, c = (np.asarray(v, dtype=np.float64) for v in (fine, mid, coarse))
    d1, d2 = np.abs(f - m), np.abs(m - c)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d1 > 0, d2 / np.where(d1 > 0, d1, 1.0), np.inf)
        order = np.where(np.maximum(d1, d2) > _ROUND, np.log(r) / np.log(ratio), np.nan)
    conv = np.maximum(d1, d2) <= _ROUND
    err = np.where(conv, np.maximum(d1, d2),
                   np.where(r >= 2, d1,
                            np.where(r > 1.1, d1 / np.maximum(r - 1, 1e-300),
                                     2 * np.maximum(d1, d2))))
    asym = conv | (r > 1.1)
    if np.ndim(err) == 0:
        return float(err), float(order), bool(asym)
    return err, order, asym


def check_refinable(h: float, scales: dict, ratio: float = 2.0) -> None:
    """Refuse (one line) a spacing whose coarsest refinement level ``ratio**2 * h`` cannot
    resolve the narrowest of ``scales``."""
    name, s = min(scales.items(), key=lambda kv: kv[1])
    f = ratio * ratio
    if not (h > 0 and s >= MIN_RESOLUTION * f * h):
        raise ValueError(f"h = {h:.4g} is too coarse for the problem's narrowest scale ({name} "
                         f"= {s:.4g}): the refinement's coarsest level {f:g}h must resolve it, "
                         f"so h <= {s / (f * MIN_RESOLUTION):.4g}")


def grid_refinement(prior: Prior, lik: Likelihood, etas: Sequence[float],
                    init: str = "standard-normal", h: Optional[float] = None,
                    with_rates: bool = True):
    """Run the grid engine (:class:`Grid1D` for d = 1, :class:`theory.posterior.grid2d.Grid2D`
    for d = 2) at spacing h, rho h and rho^2 h (rho = 2 in 1-D, 1.5 in 2-D); returns
    ``(fine, coarse, errors)`` (``coarse`` the rho h result). The error of each TV (tv_pi, tv_post, tv_pi_post, per k) is the three-level
    estimate of :func:`three_level`, plus the mass lost to underflow and, in 2-D, the size
    of the fine grid's kink correction (see :mod:`theory.posterior.grid2d`); of the rates,
    the same estimate. ``errors["convergence"]`` holds the smallest observed order and
    whether every quantity was in the asymptotic regime."""
    engine = Grid1D if prior.dim == 1 else Grid2D
    ratio = 2.0 if prior.dim == 1 else 1.5
    eta_max = max(float(e) for e in etas)
    eta_min = min(float(e) for e in etas)
    if h is not None:
        check_refinable(float(h), engine.problem_scales(prior, lik, eta_max, eta_min), ratio)
    fine_grid = engine(prior, lik, h=h, eta_max=eta_max, eta_min=eta_min)
    check_refinable(fine_grid.h, fine_grid.scales, ratio)
    fine = fine_grid.run(etas, init, with_rates)
    mid, coarse = (engine(prior, lik, h=f * fine_grid.h, eta_max=eta_max,
                          eta_min=eta_min).run(etas, init, with_rates)
                   for f in (ratio, ratio * ratio))
    lost = fine.info.get("lost", 0.0)
    err, orders, asym = {}, [], []
    for key in ("tv_pi", "tv_post", "tv_pi_post"):
        kink = fine.info.get("kink", {}).get(key, [0.0] * len(etas))
        e, o, a = three_level(getattr(fine, key), getattr(mid, key), getattr(coarse, key),
                              ratio)
        err[key] = [float(v) + c + lost for v, c in zip(e, kink)]
        orders.append(o)
        asym.append(a)
    err["rates"] = {}
    for e in fine.rates:
        v, o, a = three_level(fine.rates[e], mid.rates[e], coarse.rates[e], ratio)
        err["rates"][e] = v
        orders.append(np.atleast_1d(o))
        asym.append(np.atleast_1d(a))
    o = np.concatenate([np.atleast_1d(v) for v in orders])
    err["convergence"] = {"min_observed_order": (float(np.nanmin(o)) if np.any(np.isfinite(o))
                                                 else None),
                          "asymptotic": bool(np.all(np.concatenate(asym))),
                          "levels": [fine_grid.h, ratio * fine_grid.h,
                                     ratio * ratio * fine_grid.h]}
    return fine, mid, err


def refine(run_at, h: float, keys: Sequence[str], *, ratio: float = 2.0,
           target: Optional[float] = None, max_halvings: int = 0,
           max_order: Optional[float] = None, trusted_order: Optional[float] = None):
    r"""Three-level refinement of any grid computation. ``run_at(spacing)`` returns a dict
    whose ``keys`` are sequences of values (TVs per k, ...) and whose ``"lost"`` (optional)
    is the mass the grid lost, an error term added to every value's. Runs h, ratio h and
    ratio^2 h; with ``target`` divides h by ``ratio`` (one finer level each time, up to
    ``max_halvings`` times) until every error is below it. Returns ``(fine, errors)``;
    ``errors[key]`` a list, ``errors["levels"]`` the spacings, ``errors["asymptotic"]``
    whether every value was in the asymptotic regime (:func:`three_level`).

    ``max_order`` (p): the highest order the method can have (4 for the conservative
    transport). An observed ratio :math:`d_2/d_1` far above :math:`\rho^p` is then a
    coincidence (the error changing sign between levels, as with the steep maps of the
    deterministic DDS), not convergence: the error is at least :math:`d_2/\rho^p`, what an
    order-p method can have gained from :math:`\rho h` to h.

    ``trusted_order`` (q): an observed order above q (:math:`d_2/d_1 > \rho^q`) is taken as
    outside the asymptotic regime, where :math:`d_1` (Richardson's estimate) says nothing
    about the error: the error is then the raw coarser difference :math:`\max(d_1, d_2)`
    and the value is flagged non-asymptotic. This is not a proof (no three values bound the
    limit) but holds whenever the error shrinks under refinement at any order above
    :math:`\log_\rho((1 + \sqrt 5)/2)` (1.2 for rho = 1.5) and is what the 2-D DPnP
    engine needs: its TVs (kinks of :math:`|p - q|`) show orders of 8 to 19 between
    h, 1.5h, 2.25h, where the difference to an h/2 grid was up to 8 times :math:`d_1`.
    ``errors["orders"][key]`` gives the observed orders."""
    runs = [run_at(ratio * ratio * h), run_at(ratio * h), run_at(h)]
    halvings = 0
    while True:
        c, m, f = runs[-3:]
        lost = np.atleast_1d(f.get("lost", 0.0))
        err, worst, asym, orders = {}, 0.0, True, {}
        for key in keys:
            e, o, a = three_level(f[key], m[key], c[key], ratio)
            e, o, a = np.atleast_1d(e), np.atleast_1d(o), np.atleast_1d(a)
            d1 = np.abs(np.atleast_1d(np.asarray(f[key], float) - np.asarray(m[key], float)))
            d2 = np.abs(np.atleast_1d(np.asarray(m[key], float) - np.asarray(c[key], float)))
            if max_order is not None:
                e = np.maximum(e, d2 / ratio ** max_order)
            if trusted_order is not None:
                high = np.nan_to_num(o, nan=-np.inf) > trusted_order
                e = np.where(high, np.maximum(e, np.maximum(d1, d2)), e)
                a = a & ~high
            orders[key] = [float(v) for v in o]
            err[key] = [float(v) + float(lo) + 1e-12
                        for v, lo in zip(e, np.broadcast_to(lost, e.shape))]
            worst = max(worst, max(err[key]))
            asym = asym and bool(np.all(a))
        err["levels"] = [h, ratio * h, ratio * ratio * h]
        err["asymptotic"] = asym
        err["orders"] = orders
        if target is None or worst <= target or halvings >= max_halvings:
            return f, err
        h /= ratio
        halvings += 1
        runs.append(run_at(h))
