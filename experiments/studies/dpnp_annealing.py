"""Experiment ``dpnp-annealing``: annealing schedules at equal numbers of score evaluations,
with DPS (Chung et al. 2023) on the same axes.

Claim checked (THEORY.md sections 6-7; Xu & Chi, arXiv:2403.17042): a diminishing eta_k
removes the stationary bias TV(pi_eta, posterior) ~ eta^2 that a constant eta leaves, so
at equal score evaluations an annealed DPnP ends closer to the posterior than a constant eta,
whereas DPS, an approximation of the guidance term, keeps a bias that more steps do not
remove. With K = 16 outer steps fixed, a larger budget per step takes each schedule toward its
exact-sub-sampler limit (the dotted lines), not to the posterior: the verdict compares the
schedules at the largest budget, and the reading says how far each is from its limit there.

Problems (d = 1, A = I): the Gaussian prior N(0, 1) (preset ``gauss``) with the Gaussian
likelihood (y = 0.7, sigma = 0.5), where DPnP mixes fast; and the bimodal prior with the
1-bit logistic likelihood (y = +1, lambda = 0.4), where the chain must move mass between
modes and small eta_k freezes the mode weights (the exact-sub-sampler limit shows how much
of the remaining TV that explains). Schedules, K = 16 outer steps: constant eta = 0.5, the
reference code's (0.4 for 4 steps, then 12 levels geometric to 0.16), geometric 1.0 -> 0.05,
polynomial 1.0 (1+k)^(-1) floored at 0.05. PCS exact (Gaussian) or MALA with 100 steps
(logistic); DDS by the reverse SDE from eta (ddpm rule) with s steps, so the budget is
B = K (s + 1) score calls. DPS runs T = B steps of Ho's linear schedule (one score and one
score Jacobian per step) for each zeta' in ZETAS; the figure shows, per budget, the zeta'
with the smallest TV (DPS at its best, tuned on the exact answer).
Every curve is an exact grid law: TV(output law, posterior) with the error of three-level
refinement plus the mass the grid lost as the interval. DPnP (theory.posterior.dpnp_grid,
PCS exact on the Gaussian problem, MALA(100) on the logistic one, DDS the reverse SDE as
Gaussian chain steps) runs on *level grids*: outer step k on a grid whose spacing follows
eta_k, the Langevin chains on a lattice set by the PCS noise and their rows from strided
centres (DPnPGrid1D.compute_level_factors). One common grid would have to resolve
eta = 0.05 everywhere, with MALA windows of eta_max / h_min nodes: about 100 s for the
reference schedule and over 200 times that for the geometric one, against 10-30 s here.
DPS is a grid law on both problems (its T - 1 guided steps and Tweedie's map as a chain on
the grid: theory.posterior.dps_grid). The logistic DPnP laws are checked against n real chains of
run_dpnp (``CHAIN_CHECKS``: every schedule and budget; TV binned on the grid, 95%
basic-bootstrap CI): markers in the figure, ``sample_cross_checks`` with ``agree`` in the
summary. Dotted lines: every schedule with exact sub-samplers (grid laws, no sampling). Each
grid point stores the mean and variance of its output law, so the reading can say why an
inexact DDS can end closer to the posterior than exact sub-samplers (its variance error
offsets the last eta's inflation).
"""
from __future__ import annotations

import numpy as np
import torch

from matplotlib.ticker import FuncFormatter, NullFormatter

from theory.figures import (add_caption, and_list, format_estimate, new_figure, panel_legend,
                            save_figure, superscript)
from theory.posterior.annealing import parse_annealing
from theory.posterior.dpnp_grid import dpnp_grid_refinement
from theory.posterior.dps_grid import dps_grid_refinement
from theory.posterior.estimators import binned_tv
from theory.posterior.grid1d import Grid1D
from theory.posterior.inits import init_samples
from theory.posterior.plug_and_play import DDSConfig, PCSConfig, run_dpnp
from theory.posterior.refinement import grid_refinement

from .dpnp_stationary import problem

NAME = "dpnp-annealing"
NORMALISE = None
SINGLE_THREAD = True
K = 16
SCHEDULES = {"constant": "constant:0.5", "reference": "reference",
             "geometric": "geometric:1.0,0.05", "polynomial": "polynomial:1.0,0.05,1"}
PROBLEMS = {"gaussian": {"prior": "gauss", "likelihood": "gaussian", "y": 0.7, "sigma": 0.5},
            "logistic": {"prior": "bimodal", "likelihood": "logistic", "y": 1.0, "lam": 0.4}}
# DPS's zeta' grid: the best zeta' scales about like 1/T (T = the budget), so the grid spans
# the budgets' range; fast mode runs FAST_ZETAS (the summary stores the grid run and whether
# each budget's best zeta' lies at its edge)
ZETAS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
FAST_ZETAS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def configs(fast: bool):
    # fast mode: fewer samples and budgets, refinement target 1e-3 with one halving at most
    # (n = 2000 chains in fast mode put one of the 8 checks 2.5 CI half-widths off, by chance:
    # 40000 chains of another seed gave 0.1800 [0.1765, 0.1843] against the grid law's 0.18075)
    n = 20000 if fast else 100000
    target = (1e-3, 1) if fast else (1e-4, 3)
    budgets = (64, 128, 256) if fast else (32, 64, 128, 256, 512, 1024, 2048)
    zetas = FAST_ZETAS if fast else ZETAS
    out = []
    for p, lk in PROBLEMS.items():
        for s in SCHEDULES:        # the exact-sub-sampler limit: one point per schedule
            out.append({"problem": p, **lk, "method": "exact-limit",
                        "schedule": SCHEDULES[s], "label": s})
        for B in budgets:
            for s in SCHEDULES:
                out.append({"problem": p, **lk, "method": "dpnp", "schedule": SCHEDULES[s],
                            "label": s, "budget": B, "n": n, "seed": 0,
                            "target": target[0], "max_halvings": target[1]})
            for z in zetas:
                out.append({"problem": p, **lk, "method": "dps", "zeta": z, "label": "DPS",
                            "budget": B, "target": target[0], "max_halvings": target[1]})
    # the exact grid laws checked against real chains (binned TV)
    lk = PROBLEMS[CHAIN_CHECKS]
    for B in budgets:
        for s in SCHEDULES:
            out.append({"problem": CHAIN_CHECKS, **lk, "method": "dpnp-chains",
                        "schedule": SCHEDULES[s], "label": s, "budget": B, "n": n, "seed": 0})
    return out


# problem whose DPnP grid laws (MALA PCS, level grids) are checked against n real chains, at
# every schedule and budget
CHAIN_CHECKS = "logistic"


def _grid(prior, lik):
    return Grid1D(prior, lik, eta_max=1.0, eta_min=0.05, lo=-6.0, hi=6.0)


def exact_limit(cfg):
    """TV(law x_K, posterior) of a schedule with exact sub-samplers (grid laws, no sampling),
    with its error by refinement (h against 2h)."""
    prior, lik = problem(cfg)
    etas = parse_annealing(cfg["schedule"], K).etas
    fine, _, err = grid_refinement(prior, lik, etas, "standard-normal", with_rates=False)
    g = _grid(prior, lik)
    return {"value": fine.tv_post[-1], "error": err["tv_post"][-1] + 1e-12,
            "method": f"grid Gibbs kernel laws (h = {fine.info['h']:.4g}), error by refinement",
            **law_moments(fine.x, fine.laws[-1]),
            "posterior": law_moments(g.x, g.posterior())}


def _exact(value, error, calls, method, law=None):
    out = {"value": value, "lower": max(value - error, 0.0), "upper": value + error,
           "error": error, "floor_q95": None, "below_floor": False, "ks_lower": None,
           "score_calls": calls, "method": method}
    if law is not None:
        out.update(law_moments(*law))
    return out


def law_moments(x, mass) -> dict:
    """Mean and variance of a grid law (point masses ``mass`` on the nodes ``x``)."""
    x, m = np.asarray(x, float), np.asarray(mass, float)
    m = m / m.sum()
    mean = float(x @ m)
    return {"mean": mean, "var": float(((x - mean) ** 2) @ m)}


def compute(cfg):
    if cfg["method"] == "exact-limit":
        return exact_limit(cfg)
    prior, lik = problem(cfg)
    tgt = {"target": cfg.get("target"), "max_halvings": cfg.get("max_halvings", 0)}
    if cfg["method"] == "dps":
        fine, err = dps_grid_refinement(prior, lik, T=cfg["budget"], zeta=cfg["zeta"], **tgt)
        return _exact(fine["tv_post"][0], err["tv_post"][0], cfg["budget"],
                      f"DPS grid law (dps_grid, h = {err['levels'][0]:.3g}), error by "
                      "refinement", law=(fine["x"], fine["law"]))
    sched = parse_annealing(cfg["schedule"], K)
    s = cfg["budget"] // sched.K - 1
    if s < 1:
        raise ValueError(f"budget {cfg['budget']} too small for K = {sched.K}")
    if cfg["method"] == "dpnp":
        lin = lik.linear_gaussian
        pcs = PCSConfig("exact") if lin else PCSConfig("mala", 100)
        fine, err = dpnp_grid_refinement(prior, lik, sched.etas, pcs, DDSConfig("sde", s),
                                         level_grids=True, **tgt)
        return _exact(fine["tv_post"][-1], err["tv_post"][-1], sched.K * (s + 1),
                      f"DPnP grid law (dpnp_grid, PCS {pcs.method}"
                      + ("" if lin else f"({pcs.n_steps})") + " on level grids"
                      + f", h = {err['levels'][0]:.3g}), error by refinement + mass lost",
                      law=(fine["x"], fine["laws"][-1]))
    # the cross-checks: n real chains, binned TV
    grid = _grid(prior, lik)
    post = grid.posterior()
    g = torch.Generator().manual_seed(cfg["seed"])
    x0 = init_samples("standard-normal", prior, cfg["n"], g)
    res = run_dpnp(prior, lik, sched, x0, pcs=PCSConfig("mala", 100), dds=DDSConfig("sde", s),
                   generator=g, keep=False)
    est = binned_tv(res.final[:, 0], grid.x, post, seed=cfg["seed"])
    return {**est.to_dict(), "score_calls": res.score_calls}


def summarise(records, fast: bool) -> dict:
    curves, limits, checks = {}, {}, []
    for r in records:
        c = r["config"]
        if c["method"] == "exact-limit":
            limits[(c["problem"], c["label"])] = r["result"]
            continue
        if c["method"] == "dpnp-chains":
            checks.append({"problem": c["problem"], "label": c["label"],
                           "budget": c["budget"], "n": c["n"], "chains": r["result"]})
            continue
        res = dict(r["result"], zeta=c.get("zeta"))
        curves.setdefault((c["problem"], c["label"]), []).append((c["budget"], res))
    zetas = sorted({c["zeta"] for c in (r["config"] for r in records)
                    if c["method"] == "dps"})                  # the grid actually run
    for key in [k for k in curves if k[1] == "DPS"]:    # best zeta' per budget
        best, run = {}, {}
        for B, res in curves[key]:
            run.setdefault(B, set()).add(res["zeta"])
            if B not in best or res["value"] < best[B]["value"]:
                best[B] = res
        for B, res in best.items():
            # DPS at its best is min over zeta' of TV(zeta'): it lies in [min of the lower
            # ends, min of the upper ends], however wide the interval of a zeta' the grid did
            # not resolve; the zeta' whose interval reaches below the chosen value could be
            # the best one
            others = [q for b, q in curves[key] if b == B]
            res["lower"] = min(q["lower"] for q in others)
            res["upper"] = min(q["upper"] for q in others)
            res["could_be_best"] = sorted(q["zeta"] for q in others
                                          if q["zeta"] != res["zeta"] and q["lower"] < res["value"])
        for B, res in best.items():     # the best zeta' at an end of the grid run: not tuned
            z = sorted(run[B])
            res["zeta_edge"] = ("low" if res["zeta"] == z[0] else
                                "high" if res["zeta"] == z[-1] else None) if len(z) > 1 \
                else "only"
        curves[key] = list(best.items())
    out = []
    for (p, lab), pts in curves.items():
        pts.sort(key=lambda q: q[0])
        out.append({"problem": p, "label": lab, "budget": [q[0] for q in pts],
                    "score_calls": [q[1]["score_calls"] for q in pts],
                    "tv": [q[1]["value"] for q in pts], "lower": [q[1]["lower"] for q in pts],
                    "upper": [q[1]["upper"] for q in pts],
                    "floor_q95": [q[1]["floor_q95"] for q in pts],
                    "below_floor": [q[1]["below_floor"] for q in pts],
                    "ks_lower": [q[1]["ks_lower"] for q in pts],
                    "zeta": [q[1]["zeta"] for q in pts],
                    "zeta_edge": [q[1].get("zeta_edge") for q in pts],
                    "could_be_best": [q[1].get("could_be_best", []) for q in pts],
                    "mean": [q[1].get("mean") for q in pts],
                    "var": [q[1].get("var") for q in pts],
                    "exact_subsampler_limit": (limits[(p, lab)]["value"]
                                               if (p, lab) in limits else None),
                    "exact_subsampler_limit_error": (limits[(p, lab)]["error"]
                                                     if (p, lab) in limits else None),
                    "exact_subsampler_limit_moments": (
                        {k: limits[(p, lab)].get(k) for k in ("mean", "var")}
                        if (p, lab) in limits else None)})
    posterior = {c["problem"]: r["result"]["posterior"] for r in records
                 for c in [r["config"]] if c["method"] == "exact-limit"
                 and "posterior" in r["result"]}
    for chk in checks:       # the grid-law point the chains check
        cur = next(c for c in out if c["problem"] == chk["problem"]
                   and c["label"] == chk["label"])
        i = cur["budget"].index(chk["budget"])
        g = {"value": cur["tv"][i], "lower": cur["lower"][i], "upper": cur["upper"][i],
             "error": cur["upper"][i] - cur["tv"][i]}
        ch = chk.pop("chains")
        chk.update(grid_law=g, value=ch["value"], lower=ch["lower"], upper=ch["upper"],
                   floor_q95=ch["floor_q95"], below_floor=ch["below_floor"])
        chk["agree"] = bool(chk["lower"] <= g["upper"] and g["lower"] <= chk["upper"])
    return {"K": K, "schedules": SCHEDULES, "zetas": zetas, "curves": out,
            "posterior_moments": posterior, "sample_cross_checks": checks}


def figure(summary, figures_dir="figures"):
    probs = list(PROBLEMS)
    fig, axes = new_figure(1, len(probs), figsize=(6.8 * len(probs), 5.0))
    cols, marks = schedule_styles()
    ylims, right_labels, n_chains = {}, {}, None
    for ax, p in zip(axes[0], probs):
        fl, xs, dotted = None, None, False
        bs = sorted({b for c in summary["curves"] if c["problem"] == p for b in c["budget"]})
        x_end = bs[-1] * _LINE_END          # the dotted lines end here, labelled beyond
        right_labels[p] = []
        to_bottom = []
        for c in [c for c in summary["curves"] if c["problem"] == p]:
            col = cols[c["label"]]
            # the curves staggered 3% apart in budget, so that markers at one budget stay
            # apart (the budgets are the ticks)
            x = np.asarray(c["budget"], float) * _STAGGER.get(c["label"], 1.0)
            y = np.asarray(c["tv"], float)
            lo, hi = np.asarray(c["lower"], float), np.asarray(c["upper"], float)
            exact = c["floor_q95"][0] is None
            below = np.asarray(c["below_floor"], bool)
            style = marks[c["label"]] + ("--" if c["label"] == "DPS" else "-")
            name = c["label"] if c["label"] == "DPS" else f"DPnP {c['label']}"
            ax.plot(x, y, style[1:], color=col, lw=1.2)
            ax.plot([], [], style, color=col, lw=1.2, ms=4,
                    label=name + (" (grid law)" if exact else " (binned TV, n samples)"))
            edge = np.asarray([e in ("low", "high") for e in c.get("zeta_edge") or
                               [None] * len(x)], bool)
            full = ~below & ~edge
            ax.plot(x[full], y[full], style[0], color=col, ms=4)
            ax.plot(x[~full], y[~full], style[0], mfc="none", color=col, ms=5)
            if c["label"] == "DPS":
                others = [q for q in summary["curves"] if q["problem"] == p and q is not c]
                maybe = c.get("could_be_best") or [[] for _ in x]
                for xi, yi, z, e, mb in zip(x, y, c["zeta"], edge, maybe):
                    # the label on the side away from the other curves at this budget
                    under = all(yi < _at(q, xi, "tv") for q in others if xi in q["budget"])
                    alt = ("\nor " + ", ".join(f"{v:g}" for v in mb) + "?") if mb else ""
                    ax.annotate(f"ζ′ = {z:g}" + (" (grid end)" if e else "") + alt, (xi, yi),
                                xytext=(0, -7 if under else 6), textcoords="offset points",
                                ha="center", va="top" if under else "bottom", fontsize=7,
                                color=col)
            # an interval reaching 0 (a zeta' the grid did not resolve) runs to the axis
            # bottom, with an arrow there (drawn once the y range is known)
            open_lo = lo <= 0
            ax.errorbar(x, y, yerr=[np.where(open_lo, 0.0, y - lo), hi - y], fmt="none",
                        ecolor=col, capsize=3, lw=1)
            to_bottom += [(xi, yi, col) for xi, yi in zip(x[open_lo], y[open_lo])]
            if c["exact_subsampler_limit"] is not None:
                lim = c["exact_subsampler_limit"]
                # drawn from the left edge to x_end; its name at its right end
                ax.plot([bs[0] / _LEFT_MARGIN, x_end], [lim, lim], ":", color=col, lw=1.1)
                right_labels[p].append((lim, c["label"], col))
                dotted = True
            if not exact:
                fl, xs = np.asarray(c["floor_q95"], float), x
        if dotted:
            ax.plot([], [], ":", color="0.3", lw=1.1,
                    label="same schedule, exact sub-samplers (grid law; named at the right)")
        chks = [q for q in summary.get("sample_cross_checks", []) if q["problem"] == p]
        for chk in chks:
            ax.errorbar([chk["budget"] * 1.07], [chk["value"]],
                        yerr=[[chk["value"] - chk["lower"]], [chk["upper"] - chk["value"]]],
                        fmt="D", mfc="none", color=cols[chk["label"]], ms=4, capsize=2, lw=0.8)
        if chks:
            n_chains = chks[0].get("n", "?")
            ax.plot([], [], "D", mfc="none", color="0.3", ms=4,
                    label=f"DPnP real chains (n = {n_chains}): binned TV, 95% CI")
            bs_c = sorted(set(q["budget"] for q in chks))
            fq = [max(q["floor_q95"] for q in chks if q["budget"] == b) for b in bs_c]
            fl, xs = np.asarray(fq, float), np.asarray(bs_c, float) * 1.07
        # y range from the data (values, intervals, exact-sub-sampler lines, checks); the
        # binned TV's floor shaded only where it comes near them
        vals = [v for c in summary["curves"] if c["problem"] == p
                for v in list(c["tv"]) + list(c["lower"]) + list(c["upper"])
                + ([c["exact_subsampler_limit"]] if c["exact_subsampler_limit"] else [])]
        vals += [v for q in chks for v in (q["value"], q["lower"], q["upper"])]
        lo_d = min(v for v in vals if v > 0)
        hi_d = max(vals)
        if fl is not None and float(fl.max()) >= 0.5 * lo_d:
            lo_d = min(lo_d, float(fl.min()))
            ax.fill_between(xs, 0.7 * lo_d, fl, color="0.6", alpha=0.3, lw=0,
                            label="estimator floor of the chains' binned TV (95% q.)")
        # room above for DPS's zeta' labels (two lines where another zeta' could be best)
        top = 2.2 if any(any(m) for c in summary["curves"] if c["problem"] == p
                         for m in (c.get("could_be_best") or [])) else 1.4
        ylims[p] = (0.7 * lo_d, min(1.0, top * hi_d))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(*ylims[p])
        for xi, yi, col in to_bottom:
            ax.plot([xi, xi], [ylims[p][0] * 1.08, yi], color=col, lw=1)
            ax.plot([xi], [ylims[p][0] * 1.12], "v", color=col, ms=4)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        # at least a twelfth of the axis between labels
        ax.set_yticks(nice_log_ticks(*ylims[p], min_gap=max(
            0.09, float(np.log10(ylims[p][1] / ylims[p][0])) / 12)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(bs)
        # room on the left for the zeta' labels, on the right for the checks and the names
        # of the dotted lines
        # room on the right for the dotted lines' names (about 9% of the axis width), however
        # many decades of budget the axis spans
        span = float(np.log10(bs[-1] / bs[0] * _LEFT_MARGIN))
        right = max(float(np.log10(_RIGHT_MARGIN)),
                    (float(np.log10(_LINE_END * 1.07)) + 0.09 * span) / 0.91)
        ax.set_xlim(bs[0] / _LEFT_MARGIN, bs[-1] * 10 ** right)
        ax.set_xlabel("score evaluations per sample (DPnP: K (s+1), DPS: T)")
        ax.set_ylabel("TV(output law, posterior)")
        lk = ("prior N(0, 1), Gaussian y = 0.7, σ = 0.5; PCS exact (no chain check needed)"
              if p == "gaussian" else
              "bimodal prior, 1-bit logistic y = +1, λ = 0.4; PCS MALA(100), checked by chains")
        ax.set_title(f"d = 1, {lk}\n{_ranking_line(summary, p)}", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        panel_legend(ax, ncol=2)
    outcome = "; ".join(f"{_PROBLEM_NAMES.get(p, p)} problem: "
                        f"{claim_verdict(summary, p).split(':')[0]}" for p in probs)
    fig.suptitle("Claim checked: a diminishing ηₖ brings DPnP closer to the posterior than a "
                 f"constant η, while DPS keeps a bias (Xu & Chi 2024). {outcome}"
                 "\nTV to the exact posterior "
                 f"at equal score evaluations; DPnP with K = {summary['K']} outer steps, DDS = "
                 "reverse SDE", fontsize=10)
    add_caption(fig, _caption(summary, n_chains))
    fig.canvas.draw()                    # the layout settled: the labels' spacing in points
    for ax, p in zip(axes[0], probs):
        _label_right_ends(ax, right_labels[p], x_end=max(
            b for c in summary["curves"] if c["problem"] == p for b in c["budget"]) * _LINE_END)
    return save_figure(fig, f"{figures_dir}/dpnp_annealing.png")


_LEFT_MARGIN = 1.3
_LINE_END = 1.13          # the dotted lines end at this factor beyond the last budget
_RIGHT_MARGIN = 1.55


def nice_log_ticks(lo, hi, min_gap=0.09):
    """Ticks at 1, 1.5, 2, 3, 4, 5, 7 times the powers of ten inside [lo, hi], at least
    ``min_gap`` decades apart (so that a short log axis, e.g. 0.11-0.6, still has labels
    at 0.15, 0.2, 0.3, 0.4, 0.5)."""
    out = []
    for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1):
        for m in (1, 1.5, 2, 3, 4, 5, 7):
            t = float(f"{m * 10.0 ** e:.6g}")
            if lo <= t <= hi and (not out or np.log10(t / out[-1]) >= min_gap - 1e-9):
                out.append(t)
    return out


def _spread(ys, gap):
    """Label positions (log10 units) for the sorted values ``ys``: each as near its value as
    a spacing of at least ``gap`` allows (clusters of crowded labels centred on their
    values' mean)."""
    clusters = [[y] for y in sorted(ys)]
    while True:
        pos = []
        for cl in clusters:
            mid = float(np.mean(cl))
            pos.append([mid + (i - (len(cl) - 1) / 2) * gap for i in range(len(cl))])
        merged = False
        for i in range(len(clusters) - 1):
            if pos[i + 1][0] - pos[i][-1] < gap - 1e-12:
                clusters[i:i + 2] = [clusters[i] + clusters[i + 1]]
                merged = True
                break
        if not merged:
            return [q for cl in pos for q in cl]


def _label_right_ends(ax, items, x_end):
    """Name each dotted exact-sub-sampler line at its right end, in its colour (darkened
    where pale); labels too close to read apart are staggered, with a thin leader line."""
    if not items:
        return
    items = sorted(items)
    fig = ax.figure
    lo, hi = ax.get_ylim()
    px_per_dec = ax.get_window_extent().height / np.log10(hi / lo)
    gap = 1.25 * 7 * fig.dpi / 72 / px_per_dec            # 7-pt text, 1.25 line spacing
    pos = _spread([np.log10(v) for v, _, _ in items], gap)
    x_lab = x_end * 1.07
    texts = []
    for (v, name, col), q in zip(items, pos):
        yl = 10 ** q
        dark = _legible(col)
        if abs(q - np.log10(v)) > 0.15 * gap:
            ax.plot([x_end, x_end * 1.055], [v, yl], "-", color=dark, lw=0.6)
        texts.append(ax.text(x_lab, yl, name, ha="left", va="center", fontsize=7, color=dark))
    # widen the axis on the right until the longest name fits inside it (the margin set from
    # the budgets' span is too narrow when the axis spans many decades: full mode's 32-2048)
    for _ in range(3):
        fig.canvas.draw()
        box = ax.get_window_extent()
        ends = [t.get_window_extent() for t in texts]
        if box.x1 - max(e.x1 for e in ends) >= 3.0:
            break
        # the name's share f of the axis width (plus a 4 px gap) left of the new right end
        f = (max(e.width for e in ends) + 4.0) / box.width
        lo_x = float(np.log10(ax.get_xlim()[0]))
        ax.set_xlim(10 ** lo_x, 10 ** ((np.log10(x_lab) - f * lo_x) / (1.0 - f)))


def _legible(rgba):
    """A text colour of a (pale) shade: darkened to a luminance of at most 0.45."""
    from matplotlib.colors import to_rgb
    r, g, b = to_rgb(rgba)
    k = min(1.0, 0.45 / max(0.299 * r + 0.587 * g + 0.114 * b, 1e-9))
    return (r * k, g * k, b * k)


_PROBLEM_NAMES = {"gaussian": "Gaussian", "logistic": "logistic"}


def _ranking_line(summary, p) -> str:
    """The panel's second title line: the ranking at the largest budget and the verdict."""
    rk = ranking(summary, p)
    order = "".join(f"{r['label']}" + ("" if "separated_from_next" not in r else
                                       " < " if r["separated_from_next"] else " ~ ")
                    for r in rk["rows"])
    v = claim_verdict(summary, p)
    return f"at {rk['budget']} calls: {order}: claim " + v.split(":")[0]


def schedule_key(summary) -> str:
    """The caption's key of the annealing schedules eta_k, from their parsed parameters."""
    K = summary["K"]
    out = []
    for label, spec in summary["schedules"].items():
        a = parse_annealing(spec, K=K)
        q = a.params
        if a.name == "constant":
            out.append(f"constant η = {q['eta']:g}")
        elif a.name == "reference":
            out.append(f"reference (the official DPnP code's) η = {q['eta_max']:g} for "
                       f"{q['k_start']} steps, then log-spaced to {q['eta_min']:g} over "
                       f"{q['k']}")
        elif a.name == "geometric":
            out.append(f"geometric, log-spaced {q['eta_max']:g} → {q['eta_min']:g}")
        elif a.name == "polynomial":
            power = superscript(f"{-q['power']:g}")
            out.append(f"polynomial {q['eta_max']:g}·(1 + j){power} at "
                       f"step j, floored at {q['eta_min']:g}")
        else:
            out.append(f"{label}: η = " + ", ".join(f"{e:.2g}" for e in a.etas))
    return f"Schedules ηₖ over the K = {K} outer steps: " + "; ".join(out) + "."


def _caption(summary, n_chains) -> str:
    zs = ", ".join(f"{z:g}" for z in summary["zetas"])
    errs = [c["exact_subsampler_limit_error"] for c in summary["curves"]
            if c.get("exact_subsampler_limit_error") is not None]
    m, e = f"{max(errs):.0e}".split("e")
    # the caption keys only the DPS marks that this figure draws
    dps = [c for c in summary["curves"] if c["label"] == "DPS"]
    at_edge = any(e in ("low", "high") for c in dps for e in c.get("zeta_edge") or [])
    to_zero = any(v is not None and v <= 0 for c in dps for v in c.get("lower") or [])
    could_be = any(mb for c in dps for mb in c.get("could_be_best") or [])
    dps_marks = ["labelled"] + (["hollow if at the grid's end"] if at_edge else [])
    bar = ("its bar runs from the smallest lower to the smallest upper end over ζ′"
           + (" (an arrow: down to 0)" if to_zero else "")
           + (", so a ζ′ the grid did not resolve widens it: \"or ζ′?\" names such a ζ′ "
              "that could be the best" if could_be else ""))
    lines = [(f"Curves: exact grid laws (DPnP staggered 3% in budget), bars: refinement error "
              f"+ lost mass; DPS at its best ζ′ of {{{zs}}} ({'; '.join(dps_marks)}; {bar}); "
              f"dotted: each schedule with exact sub-samplers (grid law, error "
              f"≤ {m}×10{superscript(int(e))}, narrower than the line), named at its right "
              "end. < : intervals apart, ~ : overlapping."), schedule_key(summary)]
    if n_chains is not None:
        lines.append(f"Diamonds: n = {n_chains} real DPnP chains per schedule and budget "
                     "checking the grid laws (binned TV, 95% bootstrap CI), on the logistic "
                     "problem, whose PCS is MALA; the Gaussian problem's PCS is exact, so its "
                     "grid law needs no chain check.")
    notes = []
    for p in PROBLEMS:
        parts = []
        v = claim_verdict(summary, p)
        if v != "met":
            parts.append(f"claim {v}")
        qs = [q for q in cancellation(summary, p) if q["variance_explains"]]
        if qs:
            parts.append(f"below the dotted lines the DDS's finite steps shrink the variance "
                         f"({qs[0]['label']}: {qs[0]['var']:.3f} against "
                         f"{qs[0]['limit_var']:.3f} exact, posterior "
                         f"{qs[0]['posterior_var']:.3f})")
        st = settled(summary, p)
        if st:
            parts.append(f"at budget {st['budget']} DPnP is within {_percent(st['worst'])} of its "
                         f"exact-sub-sampler limit, so the error left is the schedule's "
                         f"(K = {summary['K']}), not the budget's")
        if parts:
            notes.append(f"{p.capitalize()}: " + "; ".join(parts))
    if notes:
        lines.append(".  ".join(notes) + "." + _fast_note(summary))
    elif _fast_note(summary):
        lines.append(_fast_note(summary).strip())
    return "\n".join(lines)


_STAGGER = {"constant": 0.955, "reference": 0.985, "geometric": 1.015, "polynomial": 1.045}


def claim_verdict(summary, problem) -> str:
    """At the largest budget, from the intervals: every diminishing schedule below the constant
    one, and DPS above the best DPnP schedule ("met" when each holds with the intervals
    apart); "not met" names what the intervals contradict (a schedule above constant, DPS
    below every DPnP schedule); "not resolved" names what overlapping intervals leave open
    (e.g. DPS at its best where a zeta' the grid did not resolve could be lower)."""
    rk = ranking(summary, problem)
    row = {r["label"]: r for r in rk["rows"]}
    if "constant" not in row:
        return "no constant schedule"
    const = row["constant"]
    dim = [s for s in SCHEDULES if s != "constant" and s in row]
    above = [s for s in dim if row[s]["lower"] > const["upper"]]
    open_ = [f"{s} against constant (intervals overlap)" for s in dim
             if s not in above and not row[s]["upper"] < const["lower"]]
    if "DPS" in row:
        best = min((row[s] for s in dim + ["constant"]), key=lambda r: r["tv"])
        dps = row["DPS"]
        dps_best = dps["upper"] < best["lower"]
        if not dps_best and not dps["lower"] > best["upper"]:
            open_.append("DPS (its interval reaches 0)" if dps["lower"] <= 0
                         else f"DPS against {best['label']} (intervals overlap)")
    else:
        dps_best = False
    parts = []
    if above:
        parts.append(", ".join(above) + " above constant")
    if dps_best:
        parts.append("DPS below every DPnP schedule")
    if parts:
        return "not met: " + "; ".join(parts)
    if open_:
        return "not resolved: " + ", ".join(open_)
    return "met"


#: the DPnP schedules in greens of the split-Gibbs family (as DPnP in the posterior
#: benchmark), dark to light-yellow-green so that any two stay told apart (CIE76 >= 32)
SCHEDULE_COLOURS = ("#00441b", "#238b45", "#41b6a0", "#b5d33c")


def schedule_styles():
    """Colours and markers: DPS in its posterior-benchmark colour (the guidance family's),
    the DPnP schedules in the split-Gibbs family's greens (:data:`SCHEDULE_COLOURS`), told
    apart by shade and marker."""
    from .posterior_benchmark import method_styles
    cols = dict(zip(SCHEDULES, SCHEDULE_COLOURS))
    marks = dict(zip(SCHEDULES, ("o", "s", "^", "D")))
    cols["DPS"], marks["DPS"] = method_styles()["dps"][0], "X"
    return cols, marks


def _for_schedules(qs) -> str:
    """``for every schedule`` or ``for the geometric and polynomial schedules``."""
    names = [q["label"] for q in qs]
    if set(names) >= set(SCHEDULES):
        return "for every schedule"
    return f"for the {and_list(names)} schedule" + ("s" if len(names) > 1 else "")


def _sparse_label(v, _):
    """Minor log ticks labelled at 2 and 5 times a power of ten only (the rest crowd)."""
    m = v / 10 ** np.floor(np.log10(v) + 1e-9)
    return f"{v:g}" if min(abs(m - 2), abs(m - 5)) < 1e-6 else ""


def _fast_note(summary) -> str:
    if not summary.get("fast"):
        return ""
    bs = sorted({b for c in summary["curves"] for b in c["budget"]})
    return f" Fast mode: budgets {', '.join(map(str, bs))} only."


def _percent(x) -> str:
    """A fraction as a percentage to two significant digits (0.087 -> '8.7%', 0.0031 ->
    '0.31%'), never a '0%' for a gap that is not zero."""
    return f"{100 * x:.2g}%"


def settled(summary, problem, tol=0.1):
    """Whether every DPnP schedule's TV at the largest budget lies within ``tol`` (relative)
    of its exact-sub-sampler limit: then the remaining error is the annealing schedule's, and
    more score evaluations per outer step cannot remove it. ``{"worst": max relative gap,
    "budget": the largest budget, where it was measured}`` or None."""
    gaps, budgets = [], []
    for c in summary["curves"]:
        if c["problem"] != problem or c["label"] == "DPS":
            continue
        lim = c.get("exact_subsampler_limit")
        if lim is None:
            return None
        gaps.append(abs(_at(c, max(c["budget"]), "tv") - lim) / lim)
        budgets.append(max(c["budget"]))
    if not gaps or max(gaps) > tol:
        return None
    return {"worst": max(gaps), "budget": max(budgets)}


def _at(c, B, key):
    return c[key][c["budget"].index(B)]


def ranking(summary, problem) -> dict:
    """At the problem's largest budget: the curves ordered by TV, and for each neighbour pair
    whether their intervals separate (grid laws: refinement errors; binned: 95% CIs)."""
    cs = [c for c in summary["curves"] if c["problem"] == problem]
    B = max(max(c["budget"]) for c in cs)
    rows = sorted(({"label": c["label"], "tv": _at(c, B, "tv"), "lower": _at(c, B, "lower"),
                    "upper": _at(c, B, "upper")} for c in cs if B in c["budget"]),
                  key=lambda r: r["tv"])
    for a, b in zip(rows, rows[1:]):
        a["separated_from_next"] = bool(a["upper"] < b["lower"])
    return {"budget": B, "rows": rows}


def cancellation(summary, problem) -> list:
    """Schedules whose inexact-DDS law ends closer to the posterior than the same schedule
    with exact sub-samplers, with the moments that say why: the finite-step reverse SDE's
    variance against the exact-sub-sampler law's and the posterior's. ``variance_explains``:
    the variance moves toward the posterior's by more than twice the fraction the mean does
    (else both moments move alike, as with the bimodal law whose variance is its mode
    weights', and the variance alone says nothing)."""
    post = summary.get("posterior_moments", {}).get(problem)
    out = []
    for c in summary["curves"]:
        if c["problem"] != problem or c["label"] == "DPS" or c.get("exact_subsampler_limit") is None:
            continue
        B = max(c["budget"])
        lim, mom = c["exact_subsampler_limit"], c.get("exact_subsampler_limit_moments") or {}
        if _at(c, B, "upper") < lim - c["exact_subsampler_limit_error"] and \
                _at(c, B, "var") is not None and mom.get("var") is not None and post:
            q = {"label": c["label"], "budget": B, "tv": _at(c, B, "tv"), "limit": lim,
                 "var": _at(c, B, "var"), "limit_var": mom["var"],
                 "posterior_var": post["var"], "mean": _at(c, B, "mean"),
                 "limit_mean": mom["mean"], "posterior_mean": post["mean"]}
            q["variance_explains"] = bool(_closer(q, "var") > 2 * max(_closer(q, "mean"), 0.0))
            out.append(q)
    return out


def _closer(q, k):
    """The fraction of the exact-sub-sampler law's distance to the posterior in moment k
    (mean or var) that the inexact-DDS law removes."""
    d0 = abs(q[f"limit_{k}"] - q[f"posterior_{k}"])
    return (d0 - abs(q[k] - q[f"posterior_{k}"])) / d0 if d0 > 0 else 0.0


#: What each schedule's label means, for the reading (the docstring's paragraph on them).
SCHEDULE_KEY = ("Schedules, K = 16 outer steps: constant eta = 0.5; reference, the authors' "
                "code's (0.4 for 5 steps, then geometric down to 0.16 over the other 11); "
                "geometric "
                "1.0 -> 0.05; polynomial 1.0 (1+k)^-1 floored at 0.05. TV to the posterior, "
                "exact grid laws with their refinement intervals.")


def reading(summary) -> str:
    lines = [SCHEDULE_KEY]
    for p in PROBLEMS:
        rk = ranking(summary, p)
        parts = []
        for r in rk["rows"]:
            sep = "" if "separated_from_next" not in r else (
                " <" if r["separated_from_next"] else " ~")
            parts.append(f"{r['label']} {format_estimate(r['tv'], r['lower'], r['upper'])}{sep}")
        lines.append(f"{p}, budget {rk['budget']} (< : intervals apart, ~ : overlapping): "
                     + " ".join(parts) + f"; claim: {claim_verdict(summary, p)}.")
        st = settled(summary, p)
        if st:
            lines.append(f"{p}: at budget {st['budget']} every DPnP schedule is within "
                         f"{_percent(st['worst'])} of its "
                         "exact-sub-sampler limit, so its remaining TV is the annealing "
                         f"schedule's (K = {summary['K']} outer steps), which a larger budget "
                         "per step cannot remove.")
        dps = [c for c in summary["curves"] if c["problem"] == p and c["label"] == "DPS"]
        for c in dps:
            ends = [(b, z, e) for b, z, e in zip(c["budget"], c["zeta"],
                                                 c.get("zeta_edge") or []) if e in ("low", "high")]
            if ends:
                lines.append(f"{p}: DPS's best zeta' lies at the {ends[0][2]} end of the grid "
                             "run at budget " + ", ".join(f"{b} (zeta' = {z:g})" for b, z, _ in ends)
                             + ": its TV there is an upper bound on DPS at its best.")
        allq = cancellation(summary, p)
        qs = [q for q in allq if q["variance_explains"]]
        other = [q for q in allq if not q["variance_explains"]]
        if other:
            lines.append(
                f"{p}: at budget {other[0]['budget']}, {_for_schedules(other)}, the "
                "reverse-SDE DDS ends closer to the "
                "posterior than the same schedule with exact sub-samplers ("
                + ", ".join(f"{q['label']} TV {q['tv']:.4f} vs {q['limit']:.4f}, mean "
                            f"{q['mean']:.4f} vs {q['limit_mean']:.4f}, variance {q['var']:.4f}"
                            f" vs {q['limit_var']:.4f}" for q in other)
                + f"; posterior mean {other[0]['posterior_mean']:.4f}, variance "
                f"{other[0]['posterior_var']:.4f}): both moments move toward the posterior's "
                "by similar fractions, so neither alone explains it.")
        if qs:
            pairs = lambda k1, k2: ", ".join(f"{q['label']} {q[k1]:.4f} vs {q[k2]:.4f}"  # noqa: E731
                                             for q in qs)
            lines.append(
                f"{p}: at budget {qs[0]['budget']}, {_for_schedules(qs)}, "
                f"the reverse-SDE DDS ends closer to the posterior than the same schedule with "
                f"exact sub-samplers (TV {pairs('tv', 'limit')}). Its finite steps shrink the "
                f"output variance ({pairs('var', 'limit_var')} with exact sub-samplers, whose "
                f"last eta inflates it; posterior {qs[0]['posterior_var']:.4f}), so the two "
                f"errors partly cancel. The mean ({pairs('mean', 'limit_mean')}; posterior "
                f"{qs[0]['posterior_mean']:.4f}) is the schedule's either way.")
    checks = summary.get("sample_cross_checks", [])
    agreeing = [c for c in checks if c["agree"]]
    if len(agreeing) > 1:     # one line for the checks that agree, each disagreement its own
        gap = max(abs(c["value"] - c["grid_law"]["value"]) for c in agreeing)
        err = max(c["grid_law"]["error"] for c in agreeing)
        lines.append(f"cross-checks against real chains: {len(agreeing)} of {len(checks)} "
                     "binned TVs agree with their exact grid laws ("
                     + and_list(sorted({c['problem'] for c in agreeing})) + " problem; largest "
                     f"difference {gap:.4f}, grid laws' refinement errors at most {err:.1e}).")
        checks = [c for c in checks if not c["agree"]]
    for chk in checks:
        g = chk["grid_law"]
        lines.append(f"cross-check ({chk['problem']}, {chk['label']}, budget {chk['budget']}): "
                     f"binned TV of the chains {chk['value']:.4f} [{chk['lower']:.4f}, "
                     f"{chk['upper']:.4f}] against the exact grid law {g['value']:.6f} "
                     f"(error {g['error']:.1e}): "
                     + ("agree" if chk["agree"] else "DISAGREE") + ".")
    return "\n".join(lines)
