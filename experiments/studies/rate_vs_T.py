"""Experiment ``rate-vs-T``: TV(q_1, law Y_1) against the number of steps T.

Claim checked (THEORY.md section 3, Li-Wei-Chen-Chi 2024): TV <~ d^2/T for the
deterministic sampler (li-ode) and d^2/sqrt(T) for the stochastic one (li-sde), logs
ignored; and the accelerated samplers (Li et al., ICML 2024: 1/T stochastic, 1/T^2
deterministic) at d = 1.
Priors: ``bimodal`` (d = 1, 10, 100) and ``gauss`` (d = 1, 10, 100), schedule
``li`` (c0 = 2, c1 = 4), distances exact (see theory.output_laws / theory.distances).
Exponents are fitted over T >= T_FIT_MIN, where the curves are straight on log-log axes.

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

from theory.figures import new_figure, plot_rate_panel, save_figure
from theory.rates import RateFit, asymptotic_range_start, fit_points, scaled_points

NAME = "rate-vs-T"
T_FIT_MIN = 100
TV_FIT_MAX = 0.3
SAMPLERS = ("li-ode", "li-sde")
REFERENCE = {"li-ode": (-1.0, "d^2/T (slope -1)"), "li-sde": (-0.5, "d^2/sqrt(T) (slope -1/2)"),
             "accel-sde": (-1.0, "1/T (slope -1)"), "accel-ode": (-2.0, "1/T^2 (slope -2)")}
# the accelerated samplers (Li et al., ICML 2024) on the d = 1 priors
ACCELERATED = ("accel-sde", "accel-ode")
FAST_ACCEL_ODE_T_MAX = 3000
# higher-order solvers (theory.stages) on the d = 1 priors, from q_T; their stated orders
ORDERS = {"heun": 2, "rk4": 4, "dpm++2m": 2, "dpm++3m": 3}
REFERENCE.update({s: (-float(p), f"order {p}: 1/T^{p} (slope -{p})") for s, p in ORDERS.items()})
# T caps (the stage engines cost a few score maps per step on the grid): fast mode runs heun
# and dpm++2m on bimodal (rk4 and dpm++3m on gauss only), full mode all four
STAGE_T_MAX = {"bimodal": (433, 2000), "gauss": (2848, 10000)}
FAST_BIMODAL_STAGES = ("heun", "dpm++2m")
REL_ERR_MAX = 0.1


def grid(fast: bool):
    n = 12 if fast else 20
    Ts = sorted(set(int(round(t)) for t in np.geomspace(10, 1e4, n)))
    priors = [("bimodal", 1), ("bimodal", 10), ("bimodal", 100), ("gauss", 1), ("gauss", 10),
              ("gauss", 100)]
    if not fast:
        priors += [("bimodal", 1000), ("gauss", 1000)]
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
                     "log_corrected_fits": log_fits,
                     **({"init": "qT", "order": ORDERS[sampler]} if sampler in ORDERS else {}),
                     "theory_exponent": REFERENCE[sampler][0], "T": x,
                     "tv": [p["value"] for p in res], "lower": [p["lower"] for p in res],
                     "upper": [p["upper"] for p in res]})
    return {"fit_range": f"T >= {T_FIT_MIN} and TV <= {TV_FIT_MAX} from there on", "fits": fits}


def figure(summary: dict, figures_dir="figures"):
    # one panel per (prior, d, start): the higher-order solvers, run from q_T, get their own
    panels = sorted({(f["prior"], f["d"], f.get("init", "standard-normal"))
                     for f in summary["fits"]}, key=lambda k: (k[2] != "standard-normal", k))
    ncol = 3
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = new_figure(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow))
    for ax, (prior, d, init) in zip(axes.flat, panels):
        curves = []
        for f in summary["fits"]:
            if (f["prior"], f["d"], f.get("init", "standard-normal")) != (prior, d, init):
                continue
            fit = RateFit.from_dict(f["fit"])
            curves.append({"x": f["T"], "value": f["tv"], "lower": f["lower"],
                           "upper": f["upper"], "label": f["sampler"], "fit": fit,
                           "reference": REFERENCE[f["sampler"]]})
        title = f"{prior}, d = {d}" + (", from q_T" if init == "qT" else "")
        plot_rate_panel(ax, curves, (), xlabel="T (steps)", title=title)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Exact TV(q_1, law Y_1) against T, li schedule (c0=2, c1=4); dashed: theory "
                 "slopes through each curve's last point; dotted: fits over T >= %d, TV <= %.1f"
                 % (T_FIT_MIN, TV_FIT_MAX), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, f"{figures_dir}/rate_vs_T.png")


CLAIM = ("Li, Wei, Chen, Chi (ICLR 2024): TV(q_1, law Y_1) <~ d^2/T for the deterministic "
         "sampler (li-ode) and d^2/sqrt(T) for the stochastic one (li-sde), logarithmic "
         "factors ignored.")


def reading(summary: dict) -> str:
    """One sentence on what the fitted exponents say, computed from the summary."""
    parts = []
    for sampler, k in (("li-ode", 2), ("li-sde", 1)):
        ex = [f["fit"]["exponent"] for f in summary["fits"]
              if f["sampler"] == sampler and "exponent" in f["fit"]]
        lc = [f["log_corrected_fits"][f"tv_over_logT^{k}"]["exponent"] for f in summary["fits"]
              if f["sampler"] == sampler and f.get("log_corrected_fits")]
        if ex:
            parts.append(f"{sampler} decays like T^{np.median(ex):+.2f} (median over priors "
                         f"and d), and TV/log(T)^{k} like T^{np.median(lc):+.2f}")
    text = ("; ".join(parts) + ": both samplers converge like 1/T up to log factors on these "
            "priors, matching the d^2/T rate's exponent in T for the deterministic sampler and "
            "beating the d^2/sqrt(T) bound's for the stochastic one.")
    high = []
    for sampler, k in ORDERS.items():
        for f in summary["fits"]:
            lf = (f.get("log_corrected_fits") or {}).get(f"tv_over_logT^{k}", {})
            if f["sampler"] == sampler and "exponent" in lf:
                high.append(f"{sampler} on {f['prior']} T^{lf['exponent']:+.2f} "
                            f"[{lf['ci'][0]:+.2f}, {lf['ci'][1]:+.2f}] (order {k})")
                break
    if high:
        text += (" From q_T, TV/log(T)^p of the higher-order solvers: " + "; ".join(high) + ".")
    return text
