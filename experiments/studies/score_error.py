"""Experiment ``score-error``: TV at large T against the injected score error.

Claim checked (THEORY.md section 3): an imperfect score adds about sqrt(d) eps_score (plus
d eps_Jacobi for the deterministic sampler) to TV, i.e. TV grows linearly in eps_score once
the score error dominates the discretisation error. Prior ``bimodal`` (d = 1 and 10), li
schedule, T = 2000, perturbation ``additive-field`` (s + eps sin(x) per coordinate), both
sampler kinds; exact output laws under the perturbed score. eps_score and eps_Jacobi are
the values injected (quadrature under every q_t). The bounds add a score term to the
discretisation term, so the slope of log(TV - TV_exact_score) against log eps_score is
fitted, over the points where TV is at least twice its exact-score value (and below 0.6).
"""
from __future__ import annotations

import numpy as np

from theory.figures import new_figure, plot_rate_panel, save_figure
from theory.rates import RateFit, fit_points

NAME = "score-error"
T_FIXED = 2000
SAMPLERS = ("li-ode", "li-sde")
CLAIM = ("THEORY.md section 3: a score error enters TV additively, as sqrt(d) eps_score "
         "(stochastic sampler) and sqrt(d) eps_score + d eps_Jacobi (deterministic): TV is "
         "linear in the score error once it dominates the discretisation error.")


def eps_values(fast: bool):
    return [0.0] + list(np.geomspace(1e-3, 0.3, 7 if fast else 13))


def configs(fast: bool):
    return [{"prior": "bimodal", "d": d, "sampler": s, "schedule": "li", "T": T_FIXED,
             "metric": "tv", "perturbation": "additive-field", "eps": float(e)}
            for d in (1, 10) for s in SAMPLERS for e in eps_values(fast)]


def summarise(records, fast: bool) -> dict:
    curves = {}
    for r in records:
        c = r["config"]
        curves.setdefault((c["d"], c["sampler"]), []).append((c["eps"], r["result"]))
    fits = []
    for (d, sampler), pts in curves.items():
        pts.sort(key=lambda p: p[0])
        base = pts[0][1]["value"]
        res = [p[1] for p in pts[1:]]
        es = [p["injected"]["eps_score"] for p in res]
        # the bounds add the score term to the discretisation term: fit the excess
        # TV(eps) - TV(0) where it dominates (TV >= 2 TV(0)) and TV has not saturated
        keep = [i for i, p in enumerate(res) if 2 * base <= p["value"] <= 0.6]
        excess = [{k: res[i][k] - base for k in ("value", "lower", "upper")} for i in keep]
        fit = fit_points([es[i] for i in keep], excess)
        fits.append({"prior": "bimodal", "d": d, "sampler": sampler, "T": T_FIXED, "fit": fit,
                     "theory_exponent": 1.0, "tv_exact_score": base,
                     "eps": [p[0] for p in pts[1:]], "eps_score": es,
                     "eps_jacobi": [p["injected"]["eps_jacobi"] for p in res],
                     "tv": [p["value"] for p in res], "lower": [p["lower"] for p in res],
                     "upper": [p["upper"] for p in res]})
    return {"T": T_FIXED, "perturbation": "additive-field",
            "fit_range": "excess TV - TV(exact score) against eps_score, where TV >= 2 x TV(exact "
                         "score) and TV <= 0.6", "fits": fits}


def figure(summary: dict, figures_dir="figures"):
    ds = sorted({f["d"] for f in summary["fits"]})
    fig, axes = new_figure(1, len(ds), figsize=(5.0 * len(ds), 3.8))
    for ax, d in zip(axes.flat, ds):
        curves = []
        for f in summary["fits"]:
            if f["d"] != d:
                continue
            fit = RateFit.from_dict(f["fit"])
            curves.append({"x": f["eps_score"], "value": f["tv"], "lower": f["lower"],
                           "upper": f["upper"], "label": f["sampler"], "fit": fit,
                           "reference": (1.0, "linear (slope 1)")})
        plot_rate_panel(ax, curves, (), xlabel="injected eps_score",
                        title=f"bimodal, d = {d}, T = {summary['T']}, s + eps sin(x)")
        for f, col in zip([f for f in summary["fits"] if f["d"] == d], ("C0", "C1")):
            ax.axhline(f["tv_exact_score"], color=col, lw=0.8, ls=":", alpha=0.7)
    fig.suptitle("Exact TV against the injected score error (dotted horizontal: TV with the "
                 "exact score)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, f"{figures_dir}/score_error.png")


def reading(summary: dict) -> str:
    parts = [f"{f['sampler']} (d = {f['d']}): TV - TV(0) ~ eps_score^{f['fit']['exponent']:.2f}"
             for f in summary["fits"] if "exponent" in f["fit"]]
    return ("; ".join(parts) + ". Slopes near 1 mean the score error enters TV linearly, as the "
            "bounds' sqrt(d) eps_score term says; below the dotted line's level the "
            "discretisation error dominates.")
