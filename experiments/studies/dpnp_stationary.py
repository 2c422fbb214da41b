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
import seaborn as sns
import torch

from theory.figures import new_figure, save_figure
from theory.posterior.likelihoods import make_likelihood, make_operator
from theory.posterior.refinement import grid_refinement
from theory.priors import make_prior

NAME = "dpnp-stationary"
NORMALISE = None
SINGLE_THREAD = True
PROBLEMS = {"gaussian": {"likelihood": "gaussian", "y": 0.7, "sigma": 0.5},
            "logistic": {"likelihood": "logistic", "y": 1.0, "lam": 0.4},
            # d = 2, a random mixing operator (condition number 3): the 2-D grid engine
            "gaussian-2d": {"likelihood": "gaussian", "y": [0.7, -0.4], "sigma": 0.5, "d": 2,
                            "operator": "random", "cond": 3.0, "operator_seed": 0}}
ETAS = {"fast": {"gaussian-2d": (1.0, 1.4)}, "full": {"gaussian-2d": (0.7, 1.0, 1.4, 2.0)}}


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


def summarise(records, fast: bool) -> dict:
    rates = [{"problem": r["config"]["problem"], "eta": r["config"]["eta"],
              "exact_rate": r["result"]["rate"], "measured_rate": r["result"]["measured_rate"],
              "fit_k": r["result"]["fit_k"],
              "rel_diff": (None if r["result"]["measured_rate"] is None else
                           abs(r["result"]["measured_rate"] / r["result"]["rate"] - 1))}
             for r in records]
    return {"rates": rates,
            "records": [{"config": r["config"], "result": r["result"]} for r in records]}


def figure(summary, figures_dir="figures"):
    probs = list(PROBLEMS)
    fig, axes = new_figure(1, len(probs), figsize=(5.2 * len(probs), 3.8))
    for ax, p in zip(axes[0], probs):
        recs = [r for r in summary["records"] if r["config"]["problem"] == p]
        cols = sns.color_palette("colorblind", len(recs))
        for r, col in zip(recs, cols):
            res, e = r["result"], r["config"]["eta"]
            tv = np.asarray(res["tv_pi"])
            k = np.arange(1, tv.size + 1)
            keep = tv > 1e-13
            mr = res["measured_rate"]
            ax.semilogy(k[keep], tv[keep], "o", ms=3, color=col,
                        label=f"eta={e:g}: lambda2={res['rate']:.4f}, measured "
                              + ("-" if mr is None else f"{mr:.4f}"))
            # exact rate line through the last point above rounding
            j = int(np.nonzero(keep)[0][-1])
            ax.semilogy(k[keep], tv[j] * res["rate"] ** (k[keep] - k[j]), "-", lw=0.9,
                        color=col, alpha=0.7)
        ax.set_xlabel("outer step k")
        ax.set_ylabel("TV(law x_k, pi_eta)")
        cfg = recs[0]["config"]
        lik = (f"gaussian y={cfg['y']}, sigma={cfg['sigma']}" if cfg["likelihood"] == "gaussian"
               else f"1-bit logistic y=+1, lambda={cfg['lam']}")
        d = cfg.get("d", 1)
        where = "" if d == 1 else f", A random (cond {cfg['cond']:g}), 2-D grid"
        ax.set_title(f"bimodal d={d}, {lik}{where}", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=6.5)
    fig.suptitle("DPnP with exact PCS/DDS: exact TV to pi_eta (dots, grid Gibbs kernel) and "
                 "C lambda_2^k (lines, second eigenvalue of the kernel)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, f"{figures_dir}/dpnp_stationary.png")
