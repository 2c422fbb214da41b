"""Benchmark (issue 10): the exact grid law of a 1000-step chain on a 1-D grid, to TV accuracy
1e-4, against the binned Monte Carlo TV at equal accuracy, as a ratio of wall times.

    python -m experiments.bench.chain_law_vs_mc [--steps 1000] [--n 100000]

The chain: ULA with step s = 0.05 on the bimodal target 0.5 N(-1.5, 0.3) + 0.5 N(1.5, 0.3)
(x' = x + s grad log pi(x) + sqrt(2 s) Z) from N(0, 1); the quantity is TV(law x_1000, pi),
nonzero because of ULA's bias.

Ours: :func:`theory.posterior.chains1d.chain_laws_1d` at spacings h, 2h, 4h with
:func:`theory.posterior.refinement.refine` halving h until the refinement error is below
1e-4 (the time covers every level run).

Monte Carlo: n chains run in numpy (float64), the binned TV of their end points against
the target's grid masses (:func:`theory.posterior.estimators.binned_tv`) whose noise floor
(95% quantile on n exact draws) is the accuracy such an estimate can claim. The floor
shrinks as n^(-1/2), so reaching the floor 1e-4 takes n (floor/1e-4)^2 chains, and the time
grows linearly in n: that time is extrapolated from the measured run (printed as such; it
is not a measurement, a run of ~10^9 chains being out of reach here).

Everything runs on one CPU core (thread counts pinned before numpy / torch load).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse   # noqa: E402
import math       # noqa: E402
import time       # noqa: E402

import numpy as np   # noqa: E402

from theory.posterior.chain_steps import GaussianStep   # noqa: E402
from theory.posterior.chains1d import Axis, chain_laws_1d   # noqa: E402
from theory.posterior.estimators import binned_tv   # noqa: E402
from theory.posterior.grid_base import tv_spectral   # noqa: E402
from theory.posterior.refinement import refine   # noqa: E402

S = 0.05
TARGET = 1e-4


def log_pi(z):
    return np.logaddexp(-0.5 * (z - 1.5) ** 2 / 0.3, -0.5 * (z + 1.5) ** 2 / 0.3)


def grad_log_pi(z):
    w = 1 / (1 + np.exp(-(-0.5 * (z - 1.5) ** 2 / 0.3 + 0.5 * (z + 1.5) ** 2 / 0.3)))
    return -(w * (z - 1.5) + (1 - w) * (z + 1.5)) / 0.3


def exact(steps: int, h0: float):
    step = GaussianStep(lambda z: z + S * grad_log_pi(z), math.sqrt(2 * S), "ULA")

    def run_at(h):
        ax = Axis.covering(-7, 7, h)
        x = ax.nodes
        init = np.exp(-0.5 * x * x)
        init /= init.sum()
        pi = np.exp(log_pi(x))
        pi /= pi.sum()
        res = chain_laws_1d([step] * steps, ax, init, keep=[steps])
        return {"tv": [tv_spectral(res.laws[0], pi)], "lost": res.lost[0], "x": x, "pi": pi}

    t = time.perf_counter()
    fine, err = refine(run_at, h0, ["tv"], target=TARGET, max_halvings=4)
    return time.perf_counter() - t, fine, err


def monte_carlo(steps: int, n: int, x, pi, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    z = rng.standard_normal(n)
    c = math.sqrt(2 * S)
    for _ in range(steps):
        z = z + S * grad_log_pi(z) + c * rng.standard_normal(n)
    run = time.perf_counter() - t
    est = binned_tv(z, x, pi, seed=seed)
    return run, est


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--n", type=int, default=100000, help="Monte Carlo chains measured")
    ap.add_argument("--h", type=float, default=0.1, help="finest spacing to start from")
    a = ap.parse_args(argv)
    t_ex, fine, err = exact(a.steps, a.h)
    print(f"exact grid law: TV = {fine['tv'][0]:.6f} +- {err['tv'][0]:.1e} (h = "
          f"{err['levels'][0]:.4g}, levels {err['levels']}), {t_ex:.2f} s for all levels")
    t_mc, est = monte_carlo(a.steps, a.n, fine["x"], fine["pi"])
    need = a.n * (est.floor_q95 / TARGET) ** 2
    t_need = t_mc * need / a.n
    print(f"Monte Carlo, n = {a.n}: binned TV = {est.value:.4f} [{est.lower:.4f}, "
          f"{est.upper:.4f}], floor (95% q.) {est.floor_q95:.2e}, chains {t_mc:.2f} s")
    print(f"Monte Carlo to floor {TARGET:g}: n ~ {need:.2e} chains, ~{t_need:.3g} s "
          f"(extrapolated linearly in n from the measured run)")
    print(f"ratio (Monte Carlo at equal accuracy / exact law): {t_need / t_ex:.3g}")
    print(f"ratio at the measured n (accuracy {est.floor_q95:.1e} vs {err['tv'][0]:.1e}): "
          f"{t_mc / t_ex:.3g}")


if __name__ == "__main__":
    main()
