r"""Exact 1-D output law of a deterministic sampler by change of variables.

With :math:`z \sim N(0,1)` and :math:`\Phi` the composed map of a deterministic rule
(c = 0, monotone), :math:`p(\Phi(z)) = \varphi(z)/\Phi'(z)`, with :math:`\Phi'` accumulated along
the trajectory as :math:`\prod_t (a_t + b_t s_t'(y_t))` (THEORY.md section 5). Integrals
against :math:`p` become trapezoidal sums in :math:`z`. This engine is kept as an
independent check of :mod:`theory.laws.grid1d`: where the map is steep (between
well-separated modes) uniform z-nodes converge only algebraically.
"""
from __future__ import annotations

import numpy as np
from ..mixture1d import Mixture1D
from ..samplers import AffineRule
from .base import QuadratureLaw1D
from .ends import start_mixture

__all__ = ["flow_law_1d"]


def flow_law_1d(mix: Mixture1D, rule: AffineRule, n_nodes: int = 2001, z_max: float = 9.0):
    """Output law of a deterministic rule by change of variables; ``None`` if the map folds.

    Nodes are uniform in Y_T: on [-z_max, z_max] for the N(0, 1) start, on z_max standard
    deviations around every component of q_T for ``init="qT"``."""
    s = rule.schedule
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    start = start_mixture(mix, rule)
    lo, hi = start.spread(z_max)
    z = np.linspace(lo, hi, int(n_nodes))
    hz = z[1] - z[0]
    y = z.copy()
    logJ = np.zeros_like(z)
    if rule.multistep:          # chain rule through (Y_t, Y_{t+1}): dY/dz tracked directly
        dy, s_prev, ds_prev, dy_prev = np.ones_like(z), None, None, None
        for t in rule.steps:
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
        for t in rule.steps:
            sc, dsc = mix.marginal(ab[t], omab[t]).score_and_derivative(y)
            J = rule.a[t] + rule.b[t] * dsc
            if np.any(J <= 0):
                return None
            logJ += np.log(J)
            y = rule.a[t] * y + rule.b[t] * sc
    wz = np.full_like(z, hz)
    wz[0] = wz[-1] = hz / 2
    logphi = start.logpdf(z)
    return QuadratureLaw1D(
        x=y, dx=wz * np.exp(logJ), logp=logphi - logJ, cdf=start.cdf(z), sf=start.sf(z),
        method="change-of-variables", lost_mass=float(start.cdf(lo) + start.sf(hi)),
        info={"n_nodes": int(n_nodes), "z_max": z_max})
