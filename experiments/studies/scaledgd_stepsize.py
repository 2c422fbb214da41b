"""Experiment ``scaledgd-stepsize``: matrix completion error after 80 iterations against the
step size, ScaledGD against GD.

Claim checked (Tong, Ma, Chi, JMLR 2021, arXiv:2005.08898, Figure 4, the authors'
``MC_stepsizes.m``): ScaledGD converges over a wide range of step sizes with an error after
a fixed budget that hardly depends on kappa, while GD's best error over all step sizes
degrades quickly as kappa grows (its usable step is capped by sigma_max, its progress in the
weakest direction by sigma_min).

Grid (:func:`theory.lowrank.sweeps.configs_stepsize`): matrix completion (p = 0.2), kappa in
{1, 5, 10, 20}, eta in linspace(0.1, 1.2) (12 values in fast mode, 60 otherwise), 80
iterations from the spectral initialisation, seed 0; GD's step is eta / sigma_max (both on
the 1/p-scaled loss). A run whose relative error passes 1e2 stops (the script's cap; drawn
at the cap with a cross). Measured: the final relative error per (eta, kappa), the best
eta and error per kappa, the error at eta = 0.5 (the paper's default), and the largest eta
up to which every kappa makes progress (no divergence, and a final error at most
``PROGRESS`` = 1/10 of the initial one).
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D

from theory.figures import add_caption, finish_figure, new_figure, panel_legend, save_figure
from theory.lowrank.sweeps import configs_stepsize, run_point

from .scaledgd_kappa import (ALG_LABEL, ALGORITHMS, KAPPA_COLOURS, STYLE, legend_handles,
                             problem_label, sci)

NAME = "scaledgd-stepsize"
NORMALISE = None
SINGLE_THREAD = True
compute = run_point

CAP = 1e2
DIVERGED_ROW = 0.045    # spacing of the rows of diverged runs above the cap (axes height)
RATIOS_LISTED = 8       # the caption lists ScaledGD's ratio over kappa per eta up to this many
PROGRESS = 0.1
DEFAULT_ETA = 0.5
ROUND_OFF_FLOOR = 1e-12      # relative errors below this are float64 round-off at these sizes
STAR_SIZE = 11               # marker size of a best-step star alone
STAR_NEST_STEP = 5.5         # size step between best-step stars nested at one point
STAR_OVERLAP_DECADES = 0.6   # stars at one eta closer than this (in log10 error) would overprint


def configs(fast: bool):
    return configs_stepsize(fast)


def _stable_up_to(curves, alg):
    """Largest eta up to which every kappa's run of ``alg`` made progress (no divergence,
    and a final error at most ``PROGRESS`` times the initial one); None if some kappa fails
    already at the smallest eta."""
    cs = [c for c in curves if c["algorithm"] == alg]
    last = None
    for i, e in enumerate(cs[0]["eta"]):
        if all(not c["diverged"][i] and c["final_rel_error"][i] is not None
               and c["final_rel_error"][i] <= PROGRESS * c["initial_rel_error"][i] for c in cs):
            last = e
        else:
            break
    return last


def summarise(records, fast: bool) -> dict:
    curves = []
    kappas = sorted({r["config"]["kappa"] for r in records})
    for alg in ALGORITHMS:
        for kappa in kappas:
            rs = sorted((r for r in records if r["config"]["algorithm"] == alg
                         and r["config"]["kappa"] == kappa), key=lambda r: r["config"]["eta"])
            eta = [r["config"]["eta"] for r in rs]
            err = [r["result"]["final_rel_error"] for r in rs]
            diverged = [r["result"]["stop_reason"] == "diverged" for r in rs]
            finite = [(v, e) for e, v, d in zip(eta, err, diverged) if not d and v is not None]
            best = min(finite) if finite else (None, None)
            i0 = int(np.argmin(np.abs(np.array(eta) - DEFAULT_ETA)))
            curves.append({"algorithm": alg, "kappa": kappa, "eta": eta, "final_rel_error": err,
                           "initial_rel_error": [r["result"]["rel_error"][0] for r in rs],
                           "diverged": diverged, "best_error": best[0], "best_eta": best[1],
                           "default_eta": eta[i0], "error_at_default": err[i0],
                           "iterations": rs[0]["config"]["iterations"]})
    return {"label": problem_label(records[0]["config"]), "fits": [], "curves": curves,
            "stable_up_to": {a: _stable_up_to(curves, a) for a in ALGORITHMS}}


def first_divergence(curve):
    """The smallest eta at which the curve's run diverged (None: none did)."""
    return next((e for e, d in zip(curve["eta"], curve["diverged"]) if d), None)


def kappa_error_ratios(summary, alg="scaledgd", up_to=None) -> list:
    """Per eta <= ``up_to`` (default: the range where every kappa makes progress,
    ``stable_up_to``): (eta, largest / smallest final error over kappa)."""
    up_to = summary["stable_up_to"][alg] if up_to is None else up_to
    cs = [c for c in summary["curves"] if c["algorithm"] == alg]
    if up_to is None or not cs:
        return []
    out = []
    for i, e in enumerate(cs[0]["eta"]):
        if e > up_to + 1e-9:
            break
        v = [c["final_rel_error"][i] for c in cs]
        out.append((e, max(v) / min(v)))
    return out


def best_error_ratio(summary, alg="gd"):
    """Largest / smallest over kappa of the curve's best error over eta (None if a curve has
    none)."""
    v = [c["best_error"] for c in summary["curves"] if c["algorithm"] == alg]
    return None if not v or None in v else max(v) / min(v)


def stepsize_title(summary) -> str:
    """The claim, computed: ScaledGD's largest error ratio over kappa where every kappa makes
    progress, and the spread of GD's best errors."""
    cs = [c for c in summary["curves"] if c["algorithm"] == "scaledgd"]
    kap = f"κ = {cs[0]['kappa']:g}–{cs[-1]['kappa']:g}"
    its = summary["curves"][0]["iterations"]
    ratios = kappa_error_ratios(summary)
    up = summary["stable_up_to"]["scaledgd"]
    text = f"Claim checked (Tong, Ma, Chi 2021, Figure 4): ScaledGD's error after {its} iterations"
    if ratios:
        text += (f" varies at most {max(r for _, r in ratios):.1f}-fold over {kap} at every "
                 f"η ≤ {up:.2f}")
    else:
        text += " does not make progress at every κ for any η"
    g = best_error_ratio(summary)
    if g is not None:
        text += f", while GD's best error over η varies {sci(g)}-fold over the same κ range"
        floor = [c for c in summary["curves"]
                 if c["algorithm"] == "gd" and c["best_error"] < ROUND_OFF_FLOOR]
        if floor:      # the ratio's denominator is round-off, not the method's best
            kaps = ", ".join(f"{c['kappa']:g}" for c in floor)
            text += f" (at κ = {kaps} down to round-off)"
    return text


def stepsize_caption(summary) -> str:
    """Where each kappa's runs diverge, the ratios over kappa at each eta, and the key."""
    out = []
    for alg in ALGORITHMS:
        cs = [c for c in summary["curves"] if c["algorithm"] == alg]
        div = [(c["kappa"], first_divergence(c)) for c in cs]
        if all(e is None for _, e in div):
            out.append(f"{ALG_LABEL[alg]} diverges at no κ up to η = {cs[0]['eta'][-1]:.2f}.")
            continue
        out.append(f"{ALG_LABEL[alg]} first diverges at η = " + ", ".join(
            (f"{e:.2f}" if e is not None else f"none ≤ {cs[0]['eta'][-1]:.2f}") + f" (κ = {k:g})"
            for k, e in div) + ".")
    sg = [first_divergence(c) for c in summary["curves"] if c["algorithm"] == "scaledgd"]
    if len(sg) > 1 and None not in sg and len(set(sg)) > 1:
        out.append("ScaledGD's largest stable step thus depends on κ; the title's range is "
                   "where every κ cuts its error at least tenfold.")
    ratios = kappa_error_ratios(summary)
    if ratios and len(ratios) <= RATIOS_LISTED:
        out.append("ScaledGD's largest / smallest error over κ at η = " + ", ".join(
            f"{e:.2f}: {r:.1f}" for e, r in ratios) + ".")
    elif ratios:          # full sizes: 40 step sizes, a list would fill the caption
        e_max, r_max = max(ratios, key=lambda er: er[1])
        out.append(f"ScaledGD's largest / smallest error over κ: {min(r for _, r in ratios):.1f}"
                   f" to {r_max:.1f} over the {len(ratios)} step sizes η = {ratios[0][0]:.2f}–"
                   f"{ratios[-1][0]:.2f} (largest at η = {e_max:.2f}).")
    out.append("Solid with circles: ScaledGD; dashed with squares: GD; one colour per κ; "
               "stars: each curve's best step, filled for ScaledGD, hollow for GD (stars that "
               "coincide are nested, each smaller than the one under it: ScaledGD before GD, "
               "κ ascending). "
               f"Crosses (ScaledGD) and pluses (GD) above the cap {CAP:g}: diverged runs, one "
               "row per curve; their height carries no value.")
    return "\n".join(out)


DIVERGED_MARK = {"scaledgd": "x", "gd": "+"}


def best_star_sizes(curves) -> list:
    """Marker size of each curve's best-step star. Every star sits at its curve's true
    (eta, error); stars at the same eta whose errors lie within ``STAR_OVERLAP_DECADES`` of
    one another are nested, the first curve's the largest and each later one
    ``STAR_NEST_STEP`` smaller, drawn on top, so all stay visible without moving off their
    eta (moving them sideways put them on neighbouring step sizes of full mode's grid).
    A star alone gets ``STAR_SIZE``; curves without a best step get ``None``."""
    sizes = [None] * len(curves)
    stars = sorted((c["best_eta"], np.log10(min(c["best_error"], CAP)), i)
                   for i, c in enumerate(curves) if c.get("best_error") is not None)
    groups = []
    for eta, y, i in stars:            # chain stars of one eta that overlap in height
        g = groups[-1] if groups else None
        if g and abs(g[-1][0] - eta) < 1e-9 and min(abs(y - yy) for _, yy, _ in g) \
                < STAR_OVERLAP_DECADES:
            g.append((eta, y, i))
        else:
            groups.append([(eta, y, i)])
    for g in groups:
        for k, (_, _, i) in enumerate(sorted(g, key=lambda s: s[2])):
            sizes[i] = STAR_SIZE + STAR_NEST_STEP * (len(g) - 1 - k)
    return sizes


def figure(summary: dict, figures_dir="figures"):
    fig, axes = new_figure(1, 1, figsize=(7.6, 6.0))
    ax = axes[0, 0]
    curves = summary["curves"]
    # a diverged run is a cross above the cap, one row per curve that has one (runs diverging
    # at the same eta do not hide one another), not joined to the curve: its height is not
    # an error. The rows sit in a band above the cap whose height is a fixed share of the axes
    # per row (spaced in decades they crowded into one another over full mode's 20 decades)
    def diverged_of(c):
        return np.array([bool(d) or v is None
                         for v, d in zip(c["final_rel_error"], c["diverged"])])

    n_rows = sum(bool(diverged_of(c).any()) for c in curves)
    finite = [min(v, CAP) for c in curves for v, d in zip(c["final_rel_error"], diverged_of(c))
              if not d and v is not None and v > 0]
    lo = 10 ** (math.floor(math.log10(min(finite))) - 0.3) if finite else CAP / 1e3
    band = DIVERGED_ROW * (n_rows + 1)                       # share of the axes above the cap
    above = math.log10(CAP / lo) * band / (1 - band)         # decades above the cap
    rows = 0
    star_sizes = best_star_sizes(curves)
    for i, (c, ms) in enumerate(zip(curves, star_sizes)):
        col = KAPPA_COLOURS[int(c["kappa"])]
        eta = np.array(c["eta"])
        div = diverged_of(c)
        err = np.array([np.nan if dv else min(v, CAP)
                        for v, dv in zip(c["final_rel_error"], div)])
        ax.semilogy(eta, err, STYLE[c["algorithm"]], color=col, lw=1.3,
                    marker="o" if c["algorithm"] == "scaledgd" else "s", ms=3)
        if div.any():
            rows += 1
            ax.plot(eta[div], np.full(div.sum(), CAP * 10 ** (above * rows / (n_rows + 1))),
                    DIVERGED_MARK[c["algorithm"]], color=col, ms=6, mew=1.3)
        if c.get("best_error") is not None:      # the curve's best step size
            # filled: ScaledGD's best step; hollow (white, edged in the kappa's colour): GD's
            gd_star = c["algorithm"] == "gd"
            ax.plot([c["best_eta"]], [min(c["best_error"], CAP)], "*", color=col, ms=ms,
                    mfc="white" if gd_star else col, mec=col if gd_star else "k",
                    mew=1.6 if gd_star else 0.6, zorder=5 + i / len(curves))
    ax.axhline(CAP, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel(r"step size $\eta$ (GD: $\eta\,/\,\sigma_{\max}$)")
    ax.set_ylabel(f"relative error after {summary['curves'][0]['iterations']} iterations")
    ax.set_ylim(lo, CAP * 10 ** above)
    # no error scale above the cap: the rows there are runs
    ax.set_yticks([10.0 ** k for k in range(int(np.ceil(np.log10(lo))), int(np.log10(CAP)) + 1)
                   if (k - int(np.log10(CAP))) % 2 == 0])
    ax.minorticks_off()
    ax.grid(True, which="major", alpha=0.25)
    # where no run diverged (small eta) the band above the cap is empty: say what it holds
    ax.text(0.02, CAP * 10 ** (above * 0.9 / (n_rows + 1)), "diverged runs: a row per curve\n"
            "(height carries no value)", transform=ax.get_yaxis_transform(), fontsize=7.5,
            color="0.3", va="bottom")
    hs = legend_handles(KAPPA_COLOURS, lambda k: f"κ = {k}",
                        {"scaledgd": {"marker": "o", "ms": 3}, "gd": {"marker": "s", "ms": 3}})
    hs.append(Line2D([], [], color="0.3", ls="", marker="x",
                     label=f"ScaledGD diverged (above the cap {CAP:g})"))
    hs.append(Line2D([], [], color="0.3", ls="", marker="+", ms=8,
                     label="GD diverged"))
    hs.append(Line2D([], [], color="0.3", ls="", marker="*", ms=10, mec="k", mew=0.6,
                     label="best step size: ScaledGD"))
    hs.append(Line2D([], [], color="0.3", ls="", marker="*", ms=10, mfc="white", mec="0.3",
                     mew=1.1, label="best step size: GD"))
    panel_legend(ax, hs, [h.get_label() for h in hs], ncol=3)
    ax.set_title(summary["label"] + (" (fast sizes)" if summary.get("fast") else ""),
                 fontsize=9)
    finish_figure(fig, stepsize_title(summary))
    add_caption(fig, stepsize_caption(summary))
    return save_figure(fig, f"{figures_dir}/scaledgd_stepsize.png")


CLAIM = ("Tong, Ma, Chi (JMLR 2021, arXiv:2005.08898), Figure 4: on matrix completion "
         "ScaledGD reaches a small error after 80 iterations for a wide range of step sizes "
         "whatever kappa, while GD's best error over all step sizes grows with kappa.")


def reading(summary: dict) -> str:
    """One sentence on the best errors and usable step sizes, from the summary."""
    out = []
    for alg in ALGORITHMS:
        cs = [c for c in summary["curves"] if c["algorithm"] == alg]
        best = ", ".join("none" if c["best_error"] is None else
                         f"{c['best_error']:.1e} (eta {c['best_eta']:.2f})" for c in cs)
        at = ", ".join("diverged" if v is None else f"{v:.1e}"
                       for v in (c["error_at_default"] for c in cs))
        up = summary["stable_up_to"][alg]
        out.append(f"{ALG_LABEL[alg]}: best error over eta {best}; at eta = "
                   f"{cs[0]['default_eta']:.2f} {at}; "
                   + ("at no step size does every kappa end at a tenth of its initial "
                      "error or less" if up is None
                      else f"every kappa ends at a tenth of its initial error or less up to "
                           f"eta = {up:.2f}"))
    kap = ", ".join(f"{c['kappa']:g}" for c in summary["curves"]
                    if c["algorithm"] == "scaledgd")
    div = ", ".join(f"{'none' if e is None else f'{e:.2f}'} (kappa {c['kappa']:g})"
                    for c in summary["curves"] if c["algorithm"] == "scaledgd"
                    for e in [first_divergence(c)])
    ratios = kappa_error_ratios(summary)
    ratio = (f"; for eta <= {ratios[-1][0]:.2f} ScaledGD's largest / smallest error over "
             f"kappa is at most {max(r for _, r in ratios):.1f}" if ratios else "")
    return (f"After {summary['curves'][0]['iterations']} iterations, for kappa = {kap}: "
            + "; ".join(out) + f"; ScaledGD first diverges at eta = {div}{ratio}.")
