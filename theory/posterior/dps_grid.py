r"""Exact grid law of DPS (Chung et al., ICLR 2023; THEORY.md section 7) in 1-D and 2-D.

DPS from :math:`x_T \sim N(0, I)` is the chain of its T - 1 guided DDPM steps
:math:`x_{t-1} = a_t x_t + b_t s_t(x_t) - \zeta'\nabla\mathcal L(\hat x_0(x_t))/\sqrt{\mathcal L}
+ c_t Z` and Tweedie's map (:func:`theory.posterior.sampler_steps.dps_steps`, the sampler's
own step function). In 1-D it runs on :func:`theory.posterior.chains1d.iter_chain_1d` over a
working grid (range [-12, 12] and the x grid's, doubled while the chain loses more than 1e-9
of its mass off it: the guidance can carry the early states far out; spacing h, small-noise
steps reading from a grid 4 times finer: the guidance of the Gaussian loss is
:math:`\pm 2\zeta'|\partial\hat x_0|`, a map with a jump where :math:`A\hat x_0 = y`, which the
transport locates by a 16-way search); in
2-D on :func:`theory.posterior.chains2d.chain_laws_2d`: every guided step whose noise
:math:`c_t \ge 1.5h` goes through the push route, which needs no inverse of the map and so
holds where the guided map folds (on mixture priors, where the guidance runs through the
steep Tweedie map between the modes); Tweedie's map (c = 0, its Jacobian
:math:`\sqrt{\bar\alpha_1}\,\mathrm{Cov}[x_0 \mid x_1]/(1 - \bar\alpha_1)` is positive
semi-definite, so it never folds) by pull-back. A folding step with :math:`c_t < 1.5h` has no
law here (:class:`~theory.checks.NoExactLaw`: refine h). The law of the output
lands on the x grid of :class:`Grid1D` / :class:`Grid2D`, where the posterior is exact; the
error of TV(DPS, posterior) comes from :func:`dps_grid_refinement` (three levels).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..priors import Prior
from .chains1d import Axis, iter_chain_1d, run_ops_1d
from .chains2d import chain_laws_2d, grid_points
from .grid1d import Grid1D
from .grid2d import Grid2D
from .grid_base import tv_masses_2d, tv_spectral
from .likelihoods import Likelihood
from .refinement import check_refinable, refine
from .sampler_steps import dps_steps

__all__ = ["dps_law", "dps_grid_refinement"]

_WORK_HALF_WIDTH_1D = 12.0    # the 1-D working range starts at [-12, 12] (and the x grid's)
_WORK_HALF_WIDTH_MAX = 192.0  # ... and doubles up to [-192, 192] while it loses mass
_LOST_WIDEN = 1e-9            # mass lost off the working range that makes it double


def dps_law(prior: Prior, lik: Likelihood, T: int = 1000, zeta: float = 1.0, *,
            h: Optional[float] = None, grid=None, route: str = "auto"):
    """Law of the DPS output on the x grid of ``grid`` (a :class:`Grid1D` or
    :class:`Grid2D`, built here if not given) and its TV to the exact posterior.
    Returns ``{"tv_post", "law", "lost", "grid"}`` (1-D also ``"work_range"``, the working
    range the chain ran on; 2-D also ``"truncation"``, the push
    windows' cut, and ``"paths"``, the route of every step; ``route="pull"`` forces the
    pull-back on every 2-D step, the former engine)."""
    if grid is None:
        engine = Grid1D if prior.dim == 1 else Grid2D
        grid = engine(prior, lik, h=h, eta_max=1.0)
    steps = dps_steps(prior, lik, T, zeta)
    post = grid.posterior()
    if prior.dim == 1:
        x = grid.axis
        half = _WORK_HALF_WIDTH_1D
        while True:
            work = Axis.covering(min(-half, x.lo), max(half, x.hi), x.h, x.lo)
            fine = Axis(work.lo, work.h / 4, 4 * (work.n - 1) + 1)
            init = np.exp(-0.5 * work.nodes ** 2)
            init /= init.sum()
            res = run_ops_1d(iter_chain_1d(steps, work, x, fine_axis=fine), init,
                             keep=[len(steps)])
            # DPS's guidance is a push of fixed size toward A x0_hat = y: at large T and
            # zeta' the chain's early states run far out (Gaussian problem, T = 2048,
            # zeta' = 1: the real chains' mean reaches 12 at step 512 of 2048) before
            # Tweedie's map brings them back; a working range they leave loses that mass
            # (it was 0.997 there on [-12, 12]), so the range doubles until it holds them
            if res.lost[0] <= _LOST_WIDEN or half >= _WORK_HALF_WIDTH_MAX:
                break
            half *= 2
        law = res.laws[0]
        return {"tv_post": tv_spectral(law, post), "law": law, "lost": res.lost[0],
                "grid": grid, "work_range": (work.lo, work.hi)}
    xa = [Axis(float(a[0]), float(a[1] - a[0]), int(a.size)) for a in grid.axes]
    wa = [Axis.covering(min(-7.0, a.lo), max(7.0, a.hi), a.h, a.lo) for a in xa]
    pts = grid_points(wa)
    init = np.exp(-0.5 * (pts ** 2).sum(1)).reshape(wa[0].n, wa[1].n)
    init /= init.sum()
    res = chain_laws_2d(steps, wa, init, out_axes=xa, keep=[len(steps)], route=route)
    law = res.laws[0]
    return {"tv_post": tv_masses_2d(law, post), "law": law, "lost": res.lost[0],
            "truncation": res.truncation[0], "paths": res.paths, "grid": grid}


def dps_grid_refinement(prior: Prior, lik: Likelihood, T: int = 1000, zeta: float = 1.0, *,
                        h: Optional[float] = None, target: Optional[float] = None,
                        max_halvings: int = 0):
    """TV(DPS output, posterior) at three levels (h, 2h, 4h in 1-D; h, 1.5h, 2.25h in 2-D);
    returns ``(fine, errors)`` (:func:`theory.posterior.refinement.refine`, with
    ``max_order = 4``: every error at least the coarser difference over rho^4; in 2-D also
    ``trusted_order = 4``: an observed order above 4 between h, 1.5h, 2.25h, where the kinks
    of the TV make the differences irregular, gives the raw coarser difference as the error,
    as in the 2-D DPnP engine)."""
    engine = Grid1D if prior.dim == 1 else Grid2D
    ratio = 2.0 if prior.dim == 1 else 1.5
    base = engine(prior, lik, h=h, eta_max=1.0)
    check_refinable(base.h, base.scales, ratio)

    def run_at(hh):
        g = base if hh == base.h else engine(prior, lik, h=hh, eta_max=1.0)
        out = dps_law(prior, lik, T, zeta, grid=g)
        return {"tv_post": [out["tv_post"]], "lost": out["lost"] + out.get("truncation", 0.0),
                "law": out["law"],
                "x": g.x if prior.dim == 1 else g.axes, "h": g.h}

    # the small-noise steps and Tweedie's map run through the conservative transport (order
    # <= 4): a ratio of differences far above rho^4 is a sign change, not convergence
    return refine(run_at, base.h, ["tv_post"], ratio=ratio, target=target,
                  max_halvings=max_halvings, max_order=4.0,
                  trusted_order=4.0 if prior.dim == 2 else None)
