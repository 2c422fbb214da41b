"""``diffrates run | reproduce | report | list``: the registered studies (cached, resumable).

    diffrates list
    diffrates run rate-vs-T --fast
    diffrates reproduce --fast            # every study, then the tightness report
    diffrates report
"""
from __future__ import annotations

import time

NAMES = ("run", "reproduce", "report", "list")


def _sweep_options(parser, figures=True, fast_help="coarser grids: minutes on 2 cores"):
    parser.add_argument("--fast", action="store_true", help=fast_help)
    parser.add_argument("--results", default=None, help="results folder (default: ./results)")
    if figures:
        parser.add_argument("--figures", default="figures",
                            help="figures folder (default: ./figures)")
    parser.add_argument("--executor", default="local",
                        help="local (processes up to the core count) | serial | dask | "
                             "dask=ADDRESS")


def add_parser(sub):
    r = sub.add_parser("run", help="run a registered experiment (cached, resumable)")
    r.add_argument("name", help="experiment name (see `diffrates list`)")
    _sweep_options(r)
    _sweep_options(sub.add_parser("reproduce",
                                  help="run every registered experiment (cached, resumable)"))
    _sweep_options(sub.add_parser("report",
                                  help="tightness report: measured exponents beside every bound"),
                   figures=False, fast_help="run missing experiments in fast mode")
    sub.add_parser("list", help="list the registered experiments")


def print_summary(name, summary, seconds=None):
    """The command line's account of a finished study: points, fitted exponents, figures."""
    print(f"{name}: {summary['points']} points ({summary['computed']} computed, "
          f"{summary['reused']} reused from cache)"
          + ("" if seconds is None else f" in {seconds:.1f} s"))
    for f in summary.get("fits", []):
        fit = f.get("fit", {})
        label = ", ".join(f"{k}={f[k]}" for k in ("prior", "d", "sampler", "T", "vs")
                          if k in f and not isinstance(f[k], list))
        if "exponent" in fit:
            print(f"  {label}: exponent {fit['exponent']:+.3f} "
                  f"[{fit['ci'][0]:+.3f}, {fit['ci'][1]:+.3f}] over "
                  f"[{fit['x_range'][0]:g}, {fit['x_range'][1]:g}]"
                  + (f" (theory {f['theory_exponent']:+g})"
                     if f.get("theory_exponent") is not None else ""))
            for lname, lf in f.get("log_corrected_fits", {}).items():
                print(f"      {lname}: exponent {lf['exponent']:+.3f} "
                      f"[{lf['ci'][0]:+.3f}, {lf['ci'][1]:+.3f}]")
        elif fit:
            print(f"  {label}: no fit ({fit.get('error')})")
    for fig in ([summary["figure"]] if "figure" in summary else summary.get("figures", [])):
        print(f"  figure: {fig}")
    for table in summary.get("tables", []):
        print(f"  table: {table}")


# The commands import the runtime when they run (start-up time of the other commands).

def cmd_run(a) -> int:
    from ..runtime import registry
    from ..runtime.executors import Executor
    registry.get(a.name)                                  # an unknown name fails at once
    t0 = time.perf_counter()
    with Executor(a.executor) as ex:
        summary = registry.run(a.name, a.fast, a.results, a.figures, ex)
    print_summary(a.name, summary, time.perf_counter() - t0)
    return 0


def cmd_reproduce(a) -> int:
    from ..runtime import registry
    from ..runtime.executors import Executor
    from ..runtime.report import build_report, to_markdown
    t0 = time.perf_counter()
    if a.fast:
        print("fast mode: coarser sweeps (fewer T and d values, smaller d ranges, fewer "
              "samples); every figure is still drawn. Run without --fast for full precision.")
    with Executor(a.executor) as ex:       # one pool (or cluster) for every experiment
        for name in registry.EXPERIMENTS:
            t1 = time.perf_counter()
            summary = registry.run(name, a.fast, a.results, a.figures, ex)
            print_summary(name, summary, time.perf_counter() - t1)
        rep = build_report(a.results, fast=a.fast, executor=ex)
    print("tightness report:")
    print(to_markdown(rep), end="")
    print("written: " + ", ".join(rep["files"]))
    print(f"reproduce: done in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_report(a) -> int:
    from ..runtime.executors import parse_executor
    from ..runtime.report import build_report, to_markdown
    parse_executor(a.executor)
    rep = build_report(a.results, fast=a.fast, executor=a.executor)
    print(to_markdown(rep), end="")
    print("written: " + ", ".join(rep["files"]))
    return 0


def cmd_list(a) -> int:
    from ..runtime.registry import EXPERIMENTS
    for name, (_, desc) in EXPERIMENTS.items():
        print(f"{name:24s} {desc}")
    return 0


COMMANDS = {"run": cmd_run, "reproduce": cmd_reproduce, "report": cmd_report, "list": cmd_list}
