"""One posterior sampler on one problem at one budget: configuration -> result.

    {"method": "tds", "problem": "bimodal-1d-gaussian:0", "nfe": 200, "n": 2000, "seed": 0,
     "knobs": {"particles": 16}, ...}  ->  {"metrics": {...}, "sampler": {...}, ...}

The sampler runs through :mod:`theory.posterior.methods`; the metrics against the exact
posterior come from :mod:`theory.posterior.metrics` (every metric with its interval, method
and floor). Bad input raises ValueError with a one-line message.
"""
from __future__ import annotations

import time
from functools import lru_cache

import torch

from theory.checks import integer
from theory.posterior.methods import METHODS, make_method
from theory.posterior.metrics import METRIC_NAMES, exact_posterior, posterior_metrics
from theory.posterior.problems import family_of, make_problem, problem_name
from theory.rng import check_device_name

__all__ = ["DEFAULTS", "normalise_config", "compute", "problem_and_posterior"]

DEFAULTS = {"method": "dps", "problem": "bimodal-1d-gaussian:0", "nfe": 200, "n": 2000,
            "seed": 0, "knobs": {}, "n_boot": 100, "ot_boot": 20, "w2_points": 2000,
            "device": "cpu", "metrics": list(METRIC_NAMES)}


def normalise_config(c: dict) -> dict:
    """Fill defaults, validate (method, problem, knobs, budget), return the canonical form."""
    c = {**DEFAULTS, **{k: v for k, v in c.items() if v is not None}}
    if c["method"] not in METHODS:
        raise ValueError(f"unknown method {c['method']!r}; choose from {', '.join(METHODS)}")
    fam, seed = family_of(c["problem"])
    knobs = dict(c["knobs"] or {})
    m = make_method(c["method"], **knobs)                 # validates the knobs
    out = {"method": c["method"], "problem": problem_name(fam, seed),
           "nfe": integer("nfe", c["nfe"], lo=m.min_nfe()), "n": integer("n", c["n"], lo=20),
           "seed": integer("seed", c["seed"], lo=0), "knobs": knobs,
           "n_boot": integer("n_boot", c["n_boot"], lo=10),
           "ot_boot": integer("ot_boot", c["ot_boot"], lo=10),
           "w2_points": integer("w2_points", c["w2_points"], lo=20),
           "device": check_device_name(c["device"])}
    bad = [x for x in c["metrics"] if x not in METRIC_NAMES]
    if bad:
        raise ValueError(f"unknown metric {bad[0]!r}; choose from {', '.join(METRIC_NAMES)}")
    out["metrics"] = [x for x in METRIC_NAMES if x in c["metrics"]]
    for k in ("role", "tuned_on", "tuning_score"):
        if k in c:
            out[k] = c[k]
    return out


@lru_cache(maxsize=16)
def problem_and_posterior(name: str):
    """The problem and its exact posterior (memoised per process)."""
    p = make_problem(name)
    return p, exact_posterior(p.prior, p.lik)


def compute(cfg: dict) -> dict:
    """Run the sampler and every metric (module docstring)."""
    problem, post = problem_and_posterior(cfg["problem"])
    method = make_method(cfg["method"], **cfg["knobs"])
    method.check_problem(problem.prior, problem.lik)
    if cfg["device"] != "cpu":
        raise ValueError("the benchmark problems live on the CPU (use --device cpu)")
    if problem.prior.dim <= 2:
        torch.set_num_threads(1)
    g = torch.Generator().manual_seed(cfg["seed"])
    t0 = time.perf_counter()
    res = method.sample(problem.prior, problem.lik, cfg["nfe"], cfg["n"], generator=g)
    t1 = time.perf_counter()
    bad = int((~torch.isfinite(res.samples)).any(1).sum())
    if bad:
        return {"failed": f"{bad} of {cfg['n']} outputs not finite (diverged)",
                "sampler": res.describe(), "problem": problem.describe(),
                "seconds": {"sampling": t1 - t0}}
    mets = posterior_metrics(res.samples, post, groups=res.groups, n_boot=cfg["n_boot"],
                             ot_boot=cfg["ot_boot"], seed=cfg["seed"], metrics=cfg["metrics"],
                             max_w2_points=cfg["w2_points"])
    return {"metrics": mets, "sampler": res.describe(), "problem": problem.describe(),
            "posterior": post.description, "reference": method.reference,
            "point_estimate": method.point_estimate,
            "seconds": {"sampling": t1 - t0, "metrics": time.perf_counter() - t1}}
