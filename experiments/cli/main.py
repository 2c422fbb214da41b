"""The ``diffrates`` command line: one module per group of subcommands, each with
``add_parser(sub)`` and its command functions.

    diffrates measure --prior bimodal --d 1 --sampler li-ode --schedule li --T 1000 --metric tv [--json]
    diffrates dpnp --prior bimodal --likelihood gaussian --eta 0.3 --K 30
    diffrates run rate-vs-T [--fast]
    diffrates reproduce [--fast]
    diffrates list

Bad input exits with status 2 and a one-line message (no traceback): the library raises
``ValueError`` with a one-line message for every input it refuses.
"""
from __future__ import annotations

import argparse
import sys

from . import dpnp, measure, studies

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
    return p


COMMANDS = {measure.NAME: measure.run, dpnp.NAME: dpnp.run, **studies.COMMANDS}


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
