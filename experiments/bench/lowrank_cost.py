"""Cost estimate of the low-rank studies in full mode (the paper's sizes), from per-iteration
times measured here and the points of the full grids.

    python -m experiments.bench.lowrank_cost [--results results] [--device cpu|cuda]
                                             [--skip-sensing]

Method. The points of ``scaledgd-kappa``, ``scaledgd-noise`` and ``scaledgd-stepsize``
(``configs(fast=False)``) fall into a few kinds: (problem, size, algorithm, whether the
factor distance is tracked). For each kind the script times runs of ``K1`` and ``K2``
iterations (``stop_tol = 0``, so neither stops early; ``K2`` large enough that the extra
iterations take about a second) and takes the per-iteration time ``(t2 - t1) / (K2 - K1)``
and the set-up time ``t1 - K1 * per-iteration`` (problem, spectral initialisation).
Paper-size matrix sensing (n = 200, r = 10, m = 10^4, a 3.2 GB design, kept dense where it
fits the memory budget of :func:`theory.lowrank.operators.dense_budget`, else matrix-free, as
a run would) is timed by one application of the normal operator (one gradient), its set-up as
the problem's construction (the design, the measurements) plus two gradients' worth (the
spectral matrix). A point then costs
``set-up + per-iteration * iterations``, with ``iterations`` the mean number the same point
ran in fast mode over its seeds (same kappa, algorithm, step size and sampling ratio; read
from ``--results``), else the grid's cap. The fast-mode counts stand in for the paper
size's: the contraction rates depend on kappa and the sampling ratio, which are the same.

Printed: per kind the measured times, per study the points, the estimated CPU hours (one
core, one thread) and, from ``--results``, the sum of the recorded per-point seconds of the
same study in fast mode (wall time per point, so inflated on a busy machine).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time
from collections import defaultdict

import torch

from theory.lowrank import make_problem
from theory.lowrank.sweeps import configs_kappa, configs_noise, configs_stepsize, run_point

GRIDS = {"scaledgd-kappa": configs_kappa, "scaledgd-noise": configs_noise,
         "scaledgd-stepsize": configs_stepsize}
K1, K2 = 5, 25
MAX_EXTRA = 4000


def kind(cfg):
    size = tuple(cfg.get(k) for k in ("n", "r", "oversampling", "p", "alpha"))
    return (cfg["problem"], size, cfg["algorithm"], bool(cfg.get("track_distance", True)),
            cfg.get("snr") is not None)


def _timed(cfg, iterations):
    t0 = time.process_time()
    run_point({**cfg, "iterations": iterations, "stop_tol": 0.0, "diverge_tol": 1e300})
    return time.process_time() - t0


_GRADIENT = {}   # paper-size sensing: seconds per gradient, by (n, r, m)


def time_kind(cfg, device):
    """(set-up seconds, seconds per iteration) of the kind of ``cfg``."""
    cfg = {**cfg, "device": device}
    m = (round(cfg.get("oversampling", 0) * cfg["n"] * cfg["r"])
         if cfg["problem"] == "sensing" else 0)
    if m and cfg["n"] * cfg["n"] * m * 8 > 2 ** 28:       # a large design: time one gradient
        key = (cfg["n"], cfg["r"], m)
        if key not in _GRADIENT:
            t0 = time.process_time()
            pr = make_problem("sensing", n=cfg["n"], r=cfg["r"], kappa=cfg["kappa"],
                              oversampling=cfg["oversampling"], device=device)
            t1 = time.process_time()
            pr.grad_matrix(pr.truth.X)
            _GRADIENT[key] = (t1 - t0, time.process_time() - t1)
        build, per = _GRADIENT[key]
        return build + 2 * per, per
    t1 = _timed(cfg, K1)
    # enough iterations that their time stands out from the set-up's scatter (about 1 s)
    k2 = K1 + min(MAX_EXTRA, max(K2 - K1, int(1.0 / max(t1 / K1, 1e-6))))
    t2 = _timed(cfg, k2)
    per = max(t2 - t1, 0.0) / (k2 - K1)
    return max(t1 - K1 * per, 0.0), per


def _key(name, c):
    return (name, c.get("part"), c.get("sampling"), c["problem"], c["algorithm"], c["kappa"],
            c.get("snr"), round(c["eta"], 6))


def fast_counts(results):
    """(study, part, sampling, problem, algorithm, kappa, snr, eta) -> mean over seeds of
    the iterations run in fast mode, and per study the fast-mode seconds."""
    counts, seconds = defaultdict(list), defaultdict(float)
    for name in GRIDS:
        for path in glob.glob(os.path.join(results, name, "points", "*.json")):
            with open(path) as fh:
                rec = json.load(fh)
            c = rec["config"]
            if not c.get("fast"):
                continue
            counts[_key(name, c)].append(rec["result"]["iterations_run"])
            seconds[name] += rec["seconds"]
    return {k: sum(v) / len(v) for k, v in counts.items()}, seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-sensing", action="store_true",
                    help="do not time paper-size sensing (about 15 s per gradient on CPU)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    counts, fast_seconds = fast_counts(a.results)
    timing = {}
    for name, grid in GRIDS.items():
        for cfg in grid(False):
            k = kind(cfg)
            if k in timing:
                continue
            if a.skip_sensing and cfg["problem"] == "sensing" and cfg["n"] >= 200:
                timing[k] = (float("nan"), float("nan"))
                continue
            timing[k] = time_kind(cfg, a.device)
            print(f"  {k[0]:10s} size {k[1]} {k[2]:8s} distance={k[3]!s:5s} noise={k[4]!s:5s}: "
                  f"set-up {timing[k][0]:.3f} s, {timing[k][1] * 1e3:.2f} ms per iteration",
                  flush=True)
    print()
    for name, grid in GRIDS.items():
        total, by_kind, capped = 0.0, defaultdict(float), 0
        cfgs = grid(False)
        for cfg in cfgs:
            its = counts.get(_key(name, cfg))
            if its is None:
                its, capped = cfg["iterations"], capped + 1
            setup, per = timing[kind(cfg)]
            cost = setup + per * its
            total += cost
            part = (cfg["problem"], cfg.get("part"), cfg.get("sampling"), cfg["algorithm"])
            by_kind[part] += cost
        print(f"{name}: {len(cfgs)} points in full mode, about {total / 3600:.2f} CPU hours "
              f"({capped} points at their iteration cap: no fast-mode count); fast-mode points "
              f"recorded {fast_seconds.get(name, float('nan')):.1f} s")
        for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])[:6]:
            print(f"    {k}: {v / 3600:.2f} h")


if __name__ == "__main__":
    main()
