"""Experiment ``dpnp-eta-bias``: TV(pi_eta, posterior) against eta.

Claim checked (THEORY.md section 6; Xu & Chi, arXiv:2403.17042): the stationary law of DPnP
at a fixed eta, pi_eta ∝ p(x) (e^l * N(0, eta^2))(x), tends to the posterior as eta -> 0
(hence the annealing). Our derivation, not the paper's: for a smooth likelihood e^l * N(0, eta^2) = e^l +
(eta^2/2)(e^l)'' + O(eta^4), so TV(pi_eta, posterior) ~ C eta^2: slope +2 on log-log axes.
Problems: bimodal prior (d = 1) with the Gaussian likelihood (y = 0.7, sigma = 0.5, also in
closed form: pi_eta is the posterior with sigma^2 + eta^2), phase retrieval (y = |x| + noise,
y = 1.5, sigma = 0.5) and 1-bit logistic (y = +1, lambda = 0.4). Exact grid quadrature,
error by refinement; the exponent is fitted over eta <= ETA_FIT_MAX (= 0.2).
"""
from __future__ import annotations

import numpy as np

from theory.figures import (add_caption, format_exponent, new_figure,
                            panel_legend, parameter_colours, plot_rate_panel, save_figure,
                            sci)
from theory.posterior.closed_form import pi_eta_closed_form, posterior_closed_form, to_mixture1d
from theory.posterior.grid1d import Grid1D
from theory.posterior.grid_base import tv_masses
from theory.rates import RateFit, fit_points, verdict

from .dpnp_stationary import problem

NAME = "dpnp-eta-bias"
NORMALISE = None
SINGLE_THREAD = True
ETA_FIT_MAX = 0.2
PROBLEMS = {"gaussian": {"likelihood": "gaussian", "y": 0.7, "sigma": 0.5},
            "phase": {"likelihood": "phase", "y": 1.5, "sigma": 0.5},
            "logistic": {"likelihood": "logistic", "y": 1.0, "lam": 0.4}}
# one colour and marker per likelihood: a palette of their own (copper shades), no sampler's
COLOURS = parameter_colours(PROBLEMS, cmap="copper", span=(0.2, 0.75))
MARKERS = dict(zip(PROBLEMS, ("o", "s", "^")))
CLAIM = ("Xu & Chi (arXiv:2403.17042): the stationary law pi_eta of DPnP at a fixed eta tends "
         "to the posterior as eta -> 0 (hence the annealing); for a smooth likelihood "
         "TV(pi_eta, posterior) ~ C eta^2 (our derivation, not the paper's: smoothing the "
         "likelihood by N(0, eta^2) changes it by (eta^2/2) times its second derivative).")


def configs(fast: bool):
    etas = np.geomspace(0.02, 1.0, 9 if fast else 17)
    return [{**PROBLEMS[p], "problem": p, "eta": float(round(e, 6))} for p in PROBLEMS
            for e in etas]


def _tv(prior, lik, eta, h):
    g = Grid1D(prior, lik, h=h, lo=-5.5, hi=5.5, eta_max=eta, eta_min=eta)
    return tv_masses(g.pi_eta(eta), g.posterior()), g.h


def compute(cfg):
    prior, lik = problem(cfg)
    v, h = _tv(prior, lik, cfg["eta"], None)
    v2, _ = _tv(prior, lik, cfg["eta"], 2 * h)
    out = {"value": v, "error": abs(v - v2) + 1e-14, "h": h,
           "method": "grid quadrature, error by refinement (h vs 2h)"}
    if cfg["likelihood"] == "gaussian":
        x = np.linspace(-5.5, 5.5, 40001)
        p = np.exp(to_mixture1d(posterior_closed_form(prior, lik)).logpdf(x))
        q = np.exp(to_mixture1d(pi_eta_closed_form(prior, lik, cfg["eta"])).logpdf(x))
        out["closed_form"] = tv_masses(p * (x[1] - x[0]), q * (x[1] - x[0]))
    return out


def summarise(records, fast: bool) -> dict:
    fits = []
    for p in PROBLEMS:
        rs = sorted([r for r in records if r["config"]["problem"] == p],
                    key=lambda r: r["config"]["eta"])
        x = [r["config"]["eta"] for r in rs]
        pts = [{"value": r["result"]["value"],
                "lower": max(r["result"]["value"] - r["result"]["error"], 1e-300),
                "upper": r["result"]["value"] + r["result"]["error"]} for r in rs]
        fits.append({"prior": "bimodal", "d": 1, "sampler": "dpnp", "problem": p,
                     "fit": fit_points(x, pts, x_max=ETA_FIT_MAX), "theory_exponent": 2.0,
                     "eta": x, "tv": [q["value"] for q in pts], "lower": [q["lower"] for q in pts],
                     "upper": [q["upper"] for q in pts],
                     "closed_form": [r["result"].get("closed_form") for r in rs]})
    return {"fit_range": f"eta <= {ETA_FIT_MAX}", "fits": fits}


NAMES = {"gaussian": "Gaussian", "phase": "phase retrieval", "logistic": "1-bit logistic"}


def figure(summary, figures_dir="figures"):
    fig, axes = new_figure(figsize=(6.4, 6.9))
    ax = axes[0, 0]
    curves = []
    for f in summary["fits"]:
        name = f["problem"]
        curves.append({"x": f["eta"], "value": f["tv"], "lower": f["lower"], "upper": f["upper"],
                       "label": NAMES[name], "colour": COLOURS[name],
                       "marker": MARKERS[name], "fit": RateFit.from_dict(f["fit"]),
                       "fit_text": "TV ~ η^", "x_name": "η",
                       "fit_error": f["fit"].get("error"),
                       "reference": (2.0, "derived η²"), "larger_is_better": True})
    handles, labels = plot_rate_panel(ax, curves, xlabel="η", ylabel="TV($\\pi_\\eta$, posterior)",
                                      title="bimodal prior, d = 1 (exact grid quadrature)",
                                      legend=False)
    g = [f for f in summary["fits"] if f["problem"] == "gaussian"][0]
    if g["closed_form"][0] is not None:
        # large hollow circles around the gaussian markers: told apart from the fit's line
        (cf,) = ax.plot(g["eta"], g["closed_form"], "o", ms=9, mfc="none", mec="k", mew=1.0,
                        ls="none", zorder=5)
        handles.append(cf)
        labels.append("Gaussian: closed form (the posterior with σ² + η²)")
    _eta_ticks(ax, [e for f in summary["fits"] for e in f["eta"]])
    panel_legend(ax, handles, labels)
    # the refinement error relative to each value: an absolute maximum (set by the largest
    # TV) would read as larger than the smallest values drawn
    rel = max(max(u - v, v - lo) / v for f in summary["fits"]
              for u, v, lo in zip(f["upper"], f["tv"], f.get("lower", f["tv"])) if v > 0)
    fig.suptitle("Claim checked: DPnP's stationary law $\\pi_\\eta$ tends to the posterior like η²\n"
                 "as η → 0 (Xu & Chi, arXiv:2403.17042)", fontsize=9.5)
    add_caption(fig, f"Legend: the exponent in η (95% interval) over η ≤ {ETA_FIT_MAX:g} (dark "
                     "dotted line over that range) and its verdict; dashed: the slope of η² (a "
                     "guide placed clear of the data). Refinement errors ≤ "
                     f"{sci(100 * rel)}% of each value (bands narrower than the markers). One "
                     "colour (copper shades, no sampler's) and marker per likelihood. Verdicts allow 0.05 in "
                     "the exponent for log factors and higher-order terms, "
                     "so an interval a little off 2 reads consistent.")
    return save_figure(fig, f"{figures_dir}/dpnp_eta_bias.png")


def _eta_ticks(ax, etas):
    """Major ticks at 1, 2, 5 times the powers of ten within the etas drawn, labelled as
    plain numbers (0.02, 0.05, 0.1, ...); no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
    lo, hi = min(etas), max(etas)
    ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))),
                                          int(np.ceil(np.log10(hi))) + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def reading(summary: dict) -> str:
    """What the exponents in eta say beside the derived 2, and the closed-form check."""
    parts = [f"{f['problem']} "
             f"eta^{format_exponent(f['fit']['exponent'], f['fit']['ci'])} "
             f"({verdict(2.0, f['fit']['ci'], larger_is_better=True, var='eta')})"
             for f in summary["fits"] if "exponent" in f["fit"]]
    g = [f for f in summary["fits"] if f["problem"] == "gaussian"]
    out = (f"Over eta <= {ETA_FIT_MAX}, TV(pi_eta, posterior) ~ " + "; ".join(parts) + ".")
    if g and g[0]["closed_form"][0] is not None:
        gap = max(abs(a - b) for a, b in zip(g[0]["tv"], g[0]["closed_form"]))
        out += (f" For the Gaussian likelihood the grid value and the closed form differ by at "
                f"most {gap:.1e}.")
    return out
