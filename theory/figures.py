"""Figures: measured rate curves beside the reference slopes of THEORY.md section 3."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from matplotlib.figure import Figure

__all__ = ["plot_rate_panel", "new_figure", "save_figure"]


def new_figure(nrows: int = 1, ncols: int = 1, figsize=(5.0, 3.8)):
    """A figure and its (nrows, ncols) array of axes, without pyplot (no global state, no
    backend switch in a notebook): ``fig.savefig`` renders with Agg."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def plot_rate_panel(ax, curves, references=(), xlabel="T", ylabel="TV(q_1, law Y_1)",
                    title=None):
    """Draw measured curves (log-log, with their numerical intervals) and reference slopes.

    Parameters
    ----------
    curves : list of dict
        Each with ``x``, ``value``, ``lower``, ``upper``, ``label`` and optional ``fit``
        (a :class:`theory.rates.RateFit`) whose exponent and range are drawn as a line.
    references : list of (slope, label)
        Reference slopes, anchored at the first curve's last point. A curve may also carry
        its own ``reference`` (slope, label), drawn in its colour through its last point.
    """
    import seaborn as sns
    colors = sns.color_palette("colorblind", max(len(curves), 3))
    for c, col in zip(curves, colors):
        x = np.asarray(c["x"], float)
        y = np.asarray(c["value"], float)
        lo = np.asarray(c.get("lower", y), float)
        hi = np.asarray(c.get("upper", y), float)
        label = c["label"]
        fit = c.get("fit")
        if fit is not None:
            label += f"  (slope {fit.exponent:+.2f} [{fit.ci[0]:+.2f}, {fit.ci[1]:+.2f}])"
        ax.plot(x, y, "o-", ms=3.5, lw=1.2, color=col, label=label)
        ax.fill_between(x, np.maximum(lo, 1e-300), hi, color=col, alpha=0.25, lw=0)
        if fit is not None:
            xs = np.geomspace(*fit.x_range, 20)
            ax.plot(xs, fit.prefactor * xs ** fit.exponent, ":", color=col, lw=1)
    for c, col in zip(curves, colors):
        ref = c.get("reference")
        if ref is None:
            continue
        slope, lab = ref
        x = np.asarray(c["x"], float)
        x0, y0 = float(x[-1]), float(np.asarray(c["value"], float)[-1])
        xs = np.geomspace(float(x.min()), x0, 20)
        ax.plot(xs, y0 * (xs / x0) ** slope, "--", color=col, alpha=0.6, lw=1)
        ax.annotate(lab, (xs[0], y0 * (xs[0] / x0) ** slope), fontsize=7, color=col,
                    ha="left", va="bottom")
    for slope, lab in references:
        x = np.asarray(curves[0]["x"], float)
        x0, y0 = float(x[-1]), float(np.asarray(curves[0]["value"], float)[-1])
        xs = np.geomspace(float(x.min()), x0, 20)
        ax.plot(xs, y0 * (xs / x0) ** slope, "--", color="0.45", lw=1)
        ax.annotate(lab, (xs[0], y0 * (xs[0] / x0) ** slope), fontsize=7, color="0.3",
                    ha="left", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=6.5, loc="best")


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary file in the same folder, then a
    rename), so that a reader never sees a half-written figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:     # a unique name: concurrent runs never collide
            fig.savefig(fh, dpi=130, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
