r"""The compute side of the low-rank experiments: one JSON-able config per point, one pure
function per point, and the grids of the three experiments (ScaledGD paper, arXiv:2005.08898,
Figures 2-4; the authors' scripts ``MS.m``/``MC.m``/``RPCA.m``, ``*_noise.m``,
``MC_stepsizes.m``).

A config is a dict of plain values::

    {"problem": "sensing", "algorithm": "scaledgd", "n": 20, "r": 2, "kappa": 10.0,
     "eta": 0.5, "snr": None, "seed": 0, "iterations": 1000, "device": "cpu", ...}

and :func:`run_point` returns a dict of plain values (lists of floats for trajectories,
None for missing numbers), so a study can store, cache and fan out points freely.

Grids (``fast`` = sizes of :data:`~theory.lowrank.problems.FAST_SIZES`, the paper's sampling
ratios at small n; otherwise the paper's sizes):

* :func:`configs_kappa` (``scaledgd-kappa``): part ``"panel"``, error against iteration for
  kappa in {1, 5, 10, 20} for each problem, ScaledGD and GD (Figure 2); part ``"fit"``,
  iterations to 1e-10 for kappa in {1, 2, 5, 10, 20, 50, 100} over seeded sensing problems,
  at the paper's sampling (``sampling = "paper"``, m = 5nr) and in the RIP regime of the
  theorem (``sampling = "rip"``, m = 80nr), for the fitted exponents in kappa.
* :func:`configs_noise` (``scaledgd-noise``): kappa = 10, SNR in {40, 60, 80} dB, each
  problem, ScaledGD and GD (Figure 3).
* :func:`configs_stepsize` (``scaledgd-stepsize``): matrix completion, final error after 80
  iterations against eta in [0.1, 1.2] for kappa in {1, 5, 10, 20} (Figure 4).

:func:`summarize_kappa` turns the ``"fit"`` points' results into the exponents with
intervals (:func:`~theory.lowrank.rates.kappa_exponent`).
"""
from __future__ import annotations

import math
import time
from typing import Iterable, Optional

import numpy as np
import torch

from .algorithms import ALGORITHMS, _FactorDistance, run_algorithm
from .problems import FAST_SIZES, PAPER_SIZES, PROBLEMS, make_problem
from .rates import fit_linear_rate, kappa_exponent, seed_interval

__all__ = ["run_point", "configs_kappa", "configs_noise", "configs_stepsize",
           "summarize_kappa", "KAPPAS_FIT", "KAPPAS_PANEL", "RIP_OVERSAMPLING"]

KAPPAS_PANEL = (1, 5, 10, 20)
KAPPAS_FIT = (1, 2, 5, 10, 20, 50, 100)
#: m / (n r) of the "rip" sampling: at n = 20, r = 2 that is m = 3200, about 42 times the
#: r(2n - r) = 76 degrees of freedom, where the measured ScaledGD rate is below 1 - 0.6 eta.
RIP_OVERSAMPLING = 80.0

_PROBLEM_KEYS = ("n", "r", "kappa", "snr", "oversampling", "m", "p", "alpha", "gamma",
                 "outlier_scale", "dense", "gram")
_DEFAULTS = {"eta": 0.5, "snr": None, "seed": 0, "iterations": 1000, "device": "cpu",
             "fast": False, "track_distance": True, "stop_tol": 1e-14, "diverge_tol": 1e3,
             "tol": 1e-10,
             "rate_lower": 1e-12, "rate_upper": 1e-4, "dtype": "float64"}
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _clean(x):
    """Floats that JSON can hold (NaN/inf -> None)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _list(a) -> Optional[list]:
    if a is None:
        return None
    return [_clean(float(v)) for v in np.asarray(a, dtype=float)]


def _rate_dict(lr) -> dict:
    d = lr.to_dict()
    return {k: ([_clean(v) for v in val] if isinstance(val, list) else _clean(val))
            for k, val in d.items()}


def run_point(cfg: dict) -> dict:
    r"""Run one point: build the problem, run the algorithm, measure.

    Parameters
    ----------
    cfg : dict
        ``problem`` (one of :data:`PROBLEMS`), ``algorithm`` (one of :data:`ALGORITHMS`),
        and optionally ``n, r, kappa, snr, oversampling, m, p, alpha, gamma, outlier_scale,
        dense`` (problem), ``eta, iterations, seed, device, dtype, fast, track_distance,
        stop_tol, diverge_tol`` (run; ``seed`` seeds the problem, ``seed + 1`` the small random start),
        ``rank, lam, alpha_init`` (ScaledGD(lambda) and overparameterised GD), ``tol``
        (iterations to it) and ``rate_lower, rate_upper`` (the linear phase). Other keys
        (labels such as ``part`` or ``sampling``) are carried through.

    Returns
    -------
    dict
        ``config`` (with defaults filled in), ``problem`` (its description),
        ``rel_error`` and ``factor_distance`` (lists per iteration; the distance is None
        for one-factor runs), ``stop_reason``, ``iterations_run``, ``iterations_to_tol``
        (None if not reached), ``final_rel_error``, ``final_factor_distance``,
        ``rate_rel_error`` and ``rate_factor_distance`` (linear rates with their windows),
        ``theorem_rate`` (1 - 0.6 eta for ScaledGD with eta <= 2/3, else None), ``seconds``.
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"a config must be a dict, got {type(cfg).__name__}")
    for key in ("problem", "algorithm"):
        if key not in cfg:
            raise ValueError(f"config needs {key!r}")
    if cfg["problem"] not in PROBLEMS:
        raise ValueError(f"unknown problem {cfg['problem']!r}; choose from {', '.join(PROBLEMS)}")
    if cfg["algorithm"] not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {cfg['algorithm']!r}; choose from {', '.join(ALGORITHMS)}")
    c = {**_DEFAULTS, **cfg}
    if c["dtype"] not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {c['dtype']!r}")
    one_factor = c["algorithm"] in ("scaledgd-lambda", "overparam-gd")
    if one_factor != (c["problem"] == "psd-sensing"):
        raise ValueError(f"algorithm {c['algorithm']!r} does not run on problem {c['problem']!r}")
    t0 = time.perf_counter()
    pkw = {k: c[k] for k in _PROBLEM_KEYS if k in c and c[k] is not None}
    prob = make_problem(c["problem"], fast=bool(c["fast"]), seed=int(c["seed"]),
                        device=c["device"], dtype=_DTYPES[c["dtype"]], **pkw)
    akw = {"eta": c["eta"], "iterations": c["iterations"], "stop_tol": c["stop_tol"],
           "diverge_tol": c["diverge_tol"]}
    if one_factor:
        akw.update(rank=c.get("rank"), alpha=c.get("alpha_init", 1e-9), seed=int(c["seed"]) + 1)
        if c["algorithm"] == "scaledgd-lambda":
            akw["lam"] = c.get("lam")
    else:
        akw["track_distance"] = bool(c["track_distance"])
    run = run_algorithm(prob, c["algorithm"], **akw)
    fro = prob.truth.fro
    out = {"config": c, "problem": prob.describe(), "rel_error": _list(run.rel_error),
           "factor_distance": _list(run.factor_distance), "stop_reason": run.stop_reason,
           "iterations_run": run.iterations,
           "iterations_to_tol": run.iterations_to(c["tol"]),
           "final_rel_error": _clean(float(run.rel_error[-1])), "params": run.params}
    fd = None
    if not one_factor:
        if run.factor_distance is not None:
            fd = float(run.factor_distance[-1])
        elif math.isfinite(run.rel_error[-1]):
            L, R = run.final
            try:
                fd = _FactorDistance(prob.truth)(L.detach().cpu().numpy(),
                                                 R.detach().cpu().numpy())[0]
            except (ValueError, np.linalg.LinAlgError):
                fd = None
    out["final_factor_distance"] = _clean(fd) if fd is not None else None
    out["rate_rel_error"] = _rate_dict(fit_linear_rate(run.rel_error, c["rate_lower"],
                                                       c["rate_upper"]))
    out["rate_factor_distance"] = (None if run.factor_distance is None else _rate_dict(
        fit_linear_rate(run.factor_distance, c["rate_lower"], c["rate_upper"], scale=fro)))
    eta = float(c["eta"])
    out["theorem_rate"] = (1 - 0.6 * eta) if (c["algorithm"] == "scaledgd" and eta <= 2 / 3) else None
    out["seconds"] = time.perf_counter() - t0
    return out


# ----------------------------------------------------------------------------- grids
_PANEL_T = {"sensing": 1000, "completion": 1000, "rpca": 1000}   # MS.m, MC.m, RPCA.m
_NOISE_T = {"sensing": 600, "completion": 300, "rpca": 300}      # *_noise.m
_TWO = ("scaledgd", "gd")


def _sizes(problem, fast):
    return dict((FAST_SIZES if fast else PAPER_SIZES)[problem])


def configs_kappa(fast: bool = True, *, seeds: Optional[Iterable[int]] = None,
                  device: str = "cpu") -> list:
    """Points of ``scaledgd-kappa``: Figure 2 panels and the iterations-against-kappa fits.

    Parameters
    ----------
    fast : bool
        Fast sizes (and 3 seeds for the fits) or the paper's (5 seeds). The fits run at the
        fast size in both modes (full mode: more seeds): at the paper's size GD's fit points
        alone would take about 600 CPU-hours (up to ~17000 iterations of 13-16 s gradients at
        kappa = 100; experiments/bench/lowrank_cost.py), and the exponent in kappa is a
        property of the iteration, not of n.
    seeds : iterable of int, optional
        Seeds of the fit points.
    device : str

    Returns
    -------
    list of dict
    """
    out = []
    for prob in ("sensing", "completion", "rpca"):
        for kappa in KAPPAS_PANEL:
            for alg in _TWO:
                out.append({"part": "panel", "problem": prob, "algorithm": alg,
                            "kappa": float(kappa), "eta": 0.5, "seed": 0, "fast": fast,
                            "iterations": _PANEL_T[prob], "device": device,
                            **_sizes(prob, fast)})
    seeds = list(range(3 if fast else 5)) if seeds is None else list(seeds)
    small = _sizes("sensing", True)
    # both samplings at the fast size (see above; m = 80 n r at the paper's n = 200, r = 10
    # would be a 1.6e5 x 4e4 operator)
    for sampling, sz in (("paper", small), ("rip", {**small, "oversampling": RIP_OVERSAMPLING})):
        for kappa in KAPPAS_FIT:
            for alg in _TWO:
                for s in seeds:
                    out.append({"part": "fit", "sampling": sampling, "problem": "sensing",
                                "algorithm": alg, "kappa": float(kappa), "eta": 0.5,
                                "seed": s, "fast": fast, "device": device, **sz,
                                "iterations": 3000 if alg == "scaledgd" else 60000,
                                "track_distance": False, "stop_tol": 1e-11})
    return out


def configs_noise(fast: bool = True, *, device: str = "cpu") -> list:
    """Points of ``scaledgd-noise``: kappa = 10, SNR 40/60/80 dB (1e2, 1e3, 1e4), each
    problem, ScaledGD and GD (Figure 3)."""
    out = []
    for prob in ("sensing", "completion", "rpca"):
        for snr in (1e2, 1e3, 1e4):
            for alg in _TWO:
                out.append({"problem": prob, "algorithm": alg, "kappa": 10.0, "snr": snr,
                            "eta": 0.5, "seed": 0, "fast": fast, "iterations": _NOISE_T[prob],
                            "device": device, **_sizes(prob, fast)})
    return out


def configs_stepsize(fast: bool = True, *, device: str = "cpu") -> list:
    """Points of ``scaledgd-stepsize``: matrix completion, 80 iterations, eta in
    linspace(0.1, 1.2, 60) (12 values in fast mode), kappa in {1, 5, 10, 20} (Figure 4).
    Runs stop early above a relative error of 1e2; the script then records 1e2 (its cap),
    here ``final_rel_error`` is the first value above it and ``stop_reason`` "diverged"."""
    etas = np.linspace(0.1, 1.2, 12 if fast else 60)
    out = []
    for kappa in KAPPAS_PANEL:
        for eta in etas:
            for alg in _TWO:
                out.append({"problem": "completion", "algorithm": alg, "kappa": float(kappa),
                            "eta": float(eta), "seed": 0, "fast": fast, "iterations": 80,
                            "track_distance": False, "diverge_tol": 1e2, "device": device,
                            **_sizes("completion", fast)})
    return out


def summarize_kappa(results: Iterable[dict]) -> dict:
    """Exponents in kappa of the iterations to tolerance, per (sampling, algorithm).

    Parameters
    ----------
    results : iterable of dict
        :func:`run_point` outputs of ``part == "fit"`` points (others are skipped).

    Returns
    -------
    dict
        ``{sampling: {algorithm: {"kappas", "iterations" (kappa x seed), "per_kappa"
        (geometric mean and 95% interval per kappa), "fit" (RateFit dict) or "error"}}}``.
    """
    table: dict = {}
    for res in results:
        c = res["config"]
        if c.get("part") != "fit":
            continue
        cell = table.setdefault(c.get("sampling", "paper"), {}).setdefault(c["algorithm"], {})
        cell.setdefault(float(c["kappa"]), {})[int(c["seed"])] = res["iterations_to_tol"]
    out: dict = {}
    for sampling, algs in table.items():
        for alg, by_kappa in algs.items():
            kappas = sorted(by_kappa)
            seeds = sorted({s for v in by_kappa.values() for s in v})
            counts = np.array([[np.nan if by_kappa[k].get(s) is None else by_kappa[k][s]
                                for s in seeds] for k in kappas], dtype=float)
            entry = {"kappas": kappas, "seeds": seeds,
                     "iterations": [[_clean(float(v)) for v in row] for row in counts]}
            if np.all(np.isfinite(counts)):
                entry["per_kappa"] = [seed_interval(row, log=True).to_dict() for row in counts]
                entry["fit"] = kappa_exponent(kappas, counts).to_dict()
            else:
                entry["error"] = "some runs did not reach the tolerance"
            out.setdefault(sampling, {})[alg] = entry
    return out
