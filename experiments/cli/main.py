"""The ``diffrates`` command line: one module per group of subcommands, each with
``add_parser(sub)`` and its command functions.

    diffrates measure --prior bimodal --d 1 --sampler li-ode --schedule li --T 1000 --metric tv [--json]
    diffrates dpnp --prior bimodal --likelihood gaussian --eta 0.3 --K 30
    diffrates posterior --method tds --problem bimodal-1d-gaussian --nfe 200
    diffrates run rate-vs-T [--fast]
    diffrates reproduce [--fast]
    diffrates list

Bad input exits with status 2 and a one-line message (no traceback): the library raises
``ValueError`` with a one-line message for every input it refuses.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import dpnp, measure, posterior, studies

__all__ = ["main"]


class UsageError(Exception):
    pass


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` names every option's default, except where there is none (``None``, a
    flag) or the help text already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, status 2
        raise UsageError(message)


def _parser():
    p = _Parser(prog="diffrates", description="Exact convergence rates of diffusion samplers.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    measure.add_parser(sub)
    studies.add_parser(sub)
    dpnp.add_parser(sub)
    posterior.add_parser(sub)
    for cmd in sub.choices.values():
        cmd.add_argument("--threads", type=int, default=1,
                         help="CPU threads of this process (numpy, scipy, torch; default 1: on "
                              "a shared 2-core machine two threads ran the push-forward "
                              "3.8-8.6x slower, see experiments/bench/roofline.py; 0: the "
                              "libraries' own choice). Local pool workers of run / reproduce "
                              "keep cores / workers threads each.")
    return p


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def apply_thread_policy(threads: int) -> None:
    """Set the thread count of this process's numerical libraries before any of them loads
    (the command functions import the library): the BLAS / OpenMP variables, which numpy's
    OpenBLAS and torch read at start-up (and torch's own setting if it is already loaded).
    ``0`` leaves the libraries' defaults."""
    if threads < 0:
        raise ValueError(f"--threads must be a non-negative integer, got {threads}")
    if threads > 0:
        for var in THREAD_VARIABLES:
            os.environ[var] = str(threads)
        if "torch" in sys.modules:          # already loaded in this process (e.g. by a caller)
            sys.modules["torch"].set_num_threads(threads)


COMMANDS = {measure.NAME: measure.run, dpnp.NAME: dpnp.run, posterior.NAME: posterior.run,
            **studies.COMMANDS}


def main(argv=None) -> int:
    try:
        a = _parser().parse_args(argv)
        if a.command is None:
            raise UsageError("missing command: " + " | ".join(COMMANDS)
                             + " (see diffrates --help)")
        apply_thread_policy(a.threads)
        return COMMANDS[a.command](a)
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
