"""The registered studies: name -> (module, one-line description); :func:`run` runs one through
the study skeleton (:func:`experiments.runtime.study.run_study`)."""
from __future__ import annotations

import importlib

from .study import run_study

__all__ = ["EXPERIMENTS", "get", "run"]

EXPERIMENTS = {
    "rate-vs-T": ("experiments.studies.rate_vs_T",
                  "TV against T for li-ode / li-sde (bimodal, gauss)"),
    "rate-vs-d": ("experiments.studies.rate_vs_d", "TV against d at T = 1000 (bimodal, gauss)"),
    "rate-vs-ambient-d": ("experiments.studies.rate_vs_ambient_d",
                          "TV against ambient d, k = 2 subspace prior: li-sde vs li-yan"),
    "score-error": ("experiments.studies.score_error",
                    "TV at T = 2000 against the injected score error eps_score"),
    "dpnp-stationary": ("experiments.studies.dpnp_stationary",
                        "DPnP: TV(law x_k, pi_eta) against k, exact rate lambda_2"),
    "dpnp-eta-bias": ("experiments.studies.dpnp_eta_bias",
                      "DPnP: TV(pi_eta, posterior) against eta"),
    "dpnp-subsampler-error": ("experiments.studies.dpnp_subsampler_error",
                              "DPnP: floor left by inexact PCS/DDS against their steps"),
    "dpnp-annealing": ("experiments.studies.dpnp_annealing",
                       "DPnP annealing schedules vs DPS at equal score evaluations"),
    "scaledgd-kappa": ("experiments.studies.scaledgd_kappa",
                       "ScaledGD vs GD: error against iteration for kappa in {1, 5, 10, 20} "
                       "(sensing, completion, robust PCA) and iterations against kappa"),
    "scaledgd-noise": ("experiments.studies.scaledgd_noise",
                       "ScaledGD vs GD under noise: error against iteration at SNR 40/60/80 dB"),
    "scaledgd-stepsize": ("experiments.studies.scaledgd_stepsize",
                          "ScaledGD vs GD: matrix completion error after 80 iterations "
                          "against the step size"),
    "posterior-benchmark": ("experiments.studies.posterior_benchmark",
                            "every posterior sampler on exact posteriors at equal NFE: "
                            "leaderboard and figures"),
}


def get(name: str):
    """The study module registered as ``name``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name][0])


def run(name: str, fast: bool = False, root=None, figures_dir="figures", executor=None) -> dict:
    """Run the study ``name`` (cached, resumable); returns its summary."""
    return run_study(get(name), fast, root, figures_dir, executor)
