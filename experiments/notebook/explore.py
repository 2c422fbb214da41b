"""Notebook helpers: one line for a curve of exact distances.

    from experiments.notebook.explore import curve_vs_T
    curve_vs_T("bimodal", d=10, samplers=("li-ode", "li-sde"))       # draws and returns the data
"""
from __future__ import annotations

import numpy as np

from theory.figures import plot_rate_panel
from theory.rates import fit_exponent

from ..points.measure import measure

__all__ = ["curve_vs_T", "curve_vs_d"]


def _curves(vary, values, base, samplers, fit_min):
    out = {}
    for s in samplers:
        pts = [measure({**base, "sampler": s, vary: v}) for v in values]
        val = np.array([p["value"] for p in pts])
        lo = np.array([p["lower"] for p in pts])
        hi = np.array([p["upper"] for p in pts])
        keep = np.asarray(values) >= fit_min
        fit = fit_exponent(np.asarray(values)[keep], val[keep], lo[keep], hi[keep])
        out[s] = {"x": list(values), "value": val, "lower": lo, "upper": hi, "fit": fit,
                  "method": pts[0]["method"]}
    return out


def _draw(curves, xlabel, title, ax=None):
    if ax is None:
        import matplotlib.pyplot as plt          # interactive use: the notebook's own backend
        _, ax = plt.subplots(figsize=(5, 3.6))
    plot_rate_panel(ax, [{**c, "label": s, "x_name": xlabel} for s, c in curves.items()],
                    xlabel=xlabel, title=title)
    ax.figure.tight_layout()
    return ax


def curve_vs_T(prior="bimodal", d=1, samplers=("li-ode", "li-sde"), Ts=None, metric="tv",
               schedule="li", fit_min=100, plot=True, ax=None, **extra):
    """Exact ``metric`` against T for each sampler, with fitted exponents (T >= fit_min)."""
    Ts = Ts if Ts is not None else [int(t) for t in np.unique(np.geomspace(10, 3000, 10).round())]
    base = {"prior": prior, "d": d, "metric": metric, "schedule": schedule, **extra}
    curves = _curves("T", Ts, base, samplers, fit_min)
    if plot:
        _draw(curves, "T", f"{prior}, d = {d}, {metric}", ax)
    return curves


def curve_vs_d(prior="bimodal", T=1000, samplers=("li-ode", "li-sde"), ds=None, metric="tv",
               schedule="li", plot=True, ax=None, **extra):
    """Exact ``metric`` against d at fixed T for each sampler, with fitted exponents."""
    ds = ds if ds is not None else [1, 3, 10, 30, 100]
    base = {"prior": prior, "T": T, "metric": metric, "schedule": schedule, **extra}
    curves = _curves("d", ds, base, samplers, 1)
    if plot:
        _draw(curves, "d", f"{prior}, T = {T}, {metric}", ax)
    return curves
