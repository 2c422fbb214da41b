"""Figures: measured rate curves beside the rates the theorems state, drawn for a reader of a
paper, and a check that a figure is readable.

Conventions (every figure of the suite follows them):

* one claim per figure, in its title (:func:`finish_figure`); a second, smaller line names
  what the line styles mean;
* a colour and a marker per sampler (:data:`COLOURS`, :data:`MARKERS`) and per value of a
  parameter (:func:`level_colours`), the same in every panel and every figure;
* per curve: the data with its interval (a band), the fitted power law as a dark dotted
  line over the fit range only (its ends are the range's), the theorem's rate as
  a dashed slope guide in the curve's colour over the same range (a factor
  :data:`REFERENCE_SHIFT` or its square above or below the fit, clear of the data: its
  slope is the theorem's, its level is not), and in the legend the measured exponent (the
  one a verdict uses) with its 95% interval beside the theorem's and the verdict
  (:func:`theory.rates.verdict`);
* legends sit below their panel, never on the data; no text on the data; limits follow the
  data (nothing is drawn outside the axes).

A figure may instead draw its fits as a wide light-grey line *behind* the data
(``plot_rate_panel(fit_style="behind")``: the data stay visible on their fit), anchor a guide
on its own curve (a curve's ``guide="below-end"``) and put its key in a caption at the bottom
(:func:`add_caption`) where the title would otherwise run past two lines.

:func:`layout_problems` lists what breaks these rules in a drawn figure (overlapping text,
a legend or a label on the data, artists outside their axes or text outside the figure);
:func:`save_figure` warns with :class:`FigureLayoutWarning` when it finds any, and the tests
turn that warning into an error for every registered study's figure.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.colors import to_rgb
from matplotlib.image import imsave
from matplotlib.legend import Legend
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path as MPath

from .formatting import (distinct_digits, format_estimate,  # noqa: F401 (re-exported)
                         format_exponent)
from .rates import LOG_TOLERANCE, verdict

__all__ = ["COLOURS", "MARKERS", "PALETTE", "REFERENCE_SHIFT", "LEGEND_FONTSIZE", "FIT_COLOUR",
           "FIT_BEHIND_COLOUR", "FigureLayoutWarning", "add_caption", "colour",
           "colour_distance", "draw_fit", "finish_figure", "format_exponent", "layout_problems",
           "level_colours", "marker", "new_figure", "panel_legend", "plot_rate_panel",
           "save_figure", "sci", "superscript", "unicode_powers", "wrap_text"]

# Okabe & Ito's colour-blind safe palette (black last: it is kept for the exact/closed forms)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
COLOURS = {"li-ode": "#0072B2", "li-sde": "#E69F00", "accel-sde": "#009E73",
           "accel-ode": "#CC79A7", "li-yan": "#56B4E9", "ddpm": "#D55E00", "ddim": "#000000",
           # the higher-order solvers are drawn in the same figure as the samplers above
           # (rate-vs-T): slots of their own, from Paul Tol's colour-blind safe "muted" set
           "heun": "#882255", "rk4": "#332288", "dpm++2m": "#999933",
           # dpm++3m: Tol's vibrant magenta (his muted teal #44AA99 was near accel-sde's green)
           "dpm++3m": "#EE3377",
           # DPnP's sub-samplers: the DDS runs the reverse SDE / ODE (the li samplers'
           # colours);
           # the Langevin PCS: hues no other sampler or method family takes (a brown and
           # a dusty rose, CIE76 distance >= 32 from every other colour here and from the
           # posterior benchmark's family shades: Tol's green #117733 was a shade of DPnP's
           # greens, his purple #AA4499 near accel-ode's pink)
           "sde": "#E69F00", "ode": "#0072B2", "ula": "#694B1E", "mala": "#C37869"}
MARKERS = {"li-ode": "o", "li-sde": "s", "accel-sde": "^", "accel-ode": "D", "li-yan": "v",
           "ddpm": "P", "ddim": "X", "heun": "*", "rk4": "h", "dpm++2m": "p", "dpm++3m": "<",
           "sde": "s", "ode": "o", "ula": "^", "mala": "v"}
_MARKER_CYCLE = ("o", "s", "^", "D", "v", "P", "X", "*")
# the theorem's rate is drawn this factor (or its square) above or below the fitted curve,
# wherever it lies clear of the other curves (a bound's constant is not known: its slope is
# what is compared)
REFERENCE_SHIFT = 2.5
FIT_COLOUR = "0.15"        # fitted curves: dark dotted, over the fit range only
FIT_BEHIND_COLOUR = "0.78"  # draw_fit(style="behind"): a light-grey stroke behind the data
FIT_BEHIND_WIDTH = 5.0
LEGEND_FONTSIZE = 8.0        # every legend (review 4: 7-pt legends were hard to read)
DPI = 130
LEGEND_GAP = 5.0
LEGEND_WRAP = 66           # characters of a legend line below a curve's name


class FigureLayoutWarning(UserWarning):
    """A saved figure breaks a layout rule (see :func:`layout_problems`)."""


def colour(name: str) -> str:
    """The fixed colour of a sampler (or of any named curve: a stable slot of the palette)."""
    if name in COLOURS:
        return COLOURS[name]
    return PALETTE[zlib.crc32(str(name).encode()) % (len(PALETTE) - 1)]


def colour_distance(a, b) -> float:
    """CIE76 colour difference Delta E*_ab between two matplotlib colours (Euclidean in
    CIELAB, D65 white): about 2.3 is just noticeable, above 25 two line colours are told
    apart at a glance."""
    def lab(c):
        rgb = np.asarray(to_rgb(c), float)
        lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]]) @ lin / np.array([0.95047, 1.0, 1.08883])
        f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])
    return float(np.linalg.norm(lab(a) - lab(b)))


def marker(name: str) -> str:
    """The fixed marker of a sampler (or a stable one for any other name)."""
    if name in MARKERS:
        return MARKERS[name]
    return _MARKER_CYCLE[zlib.crc32(str(name).encode()) % len(_MARKER_CYCLE)]


def level_colours(values) -> dict:
    """Fixed colours for the values of a parameter (e.g. eta): the sorted distinct values
    take the palette in order. Pass every value the figure shows (all panels), so that a
    value has one colour throughout."""
    levels = sorted({float(v) for v in values})
    if len(levels) > len(PALETTE) - 1:
        raise ValueError(f"{len(levels)} levels exceed the {len(PALETTE) - 1} fixed colours")
    return {v: PALETTE[i] for i, v in enumerate(levels)}


def and_list(names) -> str:
    """``a``, ``a and b``, ``a, b and c``: names listed in a sentence."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def new_figure(nrows: int = 1, ncols: int = 1, figsize=(5.0, 3.8)):
    """A figure and its (nrows, ncols) array of axes, without pyplot (no global state, no
    backend switch in a notebook), with constrained layout (legends below the panels are
    part of the layout) and an Agg canvas."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _positive(a):
    a = np.asarray(a, float)
    return np.where(np.isfinite(a) & (a > 0), a, np.nan)


_SUPERSCRIPT = str.maketrans("0123456789-+.−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺·⁻")


def superscript(text) -> str:
    """``-1.5`` as ``⁻¹·⁵`` (Unicode superscripts: the legends' notation for a power)."""
    return str(text).translate(_SUPERSCRIPT)


def unicode_powers(text: str) -> str:
    """``T^0.44``, ``d^-1.5`` and ``1/T^2`` written with Unicode superscripts, e-notation
    (``3e-08``) as ``3×10⁻⁸``, and a minus sign before a number as ``−``: one notation in
    every legend."""
    num = r"[+\-−]?\d+(?:\.\d+)?"
    text = re.sub(rf"\^(?:\(({num})\)|({num}))",
                  lambda m: superscript(m.group(1) or m.group(2)), text)
    text = re.sub(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([-+]?\d+)\b",
                  lambda m: (("" if m.group(1) == "1" else m.group(1) + "×") + "10"
                             + superscript(int(m.group(2)))), text)
    return re.sub(r"(?<![\w.])-(?=\d)", "−", text)


def plot_rate_panel(ax, curves, xlabel="T", ylabel="TV($q_1$, law $Y_1$)", title=None,
                    legend=True, range_in_legend=True, fit_style="dotted", verdict_note=None,
                    glue_verdict=False):
    """Draw measured curves on log-log axes with their intervals, fits and theory rates.

    Parameters
    ----------
    ax : matplotlib Axes
    curves : list of dict
        Each with ``x``, ``value`` (and optional ``lower``, ``upper``: the points' interval;
        a point whose interval reaches 0 is drawn hollow, without a band) and ``label``;
        optional:

        * ``colour``, ``marker``: default :func:`colour` / :func:`marker` of the label;
        * ``fit``: a :class:`theory.rates.RateFit` (or ``None``), drawn as a dark dotted line
          over its range only (:func:`draw_fit`); ``fit_factor(x)``
          multiplies it back onto the data when the fit is of a rescaled quantity (e.g.
          ``log(x)**2`` for a fit of TV / log² T);
        * ``fit_text``: what the exponent is, in the legend (default ``"slope"``); one ending
          in ``^`` (``"TV ~ d^"``) is written ``TV ~ dᵖ, p =``;
        * ``exponent_text``: the exponent as the legend writes it (default
          :func:`format_exponent` of the fit: e.g. "0 (exact)" where the data is exactly flat);
        * ``reference``: ``(exponent, text)``: the theorem's rate, dashed, over the fit range
          (times ``fit_factor``), placed by :func:`_place_guide`: a factor
          :data:`REFERENCE_SHIFT` (or its square) beside its own fit, or that factor beyond
          all the panel's curves, where it runs clear of every curve and guide, and only
          where it stays inside the y-range of the panel's data (never above the largest
          value drawn: a TV guide never above 1);
        * ``x_name``: the variable's name in the legend's fit range (default ``x``);
        * ``fit_error``: why there is no fit (shown in the legend when ``fit`` is None);
        * ``larger_is_better``: for the verdict, a vanishing x such as eps (default False);
        * ``note``: extra legend text for the curve;
        * ``x_shift``: draw the curve (data, fit, guide) at ``x * x_shift``, a small stagger
          where two curves' markers would cover each other (say so in the caption).
    legend : bool
        Draw the legend below the panel (:func:`panel_legend`).
    range_in_legend : bool
        Name each fit's range and its number of points in the legend (without: the fit's
        line shows the range; say so in the caption).
    fit_style : str
        ``"dotted"`` (default) or ``"behind"``: how :func:`draw_fit` draws the fits.
    verdict_note : str, optional
        Appended to every verdict other than "consistent" (e.g. "after the 0.05 tolerance").
    glue_verdict : bool
        Keep "by a factor x^a or more" (and the note), and "(p = ...)", each on one legend
        line when wrapping.

    A curve's ``guide`` (default ``"auto"``: :func:`_place_guide`) may be ``"below-end"``:
    the guide passes a factor :data:`REFERENCE_SHIFT` below the fit at the fit range's last
    point (``guide_shift``: another factor) and runs back over the fit range with the bound's
    slope, drawn where it lies
    below the largest value of the panel's data and above ``guide_floor`` (default: the
    panel's smallest value over :data:`REFERENCE_SHIFT` squared), so that the fan-out of the
    measured curve from the bound's slope is seen on the curve itself; ``guide_span``
    ``(x0, x1)`` draws it over that x-range instead of the fit range. ``"above-end"``: the
    same a factor above the fit's last point (where the panel leaves room above).
    """
    ymin, ymax = np.inf, 0.0
    for c in curves:
        y = _positive(c["value"])
        if np.any(np.isfinite(y)):
            ymin, ymax = min(ymin, np.nanmin(y)), max(ymax, np.nanmax(y))
    handles, labels = [], []
    guides = []                       # (xs, ys) of the guides drawn so far: kept clear of
    for c in curves:
        col = c.get("colour") or colour(c["label"])
        mk = c.get("marker") or marker(c["label"])
        sx = float(c.get("x_shift", 1.0))          # drawn at x * sx: staggered markers
        x = np.asarray(c["x"], float) * sx
        y = _positive(c["value"])
        lo = np.asarray(c.get("lower", c["value"]), float)
        hi = _positive(c.get("upper", c["value"]))
        open_ = ~(lo > 0)
        band = np.isfinite(y) & ~open_
        if band.any():
            ax.fill_between(x, np.where(band, lo, np.nan), np.where(band, hi, np.nan),
                            color=col, alpha=0.2, lw=0)
        (data,) = ax.plot(x, y, "-", marker=mk, ms=4, lw=1.1, color=col, label=c["label"])
        if open_.any():
            ax.plot(x[open_], y[open_], mk, ls="none", ms=4, mfc="white", color=col)
        handle, label = data, c["label"]
        fit = c.get("fit")
        if fit is not None:
            factor = c.get("fit_factor") or (lambda s: 1.0)
            xs = np.geomspace(fit.x_range[0], fit.x_range[1], 40)
            f = np.asarray([factor(s) for s in xs], float)
            fy = fit.prefactor * xs ** fit.exponent * f
            draw_fit(ax, xs * sx, fy, style=fit_style)
            ft = c.get("fit_text", "slope")
            if ft.endswith("^"):
                ft = ft[:-1].rstrip() + "ᵖ, p ="
            label += f": {ft} "
            label += c.get("exponent_text") or format_exponent(fit.exponent, fit.ci)
            extra = []
            ref = c.get("reference")
            if ref is not None:
                slope, text = ref
                gx = xs
                if c.get("guide", "auto") in ("below-end", "above-end"):
                    if c.get("guide_span") is not None:
                        gx = np.geomspace(*c["guide_span"], 40)
                    gf = np.asarray([factor(s) for s in gx], float)
                    placed = _guide_at_end(slope, fy[-1] / f[-1], xs[-1], gx, gf, ymin,
                                           ymax, c.get("guide_floor"),
                                           c.get("guide_shift", REFERENCE_SHIFT),
                                           above=c["guide"] == "above-end")
                else:
                    placed = _place_guide(fy[0] * (xs / xs[0]) ** slope * f / f[0], fy, xs, c,
                                          curves, guides, ymin, ymax)
                if placed is not None:
                    (rline,) = ax.plot(gx[placed[0]] * sx, placed[1], "--", lw=1.1, color=col,
                                       label=text)
                    guides.append((gx[placed[0]], placed[1]))
                    handle = (data, rline)
                judged = verdict(slope, fit.ci, c.get("larger_is_better", False),
                                 var=c.get("x_name", "x"), local=c.get("local_slopes"))
                # "consistent" from the interval alone: say so when the point estimate by
                # itself lies outside the bound's exponent widened by the tolerance
                big = c.get("larger_is_better", False)
                if judged == "consistent" and verdict(
                        slope, (fit.exponent, fit.exponent), big).startswith("violated"):
                    edge = slope - LOG_TOLERANCE if big else slope + LOG_TOLERANCE
                    judged += f" (interval reaches {edge:+.2f})"
                if verdict_note and not judged.startswith(("consistent", "not ")):
                    judged += f" ({verdict_note})"
                if glue_verdict:               # never wrapped inside "factor x^a or more"
                    judged = re.sub(r"(?<=loose |worse )by .*$",
                                    lambda m: m.group(0).replace(" ", "\u00a0"), judged)
                pt = f"(p = {slope:+g})".replace("p = +0)", "p = 0)")
                if glue_verdict:
                    pt = pt.replace(" ", "\u00a0")
                extra.append(f"{text} {pt}:{chr(0xa0) if glue_verdict else ' '}{judged}")
            if range_in_legend:
                n = getattr(fit, "n_points", None)
                extra.append(f"fit over {c.get('x_name', 'x')} in {_range_text(fit.x_range)}"
                             + (f", {n} points" if n else ""))
            if extra:
                label += "\n" + "\n".join(_indent(e) for e in extra)  # bound + verdict; range
        if fit is None and c.get("reference") is not None:
            # no fit, but the theorem's rate is still shown: a guide a factor REFERENCE_SHIFT
            # below the curve's first point, with the bound's slope, over the curve's range
            slope, text = c["reference"]
            ok = np.isfinite(y) & (y > 0)
            if ok.sum() >= 2:
                factor = c.get("fit_factor") or (lambda s: 1.0)
                x0 = float(np.asarray(c["x"], float)[ok][0])
                gx = np.geomspace(x0, float(np.asarray(c["x"], float)[ok][-1]), 40)
                gf = np.asarray([factor(s) for s in gx], float)
                gy = y[ok][0] / REFERENCE_SHIFT * (gx / x0) ** slope * gf / gf[0]
                keep = gy >= ymin
                if keep.sum() >= 2:
                    (rline,) = ax.plot(gx[keep] * sx, gy[keep], "--", lw=1.1, color=col,
                                       label=text)
                    guides.append((gx[keep], gy[keep]))
                    handle = (data, rline)
                    pt = f"(p = {slope:+g})".replace("p = +0)", "p = 0)")
                    label += "\n" + _indent(f"{text} {pt}, from the curve's first point")
        if fit is None and c.get("fit_error"):
            label += "\n" + _indent(f"no fit: {c['fit_error']}")
        if c.get("note"):           # a short note ends the last line, a long one has its own
            last = label.rsplit("\n", 1)[-1]
            short = fit is not None and _shown(last) + _shown(c["note"]) + 2 <= LEGEND_WRAP
            label += "; " + c["note"] if short else "\n" + _indent(c["note"])
        handles.append(handle)
        labels.append(unicode_powers(label))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    if legend:
        panel_legend(ax, handles, labels)
    return handles, labels


_MATH = re.compile(r"\$[^$]*\$")


def _shown_length(math: str) -> int:
    """About how many characters a mathtext segment ``$...$`` takes when drawn: its letters,
    a TeX command (``\\varepsilon``) counting as one, braces and sub/superscript marks as
    none."""
    inner = re.sub(r"\\(rm|mathrm|max|min)\b", "", math[1:-1])
    inner = re.sub(r"\\[A-Za-z]+", "x", inner)
    return max(1, len(re.sub(r"[{}_^ ]", "", inner)))


def _shown(text: str) -> int:
    """The drawn length of a text with mathtext in it (see :func:`_shown_length`)."""
    return len(_MATH.sub(lambda m: "x" * _shown_length(m.group()), text))


def wrap_text(text: str, width: int, **kw) -> str:
    """``textwrap.fill`` that measures a mathtext segment by its drawn length (its source,
    ``$\\varepsilon_{\\rm score}$``, is 25 characters for about 6 drawn) and never breaks
    inside one."""
    maths = _MATH.findall(text)
    if not maths:
        return textwrap.fill(text, width, **kw)
    # each segment becomes a run of one private-use character, as long as it is drawn
    tokens = [chr(0xE000 + i) * _shown_length(m) for i, m in enumerate(maths)]
    it = iter(tokens)
    out = textwrap.fill(_MATH.sub(lambda _: next(it), text), width, **kw)
    for tok, m in zip(tokens, maths):
        out = out.replace(tok, m, 1)
    return out


#: A caption paragraph's last line is at least this many characters (no lone "4." line),
#: a legend entry's at least MIN_LAST_LEGEND_LINE (no lone "point").
MIN_LAST_LINE = 16
MIN_LAST_LEGEND_LINE = 10


def _wrap_without_widow(text: str, width: int, min_last: int = MIN_LAST_LINE, **kw) -> str:
    """:func:`wrap_text` at ``width``, or at the widest narrower width (down to 90% of it)
    whose last line has at least ``min_last`` characters besides its indent: a short word
    left alone on a paragraph's last line reads as a stray mark below the figure."""
    def last(t):
        return len(t.rsplit("\n", 1)[1].strip())
    out = wrap_text(text, width, **kw)
    if "\n" not in out or last(out) >= min_last:
        return out
    for w in range(width - 1, int(0.9 * width) - 1, -1):
        trial = wrap_text(text, w, **kw)
        if last(trial) >= min_last:
            return trial
    return out


def _indent(text):
    """A legend line below the curve's name: indented, wrapped at :data:`LEGEND_WRAP`."""
    return _wrap_without_widow(text, LEGEND_WRAP, min_last=MIN_LAST_LEGEND_LINE,
                               initial_indent="    ", subsequent_indent="      ",
                               break_on_hyphens=False)


def draw_fit(ax, xs, fy, style="dotted"):
    """A fitted curve over its range and nowhere else: a thin dark dotted line (a line, not
    a band: the bands of a figure are the data's intervals). No bars at its ends: beside the
    data's intervals they read as error bars.

    ``style="behind"``: a wide light-grey line (:data:`FIT_BEHIND_COLOUR`) *behind* the data
    instead, so that the data's line and markers stay visible on it and any departure of the
    data from the fit shows as the data leaving the grey stroke."""
    xs, fy = np.asarray(xs, float), np.asarray(fy, float)
    if style == "behind":
        ax.plot(xs, fy, "-", lw=FIT_BEHIND_WIDTH, color=FIT_BEHIND_COLOUR, zorder=1.5,
                solid_capstyle="butt")
    else:
        ax.plot(xs, fy, ":", lw=1.3, color=FIT_COLOUR, zorder=4)


# a guide is "clear" of another curve's data when it stays REFERENCE_SHIFT away from it,
# and of its own curve's data and of another guide when it stays this factor away
_CLEAR = 1.6
# an above placement of a guide that covers this fraction of the fit range (in log x) is
# taken before any placement below the data
GUIDE_ABOVE_MIN = 0.3


def _place_guide(ry, fy, xs, curve, curves, guides, ymin, ymax):
    """Where the theorem's guide ``ry`` (its slope, over the fit range ``xs``) is drawn:
    ``(mask over xs, y values)``, or None when no placement keeps two points in range.

    Placements, in order of preference: a factor :data:`REFERENCE_SHIFT` above its own fit
    ``fy`` where the two come closest (so it touches the fit nowhere: it fans out from the
    fit's end nearest to it), as far below, the same with the factor squared, then that
    factor beyond the highest (lowest) of all the panel's curves and guides over the range.
    A placement is drawn only where it lies inside the y-range of the panel's data
    ``[ymin, ymax]`` (a guide never stretches the axes past the data: never above TV = 1)
    and clear of every other curve's data (a factor :data:`REFERENCE_SHIFT`), of its own
    curve's data and of every guide drawn before (a factor :data:`_CLEAR`): its longest such
    stretch. Above placements come first (a dashed line above the data reads as the bound):
    the first above placement whose stretch covers at least half the fit range (in log x),
    else the first above one covering :data:`GUIDE_ABOVE_MIN` of it, else the first one
    below covering half, else the longest stretch."""
    lx = np.log(xs)
    obstacles, needs = [], []          # log y of each obstacle over xs; the gap it needs
    for o in curves:
        ox, oy = np.asarray(o["x"], float), _positive(o["value"])
        ok = np.isfinite(oy) & (ox > 0)
        if ok.sum() >= 2:
            obstacles.append(np.interp(lx, np.log(ox[ok]), np.log(oy[ok]),
                                       left=np.nan, right=np.nan))
            needs.append(np.log(_CLEAR if o is curve else REFERENCE_SHIFT))
    for gx, gy in guides:
        obstacles.append(np.interp(lx, np.log(gx), np.log(gy), left=np.nan, right=np.nan))
        needs.append(np.log(_CLEAR))
    ratio = fy / ry
    scales = [REFERENCE_SHIFT * np.nanmax(ratio), np.nanmin(ratio) / REFERENCE_SHIFT,
              REFERENCE_SHIFT ** 2 * np.nanmax(ratio), np.nanmin(ratio) / REFERENCE_SHIFT ** 2]
    stack = np.vstack(obstacles + [np.log(fy)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # all-NaN columns
        top, bottom = np.nanmax(stack, axis=0), np.nanmin(stack, axis=0)
    lr = np.log(ry)
    scales += [REFERENCE_SHIFT * np.exp(np.nanmax(top - lr)),
               np.exp(np.nanmin(bottom - lr)) / REFERENCE_SHIFT]
    span = lx[-1] - lx[0] if lx[-1] > lx[0] else 1.0
    placed = []                        # (is above, stretch length, stretch, values)
    for i, scale in enumerate(scales):
        cand = scale * ry
        lc = np.log(cand)
        # drawn where it lies inside the data's y-range and clear of every obstacle
        ok = (cand <= ymax * (1 + 1e-9)) & (cand >= ymin * (1 - 1e-9))
        for o, need in zip(obstacles, needs):
            with np.errstate(invalid="ignore"):
                ok &= ~(np.abs(lc - o) < need - 1e-9)          # NaN (no obstacle there): ok
        idx = np.flatnonzero(ok)
        if idx.size < 2:
            continue
        run = max(np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1), key=len)
        if run.size < 2:
            continue
        placed.append((i % 2 == 0, (lx[run[-1]] - lx[run[0]]) / span, run, cand))
    if not placed:
        return None
    # a reader takes a dashed line above the data for the bound: above placements first
    best = (next((p for p in placed if p[0] and p[1] >= 0.5), None)
            or next((p for p in placed if p[0] and p[1] >= GUIDE_ABOVE_MIN), None)
            or next((p for p in placed if p[1] >= 0.5), None)
            or max(placed, key=lambda p: p[1]))
    _, _, run, cand = best
    mask = np.zeros(xs.size, bool)
    mask[run] = True
    return mask, cand[mask]


def _guide_at_end(slope, q_end, x_end, gx, gf, ymin, ymax, floor=None,
                  shift=REFERENCE_SHIFT, above=False):
    """The ``"below-end"`` (``"above-end"``) guide: through a factor ``shift`` (default
    :data:`REFERENCE_SHIFT`) below the fit's last point ``(x_end, q_end * factor)``, with the bound's slope (times the
    fit's factor ``gf`` at ``gx``, e.g. log^k x), over ``gx`` (the fit range, or the curve's
    ``guide_span``); kept where it lies in ``[floor, ymax]`` (floor default: ``ymin /
    REFERENCE_SHIFT**2``), its stretch that ends nearest ``x_end``. ``(mask over gx, y
    values)`` or None (fewer than two points). With ``above`` (the ``"above-end"`` guide)
    it passes the factor ``shift`` above that point instead."""
    floor = ymin / REFERENCE_SHIFT ** 2 if floor is None else floor
    cand = q_end * (shift if above else 1.0 / shift) * (gx / x_end) ** slope * gf
    ok = (cand <= ymax * (1 + 1e-9)) & (cand >= floor * (1 - 1e-9))
    idx = np.flatnonzero(ok)
    if idx.size < 2:
        return None
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    run = min(runs, key=lambda r: np.min(np.abs(np.log(gx[r] / x_end))))
    if run.size < 2:
        return None
    mask = np.zeros(gx.size, bool)
    mask[run] = True
    return mask, cand[mask]


def sci(x, digits: int = 1, sign: bool = False, powers: bool = False) -> str:
    """A number as a figure prints it, with ``digits`` significant digits: plain from 10⁻³
    to 10³ (``0.002``), else a power of ten (``5×10⁻⁴``, ``10⁻¹⁰``); never e-notation, a
    minus as −, a leading ``+`` with ``sign``. With ``powers``, an exact power of ten is
    written as one at every size (``10²``, ``10⁰``: a grid of decades reads as such)."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    e = math.floor(math.log10(abs(x)))
    m = round(x / 10 ** e, digits - 1)
    if abs(m) >= 10:
        m, e = m / 10, e + 1
    plus = "+" if sign and x > 0 else ""
    exact_power = math.isclose(abs(x), 10.0 ** e, rel_tol=1e-12)
    if -3 <= e <= 3 and not (powers and exact_power):
        return plus + f"{x:.{max(digits - 1 - e, 0)}f}".replace("-", "−")
    mant = f"{m:.{digits - 1}f}"
    return plus + ("" if mant == "1" else ("−" if mant == "-1" else mant.replace("-", "−")
                                           + "×")) + "10" + superscript(e)


def _range_text(r):
    def g(v):
        v = float(v)
        if v >= 1e4 and math.log10(v).is_integer():
            return f"10{superscript(int(math.log10(v)))}"
        if 1 <= v < 1e5 and v == round(v):
            return str(int(v))
        return f"{v:.3g}"
    return f"[{g(r[0])}, {g(r[1])}]"


def panel_legend(ax, handles=None, labels=None, ncol: int = 1, **kw):
    """The panel's legend below its axes (never on the data). A handle may be a tuple
    (drawn side by side: a curve and its reference line)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    # the legend's top edge LEGEND_GAP font sizes below the axes: clear of the tick labels
    # and the x label whatever the panel's height
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                     ncol=ncol, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.6)},
                     fontsize=LEGEND_FONTSIZE, frameon=False, borderaxespad=LEGEND_GAP,
                     handlelength=2.6, **kw)


def finish_figure(fig, claim: str, key: str = "") -> None:
    """The figure's title: its claim (one sentence) and, smaller, what the lines mean, each
    wrapped to the figure's width."""
    width = int(fig.get_figwidth() * 72 / 5.6)          # characters of 9.5-pt text per line
    text = wrap_text(claim, width)
    if key:
        text += "\n" + wrap_text(key, int(width * 1.15))
    fig.suptitle(text, fontsize=9.5)


def parameter_colours(values, cmap: str = "cividis", span=(0.0, 0.85)) -> dict:
    """Fixed colours for the values of a parameter (eta, a likelihood, ...) that never reuse a
    sampler's (:data:`COLOURS`): evenly spaced shades of a sequential colormap over ``span``,
    numbers in increasing order (keys: floats), names in the order given. Pass every value
    the figure shows (all panels), so that a value has one colour throughout."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex
    vals = list(values)
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in vals):
        keys = sorted({float(v) for v in vals})
    else:
        keys = list(dict.fromkeys(vals))
    ts = np.linspace(span[0], span[1], len(keys)) if len(keys) > 1 else [span[0]]
    return {k: to_hex(colormaps[cmap](float(t))) for k, t in zip(keys, ts)}


CAPTION_FONTSIZE = 8.0


def add_caption(fig, text: str, fontsize: float = CAPTION_FONTSIZE, key=None, ncol=None):
    """The figure's caption, below every panel and legend: what the marks and line styles
    mean and the notes a title would otherwise run past two lines for. Each line of ``text``
    is wrapped to the figure's width; drawn as the figure's ``supxlabel``, so that
    constrained layout keeps it clear of the axes. With ``key`` (``[(handle, label)]``: marks
    that every panel shares) the caption heads a figure legend of them instead. The one
    caption helper of every study."""
    width = int(fig.get_figwidth() * 72 / (0.52 * fontsize))     # characters per line
    lines = [_wrap_without_widow(t, width) for t in text.split("\n") if t.strip()]
    if key:
        # a key of marks shared by every panel: one figure legend at the bottom with the
        # caption as its title (a supxlabel beside it would overlap)
        handles, labels = zip(*key)
        leg = fig.legend(handles, labels, loc="outside lower center", ncol=ncol or len(key),
                         frameon=False, fontsize=LEGEND_FONTSIZE, handlelength=1.5,
                         title="\n".join(lines), title_fontsize=fontsize)
        leg.get_title().set_color("0.2")
        return leg
    return fig.supxlabel("\n".join(lines), fontsize=fontsize, color="0.2")


# --------------------------------------------------------------------------------------
# Layout check
# --------------------------------------------------------------------------------------

def _texts(fig):
    """Visible, non-empty text artists with a tag: (tag, artist). A legend counts once."""
    out = []
    sup = getattr(fig, "_suptitle", None)
    out += [("suptitle" if t is sup else "figure text", t) for t in fig.texts]
    if sup is not None and sup not in fig.texts:
        out.append(("suptitle", sup))
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        out += [(f"axes {i} title", t) for t in (ax.title, ax._left_title, ax._right_title)]
        out += [(f"axes {i} xlabel", ax.xaxis.label), (f"axes {i} ylabel", ax.yaxis.label)]
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if tick.get_visible() and tick.label1.get_visible():
                    loc = tick.get_loc()
                    lo, hi = sorted(axis.get_view_interval())
                    if lo - 1e-12 * abs(lo) <= loc <= hi + 1e-12 * abs(hi):
                        out.append((f"axes {i} {name} tick", tick.label1))
        out += [(f"axes {i} text", t) for t in ax.texts]
    return [(tag, t) for tag, t in out
            if t is not None and t.get_visible() and t.get_text().strip()]


def _data_artists(ax):
    for a in list(ax.lines) + list(ax.collections) + list(ax.patches):
        if a.get_visible() and not isinstance(a, Legend):
            yield a


def _display_paths(a):
    """The artist's geometry in display coordinates: (paths, filled)."""
    if isinstance(a, Line2D):
        xy = np.column_stack(a.get_data()).astype(float)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if xy.size == 0:
            return [], False
        pts = a.get_transform().transform(xy)
        return [pts], False
    if isinstance(a, Collection):
        tr = a.get_transform()
        paths = []
        offsets = a.get_offsets() if hasattr(a, "get_offsets") else None
        if len(a.get_paths()) and offsets is not None and len(offsets) and \
                not np.allclose(offsets, 0):
            pts = a.get_offset_transform().transform(np.asarray(offsets, float))
            return [pts[np.all(np.isfinite(pts), axis=1)]], False
        for p in a.get_paths():
            v = tr.transform(p.vertices)
            v = v[np.all(np.isfinite(v), axis=1)]
            if v.size:
                paths.append(v)
        return paths, True
    if isinstance(a, Patch):
        v = a.get_transform().transform(a.get_path().vertices)
        return [v[np.all(np.isfinite(v), axis=1)]], True
    return [], False


def _segments_hit_box(pts, box, filled):
    """Whether a polyline (n, 2) in display coordinates enters ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    if pts.shape[0] == 0:
        return False
    inside = (pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1)
    if inside.any():
        return True
    # a segment crossing the box: sample each segment finely
    if pts.shape[0] >= 2:
        t = np.linspace(0, 1, 25)[:, None, None]
        seg = pts[:-1][None] + t * (pts[1:] - pts[:-1])[None]
        s = seg.reshape(-1, 2)
        if np.any((s[:, 0] > x0) & (s[:, 0] < x1) & (s[:, 1] > y0) & (s[:, 1] < y1)):
            return True
    if filled:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        return bool(MPath(pts).contains_point((cx, cy)))
    return False


def _overlap(a, b, pad=0.5):
    return not (a.x1 - pad <= b.x0 or b.x1 - pad <= a.x0 or a.y1 - pad <= b.y0
                or b.y1 - pad <= a.y0)


def layout_problems(fig) -> list:
    """What makes a drawn figure hard to read, as sentences (empty: none found).

    Checked, in display coordinates after a full draw: (1) no two texts overlap (titles,
    axis labels, tick labels, legends as a whole, texts); (2) no legend and no text placed
    in an axes lies on that figure's data (lines, markers, bands); (3) every data artist
    lies within its axes (nothing drawn outside the limits); (4) every text lies within
    the figure; (5) every text placed in an axes lies within that axes (clip_on texts aside).
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    problems = []
    fbox = fig.bbox
    items = [(tag, t.get_window_extent(r)) for tag, t in _texts(fig)]
    legends = [(f"legend of axes {i}", lg) for i, ax in enumerate(fig.axes)
               for lg in [ax.get_legend()] if lg is not None and lg.get_visible()]
    legends += [("figure legend", lg) for lg in fig.legends]
    items += [(tag, lg.get_window_extent(r)) for tag, lg in legends]
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (ta, a), (tb, b) = items[i], items[j]
            if _overlap(a, b):
                problems.append(f"{ta} overlaps {tb}")
    for tag, box in items:
        if box.x0 < fbox.x0 - 1 or box.y0 < fbox.y0 - 1 or box.x1 > fbox.x1 + 1 or \
                box.y1 > fbox.y1 + 1:
            problems.append(f"{tag} lies outside the figure")
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        abox = ax.get_window_extent(r)
        for t in ax.texts:
            if not (t.get_visible() and t.get_text().strip()) or t.get_clip_on():
                continue
            b = t.get_window_extent(r)
            if b.x0 < abox.x0 - 1 or b.y0 < abox.y0 - 1 or b.x1 > abox.x1 + 1 or \
                    b.y1 > abox.y1 + 1:
                problems.append(f"text {t.get_text()[:30]!r} of axes {i} runs outside its axes")
    boxes = [(tag, lg.get_window_extent(r)) for tag, lg in legends]
    boxes += [(f"axes {i} text", t.get_window_extent(r)) for i, ax in enumerate(fig.axes)
              for t in ax.texts if t.get_visible() and t.get_text().strip()]
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        abox = ax.get_window_extent(r)
        tol = 1.5
        for a in _data_artists(ax):
            paths, filled = _display_paths(a)
            for pts in paths:
                if pts.size == 0:
                    continue
                if (pts[:, 0].min() < abox.x0 - tol or pts[:, 0].max() > abox.x1 + tol or
                        pts[:, 1].min() < abox.y0 - tol or pts[:, 1].max() > abox.y1 + tol):
                    problems.append(f"a {type(a).__name__} of axes {i} "
                                    f"({a.get_label() or 'unlabelled'}) extends outside "
                                    f"its axes")
                for tag, box in boxes:
                    if _segments_hit_box(pts, (box.x0, box.y0, box.x1, box.y1), filled):
                        problems.append(f"{tag} lies on data of axes {i} "
                                        f"({a.get_label() or type(a).__name__})")
    return sorted(set(problems))


def save_figure(fig, path, check: bool = True) -> Path:
    """Write ``fig`` to ``path`` (PNG, :data:`DPI`) atomically (a temporary file in the same
    folder, then a rename), so that a reader never sees a half-written figure; with
    ``check``, warn (:class:`FigureLayoutWarning`) about every :func:`layout_problems`
    found. The figure is drawn once: the check and the file use the same rendering."""
    path = Path(path)
    if path.suffix.lower() not in ("", ".png"):
        raise ValueError(f"save_figure writes PNG files, got {path.name}")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.set_dpi(DPI)
    if check:
        found = layout_problems(fig)                    # draws the figure
        if found:
            warnings.warn(f"{path.name}: " + "; ".join(found), FigureLayoutWarning,
                          stacklevel=2)
    else:
        fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as fh:     # a unique name: concurrent runs never collide
            imsave(fh, image, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
