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

from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator

from theory.figures import (add_caption, colour, sci, finish_figure, format_exponent, marker,
                            new_figure, panel_legend, plot_rate_panel, save_figure)
from theory.rates import LOG_TOLERANCE, RateFit, fit_points, verdict

NAME = "score-error"
T_FIXED = 2000
SAMPLERS = ("li-ode", "li-sde")
EPS = "$\\varepsilon_{\\rm score}$"       # the score error, as the figure writes it
REFERENCE = {"li-ode": (1.0, f"bound √d {EPS}"), "li-sde": (1.0, f"bound √d {EPS}")}
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


def excess_points(f: dict) -> dict:
    """The excess TV - TV(exact score) of one curve with its interval (what the fit is of):
    ``x`` (eps_score), ``value``, ``lower``, ``upper``, only where the excess is positive
    (a log axis), and ``dropped``, the number of points left out."""
    base = f["tv_exact_score"]
    keep = [i for i, v in enumerate(f["tv"]) if v - base > 0]
    return {"x": [f["eps_score"][i] for i in keep],
            "value": [f["tv"][i] - base for i in keep],
            "lower": [f["lower"][i] - base for i in keep],
            "upper": [f["upper"][i] - base for i in keep],
            "dropped": len(f["tv"]) - len(keep)}


def unit_excess(f: dict):
    """The excess TV per unit eps_score over the fit's points, (TV - TV(exact)) / eps_score:
    its median, smallest and largest value (the bounds' prefactor, sqrt(d) up to a constant,
    if the exponent is 1); None without a fit."""
    lo, hi = f["fit"].get("x_range", (None, None))
    if lo is None:
        return None
    r = [(v - f["tv_exact_score"]) / e for e, v in zip(f["eps_score"], f["tv"])
         if lo * (1 - 1e-9) <= e <= hi * (1 + 1e-9)]
    return (float(np.median(r)), float(min(r)), float(max(r))) if r else None


def dimension_ratios(summary: dict) -> list:
    """Per sampler, the excess per unit eps_score at the largest d over that at the smallest
    (median ratio, and the range over the fit points' extremes) beside sqrt(d_max / d_min),
    the ratio the bounds' sqrt(d) eps_score predicts."""
    ds = sorted({f["d"] for f in summary["fits"]})
    out = []
    if len(ds) < 2:
        return out
    for sampler in SAMPLERS:
        by_d = {f["d"]: unit_excess(f) for f in summary["fits"] if f["sampler"] == sampler}
        a, b = by_d.get(ds[0]), by_d.get(ds[-1])
        if a is None or b is None:
            continue
        out.append({"sampler": sampler, "d": (ds[0], ds[-1]), "ratio": b[0] / a[0],
                    "range": (b[1] / a[2], b[2] / a[1]),
                    "sqrt_d_ratio": float(np.sqrt(ds[-1] / ds[0]))})
    return out


def _dimension_sentence(summary: dict) -> str:
    rs = dimension_ratios(summary)
    if not rs:
        return ""
    parts = ", ".join(f"{r['ratio']:.2f}x (range {r['range'][0]:.2f}–{r['range'][1]:.2f}) "
                      f"for {r['sampler']}" for r in rs)
    d0, d1 = rs[0]["d"]
    how = ("median over each fit's points, the range from their extremes; the two fits "
           "cover different ε_score")
    return (f"the √d does not show: per unit ε_score the excess at d = {d1} is {parts} of "
            f"that at d = {d0} ({how}); √d predicts {rs[0]['sqrt_d_ratio']:.2f}x"
            if all(r["range"][1] < r["sqrt_d_ratio"] for r in rs) else
            f"per unit ε_score the excess at d = {d1} is {parts} of that at d = {d0} ({how}); "
            f"√d predicts {rs[0]['sqrt_d_ratio']:.2f}x")


def negative_excess(f: dict) -> list:
    """The points whose TV is below TV(exact score): ``[(eps_score, excess)]`` (the score
    error lowers TV there; a log axis cannot show them)."""
    base = f["tv_exact_score"]
    return [(e, v - base) for e, v in zip(f["eps_score"], f["tv"]) if v - base <= 0]


def _dimension_panel(ax, summary):
    """The excess per unit eps_score over each fit's points against d (median, bars: the
    smallest and largest), with a sqrt(d) guide from the smallest d: the bounds' prefactor."""
    ds = sorted({f["d"] for f in summary["fits"]})
    handles, labels = [], []
    ratios = {r["sampler"]: r for r in dimension_ratios(summary)}
    for sampler in SAMPLERS:
        pts = [(f["d"], unit_excess(f)) for f in summary["fits"] if f["sampler"] == sampler]
        pts = sorted((d, u) for d, u in pts if u is not None)
        if not pts:
            continue
        x = np.asarray([d for d, _ in pts], float)
        med = np.asarray([u[0] for _, u in pts])
        lo = med - np.asarray([u[1] for _, u in pts])
        hi = np.asarray([u[2] for _, u in pts]) - med
        col, mk = colour(sampler), marker(sampler)
        (h,) = ax.plot(x, med, "-", marker=mk, ms=4, lw=1.1, color=col)
        ax.errorbar(x, med, yerr=[lo, hi], fmt="none", ecolor=col, elinewidth=1.0, capsize=3)
        (g,) = ax.plot(x, med[0] * np.sqrt(x / x[0]), "--", lw=1.1, color=col)
        r = ratios.get(sampler)
        text = sampler + (f": d = {r['d'][1]} / d = {r['d'][0]}: {r['ratio']:.2f}× "
                          f"[{r['range'][0]:.2f}, {r['range'][1]:.2f}]" if r else "")
        handles.append((h, g))
        labels.append(text)
    if ratios:
        labels.append(f"dashed: √d from d = {ds[0]} (predicts "
                      f"{next(iter(ratios.values()))['sqrt_d_ratio']:.2f}×)")
        handles.append(Line2D([], [], ls="--", color="0.4"))
        spread = max(max(u[2] / u[0] - 1, 1 - u[1] / u[0])
                     for f in summary["fits"] for u in [unit_excess(f)] if u is not None)
        tight = [s for s in SAMPLERS if all(
            max(u[2] / u[0] - 1, 1 - u[1] / u[0]) < 0.05
            for f in summary["fits"] if f["sampler"] == s for u in [unit_excess(f)] if u)]
        labels.append("bars: the full range, smallest to largest, over\n"
                      f"the fit points (up to {100 * spread:.0f}% from the median"
                      + (f"; {', '.join(tight)}: within ±5%,\ninside the marker" if tight
                         else "") + "; numerical intervals\nare far smaller)")
        handles.append(Line2D([], [], ls="none", marker="|", ms=9, color="0.4"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    # the axis spans about 1.5 decades: label the minor ticks 2 and 5 of each decade too
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    # the decades as plain numbers too (0.5, 1, 2, 5, 10: one format on the axis)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.tick_params(axis="y", which="minor", labelsize=8)
    ax.set_xticks(ds, [str(d) for d in ds])
    ax.set_xlim(ds[0] / 1.6, ds[-1] * 1.6)
    ax.set_xlabel("dimension d")
    ax.set_ylabel(f"(TV − TV(exact score)) / {EPS}")
    seen = ("" if not ratios else
            "; no √d growth seen" if all(r["range"][1] < r["sqrt_d_ratio"]
                                         for r in ratios.values()) else "; √d-like growth")
    ax.set_title(f"excess per unit {EPS} over the fit points{seen}\n(median; only "
                 f"{len(ds)} dimensions run: d = {', '.join(str(d) for d in ds)})", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    panel_legend(ax, handles, labels)


def figure(summary: dict, figures_dir="figures"):
    ds = sorted({f["d"] for f in summary["fits"]})
    with_dim = len(ds) >= 2 and bool(dimension_ratios(summary))
    fig, axes = new_figure(1, len(ds) + with_dim, figsize=(5.0 * len(ds) + 4.4 * with_dim,
                                                           5.0))
    hollow = False
    for ax, d in zip(axes.flat, ds):
        curves = []
        for f in summary["fits"]:
            if f["d"] != d:
                continue
            pts = excess_points(f)
            hollow |= any(lo <= 0 for lo in pts["lower"])
            note = f"TV(exact score) = {f['tv_exact_score']:.3g}"
            neg = negative_excess(f)
            if neg:
                note += ("; not shown (log axis): negative excess "
                         + ", ".join(f"{sci(v, 2)} at {EPS} = {e:.2g}" for e, v in neg))
            curves.append({**pts, "label": f["sampler"], "fit": RateFit.from_dict(f["fit"]),
                           "fit_text": "excess ~ ε^", "reference": REFERENCE[f["sampler"]],
                           "x_name": EPS, "note": note, "larger_is_better": True,
                           "fit_error": f["fit"].get("error")})
        plot_rate_panel(ax, curves, xlabel=f"injected {EPS}",
                        ylabel="TV − TV(exact score)",
                        title=f"bimodal, d = {d}, T = {summary['T']}, score s + ε sin(x)",
                        fit_style="behind", glue_verdict=True,
                        verdict_note=f"after the {LOG_TOLERANCE:g} tolerance")
    if with_dim:
        _dimension_panel(axes[0, -1], summary)
    finish_figure(fig, "Claim checked: once it dominates, a score error adds to TV at most "
                       f"linearly in {EPS} (bounds: √d {EPS}, + d "
                       "$\\varepsilon_{\\rm Jacobi}$ for the ODE; THEORY.md "
                       "section 3)")
    add_caption(fig, "Plotted: the excess TV − TV(exact score). Wide grey line behind the "
                        "data: its fit where TV ≥ 2 TV(exact score) and TV ≤ 0.6 "
                        "(left of it discretisation dominates). Dashed: slope 1 (level "
                        f"arbitrary). Verdicts allow {LOG_TOLERANCE:g} in the exponent for "
                        "log factors."
                        + (" Hollow: interval reaches 0." if hollow else ""))
    return save_figure(fig, f"{figures_dir}/score_error.png")


def reading(summary: dict) -> str:
    """What the exponents of the excess TV in eps_score say, computed."""
    parts = [f"{f['sampler']} (d = {f['d']}): TV - TV(exact score) ~ eps_score^"
             f"{format_exponent(f['fit']['exponent'], f['fit']['ci'])} "
             f"({verdict(1.0, f['fit']['ci'], larger_is_better=True, var='eps')})"
             for f in summary["fits"] if "exponent" in f["fit"]]
    dim = _dimension_sentence(summary).replace("√d", "sqrt(d)").replace("ε", "eps")
    return ("; ".join(parts) + ". An exponent of 1 is the bounds' linear score term; a "
            "larger one means the excess vanishes faster than linearly as eps -> 0, so the "
            "bound holds there and is loose."
            + (f" In dimension, {dim} (eps_score is the norm of the whole d-vector error, so "
               "the bound's sqrt(d) is an extra factor; for this perturbation it is loose)."
               if dim else ""))
