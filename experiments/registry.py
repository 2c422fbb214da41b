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
}


def get(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name][0])
