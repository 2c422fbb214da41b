"""What a notebook section shows for one experiment: its claim, its figure, a compact table
of the measured exponents with their 95% intervals, and a computed sentence on what they say.

A section reads the experiment's cached summary (``results/<name>/summary.json``) when it
was made in the requested mode, and runs the experiment (cached, resumable) otherwise; the
figure is drawn again from the summary either way. Nothing else is printed: no raw summary,
no progress when nothing is computed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from IPython.display import Image, Markdown, display

from theory.figures import format_exponent

from ..runtime import registry
from ..runtime.store import default_root
from ..runtime.study import FIT_LABEL_KEYS

__all__ = ["show_section", "load_summary", "exponent_rows", "claim_of"]


def load_summary(name: str, root=None, fast: bool = True):
    """The cached summary of ``name`` if it was made in this mode (``fast``), else None."""
    path = Path(root if root is not None else default_root()) / name / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    return summary if bool(summary.get("fast")) == bool(fast) else None


def claim_of(module) -> str:
    """The claim a study checks: its ``CLAIM``, else its docstring's second paragraph."""
    claim = getattr(module, "CLAIM", None)
    if claim is None:
        paras = (module.__doc__ or "").strip().split("\n\n")
        claim = paras[1] if len(paras) > 1 else paras[0]
        m = re.match(r"^claim checked(?:\s*\(([^)]*)\))?\s*:\s*", claim, flags=re.I)
        if m:
            # keep the paper it cites, drop the pointer into THEORY.md
            cites = [re.sub(r"^(.+?), (arXiv:\S+)$", r"\1 (\2)", c.strip())
                     for c in (m.group(1) or "").split(";")
                     if c.strip() and not c.strip().startswith("THEORY.md")]
            claim = claim[m.end():]
            claim = (f"{'; '.join(cites)}: {claim}" if cites
                     else claim[:1].upper() + claim[1:])
    return " ".join(str(claim).split())


def _verdict_fit(f: dict):
    """(quantity, fit) of a summary curve: the log-corrected fit the tightness report's
    verdict uses where the curve has one (``log_power``, or its only one), else the raw."""
    lfs = {k: v for k, v in f.get("log_corrected_fits", {}).items() if "exponent" in v}
    key = None
    if "log_power" in f and f"tv_over_logT^{f['log_power']}" in lfs:
        key = f"tv_over_logT^{f['log_power']}"
    elif len(lfs) == 1:
        key = next(iter(lfs))
    if key is not None:
        k = key.rsplit("^", 1)[1]
        return ("TV/log T" if k == "1" else f"TV/log^{k} T"), lfs[key]
    return f.get("quantity", "exponent"), f.get("fit", {})


def exponent_rows(summary: dict) -> list:
    """One row per fitted curve: ``(curve, quantity, exponent, ci, x_range, theory)``."""
    rows = []
    for f in summary.get("fits", []):
        quantity, fit = _verdict_fit(f)
        if "exponent" not in fit:
            continue
        label = ", ".join(f"{k}={f[k]}" for k in FIT_LABEL_KEYS
                          if k in f and not isinstance(f[k], (list, dict)))
        rows.append((label, quantity, fit["exponent"], fit["ci"], fit["x_range"],
                     f.get("theory_exponent")))
    return rows


def _table(rows) -> str:
    lines = ["| curve | fitted | measured, 95% interval | over | theory |",
             "|---|---|---|---|---|"]
    for label, quantity, k, ci, xr, theory in rows:
        measured = format_exponent(k, ci)
        lines.append(f"| {label} | {quantity} | {measured} | "
                     f"[{xr[0]:.3g}, {xr[1]:.3g}] | {_theory_text(theory, measured)} |")
    return "\n".join(lines)


def _theory_text(theory, measured: str) -> str:
    """The theory's exponent: ``+2`` when it is a whole number, else to the decimals of the
    measured value beside it (``+0.318720``, not ``+0.31872``)."""
    if theory is None:
        return ""
    if float(theory).is_integer():
        return f"{theory:+g}"
    num = measured.split()[0]
    dec = len(num.split(".")[1]) if "." in num else 2
    return f"{theory:+.{dec}f}"


def show_section(name, fast=True, root=None, figures_dir="figures", executor="serial",
                 recompute=False) -> dict:
    """Display the section of experiment ``name``; returns its summary."""
    mod = registry.get(name)
    summary = None if recompute else load_summary(name, root, fast)
    text = None
    if summary is None:
        summary = registry.run(name, fast, root, figures_dir, executor)
    else:
        try:
            drawn = mod.figure(summary, figures_dir)        # one path, or a list of them
            text = mod.reading(summary) if hasattr(mod, "reading") else None
        except KeyError as missing:
            # a summary written by an older version lacks a field this one reads: summarise
            # again from the cached points (nothing is recomputed that is cached)
            print(f"{name}: the cached summary lacks {missing} (an older version wrote it); "
                  "summarising again from the cached points")
            return show_section(name, fast, root, figures_dir, executor, recompute=True)
        summary.pop("figure", None)
        summary.pop("figures", None)
        if isinstance(drawn, (list, tuple)):
            summary["figures"] = [str(p) for p in drawn]
        else:
            summary["figure"] = str(drawn)
    display(Markdown(f"**Claim.** {claim_of(mod)}"))
    for path in [summary["figure"]] if "figure" in summary else summary.get("figures", []):
        display(Image(filename=path))
    rows = exponent_rows(summary)
    if rows:
        display(Markdown(_table(rows)))
    if hasattr(mod, "reading"):
        text = mod.reading(summary) if text is None else text
        display(Markdown(f"**What the numbers say.** {text}"))
    return summary
