"""The ``diffrates`` command line.

    diffrates measure --prior bimodal --d 1 --sampler li-ode --schedule li --T 1000 --metric tv [--json]
    diffrates run rate-vs-T [--fast]
    diffrates list

Bad input exits with status 2 and a one-line message (no traceback).
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main"]


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2
        raise UsageError(message)


def _parser():
    p = _Parser(prog="diffrates", description="Exact convergence rates of diffusion samplers.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    m = sub.add_parser("measure", help="distance between law(Y_1) and q_1 for one configuration")
    m.add_argument("--prior", default="bimodal", help="bimodal | gauss | subspace | gmm")
    m.add_argument("--d", default="1", help="dimension (integer >= 1)")
    m.add_argument("--sampler", default="li-ode",
                   help="li-ode | li-sde | li-yan | ddpm | ddim | accel-sde | accel-ode")
    m.add_argument("--schedule", default="li", help="li | linear | cosine")
    m.add_argument("--T", default="1000", help="number of steps (integer >= 2)")
    m.add_argument("--metric", default="tv",
                   help="tv | kl | hellinger | w2 | sliced_w2 | sinkhorn (the last two: "
                        "--method samples)")
    m.add_argument("--c0", default="2", help="li schedule: beta_1 = T^-c0 (default 2)")
    m.add_argument("--c1", default="4", help="li schedule: growth constant (default 4)")
    m.add_argument("--method", default="exact",
                   help="exact | pushforward | samples | auto (auto: the most accurate that applies)")
    m.add_argument("--samples", default=None, help="samples for pushforward / samples methods "
                                                   "(default 20000; 1000 for w2 in d > 1)")
    m.add_argument("--seed", default="0", help="seed of the sampling methods")
    m.add_argument("--prior-seed", default="0", help="seed of the gmm preset's parameters")
    m.add_argument("--perturbation", default="none",
                   help="score error: none | additive-field | wrong-weights | wrong-variances | "
                        "step-noise (product priors)")
    m.add_argument("--eps", default="0", help="size of the score perturbation")
    m.add_argument("--device", default="cpu", help="cpu | cuda[:N]")
    m.add_argument("--json", action="store_true", help="print one JSON object")

    def sweep_options(parser, figures=True, fast_help="coarser grids: minutes on 2 cores"):
        parser.add_argument("--fast", action="store_true", help=fast_help)
        parser.add_argument("--results", default=None, help="results folder (default: ./results)")
        if figures:
            parser.add_argument("--figures", default="figures",
                                help="figures folder (default: ./figures)")
        parser.add_argument("--executor", default="local",
                            help="local (processes up to the core count) | serial | dask | "
                                 "dask=ADDRESS")

    r = sub.add_parser("run", help="run a registered experiment (cached, resumable)")
    r.add_argument("name", help="experiment name (see `diffrates list`)")
    sweep_options(r)
    sweep_options(sub.add_parser("reproduce",
                                 help="run every registered experiment (cached, resumable)"))
    sweep_options(sub.add_parser("report",
                                 help="tightness report: measured exponents beside every bound"),
                  figures=False, fast_help="run missing experiments in fast mode")

    sub.add_parser("list", help="list the registered experiments")
    for mod in _extra_commands():
        mod.add_parser(sub)
    return p


# Further subcommands live in their own modules, each with ``NAME``, ``add_parser(sub)``
# (adds its subparser) and ``run(args) -> int``.
EXTRA_COMMANDS = ("experiments.dpnp_cmd",)


def _extra_commands():
    import importlib
    return [importlib.import_module(m) for m in EXTRA_COMMANDS]


def _cmd_measure(a) -> int:
    from .measure import measure, normalise_config
    cfg = normalise_config({"prior": a.prior, "d": a.d, "sampler": a.sampler,
                            "schedule": a.schedule, "T": a.T, "metric": a.metric,
                            "c0": a.c0, "c1": a.c1, "seed": a.seed, "device": a.device,
                            "perturbation": a.perturbation, "eps": a.eps,
                            "method": a.method, "samples": a.samples,
                            "prior_seed": a.prior_seed})
    from theory.output_laws import NoExactLaw
    try:
        res = measure(cfg)
    except NoExactLaw as exc:
        raise UsageError(str(exc)) from None
    if a.json:
        from .store import provenance
        out = {**{k: res[k] for k in ("value", "lower", "upper", "error", "method", "method_kind",
                                      "interval", "injected") if k in res},
               "config": cfg, "provenance": provenance(cfg["device"]),
               "details": res["details"]}
        print(json.dumps(out, default=float))
    else:
        name = {"tv": "TV", "kl": "KL(q_1 || law Y_1)", "hellinger": "Hellinger",
                "w2": "W2", "sliced_w2": "SW2", "sinkhorn": "S_eps"}[cfg["metric"]]
        print(f"{name}(q_1, law Y_1) = {res['value']:.6g}   in [{res['lower']:.6g}, "
              f"{res['upper']:.6g}]")
        print(f"  method: {res['method']} ({res['interval']})")
        floor = res["details"].get("floor") if isinstance(res.get("details"), dict) else None
        if floor:
            print(f"  noise floor: {floor['value']:.4g} (upper {floor['upper']:.4g})"
                  + ("; the value is BELOW the floor: not told apart from sampling noise"
                     if res["details"].get("below_floor") else ""))
        if "injected" in res:
            print(f"  injected: eps_score = {res['injected']['eps_score']:.4g}, "
                  f"eps_Jacobi = {res['injected']['eps_jacobi']:.4g}")
        print(f"  prior={cfg['prior']} d={cfg['d']} sampler={cfg['sampler']} "
              f"schedule={cfg['schedule']} T={cfg['T']}"
              + (f" c0={cfg['c0']:g} c1={cfg['c1']:g}" if cfg["schedule"] == "li" else ""))
    return 0


def _run_experiment(name, fast, results, figures, executor):
    import inspect

    from . import registry
    mod = registry.get(name)
    kwargs = {"fast": fast, "root": results, "figures_dir": figures}
    if "executor" in inspect.signature(mod.run).parameters:
        kwargs["executor"] = executor
    return mod.run(**kwargs)


def _print_summary(name, summary, seconds=None):
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


def _cmd_run(a) -> int:
    import time

    from .executors import Executor
    t0 = time.perf_counter()
    with Executor(a.executor) as ex:
        summary = _run_experiment(a.name, a.fast, a.results, a.figures, ex)
    _print_summary(a.name, summary, time.perf_counter() - t0)
    return 0


def _cmd_reproduce(a) -> int:
    import time

    from .executors import Executor
    from .registry import EXPERIMENTS
    from .report import build_report, to_markdown
    t0 = time.perf_counter()
    if a.fast:
        print("fast mode: coarser sweeps (fewer T and d values, smaller d ranges, fewer "
              "samples); every figure is still drawn. Run without --fast for full precision.")
    with Executor(a.executor) as ex:       # one pool (or cluster) for every experiment
        for name in EXPERIMENTS:
            t1 = time.perf_counter()
            summary = _run_experiment(name, a.fast, a.results, a.figures, ex)
            _print_summary(name, summary, time.perf_counter() - t1)
        rep = build_report(a.results, fast=a.fast, executor=ex)
    print("tightness report:")
    print(to_markdown(rep), end="")
    print("written: " + ", ".join(rep["files"]))
    print(f"reproduce: done in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_report(a) -> int:
    from .executors import parse_executor
    from .report import build_report, to_markdown
    parse_executor(a.executor)
    rep = build_report(a.results, fast=a.fast, executor=a.executor)
    print(to_markdown(rep), end="")
    print("written: " + ", ".join(rep["files"]))
    return 0


def _cmd_list(a) -> int:
    from .registry import EXPERIMENTS
    for name, (_, desc) in EXPERIMENTS.items():
        print(f"{name:24s} {desc}")
    return 0


def main(argv=None) -> int:
    try:
        a = _parser().parse_args(argv)
        if a.command is None:
            raise UsageError("missing command: measure | run | list (see diffrates --help)")
        commands = {"measure": _cmd_measure, "run": _cmd_run, "list": _cmd_list,
                    "reproduce": _cmd_reproduce, "report": _cmd_report}
        commands.update({mod.NAME: mod.run for mod in _extra_commands()})
        return commands[a.command](a)
    except (UsageError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        print(f"diffrates: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diffrates: interrupted (finished points are saved; rerun to resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
