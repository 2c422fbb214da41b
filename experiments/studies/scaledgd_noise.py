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
from matplotlib.lines import Line2D

from theory.figures import add_caption, and_list, format_exponent, new_figure, save_figure
from theory.lowrank.problems import FAST_SIZES, PAPER_SIZES
from theory.lowrank.sweeps import configs_noise, run_point
from theory.rates import fit_exponent

from .scaledgd_kappa import (ALGORITHMS, PROBLEM_NAME, PROBLEMS, exponent_text, legend_handles,
                             plot_trajectories, sci, trajectory)

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


def near_floor_iterations(summary, problem) -> list:
    """Per SNR (ascending): (snr, ScaledGD's iterations, GD's iterations or None, horizon)
    to come within ``near_floor`` (1.1: 10%) of ScaledGD's floor, as :func:`summarise`
    stored them (the first t with a relative error <= 1.1 x the floor)."""
    return [(x["snr"], x["iterations_scaledgd"], x["iterations_gd"], x["horizon"])
            for x in sorted((x for x in summary["floors"] if x["problem"] == problem),
                            key=lambda x: x["snr"])]


def _iters(v, horizon) -> str:
    return f">{horizon}" if v is None else str(v)


def floor_reference(summary, problem, theory=-1.0) -> list:
    """The floors the theory predicts, per SNR (ascending): ``(snr, c snr^theory)`` with
    ``c`` the least-squares constant of log floor = log c + theory log snr over ScaledGD's
    measured floors (the geometric mean of floor / snr^theory). Where the measured exponent
    is the theory's, each prediction sits on its measured floor; a departure shows as a
    spread of the curves' ends around their marks."""
    rows = sorted((x for x in summary["floors"] if x["problem"] == problem),
                  key=lambda x: x["snr"])
    if not rows:
        return []
    logc = sum(math.log(x["floor"]) - theory * math.log(x["snr"]) for x in rows) / len(rows)
    return [(x["snr"], math.exp(logc) * x["snr"] ** theory) for x in rows]


FLOOR_MARK_GAP = 0.025     # the predicted-floor marks sit this fraction of the run right of it


def draw_floor_reference(ax, summary, problem, horizon):
    """Black left-pointing triangles just right of the runs' end, at the floors 1/SNR
    predicts (:func:`floor_reference`)."""
    ref = floor_reference(summary, problem)
    x = horizon * (1 + FLOOR_MARK_GAP)
    ax.plot([x] * len(ref), [v for _, v in ref], "<", color="k", ms=6, ls="", zorder=6)
    ax.set_xlim(right=horizon * (1 + 2.5 * FLOOR_MARK_GAP))


def floors_consistent(summary, theory=-1.0, tol=0.05) -> bool:
    """Whether every problem's ScaledGD floor exponent is the theory's: its 95% interval
    holds ``theory`` or it lies within ``tol`` of it."""
    fs = [f["fit"] for f in summary["fits"] if f["algorithm"] == "scaledgd"]
    return bool(fs) and all("exponent" in f and (f["ci"][0] <= theory <= f["ci"][1]
                                                 or abs(f["exponent"] - theory) <= tol)
                            for f in fs)


def noise_title(summary) -> str:
    """The claim, computed: the floor is 1/SNR where every fit says so, else the exponents."""
    kappa = summary["fits"][0]["kappa"]
    probs = [p for p in PROBLEMS if any(f["problem"] == p for f in summary["fits"])]
    src = " (Tong, Ma, Chi 2021, Figure 3" + ("; fast sizes)" if summary.get("fast") else ")")
    if floors_consistent(summary):
        return (f"Under noise (κ = {kappa:g}) ScaledGD's error floor is ∝ 1/SNR on "
                + ", ".join(PROBLEM_NAME[p] for p in probs) + src)
    exps = ", ".join(
        f"{PROBLEM_NAME[f['problem']]} p = {f['fit']['exponent']:.2f}".replace("-", "−")
        for f in summary["fits"] if f["algorithm"] == "scaledgd" and "exponent" in f["fit"])
    return f"Under noise (κ = {kappa:g}) ScaledGD's error floor scales like SNRᵖ: {exps}" + src


def noise_caption(summary, probs) -> str:
    """How the floor is measured, the iterations to reach it, the horizons and the sizes,
    computed from the summary."""
    nf = summary["near_floor"]
    its = []
    horizons = {}
    for p in probs:
        rows = near_floor_iterations(summary, p)
        horizons[p] = rows[0][3] if rows else None
        its.append(f"{PROBLEM_NAME[p]} " + ", ".join(str(r[1]) for r in rows) + " vs "
                   + ", ".join(_iters(r[2], r[3]) for r in rows))
    snrs = ", ".join(sci(r[0], powers=True) for r in near_floor_iterations(summary, probs[0]))
    hz = sorted(set(horizons.values()), key=lambda h: -h)
    horizon = "; ".join(f"{h} iterations on " + ", ".join(PROBLEM_NAME[p] for p in probs
                                                          if horizons[p] == h) for h in hz)
    sizes = "fast sizes" if summary.get("fast") else "the paper's sizes"
    table = FAST_SIZES if summary.get("fast") else PAPER_SIZES

    def size(p, t):
        return f"(n = {t[p]['n']}, r = {t[p]['r']})"
    sz = "; ".join(f"{PROBLEM_NAME[p]} {size(p, table)}" for p in probs)
    paper = "; ".join(f"{PROBLEM_NAME[p]} {size(p, PAPER_SIZES)}" for p in probs)
    n_snr = len(near_floor_iterations(summary, probs[0]))
    return (f"SNR is the amplitude ratio ‖X*‖$_F$ / (√(n₁n₂) σ), σ the noise's standard "
            f"deviation per entry or measurement (in dB: 20 log₁₀ SNR). "
            f"The floor is ScaledGD's relative error at the last iteration of its run; p is "
            f"the least-squares slope of log floor against log SNR over the {n_snr} "
            f"SNRs (95% t-interval). Black triangles right of each relative-error run mark "
            f"c/SNR (slope −1), c fitted to ScaledGD's {n_snr} floors (a curve ending at its "
            f"triangle follows the theory). Iterations until the relative error first "
            f"comes within "
            f"{(nf - 1) * 100:.0f}% of that floor (≤ {nf:g} × floor), ScaledGD vs GD at SNR "
            f"{snrs}: " + "; ".join(its) + " (>: not within the run). "
            f"Horizons as in the authors' noise scripts: {horizon}. "
            + (f"{sizes.capitalize()}: {sz}, at the paper's sampling ratios (m = 5nr, "
               f"p = 0.2, α = 0.1); the paper's: {paper}." if summary.get("fast") else
               f"Sizes: {sz}."))


def figure(summary: dict, figures_dir="figures"):
    probs = [p for p in PROBLEMS if any(c["problem"] == p for c in summary["curves"])]
    fig, axes = new_figure(2, len(probs), figsize=(5 * len(probs), 8.6))
    colour = lambda c: SNR_COLOURS[c["snr"]]  # noqa: E731
    for j, prob in enumerate(probs):
        cs = [c for c in summary["curves"] if c["problem"] == prob]
        plot_trajectories(axes[0, j], cs, "rel_error", colour,
                          r"relative error $\|X_t - X^\star\|_F\,/\,\|X^\star\|_F$")
        plot_trajectories(axes[1, j], cs, "factor_distance", colour,
                          r"factor distance $\mathrm{dist}(F_t, F^\star)\,/\,\|X^\star\|_F$")
        horizon = max(len(c["rel_error"]) - 1 for c in cs)
        draw_floor_reference(axes[0, j], summary, prob, horizon)
        axes[1, j].set_xlim(axes[0, j].get_xlim())
        sg = next(f for f in summary["fits"] if f["problem"] == prob
                  and f["algorithm"] == "scaledgd")["fit"]
        slope = (f"ScaledGD's floor ∝ SNRᵖ, p = {exponent_text(sg['exponent'], sg['ci'])} "
                 "(theory −1)" if "exponent" in sg else "no fit of ScaledGD's floor")
        label = cs[0]["label"].replace("alpha =", "α =")
        axes[0, j].set_title(f"{label}: relative error\n{slope}", fontsize=9)
        axes[1, j].set_title("factor distance", fontsize=9)
        low = min((v for c in cs for k in ("rel_error", "factor_distance")
                   for v in c[k] if v is not None and v > 0), default=1e-7)
        for ax in axes[:, j]:
            ax.set_ylim(10 ** (math.floor(math.log10(low)) - 0.5), 3)
    hs = legend_handles(SNR_COLOURS, lambda s: f"SNR {sci(s, powers=True)} ({_db(s)})")
    hs.append(Line2D([], [], color="k", marker="<", ls="", ms=6,
                     label="c/SNR (slope −1; c fitted to the floors)"))
    fig.suptitle(noise_title(summary), fontsize=11)
    add_caption(fig, noise_caption(summary, probs), fontsize=9,
                key=[(h, h.get_label()) for h in hs])
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
    verdict = ("follows 1/SNR" if floors_consistent(summary)
               else "departs from 1/SNR on some problem")
    # GD's exponent where GD did not reach its floor within the horizon at every SNR is the
    # slope of where it stopped, not of a floor
    unfinished = sorted({x["problem"] for x in summary["floors"] if x["iterations_gd"] is None},
                        key=PROBLEMS.index)
    gd_note = (f" On {and_list(unfinished)} GD does not come within {summary['near_floor']:g}x "
               "of the floor within the horizon at every SNR: its fitted exponent there is "
               "that of its last iterate, not of a floor." if unfinished else "")
    return (f"At kappa = {summary['fits'][0]['kappa']:g} ScaledGD's final relative error "
            f"{verdict} (theory -1; SNR is the amplitude ratio, 1e2 = 40 dB): "
            + "; ".join(parts) + "." + gd_note)
