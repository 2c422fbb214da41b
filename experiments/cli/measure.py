"""``diffrates measure``: the distance between law(Y_1) and q_1 for one configuration, with its
interval and method (computed by :mod:`experiments.points.measure`).

    diffrates measure --prior bimodal --d 100 --sampler li-sde --schedule li --T 1000 --metric tv
"""
from __future__ import annotations

import argparse
import json
import sys

from .text import full, with_interval

NAME = "measure"
# the options that define what is measured: named on stderr when left at their defaults
CORE = ("--prior", "--d", "--sampler", "--schedule", "--T", "--metric")


# (flag, default, help): each flag's value goes to the configuration key of its name
OPTIONS = [
    ("--prior", "bimodal", "bimodal | gauss | subspace | gmm"),
    ("--d", "1", "dimension (integer >= 1)"),
    ("--sampler", "li-ode", "li-ode | li-sde | li-yan | ddpm | ddim | accel-sde | accel-ode"),
    ("--schedule", "li", "li | linear | cosine"),
    ("--T", "1000", "number of steps (integer >= 2)"),
    ("--metric", "tv", "tv | kl | hellinger | w2 | sliced_w2 | sinkhorn (the last two: "
                       "--method samples)"),
    ("--c0", "2", "li schedule: beta_1 = T^-c0"),
    ("--c1", "4", "li schedule: growth constant"),
    ("--method", "exact", "exact | pushforward | samples | auto (auto: the most accurate that "
                          "applies)"),
    ("--samples", None, "samples for pushforward / samples methods (default 20000; 1000 for w2 "
                        "in d > 1)"),
    ("--seed", "0", "seed of the sampling methods"),
    ("--prior-seed", "0", "seed of the gmm preset's parameters"),
    ("--perturbation", "none", "score error: none | additive-field | wrong-weights | "
                               "wrong-variances | step-noise (product priors)"),
    ("--eps", "0", "size of the score perturbation"),
    ("--device", "cpu", "cpu | cuda[:N]"),
]


class _Given(argparse.Action):
    """Store the value and remember that the option was given on the command line."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


def add_parser(sub):
    m = sub.add_parser("measure", help="distance between law(Y_1) and q_1 for one configuration",
                       description="The distance between law(Y_1) and q_1 for one "
                                   "configuration, with its interval and method. Options left "
                                   "out take the defaults shown (and the command names them).")
    for flag, default, text in OPTIONS:
        m.add_argument(flag, default=default, help=text, action=_Given)
    m.add_argument("--json", action="store_true", help="print one JSON object")
    return m


def defaults_note(a) -> str:
    """The core options left at their defaults, as a command-line fragment ('' if none)."""
    given = getattr(a, "given", frozenset())
    left = [f"{flag} {getattr(a, flag[2:])}" for flag in CORE if flag[2:] not in given]
    return " ".join(left)


def run(a) -> int:
    from ..points.measure import measure, normalise_config   # the library loads when a command runs
    from ..runtime.store import provenance
    cfg = normalise_config({flag[2:].replace("-", "_"): getattr(a, flag[2:].replace("-", "_"))
                            for flag, _, _ in OPTIONS})
    res = measure(cfg)
    left = defaults_note(a)
    if left:       # say what was measured when the command line does not (stderr: --json)
        print(f"diffrates measure: defaults used: {left} (see diffrates measure --help)",
              file=sys.stderr)
    if a.json:
        out = {**{k: res[k] for k in ("value", "lower", "upper", "error", "method", "method_kind",
                                      "interval", "injected") if k in res},
               "config": cfg, "provenance": provenance(cfg["device"]),
               "details": res["details"]}
        print(json.dumps(out, default=float))
    else:
        name = {"tv": "TV", "kl": "KL(q_1 || law Y_1)", "hellinger": "Hellinger",
                "w2": "W2", "sliced_w2": "SW2", "sinkhorn": "S_eps"}[cfg["metric"]]
        print(f"{name}(q_1, law Y_1) = {with_interval(res['value'], res['lower'], res['upper'])}")
        print(f"  method: {res['method']} ({res['interval']})")
        floor = res["details"].get("floor") if isinstance(res.get("details"), dict) else None
        if floor:
            stat = res["details"].get("statistic")
            if stat is not None:
                print(f"  raw statistic (before the bias correction): {full(stat)}")
            print(f"  noise floor: {full(floor['value'])} (upper {full(floor['upper'])})"
                  + ("; the value is BELOW the floor: not told apart from sampling noise"
                     if res["details"].get("below_floor") else ""))
        if "injected" in res:
            print(f"  injected: eps_score = {full(res['injected']['eps_score'])}, "
                  f"eps_Jacobi = {full(res['injected']['eps_jacobi'])}")
        print(f"  prior={cfg['prior']} d={cfg['d']} sampler={cfg['sampler']} "
              f"schedule={cfg['schedule']} T={cfg['T']}"
              + (f" c0={cfg['c0']:g} c1={cfg['c1']:g}" if cfg["schedule"] == "li" else ""))
    return 0
