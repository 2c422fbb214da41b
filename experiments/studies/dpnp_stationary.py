"""Experiment ``dpnp-stationary``: TV(law x_k, pi_eta) against the outer step k for fixed eta.

Claim checked (THEORY.md section 6; Xu & Chi, arXiv:2403.17042): with exact PCS and DDS the
x-chain is a reversible Gibbs chain with stationary law pi_eta and geometric convergence,
TV(law x_k, pi_eta) ~ C lambda_2^k with lambda_2 the second eigenvalue of the kernel.
Problems: bimodal prior (d = 1), Gaussian likelihood (y = 0.7, sigma = 0.5) and the 1-bit
logistic likelihood (y = +1, lambda = 0.4); and in d = 2 the bimodal prior with a Gaussian
likelihood through a random mixing operator (condition number 3), which does not split into
1-D chains; init N(0, I). Laws, distances and lambda_2 are exact grid computations
(theory.posterior.grid1d in 1-D, theory.posterior.grid2d in 2-D), errors by refinement. The measured decay
is the least-squares slope of log TV on k over the second half of the curve.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from theory.figures import (REFERENCE_SHIFT, add_caption, distinct_digits, draw_fit, finish_figure,
                            new_figure, panel_legend, parameter_colours, save_figure, sci,
                            superscript)
from theory.posterior.likelihoods import make_likelihood, make_operator
from theory.posterior.refinement import grid_refinement
from theory.priors import make_prior
from theory.rates import fit_geometric_rate, geometric_rate_drift, geometric_rate_verdict

NAME = "dpnp-stationary"
NORMALISE = None
SINGLE_THREAD = True
PROBLEMS = {"gaussian": {"likelihood": "gaussian", "y": 0.7, "sigma": 0.5},
            "logistic": {"likelihood": "logistic", "y": 1.0, "lam": 0.4},
            # d = 2, a random mixing operator (condition number 3): the 2-D grid engine
            "gaussian-2d": {"likelihood": "gaussian", "y": [0.7, -0.4], "sigma": 0.5, "d": 2,
                            "operator": "random", "cond": 3.0, "operator_seed": 0}}
ETAS = {"fast": {"gaussian-2d": (1.0, 1.4)}, "full": {"gaussian-2d": (0.7, 1.0, 1.4, 2.0)}}
CLAIM = ("Xu & Chi (arXiv:2403.17042): with exact sub-samplers the DPnP x-chain is a reversible "
         "Gibbs chain with stationary law pi_eta and geometric convergence, TV(law x_k, pi_eta) "
         "~ C lambda_2^k, lambda_2 the second eigenvalue of its kernel.")
TV_RESOLVED = 1e-10        # below: rounding of the grid laws, left out of the rate fit


def problem(cfg):
    """Prior (``cfg["prior"]``, default bimodal) and likelihood of a configuration: d = 1
    with A = I, or d = 2 with a random operator (``cond``, ``operator_seed``)."""
    d = cfg.get("d", 1)
    if d == 1:
        A, y = torch.eye(1), [cfg["y"]]
    else:
        A = make_operator(cfg["operator"], d, cond=cfg["cond"],
                          generator=torch.Generator().manual_seed(cfg["operator_seed"]))
        y = cfg["y"]
    lik = make_likelihood(cfg["likelihood"], A, y, sigma=cfg.get("sigma", 0.5),
                          lam=cfg.get("lam", 0.4))
    return make_prior(cfg.get("prior", "bimodal"), d), lik


def configs(fast: bool):
    etas = (0.5, 0.7, 1.0) if fast else (0.4, 0.5, 0.7, 1.0, 1.4)
    K = 25 if fast else 40
    special = ETAS["fast" if fast else "full"]
    return [{**PROBLEMS[p], "problem": p, "eta": e, "K": K, "init": "standard-normal"}
            for p in PROBLEMS for e in special.get(p, etas)]


def _all_etas():
    """Every eta of the fast and the full grid."""
    return sorted({c["eta"] for fast in (True, False) for c in configs(fast)})


ETA_COLOUR_SPAN = (0.0, 0.9)


def eta_colours() -> dict:
    """One colour per eta of either mode (so one eta looks the same in fast and full mode,
    in every panel): viridis over :data:`ETA_COLOUR_SPAN`, whose neighbouring shades stay
    told apart (CIE76 distance >= 24 between any two of the six) and far from every
    sampler's colour; eta is a parameter, never drawn in a sampler's colour."""
    return parameter_colours(_all_etas(), cmap="viridis", span=ETA_COLOUR_SPAN)


def compute(cfg):
    prior, lik = problem(cfg)
    fine, _, err = grid_refinement(prior, lik, [cfg["eta"]] * cfg["K"], cfg["init"])
    e = cfg["eta"]
    tv = np.asarray(fine.tv_pi)
    k = np.arange(1, tv.size + 1)
    ok = tv > 1e-10
    kk, tt = k[ok], tv[ok]
    half = kk.size // 2
    slope = float(np.polyfit(kk[half:], np.log(tt[half:]), 1)[0]) if kk.size - half >= 3 else None
    return {"tv_pi": fine.tv_pi, "err_pi": err["tv_pi"], "tv_post": fine.tv_post,
            "tv_pi_post": fine.tv_pi_post[0], "rate": fine.rates[e], "rate_err": err["rates"][e],
            "measured_rate": None if slope is None else math.exp(slope),
            "fit_k": None if slope is None else [int(kk[half]), int(kk[-1])],
            "grid": fine.info}


def measured_rate(result: dict) -> dict:
    """The geometric rate of TV(law x_k, pi_eta) over the second half of the resolved
    k (TV > TV_RESOLVED), with its 95% interval (:func:`fit_geometric_rate`, error bars
    from refinement)."""
    tv = np.asarray(result["tv_pi"], float)
    err = np.asarray(result["err_pi"], float)
    k = np.arange(1, tv.size + 1)
    ok = np.flatnonzero(tv > TV_RESOLVED)
    k0 = int(k[ok[ok.size // 2]]) if ok.size else None
    lo, hi = tv[ok] - err[ok], tv[ok] + err[ok]
    fit = fit_geometric_rate(k[ok], tv[ok], lo, hi, k_min=k0)
    if "error" not in fit:
        fit["drift"] = geometric_rate_drift(k[ok], tv[ok], lo, hi, fit["k_range"])
    return fit


def summarise(records, fast: bool) -> dict:
    rates, fits = [], []
    for r in records:
        res, cfg = r["result"], r["config"]
        m = measured_rate(res)
        rates.append({"problem": cfg["problem"], "eta": cfg["eta"], "exact_rate": res["rate"],
                      "exact_rate_error": res["rate_err"],
                      "measured_rate": m.get("rate"), "measured_ci": m.get("ci"),
                      "fit_k": m.get("k_range"), "drift": m.get("drift"),
                      "verdict": (None if "rate" not in m else geometric_rate_verdict(
                          m["ci"], res["rate"], res["rate_err"], m.get("drift"))),
                      "rel_diff": (None if "rate" not in m else abs(m["rate"] / res["rate"] - 1))})
        fits.append({"problem": cfg["problem"], "eta": cfg["eta"],
                     "quantity": "lambda in TV ~ C lambda^k",
                     "fit": ({"error": m["error"]} if "error" in m else
                             {"exponent": m["rate"], "ci": m["ci"], "x_range": m["k_range"]}),
                     "theory_exponent": res["rate"]})
    return {"rates": rates, "fits": fits, "fit_range": "second half of the k with TV > 1e-10",
            "records": [{"config": r["config"], "result": r["result"]} for r in records]}


def _eta_sets_note(summary) -> str:
    """Where the panels run different sets of eta, say which (computed from the records)."""
    sets = {}
    for r in summary["records"]:
        sets.setdefault(r["config"]["problem"], set()).add(r["config"]["eta"])
    if len({frozenset(v) for v in sets.values()}) <= 1:
        return ""
    two_d = [p for p in sets if PROBLEMS[p].get("d", 1) == 2]
    return (" The d = 2 problem runs η = " + ", ".join(f"{e:g}" for e in sorted(sets[two_d[0]]))
            + " (its 2-D grids must resolve kernels about η wide: small η costs most there)."
            if two_d else " The panels run different η (each legend lists its own).")


def figure(summary, figures_dir="figures"):
    probs = list(dict.fromkeys(r["config"]["problem"] for r in summary["records"]))
    cols = eta_colours()
    marks = dict(zip(cols, ("o", "s", "^", "D", "v", "P", "X", "*")))   # a second cue
    rates = {(r["problem"], r["eta"]): r for r in summary["rates"]}
    fig, axes = new_figure(1, len(probs), figsize=(5.0 * len(probs), 5.6))
    for ax, p in zip(axes[0], probs):
        recs = sorted((r for r in summary["records"] if r["config"]["problem"] == p),
                      key=lambda r: r["config"]["eta"])
        handles, labels = [], []
        for r in recs:
            res, e = r["result"], r["config"]["eta"]
            col = cols[float(e)]
            tv = np.asarray(res["tv_pi"], float)
            err = np.asarray(res["err_pi"], float)
            k = np.arange(1, tv.size + 1)
            keep = tv > TV_RESOLVED
            lo = np.maximum(tv - err, tv * 1e-3)
            ax.fill_between(k[keep], lo[keep], (tv + err)[keep], color=col, alpha=0.2, lw=0)
            (data,) = ax.semilogy(k[keep], tv[keep], "-", marker=marks[float(e)], ms=3.2,
                                  lw=0.9, color=col)
            m = rates[(p, e)]
            label = f"η = {e:g}: exact λ₂ = {res['rate']:.6f}"
            handle = data
            if m["measured_rate"] is not None:
                k0, k1 = m["fit_k"]
                ks = np.arange(k0, k1 + 1)
                j = int(np.flatnonzero(k == k0)[0])
                draw_fit(ax, ks, tv[j] * m["measured_rate"] ** (ks - k0), style="behind")
                (ref,) = ax.semilogy(ks, REFERENCE_SHIFT * tv[j] * res["rate"] ** (ks - k0),
                                     "--", lw=1.1, color=col)
                handle = (data, ref)
                lo_, hi_ = m["measured_ci"]
                # the interval is far narrower than six digits show: say it by the measured
                # rate's relative distance to the exact one and its half-width
                rel = m["measured_rate"] / res["rate"] - 1
                label += (f"\n    measured / exact − 1 = {sci(rel, 2, sign=True)} (95% CI ± "
                          f"{sci(0.5 * (hi_ - lo_) / res['rate'], 2)}) over k = {k0}–{k1}")
                v = m.get("verdict") or ""
                if v.startswith("consistent within"):
                    # the interval misses lambda_2 by less than the fit's own drift
                    label += f",\n    within the fit's drift ± {sci(m['drift'] / res['rate'], 2)}"
                elif v.startswith("differs"):
                    label += f": {v}"
            if not keep.all() and keep.any():
                label += (f"\n    k > {int(k[keep].max())}: TV < "
                          f"10{superscript(round(np.log10(TV_RESOLVED)))}, not drawn")
            handles.append(handle)
            labels.append(label)
        ax.set_xlabel("outer step k")
        ax.set_ylabel("TV(law xₖ, $\\pi_\\eta$)")
        cfg = recs[0]["config"]
        y = cfg["y"]
        y = f"({', '.join(f'{v:g}' for v in y)})" if isinstance(y, list) else f"{y:g}"
        lik = (f"Gaussian y = {y.replace('-', '−')}, σ = {cfg['sigma']}"
               if cfg["likelihood"] == "gaussian"
               else f"1-bit logistic y = +1, λ = {cfg['lam']}")
        d = cfg.get("d", 1)
        where = "" if d == 1 else f", random A (cond {cfg['cond']:g})"
        ax.set_title(f"bimodal d = {d}, {lik}{where}", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        panel_legend(ax, handles, labels)
    finish_figure(fig, "Claim checked: with exact PCS/DDS the DPnP chain converges to $\\pi_\\eta$ "
                       "geometrically at the rate λ₂ of its Gibbs kernel (Xu & Chi, "
                       "arXiv:2403.17042)")
    add_caption(fig, "Points: exact TV (grid laws; band: refinement error, mostly narrower "
                     "than the markers); wide grey line behind the data: the fitted geometric "
                     "decay over its range; dashed: C λ₂ᵏ with the exact second eigenvalue "
                     f"(shifted ×{REFERENCE_SHIFT:g}). 'Within the fit's drift': the 95% "
                     "interval misses λ₂ by less than the difference between the rates fitted "
                     "over the two halves of the range (the curve still bends toward λ₂ᵏ). "
                     "Colour (a viridis shade, no sampler's) and marker: one per η, the same "
                     "in every panel." + _eta_sets_note(summary))
    return save_figure(fig, f"{figures_dir}/dpnp_stationary.png")


def reading(summary: dict) -> str:
    """How close the measured decay is to the exact lambda_2, computed."""
    ok = [r for r in summary["rates"] if r["measured_rate"] is not None]
    # the exact rate with its refinement error against the measured interval, then the
    # interval widened by the fit's drift (geometric_rate_verdict)
    verdicts = [r.get("verdict") or geometric_rate_verdict(
        r["measured_ci"], r["exact_rate"], r["exact_rate_error"], r.get("drift")) for r in ok]
    inside = sum(v == "consistent" for v in verdicts)
    drifting = sum(v.startswith("consistent within") for v in verdicts)
    worst = max(ok, key=lambda r: r["rel_diff"]) if ok else None
    if worst is None:
        return "No decay could be fitted (fewer than 3 resolved steps)."
    differ = len(ok) - inside - drifting
    more = (f"; in {drifting} more it lies within the fit's drift (the rates fitted over the "
            f"two halves of the range differ by more than the gap: the curve is still bending "
            f"toward lambda_2^k)" if drifting else "")
    more += f"; in {differ} it differs" if differ else ""
    n = max(6, distinct_digits(worst["measured_rate"], worst["exact_rate"]))
    by_problem = {}
    for r in sorted(summary["rates"], key=lambda r: r["eta"]):
        by_problem.setdefault(r["problem"], []).append(r["exact_rate"])
    falling = [p for p, v in by_problem.items() if all(a > b for a, b in zip(v, v[1:]))]
    return (f"In {inside} of {len(ok)} (problem, eta) pairs the exact lambda_2 (within its "
            f"refinement error) lies in the measured rate's 95% interval{more}. The largest "
            f"relative "
            f"difference is "
            f"{worst['rel_diff']:.1e} ({worst['problem']}, eta = {worst['eta']:g}: measured "
            f"{worst['measured_rate']:.{n}g}, exact {worst['exact_rate']:.{n}g}). lambda_2 falls "
            f"as eta grows in {len(falling)} of {len(by_problem)} problems (a larger eta mixes "
            f"faster, at the price of the bias of pi_eta measured by dpnp-eta-bias).")
