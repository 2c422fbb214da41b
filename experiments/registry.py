"""The registered experiments: name -> module with ``run(fast, root, figures_dir)``."""
from __future__ import annotations

import importlib

EXPERIMENTS = {
    "rate-vs-T": ("experiments.rate_vs_T", "TV against T for li-ode / li-sde (bimodal, gauss)"),
    "rate-vs-d": ("experiments.rate_vs_d", "TV against d at T = 1000 (bimodal, gauss)"),
    "rate-vs-ambient-d": ("experiments.rate_vs_ambient_d",
                          "TV against ambient d, k = 2 subspace prior: li-sde vs li-yan"),
    "score-error": ("experiments.score_error",
                    "TV at T = 2000 against the injected score error eps_score"),
    "dpnp-stationary": ("experiments.dpnp_stationary",
                        "DPnP: TV(law x_k, pi_eta) against k, exact rate lambda_2"),
    "dpnp-eta-bias": ("experiments.dpnp_eta_bias", "DPnP: TV(pi_eta, posterior) against eta"),
    "dpnp-subsampler-error": ("experiments.dpnp_subsampler_error",
                              "DPnP: floor left by inexact PCS/DDS against their steps"),
    "dpnp-annealing": ("experiments.dpnp_annealing",
                       "DPnP annealing schedules vs DPS at equal score evaluations"),
}


def get(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name][0])
