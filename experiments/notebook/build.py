"""Build ``paper_figs.ipynb`` from the experiment registry (one section per figure).

    python -m experiments.notebook          # rewrites paper_figs.ipynb, without outputs

Each section shows the claim its experiment checks, the figure, a table of the measured
exponents with their intervals and one computed sentence on what they say
(:func:`experiments.notebook.sections.show_section`). The notebook runs in fast mode unless
``DIFFRATES_FAST=0``; it reads cached summaries made in that mode and computes the missing
ones. Cell ids are derived from the section names, so a rebuild changes only what changed.
"""
from __future__ import annotations

import re

import nbformat as nbf

from ..runtime.registry import EXPERIMENTS

HEADER = """# diffrates: paper figures

Each section checks one claim of a paper (THEORY.md section 3 for the samplers' rates,
section 6 for DPnP, section 7 for the posterior samplers and the low-rank vignette, ScaledGD
against GD), measured with exact output laws and distances where the problem allows them:
the claim, the figure, a table of the fitted exponents where the section fits any, and a
sentence on what the numbers say.

How to read the numbers: an exponent is printed `k [lo, hi]`, its 95% interval, with as
many decimals as it takes for the value to sit strictly inside; an interval narrower than
1e-4 is printed `k ± w`, w the largest distance from k to an end (rounded up). A verdict
reads "consistent" when the theory's exponent lies within 0.05 of the interval (the
allowance for the log factors and higher-order terms the theorems ignore), "bound loose by
a factor T^a or more" when the whole interval lies on the better side, a the distance beyond
that allowance, and "violated" on the worse side once the fit range has settled.

It reads the cached results under `results/` (as left by `diffrates reproduce`, with
`--fast` for the fast mode) and computes what is missing. Fast mode (coarser sweeps) is
the default; `DIFFRATES_FAST=0` shows the full-precision results."""

SETUP = """import os
from experiments.notebook.sections import show_section

FAST = os.environ.get("DIFFRATES_FAST", "1") == "1"
RESULTS = os.environ.get("DIFFRATES_RESULTS", "results")
FIGURES = os.environ.get("DIFFRATES_FIGURES", "figures")
summaries = {}
print("fast mode" if FAST else "full precision", "| results:", RESULTS, "| figures:", FIGURES)"""

EXPLORE = """## Explore

One line for a curve of exact distances (any prior preset, samplers, metric):"""

EXPLORE_CODE = """from experiments.notebook.explore import curve_vs_T
curves = curve_vs_T("bimodal", d=10, samplers=("li-ode", "li-sde", "ddim"), Ts=[50, 100, 200, 400, 800])
for name, c in curves.items():
    print(f"{name:7s} exponent {c['fit'].exponent:+.3f}  95% [{c['fit'].ci[0]:+.3f}, {c['fit'].ci[1]:+.3f}]")"""


def cell_id(text: str) -> str:
    """A stable cell id from a name (nbformat: 1-64 characters of [A-Za-z0-9-_])."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64]


def _cell(kind, source, name):
    cell = (nbf.v4.new_markdown_cell if kind == "md" else nbf.v4.new_code_cell)(source)
    cell["id"] = cell_id(name)
    return cell


def build(path="paper_figs.ipynb"):
    nb = nbf.v4.new_notebook()
    cells = [_cell("md", HEADER, "header"), _cell("code", SETUP, "setup")]
    for name, (_, desc) in EXPERIMENTS.items():
        cells.append(_cell("md", f"## `{name}`\n\n{desc}", f"{name}-title"))
        cells.append(_cell("code", f'summaries["{name}"] = show_section("{name}", fast=FAST, '
                                   f'root=RESULTS, figures_dir=FIGURES)', f"{name}-section"))
    cells += [_cell("md", EXPLORE, "explore-title"), _cell("code", EXPLORE_CODE, "explore")]
    nb["cells"] = cells
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    nbf.write(nb, path)
    return path
