"""Experiment ``dpnp-subsampler-error``: the floor that inexact sub-samplers leave.

Claim checked (THEORY.md section 6; Xu & Chi, arXiv:2403.17042): with inexact PCS/DDS,
TV(law x_K, pi_eta) <~ eps lambda-mixing term + (eps_DDS + eps_PCS) log(1/eps)/(1 - lambda);
after the chain has mixed (K = 20 outer steps at eta = 0.7, exact lambda_2 = 0.61, so
lambda_2^K ~ 6e-5) what remains is the floor set by the sub-samplers' own errors, which
shrinks as their steps grow: PCS by ULA (the reference code's unadjusted Langevin) or MALA
(Metropolis-adjusted) with a fixed step h, DDS by the reverse SDE from noise level eta (ddpm
rule) or the posterior probability-flow ODE (ddim rule). Problems: bimodal d = 1 with the
Gaussian likelihood (y = 0.7, sigma = 0.5) and the 1-bit logistic likelihood (y = +1,
lambda = 0.4, eta = 1.0, lambda_2 = 0.63; PCS variants only: no exact PCS exists there,
DDS exact). The Langevin step is h = 0.1 throughout, large enough for ULA's bias to show.

Distances are sample-based (n chains): binned TV against the exact grid pi_eta, with a 95%
basic-bootstrap CI, and the estimator's floor (its value on n exact draws from pi_eta),
drawn as a grey band; points whose value is below the floor's 95% quantile are hollow.
"""
from __future__ import annotations

import numpy as np
import seaborn as sns
import torch

from theory.figures import new_figure, save_figure
from theory.posterior.annealing import make_annealing
from theory.posterior.estimators import binned_tv
from theory.posterior.grid1d import Grid1D
from theory.posterior.inits import init_samples
from theory.posterior.plug_and_play import DDSConfig, PCSConfig, run_dpnp

from .dpnp_stationary import problem

NAME = "dpnp-subsampler-error"
NORMALISE = None
SINGLE_THREAD = True
ETA = {"gaussian": 0.7, "logistic": 1.0}     # exact lambda_2 = 0.613 and 0.633
K = 20
PCS_STEP = 0.1                                  # Langevin time step h (ULA bias visible)


def configs(fast: bool):
    n = 20000 if fast else 100000
    steps = (1, 3, 10, 30, 100) if fast else (1, 2, 5, 10, 20, 50, 100, 200)
    dsteps = (2, 5, 20, 100) if fast else (2, 3, 5, 10, 20, 50, 100, 200)
    base = {"K": K, "n": n, "seed": 0, "init": "standard-normal", "pcs_step": PCS_STEP}
    g = {"problem": "gaussian", "likelihood": "gaussian", "y": 0.7, "sigma": 0.5,
         "eta": ETA["gaussian"]}
    lg = {"problem": "logistic", "likelihood": "logistic", "y": 1.0, "lam": 0.4,
          "eta": ETA["logistic"]}
    out = [{**base, **g, "pcs": "exact", "pcs_steps": 0, "dds": "exact", "dds_steps": 0}]
    for pcs in ("ula", "mala"):
        for s in steps:
            out.append({**base, **g, "pcs": pcs, "pcs_steps": s, "dds": "exact", "dds_steps": 0})
            out.append({**base, **lg, "pcs": pcs, "pcs_steps": s, "dds": "exact", "dds_steps": 0})
    for dds in ("sde", "ode"):
        for s in dsteps:
            out.append({**base, **g, "pcs": "exact", "pcs_steps": 0, "dds": dds, "dds_steps": s})
    return out


def compute(cfg):
    prior, lik = problem(cfg)
    grid = Grid1D(prior, lik, eta_max=cfg["eta"])
    pi = grid.pi_eta(cfg["eta"])
    g = torch.Generator().manual_seed(cfg["seed"])
    x0 = init_samples(cfg["init"], prior, cfg["n"], g)
    pcs = PCSConfig(cfg["pcs"], max(cfg["pcs_steps"], 1), cfg["pcs_step"])
    dds = DDSConfig(cfg["dds"], max(cfg["dds_steps"], 1))
    res = run_dpnp(prior, lik, make_annealing("constant", cfg["K"], eta=cfg["eta"]), x0,
                   pcs=pcs, dds=dds, generator=g, keep=False)
    est = binned_tv(res.final[:, 0], grid.x, pi, seed=cfg["seed"])
    return {**est.to_dict(), "score_calls": res.score_calls,
            "lik_grad_calls": res.lik_grad_calls,
            "acceptance": float(np.mean(res.acceptance)) if res.acceptance else None,
            "exact_tv_at_K": grid.run([cfg["eta"]] * cfg["K"], cfg["init"], False).tv_pi[-1]}


def summarise(records, fast: bool) -> dict:
    curves = {}
    base = None
    for r in records:
        c, res = r["config"], r["result"]
        if c["pcs"] == "exact" and c["dds"] == "exact":
            base = res
            continue
        which = ("pcs", c["pcs"], c["pcs_steps"]) if c["pcs"] != "exact" else \
            ("dds", c["dds"], c["dds_steps"])
        curves.setdefault((c["problem"], which[0], which[1]), []).append((which[2], res))
    out = []
    for (prob, part, meth), pts in curves.items():
        pts.sort(key=lambda p: p[0])
        out.append({"problem": prob, "part": part, "method": meth,
                    "steps": [p[0] for p in pts],
                    "tv": [p[1]["value"] for p in pts], "lower": [p[1]["lower"] for p in pts],
                    "upper": [p[1]["upper"] for p in pts],
                    "floor_q95": [p[1]["floor_q95"] for p in pts],
                    "below_floor": [p[1]["below_floor"] for p in pts],
                    "acceptance": [p[1]["acceptance"] for p in pts],
                    "exact_tv_at_K": pts[0][1]["exact_tv_at_K"]})
    return {"eta": ETA, "K": K, "curves": out, "exact_subsamplers": base}


def figure(summary, figures_dir="figures"):
    panels = [("gaussian", "pcs"), ("gaussian", "dds"), ("logistic", "pcs")]
    titles = {("gaussian", "pcs"): "PCS steps (DDS exact), gaussian y=0.7, sigma=0.5, eta=0.7",
              ("gaussian", "dds"): "DDS steps (PCS exact), gaussian y=0.7, sigma=0.5, eta=0.7",
              ("logistic", "pcs"): "PCS steps (DDS exact), 1-bit logistic y=+1, lambda=0.4, "
                                   "eta=1"}
    fig, axes = new_figure(1, 3, figsize=(15, 4.0))
    cols = sns.color_palette("colorblind", 4)
    for ax, key in zip(axes[0], panels):
        cs = [c for c in summary["curves"] if (c["problem"], c["part"]) == key]
        fl = None
        for c, col in zip(cs, cols):
            x = np.asarray(c["steps"], float)
            y = np.asarray(c["tv"], float)
            lo, hi = np.asarray(c["lower"]), np.asarray(c["upper"])
            below = np.asarray(c["below_floor"], bool)
            ax.plot(x, y, "-", color=col, lw=1, label=c["method"])
            ax.plot(x[~below], y[~below], "o", color=col, ms=4)
            ax.plot(x[below], y[below], "o", mfc="none", color=col, ms=4)
            ax.fill_between(x, np.maximum(lo, 1e-3), hi, color=col, alpha=0.2, lw=0)
            fl = np.asarray(c["floor_q95"], float)
            xs = x
        if fl is not None:
            ax.fill_between(xs, 1e-4, fl, color="0.6", alpha=0.3, lw=0,
                            label="estimator floor (95% q., exact draws)")
            ax.axhline(cs[0]["exact_tv_at_K"], color="k", ls=":", lw=1,
                       label=f"exact sub-samplers at K (grid): {cs[0]['exact_tv_at_K']:.1e}")
            ax.set_ylim(bottom=1e-3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("steps per sub-sampler call")
        ax.set_ylabel(f"TV(law x_K, pi_eta), K={summary['K']}")
        ax.set_title(titles[key], fontsize=8.5)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7)
    fig.suptitle(f"DPnP floors from inexact sub-samplers, bimodal d=1, eta={summary['eta']}, "
                 f"Langevin step h={PCS_STEP} "
                 f"(binned TV vs exact grid pi_eta, 95% bootstrap CI; hollow: below the floor)",
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, f"{figures_dir}/dpnp_subsampler_error.png")
