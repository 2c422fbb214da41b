"""Experiment ``scaledgd-noise``: ScaledGD and GD under noise at kappa = 10.

Claim checked (Tong, Ma, Chi, JMLR 2021, arXiv:2005.08898, Figure 3 and the noisy
guarantees): with noise, ScaledGD converges as fast as without it down to an error floor
set by the noise, the same floor GD reaches (more slowly). [derived] The floor is that of
the least-squares estimate, linear in the noise level, so the final relative error scales
like 1/SNR: exponent -1 in the amplitude SNR.

Grid (:func:`theory.lowrank.sweeps.configs_noise`): kappa = 10, SNR 1e2, 1e3, 1e4 (40, 60,
80 dB; per-entry or per-measurement noise of standard deviation ||X*||_F / (sqrt(n1 n2) SNR),
the authors' convention), matrix sensing (600 iterations), completion and robust PCA (300),
ScaledGD (eta = 0.5) and GD (step 0.5 / sigma_max), seed 0. Measured: relative error and
the paper's factor distance per iteration, the final values, the exponent of the final
relative error in the SNR, and the iterations each algorithm needs to come within 10% of
ScaledGD's final error.
"""
from __future__ import annotations

import math

from matplotlib import colormaps

from theory.figures import LEGEND_FONTSIZE, format_exponent, new_figure, save_figure
from theory.lowrank.sweeps import configs_noise, run_point
from theory.rates import fit_exponent

from .scaledgd_kappa import (ALGORITHMS, PROBLEMS, legend_handles, plot_trajectories,
                             trajectory)

NAME = "scaledgd-noise"
NORMALISE = None
SINGLE_THREAD = True
compute = run_point

SNRS = (1e2, 1e3, 1e4)
#: one colour per SNR (not the kappa colours of the other low-rank figures)
# an ordered parameter on a sequential map (dark: noisy, light: clean), distinct from the
# kappa map of scaledgd-kappa and from the samplers' colours
SNR_COLOURS = dict(zip(SNRS, [tuple(colormaps["plasma"](t))[:3]
                              for t in (0.15, 0.55, 0.85)[:len(SNRS)]]))
NEAR_FLOOR = 1.1


def configs(fast: bool):
    return configs_noise(fast)


def _db(snr):
    return f"{20 * math.log10(snr):.0f} dB"


def _first_below(series, level):
    for t, v in enumerate(series):
        if v is not None and v <= level:
            return t
    return None


def summarise(records, fast: bool) -> dict:
    curves = [trajectory(r) for r in records]
    fits, floors = [], []
    for prob in (p for p in PROBLEMS if any(c["problem"] == p for c in curves)):
        for alg in ALGORITHMS:
            cs = sorted((c for c in curves if c["problem"] == prob and c["algorithm"] == alg),
                        key=lambda c: c["snr"])
            snr = [c["snr"] for c in cs]
            final = [c["final_rel_error"] for c in cs]
            try:
                fit = fit_exponent(snr, final).to_dict()
            except ValueError as err:
                fit = {"error": str(err)}
            fits.append({"problem": prob, "algorithm": alg, "vs": "snr", "kappa": cs[0]["kappa"],
                         "fit": fit, "theory_exponent": -1.0, "snr": snr,
                         "final_rel_error": final,
                         "final_factor_distance": [c["final_factor_distance"] for c in cs]})
        for s in sorted({c["snr"] for c in curves if c["problem"] == prob}):
            pair = {c["algorithm"]: c for c in curves if c["problem"] == prob and c["snr"] == s}
            level = NEAR_FLOOR * pair["scaledgd"]["final_rel_error"]
            floors.append({"problem": prob, "snr": s, "floor": pair["scaledgd"]["final_rel_error"],
                           **{f"iterations_{a}": _first_below(pair[a]["rel_error"], level)
                              for a in ALGORITHMS},
                           "horizon": len(pair["gd"]["rel_error"]) - 1})
    return {"near_floor": NEAR_FLOOR, "fits": fits, "floors": floors, "curves": curves}


def figure(summary: dict, figures_dir="figures"):
    probs = [p for p in PROBLEMS if any(c["problem"] == p for c in summary["curves"])]
    fig, axes = new_figure(2, len(probs), figsize=(5 * len(probs), 8.2))
    colour = lambda c: SNR_COLOURS[c["snr"]]  # noqa: E731
    for j, prob in enumerate(probs):
        cs = [c for c in summary["curves"] if c["problem"] == prob]
        plot_trajectories(axes[0, j], cs, "rel_error", colour,
                          r"relative error $\|X_t - X^\star\|_F\,/\,\|X^\star\|_F$")
        plot_trajectories(axes[1, j], cs, "factor_distance", colour,
                          r"factor distance $\mathrm{dist}(F_t, F^\star)\,/\,\|X^\star\|_F$")
        sg = next(f for f in summary["fits"] if f["problem"] == prob
                  and f["algorithm"] == "scaledgd")["fit"]
        slope = (f"floor ∝ SNR^p, p = {format_exponent(sg['exponent'], sg['ci'])} (theory −1)"
                 if "exponent" in sg else "no fit")
        axes[0, j].set_title(f"{cs[0]['label']}: relative error", fontsize=9)
        axes[1, j].set_title(f"factor distance\nScaledGD's {slope}", fontsize=9)
        low = min((v for c in cs for k in ("rel_error", "factor_distance")
                   for v in c[k] if v is not None and v > 0), default=1e-7)
        for ax in axes[:, j]:
            ax.set_ylim(10 ** (math.floor(math.log10(low)) - 0.5), 3)
    axes[0, 0].legend(handles=legend_handles(SNR_COLOURS, lambda s: f"SNR {s:g} ({_db(s)})"),
                      fontsize=LEGEND_FONTSIZE, loc="lower right", ncol=2)
    kappa = summary["fits"][0]["kappa"]
    fig.suptitle(f"Under noise (κ = {kappa:g}) ScaledGD reaches the error floor set by the "
                 "noise, ∝ 1/SNR, in a few dozen iterations; GD reaches it later or not within "
                 "the run (Tong, Ma, Chi 2021, Figure 3" + ("; fast sizes)" if summary.get("fast")
                                                           else ")"), fontsize=11)
    return save_figure(fig, f"{figures_dir}/scaledgd_noise.png")


CLAIM = ("Tong, Ma, Chi (JMLR 2021, arXiv:2005.08898), Figure 3: under noise ScaledGD "
         "converges at its noiseless, kappa-free rate down to the statistical error floor, "
         "which GD reaches more slowly; the floor is linear in the noise level (final error "
         "~ 1/SNR, exponent -1).")


def reading(summary: dict) -> str:
    """One sentence on the floors and the iterations to reach them, from the summary."""
    parts = []
    for prob in sorted({f["problem"] for f in summary["fits"]}, key=PROBLEMS.index):
        f = next(f for f in summary["fits"] if f["problem"] == prob
                 and f["algorithm"] == "scaledgd")["fit"]
        fl = [x for x in summary["floors"] if x["problem"] == prob]
        its = ", ".join(
            f"{x['iterations_scaledgd']} vs "
            + (str(x["iterations_gd"]) if x["iterations_gd"] is not None
               else f"> {x['horizon']}") for x in fl)
        exp = (f"SNR^{format_exponent(f['exponent'], f['ci'])}"
               if "exponent" in f else "no fit")
        parts.append(f"{prob}: floor ~ {exp}, iterations to within "
                     f"{summary['near_floor']:g}x of it (ScaledGD vs GD, SNR 1e2/1e3/1e4) {its}")
    return ("At kappa = 10 the final relative error follows 1/SNR (theory -1): "
            + "; ".join(parts) + ".")
