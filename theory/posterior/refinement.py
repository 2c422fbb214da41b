"""Grid laws of the posterior chains at two resolutions, and the error of every quantity
from their difference (THEORY.md section 8)."""
from __future__ import annotations

from typing import Optional, Sequence

from ..priors import Prior
from .grid1d import Grid1D
from .grid2d import Grid2D
from .likelihoods import Likelihood

__all__ = ["grid_refinement"]


def grid_refinement(prior: Prior, lik: Likelihood, etas: Sequence[float],
                    init: str = "standard-normal", h: Optional[float] = None,
                    with_rates: bool = True):
    """Run the grid engine (:class:`Grid1D` for d = 1, :class:`theory.posterior.grid2d.Grid2D`
    for d = 2) at spacing h and 2h; returns ``(fine, coarse, errors)``. The error of each TV
    (tv_pi, tv_post, tv_pi_post, per k) is the refinement difference ``|TV_h - TV_2h|``, plus,
    in 2-D, the size of the fine grid's kink correction and the mass lost to underflow (see
    :mod:`theory.posterior.grid2d`); of the rates, the refinement difference."""
    engine = Grid1D if prior.dim == 1 else Grid2D
    eta_max = max(float(e) for e in etas)
    eta_min = min(float(e) for e in etas)
    fine_grid = engine(prior, lik, h=h, eta_max=eta_max, eta_min=eta_min)
    fine = fine_grid.run(etas, init, with_rates)
    coarse = engine(prior, lik, h=2 * fine_grid.h, eta_max=eta_max,
                    eta_min=eta_min).run(etas, init, with_rates)
    lost = fine.info.get("lost", 0.0)
    err = {}
    for key in ("tv_pi", "tv_post", "tv_pi_post"):
        kink = fine.info.get("kink", {}).get(key, [0.0] * len(etas))
        err[key] = [abs(a - b) + c + lost
                    for a, b, c in zip(getattr(fine, key), getattr(coarse, key), kink)]
    err["rates"] = {e: abs(fine.rates[e] - coarse.rates[e]) for e in fine.rates}
    return fine, coarse, err
