"""Experiment ``rate-vs-T``: TV(q_1, law Y_1) against the number of steps T.

Claim checked (THEORY.md section 3, Li-Wei-Chen-Chi 2024): TV <~ d^2/T for the
deterministic sampler (li-ode) and d^2/sqrt(T) for the stochastic one (li-sde), logs
ignored; and the accelerated samplers (Li et al., ICML 2024: 1/T stochastic, 1/T^2
deterministic) at d = 1.
Priors: ``bimodal`` and ``gauss`` in d = 1, 10, 100 (both modes: the same panels; in
d = 1000 li-ode's TV stays saturated near 1 over most of T <= 10^4), schedule ``li`` (c0 = 2,
c1 = 4), distances exact (see theory.laws / theory.distances). Exponents are fitted over
T >= T_FIT_MIN where TV <= TV_FIT_MAX, and from the first T from which every local slope of
TV/log(T)^k lies within LOG_TOLERANCE of the slope fitted from there on (at least
SETTLED_MIN_POINTS points; a pre-asymptotic plateau is so left out by a rule; a curve with no
such range is "not resolved", no verdict), raw and after dividing by log(T)^k; the tightness
report's verdict (and the figure's legend) uses k = LOG_POWER[sampler] (2 deterministic, 1
stochastic: the logs the li schedule's plateau carries).

Higher-order solvers at d = 1 (theory.stages): Heun (Karras et al. 2022, EDM, order 2), RK4
(order 4), DPM-Solver++(2M) and (3M) (Lu et al. 2022, orders 2 and 3), started from the exact
q_T (``init: qT``: with the N(0, I) start the initialisation error, about alpha_bar_T ~
T^-(c1 - c0) = T^-2 here, would hide every order above 2). On the li schedule the steps in
lambda = log(sqrt(abar)/sqrt(1 - abar)) are about c1 log(T)/(2T), so an order-p method's error
is ~ (log T/T)^p: the log-corrected fit divides by log(T)^p. Their fits also stop where the
numerical interval exceeds a tenth of the value (the grid engine's resolution).
"""
from __future__ import annotations

import numpy as np

from theory.figures import (REFERENCE_SHIFT, add_caption, finish_figure, new_figure,
                            plot_rate_panel, save_figure, sci, superscript)
from theory.rates import (LOG_TOLERANCE, RateFit, asymptotic_range_start, fit_points,
                          local_slopes, scaled_points, settled_range_start, verdict)

NAME = "rate-vs-T"
T_FIT_MIN = 100
TV_FIT_MAX = 0.3
SAMPLERS = ("li-ode", "li-sde")
REFERENCE = {"li-ode": (-1.0, "bound d²/T"), "li-sde": (-0.5, "bound d²/√T"),
             "accel-sde": (-1.0, "bound 1/T"), "accel-ode": (-2.0, "bound 1/T²")}
# the power k of log(T) divided out before the fit the verdict uses (tightness report)
LOG_POWER = {"li-ode": 2, "li-sde": 1, "accel-sde": 1, "accel-ode": 2}
# the accelerated samplers (Li et al., ICML 2024) on the d = 1 priors
ACCELERATED = ("accel-sde", "accel-ode")
FAST_ACCEL_ODE_T_MAX = 3000
# higher-order solvers (theory.stages) on the d = 1 priors, from q_T; their stated orders
ORDERS = {"heun": 2, "rk4": 4, "dpm++2m": 2, "dpm++3m": 3}
REFERENCE.update({s: (-float(p), f"order-{p} bound (log T/T){superscript(p)}")
                  for s, p in ORDERS.items()})
LOG_POWER.update(ORDERS)     # an order-p solver's steps in lambda carry log(T)^p
# T caps (the stage engines cost a few score maps per step on the grid): fast mode runs heun
# and dpm++2m on bimodal (rk4 and dpm++3m on gauss only), full mode all four
STAGE_T_MAX = {"bimodal": (433, 2000), "gauss": (2848, 10000)}
FAST_BIMODAL_STAGES = ("heun", "dpm++2m")
REL_ERR_MAX = 0.1
SETTLED_MIN_POINTS = 3     # the fewest points a settled fit range may hold


def grid(fast: bool):
    n = 12 if fast else 20
    Ts = sorted(set(int(round(t)) for t in np.geomspace(10, 1e4, n)))
    priors = [(p, d) for p in ("bimodal", "gauss") for d in (1, 10, 100)]
    return Ts, priors


def configs(fast: bool):
    Ts, priors = grid(fast)
    out = [{"prior": p, "d": d, "sampler": s, "schedule": "li", "T": T, "metric": "tv"}
           for (p, d) in priors for s in SAMPLERS for T in Ts]
    # fast mode: the two-step grid engine of accel-ode costs ~2 ms a step on the bimodal
    # prior, so its curve stops at T = FAST_ACCEL_ODE_T_MAX (the fit range says so)
    out += [{"prior": p, "d": 1, "sampler": s, "schedule": "li", "T": T, "metric": "tv"}
            for p in ("bimodal", "gauss") for s in ACCELERATED for T in Ts
            if not (fast and s == "accel-ode" and T > FAST_ACCEL_ODE_T_MAX)]
    for p in ("bimodal", "gauss"):
        t_max = STAGE_T_MAX[p][0 if fast else 1]
        for s in ORDERS:
            if fast and p == "bimodal" and s not in FAST_BIMODAL_STAGES:
                continue
            out += [{"prior": p, "d": 1, "sampler": s, "schedule": "li", "T": T, "metric": "tv",
                     "init": "qT"} for T in Ts if T <= t_max]
    return out


def _resolved_end(x, res):
    """The last T before the first point whose numerical interval exceeds REL_ERR_MAX of its
    value (None: all resolved)."""
    for xi, r in zip(x, res):
        if r["value"] <= 0 or (r["upper"] - r["lower"]) > REL_ERR_MAX * r["value"]:
            prev = [xj for xj in x if xj < xi]
            return prev[-1] if prev else xi
    return None


FIT_RANGE_RULE = (f"T >= {T_FIT_MIN} and TV <= {TV_FIT_MAX} from there on, and from the first "
                  f"T whose local slopes of TV/log^k T all lie within {LOG_TOLERANCE:g} of the "
                  f"slope fitted from there on ({SETTLED_MIN_POINTS} points or more; none: not "
                  f"resolved)")


FLAT_SLOPE = -0.1     # a stretch of T over which TV falls more slowly than T^-0.1 is "flat"


def flat_stretches(T, tv, slope=FLAT_SLOPE) -> list:
    """The maximal runs ``(T_a, T_b)`` of consecutive points over which every local slope of
    log TV in log T is above ``slope`` (TV not decreasing at any useful rate)."""
    T, tv = np.asarray(T, float), np.asarray(tv, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        sl = np.diff(np.log(tv)) / np.diff(np.log(T))
    out, start = [], None
    for i, v in enumerate(sl):
        if np.isfinite(v) and v > slope:
            start = i if start is None else start
        elif start is not None:
            out.append((float(T[start]), float(T[i])))
            start = None
    if start is not None:
        out.append((float(T[start]), float(T[-1])))
    return out


def gaussian_variance_errors(prior_name, d, sampler, Ts, init="qT"):
    """Signed relative variance errors ``var(Y_1) / var(q_1) - 1`` (first coordinate) and
    the largest mean error, per T, of a sampler on a Gaussian prior (closed form,
    :func:`theory.laws.gaussian.gaussian_output_law`): on a centred Gaussian, TV is a function
    of the variance error alone, so where that changes sign TV dips to near zero and rises
    again, which a sparse grid in T shows as a flat stretch."""
    from theory.laws.gaussian import gaussian_output_law

    from experiments.points.measure import build, normalise_config
    var, mean = [], []
    for T in Ts:
        cfg = normalise_config({"prior": prior_name, "d": d, "sampler": sampler,
                                "schedule": "li", "T": int(T), "metric": "tv", "init": init})
        prior, _, rule = build(cfg)
        mp, vp, mq, vq = gaussian_output_law(prior, rule)
        var.append(float(vp[0, 0] / vq[0, 0] - 1))
        mean.append(float(np.max(np.abs(mp - mq))))
    return var, max(mean)


def flat_stretch_note(f):
    """Why a curve of a Gaussian prior is flat over a stretch of T, from its stored signed
    variance errors: the sign change before or inside the stretch, as a legend note (None
    without one)."""
    ve = f.get("variance_error")
    if not ve or f.get("mean_error", 1.0) > 1e-12:
        return None
    T = f["T"]
    for a, b in flat_stretches(T, f["tv"]):
        i0 = max(T.index(a) - 1, 0)
        for i in range(i0, T.index(b)):
            if ve[i] * ve[i + 1] < 0:
                return (f"flat over T = {a:g}–{b:g}: the variance error changes sign between "
                        f"T = {T[i]:g} and {T[i + 1]:g} ({sci(ve[i], 2, sign=True)} → "
                        f"{sci(ve[i + 1], 2, sign=True)}): TV dips near 0 between those grid "
                        "points (none drawn there) and grows back")
    return None


def summarise(records, fast: bool) -> dict:
    curves = {}
    for r in records:
        c = r["config"]
        curves.setdefault((c["prior"], c["d"], c["sampler"]), []).append((c["T"], r["result"]))
    fits = []
    for (prior, d, sampler), pts in curves.items():
        pts.sort(key=lambda p: p[0])
        x = [p[0] for p in pts]
        res = [p[1] for p in pts]
        # fit where the curve is in its asymptotic regime: T >= T_FIT_MIN and TV <= TV_FIT_MAX
        # from there on (a saturated TV near 1 follows no power law)
        x_min = asymptotic_range_start(x, [p["value"] for p in res], T_FIT_MIN, TV_FIT_MAX)
        x_max = _resolved_end(x, res) if sampler in ORDERS else None
        # and from where the local slope of TV/log^k T (the quantity the verdict uses) has
        # settled: within LOG_TOLERANCE of the slope fitted from there on (a pre-asymptotic
        # plateau or bend is left out by this rule, not by hand); none such: not resolved
        kv = LOG_POWER[sampler]
        settled = settled_range_start(
            x, np.asarray([p["value"] for p in res]) / np.log(np.asarray(x, float)) ** kv,
            x_min=x_min, x_max=x_max, tol=LOG_TOLERANCE, min_points=SETTLED_MIN_POINTS)
        if settled is None:
            fit = {"error": f"not resolved: the local slope of TV/log^{kv} T does not settle "
                            f"within {LOG_TOLERANCE:g} over any {SETTLED_MIN_POINTS} or more "
                            f"points of the range"}
        else:
            x_min = settled
            fit = fit_points(x, res, x_min=x_min, x_max=x_max)
        # the same fit after dividing by log(T)^k: the theorems ignore log factors, and the li
        # schedule's plateau beta = c1 log T / T puts them there (an order-p solver: k = p)
        log_fits = {}
        if settled is None:
            log_fits[f"tv_over_logT^{kv}"] = dict(fit)
        elif "exponent" in fit:
            for k in sorted({1, 2, ORDERS.get(sampler, 1)}):
                log_fits[f"tv_over_logT^{k}"] = fit_points(
                    x, scaled_points(res, np.log(np.asarray(x, float)) ** k), x_min=x_min,
                    x_max=x_max)
        extra = {}
        if prior == "gauss" and d == 1 and flat_stretches(x, [p["value"] for p in res]):
            # a centred Gaussian: TV is set by the variance error; store its sign per T
            var, mean = gaussian_variance_errors(
                prior, d, sampler, x, init="qT" if sampler in ORDERS else "standard-normal")
            extra = {"variance_error": var, "mean_error": mean}
        fits.append({"prior": prior, "d": d, "sampler": sampler, "fit": fit, **extra,
                     "log_corrected_fits": log_fits, "log_power": LOG_POWER[sampler],
                     **({"init": "qT", "order": ORDERS[sampler]} if sampler in ORDERS else {}),
                     "theory_exponent": REFERENCE[sampler][0], "T": x,
                     "tv": [p["value"] for p in res], "lower": [p["lower"] for p in res],
                     "upper": [p["upper"] for p in res]})
    return {"fit_range": FIT_RANGE_RULE, "fits": fits}


# the panels of the lower rows (d = 1): one group of samplers each, so that every curve's
# guide has room beside it
GROUPS = (("accelerated samplers", "standard-normal", ("accel-sde", "accel-ode")),
          ("order-2 solvers from the exact $q_T$", "qT", ("heun", "dpm++2m")),
          ("order-3/4 solvers from the exact $q_T$", "qT", ("dpm++3m", "rk4")))


# the order-3/4 panel spans ten decades of TV: its guides are drawn a factor
# REFERENCE_SHIFT^2 above each curve's last fit point, back over the fit range (the panel's
# default placement put them a factor 2.5 from the data, which reads as on it at that scale)
STEEP = ("dpm++3m", "rk4")
STEEP_GUIDE = {"guide": "above-end", "guide_shift": REFERENCE_SHIFT ** 2}


def _curve(f, summary):
    """One sampler's curve for plot_rate_panel: the fit of TV/log^k T that the verdict uses."""
    k = f.get("log_power", LOG_POWER[f["sampler"]])
    lf = f.get("log_corrected_fits", {}).get(f"tv_over_logT^{k}", {})
    raw = f["fit"].get("exponent")
    notes = [] if raw is None else [f"raw TV: p = {raw:+.2f}"]     # minus: unicode_powers
    t_all = max(max(g["T"]) for g in summary["fits"])
    if summary.get("fast") and max(f["T"]) < t_all and f["sampler"] in ACCELERATED:
        notes.append(f"runs to T = {max(f['T'])} (fast mode's cost cap)")
    bound = REFERENCE[f["sampler"]][0]
    # the local slopes of the fitted quantity over the fit range: the verdict declares no
    # violation while they still steepen toward the bound (theory.rates.verdict)
    sl = local_slopes(f["T"], f["tv"], k, lf["x_range"]) if "exponent" in lf else []
    if sl and verdict(bound, lf["ci"], var="T", local=[s[2] for s in sl]
                      ).startswith("not resolved (pre-asymptotic"):
        notes.append(f"local p steepens from {sl[0][2]:+.2f} (T = {sl[0][0]:g}→"
                     f"{sl[0][1]:g}) to {sl[-1][2]:+.2f} (T = {sl[-1][0]:g}→{sl[-1][1]:g}):"
                     f" the fit starts off the asymptote")
    flat = flat_stretch_note(f)
    if flat:
        notes.append(flat)
    if "exponent" not in lf and min(f["tv"]) < 1e-11:
        # no settled range: say where the curve ends (near float64's floor, the local slopes
        # of TV there are numerical noise, not the sampler's rate)
        notes.append(f"TV reaches {sci(min(f['tv']))}, near the float64 floor")
    return {"x": f["T"], "value": f["tv"], "lower": f["lower"], "upper": f["upper"],
            "label": f["sampler"], "fit": RateFit.from_dict(lf),
            "fit_text": f"TV/log{_sup(k)}T ~ T^", "fit_factor": lambda t, k=k: np.log(t) ** k,
            "reference": REFERENCE[f["sampler"]], "note": "; ".join(notes) or None,
            "fit_error": lf.get("error") or f["fit"].get("error"), "x_name": "T",
            "local_slopes": [s[2] for s in sl] or None,
            **(STEEP_GUIDE if f["sampler"] in STEEP else {})}


def figure(summary: dict, figures_dir="figures"):
    """Per prior, a row of li-ode/li-sde in d = 1, 10, 100, and below the rows of d = 1 for
    the accelerated samplers and the higher-order solvers (from q_T), one group a panel."""
    fits = summary["fits"]
    priors = sorted({f["prior"] for f in fits})
    ds = sorted({f["d"] for f in fits if f["sampler"] in SAMPLERS})
    ncol = max(len(ds), len(GROUPS))
    rows = [("li", p) for p in priors] + [("d1", p) for p in priors]
    fig, axes = new_figure(len(rows), ncol, figsize=(4.7 * ncol, 4.3 * len(rows)))
    t_all = max(max(f["T"]) for f in fits)
    for i, (kind, prior) in enumerate(rows):
        panels = ([(f"{prior}, d = {d}", "standard-normal", SAMPLERS, d) for d in ds]
                  if kind == "li" else
                  [(f"{prior}, d = 1: {name}", init, group, 1) for name, init, group in GROUPS])
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(panels):
                ax.axis("off")
                continue
            title, init, group, d = panels[j]
            here = sorted((f for f in fits if (f["prior"], f["d"]) == (prior, d)
                           and f.get("init", "standard-normal") == init
                           and f["sampler"] in group), key=lambda f: group.index(f["sampler"]))
            missing = [s for s in group if s not in {f["sampler"] for f in here}]
            if not here:
                ax.axis("off")
                ax.text(0.5, 0.5, f"{title}:\n{', '.join(missing)} not run"
                        + (" in fast mode (cost)" if summary.get("fast") else ""),
                        ha="center", va="center", fontsize=9, transform=ax.transAxes)
                continue
            t_max = max(max(f["T"]) for f in here)
            sub = []
            if init == "qT" and t_max < t_all:
                sub.append(f"T ≤ {t_max} (cost cap)")
            if missing:
                sub.append(f"{', '.join(missing)}: not run"
                           + (" in fast mode" if summary.get("fast") else ""))
            plot_rate_panel(ax, [_curve(f, summary) for f in here], xlabel="T (steps)",
                            title=title + ("\n" + "; ".join(sub) if sub else ""),
                            range_in_legend=False, fit_style="behind",
                            verdict_note=f"after the {LOG_TOLERANCE:g} tolerance",
                            glue_verdict=True)
    finish_figure(fig, "Claim checked: each sampler's TV decays in T at least as fast as its "
                       "bound up to the bound's log factors, i.e. TV/logᵏ T (k in the caption) "
                       "against Tᵖ (Li-Wei-Chen-Chi 2024; Li et al. 2024; an order-p solver: "
                       "its order, (log T/T)ᵖ on the li schedule's steps)")
    hollow = any(min(f["lower"]) <= 0 for f in summary["fits"])
    add_caption(fig, "p: exponent of TV/logᵏ T (95% interval), what the verdict uses: k = 2 "
                        "deterministic, 1 stochastic (the li schedule's logs), k = p for an "
                        "order-p solver (its steps in log-SNR λ are about c₁ log T/(2T), so its "
                        "global error is (log T/T)ᵖ: the classical order, not a TV theorem). "
                        "Wide grey line behind the data: that fit "
                        "(× logᵏ T) over its range: T ≥ 100 with TV ≤ 0.3 from there on, "
                        f"starting at the first T from which every local slope of TV/logᵏ T "
                        f"lies within {LOG_TOLERANCE:g} of the fitted one ({SETTLED_MIN_POINTS}"
                        " points or more; none: not resolved); order-p solvers: up to where "
                        "the numerical interval passes 10% of TV. Dashed: the bound's slope × "
                        "logᵏ T (hence curved; its level is arbitrary; order 3/4: a factor "
                        f"{REFERENCE_SHIFT ** 2:g} above the fit's last point). Verdicts allow "
                        f"{LOG_TOLERANCE:g} in the exponent for log factors ('loose by Tᵃ': a "
                        f"after that {LOG_TOLERANCE:g}). "
                        + ("Hollow markers: points whose numerical interval reaches 0 (no "
                           "band). " if hollow else "")
                        + "'raw TV: p': the exponent of TV itself, over the same range. Exact "
                        "TV, li schedule c₀ = 2, c₁ = 4."
                        + (f" Fast mode: {len(grid(True)[0])} values of T in [10, 10⁴], "
                           f"accel-ode to T ≤ {FAST_ACCEL_ODE_T_MAX} and the solvers from $q_T$ "
                           "to the caps in their panel titles, "
                           f"{' and '.join(s for s in ORDERS if s not in FAST_BIMODAL_STAGES)} "
                           f"on the Gaussian target only; full mode: {len(grid(False)[0])} "
                           "values of T, every solver on both targets, higher caps."
                           if summary.get("fast") else ""))
    return save_figure(fig, f"{figures_dir}/rate_vs_T.png")


def _sup(k):
    return " " if k == 1 else superscript(k) + " "


CLAIM = ("Li, Wei, Chen, Chi (ICLR 2024): TV(q_1, law Y_1) <~ d^2/T for the deterministic "
         "sampler (li-ode) and d^2/sqrt(T) for the stochastic one (li-sde); Li et al. (ICML "
         "2024): 1/T^2 and 1/T for the accelerated ODE and SDE; an order-p solver (heun, "
         "dpm++2m, dpm++3m, rk4) at its order, (log T/T)^p, on the li schedule's steps; "
         "the bounds' logarithmic factors are divided out before fitting (TV/log^k T).")


def verdict_counts(fits, bound, var, locals_=None) -> str:
    """``consistent in 3, bound loose in 2, violated in 1`` (the non-zero counts) for the
    verdicts of several fits against one bound exponent; ``locals_`` (per fit, the local
    slopes over its range, or None) lets a fit whose slopes still steepen toward the bound
    read "not resolved" instead of "violated", as the figure's legend does
    (:func:`theory.rates.verdict`)."""
    locals_ = locals_ or [None] * len(fits)
    v = [verdict(bound, f["ci"], var=var, local=loc) for f, loc in zip(fits, locals_)]
    counts = {"consistent": sum(x == "consistent" for x in v),
              "bound loose": sum(x.startswith("bound loose") for x in v),
              "violated": sum(x.startswith("violated") for x in v),
              "not resolved (local slope still steepening)":
                  sum(x.startswith("not resolved") for x in v)}
    return ", ".join(f"{name} in {n}" for name, n in counts.items() if n)


def reading(summary: dict) -> str:
    """What the exponents the verdict uses say, per sampler, computed from the summary."""
    parts = []
    for sampler, (bound, text) in REFERENCE.items():
        k = LOG_POWER[sampler]
        key = f"tv_over_logT^{k}"
        fs = [f for f in summary["fits"] if f["sampler"] == sampler
              and "exponent" in f.get("log_corrected_fits", {}).get(key, {})]
        if not fs:
            continue
        lf = [f["log_corrected_fits"][key] for f in fs]
        local = [[sl[2] for sl in local_slopes(f["T"], f["tv"], k, g["x_range"])] or None
                 for f, g in zip(fs, lf)]
        ex = [f["exponent"] for f in lf]
        span = (f"T^{ex[0]:+.2f}" if len(ex) == 1 else
                f"T^{ex[0]:+.2f} in both panels" if len(ex) == 2 and
                f"{min(ex):+.2f}" == f"{max(ex):+.2f}" else
                f"T^{min(ex):+.2f} to T^{max(ex):+.2f} over {len(ex)} panels")
        parts.append(f"{sampler}: TV/log{_sup(k)}T decays like {span}, against {text} "
                     f"(exponent {bound:+g}): {verdict_counts(lf, bound, 'T', local)}")
    return "; ".join(parts) + "."
