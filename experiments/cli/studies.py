"""``diffrates run | reproduce | report | list``: the registered studies (cached, resumable),
and what the library offers.

    diffrates list                        # priors, samplers, schedules, metrics, ... experiments
    diffrates run rate-vs-T --fast
    diffrates reproduce --fast            # every study, then the tightness report
    diffrates report                      # from cached results; --compute runs what is missing
"""
from __future__ import annotations

import sys
import time

from .text import full

NAMES = ("run", "reproduce", "report", "list")


def _sweep_options(parser, figures=True, fast_help="coarser grids: minutes on 2 cores"):
    parser.add_argument("--fast", action="store_true", help=fast_help)
    parser.add_argument("--results", default=None,
                        help="results folder (default: $DIFFRATES_RESULTS or ./results)")
    if figures:
        parser.add_argument("--figures", default="figures", help="figures folder")
    parser.add_argument("--executor", default="local",
                        help="local (processes up to the core count) | serial | dask | "
                             "dask=ADDRESS")


def add_parser(sub):
    r = sub.add_parser("run", help="run a registered experiment (cached, resumable)")
    r.add_argument("name", help="experiment name (see `diffrates list`)")
    _sweep_options(r)
    _sweep_options(sub.add_parser("reproduce",
                                  help="run every registered experiment (cached, resumable)"))
    rep = sub.add_parser("report", help="tightness report: measured exponents beside every "
                                        "bound, from the cached results")
    _sweep_options(rep, figures=False, fast_help="with --compute: run the missing experiments "
                                                  "in fast mode")
    rep.add_argument("--compute", action="store_true",
                     help="run the experiments whose results are missing (without it, the "
                          "report names them and computes nothing)")
    ls = sub.add_parser("list", help="what there is: priors, samplers, schedules, metrics, "
                                     "score perturbations, likelihoods, posterior samplers, "
                                     "experiments")
    ls.add_argument("what", nargs="?", default=None, choices=tuple(LISTS),
                    help="one section only (default: all)")


def print_summary(name, summary, seconds=None):
    """The command line's account of a finished study: points, fitted exponents, figures."""
    from ..runtime.study import FIT_LABEL_KEYS
    print(f"{name}: {summary['points']} points ({summary['computed']} computed, "
          f"{summary['reused']} reused from cache)"
          + ("" if seconds is None else f" in {seconds:.1f} s"))
    for f in summary.get("fits", []):
        fit = f.get("fit", {})
        label = ", ".join(f"{k}={f[k]}" for k in FIT_LABEL_KEYS
                          if k in f and not isinstance(f[k], list))
        what = f.get("quantity", "exponent")
        if "exponent" in fit:
            print(f"  {label}: {what} {full(fit['exponent'])} "
                  f"[{full(fit['ci'][0])}, {full(fit['ci'][1])}] over "
                  f"[{fit['x_range'][0]:g}, {fit['x_range'][1]:g}]"
                  + (f" (theory {full(f['theory_exponent'])})"
                     if f.get("theory_exponent") is not None else ""))
            for lname, lf in f.get("log_corrected_fits", {}).items():
                if "exponent" in lf:
                    print(f"      {lname}: exponent {full(lf['exponent'])} "
                          f"[{full(lf['ci'][0])}, {full(lf['ci'][1])}]")
        elif fit:
            print(f"  {label}: no fit ({fit.get('error')})")
    for fig in ([summary["figure"]] if "figure" in summary else summary.get("figures", [])):
        print(f"  figure: {fig}")
    for table in summary.get("tables", []):
        print(f"  table: {table}")


# The commands import the runtime when they run (start-up time of the other commands).

def check_outputs(a, figures: bool = True) -> None:
    """Up-front: the results (and figures) folders can be written, before any computing."""
    from theory.checks import check_writable_dir

    from ..runtime.store import default_root
    check_writable_dir(a.results if a.results is not None else default_root(), "--results folder")
    if figures:
        check_writable_dir(a.figures, "--figures folder")


def cmd_run(a) -> int:
    from ..runtime import registry
    from ..runtime.executors import Executor
    registry.get(a.name)                                  # an unknown name fails at once
    ex = Executor(a.executor)                             # a bad executor too
    check_outputs(a)
    ex.check()                                            # a Dask scheduler answers
    t0 = time.perf_counter()
    with ex:
        summary = registry.run(a.name, a.fast, a.results, a.figures, ex)
    print_summary(a.name, summary, time.perf_counter() - t0)
    return 0


def cmd_reproduce(a) -> int:
    from ..runtime import registry
    from ..runtime.executors import Executor
    from ..runtime.report import build_report, to_markdown
    ex = Executor(a.executor)
    check_outputs(a)
    ex.check()
    t0 = time.perf_counter()
    if a.fast:
        print("fast mode: coarser sweeps (fewer T and d values, smaller d ranges, fewer "
              "samples); every figure is still drawn. Run without --fast for full precision.")
    print(f"reproduce: {len(registry.EXPERIMENTS)} experiments on the {a.executor} executor"
          + (" (the Dask cluster starts with the first points: a minute or two)"
             if a.executor.startswith("dask") else ""), flush=True)
    with ex:                               # one pool (or cluster) for every experiment
        for name in registry.EXPERIMENTS:
            t1 = time.perf_counter()
            summary = registry.run(name, a.fast, a.results, a.figures, ex)
            print_summary(name, summary, time.perf_counter() - t1)
        rep = build_report(a.results, fast=a.fast, executor=ex, compute=True)
    print("tightness report:")
    print(to_markdown(rep), end="")
    print("written: " + ", ".join(rep["files"]))
    print(f"reproduce: done in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_report(a) -> int:
    from theory.checks import check_writable_dir

    from ..runtime.executors import Executor
    from ..runtime.report import build_report, missing_summaries, to_markdown
    ex = Executor(a.executor)
    check_outputs(a, figures=False)
    if a.compute and missing_summaries(a.results):   # experiments will run: figures, executor
        check_writable_dir("figures", "figures folder")
        ex.check()
    rep = build_report(a.results, fast=a.fast, executor=a.executor, compute=a.compute)
    print(to_markdown(rep), end="")
    print("written: " + ", ".join(rep["files"]))
    if rep["missing"]:
        print("report: no results for " + ", ".join(rep["missing"]) + ": their cells say "
              "'not computed'. Run `diffrates report --compute [--fast]` (or `diffrates run "
              "NAME [--fast]` for each) to compute them.", file=sys.stderr)
    return 0


def _first_line(obj) -> str:
    doc = " ".join((obj.__doc__ or "").strip().split("\n\n")[0].split())
    return doc.replace("``", "").split(". ")[0].rstrip(".")


# one line per name the library registers (a name without a line here shows its docstring's)
DESCRIBE = {
    "bimodal": "product of d copies of 0.5 N(-2, 0.25^2) + 0.5 N(2, 0.25^2): exact in any d",
    "gauss": "N(0, diag(lambda)), lambda log-spaced in [0.1, 10]: closed forms in any d",
    "subspace": "4 components at (+-2, +-2) on a plane (k = 2), nothing off it: exact in any d",
    "gmm": "8 components with seeded random means and full covariances (--prior-seed)",
    "linear": "Ho et al. linear betas 1e-4..0.02 (at T = 1000), rescaled to T steps",
    "cosine": "Nichol & Dhariwal cosine schedule (beta capped at 0.999)",
    "exact": "exact output law and distance with a numerical error bound (default)",
    "pushforward": "deterministic samplers on any mixture: Monte Carlo TV/KL of exact "
                   "push-forward densities, 95% CI",
    "samples": "sample-based W2 / sliced W2 / Sinkhorn against exact draws of q_1: "
               "bias-corrected value, interval, noise floor",
    "auto": "the most accurate method that applies (named in the output)",
    "additive-field": "s + eps sin(x) in every coordinate (product priors)",
    "wrong-weights": "the score of the prior with weights (1 - eps) w + eps (uniform)",
    "wrong-variances": "the score of the prior with every component variance times 1 + eps",
    "step-noise": "s + eps xi_t, fresh N(0, I) noise at every step",
    "gaussian": "y = A x + sigma eps (closed-form posterior for mixture priors)",
    "phase": "phase retrieval y = |A x| + sigma eps",
    "logistic": "1-bit measurements, P(y_i = +1 | x) = sigmoid((A x)_i / lambda)",
    "li-ode": "deterministic (probability flow), Li-Wei-Chen-Chi 2024: bound d^2/T",
    "li-sde": "stochastic (DDPM type), Li-Wei-Chen-Chi 2024: bound d^2/sqrt(T)",
    "li-yan": "stochastic, coefficients adaptive to the intrinsic dimension (Li & Yan 2024)",
    "ddpm": "Ho et al. ancestral sampling (x0_hat / eps_hat form)",
    "ddim": "Song et al. DDIM, deterministic",
    "accel-sde": "accelerated stochastic (Li et al. ICML 2024): 1/T",
    "accel-ode": "accelerated deterministic, a two-step rule (Li et al. ICML 2024): 1/T^2",
    "li": "Li-Wei-Chen-Chi theorem schedule, beta_1 = T^-c0, growth c1 log T / T (--c0, --c1)",
    "tv": "total variation (1/2) int |p - q|: exact",
    "kl": "KL(q_1 || law Y_1): exact",
    "hellinger": "sqrt(1 - int sqrt(pq)): exact",
    "w2": "2-Wasserstein: exact (product priors) or sample-based (--method samples)",
    "sliced_w2": "sliced W2, 200 directions uniform on the sphere: sample-based",
    "sinkhorn": "debiased Sinkhorn divergence S_eps, eps = 0.5: sample-based",
}


def _sections():
    """(title, [(name, description)]) for every list, from the library's registries."""
    from theory.distances.exact import METRICS
    from theory.distances.samples import SAMPLE_METRICS
    from theory.posterior.annealing import ANNEALINGS
    from theory.posterior.likelihoods import LIKELIHOODS, OPERATORS
    from theory.priors import PRESETS
    from theory.samplers import SAMPLERS
    from theory.schedules import SCHEDULES
    from theory.score_errors import PERTURBATIONS

    from ..points.dpnp import DDS_METHODS, PCS_METHODS
    from ..points.measure import METHODS
    from ..runtime.registry import EXPERIMENTS

    def rows(names, objs=None):
        return [(n, DESCRIBE.get(n) or (_first_line(objs[n]) if objs else "")) for n in names]
    metrics = list(dict.fromkeys(list(METRICS) + list(SAMPLE_METRICS)))
    return {
        "priors": ("priors (--prior; d from --d)", rows(PRESETS, PRESETS)),
        "samplers": ("samplers (--sampler)", rows(SAMPLERS)),
        "schedules": ("schedules (--schedule)", rows(SCHEDULES, SCHEDULES)),
        "metrics": ("metrics (--metric)", rows(metrics)),
        "methods": ("methods (measure --method)", rows(METHODS)),
        "perturbations": ("score perturbations (measure --perturbation, --eps)",
                          rows(PERTURBATIONS, PERTURBATIONS)),
        "likelihoods": ("likelihoods (dpnp --likelihood; --operator "
                        + " | ".join(OPERATORS) + ")", rows(LIKELIHOODS, LIKELIHOODS)),
        "posterior": ("DPnP sub-samplers and annealing (dpnp --pcs, --dds, --schedule)",
                      [("pcs", " | ".join(PCS_METHODS)), ("dds", " | ".join(DDS_METHODS)),
                       ("schedule", " | ".join(ANNEALINGS))]),
        "experiments": ("experiments (diffrates run NAME; reproduce runs them all)",
                        [(n, d) for n, (_, d) in EXPERIMENTS.items()]),
    }


LISTS = ("priors", "samplers", "schedules", "metrics", "methods", "perturbations",
         "likelihoods", "posterior", "experiments")


def cmd_list(a) -> int:
    sections = _sections()
    for key in LISTS if a.what is None else (a.what,):
        title, rows = sections[key]
        print(title + ":")
        width = max(len(n) for n, _ in rows) + 2
        for name, desc in rows:
            print(f"  {name:{width}s}{desc}".rstrip())
        print()
    return 0


COMMANDS = {"run": cmd_run, "reproduce": cmd_reproduce, "report": cmd_report, "list": cmd_list}
