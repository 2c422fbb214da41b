"""One configuration -> one distance: the function behind ``diffrates measure`` and the
experiments. Validates every field and raises ``ValueError`` with a one-line message."""
from __future__ import annotations

import math

from theory.distances import METRICS, exact_distance
from theory.priors import PRESETS, make_prior
from theory.samplers import SAMPLERS, sampler_rule
from theory.schedules import SCHEDULES, make_schedule
from theory.score_errors import PERTURBATIONS, make_perturbation

__all__ = ["normalise_config", "measure", "DEFAULTS"]

DEFAULTS = {"prior": "bimodal", "d": 1, "sampler": "li-ode", "schedule": "li", "T": 1000,
            "metric": "tv", "c0": 2.0, "c1": 4.0, "device": "cpu", "seed": 0,
            "method": "exact", "perturbation": "none", "eps": 0.0}


def _int(name, v, lo):
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {v!r}") from None
    if not math.isfinite(f) or not f.is_integer():
        raise ValueError(f"{name} must be an integer, got {v!r}")
    if f < lo:
        raise ValueError(f"{name} must be >= {lo}, got {int(f)}")
    return int(f)


def _pos(name, v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f) or f <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return f


def _nonneg(name, v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f) or f < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {v!r}")
    return f


def _choice(name, v, options):
    if v not in options:
        raise ValueError(f"unknown {name} {v!r}; choose from {', '.join(options)}")
    return v


def normalise_config(cfg: dict) -> dict:
    """Fill defaults and validate; the result is the canonical configuration (cache key)."""
    c = {**DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    out = {
        "prior": _choice("prior", c["prior"], tuple(PRESETS)),
        "d": _int("d", c["d"], 1),
        "sampler": _choice("sampler", c["sampler"], SAMPLERS),
        "schedule": _choice("schedule", c["schedule"], tuple(SCHEDULES)),
        "T": _int("T", c["T"], 2),
        "metric": _choice("metric", c["metric"], METRICS),
        "device": str(c["device"]),
        "seed": _int("seed", c["seed"], 0),
        "method": _choice("method", c["method"], ("exact",)),
        "perturbation": _choice("perturbation", c["perturbation"],
                                ("none",) + tuple(PERTURBATIONS)),
    }
    if out["perturbation"] != "none":
        out["eps"] = _nonneg("eps", c["eps"])
    if out["schedule"] == "li":
        out["c0"] = _pos("c0", c["c0"])
        out["c1"] = _pos("c1", c["c1"])
    if out["device"] not in ("cpu",) and not out["device"].startswith("cuda"):
        raise ValueError(f"unknown device {out['device']!r}; use cpu or cuda[:N]")
    if out["device"].startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise ValueError("device cuda requested but CUDA is not available on this machine")
    return out


def build(cfg: dict):
    """Prior, schedule and sampler rule of a normalised configuration."""
    kw = {"seed": cfg["seed"]} if cfg["prior"] == "gmm" else {}
    prior = make_prior(cfg["prior"], cfg["d"], **kw)
    sparams = {"c0": cfg["c0"], "c1": cfg["c1"]} if cfg["schedule"] == "li" else {}
    schedule = make_schedule(cfg["schedule"], cfg["T"], **sparams)
    return prior, schedule, sampler_rule(cfg["sampler"], schedule)


def measure(cfg: dict) -> dict:
    """Distance between law(Y_1) and q_1 for one configuration, with interval and method."""
    cfg = normalise_config(cfg)
    prior, schedule, rule = build(cfg)
    pert = None
    if cfg["perturbation"] != "none":
        pert = make_perturbation(cfg["perturbation"], cfg["eps"])
    est = exact_distance(prior, rule, cfg["metric"], perturbation=pert)
    out = {"value": est.value, "lower": est.lower, "upper": est.upper, "error": est.error,
           "method": est.method, "interval": "numerical error bound (refinement estimate)",
           "details": est.details}
    if pert is not None:
        out["injected"] = pert.injected(prior, schedule)
    return out
