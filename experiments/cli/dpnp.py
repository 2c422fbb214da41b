"""``diffrates dpnp``: one DPnP configuration, the distance of law(x_k) to pi_eta and to the
posterior for k = 1..K, with errors and methods (computed by :mod:`experiments.points.dpnp`).

    diffrates dpnp --prior bimodal --d 1 --likelihood gaussian --sigma 0.5 --y 0.7 --eta 0.3 \\
        --K 30 --pcs exact --dds exact --init standard-normal --metric tv --json

``--method auto`` (default) uses exact grid laws in d <= 2 for every sub-sampler the grid
engines cover and falls back to chains (with the reason) elsewhere; ``--method samples``
forces the chains, as a cross-check.
"""
from __future__ import annotations

import json

from .text import full, with_interval

NAME = "dpnp"


def add_parser(sub):
    p = sub.add_parser("dpnp", help="DPnP posterior sampling: law(x_k) against pi_eta and the "
                                    "posterior for one configuration",
                       description="DPnP (Xu & Chi, arXiv:2403.17042) for one configuration: "
                                   "for k = 1..K the distance of law(x_k) to pi_eta and to the "
                                   "posterior, each with its interval and method.")
    p.add_argument("--prior", default=None, help="bimodal | gauss | gmm (default bimodal)")
    p.add_argument("--prior-file", default=None,
                   help="a prior from a JSON or NPZ file (theory.prior_files) instead of --prior")
    p.add_argument("--d", default=None, help="dimension (default 1, or the prior file's)")
    p.add_argument("--likelihood-file", default=None,
                   help="linear-Gaussian likelihood from a JSON or NPZ file: operator (m x d), "
                        "y (m) and noise_covariance (m x m) or sigma "
                        "(theory.posterior.likelihoods.load_likelihood); replaces --likelihood, "
                        "--operator, --sigma and --y")
    p.add_argument("--likelihood", default="gaussian", help="gaussian | phase | logistic")
    p.add_argument("--operator", default="identity",
                   help="identity | mask | random (the measurement operator A)")
    p.add_argument("--m", default=None, help="rows of the random operator (default d)")
    p.add_argument("--cond", default=None, help="condition number of the random operator "
                                               "(default 10)")
    p.add_argument("--keep", default=None, help="fraction of coordinates a mask keeps "
                                               "(default 0.5)")
    p.add_argument("--sigma", default=None, help="noise sd (gaussian, phase; default 0.5, "
                                                "at least 1e-6)")
    p.add_argument("--lam", default=None, help="lambda of the 1-bit logistic model "
                                              "(default 0.4)")
    p.add_argument("--y", default="0.7", help="observation: one value (repeated) or m "
                                              "comma-separated values")
    p.add_argument("--eta", default=None, help="constant eta (default 0.3; or --schedule)")
    p.add_argument("--schedule", default=None,
                   help="annealing (default: none, the constant --eta): constant:ETA | "
                        "reference[:EMAX,EMIN,KSTART,K] | "
                        "geometric[:EMAX,EMIN] | polynomial[:EMAX,EMIN,POWER] | list:E0,E1,...")
    p.add_argument("--K", default=None, help="outer steps (default 30; reference: 16)")
    p.add_argument("--pcs", default="exact", help="exact | mala | ula")
    p.add_argument("--pcs-steps", default=None, help="Langevin steps per PCS (mala, ula; "
                                                    "default 100)")
    p.add_argument("--pcs-step", default=None, help="Langevin step h (default 0.2 min(eta^2, "
                                                    "1/Lip grad loglik))")
    p.add_argument("--dds", default="exact", help="exact | sde | ode")
    p.add_argument("--dds-steps", default=None, help="reverse-diffusion steps per DDS (sde, "
                                                    "ode; default 50)")
    p.add_argument("--dds-rule", default=None, help="affine rule (sde: ddpm, ode: ddim)")
    p.add_argument("--init", default="standard-normal", help="standard-normal | prior | point:V")
    p.add_argument("--metric", default="tv",
                   help="tv (exact or grid laws where d <= 2 or the problem is diagonal) | w2 | "
                        "sliced_w2 | sinkhorn (sample-based against closed-form targets: "
                        "gaussian likelihood, any d)")
    p.add_argument("--method", default=None,
                   help="auto | grid | samples: how tv in d <= 2 is computed (default auto: "
                        "exact grid laws, also for the inexact sub-samplers, falling back to "
                        "chains with the reason where no grid law exists; grid: refuse "
                        "instead of falling back; samples: n chains of the real sampler, "
                        "binned TV against the grid laws, a cross-check)")
    p.add_argument("--n", default=None, help="chains for sample-based estimates (default "
                                             "100000 for tv, 5000 otherwise)")
    p.add_argument("--seed", default="0", help="seed (random operator, chains)")
    p.add_argument("--h", default=None, help="grid spacing (default automatic)")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:N]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def config_from_args(a) -> dict:
    from ..points.dpnp import normalise_config    # the library loads when a command runs
    return normalise_config({"prior": a.prior, "prior_file": a.prior_file,
                             "likelihood_file": a.likelihood_file, "d": a.d,
                             "likelihood": a.likelihood,
                             "operator": a.operator, "m": a.m, "cond": a.cond, "keep": a.keep,
                             "sigma": a.sigma, "lam": a.lam, "y": a.y, "eta": a.eta,
                             "schedule": a.schedule, "K": a.K, "pcs": a.pcs,
                             "pcs_steps": a.pcs_steps, "pcs_step": a.pcs_step, "dds": a.dds,
                             "dds_steps": a.dds_steps, "dds_rule": a.dds_rule, "init": a.init,
                             "metric": a.metric, "method": a.method, "n": a.n, "seed": a.seed, "h": a.h,
                             "device": a.device})


def run(a) -> int:
    import torch                                   # the library loads when a command runs

    from ..points.dpnp import compute
    from ..runtime.store import provenance
    cfg = config_from_args(a)
    if cfg["d"] <= 2 and cfg["device"] == "cpu":
        torch.set_num_threads(1)   # small tensors: threads only add overhead
    res = compute(cfg)
    if a.json:
        print(json.dumps({"config": cfg, **res, "provenance": provenance(cfg["device"])},
                         default=float))
        return 0
    print(f"DPnP  prior={cfg['prior']} d={cfg['d']} likelihood={cfg['likelihood']} "
          f"operator={cfg['operator']} pcs={cfg['pcs']} dds={cfg['dds']} init={cfg['init']} "
          f"schedule={res['schedule']['name']} K={res['schedule']['K']}")
    name = {"tv": "TV", "w2": "W2", "sliced_w2": "SW2", "sinkhorn": "S_eps"}[cfg["metric"]]
    print(f"{'k':>4} {'eta':>8}  {name}(x_k, pi_eta)  |  {name}(x_k, posterior)   "
          f"(value in [95% interval], full precision)")
    for r in res["per_k"]:
        a_, b_ = r["to_pi_eta"], r["to_posterior"]
        flag = lambda e: " (below floor)" if e.get("below_floor") else ""  # noqa: E731
        print(f"{r['k']:4d} {full(r['eta']):>8}  "
              f"{with_interval(a_['value'], a_['lower'], a_['upper'])}{flag(a_)}  |  "
              f"{with_interval(b_['value'], b_['lower'], b_['upper'])}{flag(b_)}")
    route = res.get("route") or {}
    print(f"  route: {route.get('name')}"
          + (f" ({route['reason']})" if route.get("reason") else ""))
    print("  method: " + res["per_k"][0]["to_pi_eta"]["method"])
    if res.get("grid", {}).get("lost_mass") is not None:
        print(f"  mass lost by the grid (in every error): {full(res['grid']['lost_mass'])}")
    for r in res.get("tv_pi_eta_posterior") or res.get("distance_pi_eta_posterior") or []:
        print(f"  {name}(pi_eta, posterior) at eta={full(r['eta'])}: "
              + (with_interval(r["value"], r["lower"], r["upper"]) if "lower" in r
                 else full(r["value"])))
    for r in res.get("exact_rate") or []:
        if r.get("value") is not None:
            print(f"  exact geometric rate at eta={full(r['eta'])}: {full(r['value'])}  "
                  f"({r['method']})")
    if res.get("measured_decay"):
        md = res["measured_decay"]
        print(f"  measured decay of TV(x_k, pi_eta): {full(md['rate'])} over k in "
              f"{md['k_range'][0]}..{md['k_range'][1]}")
    return 0
