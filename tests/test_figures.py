"""Figures a reader of a paper can read: the layout check itself on figures with known
defects, the number format of the legends, and every registered study's figure drawn from
its fixture summary (tests/data/summaries, written by ``python -m
experiments.notebook.fixtures``) with no layout problem: no overlapping text, no legend or
label on the data, nothing outside its axes, every text inside the figure; one colour per
sampler across panels and figures. About 1 s per figure."""
import itertools
import math
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

from experiments.notebook.fixtures import FIXTURES
from experiments.runtime import registry
from theory.figures import (COLOURS, FigureLayoutWarning, colour, colour_distance,
                            format_estimate, format_exponent,
                            layout_problems, level_colours, new_figure, plot_rate_panel)
from theory.rates import fit_exponent

# studies whose figures another issue is rewriting (issue 10: exact grid laws); drawn, and
# their layout problems reported, but not yet held to the check
PENDING: dict = {}   # studies whose figure another issue is rewriting: name -> why


def _curves():
    x = np.geomspace(10, 1e4, 12)
    out = []
    for s, b in (("li-ode", -1.0), ("li-sde", -0.5)):
        y = 3 * x ** b
        out.append({"x": x, "value": y, "lower": 0.99 * y, "upper": 1.01 * y, "label": s,
                    "fit": fit_exponent(x[x >= 100], y[x >= 100]), "reference": (b, "bound")})
    return out


def test_clean_panel_has_no_problem():
    fig, axes = new_figure(1, 2, figsize=(10, 5))
    for ax in axes.flat:
        plot_rate_panel(ax, _curves(), xlabel="T", title="a panel")
    assert layout_problems(fig) == []


@pytest.mark.parametrize("slope, ref", [(-1.0, -0.5), (-0.5, -2.0), (0.5, 2.0)])
def test_reference_line_never_crosses_its_own_fit(slope, ref):
    """A bound of another slope than the data is drawn on one side of the fit over the
    whole fit range (it was anchored at the range's start and crossed the data)."""
    x = np.geomspace(10, 1e4, 12)
    y = 0.3 * x ** slope
    other = 50 * y                                   # a second curve well above the first
    curves = [{"x": x, "value": y, "label": "li-sde", "fit": fit_exponent(x, y),
               "reference": (ref, "bound")},
              {"x": x, "value": other, "label": "li-ode"}]
    fig, axes = new_figure(1, 1, figsize=(5, 4))
    ax = axes[0, 0]
    plot_rate_panel(ax, curves, xlabel="T", legend=False)
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1
    rx, ry = (np.asarray(v, float) for v in dashed[0].get_data())
    gap = np.log(ry / (0.3 * rx ** slope))
    assert np.all(gap > 0) or np.all(gap < 0)
    assert np.min(np.abs(gap)) >= np.log(2.5) - 1e-9        # REFERENCE_SHIFT clear of it
    assert np.allclose(np.diff(np.log(ry)) / np.diff(np.log(rx)), ref)


def test_layout_check_finds_each_defect():
    fig, axes = new_figure(1, 1, figsize=(5, 4))
    ax = axes[0, 0]
    plot_rate_panel(ax, _curves(), xlabel="T", legend=False)
    ax.legend(loc="center")                             # a legend on the curves
    ax.text(1e3, 3e-3, "a label on the data", ha="center", va="center")   # on li-ode
    ax.text(1e3, 3e-3, "and another on it", ha="center", va="center")     # overlapping
    ax.set_ylim(1e-3, 1)                                # cuts the curves: outside the axes
    found = " | ".join(layout_problems(fig))
    assert "legend of axes 0 lies on data" in found
    assert "axes 0 text lies on data" in found
    assert "axes 0 text overlaps axes 0 text" in found
    assert "extends outside its axes" in found


def test_text_outside_the_figure_is_found():
    fig, axes = new_figure(1, 1, figsize=(4, 3))
    plot_rate_panel(axes[0, 0], _curves(), xlabel="T", legend=False)
    fig.text(1.05, 0.5, "beyond the right edge")
    assert any("outside the figure" in p for p in layout_problems(fig))


def test_text_of_an_axes_running_past_its_edge_is_found():
    """A label placed in an axes (a line's name at its right end) that runs past the axes'
    edge is a defect even inside the figure: the next panel's labels sit there."""
    fig, axes = new_figure(1, 2, figsize=(8, 3))
    ax = axes[0, 0]
    plot_rate_panel(ax, _curves(), xlabel="T", legend=False)
    lo, hi = ax.get_xlim()
    ax.text(hi / 1.05, 0.5, "a long name at the right end", transform=ax.get_xaxis_transform())
    assert any("runs outside its axes" in p for p in layout_problems(fig))
    ax.texts[-1].set_text("x")
    ax.texts[-1].set_x(hi / 1.5)
    assert not any("runs outside its axes" in p for p in layout_problems(fig))


def _full_summary(name):
    """A full-mode summary kept in tests/data/summaries_full."""
    return json.loads((Path(__file__).parent / "data" / "summaries_full"
                       / f"{name}.json").read_text())


def _layout_warnings(draw, summary, folder):
    """The FigureLayoutWarning messages of drawing ``summary`` with ``draw``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FigureLayoutWarning)
        draw(summary, str(folder))
    return [str(w.message) for w in caught if issubclass(w.category, FigureLayoutWarning)]


def test_annealing_full_mode_figure_lays_out(tmp_path):
    """The full-mode dpnp-annealing figure (tests/data/summaries_full: the 204-point run of
    2026-12-06, budgets 32-2048): the dotted lines' names at the right ends fit inside their
    axes over six octaves of budget (they ran past them before), and no other layout
    problem; its readings give the gaps to the exact-sub-sampler limits to two digits
    ('8.8%', '0.4%', not '0%')."""
    from experiments.studies import dpnp_annealing as da
    summary = _full_summary("dpnp-annealing")
    assert not _layout_warnings(da.figure, summary, tmp_path)
    gaps = {p: da.settled(summary, p) for p in ("gaussian", "logistic")}
    assert gaps["gaussian"]["budget"] == gaps["logistic"]["budget"] == 2048
    assert da._percent(gaps["logistic"]["worst"]) != "0%"
    assert da._percent(0.0874) == "8.7%" and da._percent(0.00412) == "0.41%"


def test_stepsize_full_mode_rows_of_diverged_runs_stay_apart_and_inside(tmp_path, monkeypatch):
    """The full-mode scaledgd-stepsize figure (tests/data/summaries_full: 480 runs, 42 step
    sizes, errors down to 1e-14): its 8 rows of diverged runs were spaced half a decade over
    20 decades (2.3% of the axes, markers touching, the top row on the frame). Now each row
    is at least 4% of the axes above the one below, the lowest above the cap, the highest
    below the top edge; the caption gives ScaledGD's ratio over kappa as a range (a list of
    42 entries to one decimal of eta read '0.1: 1.0, 0.1: 1.0, ...')."""
    from experiments.studies import scaledgd_stepsize as ss
    summary = _full_summary("scaledgd-stepsize")
    assert not _layout_warnings(ss.figure, summary, tmp_path)
    saved = {}                                   # the drawn figure, before it is saved
    monkeypatch.setattr(ss, "save_figure", lambda fig, path: saved.setdefault("fig", fig))
    ss.figure(summary, str(tmp_path))
    ax = saved["fig"].axes[0]
    lo, hi = (math.log10(v) for v in ax.get_ylim())
    frac = lambda y: (math.log10(y) - lo) / (hi - lo)   # noqa: E731
    rows = sorted({frac(float(l.get_ydata()[0])) for l in ax.lines
                   if l.get_marker() in ("x", "+") and len(l.get_ydata())})
    assert len(rows) == 8
    assert min(np.diff(rows)) >= 0.04
    assert rows[0] > frac(ss.CAP) + 0.03 and rows[-1] < 0.97
    caption = ss.stepsize_caption(summary)
    ratios = ss.kappa_error_ratios(summary)
    assert len(ratios) == 42 and "0.1: 1.0, 0.1" not in caption
    assert f"{max(r for _, r in ratios):.1f} over the 42 step sizes" in caption


@pytest.mark.parametrize("k, ci, text", [
    (0.5512, (0.5101, 0.5899), "+0.55 [+0.51, +0.59]"),
    (-0.9921, (-0.9959, -0.9884), "-0.992 [-0.996, -0.988]"),   # needs a third decimal
    (0.8984412, (0.8984381, 0.8984443), "+0.898441 ± 4e-06"),     # w = 3.1e-6 rounded up
    (0.958909, (0.958897, 0.958921), "+0.95891 ± 2e-05"),         # to w's decimal
    (-1e-9, (-2e-8, 2e-8), "+0.00000000 ± 2e-08"),    # no "-0.00" or "[-0.00, +0.00]"
    (0.0, (-6e-6, 6e-6), "+0.000000 ± 6e-06"),        # not "+0.000000 [-0.000006, +0.000006]"
    # w = 7e-9: the exponent to w's decimal (rounded to six, 0.979727 would sit 4e-7 off)
    (0.9797274043, (0.979727397, 0.979727411), "+0.979727404 ± 8e-09"),
    (0.71234, (0.71221, 0.71249), "+0.7123 [+0.7122, +0.7125]"),  # half 1.4e-4: brackets
    (-1.0384, (-1.0431, -1.0332), "-1.038 [-1.043, -1.033]"),   # 2 decimals: "-1.04 [-1.04, -1.03]"
    (0.5149, (0.5091, 0.5301), "+0.515 [+0.509, +0.530]"),      # 2 would put +0.51 on its end
    (0.52, (0.52, 0.61), "+0.52 [+0.52, +0.61]"),               # a point on its end stays there
])
def test_format_exponent(k, ci, text):
    assert format_exponent(k, ci) == text


def test_level_colours_fixed_by_value():
    a = level_colours([1.0, 0.5, 0.7])
    b = level_colours([0.7, 1.4, 1.0, 0.5, 0.4])
    assert a[0.5] != a[0.7] != a[1.0]
    c = level_colours([0.4, 0.5, 0.7, 1.0, 1.4, 2.0])
    assert c[1.0] == level_colours([1.0, 0.4, 2.0, 1.4, 0.7, 0.5])[1.0]
    assert len(set(b.values())) == 5


def _fixture(name):
    path = FIXTURES / f"{name}.json"
    assert path.exists(), (f"no fixture summary for {name}: write it with `python -m "
                           f"experiments.notebook.fixtures {name}` (a fast run of the study)")
    return json.loads(path.read_text())


def _draw(name, folder):
    """Draw the study's figures from its fixture: (figure objects, layout problems)."""
    mod = registry.get(name)
    drawn = {"figs": []}
    real = mod.save_figure

    def capture(fig, path, *a, **k):
        drawn["figs"].append(fig)
        return real(fig, path, *a, **k)
    mod.save_figure = capture
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FigureLayoutWarning)
            out = mod.figure(_fixture(name), str(folder))
    except (KeyError, TypeError, IndexError) as exc:
        pytest.fail(f"{name}: figure() failed on its fixture ({exc!r}); the fixture may be "
                    f"stale: `python -m experiments.notebook.fixtures {name}`")
    finally:
        mod.save_figure = real
    for path in (out if isinstance(out, (list, tuple)) else [out]):   # one or more figures
        assert Path(path).exists() and Path(path).stat().st_size > 10_000
    return drawn["figs"], [str(w.message) for w in caught
                          if issubclass(w.category, FigureLayoutWarning)]


_DRAWN = {}


def drawn(name, tmp_path_factory):
    """Each figure is drawn once per session (about 1-5 s of CPU each)."""
    if name not in _DRAWN:
        _DRAWN[name] = _draw(name, tmp_path_factory.mktemp("figures"))
    return _DRAWN[name]


@pytest.mark.parametrize("name", list(registry.EXPERIMENTS))
def test_every_registered_figure_passes_the_layout_check(name, tmp_path_factory):
    _, problems = drawn(name, tmp_path_factory)
    if name in PENDING:
        pytest.xfail(f"{PENDING[name]}: {'; '.join(problems) or 'no problem found'}")
    assert problems == [], problems


def _plain_text(fig):
    """Every visible text of a drawn figure (legend entries and titles included) with its
    mathtext ($...$) cut out: what a reader sees as typed characters."""
    import re
    out = []
    for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_visible")):
        if t.get_visible() and t.get_text():
            out.append(re.sub(r"\$[^$]*\$", "", t.get_text()))
    return out


@pytest.mark.parametrize("name", list(registry.EXPERIMENTS))
def test_no_code_notation_in_any_figure(name, tmp_path_factory):
    """No figure shows code where notation is meant: no literal underscore (q_1, pi_eta,
    σ_max: subscripts are mathtext or Unicode), no caret power (κ^p, 1/T^2), no Python dict
    or list, no e-notation exponent (1e-10)."""
    import re
    figs, _ = drawn(name, tmp_path_factory)
    bad = []
    for fig in figs:
        for t in _plain_text(fig):
            if ("_" in t or "^" in t or re.search(r"\{'[^']*': |\['", t)
                    or re.search(r"\d[eE][-+]?\d", t)):
                bad.append(t)
    assert not bad, bad


def test_colour_distance_is_cie76():
    """CIE76 Delta E: white to black is 100 (L* from 100 to 0); sRGB red is L*a*b* = (53.24,
    80.09, 67.20) (the standard's worked value), so red to black is |(53.24, 80.09, 67.20)|."""
    assert colour_distance("#ffffff", "#000000") == pytest.approx(100.0, abs=1e-3)
    assert colour_distance("#ff0000", "#000000") == pytest.approx(
        float(np.linalg.norm([53.24, 80.09, 67.20])), abs=0.05)
    assert colour_distance("#0072B2", "#0072B2") == 0.0


def test_sampler_colours_are_told_apart():
    """Two samplers' line colours differ by CIE76 Delta E >= 25 (the pairs sharing a colour on
    purpose: the DPnP DDS 'sde'/'ode' drawn as li-sde/li-ode); and DPnP's Langevin PCS (ULA,
    MALA) are also >= 25 from every shade of the posterior benchmark's method families and of
    dpnp-annealing's schedules, so that no PCS line reads as a DPnP or DPS one."""
    from matplotlib import colormaps
    from experiments.studies.dpnp_annealing import schedule_styles
    from experiments.studies.posterior_benchmark import METHOD_FAMILIES
    cols = {}
    for name, c in COLOURS.items():
        cols.setdefault(c.lower(), []).append(name)
    close = [(a, b, round(colour_distance(x, y), 1))
             for (x, a), (y, b) in itertools.combinations(cols.items(), 2)
             if colour_distance(x, y) < 25]
    assert not close, close
    shades = [colormaps[cmap](float(t)) for _, cmap, _, _ in METHOD_FAMILIES
              for t in np.linspace(0.42, 0.98, 8)]
    shades += list(schedule_styles()[0].values())
    for pcs in ("ula", "mala"):
        worst = min(colour_distance(COLOURS[pcs], s) for s in shades)
        assert worst >= 25, (pcs, worst)
    # dpnp-annealing's schedules and DPS: any two of its five lines told apart
    sched = list(schedule_styles()[0].values())
    assert min(colour_distance(a, b) for a, b in itertools.combinations(sched, 2)) >= 25


def test_one_colour_per_sampler_across_figures(tmp_path_factory):
    """Every curve labelled with a sampler's name has that sampler's colour, in every panel
    of rate-vs-T, rate-vs-d, rate-vs-ambient-d and score-error."""
    seen = {}
    for name in ("rate-vs-T", "rate-vs-d", "rate-vs-ambient-d", "score-error"):
        figs, _ = drawn(name, tmp_path_factory)
        for ax in (a for f in figs for a in f.axes):
            for line in ax.lines:
                if line.get_label() in COLOURS:
                    seen.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
    assert {"li-ode", "li-sde", "accel-sde", "accel-ode", "li-yan"} <= set(seen)
    for sampler, cols in seen.items():
        assert cols == {colour(sampler).lower()}, (sampler, cols)


def test_dpnp_stationary_one_colour_per_eta(tmp_path_factory):
    """In dpnp-stationary a value of eta has one colour in every panel (the legend's entry
    names it), whatever set of eta a panel shows."""
    figs, _ = drawn("dpnp-stationary", tmp_path_factory)
    by_eta = {}
    for ax in (a for f in figs for a in f.axes):
        for text, handle in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles):
            eta = text.get_text().split(":")[0]
            by_eta.setdefault(eta, set()).add(to_hex(handle.get_color()))
    assert len(by_eta) >= 3 and all(len(c) == 1 for c in by_eta.values()), by_eta
    assert len({next(iter(c)) for c in by_eta.values()}) == len(by_eta)
    # a parameter's shades are no sampler's colour (nor near one), and the title is the claim
    # (the key in the caption), code identifiers written in Unicode
    _far_from_samplers({next(iter(c)) for c in by_eta.values()})
    # every eta either mode runs keeps a shade told apart from every other's (CIE76)
    from itertools import combinations
    from experiments.studies.dpnp_stationary import eta_colours
    shades = eta_colours()
    assert len(shades) >= 4 and min(colour_distance(a, b)
                                    for a, b in combinations(shades.values(), 2)) >= 24
    (fig,) = figs
    assert fig._suptitle.get_text().count("\n") <= 1
    assert all(ax.get_title().count("\n") == 0 for ax in fig.axes)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert not [t for t in texts if "x_k" in t or "^k" in t or "e-0" in t], texts


def _far_from_samplers(cols, min_dist=0.12):
    """Every colour of ``cols`` at least ``min_dist`` (RGB distance) from every sampler's."""
    from matplotlib.colors import to_rgb
    samplers = np.array([to_rgb(c) for c in set(COLOURS.values())])
    for c in cols:
        d = np.linalg.norm(samplers - np.array(to_rgb(c)), axis=1).min()
        assert d >= min_dist, (c, d)


def test_parameter_colours_are_fixed_and_no_samplers():
    """parameter_colours: sorted numbers (or names in order) take evenly spaced shades of a
    sequential map, fixed by value whatever subset is passed first, far from every sampler's
    colour."""
    from theory.figures import parameter_colours
    a = parameter_colours([1.4, 0.5, 1.0, 0.7])
    assert list(a) == [0.5, 0.7, 1.0, 1.4] and len(set(a.values())) == 4
    assert a == parameter_colours([0.5, 0.7, 0.7, 1.0, 1.4])
    _far_from_samplers(a.values())
    _far_from_samplers(parameter_colours([0.4, 0.5, 0.7, 1.0, 1.4, 2.0]).values())
    names = parameter_colours(["gaussian", "phase", "logistic"], cmap="copper",
                              span=(0.2, 0.75))
    assert list(names) == ["gaussian", "phase", "logistic"] and len(set(names.values())) == 3
    _far_from_samplers(names.values())


def test_score_error_dimension_ratio_recovers_a_planted_sqrt_d():
    """Curves whose excess is exactly C sqrt(d) eps give the ratio sqrt(10) at d = 10 vs
    d = 1 (and the sentence then does not say the sqrt(d) is missing); curves with the same
    prefactor in both dimensions give 1 and say it does not show."""
    from experiments.studies import score_error as se

    def summary(scale):
        fits = []
        for d in (1, 10):
            for s in se.SAMPLERS:
                eps = [0.01, 0.02, 0.04, 0.08]
                c = 2.0 * (np.sqrt(d) if scale else 1.0)
                fits.append({"d": d, "sampler": s, "tv_exact_score": 0.01, "eps_score": eps,
                             "tv": [0.01 + c * e for e in eps],
                             "fit": {"x_range": [0.02, 0.08], "exponent": 1.0}})
        return {"fits": fits}

    planted = se.dimension_ratios(summary(True))
    assert [r["ratio"] for r in planted] == pytest.approx([np.sqrt(10)] * 2, rel=1e-12)
    assert "does not show" not in se._dimension_sentence(summary(True))
    flat = se.dimension_ratios(summary(False))
    assert [r["ratio"] for r in flat] == pytest.approx([1.0, 1.0], rel=1e-12)
    assert "does not show" in se._dimension_sentence(summary(False))


def test_subsampler_dds_fit_recovers_a_planted_rate_and_pcs_floors_are_read_right():
    """A DDS curve TV = 0.3 s^-0.7 (grid errors 1e-6) gives the exponent -0.7 and, against
    the stochastic bound's -1/2, the verdict 'bound loose'; a PCS curve flat at its last two
    step counts is 'settled' and one at the exact value is 'at_exact'."""
    from experiments.studies import dpnp_subsampler_error as se
    steps = [2, 5, 20, 100]
    curves = [{"problem": "gaussian", "part": "dds", "method": "sde", "steps": steps,
               "tv": [0.3 * s ** -0.7 for s in steps], "error": [1e-6] * 4,
               "exact_tv_at_K": 1e-5, "mc": None},
              {"problem": "gaussian", "part": "pcs", "method": "mala", "steps": [1, 30, 100],
               "tv": [0.2, 1e-5, 1e-5], "error": [1e-9] * 3, "exact_tv_at_K": 1e-5,
               "mc": None},
              {"problem": "gaussian", "part": "pcs", "method": "ula", "steps": [1, 30, 100],
               "tv": [0.2, 0.01, 0.004], "error": [1e-9] * 3, "exact_tv_at_K": 1e-5,
               "mc": None}]
    (f,) = se.dds_fits({"curves": curves})
    assert f["fit"]["exponent"] == pytest.approx(-0.7, abs=1e-6)
    assert f["verdict"].startswith("bound loose")
    fl = {q["method"]: q for q in se.pcs_floors({"curves": curves})}
    assert fl["mala"]["settled"] and fl["mala"]["at_exact"]
    assert not fl["ula"]["settled"] and not fl["ula"]["at_exact"]


def test_scaledgd_implied_rate_bound_is_tol_to_one_over_the_slowest_count():
    """Reaching 1e-10 from an initial error <= 1 in at most 45 iterations means a mean
    contraction <= 1e-10^(1/45) = 0.5995; the slowest kappa's upper end counts."""
    from experiments.studies.scaledgd_kappa import implied_rate_bound
    fits = [{"sampling": "rip", "algorithm": "scaledgd", "tol": 1e-10,
             "per_kappa": [{"hi": 42.0}, {"hi": 45.0}, {"hi": 41.0}]},
            {"sampling": "rip", "algorithm": "gd", "tol": 1e-10, "per_kappa": [{"hi": 900.0}]}]
    assert implied_rate_bound(fits, "rip") == pytest.approx(10 ** (-10 / 45), rel=1e-12)
    assert implied_rate_bound(fits, "paper") is None


def test_annealing_ranking_and_cancellation_read_the_curves():
    """ranking orders the curves at the largest budget and marks neighbours whose intervals
    separate; cancellation lists exactly the schedules that end below their exact-sub-sampler
    value by more than its error, with their variances."""
    from experiments.studies import dpnp_annealing as da

    def curve(label, tv, half, limit=None, var=None):
        return {"problem": "gaussian", "label": label, "budget": [64, 256], "tv": [0.5, tv],
                "lower": [0.4, tv - half], "upper": [0.6, tv + half], "mean": [0.0, 0.5],
                "var": [0.3, var], "exact_subsampler_limit": limit,
                "exact_subsampler_limit_error": 1e-6,
                "exact_subsampler_limit_moments": {"mean": 0.5, "var": 0.25}}
    s = {"curves": [curve("a", 0.10, 0.01, limit=0.2, var=0.21), curve("b", 0.105, 0.01,
                    limit=0.05, var=0.2), curve("DPS", 0.3, 0.01)],
         "posterior_moments": {"gaussian": {"mean": 0.56, "var": 0.2}}}
    rk = da.ranking(s, "gaussian")
    assert rk["budget"] == 256 and [r["label"] for r in rk["rows"]] == ["a", "b", "DPS"]
    assert [r.get("separated_from_next") for r in rk["rows"]] == [False, True, None]
    (q,) = da.cancellation(s, "gaussian")
    assert q["label"] == "a" and q["var"] == 0.21 and q["limit_var"] == 0.25
    # the claim's verdict and the "settled" reading (every schedule at its exact-sub-sampler
    # limit to 10%) from planted curves
    sched = lambda lab, tv, lim: curve(lab, tv, 0.001, limit=lim, var=0.2)  # noqa: E731
    met = {"curves": [sched("constant", 0.3, 0.3), sched("geometric", 0.1, 0.2),
                      sched("reference", 0.2, 0.25), curve("DPS", 0.35, 0.01)]}
    assert da.claim_verdict(met, "gaussian") == "met"
    assert da.settled(met, "gaussian") is None          # geometric 0.1 against 0.2
    bad = {"curves": [sched("constant", 0.3, 0.3), sched("geometric", 0.32, 0.31),
                      curve("DPS", 0.2, 0.01)]}
    assert da.claim_verdict(bad, "gaussian") == ("not met: geometric above constant; DPS "
                                                 "below every DPnP schedule")
    st = da.settled(bad, "gaussian")
    assert abs(st["worst"] - 0.01 / 0.31) < 1e-12 and st["budget"] == 256
    # DPS's interval reaching below the best schedule (a zeta' the grid did not resolve):
    # neither met nor contradicted
    wide = {"curves": [sched("constant", 0.3, 0.3), sched("geometric", 0.1, 0.2),
                       curve("DPS", 0.35, 0.3)]}
    assert da.claim_verdict(wide, "gaussian") == ("not resolved: DPS against geometric "
                                                  "(intervals overlap)")


def test_annealing_dps_at_its_best_takes_the_interval_of_the_minimum():
    """DPS at its best zeta' is min over zeta' of TV(zeta'): its interval is [min of the lower
    ends, min of the upper ends] (so an unresolved zeta' widens it), the value shown is the
    smallest value and lies inside, and the zeta' that could be the best are named."""
    from experiments.studies import dpnp_annealing as da

    def rec(zeta, value, err):
        return {"config": {"problem": "gaussian", "method": "dps", "label": "DPS",
                           "zeta": zeta, "budget": 256},
                "result": {"value": value, "lower": max(value - err, 0.0),
                           "upper": value + err, "error": err, "floor_q95": None,
                           "below_floor": False, "ks_lower": None, "score_calls": 256}}
    recs = [rec(0.003, 0.279, 7e-5), rec(0.3, 0.497, 0.579), rec(0.01, 0.49, 1e-4),
            rec(0.001, 0.38, 6e-5)]
    s = da.summarise(recs, fast=True)
    (c,) = [c for c in s["curves"] if c["label"] == "DPS"]
    assert c["zeta"] == [0.003] and c["tv"] == [0.279]
    assert c["lower"] == [0.0] and c["upper"] == [0.279 + 7e-5]
    assert c["could_be_best"] == [[0.3]]


def test_annealing_chain_checks_pair_with_their_grid_law():
    """summarise pairs each dpnp-chains record with the grid-law point of the same schedule
    and budget: the check carries the chains' interval, the grid law's, and ``agree`` says
    whether they overlap."""
    from experiments.studies import dpnp_annealing as da

    def exact(v, e):
        return {"value": v, "lower": v - e, "upper": v + e, "error": e, "floor_q95": None,
                "below_floor": False, "ks_lower": None, "score_calls": 64}

    def chains(v, lo, hi):
        return {"value": v, "lower": lo, "upper": hi, "floor_q95": 0.02, "below_floor": False,
                "ks_lower": 0.0, "score_calls": 64}
    base = {"problem": "logistic", "budget": 64}
    recs = [{"config": {**base, "method": "dpnp", "label": "a"}, "result": exact(0.2, 1e-6)},
            {"config": {**base, "method": "dpnp", "label": "b"}, "result": exact(0.3, 1e-6)},
            {"config": {**base, "method": "dpnp-chains", "label": "a", "n": 10},
             "result": chains(0.21, 0.19, 0.23)},
            {"config": {**base, "method": "dpnp-chains", "label": "b", "n": 10},
             "result": chains(0.35, 0.32, 0.38)}]
    s = da.summarise(recs, fast=True)
    chk = {c["label"]: c for c in s["sample_cross_checks"]}
    assert chk["a"]["agree"] and not chk["b"]["agree"]
    assert chk["b"]["grid_law"]["value"] == 0.3 and chk["b"]["lower"] == 0.32
    assert [c["label"] for c in s["curves"]] == ["a", "b"]


def test_annealing_figure_names_each_dotted_line_and_keeps_titles_short(tmp_path_factory):
    """dpnp-annealing: every schedule's dotted exact-sub-sampler line is named at its right
    end (labels at least a line apart, each beyond the last budget), the suptitle and each
    panel title are at most 2 lines (the panel's ranking and verdict in its own title), the
    logistic panel has y ticks 0.15, 0.3, 0.4, and the Gaussian panel says why it has no
    chain check."""
    from experiments.studies import dpnp_annealing as da
    (fig,), _ = drawn("dpnp-annealing", tmp_path_factory)
    assert fig._suptitle.get_text().count("\n") <= 1
    r = fig.canvas.get_renderer()
    for ax, p in zip(fig.axes, da.PROBLEMS):
        title = ax.get_title()
        assert title.count("\n") == 1 and "claim" in title.split("\n")[1]
        names = {t.get_text(): t for t in ax.texts if t.get_text() in da.SCHEDULES}
        assert set(names) == set(da.SCHEDULES), (p, sorted(names))
        assert all(t.get_position()[0] > 256 for t in names.values())
        boxes = sorted((t.get_window_extent(r) for t in names.values()), key=lambda b: b.y0)
        assert all(b.y0 >= a.y1 - 0.5 for a, b in itertools.pairwise(boxes))
    gauss, logistic = fig.axes[:2]
    assert "no chain check" in gauss.get_title()
    assert {0.15, 0.3, 0.4} <= set(np.round(logistic.get_yticks(), 6))
    assert da.nice_log_ticks(0.11, 0.6) == [0.15, 0.2, 0.3, 0.4, 0.5]
    # crowded labels are spread a gap apart around their values' mean
    assert da._spread([0.0, 0.01, 0.5], 0.1) == pytest.approx([-0.045, 0.055, 0.5])


def test_subsampler_error_one_key_for_the_checks_and_unicode_notation(tmp_path_factory):
    """dpnp-subsampler-error: the sample-based checks' markers are keyed once for the figure
    (not in every panel), with the grey upper-bound entry because the fixture's Gaussian MALA
    check lies below its estimator floor (and is drawn grey); the suptitle is at most 2
    lines; exponents and bounds are written in Unicode (sᵖ, ≤, ×10⁻⁵), never s^-0.81 or
    <= 9e-05."""
    from matplotlib.colors import to_rgb

    from experiments.studies import dpnp_subsampler_error as se
    (fig,), _ = drawn("dpnp-subsampler-error", tmp_path_factory)
    (key,) = fig.legends
    entries = [t.get_text() for t in key.get_texts()]
    assert len(entries) == 4 and any("upper bound" in e for e in entries), entries
    for ax in fig.axes:
        assert not any("check" in t.get_text() for t in ax.get_legend().get_texts())
    s = _fixture("dpnp-subsampler-error")
    low = [c for c in s["curves"] if c["mc"] and c["mc"]["value"] <= c["mc"]["floor_q95"]]
    assert [(c["problem"], c["method"]) for c in low] == [("gaussian", "mala")]
    grey = to_rgb(se._UNRESOLVED)
    ax0 = fig.axes[0]
    assert any(line.get_marker() == "D" and to_rgb(line.get_color()) == grey
               and np.allclose(line.get_ydata(), [low[0]["mc"]["value"]]) for line in ax0.lines)
    assert fig._suptitle.get_text().count("\n") <= 1
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))
             if not t.get_text().startswith("$")]            # not the mathtext tick labels
    assert not [t for t in texts if "^" in t or "<=" in t or "e-0" in t or "pi_eta" in t]
    assert "TV ~ sᵖ: SDE p = −0.81 [−1.31, −0.31]" in fig.axes[1].get_title()
    from theory.figures import sci
    assert sci(9.344e-05) == "9×10⁻⁵" and sci(1.7e-05, 2) == "1.7×10⁻⁵"
    assert sci(-1.6e-07, 2, sign=True) == "−1.6×10⁻⁷"
    assert sci(4.6e-07, 2, sign=True) == "+4.6×10⁻⁷"


def test_eta_bias_likelihoods_have_their_own_palette(tmp_path_factory):
    """dpnp-eta-bias: each likelihood's curve is drawn in its own (copper) shade, three
    distinct shades far from every sampler's colour; the title is the claim in at most 2
    lines, the key in the caption; notation rendered (π_η in mathtext, η, σ², → in Unicode),
    no pi_eta/eta/->."""
    from experiments.studies import dpnp_eta_bias as eb
    (fig,), _ = drawn("dpnp-eta-bias", tmp_path_factory)
    ax = fig.axes[0]
    drawn_cols = {}
    for line in ax.lines:
        if line.get_label() in eb.NAMES.values():
            drawn_cols.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
    assert drawn_cols == {eb.NAMES[p]: {eb.COLOURS[p]} for p in eb.PROBLEMS}, drawn_cols
    assert len(set(eb.COLOURS.values())) == 3
    _far_from_samplers(eb.COLOURS.values())
    assert fig._suptitle.get_text().count("\n") <= 1
    assert "$\\pi_\\eta$" in fig._suptitle.get_text()        # mathtext: a real subscript
    texts = _plain_text(fig)
    assert not [t for t in texts if "pi_eta" in t or "eta" in t.replace("beta", "")
                or "->" in t or "<=" in t or "sigma" in t], texts


def test_below_end_guide_is_anchored_on_its_curve():
    """guide='below-end': the d² guide passes a factor 2.5 below the fit's last point, has the
    bound's slope 2 exactly, runs back over the fit range and stops a factor 2.5² below the
    lowest data (never above the data's largest value); guide_span draws a flat guide over
    the given x-range a factor guide_shift below the data."""
    x = np.geomspace(1, 3000, 10)
    y = 0.004 * x ** 0.5
    fit = fit_exponent(x, y)
    fig, axes = new_figure(1, 1, figsize=(5, 4))
    ax = axes[0, 0]
    plot_rate_panel(ax, [{"x": x, "value": y, "label": "li-sde", "fit": fit,
                          "reference": (2.0, "bound"), "guide": "below-end"}], legend=False)
    (dashed,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    gx, gy = (np.asarray(v, float) for v in dashed.get_data())
    assert gx[-1] == pytest.approx(3000) and gy[-1] == pytest.approx(y[-1] / 2.5, rel=1e-9)
    assert np.allclose(np.diff(np.log(gy)) / np.diff(np.log(gx)), 2.0)
    assert gy.min() >= y.min() / 2.5 ** 2 * (1 - 1e-9) and gy.max() <= y.max()
    assert gx[0] > 100            # ~2.4 decades of TV below 0.1 at slope 2: from d ~ 250 on
    flat = np.full_like(x, 0.005)
    fig, axes = new_figure(1, 1, figsize=(5, 4))
    ax = axes[0, 0]
    plot_rate_panel(ax, [{"x": x, "value": flat, "label": "li-yan",
                          "fit": fit_exponent(x[x >= 30], flat[x >= 30]),
                          "reference": (0.0, "bound"), "guide": "below-end",
                          "guide_shift": 1.6, "guide_span": (1, 3000)}], legend=False)
    (dashed,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    gx, gy = (np.asarray(v, float) for v in dashed.get_data())
    assert gx[0] == pytest.approx(1) and gx[-1] == pytest.approx(3000)
    assert np.allclose(gy, 0.005 / 1.6)


def test_fit_behind_the_data_and_verdict_note():
    """fit_style='behind': the fit is a wide light line under the data line, with the fitted
    values; verdict_note ends a non-consistent verdict, and glue_verdict keeps 'by a factor
    ... or more (note)' on one legend line."""
    from theory.figures import FIT_BEHIND_COLOUR
    x = np.geomspace(10, 1e4, 12)
    y = 0.3 * x ** -1.0
    fit = fit_exponent(x[x >= 100], y[x >= 100])
    fig, axes = new_figure(1, 1, figsize=(6, 5))
    ax = axes[0, 0]
    _, labels = plot_rate_panel(ax, [{"x": x, "value": y, "label": "li-sde", "fit": fit,
                                      "reference": (-0.5, "bound d²/√T"), "x_name": "T"}],
                                fit_style="behind", verdict_note="after the 0.05 tolerance",
                                glue_verdict=True)
    data = next(ln for ln in ax.get_lines() if ln.get_label() == "li-sde")
    behind = [ln for ln in ax.get_lines() if to_hex(ln.get_color()) == to_hex(FIT_BEHIND_COLOUR)]
    assert len(behind) == 1 and behind[0].get_zorder() < data.get_zorder()
    bx, by = (np.asarray(v, float) for v in behind[0].get_data())
    assert bx[0] == pytest.approx(x[x >= 100][0]) and bx[-1] == pytest.approx(1e4)
    assert np.allclose(by, 0.3 * bx ** -1.0, rtol=1e-9)
    lines = labels[0].split("\n")
    verdict_line = next(ln for ln in lines if "factor" in ln)
    assert "or\u00a0more\u00a0(after\u00a0the\u00a00.05\u00a0tolerance)" in verdict_line
    assert "T⁰·⁴⁵" in verdict_line            # -1 vs -0.5: loose by T^(0.5 - 0.05)
    assert layout_problems(fig) == []


def test_consistent_from_the_interval_alone_says_so():
    """A "consistent" verdict whose point estimate alone would be violated names the edge of
    the tolerance its interval reaches; one whose point estimate passes does not."""
    import matplotlib.pyplot as plt
    from theory.figures import plot_rate_panel
    from theory.rates import RateFit

    def label(ci, exponent):
        fig, ax = plt.subplots()
        x = np.array([100.0, 200.0, 400.0])
        fit = RateFit(exponent=exponent, ci=ci, prefactor=1.0, x_range=(100.0, 400.0),
                      n_points=3, r2=1.0)
        plot_rate_panel(ax, [{"x": x, "value": x ** exponent, "label": "s", "fit": fit,
                              "reference": (-2, "1/T²"), "x_name": "T"}])
        text = " ".join(t.get_text() for t in ax.get_legend().get_texts())
        plt.close(fig)
        return text

    assert "consistent (interval reaches -1.95)" in label((-1.98, -1.86), -1.92).replace(
        "\u2212", "-")
    assert "interval reaches" not in label((-2.03, -1.97), -2.0)


def test_a_curve_without_a_fit_still_draws_its_bound_guide():
    """No fit (fit None, a fit error): the theorem's guide is drawn anyway, with the bound's
    slope on log-log axes, a factor REFERENCE_SHIFT below the curve's first point."""
    from theory.figures import REFERENCE_SHIFT
    fig, axes = new_figure(1, 1, figsize=(5, 4))
    T = np.array([10.0, 20, 40, 80, 160])
    tv = 0.3 * T ** -3.7
    curve = {"x": T, "value": tv, "lower": tv * 0.9, "upper": tv * 1.1, "label": "rk4",
             "fit": None, "fit_error": "not resolved", "reference": (-4.0, "1/T⁴")}
    plot_rate_panel(axes[0, 0], [curve], xlabel="T", legend=False)
    dashed = [ln for ln in axes[0, 0].get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1
    gx, gy = (np.asarray(v, float) for v in dashed[0].get_data())
    slope = np.log(gy[-1] / gy[0]) / np.log(gx[-1] / gx[0])
    assert slope == pytest.approx(-4.0, abs=1e-12)
    assert gy[0] == pytest.approx(tv[0] / REFERENCE_SHIFT, rel=1e-12)


def test_wrap_text_measures_mathtext_by_its_drawn_length():
    """A mathtext segment counts as the characters it draws ($\\varepsilon_{\\rm score}$: 6,
    not its 25 of source) and is never split: a 40-character line holds 'fit over ε_score
    in [0.00524, 0.0908], 4' whole, which a plain fill breaks after 'in'."""
    from theory.figures import wrap_text
    eps = "$\\varepsilon_{\\rm score}$"
    text = f"fit over {eps} in [0.00524, 0.0908], 4 points; also {eps} = 0.1 and {eps}"
    out = wrap_text(text, 40)
    assert out.split("\n")[0] == f"fit over {eps} in [0.00524, 0.0908], 4"
    assert out.replace("\n", " ") == text and out.count(eps) == 3
    import textwrap
    assert textwrap.fill(text, 40).split("\n")[0] == f"fit over {eps} in"


def test_unicode_powers_writes_every_exponent_in_the_figures_notation():
    """Carets, e-notation and minus signs in one pass: what every legend goes through."""
    from theory.figures import unicode_powers
    assert unicode_powers("+0.000000 ± 3e-08") == "+0.000000 ± 3×10⁻⁸"
    assert unicode_powers("p = -0.03 [-0.10, +0.04], T^-2, 1e4") == \
        "p = −0.03 [−0.10, +0.04], T⁻², 10⁴"
    assert unicode_powers("dpm++2m and x_1e5 stay") == "dpm++2m and x_1e5 stay"


def _dashed(ax):
    (dashed,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    return (np.asarray(v, float) for v in dashed.get_data())


def test_a_bound_guide_goes_above_its_data_where_there_is_room():
    """A second curve 3x above over the left 60% of the range blocks the guide's first
    placement (2.5x above its own fit) there; the placement below the fit is clear
    everywhere, but a placement above all the panel's curves covers most of the range, and
    above wins (a dashed line above the data reads as the bound). 'above-end' passes the
    factor guide_shift above the fit's last point with the bound's slope."""
    x = np.geomspace(10, 1e4, 13)
    y = 1.0 / x
    xb = x[x <= 10 ** 2.8]
    curves = [{"x": x, "value": y, "label": "li-ode", "fit": fit_exponent(x, y),
               "reference": (-1.0, "bound")},
              {"x": xb, "value": 3.0 / xb, "label": "li-sde"}]
    fig, axes = new_figure(1, 1, figsize=(5, 4))
    plot_rate_panel(axes[0, 0], curves, legend=False)
    gx, gy = _dashed(axes[0, 0])
    assert gx.size >= 2 and np.all(gy > 1.6 * 3.0 / gx)      # above both curves
    assert np.log(gx[-1] / gx[0]) >= 0.5 * np.log(1e3)
    fig, axes = new_figure(1, 1, figsize=(5, 4))
    plot_rate_panel(axes[0, 0], [{**curves[0], "reference": (-0.5, "bound"),
                                  "guide": "above-end", "guide_shift": 6.25}], legend=False)
    gx, gy = _dashed(axes[0, 0])
    assert gx[-1] == pytest.approx(1e4) and gy[-1] == pytest.approx(6.25e-4, rel=1e-9)
    assert np.allclose(np.diff(np.log(gy)) / np.diff(np.log(gx)), -0.5)
    assert gy.max() <= y.max() * (1 + 1e-9)


def test_ambient_title_states_the_computed_claim():
    """rate-vs-ambient-d's title: li-yan's TV the same at every d where its spread is at
    rounding level, else its exponent in d with the verdict against 0; in T its exponent
    of TV/log T against k/T. li-sde's growth goes to the caption."""
    from experiments.studies import rate_vs_ambient_d as m
    s = _fixture("rate-vs-ambient-d")
    title = m.ambient_title(s)
    yan = next(f for f in s["fits"] if (f["sampler"], f["vs"]) == ("li-yan", "d"))
    assert f"from 2 to 10⁴ (relative spread {m.sci(m.exact_spread(yan))})" in title
    ft = next(f for f in s["fits"] if (f["sampler"], f["vs"]) == ("li-yan", "T"))
    e = ft["log_corrected_fits"]["tv_over_logT^1"]["exponent"]
    assert f"p = {e:+.3f}".replace("-", "−") in title and "li-sde" not in title
    d = np.array([10.0, 100, 1000, 10000])
    tv = 0.01 * d ** 0.2
    planted = {"fits": [{"sampler": "li-yan", "vs": "d", "d": d.tolist(), "tv": tv.tolist(),
                         "fit": fit_exponent(d, tv).to_dict()}]}
    title = m.ambient_title(planted)
    assert "p = +0.200" in title and "violated" in title, title
    assert "√d" in m.sde_contrast(s)


def test_rate_vs_T_reading_takes_the_figures_verdict_on_a_steepening_fit(tmp_path):
    """Full mode's rk4 fit (Gaussian, T^-3.85 [...] against the order-4 bound) has local
    slopes still steepening toward -4 over its range: the legend says "not resolved
    (pre-asymptotic ...)" and so must the notebook's reading (it said "violated in 1");
    the full-mode figure draws without layout warnings."""
    from experiments.studies import rate_vs_T
    from theory.rates import local_slopes, verdict
    s = _full_summary("rate-vs-T")
    rk4 = [f for f in s["fits"] if f["sampler"] == "rk4"
           and "exponent" in f["log_corrected_fits"]["tv_over_logT^4"]]
    assert len(rk4) == 1
    lf = rk4[0]["log_corrected_fits"]["tv_over_logT^4"]
    assert lf["ci"][1] > -4 and verdict(-4, lf["ci"], var="T").startswith("violated")
    sl = [x[2] for x in local_slopes(rk4[0]["T"], rk4[0]["tv"], 4, lf["x_range"])]
    assert sl[-1] < sl[0]                        # steepening toward the bound
    text = rate_vs_T.reading(s)
    part = next(p for p in text.split("; ") if p.startswith("rk4"))
    assert "not resolved" in part and "violated" not in part
    assert "li-sde" in text and "bound loose in 6" in text
    assert _layout_warnings(rate_vs_T.figure, s, tmp_path) == []


def test_rate_vs_d_reading_prints_no_exponent_on_its_interval_end():
    """Full mode's bimodal li-sde exponent, +0.5140 in [+0.5054, +0.5226], read
    "d^+0.51 [+0.51, +0.52]" (the point on its interval's lower end); the reading now takes
    format_exponent's decimals, with every point strictly inside its printed interval."""
    import re
    from experiments.studies import rate_vs_d
    text = rate_vs_d.reading(_full_summary("rate-vs-d"))
    found = re.findall(r"d\^([+-]\d\.\d+) \[([+-]\d\.\d+), ([+-]\d\.\d+)\]", text)
    assert len(found) == 4
    for k, lo, hi in found:
        assert float(lo) < float(k) < float(hi)
    assert "d^+0.514 [+0.505, +0.523]" in text
    # the loose factors' range against d^2, from the fits' upper ends and the 0.05 allowance
    his = [f["fit"]["ci"][1] for f in _full_summary("rate-vs-d")["fits"]]
    assert (f"every bound is loose by a factor d^{2 - max(his) - 0.05:.2f} to "
            f"d^{2 - min(his) - 0.05:.2f} or more") in text


def test_subsampler_reading_says_where_a_sample_check_cannot_resolve():
    """Each sample-based check in dpnp-subsampler-error's reading says whether the binned
    grid law lies in the sample interval, and a check whose interval ends below its floor
    (or whose value does) is called an upper bound only; the numbers parsed back agree."""
    import re
    from experiments.studies import dpnp_subsampler_error as se
    for summary in (json.loads((Path(__file__).parent / "data" / "summaries" /
                                "dpnp-subsampler-error.json").read_text()),):
        lines = [ln for ln in se.reading(summary).splitlines() if "binned alike " in ln and "steps: " in ln]
        assert len(lines) == sum(c["mc"] is not None for c in summary["curves"]) > 0
        for ln in lines:
            v, lo, hi, fl, g = (float(x) for x in re.search(
                r": (\S+) \[(\S+), (\S+)\], floor (\S+?)[ ;].*binned alike (\S+),", ln).groups())
            assert ("upper bound only" in ln) == (hi <= fl or v < fl)
            assert ln.endswith("inside the sample interval") == (lo <= g <= hi)


def test_annealing_reading_sums_up_agreeing_cross_checks_and_names_schedules():
    """The chain cross-checks that agree are one line with their count and largest
    difference (computed here from the summary), each disagreement its own; the
    moment sentences name the schedules they cover ("for every schedule" when all)."""
    from experiments.studies import dpnp_annealing as da
    s = _full_summary("dpnp-annealing")
    checks = s["sample_cross_checks"]
    agree = [c for c in checks if c["agree"]]
    text = da.reading(s)
    gap = max(abs(c["value"] - c["grid_law"]["value"]) for c in agree)
    assert (f"{len(agree)} of {len(checks)} binned TVs agree" in text
            and f"largest difference {gap:.4f}" in text)
    assert text.count("cross-check (") == len(checks) - len(agree)
    assert "gaussian: at budget 2048, for every schedule, the reverse-SDE DDS" in text
    assert "logistic: at budget 2048, for the geometric and polynomial schedules" in text


def test_caption_paragraphs_end_without_a_lone_short_word():
    """A caption paragraph whose plain wrap leaves "4." alone on its last line (full-mode
    rate_vs_T's "c₁ = 4.") is rewrapped a little narrower: every line within the width,
    the words unchanged, the last line at least MIN_LAST_LINE characters."""
    from theory.figures import MIN_LAST_LINE, _wrap_without_widow, wrap_text
    text = ("allow 0.05 in the exponent for log factors; hollow markers: points whose "
            "numerical interval reaches 0 (no band). Exact TV, li schedule c₀ = 2, c₁ = 4.")
    width = next(w for w in range(40, 90) if len(wrap_text(text, w).splitlines()[-1]) <= 3)
    plain, fixed = wrap_text(text, width), _wrap_without_widow(text, width)
    assert plain.splitlines()[-1] == "4."
    assert len(fixed.splitlines()[-1]) >= MIN_LAST_LINE
    assert max(len(ln) for ln in fixed.splitlines()) <= width
    assert fixed.split() == text.split()


def test_format_exponent_plus_minus_covers_the_interval():
    """For random intervals narrower than 1e-4 the printed k ± w, read back, covers the
    interval, and the printed k lies inside it (the value shown inside its own interval)
    except where k lies closer to an end than the rounding of its tenth decimal."""
    rng = np.random.default_rng(7)
    for _ in range(3000):
        k = rng.uniform(-3, 3) * (rng.random() < 0.8)
        w = 10 ** rng.uniform(-11, -4.3)
        lo, hi = k - w * rng.uniform(0.2, 1), k + w * rng.uniform(0.2, 1)
        text = format_exponent(k, (lo, hi))
        dec = len(text.split(" ± ")[0].split(".")[1])
        shown, pm = (float(x) for x in text.split(" ± "))
        assert shown - pm <= lo and shown + pm >= hi, (k, lo, hi, text)
        # inside, unless k is nearer an end than half the tenth decimal
        assert lo <= shown <= hi or (dec == 10 and min(hi - k, k - lo) < 0.5e-10), (k, lo, hi, text)


@pytest.mark.parametrize("v, lo, hi, text", [
    (0.2074, 0.1991, 0.2156, "0.207 [0.199, 0.216]"),
    # full dpnp-annealing printed "reference 0.0229 [0.0229, 0.0229]"
    (0.02292638, 0.02292582, 0.02292694, "0.0229264 [0.0229258, 0.0229269]"),
    (0.10766, 0.10756, 0.10776, "0.10766 [0.10756, 0.10776]"),   # 3 digits: on its ends
    (1.654e-5, 1.650e-5, 1.660e-5, "1.654e-05 [1.650e-05, 1.660e-05]"),
    (0.5, 0.5 - 1e-12, 0.5 + 1e-12, "0.50000000 ± 1e-12"),        # past 8 digits: ± w
])
def test_format_estimate_resolves_the_interval(v, lo, hi, text):
    assert format_estimate(v, lo, hi) == text


def test_format_estimate_never_prints_a_point_on_a_collapsed_interval():
    """For random intervals around random values, the printed ends differ and a value
    strictly inside prints strictly between them (or the ± form covers the interval)."""
    rng = np.random.default_rng(3)
    for _ in range(2000):
        v = 10 ** rng.uniform(-6, 0)
        w = v * 10 ** rng.uniform(-10, -0.5)
        lo, hi = v - w * rng.uniform(0.1, 1), v + w * rng.uniform(0.1, 1)
        text = format_estimate(v, lo, hi)
        if "±" in text:
            k, pm = text.split(" ± ")
            assert float(k) - float(pm) <= lo * (1 + 1e-7) and float(k) + float(pm) >= hi * (1 - 1e-7)
            continue
        k, a, b = (float(x) for x in text.replace("[", "").replace("]", "").replace(",", "").split())
        assert a < k < b, text


def test_distinct_digits_shows_the_gap():
    from theory.figures import distinct_digits
    assert distinct_digits(0.8114121329, 0.8114117635) == 7     # "0.811412" hid the gap
    assert distinct_digits(0.5, 0.6) == 3
