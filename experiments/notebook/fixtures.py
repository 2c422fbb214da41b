"""``python -m experiments.notebook.fixtures [--results DIR] [NAME ...]``: write the fast-mode
summary of each registered experiment (default: all) to ``tests/data/summaries/NAME.json``.

These small summaries are the pre-computed cache the notebook test executes
``paper_figs.ipynb`` against, and what the figure test renders every registered study's
figure from (``tests/test_figures.py``). A new or changed study needs its fixture
(re)written: this runs the study in fast mode (cached under ``--results``, so a rerun only
re-summarises) and keeps its summary without the per-run bookkeeping.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..runtime import registry

__all__ = ["FIXTURES", "write_fixture"]

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "summaries"
# run bookkeeping that differs between runs and that no figure or reading uses
VOLATILE = ("figure", "figures", "tables", "computed", "reused")


def write_fixture(name: str, results=None, dest: Path = FIXTURES) -> Path:
    """Run ``name`` in fast mode (cached under ``results``) and write its summary."""
    with tempfile.TemporaryDirectory() as figs:
        summary = registry.run(name, fast=True, root=results, figures_dir=figs,
                               executor="serial")
    out = {k: v for k, v in summary.items() if k not in VOLATILE}
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.json"
    path.write_text(json.dumps(out, indent=None, separators=(",", ":"), default=float) + "\n")
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.notebook.fixtures")
    p.add_argument("names", nargs="*", help="experiments (default: every registered one)")
    p.add_argument("--results", default=None, help="results folder (cache of the points)")
    a = p.parse_args(argv)
    for name in a.names or list(registry.EXPERIMENTS):
        registry.get(name)
        print(write_fixture(name, a.results))


if __name__ == "__main__":
    main()
