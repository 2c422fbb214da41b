"""Build ``paper_figs.ipynb`` from the experiment registry (one section per figure).

    python -m experiments.notebook          # rewrites paper_figs.ipynb, without outputs

Each section runs its experiment (cached), shows the figure, prints the claim it checks,
the measured exponents with their intervals and one sentence on what they say (each
experiment module provides ``CLAIM`` and ``reading(summary)``). Set ``DIFFRATES_FAST=1`` to
execute it in fast mode (the tests do).
"""
from __future__ import annotations

import nbformat as nbf

from ..runtime.registry import EXPERIMENTS

HEADER = """# diffrates: paper figures

Each section checks one claim of THEORY.md section 3 (section 6 for DPnP) with exact
output laws and distances, or of section 7 for the low-rank vignette (ScaledGD against GD),
shows the figure, the measured exponents with their 95% intervals and what they say. Results are cached under `results/`: rerunning is cheap.
Fast mode (`DIFFRATES_FAST=1`) uses coarser sweeps."""

SETUP = """import os
from IPython.display import Image, display
from experiments.notebook.sections import show_section

FAST = os.environ.get("DIFFRATES_FAST", "0") == "1"
RESULTS = os.environ.get("DIFFRATES_RESULTS", "results")
FIGURES = os.environ.get("DIFFRATES_FIGURES", "figures")
print("fast mode" if FAST else "full precision", "| results:", RESULTS, "| figures:", FIGURES)"""

EXPLORE = """## Explore

One line for a curve of exact distances (any prior preset, samplers, metric):"""

EXPLORE_CODE = """from experiments.notebook.explore import curve_vs_T
curves = curve_vs_T("bimodal", d=10, samplers=("li-ode", "li-sde", "ddim"), Ts=[50, 100, 200, 400, 800])
for name, c in curves.items():
    print(f"{name:7s} exponent {c['fit'].exponent:+.3f}  95% [{c['fit'].ci[0]:+.3f}, {c['fit'].ci[1]:+.3f}]")"""


def build(path="paper_figs.ipynb"):
    nb = nbf.v4.new_notebook()
    cells = [nbf.v4.new_markdown_cell(HEADER), nbf.v4.new_code_cell(SETUP)]
    for name, (_, desc) in EXPERIMENTS.items():
        cells.append(nbf.v4.new_markdown_cell(f"## `{name}`\n\n{desc}"))
        cells.append(nbf.v4.new_code_cell(
            f'show_section("{name}", fast=FAST, root=RESULTS, figures_dir=FIGURES)'))
    cells += [nbf.v4.new_markdown_cell(EXPLORE), nbf.v4.new_code_cell(EXPLORE_CODE)]
    nb["cells"] = cells
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    nbf.write(nb, path)
    return path


