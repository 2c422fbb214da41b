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


# (flag, default, help): each flag's value goes to the configuration key of its name; a
# default of None leaves the field to experiments.points.measure.DEFAULTS, so that a flag the
# request would ignore (--c0 without --schedule li, ...) is refused only when it was given
OPTIONS = [
    ("--prior", None, "bimodal | gauss | subspace | gmm (default bimodal)"),
    ("--prior-file", None, "a prior from a JSON or NPZ file (mixture, gaussian, product or "
                           "subspace; see theory.prior_files) instead of --prior"),
    ("--d", None, "dimension (integer >= 1; default 1, or the prior file's)"),
    ("--sampler", "li-ode", "li-ode | li-sde | li-yan | ddpm | ddim | accel-sde | accel-ode | "
                            "heun | rk4 | dpm++2m | dpm++3m | dpm++3m-ref"),
    ("--target", "q1", "q1 (compare Y_1 with q_1) | data (run the step t = 1 too and compare "
                       "Y_0 with the data law)"),
    ("--init", "standard-normal", "standard-normal | qT (start from the exact forward marginal "
                                  "q_T)"),
    ("--schedule", "li", "li | linear | cosine"),
    ("--T", "1000", "number of steps (integer >= 2)"),
    ("--metric", "tv", "tv | kl | hellinger | w2 | sliced_w2 | sinkhorn (the last two: "
                       "--method samples)"),
    ("--c0", None, "li schedule: beta_1 = T^-c0 (default 2)"),
    ("--c1", None, "li schedule: growth constant (default 4)"),
    ("--method", "exact", "exact | pushforward | samples | auto (auto: the most accurate that "
                          "applies)"),
    ("--samples", None, "samples for pushforward / samples methods (default 20000; 1000 for w2 "
                        "in d > 1)"),
    ("--seed", "0", "seed of the sampling methods"),
    ("--prior-seed", None, "seed of the gmm preset's parameters (default 0)"),
    ("--perturbation", "none", "score error: none | additive-field | wrong-weights | "
                               "wrong-variances | step-noise (product priors)"),
    ("--eps", None, "size of the score perturbation (default 0; additive-field, step-noise, "
                      "wrong-variances: at most 100; wrong-weights: at most 1)"),
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


def defaults_note(a, cfg: dict) -> str:
    """The core options left at their defaults (values as the normalised configuration ``cfg``
    holds them), as a command-line fragment ('' if none). A prior file sets prior and d."""
    given = getattr(a, "given", frozenset())
    if "prior_file" in given:
        given = given | {"prior", "d"}
    left = [f"{flag} {cfg[flag[2:]]}" for flag in CORE if flag[2:] not in given]
    return " ".join(left)


def run(a) -> int:
    from ..points.measure import measure, normalise_config   # the library loads when a command runs
    from ..runtime.store import provenance
    cfg = normalise_config({flag[2:].replace("-", "_"): getattr(a, flag[2:].replace("-", "_"))
                            for flag, _, _ in OPTIONS})
    res = measure(cfg)
    left = defaults_note(a, cfg)
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
        q, y = ("p_0", "Y_0") if cfg.get("target") == "data" else ("q_1", "Y_1")
        name = {"tv": "TV", "kl": f"KL({q} || law {y})", "hellinger": "Hellinger",
                "w2": "W2", "sliced_w2": "SW2", "sinkhorn": "S_eps"}[cfg["metric"]]
        pair = "" if cfg["metric"] == "kl" else f"({q}, law {y})"
        print(f"{name}{pair} = {with_interval(res['value'], res['lower'], res['upper'])}")
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
        print(f"  prior={cfg.get('prior_file', cfg['prior'])} d={cfg['d']} "
              f"sampler={cfg['sampler']} schedule={cfg['schedule']} T={cfg['T']}"
              + (f" c0={cfg['c0']:g} c1={cfg['c1']:g}" if cfg["schedule"] == "li" else "")
              + "".join(f" {k}={cfg[k]}" for k in ("target", "init") if k in cfg))
    return 0
