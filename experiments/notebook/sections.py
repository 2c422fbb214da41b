"""What a notebook section shows for one experiment: claim, figure, exponents, reading."""
from __future__ import annotations

from IPython.display import Image, Markdown, display

from ..runtime import registry
from ..runtime.study import FIT_LABEL_KEYS


def show_section(name, fast=False, root=None, figures_dir="figures", executor="serial"):
    mod = registry.get(name)
    summary = registry.run(name, fast, root, figures_dir, executor)
    claim = getattr(mod, "CLAIM", (mod.__doc__ or "").strip().split("\n\n")[1:2])
    if isinstance(claim, list):
        claim = claim[0] if claim else ""
    display(Markdown(f"**Claim checked.** {' '.join(str(claim).split())}"))
    figs = [summary["figure"]] if "figure" in summary else summary.get("figures", [])
    for f in figs:
        display(Image(filename=f))
    rows = []
    for f in summary.get("fits", []):
        fit = f.get("fit", {})
        if "exponent" not in fit:
            continue
        label = ", ".join(f"{k}={f[k]}" for k in FIT_LABEL_KEYS
                          if k in f and not isinstance(f[k], list))
        rows.append(f"| {label} | {fit['exponent']:+.3f} | [{fit['ci'][0]:+.3f}, "
                    f"{fit['ci'][1]:+.3f}] | [{fit['x_range'][0]:g}, {fit['x_range'][1]:g}] | "
                    f"{f.get('theory_exponent', '')} |")
    if rows:
        display(Markdown("| curve | exponent | 95% interval | fit range | theory |\n"
                         "|---|---|---|---|---|\n" + "\n".join(rows)))
    if hasattr(mod, "reading"):
        display(Markdown(f"**What the numbers say.** {mod.reading(summary)}"))
    return summary
