"""Experiment ``rate-vs-T``: TV(q_1, law Y_1) against the number of steps T.

Claim checked (THEORY.md section 3, Li-Wei-Chen-Chi 2024): TV <~ d^2/T for the
deterministic sampler (li-ode) and d^2/sqrt(T) for the stochastic one (li-sde), logs
ignored; and the accelerated samplers (Li et al., ICML 2024: 1/T stochastic, 1/T^2
deterministic) at d = 1.
Priors: ``bimodal`` and ``gauss`` in d = 1, 10, 100 (both modes: the same panels; in
d = 1000 li-ode's TV stays saturated near 1 over most of T <= 10^4), schedule ``li`` (c0 = 2,
c1 = 4), distances exact (see theory.laws / theory.distances). Exponents are fitted over
T >= T_FIT_MIN where TV <= TV_FIT_MAX, raw and after dividing by log(T)^k; the tightness
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

from theory.figures import finish_figure, new_figure, plot_rate_panel, save_figure
from theory.rates import RateFit, asymptotic_range_start, fit_points, scaled_points, verdict

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
REFERENCE.update({s: (-float(p), f"bound 1/T^{p} (order {p})") for s, p in ORDERS.items()})
LOG_POWER.update(ORDERS)     # an order-p solver's steps in lambda carry log(T)^p
# T caps (the stage engines cost a few score maps per step on the grid): fast mode runs heun
# and dpm++2m on bimodal (rk4 and dpm++3m on gauss only), full mode all four
STAGE_T_MAX = {"bimodal": (433, 2000), "gauss": (2848, 10000)}
FAST_BIMODAL_STAGES = ("heun", "dpm++2m")
REL_ERR_MAX = 0.1


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
        fit = fit_points(x, res, x_min=x_min, x_max=x_max)
        # the same fit after dividing by log(T)^k: the theorems ignore log factors, and the li
        # schedule's plateau beta = c1 log T / T puts them there (an order-p solver: k = p)
        log_fits = {}
        if "exponent" in fit:
            for k in sorted({1, 2, ORDERS.get(sampler, 1)}):
                log_fits[f"tv_over_logT^{k}"] = fit_points(
                    x, scaled_points(res, np.log(np.asarray(x, float)) ** k), x_min=x_min,
                    x_max=x_max)
        fits.append({"prior": prior, "d": d, "sampler": sampler, "fit": fit,
                     "log_corrected_fits": log_fits, "log_power": LOG_POWER[sampler],
                     **({"init": "qT", "order": ORDERS[sampler]} if sampler in ORDERS else {}),
                     "theory_exponent": REFERENCE[sampler][0], "T": x,
                     "tv": [p["value"] for p in res], "lower": [p["lower"] for p in res],
                     "upper": [p["upper"] for p in res]})
    return {"fit_range": f"T >= {T_FIT_MIN} and TV <= {TV_FIT_MAX} from there on", "fits": fits}


def figure(summary: dict, figures_dir="figures"):
    """Rows: priors; columns: d (the same panels in fast and full mode), then d = 1 from q_T
    for the higher-order solvers where the summary has them."""
    priors = sorted({f["prior"] for f in summary["fits"]})
    cols = sorted({(f["d"], f.get("init", "standard-normal")) for f in summary["fits"]},
                  key=lambda c: (c[1] != "standard-normal", c[0]))
    fig, axes = new_figure(len(priors), len(cols), figsize=(4.6 * len(cols), 4.9 * len(priors)))
    for (i, prior), (j, (d, init)) in ((a, b) for a in enumerate(priors)
                                       for b in enumerate(cols)):
        curves = []
        here = [f for f in summary["fits"]
                if (f["prior"], f["d"], f.get("init", "standard-normal")) == (prior, d, init)]
        for f in sorted(here, key=lambda f: list(REFERENCE).index(f["sampler"])):
            k = f.get("log_power", LOG_POWER[f["sampler"]])
            lf = f.get("log_corrected_fits", {}).get(f"tv_over_logT^{k}", {})
            raw = f["fit"].get("exponent")
            note = None if raw is None else f"raw {raw:+.2f}"
            if f["sampler"] == "accel-ode" and summary.get("fast") and \
                    max(f["T"]) < max(summary["fits"][0]["T"]):
                note = (note + "; " if note else "") + \
                    f"T <= {FAST_ACCEL_ODE_T_MAX} in fast mode"
            curves.append({"x": f["T"], "value": f["tv"], "lower": f["lower"],
                           "upper": f["upper"], "label": f["sampler"],
                           "fit": RateFit.from_dict(lf), "fit_text": f"TV/log{_sup(k)}T ~ T^",
                           "fit_factor": lambda t, k=k: np.log(t) ** k,
                           "reference": REFERENCE[f["sampler"]], "note": note,
                           "fit_error": lf.get("error") or f["fit"].get("error"),
                           "x_name": "T"})
        title = f"{prior}, d = {d}" + (", from the exact q_T" if init == "qT" else "")
        if not curves:
            axes[i, j].axis("off")
            continue
        plot_rate_panel(axes[i, j], curves, xlabel="T (steps)", title=title)
    finish_figure(fig, "Claim checked: TV(q_1, law Y_1) <~ d²/T (li-ode) and d²/√T (li-sde) "
                       "(Li-Wei-Chen-Chi 2024), 1/T (accel-sde) and 1/T² (accel-ode) (Li et "
                       "al. 2024), log factors ignored; higher-order solvers from q_T: 1/T^p for order "
                       "p; exact TV against T",
                  "legend: exponent of TV/log^k T (95% interval; what the tightness report's "
                  "verdict uses), the bound's and the verdict (tolerance 0.05 for log factors); "
                  "dark dotted line between bars: that fit over its range; dashed: slope of "
                  "the bound x log^k T (a guide placed clear of the data, not its level); li "
                  "schedule c0=2, c1=4")
    return save_figure(fig, f"{figures_dir}/rate_vs_T.png")


def _sup(k):
    return {1: " ", 2: "² ", 3: "³ "}.get(k, f"^{k} ")


CLAIM = ("Li, Wei, Chen, Chi (ICLR 2024): TV(q_1, law Y_1) <~ d^2/T for the deterministic "
         "sampler (li-ode) and d^2/sqrt(T) for the stochastic one (li-sde); Li et al. (ICML "
         "2024): 1/T^2 and 1/T for the accelerated ODE and SDE; logarithmic factors ignored.")


def verdict_counts(fits, bound, var) -> str:
    """``consistent in 3, bound loose in 2, violated in 1`` (the non-zero counts) for the
    verdicts of several fits against one bound exponent."""
    v = [verdict(bound, f["ci"], var=var) for f in fits]
    counts = {"consistent": sum(x == "consistent" for x in v),
              "bound loose": sum(x.startswith("bound loose") for x in v),
              "violated": sum(x.startswith("violated") for x in v)}
    return ", ".join(f"{name} in {n}" for name, n in counts.items() if n)


def reading(summary: dict) -> str:
    """What the exponents the verdict uses say, per sampler, computed from the summary."""
    parts = []
    for sampler, (bound, text) in REFERENCE.items():
        k = LOG_POWER[sampler]
        lf = [f["log_corrected_fits"][f"tv_over_logT^{k}"] for f in summary["fits"]
              if f["sampler"] == sampler
              and "exponent" in f.get("log_corrected_fits", {}).get(f"tv_over_logT^{k}", {})]
        if not lf:
            continue
        ex = [f["exponent"] for f in lf]
        span = (f"T^{ex[0]:+.2f}" if len(ex) == 1 else
                f"T^{min(ex):+.2f} to T^{max(ex):+.2f} over {len(ex)} panels")
        parts.append(f"{sampler}: TV/log{_sup(k)}T decays like {span}, against {text}'s "
                     f"{bound:+g}: {verdict_counts(lf, bound, 'T')}")
    return "; ".join(parts) + "."
