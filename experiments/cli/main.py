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
import sys

from . import dpnp, measure, posterior, studies

__all__ = ["main"]


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2
        raise UsageError(message)


def _parser():
    p = _Parser(prog="diffrates", description="Exact convergence rates of diffusion samplers.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    measure.add_parser(sub)
    studies.add_parser(sub)
    dpnp.add_parser(sub)
    posterior.add_parser(sub)
    return p


COMMANDS = {measure.NAME: measure.run, dpnp.NAME: dpnp.run, posterior.NAME: posterior.run,
            **studies.COMMANDS}


def main(argv=None) -> int:
    try:
        a = _parser().parse_args(argv)
        if a.command is None:
            raise UsageError("missing command: " + " | ".join(COMMANDS)
                             + " (see diffrates --help)")
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
