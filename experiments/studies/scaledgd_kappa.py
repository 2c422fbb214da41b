"""Experiment ``scaledgd-kappa``: ScaledGD's iteration count does not depend on kappa, GD's
grows like kappa.

Claim checked (THEORY.md section 7, ScaledGD entry; Tong, Ma, Chi, JMLR 22(150) 2021,
arXiv:2005.08898, Figure 2): from the spectral initialisation ScaledGD with eta = 0.5
contracts the paper's factor distance at a rate independent of the condition number kappa,
so the iterations to a fixed accuracy are O(log 1/eps) with no kappa in them, while
factored GD (step 0.5 / sigma_max) needs O(kappa log 1/eps).

Two parts (:func:`theory.lowrank.sweeps.configs_kappa`):

* Figure 2 panels: relative error ``||X_t - X*||_F / ||X*||_F`` and factor distance
  ``dist(F_t, F*) / ||X*||_F`` against the iteration for kappa in {1, 5, 10, 20}, on matrix
  sensing, matrix completion and robust PCA (seed 0).
* Iterations to a relative error of 1e-10 against kappa in {1, 2, 5, 10, 20, 50, 100} on
  matrix sensing, over seeded problems, at the paper's sampling (m = 5nr) and in the RIP
  regime of the theorem (m = 80nr); exponent k of ``iterations ~ C kappa^k`` with its 95%
  interval (:func:`theory.lowrank.rates.kappa_exponent`: the seeds' spread propagated into
  the regression's t-interval). Theory: k = 0 for ScaledGD, k = 1 for GD. The tightness
  report reads the RIP-regime fits.
"""
from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib import colormaps
from matplotlib.lines import Line2D

from theory.figures import (FIT_COLOUR, LEGEND_FONTSIZE, REFERENCE_SHIFT, add_caption,
                            distinct_digits,
                            and_list, draw_fit, format_exponent, new_figure, save_figure, sci,
                            superscript, unicode_powers)
from theory.lowrank.sweeps import KAPPAS_PANEL, configs_kappa, run_point, summarize_kappa
from theory.rates import RateFit

NAME = "scaledgd-kappa"
NORMALISE = None
SINGLE_THREAD = True
compute = run_point

PROBLEMS = ("sensing", "completion", "rpca")
ALGORITHMS = ("scaledgd", "gd")
THEORY_EXPONENT = {"scaledgd": 0.0, "gd": 1.0}
SAMPLINGS = ("paper", "rip")
#: one colour per kappa, in every low-rank figure
# an ordered parameter on a sequential map (dark: well conditioned, light: ill
# conditioned), so that kappa never borrows the colour a sampler has in the other figures
KAPPA_COLOURS = dict(zip(KAPPAS_PANEL, [tuple(colormaps["viridis"](t))[:3]
                                         for t in np.linspace(0.0, 0.88, len(KAPPAS_PANEL))]))
#: one line style per algorithm (and in the fit panels one colour)
STYLE = {"scaledgd": "-", "gd": "--"}
ALG_COLOURS = {"scaledgd": "black", "gd": "0.5"}
ALG_LABEL = {"scaledgd": "ScaledGD", "gd": "GD"}


def configs(fast: bool):
    return configs_kappa(fast)


def problem_label(cfg: dict) -> str:
    """The problem and its size, as a panel title."""
    if cfg["problem"] == "sensing":
        return f"matrix sensing (n = {cfg['n']}, r = {cfg['r']}, m = {cfg['oversampling']:g}nr)"
    if cfg["problem"] == "completion":
        return f"matrix completion (n = {cfg['n']}, r = {cfg['r']}, p = {cfg['p']:g})"
    return f"robust PCA (n = {cfg['n']}, r = {cfg['r']}, α = {cfg['alpha']:g})"


def exponent_text(exponent, ci) -> str:
    """The exponent and its interval as the legends write them (:func:`format_exponent`
    in the figures' notation, :func:`unicode_powers`)."""
    return unicode_powers(format_exponent(exponent, ci))



def _scaled(series, scale):
    """A trajectory divided by ``scale`` (None entries kept)."""
    if series is None:
        return None
    return [None if v is None else v / scale for v in series]


def trajectory(record: dict) -> dict:
    """The curves and rates of one point, as a summary stores them."""
    c, res = record["config"], record["result"]
    fro = res["problem"]["fro"]
    rfd = res["rate_factor_distance"] or {}
    return {"problem": c["problem"], "algorithm": c["algorithm"], "kappa": c["kappa"],
            "snr": c.get("snr"), "label": problem_label(c), "rel_error": res["rel_error"],
            "factor_distance": _scaled(res["factor_distance"], fro),
            "iterations_to_tol": res["iterations_to_tol"], "stop_reason": res["stop_reason"],
            "final_rel_error": res["final_rel_error"],
            "final_factor_distance": (None if res["final_factor_distance"] is None
                                      else res["final_factor_distance"] / fro),
            "rate_rel_error": res["rate_rel_error"]["rate"],
            "rate_factor_distance": rfd.get("rate"), "rate_factor_distance_ci": rfd.get("ci"),
            "rate_window": rfd.get("window"), "theorem_rate": res["theorem_rate"]}


def summarise(records, fast: bool) -> dict:
    panels = [trajectory(r) for r in records if r["config"]["part"] == "panel"]
    fit_records = [r for r in records if r["config"]["part"] == "fit"]
    table = summarize_kappa([r["result"] for r in fit_records])
    fits = []
    for sampling in SAMPLINGS:
        cfg = next(r["config"] for r in fit_records if r["config"]["sampling"] == sampling)
        for alg in ALGORITHMS:
            e = table[sampling][alg]
            fits.append({"problem": "sensing", "sampling": sampling, "algorithm": alg,
                         "vs": "kappa", "n": cfg["n"], "r": cfg["r"],
                         "oversampling": cfg["oversampling"], "eta": cfg["eta"],
                         "tol": fit_records[0]["result"]["config"]["tol"],
                         "fit": e.get("fit", {"error": e.get("error")}),
                         "theory_exponent": THEORY_EXPONENT[alg], "kappas": e["kappas"],
                         "seeds": e["seeds"], "per_kappa": e.get("per_kappa"),
                         "iterations": e["iterations"]})
    return {"quantity": "iterations to a relative error of 1e-10", "fits": fits,
            "panels": panels}


def rate_span(panels, problem, algorithm="scaledgd") -> tuple:
    """Smallest and largest fitted factor-distance rate over the panel's kappas."""
    rates = [p["rate_factor_distance"] for p in panels if p["problem"] == problem
             and p["algorithm"] == algorithm and p["rate_factor_distance"] is not None]
    return (min(rates), max(rates)) if rates else (math.nan, math.nan)


def _scaledgd_rates(panels, problem):
    return sorted((p for p in panels if p["problem"] == problem and p["algorithm"] == "scaledgd"
                   and p["rate_factor_distance"] is not None), key=lambda p: p["kappa"])


def rate_departures(panels, problem) -> list:
    """The kappas at which ScaledGD's fitted rate departs from the others': the gap between
    its 95% interval and the hull of the others' intervals is wider than that hull (the
    others' whole spread, intervals included). A steady trend (each kappa a little off its
    neighbours) is not a departure. Each: kappa, rate, the others' kappas and rate range,
    "slower" or "faster". Needs three kappas at least."""
    ps = _scaledgd_rates(panels, problem)
    out = []
    if len(ps) < 3:
        return out
    for p in ps:
        others = [q for q in ps if q is not p]
        lo = min(q["rate_factor_distance_ci"][0] for q in others)
        hi = max(q["rate_factor_distance_ci"][1] for q in others)
        plo, phi = p["rate_factor_distance_ci"]
        gap = max(plo - hi, lo - phi, 0.0)
        if gap > hi - lo:
            rates = [q["rate_factor_distance"] for q in others]
            out.append({"kappa": p["kappa"], "rate": p["rate_factor_distance"],
                        "others_kappas": [q["kappa"] for q in others],
                        "others": (min(rates), max(rates)),
                        "direction": "slower" if plo > hi else "faster"})
    return out


#: a departure is named in the title only when it changes the iterations to a given error
#: (which go like 1 / |log rate|) by more than this factor; smaller ones stay in the caption
MATERIAL_ITERATIONS = 1.10


def iterations_ratio(rate, other) -> float:
    """How many times more iterations to a given error the slower of two rates per iteration
    needs than the faster: ``log(faster) / log(slower)`` (both rates in (0, 1))."""
    fast, slow = min(rate, other), max(rate, other)
    return math.log(fast) / math.log(slow)


def material_departures(panels, problem) -> list:
    """The :func:`rate_departures` whose rate changes the iterations to a given error by more
    than :data:`MATERIAL_ITERATIONS` against the nearest of the others' rates."""
    out = []
    for d in rate_departures(panels, problem):
        near = d["others"][1] if d["direction"] == "slower" else d["others"][0]
        if iterations_ratio(d["rate"], near) > MATERIAL_ITERATIONS:
            out.append(d)
    return out


def rate_spread(panels, problem) -> dict:
    """ScaledGD's largest minus smallest fitted rate over the kappas (``spread``), the widest
    95% half-width (``half``), whether the two ends' intervals are disjoint
    (``significant``), and the kappa of the slowest (largest) rate."""
    ps = _scaledgd_rates(panels, problem)
    if not ps:
        return {"spread": math.nan, "half": math.nan, "significant": False, "slowest": None,
                "lo": math.nan, "hi": math.nan}
    a = min(ps, key=lambda p: p["rate_factor_distance"])
    b = max(ps, key=lambda p: p["rate_factor_distance"])
    half = max((p["rate_factor_distance_ci"][1] - p["rate_factor_distance_ci"][0]) / 2
               for p in ps)
    return {"spread": b["rate_factor_distance"] - a["rate_factor_distance"], "half": half,
            "significant": a["rate_factor_distance_ci"][1] < b["rate_factor_distance_ci"][0],
            "slowest": b["kappa"], "lo": a["rate_factor_distance"],
            "hi": b["rate_factor_distance"]}


PROBLEM_NAME = {"sensing": "matrix sensing", "completion": "matrix completion",
                "rpca": "robust PCA"}


def _kappa_list(ks) -> str:
    return ", ".join(f"{k:g}" for k in ks)


def kappa_title(summary) -> str:
    """The figure's claim, one sentence computed from the summary: the largest spread of
    ScaledGD's rate over kappa on the problems where no kappa departs, each departure, and
    GD's exponent in the RIP regime."""
    panels = summary["panels"]
    probs = [p for p in PROBLEMS if _scaledgd_rates(panels, p)]
    eta = summary["fits"][0]["eta"]
    kappas = sorted({p["kappa"] for p in panels if p["algorithm"] == "scaledgd"})
    deps = {p: material_departures(panels, p) for p in probs}
    steady = [p for p in probs if not deps[p]]
    text = f"Over κ = {_kappa_list(kappas)}, ScaledGD's (η = {eta:g}) rate per iteration"
    if steady:
        sps = [rate_spread(panels, p) for p in steady]
        worst = max(sp["spread"] for sp in sps)
        its = max(iterations_ratio(sp["lo"], sp["hi"]) for sp in sps)
        names = [PROBLEM_NAME[p] for p in steady]
        text += (f" varies by ≤ {sci(worst, 1)} on "
                 + and_list(names).replace("matrix sensing and matrix completion",
                                  "matrix sensing and completion")
                 + f" (iteration counts to a given error agree within {100 * (its - 1):.0f}%)")
    for i, p in enumerate(q for q in probs if deps[q]):
        d = deps[p]
        text += (" but" if i == 0 and steady else ";") + " is " + ", ".join(
            f"{x['direction']} at κ = {x['kappa']:g} ({x['rate']:.3f} vs "
            f"{x['others'][0]:.3f}–{x['others'][1]:.3f})" for x in d) + f" on {PROBLEM_NAME[p]}"
    gd = next((f for f in summary["fits"] if f["sampling"] == "rip" and f["algorithm"] == "gd"
               and "exponent" in f["fit"]), None)
    if gd is not None:
        power = superscript(f"{gd['fit']['exponent']:.2f}")
        text += (f"; GD's (step {eta:g}/$\\sigma_{{\\max}}$) iterations grow like "
                 f"κ{power}" + (f" at m = {gd['oversampling']:g}nr"
                                 if gd.get("oversampling") is not None else ""))
    return text + (" (Tong, Ma, Chi 2021, Figure 2" + ("; fast sizes)" if summary.get("fast")
                                                       else ")"))


def rate_caption(panels) -> str:
    """What the rates per kappa say, per problem, computed: their range and spread against
    their intervals, and any departure."""
    parts = []
    for p in PROBLEMS:
        sp = rate_spread(panels, p)
        if sp["slowest"] is None:
            continue
        s = (f"{PROBLEM_NAME[p]} {sp['lo']:.4f}–{sp['hi']:.4f} (spread {sci(sp['spread'], 1)}, "
             f"intervals ±{sci(sp['half'], 1)}")
        deps = rate_departures(panels, p)
        if deps:
            s += "; " + "; ".join(
                f"κ = {d['kappa']:g} departs: {d['rate']:.3f} against {d['others'][0]:.3f}–"
                f"{d['others'][1]:.3f} for κ = {_kappa_list(d['others_kappas'])}, beyond "
                "their intervals" for d in deps)
        elif sp["significant"]:
            s += f"; a small trend beyond the intervals, slowest at κ = {sp['slowest']:g}"
        parts.append(s + ")")
    if not parts:
        return ""
    return ("ScaledGD's fitted rate per iteration of the factor distance over κ: "
            + "; ".join(parts) + ". A κ departs when its interval lies farther from the "
            "others' than their whole spread. THEORY.md (section 7) states the κ-free rate "
            "with no condition on the outlier fraction α that would account for a "
            "departure: it is reported as measured.")


def rate_title(panels, problem) -> str:
    """ScaledGD's fitted contraction per iteration at each kappa, with the widest 95%
    half-width among them, beside the theorem's rate."""
    ps = [p for p in panels if p["problem"] == problem and p["algorithm"] == "scaledgd"
          and p["rate_factor_distance"] is not None]
    if not ps:
        return "no rate fitted"
    half = max((p["rate_factor_distance_ci"][1] - p["rate_factor_distance_ci"][0]) / 2
               for p in ps)
    rates = ", ".join(f"{p['rate_factor_distance']:.3f}" for p in ps)
    theorem = ps[0]["theorem_rate"]
    kappas = "/".join(f"{p['kappa']:g}" for p in ps)
    return (f"ScaledGD's rate per iteration at κ = {kappas}:\n{rates} (95% CIs ±{sci(half)})"
            + (f"; theorem {theorem:g}" if theorem is not None else ""))


def _theorem_guide(ax, curves):
    """The theorem's contraction (1 - 0.6 eta)^t as a grey dashed guide from ScaledGD's
    starting factor distance (a slope to compare with, not a level). The theorem assumes
    RIP-level sampling (sensing) or its sampling conditions (completion, robust PCA), which
    these sizes do not meet: the label says so, so that the guide does not read as a bound
    the data violate."""
    sg = [c for c in curves if c["algorithm"] == "scaledgd" and c.get("theorem_rate")]
    if not sg:
        return
    start = float(np.nanmedian([c["factor_distance"][0] for c in sg
                                if c["factor_distance"][0] is not None]))
    rate = sg[0]["theorem_rate"]
    t = np.arange(0, int(math.log(1e-15 / start) / math.log(rate)) + 1)
    below = ("m = 5nr is below it" if sg[0]["problem"] == "sensing"
             else "not met at this size")
    ax.semilogy(t, start * rate ** t, "--", color="0.45", lw=1.0, zorder=1,
                label=f"theorem's rate ${rate:g}^t$ under RIP-level\nsampling ({below})")
    ax.legend(fontsize=LEGEND_FONTSIZE, loc="upper right")


def plot_trajectories(ax, curves, key, colour_of, ylabel):
    """Error against iteration (log y): one line per curve, colour by ``colour_of(curve)``,
    style by algorithm."""
    for c in curves:
        y = np.array([np.nan if v is None else v for v in c[key]], float)
        # GD carries sparse hollow squares: where its dashed line runs under ScaledGD's
        # (kappa = 1) it stays visible
        mk = {} if c["algorithm"] == "scaledgd" else {
            "marker": "s", "mfc": "none", "ms": 4, "markevery": max(y.size // 8, 1)}
        ax.semilogy(np.arange(y.size), y, STYLE[c["algorithm"]], color=colour_of(c), lw=1.3,
                    **mk)
    ax.set_xlabel("iteration t")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.25)


# the markers of the trajectory plots: none on ScaledGD's solid line, sparse hollow squares
# on GD's dashed one
TRAJECTORY_MARKERS = {"scaledgd": {}, "gd": {"marker": "s", "mfc": "none", "ms": 4}}


def legend_handles(colours: dict, fmt, markers=None) -> list:
    """Colour handles (one per value) and line-style handles (one per algorithm), drawn
    with ``markers[algorithm]`` (Line2D keywords; default: the trajectory plots')."""
    markers = markers or TRAJECTORY_MARKERS
    hs = [Line2D([], [], color=col, lw=2, label=fmt(v)) for v, col in colours.items()]
    hs += [Line2D([], [], color="k", ls=STYLE[a], lw=1.3, label=ALG_LABEL[a], **markers[a])
           for a in ALGORITHMS]
    return hs


def implied_rate_bound(fits, sampling):
    """ScaledGD's mean contraction per iteration implied by its iteration counts: reaching
    relative error tol from an initial error e_0 <= 1 in N iterations means a geometric mean
    rate (tol / e_0)^(1/N) <= tol^(1/N); N is the largest upper 95% end over kappa (the
    slowest case). None without per-kappa counts."""
    f = next((f for f in fits if f["sampling"] == sampling and f["algorithm"] == "scaledgd"),
             None)
    if f is None or not f.get("per_kappa"):
        return None
    n = max(p["hi"] for p in f["per_kappa"])
    return float(f["tol"] ** (1.0 / n))


def reference_level(fit_or_points, kappas, exponent, above):
    """The theorem's exponent as a line ``c kappa^exponent`` over ``kappas``, offset from the
    data (``fit_or_points``: the values at ``kappas``) by :data:`REFERENCE_SHIFT`: above
    every point (``above``) or below every point, so that it never runs on them."""
    k = np.asarray(kappas, float)
    y = np.asarray(fit_or_points, float)
    ratio = y / k ** exponent
    c = (np.nanmax(ratio) * REFERENCE_SHIFT) if above else (np.nanmin(ratio) / REFERENCE_SHIFT)
    return c * k ** exponent


# the theorem's line sits above GD's points (it rises) and below ScaledGD's (flat), so that
# neither crosses the other method's points
REFERENCE_ABOVE = {"gd": True, "scaledgd": False}


def _fit_range(f) -> str:
    fit = RateFit.from_dict(f["fit"])
    return "no fit" if fit is None else f"fit over κ = {fit.x_range[0]:g}–{fit.x_range[1]:g}"


def _fit_panel(ax, fits, sampling, theorem=None):
    tops, bottoms = [], []
    for f in (f for f in fits if f["sampling"] == sampling):
        alg = f["algorithm"]
        col = ALG_COLOURS[alg]
        k = np.array(f["kappas"], float)
        label = ALG_LABEL[alg]
        fit = RateFit.from_dict(f["fit"])
        if f.get("per_kappa"):
            gm = np.array([p["mean"] for p in f["per_kappa"]])
            lo = np.array([p["lo"] for p in f["per_kappa"]])
            hi = np.array([p["hi"] for p in f["per_kappa"]])
        else:   # some run missed the tolerance: show the seeds that reached it
            it = np.array([[np.nan if v is None else v for v in row] for row in f["iterations"]])
            gm = np.exp(np.nanmean(np.log(it), axis=1))
            lo = hi = gm
        if fit is not None:
            label += (f": κᵖ, p = {exponent_text(fit.exponent, fit.ci)}"
                      f" (theory {f['theory_exponent']:g})")
            xs = np.geomspace(*fit.x_range, 20)
            draw_fit(ax, xs, fit.prefactor * xs ** fit.exponent)
        else:
            label += f": no fit ({f['fit'].get('error')})"
        ax.errorbar(k, gm, yerr=[gm - np.nan_to_num(lo, nan=0), np.nan_to_num(hi, nan=0) - gm],
                    fmt="o" if alg == "scaledgd" else "s", ls=STYLE[alg], color=col, ms=4,
                    lw=1.2, capsize=2, label=label)
        # the theorem's exponent (GD kappa^1, ScaledGD kappa^0), dashed in the method's
        # colour, offset from its points: a slope to compare with, not a level
        above = REFERENCE_ABOVE[alg]
        edge = np.where(np.isfinite(hi), hi, gm) if above else np.where(np.isfinite(lo), lo, gm)
        ref = reference_level(edge, k, f["theory_exponent"], above)
        ax.plot(k, ref, "--", color=col, lw=1.0, dashes=(5, 3), zorder=1.8)
        tops.append(np.nanmax(np.r_[hi, ref]))
        bottoms.append(np.nanmin(np.r_[lo, ref]))
    f0 = next(f for f in fits if f["sampling"] == sampling)
    regime = "the paper's sampling" if sampling == "paper" else "RIP regime"
    ub = implied_rate_bound(fits, sampling)
    ax.set_title(f"sensing n = {f0['n']}, r = {f0['r']}, m = {f0['oversampling']:g}nr "
                 f"({regime}):\niterations to rel. error {sci(f0['tol'])}, "
                 f"{len(f0['seeds'])} seeds, {_fit_range(f0)}"
                 + (f"\nScaledGD's mean rate per iteration ≤ {ub:.2f}" + (f" (theorem {theorem:g})"
                                                           if theorem is not None else "")
                    if ub is not None else ""), fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("condition number κ")
    ax.set_ylabel("iterations (geometric mean, 95% CI)")
    ax.grid(True, which="major", alpha=0.25)
    hs, labels = ax.get_legend_handles_labels()
    hs += [Line2D([], [], color=FIT_COLOUR, ls=":", lw=1.3),
           Line2D([], [], color="0.4", ls="--", dashes=(5, 3), lw=1.0)]
    labels += ["fit over the κ range",
               "theorem's slope, in each method's shade (offset)"]
    ax.legend(hs, labels, fontsize=LEGEND_FONTSIZE, loc="upper left")
    top, bottom = max(tops), min(bottoms)
    ax.set_ylim(bottom / 1.6, top * (top / bottom) ** 0.6)  # room for the legend above


def figure(summary: dict, figures_dir="figures"):
    fig, axes = new_figure(2, 4, figsize=(19, 8.2))
    panels = summary["panels"]
    colour = lambda c: KAPPA_COLOURS[int(c["kappa"])]  # noqa: E731
    for j, prob in enumerate(PROBLEMS):
        curves = [p for p in panels if p["problem"] == prob]
        plot_trajectories(axes[0, j], curves, "rel_error", colour,
                          r"relative error $\|X_t - X^\star\|_F\,/\,\|X^\star\|_F$")
        plot_trajectories(axes[1, j], curves, "factor_distance", colour,
                          r"factor distance $\mathrm{dist}(F_t, F^\star)\,/\,\|X^\star\|_F$")
        # labels stored by older summaries spell the outlier fraction "alpha"
        label = curves[0]["label"].replace("alpha =", "α =")
        axes[0, j].set_title(f"{label}: relative error", fontsize=9)
        axes[1, j].set_title("factor distance (the paper's distance);\n"
                             + rate_title(panels, prob), fontsize=9)
        _theorem_guide(axes[1, j], curves)
        # room below the runs' stop (10^-14) for the legend: at full sizes GD's slow lines
        # cross the lower right corner of the data
        axes[0, j].set_ylim(1e-21, 10)
        axes[1, j].set_ylim(1e-15, 1e3)     # room for the guide's legend above the curves
    axes[0, 0].legend(handles=legend_handles(KAPPA_COLOURS, lambda k: f"κ = {k}"),
                      fontsize=LEGEND_FONTSIZE, loc="lower right", ncol=3)
    theorem = next((p["theorem_rate"] for p in panels if p.get("theorem_rate")), None)
    for i, sampling in enumerate(SAMPLINGS):
        _fit_panel(axes[i, 3], summary["fits"], sampling, theorem)
    fig.suptitle(textwrap.fill(kappa_title(summary), 190), fontsize=12)
    add_caption(fig, rate_caption(panels) + "\n"
                "The theorem's rate 1 − 0.6η (grey dashes) assumes RIP-level sampling and is "
                "not reached at these sampling ratios (the measured rates are slower); it is "
                "met at m = 80nr (bottom right: $\\mathrm{tol}^{1/N}$ for N iterations, an "
                "initial error ≤ 1). Solid: ScaledGD; dashed with hollow squares: GD (at κ = 1 "
                "it runs on ScaledGD's line). A line ends where its run stopped (converged, or "
                "the iteration budget). Right: dotted, the fit of the "
                "iteration counts in κ over its range; dashed in each method's shade, the "
                "theorem's exponent (κ¹ for GD, κ⁰ for ScaledGD), drawn offset from the "
                "points (a slope, not a level).", fontsize=10)
    return save_figure(fig, f"{figures_dir}/scaledgd_kappa.png")


CLAIM = ("Tong, Ma, Chi (JMLR 2021, arXiv:2005.08898): from the spectral initialisation "
         "ScaledGD contracts the factor distance at a rate independent of the condition "
         "number kappa, so it reaches a fixed accuracy in a number of iterations free of "
         "kappa (exponent 0), where gradient descent needs O(kappa log 1/eps) (exponent 1).")


def _fit_text(f):
    fit = f["fit"]
    if "exponent" not in fit:
        return f"no fit ({fit.get('error')})"
    return f"kappa^{format_exponent(fit['exponent'], fit['ci'])}"     # no "-0.000"


def _span_text(lo: float, hi: float) -> str:
    """``0.917-0.921``; to the digit where the ends differ (``0.8978-0.8984``, not
    ``0.898-0.898``), one value when they are equal; "not measured" without a rate."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not measured"
    if lo == hi:
        return f"{lo:.3f}"
    n = max(3, distinct_digits(lo, hi))
    dec = max(3, n - 1 - math.floor(math.log10(abs(hi))))
    return f"{lo:.{dec}f}-{hi:.{dec}f}"


def reading(summary: dict) -> str:
    """One sentence on what the fitted exponents and rates say, computed from the summary."""
    fits = {(f["sampling"], f["algorithm"]): f for f in summary["fits"]}
    spans = {p: rate_span(summary["panels"], p) for p in PROBLEMS}
    rates = "; ".join(f"{p} {_span_text(lo, hi)}" for p, (lo, hi) in spans.items())
    theorem = next((p["theorem_rate"] for p in summary["panels"]
                    if p["theorem_rate"] is not None), None)
    f = fits[("rip", "scaledgd")]
    return (f"Iterations to 1e-10 on matrix sensing: ScaledGD {_fit_text(f)} "
            f"at m = {f['oversampling']:g}nr and {_fit_text(fits[('paper', 'scaledgd')])} at the "
            f"paper's m = 5nr (theory 0); GD {_fit_text(fits[('rip', 'gd')])} and "
            f"{_fit_text(fits[('paper', 'gd')])} (theory 1). ScaledGD's measured contraction "
            f"of the factor distance over kappa = "
            f"{', '.join(f'{k:g}' for k in KAPPAS_PANEL)}: {rates}" + _departures_text(summary)
            + (_against_theorem(spans, theorem) if theorem is not None else "."))


def _departures_text(summary) -> str:
    """The kappas at which ScaledGD's rate departs from the others' (:func:`rate_departures`),
    as a clause of the reading ("" if none)."""
    out = [f"kappa = {d['kappa']:g} on {p} ({d['rate']:.3f} against {d['others'][0]:.3f}-"
           f"{d['others'][1]:.3f}, beyond their 95% intervals)"
           for p in PROBLEMS for d in rate_departures(summary["panels"], p)]
    return ("; ScaledGD's rate departs from the other kappas' at " + ", ".join(out)) if out else ""


def _against_theorem(spans, theorem) -> str:
    slower = [p for p, (lo, hi) in spans.items() if lo > theorem]
    faster = [p for p, (lo, hi) in spans.items() if hi <= theorem]
    s = f"; the theorem's 1 - 0.6 eta = {theorem:g}"
    if slower:
        s += (f" is not met on {', '.join(slower)}: the bound assumes RIP-level sampling, "
              "which these sampling ratios do not give (at m = 80nr the iteration counts imply a "
              "rate within it: bottom right panel)")
    if faster:
        s += f"{';' if slower else ''} holds on {', '.join(faster)}"
    return s + "."
