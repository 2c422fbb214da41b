"""Experiment ``rate-vs-d``: TV(q_1, law Y_1) against the dimension d at fixed T.

Claim checked (THEORY.md section 3): the bounds grow like d^2 (d^2/T deterministic,
d^2/sqrt(T) stochastic). Priors ``bimodal`` and ``gauss`` (both products of 1-D laws, so
exact in any d), li schedule, T = 1000. Exponents are fitted over the d where TV <= 0.3
(beyond, TV saturates towards 1 and no power law can hold).
"""
from __future__ import annotations

import numpy as np

from theory.figures import new_figure, plot_rate_panel, save_figure
from theory.rates import RateFit, fit_points

NAME = "rate-vs-d"
T_FIXED = 1000
TV_FIT_MAX = 0.3
SAMPLERS = ("li-ode", "li-sde")
REFERENCE = [(2.0, "d^2 (slope 2)"), (1.0, "d (slope 1)"), (0.5, "sqrt(d) (slope 1/2)")]


def dims(fast: bool):
    if fast:
        return [1, 2, 5, 10, 30, 100, 300, 1000, 3000, 10000]
    return [1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]


def configs(fast: bool):
    return [{"prior": p, "d": d, "sampler": s, "schedule": "li", "T": T_FIXED, "metric": "tv"}
            for p in ("bimodal", "gauss") for s in SAMPLERS for d in dims(fast)]


def summarise(records, fast: bool) -> dict:
    curves = {}
    for r in records:
        c = r["config"]
        curves.setdefault((c["prior"], c["sampler"]), []).append((c["d"], r["result"]))
    fits = []
    for (prior, sampler), pts in curves.items():
        pts.sort(key=lambda p: p[0])
        x = [float(p[0]) for p in pts]
        res = [p[1] for p in pts]
        small = [xi for xi, p in zip(x, res) if p["value"] <= TV_FIT_MAX]
        fit = fit_points(x, res, x_max=max(small) if small else None)
        fits.append({"prior": prior, "sampler": sampler, "T": T_FIXED, "fit": fit,
                     "theory_exponent": 2.0, "d": x, "tv": [p["value"] for p in res],
                     "lower": [p["lower"] for p in res], "upper": [p["upper"] for p in res]})
    return {"T": T_FIXED, "fit_range": f"d with TV <= {TV_FIT_MAX}", "fits": fits}


def figure(summary: dict, figures_dir="figures"):
    priors = sorted({f["prior"] for f in summary["fits"]})
    fig, axes = new_figure(1, len(priors), figsize=(5.0 * len(priors), 3.8))
    for ax, prior in zip(axes.flat, priors):
        curves = []
        for f in summary["fits"]:
            if f["prior"] != prior:
                continue
            fit = RateFit.from_dict(f["fit"])
            curves.append({"x": f["d"], "value": f["tv"], "lower": f["lower"],
                           "upper": f["upper"], "label": f["sampler"], "fit": fit})
        # anchor the references at the first point instead of the saturated last one
        plot_rate_panel(ax, curves, (), xlabel="d", title=f"{prior}, T = {summary['T']}")
        x0, y0 = curves[0]["x"][0], curves[0]["value"][0]
        xs = np.geomspace(x0, 100 * x0, 10)
        for slope, lab in REFERENCE:
            ys = y0 * (xs / x0) ** slope
            ax.plot(xs, ys, "--", color="0.45", lw=1)
            i = int(np.flatnonzero(ys <= 1.0)[-1])
            ax.annotate(lab, (xs[i], ys[i]), fontsize=7, color="0.3", ha="right", va="bottom")
        ax.set_ylim(top=1.5)
    fig.suptitle("Exact TV(q_1, law Y_1) against d (li schedule, T = %d); dashed: d^2, d, "
                 "sqrt(d); dotted: fits over TV <= %.1f" % (summary["T"], TV_FIT_MAX), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, f"{figures_dir}/rate_vs_d.png")


CLAIM = ("THEORY.md section 3: the bounds grow like d^2 in the dimension (d^2/T deterministic, "
         "d^2/sqrt(T) stochastic); whether a lower power is tight is open.")


def reading(summary: dict) -> str:
    """One sentence on what the fitted exponents say, computed from the summary."""
    ex = {f"{f['prior']}/{f['sampler']}": f["fit"]["exponent"] for f in summary["fits"]
          if "exponent" in f["fit"]}
    vals = ", ".join(f"{k} d^{v:+.2f}" for k, v in ex.items())
    return (f"At T = {summary['T']} the exact TV grows like {vals} before saturating: about "
            "sqrt(d) on these product priors, far below the d^2 of the bounds (independent "
            "coordinates add small per-coordinate discrepancies, so TV grows like sqrt(d) times "
            "the 1-D error).")
